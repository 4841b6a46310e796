# Copyright (c) varedd_mm contributors. All rights reserved.
"""``clip_policy``: per-clip choices through the grouped inference path."""
import pytest
import torch

from varedd_mm import VARED2Conv2plus1d, VARED2Conv3d, fixed_policy
from varedd_mm.ops import clip_policy

CHOICES = [(0, 0), (0, 1), (1, 0), (1, 1)]


@pytest.mark.parametrize('make', [
    lambda: VARED2Conv3d(8, 16, 3, padding=1),
    lambda: VARED2Conv2plus1d(8, 16, 3, padding=1),
])
def test_each_clip_gets_its_choice_and_the_forced_output(make):
    layer = make().eval()
    x = torch.randn(6, 8, 4, 6, 6)
    with torch.no_grad():
        with clip_policy(layer, CHOICES):
            out = layer(x)
            recorded = layer.last_choice.tolist()
            macs = layer.last_macs
        assert recorded == [list(CHOICES[k % 4]) for k in range(6)]
        table = layer.macs_table(x.shape)
        gate = layer.gate_macs(x.shape)
        assert macs.tolist() == [
            table[CHOICES[k % 4]] + gate for k in range(6)
        ]
        for k in range(6):
            with fixed_policy(layer, *CHOICES[k % 4]):
                torch.testing.assert_close(
                    layer(x[k:k + 1]), out[k:k + 1], rtol=1e-5, atol=1e-5)
    # the learned gate is back on exit
    assert 'logits' not in vars(layer.gate)


def test_clip_policy_errors():
    layer = VARED2Conv3d(8, 16, 1).eval()
    with pytest.raises(ValueError, match='outside this layer'):
        with clip_policy(layer, [(2, 0)]):
            pass
    assert 'logits' not in vars(layer.gate)
    with pytest.raises(ValueError, match='must not be empty'):
        with clip_policy(layer, []):
            pass


def test_mixed_groups_keep_channels_last():
    """Grouping clips by choice keeps a channels-last batch channels-last
    (the gather would otherwise fall back to NCDHW and every conv of the
    group would reorder)."""
    layer = VARED2Conv3d(8, 16, 3, padding=1).eval()
    x = torch.randn(4, 8, 4, 6, 6)
    xc = x.contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad(), clip_policy(layer, CHOICES):
        ref = layer(x)
        seen = []
        original = layer._compute

        def spy(sub, i, j, *into):
            seen.append(
                sub.is_contiguous(memory_format=torch.channels_last_3d))
            return original(sub, i, j, *into)

        layer._compute = spy
        out = layer(xc)
    assert seen == [True] * 4
    assert out.is_contiguous(memory_format=torch.channels_last_3d)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('make', [
    lambda: VARED2Conv3d(8, 16, 3, padding=1),
    lambda: VARED2Conv2plus1d(8, 16, 3, padding=1),
])
def test_consecutive_and_scattered_groups_and_autograd(make):
    """Groups of consecutive clips run on a view of the batch, the others
    are gathered clip by clip; with autograd the index ops run. Every
    clip's output is its forced choice's, and gradients flow."""
    layer = make().eval()
    # (1, 1): clips 0, 1, 3 (scattered); (0, 0): clip 2; (0, 1): clips 4, 5
    choices = [(1, 1), (1, 1), (0, 0), (1, 1), (0, 1), (0, 1)]
    x = torch.randn(6, 8, 4, 6, 6)
    with torch.no_grad(), clip_policy(layer, choices):
        out = layer(x)
    xg = x.clone().requires_grad_()
    with clip_policy(layer, choices):
        out_grad = layer(xg)
    out_grad.sum().backward()
    assert xg.grad is not None and xg.grad.abs().sum() > 0
    torch.testing.assert_close(out_grad.detach(), out, rtol=1e-5, atol=1e-5)
    with torch.no_grad():
        for k, c in enumerate(choices):
            with fixed_policy(layer, *c):
                torch.testing.assert_close(
                    layer(x[k:k + 1]), out[k:k + 1], rtol=1e-5, atol=1e-5)
