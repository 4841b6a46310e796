# Copyright (c) varedd_mm contributors. All rights reserved.
"""VA-RED² against static filter pruning at matched GFLOPs (Table 7 of the
paper at demo scale) on the harder synthetic benchmark, on the CPU.

    python tools/run_hard_benchmark.py [--work-dir work_dirs/hard] \\
        [--budgets 0.45 0.6 0.75] [--methods l1 fpgm slimming]

Steps, each a plain ``tools/`` call printed before it runs (so any can be
re-run by hand), in ``WORK_DIR``:

1. generate the benchmark (``varedd_mm/datasets/synthetic_motion_hard.py``)
   in ``--data-root`` unless it is there;
2. ``base/``: train the base R(2+1)D-18 from scratch and test it;
3. ``vared2_<budget>/``: for every budget, fine-tune VA-RED² from the base
   with ``model.efficiency_loss.target=<budget>`` and test it (realised
   GFLOPs per clip of each test clip's own choices);
4. ``prune_<method>_<budget>/``: for every method and every budget in
   ``--prune-budgets`` (default: all), prune the base with
   ``tools/analysis/prune_static.py`` to the GFLOPs per clip the VA-RED²
   model of that budget realised, fine-tune it with the VA-RED² config's
   schedule and seed (same epochs, optimiser, learning rate and
   ``randomness``) and test it;
5. ``base_finetune/`` (with ``--finetune-base``): fine-tune the base
   itself, unpruned, with the same schedule and seed and test it: what the
   extra epochs alone give, the reference both VA-RED² and the pruned
   models are trained against;
6. write ``summary.json``, ``tables.md`` and ``accuracy_vs_gflops.png``.

A step whose outputs exist is not run again (``--rerun`` runs all), so an
interrupted run resumes where it stopped. ``--base-checkpoint`` starts from
base weights trained elsewhere, ``--base-cfg-options`` changes the base
config where the script uses it (training and testing the base, pruning
it; not the VA-RED² fine-tuning), ``--vared2-cfg-options`` changes the
VA-RED² recipe (e.g. an ablation of a gate option in another
``--work-dir``). About 45 minutes on 2 CPU cores with the defaults and a
12-epoch base; the base config now trains for 20 epochs, which adds about
five minutes (not timed as a whole).
"""
import argparse
import json
import os
import os.path as osp
import sys
import time

HERE = osp.dirname(osp.abspath(__file__))
sys.path.insert(0, HERE)
import run_default as demo  # noqa: E402

HARD_BASE_CFG = osp.join(
    demo.DEMO, 'r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-hard-rgb.py')
HARD_DYN_CFG = osp.join(
    demo.DEMO,
    'vared2_r2plus1d_r18_1xb8-8x4x1-4e_synthetic-motion-hard-rgb.py')
#: default work dir; the base is trained in WORK_DIR/base, where the
#: VA-RED² config's load_from points
WORK_DIR = 'work_dirs/hard'


