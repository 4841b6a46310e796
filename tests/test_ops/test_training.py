# Copyright (c) varedd_mm contributors. All rights reserved.
"""Efficiency loss and the BN placement (recalibration) under training."""
import pytest
import torch
import torch.nn as nn

from varedd_mm import (EfficiencyLoss, VARED2Conv3d, dynamic_layers,
                       fixed_policy, recalibrate_bn)


def _net():
    return nn.Sequential(
        VARED2Conv3d(8, 16, 3, padding=1, bias=False), nn.BatchNorm3d(16),
        nn.ReLU(), VARED2Conv3d(16, 16, 3, padding=1, bias=False),
        nn.BatchNorm3d(16))


def test_efficiency_loss_values():
    net = _net().train()
    net(torch.randn(3, 8, 8, 8, 8))
    layers = [m for _, m in dynamic_layers(net)]
    expected = sum(m.last_expected_macs for m in layers)
    realised = sum(m.last_macs for m in layers)
    full = sum(m.full_macs for m in layers)
    ratio = expected.mean() / full
    out = EfficiencyLoss(loss_weight=0.3)(net)
    assert set(out) == {'loss_eff', 'eff_ratio_expected', 'eff_ratio_realised'}
    torch.testing.assert_close(out['loss_eff'], 0.3 * ratio**2)
    torch.testing.assert_close(out['eff_ratio_expected'], ratio)
    torch.testing.assert_close(out['eff_ratio_realised'],
                               (realised.mean() / full).float())
    assert out['loss_eff'].requires_grad
    assert not out['eff_ratio_expected'].requires_grad
    # budget form: zero below the target, squared excess above it
    r = ratio.item()
    low = EfficiencyLoss(target=min(1.0, r + 0.1))(net)['loss_eff']
    assert low.item() == 0.0
    high = EfficiencyLoss(loss_weight=2.0, target=r / 2)(net)['loss_eff']
    torch.testing.assert_close(high, 2.0 * (ratio - r / 2)**2)


def test_efficiency_loss_on_realised_cost():
    """``cost='realised'``: the value is that of the arg-max choices, the
    gradient that of the expected cost scaled by the realised excess."""
    net = _net().train()
    net(torch.randn(3, 8, 8, 8, 8))
    layers = [m for _, m in dynamic_layers(net)]
    full = sum(m.full_macs for m in layers)
    realised = (sum(m.last_macs for m in layers).mean() / full).item()
    expected = sum(m.last_expected_macs for m in layers).mean() / full
    target = realised / 2
    out = EfficiencyLoss(loss_weight=2.0, target=target, cost='realised')(net)
    assert out['loss_eff'].item() == pytest.approx(
        2.0 * (realised - target)**2, rel=1e-6)
    # the case is only telling when the two ratios differ (random gates)
    assert realised != pytest.approx(expected.item(), abs=1e-4)
    bias = layers[0].gate.fc2.bias
    grads = torch.autograd.grad(out['loss_eff'], [bias], retain_graph=True)[0]
    ref = torch.autograd.grad(2.0 * 2 * (realised - target) * expected,
                              [bias])[0]
    torch.testing.assert_close(grads, ref)
    # no excess over the target: zero loss
    low = EfficiencyLoss(
        target=min(1.0, realised + 0.01), cost='realised')(net)['loss_eff']
    assert low.item() == 0.0


def test_efficiency_loss_drives_gates_to_cheap_choices():
    net = _net().train()
    x = torch.randn(4, 8, 8, 8, 8)
    loss_fn = EfficiencyLoss(loss_weight=1.0)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    net(x)
    start = loss_fn(net)
    for _ in range(60):
        opt.zero_grad()
        net(x)
        loss_fn(net)['loss_eff'].backward()
        opt.step()
    net(x)
    end = loss_fn(net)
    assert end['eff_ratio_expected'] < 0.6 * start['eff_ratio_expected']
    assert end['eff_ratio_realised'] < 0.35
    net.eval()
    net(x)
    assert all((m.last_choice == 1).all() for _, m in dynamic_layers(net))


