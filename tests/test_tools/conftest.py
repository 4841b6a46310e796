# Copyright (c) varedd_mm contributors. All rights reserved.
import importlib.util
import json
import os.path as osp
import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


@pytest.fixture(scope='session')
def tool_module():
    """Import ``tools/<name>.py`` (the tools are scripts, not a package)
    as a module: ``tool_module('run_default')``."""

    def load(name):
        spec = importlib.util.spec_from_file_location(
            name, osp.join(ROOT, 'tools', f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def run_tool():
    """Run ``python <args>`` in the repository root; fail the test with the
    tail of its output unless it exits with 0; return stdout + stderr."""

    def run(args, timeout=900):
        out = subprocess.run(
            [sys.executable] + list(args),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout)
        assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
        return out.stdout + out.stderr

    return run


def _clip_opts(anns, videos, batch_size, extra=()):
    """``--cfg-options`` that train (one epoch), validate and test a demo
    recognizer config on the videos listed in ``anns[split]`` (paths
    relative to ``videos``), in the main process."""
    opts = []
    for split in ('train', 'val', 'test'):
        opts += [
            f'{split}_dataloader.dataset.ann_file={anns[split]}',
            f'{split}_dataloader.dataset.data_prefix.video={videos}',
            f'{split}_dataloader.batch_size={batch_size}',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
        ]
    return opts + list(extra) + [
        'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1',
    ]


@pytest.fixture
def sample_clip_opts(shared_dir):
    """``--cfg-options`` for a demo recognizer config on the real sample
    clips of ../shared, one clip per batch."""
    samples = osp.join(shared_dir, 'data', 'mmaction2_samples')
    ann = osp.join(samples, 'annotations', 'video_test_list.txt')
    # one training clip per batch: a 64x64 crop keeps more than one value
    # per channel for the last BN of R(2+1)D-18 in train mode
    return _clip_opts(
        dict.fromkeys(('train', 'val', 'test'), ann), samples, 1,
        ['train_dataloader.dataset.pipeline.3.size=64'])


@pytest.fixture(scope='session')
def embedded_clip_opts(tmp_path_factory):
    """``--cfg-options`` for a demo recognizer config on a few clips of the
    embedded synthetic motion dataset, generated here (two training and
    one test video per class; needs nothing outside the repository)."""
    from varedd_mm.datasets.synthetic_motion import generate
    root = tmp_path_factory.mktemp('synthetic_motion')
    paths = generate(str(root), train_per_class=2, val_per_class=1)
    # two training clips per batch (train-mode BN statistics); the test
    # split is the val list, as in the demo config
    anns = dict(train=paths['train'], val=paths['val'], test=paths['val'])
    return _clip_opts(anns, osp.join(root, 'videos'), 2)


@pytest.fixture
def write_test_dir():
    """Write what ``tools/test.py --dump`` (and, with ``gflops_by_class``,
    the VA-RED² efficiency metric) leaves in a recognizer's test dir:
    ``predictions.pkl`` with one-hot scores of ``preds`` and
    ``vared2_efficiency.json`` with those per-class GFLOPs (base 0.5)."""

    def write(path, preds, labels, gflops_by_class=None, num_classes=10):
        path.mkdir(parents=True)
        samples = []
        for p, label in zip(preds, labels):
            score = np.zeros(num_classes, np.float32)
            score[p] = 1
            samples.append(
                dict(
                    pred_score=torch.from_numpy(score),
                    gt_label=torch.tensor([label])))
        with open(path / 'predictions.pkl', 'wb') as f:
            pickle.dump(samples, f)
        if gflops_by_class is not None:
            per_view = float(np.mean([gflops_by_class[c] for c in labels]))
            with open(path / 'vared2_efficiency.json', 'w') as f:
                json.dump(
                    dict(
                        base_gflops_per_view=0.5,
                        gflops_per_view=per_view,
                        gflops_ratio=per_view / 0.5,
                        gflops_per_view_by_class={
                            str(c): g
                            for c, g in enumerate(gflops_by_class)
                        }), f)

    return write


def _test_metrics(log):
    """The metrics of the last ``Epoch(test)`` / ``Iter(test)`` line of a
    tools/test.py log (not its timings)."""
    lines = [line for line in log.splitlines() if '(test) [' in line]
    assert lines, log[-3000:]
    pairs = re.findall(r'(?<!\S)([A-Za-z][\w./]*): (-?[\d.]+)(?=\s|$)',
                       lines[-1])
    return {k: v for k, v in pairs if k not in ('time', 'data_time')}


@pytest.fixture
def fused_test_agrees(run_tool):
    """Run a ``tools/test.py`` command again with ``--fuse-conv-bn
    --channels-last`` (another work dir, no ``--dump``) and check that the
    fused inference model scores what the unfused one scored (its log
    ``log``): the same metrics and the same efficiency report."""

    def check(args, log):
        args = list(args)
        i = args.index('--dump') if '--dump' in args else None
        if i is not None:
            del args[i:i + 2]
        w = args.index('--work-dir') + 1
        test_dir, fused_dir = args[w], args[w] + '_fused'
        args[w] = fused_dir
        fused_log = run_tool(args[:3] + ['--fuse-conv-bn', '--channels-last'] +
                             args[3:])
        assert 'testing the fused inference model' in fused_log
        metrics = _test_metrics(log)
        assert metrics and _test_metrics(fused_log) == metrics
        reports = [
            json.load(open(osp.join(d, 'vared2_efficiency.json')))
            for d in (test_dir, fused_dir)
        ]
        assert reports[1] == reports[0]

    return check