def parse_args(argv=None):
    from varedd_mm.analysis.prune import METHODS
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument('--work-dir', default=WORK_DIR)
    parser.add_argument('--data-root', default='data/synthetic_motion_hard')
    parser.add_argument(
        '--train-per-class',
        type=int,
        default=80,
        help='training videos per class when the data is generated')
    parser.add_argument(
        '--budgets',
        type=float,
        nargs='+',
        default=[0.45, 0.6, 0.75],
        help='VA-RED2 efficiency-loss targets (fractions of the full cost)')
    parser.add_argument(
        '--methods',
        nargs='*',
        default=list(METHODS),
        choices=METHODS,
        help='static pruning criteria (none: no pruning baselines)')
    parser.add_argument(
        '--prune-budgets',
        type=float,
        nargs='*',
        default=None,
        help='budgets whose realised GFLOPs the pruned models match '
        '(default: every budget)')
    parser.add_argument(
        '--base-checkpoint',
        default=None,
        help='use these base weights (trained with the base config) '
        'instead of training the base in WORK_DIR/base')
    parser.add_argument(
        '--base-cfg-options',
        nargs='+',
        default=[],
        help='extra key=value overrides of the base config where the '
        'script uses it (training and testing the base, the pruning tool; '
        'not the VA-RED2 fine-tuning), e.g. train_cfg.max_epochs=12; not '
        'with --base-checkpoint')
    parser.add_argument(
        '--vared2-config',
        default=HARD_DYN_CFG,
        help='the VA-RED2 config to fine-tune (its schedule is also the '
        'pruned models\'), e.g. the adaptive-policy config vared2-adaptive_'
        'r2plus1d_r18_1xb8-8x4x1-12e_synthetic-motion-hard-rgb.py')
    parser.add_argument(
        '--vared2-cfg-options',
        nargs='+',
        default=[],
        help='extra key=value overrides of the VA-RED2 config (training '
        'and testing), e.g. model.backbone.dynamic_cfg.gate.input=mean')
    parser.add_argument(
        '--finetune-base',
        action='store_true',
        help='also fine-tune the unpruned base with the VA-RED2 config\'s '
        'schedule and seed (what the extra epochs alone give)')
    parser.add_argument(
        '--rerun',
        action='store_true',
        help='run every step even where its outputs exist')
    args = parser.parse_args(argv)
    for b in args.budgets:
        if not 0 < b <= 1:
            raise SystemExit(f'--budgets must be in (0, 1], got {b}')
    if args.base_cfg_options and args.base_checkpoint:
        raise SystemExit('--base-cfg-options change how the base is '
                         'trained, tested and pruned; with '
                         '--base-checkpoint the base is not trained here, '
                         'so its config must be the one it was trained '
                         'with (give one of the two)')
    if not osp.isfile(args.vared2_config):
        raise SystemExit(f'--vared2-config: no such file '
                         f'{args.vared2_config}')
    args.vared2_config = osp.abspath(args.vared2_config)
    if args.prune_budgets is None:
        args.prune_budgets = list(args.budgets)
    unknown = set(args.prune_budgets) - set(args.budgets)
    if unknown:
        raise SystemExit(f'--prune-budgets must be among --budgets '
                         f'{args.budgets}, got {sorted(unknown)}')
    return args


#: what the script records about the data it generates
DATA_RECORD = 'generator.json'


def data_settings(train_per_class):
    """The generator settings the benchmark's data is made with."""
    from varedd_mm.datasets import synthetic_motion_hard as hard
    return dict(
        train_per_class=train_per_class,
        classes=list(hard.HARD_CLASSES),
        pans={
            k: [list(d), list(r)]
            for k, (d, r) in hard.PANS.items()
        },
        stripe_period=list(hard.STRIPE_PERIOD),
        centre_grey=list(hard.CENTRE_GREY),
        tint=hard.TINT)


def prepare_data(data_root, train_per_class):
    """Generate the benchmark in ``data_root`` unless it is there; data made
    with other generator settings (an older calibration, another
    ``--train-per-class``) is refused, not silently reused."""
    from varedd_mm.datasets import generate
    from varedd_mm.datasets.synthetic_motion_hard import (HARD_CLASSES,
                                                          render_hard_clip)
    record = osp.join(data_root, DATA_RECORD)
    wanted = data_settings(train_per_class)
    if osp.isfile(osp.join(data_root, 'val_list_videos.txt')):
        if not osp.isfile(record):
            print(f'reusing the data in {data_root} (no record of the '
                  'generator settings)')
            return
        with open(record) as f:
            if json.load(f) != wanted:
                raise SystemExit(
                    f'{data_root} was generated with other settings than '
                    f'{wanted} (see {record}); delete it or pass another '
                    '--data-root')
        return
    print(f'generating the harder synthetic benchmark in {data_root}')
    generate(
        data_root,
        train_per_class=train_per_class,
        classes=HARD_CLASSES,
        render=render_hard_clip)
    with open(record, 'w') as f:
        json.dump(wanted, f, indent=1)


