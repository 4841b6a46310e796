# Copyright (c) varedd_mm contributors. All rights reserved.
"""tools/analysis/benchmark.py arguments: --learned needs a checkpoint,
every flag explains itself and shows its default."""
import importlib.util
import os.path as osp
import re

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFG = ('configs/recognition/vared2/demo/'
       'vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb.py')


@pytest.fixture(scope='module')
def tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_tool', osp.join(ROOT, 'tools', 'analysis', 'benchmark.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse(tool, monkeypatch, *argv):
    monkeypatch.setattr('sys.argv', ['benchmark.py', *argv])
    return tool.parse_args()


def test_learned_without_checkpoint_is_refused(tool, monkeypatch, capsys):
    with pytest.raises(SystemExit) as exc:
        parse(tool, monkeypatch, CFG, '--learned')
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert '--learned' in err and '--checkpoint' in err
    args = parse(tool, monkeypatch, CFG, '--learned', '--checkpoint', 'x.pth')
    assert args.learned and args.choice is None


def test_choice_defaults_to_one_one(tool, monkeypatch):
    assert parse(tool, monkeypatch, CFG).choice == [1, 1]


def test_every_flag_has_help_with_its_default(tool, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        parse(tool, monkeypatch, '--help')
    text = capsys.readouterr().out
    options = text.split('options:', 1)[1]
    # one entry per flag: the flag line(s), then its help text
    entries = re.split(r'\n  (?=-)', options)
    flags = [e for e in entries if e.lstrip().startswith('--')]
    assert len(flags) >= 12
    for entry in flags:
        name = entry.split()[0]
        words = ' '.join(entry.split())
        assert len(words) > len(name) + 20, f'{name} has no help text'
        if name not in ('--learned', '--help'):
            assert '(default:' in words, f'{name} does not show its default'


@pytest.mark.parametrize('layout', [[], ['--channels-last']])
def test_benchmark_reports_upstream_and_same_execution_base(
        tool, monkeypatch, tmp_path, layout):
    import json
    out = tmp_path / 'bench.json'
    monkeypatch.setattr('sys.argv', [
        'benchmark.py', CFG, '--shape', '4', '32', '32', '--batch-sizes', '2',
        '--warmup', '0', '--repeats', '1', '--out',
        str(out), *layout
    ])
    tool.main()
    result = json.loads(out.read_text())
    assert result['bn_fused'] is True
    assert result['channels_last'] == bool(layout)
    (row, ) = result['rows']
    for key in ('base_clips_per_s', 'base_same_clips_per_s',
                'dynamic_clips_per_s', 'speedup', 'speedup_same_execution'):
        assert row[key] > 0
    # GFLOPs come from the unfused model (BN counted), at (1, 1) by default
    assert 0 < row['dynamic_gflops_per_clip'] < row['base_gflops_per_clip']
    # the forced choice, set once for the timing, is what the timed model ran
    assert row['timed_model_same_choices'] is True
    assert row['flops_ratio'] == pytest.approx(row['dynamic_gflops_per_clip'] /
                                               row['base_gflops_per_clip'])


def test_vared2_cfg_options_reach_the_dynamic_model_only(
        tool, monkeypatch, tmp_path):
    import json
    base_cfg = CFG.replace('vared2_', '').replace('15e', '20e')
    assert osp.exists(osp.join(ROOT, base_cfg))
    key = 'model.backbone.dynamic_cfg.stem'

    def run(name, *options):
        out = tmp_path / f'{name}.json'
        monkeypatch.setattr('sys.argv', [
            'benchmark.py', CFG, '--shape', '4', '32', '32', '--batch-sizes',
            '1', '--warmup', '0', '--repeats', '1', '--out',
            str(out), *options
        ])
        tool.main()
        return json.loads(out.read_text())

    # with --base-config: an option reaching the plain base backbone would
    # fail there (its blocks take no dynamic_cfg)
    dynamic, static = (
        run(f'stem_{v}', '--base-config', base_cfg, '--vared2-cfg-options',
            f'{key}={v}') for v in ('True', 'False'))
    assert static['vared2_cfg_options'] == {key: False}
    # a static stem: the dynamic model computes more at (1, 1)
    assert static['rows'][0]['dynamic_gflops_per_clip'] > dynamic['rows'][0][
        'dynamic_gflops_per_clip']
    # applied after --cfg-options, so they win over it
    both = run('both', '--cfg-options', f'{key}=True', '--vared2-cfg-options',
               f'{key}=False')
    assert both['cfg_options'] == {key: True}
    assert both['rows'][0]['dynamic_gflops_per_clip'] == static['rows'][0][
        'dynamic_gflops_per_clip']


def test_profile_splits_the_time_and_gives_a_ceiling(tool, monkeypatch,
                                                     tmp_path):
    import json
    out = tmp_path / 'bench.json'
    monkeypatch.setattr('sys.argv', [
        'benchmark.py', CFG, '--shape', '4', '32', '32', '--batch-sizes', '1',
        '--warmup', '0', '--repeats', '1', '--profile', '--out',
        str(out)
    ])
    tool.main()
    (row, ) = json.loads(out.read_text())['rows']
    base, dyn = row['profile']['base_same'], row['profile']['dynamic']
    # the base is the dynamic model at (0, 0): its (2+1)D layers run their
    # convs and inner ReLU only; at (1, 1) the rebuild adds to that
    assert 0 < base['dynamic_conv_ms'] <= base['conv_ms']
    assert 0 < dyn['dynamic_conv_ms'] <= dyn['conv_ms']
    assert dyn['dynamic_other_ms'] > base['dynamic_other_ms']
    assert all(name.startswith('aten::') for name in dyn['other_top'])
    # what the VA-RED2 layers do beyond their convs, by op, largest first
    top = list(dyn['dynamic_other_top'].values())
    assert top and top == sorted(top, reverse=True)
    assert sum(top) <= dyn['dynamic_other_ms'] + 2e-3
    for p in (base, dyn):
        assert p['total_ms'] == pytest.approx(
            p['conv_ms'] + p['dynamic_other_ms'] + p['other_ms'], abs=2e-3)
    ceiling = base['total_ms'] / (
        base['other_ms'] + base['dynamic_other_ms'] +
        base['conv_ms'] * row['flops_ratio'])
    assert row['profile']['ceiling_same_execution'] == pytest.approx(
        ceiling, abs=1e-3)
    limit = 1 / row['flops_ratio']
    assert 1 < row['profile']['ceiling_same_execution'] < limit
    # each dynamic layer against the base module of the same name: every
    # dynamic layer, both times inside the forward's total
    layers = row['profile']['layers']
    net, _ = tool.build(CFG, None, None, 'cpu')
    assert list(layers) == [n for n, _ in tool.dynamic_layers(net)]
    assert all(t['base_same_ms'] > 0 for t in layers.values())
    # a layer's time covers every op that ran inside it
    inside = dyn['dynamic_conv_ms'] + dyn['dynamic_other_ms']
    assert sum(t['dynamic_ms'] for t in layers.values()) >= inside - 2e-3
    assert 'layers_ms' not in base and 'layers_ms' not in dyn


def test_gate_cost_times_gates_choosing_per_clip(tool, monkeypatch, tmp_path,
                                                 capsys):
    import json
    with pytest.raises(SystemExit):
        parse(tool, monkeypatch, CFG, '--gate-cost', '1.5')
    assert '--gate-cost must be in (0, 1]' in capsys.readouterr().err
    out = tmp_path / 'bench.json'
    monkeypatch.setattr('sys.argv', [
        'benchmark.py', CFG, '--shape', '4', '32', '32', '--batch-sizes', '1',
        '4', '--warmup', '0', '--repeats', '1', '--gate-cost', '0.6', '--out',
        str(out)
    ])
    tool.main()
    result = json.loads(out.read_text())
    assert result['mode'].startswith('gates calibrated to realised cost 0.6')
    one, four = result['rows']
    # one clip takes one choice per layer; four clips are split between the
    # full and the reduced options in the layers (grouped execution)
    assert one['choice_groups_per_layer'] == 1
    assert four['choice_groups_per_layer'] > 1.5
    # the timed fused model took the choices whose GFLOPs are reported
    assert one['timed_model_same_choices'] and four['timed_model_same_choices']
    # the whole model's ratio: the dynamic layers' 0.6 and the static
    # parts (here small) at full cost
    assert four['flops_ratio'] == pytest.approx(0.6, abs=0.05)


def test_mixed_batch_is_what_the_timed_model_ran(tool, monkeypatch, tmp_path):
    """--mixed: clip i takes choice i mod len in every layer; the timed
    model (its clip policy set once for the timing) ran exactly the choices
    whose GFLOPs are reported."""
    import json
    out = tmp_path / 'bench.json'
    monkeypatch.setattr('sys.argv', [
        'benchmark.py', CFG, '--shape', '4', '32', '32', '--batch-sizes', '4',
        '--warmup', '0', '--repeats', '1', '--mixed', '0', '0', '1', '1',
        '--out',
        str(out)
    ])
    tool.main()
    (row, ) = json.loads(out.read_text())['rows']
    assert row['choice_groups_per_layer'] == 2
    assert row['timed_model_same_choices'] is True
    assert 0 < row['flops_ratio'] < 1


BASE_CFG = CFG.replace('vared2_', '').replace('15e', '20e')


def test_compiled_base_needs_the_base_config(tool, monkeypatch, capsys):
    with pytest.raises(SystemExit):
        parse(tool, monkeypatch, CFG, '--compiled-base')
    assert '--base-config' in capsys.readouterr().err


def _run_compiled(tool, monkeypatch, tmp_path, *extra):
    import json
    out = tmp_path / 'bench.json'
    monkeypatch.setattr('sys.argv', [
        'benchmark.py', CFG, '--base-config', BASE_CFG, '--shape', '4', '16',
        '16', '--batch-sizes', '1', '2', '--warmup', '0', '--repeats', '1',
        '--compiled-base', '--out',
        str(out), *extra
    ])
    tool.main()
    return json.loads(out.read_text())


def test_compiled_base_is_timed_per_batch_size(tool, monkeypatch, tmp_path):
    """torch.compile of the upstream base (inductor, freezing), compiled
    once per batch size before the timing, in the run's layout."""
    result = _run_compiled(tool, monkeypatch, tmp_path, '--channels-last')
    assert result['compiled_base'] is True
    assert result['compiled_base_error'] is None
    for row in result['rows']:
        assert row['base_compiled_clips_per_s'] > 0 and row['compile_s'] > 0
        assert row['speedup_compiled_base'] == pytest.approx(
            row['dynamic_clips_per_s'] / row['base_compiled_clips_per_s'])


def test_a_failing_compile_leaves_the_other_rows(tool, monkeypatch, tmp_path,
                                                 capsys):
    import torch

    def no_compiler(model, **kwargs):

        def run(x):
            raise RuntimeError('no C++ compiler\nmore lines')

        return run

    monkeypatch.setattr(torch, 'compile', no_compiler)
    result = _run_compiled(tool, monkeypatch, tmp_path)
    assert result['compiled_base_error'] == ('RuntimeError: no C++ compiler'
                                             '\nmore lines')
    assert 'torch.compile failed' in capsys.readouterr().out
    for row in result['rows']:
        assert 'speedup_compiled_base' not in row
        assert row['speedup'] > 0
