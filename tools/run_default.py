# Copyright (c) varedd_mm contributors. All rights reserved.
"""The embedded default (README command 1): generate the synthetic motion
dataset, train a base R(2+1)D-18 and its VA-RED² version on CPU, test both
with the standard tools, and print top-1 and realised GFLOPs per clip,
overall and per class. With ``--task segmentation``: the same for
PSPNet-R18-d8 on the synthetic segmentation dataset (mIoU and GFLOPs per
image); with ``--task detection``: for a FastRCNN with a small SlowOnly on
the synthetic J-HMDB-layout dataset (frame-mAP, video-mAP and GFLOPs per
clip).

    python tools/run_default.py [--work-dir work_dirs/demo]
    python tools/run_default.py --task segmentation [--work-dir DIR]
    python tools/run_default.py --task detection [--work-dir DIR]

Every step is a plain ``tools/train.py`` / ``tools/test.py`` call (printed
before it runs), so any of them can be re-run by hand.
"""
import argparse
import json
import os
import os.path as osp
import pickle
import subprocess
import sys
import time

import numpy as np

HERE = osp.dirname(osp.abspath(__file__))
ROOT = osp.dirname(HERE)
DEMO = osp.join(ROOT, 'configs', 'recognition', 'vared2', 'demo')
BASE_CFG = osp.join(DEMO,
                    'r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-rgb.py')
DYN_CFG = osp.join(
    DEMO, 'vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb.py')
SEG_DEMO = osp.join(ROOT, 'configs', 'segmentation', 'vared2', 'demo')
SEG_BASE_CFG = osp.join(SEG_DEMO,
                        'pspnet_r18-d8_1xb8-1k_synthetic-seg-64x64.py')
SEG_DYN_CFG = osp.join(SEG_DEMO,
                       'vared2_pspnet_r18-d8_1xb8-500_synthetic-seg-64x64.py')
DET_DEMO = osp.join(ROOT, 'configs', 'detection', 'vared2', 'demo')
DET_BASE_CFG = osp.join(DET_DEMO,
                        'slowonly_r18_1xb8-8x2x1-5e_synthetic-jhmdb-rgb.py')
DET_DYN_CFG = osp.join(
    DET_DEMO, 'vared2_slowonly_r18_1xb8-8x2x1-1e_synthetic-jhmdb-rgb.py')
# the detection demo's data: the synthetic J-HMDB-layout dataset as the
# generator writes it by default, converted for split 1 with every 4th
# annotated frame of each training tube (all frames of the test videos)
DET_SPLIT = 1
DET_TRAIN_STRIDE = 4
# default work dirs; the base model is trained in <work dir>/base, which is
# where the demo VA-RED2 configs' load_from points
WORK_DIRS = dict(
    recognition='work_dirs/demo',
    segmentation='work_dirs/demo_seg',
    detection='work_dirs/demo_det')
BASE_SUBDIR = 'base'


def run(cmd):
    print('\n$ ' + ' '.join(cmd), flush=True)
    t0 = time.time()
    subprocess.run(cmd, check=True, cwd=ROOT)
    return time.time() - t0


def last_checkpoint(work_dir):
    with open(osp.join(work_dir, 'last_checkpoint')) as f:
        return f.read().strip()


def train_and_test(base_cfg,
                   dyn_cfg,
                   wd,
                   data_opts,
                   vared2_opts=(),
                   base_opts=(),
                   base_test_opts=(),
                   train_opts=(),
                   dump=False):
    """The four steps every demo runs, each a plain ``tools/`` call: train
    the base in ``<wd>/base``, test it, fine-tune VA-RED² from its last
    checkpoint in ``<wd>/vared2``, test that (``vared2_efficiency.json`` in
    its ``test`` dir). ``data_opts`` go to every call, ``base_opts`` /
    ``vared2_opts`` to one model's training and test, ``base_test_opts``
    to the base's test and ``train_opts`` to both trainings. ``dump`` also
    writes ``test/predictions.pkl``.

    Returns:
        tuple: seconds per step, the base work dir, the VA-RED² work dir.
    """
    py = sys.executable
    wd_base, wd_dyn = osp.join(wd, BASE_SUBDIR), osp.join(wd, 'vared2')
    data_opts, vared2_opts = list(data_opts), list(vared2_opts)
    base_opts = list(base_opts)

    def test_cmd(cfg, ckpt, work_dir, extra):
        cmd = [
            py, 'tools/test.py', cfg, ckpt, '--work-dir',
            osp.join(work_dir, 'test')
        ]
        if dump:
            cmd += ['--dump', osp.join(work_dir, 'test', 'predictions.pkl')]
        return cmd + ['--cfg-options'] + data_opts + list(extra)

    timing = {}
    timing['train base'] = run([
        py, 'tools/train.py', base_cfg, '--work-dir', wd_base, '--cfg-options'
    ] + data_opts + base_opts + list(train_opts))
    base_ckpt = last_checkpoint(wd_base)
    timing['test base'] = run(
        test_cmd(base_cfg, base_ckpt, wd_base,
                 base_opts + list(base_test_opts)))
    timing['train VA-RED2'] = run([
        py, 'tools/train.py', dyn_cfg, '--work-dir', wd_dyn, '--cfg-options',
        f'load_from={base_ckpt}'
    ] + data_opts + list(train_opts) + vared2_opts)
    timing['test VA-RED2'] = run(
        test_cmd(dyn_cfg, last_checkpoint(wd_dyn), wd_dyn, vared2_opts))
    return timing, wd_base, wd_dyn


