# Copyright (c) varedd_mm contributors. All rights reserved.
"""Why does a learned VA-RED² policy (not) adapt to the clip?

    python tools/analysis/policy_probe.py CONFIG CHECKPOINT \\
        --static-labels 0 1 2 3 [--split val] [--out probe.json]

Prints, per dynamic layer, the gates' soft probability of the full
temporal and channel options for the static classes and the others, with
the standard deviation over all clips, and top-1 / cross-entropy of each
group with every layer forced to each choice (what a reduction costs each
group in the task loss). With a multi-view test split, the probabilities
and their standard deviation are per video (views averaged). Forced
choices run with the BN statistics the checkpoint has (recalibrated for
its learned policy by VARED2RecalibrateBNHook): on a fine-tuned model they
measure that model, not what fine-tuning at that choice would reach.
Cross-entropy uses probabilities clipped at 1e-8 (at most 18.4). See
docs/policy.md for how to read it.
"""
import argparse
import json

from mmengine.config import DictAction

from varedd_mm.analysis import build_test_loader, load_model, quiet_mmengine
from varedd_mm.analysis.policy_probe import probe_policy


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
        help='the config\'s val or test dataloader')
    parser.add_argument('--out', default=None, help='write the JSON here')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value overrides of CONFIG (as in training)')
    return parser.parse_args(argv)


def _cell(group):
    return ' / '.join('-' if group[k] is None else f'{group[k]:.2f}'
                      for k in ('static', 'other'))


def main(argv=None):
    args = parse_args(argv)
    with quiet_mmengine():
        cfg, model = load_model(args.config, args.checkpoint, args.cfg_options)
    loader = build_test_loader(cfg, args.split)
    result = probe_policy(model, loader, args.static_labels)
    n = result['num_clips']
    print(f"clips: {n['static']} static, {n['other']} other; cells are "
          'static / other')
    print('| layer | P(temporal full) | std | P(channel full) | std |')
    print('|---|---|---|---|---|')
    for name, g in result['gates'].items():
        t, c = g['temporal_full'], g['channel_full']
        print(f"| {name} | {_cell(t)} | {t['std']:.3f} | {_cell(c)} | "
              f"{c['std']:.3f} |")
    print('\n| policy | top-1 | cross-entropy |')
    print('|---|---|---|')
    rows = [('learned', result['learned'])
            ] + [(f'forced ({k})', v) for k, v in result['forced'].items()]
    for name, r in rows:
        print(f"| {name} | {_cell(r['top1'])} | {_cell(r['ce'])} |")
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
