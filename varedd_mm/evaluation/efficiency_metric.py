# Copyright (c) varedd_mm contributors. All rights reserved.
"""Realised cost over a test set: GFLOPs per view / per video, the base
model's GFLOPs and the share of each choice per layer."""
import json
import os
import os.path as osp
from collections import defaultdict
from typing import Optional, Sequence

import numpy as np
from mmaction.registry import METRICS
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger


@METRICS.register_module()
class VARED2EfficiencyMetric(BaseMetric):
    """Average realised GFLOPs (multiply-adds / 1e9) over the evaluated
    samples, from the per-view records of :class:`VARED2Recognizer3D`.

    Reported (prefix ``vared2``): ``gflops_per_view`` (mean over every view
    of every video, each with its own choices), ``gflops_per_video`` (views
    summed per video, as model zoos count multi-clip/multi-crop testing),
    ``base_gflops_per_view``, ``gflops_ratio`` (realised / base) and
    ``share_full`` (fraction of layer decisions that computed everything).
    ``out_file`` also receives the per-class GFLOPs and, per layer, the share
    of each choice ``(p_t, p_c)``.

    Args:
        out_file (str, optional): JSON file for the full report.
        collect_device, prefix: as ``BaseMetric``.
    """
    default_prefix = 'vared2'

    def __init__(self,
                 out_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.out_file = out_file

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        for sample in data_samples:
            if 'vared2_gflops' not in sample:
                raise KeyError(
                    'VARED2EfficiencyMetric needs the records of '
                    'VARED2Recognizer3D (model.type) in the predictions')
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
        metrics = dict(
            gflops_per_view=float(views.mean()),
            gflops_per_video=float(per_video.mean()),
            base_gflops_per_view=base,
            gflops_ratio=float(views.mean() / base),
            share_full=float(full.mean()))
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
            report = dict(
                metrics,
                num_videos=len(results),
                num_views=int(views.size),
                gflops_per_view_by_class={
                    str(k): float(np.mean(v))
                    for k, v in sorted(
                        by_class.items(),
                        key=lambda kv: (kv[0] is None, kv[0]))
                },
                choice_share_per_layer=layers,
                note='GFLOPs are multiply-accumulates / 1e9')
            out_dir = osp.dirname(self.out_file)
            if out_dir:
                os.makedirs(out_dir, exist_ok=True)
            with open(self.out_file, 'w') as f:
                json.dump(report, f, indent=2)
            MMLogger.get_current_instance().info(
                f'VA-RED2 efficiency report written to {self.out_file}')
        return metrics
