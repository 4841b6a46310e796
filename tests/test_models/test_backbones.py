# Copyright (c) varedd_mm contributors. All rights reserved.
"""Dynamic backbones: placement of dynamic convs, base equivalence at
(0, 0), and errors of their ``dynamic_cfg``."""
import pytest
import torch
from mmaction.registry import MODELS
from mmengine.registry import DefaultScope

from varedd_mm import VARED2Conv2plus1d, VARED2Conv3d, fixed_policy
from varedd_mm.ops.convert import to_dynamic
from varedd_mm.ops.dynamic_base import DYNAMIC_PREFIXES

R2PLUS1D = dict(
    depth=18,
    pretrained=None,
    pretrained2d=False,
    norm_eval=False,
    conv_cfg=dict(type='Conv2plus1d'),
    norm_cfg=dict(type='BN3d', requires_grad=True, eps=1e-3),
    conv1_kernel=(3, 7, 7),
    conv1_stride_t=1,
    pool1_stride_t=1,
    inflate=(1, 1, 1, 1),
    spatial_strides=(1, 2, 2, 2),
    temporal_strides=(1, 2, 2, 2),
    zero_init_residual=False)


def _build(cfg):
    with DefaultScope.overwrite_default_scope('mmaction'):
        return MODELS.build(cfg)


def test_r2plus1d_default_placement_and_base_equivalence():
    base = _build(dict(type='ResNet2Plus1d', **R2PLUS1D))
    base.init_weights()
    dyn = _build(dict(type='VARED2ResNet2Plus1d', **R2PLUS1D))
    missing, unexpected = dyn.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected
    names = dyn.dynamic_report['dynamic']
    assert sorted(missing) == sorted(
        f'{n}.{k}' for n in names for k in dyn.get_submodule(n).state_dict()
        if k.startswith(DYNAMIC_PREFIXES))
    assert names[0] == 'conv1.conv' and len(names) == 17  # stem + 16 convs
    assert not any('downsample' in n for n in names)
    assert all(
        isinstance(dyn.get_submodule(n), VARED2Conv2plus1d) for n in names)
    base.eval()
    dyn.eval()
    x = torch.randn(1, 3, 8, 32, 32)
    with fixed_policy(dyn, 0, 0):
        out = dyn(x)
    ref = base(x)
    assert (out - ref).norm() / ref.norm() <= 1e-5


@pytest.mark.parametrize('placement,check', [
    (dict(stem=False), lambda n: 'conv1.conv' not in n and len(n) == 16),
    (dict(downsample=True), lambda n: sum('downsample' in x for x in n) == 3),
    (dict(stages=(3, 4)),
     lambda n: all(x.startswith(('conv1', 'layer3', 'layer4')) for x in n)),
])
def test_placement_keys(placement, check):
    dyn = _build(
        dict(type='VARED2ResNet2Plus1d', dynamic_cfg=placement, **R2PLUS1D))
    assert check(dyn.dynamic_report['dynamic'])


def test_x3d_keeps_depthwise_and_se_static_by_default():
    dyn = _build(dict(type='VARED2X3D', gamma_w=1, gamma_b=2.25, gamma_d=2.2))
    names = dyn.dynamic_report['dynamic']
    assert not any('conv2' in n or 'se_module' in n for n in names)
    assert 'conv1_s.conv' in names and 'conv5.conv' in names
    assert 'conv1_t.conv' not in names  # depthwise temporal stem conv
    dw = _build(
        dict(
            type='VARED2X3D',
            gamma_w=1,
            gamma_b=2.25,
            gamma_d=2.2,
            dynamic_cfg=dict(depthwise=True)))
    assert any('conv2' in n for n in dw.dynamic_report['dynamic'])


X3D_M = dict(gamma_w=1, gamma_b=2.25, gamma_d=2.2)


