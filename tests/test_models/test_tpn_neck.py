# Copyright (c) varedd_mm contributors. All rights reserved.
"""VARED2TPN: placement keys, base equivalence at the full choice, FLOPs."""
import pytest
import torch
from mmaction.models.necks import TPN
from mmaction.registry import MODELS
from mmengine.registry import DefaultScope

from varedd_mm import clip_gflops, dynamic_layers, fixed_policy, track_flops
from varedd_mm.ops.dynamic_base import DYNAMIC_PREFIXES

SMALL = dict(
    in_channels=(64, 128),
    out_channels=64,
    spatial_modulation_cfg=dict(in_channels=(64, 128), out_channels=128),
    temporal_modulation_cfg=dict(downsample_scales=(4, 4)),
    upsample_cfg=dict(scale_factor=(1, 1, 1)),
    downsample_cfg=dict(downsample_scale=(1, 1, 1)),
    level_fusion_cfg=dict(
        in_channels=(64, 64),
        mid_channels=(64, 64),
        out_channels=128,
        downsample_scales=((1, 1, 1), (1, 1, 1))),
    aux_head_cfg=dict(out_channels=5, loss_weight=0.5))


@pytest.fixture(autouse=True)
def _mmaction_scope():
    # the neck builds its aux loss through the registry of the current scope
    with DefaultScope.overwrite_default_scope('mmaction'):
        yield


def _feats(n=2, t=4):
    return (torch.randn(n, 64, t, 8, 8), torch.randn(n, 128, t, 4, 4))


def _dyn(**dynamic_cfg):
    return MODELS.build(
        dict(type='VARED2TPN', dynamic_cfg=dynamic_cfg, **SMALL))


def test_default_placement():
    neck = _dyn()
    assert neck.dynamic_layer_names == [
        'downsample_ops.0.conv.conv', 'level_fusion_1.fusion_conv.conv',
        'spatial_modulation.spatial_modulation.0.0.conv',
        'level_fusion_2.fusion_conv.conv', 'pyramid_fusion.conv'
    ]
    assert neck.dynamic_report['temporal_only'] == []


def test_placement_keys():
    names = _dyn(
        aux_head=True,
        temporal_modulation=True,
        level_fusion=False,
        pyramid_fusion=False).dynamic_layer_names
    assert 'aux_head.conv.conv' in names
    assert {
        'temporal_modulation_ops.0.conv.conv',
        'temporal_modulation_ops.1.conv.conv'
    } <= set(names)
    assert not any(n.startswith(('level_fusion', 'pyramid')) for n in names)
    # the grouped 1x1x1 downsamples inside the level fusion stay static
    assert not any('.downsamples.' in n for n in _dyn().dynamic_layer_names)
    only_t = _dyn(dims=('temporal', ))
    assert all(m.dims == ('temporal', ) for _, m in dynamic_layers(only_t))


def test_config_errors():
    with pytest.raises(
            ValueError, match=r"unknown key\(s\) \['stem'\]; allowed keys"):
        _dyn(stem=True)
    with pytest.raises(
            ValueError,
            match=r'dynamic_cfg.aux_head must be '
            r'True or False, got 1'):
        _dyn(aux_head=1)


def test_full_choice_equals_base_tpn_and_loads_its_state():
    torch.manual_seed(0)
    base = TPN(**SMALL)
    base.init_weights()
    dyn = _dyn(temporal_modulation=True, aux_head=True)
    missing, unexpected = dyn.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected
    # exactly the gates and cheap ops of the dynamic convs are new (a
    # looser match such as '_ops.' would also accept 'downsample_ops.')
    dynamic = [n for n, _ in dynamic_layers(dyn)]
    assert missing and all(
        any(
            k.startswith(f'{n}.{p}') for n in dynamic
            for p in DYNAMIC_PREFIXES) for k in missing), missing
    base.eval()
    dyn.eval()
    x = _feats()
    with torch.no_grad(), fixed_policy(dyn, 0, 0):
        out, _ = dyn(x)
        ref, _ = base(x)
    assert torch.equal(out, ref)


def test_neck_flops_follow_the_choices():
    neck = _dyn().eval()
    track_flops(neck)
    x = _feats(n=1)
    with torch.no_grad():
        with fixed_policy(neck, 0, 0):
            neck(x)
            full = clip_gflops(neck).item()
        with fixed_policy(neck, 0, 1):
            neck(x)
            half = clip_gflops(neck).item()
    dyn_full = sum(m.full_macs for _, m in dynamic_layers(neck)) / 1e9
    # halving the filters of every dynamic conv saves about half their MACs
    assert full - half == pytest.approx(dyn_full / 2, rel=0.05)
