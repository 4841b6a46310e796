# Copyright (c) varedd_mm contributors. All rights reserved.
"""TPN-8f base then VA-RED2 through tools/train.py and tools/test.py on the
real sample clips (small crops): aux loss, efficiency loss, fcn testing
with ThreeCrop views, realised GFLOPs per video."""
import json
import os.path as osp

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFG = osp.join(ROOT, 'configs', 'recognition', 'vared2')
BASE = osp.join(
    CFG,
    'tpn-slowonly_imagenet-pretrained-r50_8xb8-8x8x1-150e_minik200-rgb.py')
DYN = osp.join(CFG,
               'vared2-k2_tpn-slowonly_r50_8xb8-8x8x1-30e_minik200-rgb.py')


def _opts(samples):
    ann = osp.join(samples, 'annotations', 'video_test_list.txt')
    opts = [
        'model.backbone.pretrained=None', 'model.cls_head.num_classes=2',
        'model.neck.aux_head_cfg.out_channels=2', 'train_cfg.max_epochs=1',
        'train_cfg.val_interval=1', 'default_hooks.checkpoint.interval=1'
    ]
    for split in ('train', 'val', 'test'):
        opts += [
            f'{split}_dataloader.dataset.ann_file={ann}',
            f'{split}_dataloader.dataset.data_prefix.video={samples}',
            f'{split}_dataloader.batch_size=2',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
            f'{split}_dataloader.dataset.pipeline.3.scale=(-1,72)',
        ]
    return opts + [
        'train_dataloader.dataset.pipeline.5.scale=(64,64)',
        'val_dataloader.dataset.pipeline.4.crop_size=64',
        'test_dataloader.dataset.pipeline.4.crop_size=72',
        'test_dataloader.dataset.pipeline.1.num_clips=2'
    ]


def test_tpn_train_then_test_base_and_vared2(tmp_path, shared_dir, run_tool):
    opts = _opts(osp.join(shared_dir, 'data', 'mmaction2_samples'))
    log = run_tool([
        'tools/train.py', BASE, '--work-dir',
        str(tmp_path / 'base'), '--cfg-options'
    ] + opts)
    assert 'loss_aux' in log
    base_ckpt = str(tmp_path / 'base' / 'epoch_1.pth')
    log = run_tool([
        'tools/train.py', DYN, '--work-dir',
        str(tmp_path / 'dyn'), '--cfg-options', f'load_from={base_ckpt}',
        'custom_hooks.0.num_batches=1'
    ] + opts)
    for key in ('loss_cls', 'loss_aux', 'loss_eff', 'eff_ratio_realised'):
        assert key in log, key
    test_dir = tmp_path / 'dyn_test'
    log = run_tool([
        'tools/test.py', DYN,
        str(tmp_path / 'dyn' / 'epoch_1.pth'), '--work-dir',
        str(test_dir), '--cfg-options'
    ] + opts)
    assert 'acc/top1' in log
    report = json.load(open(test_dir / 'vared2_efficiency.json'))
    # 2 clips x 3 crops per video, each view counted with its own choices
    assert report['num_views'] == 6 * report['num_videos']
    assert report['gflops_per_video'] == pytest.approx(
        report['gflops_per_view'] * 6)
    assert 0 < report['gflops_ratio'] <= 1.005
    assert any(n.startswith('neck.') for n in report['choice_share_per_layer'])
