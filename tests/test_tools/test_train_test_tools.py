# Copyright (c) varedd_mm contributors. All rights reserved.
"""The whole train -> test path through tools/train.py and tools/test.py,
base then VA-RED2 (load_from the base), on the real sample clips in
../shared/data/mmaction2_samples."""
import json
import os.path as osp

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DEMO = osp.join(ROOT, 'configs', 'recognition', 'vared2', 'demo')
BASE = osp.join(DEMO, 'r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-rgb.py')
DYN = osp.join(DEMO,
               'vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb.py')


def test_train_then_test_base_and_vared2(tmp_path, shared_dir,
                                         sample_clip_opts, run_tool,
                                         fused_test_agrees):
    samples = osp.join(shared_dir, 'data', 'mmaction2_samples')
    opts = sample_clip_opts + [
        'default_hooks.checkpoint.interval=1', 'model.cls_head.num_classes=2'
    ]
    wd_base = str(tmp_path / 'base')
    run_tool(['tools/train.py', BASE, '--work-dir', wd_base, '--cfg-options'] +
             opts)
    base_ckpt = osp.join(wd_base, 'epoch_1.pth')
    assert osp.isfile(base_ckpt)
    log = run_tool([
        'tools/test.py', BASE, base_ckpt, '--work-dir',
        str(tmp_path / 'base_test'), '--cfg-options'
    ] + opts)
    assert 'acc/top1' in log

    wd_dyn = str(tmp_path / 'vared2')
    log = run_tool([
        'tools/train.py', DYN, '--work-dir', wd_dyn, '--cfg-options',
        f'load_from={base_ckpt}', 'custom_hooks.0.num_batches=1'
    ] + opts)
    for key in ('loss_cls', 'loss_eff', 'eff_ratio_expected',
                'eff_ratio_realised'):
        assert key in log, key
    assert 'BN statistics recalibrated' in log
    # only gate / cheap-op keys are missing from the base checkpoint
    assert 'missing keys in source state_dict' in log
    dyn_ckpt = osp.join(wd_dyn, 'epoch_1.pth')
    test_dir = tmp_path / 'vared2_test'
    test_args = [
        'tools/test.py', DYN, dyn_ckpt, '--work-dir',
        str(test_dir), '--dump',
        str(tmp_path / 'preds.pkl'), '--cfg-options'
    ] + opts
    log = run_tool(test_args)
    assert 'acc/top1' in log and 'vared2/gflops_per_view' in log
    # the fused inference model (BN folded, channels-last) scores the same
    fused_test_agrees(test_args, log)
    report = json.load(open(test_dir / 'vared2_efficiency.json'))
    ann = osp.join(samples, 'annotations', 'video_test_list.txt')
    assert report['num_videos'] == len(open(ann).read().split('\n')) - 1
    # at most the base plus the gates (< 0.5 %) when every gate picks (0, 0)
    assert 0 < report[
        'gflops_per_view'] <= 1.005 * report['base_gflops_per_view']
    assert osp.isfile(tmp_path / 'preds.pkl')

    # resume from the dynamic checkpoint for one more epoch
    log = run_tool([
        'tools/train.py', DYN, '--work-dir', wd_dyn, '--resume',
        '--cfg-options', 'custom_hooks.0.num_batches=1'
    ] + opts[:-4] + [
        'train_cfg.max_epochs=2', 'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1', 'model.cls_head.num_classes=2'
    ])
    assert osp.isfile(osp.join(wd_dyn, 'epoch_2.pth'))


def test_test_tool_fast_inference_flags(tool_module, monkeypatch, capsys):
    test_tool = tool_module('test')
    monkeypatch.setattr(
        'sys.argv',
        ['test.py', DYN, 'x.pth', '--fuse-conv-bn', '--channels-last'])
    args = test_tool.parse_args()
    assert args.fuse_conv_bn and args.channels_last
    monkeypatch.setattr('sys.argv',
                        ['test.py', DYN, 'x.pth', '--channels-last'])
    with pytest.raises(SystemExit):
        test_tool.parse_args()
    assert '--channels-last goes with --fuse-conv-bn' in capsys.readouterr(
    ).err
