# Copyright (c) varedd_mm contributors. All rights reserved.
"""Every bad ``dynamic_cfg`` / argument case and the error it gets.

Cases (each names the parameter and the allowed values):

1. unknown top-level key                      -> dynamic_cfg ... unknown key
2. search_space outside {2, 3} (1, 4, '2',
   True, 2.5)                                 -> dynamic_cfg.search_space
3. dims: unknown name, empty, repeated        -> dynamic_cfg.dims
4. dims with 'temporal' on a 2D conv          -> dims of a 2D
5. out_channels that cannot be halved K-1
   times (5 @ K=2, 6 @ K=3, 2 @ K=3)          -> out_channels=...
6. grouped conv whose groups cannot be
   halved (groups=3 @ K=2)                    -> groups=...
7. unknown temporal_op / channel_op           -> dynamic_cfg.temporal_op/...
8. unknown gate key                           -> dynamic_cfg.gate ... key
9. gate values: temperature <= 0, min_hidden
   > max_hidden, reduction 0 / not int        -> dynamic_cfg.gate.<key>
10. padding_mode != 'zeros', string padding   -> padding_mode
11. Conv2plus1d with groups / dilation        -> groups=... dilation=...
12. wrong input rank or channels              -> expects input of shape
13. fixed_policy choice outside the layer,
    non-int choice, model without layers      -> fixed_policy ...
14. EfficiencyLoss target outside (0, 1],
    negative loss_weight, before a forward    -> EfficiencyLoss.<arg>
15. clip_gflops without track_flops           -> track_flops
"""
import itertools

import pytest
import torch
import torch.nn as nn

from varedd_mm import (EfficiencyLoss, VARED2Conv2d, VARED2Conv2plus1d,
                       VARED2Conv3d, clip_gflops, fixed_policy)


@pytest.mark.parametrize('cfg,match', [
    (dict(serach_space=2), r"unknown key\(s\) \['serach_space'\]"),
    (dict(search_space=1), r'search_space must be one of \(2, 3\)'),
    (dict(search_space=4), r'search_space must be one of \(2, 3\)'),
    (dict(search_space='2'), r'search_space must be one of \(2, 3\)'),
    (dict(search_space=True), r'search_space must be one of \(2, 3\)'),
    (dict(search_space=2.5), r'search_space must be one of \(2, 3\)'),
    (dict(dims=('spatial', )), r"dims must be a non-empty subset of "
     r"\('temporal', 'channel'\)"),
    (dict(dims=()), r'dims must be a non-empty subset'),
    (dict(dims=('channel', 'channel')), r'without repeats'),
    (dict(temporal_op='trilinear'), r"temporal_op must be one of \('interp"),
    (dict(temporal_taps='dense'),
     r"temporal_taps must be one of \('subsample', 'interp'\)"),
    (dict(channel_op='pointwise'), r"channel_op must be one of \('ghost"),
    (dict(gate=dict(hidden=8)), r"dynamic_cfg.gate got unknown key"),
    (dict(gate=dict(temperature=0)), r'gate.temperature must be > 0'),
    (dict(gate=dict(min_hidden=32, max_hidden=8)), r'min_hidden must be <='),
    (dict(gate=dict(reduction=0)), r'gate.reduction must be a positive int'),
    (dict(gate=dict(reduction=2.0)), r'gate.reduction must be a positive'),
])
def test_bad_dynamic_cfg(cfg, match):
    with pytest.raises(ValueError, match=match):
        VARED2Conv3d(8, 16, 3, dynamic_cfg=cfg)


@pytest.mark.parametrize('out_channels,k', [(5, 2), (6, 3), (2, 3)])
def test_channels_that_cannot_be_halved(out_channels, k):
    with pytest.raises(
            ValueError,
            match=rf'out_channels={out_channels} '
            rf'cannot be halved {k - 1} time'):
        VARED2Conv3d(8, out_channels, 3, dynamic_cfg=dict(search_space=k))
    # fine without the channel dimension
    VARED2Conv3d(
        8,
        out_channels,
        3,
        dynamic_cfg=dict(search_space=k, dims=('temporal', )))


def test_groups_that_cannot_be_halved():
    with pytest.raises(ValueError, match=r'groups=3 cannot be halved'):
        VARED2Conv3d(6, 6, 3, groups=3)


def test_temporal_dims_on_2d_conv():
    with pytest.raises(
            ValueError, match=r"2D VARED2Conv2d may only hold "
            r"'channel'"):
        VARED2Conv2d(8, 16, 3, dynamic_cfg=dict(dims=('temporal', )))


@pytest.mark.parametrize('kwargs,match', [
    (dict(padding_mode='reflect'), r'padding_mode="zeros"'),
    (dict(padding='same'), r'padding_mode="zeros" with integer padding'),
])
def test_unsupported_padding(kwargs, match):
    with pytest.raises(ValueError, match=match):
        VARED2Conv3d(8, 16, 3, **kwargs)


