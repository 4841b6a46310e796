# Copyright (c) varedd_mm contributors. All rights reserved.
"""tools/analysis/compare_runs.py: several runs of
tools/run_hard_benchmark.py side by side, VA-RED² against each pruning
baseline run for run."""
import json
import math
import os.path as osp

import pytest

from varedd_mm.datasets.synthetic_motion_hard import HARD_CLASSES

TOOL = 'analysis/compare_runs'
DEMO = 'configs/recognition/vared2/demo/'
#: two VA-RED² configs of the same schedule (--baselines-from reads them)
X = DEMO + ('vared2-adaptive_r2plus1d_r18_1xb8-8x4x1-12e_'
            'synthetic-motion-hard-rgb.py')
Y = DEMO + ('vared2-adaptive-full_r2plus1d_r18_1xb8-8x4x1-12e_'
            'synthetic-motion-hard-rgb.py')


@pytest.fixture(scope='module')
def tool(tool_module):
    return tool_module(TOOL)


def _summary(vared2_top1, pruned, static=0.2, moving=0.4, seed=0):
    """A summary.json as tools/run_hard_benchmark.py writes it (the keys
    the tool reads): VA-RED² at budget 0.7 and ``pruned`` = {method:
    top-1} matched to it."""
    return dict(
        vared2_config=X,
        vared2_cfg_options=[f'randomness.seed={seed}'],
        base_checkpoint='base.pth',
        classes=list(HARD_CLASSES),
        base=dict(top1=0.895, gflops=0.476),
        vared2=[
            dict(
                budget=0.7,
                top1=vared2_top1,
                gflops=0.345 + seed / 1000,
                static_gflops=static,
                moving_gflops=moving)
        ],
        pruned=[
            dict(
                method=m,
                matched_budget=0.7,
                gflops=0.345 + seed / 1000,
                top1=t) for m, t in pruned.items()
        ])


def _write(root, name, summary):
    d = root / name
    d.mkdir()
    (d / 'summary.json').write_text(json.dumps(summary))
    return str(d)


@pytest.fixture
def three_runs(tmp_path):
    return [
        _write(tmp_path, 's0', _summary(0.96, dict(l1=0.93, fpgm=0.93))),
        _write(tmp_path, 's1',
               _summary(0.935, dict(l1=0.945), static=0.3, seed=1)),
        _write(tmp_path, 's2',
               _summary(0.95, dict(l1=0.95, fpgm=0.96), seed=2)),
    ]


def _model(result, *arm):
    (m, ) = [m for m in result['models'] if tuple(m['model']) == arm]
    return m


def test_means_and_paired_differences(tool, three_runs):
    result = tool.compare(tool.load_runs(three_runs))
    dyn = _model(result, 'vared2', 0.7)
    assert dyn['n'] == 3
    assert dyn['top1_mean'] == pytest.approx((0.96 + 0.935 + 0.95) / 3)
    mean = dyn['top1_mean']
    assert dyn['top1_std'] == pytest.approx(
        math.sqrt(sum((v - mean)**2 for v in (0.96, 0.935, 0.95)) / 2))
    assert dyn['gflops_mean'] == pytest.approx(0.346)
    # a model missing from a run is kept, with the runs that have it
    fpgm = _model(result, 'fpgm', 0.7)
    assert fpgm['n'] == 2 and set(fpgm['runs']) == {'s0', 's2'}
    assert _model(result, 'base')['top1_std'] == 0
    paired = {p['method']: p for p in result['paired']}
    assert paired['l1']['diffs'] == pytest.approx(
        dict(s0=0.03, s1=-0.01, s2=0.0))
    assert (paired['l1']['wins'], paired['l1']['ties'],
            paired['l1']['losses']) == (1, 1, 1)
    assert paired['l1']['mean'] == pytest.approx(0.02 / 3)
    # Student's t with 2 degrees of freedom: t(0.975) = 4.302653
    half = 4.302653 * paired['l1']['std'] / math.sqrt(3)
    assert paired['l1']['ci95'] == pytest.approx(
        [0.02 / 3 - half, 0.02 / 3 + half], rel=1e-6)
    assert paired['fpgm']['n'] == 2
    # two runs: 1 degree of freedom, t(0.975) = 12.706205
    half = 12.706205 * paired['fpgm']['std'] / math.sqrt(2)
    assert paired['fpgm']['ci95'] == pytest.approx(
        [paired['fpgm']['mean'] - half, paired['fpgm']['mean'] + half],
        rel=1e-6)
    assert (paired['fpgm']['wins'], paired['fpgm']['losses']) == (1, 1)
    assert result['static_vs_moving'] == [
        dict(budget=0.7, runs=pytest.approx(dict(s0=0.5, s1=0.75, s2=0.5)))
    ]
    # base first, then VA-RED², then the pruning methods
    assert [m['model'][0]
            for m in result['models']] == ['base', 'vared2', 'fpgm', 'l1']


