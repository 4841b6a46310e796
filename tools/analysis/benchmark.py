# Copyright (c) varedd_mm contributors. All rights reserved.
"""Clips (or images) per second of a base model and its VA-RED² version on
the same inputs (CPU or GPU), batch 1 and 8, with warm-up and repeats.

    python tools/analysis/benchmark.py DYNAMIC_CONFIG \\
        --base-config BASE_CONFIG --shape 16 112 112 --choice 1 1 \\
        --batch-sizes 1 8 --out work_dirs/benchmark.json
    # segmentors: images of --shape H W, channel choice only
    python tools/analysis/benchmark.py DYNAMIC_SEG_CONFIG \\
        --base-config BASE_SEG_CONFIG --shape 512 512 --choice 0 1 \\
        --batch-sizes 1 4 --cfg-options model.pretrained=None

Recognizers run backbone + neck + head on clips; segmentors backbone +
decode head on images (what inference runs per image or slide window).

``--choice`` forces every gate (no gate runs); ``--gate-cost C`` lets the
gates choose per clip at realised cost ``C`` on the timed batch (biases
shifted, :func:`varedd_mm.analysis.calibrate_gates`: the grouped execution
of mixed choices, gates included, with any weights); ``--learned`` uses the
learned gates of ``--checkpoint`` (on random clips unless you pass real
ones, so it mostly measures the policy's cost, not its decisions). Without
``--base-config`` the base is the dynamic model forced to (0, 0), which runs
the base ops plus nothing else.

Three models take turns in every repeat, so the speed-ups are ratios
measured under the same load:

* ``base``: the base model as upstream runs it;
* ``base (same execution)``: the base model with the low-level changes the
  VA-RED² model runs with (BNs folded into the convs by
  :func:`varedd_mm.fuse_conv_bn`, convs through the same backend dispatch),
  so that "speed-up vs same execution" is what VA-RED² itself gains;
* ``dynamic``: the VA-RED² model, BN fused as well (``--no-fuse`` keeps its
  BNs), with its rebuild through the one-pass C++ kernel
  (``varedd_mm/ops/native.py``; ``VARED2_NATIVE=0`` runs the torch-op
  rebuild instead, which the JSON records as ``rebuild_kernel``).

In both fused models a ReLU that runs only after a conv's BN (mmcv
``ConvModule``) is applied by the conv (a oneDNN post-op, or as the
VA-RED² rebuild writes its output).

``--compiled-base`` adds a fourth: the upstream base compiled by
``torch.compile`` (inductor with freezing, static shapes, compiled per
batch size before the timing; channels-last with ``--channels-last``),
the base as well as PyTorch itself runs it, and VA-RED²'s speed-up
against it. Where ``torch.compile`` fails (no C++ compiler) the run goes
on without it and the JSON says why (``compiled_base_error``).

``--channels-last`` runs the last two channels-last
(:func:`varedd_mm.ops.to_channels_last`, inputs converted): oneDNN then runs
without reordering activations, which speeds up both, so it is a change of
execution: compare it with the "same execution" base.

GFLOPs are those of the unfused models (BN counted), per clip.

``--profile`` adds, per batch size, where one forward of the same-execution
base and of the VA-RED² model spends its time (``torch.profiler``, op self
times: convolutions, the VA-RED² layers' other work, everything else; see
:func:`varedd_mm.analysis.time_breakdown`) and the ceiling it implies
against the same-execution base: its time over (its non-conv time + its
conv time x the FLOPs ratio), i.e. the speed-up if VA-RED²'s convs cost
their FLOPs share and its rebuild cost nothing.
"""
import argparse
import contextlib
import copy
import json
import os
import os.path as osp
import platform
import statistics
import time

import torch
from mmengine.config import DictAction
from tqdm import tqdm

from varedd_mm import (clip_gflops, dynamic_layers, fixed_policy, fuse_conv_bn,
                       track_flops, untrack_flops)
