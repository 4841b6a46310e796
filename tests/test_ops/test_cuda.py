# Copyright (c) varedd_mm contributors. All rights reserved.
"""CUDA smoke test: a train step, an eval step and grouped inference on the
GPU, with no host-device synchronisation in training. Skipped (with the
reason) where CUDA is not available."""
import pytest
import torch
import torch.nn as nn

from varedd_mm import (EfficiencyLoss, VARED2Conv2plus1d, VARED2Conv3d,
                       clip_gflops, dynamic_layers, recalibrate_bn,
                       track_flops)

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(),
    reason='CUDA is not available on this machine (CPU-only torch or no '
    'GPU); the CUDA path is checked on GPU machines')


def _net():
    cfg = dict(search_space=3)
    return nn.Sequential(
        VARED2Conv3d(8, 16, 3, padding=1, bias=False, dynamic_cfg=cfg),
        nn.BatchNorm3d(16), nn.ReLU(),
        VARED2Conv2plus1d(16, 16, 3, padding=1, dynamic_cfg=cfg),
        nn.BatchNorm3d(16)).cuda()


def test_train_step_without_host_sync():
    net = _net().train()
    loss_fn = EfficiencyLoss(loss_weight=0.5, target=0.5, cost='realised')
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x = torch.randn(4, 8, 8, 12, 12, device='cuda')
    net(x)  # first call builds the per-shape cost tables
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode('error')
    try:
        out = net(x)
        loss = out.square().mean() + loss_fn(net)['loss_eff']
        opt.zero_grad()
        loss.backward()
        opt.step()
    finally:
        torch.cuda.set_sync_debug_mode('default')
    for _, m in dynamic_layers(net):
        assert m.last_choice.device.type == 'cuda'
        assert m.last_macs.device.type == 'cuda'


def test_eval_grouped_batch_equals_each_clip_alone():
    net = _net().double()
    recalibrate_bn(net, [torch.randn(4, 8, 8, 12, 12, device='cuda').double()])
    net.eval()
    for _, m in dynamic_layers(net):
        with torch.no_grad():  # clips choose differently
            m.gate.fc2.weight.normal_(std=5.0)
    track_flops(net)
    x = torch.randn(6, 8, 8, 12, 12, device='cuda', dtype=torch.float64)
    with torch.no_grad():
        out = net(x)
        costs = clip_gflops(net)
        assert costs.device.type == 'cuda' and costs.shape == (6, )
        for n in range(6):
            alone = net(x[n:n + 1])
            torch.testing.assert_close(alone[0], out[n])
            assert clip_gflops(net)[0] == costs[n]
