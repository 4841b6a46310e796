# Copyright (c) varedd_mm contributors. All rights reserved.
"""Policy statistics and plots from dumped test predictions."""
import os.path as osp
import pickle
import subprocess
import sys

import pytest
import torch

from varedd_mm.analysis.policy_stats import plot_policy, policy_statistics

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
NAMES = ['backbone.conv1.conv', 'backbone.layer1.0.conv1.conv']


def _pred(label, choices, gflops):
    return dict(
        gt_label=torch.tensor([label]),
        vared2_choices=torch.tensor(choices),
        vared2_gflops=torch.tensor(gflops, dtype=torch.float64),
        vared2_base_gflops=1.0,
        vared2_layer_names=list(NAMES),
        pred_score=torch.tensor([0.5, 0.5]))


def _preds():
    # (layers=2, views=2, 2): layer 0 always full; layer 1 differs by class
    return [
        _pred(0, [[[0, 0], [0, 0]], [[1, 1], [1, 0]]], [0.4, 0.5]),
        _pred(1, [[[0, 0], [0, 0]], [[0, 0], [0, 0]]], [1.0, 1.0]),
        _pred(0, [[[0, 0], [0, 0]], [[1, 1], [1, 1]]], [0.3, 0.3]),
    ]


def test_policy_statistics_counts():
    stats = policy_statistics(_preds(), ['static', 'moving'])
    assert stats['choices'] == ['(0, 0)', '(1, 0)', '(1, 1)']
    assert stats['num_videos'] == 3 and stats['num_views'] == 6
    assert stats['share'][NAMES[0]] == {
        '(0, 0)': 1.0,
        '(1, 0)': 0.0,
        '(1, 1)': 0.0
    }
    assert stats['share'][NAMES[1]] == {
        '(0, 0)': 2 / 6,
        '(1, 0)': 1 / 6,
        '(1, 1)': 3 / 6
    }
    assert list(stats['share_by_class']) == ['static', 'moving']
    assert stats['share_by_class']['static'][NAMES[1]] == {
        '(0, 0)': 0.0,
        '(1, 0)': 0.25,
        '(1, 1)': 0.75
    }
    assert stats['share_by_class']['moving'][NAMES[1]]['(0, 0)'] == 1.0
    assert stats['gflops_by_class'] == {
        'static': [0.4, 0.5, 0.3, 0.3],
        'moving': [1.0, 1.0]
    }


def test_policy_statistics_errors():
    with pytest.raises(ValueError, match='no predictions'):
        policy_statistics([])
    bad = _preds()[0]
    del bad['vared2_choices']
    with pytest.raises(KeyError, match=r"lack \['vared2_choices'\].*--dump"):
        policy_statistics([bad])
    with pytest.raises(ValueError, match='label 1, outside the 1 class'):
        policy_statistics(_preds(), ['static'])
    other = _preds()
    other[1]['vared2_layer_names'] = NAMES[:1]
    with pytest.raises(ValueError, match='mixed models'):
        policy_statistics(other)


def test_plot_tool_writes_figures(tmp_path):
    pkl = tmp_path / 'preds.pkl'
    with open(pkl, 'wb') as f:
        pickle.dump(_preds(), f)
    out = subprocess.run([
        sys.executable, 'tools/analysis/plot_policy.py',
        str(pkl), '--out-dir',
        str(tmp_path / 'fig')
    ],
                         cwd=ROOT,
                         capture_output=True,
                         text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    for name in ('policy_layers.png', 'policy_full_share_by_class.png',
                 'gflops_by_class.png'):
        with open(tmp_path / 'fig' / name, 'rb') as f:
            assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    assert '0: 0.375 GFLOPs per view' in out.stdout
    assert plot_policy(policy_statistics(_preds()), str(tmp_path / 'again'))
