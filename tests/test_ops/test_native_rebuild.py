# Copyright (c) varedd_mm contributors. All rights reserved.
"""The compiled kernels (``varedd_mm/ops/csrc/rebuild.cpp``): the one-pass
rebuild writer's values against a direct evaluation of what it writes, its
use by fused layers, the torch-op fallback and its errors; the gate's
pooling against torch ops, and where the gates use it."""
import copy
import shutil

import pytest
import torch
from _fused_helpers import grouped_outputs
from mmcv.cnn import ConvModule
from torch.utils.cpp_extension import is_ninja_available

import varedd_mm.ops.dynamic_base as dynamic_base
import varedd_mm.ops.gate as gate_module
from varedd_mm import (VARED2Conv2plus1d, VARED2Conv3d, fixed_policy,
                       fuse_conv_bn)
from varedd_mm.ops import native, to_channels_last
from varedd_mm.ops.backend import canonical_strides


@pytest.fixture
def kernel():
    if not native.native_enabled():
        pytest.skip('VARED2_NATIVE=0: the kernel is switched off')
    if native.load_native() is None:
        if shutil.which('c++') is None or not is_ninja_available():
            pytest.skip('no C++ compiler or no ninja on this machine: the '
                        'torch-op path runs instead '
                        f'({native.native_error()})')
        pytest.fail(f'the rebuild kernel did not build: '
                    f'{native.native_error()}')
    return native


