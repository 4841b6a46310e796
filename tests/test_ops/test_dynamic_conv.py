# Copyright (c) varedd_mm contributors. All rights reserved.
"""Behaviour of the dynamic convs: exactness at (0, 0), what each choice
computes, gradients, eval determinism and grouping."""
import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.models.common import Conv2plus1d

from varedd_mm import (VARED2Conv2d, VARED2Conv2plus1d, VARED2Conv3d,
                       fixed_policy, random_policy, smallest_policy)
from varedd_mm.ops.cheap_ops import num_computed_frames
from varedd_mm.ops.conv2plus1d import derive_interp_kernel

# (kernel, stride, padding, dilation, groups) of the conv types the mm
# backbones use: 3x3x3 (I3D/C3D), 1x1x1, 1x3x3, 3x1x1, spatial/temporal
# stride, dilation, depthwise (X3D).
CONV3D_CASES = [
    ((3, 3, 3), 1, 1, 1, 1),
    ((1, 1, 1), 1, 0, 1, 1),
    ((1, 3, 3), (1, 2, 2), (0, 1, 1), 1, 1),
    ((3, 1, 1), (2, 1, 1), (1, 0, 0), 1, 1),
    ((3, 3, 3), (1, 1, 1), 2, 2, 1),
    ((3, 3, 3), 1, 1, 1, 16),
]


def _base_conv3d(dyn):
    base = nn.Conv3d(dyn.in_channels, dyn.out_channels, dyn.kernel_size,
                     dyn.stride, dyn.padding, dyn.dilation, dyn.groups,
                     dyn.bias is not None)
    base.load_state_dict({
        k: v
        for k, v in dyn.state_dict().items() if k in ('weight', 'bias')
    })
    return base


@pytest.mark.parametrize('case', CONV3D_CASES)
@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_conv3d_choice00_is_base_bit_for_bit(case, mode):
    k, s, p, d, g = case
    dyn = VARED2Conv3d(16, 32, k, s, p, d, g, dynamic_cfg=dict(search_space=3))
    base = _base_conv3d(dyn)
    x = torch.randn(2, 16, 6, 9, 9)
    getattr(dyn, mode)()
    with fixed_policy(dyn, 0, 0):
        assert torch.equal(dyn(x), base(x))


@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_conv2plus1d_choice00_is_mmaction_conv2plus1d(mode):
    dyn = VARED2Conv2plus1d(16, 32, 3, stride=(2, 2, 2), padding=1)
    base = Conv2plus1d(16, 32, 3, stride=(2, 2, 2), padding=1)
    missing, unexpected = base.load_state_dict(dyn.state_dict(), strict=False)
    assert not missing
    assert all(
        k.startswith(('gate.', 'temporal_ops.', 'channel_ops.'))
        for k in unexpected)
    getattr(dyn, mode)()
    getattr(base, mode)()
    x = torch.randn(2, 16, 7, 10, 10)
    with fixed_policy(dyn, 0, 0):
        assert torch.equal(dyn(x), base(x))


@pytest.mark.parametrize('mode', ['train', 'eval'])
def test_conv2d_choice0_is_base(mode):
    dyn = VARED2Conv2d(16, 32, 3, stride=2, padding=2, dilation=2)
    base = nn.Conv2d(16, 32, 3, stride=2, padding=2, dilation=2)
    base.load_state_dict({k: dyn.state_dict()[k] for k in ('weight', 'bias')})
    getattr(dyn, mode)()
    x = torch.randn(2, 16, 17, 17)
    with fixed_policy(dyn, channel=0):
        assert torch.equal(dyn(x), base(x))


def _frames(t, k=3, s=1, p=1):
    return (t + 2 * p - k) // s + 1


