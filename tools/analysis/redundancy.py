# Copyright (c) varedd_mm contributors. All rights reserved.
"""Redundancy analysis of a trained video model (Table 12 of the paper).

Runs the model over the config's test set and reports, per layer and along
the temporal and the channel dimension, the correlation coefficient (CC),
the RMSE and the redundancy proportion (RP) of its feature maps, averaged
over all clips (and per class)::

    python tools/analysis/redundancy.py CONFIG CHECKPOINT \\
        [--num-videos 500] [--pairing adjacent] \\
        [--cc-thr 0.85] [--rmse-thr 0.001] [--rmse-rule above] \\
        [--out work_dirs/redundancy.json]

Definitions: ``varedd_mm/analysis/redundancy.py``. The default RP reading
is the caption of Table 12 of the paper read literally (``CC > 0.85`` and
``RMSE > 0.001``); ``--rmse-rule below`` is the other reading. Layers: the
outputs of the backbone's ``ConvModule`` blocks (conv + BN + activation) by
default, ``--types`` / ``--layers`` choose others. A VA-RED2 (dynamic)
config is analysed as its base model (every gate forced to the full
choice).
Compare Moments-in-Time and Kinetics-400 models by running it on both.
"""
import argparse
import json
import os
import os.path as osp
import re

import torch
from mmengine.config import DictAction

from varedd_mm import dynamic_layers, fixed_policy
from varedd_mm.analysis import build_test_loader, load_model
from varedd_mm.analysis.redundancy import (DIMS, PAIRINGS, RMSE_RULES,
                                           RedundancyMeter)


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='config of the trained model')
    parser.add_argument('checkpoint', help='checkpoint of the trained model')
    parser.add_argument(
        '--num-videos',
        type=int,
        default=0,
        help='analyse this many test videos (0: all of them)')
    parser.add_argument(
        '--dims',
        nargs='+',
        choices=DIMS,
        default=list(DIMS),
        help='dimensions along which feature maps are split into tensors')
    parser.add_argument(
        '--pairing',
        choices=PAIRINGS,
        default='adjacent',
        help="'adjacent': tensor i vs i+1; 'nearest': vs its most "
        'correlated other tensor')
    parser.add_argument(
        '--cc-thr',
        type=float,
        default=0.85,
        help='correlation threshold of a redundant tensor')
    parser.add_argument(
        '--rmse-thr',
        type=float,
        default=1e-3,
        help='RMSE threshold of a redundant tensor (direction: --rmse-rule)')
    parser.add_argument(
        '--rmse-rule',
        choices=RMSE_RULES,
        default='above',
        help="'above': CC and RMSE both above their thresholds (the caption "
        "of Table 12 of the paper read literally); 'below': CC above, RMSE "
        'below')
    parser.add_argument(
        '--types',
        nargs='+',
        default=['ConvModule'],
        help='class names of the backbone modules whose outputs are '
        'analysed')
    parser.add_argument(
        '--layers',
        default=None,
        help='regular expression the module names must match (search)')
    parser.add_argument(
        '--label-map',
        default=None,
        help='text file, one class name a line (line i: label i), for the '
        'per-class table')
    parser.add_argument('--out', default=None, help='JSON output file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value overrides of the config')
    args = parser.parse_args()
    if args.num_videos < 0:
        parser.error('--num-videos must be >= 0 (0: all)')
    return args


def select_modules(model, types, pattern):
    """Backbone modules whose outputs are analysed, in forward order."""
    regex = re.compile(pattern) if pattern else None
    chosen = [(name, m) for name, m in model.backbone.named_modules()
              if type(m).__name__ in types and (
                  regex is None or regex.search('backbone.' + name))]
    if not chosen:
        raise ValueError(f'no backbone module of types {types} matches '
                         f'--layers {pattern!r}')
    return [('backbone.' + n, m) for n, m in chosen]


