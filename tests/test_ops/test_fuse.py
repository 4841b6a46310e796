# Copyright (c) varedd_mm contributors. All rights reserved.
"""Inference-time BN folding (``fuse_conv_bn``) and channels-last execution
(``to_channels_last``): every choice gives the unfused output, (0, 0) is
the fused base bit for bit, training refuses a fused model."""
import copy
import itertools
import os.path as osp

import pytest
import torch
import torch.nn as nn
from _fused_helpers import randomise
from mmaction.models.common import Conv2plus1d
from mmaction.registry import MODELS
from mmcv.cnn import ConvModule
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from varedd_mm import (VARED2Conv2d, VARED2Conv2plus1d, VARED2Conv3d,
                       fixed_policy, fuse_conv_bn)
from varedd_mm.ops import to_channels_last
from varedd_mm.ops.fuse import FusedConv2d, FusedConv3d

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def _block(conv, bn_cls=nn.BatchNorm3d):
    return randomise(
        nn.Sequential(conv, bn_cls(conv.out_channels), nn.ReLU())).eval()


def _conv_module(conv):
    """mmcv's ``ConvModule`` (conv, BN, ReLU: the ReLU folds into the conv
    when fused) around ``conv``, in eval mode."""
    dims = 2 if isinstance(conv, nn.Conv2d) else 3
    module = ConvModule(
        conv.in_channels,
        conv.out_channels,
        1,
        conv_cfg=dict(type=f'Conv{dims}d'),
        norm_cfg=dict(type=f'BN{dims}d'),
        act_cfg=dict(type='ReLU'))
    module.conv = conv
    return randomise(module).eval()


def _layout(x, channels_last, *models):
    """``x`` (and ``models``, in place) channels-last if asked."""
    if not channels_last:
        return x
    for m in models:
        to_channels_last(m)
    return x.contiguous(memory_format=torch.channels_last_3d)


def _choices(layer):
    spec = layer.dynamic_spec
    return list(
        itertools.product(range(spec.num_temporal), range(spec.num_channel)))


DYNAMIC_CASES = [
    # 3x3x3, T not a multiple of R (held tail frames), search space 3
    (lambda: VARED2Conv3d(
        8, 16, 3, padding=1, dynamic_cfg=dict(search_space=3)), (5, 7, 7)),
    # 1x1x1 with spatial stride
    (lambda: VARED2Conv3d(8, 16, 1, stride=(1, 2, 2)), (4, 9, 9)),
    # depthwise (X3D)
    (lambda: VARED2Conv3d(16, 16, 3, padding=1, groups=16), (4, 6, 6)),
    (lambda: VARED2Conv2plus1d(8, 16, 3, padding=1), (6, 7, 7)),
    # kernels derived for the interpolated taps (cached when fused)
    (lambda: VARED2Conv2plus1d(
        8,
        16,
        3,
        padding=1,
        dynamic_cfg=dict(search_space=3, temporal_taps='interp')), (6, 7, 7)),
]


