# Copyright (c) varedd_mm contributors. All rights reserved.
"""calibrate_gates: gates that choose per clip at a target realised cost
(for timing the grouped execution without a trained policy)."""
import pytest
import torch
import torch.nn as nn

from varedd_mm import VARED2Conv2plus1d, VARED2Conv3d, dynamic_layers
from varedd_mm.analysis import calibrate_gates, realised_cost


def _model():
    return nn.Sequential(
        VARED2Conv3d(3, 16, 3, padding=1), nn.ReLU(),
        VARED2Conv2plus1d(16, 16, 3, padding=1), nn.ReLU(),
        VARED2Conv3d(16, 32, 1, dynamic_cfg=dict(search_space=3))).eval()


@pytest.mark.parametrize('cost', [0.4, 0.6, 0.8])
def test_reaches_the_cost_with_mixed_choices(cost):
    model = _model()
    x = torch.randn(8, 3, 8, 12, 12)
    before = {
        n: p.clone()
        for n, p in model.named_parameters() if 'gate.fc2.bias' not in n
    }
    result = calibrate_gates(model, x, cost)
    # 8 clips, 3 layers: the cost moves in steps of a few hundredths
    assert abs(result['realised_cost'] - cost) <= 0.03
    # what the model now does on its own, without the calibration hooks
    with torch.no_grad():
        model(x)
    assert realised_cost(model) == pytest.approx(result['realised_cost'])
    for _, layer in dynamic_layers(model):
        choices = set(map(tuple, layer.last_choice.tolist()))
        # per dimension: the full option or the first reduced one, mixed
        assert len(choices) > 1
        assert all(max(c) <= 1 for c in choices)
    # only the gates' output biases moved
    for n, p in model.named_parameters():
        if n in before:
            assert torch.equal(p, before[n]), n


def test_the_extremes_are_the_full_and_the_reduced_model():
    model = _model()
    x = torch.randn(4, 3, 8, 12, 12)
    assert calibrate_gates(model, x, 1.0)['realised_cost'] > 0.99
    low = calibrate_gates(model, x, 0.05)['realised_cost']
    with torch.no_grad():
        model(x)
    for _, layer in dynamic_layers(model):
        assert (layer.last_choice == 1).all()  # every clip, both dims
    assert low < 0.35


def test_errors():
    model = _model()
    x = torch.randn(2, 3, 8, 12, 12)
    with pytest.raises(ValueError, match=r'cost must be in \(0, 1\]'):
        calibrate_gates(model, x, 1.5)
    with pytest.raises(ValueError, match='model.eval'):
        calibrate_gates(model.train(), x, 0.5)
    with pytest.raises(ValueError, match='no VA-RED2 layers'):
        calibrate_gates(nn.Conv3d(3, 3, 1).eval(), x, 0.5)
