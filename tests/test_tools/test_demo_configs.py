# Copyright (c) varedd_mm contributors. All rights reserved.
"""The demo VA-RED2 configs start from the checkpoint where
tools/run_default.py writes the demo base, so they can be trained directly
after the demo."""
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


@pytest.fixture(scope='module')
def run_default(tool_module):
    return tool_module('run_default')


def last_checkpoint_name(cfg):
    """The file name of the checkpoint a config's training ends with (and
    that its CheckpointHook writes)."""
    loop = cfg.train_cfg
    interval = cfg.default_hooks.checkpoint.interval
    if loop.get('type', 'EpochBasedTrainLoop') == 'IterBasedTrainLoop':
        assert loop.max_iters % interval == 0, 'last iteration not saved'
        return f'iter_{loop.max_iters}.pth'
    assert loop.max_epochs % interval == 0, 'last epoch not saved'
    return f'epoch_{loop.max_epochs}.pth'


@pytest.mark.parametrize('task, base, dynamic',
                         [('recognition', 'BASE_CFG', 'DYN_CFG'),
                          ('segmentation', 'SEG_BASE_CFG', 'SEG_DYN_CFG'),
                          ('detection', 'DET_BASE_CFG', 'DET_DYN_CFG')])
def test_demo_load_from_is_where_run_default_writes_the_base(
        run_default, task, base, dynamic):
    base_cfg = Config.fromfile(getattr(run_default, base))
    dyn_cfg = Config.fromfile(getattr(run_default, dynamic))
    expected = osp.join(run_default.WORK_DIRS[task], run_default.BASE_SUBDIR,
                        last_checkpoint_name(base_cfg))
    assert dyn_cfg.load_from == expected


def test_chance_frame_map(run_default, tmp_path):
    """Guessing one of K classes per box: class c's AP is its share / K."""
    csv = tmp_path / 'val.csv'
    # shares 1/2, 1/4, 1/4 of the boxes over K=3 classes
    rows = [
        f'v.mp4,{t},0.1,0.1,0.5,0.9,{label},0'
        for t, label in enumerate([0, 0, 1, 2], 1)
    ]
    csv.write_text('\n'.join(rows) + '\n')
    expected = 100 * (0.5 + 0.25 + 0.25) / 3 / 3
    assert run_default.chance_frame_map(str(csv)) == pytest.approx(expected)