@pytest.mark.parametrize('make,size', DYNAMIC_CASES)
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('wrap', ['sequential', 'conv_module'])
def test_fused_dynamic_conv_equals_unfused_at_every_choice(
        make, size, channels_last, wrap):
    if wrap == 'sequential':  # the ReLU stays a module of its own
        block = _block(make())
        layer = block[0]
    else:  # ConvModule: the ReLU is applied by the fused conv
        block = _conv_module(make())
        layer = block.conv
    x = torch.randn((3, layer.in_channels) + size)
    with torch.no_grad():
        ref = {}
        for c in _choices(layer):
            with fixed_policy(block, *c):
                ref[c] = block(x)
        learned = block(x)
        fused = fuse_conv_bn(copy.deepcopy(block))
        if wrap == 'sequential':
            assert isinstance(fused[1], nn.Identity)
            assert isinstance(fused[2], nn.ReLU)
            assert not fused[0].fused_relu
        else:
            assert isinstance(getattr(fused, fused.norm_name), nn.Identity)
            assert isinstance(fused.activate, nn.Identity)
            assert fused.conv.fused_relu
        if channels_last:
            to_channels_last(fused)
            x = x.contiguous(memory_format=torch.channels_last_3d)
        for c, expected in ref.items():
            with fixed_policy(fused, *c):
                out = fused(x)
            torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
            if channels_last:
                assert out.is_contiguous(memory_format=torch.channels_last_3d)
        # learned gates: per-clip choices, grouped execution
        torch.testing.assert_close(fused(x), learned, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('wrap', ['sequential', 'conv_module'])
def test_fused_conv2d_ghost_borders_exact(channels_last, wrap):
    # 5x5 maps: most pixels touch a zero-padded border of the ghost filter,
    # where folding the BN into the conv before the ghost op would be wrong
    conv = VARED2Conv2d(8, 16, 3, padding=1, dynamic_cfg=dict(search_space=3))
    block = (
        _block(conv, nn.BatchNorm2d)
        if wrap == 'sequential' else _conv_module(conv))
    x = torch.randn(2, 8, 5, 5)
    fused = fuse_conv_bn(copy.deepcopy(block))
    assert (wrap == 'conv_module') == isinstance(
        getattr(fused, 'activate', None), nn.Identity)
    if channels_last:
        to_channels_last(fused)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for c in _choices(conv):
            with fixed_policy(block, *c):
                expected = block(x)
            with fixed_policy(fused, *c):
                torch.testing.assert_close(
                    fused(x), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('channels_last', [False, True])
def test_fused_choice00_is_fused_base_bit_for_bit(channels_last):
    dyn = _block(VARED2Conv3d(8, 16, (3, 3, 3), padding=1))
    base = nn.Sequential(
        nn.Conv3d(8, 16, 3, padding=1), nn.BatchNorm3d(16), nn.ReLU()).eval()
    base.load_state_dict(dyn.state_dict(), strict=False)
    dyn2 = _block(VARED2Conv2plus1d(8, 16, 3, padding=1))
    base2 = nn.Sequential(
        Conv2plus1d(8, 16, 3, padding=1), nn.BatchNorm3d(16),
        nn.ReLU()).eval()
    base2.load_state_dict(dyn2.state_dict(), strict=False)
    x = torch.randn(2, 8, 4, 8, 8)
    with torch.no_grad():
        for d, b in ((dyn, base), (dyn2, base2)):
            fd, fb = fuse_conv_bn(d), fuse_conv_bn(b)
            # the base conv (and the (2+1)D convs) became fused convs
            assert not any(isinstance(m, _BatchNorm) for m in fb.modules())
            assert any(isinstance(m, FusedConv3d) for m in fb.modules())
            xx = _layout(x, channels_last, fd, fb)
            with fixed_policy(fd, 0, 0):
                assert torch.equal(fd(xx), fb(xx))


@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('batch', [1, 2])
def test_fused_relu_choice00_is_fused_base_bit_for_bit(channels_last, batch):
    """In ConvModules the ReLU becomes a post-op of the fused conv on both
    sides: (0, 0) of the dynamic conv still runs exactly what the base
    runs."""
    x = torch.randn(batch, 8, 4, 8, 8)
    pairs = [(VARED2Conv3d(8, 16, 3, padding=1, bias=False),
              nn.Conv3d(8, 16, 3, padding=1, bias=False)),
             (VARED2Conv2plus1d(8, 16, 3, padding=1, bias=False),
              Conv2plus1d(8, 16, 3, padding=1, bias=False))]
    with torch.no_grad():
        for dyn_conv, base_conv in pairs:
            dyn = _conv_module(dyn_conv)
            base = _conv_module(base_conv)
            base.load_state_dict(dyn.state_dict(), strict=False)
            fd, fb = fuse_conv_bn(dyn), fuse_conv_bn(base)
            assert isinstance(fb.activate, nn.Identity)
            relu_convs = [
                m for m in fb.modules() if getattr(m, 'fused_relu', False)
            ]
            # the (2+1)D conv's inner ReLU too
            assert len(relu_convs) == (2 if base_conv is pairs[1][1] else 1)
            xx = _layout(x, channels_last, fd, fb)
            with fixed_policy(fd, 0, 0):
                out = fd(xx)
            expected = fb(xx)
            assert torch.equal(out, expected) and (out >= 0).all()
            # batch 1 too: the standard strides of the layout
            assert out.stride() == expected.stride()
            if channels_last:
                assert out.is_contiguous(memory_format=torch.channels_last_3d)


def test_block_relu_after_the_residual_sum_is_not_folded():
    """mmseg / mmdet ResNet blocks register their ReLU right after the
    second BN, but run it after the residual sum (and after the first BN
    too): it must stay a module of its own."""

    class Block(nn.Module):

        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(8)
            self.conv2 = nn.Conv2d(8, 8, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(8)
            self.relu = nn.ReLU(inplace=True)

        def forward(self, x):
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + x)

    block = randomise(Block()).eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        expected = block(x)
        fused = fuse_conv_bn(copy.deepcopy(block))
        assert isinstance(fused.relu, nn.ReLU)
        assert not fused.conv2.fused_relu
        torch.testing.assert_close(fused(x), expected, rtol=1e-5, atol=1e-5)


def test_fuse_refuses_training():
    block = _block(VARED2Conv3d(8, 16, 1))
    block.train()
    with pytest.raises(RuntimeError, match='model.eval'):
        fuse_conv_bn(block)
    block.eval()
    fuse_conv_bn(block)
    block.train()
    with pytest.raises(RuntimeError, match='fuse_conv_bn'):
        block(torch.randn(2, 8, 2, 4, 4))


def test_fuse_plain_convs_and_skips_unfollowed_bn():
    model = nn.Sequential(
        nn.BatchNorm2d(3),  # no conv before it: kept
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.Sequential(nn.Conv2d(8, 8, 1), nn.BatchNorm2d(8))).eval()
    randomise(model)
    x = torch.randn(2, 3, 6, 6)
    with torch.no_grad():
        ref = model(x)
        fuse_conv_bn(model)
        torch.testing.assert_close(model(x), ref, rtol=1e-5, atol=1e-5)
    assert isinstance(model[0], nn.BatchNorm2d)
    assert isinstance(model[1], FusedConv2d)
    assert isinstance(model[2], nn.Identity)
    assert isinstance(model[4][1], nn.Identity)


def test_fused_recognizer_backbone_matches_unfused():
    """A whole VA-RED² R(2+1)D-18 (ConvModules with (2+1)D convs, outer
    BNs folded into conv_t) against its unfused self at every choice."""
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', '_base_', 'models',
                 'vared2_r2plus1d_r18.py')).model.backbone
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = MODELS.build(cfg)
    model.init_weights()
    randomise(model).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        ref = {}
        for c in [(0, 0), (0, 1), (1, 0), (1, 1)]:
            with fixed_policy(model, *c):
                ref[c] = model(x)
        fuse_conv_bn(model)
        # every BN is gone except the dynamic convs' own bn_s (folded into
        # their fused spatial weights)
        left = [
            n for n, m in model.named_modules()
            if isinstance(m, _BatchNorm) and not n.endswith('.bn_s')
        ]
        assert not left
        for c, expected in ref.items():
            with fixed_policy(model, *c):
                out = model(x)
            assert (out - expected).norm() / expected.norm() < 1e-5