def write_summary(wd, summary, timing, t_start):
    """Add the step times and the total to a demo's ``summary`` and write
    it to ``<wd>/summary.json``."""
    summary.update(timing_s=timing, total_s=time.time() - t_start)
    with open(osp.join(wd, 'summary.json'), 'w') as f:
        json.dump(summary, f, indent=2)


def load_predictions(path):
    with open(path, 'rb') as f:
        preds = pickle.load(f)
    scores = np.stack([np.asarray(p['pred_score']) for p in preds])
    labels = np.array(
        [int(np.asarray(p['gt_label']).reshape(-1)[0]) for p in preds])
    return scores.argmax(1), labels


def video_data_options(data_root):
    """``--cfg-options`` pointing every dataloader of a synthetic motion
    config at ``data_root`` (validation and test on its val list)."""
    opts = []
    for split, subset in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        opts += [
            f'{split}_dataloader.dataset.ann_file={data_root}/'
            f'{subset}_list_videos.txt',
            f'{split}_dataloader.dataset.data_prefix.video={data_root}/videos'
        ]
    return opts


def recognition_summary(base_test_dir, dyn_test_dir, classes, static_classes):
    """Top-1 of the base and the VA-RED² model, overall and per class, and
    the VA-RED² model's realised GFLOPs per clip, overall, per class and
    averaged over the static and the moving classes, from the two test
    dirs (``predictions.pkl`` of ``--dump``; ``vared2_efficiency.json``)."""
    pred_b, labels = load_predictions(
        osp.join(base_test_dir, 'predictions.pkl'))
    pred_d, labels_d = load_predictions(
        osp.join(dyn_test_dir, 'predictions.pkl'))
    if labels.shape != labels_d.shape or (labels != labels_d).any():
        raise RuntimeError(f'{base_test_dir} and {dyn_test_dir} were not '
                           'tested on the same clips')
    with open(osp.join(dyn_test_dir, 'vared2_efficiency.json')) as f:
        eff = json.load(f)
    by_class = eff['gflops_per_view_by_class']
    summary = dict(
        top1_base=float((pred_b == labels).mean()),
        top1_vared2=float((pred_d == labels).mean()),
        gflops_per_clip_base=eff['base_gflops_per_view'],
        gflops_per_clip_vared2=eff['gflops_per_view'],
        gflops_ratio=eff['gflops_ratio'],
        per_class={
            name:
            dict(
                top1_base=float((pred_b[labels == c] == c).mean()),
                top1_vared2=float((pred_d[labels == c] == c).mean()),
                gflops_per_clip_vared2=by_class[str(c)])
            for c, name in enumerate(classes)
        })
    static = [by_class[str(classes.index(c))] for c in static_classes]
    moving = [
        by_class[str(c)] for c, n in enumerate(classes)
        if n not in static_classes
    ]
    summary['static_vs_moving_gflops'] = [
        float(np.mean(static)), float(np.mean(moving))
    ]
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--task',
        choices=['recognition', 'segmentation', 'detection'],
        default='recognition')
    parser.add_argument(
        '--work-dir',
        default=None,
        help='default: work_dirs/demo (recognition), work_dirs/demo_seg '
        '(segmentation), work_dirs/demo_det (detection)')
    parser.add_argument(
        '--data-root',
        default=None,
        help='default: data/synthetic_motion (recognition), '
        'data/synthetic_seg (segmentation), data/synthetic_jhmdb '
        '(detection)')
    parser.add_argument(
        '--vared2-cfg-options',
        nargs='+',
        default=[],
        help='extra key=value overrides of the VA-RED2 config (training and '
        'testing), e.g. model.efficiency_loss.target=0.55')
    args = parser.parse_args()
    sys.path.insert(0, ROOT)
    if args.task == 'segmentation':
        return segmentation_demo(args)
    if args.task == 'detection':
        return detection_demo(args)
    args.work_dir = args.work_dir or WORK_DIRS['recognition']
    args.data_root = args.data_root or 'data/synthetic_motion'
    from varedd_mm.datasets import CLASSES, STATIC_CLASSES, generate

    t_start = time.time()
    data_root = osp.join(ROOT, args.data_root)
    if not osp.isfile(osp.join(data_root, 'val_list_videos.txt')):
        print(f'generating the synthetic motion dataset in {data_root}')
        generate(data_root)
    wd = osp.join(ROOT, args.work_dir)
    data_opts = video_data_options(data_root)
    timing, wd_base, wd_dyn = train_and_test(
        BASE_CFG, DYN_CFG, wd, data_opts, args.vared2_cfg_options, dump=True)
    summary = recognition_summary(
        osp.join(wd_base, 'test'), osp.join(wd_dyn, 'test'), CLASSES,
        STATIC_CLASSES)
    base_g = summary['gflops_per_clip_base']
    write_summary(wd, summary, timing, t_start)

    print('\n== VA-RED2 demo: synthetic motion, R(2+1)D-18, CPU ==')
    print('GFLOPs = multiply-adds / 1e9 per clip (8x32x32), realised '
          'with each clip\'s own choices; 2 clips per video in testing')
    print('| model | top-1 | GFLOPs/clip |')
    print('|---|---|---|')
    print(f"| base | {100 * summary['top1_base']:.1f} | {base_g:.3f} |")
    print(f"| VA-RED2 | {100 * summary['top1_vared2']:.1f} | "
          f"{summary['gflops_per_clip_vared2']:.3f} "
          f"({summary['gflops_ratio']:.2f}x) |")
    print('\n| class | top-1 base | top-1 VA-RED2 | GFLOPs/clip VA-RED2 |')
    print('|---|---|---|---|')
    for name, r in summary['per_class'].items():
        print(f"| {name} | {100 * r['top1_base']:.1f} | "
              f"{100 * r['top1_vared2']:.1f} | "
              f"{r['gflops_per_clip_vared2']:.3f} |")
    s, m = summary['static_vs_moving_gflops']
    rel = (m - s) / m
    if abs(rel) < 0.02:
        verdict = 'about the same on static and moving clips (the policy ' \
                  'does not separate them here)'
    elif rel > 0:
        verdict = f'{100 * rel:.0f} % less on static clips'
    else:
        verdict = f'{-100 * rel:.0f} % more on static clips'
    print(f'\nstatic clips: {s:.3f} GFLOPs/clip, moving clips: {m:.3f}: the '
          f'learned policy spends {verdict}')
    ok_flops = summary['gflops_ratio'] <= 0.7
    ok_acc = summary['top1_base'] - summary['top1_vared2'] <= 0.02
    print(f"target <= 0.7x base GFLOPs: {'met' if ok_flops else 'NOT met'}; "
          f"top-1 within 2 points of base: {'met' if ok_acc else 'NOT met'}")
    print(f"total time {summary['total_s'] / 60:.1f} min "
          f"({', '.join(f'{k} {v:.0f}s' for k, v in timing.items())}); "
          f"summary: {osp.join(wd, 'summary.json')}")


