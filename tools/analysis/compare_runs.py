# Copyright (c) varedd_mm contributors. All rights reserved.
"""Put several runs of ``tools/run_hard_benchmark.py`` side by side (e.g.
the same recipe with other seeds) and compare VA-RED² with each pruning
baseline run for run::

    python tools/analysis/compare_runs.py WORK_DIR [WORK_DIR ...] \\
        [--out runs.md] [--json runs.json] [--plot runs.png] \\
        [--plot-gflops runs_gflops.png]

Each WORK_DIR must hold the ``summary.json`` the script writes. The tool
prints (and writes to ``--out``):

- every model's top-1 and GFLOPs per clip in every run, with the mean and
  the sample standard deviation over the runs that have it;
- for every pruning method and every budget it was matched to, the
  difference in top-1 between VA-RED² at that budget and the pruned model
  of the same run (a paired comparison: both arms of a run start from the
  same base and take the same schedule and seed), with the wins, ties and
  losses of VA-RED² and a 95 % confidence interval of the mean difference
  (Student's t over the runs: an interval that holds zero does not tell
  the two apart; none for one run or for differences that do not vary);
- in the runs with a fine-tuned base (``--finetune-base``), every VA-RED²
  and pruned model's top-1 minus that of the base fine-tuned with the same
  schedule and seed, run for run, with the same statistics: what each
  reduction costs against the reference that had the same extra epochs;
- VA-RED²'s still / moving GFLOPs ratio per run, and its top-1 on the
  still and on the moving classes (the mean of those classes' top-1 in
  the run's ``per_class``; '–' for a run without it).

``--baselines-from DIR [DIR ...]`` (one per WORK_DIR) takes the pruned
models and the fine-tuned base of each run from another run, in place of
the run's own (e.g. another VA-RED² config against the pruning baselines
already trained); a run given as its own DIR keeps its own. The two
runs must share the base checkpoint, the classes, and the schedule and
seed (their VA-RED² configs with their cfg-options agree in
``train_cfg``, ``optim_wrapper``, ``param_scheduler`` and
``randomness``). The pruned models were matched
to the other run's realised GFLOPs, which the models table shows next to
VA-RED²'s; the runs table names the other run and its config.

A model missing from some runs is reported with the runs that have it
(its ``n`` says how many), never dropped. Runs of different benchmarks
(other classes) cannot be compared and stop the tool with an error.
"""
import argparse
import json
import math
import os.path as osp
import textwrap


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n\n')[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        'work_dirs',
        nargs='+',
        help='work dirs of tools/run_hard_benchmark.py (each with a '
        'summary.json)')
    parser.add_argument(
        '--baselines-from',
        nargs='+',
        metavar='DIR',
        help='one work dir per WORK_DIR, in the same order: take the pruned '
        'models and the fine-tuned base of each run from it (same base '
        'checkpoint, classes, schedule and seed); a run\'s own dir keeps '
        'its own')
    parser.add_argument('--out', help='write the tables (markdown) here')
    parser.add_argument('--json', help='write the figures (JSON) here')
    parser.add_argument(
        '--plot', help='write a plot of top-1 per run and model (PNG) here')
    parser.add_argument(
        '--plot-gflops',
        metavar='PATH',
        help='write a plot of mean top-1 against mean GFLOPs per clip of '
        'every model (PNG) here: runs at different budgets make a curve')
    args = parser.parse_args(argv)
    if len(set(map(osp.realpath, args.work_dirs))) != len(args.work_dirs):
        parser.error(f'work_dirs: each run once, got {args.work_dirs}')
    if args.baselines_from and len(args.baselines_from) != len(args.work_dirs):
        parser.error(f'--baselines-from: one dir per work dir '
                     f'({len(args.work_dirs)}), got {args.baselines_from}')
    names = [run_name(wd) for wd in args.work_dirs]
    if len(set(names)) != len(names):
        parser.error('work_dirs: the runs are named by their directory, '
                     f'and these share names: {args.work_dirs}')
    return args


def run_name(work_dir):
    """A run's name in the tables: its work dir's own name."""
    return osp.basename(osp.normpath(work_dir))