def test_mmcv_wrapper_convs_become_fused_convs():
    """mmcv registers its own ``Conv3d`` (empty-tensor handling only): the
    base models' convs are of that class and must take the same execution
    path as the reduced convs after fusion."""
    from mmcv.cnn import ConvModule
    module = ConvModule(
        4,
        8,
        3,
        padding=1,
        conv_cfg=dict(type='Conv3d'),
        norm_cfg=dict(type='BN3d')).eval()
    assert type(module.conv) is not nn.Conv3d
    randomise(module)
    x = torch.randn(2, 4, 3, 5, 5)
    with torch.no_grad():
        ref = module(x)
        fuse_conv_bn(module)
        torch.testing.assert_close(module(x), ref, rtol=1e-5, atol=1e-5)
    assert isinstance(module.conv, FusedConv3d)
    assert isinstance(module.bn, nn.Identity)


def test_convs_without_bn_run_through_the_dispatch_and_keep_channels_last():
    """X3D-M's stem conv has no BN after it; left to F.conv3d it returned
    an NCDHW output for a channels-last input (3 input channels), and every
    conv after it then ran in the slower layout."""
    model = nn.Sequential(
        nn.Conv3d(3, 8, (1, 3, 3), padding=(0, 1, 1), bias=False),
        nn.Conv3d(8, 8, 1), nn.BatchNorm3d(8), nn.ReLU()).eval()
    randomise(model)
    x = torch.randn(1, 3, 4, 8, 8)
    with torch.no_grad():
        ref = model(x)
        fused = to_channels_last(fuse_conv_bn(copy.deepcopy(model)))
        assert isinstance(fused[0], FusedConv3d) and fused[0].bias is None
        assert isinstance(fused[1], FusedConv3d)
        out = fused(x.contiguous(memory_format=torch.channels_last_3d))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    assert out.is_contiguous(memory_format=torch.channels_last_3d)


def test_string_padding_and_shared_convs_after_fusing():
    shared = nn.Conv2d(4, 4, 1)
    model = nn.Sequential(
        nn.Conv2d(4, 4, 3, padding='same'), shared,
        nn.Sequential(shared, nn.ReLU())).eval()
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        ref = model(x)
        fuse_conv_bn(model)
        torch.testing.assert_close(model(x), ref)
    assert isinstance(model[0], FusedConv2d)
    # one fused conv for the conv both parents hold
    assert model[1] is model[2][0] and isinstance(model[1], FusedConv2d)


def test_fused_model_compiles():
    """Under ``torch.compile`` a fused model's convs run ``F.conv*d`` (the
    compiler lowers them itself; the direct oneDNN calls of
    ``reduced_conv`` do not trace) and its max pools their strided
    maxima: the compiled output is the eager one."""
    model = nn.Sequential(
        nn.Conv3d(3, 8, 3, padding=1), nn.BatchNorm3d(8), nn.ReLU(),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)), nn.Conv3d(8, 4, 1),
        nn.BatchNorm3d(4))
    randomise(model).eval()
    fuse_conv_bn(model)
    x = torch.randn(1, 3, 4, 8, 8)
    with torch.no_grad():
        expected = model(x)
        out = torch.compile(model, dynamic=False)(x)
    assert out.shape == expected.shape
    assert (out - expected).abs().max() < 1e-4 * expected.abs().max()