class Steps:
    """Runs the train / test / prune calls and keeps their times. A step
    whose output exists is skipped if it was made by the same command
    (recorded next to it in ``command.json``, the interpreter left out);
    outputs of another command stop the run with an error, outputs without
    a record are reused with a notice."""

    RECORD = 'command.json'

    def __init__(self, data_opts, rerun):
        self.data_opts = list(data_opts)
        self.rerun = rerun
        self.timing = {}

    def _step(self, key, cmd, out_dir, output):
        record = osp.join(out_dir, self.RECORD)
        if not self.rerun and osp.exists(output):
            if not osp.isfile(record):
                print(f'reusing {output} (no record of the command that '
                      'made it)')
                return
            with open(record) as f:
                if json.load(f) == cmd[1:]:
                    return
            raise SystemExit(
                f'{output} was made by another command than\n  '
                f"{' '.join(cmd[1:])}\n(see {record}); pass --rerun or "
                'another --work-dir')
        self.timing[key] = demo.run(cmd)
        with open(record, 'w') as f:
            json.dump(cmd[1:], f, indent=1)

    def train(self, name, cfg, wd, opts=()):
        self._step(f'train {name}',
                   [sys.executable, 'tools/train.py', cfg, '--work-dir', wd] +
                   ['--cfg-options'] + self.data_opts + list(opts), wd,
                   osp.join(wd, 'last_checkpoint'))
        return demo.last_checkpoint(wd)

    def test(self, name, cfg, ckpt, wd, opts=()):
        test_dir = osp.join(wd, 'test')
        preds = osp.join(test_dir, 'predictions.pkl')
        self._step(f'test {name}',
                   [sys.executable, 'tools/test.py', cfg, ckpt, '--work-dir'] +
                   [test_dir, '--dump', preds, '--cfg-options'] +
                   self.data_opts + list(opts), test_dir, preds)
        return test_dir

    def prune(self, name, ckpt, gflops, method, wd, opts=()):
        cfg = osp.join(wd, 'pruned_config.py')
        self._step(f'prune {name}', [
            sys.executable, 'tools/analysis/prune_static.py', HARD_BASE_CFG,
            ckpt, '--target-gflops', f'{gflops:.6f}', '--method', method,
            '--work-dir', wd, '--cfg-options'
        ] + self.data_opts + list(opts), wd, cfg)
        return cfg


def finetune_config(pruned_cfg_path,
                    dyn_cfg_path,
                    dyn_options=(),
                    out_dir=None,
                    options=()):
    """Write ``finetune_config.py`` in ``out_dir`` (default: next to the
    pruned config): the model of ``pruned_cfg_path`` (a pruned model, or
    the base, with ``options``, as ``--base-cfg-options``) with the
    schedule (``varedd_mm.analysis.model_utils.SCHEDULE_KEYS``) of the
    VA-RED² config with ``dyn_options`` (``key=value`` strings, as
    ``--vared2-cfg-options``), which wins where the two set the same
    schedule key."""
    from varedd_mm.analysis.model_utils import config_with_options, schedule
    cfg = config_with_options(pruned_cfg_path, options)
    dyn = config_with_options(dyn_cfg_path, dyn_options)
    for key, value in schedule(dyn).items():
        cfg[key] = value
    # the gates' learning-rate multiplier has nothing to match here
    cfg.optim_wrapper.pop('paramwise_cfg', None)
    cfg.default_hooks = dyn.default_hooks
    path = osp.join(
        out_dir or osp.dirname(pruned_cfg_path), 'finetune_config.py')
    cfg.dump(path)
    return path


