# Copyright (c) varedd_mm contributors. All rights reserved.
"""A small synthetic semantic-segmentation dataset in the ADE20K layout.

The embedded data of the segmentation demo (PSPNet-R18-d8 and its dynamic
variant trained for a few minutes on a CPU): no download, a few seconds to
generate, deterministic for a seed. Written exactly as mmseg's
``ADE20KDataset`` reads it (``images/{training,validation}/*.jpg`` and
``annotations/{training,validation}/*.png``) with the ADE20K label
convention: annotation value 0 is "other" (ignored), value ``v >= 1`` is
ADE20K class ``v - 1``. ``SEG_CLASSES`` are real ADE20K class names, so a
config uses ``type='ADE20KDataset', metainfo=dict(classes=SEG_CLASSES)``:
``reduce_zero_label`` maps 0 to 255 and ``v`` to ``v - 1``, then the
``label_map`` that ``BaseSegDataset`` builds for a class subset maps each
ADE20K index to its position in ``SEG_CLASSES`` and the other 142 to 255.

Each image is a smoothly shaded ``wall`` with 2-5 shapes (rotated
rectangles, ellipses, triangles, star-shaped blobs; later ones occlude
earlier ones) of the other 7 classes. These differ by texture (stripes of
three orientations, checkerboard, dots, fine grain, coarse blotches) while
their colour ranges overlap (each class draws its hue from a 160-degree arc
and the arcs overlap), so colour alone is a weak cue. A 1-pixel band each
side of every label boundary is left unlabeled (0) to exercise the ignore
index, and mild sensor noise is added.
"""
import glob
import os
import os.path as osp
from typing import Dict, Tuple

import numpy as np

#: class names (all from ADE20K), in the order of the trained model's labels
SEG_CLASSES = ('wall', 'curtain', 'blind', 'fence', 'rug', 'cushion', 'rock',
               'tree')
#: index of each class in ``mmseg.datasets.ADE20KDataset.METAINFO['classes']``
#: (the annotation PNGs hold these + 1; checked against mmseg in the tests)
ADE20K_INDEX = {
    'wall': 0,
    'curtain': 18,
    'blind': 63,
    'fence': 32,
    'rug': 28,
    'cushion': 39,
    'rock': 34,
    'tree': 4,
}
#: appearance of each class (documentation; see ``_texture``)
TEXTURES = {
    'wall': 'smooth low-frequency shading, low saturation (background)',
    'curtain': 'vertical stripes (period 4-7 px, +-12 degrees)',
    'blind': 'horizontal stripes (period 4-7 px, +-12 degrees)',
    'fence': 'diagonal stripes (+-45 degrees, period 4-7 px)',
    'rug': 'checkerboard (cells 3-5 px, +-15 degrees)',
    'cushion': 'dots on a plain ground (spacing 6-8 px)',
    'rock': 'fine per-pixel grain',
    'tree': 'coarse blotches (about 3-5 px)',
}
#: annotation value of unlabeled pixels ("other" in ADE20K)
UNLABELED = 0
MIN_SIZE = 32
SPLITS = (('training', 'train'), ('validation', 'val'))

_OBJECT_CLASSES = SEG_CLASSES[1:]
#: centre of the hue arc (degrees) of each object class; arcs are 160 wide
_HUE_CENTRE = {
    name: 360.0 * i / len(_OBJECT_CLASSES)
    for i, name in enumerate(_OBJECT_CLASSES)
}
_HUE_WIDTH = 160.0


def ade20k_values() -> Dict[str, int]:
    """Annotation value of each class of ``SEG_CLASSES``: its ADE20K index
    + 1 (0 is unlabeled)."""
    return {name: ADE20K_INDEX[name] + 1 for name in SEG_CLASSES}


def _hsv_to_rgb(h: float, s: float, v: float) -> np.ndarray:
    """One colour, hue in degrees, s and v in [0, 1] -> RGB floats 0-255."""
    h = (h % 360.0) / 60.0
    c = v * s
    x = c * (1 - abs(h % 2 - 1))
    rgb = [(c, x, 0), (x, c, 0), (0, c, x), (0, x, c), (x, 0, c),
           (c, 0, x)][int(h) % 6]
    return (np.array(rgb) + (v - c)) * 255.0


def _smooth_noise(rng: np.random.Generator, size: int,
                  cells: int) -> np.ndarray:
    """``(size, size)`` noise in [-1, 1]: a ``cells x cells`` random grid
    bilinearly upsampled (feature size about ``size / cells``)."""
    grid = rng.uniform(-1, 1, size=(cells + 1, cells + 1))
    pos = np.linspace(0, cells, size)
    lo = np.minimum(pos.astype(int), cells - 1)
    interp = np.zeros((size, cells + 1))
    interp[np.arange(size), lo] = 1 - (pos - lo)
    interp[np.arange(size), lo + 1] = pos - lo
    return interp @ grid @ interp.T