from varedd_mm.analysis import (as_network, calibrate_gates, load_model,
                                time_breakdown)
from varedd_mm.ops import clip_policy, retain_freed_memory, to_channels_last
from varedd_mm.ops.native import load_native, native_error


def parse_args():
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('config', help='dynamic (VA-RED2) model config')
    parser.add_argument(
        '--base-config',
        default=None,
        help='static base model config; None: the dynamic model forced to '
        '(0, 0), which runs the base ops and nothing else')
    parser.add_argument(
        '--checkpoint',
        default=None,
        help='weights of the dynamic model (required by --learned); None: '
        'random initialisation, nothing downloaded')
    parser.add_argument(
        '--base-checkpoint',
        default=None,
        help='weights of --base-config; None: random initialisation')
    parser.add_argument(
        '--shape',
        type=int,
        nargs='+',
        default=None,
        help='T H W of a clip (recognizers, detectors; None: 16 112 112) or '
        'H W of an image (segmentors; None: 512 512)')
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        '--choice',
        type=int,
        nargs=2,
        default=None,
        metavar=('P_T', 'P_C'),
        help='force every gate to this choice (no gate runs); 1 1 when '
        'neither --choice nor --learned is given')
    group.add_argument(
        '--mixed',
        type=int,
        nargs='+',
        default=None,
        metavar='P',
        help='pairs P_T P_C: clip i of a batch takes pair i mod (number of '
        'pairs) in every layer, through the gates\' inference path (clips '
        'grouped by choice, as with learned gates); e.g. 0 0 0 1 1 0 1 1')
    group.add_argument(
        '--gate-cost',
        type=float,
        default=None,
        metavar='C',
        help='let the gates choose per clip, their biases shifted so that on '
        'the timed batch the realised cost is C (varedd_mm.analysis.'
        'calibrate_gates: a fraction of the clips takes half the frames / '
        'channels in each layer; any weights, nothing trained)')
    group.add_argument(
        '--learned',
        action='store_true',
        help="use the learned gates of --checkpoint (on random inputs: it "
        "measures the policy's cost, not its decisions on real clips)")
    parser.add_argument(
        '--batch-sizes',
        type=int,
        nargs='+',
        default=[1, 8],
        help='batch sizes to time, one row each')
    parser.add_argument(
        '--warmup',
        type=int,
        default=3,
        help='untimed forwards of each model before timing')
    parser.add_argument(
        '--seed',
        type=int,
        default=0,
        help='seed of the weights drawn at random (every weight a '
        'checkpoint does not give, such as the gates of --gate-cost), so '
        'that runs of the same command take the same choices')
    parser.add_argument(
        '--repeats',
        type=int,
        default=10,
        help='timed forwards of each model (base and dynamic take turns); '
        'the median is reported')
    parser.add_argument(
        '--device',
        default=None,
        help="torch device; None: 'cuda' if available, else 'cpu'")
    parser.add_argument(
        '--no-fuse',
        action='store_true',
        help='run the VA-RED2 model with its BNs (not folded)')
    parser.add_argument(
        '--channels-last',
        action='store_true',
        help='run the VA-RED2 model and the same-execution base '
        'channels-last')
    parser.add_argument(
        '--retain-freed-memory',
        action='store_true',
        help='CPU, glibc: let malloc keep freed memory for reuse '
        '(varedd_mm.ops.retain_freed_memory), for every model of the run; '
        'large activations then need no fresh pages per forward')
    parser.add_argument(
        '--compiled-base',
        action='store_true',
        help='also time the upstream base compiled by torch.compile '
        '(inductor with freezing: BNs folded, weights prepacked, layouts '
        'chosen by the compiler; static shapes, compiled once per batch '
        'size outside the timing) in the layout of the run: the base as '
        'well as PyTorch itself runs it; needs --base-config')
    parser.add_argument(
        '--profile',
        action='store_true',
        help='also profile one forward of the same-execution base and of '
        'the VA-RED2 model per batch size (time by kind of op, the '
        'speed-up ceiling it implies, and each dynamic layer\'s time '
        'against the base module of the same name; CPU)')
    parser.add_argument(
        '--out', default='work_dirs/benchmark.json', help='JSON output file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value overrides applied to both configs (pretrained '
        'weights are never fetched: the models are built without them)')
    parser.add_argument(
        '--vared2-cfg-options',
        nargs='+',
        action=DictAction,
        help='key=value overrides applied to the dynamic config only, after '
        '--cfg-options (e.g. model.backbone.dynamic_cfg.depthwise=True); '
        'without --base-config the base is the dynamic model at (0, 0), so '
        'they reach it too')
    args = parser.parse_args()
    if args.learned and not args.checkpoint:
        parser.error('--learned times the gates of a trained model: give '
                     'its --checkpoint (without one the gates are untrained '
                     'and the dynamic model runs the full choice, FLOPs '
                     'ratio 1.000)')
    if args.mixed is not None:
        if len(args.mixed) % 2 or any(c < 0 for c in args.mixed):
            parser.error('--mixed takes pairs of non-negative choices '
                         f'P_T P_C, got {args.mixed}')
        args.mixed = [
            tuple(args.mixed[k:k + 2]) for k in range(0, len(args.mixed), 2)
        ]
    elif args.gate_cost is not None:
        if not 0 < args.gate_cost <= 1:
            parser.error('--gate-cost must be in (0, 1], got '
                         f'{args.gate_cost}')
    elif args.choice is None and not args.learned:
        args.choice = [1, 1]
    if args.compiled_base and not args.base_config:
        parser.error('--compiled-base compiles the upstream base model: '
                     'give its --base-config')
    if args.repeats < 1 or args.warmup < 0:
        parser.error('--repeats must be >= 1 and --warmup >= 0')
    if any(b < 1 for b in args.batch_sizes):
        parser.error('--batch-sizes must be >= 1')
    return args


