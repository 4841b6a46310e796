# Copyright (c) varedd_mm contributors. All rights reserved.
"""Realised cost over a test set: GFLOPs per row (view of a clip, window of
an image) and per sample (video, image), the base model's GFLOPs and the
share of each choice per layer. Registered in mmengine's root ``METRICS``,
so recognition, detection and segmentation configs all find it."""
import json
import os
import os.path as osp
from collections import defaultdict
from typing import Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger
from mmengine.registry import METRICS


@METRICS.register_module()
class VARED2EfficiencyMetric(BaseMetric):
    """Average realised GFLOPs (multiply-adds / 1e9) over the evaluated
    samples, from the per-row records that
    :class:`~varedd_mm.models.vared2_model.VARED2ModelMixin` attaches to the
    predictions (``VARED2Recognizer3D`` and the other VA-RED² task models).

    Reported (prefix ``vared2``, names for the defaults
    ``row_name='view'``, ``sample_name='video'``): ``gflops_per_view``
    (mean over every view of every video, each with its own choices),
    ``gflops_per_video`` (views summed per video, as model zoos count
    multi-clip/multi-crop testing), ``base_gflops_per_view``,
    ``gflops_ratio`` (realised / base) and ``share_full`` (fraction of layer
    decisions that computed everything). ``out_file`` also receives the
    per-class GFLOPs (where samples have a ``gt_label``) and, per layer, the
    share of each choice ``(p_t, p_c)``.

    Args:
        out_file (str, optional): JSON file for the full report.
        row_name (str): What one row is (``'view'`` of a clip, ``'window'``
            of an image): names the per-row keys.
        sample_name (str): What one sample is (``'video'``, ``'image'``):
            names the per-sample key.
        collect_device, prefix: as ``BaseMetric``.
    """
    default_prefix = 'vared2'

    def __init__(self,
                 out_file: Optional[str] = None,
                 row_name: str = 'view',
                 sample_name: str = 'video',
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        for key, value in (('row_name', row_name), ('sample_name',
                                                    sample_name)):
            if not isinstance(value, str) or not value.isidentifier():
                raise ValueError(f'VARED2EfficiencyMetric.{key} must be a '
                                 f'word such as "view" or "image", got '
                                 f'{value!r}')
        if row_name == sample_name:
            raise ValueError('VARED2EfficiencyMetric: row_name and '
                             f'sample_name must differ, both are {row_name!r}')
        self.out_file = out_file
        self.row_name = row_name
        self.sample_name = sample_name

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'vared2_gflops' not in sample:
                raise KeyError(
                    'VARED2EfficiencyMetric needs the cost records of a '
                    'VA-RED2 task model (VARED2Recognizer3D, ...: model.type) '
                    'in the predictions')
            label = sample.get('gt_label')
            self.results.append(
                dict(
                    gflops=sample['vared2_gflops'].cpu().numpy(),
                    base=float(sample['vared2_base_gflops']),
                    choices=sample['vared2_choices'].cpu().numpy(),
                    names=list(sample['vared2_layer_names']),
                    label=None if label is None else int(label.view(-1)[0])))

    def compute_metrics(self, results: list) -> dict:
        views = np.concatenate([r['gflops'] for r in results])
        per_video = np.array([r['gflops'].sum() for r in results])
        base = float(np.mean([r['base'] for r in results]))
        choices = np.concatenate([r['choices'] for r in results], axis=1)
        full = (choices == 0).all(axis=2)
        row, sample = self.row_name, self.sample_name
        metrics = {
            f'gflops_per_{row}': float(views.mean()),
            f'gflops_per_{sample}': float(per_video.mean()),
            f'base_gflops_per_{row}': base,
            'gflops_ratio': float(views.mean() / base),
            'share_full': float(full.mean())
        }
        if self.out_file:
            by_class = defaultdict(list)
            for r in results:
                by_class[r['label']].extend(r['gflops'].tolist())
            names = results[0]['names']
            layers = {}
            for idx, name in enumerate(names):
                c = choices[idx]
                keys, counts = np.unique(c, axis=0, return_counts=True)
                layers[name] = {
                    f'({k[0]}, {k[1]})': float(n) / len(c)
                    for k, n in zip(keys.tolist(), counts)
                }
            by_class = {
                str(k): float(np.mean(v))
                for k, v in sorted(
                    by_class.items(), key=lambda kv: (kv[0] is None, kv[0]))
            }
            report = dict(metrics)
            report.update({
                f'num_{sample}s': len(results),
                f'num_{row}s': int(views.size),
                f'gflops_per_{row}_by_class': by_class,
                'choice_share_per_layer': layers,
                'note': 'GFLOPs are multiply-accumulates / 1e9'
            })
            out_dir = osp.dirname(self.out_file)
            if out_dir:
                os.makedirs(out_dir, exist_ok=True)
            with open(self.out_file, 'w') as f:
                json.dump(report, f, indent=2)
            MMLogger.get_current_instance().info(
                f'VA-RED2 efficiency report written to {self.out_file}')
        return metrics