@pytest.mark.parametrize('kwargs', [dict(groups=2), dict(dilation=2)])
def test_conv2plus1d_unsupported(kwargs):
    with pytest.raises(ValueError, match=r'dilation=1 and groups=1 only'):
        VARED2Conv2plus1d(8, 16, 3, **kwargs)


@pytest.mark.parametrize('kernel,padding', [(3, 0), ((3, 3, 3), (2, 1, 1)),
                                            ((2, 3, 3), (1, 1, 1))])
def test_conv2plus1d_temporal_choices_need_same_padding(kernel, padding):
    """An unpadded temporal conv would build and then fail in every reduced
    forward: refused at construction, naming the fix."""
    with pytest.raises(
            ValueError,
            match=r'temporal choices need a "same"-padded temporal conv.*'
            r'dims=\("channel",\)'):
        VARED2Conv2plus1d(8, 16, kernel, padding=padding)
    # channel choices only: no temporal reduction, so any padding works
    conv = VARED2Conv2plus1d(
        8, 16, kernel, padding=padding, dynamic_cfg=dict(dims='channel'))
    conv.eval()
    x = torch.randn(2, 8, 6, 7, 7)
    for choice in ((0, 0), (0, 1)):
        with fixed_policy(conv, *choice):
            assert conv(x).shape[2] == (6 + 2 * conv.padding[0] -
                                        conv.kernel_size[0]) + 1


@pytest.mark.parametrize('t', [1, 5, 8])
@pytest.mark.parametrize('stride', [1, 2])
def test_conv2plus1d_same_padding_runs_every_choice(t, stride):
    conv = VARED2Conv2plus1d(
        8,
        16,
        3,
        stride=(stride, 1, 1),
        padding=1,
        dynamic_cfg=dict(search_space=3))
    conv.eval()
    x = torch.randn(2, 8, t, 5, 5)
    shapes = set()
    for choice in itertools.product(range(3), repeat=2):
        with fixed_policy(conv, *choice):
            shapes.add(tuple(conv(x).shape))
    assert shapes == {(2, 16, -(-t // stride), 5, 5)}


def test_conv2plus1d_interp_taps_need_three_taps():
    with pytest.raises(
            ValueError,
            match=r"temporal_taps='interp' needs a "
            r'3-tap temporal conv .*kernel_size=\(5, 3, 3\)'):
        VARED2Conv2plus1d(
            4,
            8, (5, 3, 3),
            padding=(2, 1, 1),
            dynamic_cfg=dict(temporal_taps='interp'))
    # no temporal choices: nothing to interpolate, any kernel
    VARED2Conv2plus1d(
        4,
        8, (5, 3, 3),
        padding=(2, 1, 1),
        dynamic_cfg=dict(temporal_taps='interp', dims=('channel', )))


@pytest.mark.parametrize('shape', [(2, 8, 6, 6), (2, 4, 3, 6, 6)])
def test_bad_input_shape(shape):
    conv = VARED2Conv3d(8, 16, 3, padding=1)
    with pytest.raises(
            ValueError,
            match=r'expects input of shape '
            r'\(N, C, T, H, W\) with C=8'):
        conv(torch.randn(*shape))


def test_fixed_policy_errors():
    conv = VARED2Conv3d(8, 16, 3, padding=1)  # search space 2
    with pytest.raises(
            ValueError,
            match=r'choice \(2, 0\) is outside this '
            r'layer: temporal in \[0, 1\]'):
        with fixed_policy(conv, temporal=2):
            pass
    assert conv.forced_choice is None
    with pytest.raises(ValueError, match=r'temporal must be an int'):
        with fixed_policy(conv, temporal=0.5):
            pass
    with pytest.raises(ValueError, match=r'no VA-RED2 dynamic layers'):
        with fixed_policy(nn.Conv3d(2, 2, 1)):
            pass


def test_efficiency_loss_errors():
    with pytest.raises(ValueError, match=r'target must be in \(0, 1\]'):
        EfficiencyLoss(target=1.5)
    with pytest.raises(ValueError, match=r'target must be in \(0, 1\]'):
        EfficiencyLoss(target=0)
    with pytest.raises(ValueError, match=r'loss_weight must be >= 0'):
        EfficiencyLoss(loss_weight=-1)
    with pytest.raises(
            ValueError,
            match=r"cost must be one of \('expected', "
            r"'realised'\), got 'argmax'"):
        EfficiencyLoss(cost='argmax')
    with pytest.raises(RuntimeError, match=r'has not run a forward'):
        EfficiencyLoss()(VARED2Conv3d(8, 16, 3))


def test_clip_gflops_needs_tracker():
    conv = VARED2Conv3d(8, 16, 3, padding=1)
    conv(torch.randn(1, 8, 4, 4, 4))
    with pytest.raises(RuntimeError, match=r'call varedd_mm.track_flops'):
        clip_gflops(conv)
