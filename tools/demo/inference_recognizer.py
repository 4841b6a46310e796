# Copyright (c) varedd_mm contributors. All rights reserved.
"""Recognise the action in one video with a (VA-RED²) recognizer: top-k
labels, the realised GFLOPs of every view and, with ``--policy``, the
choice every dynamic layer took for every view.

    python tools/demo/inference_recognizer.py CONFIG CHECKPOINT VIDEO \\
        [--label-map LABELS.txt] [--topk 5] [--policy] [--device cpu]
        [--fuse-conv-bn [--channels-last]]

It runs mmaction's ``init_recognizer`` / ``inference_recognizer``: the
config's test pipeline samples the views (clips x crops) of the video, the
learned gates choose per view, and each view costs what its choices cost
(multiply-adds / 1e9, gates and cheap ops included). A static (base)
recognizer prints its labels only; its GFLOPs come from
``tools/analysis/get_flops.py``. ``--fuse-conv-bn`` runs the fused
inference model (:func:`varedd_mm.fast_inference`, the execution
``tools/analysis/benchmark.py`` times; ``--channels-last`` also lays it
out channels-last): the same labels and choices to float rounding.
"""
import argparse
import logging
from collections import Counter

import torch
from mmengine.config import DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='recognizer config file')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('video', help='video file')
    parser.add_argument(
        '--label-map',
        default=None,
        help='text file, one class name a line (line i: label i); None: '
        'class indices')
    parser.add_argument(
        '--topk', type=int, default=5, help='number of labels to print')
    parser.add_argument(
        '--policy',
        action='store_true',
        help='print the choice (temporal, channel) of every dynamic layer '
        'for every view, and how often each choice was taken')
    parser.add_argument(
        '--device',
        default=None,
        help="torch device; None: 'cuda:0' if available, else 'cpu'")
    parser.add_argument(
        '--fuse-conv-bn',
        action='store_true',
        help='run the fused inference model (BN folded into the convs)')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='with --fuse-conv-bn: lay the model and its inputs out '
        'channels-last')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value overrides of the config (e.g. of test_pipeline)')
    args = parser.parse_args(argv)
    if args.topk < 1:
        parser.error('--topk must be >= 1')
    if args.channels_last and not args.fuse_conv_bn:
        parser.error('--channels-last goes with --fuse-conv-bn')
    return args


def read_labels(path, num_classes):
    if path is None:
        return [str(i) for i in range(num_classes)]
    with open(path) as f:
        labels = [line.strip() for line in f if line.strip()]
    if len(labels) != num_classes:
        raise SystemExit(f'--label-map {path} has {len(labels)} names, the '
                         f'model predicts {num_classes} classes')
    return labels


def print_policy(result):
    """Per layer: the choice of each view, and the share of each choice."""
    names = result.vared2_layer_names
    choices = result.vared2_choices.tolist()  # (layers, views, 2)
    width = max(len(n) for n in names)
    print(f'\nchoices (temporal, channel) per view; (0, 0) = full layer, '
          f'{len(names)} dynamic layers:')
    for name, per_view in zip(names, choices):
        views = ' '.join(f'({t}, {c})' for t, c in per_view)
        print(f'  {name:<{width}}  {views}')
    counts = Counter(tuple(c) for per_view in choices for c in per_view)
    total = sum(counts.values())
    shares = ', '.join(f'{k}: {100 * v / total:.1f} %'
                       for k, v in sorted(counts.items()))
    print(f'choice shares over layers and views: {shares}')


def main(argv=None):
    args = parse_args(argv)
    from mmaction.apis import inference_recognizer, init_recognizer
    from mmengine.config import Config

    import varedd_mm  # noqa: F401  (registers the VA-RED2 components)
    from varedd_mm.analysis import quiet_mmengine

    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    device = args.device or ('cuda:0' if torch.cuda.is_available() else 'cpu')
    # mmengine's log (deprecation notes of its file backends, the
    # checkpoint path) is not the answer: errors only
    with quiet_mmengine(logging.ERROR):
        model = init_recognizer(cfg, args.checkpoint, device=device)
        if args.fuse_conv_bn:
            varedd_mm.fast_inference(model, args.channels_last)
        result = inference_recognizer(model, args.video)

    prepared = getattr(model, '_vared2_fast_inference', None)
    if prepared is not None:  # (what fast_inference did to the model)
        print('fused inference model (BN folded into the convs' +
              (', channels-last)' if prepared else ')'))
    scores = result.pred_score.detach().cpu()
    labels = read_labels(args.label_map, scores.numel())
    k = min(args.topk, scores.numel())
    top = scores.topk(k)
    print(f'{args.video}: top-{k} labels')
    for rank, (score, idx) in enumerate(zip(top.values, top.indices), 1):
        print(f'  {rank}. {labels[idx]}: {score:.4f}')

    if 'vared2_gflops' not in result:
        print('static recognizer: no per-view GFLOPs recorded (see '
              'tools/analysis/get_flops.py)')
        return
    gflops = result.vared2_gflops.detach().cpu().double()
    base = float(result.vared2_base_gflops)
    views = ' '.join(f'{g:.3f}' for g in gflops.tolist())
    print(f'GFLOPs per view (realised, {gflops.numel()} views): {views}')
    print(f'mean {gflops.mean():.3f} GFLOPs per view, '
          f'{gflops.sum():.3f} per video; base model {base:.3f} per view '
          f'({gflops.mean() / base:.2f}x)')
    if args.policy:
        print_policy(result)


if __name__ == '__main__':
    main()
