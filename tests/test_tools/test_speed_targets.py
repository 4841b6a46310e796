# Copyright (c) varedd_mm contributors. All rights reserved.
"""tools/analysis/speed_targets.py: the verdicts of each reading of the
speed targets on the JSON files of a benchmark_zoo.sh run."""
import json
import os
import os.path as osp
import re

import pytest

TOOL = 'analysis/speed_targets'


@pytest.fixture(scope='module')
def tool(tool_module):
    return tool_module(TOOL)


def _write(out_dir, name, upstream, same, dynamic, batch=1, shape=(16, 8, 8)):
    """A benchmark.py result as benchmark_zoo.sh writes it (one row)."""
    row = dict(
        batch=batch,
        base_clips_per_s=upstream,
        base_same_clips_per_s=same,
        dynamic_clips_per_s=dynamic,
        speedup=dynamic / upstream,
        speedup_same_execution=dynamic / same)
    with open(osp.join(out_dir, name), 'w') as f:
        json.dump(dict(shape=list(shape), rows=[row]), f)


@pytest.fixture
def zoo(tmp_path):
    d = str(tmp_path)
    # target 3: met, base speed-up 1.1 (rule holds), own gain 3.3 / 1.1
    _write(d, 'a_b1.json', 1.0, 1.1, 3.3)
    # met only because the base is run 2x faster: rule fails, own gain
    # 2.0 < 0.85 * 3
    _write(d, 'a_b1_cl.json', 1.0, 2.0, 4.0)
    # missed vs upstream, rule holds, own gain 2.6 >= 2.55
    _write(d, 'a_b8.json', 2.0, 2.0, 5.2, batch=8)
    # another model, 2-d (segmentation), target 1.5, base speed-up 1.5:
    # no reading holds
    _write(d, 'b_b1.json', 1.0, 1.5, 1.2, shape=(64, 64))
    # other tags and names the tool must not read as a_b<batch>
    _write(d, 'a_choice00_b1.json', 1.0, 1.0, 1.0)
    _write(d, 'ab_b1.json', 1.0, 1.0, 9.0)
    return d


def test_verdicts_and_counts(tool, zoo, capsys, tmp_path):
    out, js = str(tmp_path / 't.md'), str(tmp_path / 't.json')
    tool.main([zoo, '--targets', 'a=3', 'b=1.5', '--out', out, '--json', js])
    rows = json.load(open(js))['rows']
    assert [(r['model'], r['batch'], r['layout'])
            for r in rows] == [('a', 1, 'NCDHW'), ('a', 1, 'channels-last'),
                               ('a', 8, 'NCDHW'), ('b', 1, 'NCHW')]
    verdicts = [(r['target_met'], r['rule'], r['both'], r['own_gain'])
                for r in rows]
    assert verdicts == [(True, True, True, True), (True, False, False, False),
                        (False, True, False, True),
                        (False, False, False, False)]
    assert rows[1]['base_speedup'] == pytest.approx(2.0)
    text = capsys.readouterr().out
    assert text == open(out).read()
    for line in [
            'target_met: 2 of 4 rows', 'rule: 2 of 4 rows',
            'both: 1 of 4 rows', 'own_gain: 2 of 4 rows'
    ]:
        assert line in text


def test_within_moves_the_rule_and_own_gain(tool, zoo, tmp_path):
    js = str(tmp_path / 't.json')
    # within 0.05: base speed-up <= 1.0526, own gain >= 2.85
    tool.main([zoo, '--targets', 'a=3', '--within', '0.05', '--json', js])
    rows = json.load(open(js))['rows']
    assert [(r['rule'], r['own_gain']) for r in rows] == [(False, True),
                                                          (False, False),
                                                          (True, False)]


def test_at_least_checks_one_bound(tool, zoo, tmp_path):
    js = str(tmp_path / 't.json')
    tool.main([
        zoo, '--models', 'a', '--tag', 'choice00', '--at-least', '0.97',
        '--json', js
    ])
    rows = json.load(open(js))['rows']
    assert len(rows) == 1 and rows[0]['file'] == 'a_choice00_b1.json'
    assert rows[0]['speedup_ok'] and rows[0]['same_ok']
    tool.main([zoo, '--models', 'a', '--at-least', '2.5', '--json', js])
    rows = json.load(open(js))['rows']
    assert [(r['speedup_ok'], r['same_ok']) for r in rows] == [(True, True),
                                                               (True, False),
                                                               (True, True)]


@pytest.mark.parametrize('argv, match', [
    (['--targets', 'a'], 'MODEL=SPEEDUP'),
    (['--targets', 'a=-1'], 'MODEL=SPEEDUP'),
    (['--within', '1'], r'--within must be in \[0, 1\)'),
    (['--models', 'c'], '--models c have no target'),
    (['--at-least', '0'], '--at-least must be > 0'),
    (['--tag', 'a b'], '--tag must be'),
])
def test_bad_arguments_are_named(tool, zoo, argv, match, capsys):
    with pytest.raises(SystemExit):
        tool.main([zoo] + argv)
    err = capsys.readouterr().err
    assert re.search(match, err), err


def test_a_model_without_files_or_a_foreign_json_is_an_error(
        tool, zoo, tmp_path):
    with pytest.raises(FileNotFoundError, match=r'no c_b<batch>\[_cl\]'):
        tool.main([zoo, '--targets', 'c=2'])
    with open(osp.join(zoo, 'a_b2.json'), 'w') as f:
        json.dump(dict(rows=[dict(batch=2)]), f)
    with pytest.raises(ValueError, match='a_b2.json is not a benchmark.py'):
        tool.main([zoo, '--targets', 'a=3'])
    _write(zoo, 'a_b2.json', 1.0, 1.0, 2.0, batch=4)
    with pytest.raises(ValueError, match='expected one row of batch 2'):
        tool.main([zoo, '--targets', 'a=3'])
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path / 'missing')])


def test_against_the_compiled_base(tool, zoo, tmp_path, capsys):
    """--against compiled: the base compiled by torch.compile takes the
    upstream base's place in every reading; a run without it is refused."""
    path = osp.join(zoo, 'a_b1.json')
    data = json.load(open(path))
    # the compiled base runs 3.0 clip/s: VA-RED² (3.3) gains 1.1x on it,
    # and the same-execution base (1.1) is slower than it (rule holds);
    # the own gain (3.0x over the same execution) does not change
    data['rows'][0].update(
        base_compiled_clips_per_s=3.0, speedup_compiled_base=1.1)
    with open(path, 'w') as f:
        json.dump(data, f)
    for name in ('a_b1_cl.json', 'a_b8.json'):
        os.remove(osp.join(zoo, name))
    js = str(tmp_path / 't.json')
    tool.main([zoo, '--targets', 'a=3', '--against', 'compiled', '--json', js])
    (row, ) = json.load(open(js))['rows']
    assert row['speedup'] == 1.1
    assert row['base_speedup'] == pytest.approx(1.1 / 3.0)
    assert (row['target_met'], row['rule'], row['both'],
            row['own_gain']) == (False, True, False, True)
    assert 'vs compiled base' in capsys.readouterr().out
    _write(zoo, 'a_b8.json', 2.0, 2.0, 5.2, batch=8)
    with pytest.raises(ValueError, match='a_b8.json has no compiled base'):
        tool.main([zoo, '--targets', 'a=3', '--against', 'compiled'])