@pytest.mark.parametrize('search_space', [2, 3])
@pytest.mark.parametrize('t', [1, 3, 5, 8])
def test_conv3d_what_each_choice_computes(search_space, t):
    """At (i, j) the first C/2**j channels of frames 0, R, 2R, ... are the
    base output; the rest is the cheap rebuild (identity-initialised ops:
    linear interpolation / hold in time, copies of the source channel)."""
    dyn = VARED2Conv3d(
        8, 16, 3, padding=1, dynamic_cfg=dict(search_space=search_space))
    dyn.eval()
    x = torch.randn(2, 8, t, 6, 6)
    base = F.conv3d(x, dyn.weight, dyn.bias, 1, 1)
    t_out = base.shape[2]
    for i, j in itertools.product(range(search_space), repeat=2):
        with fixed_policy(dyn, i, j):
            out = dyn(x)
        assert out.shape == base.shape
        r, c = 2**i, 16 >> j
        t_c = num_computed_frames(t_out, r)
        computed = out[:, :c, ::r]
        assert computed.shape[2] == t_c
        torch.testing.assert_close(
            computed, base[:, :c, ::r], rtol=1e-4, atol=1e-5)
        # channel rebuild: generated channel q * c + k copies channel k
        for g in range(16 - c):
            torch.testing.assert_close(out[:, c + g, ::r], out[:, g % c, ::r])
        # temporal rebuild: interpolation between computed neighbours,
        # hold after the last computed frame
        for pos in range(t_out):
            k, q = divmod(pos, r)
            if q == 0:
                continue
            if k + 1 < t_c:
                want = (1 - q / r) * out[:, :,
                                         k * r] + q / r * out[:, :,
                                                              (k + 1) * r]
            else:
                want = out[:, :, k * r]
            torch.testing.assert_close(out[:, :, pos], want)


@pytest.mark.parametrize('search_space', [2, 3])
@pytest.mark.parametrize('t', [2, 5, 8, 16])
def test_conv2plus1d_what_each_choice_computes(search_space, t):
    """Temporal choice: the spatial conv sees only frames 0, R, 2R, ...;
    channel choice: the first ceil(M/2**j) mid channels and C/2**j outputs;
    (T not divisible by R and T < R included)."""
    dyn = VARED2Conv2plus1d(
        8,
        16,
        3,
        stride=(2, 1, 1),
        padding=1,
        dynamic_cfg=dict(search_space=search_space))
    dyn.eval()
    x = torch.randn(2, 8, t, 6, 6)
    with fixed_policy(dyn, 0, 0):
        full = dyn(x)
    t_out = full.shape[2]
    assert t_out == _frames(t, s=2)
    for i, j in itertools.product(range(search_space), repeat=2):
        r, c, m = 2**i, 16 >> j, dyn.mid_width(j)
        with fixed_policy(dyn, i, j):
            out = dyn(x)
        assert out.shape == full.shape
        s = F.conv3d(x[:, :, ::r], dyn.conv_s.weight[:m], dyn.conv_s.bias[:m],
                     1, (0, 1, 1))
        s = F.batch_norm(s, dyn.bn_s.running_mean[:m],
                         dyn.bn_s.running_var[:m], dyn.bn_s.weight[:m],
                         dyn.bn_s.bias[:m], False, 0., dyn.bn_s.eps).relu()
        want = F.conv3d(s, dyn.conv_t.weight[:c, :m], dyn.conv_t.bias[:c],
                        (2, 1, 1), (1, 0, 0))
        assert want.shape[2] == num_computed_frames(t_out, r)
        torch.testing.assert_close(out[:, :c, ::r], want)


def _dense_frames(s: torch.Tensor, r: int, t_in: int) -> torch.Tensor:
    """The full-rate sequence of ``t_in`` frames that ``s`` (frames 0, r,
    2r, ...) stands for: linear interpolation between computed frames, the
    last computed frame held after it (as the temporal cheap op)."""
    n, frames = s.shape[2], []
    for t in range(t_in):
        k, q = divmod(t, r)
        if q == 0 or k + 1 >= n:
            frames.append(s[:, :, k])
        else:
            frames.append(s[:, :, k] * (1 - q / r) + s[:, :, k + 1] * (q / r))
    return torch.stack(frames, 2)