def segmentation_demo(args):
    """Generate the synthetic segmentation dataset, train and test the base
    PSPNet-R18-d8 and its VA-RED² version, print mIoU and GFLOPs/image."""
    from varedd_mm.datasets.synthetic_segmentation import SEG_CLASSES, generate
    t_start = time.time()
    wd = osp.join(ROOT, args.work_dir or WORK_DIRS['segmentation'])
    data_root = osp.join(ROOT, args.data_root or 'data/synthetic_seg')
    if not osp.isdir(osp.join(data_root, 'annotations', 'validation')):
        print(f'generating the synthetic segmentation dataset in {data_root}')
        generate(data_root)
    data_opts = [
        f'{split}_dataloader.dataset.data_root={data_root}'
        for split in ('train', 'val', 'test')
    ]
    timing, wd_base, wd_dyn = train_and_test(
        SEG_BASE_CFG,
        SEG_DYN_CFG,
        wd,
        data_opts,
        args.vared2_cfg_options,
        base_test_opts=[
            'test_evaluator.output_dir=' +
            osp.join(wd, BASE_SUBDIR, 'test', 'iou'),
            'test_evaluator.keep_results=False'
        ])
    base_metrics = last_test_metrics(osp.join(wd_base, 'test'))
    dyn_metrics = last_test_metrics(osp.join(wd_dyn, 'test'))
    with open(osp.join(wd_dyn, 'test', 'vared2_efficiency.json')) as f:
        eff = json.load(f)
    summary = dict(
        miou_base=base_metrics['mIoU'],
        miou_vared2=dyn_metrics['mIoU'],
        gflops_per_image_base=eff['base_gflops_per_window'] *
        eff['num_windows'] / eff['num_images'],
        gflops_per_image_vared2=eff['gflops_per_image'],
        gflops_ratio=eff['gflops_ratio'],
        miou_majority=majority_miou(data_root, len(SEG_CLASSES)),
        classes=list(SEG_CLASSES))
    write_summary(wd, summary, timing, t_start)
    print('\n== VA-RED2 segmentation demo: synthetic textures, '
          'PSPNet-R18-d8, CPU ==')
    print('GFLOPs = multiply-adds / 1e9 per 64x64 image (whole-image '
          'inference), realised with each image\'s own choices')
    print('| model | mIoU | GFLOPs/image |')
    print('|---|---|---|')
    print(f"| base | {summary['miou_base']:.2f} | "
          f"{summary['gflops_per_image_base']:.3f} |")
    print(f"| VA-RED2 | {summary['miou_vared2']:.2f} | "
          f"{summary['gflops_per_image_vared2']:.3f} "
          f"({summary['gflops_ratio']:.2f}x) |")
    print(f"predicting the most frequent class everywhere scores "
          f"{summary['miou_majority']:.2f} mIoU; total time "
          f"{summary['total_s'] / 60:.1f} min "
          f"({', '.join(f'{k} {v:.0f}s' for k, v in timing.items())}); "
          f"summary: {osp.join(wd, 'summary.json')}")


