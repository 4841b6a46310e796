# Copyright (c) varedd_mm contributors. All rights reserved.
"""``dynamic_cfg.gate.input='mean_tdiff'``: the gate also reads pooled
absolute frame differences, so it can tell a still texture from the same
texture panning; its cost is counted, (0, 0) stays the base conv, and the
task loss reaches the new inputs."""
import pytest
import torch
import torch.nn as nn

from varedd_mm import VARED2Conv2d, VARED2Conv3d, fixed_policy

TDIFF = dict(gate=dict(input='mean_tdiff'))


def _clips():
    """A still texture and the same texture panning one pixel per frame:
    every frame holds the same values, so their global means agree."""
    torch.manual_seed(0)
    tex = torch.randn(1, 8, 1, 12, 12)
    still = tex.expand(1, 8, 6, 12, 12).clone()
    panning = torch.cat([torch.roll(tex, shifts=t, dims=4) for t in range(6)],
                        dim=2)
    return still, panning


def test_tdiff_gate_tells_still_from_panning():
    still, panning = _clips()
    for cfg, differs in ((None, False), (TDIFF, True)):
        layer = VARED2Conv3d(8, 16, 3, padding=1, dynamic_cfg=cfg)
        layer.gate.pool_stride = 1  # the whole plane, exact means
        nn.init.normal_(layer.gate.fc2.weight, std=1.0)
        with torch.no_grad():
            a = torch.cat(layer.gate.logits(still), dim=1)
            b = torch.cat(layer.gate.logits(panning), dim=1)
        assert (not torch.allclose(a, b, atol=1e-6)) == differs


def test_tdiff_gate_cost_is_counted():
    layer = VARED2Conv3d(8, 16, 3, padding=1, dynamic_cfg=TDIFF).eval()
    plain = VARED2Conv3d(8, 16, 3, padding=1).eval()
    shape = (2, 8, 6, 12, 12)
    hidden = layer.gate.hidden
    k = layer.gate.num_temporal + layer.gate.num_channel
    sampled = 6 * 6  # 12 x 12 at pool stride 2
    expected = (8 * 6 * sampled + 2 * 8 * hidden + hidden * k +
                2 * 8 * 5 * sampled)
    assert layer.gate_macs(shape) == expected
    assert layer.gate_macs(shape) - plain.gate_macs(shape) == (
        8 * hidden + 2 * 8 * 5 * sampled)
    with torch.no_grad():
        layer(torch.randn(shape))
    table = layer.macs_table(shape)
    for clip, (i, j) in enumerate(layer.last_choice.tolist()):
        assert layer.last_macs[clip].item() == table[(i, j)] + expected


def test_full_choice_is_the_base_conv():
    layer = VARED2Conv3d(8, 16, 3, padding=1, dynamic_cfg=TDIFF).eval()
    base = nn.Conv3d(8, 16, 3, padding=1)
    base.load_state_dict({
        k: v
        for k, v in layer.state_dict().items() if k in ('weight', 'bias')
    })
    x = torch.randn(2, 8, 6, 12, 12)
    with torch.no_grad(), fixed_policy(layer, 0, 0):
        assert torch.equal(layer(x), base(x))
    # the learned gate choosing (0, 0) for every clip: the base output too
    with torch.no_grad():
        layer.gate.fc2.weight.zero_()
        layer.gate.fc2.bias.copy_(torch.tensor([5.0, 0.0, 5.0, 0.0]))
        assert torch.equal(layer(x), base(x))


def test_task_loss_reaches_the_difference_inputs():
    layer = VARED2Conv3d(8, 16, 3, padding=1, dynamic_cfg=TDIFF).train()
    _, panning = _clips()
    layer(panning.repeat(2, 1, 1, 1, 1)).pow(2).mean().backward()
    grad = layer.gate.fc1.weight.grad
    assert grad.shape[1] == 16
    assert grad[:, 8:].abs().sum() > 0  # the frame-difference half


def test_tdiff_needs_a_time_axis():
    with pytest.raises(ValueError, match="gate.input='mean_tdiff'"):
        VARED2Conv2d(8, 16, 3, padding=1, dynamic_cfg=TDIFF)
    with pytest.raises(ValueError, match='gate.input must be one of'):
        VARED2Conv3d(8, 16, 3, dynamic_cfg=dict(gate=dict(input='max')))