@pytest.mark.parametrize('search_space', [2, 3])
@pytest.mark.parametrize('t', [1, 2, 3, 5, 8])
@pytest.mark.parametrize('stride_t', [1, 2])
def test_conv2plus1d_interp_taps_read_interpolated_frames(
        search_space, t, stride_t):
    """temporal_taps='interp': the output at the computed frames is the base
    temporal conv (its zero padding, its stride) run on the full-rate
    spatial output whose skipped frames are interpolated from the computed
    ones and held after the last one; gradients reach conv_t like that
    reference's; the cost is 'subsample''s plus the two made-up frames."""
    kw = dict(stride=(stride_t, 1, 1), padding=1)
    dyn = VARED2Conv2plus1d(
        8,
        16,
        3,
        dynamic_cfg=dict(search_space=search_space, temporal_taps='interp'),
        **kw).double().eval()
    sub = VARED2Conv2plus1d(
        8, 16, 3, dynamic_cfg=dict(search_space=search_space), **kw)
    x = torch.randn(2, 8, t, 6, 6, dtype=torch.float64)
    macs, sub_macs = dyn.macs_table(x.shape), sub.macs_table(x.shape)
    with fixed_policy(dyn, 0, 0):
        full = dyn(x)
    for i, j in itertools.product(range(1, search_space), range(search_space)):
        r, c, m = 2**i, 16 >> j, dyn.mid_width(j)
        assert macs[(i, j)] == sub_macs[(i, j)] + 2 * 6 * 6 * m
        dyn.zero_grad()
        with fixed_policy(dyn, i, j):
            out = dyn(x)
        assert out.shape == full.shape
        out[:, :c, ::r].sum().backward()
        got_grad = dyn.conv_t.weight.grad[:c, :m].clone()
        with torch.no_grad():
            s = F.conv3d(x[:, :, ::r], dyn.conv_s.weight[:m],
                         dyn.conv_s.bias[:m], 1, (0, 1, 1))
            s = F.batch_norm(s, dyn.bn_s.running_mean[:m],
                             dyn.bn_s.running_var[:m], dyn.bn_s.weight[:m],
                             dyn.bn_s.bias[:m], False, 0.,
                             dyn.bn_s.eps).relu()
        w = dyn.conv_t.weight[:c, :m].detach().requires_grad_()
        want = F.conv3d(
            _dense_frames(s, r, t), w, dyn.conv_t.bias[:c].detach(),
            (stride_t, 1, 1), (1, 0, 0))[:, :, ::r]
        assert want.shape[2] == num_computed_frames(full.shape[2], r)
        torch.testing.assert_close(out[:, :c, ::r], want)
        want.sum().backward()
        torch.testing.assert_close(got_grad, w.grad)


def test_derive_interp_kernel_keeps_layout_and_refuses_other_kernels():
    weight = torch.randn(8, 6, 3, 1,
                         1).contiguous(memory_format=torch.channels_last_3d)
    for w in (weight, weight[:4, :3]):  # full and sliced (a channel choice)
        derived = derive_interp_kernel(w, 2)
        assert derived.is_contiguous(memory_format=torch.channels_last_3d)
        centre = w[:, :, 1] + 0.5 * (w[:, :, 0] + w[:, :, 2])
        torch.testing.assert_close(derived[:, :, 1], centre)
    torch.testing.assert_close(derive_interp_kernel(weight, 1), weight)
    with pytest.raises(ValueError, match=r'\(C_out, C_in, 3, 1, 1\)'):
        derive_interp_kernel(torch.randn(8, 6, 5, 1, 1), 2)


def test_conv2d_channel_choices():
    dyn = VARED2Conv2d(8, 16, 3, padding=1, dynamic_cfg=dict(search_space=3))
    dyn.eval()
    x = torch.randn(2, 8, 9, 9)
    base = F.conv2d(x, dyn.weight, dyn.bias, padding=1)
    for j in range(3):
        with fixed_policy(dyn, channel=j):
            out = dyn(x)
        c = 16 >> j
        assert out.shape == base.shape
        torch.testing.assert_close(out[:, :c], base[:, :c])


def test_grouped_conv_reduces_whole_groups():
    """Depthwise (X3D): channel choice j computes the first groups/2**j
    groups, each reading only its own input channels."""
    dyn = VARED2Conv3d(16, 16, 3, padding=1, groups=16)
    dyn.eval()
    x = torch.randn(2, 16, 4, 6, 6)
    base = F.conv3d(x, dyn.weight, dyn.bias, 1, 1, 1, 16)
    with fixed_policy(dyn, 0, 1):
        out = dyn(x)
    torch.testing.assert_close(out[:, :8], base[:, :8])
    table = dyn.macs_table(x.shape)
    assert table[(0, 1)] < table[(0, 0)]


