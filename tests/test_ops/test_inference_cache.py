# Copyright (c) varedd_mm contributors. All rights reserved.
"""The inference cache of derived rebuild coefficients (``cache.py``): a
fused model derives them once, and never reads stale ones after its cheap
ops' weights change."""
import copy

import pytest
import torch
import torch.nn as nn

from varedd_mm import (VARED2Conv2plus1d, VARED2Conv3d, fixed_policy,
                       fuse_conv_bn)
from varedd_mm.ops import to_channels_last
from varedd_mm.ops.cache import InferenceCache
from varedd_mm.ops.cheap_ops import ChannelCheapOp, TemporalCheapOp


def test_cache_rebuilds_when_a_source_changes():
    cache = InferenceCache()
    w = torch.ones(3)
    calls = []

    def build():
        calls.append(1)
        return w * 2

    assert torch.equal(cache.get('a', (w, None), build), torch.full((3, ), 2.))
    cache.get('a', (w, None), build)
    assert len(calls) == 1
    with torch.no_grad():
        w.add_(1)  # in place: version changes
    assert torch.equal(cache.get('a', (w, None), build), torch.full((3, ), 4.))
    assert len(calls) == 2
    w = torch.zeros(3)  # replaced
    assert torch.equal(cache.get('a', (w, None), build), torch.zeros(3))
    assert len(calls) == 3
    # a copy starts empty (its tensors are new objects)
    assert copy.deepcopy(cache).entries == {}
    assert len(cache.entries) == 1


def _block():
    conv = VARED2Conv3d(8, 16, 3, padding=1)
    bn = nn.BatchNorm3d(16)
    with torch.no_grad():
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    return nn.Sequential(conv, bn).eval()


def _perturb(block):
    with torch.no_grad():
        for op in list(block[0].temporal_ops) + list(block[0].channel_ops):
            op.weight.add_(0.3 * torch.randn_like(op.weight))


def test_fused_model_derives_coefficients_once(monkeypatch):
    calls = {'terms': 0, 'filters': 0}
    build_terms = TemporalCheapOp._build_terms
    filters = ChannelCheapOp._filters

    def count_terms(self, *args):
        calls['terms'] += 1
        return build_terms(self, *args)

    def count_filters(self, *args):
        calls['filters'] += 1
        return filters(self, *args)

    monkeypatch.setattr(TemporalCheapOp, '_build_terms', count_terms)
    monkeypatch.setattr(ChannelCheapOp, '_filters', count_filters)
    fused = to_channels_last(fuse_conv_bn(_block()))
    x = torch.randn(2, 8, 6, 5,
                    5).contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad(), fixed_policy(fused, 1, 1):
        for _ in range(3):
            fused(x)
    assert calls == {'terms': 1, 'filters': 1}


def test_fused_model_sees_new_cheap_op_weights():
    block = _block()
    _perturb(block)
    fused = fuse_conv_bn(copy.deepcopy(block))
    x = torch.randn(2, 8, 6, 5, 5)
    with torch.no_grad(), fixed_policy(fused, 1, 1):
        fused(x)  # derives and caches the coefficients
        _perturb(block)  # new weights, loaded into the fused model
        fused[0].temporal_ops.load_state_dict(
            block[0].temporal_ops.state_dict())
        fused[0].channel_ops.load_state_dict(block[0].channel_ops.state_dict())
        with fixed_policy(block, 1, 1):
            expected = block(x)
        torch.testing.assert_close(fused(x), expected, rtol=1e-5, atol=1e-5)


def test_reduced_conv_copies_no_weight_for_an_input_laid_out_both_ways():
    """A (N, C, 1, 1, 1) input is contiguous in both layouts: the conv runs
    in the weight's layout instead of copying the weight every call."""
    from torch.profiler import ProfilerActivity, profile

    from varedd_mm.ops.backend import reduced_conv
    x = torch.randn(1, 16, 1, 1, 1)
    for fmt in (torch.contiguous_format, torch.channels_last_3d):
        weight = torch.randn(32, 16, 1, 3, 3).contiguous(memory_format=fmt)
        with torch.no_grad(), profile(activities=[ProfilerActivity.CPU]) as p:
            out = reduced_conv(x, weight, None, 1, (0, 1, 1), 1, 1)
        names = {e.name for e in p.events()}
        assert not names & {'aten::copy_', 'aten::clone'}, names
        torch.testing.assert_close(
            out, torch.nn.functional.conv3d(x, weight, None, 1, (0, 1, 1)))


