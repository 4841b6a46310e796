# Copyright (c) varedd_mm contributors. All rights reserved.
"""Max pooling by strided views (``varedd_mm.ops.pool``): torch's values
exactly (signed zeros aside), its memory format, and the models that get
it."""
import itertools
import os.path as osp
import pickle

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS
from mmengine.config import Config
from mmengine.registry import DefaultScope

from varedd_mm import fuse_conv_bn
from varedd_mm.ops import pool
from varedd_mm.ops.pool import (InferenceMaxPool2d, InferenceMaxPool3d,
                                max_pool_taps)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TORCH_POOL = {2: F.max_pool2d, 3: F.max_pool3d}
CHANNELS_LAST = {2: torch.channels_last, 3: torch.channels_last_3d}


def _input(shape, memory_format=torch.contiguous_format):
    x = torch.randn(shape)
    flat = x.view(-1)
    flat[::97] = float('nan')
    flat[5::89] = float('inf')
    flat[7::83] = -float('inf')
    return x.contiguous(memory_format=memory_format)


def _same(got, expected):
    assert got.shape == expected.shape
    assert got.stride() == expected.stride()
    assert torch.equal(got.isnan(), expected.isnan())
    assert torch.equal(got.nan_to_num(), expected.nan_to_num())


AXES = [  # (kernel, stride, padding) of one axis
    (1, 1, 0), (1, 2, 0), (2, 1, 0), (2, 2, 0), (2, 2, 1), (2, 1, 1),
    (3, 1, 1), (3, 2, 1), (3, 2, 0), (3, 3, 1), (4, 3, 2), (5, 2, 2)
]


@pytest.mark.parametrize('ceil_mode', [False, True])
@pytest.mark.parametrize('channels_last', [False, True])
@pytest.mark.parametrize('size', [7, 8])
def test_equals_torch_3d(size, channels_last, ceil_mode):
    """Every pair of axis settings (the third axis cycles), odd and even
    sizes, both memory formats, with and without ``ceil_mode``, with NaN
    and ±inf in the input: the same values (NaN where torch's is NaN) and
    strides as ``F.max_pool3d``."""
    fmt = CHANNELS_LAST[3] if channels_last else torch.contiguous_format
    x = _input((2, 3, size, size + 1, size + 2), fmt)
    for i, (a, b) in enumerate(itertools.product(AXES, AXES)):
        c = AXES[i % len(AXES)]
        kernel, stride, padding = zip(a, b, c)
        expected = F.max_pool3d(
            x, kernel, stride, padding, ceil_mode=ceil_mode)
        _same(max_pool_taps(x, kernel, stride, padding, ceil_mode), expected)


@pytest.mark.parametrize('ceil_mode', [False, True])
@pytest.mark.parametrize('channels_last', [False, True])
def test_equals_torch_2d(channels_last, ceil_mode):
    fmt = CHANNELS_LAST[2] if channels_last else torch.contiguous_format
    x = _input((2, 5, 9, 12), fmt)
    for a, b in itertools.product(AXES, AXES):
        kernel, stride, padding = zip(a, b)
        expected = F.max_pool2d(
            x, kernel, stride, padding, ceil_mode=ceil_mode)
        _same(max_pool_taps(x, kernel, stride, padding, ceil_mode), expected)