@pytest.mark.parametrize('cls,shape', [
    (VARED2Conv3d, (3, 8, 6, 6, 6)),
    (VARED2Conv2plus1d, (3, 8, 6, 6, 6)),
    (VARED2Conv2d, (3, 8, 6, 6)),
])
def test_gradients_reach_gate_and_every_shared_weight(cls, shape):
    dyn = cls(8, 16, 3, padding=1, dynamic_cfg=dict(search_space=3))
    dyn.train()
    x = torch.randn(*shape)
    out = dyn(x)
    (out.square().mean() + dyn.last_expected_macs.mean() / 1e9).backward()
    for name, p in dyn.named_parameters():
        assert p.grad is not None, name
        assert p.grad.abs().sum() > 0, name


def _steer_gate(dyn):
    """Make the gate choose from the sign of the input mean: positive clips
    take the cheapest choice, negative ones the full one."""
    g = dyn.gate
    with torch.no_grad():
        for p in g.parameters():
            p.zero_()
        g.fc1.weight[0] = 1.0
        g.fc1.weight[1] = -1.0
        kt = g.num_temporal
        g.fc2.weight[kt - 1, 0] = 10.0
        g.fc2.weight[0, 1] = 10.0
        g.fc2.weight[kt + g.num_channel - 1, 0] = 10.0
        g.fc2.weight[kt, 1] = 10.0


@pytest.mark.parametrize('cls', [VARED2Conv3d, VARED2Conv2plus1d])
def test_grouped_batch_equals_each_clip_alone(cls):
    # float64: the conv backend itself is not bitwise batch-invariant
    # (a batched conv3d differs from per-clip runs by ~1e-6 relative in
    # float32), so compare at float64 precision instead of bit equality.
    dyn = cls(8, 16, 3, padding=1, dynamic_cfg=dict(search_space=3)).double()
    _steer_gate(dyn)
    dyn.eval()
    x = torch.randn(5, 8, 8, 6, 6, dtype=torch.float64)
    x[[0, 2, 3]] += 2.0
    x[[1, 4]] -= 2.0
    out = dyn(x)
    choices = dyn.last_choice.clone()
    assert len({tuple(c) for c in choices.tolist()}) == 2
    assert choices[0].tolist() == [2, 2] and choices[1].tolist() == [0, 0]
    macs = dyn.last_macs.clone()
    for n in range(5):
        alone = dyn(x[n:n + 1])
        assert dyn.last_choice[0].tolist() == choices[n].tolist()
        torch.testing.assert_close(alone[0], out[n], rtol=1e-12, atol=1e-12)
        assert dyn.last_macs[0] == macs[n]
    assert macs[0] < macs[1]


@pytest.mark.parametrize('cls', [VARED2Conv3d, VARED2Conv2plus1d])
def test_eval_takes_the_gates_argmax_ties_to_full(cls):
    """At inference each clip runs the arg-max choice of its own gate
    logits, a tie going to the full choice, and the output is that choice's
    output (the same as forcing it)."""
    dyn = cls(8, 16, 3, padding=1, dynamic_cfg=dict(search_space=3))
    dyn.eval()
    x = torch.randn(3, 8, 8, 6, 6)
    fc2 = dyn.gate.fc2
    kt = dyn.gate.num_temporal
    with torch.no_grad():
        fc2.weight.zero_()
        fc2.bias.zero_()  # all logits tie
    out = dyn(x)
    assert dyn.last_choice.tolist() == [[0, 0]] * 3
    with fixed_policy(dyn, 0, 0):
        assert torch.equal(out, dyn(x))
    with torch.no_grad():
        fc2.bias[2] = 1.0  # temporal choice 2
        fc2.bias[kt + 1] = 1.0  # channel choice 1
    out = dyn(x)
    assert dyn.last_choice.tolist() == [[2, 1]] * 3
    with fixed_policy(dyn, 2, 1):
        assert torch.equal(out, dyn(x))