#: what the tool reads of a run's summary.json
SUMMARY_KEYS = ('classes', 'base', 'vared2', 'pruned')


def _load_summary(wd, what='work_dirs'):
    path = osp.join(wd, 'summary.json')
    if not osp.isfile(path):
        raise SystemExit(f'{what}: {wd} has no summary.json (is it a '
                         'finished run of tools/run_hard_benchmark.py?)')
    with open(path) as f:
        summary = json.load(f)
    missing = [k for k in SUMMARY_KEYS if k not in summary]
    if missing:
        raise SystemExit(f'{what}: {path} is not a summary of '
                         'tools/run_hard_benchmark.py (no '
                         f'{", ".join(missing)})')
    return summary


#: the repository (summaries name their VA-RED² config relative to it)
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _schedule(summary, wd):
    """The training schedule and seed of a run's VA-RED² config with its
    cfg-options (what its pruned models were fine-tuned with too)."""
    from varedd_mm.analysis.model_utils import config_with_options, schedule
    path = osp.join(ROOT, summary.get('vared2_config') or '')
    if not osp.isfile(path):
        raise SystemExit(f'--baselines-from: cannot read the VA-RED2 config '
                         f'of {wd} ({path}), so its schedule and seed '
                         'cannot be matched')
    return schedule(
        config_with_options(path, summary.get('vared2_cfg_options', [])))


#: what ``--baselines-from`` takes from the other run (the run's own are
#: not kept, even where the other run has none)
BASELINE_KEYS = ('pruned', 'base_finetuned')


def _with_baselines(summary, wd, other, other_wd):
    """``summary`` with the pruned models and the fine-tuned base of
    ``other`` (a run of the same base checkpoint, classes, schedule and
    seed)."""
    if summary.get('base_checkpoint') is None:
        raise SystemExit(f'--baselines-from: {wd} does not record its base '
                         'checkpoint, so its baselines cannot be matched')
    ours, theirs = _schedule(summary, wd), _schedule(other, other_wd)
    for what, a, b in (('base checkpoint', summary.get('base_checkpoint'),
                        other.get('base_checkpoint')),
                       ('classes', summary['classes'], other['classes']),
                       *((f'schedule ({k})', ours[k], theirs[k])
                         for k in ours)):
        if a != b:
            raise SystemExit(
                f'--baselines-from: {other_wd} and {wd} differ in their '
                f'{what} ({b!r} vs {a!r}): the pruned models would not be '
                'paired with a VA-RED2 run of their own seed and schedule')
    out = {k: v for k, v in summary.items() if k not in BASELINE_KEYS}
    out.update({k: other[k] for k in BASELINE_KEYS if k in other})
    out['baselines_from'] = (
        f'{run_name(other_wd)} ('
        f"{osp.basename(other.get('vared2_config') or '')}"
        ')')
    return out


def load_runs(work_dirs, baselines_from=None):
    """``[(name, summary)]`` of the runs; the name is the work dir's. With
    ``baselines_from`` (one dir per run), each run's pruned models and
    fine-tuned base are those of the other run."""
    runs = []
    for i, wd in enumerate(work_dirs):
        summary = _load_summary(wd)
        if baselines_from and (osp.realpath(baselines_from[i])
                               != osp.realpath(wd)):  # a run's own: kept
            other = baselines_from[i]
            summary = _with_baselines(summary, wd,
                                      _load_summary(other, '--baselines-from'),
                                      other)
        runs.append((run_name(wd), summary))
    classes = {tuple(s['classes']) for _, s in runs}
    if len(classes) != 1:
        raise SystemExit('work_dirs: the runs are of different benchmarks '
                         f'(classes {sorted(classes)})')
    return runs


def _arms(summary):
    """``{arm: (top1, gflops)}`` of one run; an arm is ``('base', )``,
    ``('base_finetuned', )`` (``--finetune-base``), ``('vared2', budget)``
    or ``(method, matched_budget)``."""
    arms = {('base', ): (summary['base']['top1'], summary['base']['gflops'])}
    if 'base_finetuned' in summary:
        r = summary['base_finetuned']
        arms[('base_finetuned', )] = (r['top1'], r['gflops'])
    for r in summary['vared2']:
        arms[('vared2', r['budget'])] = (r['top1'], r['gflops'])
    for r in summary['pruned']:
        arms[(r['method'], r['matched_budget'])] = (r['top1'], r['gflops'])
    return arms