def test_ceil_mode_windows_past_the_border():
    """TPN's temporal pools (kernel = stride, ``ceil_mode``) on odd clip
    lengths: the last window holds one frame."""
    x = _input((1, 4, 7, 5, 6))
    for kernel in [(2, 1, 1), (3, 1, 1), (2, 2, 2), (4, 3, 3)]:
        expected = F.max_pool3d(x, kernel, kernel, 0, ceil_mode=True)
        got = max_pool_taps(x, kernel, kernel, (0, 0, 0), True)
        assert got.shape[2] == -(-7 // kernel[0])
        _same(got, expected)


def test_identity_pool_returns_a_new_tensor():
    x = torch.randn(1, 2, 3, 4, 5)
    out = max_pool_taps(x, (1, 1, 1), (1, 1, 1), (0, 0, 0))
    assert torch.equal(out, x)
    assert out.data_ptr() != x.data_ptr()


@pytest.mark.parametrize('kernel, stride, padding, shape, match', [
    ((3, ) * 5, (2, ) * 5, (1, ) * 5, (1, 2, 8, 8, 8), '5-d input'),
    ((3, 3, 3), (2, 2), (1, 1, 1), (1, 2, 8, 8, 8), 'one value per'),
    ((3, 3, 3), (2, 2, 2), (1, 2, 1), (1, 2, 8, 8, 8), 'padding <='),
    ((3, 3, 3), (2, 0, 2), (1, 1, 1), (1, 2, 8, 8, 8), 'stride'),
    ((3, 3, 3), (1, 1, 1), (0, 0, 0), (1, 2, 8, 2, 8), r'\(1, 2, 8, 2, 8\)'),
])
def test_bad_arguments_name_the_values(kernel, stride, padding, shape, match):
    with pytest.raises(ValueError, match=match):
        max_pool_taps(torch.zeros(shape), kernel, stride, padding)


@pytest.fixture
def taps_calls(monkeypatch):
    calls = []
    real = pool.max_pool_taps

    def counting(*args):
        calls.append(args[1:])
        return real(*args)

    monkeypatch.setattr(pool, 'max_pool_taps', counting)
    return calls


def test_inference_pool_runs_the_views_on_contiguous_cpu_inputs(taps_calls):
    module = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
    x = _input((2, 4, 3, 11, 10))
    expected = module(x)
    module.__class__ = InferenceMaxPool3d
    _same(module(x), expected)
    assert taps_calls == [((1, 3, 3), (1, 2, 2), (0, 1, 1), False)]
    module2d = InferenceMaxPool2d(3, 2, 1)
    frame = x[:, :, 0].contiguous()
    _same(module2d(frame), F.max_pool2d(frame, 3, 2, 1))
    assert taps_calls[-1] == ((3, 3), (2, 2), (1, 1), False)
    tpn_pool = InferenceMaxPool3d((2, 1, 1), (2, 1, 1), 0, ceil_mode=True)
    _same(tpn_pool(x), F.max_pool3d(x, (2, 1, 1), (2, 1, 1), ceil_mode=True))
    assert taps_calls[-1] == ((2, 1, 1), (2, 1, 1), (0, 0, 0), True)


@pytest.mark.parametrize(
    'case',
    ['channels_last', 'dilation', 'return_indices', 'grad', 'non_contiguous'])
def test_inference_pool_falls_back_to_torch(case, taps_calls):
    """Where the views are not the faster path or cannot give what torch
    gives (indices, dilation, a gradient), torch runs;
    the result is torch's in every case."""
    kwargs = dict(kernel_size=3, stride=2, padding=1)
    kwargs.update(
        dict(
            dilation=dict(dilation=2),
            return_indices=dict(return_indices=True)).get(case, {}))
    x = _input((1, 3, 5, 9, 9))
    if case == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last_3d)
    elif case == 'non_contiguous':
        x = x.transpose(3, 4)
    elif case == 'grad':
        x = torch.randn(1, 3, 5, 9, 9, requires_grad=True)
    module = InferenceMaxPool3d(**kwargs)
    out = module(x)
    expected = nn.MaxPool3d(**kwargs)(x)
    if case == 'return_indices':
        assert torch.equal(out[1], expected[1])
        out, expected = out[0], expected[0]
    _same(out, expected)
    assert taps_calls == []
    if case == 'grad':
        out.sum().backward()
        assert x.grad.sum() == out.numel()


def _backbone(cfg_name):
    cfg = Config.fromfile(
        osp.join(ROOT, 'configs', '_base_', 'models', cfg_name)).model.backbone
    cfg.pretrained = None  # no download: random weights
    with DefaultScope.overwrite_default_scope('mmaction'):
        model = MODELS.build(cfg)
    model.init_weights()
    model.eval()
    return model


@pytest.mark.parametrize('cfg_name', ['r2plus1d_r18.py', 'vared2_i3d_r50.py'])
def test_fuse_conv_bn_gives_models_the_inference_pools(cfg_name):
    """The base and the VA-RED² model alike; exactly ``nn.MaxPool3d``
    (a subclass keeps its forward); the fused model still pickles."""

    class OwnPool(nn.MaxPool3d):
        pass

    model = _backbone(cfg_name)
    model.own_pool = OwnPool(2)
    fuse_conv_bn(model)
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool3d)]
    assert type(model.maxpool) is InferenceMaxPool3d
    assert type(model.own_pool) is OwnPool
    assert len(pools) >= 2
    del model.own_pool
    restored = pickle.loads(pickle.dumps(model))
    assert type(restored.maxpool) is InferenceMaxPool3d


def test_fused_i3d_backbone_output_unchanged_by_the_pools():
    """I3D-R50 has both of its pools (stem and ``pool2``) on contiguous
    inputs: the fused backbone's output with the inference pools equals
    the one with torch's, bit for bit."""
    model = fuse_conv_bn(_backbone('i3d_r50.py'))
    assert type(model.pool2) is InferenceMaxPool3d
    x = torch.randn(1, 3, 8, 64, 64)
    with torch.no_grad():
        out = model(x)
        for m in model.modules():
            if type(m) is InferenceMaxPool3d:
                m.__class__ = nn.MaxPool3d
        expected = model(x)
    assert torch.equal(out, expected)
