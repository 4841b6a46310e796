# Copyright (c) varedd_mm contributors. All rights reserved.
"""The detection path as users run it: a J-HMDB-layout release (here the
synthetic generator's, converted by the J-HMDB converter exactly as the real
one), the base detector trained and tested with tools/train.py and
tools/test.py, then its VA-RED² version fine-tuned from it and tested
(frame-mAP next to realised GFLOPs per clip)."""
import json
import os.path as osp

from varedd_mm.datasets.jhmdb import convert_jhmdb
from varedd_mm.datasets.synthetic_jhmdb import generate_synthetic_jhmdb

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
DEMO = osp.join(ROOT, 'configs', 'detection', 'vared2', 'demo')
BASE = osp.join(DEMO, 'slowonly_r18_1xb8-8x2x1-5e_synthetic-jhmdb-rgb.py')
DYN = osp.join(DEMO,
               'vared2_slowonly_r18_1xb8-8x2x1-1e_synthetic-jhmdb-rgb.py')


def _opts(root):
    anno = osp.join(root, 'annotations')
    # test_evaluator is a copy of val_evaluator made when the config is
    # read: both need the path
    opts = [
        f'{ev}_evaluator.ann_file={anno}/jhmdb_split1_GT.pkl'
        for ev in ('val', 'test')
    ]
    for split, subset in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        opts += [
            f'{split}_dataloader.dataset.ann_file={anno}/'
            f'jhmdb_split1_{subset}.csv',
            f'{split}_dataloader.dataset.proposal_file={anno}/'
            f'jhmdb_split1_proposals_{subset}.pkl',
            f'{split}_dataloader.dataset.data_prefix.img={root}/videos',
            f'{split}_dataloader.num_workers=0',
            f'{split}_dataloader.persistent_workers=False',
        ]
    return opts + [
        'train_dataloader.batch_size=4',
        'train_cfg.max_epochs=1',
        # no validation while training: tools/test.py evaluates
        'train_cfg.val_begin=2',
        'train_cfg.val_interval=1',
        'default_hooks.checkpoint.interval=1',
        'default_hooks.logger.interval=1'
    ]


def test_train_and_test_base_then_vared2_detector(tmp_path, run_tool,
                                                  fused_test_agrees):
    root = str(tmp_path / 'jhmdb')
    paths = generate_synthetic_jhmdb(
        root, videos_per_class=3, num_frames=(16, 20), size=(64, 80))
    convert_jhmdb(
        paths['gt_file'],
        paths['frames_dir'],
        root,
        split=1,
        train_stride=6,
        log=lambda *a, **k: None)
    opts = _opts(root)
    wd_base = str(tmp_path / 'base')
    log = run_tool(
        ['tools/train.py', BASE, '--work-dir', wd_base, '--cfg-options'] +
        opts)
    assert 'loss_action_cls' in log
    base_ckpt = osp.join(wd_base, 'epoch_1.pth')
    log = run_tool([
        'tools/test.py', BASE, base_ckpt, '--work-dir',
        str(tmp_path / 'base_test'), '--cfg-options'
    ] + opts)
    assert 'mAP/frameAP' in log

    gt = f'{root}/annotations/jhmdb_split1_GT.pkl'
    dyn_opts = [o for o in opts if '_evaluator.' not in o]
    dyn_opts.append(f'val_evaluator.0.ann_file={gt}')
    wd_dyn = str(tmp_path / 'vared2')
    log = run_tool([
        'tools/train.py', DYN, '--work-dir', wd_dyn, '--cfg-options',
        f'load_from={base_ckpt}', 'custom_hooks.0.num_batches=1'
    ] + dyn_opts)
    for key in ('loss_action_cls', 'loss_eff', 'eff_ratio_realised'):
        assert key in log, key
    assert 'BN statistics recalibrated' in log
    test_dir = tmp_path / 'vared2_test'
    test_args = [
        'tools/test.py', DYN,
        osp.join(wd_dyn, 'epoch_1.pth'), '--work-dir',
        str(test_dir), '--cfg-options'
    ] + dyn_opts[:-1] + [f'test_evaluator.0.ann_file={gt}']
    log = run_tool(test_args)
    assert 'mAP/frameAP' in log and 'vared2/gflops_per_clip' in log
    fused_test_agrees(test_args, log)
    report = json.load(open(test_dir / 'vared2_efficiency.json'))
    val_rows = open(f'{root}/annotations/jhmdb_split1_val.csv').read()
    keyframes = {tuple(r.split(',')[:2]) for r in val_rows.split('\n') if r}
    assert report['num_keyframes'] == len(keyframes)
    assert report['num_clips'] == report['num_keyframes']
    assert 0 < report['gflops_per_clip'] <= (1.005 *
                                             report['base_gflops_per_clip'])
