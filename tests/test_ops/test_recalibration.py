# Copyright (c) varedd_mm contributors. All rights reserved.
"""Which BNs ``recalibrate_bn`` updates, and what it estimates."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from varedd_mm import VARED2Conv2plus1d, VARED2Conv3d, recalibrate_bn
from varedd_mm.ops.bn import batch_moments


def _force_per_clip(conv, choices):
    """Make clip ``n`` of every batch take ``choices[n]`` at inference."""
    nt = conv.dynamic_spec.num_temporal
    nc = conv.dynamic_spec.num_channel

    def logits(x):
        c = torch.tensor(choices[:x.shape[0]])
        return (F.one_hot(c[:, 0], nt).float(), F.one_hot(c[:, 1], nc).float())

    conv.gate.logits = logits


def _stats(values):
    """Per-channel mean and unbiased variance of ``(C, n)`` values."""
    return values.mean(dim=1), values.var(dim=1, unbiased=True)


def test_bn_s_statistics_combine_every_group_of_the_batch():
    """``bn_s`` of the (2+1)D conv is reached once per choice group, on the
    first ``m`` channels for reduced widths: its statistic is that of every
    element it normalised in the batch, each channel weighted by the
    elements it saw (not an unweighted average over the calls)."""
    conv = VARED2Conv2plus1d(8, 16, 3, padding=1)
    # three clips at the full choice, two at (1, 1): half the mid channels
    # of every second frame
    _force_per_clip(conv, [(0, 0), (0, 0), (0, 0), (1, 1), (1, 1)])
    x = torch.randn(5, 8, 6, 5, 5)
    recalibrate_bn(conv, [x])
    assert conv.last_choice.tolist() == [[0, 0]] * 3 + [[1, 1]] * 2

    m = conv.mid_width(1)
    with torch.no_grad():
        full = conv.conv_s(x[:3]).transpose(0, 1).flatten(1)
        w, b = conv.conv_s.weight[:m], conv.conv_s.bias[:m]
        red = F.conv3d(x[3:, :, ::2], w, b, conv.conv_s.stride,
                       conv.conv_s.padding).transpose(0, 1).flatten(1)
    mean_lo, var_lo = _stats(torch.cat([full[:m], red], dim=1))
    mean_hi, var_hi = _stats(full[m:])
    bn = conv.bn_s
    torch.testing.assert_close(bn.running_mean, torch.cat([mean_lo, mean_hi]))
    torch.testing.assert_close(bn.running_var, torch.cat([var_lo, var_hi]))
    assert bn.num_batches_tracked.item() == 1


@pytest.mark.parametrize('reduced,taps', [((1, 0), 'subsample'),
                                          ((1, 1), 'subsample'),
                                          ((1, 0), 'interp')])
def test_choice_groups_are_normalised_together(reduced, taps):
    """``bn_s`` is reached once per choice group; during the pass it
    normalises every group with the statistics of the whole batch, as a BN
    called once would, not each group with its own (where the policy
    groups clips by content, the BN after the conv would then be
    estimated on activations inference never produces). So the BN after
    the conv gets exactly the statistics of the conv's inference output
    with ``bn_s`` at those batch statistics (its running variance is the
    unbiased one: scaled back to the biased one normalisation uses)."""
    torch.manual_seed(0)
    conv = VARED2Conv2plus1d(
        8, 16, 3, padding=1, dynamic_cfg=dict(temporal_taps=taps))
    bn = nn.BatchNorm3d(16)
    net = nn.Sequential(conv, bn)
    _force_per_clip(conv, [(0, 0)] * 3 + [reduced] * 3)
    x = torch.randn(6, 8, 6, 5, 5)
    x[3:] = 3 * x[3:] + 2  # the reduced clips differ in content
    recalibrate_bn(net, [x])
    assert conv.last_choice.tolist() == [[0, 0]] * 3 + [list(reduced)] * 3
    # elements per mid channel: every frame, every second frame (the
    # reduced width's channels only)
    n = torch.full((conv.mid_channels, ), 3 * 6 * 25.0)
    n[:conv.mid_width(reduced[1])] += 3 * 3 * 25
    conv.bn_s.running_var.mul_((n - 1) / n)
    net.eval()
    with torch.no_grad():
        y = conv(x)
    mean, var = _stats(y.transpose(0, 1).flatten(1))
    torch.testing.assert_close(bn.running_mean, mean)
    torch.testing.assert_close(bn.running_var, var)


def test_batch_moments_weight_each_channel_by_the_parts_that_reach_it():
    a = torch.randn(3, 4, 2, 5)
    b = torch.randn(2, 2, 3, 3) * 2 + 1  # the first two channels only
    c = torch.randn(1, 5, 1, 1)  # one value per channel
    run_mean, run_var = torch.full((6, ), 7.0), torch.full((6, ), 3.0)
    mean, var = batch_moments([a, b, c], run_mean, run_var)
    lo = torch.cat([
        a[:, :2].transpose(0, 1).flatten(1),
        b.transpose(0, 1).flatten(1), c[:, :2].flatten(1).t()
    ],
                   dim=1)
    hi = torch.cat(
        [a[:, 2:].transpose(0, 1).flatten(1), c[:, 2:4].flatten(1).t()], dim=1)
    torch.testing.assert_close(mean[:2], lo.mean(dim=1))
    torch.testing.assert_close(var[:2], lo.var(dim=1, unbiased=False))
    torch.testing.assert_close(mean[2:4], hi.mean(dim=1))
    torch.testing.assert_close(var[2:4], hi.var(dim=1, unbiased=False))
    # one value (channel 4) or none (channel 5): the running statistics
    assert mean[4:].tolist() == [7.0, 7.0] and var[4:].tolist() == [3.0, 3.0]
    half = batch_moments([a.bfloat16()], run_mean.bfloat16(),
                         run_var.bfloat16())
    assert half[0].dtype == half[1].dtype == torch.bfloat16


def test_statistics_are_the_average_of_per_batch_statistics():
    """Several batches: the average of the batch means and of the unbiased
    batch variances (what nn.BatchNorm with momentum=None computes)."""
    conv = VARED2Conv3d(4, 6, 3, padding=1, bias=False)
    bn = nn.BatchNorm3d(6)
    net = nn.Sequential(conv, bn)
    batches = [torch.randn(3, 4, 4, 5, 5) for _ in range(3)]
    ref = nn.BatchNorm3d(6, momentum=None)
    conv.eval()
    with torch.no_grad():
        outs = [conv(b) for b in batches]
        for y in outs:
            ref(y)
    recalibrate_bn(net, batches)
    torch.testing.assert_close(bn.running_mean, ref.running_mean)
    torch.testing.assert_close(bn.running_var, ref.running_var)
    assert bn.num_batches_tracked.item() == 3


class _WithIdleBN(nn.Module):
    """A dynamic conv + BN, a BN the forward never calls and a BN the
    model keeps frozen (as ``norm_eval`` does)."""

    def __init__(self):
        super().__init__()
        self.conv = VARED2Conv3d(4, 8, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm3d(8)
        self.frozen = nn.BatchNorm3d(8)
        self.idle = nn.BatchNorm3d(8)  # e.g. an auxiliary training head

    def train(self, mode=True):
        super().train(mode)
        self.frozen.eval()
        return self

    def forward(self, x):
        return self.frozen(self.bn(self.conv(x)))


def test_bns_that_do_not_run_or_are_frozen_keep_their_statistics():
    net = _WithIdleBN()
    for bn in (net.bn, net.frozen, net.idle):
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.5, 2)
        bn.num_batches_tracked.fill_(7)
    before = {
        k: v.clone()
        for k, v in net.state_dict().items()
        if k.startswith(('frozen.', 'idle.'))
    }
    old_bn = net.bn.running_mean.clone()
    recalibrate_bn(net, [torch.randn(2, 4, 4, 6, 6)])
    for k, v in before.items():
        assert torch.equal(net.state_dict()[k], v), k
    assert not torch.allclose(net.bn.running_mean, old_bn)
    assert net.bn.num_batches_tracked.item() == 1


def test_reduce_combines_the_processes_before_writing():
    """Distributed training: ``reduce`` sums the per-channel totals of all
    ranks before they are written, so two ranks that saw one batch each
    write what one process seeing both batches writes (also for channels
    only one rank saw)."""
    torch.manual_seed(0)
    b1, b2 = torch.randn(3, 8, 4, 5, 5), torch.randn(2, 8, 4, 5, 5)

    def net():
        torch.manual_seed(1)
        conv = VARED2Conv2plus1d(8, 16, 3, padding=1)
        return conv

    ref = net()
    _force_per_clip(ref, [(0, 0), (0, 0), (0, 0)])
    recalibrate_bn(ref, [b1, b2])

    other = {}
    rank2 = net()
    _force_per_clip(rank2, [(0, 0)] * 3)
    recalibrate_bn(
        rank2, [b2],
        reduce=lambda ts: other.setdefault('totals', [t.clone() for t in ts]))

    def add_rank2(tensors):
        for t, o in zip(tensors, other['totals']):
            t.add_(o)

    rank1 = net()
    _force_per_clip(rank1, [(0, 0)] * 3)
    recalibrate_bn(rank1, [b1], reduce=add_rank2)
    torch.testing.assert_close(rank1.bn_s.running_mean, ref.bn_s.running_mean)
    torch.testing.assert_close(rank1.bn_s.running_var, ref.bn_s.running_var)
    assert rank1.bn_s.num_batches_tracked.item() == 2


def test_a_failing_pass_leaves_every_statistic_as_it_was():
    net = _WithIdleBN()
    net.bn.num_batches_tracked.fill_(1000)
    before = {k: v.clone() for k, v in net.state_dict().items()}

    def batches():
        yield torch.randn(2, 4, 4, 6, 6)
        raise RuntimeError('loader failed')

    import pytest
    with pytest.raises(RuntimeError, match='loader failed'):
        recalibrate_bn(net, batches())
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert net.bn.momentum == 0.1


def test_grouped_inference_under_cpu_autocast():
    """Mixed choices under CPU autocast: every group comes out in the
    autocast dtype (the direct oneDNN call would not cast)."""
    from varedd_mm import VARED2Conv2d
    conv = VARED2Conv2d(8, 16, 3, padding=1)
    conv.eval()
    _force_per_clip(conv, [(0, 0), (0, 1), (0, 1)])
    x = torch.randn(3, 8, 6, 6)
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        out = conv(x)
    assert out.dtype == torch.bfloat16
    assert conv.last_choice.tolist() == [[0, 0], [0, 1], [0, 1]]


def test_recalibration_of_mixed_groups_under_cpu_autocast():
    """The whole-batch statistics of a grouped ``bn_s`` come in the
    running statistics' dtype, which ``F.batch_norm`` takes with float32
    affine parameters under autocast."""
    conv = VARED2Conv2plus1d(8, 16, 3, padding=1)
    bn = nn.BatchNorm3d(16)
    _force_per_clip(conv, [(0, 0), (1, 0), (1, 1)])
    with torch.autocast('cpu', dtype=torch.bfloat16):
        recalibrate_bn(nn.Sequential(conv, bn), [torch.randn(3, 8, 6, 5, 5)])
    assert conv.last_choice.tolist() == [[0, 0], [1, 0], [1, 1]]
    assert bn.num_batches_tracked.item() == 1
    assert torch.isfinite(bn.running_var).all()
