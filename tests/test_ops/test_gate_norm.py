# Copyright (c) varedd_mm contributors. All rights reserved.
"""``dynamic_cfg.gate.norm_input=True``: the gate standardises its pooled
input over the clips of the batch; its cost is counted, (0, 0) stays the
base conv, the task loss reaches the gate, and a batch of one clip trains
on the running statistics."""
import pytest
import torch
import torch.nn as nn

from varedd_mm import VARED2Conv3d

NORM = dict(gate=dict(input='mean_tdiff', norm_input=True))


def _layer(cfg=NORM):
    torch.manual_seed(0)
    layer = VARED2Conv3d(8, 16, 3, padding=1, dynamic_cfg=cfg)
    layer.gate.pool_stride = 1
    nn.init.normal_(layer.gate.fc2.weight, std=1.0)
    return layer


def test_logits_depend_on_how_clips_differ_not_on_the_common_scale():
    layer = _layer().train()
    # clips that differ in brightness per channel and in how much they
    # change in time (so the batch variances are far above the BN's eps)
    x = torch.rand(4, 8, 6, 10, 10) * (0.5 + 2 * torch.rand(4, 1, 1, 1, 1))
    x = x + 2 * torch.rand(4, 8, 1, 1, 1)
    with torch.no_grad():
        a = torch.cat(layer.gate.logits(x), dim=1)
        # every pooled feature (mean and mean |frame difference|) scaled
        # by 3 and the means shifted by 2, for every clip alike
        b = torch.cat(layer.gate.logits(3 * x + 2), dim=1)
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-3)
    plain = _layer(dict(gate=dict(input='mean_tdiff'))).train()
    with torch.no_grad():
        c = torch.cat(plain.gate.logits(x), dim=1)
        d = torch.cat(plain.gate.logits(3 * x + 2), dim=1)
    assert not torch.allclose(c, d, atol=1e-4)


def test_cost_is_counted():
    shape = (2, 8, 6, 12, 12)
    layer = _layer().eval()
    plain = _layer(dict(gate=dict(input='mean_tdiff'))).eval()
    assert layer.gate_macs(shape) - plain.gate_macs(shape) == 2 * 16


def test_full_choice_is_the_base_conv():
    layer = _layer().train()
    with torch.no_grad():
        layer(torch.randn(4, 8, 6, 12, 12))  # non-trivial statistics
    layer.eval()
    base = nn.Conv3d(8, 16, 3, padding=1)
    base.load_state_dict({
        k: v
        for k, v in layer.state_dict().items() if k in ('weight', 'bias')
    })
    with torch.no_grad():
        # the logits still read the standardised input; the bias makes the
        # full choice win for any clip
        layer.gate.fc2.weight.mul_(1e-3)
        layer.gate.fc2.bias.copy_(torch.tensor([50.0, 0.0, 50.0, 0.0]))
        x = torch.randn(2, 8, 6, 12, 12)
        assert torch.equal(layer(x), base(x))


def test_task_loss_reaches_the_gate_and_running_stats_update():
    layer = _layer().train()
    x = torch.randn(3, 8, 6, 12, 12)
    layer(x).pow(2).mean().backward()
    assert layer.gate.fc1.weight.grad.abs().sum() > 0
    assert layer.gate.in_norm.num_batches_tracked.item() == 1
    assert not torch.equal(layer.gate.in_norm.running_mean, torch.zeros(16))


def test_one_clip_in_training_uses_the_running_statistics(monkeypatch):
    # both modes pool with torch ops (eval would use the compiled pooling,
    # equal to float rounding only), so the logits compare exactly
    monkeypatch.setenv('VARED2_NATIVE', '0')
    layer = _layer().train()
    with torch.no_grad():
        layer(torch.randn(4, 8, 6, 12, 12))  # some running statistics
    one = torch.randn(1, 8, 6, 12, 12)
    with torch.no_grad():
        train_logits = torch.cat(layer.gate.logits(one), dim=1)
        layer.eval()
        eval_logits = torch.cat(layer.gate.logits(one), dim=1)
    assert torch.equal(train_logits, eval_logits)


def test_backbones_freezing_their_bns_leave_it_training():
    """mmaction / mmseg ``norm_eval`` switches every ``_BatchNorm`` to eval;
    the gate's standardisation must keep estimating its statistics."""
    from torch.nn.modules.batchnorm import _BatchNorm
    layer = _layer().train()
    for m in layer.modules():  # what norm_eval=True does in train()
        if isinstance(m, _BatchNorm):
            m.eval()
    with torch.no_grad():
        layer(torch.randn(3, 8, 6, 12, 12) + 5)
    assert layer.gate.in_norm.training
    assert layer.gate.in_norm.num_batches_tracked.item() == 1
    assert (layer.gate.in_norm.running_mean > 0.1).any()


def test_bad_value_is_refused():
    with pytest.raises(ValueError, match='gate.norm_input must be a bool'):
        VARED2Conv3d(8, 16, 3, dynamic_cfg=dict(gate=dict(norm_input=1)))