def _stats(values):
    """Mean and sample standard deviation (None for one value)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, None
    var = sum((v - mean)**2 for v in values) / (len(values) - 1)
    return mean, math.sqrt(var)


def _ci95(mean, std, n):
    """The 95 % confidence interval ``[low, high]`` of a mean of ``n``
    values with sample standard deviation ``std`` (Student's t, n - 1
    degrees of freedom); None for fewer than two values and for values
    that do not vary (std 0: the formula gives a zero-width interval,
    which says more than a few equal differences can)."""
    if std is None or n < 2 or std < TIE:
        return None
    from scipy.stats import t
    half = t.ppf(0.975, n - 1) * std / math.sqrt(n)
    return [mean - half, mean + half]


#: top-1 differences this small are ties (float noise of equal counts)
TIE = 1e-9

#: the arms that are not pruning baselines, in table order (the pruning
#: methods follow)
OWN_ARMS = {'base': 0, 'base_finetuned': 1, 'vared2': 2}


def _arm_sort_key(arm):
    return (OWN_ARMS.get(arm[0], len(OWN_ARMS)), arm[0], arm[1:])


def compare(runs):
    """The figures the tables show, as a dict (what ``--json`` writes)."""
    per_run = [(name, _arms(s)) for name, s in runs]
    arms = sorted({a for _, arms in per_run for a in arms}, key=_arm_sort_key)
    models = []
    for arm in arms:
        have = [(name, a[arm]) for name, a in per_run if arm in a]
        top1 = _stats([t for _, (t, _) in have])
        gflops = _stats([g for _, (_, g) in have])
        models.append(
            dict(
                model=list(arm),
                runs={
                    name: dict(top1=t, gflops=g)
                    for name, (t, g) in have
                },
                n=len(have),
                top1_mean=top1[0],
                top1_std=top1[1],
                gflops_mean=gflops[0],
                gflops_std=gflops[1]))
    paired, vs_finetuned = [], []
    for arm in arms:
        if arm[0] in ('base', 'base_finetuned'):
            continue
        if arm[0] != 'vared2':  # a pruning baseline: against VA-RED²
            diffs = _paired(per_run, ('vared2', arm[1]), arm)
            if diffs:
                paired.append(dict(method=arm[0], budget=arm[1], **diffs))
        diffs = _paired(per_run, arm, ('base_finetuned', ))
        if diffs:
            vs_finetuned.append(dict(model=list(arm), **diffs))
    ratios, group_top1 = {}, {}
    for name, s in runs:
        for r in s['vared2']:
            ratios.setdefault(r['budget'], {})[name] = (
                r['static_gflops'] / r['moving_gflops'])
            top1 = _still_moving_top1(r, s, name)
            if top1 is not None:
                group_top1.setdefault(r['budget'], {})[name] = top1
    return dict(
        runs={
            name:
            dict(
                vared2_config=s.get('vared2_config'),
                vared2_cfg_options=s.get('vared2_cfg_options', []),
                base_checkpoint=s.get('base_checkpoint'),
                baselines_from=s.get('baselines_from'))
            for name, s in runs
        },
        models=models,
        paired=paired,
        vs_finetuned_base=vs_finetuned,
        static_vs_moving=[
            dict(budget=b, runs=per) for b, per in sorted(ratios.items())
        ],
        static_vs_moving_top1=[
            dict(
                budget=b,
                runs=per,
                n=len(per),
                mean=[
                    _mean_of_known(r[g] for r in per.values()) for g in (0, 1)
                ]) for b, per in sorted(group_top1.items())
        ])


def _paired(per_run, arm, ref):
    """Top-1 of ``arm`` minus top-1 of ``ref`` in every run that has both
    (a paired comparison), with their mean, sample standard deviation,
    95 % confidence interval and the wins, ties and losses of ``arm``;
    None when no run has both."""
    diffs = {
        name: a[arm][0] - a[ref][0]
        for name, a in per_run if arm in a and ref in a
    }
    if not diffs:
        return None
    mean, std = _stats(list(diffs.values()))
    return dict(
        diffs=diffs,
        n=len(diffs),
        mean=mean,
        std=std,
        ci95=_ci95(mean, std, len(diffs)),
        wins=sum(d > TIE for d in diffs.values()),
        ties=sum(abs(d) <= TIE for d in diffs.values()),
        losses=sum(d < -TIE for d in diffs.values()))


def _still_moving_top1(vared2, summary, name):
    """``[still, moving]`` top-1 of one VA-RED² entry of run ``name``: the
    mean of the per-class top-1 over the still (``static_classes``) and
    over the other classes (None for a group without classes); None when
    the run did not record per-class figures. Per-class figures of other
    classes than the run's stop the tool with an error."""
    per_class = vared2.get('per_class')
    if not per_class or 'static_classes' not in summary:
        return None
    classes = set(summary['classes'])
    still = set(summary['static_classes'])
    if set(per_class) != classes or not still <= classes:
        raise SystemExit(
            f'{name}: the per_class figures of VA-RED² budget '
            f"{vared2['budget']:g} ({sorted(per_class)}) or its "
            f'static_classes ({sorted(still)}) are not of its classes '
            f'({sorted(classes)})')
    groups = ([v['top1'] for c, v in per_class.items() if c in still],
              [v['top1'] for c, v in per_class.items() if c not in still])
    return [sum(g) / len(g) if g else None for g in groups]