def _object_colours(rng: np.random.Generator,
                    name: str) -> Tuple[np.ndarray, np.ndarray]:
    """Two colours of a texture of class ``name``: hue from the class's arc,
    the second a darker shade of a nearby hue."""
    hue = _HUE_CENTRE[name] + rng.uniform(-_HUE_WIDTH / 2, _HUE_WIDTH / 2)
    sat, val = rng.uniform(0.35, 0.9), rng.uniform(0.55, 0.95)
    c1 = _hsv_to_rgb(hue, sat, val)
    c2 = _hsv_to_rgb(hue + rng.uniform(-20, 20), sat * rng.uniform(0.7, 1),
                     val * rng.uniform(0.35, 0.6))
    if rng.random() < 0.5:  # which one is the "ink" is random
        c1, c2 = c2, c1
    return c1, c2


def _texture(rng: np.random.Generator, name: str, size: int) -> np.ndarray:
    """A ``(size, size, 3)`` float texture of class ``name``."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float)
    if name == 'wall':
        hue = rng.uniform(0, 360)
        base = _hsv_to_rgb(hue, rng.uniform(0.05, 0.45),
                           rng.uniform(0.45, 0.9))
        theta = rng.uniform(0, 2 * np.pi)
        ramp = (np.cos(theta) * xx + np.sin(theta) * yy) / size - 0.5
        shade = 1 + rng.uniform(0.1, 0.3) * ramp + 0.08 * _smooth_noise(
            rng, size, 3)
        return base * shade[..., None]
    c1, c2 = _object_colours(rng, name)
    if name in ('curtain', 'blind', 'fence', 'rug', 'cushion'):
        if name == 'fence':  # either diagonal
            base_angle = 45.0 if rng.random() < 0.5 else -45.0
        else:
            base_angle = 90.0 if name == 'blind' else 0.0
        jitter = 15.0 if name in ('rug', 'cushion') else 12.0
        angle = np.deg2rad(base_angle + rng.uniform(-jitter, jitter))
        u = np.cos(angle) * xx + np.sin(angle) * yy
        v = -np.sin(angle) * xx + np.cos(angle) * yy
        if name == 'rug':
            cell = rng.uniform(3, 5)
            wave = np.sin(np.pi * (u / cell + rng.random())) * np.sin(
                np.pi * (v / cell + rng.random()))
        elif name == 'cushion':
            spacing = rng.uniform(6, 8)
            du = (u / spacing + rng.random()) % 1 - 0.5
            dv = (v / spacing + rng.random()) % 1 - 0.5
            dist = np.hypot(du, dv) * spacing
            wave = 0.3 * spacing - dist  # > 0 inside a dot
        else:  # stripes across direction ``angle``
            period = rng.uniform(4, 7)
            wave = np.sin(2 * np.pi * (u / period + rng.random()))
        mix = 0.5 + 0.5 * np.tanh(3 * wave)
    elif name == 'rock':
        mix = rng.uniform(0, 1, size=(size, size))
    elif name == 'tree':
        cells = int(round(size / rng.uniform(3, 5)))
        mix = 0.5 + 0.5 * np.tanh(4 * _smooth_noise(rng, size, cells))
    else:
        raise ValueError(f'unknown class {name!r}; classes: {SEG_CLASSES}')
    return c1 * mix[..., None] + c2 * (1 - mix[..., None])


def _shape_mask(rng: np.random.Generator, size: int) -> np.ndarray:
    """A boolean ``(size, size)`` mask of a random rotated rectangle,
    ellipse, triangle or star-shaped blob of 25-60% of the image side."""
    yy, xx = np.mgrid[0:size, 0:size].astype(float) + 0.5
    cy, cx = rng.uniform(0.15, 0.85, size=2) * size
    radius = rng.uniform(0.125, 0.3) * size
    theta = rng.uniform(0, np.pi)
    u = np.cos(theta) * (xx - cx) + np.sin(theta) * (yy - cy)
    v = -np.sin(theta) * (xx - cx) + np.cos(theta) * (yy - cy)
    kind = rng.integers(4)
    if kind == 0:  # rectangle
        a, b = radius, radius * rng.uniform(0.5, 1)
        return (np.abs(u) <= a) & (np.abs(v) <= b)
    if kind == 1:  # ellipse
        a, b = radius, radius * rng.uniform(0.5, 1)
        return (u / a)**2 + (v / b)**2 <= 1
    if kind == 2:  # triangle: three vertices around the centre
        angles = (np.arange(3) +
                  rng.uniform(-0.25, 0.25, size=3)) * (2 * np.pi / 3)
        r = radius * rng.uniform(0.8, 1.3, size=3)
        px, py = r * np.cos(angles), r * np.sin(angles)
        inside = np.ones((size, size), dtype=bool)
        for i in range(3):  # counter-clockwise: left of every edge
            j = (i + 1) % 3
            inside &= ((px[j] - px[i]) * (v - py[i]) - (py[j] - py[i]) *
                       (u - px[i])) >= 0
        return inside
    # blob: radius modulated by a few random harmonics of the angle
    phi = np.arctan2(v, u)
    edge = np.ones_like(phi)
    for k in (2, 3, 5):
        edge += rng.uniform(0, 0.25) * np.cos(k * phi + rng.uniform(0, 7))
    return np.hypot(u, v) <= radius * edge


def _check_size(size) -> None:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) \
            or size < MIN_SIZE:
        raise ValueError(f'size must be an int >= {MIN_SIZE} (pixels), got '
                         f'{size!r}')


def render_image(rng: np.random.Generator,
                 size: int = 64) -> Tuple[np.ndarray, np.ndarray]:
    """One sample: an RGB image ``(size, size, 3)`` uint8 and its ADE20K
    annotation ``(size, size)`` uint8 (0 unlabeled, else ADE20K index + 1,
    see ``ade20k_values``).

    A ``wall`` background with 2-5 textured shapes of the other classes
    (classes drawn uniformly; later shapes occlude earlier ones), a 1-pixel
    unlabeled band each side of every label boundary, and sensor noise.
    """
    _check_size(size)
    values = ade20k_values()
    image = _texture(rng, 'wall', size)
    label = np.full((size, size), values['wall'], dtype=np.uint8)
    for _ in range(rng.integers(2, 6)):
        name = _OBJECT_CLASSES[rng.integers(len(_OBJECT_CLASSES))]
        mask = _shape_mask(rng, size)
        image[mask] = _texture(rng, name, size)[mask]
        label[mask] = values[name]
    # unlabeled band: pixels with a 4-neighbour of another label
    edge = np.zeros_like(label, dtype=bool)
    diff_y = label[1:] != label[:-1]
    diff_x = label[:, 1:] != label[:, :-1]
    edge[1:] |= diff_y
    edge[:-1] |= diff_y
    edge[:, 1:] |= diff_x
    edge[:, :-1] |= diff_x
    label[edge] = UNLABELED
    image = image * rng.uniform(0.9, 1.1) + rng.normal(0, 3, image.shape)
    return np.clip(np.round(image), 0, 255).astype(np.uint8), label


def generate(out_dir: str,
             num_train: int = 200,
             num_val: int = 50,
             size: int = 64,
             seed: int = 0) -> Dict[str, str]:
    """Write the dataset; returns the directories written.

    Layout (that of ADE20K, read by mmseg's ``ADE20KDataset`` with
    ``data_root=out_dir``): ``images/training/synth_000001.jpg`` ... (JPEG
    quality 95, no chroma subsampling) and
    ``annotations/training/synth_000001.png`` ... (8-bit single-channel
    PNG), and the same under ``validation``. Returned keys:
    ``train_img``, ``train_ann``, ``val_img``, ``val_ann``.

    Image ``i`` of a split depends only on ``(seed, split, i)``, so the
    validation set does not change with ``num_train``. Stale
    ``synth_*.jpg`` / ``synth_*.png`` files of an earlier run are removed.
    """
    for name, value in (('num_train', num_train), ('num_val', num_val)):
        if not isinstance(value, (int, np.integer)) or isinstance(
                value, bool) or value < 1:
            raise ValueError(f'{name} must be a positive int (>= 1), got '
                             f'{value!r}')
    _check_size(size)
    if not isinstance(seed,
                      (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f'seed must be a non-negative int, got {seed!r}')
    from PIL import Image
    paths = {}
    for split_idx, (split, key) in enumerate(SPLITS):
        count = num_train if key == 'train' else num_val
        img_dir = osp.join(out_dir, 'images', split)
        ann_dir = osp.join(out_dir, 'annotations', split)
        for folder, ext in ((img_dir, 'jpg'), (ann_dir, 'png')):
            os.makedirs(folder, exist_ok=True)
            for stale in glob.glob(osp.join(folder, f'synth_*.{ext}')):
                os.remove(stale)
        for idx in range(count):
            rng = np.random.default_rng([seed, split_idx, idx])
            image, label = render_image(rng, size)
            stem = f'synth_{idx + 1:06d}'
            Image.fromarray(image).save(
                osp.join(img_dir, stem + '.jpg'), quality=95, subsampling=0)
            Image.fromarray(label).save(osp.join(ann_dir, stem + '.png'))
        paths[f'{key}_img'] = img_dir
        paths[f'{key}_ann'] = ann_dir
    return paths