def detection_demo(args):
    """Generate the synthetic J-HMDB-layout dataset, convert it like the
    release, train and test the base FastRCNN and its VA-RED² version,
    print frame-mAP, video-mAP and GFLOPs per clip."""
    from varedd_mm.datasets.jhmdb import convert_jhmdb
    from varedd_mm.datasets.synthetic_jhmdb import generate_synthetic_jhmdb
    t_start = time.time()
    wd = osp.join(ROOT, args.work_dir or WORK_DIRS['detection'])
    data_root = osp.join(ROOT, args.data_root or 'data/synthetic_jhmdb')
    ann = osp.join(data_root, 'annotations', f'jhmdb_split{DET_SPLIT}')
    if not osp.isfile(f'{ann}_GT.pkl'):
        print('generating the synthetic J-HMDB-layout dataset in '
              f'{data_root} and converting it (split {DET_SPLIT}, ground-'
              'truth boxes as proposals)')
        paths = generate_synthetic_jhmdb(data_root)
        convert_jhmdb(
            paths['gt_file'],
            paths['frames_dir'],
            data_root,
            split=DET_SPLIT,
            train_stride=DET_TRAIN_STRIDE)
    data_opts = [
        f'{split}_dataloader.dataset.data_prefix.img='
        f'{data_root}/videos' for split in ('train', 'val', 'test')
    ]
    for split, subset in (('train', 'train'), ('val', 'val'), ('test', 'val')):
        data_opts += [
            f'{split}_dataloader.dataset.ann_file={ann}_{subset}.csv',
            f'{split}_dataloader.dataset.proposal_file='
            f'{ann}_proposals_{subset}.pkl'
        ]
    # the metric's GT file: the base has one evaluator, VA-RED2 a list
    # (the metric, then the efficiency metric)
    gt_opts = [(f'{ev}_evaluator', f'.ann_file={ann}_GT.pkl')
               for ev in ('val', 'test')]
    # each model is tested once, by tools/test.py, after its training
    timing, wd_base, wd_dyn = train_and_test(
        DET_BASE_CFG,
        DET_DYN_CFG,
        wd,
        data_opts,
        [k + '.0' + v for k, v in gt_opts] + args.vared2_cfg_options,
        base_opts=[k + v for k, v in gt_opts],
        train_opts=['train_cfg.val_begin=1000000'])
    base_metrics = last_test_metrics(osp.join(wd_base, 'test'))
    dyn_metrics = last_test_metrics(osp.join(wd_dyn, 'test'))
    with open(osp.join(wd_dyn, 'test', 'vared2_efficiency.json')) as f:
        eff = json.load(f)
    summary = {}
    for key, name in (('frame_map', 'mAP/frameAP'), ('video_map',
                                                     'mAP/v_map@0.5')):
        summary[f'{key}_base'] = base_metrics[name]
        summary[f'{key}_vared2'] = dyn_metrics[name]
    summary.update(
        gflops_per_clip_base=eff['base_gflops_per_clip'],
        gflops_per_clip_vared2=eff['gflops_per_clip'],
        gflops_ratio=eff['gflops_ratio'],
        frame_map_chance=chance_frame_map(f'{ann}_val.csv'),
        proposals='ground-truth boxes')
    write_summary(wd, summary, timing, t_start)
    print('\n== VA-RED2 detection demo: synthetic J-HMDB layout, FastRCNN '
          'with a small SlowOnly, CPU ==')
    print('proposals: the ground-truth boxes; GFLOPs = multiply-adds / 1e9 '
          'per 8-frame clip (backbone + RoI head), realised with each '
          "clip's own choices")
    print('| model | frame-mAP@0.5 | video-mAP@0.5 | GFLOPs/clip |')
    print('|---|---|---|---|')
    print(f"| base | {summary['frame_map_base']:.2f} | "
          f"{summary['video_map_base']:.2f} | "
          f"{summary['gflops_per_clip_base']:.3f} |")
    print(f"| VA-RED2 | {summary['frame_map_vared2']:.2f} | "
          f"{summary['video_map_vared2']:.2f} | "
          f"{summary['gflops_per_clip_vared2']:.3f} "
          f"({summary['gflops_ratio']:.2f}x) |")
    print(f"guessing a class per box scores about "
          f"{summary['frame_map_chance']:.2f} frame-mAP; total time "
          f"{summary['total_s'] / 60:.1f} min "
          f"({', '.join(f'{k} {v:.0f}s' for k, v in timing.items())}); "
          f"summary: {osp.join(wd, 'summary.json')}")