def top1(test_dir):
    pred, labels = demo.load_predictions(osp.join(test_dir, 'predictions.pkl'))
    return float((pred == labels).mean())


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, demo.ROOT)
    from varedd_mm.datasets.synthetic_motion_hard import (HARD_CLASSES,
                                                          HARD_STATIC_CLASSES)
    t_start = time.time()
    data_root = osp.join(demo.ROOT, args.data_root)
    prepare_data(data_root, args.train_per_class)
    wd = osp.join(demo.ROOT, args.work_dir)
    steps = Steps(demo.video_data_options(data_root), args.rerun)

    wd_base = osp.join(wd, 'base')
    base_opts = args.base_cfg_options
    base_ckpt = (
        osp.abspath(args.base_checkpoint) if args.base_checkpoint else
        steps.train('base', HARD_BASE_CFG, wd_base, base_opts))
    base_test = steps.test('base', HARD_BASE_CFG, base_ckpt, wd_base,
                           base_opts)

    summary = dict(
        base_checkpoint=base_ckpt,
        base_cfg_options=base_opts,
        vared2_config=osp.relpath(args.vared2_config, demo.ROOT),
        vared2_cfg_options=args.vared2_cfg_options,
        classes=list(HARD_CLASSES),
        static_classes=list(HARD_STATIC_CLASSES),
        base=dict(top1=top1(base_test)),
        vared2=[],
        pruned=[])
    for budget in args.budgets:
        name = f'vared2_{budget:g}'
        wd_dyn = osp.join(wd, name)
        opts = [
            f'load_from={base_ckpt}', f'model.efficiency_loss.target={budget}'
        ] + args.vared2_cfg_options
        ckpt = steps.train(name, args.vared2_config, wd_dyn, opts)
        dyn_test = steps.test(name, args.vared2_config, ckpt, wd_dyn, opts)
        rec = demo.recognition_summary(base_test, dyn_test, HARD_CLASSES,
                                       HARD_STATIC_CLASSES)
        summary['base']['gflops'] = rec['gflops_per_clip_base']
        summary['base']['per_class_top1'] = {
            n: r['top1_base']
            for n, r in rec['per_class'].items()
        }
        s, m = rec['static_vs_moving_gflops']
        summary['vared2'].append(
            dict(
                budget=budget,
                top1=rec['top1_vared2'],
                gflops=rec['gflops_per_clip_vared2'],
                gflops_ratio=rec['gflops_ratio'],
                static_gflops=s,
                moving_gflops=m,
                per_class={
                    n:
                    dict(
                        top1=r['top1_vared2'],
                        gflops=r['gflops_per_clip_vared2'])
                    for n, r in rec['per_class'].items()
                }))

    import torch
    realised = {r['budget']: r['gflops'] for r in summary['vared2']}
    for budget in args.prune_budgets:
        for method in args.methods:
            name = f'prune_{method}_{budget:g}'
            wd_p = osp.join(wd, name)
            pruned_cfg = steps.prune(name, base_ckpt, realised[budget], method,
                                     wd_p, base_opts)
            ft_cfg = finetune_config(pruned_cfg, args.vared2_config,
                                     args.vared2_cfg_options)
            wd_ft = osp.join(wd_p, 'finetune')
            ckpt = steps.train(name, ft_cfg, wd_ft)
            test_dir = steps.test(name, ft_cfg, ckpt, wd_ft)
            meta = torch.load(
                osp.join(wd_p, 'pruned.pth'),
                map_location='cpu')['meta']['pruning']
            summary['pruned'].append(
                dict(
                    method=method,
                    matched_budget=budget,
                    target_gflops=realised[budget],
                    gflops=meta['gflops'],
                    ratio=meta['ratio'],
                    top1=top1(test_dir)))

    if args.finetune_base:
        wd_bft = osp.join(wd, 'base_finetune')
        os.makedirs(wd_bft, exist_ok=True)
        ft_cfg = finetune_config(HARD_BASE_CFG, args.vared2_config,
                                 args.vared2_cfg_options, wd_bft, base_opts)
        ckpt = steps.train('base_finetune', ft_cfg, wd_bft,
                           [f'load_from={base_ckpt}'])
        test_dir = steps.test('base_finetune', ft_cfg, ckpt, wd_bft)
        summary['base_finetuned'] = dict(
            top1=top1(test_dir), gflops=summary['base'].get('gflops'))

    demo.write_summary(wd, summary, step_times(wd, steps.timing), t_start)
    tables = format_tables(summary)
    with open(osp.join(wd, 'tables.md'), 'w') as f:
        f.write(tables)
    plot(summary, osp.join(wd, 'accuracy_vs_gflops.png'))
    print('\n' + tables)
    print(f"total time {summary['total_s'] / 60:.1f} min; written: "
          f"{osp.join(wd, 'summary.json')}, tables.md, "
          'accuracy_vs_gflops.png')