@pytest.mark.parametrize('cls', [VARED2Conv3d, VARED2Conv2plus1d])
def test_training_output_is_expectation_over_choices(cls):
    dyn = cls(8, 16, 3, padding=1, dynamic_cfg=dict(search_space=3))
    dyn.train()
    if cls is VARED2Conv2plus1d:
        # batch statistics of bn_s would differ between the sub-sampled
        # forced choice and the full spatial output the expectation slices
        dyn.bn_s.eval()
        with torch.no_grad():
            dyn.bn_s.running_mean.uniform_(-0.5, 0.5)
            dyn.bn_s.running_var.uniform_(0.5, 2.0)
    with torch.no_grad():  # spread the policy so every choice counts
        dyn.gate.fc2.bias.normal_()
    x = torch.randn(3, 8, 8, 6, 6)
    out = dyn(x)
    pt, pc = dyn.last_probs
    assert (pt > 0.01).all() and (pc > 0.01).all()
    want = 0
    for i, j in itertools.product(range(3), repeat=2):
        with fixed_policy(dyn, i, j):
            y = dyn(x)
        want = want + (pt[:, i] * pc[:, j]).view(3, 1, 1, 1, 1) * y
    torch.testing.assert_close(out, want, rtol=1e-4, atol=1e-5)


def test_fixed_policy_restores_gates_and_ignores_unreduced_dims():
    seq = nn.Sequential(
        VARED2Conv3d(
            8, 16, 3, padding=1, dynamic_cfg=dict(dims=('temporal', ))),
        VARED2Conv3d(16, 16, 3, padding=1, dynamic_cfg=dict(dims='channel')))
    with fixed_policy(seq, temporal=1, channel=1):
        assert seq[0].forced_choice == (1, 0)
        assert seq[1].forced_choice == (0, 1)
    assert seq[0].forced_choice is None and seq[1].forced_choice is None
    with pytest.raises(RuntimeError):
        with fixed_policy(seq, 1, 1):
            raise RuntimeError('boom')
    assert seq[0].forced_choice is None


def _three_search_spaces():
    """Layers reducing time only (search space 3), channels only (2) and
    both (3)."""
    return nn.Sequential(
        VARED2Conv3d(
            8,
            16,
            3,
            padding=1,
            dynamic_cfg=dict(dims=('temporal', ), search_space=3)),
        VARED2Conv3d(16, 16, 3, padding=1, dynamic_cfg=dict(dims='channel')),
        VARED2Conv3d(16, 16, 3, padding=1, dynamic_cfg=dict(search_space=3)))


def test_smallest_policy_takes_each_layers_last_options_and_restores():
    seq = _three_search_spaces()
    with smallest_policy(seq):
        assert [m.forced_choice for m in seq] == [(2, 0), (0, 1), (2, 2)]
    assert all(m.forced_choice is None for m in seq)
    with fixed_policy(seq, 1, 1):
        with smallest_policy(seq):
            assert seq[0].forced_choice == (2, 0)
        # the choices forced before are back, not the gates
        assert [m.forced_choice for m in seq] == [(1, 0), (0, 1), (1, 1)]
    assert all(m.forced_choice is None for m in seq)
    with pytest.raises(ValueError, match='smallest_policy: the model has no'):
        with smallest_policy(nn.Conv3d(2, 2, 1)):
            pass


def test_random_policy_draws_each_layers_own_options_and_restores():
    seq = _three_search_spaces()

    def draws(seed, n=100):
        g = torch.Generator().manual_seed(seed)
        out = []
        for _ in range(n):
            with random_policy(seq, g):
                out.append(tuple(m.forced_choice for m in seq))
        return out

    global_state = torch.get_rng_state()
    a = draws(0)
    assert torch.equal(torch.get_rng_state(), global_state)
    assert all(m.forced_choice is None for m in seq)
    assert a == draws(0) and a != draws(1)
    # each layer its own options, only in the dimensions it reduces; every
    # option and, across layers and dimensions, independent draws
    assert {d[0] for d in a} == {(0, 0), (1, 0), (2, 0)}
    assert {d[1] for d in a} == {(0, 0), (0, 1)}
    assert {d[2] for d in a} == set(itertools.product(range(3), repeat=2))
    assert len({(d[0][0], d[2][0]) for d in a}) == 9
    with fixed_policy(seq, 1, 1):
        with random_policy(seq):  # the global generator
            assert all(m.forced_choice is not None for m in seq)
        # the choices forced before are back, not the gates
        assert [m.forced_choice for m in seq] == [(1, 0), (0, 1), (1, 1)]
    with pytest.raises(ValueError, match='random_policy: the model has no'):
        with random_policy(nn.Conv3d(2, 2, 1)):
            pass