def chance_frame_map(val_csv):
    """Expected frame-mAP@0.5 (in %) of guessing: each ground-truth box
    gets a class drawn uniformly at random. ``MultiSportsMetric`` keeps one
    class per box, so class ``c`` gets ``1/K`` of its boxes at precision
    ``share_c`` (its share of all boxes): AP ``share_c / K``."""
    labels = np.loadtxt(val_csv, delimiter=',', usecols=6, dtype=int, ndmin=1)
    shares = np.bincount(labels) / len(labels)
    return 100.0 * float((shares / len(shares)).mean())


def majority_miou(data_root, num_classes):
    """mIoU (in %) of predicting the most frequent class on every labelled
    validation pixel: its IoU is its pixel share, every other present
    class's 0, absent classes do not count (mmseg's nan-mean)."""
    from PIL import Image
    ann_dir = osp.join(data_root, 'annotations', 'validation')
    counts = {}
    for name in sorted(os.listdir(ann_dir)):
        values, n = np.unique(
            np.asarray(Image.open(osp.join(ann_dir, name))),
            return_counts=True)
        for v, c in zip(values.tolist(), n.tolist()):
            if v != 0:  # 0: unlabelled, ignored by the metric
                counts[v] = counts.get(v, 0) + c
    present = min(num_classes, len(counts))
    return 100.0 * max(counts.values()) / sum(counts.values()) / present


def last_test_metrics(test_dir):
    """The metrics ``tools/test.py`` wrote to its newest ``<stamp>.json``."""
    found = []
    for root, _, files in os.walk(test_dir):
        for name in files:
            if name.endswith('.json') and name[:8].isdigit():
                found.append(osp.join(root, name))
    if not found:
        raise FileNotFoundError(f'no metrics json of tools/test.py under '
                                f'{test_dir}')
    with open(max(found, key=osp.getmtime)) as f:
        return json.load(f)


if __name__ == '__main__':
    os.environ.setdefault('PYTHONUNBUFFERED', '1')
    main()
