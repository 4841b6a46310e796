# Copyright (c) varedd_mm contributors. All rights reserved.
"""Registration under every scope; base checkpoints in dynamic models."""
import pytest
import torch
from mmcv.cnn import build_conv_layer
from mmengine.registry import MODELS, DefaultScope
from mmengine.runner import load_checkpoint, save_checkpoint

from varedd_mm import (EfficiencyLoss, VARED2Conv2d, VARED2Conv2plus1d,
                       VARED2Conv3d, fixed_policy)

SCOPES = ['mmaction', 'mmdet', 'mmseg']
COMPONENTS = [('VARED2Conv3d', VARED2Conv3d, 5),
              ('VARED2Conv2plus1d', VARED2Conv2plus1d, 5),
              ('VARED2Conv2d', VARED2Conv2d, 4)]


def _codebase_models(scope):
    if scope == 'mmaction':
        from mmaction.registry import MODELS as m
    elif scope == 'mmdet':
        from mmdet.registry import MODELS as m
    else:
        from mmseg.registry import MODELS as m
    return m


@pytest.mark.parametrize('scope', SCOPES)
@pytest.mark.parametrize('name,cls,dim', COMPONENTS)
def test_conv_cfg_resolves_in_every_scope(scope, name, cls, dim):
    """``conv_cfg=dict(type=...)`` goes through ``build_conv_layer``, which
    looks the type up in the *current default scope*."""
    with DefaultScope.overwrite_default_scope(scope):
        conv = build_conv_layer(
            dict(type=name, dynamic_cfg=dict(search_space=3)),
            8,
            16,
            3,
            padding=1)
    assert type(conv) is cls and conv.search_space == 3
    x = torch.randn((1, 8) + (4, ) * (dim - 2))
    assert conv.eval()(x).shape[1] == 16


@pytest.mark.parametrize('scope', SCOPES)
def test_codebase_registries_build_engine_components(scope):
    models = _codebase_models(scope)
    conv = models.build(
        dict(
            type='VARED2Conv3d', in_channels=4, out_channels=8, kernel_size=3))
    assert isinstance(conv, VARED2Conv3d)
    loss = models.build(dict(type='EfficiencyLoss', loss_weight=0.5))
    assert isinstance(loss, EfficiencyLoss) and loss.loss_weight == 0.5
    loss = models.build(dict(type='VARED2EfficiencyLoss', target=0.5))
    assert loss.target == 0.5


def test_import_changes_no_default_scope():
    import importlib

    import varedd_mm
    before = DefaultScope.get_current_instance()
    importlib.reload(varedd_mm)
    assert DefaultScope.get_current_instance() is before
    assert MODELS.get('VARED2Conv3d') is varedd_mm.VARED2Conv3d


def _i3d_like(conv_type):
    from mmaction.registry import MODELS as ACTION_MODELS
    cfg = dict(
        type='ResNet3d',
        depth=50,
        pretrained=None,
        pretrained2d=False,
        base_channels=16,
        num_stages=2,
        out_indices=(1, ),
        stage_blocks=(1, 1),
        spatial_strides=(1, 2),
        temporal_strides=(1, 1),
        dilations=(1, 1),
        conv1_kernel=(3, 7, 7),
        inflate=((1, ), (0, )),
        conv_cfg=dict(type=conv_type))
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = ACTION_MODELS.build(cfg)
    model.init_weights()
    return model


def test_base_checkpoint_loads_into_dynamic_model(tmp_path):
    """Base I3D-style ResNet3d checkpoint -> dynamic model: only gate and
    cheap-op keys are missing, and they are reported; at (0, 0) the dynamic
    model reproduces the base output."""
    base = _i3d_like('Conv3d')
    ckpt = tmp_path / 'base.pth'
    save_checkpoint(base.state_dict(), str(ckpt))
    dyn = _i3d_like('VARED2Conv3d')
    from mmengine.logging import MMLogger
    logger = MMLogger.get_instance('test_ckpt', log_level='INFO')
    messages = []
    handler_cls = __import__('logging').Handler

    class Catch(handler_cls):

        def emit(self, record):
            messages.append(record.getMessage())

    logger.addHandler(Catch())
    load_checkpoint(dyn, str(ckpt), map_location='cpu', logger=logger)
    text = '\n'.join(messages)
    assert 'missing keys in source state_dict' in text
    missing = text.split('missing keys in source state_dict:')[1]
    missing = [k.strip() for k in missing.split('\n')[0].split(',')]
    dynamic_only = sorted(k for k in dyn.state_dict()
                          if k not in base.state_dict())
    assert dynamic_only and all(
        ('.gate.' in k or '.temporal_ops.' in k or '.channel_ops.' in k)
        for k in dynamic_only), dynamic_only
    assert sorted(missing) == dynamic_only
    unexpected = [k for k in base.state_dict() if k not in dyn.state_dict()]
    assert unexpected == []

    base.eval()
    dyn.eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with fixed_policy(dyn, 0, 0):
        out = dyn(x)
    ref = base(x)
    rel = (out - ref).norm() / ref.norm()
    assert rel <= 1e-5


def test_shape_mismatch_is_a_clear_error(tmp_path):
    src = VARED2Conv3d(8, 16, 3)
    dst = VARED2Conv3d(8, 32, 3)
    ckpt = tmp_path / 'x.pth'
    save_checkpoint(src.state_dict(), str(ckpt))
    with pytest.raises(
            ValueError,
            match=r"checkpoint tensor 'weight' has "
            r'shape \(16, 8, 3, 3, 3\) but the dynamic layer '
            r'expects \(32, 8, 3, 3, 3\)'):
        load_checkpoint(dst, str(ckpt), map_location='cpu')


def test_shape_mismatch_in_conv2plus1d_child():
    src = VARED2Conv2plus1d(8, 16, 3, padding=1).state_dict()
    dst = VARED2Conv2plus1d(8, 32, 3, padding=1)
    with pytest.raises(ValueError, match=r"'conv_s.weight' has shape"):
        dst.load_state_dict(src, strict=False)


@pytest.mark.parametrize('cls', [VARED2Conv3d, VARED2Conv2plus1d])
def test_fresh_dynamic_parameters_are_reported(cls, monkeypatch):
    """Loading a base conv's state reports the gate / cheap-op tensors that
    keep their initialisation, for the (2+1)D conv (no ``weight`` of its
    own) as for plain convs; a full dynamic state reports nothing."""
    import varedd_mm.ops.dynamic_base as dynamic_base
    logged = []
    monkeypatch.setattr(dynamic_base, 'print_log',
                        lambda msg, **kw: logged.append(msg))
    dyn = cls(8, 16, 3, padding=1)
    base_state = {
        k: v
        for k, v in dyn.state_dict().items()
        if not k.startswith(('gate.', 'temporal_ops.', 'channel_ops.'))
    }
    fresh = len(dyn.state_dict()) - len(base_state)
    cls(8, 16, 3, padding=1).load_state_dict(base_state, strict=False)
    assert len(logged) == 1
    assert f'{fresh} gate/cheap-op tensors keep their' in logged[0]
    cls(8, 16, 3, padding=1).load_state_dict(dyn.state_dict())
    assert len(logged) == 1