@torch.no_grad()
def analyse(model, loader, modules, meter, num_videos):
    from tqdm import tqdm
    current = {}

    def make_hook(name):

        def hook(module, inputs, output):
            if isinstance(output, torch.Tensor) and output.dim() == 5:
                meter.update(name, output, current.get('labels'))

        return hook

    handles = [m.register_forward_hook(make_hook(n)) for n, m in modules]
    seen = 0
    total = num_videos or len(loader.dataset)
    bar = tqdm(total=total, desc='videos')
    try:
        for batch in loader:
            data = model.data_preprocessor(batch, False)
            inputs, samples = data['inputs'], data['data_samples']
            take = min(len(samples), total - seen)
            inputs, samples = inputs[:take], samples[:take]
            views = inputs.shape[1]
            labels = torch.tensor([
                int(s.gt_label.reshape(-1)[0]) for s in samples
            ]).repeat_interleave(views)
            current['labels'] = labels
            model.extract_feat(inputs, test_mode=True)
            seen += take
            bar.update(take)
            if seen >= total:
                break
    finally:
        bar.close()
        for h in handles:
            h.remove()
    return seen


def main():
    args = parse_args()
    meter = RedundancyMeter(
        dims=args.dims,
        pairing=args.pairing,
        cc_thr=args.cc_thr,
        rmse_thr=args.rmse_thr,
        rmse_rule=args.rmse_rule)
    cfg, model = load_model(args.config, args.checkpoint, args.cfg_options)
    modules = select_modules(model, args.types, args.layers)
    loader = build_test_loader(cfg)
    if dynamic_layers(model):
        with fixed_policy(model, 0, 0):
            seen = analyse(model, loader, modules, meter, args.num_videos)
    else:
        seen = analyse(model, loader, modules, meter, args.num_videos)
    result = dict(
        config=args.config, checkpoint=args.checkpoint, num_videos=seen)
    result.update(meter.summary())

    def fmt(v, spec):
        return '-' if v is None else format(v, spec)

    head = ['layer']
    for d in args.dims:
        head += [f'{d} CC', f'{d} RMSE', f'{d} RP']
    print('| ' + ' | '.join(head) + ' |')
    print('|' + '---|' * len(head))
    for layer, per_dim in result['layers'].items():
        row = [layer]
        for d in args.dims:
            st = per_dim.get(d, {})
            row += [
                fmt(st.get('cc'), '.3f'),
                fmt(st.get('rmse'), '.4f'),
                fmt(st.get('rp'), '.3f')
            ]
        print('| ' + ' | '.join(row) + ' |')
    names = None
    if args.label_map:
        with open(args.label_map) as f:
            names = [line.strip() for line in f if line.strip()]
        too_high = [c for c in result['by_class'] if int(c) >= len(names)]
        if too_high:
            raise ValueError(f'--label-map {args.label_map} names '
                             f'{len(names)} classes; the data has labels '
                             f'{too_high}')
    if result['by_class']:
        print('\nper class, mean over the layers that have a value:')
        print('| class | ' + ' | '.join(f'{d} CC | {d} RP'
                                        for d in args.dims) + ' |')
        print('|' + '---|' * (1 + 2 * len(args.dims)))
        for label, layers in result['by_class'].items():
            row = [names[int(label)] if names else label]
            for d in args.dims:
                for stat in ('cc', 'rp'):
                    vals = [
                        v[d][stat] for v in layers.values()
                        if d in v and v[d][stat] is not None
                    ]
                    row.append(
                        fmt(sum(vals) / len(vals) if vals else None, '.3f'))
            print('| ' + ' | '.join(row) + ' |')
    print(f"{seen} videos; RP: CC > {args.cc_thr} and RMSE "
          f"{'>' if args.rmse_rule == 'above' else '<'} {args.rmse_thr}, "
          f'{args.pairing} pairing')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=2)
        print(f'written to {args.out}')


if __name__ == '__main__':
    main()