def _reference(blocks, t_out, ratio, coef, relu):
    """What the kernel writes, element by element along time."""
    y = torch.cat(blocks, dim=1)
    t_c = y.shape[2]
    view = (1, -1) + (1, ) * (y.dim() - 3)
    row = [r.view(view) for r in coef]
    frames = []
    for t in range(t_out):
        k = min(t // ratio, t_c - 1)
        q = t - k * ratio
        if q == 0:
            v = row[0] * y[:, :, k] + row[1]
        elif k + 1 < t_c:
            a, b, d = row[2 + 3 * (q - 1):5 + 3 * (q - 1)]
            v = a * y[:, :, k] + b * y[:, :, k + 1] + d
        else:
            v = row[-2] * y[:, :, k] + row[-1]
        frames.append(v.relu() if relu else v)
    return torch.stack(frames, dim=2)


@pytest.mark.parametrize('ratio,t_out', [(1, 3), (2, 8), (2, 7), (4, 6),
                                         (4, 3), (2, 1)])
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('relu', [False, True])
def test_kernel_writes_what_the_formula_says(kernel, ratio, t_out,
                                             channels_last, relu):
    t_c = -(-t_out // ratio)
    blocks = [torch.randn(2, c, t_c, 5, 6) for c in (8, 4, 4)]
    if channels_last:
        blocks = [
            b.contiguous(memory_format=torch.channels_last_3d) for b in blocks
        ]
    coef = torch.randn(2 + 3 * (ratio - 1) + 2, 16)
    out = kernel.native_rebuild(blocks, t_out, ratio, coef, relu)
    assert out.shape == (2, 16, t_out, 5, 6)
    assert out.is_contiguous(memory_format=torch.channels_last_3d
                             if channels_last else torch.contiguous_format)
    torch.testing.assert_close(
        out,
        _reference(blocks, t_out, ratio, coef, relu),
        rtol=1e-6,
        atol=1e-6)


@pytest.mark.parametrize('threads', [1, 2, 3])
@pytest.mark.parametrize('into', [False, True])
def test_kernel_chunks_starting_inside_a_plane(kernel, threads, into):
    """The channels-last loop walks its share of the (n, t, pixel) rows
    plane by plane: with 2 and 3 threads the shares start and end inside a
    plane (3 x 7 planes of 38 pixels), and every row is written, from its
    own frame, also into given rows of a batch (``rebuild_into``; the
    batch is NaN before, so a row left unwritten shows)."""
    blocks = [
        torch.randn(3, c, 4, 38,
                    1).contiguous(memory_format=torch.channels_last_3d)
        for c in (5, 5)
    ]
    coef = torch.randn(2 + 3 + 2, 10)
    expected = _reference(blocks, 7, 2, coef, False)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        if into:
            out = torch.full(
                (4, 10, 7, 38, 1),
                float('nan')).contiguous(memory_format=torch.channels_last_3d)
            rows = [3, 0, 2]
            assert kernel.native_rebuild(blocks, 7, 2, coef, False,
                                         (out, rows)) is None
            assert out[1].isnan().all()
            out = out[rows]
        else:
            out = kernel.native_rebuild(blocks, 7, 2, coef, False)
    finally:
        torch.set_num_threads(before)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize('channels_last', [False, True])
def test_kernel_on_images(kernel, channels_last):
    blocks = [torch.randn(2, c, 5, 7) for c in (6, 6)]
    if channels_last:
        blocks = [
            b.contiguous(memory_format=torch.channels_last) for b in blocks
        ]
    coef = torch.randn(4, 12)
    out = kernel.native_rebuild(blocks, 1, 1, coef, True)
    expected = (torch.cat(blocks, 1) * coef[0].view(1, -1, 1, 1) +
                coef[1].view(1, -1, 1, 1)).relu()
    assert out.shape == (2, 12, 5, 7)
    torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-6)


def test_kernel_refuses_bad_input(kernel):
    coef = torch.randn(7, 8)
    with pytest.raises(RuntimeError, match='computed frames'):
        kernel.native_rebuild([torch.randn(1, 8, 3, 4, 4)], 8, 2, coef, False)
    with pytest.raises(RuntimeError, match='coef must be'):
        kernel.native_rebuild([torch.randn(1, 8, 4, 4, 4)], 8, 2, coef[:5],
                              False)
    with pytest.raises(RuntimeError, match='blocks differ'):
        kernel.native_rebuild(
            [torch.randn(1, 4, 4, 4, 4),
             torch.randn(1, 4, 4, 4, 5)], 8, 2, coef, False)
    ops = kernel.load_native()
    flat = torch.randn(1, 8, 4, 16)
    with pytest.raises(RuntimeError, match='float32 CPU tensors only'):
        ops.rebuild([flat.double()], 8, 2, coef, False, False)
    with pytest.raises(RuntimeError, match='not channels-last'):
        ops.rebuild([flat], 8, 2, coef, False, True)
    with pytest.raises(RuntimeError, match='not contiguous'):
        ops.rebuild([flat.transpose(1, 3).contiguous().transpose(1, 3)], 8, 2,
                    coef, False, False)
    # more blocks than the kernel keeps: refused there, and native_applies
    # sends them to the torch ops
    many = [torch.randn(1, 1, 4, 16)] * (kernel.MAX_BLOCKS + 1)
    with pytest.raises(RuntimeError, match='at most 8 blocks'):
        ops.rebuild(many, 8, 2, torch.randn(7, len(many)), False, False)
    assert kernel.native_applies(many[:kernel.MAX_BLOCKS])
    assert not kernel.native_applies(many)


def test_canonical_strides():
    x = torch.randn(1, 8, 4, 5,
                    6).contiguous(memory_format=torch.channels_last_3d)
    odd = x.as_strided(x.shape, (8, ) + x.stride()[1:])  # batch stride C
    fixed = canonical_strides(odd, torch.channels_last_3d)
    assert fixed.stride() == x.stride() and torch.equal(fixed, x)
    assert canonical_strides(x, torch.channels_last_3d) is x
    # every dim after C of size 1: both layouts; the format asked for wins
    # and an NCHW model keeps NCHW strides
    pooled = torch.randn(2, 8, 1, 1)
    assert canonical_strides(pooled, torch.contiguous_format) is pooled
    # a tensor that is not dense in the format is left alone
    view = torch.randn(2, 8, 6, 6)[:, :, ::2]
    assert canonical_strides(view, torch.contiguous_format) is view


def test_switch_is_validated(monkeypatch):
    monkeypatch.setenv('VARED2_NATIVE', 'yes')
    with pytest.raises(ValueError, match='VARED2_NATIVE must be 0 or 1'):
        native.native_enabled()


def _dynamic(kind):
    cfg = dict(search_space=3)
    if kind == '3d':
        return VARED2Conv3d(8, 16, 3, padding=1, dynamic_cfg=cfg)
    return VARED2Conv2plus1d(8, 16, 3, padding=1, dynamic_cfg=cfg)


def _block(kind):
    """A ConvModule (conv, BN, ReLU) around a dynamic conv, in eval mode,
    with BN statistics and cheap-op weights away from their defaults."""
    conv = _dynamic(kind)
    block = ConvModule(
        8,
        16,
        1,
        conv_cfg=dict(type='Conv3d'),
        norm_cfg=dict(type='BN3d'),
        act_cfg=dict(type='ReLU'))
    block.conv = conv
    block.bn.running_mean.uniform_(-0.5, 0.5)
    block.bn.running_var.uniform_(0.5, 2.0)
    for op in list(conv.temporal_ops) + list(conv.channel_ops):
        op.weight.data.add_(0.2 * torch.randn_like(op.weight))
    return block.eval()


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('batch', [1, 3])
@pytest.mark.parametrize('kind', ['3d', '2plus1d'])
def test_fused_layers_write_once_and_fall_back_to_torch_ops(
        kernel, monkeypatch, channels_last, batch, kind):
    block = _block(kind)
    fused = fuse_conv_bn(copy.deepcopy(block))
    x = torch.randn(batch, 8, 7, 6, 6)
    if channels_last:
        to_channels_last(fused)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    calls = []
    original = dynamic_base.native_rebuild

    def counted(*args, **kwargs):
        calls.append(args[2])  # the temporal ratio
        return original(*args, **kwargs)

    monkeypatch.setattr(dynamic_base, 'native_rebuild', counted)
    with torch.no_grad():
        for choice in [(1, 0), (0, 2), (2, 1)]:
            with fixed_policy(block, *choice):
                expected = block(x)
            with fixed_policy(fused, *choice):
                out = fused(x)
                monkeypatch.setenv('VARED2_NATIVE', '0')
                fallback = fused(x)
                monkeypatch.delenv('VARED2_NATIVE')
            torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(
                fallback, expected, rtol=1e-5, atol=1e-5)
            layout = (
                torch.channels_last_3d
                if channels_last else torch.contiguous_format)
            assert out.is_contiguous(memory_format=layout)
            assert fallback.is_contiguous(memory_format=layout)
    # one kernel call per forward with the kernel, none without it
    assert calls == [2, 1, 4]


def test_other_dtypes_take_the_torch_ops(kernel, monkeypatch):
    block = ConvModule(
        8,
        16,
        1,
        conv_cfg=dict(type='Conv3d'),
        norm_cfg=dict(type='BN3d'),
        act_cfg=dict(type='ReLU'))
    block.conv = VARED2Conv3d(8, 16, 3, padding=1)
    block.eval().double()
    fused = fuse_conv_bn(copy.deepcopy(block))
    monkeypatch.setattr(dynamic_base, 'native_rebuild',
                        lambda *a, **k: pytest.fail('kernel on float64'))
    x = torch.randn(2, 8, 4, 6, 6, dtype=torch.float64)
    with torch.no_grad(), fixed_policy(block, 1, 1), fixed_policy(fused, 1, 1):
        torch.testing.assert_close(fused(x), block(x))


def _pool_reference(x, stride, tdiff):
    """The gate's pooled input written out with torch ops."""
    if x.dim() == 4:
        x = x.unsqueeze(2)
    sub = x[..., ::stride, ::stride]
    mean = sub.flatten(2).mean(2)
    if not tdiff:
        return mean
    if x.shape[2] == 1:
        return torch.cat([mean, torch.zeros_like(mean)], 1)
    diff = (sub[:, :, 1:] - sub[:, :, :-1]).abs().flatten(2).mean(2)
    return torch.cat([mean, diff], 1)


@pytest.mark.parametrize('shape', [(3, 16, 8, 13, 14), (1, 8, 1, 5, 5),
                                   (2, 4, 3, 1, 1), (2, 6, 9, 10)])
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('stride', [1, 2, 3])
def test_gate_pool_kernel_reads_the_sampled_pixels(kernel, shape,
                                                   channels_last, stride):
    x = torch.randn(*shape)
    if channels_last:
        x = x.contiguous(
            memory_format=torch.channels_last_3d if len(shape) ==
            5 else torch.channels_last)
    for tdiff in ((False, True) if len(shape) == 5 else (False, )):
        torch.testing.assert_close(
            kernel.native_gate_pool(x, stride, tdiff),
            _pool_reference(x, stride, tdiff))
    # a strided view (every second frame) is read through its strides
    if len(shape) == 5:
        view = x[:, :, ::2]
        torch.testing.assert_close(
            kernel.native_gate_pool(view, stride, True),
            _pool_reference(view, stride, True))


@pytest.mark.parametrize('gate_input', ['mean', 'mean_tdiff'])
def test_gates_pool_with_the_kernel_at_inference_only(kernel, monkeypatch,
                                                      gate_input):
    conv = VARED2Conv3d(
        8, 16, 3, padding=1, dynamic_cfg=dict(gate=dict(input=gate_input)))
    x = torch.randn(3, 8, 6, 9, 9)
    calls = []
    original = native.native_gate_pool

    def counted(*args):
        calls.append(args[1:])
        return original(*args)

    monkeypatch.setattr(gate_module, 'native_gate_pool', counted)
    # training (with or without a gradient to the input): torch ops
    conv.train()(x.clone().requires_grad_()).sum().backward()
    with torch.no_grad():
        conv(x)
    assert calls == []
    with torch.no_grad():
        conv.eval()
        kernel_logits = conv.gate.logits(x)
        assert calls == [(2, gate_input == 'mean_tdiff')]
        monkeypatch.setenv('VARED2_NATIVE', '0')
        torch_logits = conv.gate.logits(x)
        assert len(calls) == 1
    for a, b in zip(kernel_logits, torch_logits):
        torch.testing.assert_close(a, b)


def test_gate_pool_kernel_refuses_bad_input(kernel):
    ops = kernel.load_native()
    with pytest.raises(RuntimeError, match='5-d float32 CPU'):
        ops.gate_pool(torch.randn(2, 3, 4, 4, 4).double(), 2, False)
    with pytest.raises(RuntimeError, match='stride must be >= 1'):
        ops.gate_pool(torch.randn(2, 3, 4, 4, 4), 0, False)


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('kind', ['3d', '2plus1d'])
def test_grouped_inference_writes_reduced_groups_into_the_batch(
        kernel, monkeypatch, channels_last, kind):
    block = _block(kind)
    fused = fuse_conv_bn(copy.deepcopy(block))
    x = torch.randn(7, 8, 7, 6, 6)
    if channels_last:
        to_channels_last(fused)
        x = x.contiguous(memory_format=torch.channels_last_3d)
    # (0, 0) allocates the output; scattered and consecutive reduced groups
    choices = [(1, 1), (0, 0), (1, 1), (2, 0), (2, 0), (0, 2), (1, 1)]
    with torch.no_grad():
        expected, out, fallback, calls = grouped_outputs(
            monkeypatch, block, fused, x, choices)
    # written into the batch output, not returned for a copy
    writes = [
        None if into is None or ret is not None else list(into[1])
        for into, _, ret in calls
    ]
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fallback, expected, rtol=1e-5, atol=1e-5)
    layout = (
        torch.channels_last_3d if channels_last else torch.contiguous_format)
    assert out.is_contiguous(memory_format=layout)
    # every reduced group went straight into its rows of the batch output
    assert sorted(writes) == [[0, 2, 6], [3, 4], [5]]