def _mean_of_known(values):
    """The mean of the values that are not None (None if there are
    none)."""
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None


def _label(arm):
    if arm[0] == 'base':
        return 'base'
    if arm[0] == 'base_finetuned':
        return 'base, fine-tuned with the same schedule'
    if arm[0] == 'vared2':
        return f'VA-RED², budget {arm[1]:g}'
    return f'{arm[0]} pruning, matched to {arm[1]:g}'


def _pct(x, digits=1, sign=''):
    """A fraction in percent (points); '–' for None. Means and standard
    deviations take two digits: a mean of two 200-clip runs ends in .25
    or .75, which one digit would round by float noise."""
    return '–' if x is None else f'{100 * x:{sign}.{digits}f}'


def _head(first, names, last=()):
    """A blank line, then the header and separator rows of a markdown
    table with a column per run."""
    cols = [first] + list(names) + list(last)
    return ['', f"| {' | '.join(cols)} |", '|' + '---|' * len(cols)]


def _cells(per_run, names, fmt):
    """One cell per run: ``fmt(value)``, '–' where the run has none."""
    return ' | '.join(fmt(per_run[n]) if n in per_run else '–' for n in names)


def format_tables(result):
    """Markdown tables of :func:`compare`'s result."""
    names = list(result['runs'])
    lines = [
        '| run | VA-RED² config | cfg-options | pruned models and '
        'fine-tuned base from |', '|---|---|---|---|'
    ]
    for name, r in result['runs'].items():
        opts = ' '.join(r['vared2_cfg_options']) or '–'
        cfg = osp.basename(r['vared2_config'] or 'not recorded')
        lines.append(f"| {name} | {cfg} | {opts} | "
                     f"{r.get('baselines_from') or 'this run'} |")
    lines += _head('model', names,
                   ('n', 'mean top-1', 'std', 'mean GFLOPs/clip'))
    for m in result['models']:
        cells = _cells(m['runs'], names, lambda r: _pct(r['top1']))
        lines.append(f"| {_label(m['model'])} | {cells} | {m['n']} | "
                     f"{_pct(m['top1_mean'], 2)} | "
                     f"{_pct(m['top1_std'], 2)} | "
                     f"{m['gflops_mean']:.3f} |")

    def vs_pruned(p):
        return f"vs {p['method']}, budget {p['budget']:g}"

    def model(p):
        return _label(tuple(p['model']))

    paired_tables = (
        ('VA-RED² − pruning, top-1 points', result['paired'], vs_pruned),
        ('model − base fine-tuned with the same schedule, top-1 points',
         result['vs_finetuned_base'], model))
    for title, rows, label in paired_tables:
        if not rows:
            continue
        lines += _head(title, names,
                       ('n', 'mean', 'std', '95 % CI of the mean',
                        'wins / ties / losses'))
        for p in rows:
            cells = _cells(p['diffs'], names, lambda d: _pct(d, sign='+'))
            ci = ('–'
                  if p['ci95'] is None else f"{_pct(p['ci95'][0], 2, '+')} to "
                  f"{_pct(p['ci95'][1], 2, '+')}")
            lines.append(f'| {label(p)} | {cells} | '
                         f"{p['n']} | {_pct(p['mean'], 2, '+')} | "
                         f"{_pct(p['std'], 2)} | {ci} | "
                         f"{p['wins']} / {p['ties']} / {p['losses']} |")
    if result['static_vs_moving']:
        lines += _head('VA-RED² budget, still / moving GFLOPs', names)
        for row in result['static_vs_moving']:
            cells = _cells(row['runs'], names, lambda r: f'{r:.2f}')
            lines.append(f"| {row['budget']:g} | {cells} |")
    if result['static_vs_moving_top1']:
        lines += _head(
            'VA-RED² budget, still / moving top-1 (mean of the classes\' '
            'top-1)', names, ('n', 'mean'))

        def pair(r):
            return f'{_pct(r[0], 2)} / {_pct(r[1], 2)}'

        for row in result['static_vs_moving_top1']:
            cells = _cells(row['runs'], names, pair)
            lines.append(f"| {row['budget']:g} | {cells} | {row['n']} | "
                         f"{pair(row['mean'])} |")
    return '\n'.join(lines) + '\n'


