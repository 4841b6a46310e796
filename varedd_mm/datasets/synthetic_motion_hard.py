# Copyright (c) varedd_mm contributors. All rights reserved.
"""A harder synthetic video benchmark: classes by appearance *or* motion.

Same layout and pipeline as ``synthetic_motion.py`` (H.264 files, mmaction
video lists; ``generate(..., classes=HARD_CLASSES,
render=render_hard_clip)``), ten classes:

* four **static** classes that differ by appearance only, the texture
  family of a window that stays put: ``static_blocks`` (square blocks),
  ``static_stripes`` (oriented stripes), ``static_dots`` (discs),
  ``static_blobs`` (smooth low-frequency blobs). Nothing moves, so the
  computation along time is redundant;
* six **moving** classes that differ by motion only, direction and speed
  of a pan over a texture of any of the four families: ``right_slow``,
  ``right_fast``, ``left_slow``, ``left_fast``, ``up``, ``down``. Their
  computation along time is not redundant.

Nuisances, drawn the same way for every class: texture scale, colours (a
pair apart in brightness, centred near mid-grey with a mild tint),
contrast, a per-frame brightness flicker, sensor noise, and for static
clips a sub-pixel camera jitter; slow and fast pans are close in speed
(0.25-0.45 vs 0.65-0.9 pixels per frame at 40 px, scaled with the size;
``PANS``), so a small model trained for minutes does not separate every
clip.
"""
from typing import Optional, Tuple

import numpy as np

Pair = Tuple[int, int]

HARD_CLASSES = ('static_blocks', 'static_stripes', 'static_dots',
                'static_blobs', 'right_slow', 'right_fast', 'left_slow',
                'left_fast', 'up', 'down')
HARD_STATIC_CLASSES = HARD_CLASSES[:4]
TEXTURES = ('blocks', 'stripes', 'dots', 'blobs')
#: pan direction (dx, dy) and speed range (pixels per frame at 40 px)
PANS = {
    'right_slow': ((1, 0), (0.25, 0.45)),
    'right_fast': ((1, 0), (0.65, 0.9)),
    'left_slow': ((-1, 0), (0.25, 0.45)),
    'left_fast': ((-1, 0), (0.65, 0.9)),
    'up': ((0, -1), (0.25, 0.9)),
    'down': ((0, 1), (0.25, 0.9)),
}

#: period of the stripe texture (pixels): more than twice the largest pan
#: between two frames the configs sample (frame interval 4), so a pan of
#: stripes cannot alias into a slower or a reversed one
STRIPE_PERIOD = (8, 12)
#: frame interval of the benchmark's configs (8x4x1 clips)
FRAME_INTERVAL = 4

#: grey level around which a texture's two colours are centred, and the
#: largest per-channel tint added to both
CENTRE_GREY = (108, 148)
TINT = 15


def _smooth(img: np.ndarray, passes: int) -> np.ndarray:
    for _ in range(passes):
        for axis in (0, 1):
            img = (np.roll(img, 1, axis) + 2 * img +
                   np.roll(img, -1, axis)) / 4
    return img