def test_the_fine_tuned_base_is_a_reference_not_a_baseline(tool, tmp_path):
    runs = []
    for i, top1 in enumerate((0.95, 0.96)):
        summary = _summary(0.94, dict(l1=0.93), seed=i)
        summary['base_finetuned'] = dict(top1=top1, gflops=0.476)
        runs.append(_write(tmp_path, f's{i}', summary))
    result = tool.compare(tool.load_runs(runs))
    assert [m['model'][0] for m in result['models']
            ] == ['base', 'base_finetuned', 'vared2', 'l1']
    ref = _model(result, 'base_finetuned')
    assert ref['n'] == 2 and ref['top1_mean'] == pytest.approx(0.955)
    assert [p['method'] for p in result['paired']] == ['l1']
    assert ('| base, fine-tuned with the same schedule | 95.0 | 96.0 | 2 | '
            '95.50 |') in tool.format_tables(result)
    # every other model against it, run for run: VA-RED² 94.0 and L1 93.0
    # against 95.0 and 96.0
    vs = {tuple(p['model']): p for p in result['vs_finetuned_base']}
    assert set(vs) == {('vared2', 0.7), ('l1', 0.7)}
    assert vs[('vared2',
               0.7)]['diffs'] == pytest.approx(dict(s0=-0.01, s1=-0.02))
    assert vs[('l1', 0.7)]['diffs'] == pytest.approx(dict(s0=-0.02, s1=-0.03))
    assert vs[('l1', 0.7)]['mean'] == pytest.approx(-0.025)
    assert (vs[('l1', 0.7)]['wins'], vs[('l1', 0.7)]['losses']) == (0, 2)
    assert ('| l1 pruning, matched to 0.7 | -2.0 | -3.0 | 2 | -2.50 |'
            in tool.format_tables(result))
    # a run without a fine-tuned base is left out of these differences
    runs.append(_write(tmp_path, 's2', _summary(0.99, dict(l1=0.99), seed=2)))
    mixed = tool.compare(tool.load_runs(runs))
    vs = {tuple(p['model']): p for p in mixed['vs_finetuned_base']}
    assert vs[('vared2', 0.7)]['n'] == 2
    assert set(vs[('vared2', 0.7)]['diffs']) == {'s0', 's1'}
    # and none at all without any fine-tuned base
    alone = tool.compare(tool.load_runs(runs[2:]))
    assert alone['vs_finetuned_base'] == []
    assert 'fine-tuned with the same schedule, top-1' not in (
        tool.format_tables(alone))
    drawn = tool.plot_gflops(result, str(tmp_path / 'gflops.png'))
    assert drawn['base, fine-tuned with the same schedule'] == [
        pytest.approx((0.476, 95.5))
    ]


