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
    assert row['flops_ratio'] == pytest.approx(row['dynamic_gflops_per_clip'] /
                                               row['base_gflops_per_clip'])