def render_texture(family: str,
                   rng: np.random.Generator,
                   shape: Pair,
                   motion: Pair = (0, 0)) -> np.ndarray:
    """A ``(H, W, 3)`` float texture of ``family`` (one of ``TEXTURES``)
    with random scale, colours and contrast. For a pan in direction
    ``motion``, stripes are drawn with their normal within 45 degrees of
    it, so that the pan is visible (stripes parallel to the motion would
    not change)."""
    h, w = shape
    # two colours far apart in *brightness*: every channel moves the same
    # way by 60-120 levels. (Channels moving opposite ways could give two
    # colours of nearly the same luma, whose fine texture the half-resolution
    # chroma of the yuv420 H.264 files wipes out.) The pair is centred near
    # mid-grey with a mild tint: a per-clip colour drawn over the whole
    # range dominated the input, and the network did not get to the
    # texture or the motion.
    centre = rng.uniform(*CENTRE_GREY) + rng.uniform(-TINT, TINT, size=3)
    delta = rng.uniform(60, 120, size=3) * rng.choice((-1, 1))
    c1, c2 = centre - delta / 2, centre + delta / 2
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    if family == 'blocks':
        cell = int(rng.integers(2, 6))
        coarse = rng.uniform(0, 1, size=(-(-h // cell), -(-w // cell), 1))
        mix = np.kron(coarse, np.ones((cell, cell, 1)))[:h, :w]
        mix = _smooth(mix, 1)
    elif family == 'stripes':
        if motion == (0, 0):
            angle = rng.uniform(0, np.pi)
        else:
            angle = np.arctan2(motion[1], motion[0]) + rng.uniform(
                -np.pi / 4, np.pi / 4)
        period = rng.uniform(*STRIPE_PERIOD)
        phase = (xs * np.cos(angle) + ys * np.sin(angle)) / period
        mix = (0.5 + 0.5 * np.sin(2 * np.pi * phase))[..., None]
    elif family == 'dots':
        mix = np.zeros((h, w, 1))
        radius = rng.uniform(1.5, 3.0)
        # dense enough that every 32x32 crop holds several discs
        count = int(h * w / (rng.uniform(3, 4.5) * radius)**2) + 1
        for cy, cx in zip(rng.uniform(0, h, count), rng.uniform(0, w, count)):
            mix[(ys - cy)**2 + (xs - cx)**2 <= radius**2] = 1.0
        mix = _smooth(mix, 1)
    elif family == 'blobs':
        cell = int(rng.integers(9, 15))
        coarse = rng.uniform(
            0, 1, size=(-(-h // cell) + 1, -(-w // cell) + 1, 1))
        mix = np.kron(coarse, np.ones((cell, cell, 1)))[:h, :w]
        mix = _smooth(mix, 4)
    else:
        raise ValueError(f'texture family must be one of {TEXTURES}, got '
                         f'{family!r}')
    mix = (mix - mix.min()) / max(float(np.ptp(mix)), 1e-6)
    contrast = rng.uniform(0.7, 1.0)
    mix = 0.5 + contrast * (mix - 0.5)
    return c1 * (1 - mix) + c2 * mix


def render_hard_clip(label: int,
                     rng: np.random.Generator,
                     frames: int,
                     size: int,
                     family: Optional[str] = None) -> np.ndarray:
    """Frames ``(T, H, W, 3)`` uint8 of one clip of ``HARD_CLASSES[label]``
    (see the module docstring). ``family`` fixes the texture of a moving
    class (default: one of ``TEXTURES`` at random)."""
    if not 0 <= label < len(HARD_CLASSES):
        raise ValueError(f'label must be in [0, {len(HARD_CLASSES) - 1}], '
                         f'got {label}')
    cls = HARD_CLASSES[label]
    scale = size / 40
    if cls in HARD_STATIC_CLASSES:
        family, (dx, dy), speed = cls[len('static_'):], (0, 0), 0.0
    else:
        if family is None:
            family = TEXTURES[rng.integers(len(TEXTURES))]
        (dx, dy), (low, high) = PANS[cls]
        speed = rng.uniform(low, high) * scale
    pad = int(np.ceil(speed * (frames - 1))) + 4
    tex = render_texture(family, rng, (size + pad, size + pad), (dx, dy))
    flicker = rng.uniform(0.0, 0.05)
    noise = rng.uniform(2, 6)
    out = np.empty((frames, size, size, 3), dtype=np.uint8)
    for t in range(frames):
        shift = speed * t
        jx, jy = (rng.uniform(-0.5, 0.5, size=2) * scale if speed == 0 else
                  (0.0, 0.0))  # camera jitter
        ox = (shift if dx > 0 else pad - 4 - shift if dx < 0 else 2) + jx
        oy = (shift if dy > 0 else pad - 4 - shift if dy < 0 else 2) + jy
        x0, y0 = int(np.floor(ox)), int(np.floor(oy))
        fx, fy = ox - x0, oy - y0
        x0, y0 = min(max(x0, 0), pad - 1), min(max(y0, 0), pad - 1)
        # bilinear sub-pixel shift
        win = tex[y0:y0 + size + 1, x0:x0 + size + 1]
        img = ((1 - fy) * ((1 - fx) * win[:-1, :-1] + fx * win[:-1, 1:]) + fy *
               ((1 - fx) * win[1:, :-1] + fx * win[1:, 1:]))
        img = img * (1 + rng.uniform(-flicker, flicker)) + rng.normal(
            0, noise, size=img.shape)
        out[t] = np.clip(img, 0, 255).astype(np.uint8)
    return out
