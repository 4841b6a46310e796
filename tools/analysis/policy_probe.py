# Copyright (c) varedd_mm contributors. All rights reserved.
"""Why does a learned VA-RED² policy (not) adapt to the clip?

    python tools/analysis/policy_probe.py CONFIG CHECKPOINT \\
        --static-labels 0 1 2 3 [--split val] [--recalibrate-bn N] \\
        [--per-layer T,C] [--gate-gradients N] [--out probe.json]

Prints, per dynamic layer, the gates' soft probability of the full
temporal and channel options for the static classes and the others, with
the standard deviation over all clips, and top-1 / cross-entropy of each
group with every layer forced to each choice (what a reduction costs each
group in the task loss). With a multi-view test split, the probabilities
and their standard deviation are per video (views averaged). Forced
choices run with the BN statistics the checkpoint has (recalibrated for
its learned policy by VARED2RecalibrateBNHook), unless --recalibrate-bn N
re-estimates them for each forced choice on N training batches; either
way they measure the fine-tuned weights, not what fine-tuning at that
choice would reach.
Cross-entropy uses probabilities clipped at 1e-8 (at most 18.4). See
docs/policy.md for how to read it.
"""
import argparse
import functools
import itertools
import json

from mmengine.config import DictAction
from mmengine.runner import set_random_seed

from varedd_mm.analysis import (build_loader, build_test_loader, load_model,
                                quiet_mmengine)
from varedd_mm.analysis.policy_probe import (gate_gradients, gradient_summary,
                                             probe_policy)
from varedd_mm.engine.hooks import inference_forward
from varedd_mm.ops import recalibrate_bn


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='VA-RED2 recognizer config')
    parser.add_argument('checkpoint', help='its trained weights')
    parser.add_argument(
        '--static-labels',
        type=int,
        nargs='+',
        required=True,
        help='labels of the static group (the others form the second)')
    parser.add_argument(
        '--split',
        choices=['val', 'test'],
        default='val',
        help='the config\'s val or test dataloader (the synthetic '
        'benchmarks: val 1 clip per video, test 2)')
    parser.add_argument(
        '--recalibrate-bn',
        type=int,
        default=0,
        metavar='N',
        help='re-estimate the BN statistics for each forced choice on the '
        'same N training batches (the config\'s train dataloader) before '
        'measuring it; 0 measures forced choices with the checkpoint\'s '
        'statistics, those of its learned policy')
    parser.add_argument(
        '--per-layer',
        default=None,
        metavar='T,C',
        help='also force each dynamic layer alone to choice T,C (e.g. 1,0), '
        'the others keeping their learned gates, and print what that costs '
        'each group')
    parser.add_argument(
        '--gate-gradients',
        type=int,
        default=0,
        metavar='N',
        help='also back-propagate the task loss and the efficiency loss '
        'separately to the gates on N training batches (training forward of '
        'the config) and print, per layer and group, how much each pushes '
        'the gate towards its reduced options')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='random seed (training batches: order and crops), so that a '
        'rerun draws the same clips')
    parser.add_argument('--out', default=None, help='write the JSON here')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value overrides of CONFIG (as in training)')
    args = parser.parse_args(argv)
    if args.gate_gradients < 0:
        parser.error('--gate-gradients must be >= 0 (training batches), got '
                     f'{args.gate_gradients}')
    if args.recalibrate_bn < 0:
        parser.error('--recalibrate-bn must be >= 0 (training batches), got '
                     f'{args.recalibrate_bn}')
    if args.per_layer is not None:
        try:
            t, c = (int(v) for v in args.per_layer.split(','))
        except ValueError:
            parser.error('--per-layer takes a choice T,C of two ints (e.g. '
                         f'1,0), got {args.per_layer!r}')
        args.per_layer = (t, c)
    return args


def _recalibrate(model, batches):
    recalibrate_bn(model, batches, forward=inference_forward)


def _minus(group, reference):
    """Per-group difference (``None`` where a group has no clips)."""
    return {
        k: None if group[k] is None else group[k] - reference[k]
        for k in group
    }


def _cell(group, digits=2):
    return ' / '.join('-' if group[k] is None else f'{group[k]:.{digits}f}'
                      for k in ('static', 'other'))