def test_tables_json_and_plot(tool, three_runs, tmp_path, capsys):
    out, js, png = (tmp_path / 'runs.md', tmp_path / 'runs.json',
                    tmp_path / 'runs.png')
    tool.main(
        three_runs +
        ['--out', str(out), '--json',
         str(js), '--plot',
         str(png)])
    tables = out.read_text()
    assert tables == capsys.readouterr().out.rstrip('\n') + '\n'
    assert ('| VA-RED², budget 0.7 | 96.0 | 93.5 | 95.0 | 3 | 94.83 | 1.26 '
            '| 0.346 |') in tables
    assert ('| fpgm pruning, matched to 0.7 | 93.0 | – | 96.0 | 2 | 94.50 | '
            '2.12 |') in tables
    assert ('| vs l1, budget 0.7 | +3.0 | -1.0 | +0.0 | 3 | +0.67 | 2.08 | '
            '-4.50 to +5.84 | 1 / 1 / 1 |') in tables
    assert '| 0.7 | 0.50 | 0.75 | 0.50 |' in tables
    assert f'| s1 | {osp.basename(X)} | randomness.seed=1 |' in tables
    assert json.loads(js.read_text())['paired'][0]['method'] == 'fpgm'
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_plot_gflops_draws_the_means(tool, three_runs, tmp_path):
    png = tmp_path / 'gflops.png'
    tool.main(three_runs + ['--plot-gflops', str(png)])
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'
    drawn = tool.plot_gflops(
        tool.compare(tool.load_runs(three_runs)), str(png))
    # seeds of one budget: one point per model, at the means
    assert drawn['VA-RED²'] == [
        pytest.approx((0.346, 100 * (0.96 + 0.935 + 0.95) / 3))
    ]
    assert drawn['l1 pruning'] == [
        pytest.approx((0.346, 100 * (0.93 + 0.945 + 0.95) / 3))
    ]
    # fpgm ran in s0 and s2 only
    assert drawn['fpgm pruning'] == [pytest.approx((0.346, 94.5))]
    assert drawn['base R(2+1)D-18'] == [pytest.approx((0.476, 89.5))]
    assert 'base, fine-tuned with the same schedule' not in drawn


def test_plot_gflops_of_runs_at_other_budgets_is_a_curve(tool, tmp_path):
    runs = []
    points = ((0.85, 0.40, 0.95), (0.6, 0.29, 0.92))
    for i, (budget, gflops, top1) in enumerate(points):
        summary = _summary(top1, {})
        summary['vared2'][0].update(budget=budget, gflops=gflops)
        summary['pruned'] = [
            dict(method='l1', matched_budget=budget, gflops=gflops, top1=0.9)
        ]
        runs.append(_write(tmp_path, f'b{i}', summary))
    drawn = tool.plot_gflops(
        tool.compare(tool.load_runs(runs)), str(tmp_path / 'curve.png'))
    assert drawn['VA-RED²'] == [
        pytest.approx((0.29, 92.0)),
        pytest.approx((0.40, 95.0))
    ]
    assert drawn['l1 pruning'] == [
        pytest.approx((0.29, 90.0)),
        pytest.approx((0.40, 90.0))
    ]


def test_each_pruned_model_meets_vared2_at_its_own_budget(tool, tmp_path):
    summary = _summary(0.95, {})
    summary['vared2'].insert(
        0,
        dict(
            budget=0.5,
            top1=0.9,
            gflops=0.25,
            static_gflops=0.2,
            moving_gflops=0.3))
    for budget, top1 in ((0.5, 0.92), (0.7, 0.92)):
        summary['pruned'].append(
            dict(method='l1', matched_budget=budget, gflops=0.3, top1=top1))
    result = tool.compare(tool.load_runs([_write(tmp_path, 's0', summary)]))
    diffs = {p['budget']: p['diffs']['s0'] for p in result['paired']}
    assert diffs == pytest.approx({0.5: -0.02, 0.7: 0.03})
    # one run: no spread, no interval
    assert [p['ci95'] for p in result['paired']] == [None, None]
    assert '| 1 | -2.00 | – | – | 0 / 0 / 1 |' in tool.format_tables(result)
    assert [r['budget'] for r in result['static_vs_moving']] == [0.5, 0.7]


