# Copyright (c) varedd_mm contributors. All rights reserved.
"""The harder synthetic benchmark: static classes do not move, moving
classes pan in their direction at their speed, and the generator writes the
ten-class layout the configs read."""
import os.path as osp

import numpy as np
import pytest

from varedd_mm.datasets import (HARD_CLASSES, HARD_STATIC_CLASSES, generate,
                                render_hard_clip)
from varedd_mm.datasets.synthetic_motion_hard import (FRAME_INTERVAL, PANS,
                                                      STRIPE_PERIOD,
                                                      render_texture)


def _moved(clip, axis, limit=9):
    """Integer displacement of the content between frames 0 and 4 along
    ``axis`` (1: x, 0: y), by the least mean squared error over the
    overlap."""
    a, b = clip[0].astype(float).mean(-1), clip[4].astype(float).mean(-1)
    if axis == 0:
        a, b = a.T, b.T
    n = a.shape[1]

    def err(pa, pb):  # zero-mean: insensitive to the brightness flicker
        return (((pa - pa.mean()) - (pb - pb.mean()))**2).mean()

    errors = {
        d: err(a[:, max(-d, 0):n + min(-d, 0)], b[:,
                                                  max(d, 0):n + min(d, 0)])
        for d in range(-limit, limit + 1)
    }
    return min(errors, key=errors.get)


@pytest.mark.parametrize('cls', HARD_CLASSES[4:])
def test_moving_classes_pan_in_their_direction_at_their_speed(cls):
    label = HARD_CLASSES.index(cls)
    (ux, uy), (low, high) = PANS[cls]
    rng = np.random.default_rng(label)
    for _ in range(3):
        # a 2D texture, so the displacement is unambiguous
        clip = render_hard_clip(label, rng, 8, 40, family='blocks')
        assert clip.shape == (8, 40, 40, 3) and clip.dtype == np.uint8
        axis, sign = (1, ux) if ux else (0, uy)
        # the content moves against the pan of the window
        moved = -sign * _moved(clip, axis)
        assert 4 * low - 1 <= moved <= 4 * high + 1, (cls, moved)


@pytest.mark.parametrize('cls', HARD_STATIC_CLASSES)
def test_static_classes_change_far_less_than_pans(cls):
    """Static clips change only by camera jitter, flicker and noise."""
    family = cls[len('static_'):]
    rng = np.random.default_rng(0)

    def change(label, **kwargs):
        clips = [
            render_hard_clip(label, rng, 5, 40, **kwargs).astype(float)
            for _ in range(4)
        ]
        # on 4x4 block means, where the sensor noise averages out
        blocks = [
            c.reshape(5, 10, 4, 10, 4, 3).mean(axis=(2, 4)) for c in clips
        ]
        return np.mean([np.abs(c[4] - c[0]).mean() for c in blocks])

    still = change(HARD_CLASSES.index(cls))
    panning = change(HARD_CLASSES.index('right_fast'), family=family)
    assert still < 0.7 * panning, (cls, still, panning)


def test_slow_and_fast_pans_differ_in_speed():
    speeds = {}
    for cls in ('right_slow', 'right_fast'):
        rng = np.random.default_rng(0)
        label = HARD_CLASSES.index(cls)
        speeds[cls] = np.mean([
            -_moved(render_hard_clip(label, rng, 5, 40, family='blocks'), 1)
            for _ in range(4)
        ])
    # 1.0-1.8 vs 2.6-3.6 pixels over the 4 frames
    assert speeds['right_fast'] > speeds['right_slow'] + 0.8


def test_no_pan_aliases_at_the_configs_frame_interval():
    """Between two sampled frames every pan moves less than half the
    shortest stripe period (else stripes could look slower or reversed)."""
    fastest = max(high for _, (_, high) in PANS.values())
    assert FRAME_INTERVAL * fastest < STRIPE_PERIOD[0] / 2
    from mmengine.config import Config
    cfg = Config.fromfile(
        osp.join(
            osp.dirname(__file__), '..', '..', 'configs', 'recognition',
            'vared2', 'demo',
            'r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-hard-rgb.py'))
    sample = [
        t for t in cfg.train_dataloader.dataset.pipeline
        if t['type'] == 'SampleFrames'
    ][0]
    assert sample['frame_interval'] == FRAME_INTERVAL


@pytest.mark.parametrize('family', ('blocks', 'stripes', 'dots', 'blobs'))
def test_textures_differ_in_brightness_not_only_in_hue(family):
    """Fine textures of two colours of about the same luma would not survive
    the half-resolution chroma of the yuv420 H.264 files."""
    rng = np.random.default_rng(0)
    luma = np.array([0.299, 0.587, 0.114])
    for _ in range(50):
        y = render_texture(family, rng, (40, 40)) @ luma
        assert y.max() - y.min() >= 20, family


@pytest.mark.parametrize('family', ('blocks', 'stripes', 'dots', 'blobs'))
def test_texture_colours_stay_near_mid_grey(family):
    """The colour pair is a nuisance, not a cue: its centre (per channel,
    halfway between the darkest and the brightest level) stays near mid-grey
    with a mild tint, so it does not dominate the input (a pair drawn over
    the whole 20-235 range did, and the network stalled)."""
    rng = np.random.default_rng(0)
    centres = []
    for _ in range(50):
        tex = render_texture(family, rng, (40, 40)).reshape(-1, 3)
        centres.append((tex.min(0) + tex.max(0)) / 2)
    centres = np.array(centres)
    assert np.abs(centres - 128).max() <= 40, family
    # mild tint: the channels of a pair's centre stay close
    assert np.ptp(centres, axis=1).max() <= 30, family
    assert centres.mean(1).std() <= 15, family


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match='label must be in'):
        render_hard_clip(10, np.random.default_rng(0), 4, 40)
    with pytest.raises(ValueError, match='texture family must be one of'):
        render_texture('waves', np.random.default_rng(0), (8, 8))


def test_generate_writes_the_ten_class_layout(tmp_path):
    paths = generate(
        str(tmp_path),
        train_per_class=1,
        val_per_class=1,
        frames=8,
        size=40,
        classes=HARD_CLASSES,
        render=render_hard_clip)
    labels = open(paths['label_map']).read().split()
    assert tuple(labels) == HARD_CLASSES
    lines = open(paths['train']).read().split('\n')[:-1]
    assert len(lines) == 10
    for label, line in enumerate(lines):
        rel, idx = line.split()
        assert int(idx) == label and rel.startswith(f'train/{labels[label]}')
        assert osp.isfile(osp.join(str(tmp_path), 'videos', rel))