def step_times(wd, timing):
    """The step times of this call over those of the calls before it
    (recorded in ``wd/summary.json``), so that a resumed run keeps the times
    of the steps it skipped; ``total_s`` stays this call's."""
    path = osp.join(wd, 'summary.json')
    times = {}
    if osp.isfile(path):
        with open(path) as f:
            times.update(json.load(f).get('timing_s', {}))
    times.update(timing)
    return times


def format_tables(summary):
    """The experiment tables (markdown) of a ``summary``."""
    base = summary['base']
    lines = [
        '| model | top-1 | GFLOPs/clip | × base |', '|---|---|---|---|',
        f"| base R(2+1)D-18 | {100 * base['top1']:.1f} | "
        f"{base['gflops']:.3f} | 1.00 |"
    ]
    if 'base_finetuned' in summary:
        lines.append('| base R(2+1)D-18, fine-tuned with the same schedule | '
                     f"{100 * summary['base_finetuned']['top1']:.1f} | "
                     f"{base['gflops']:.3f} | 1.00 |")
    for r in summary['vared2']:
        lines.append(f"| VA-RED², budget {r['budget']:g} | "
                     f"{100 * r['top1']:.1f} | {r['gflops']:.3f} | "
                     f"{r['gflops'] / base['gflops']:.2f} |")
    for r in summary['pruned']:
        lines.append(f"| {r['method']} pruning, matched to budget "
                     f"{r['matched_budget']:g} | {100 * r['top1']:.1f} | "
                     f"{r['gflops']:.3f} | "
                     f"{r['gflops'] / base['gflops']:.2f} |")
    lines += [
        '', '| VA-RED² budget | static GFLOPs/clip | moving GFLOPs/clip | '
        'static / moving |', '|---|---|---|---|'
    ]
    for r in summary['vared2']:
        lines.append(f"| {r['budget']:g} | {r['static_gflops']:.3f} | "
                     f"{r['moving_gflops']:.3f} | "
                     f"{r['static_gflops'] / r['moving_gflops']:.2f} |")
    head = ' | '.join(f"budget {r['budget']:g}" for r in summary['vared2'])
    lines += [
        '', f'| class | top-1 base | {head} (top-1, GFLOPs/clip) |',
        '|---|---|' + '---|' * len(summary['vared2'])
    ]
    for name in summary['classes']:
        cells = ' | '.join(f"{100 * r['per_class'][name]['top1']:.1f}, "
                           f"{r['per_class'][name]['gflops']:.3f}"
                           for r in summary['vared2'])
        kind = ' (static)' if name in summary['static_classes'] else ''
        lines.append(f"| {name}{kind} | "
                     f"{100 * base['per_class_top1'][name]:.1f} | {cells} |")
    return '\n'.join(lines) + '\n'


def plot(summary, path):
    """Top-1 against GFLOPs per clip: the base (and its fine-tuned
    reference), VA-RED² at each budget and each pruning method
    (:func:`varedd_mm.analysis.table7.plot_accuracy_vs_gflops`)."""
    from varedd_mm.analysis.table7 import plot_accuracy_vs_gflops
    return plot_accuracy_vs_gflops(summary, path)


if __name__ == '__main__':
    main()
