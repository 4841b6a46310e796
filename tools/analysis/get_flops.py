# Copyright (c) varedd_mm contributors. All rights reserved.
"""GFLOPs per clip or image (multiply-adds / 1e9) of a model from its
config.

Fixed choice (every dynamic layer forced to (p_t, p_c)), on one clip::

    python tools/analysis/get_flops.py CONFIG --shape 16 112 112 --choice 1 1

Segmentors take an image shape (backbone + decode head, one forward)::

    python tools/analysis/get_flops.py SEG_CONFIG --shape 512 512 \\
        --choice 0 1 --cfg-options model.pretrained=None

Realised, averaged over N clips of the config's test set, each clip with
the choices its learned gates take::

    python tools/analysis/get_flops.py CONFIG --checkpoint CKPT \\
        --num-clips 100

For a static (base) config it prints mmengine's count. For a dynamic
config it also prints the base model's GFLOPs (every gate forced to (0, 0),
no gate: the same ops as the base) and checks it against mmengine's
counter. Without ``--shape`` the input is the one the config validates at
(``clip_len`` and crop size of its validation pipeline; a segmentor's
``data_preprocessor.size``). Nothing is downloaded: ImageNet / Kinetics
initialisations in the config are dropped (``--checkpoint`` gives trained
weights), and only the answer is printed.
"""
import argparse
import json
import logging

import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import DictAction

from varedd_mm import clip_gflops, dynamic_layers, fixed_policy, track_flops
from varedd_mm.analysis import (as_network, build_test_loader,
                                default_input_shape, load_model,
                                quiet_mmengine)


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='model config file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=None,
        help='T H W of a clip (recognizers, detectors) or H W of an image '
        '(segmentors); None: the input the config validates at (clip_len '
        'and last crop of its validation pipeline; data_preprocessor.size '
        'of a segmentor)')
    parser.add_argument(
        '--choice',
        type=int,
        nargs=2,
        default=None,
        metavar=('P_T', 'P_C'),
        help='force every dynamic layer to this choice (dynamic configs)')
    parser.add_argument(
        '--checkpoint',
        default=None,
        help='weights to load (needed for --num-clips: the learned gates); '
        'None: random initialisation, nothing downloaded')
    parser.add_argument(
        '--num-clips',
        type=int,
        default=0,
        help='realised GFLOPs averaged over this many test clips of the '
        "config's test set (dynamic recognizers; 0: off)")
    parser.add_argument('--out', default=None, help='JSON output file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value overrides of the config')
    args = parser.parse_args()
    if args.num_clips < 0:
        parser.error('--num-clips must be >= 0')
    if args.shape is not None and any(s < 1 for s in args.shape):
        parser.error('--shape values must be positive')
    return args


def mmengine_gflops(model, clip):
    # gates, cheap ops and training-only heads are never called under a
    # forced choice at test time: no warning listing each of them; pooling
    # and additions are not counted (mmengine's convention), no warning
    # listing those operators either
    counter = FlopAnalyzer(model, (clip, )).uncalled_modules_warnings(False)
    with quiet_mmengine(logging.ERROR):
        return counter.total() / 1e9


def shape_text(shape):
    return 'x'.join(str(s) for s in [1, 3] + list(shape))


@torch.no_grad()
def realised(model, cfg, num_clips):
    from tqdm import tqdm
    loader = build_test_loader(cfg)
    values = []
    bar = tqdm(total=num_clips, desc='clips')
    for batch in loader:
        data = model.recognizer.data_preprocessor(batch, False)
        inputs = data['inputs']
        clips = inputs.reshape((-1, ) + inputs.shape[2:])
        model(clips)
        got = clip_gflops(model)[:num_clips - len(values)]
        values.extend(got.tolist())
        bar.update(len(got))
        if len(values) >= num_clips:
            break
    bar.close()
    return values


def main():
    args = parse_args()
    cfg, task_model = load_model(args.config, args.checkpoint,
                                 args.cfg_options)
    model, dims = as_network(task_model)
    model.eval()
    source = '--shape'
    if args.shape is None:
        try:
            args.shape, source = default_input_shape(cfg, dims)
        except ValueError as e:
            raise SystemExit(f'{args.config}: {e} with --shape '
                             f'{"T H W" if dims == 3 else "H W"}')
    if len(args.shape) != dims:
        raise SystemExit(f'--shape must be {"T H W" if dims == 3 else "H W"} '
                         f'for this model, got {args.shape}')
    if args.num_clips and dims != 3:
        raise SystemExit('--num-clips (realised GFLOPs over the test set) '
                         'is for recognizers; for segmentors run '
                         'tools/test.py, whose VARED2EfficiencyMetric reports '
                         'them per image')
    track_flops(model)
    clip = torch.randn((1, 3) + tuple(args.shape))
    dynamic = bool(dynamic_layers(model))
    result = dict(
        config=args.config,
        shape=args.shape,
        shape_source=source,
        unit='GMACs')
    per = 'clip' if dims == 3 else 'image'
    # every parameter of the model, training-only heads included (the
    # convention of mmaction's model zoo)
    result['params_m'] = sum(p.numel() for p in model.parameters()) / 1e6
    print(f'input {shape_text(args.shape)} ({source}); '
          f"{result['params_m']:.2f} M parameters")
    if not dynamic:
        # one forward first: some heads build modules in their first forward
        # (TPN's average pooling), which the tracing counter cannot follow
        with torch.no_grad():
            model(clip)
        result['gflops'] = mmengine_gflops(model, clip)
        print(f"{args.config}: {result['gflops']:.3f} GFLOPs per {per} "
              '(mmengine counter)')
    else:
        with fixed_policy(model, 0, 0):
            model(clip)
            base = clip_gflops(model).item()
            ref = mmengine_gflops(model, clip)
        result.update(base_gflops=base, base_gflops_mmengine=ref)
        print(f'base model: {base:.3f} GFLOPs per {per} (mmengine counter: '
              f'{ref:.3f})')
        if args.choice is not None:
            with fixed_policy(model, *args.choice):
                model(clip)
                val = clip_gflops(model).item()
            result.update(choice=args.choice, gflops=val)
            print(f'choice {tuple(args.choice)}: {val:.3f} GFLOPs per {per} '
                  f'({val / base:.3f} of base)')
        if args.num_clips:
            values = realised(model, cfg, args.num_clips)
            mean = sum(values) / len(values)
            result.update(realised_gflops_per_clip=mean, num_clips=len(values))
            print(f'realised over {len(values)} test clips: {mean:.3f} '
                  f'GFLOPs per clip ({mean / base:.3f} of base)')
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)


if __name__ == '__main__':
    main()