def test_still_and_moving_top1_per_run(tool, tmp_path):
    """The mean of the still classes' and of the moving classes' top-1, per
    run; a run without per-class figures gets '–', not dropped."""
    static = list(HARD_CLASSES[:4])
    with_classes = _summary(0.95, {})
    with_classes['static_classes'] = static
    # still: (0.85 + 1 + 0.8 + 1) / 4; moving: five classes at 1, one 0.8
    with_classes['vared2'][0]['per_class'] = {
        c: dict(top1=t, gflops=0.3)
        for c, t in zip(HARD_CLASSES, (0.85, 1.0, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0,
                                       1.0, 0.8))
    }
    runs = [
        _write(tmp_path, 's0', with_classes),
        _write(tmp_path, 's1', _summary(0.93, {}, seed=1))
    ]
    result = tool.compare(tool.load_runs(runs))
    assert result['static_vs_moving_top1'] == [
        dict(
            budget=0.7,
            runs=dict(s0=pytest.approx([0.9125, 5.8 / 6])),
            n=1,
            mean=pytest.approx([0.9125, 5.8 / 6]))
    ]
    assert '| 0.7 | 91.25 / 96.67 | – | 1 | 91.25 / 96.67 |' in (
        tool.format_tables(result))
    # every class still: no moving figure, and no crash in the mean
    with_classes['static_classes'] = list(HARD_CLASSES)
    runs = [_write(tmp_path, 'all_still', with_classes)]
    (row, ) = tool.compare(tool.load_runs(runs))['static_vs_moving_top1']
    assert row['mean'][1] is None and row['runs']['all_still'][1] is None
    assert row['mean'][0] == pytest.approx(
        (0.85 + 1.0 + 0.8 + 1.0 * 6 + 0.8) / 10)
    # figures of a class the run does not have are refused, not counted
    del with_classes['vared2'][0]['per_class']['down']
    with pytest.raises(
            SystemExit, match='per_class figures of VA-RED² budget 0.7'):
        tool.compare(
            tool.load_runs([_write(tmp_path, 'missing', with_classes)]))


def test_equal_top1_computed_differently_is_a_tie(tool, tmp_path):
    # 0.1 + 0.2 != 0.3 in floats; both are 30 % of the clips
    summary = _summary(0.1 + 0.2, dict(l1=0.3))
    result = tool.compare(tool.load_runs([_write(tmp_path, 's0', summary)]))
    (p, ) = result['paired']
    assert (p['wins'], p['ties'], p['losses']) == (0, 1, 0)


def test_equal_differences_give_no_interval(tool, tmp_path):
    # two runs both +1 point: std 0, so Student's t would give the
    # zero-width "+1.00 to +1.00"; the tool prints none
    runs = [
        _write(tmp_path, f's{i}', _summary(top1, dict(l1=top1 - 0.01)))
        for i, top1 in enumerate((0.95, 0.93))
    ]
    result = tool.compare(tool.load_runs(runs))
    (p, ) = result['paired']
    assert p['diffs'] == pytest.approx(dict(s0=0.01, s1=0.01))
    assert p['std'] == pytest.approx(0, abs=1e-12) and p['ci95'] is None
    assert '| 2 | +1.00 | 0.00 | – | 2 / 0 / 0 |' in tool.format_tables(result)


def test_bad_inputs_are_refused(tool, three_runs, tmp_path, capsys):
    with pytest.raises(SystemExit, match='has no summary.json'):
        tool.load_runs(three_runs + [str(tmp_path)])
    other = _summary(0.9, {})
    other['classes'] = other['classes'][:4]
    with pytest.raises(SystemExit, match='different benchmarks'):
        tool.load_runs(three_runs + [_write(tmp_path, 'other', other)])
    # the summary of README command 1 (tools/run_default.py) is another one
    demo = _write(tmp_path, 'demo', dict(top1_base=1.0, top1_vared2=1.0))
    with pytest.raises(SystemExit, match='not a summary of .*no classes'):
        tool.load_runs([demo])
    with pytest.raises(SystemExit):
        tool.parse_args([three_runs[0], three_runs[0]])
    assert 'each run once' in capsys.readouterr().err
    (tmp_path / 'elsewhere').mkdir()
    twin = _write(tmp_path / 'elsewhere', 's0', _summary(0.9, {}))
    with pytest.raises(SystemExit):
        tool.parse_args([three_runs[0], twin])
    assert 'share names' in capsys.readouterr().err


