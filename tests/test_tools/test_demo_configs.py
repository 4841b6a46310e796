# Copyright (c) varedd_mm contributors. All rights reserved.
"""The demo VA-RED2 configs start from the checkpoint where
tools/run_default.py writes the demo base, so they can be trained directly
after the demo."""
import json
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


def test_recognition_demo_summary_keys(run_default, tmp_path, monkeypatch,
                                       write_test_dir):
    """README command 1 writes summary.json with the keys users rely on
    (top1_base, top1_vared2, gflops_ratio, per_class,
    static_vs_moving_gflops), from what its train / test steps leave."""
    from varedd_mm.datasets import CLASSES, STATIC_CLASSES
    data_root = tmp_path / 'data'
    data_root.mkdir()
    (data_root / 'val_list_videos.txt').write_text('')
    labels = [0, 1, 2, 0, 1, 2]
    gflops = [0.2, 0.3, 0.4]

    def fake_train_and_test(base_cfg, dyn_cfg, wd, data_opts, *args, **kwargs):
        assert (base_cfg, dyn_cfg) == (run_default.BASE_CFG,
                                       run_default.DYN_CFG)
        assert any(str(data_root) in opt for opt in data_opts)
        wd_base, wd_dyn = osp.join(wd, 'base'), osp.join(wd, 'vared2')
        write_test_dir(
            tmp_path / 'wd' / 'base' / 'test', labels, labels, num_classes=3)
        write_test_dir(
            tmp_path / 'wd' / 'vared2' / 'test', [0, 1, 2, 0, 1, 1],
            labels,
            gflops,
            num_classes=3)
        return {'train base': 1.0}, wd_base, wd_dyn

    monkeypatch.setattr(run_default, 'train_and_test', fake_train_and_test)
    monkeypatch.setattr('sys.argv', [
        'run_default.py', '--work-dir',
        str(tmp_path / 'wd'), '--data-root',
        str(data_root)
    ])
    run_default.main()
    with open(tmp_path / 'wd' / 'summary.json') as f:
        summary = json.load(f)
    assert summary['top1_base'] == 1.0
    assert summary['top1_vared2'] == pytest.approx(5 / 6)
    assert summary['gflops_ratio'] == pytest.approx(0.3 / 0.5)
    assert set(summary['per_class']) == set(CLASSES)
    assert summary['per_class'][CLASSES[2]]['top1_vared2'] == 0.5
    static = [gflops[CLASSES.index(c)] for c in STATIC_CLASSES]
    moving = [g for c, g in zip(CLASSES, gflops) if c not in STATIC_CLASSES]
    assert summary['static_vs_moving_gflops'] == pytest.approx(
        [sum(static) / len(static),
         sum(moving) / len(moving)])