def test_forced_choice_skips_gate_and_costs_what_it_computes():
    dyn = VARED2Conv3d(16, 32, 3, padding=1)
    dyn.eval()
    x = torch.randn(2, 16, 8, 8, 8)
    full = 8 * 8 * 8 * 32 * 16 * 27
    with fixed_policy(dyn, 0, 0):
        dyn(x)
    assert dyn.last_macs.tolist() == [full, full]
    with fixed_policy(dyn, 1, 1):
        dyn(x)
    conv = 4 * 8 * 8 * 16 * 16 * 27
    ghost = 9 * 16 * 4 * 8 * 8
    interp = 2 * 32 * 4 * 8 * 8
    assert dyn.last_macs.tolist() == [conv + ghost + interp] * 2
    dyn(x)  # learned gate: its pooling and MLP are counted
    gate = 16 * 8 * 4 * 4 + 16 * 16 + 16 * 4  # pool_stride 2
    assert dyn.gate_macs(x.shape) == gate
    choice = tuple(dyn.last_choice[0].tolist())
    assert dyn.last_macs[0] == dyn.macs_table(x.shape)[choice] + gate


@pytest.mark.parametrize('ratio', [2, 4])
@pytest.mark.parametrize('t_out', [1, 3, 7, 8])
def test_temporal_cheap_op_matches_its_definition(ratio, t_out):
    """phi_t = linear interpolation, then a per-channel 3-tap temporal
    filter (replicate padding) evaluated at the rebuilt frames; the
    in-place inference path and the autograd path agree."""
    from varedd_mm.ops.cheap_ops import TemporalCheapOp
    op = TemporalCheapOp(6, ratio)
    with torch.no_grad():
        op.weight.copy_(torch.randn(6, 3))
    t_c = num_computed_frames(t_out, ratio)
    y = torch.randn(2, 6, t_c, 3, 3)
    # reference, straight from the definition
    z = torch.empty(2, 6, t_out, 3, 3)
    for pos in range(t_out):
        k, q = divmod(pos, ratio)
        if q == 0:
            z[:, :, pos] = y[:, :, k]
        elif k + 1 < t_c:
            z[:, :,
              pos] = (1 - q / ratio) * y[:, :, k] + q / ratio * y[:, :, k + 1]
        else:
            z[:, :, pos] = y[:, :, k]
    zp = torch.cat([z[:, :, :1], z, z[:, :, -1:]], dim=2)
    want = z.clone()
    a, b, d = (op.weight[:, i].view(1, 6, 1, 1) for i in range(3))
    for pos in range(t_out):
        if pos % ratio:
            want[:, :, pos] = (
                a * zp[:, :, pos] + b * zp[:, :, pos + 1] +
                d * zp[:, :, pos + 2])
    with torch.no_grad():
        inplace = op([y[:, :4], y[:, 4:]], t_out)
    grad_path = op(y.requires_grad_(), t_out)
    torch.testing.assert_close(inplace, want.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(grad_path.detach(), inplace)


@pytest.mark.parametrize('multiplier', [1, 3])
def test_channel_cheap_op_is_a_depthwise_spatial_conv(multiplier):
    from varedd_mm.ops.cheap_ops import ChannelCheapOp
    op = ChannelCheapOp(4, multiplier)
    with torch.no_grad():
        op.weight.copy_(torch.randn_like(op.weight))
    y = torch.randn(2, 4, 5, 7, 7)
    out = op(y)
    assert out.shape == (2, 4 * multiplier, 5, 7, 7)
    for q in range(multiplier):
        w = op.weight[q * 4:(q + 1) * 4].unsqueeze(2)  # (4, 1, 1, 3, 3)
        ref = F.conv3d(y, w, padding=(0, 1, 1), groups=4)
        torch.testing.assert_close(out[:, q * 4:(q + 1) * 4], ref)
        ref2d = F.conv2d(y[:, :, 2], w.squeeze(2), padding=1, groups=4)
        torch.testing.assert_close(op(y[:, :, 2])[:, q * 4:(q + 1) * 4], ref2d)


@pytest.mark.parametrize('gumbel', [False, True])
def test_straight_through_forward_is_the_argmax_branch(gumbel):
    """The recorded choice (and so the realised cost) is the branch the
    training forward ran, Gumbel-sampled ones included."""
    dyn = VARED2Conv3d(
        8,
        16,
        3,
        padding=1,
        dynamic_cfg=dict(gate=dict(straight_through=True, gumbel=gumbel)))
    dyn.train()
    x = torch.randn(3, 8, 8, 6, 6)
    if gumbel:
        # noisy samples that differ from the noiseless arg-max somewhere
        for seed in range(50):
            torch.manual_seed(seed)
            out = dyn(x)
            lt, lc = dyn.gate.logits(x)
            plain = torch.stack([lt.argmax(1), lc.argmax(1)], 1)
            if not torch.equal(plain, dyn.last_choice):
                break
        assert not torch.equal(plain, dyn.last_choice)
    else:
        out = dyn(x)
    choice = dyn.last_choice.clone()
    (out.square().mean() + dyn.last_expected_macs.mean() / 1e9).backward()
    assert dyn.gate.fc2.weight.grad.abs().sum() > 0
    for n in range(3):
        with fixed_policy(dyn, *choice[n].tolist()):
            ref = dyn(x[n:n + 1])
        torch.testing.assert_close(out[n:n + 1], ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize('shape,weight,stride,padding,groups', [
    ((1, 16, 4, 7, 7), (8, 16, 3, 3, 3), (2, 1, 1), 1, 1),
    ((2, 16, 4, 7, 7), (8, 2, 1, 3, 3), 1, (0, 1, 1), 8),
    ((1, 16, 7, 7), (8, 16, 3, 3), 2, 1, 1),
])
def test_reduced_conv_matches_functional_conv(shape, weight, stride, padding,
                                              groups):
    """The inference fast path (oneDNN called directly) computes what
    F.conv*d computes, on strided (non-contiguous) views too."""
    from varedd_mm.ops.backend import reduced_conv
    big = torch.randn(shape[:2] + (2 * shape[2], ) + shape[3:])
    x = big[:, :, ::2]  # a strided view, as x[:, :, ::R] in the convs
    assert not x.is_contiguous()
    w = torch.randn(*weight)
    conv = F.conv3d if len(shape) == 5 else F.conv2d
    ref = conv(x.contiguous(), w, None, stride, padding, 1, groups)
    with torch.no_grad():
        fast = reduced_conv(x, w, None, stride, padding, 1, groups)
    torch.testing.assert_close(fast, ref, rtol=1e-4, atol=1e-4)


def test_forced_records_follow_the_input_shape():
    """Forced-choice records are cached per input shape: alternating two
    clip lengths gives each its own cost."""
    dyn = VARED2Conv3d(8, 16, 3, padding=1)
    dyn.eval()
    a, b = torch.randn(2, 8, 8, 6, 6), torch.randn(3, 8, 4, 6, 6)
    with torch.no_grad(), fixed_policy(dyn, 1, 1):
        for x in (a, b, a, b):
            dyn(x)
            want = float(dyn.macs_table(x.shape)[(1, 1)])
            assert dyn.last_macs.tolist() == [want] * x.shape[0]
            assert dyn.last_expected_macs.tolist() == [want] * x.shape[0]
            assert dyn.last_choice.tolist() == [[1, 1]] * x.shape[0]


@pytest.mark.parametrize('straight_through', [False, True])
@pytest.mark.parametrize('target', [(0, 0), (1, 0)])
def test_gate_gradient_moves_towards_the_lower_loss(straight_through, target):
    """Trained on a loss that only one option's output zeroes, the gate
    learns to pick that option (the sign of the policy gradient)."""
    torch.manual_seed(0)
    conv = VARED2Conv3d(
        4,
        8,
        3,
        padding=1,
        dynamic_cfg=dict(
            dims=('temporal', ), gate=dict(straight_through=straight_through)))
    x = torch.randn(16, 4, 6, 5, 5)
    with torch.no_grad(), fixed_policy(conv.eval(), *target):
        wanted = conv(x)
    conv.train()
    opt = torch.optim.SGD(conv.gate.parameters(), lr=50.0)
    for _ in range(30):
        loss = (conv(x) - wanted).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        lt, _ = conv.gate.logits(x)
    assert (lt.argmax(dim=1) == target[0]).all()
