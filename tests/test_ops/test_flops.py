# Copyright (c) varedd_mm contributors. All rights reserved.
"""``clip_gflops`` against mmengine's counter, per-clip accounting, gate
cost."""
import pytest
import torch
import torch.nn as nn
from mmengine.analysis import get_model_complexity_info

from varedd_mm import (VARED2Conv2d, VARED2Conv2plus1d, VARED2Conv3d,
                       clip_gflops, dynamic_layers, fixed_policy, track_flops)


class TinyVideoNet(nn.Module):
    """Static stem + dynamic 3D and (2+1)D convs + static head."""

    def __init__(self, k=2):
        super().__init__()
        cfg = dict(search_space=k)
        self.stem = nn.Sequential(
            nn.Conv3d(3, 32, (1, 3, 3), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(32), nn.ReLU())
        self.dyn = nn.Sequential(
            VARED2Conv3d(32, 64, 3, padding=1, bias=False, dynamic_cfg=cfg),
            nn.BatchNorm3d(64), nn.ReLU(),
            VARED2Conv2plus1d(64, 64, 3, padding=1, dynamic_cfg=cfg),
            nn.BatchNorm3d(64), nn.ReLU(),
            VARED2Conv3d(64, 64, (1, 1, 1), bias=False, dynamic_cfg=cfg))
        self.pool = nn.AdaptiveAvgPool3d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        x = self.pool(self.dyn(self.stem(x)))
        return self.fc(x.flatten(1))


def _mmengine_gflops(model, x):
    info = get_model_complexity_info(
        model, inputs=(x, ), show_table=False, show_arch=False)
    return info['flops'] / 1e9


@pytest.mark.parametrize('choice', [(0, 0), (1, 1)])
@pytest.mark.parametrize('k', [2, 3])
def test_clip_gflops_matches_mmengine_counter(choice, k):
    model = TinyVideoNet(k).eval()
    track_flops(model)
    x = torch.randn(2, 3, 8, 16, 16)
    with fixed_policy(model, *choice):
        ref = _mmengine_gflops(model, x[:1])
        model(x)
        ours = clip_gflops(model)
    assert ours.shape == (2, )
    assert torch.all(ours == ours[0])
    assert abs(ours[0].item() - ref) / ref < 0.01, (ours, ref)


def test_clip_gflops_choice00_equals_base_model():
    """The real R(2+1)D-18 of the model zoo configs at 16x112x112: the
    dynamic model forced to (0, 0) costs what mmengine's counter gives for
    the *base* model (built from the base config, no dynamic layer), and
    what the method spec quotes (11.86 GFLOPs)."""
    from mmengine.config import Config

    from varedd_mm.analysis import ClipModel, build_model_from_cfg
    cfgs = 'configs/recognition/vared2/'
    base = ClipModel(
        build_model_from_cfg(
            Config.fromfile(cfgs +
                            'r2plus1d_r18_8xb16-16x2x1-100e_minik200-rgb.py')))
    dyn = ClipModel(
        build_model_from_cfg(
            Config.fromfile(cfgs + 'vared2-k2_r2plus1d_r18_8xb16-16x2x1-30e_'
                            'minik200-rgb.py')))
    assert not dynamic_layers(base) and dynamic_layers(dyn)
    base.eval()
    dyn.eval()
    track_flops(dyn)
    x = torch.randn(1, 3, 16, 112, 112)
    ref = _mmengine_gflops(base, x)
    assert ref == pytest.approx(11.86, abs=0.01)
    with torch.no_grad(), fixed_policy(dyn, 0, 0):
        dyn(x)
    ours = clip_gflops(dyn).item()
    assert ours == pytest.approx(ref, rel=0.01)
    with torch.no_grad(), fixed_policy(dyn, 1, 1):
        dyn(x)
    assert clip_gflops(dyn).item() == pytest.approx(0.22 * ref, abs=0.01 * ref)


def test_clip_gflops_per_clip_follows_each_clips_choice():
    model = TinyVideoNet(k=3).eval()
    dyn_layers = [m for m in model.modules() if hasattr(m, 'last_choice')]
    shapes = {}
    for idx, m in enumerate(dyn_layers):
        m.register_forward_pre_hook(
            lambda mod, args: shapes.__setitem__(mod, args[0].shape))

        # clip n takes temporal choice (n + idx) % 3, channel choice n % 3
        def logits(x, idx=idx):
            n = torch.arange(x.shape[0])
            lt = torch.nn.functional.one_hot((n + idx) % 3, 3).float()
            lc = torch.nn.functional.one_hot(n % 3, 3).float()
            return lt, lc

        m.gate.logits = logits
    track_flops(model)
    x = torch.randn(4, 3, 8, 16, 16)
    model(x)
    per_clip = clip_gflops(model)
    choices = {m: m.last_choice.clone() for m in dyn_layers}
    assert len({tuple(c) for c in choices[dyn_layers[0]].tolist()}) == 3
    with fixed_policy(model, 0, 0):
        model(x[:1])
        static = clip_gflops(model)[0].item() - sum(m.full_macs
                                                    for m in dyn_layers) / 1e9
    for n in range(4):
        total = static
        for m in dyn_layers:
            choice = tuple(choices[m][n].tolist())
            assert choice == ((n + dyn_layers.index(m)) % 3, n % 3)
            total += (m.macs_table(shapes[m])[choice] +
                      m.gate_macs(shapes[m])) / 1e9
        assert per_clip[n].item() == pytest.approx(total, rel=1e-9)
    assert per_clip[1] < per_clip[0]


def test_clip_gflops_concatenates_chunks_of_one_forward():
    """A model that runs its backbone on chunks of the batch (as mmaction's
    recognizers do with ``max_testing_views``) still gets one value per
    clip."""

    class Chunked(nn.Module):

        def __init__(self):
            super().__init__()
            self.net = TinyVideoNet()

        def forward(self, x):
            return torch.cat([self.net(c) for c in x.split(2)])

    model = Chunked().eval()
    track_flops(model)
    x = torch.randn(5, 3, 8, 16, 16)
    with fixed_policy(model, 1, 0):
        model(x)
        per_clip = clip_gflops(model)
    assert per_clip.shape == (5, )
    assert torch.allclose(per_clip, per_clip[0].expand(5))


def test_clip_gflops_2d():
    model = nn.Sequential(
        VARED2Conv2d(16, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        VARED2Conv2d(64, 64, 3, padding=1)).eval()
    track_flops(model)
    x = torch.randn(1, 16, 32, 32)
    for j in (0, 1):
        with fixed_policy(model, channel=j):
            ref = _mmengine_gflops(model, x)
            model(x)
            assert abs(clip_gflops(model).item() - ref) / ref < 0.01


@pytest.mark.parametrize(
    'cin,cout,kernel,shape',
    [
        # R(2+1)D-18 at 16x112x112: layer1..layer4 convs (after the stem)
        (64, 64, 3, (16, 56, 56)),
        (128, 128, 3, (8, 28, 28)),
        (256, 256, 3, (4, 14, 14)),
        (512, 512, 3, (2, 7, 7)),
        # I3D-R50 at 32x224x224: bottleneck 1x1x1 / 3x1x1 / 1x3x3 convs
        (256, 64, (3, 1, 1), (8, 56, 56)),
        (64, 64, (1, 3, 3), (8, 56, 56)),
        (2048, 512, (1, 1, 1), (4, 7, 7)),
        (1024, 512, (3, 1, 1), (4, 7, 7)),
    ])
def test_gate_costs_at_most_half_a_percent(cin, cout, kernel, shape):
    for cls in (VARED2Conv3d, VARED2Conv2plus1d):
        if cls is VARED2Conv2plus1d and kernel != 3:
            continue
        ks = (kernel, ) * 3 if isinstance(kernel, int) else kernel
        conv = cls(cin, cout, kernel, padding=tuple(k // 2 for k in ks))
        full_shape = (1, cin) + shape
        full = conv.macs_table(full_shape)[(0, 0)]
        ratio = conv.gate_macs(full_shape) / full
        assert ratio <= 0.005, (cls.__name__, ratio)
