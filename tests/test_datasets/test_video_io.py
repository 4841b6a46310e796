# Copyright (c) varedd_mm contributors. All rights reserved.
"""The generated datasets' videos decode to what was written, in order."""
import numpy as np
import pytest

from varedd_mm.datasets.video_io import write_video

pytest.importorskip('av')


def _frames(cell=1):
    """20 frames of a random texture panning right, ``cell``-pixel
    blocks."""
    rng = np.random.default_rng(0)
    base = rng.integers(60, 200, size=(64 // cell, 96 // cell, 3))
    base = np.kron(base, np.ones((cell, cell, 1))).astype(np.uint8)
    return [np.roll(base, t, axis=1) for t in range(20)]


def test_decodes_to_the_frames(tmp_path):
    decord = pytest.importorskip('decord')
    frames = _frames(cell=8)
    path = str(tmp_path / 'v.mp4')
    write_video(path, frames, fps=30, crf=10)
    got = decord.VideoReader(path).get_batch(range(20)).asnumpy()
    assert got.shape == (20, 64, 96, 3)
    ref = np.stack(frames).astype(int)
    err = np.abs(got.astype(int)[:, None] - ref[None]).mean(axis=(2, 3, 4))
    # near-lossless H.264 (crf 10; yuv420p halves the chroma): each decoded
    # frame is close to its own frame, and closer than to any other
    assert (np.diag(err) < 8).all()
    np.testing.assert_array_equal(err.argmin(axis=1), np.arange(20))
