# Copyright (c) varedd_mm contributors. All rights reserved.
"""A small synthetic video dataset whose classes differ by motion.

Written as real H.264 ``.mp4`` files plus mmaction ``VideoDataset``
annotation lists, so it goes through the normal decoding pipeline
(``DecordInit`` / ``DecordDecode``). It is the embedded default of the
README's first command: no download, a few seconds to generate.

Classes (``CLASSES``) differ by motion only: a window on a random texture
that stays put (``static``) or pans horizontally or vertically (either
way), as a camera would; textures and speeds are drawn the same way for
every class. A static clip is redundant in time, which is what the temporal
policy of VA-RED² can exploit.
"""
import os
import os.path as osp
from typing import Callable, Dict, Sequence

import numpy as np

from .video_io import write_video

#: frame rate and x264 quality of the written videos
VIDEO_FPS, VIDEO_CRF = 10, 17

CLASSES = ('static', 'horizontal', 'vertical')
#: directions of motion of each class (one is drawn per clip)
MOTION = {
    'static': ((0, 0), ),
    'horizontal': ((1, 0), (-1, 0)),
    'vertical': ((0, 1), (0, -1)),
}
STATIC_CLASSES = ('static', )


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random colour texture of 4-pixel blocks, slightly blurred."""
    cells = -(-size // 4)
    coarse = rng.uniform(30, 225, size=(cells, cells, 3))
    tex = np.kron(coarse, np.ones((4, 4, 1)))[:size, :size]
    for axis in (0, 1):
        tex = (np.roll(tex, 1, axis) + 2 * tex + np.roll(tex, -1, axis)) / 4
    return tex


def render_clip(label: int, rng: np.random.Generator, frames: int,
                size: int) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` uint8 of one clip of class ``label``: a
    window on a random texture that stays put (``static``) or pans
    horizontally or vertically (either way) at 1.2-1.8 px per frame (at 40
    px; speeds scale with ``size``), plus sensor noise."""
    if not 0 <= label < len(CLASSES):
        raise ValueError(f'label must be in [0, {len(CLASSES) - 1}], got '
                         f'{label}')
    directions = MOTION[CLASSES[label]]
    dx, dy = directions[rng.integers(len(directions))]
    speed = rng.uniform(0.03, 0.045) * size
    pad = int(np.ceil(speed * (frames - 1))) + 1
    tex = _texture(rng, size + pad)
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        shift = int(round(speed * t))
        ox = shift if dx > 0 else (pad - shift if dx < 0 else 0)
        oy = shift if dy > 0 else (pad - shift if dy < 0 else 0)
        img = tex[oy:oy + size, ox:ox + size] + rng.normal(
            0, 4, size=(size, size, 3))  # sensor noise
        out[t] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def _check_decodable(out_dir: str, size: int) -> None:
    """decord (mmaction's default reader) mis-reads some small frame widths
    written by PyAV (16, 24 and 48 fail here; 32 and 40 work): check one
    clip before writing the dataset."""
    try:
        import decord
    except ImportError:  # other readers (PyAV, OpenCV) have no such limit
        return
    os.makedirs(out_dir, exist_ok=True)
    probe = osp.join(out_dir, '.decord_probe.mp4')
    write_video(probe, render_clip(0, np.random.default_rng(0), 4, size),
                VIDEO_FPS, VIDEO_CRF)
    try:
        decord.VideoReader(probe).get_batch([0]).asnumpy()
    except decord.DECORDError as e:
        raise ValueError(
            f'size={size}: decord cannot read {size}x{size} videos (a '
            'frame line-alignment limit of decord); use size=40 (the '
            'default) or 32') from e
    finally:
        os.remove(probe)


def generate(out_dir: str,
             train_per_class: int = 80,
             val_per_class: int = 20,
             frames: int = 32,
             size: int = 40,
             seed: int = 0,
             classes: Sequence[str] = CLASSES,
             render: Callable = render_clip) -> Dict[str, str]:
    """Write the dataset; returns the paths of the annotation files.

    Layout: ``out_dir/videos/{train,val}/<class>_<idx>.mp4``,
    ``out_dir/{train,val}_list_videos.txt`` (``<path> <label>`` relative to
    ``out_dir/videos``) and ``out_dir/label_map.txt``. ``classes`` and
    ``render(label, rng, frames, size)`` make another dataset of the same
    layout (``synthetic_motion_hard.py``).
    """
    for name, value in (('train_per_class', train_per_class), ('val_per_class',
                                                               val_per_class),
                        ('frames', frames), ('size', size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}')
    if size < 16:
        raise ValueError(f'size must be >= 16 pixels, got {size}')
    rng = np.random.default_rng(seed)
    _check_decodable(out_dir, size)
    paths = {}
    for split, per_class in (('train', train_per_class), ('val',
                                                          val_per_class)):
        os.makedirs(osp.join(out_dir, 'videos', split), exist_ok=True)
        lines = []
        for label, cls in enumerate(classes):
            for idx in range(per_class):
                rel = f'{split}/{cls}_{idx:04d}.mp4'
                write_video(
                    osp.join(out_dir, 'videos', rel),
                    render(label, rng, frames, size), VIDEO_FPS, VIDEO_CRF)
                lines.append(f'{rel} {label}')
        ann = osp.join(out_dir, f'{split}_list_videos.txt')
        with open(ann, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        paths[split] = ann
    label_map = osp.join(out_dir, 'label_map.txt')
    with open(label_map, 'w') as f:
        f.write('\n'.join(classes) + '\n')
    paths['label_map'] = label_map
    return paths