@pytest.mark.parametrize('dynamic_cfg', [None, dict(depthwise=True)])
def test_x3d_base_equivalence(dynamic_cfg):
    """X3D-M's state loads into VARED2X3D (only gate and cheap-op keys are
    new) and at (0, 0) gives the base output, with the depthwise convs
    static (default) or dynamic."""
    base = _build(dict(type='X3D', **X3D_M))
    base.init_weights()
    dyn = _build(dict(type='VARED2X3D', dynamic_cfg=dynamic_cfg, **X3D_M))
    missing, unexpected = dyn.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected
    assert missing and all(
        k.split('.')[-2] in ('fc1', 'fc2') or '_ops.' in k for k in missing)
    assert len(missing) == sum(
        len([
            k for k in dyn.get_submodule(n).state_dict()
            if k.startswith(DYNAMIC_PREFIXES)
        ]) for n in dyn.dynamic_report['dynamic'])
    base.eval()
    dyn.eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad(), fixed_policy(dyn, 0, 0):
        out = dyn(x)
    with torch.no_grad():
        ref = base(x)
    assert torch.equal(out, ref)


def test_x3d_search_space_3_reduces_unhalvable_layers_in_time_only():
    dyn = _build(
        dict(
            type='VARED2X3D',
            gamma_w=1,
            gamma_b=2.25,
            gamma_d=2.2,
            dynamic_cfg=dict(search_space=3)))
    only_t = dyn.dynamic_report['temporal_only']
    assert only_t  # the 54-wide bottleneck convs of stage 1
    for name in only_t:
        conv = dyn.get_submodule(name)
        assert conv.dims == ('temporal', ) and conv.out_channels % 4


@pytest.mark.parametrize('cfg,match', [
    (dict(stem='yes'), r'dynamic_cfg.stem must be True or False'),
    (dict(stages=(0, 5)), r'dynamic_cfg.stages must be a non-empty subset'),
    (dict(gates=1), r"unknown key\(s\) \['gates'\]"),
    (dict(search_space=4), r'search_space must be one of'),
    (dict(search_space='2'), r"dynamic_cfg.search_space must be one of "
     r"\(2, 3\), got '2'"),
    (dict(dims=('space', )), r'dynamic_cfg.dims must be a non-empty subset'),
    (dict(gate=dict(temperature=0)), r'dynamic_cfg.gate.temperature must be'),
])
def test_backbone_dynamic_cfg_errors(cfg, match):
    with pytest.raises(ValueError, match=match):
        _build(dict(type='VARED2ResNet2Plus1d', dynamic_cfg=cfg, **R2PLUS1D))


def test_to_dynamic_of_mmcv_wrapper_conv_and_refusals():
    from mmcv.cnn.bricks.wrappers import Conv3d
    conv = Conv3d(4, 8, 3, padding=1)
    dyn = to_dynamic(conv, dict(search_space=2))
    assert isinstance(dyn, VARED2Conv3d)
    assert torch.equal(dyn.weight, conv.weight)
    x = torch.randn(1, 4, 4, 6, 6)
    dyn.eval()
    with fixed_policy(dyn, 0, 0):
        assert torch.equal(dyn(x), conv(x))
    with pytest.raises(TypeError, match='cannot convert Linear'):
        to_dynamic(torch.nn.Linear(2, 2))


def test_i3d_stem_rebuilt_frames_are_never_read():
    """I3D-R50 (mmaction's config: stem temporal stride 2, then a max pool
    of temporal kernel 1 and stride 2) keeps every other stem frame: at
    temporal choice 1 the stem computes exactly those frames, so the
    backbone's output is the full choice's bit for bit (docs/engine.md,
    "I3D-R50's stem"), while a channel choice there does change it."""
    cfg = dict(
        type='VARED2ResNet3d',
        depth=50,
        pretrained=None,
        pretrained2d=False,
        conv1_kernel=(5, 7, 7),
        conv1_stride_t=2,
        pool1_stride_t=2,
        inflate=((1, 1, 1), (1, 0, 1, 0), (1, 0, 1, 0, 1, 0), (0, 1, 0)),
        zero_init_residual=False)
    torch.manual_seed(0)
    dyn = _build(cfg)
    dyn.eval()  # (mmaction's ResNet3d.train returns None)
    assert dyn.maxpool.kernel_size[0] == 1 and dyn.maxpool.stride[0] == 2
    stem = dyn.conv1.conv
    x = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad(), fixed_policy(dyn, 0, 0):
        full = dyn(x)
        stem.forced_choice = (1, 0)
        assert torch.equal(dyn(x), full)
        stem.forced_choice = (0, 1)
        assert not torch.allclose(dyn(x), full)
