# Copyright (c) varedd_mm contributors. All rights reserved.
"""The segmentation path as users run it: mmseg's own ``tools/train.py``
(shipped in the installed ``mmseg/.mim/tools/``, what ``mim train mmseg``
runs) trains the demo base config for a few iterations with
``custom_imports=['varedd_mm']``; the package's tools fine-tune the
VA-RED² config from that checkpoint and test it (mIoU next to GFLOPs per
image)."""
import json
import os.path as osp

import mmseg

from varedd_mm.datasets.synthetic_segmentation import generate

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DEMO = osp.join(ROOT, 'configs', 'segmentation', 'vared2', 'demo')
BASE = osp.join(DEMO, 'pspnet_r18-d8_1xb8-1k_synthetic-seg-64x64.py')
DYN = osp.join(DEMO, 'vared2_pspnet_r18-d8_1xb8-500_synthetic-seg-64x64.py')
MMSEG_TRAIN = osp.join(
    osp.dirname(mmseg.__file__), '.mim', 'tools', 'train.py')


def _opts(data_root, iters):
    opts = []
    for split in ('train', 'val', 'test'):
        opts.append(f'{split}_dataloader.dataset.data_root={data_root}')
    for split in ('val', 'test'):
        opts += [
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
        ]
    # training as configured: a persistent worker feeding the infinite
    # iteration-based loop, from which BN recalibration draws its batches
    return opts + [
        'train_dataloader.num_workers=1', 'train_dataloader.batch_size=2',
        f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
        f'default_hooks.checkpoint.interval={iters}',
        f'param_scheduler.0.end={iters}', 'default_hooks.logger.interval=1'
    ]


def test_mmseg_train_then_vared2_train_and_test(tmp_path, run_tool,
                                                fused_test_agrees):
    data_root = str(tmp_path / 'synthetic_seg')
    generate(data_root, num_train=8, num_val=3, size=64, seed=0)
    wd_base = str(tmp_path / 'base')
    log = run_tool(
        [MMSEG_TRAIN, BASE, '--work-dir', wd_base, '--cfg-options'] +
        _opts(data_root, 2))
    assert 'decode.loss_ce' in log and 'mIoU' in log
    base_ckpt = osp.join(wd_base, 'iter_2.pth')
    assert osp.isfile(base_ckpt)

    wd_dyn = str(tmp_path / 'vared2')
    log = run_tool([
        'tools/train.py', DYN, '--work-dir', wd_dyn, '--cfg-options',
        f'load_from={base_ckpt}', 'custom_hooks.0.num_batches=1',
        'custom_hooks.0.interval=2'
    ] + _opts(data_root, 2))
    for key in ('decode.loss_ce', 'aux.loss_ce', 'loss_eff',
                'eff_ratio_realised'):
        assert key in log, key
    assert 'BN statistics recalibrated' in log
    assert 'missing keys in source state_dict' in log  # gates, cheap ops

    test_dir = tmp_path / 'vared2_test'
    test_args = [
        'tools/test.py', DYN,
        osp.join(wd_dyn, 'iter_2.pth'), '--work-dir',
        str(test_dir), '--cfg-options'
    ] + _opts(data_root, 2)
    log = run_tool(test_args)
    assert 'mIoU' in log and 'vared2/gflops_per_image' in log
    fused_test_agrees(test_args, log)
    report = json.load(open(test_dir / 'vared2_efficiency.json'))
    assert report['num_images'] == 3 and report['num_windows'] == 3
    assert 0 < report['gflops_per_image'] <= (1.005 *
                                              report['base_gflops_per_window'])
