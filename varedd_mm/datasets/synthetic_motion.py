# Copyright (c) varedd_mm contributors. All rights reserved.
"""A small synthetic video dataset whose classes differ by motion.

Written as real H.264 ``.mp4`` files plus mmaction ``VideoDataset``
annotation lists, so it goes through the normal decoding pipeline
(``DecordInit`` / ``DecordDecode``). It is the embedded default of the
README's first command: no download, a few seconds to generate.

Classes (``CLASSES``): two static ones (a square or a disk that does not
move) and four moving ones (a square moving right / left, a disk moving
down / up). Static and moving clips share shapes, colours and
backgrounds, so only motion separates ``static_square`` from
``square_right``; a static clip is redundant in time, which is what the
temporal policy of VA-RED² can exploit.
"""
import os
import os.path as osp
from typing import Dict

import numpy as np

CLASSES = ('static_square', 'static_disk', 'square_right', 'square_left',
           'disk_down', 'disk_up')
#: (shape, dx, dy) per class: direction of motion in pixels per frame units
MOTION = {
    'static_square': ('square', 0, 0),
    'static_disk': ('disk', 0, 0),
    'square_right': ('square', 1, 0),
    'square_left': ('square', -1, 0),
    'disk_down': ('disk', 0, 1),
    'disk_up': ('disk', 0, -1),
}
STATIC_CLASSES = ('static_square', 'static_disk')


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour texture (low-frequency noise)."""
    coarse = rng.uniform(40, 200, size=(4, 4, 3))
    reps = -(-size // 4)
    tex = np.kron(coarse, np.ones((reps, reps, 1)))[:size, :size]
    # blur the blocks a little so edges are not trivially informative
    for axis in (0, 1):
        tex = (np.roll(tex, 1, axis) + tex + np.roll(tex, -1, axis)) / 3
    return tex


def render_clip(label: int, rng: np.random.Generator, frames: int,
                size: int) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` uint8 of one clip of class ``label``."""
    if not 0 <= label < len(CLASSES):
        raise ValueError(f'label must be in [0, {len(CLASSES) - 1}], got '
                         f'{label}')
    shape, dx, dy = MOTION[CLASSES[label]]
    bg = _background(rng, size)
    color = rng.uniform(0, 255, size=3)
    while np.abs(color - bg.mean(axis=(0, 1))).max() < 60:
        color = rng.uniform(0, 255, size=3)
    radius = rng.uniform(0.12, 0.18) * size
    speed = rng.uniform(0.8, 1.4) * size / 64
    travel = speed * (frames - 1)
    margin = radius + 1

    def start(d):
        lo = margin + (travel if d < 0 else 0)
        hi = size - margin - (travel if d > 0 else 0)
        return rng.uniform(lo, max(lo, hi))

    x0, y0 = start(dx), start(dy)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        cx, cy = x0 + dx * speed * t, y0 + dy * speed * t
        if shape == 'square':
            mask = (np.abs(xx - cx) <= radius) & (np.abs(yy - cy) <= radius)
        else:
            mask = (xx - cx)**2 + (yy - cy)**2 <= radius**2
        img = bg.copy()
        img[mask] = color
        img += rng.normal(0, 4, size=img.shape)  # sensor noise
        out[t] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def write_video(path: str, frames: np.ndarray, fps: int = 10) -> None:
    """Write ``(T, H, W, 3)`` uint8 frames as an H.264 mp4 with PyAV."""
    import av
    with av.open(path, 'w') as container:
        stream = container.add_stream('libx264', rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = 'yuv420p'
        stream.options = {'crf': '17', 'preset': 'veryfast'}
        for frame in frames:
            for packet in stream.encode(
                    av.VideoFrame.from_ndarray(frame, format='rgb24')):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def generate(out_dir: str,
             train_per_class: int = 40,
             val_per_class: int = 10,
             frames: int = 32,
             size: int = 64,
             seed: int = 0) -> Dict[str, str]:
    """Write the dataset; returns the paths of the annotation files.

    Layout: ``out_dir/videos/{train,val}/<class>_<idx>.mp4``,
    ``out_dir/{train,val}_list_videos.txt`` (``<path> <label>`` relative to
    ``out_dir/videos``) and ``out_dir/label_map.txt``.
    """
    for name, value in (('train_per_class', train_per_class), ('val_per_class',
                                                               val_per_class),
                        ('frames', frames), ('size', size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f'{name} must be a positive int, got {value!r}')
    if size < 16:
        raise ValueError(f'size must be >= 16 pixels, got {size}')
    rng = np.random.default_rng(seed)
    paths = {}
    for split, per_class in (('train', train_per_class), ('val',
                                                          val_per_class)):
        os.makedirs(osp.join(out_dir, 'videos', split), exist_ok=True)
        lines = []
        for label, cls in enumerate(CLASSES):
            for idx in range(per_class):
                rel = f'{split}/{cls}_{idx:04d}.mp4'
                write_video(
                    osp.join(out_dir, 'videos', rel),
                    render_clip(label, rng, frames, size))
                lines.append(f'{rel} {label}')
        ann = osp.join(out_dir, f'{split}_list_videos.txt')
        with open(ann, 'w') as f:
            f.write('\n'.join(lines) + '\n')
        paths[split] = ann
    label_map = osp.join(out_dir, 'label_map.txt')
    with open(label_map, 'w') as f:
        f.write('\n'.join(CLASSES) + '\n')
    paths['label_map'] = label_map
    return paths