def test_baselines_from_another_run_of_the_same_base_and_seed(
        tool, three_runs, tmp_path, capsys):
    new = []
    for i, top1 in enumerate((0.97, 0.96, 0.94)):
        # its own pruned model is replaced, not merged
        summary = _summary(top1, dict(slimming=0.5), seed=i)
        summary['vared2_config'] = Y
        new.append(_write(tmp_path, f'new{i}', summary))
    base_ft = json.loads((tmp_path / 's1' / 'summary.json').read_text())
    base_ft['base_finetuned'] = dict(top1=0.975, gflops=0.476)
    (tmp_path / 's1' / 'summary.json').write_text(json.dumps(base_ft))
    runs = tool.load_runs(new, three_runs)
    x = osp.basename(X)
    # a run named as its own baselines keeps them
    (own, other) = tool.load_runs(new[:2], [new[0], three_runs[1]])
    assert 'baselines_from' not in own[1]
    assert [r['method'] for r in own[1]['pruned']] == ['slimming']
    assert other[1]['baselines_from'] == f's1 ({x})'
    assert [s['baselines_from']
            for _, s in runs] == [f's0 ({x})', f's1 ({x})', f's2 ({x})']
    result = tool.compare(runs)
    (fpgm, l1) = sorted(result['paired'], key=lambda p: p['method'])
    assert l1['diffs'] == pytest.approx({
        'new0': 0.04,
        'new1': 0.015,
        'new2': -0.01
    })
    assert fpgm['diffs'] == pytest.approx({'new0': 0.04, 'new2': -0.02})
    assert _model(result, 'base_finetuned')['runs'] == {
        'new1': dict(top1=0.975, gflops=0.476)
    }
    assert (f'| new1 | {osp.basename(Y)} | randomness.seed=1 | s1 ({x}) |'
            in tool.format_tables(result))
    # another seed's baselines would pair the wrong runs
    with pytest.raises(SystemExit, match=r'differ in their schedule \(rand'):
        tool.load_runs(new, three_runs[::-1])
    # another schedule: the pruned models were fine-tuned for 4 epochs
    short = _summary(0.9, {}, seed=0)
    short['vared2_cfg_options'] += ['train_cfg.max_epochs=4']
    with pytest.raises(SystemExit, match=r'schedule \(train_cfg\)'):
        tool.load_runs(new[:1], [_write(tmp_path, 'short', short)])
    unreadable = _summary(0.9, {}, seed=0)
    unreadable['vared2_config'] = 'configs/none.py'
    with pytest.raises(SystemExit, match='cannot read the VA-RED2 config'):
        tool.load_runs(new[:1], [_write(tmp_path, 'unreadable', unreadable)])
    other = _summary(0.9, {}, seed=0)
    other['base_checkpoint'] = 'other.pth'
    with pytest.raises(SystemExit, match='differ in their base checkpoint'):
        tool.load_runs(new[:1], [_write(tmp_path, 'o', other)])
    unrecorded = _summary(0.9, {})
    del unrecorded['base_checkpoint']
    with pytest.raises(SystemExit, match='does not record its base'):
        tool.load_runs([_write(tmp_path, 'u', unrecorded)], three_runs[:1])
    with pytest.raises(SystemExit):
        tool.parse_args(new + ['--baselines-from'] + three_runs[:2])
    assert 'one dir per work dir (3)' in capsys.readouterr().err
