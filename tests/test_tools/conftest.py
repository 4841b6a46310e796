# Copyright (c) varedd_mm contributors. All rights reserved.
import importlib.util
import os.path as osp
import subprocess
import sys

import pytest

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


@pytest.fixture
def sample_clip_opts(shared_dir):
    """``--cfg-options`` that train (one epoch), validate and test a demo
    recognizer config on the real sample clips of ../shared, one clip per
    batch in the main process."""
    samples = osp.join(shared_dir, 'data', 'mmaction2_samples')
    ann = osp.join(samples, 'annotations', 'video_test_list.txt')
    opts = []
    for split in ('train', 'val', 'test'):
        opts += [
            f'{split}_dataloader.dataset.ann_file={ann}',
            f'{split}_dataloader.dataset.data_prefix.video={samples}',
            f'{split}_dataloader.batch_size=1',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
        ]
    return opts + [
        # one training clip per batch: a 64x64 crop keeps more than one
        # value per channel for the last BN of R(2+1)D-18 in train mode
        'train_dataloader.dataset.pipeline.3.size=64',
        'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1',
    ]
