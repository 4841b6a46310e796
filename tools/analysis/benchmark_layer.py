# Copyright (c) varedd_mm contributors. All rights reserved.
"""Time one base conv layer against its VA-RED² dynamic version at every
forced choice, on realistic R(2+1)D-18 and I3D-R50 layer shapes.

Base and dynamic layers share weights and run interleaved in one process
(median of the repeats), so speed-ups are ratios measured under the same
machine load. FLOPs are multiply-accumulates (MACs) of the layer, cheap
rebuild ops included; the gate is not run when a choice is forced, and its
own cost is reported as a share of the base layer.

Example::

    python tools/analysis/benchmark_layer.py --batch-sizes 1 8 \\
        --out work_dirs/benchmark_layer.json
"""
import argparse
import json
import os
import platform
import statistics
import time
from typing import Dict, List

import torch
import torch.nn as nn

import varedd_mm  # noqa: F401
from varedd_mm import VARED2Conv2plus1d, VARED2Conv3d, fixed_policy

# name: (type, C_in, C_out, kernel, padding, (T, H, W))
LAYERS = {
    # the reference layer of the foundation issue
    'conv3x3x3-128@8x28x28': ('conv3d', 128, 128, 3, 1, (8, 28, 28)),
    # R(2+1)D-18, 16x112x112 input: a (2+1)D conv of each stage
    'r2plus1d18-layer1@16x56x56': ('conv2plus1d', 64, 64, 3, 1, (16, 56, 56)),
    'r2plus1d18-layer2@8x28x28': ('conv2plus1d', 128, 128, 3, 1, (8, 28, 28)),
    'r2plus1d18-layer3@4x14x14': ('conv2plus1d', 256, 256, 3, 1, (4, 14, 14)),
    # I3D-R50, 32x224x224 input (temporal stride 2 in the stem): bottleneck
    # convs of layer1 and layer3
    'i3d-r50-layer1-3x1x1@16x56x56':
    ('conv3d', 64, 64, (3, 1, 1), (1, 0, 0), (16, 56, 56)),
    'i3d-r50-layer1-1x3x3@16x56x56':
    ('conv3d', 64, 64, (1, 3, 3), (0, 1, 1), (16, 56, 56)),
    'i3d-r50-layer3-3x1x1@4x14x14':
    ('conv3d', 1024, 256, (3, 1, 1), (1, 0, 0), (4, 14, 14)),
}


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument(
        '--layers',
        nargs='+',
        default=list(LAYERS),
        choices=list(LAYERS),
        help='layer shapes to time')
    parser.add_argument('--batch-sizes', nargs='+', type=int, default=[1, 8])
    parser.add_argument('--search-space', type=int, default=2, choices=[2, 3])
    parser.add_argument('--warmup', type=int, default=3)
    parser.add_argument('--repeats', type=int, default=10)
    parser.add_argument('--threads', type=int, default=None)
    parser.add_argument(
        '--out', default='work_dirs/benchmark_layer.json', help='JSON file')
    args = parser.parse_args()
    for name in ('warmup', 'repeats'):
        if getattr(args, name) < (0 if name == 'warmup' else 1):
            parser.error(f'--{name} must be >= {0 if name == "warmup" else 1}')
    if any(b < 1 for b in args.batch_sizes):
        parser.error('--batch-sizes must be >= 1')
    return args


def build(kind, cin, cout, kernel, padding, k):
    cfg = dict(search_space=k)
    if kind == 'conv3d':
        dyn = VARED2Conv3d(
            cin, cout, kernel, padding=padding, bias=False, dynamic_cfg=cfg)
        base = nn.Conv3d(cin, cout, kernel, padding=padding, bias=False)
        base.weight.data.copy_(dyn.weight.data)
    else:
        from mmaction.models.common import Conv2plus1d
        dyn = VARED2Conv2plus1d(
            cin, cout, kernel, padding=padding, bias=False, dynamic_cfg=cfg)
        base = Conv2plus1d(cin, cout, kernel, padding=padding, bias=False)
        base.load_state_dict(dyn.state_dict(), strict=False)
    return base.eval(), dyn.eval()


def time_interleaved(fns: Dict[str, callable], warmup: int,
                     repeats: int) -> Dict[str, float]:
    """Median seconds of each fn; the fns take turns in every repeat."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    samples: Dict[str, List[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            samples[key].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in samples.items()}


@torch.no_grad()
def bench_layer(name, batch, k, warmup, repeats):
    kind, cin, cout, kernel, padding, thw = LAYERS[name]
    base, dyn = build(kind, cin, cout, kernel, padding, k)
    x = torch.randn((batch, cin) + thw)
    choices = [(i, j) for i in range(k) for j in range(k)]

    def run_choice(c):

        def fn():
            with fixed_policy(dyn, *c):
                dyn(x)

        return fn

    fns = {'base': lambda: base(x)}
    fns.update({f'{i},{j}': run_choice((i, j)) for i, j in choices})
    times = time_interleaved(fns, warmup, repeats)
    table = dyn.macs_table(x.shape)
    full = table[(0, 0)]
    rows = []
    for i, j in choices:
        t = times[f'{i},{j}']
        rows.append(
            dict(
                layer=name,
                batch=batch,
                choice=[i, j],
                ms=1e3 * t,
                base_ms=1e3 * times['base'],
                speedup=times['base'] / t,
                flops_ratio=table[(i, j)] / full,
                gflops_per_clip=table[(i, j)] / 1e9))
    gate_share = dyn.gate_macs(x.shape) / full
    return rows, gate_share, full / 1e9


def main():
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    results = []
    gate = {}
    print(f'torch {torch.__version__}, {torch.get_num_threads()} threads, '
          f'{platform.processor() or platform.machine()}, '
          f'search space {args.search_space}; median of {args.repeats} '
          f'(warm-up {args.warmup}); GFLOPs = multiply-adds / 1e9')
    header = ('| layer | batch | choice (p_t, p_c) | base ms | dynamic ms | '
              'speed-up | FLOPs ratio |')
    print(header)
    print('|' + '---|' * 7)
    for name in args.layers:
        for batch in args.batch_sizes:
            rows, gate_share, base_gflops = bench_layer(
                name, batch, args.search_space, args.warmup, args.repeats)
            gate[name] = dict(
                gate_share_of_layer=gate_share,
                base_gflops_per_clip=base_gflops)
            for r in rows:
                print(f"| {name} | {batch} | ({r['choice'][0]}, "
                      f"{r['choice'][1]}) | {r['base_ms']:.1f} | "
                      f"{r['ms']:.1f} | {r['speedup']:.2f}x | "
                      f"{r['flops_ratio']:.3f} |")
            results.extend(rows)
    print('\ngate cost as a share of the base layer FLOPs:')
    for name, g in gate.items():
        print(f"  {name}: {100 * g['gate_share_of_layer']:.3f} %")
    out_dir = os.path.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(
            dict(
                torch=torch.__version__,
                threads=torch.get_num_threads(),
                machine=platform.machine(),
                search_space=args.search_space,
                warmup=args.warmup,
                repeats=args.repeats,
                rows=results,
                gate=gate),
            f,
            indent=2)
    print(f'\nwrote {args.out}')


if __name__ == '__main__':
    main()