def _train_briefly(net, x, steps=30):
    target = torch.randn_like(net(x)).detach()
    loss_fn = EfficiencyLoss(loss_weight=0.5)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    for _ in range(steps):
        opt.zero_grad()
        out = net(x)
        loss = (out - target).square().mean() + loss_fn(net)['loss_eff']
        loss.backward()
        opt.step()


def test_bn_recalibration_makes_eval_consistent_with_training():
    """BN after a dynamic conv: during training it sees the soft mixture of
    choices; at inference the hard arg-max choice. After recalibration the
    eval-mode output equals what train-mode BN gives for the same hard
    choices (up to the unbiased-variance factor), so eval does not drift
    from training-time behaviour."""
    torch.manual_seed(1)
    net = _net()
    net.train()
    x = torch.randn(8, 8, 8, 8, 8)
    _train_briefly(net, x)

    net.eval()
    eval_before = net(x).detach()
    choices = [m.last_choice.clone() for _, m in dynamic_layers(net)]

    def train_mode_reference():
        # train-mode BN (batch statistics) on the same hard choices
        net.train()
        for _, m in dynamic_layers(net):
            m.training = False  # hard, per-clip arg-max policy
        saved = [(bn.running_mean.clone(), bn.running_var.clone())
                 for bn in net.modules() if isinstance(bn, nn.BatchNorm3d)]
        with torch.no_grad():
            ref = net(x)
        for bn, (mean, var) in zip(
            [b for b in net.modules() if isinstance(b, nn.BatchNorm3d)],
                saved):
            bn.running_mean.copy_(mean)
            bn.running_var.copy_(var)
        net.eval()
        return ref

    ref = train_mode_reference()
    recalibrate_bn(net, [x])
    net.eval()
    eval_after = net(x).detach()
    assert all(
        torch.equal(c, m.last_choice)
        for c, (_, m) in zip(choices, dynamic_layers(net)))
    err_after = (eval_after - ref).abs().max()
    err_before = (eval_before - ref).abs().max()
    assert err_after < 5e-3, err_after
    assert err_after < err_before / 10, (err_after, err_before)
    # modes are restored
    assert not net.training and all(not m.training for m in net.modules())


def test_recalibrate_bn_restores_modes_and_momentum():
    net = _net().train()
    bn = net[1]
    bn.momentum = 0.3
    recalibrate_bn(net, [torch.randn(2, 8, 4, 4, 4)])
    assert net.training and all(m.training for m in net.modules())
    assert bn.momentum == 0.3
    with pytest.raises(ValueError, match='got no batches'):
        recalibrate_bn(net, [])


def test_forced_policy_training_uses_that_branch_only():
    net = _net().train()
    x = torch.randn(2, 8, 8, 8, 8)
    with fixed_policy(net, 1, 1):
        out = net(x)
        out.sum().backward()
    for _, m in dynamic_layers(net):
        assert m.gate.fc1.weight.grad is None  # gate not run
        assert m.channel_ops[0].weight.grad is not None


def test_recalibration_with_single_clip_groups_at_1x1x1():
    """Grouped inference in train-mode BN: a group of one clip at 1x1x1 has
    no batch statistics; its bn_s uses the running ones instead of failing
    (seen on R(2+1)D-18's last stage)."""
    from varedd_mm import VARED2Conv2plus1d
    net = nn.Sequential(
        VARED2Conv2plus1d(8, 16, 3, padding=1), nn.BatchNorm3d(16))
    conv = net[0]

    def logits(x):  # clip n takes choice (n % 2, n % 2)
        n = torch.arange(x.shape[0]) % 2
        oh = torch.nn.functional.one_hot(n, 2).float()
        return oh, oh

    conv.gate.logits = logits
    x = torch.randn(2, 8, 1, 1, 1)
    recalibrate_bn(net, [x])
    assert conv.last_choice.tolist() == [[0, 0], [1, 1]]
    assert net[1].num_batches_tracked.item() == 1