def main(argv=None):
    args = parse_args(argv)
    set_random_seed(args.seed)
    with quiet_mmengine():
        cfg, model = load_model(args.config, args.checkpoint, args.cfg_options)
    loader = build_test_loader(cfg, args.split)
    recalibrate = None
    if args.recalibrate_bn:
        if 'train_dataloader' not in cfg:
            raise ValueError(f'--recalibrate-bn needs a train_dataloader in '
                             f'{args.config}')
        # the same batches (crops included) for every forced choice
        batches = list(
            itertools.islice(build_loader(cfg, 'train'), args.recalibrate_bn))
        recalibrate = functools.partial(_recalibrate, batches=batches)
    result = probe_policy(
        model,
        loader,
        args.static_labels,
        recalibrate=recalibrate,
        layer_choice=args.per_layer)
    n = result['num_clips']
    print(f"clips: {n['static']} static, {n['other']} other; cells are "
          'static / other')
    print('| layer | P(temporal full) | std | temporal full chosen | '
          'P(channel full) | std | channel full chosen |')
    print('|---|---|---|---|---|---|---|')
    for name, g in result['gates'].items():
        t, c = g['temporal_full'], g['channel_full']
        tc, cc = g['temporal_chosen_full'], g['channel_chosen_full']
        print(f"| {name} | {_cell(t)} | {t['std']:.3f} | {_cell(tc)} | "
              f"{_cell(c)} | {c['std']:.3f} | {_cell(cc)} |")
    print('\n| policy | top-1 | cross-entropy | GFLOPs/view |')
    print('|---|---|---|---|')
    rows = [('learned', result['learned'])
            ] + [(f'forced ({k})', v) for k, v in result['forced'].items()]
    for name, r in rows:
        gflops = '-' if r['gflops'] is None else _cell(r['gflops'], 3)
        print(f"| {name} | {_cell(r['top1'])} | {_cell(r['ce'])} | "
              f'{gflops} |')
    if args.per_layer is not None:
        learned = result['learned']
        print(f'\n| layer alone at {args.per_layer} | top-1 | cross-entropy '
              '| Δ cross-entropy | Δ GFLOPs/view |')
        print('|---|---|---|---|---|')
        for name, r in result['per_layer'].items():
            gflops = '-' if r['gflops'] is None else _cell(
                _minus(r['gflops'], learned['gflops']), 3)
            print(f"| {name} | {_cell(r['top1'])} | {_cell(r['ce'])} | "
                  f"{_cell(_minus(r['ce'], learned['ce']))} | {gflops} |")
    if args.gate_gradients:
        if 'train_dataloader' not in cfg:
            raise ValueError(f'--gate-gradients needs a train_dataloader in '
                             f'{args.config}')
        grads = gate_gradients(
            model,
            itertools.islice(build_loader(cfg, 'train'), args.gate_gradients),
            args.static_labels)
        result['gate_gradients'] = grads
        n = grads['num_clips']
        print(f"\nWhat reaches the gates in training ({n['static']} static, "
              f"{n['other']} other training clips): per clip, how far a "
              'gradient step moves each gate towards its reduced options '
              '(g_full - mean g_reduced, x batch size; > 0: towards '
              'reducing); cells are static / other')
        print('(z: the static - other difference of the task part over its '
              'standard error; |z| < 2 is no evidence of a difference)')
        print('| layer | temporal: task | z | temporal: efficiency | channel: '
              'task | z | channel: efficiency |')
        print('|---|---|---|---|---|---|---|')
        for name, dims in grads['layers'].items():
            cells = []
            for dim in ('temporal', 'channel'):
                g = dims.get(dim)
                z = None if g is None else g['task_difference_z']
                cells += (['-', '-', '-'] if g is None else [
                    _cell(g['task'], 4), '-' if z is None else f'{z:+.1f}',
                    _cell(g['efficiency'], 4)
                ])
            print(f"| {name} | {' | '.join(cells)} |")
        summary = gradient_summary(grads)
        print(f"{summary['dimensions']} gate dimensions: |z| > 2 in "
              f"{summary['z_above_2']}, largest |z| "
              f"{summary['largest_abs_z']:.1f}, z > 0 in "
              f"{summary['z_positive']}; per-clip spread of the task push "
              'over the mean efficiency push (median over the gates): '
              f"{summary['median_spread_over_efficiency']:.1f}")
        grads['summary'] = summary
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