def plot(result, path):
    """Top-1 of every model in every run (points) and its mean (bar)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    models = result['models']
    fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(models), 4))
    for i, m in enumerate(models):
        ax.bar(
            i,
            100 * m['top1_mean'],
            color='C3' if m['model'][0] == 'vared2' else '0.8',
            width=0.6,
            zorder=1)
        pts = [100 * r['top1'] for r in m['runs'].values()]
        ax.scatter([i] * len(pts), pts, color='k', s=12, zorder=3)
    ax.set_xticks(range(len(models)))
    ax.set_xticklabels([textwrap.fill(_label(m['model']), 18) for m in models],
                       fontsize=7)
    tops = [100 * r['top1'] for m in models for r in m['runs'].values()]
    ax.set_ylim(max(0, min(tops) - 5), min(100, max(tops) + 2))
    ax.set_ylabel('top-1 (%): runs (dots), mean (bar)')
    ax.set_title(f'{len(result["runs"])} runs', fontsize=9)
    ax.grid(axis='y', alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_gflops(result, path):
    """Mean top-1 against mean GFLOPs per clip of every model over the
    runs that have it (:func:`compare`'s ``models``): the base and its
    fine-tuned reference, VA-RED² at each budget, each pruning method at
    each budget it was matched to. Runs of one recipe at several budgets
    (one per run) make a curve, seeds of one budget a point. Returns the
    plotted points, as
    :func:`~varedd_mm.analysis.table7.plot_accuracy_vs_gflops` does."""
    from varedd_mm.analysis.table7 import plot_accuracy_vs_gflops
    summary = dict(vared2=[], pruned=[])
    for m in result['models']:
        means = dict(top1=m['top1_mean'], gflops=m['gflops_mean'])
        kind = m['model'][0]
        if kind in ('base', 'base_finetuned'):
            summary[kind] = means
        elif kind == 'vared2':
            summary['vared2'].append(dict(means, budget=m['model'][1]))
        else:
            summary['pruned'].append(dict(means, method=kind))
    n = len(result['runs'])
    return plot_accuracy_vs_gflops(
        summary, path,
        f"Means over the runs with each model ({n} run{'s' if n > 1 else ''})")


def main(argv=None):
    args = parse_args(argv)
    result = compare(load_runs(args.work_dirs, args.baselines_from))
    tables = format_tables(result)
    print(tables)
    if args.out:
        with open(args.out, 'w') as f:
            f.write(tables)
    if args.json:
        with open(args.json, 'w') as f:
            json.dump(result, f, indent=1)
    if args.plot:
        plot(result, args.plot)
    if args.plot_gflops:
        plot_gflops(result, args.plot_gflops)


if __name__ == '__main__':
    main()