def test_fused_model_under_inference_mode():
    """Tensors made under inference_mode have no version counter: nothing
    is cached for them, the output is still right."""
    block = _block()
    _perturb(block)
    x = torch.randn(2, 8, 6, 5, 5)
    with torch.no_grad(), fixed_policy(block, 1, 1):
        expected = block(x)
    with torch.inference_mode():
        fused = fuse_conv_bn(copy.deepcopy(block))
        with fixed_policy(fused, 1, 1):
            fused(x)
            out = fused(x)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_fused_model_follows_a_dtype_change():
    """``.double()`` keeps the parameter objects and swaps their data: the
    cached coefficients must follow (a layer fused without a BN, whose
    fused buffers are not replaced)."""
    layer = VARED2Conv3d(8, 16, 3, padding=1).eval()
    _perturb(nn.Sequential(layer))
    fused = fuse_conv_bn(copy.deepcopy(layer))
    x = torch.randn(2, 8, 6, 5, 5)
    with torch.no_grad(), fixed_policy(fused, 1, 1):
        fused(x)  # float32 coefficients cached
        fused.double()
        out = fused(x.double())
        with fixed_policy(layer, 1, 1):
            expected = layer.double()(x.double())
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, expected)


def test_fused_2plus1d_derives_interp_kernels_once(monkeypatch):
    """temporal_taps='interp': a fused model derives each choice's kernel
    once (channel choices from conv_t, the full width from the folded
    weight) and again after conv_t's weight changes in place."""
    import varedd_mm.ops.conv2plus1d as conv2plus1d
    calls = []
    derive = conv2plus1d.derive_interp_kernel

    def count(weight, r):
        calls.append((tuple(weight.shape), r))
        return derive(weight, r)

    monkeypatch.setattr(conv2plus1d, 'derive_interp_kernel', count)
    conv = conv2plus1d.VARED2Conv2plus1d(
        8, 16, 3, padding=1, dynamic_cfg=dict(temporal_taps='interp'))
    fused = to_channels_last(
        fuse_conv_bn(nn.Sequential(conv, nn.BatchNorm3d(16)).eval()))
    x = torch.randn(2, 8, 6, 5,
                    5).contiguous(memory_format=torch.channels_last_3d)
    with torch.no_grad():
        for choice in ((1, 0), (1, 1)):
            with fixed_policy(fused, *choice):
                for _ in range(3):
                    fused(x)
        mid = fused[0].mid_channels
        assert calls == [((16, mid, 3, 1, 1), 2),
                         ((8, -(-mid // 2), 3, 1, 1), 2)]
        fused[0].conv_t.weight.mul_(2.0)  # e.g. load_state_dict
        with fixed_policy(fused, 1, 1):
            fused(x)
    assert len(calls) == 3


@pytest.mark.parametrize('taps', ['subsample', 'interp'])
@pytest.mark.parametrize('fmt',
                         [torch.contiguous_format, torch.channels_last_3d])
def test_fused_2plus1d_reduced_choices_copy_nothing(taps, fmt):
    """A fused (2+1)D conv at a reduced choice reads every R-th input frame
    in place (conv_s at temporal stride R, no gathered copy of the input)
    and its sliced temporal filters once (cached), in either layout; the
    output is the unfused layer's. (The torch-op rebuild copies blocks
    into place, so this needs the compiled rebuild kernel.)"""
    from torch.profiler import ProfilerActivity, profile

    from varedd_mm.ops import native
    if native.load_native() is None:
        pytest.skip('the rebuild kernel is not available here '
                    f'({native.native_error() or "VARED2_NATIVE=0"}): the '
                    'torch-op rebuild copies blocks into place')
    conv = VARED2Conv2plus1d(
        8, 16, 3, padding=1, dynamic_cfg=dict(temporal_taps=taps))
    block = nn.Sequential(conv, nn.BatchNorm3d(16)).eval()
    _perturb(block)
    fused = fuse_conv_bn(copy.deepcopy(block))
    if fmt == torch.channels_last_3d:
        to_channels_last(fused)
    x = torch.randn(2, 8, 7, 5, 5)
    with torch.no_grad():
        for choice in ((1, 0), (1, 1), (0, 1)):
            with fixed_policy(fused, *choice), fixed_policy(block, *choice):
                expected = block(x)
                xf = x.contiguous(memory_format=fmt)
                fused(xf)  # derives the cached values
                with profile(
                        activities=[ProfilerActivity.CPU],
                        record_shapes=True) as p:
                    out = fused(xf)
            # (a Python scalar in a multiply is copied as a 0-dim tensor)
            copies = [(e.name, e.input_shapes) for e in p.events()
                      if e.name in ('aten::copy_', 'aten::clone') and any(
                          s for s in e.input_shapes)]
            assert not copies, (choice, copies)
            torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
        # the strided read through the inference dispatch (oneDNN on the
        # CPU) gives the frames the gathered slice gives
        m = fused[0].mid_width(1)
        xf = x.contiguous(memory_format=fmt)
        sliced = x[:, :, ::2].contiguous(memory_format=fmt)
        torch.testing.assert_close(fused[0]._spatial(xf, m, 2),
                                   fused[0]._spatial(sliced, m, 1))