def test_rebuild_into_refuses_bad_destinations(kernel):
    ops = kernel.load_native()
    y = torch.randn(2, 4, 2, 9)
    coef = torch.ones(2 + 3 + 2, 4)
    out = torch.zeros(3, 4, 4, 9)
    ops.rebuild_into([y], 4, 2, coef, False, False, out, [2, 0])
    ref = _reference([y.view(2, 4, 2, 9)], 4, 2, coef, False)
    assert torch.equal(out[2], ref[0]) and torch.equal(out[0], ref[1])
    assert not out[1].any()
    with pytest.raises(RuntimeError, match='row 3 outside the 3 rows'):
        ops.rebuild_into([y], 4, 2, coef, False, False, out, [0, 3])
    with pytest.raises(RuntimeError, match='row 0 given twice'):
        ops.rebuild_into([y], 4, 2, coef, False, False, out, [0, 0])
    with pytest.raises(RuntimeError, match='1 rows for 2 clips'):
        ops.rebuild_into([y], 4, 2, coef, False, False, out, [0])
    with pytest.raises(RuntimeError, match='not dense per clip'):
        ops.rebuild_into([y], 4, 2, coef, False, False,
                         torch.zeros(3, 4, 9, 4).transpose(2, 3), [0, 1])
    with pytest.raises(RuntimeError, match=r'out must be a float32 CPU'):
        ops.rebuild_into([y], 4, 2, coef, False, False, out[:, :3], [0, 1])


def test_rebuild_into_a_batch_of_single_pixels(kernel):
    # a channels-last batch at 1x1x1: its size-1 dims carry strides the
    # dense check must ignore (the last stage of a small clip)
    out = torch.zeros(3, 4, 1, 1,
                      1).contiguous(memory_format=torch.channels_last_3d)
    y = torch.randn(2, 4, 1, 1, 1)
    coef = torch.randn(4, 4)
    assert kernel.native_rebuild([y], 1, 1, coef, False, (out, [2, 0])) is None
    ref = _reference([y.flatten(3)], 1, 1, coef, False).view(2, 4, 1, 1, 1)
    torch.testing.assert_close(out[2], ref[0])
    torch.testing.assert_close(out[0], ref[1])
    assert not out[1].any()
