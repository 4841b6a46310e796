# Copyright (c) varedd_mm contributors. All rights reserved.
"""The embedded synthetic motion dataset: real videos through the normal
mmaction decoding pipeline, labels, and motion only in moving classes."""
import numpy as np
import pytest
from mmaction.datasets import VideoDataset
from mmengine.registry import DefaultScope

from varedd_mm.datasets import CLASSES, STATIC_CLASSES, generate, render_clip


def test_render_clip_motion():
    rng = np.random.default_rng(0)
    for label, name in enumerate(CLASSES):
        clip = render_clip(label, rng, frames=16, size=40).astype(float)
        assert clip.shape == (16, 40, 40, 3)
        # pixels that changed by more than 7 sigma of the sensor noise
        changed = (np.abs(clip[4] - clip[0]).max(axis=-1) > 40).mean()
        if name in STATIC_CLASSES:
            assert changed < 1e-3
        else:
            assert changed > 0.02


def test_generate_and_decode_through_mmaction(tmp_path):
    paths = generate(
        str(tmp_path), train_per_class=2, val_per_class=1, frames=12, size=32)
    lines = open(paths['train']).read().splitlines()
    assert len(lines) == 2 * len(CLASSES)
    assert sorted({int(line.split()[1])
                   for line in lines}) == list(range(len(CLASSES)))
    assert open(paths['label_map']).read().split() == list(CLASSES)
    pipeline = [
        dict(type='DecordInit'),
        dict(type='SampleFrames', clip_len=4, frame_interval=2, num_clips=1),
        dict(type='DecordDecode'),
        dict(type='FormatShape', input_format='NCTHW'),
        dict(type='PackActionInputs')
    ]
    with DefaultScope.overwrite_default_scope('mmaction'):
        ds = VideoDataset(
            paths['val'],
            pipeline,
            data_prefix=dict(video=str(tmp_path / 'videos')))
        sample = ds[0]
    assert tuple(sample['inputs'].shape) == (1, 3, 4, 32, 32)
    assert sample['data_samples'].gt_label.item() == 0


@pytest.mark.parametrize('kwargs,match', [
    (dict(train_per_class=0), 'train_per_class must be a positive int'),
    (dict(size=8), 'size must be >= 16'),
    (dict(frames=1.5), 'frames must be a positive int'),
    (dict(size=24), 'decord cannot read 24x24 videos'),
])
def test_generate_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(str(tmp_path), **kwargs)


def test_render_clip_rejects_unknown_label():
    with pytest.raises(ValueError, match='label must be in'):
        render_clip(len(CLASSES), np.random.default_rng(0), 4, 24)