def build(config, checkpoint, options, device):
    _, model = load_model(config, checkpoint, options)
    net, dims = as_network(model)
    net.to(device)
    net.eval()
    return net, dims


def input_shape(shape, dims):
    if shape is None:
        return [16, 112, 112] if dims == 3 else [512, 512]
    if len(shape) != dims or any(s < 1 for s in shape):
        raise ValueError(
            f'--shape must be {"T H W" if dims == 3 else "H W"} (positive '
            f'ints) for this model, got {shape}')
    return list(shape)


def without_flops_hooks(net):
    """Drop the FLOPs records (``track_flops``, which a VA-RED² model
    attaches to itself) from a deep copy that is only timed: the base
    models carry none."""
    for module in list(net.modules()):
        untrack_flops(module)
    return net


def compiled_base(model, channels_last):
    """A copy of the upstream base compiled by ``torch.compile`` (inductor
    with freezing: parameters become constants, so BNs fold into the convs
    and conv weights are prepacked; static shapes), channels-last with
    ``channels_last``; the returned function compiles on its first call
    for each input shape."""
    import torch._inductor.config as inductor_config
    net = copy.deepcopy(model)
    if channels_last:
        to_channels_last(net)
    compiled = torch.compile(net, dynamic=False)

    def run(x):
        with inductor_config.patch(freezing=True):
            return compiled(x)

    return run


def sync(device):
    if device.type == 'cuda':
        torch.cuda.synchronize()


@torch.no_grad()
def main():
    args = parse_args()
    retained = args.retain_freed_memory and retain_freed_memory()
    if args.retain_freed_memory and not retained:
        print('--retain-freed-memory: not applied (needs Linux with glibc)')
    device = torch.device(
        args.device or ('cuda' if torch.cuda.is_available() else 'cpu'))
    torch.manual_seed(args.seed)
    dyn_options = {
        **(args.cfg_options or {}),
        **(args.vared2_cfg_options or {})
    }
    dyn, dims = build(args.config, args.checkpoint, dyn_options, device)
    if not dynamic_layers(dyn):
        raise ValueError(f'{args.config} has no VA-RED2 dynamic layers')
    args.shape = input_shape(args.shape, dims)
    base = None
    if args.base_config:
        base, base_dims = build(args.base_config, args.base_checkpoint,
                                args.cfg_options, device)
        if base_dims != dims:
            raise ValueError('--base-config is not the same kind of model '
                             f'as {args.config}')
    # one batch of random clips; batch size b times its first b clips
    inputs = torch.randn(
        (max(args.batch_sizes), 3) + tuple(args.shape),
        generator=torch.Generator().manual_seed(0)).to(device)
    calibration = None
    if args.gate_cost is not None:
        calibration = calibrate_gates(dyn, inputs, args.gate_cost)
    mode = ('learned gates' if args.learned else
            f'gates calibrated to realised cost {args.gate_cost} on the '
            f'largest batch ({calibration["fraction"]:.3f} of its clips '
            'take the reduced options per layer)' if calibration else
            f'clip i takes {args.mixed}[i mod {len(args.mixed)}]'
            if args.mixed else f'all gates forced to {tuple(args.choice)}')

    # timed copies; `dyn` (unfused, BN counted) gives the GFLOPs
    dyn_run = copy.deepcopy(dyn)
    without_flops_hooks(dyn_run)  # the copy is timed, not counted
    if not args.no_fuse:
        fuse_conv_bn(dyn_run)
    base_up = base
    base_same = fuse_conv_bn(
        without_flops_hooks(copy.deepcopy(base if base is not None else dyn)))
    if args.channels_last:
        to_channels_last(dyn_run)
        to_channels_last(base_same)
    layout = (
        torch.channels_last_3d
        if len(args.shape) == 3 else torch.channels_last)

    def forced(model, choice, channels_last=False):

        def run(x):
            if channels_last:
                x = x.contiguous(memory_format=layout)
            if choice is None:
                return model(x)
            if choice == 'mixed':
                with clip_policy(model, args.mixed):
                    return model(x)
            with fixed_policy(model, *choice):
                return model(x)

        return run

    dyn_choice = ('mixed' if args.mixed else None if
                  (args.learned or calibration) else args.choice)
    # the timed models' policies (a forced choice, the mixed clips) are set
    # once, as a user would, not entered and left around every timed
    # forward; `dyn`, which counts the FLOPs, takes them per call
    timed_policies = contextlib.ExitStack()
    if dyn_choice == 'mixed':
        timed_policies.enter_context(clip_policy(dyn_run, args.mixed))
    elif dyn_choice is not None:
        timed_policies.enter_context(fixed_policy(dyn_run, *dyn_choice))
    if base is None:
        # the base row: a copy of the dynamic model at (0, 0), without the
        # FLOPs hooks `dyn` carries, like every timed model
        base_up = without_flops_hooks(copy.deepcopy(dyn))
        timed_policies.enter_context(fixed_policy(base_up, 0, 0))
        timed_policies.enter_context(fixed_policy(base_same, 0, 0))
    runners = dict(
        base=forced(base_up, None),
        base_same=forced(base_same, None, args.channels_last),
        dynamic=forced(dyn_run, None, args.channels_last))
    compiled_error = None
    if args.compiled_base:
        runners['base_compiled'] = forced(
            compiled_base(base_up, args.channels_last), None,
            args.channels_last)

    rows = []
    with timed_policies:
        for batch in args.batch_sizes:
            x = inputs[:batch]
            compile_s = None
            if 'base_compiled' in runners:
                # compiled for this batch size, outside the timing
                t0 = time.perf_counter()
                try:
                    runners['base_compiled'](x)
                    compile_s = time.perf_counter() - t0
                except Exception as e:  # no C++ compiler, an inductor bug
                    compiled_error = f'{type(e).__name__}: {e}'
                    print('--compiled-base: torch.compile failed, the rows '
                          'go without it: '
                          f'{compiled_error.splitlines()[0]}')
                    del runners['base_compiled']
            for _ in range(args.warmup):
                for fn in runners.values():
                    fn(x)
            times = {key: [] for key in runners}
            for _ in tqdm(range(args.repeats), desc=f'batch {batch}'):
                for key, fn in runners.items():
                    sync(device)
                    t0 = time.perf_counter()
                    fn(x)
                    sync(device)
                    times[key].append(time.perf_counter() - t0)
            med = {k: statistics.median(v) for k, v in times.items()}
            # cost of what ran, per clip
            track_flops(dyn)
            forced(dyn, dyn_choice)(x)
            dyn_gflops = clip_gflops(dyn).mean().item()
            # distinct choices among the batch's clips, per dynamic layer
            groups = sum(
                len(set(map(tuple, layer.last_choice.tolist())))
                for _, layer in dynamic_layers(dyn)) / len(
                    dynamic_layers(dyn))
            # the timed (fused) model takes the choices counted here: its
            # outputs differ by float rounding, which could flip a gate whose
            # logits are nearly tied
            choices = [layer.last_choice for _, layer in dynamic_layers(dyn)]
            runners['dynamic'](x)
            same_choices = all(
                torch.equal(a, layer.last_choice)
                for a, (_, layer) in zip(choices, dynamic_layers(dyn_run)))
            with fixed_policy(dyn, 0, 0):
                dyn(x[:1])
                base_gflops = clip_gflops(dyn).item()
            untrack_flops(dyn)
            profiled = {}
            if args.profile:
                models = dict(base_same=base_same, dynamic=dyn_run)
                # each dynamic layer against the module of the same name
                # in the base (its plain conv), where there is one
                in_base = dict(base_same.named_modules())
                names = [n for n, _ in dynamic_layers(dyn_run) if n in in_base]
                for key in ('base_same', 'dynamic'):
                    profiled[key] = time_breakdown(
                        models[key], lambda: runners[key](x), layers=names)
                base_ms = profiled['base_same'].pop('layers_ms')
                dyn_ms = profiled['dynamic'].pop('layers_ms')
                profiled['layers'] = {
                    n: dict(base_same_ms=base_ms[n], dynamic_ms=dyn_ms[n])
                    for n in names
                }
                b = profiled['base_same']
                profiled['ceiling_same_execution'] = round(
                    b['total_ms'] /
                    (b['other_ms'] + b['dynamic_other_ms'] + b['conv_ms'] *
                     (dyn_gflops / base_gflops)), 3)
            rows.append(
                dict(
                    batch=batch,
                    base_clips_per_s=batch / med['base'],
                    base_same_clips_per_s=batch / med['base_same'],
                    dynamic_clips_per_s=batch / med['dynamic'],
                    speedup=med['base'] / med['dynamic'],
                    speedup_same_execution=med['base_same'] / med['dynamic'],
                    base_gflops_per_clip=base_gflops,
                    dynamic_gflops_per_clip=dyn_gflops,
                    flops_ratio=dyn_gflops / base_gflops,
                    **(dict(
                        base_compiled_clips_per_s=batch / med['base_compiled'],
                        speedup_compiled_base=med['base_compiled'] /
                        med['dynamic'],
                        compile_s=compile_s)
                       if 'base_compiled' in med else {}),
                    choice_groups_per_layer=groups,
                    timed_model_same_choices=same_choices,
                    **(dict(profile=profiled) if profiled else {})))
    print(f'{osp.basename(args.config)}: {mode}; input {args.shape}; '
          f'device {device}; torch {torch.__version__}, '
          f'{torch.get_num_threads()} threads; median of {args.repeats}')
    fused = 'BN unfused' if args.no_fuse else 'BN fused'
    # the kernel runs in fused models on the CPU only
    kernel = (not args.no_fuse and device.type == 'cpu'
              and load_native() is not None)
    if not args.no_fuse:
        fused += (', one-pass rebuild kernel'
                  if kernel else ', torch-op rebuild')
    if args.channels_last:
        fused += ', channels-last'
    if retained:
        fused += ', freed memory retained'
    print(f'| batch | base clip/s | base clip/s, same execution | VA-RED2 '
          f'clip/s ({fused}) | speed-up vs base | vs same execution | base '
          'GFLOPs | VA-RED2 GFLOPs | FLOPs ratio | choice groups per '
          'layer |')
    print('|---|---|---|---|---|---|---|---|---|---|')
    for r in rows:
        print(f"| {r['batch']} | {r['base_clips_per_s']:.2f} | "
              f"{r['base_same_clips_per_s']:.2f} | "
              f"{r['dynamic_clips_per_s']:.2f} | {r['speedup']:.2f}x | "
              f"{r['speedup_same_execution']:.2f}x | "
              f"{r['base_gflops_per_clip']:.2f} | "
              f"{r['dynamic_gflops_per_clip']:.2f} | "
              f"{r['flops_ratio']:.3f} | "
              f"{r['choice_groups_per_layer']:.2f} |")
    if any('speedup_compiled_base' in r for r in rows):
        print('\n| batch | base clip/s, torch.compile | compile s | VA-RED2 '
              'speed-up vs the compiled base |')
        print('|---|---|---|---|')
        for r in rows:
            if 'speedup_compiled_base' in r:
                print(f"| {r['batch']} | {r['base_compiled_clips_per_s']:.2f}"
                      f" | {r['compile_s']:.1f} | "
                      f"{r['speedup_compiled_base']:.2f}x |")
    if args.profile:
        print('\nOne forward, op self time in ms (torch.profiler): conv | '
              'VA-RED2 layers beyond their convs | other ops | total; '
              'ceiling = speed-up vs same execution if the VA-RED2 convs '
              'cost their FLOPs share and the rebuild nothing')
        print('| batch | model | conv | VA-RED2 layers, non-conv | other | '
              'total | largest other ops | largest VA-RED2 non-conv ops |')
        print('|---|---|---|---|---|---|---|---|')

        def largest(times):
            return ', '.join(f'{n.replace("aten::", "")} {ms:.1f}'
                             for n, ms in list(times.items())[:4])

        for r in rows:
            for key in ('base_same', 'dynamic'):
                p = r['profile'][key]
                print(f"| {r['batch']} | {key} | {p['conv_ms']:.1f} | "
                      f"{p['dynamic_other_ms']:.1f} | {p['other_ms']:.1f} | "
                      f"{p['total_ms']:.1f} | {largest(p['other_top'])} | "
                      f"{largest(p['dynamic_other_top'])} |")
            print(f"| {r['batch']} | ceiling vs same execution | "
                  f"{r['profile']['ceiling_same_execution']:.2f}x | | | | | |")
    out_dir = osp.dirname(args.out)
    if out_dir:
        os.makedirs(out_dir, exist_ok=True)
    with open(args.out, 'w') as f:
        json.dump(
            dict(
                config=args.config,
                base_config=args.base_config,
                cfg_options=args.cfg_options,
                vared2_cfg_options=args.vared2_cfg_options,
                mode=mode,
                bn_fused=not args.no_fuse,
                channels_last=args.channels_last,
                retain_freed_memory=bool(retained),
                # the fused VA-RED2 model's rebuild: the one-pass C++ kernel
                # (varedd_mm/ops/native.py) or torch ops (VARED2_NATIVE=0,
                # or the kernel could not be built: native_error)
                rebuild_kernel=kernel,
                rebuild_kernel_error=native_error(),
                compiled_base=args.compiled_base,
                compiled_base_error=compiled_error,
                shape=args.shape,
                device=str(device),
                torch=torch.__version__,
                threads=torch.get_num_threads(),
                machine=platform.machine(),
                repeats=args.repeats,
                warmup=args.warmup,
                seed=args.seed,
                rows=rows),
            f,
            indent=2)
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
