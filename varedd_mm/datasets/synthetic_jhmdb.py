# Copyright (c) varedd_mm contributors. All rights reserved.
"""A small synthetic spatio-temporal detection dataset in the J-HMDB-21
release layout.

Written exactly as the action-detection literature ships J-HMDB-21, so it
goes through :func:`varedd_mm.datasets.jhmdb.convert_jhmdb` like the real
release (the embedded CPU demo of Table 8; no download, seconds to
generate)::

    out_dir/JHMDB-GT.pkl                     (protocol 2, numpy arrays)
    out_dir/Frames/<class>/<video>/%05d.png  (1-based)

Each video shows one or two "actors" (textured person-like figures: head,
torso, arms and legs, taller than wide) on a low-contrast textured
background (``BACKGROUND_RANGE``) that pans slightly. The class of the
video is how its actors move (``SYNTHETIC_JHMDB_CLASSES``): ``stand``
(still), ``walk_left`` / ``walk_right`` (translate, legs swinging),
``jump`` (vertical hops) and
``wave`` (the body stays, one arm swings up and down). Speed, size, colour,
texture, start position, period and camera pan are drawn at random for
every class. Every actor has one tube over the whole video, its per-frame
box being the bounding box of its silhouette (``x2, y2`` exclusive, in
pixels).

Splits: the videos of each class are dealt round-robin into three folds;
split ``s`` tests on fold ``s`` and trains on the other two (three
different train/test splits, as in the release).
"""
import os
import os.path as osp
import pickle
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

SYNTHETIC_JHMDB_CLASSES = ('stand', 'walk_left', 'walk_right', 'jump', 'wave')
#: grey level per frame number painted by ``stamp_frames`` (top-left 16x16)
STAMP_STEP = 6
STAMP_SIZE = 16
#: grey-level range of the background texture's cells. The actors
#: (colours 40-230, stripes +-25-50) stand out from it: with the earlier
#: 70-190 the demo detector (from scratch, ~1000 training videos) learned
#: the training videos' backgrounds and scored chance on the test videos
BACKGROUND_RANGE = (110, 150)


def _texture(rng: np.random.Generator, h: int, w: int, cell: int, low: float,
             high: float) -> np.ndarray:
    """A random colour texture of ``cell``-pixel blocks, slightly
    blurred."""
    coarse = rng.uniform(low, high, size=(-(-h // cell), -(-w // cell), 3))
    tex = np.kron(coarse, np.ones((cell, cell, 1)))[:h, :w]
    for axis in (0, 1):
        tex = (np.roll(tex, 1, axis) + 2 * tex + np.roll(tex, -1, axis)) / 4
    return tex


class _Actor:
    """One person-like figure: geometry, appearance and motion."""

    def __init__(self, cls: str, rng: np.random.Generator,
                 size: Tuple[int, int], frames: int, x_range: Tuple[float,
                                                                    float]):
        h, w = size
        self.cls = cls
        self.height = rng.uniform(0.42, 0.62) * h
        self.width = rng.uniform(0.26, 0.36) * self.height
        self.arm = 0.42 * self.height  # arm length
        self.colour = rng.uniform(40, 230, size=3)
        self.stripe = (rng.uniform(0.08, 0.25) * rng.choice([-1, 1]),
                       rng.uniform(0.08, 0.25))
        self.contrast = rng.uniform(25, 50)
        self.period = rng.uniform(8, 14)
        self.phase = rng.uniform(0, 2 * np.pi)
        self.amplitude = rng.uniform(0.08, 0.16) * h if cls == 'jump' else 0
        top_min = 2 + self.amplitude
        self.ground = rng.uniform(min(top_min + self.height, h - 2),
                                  h - 2)  # feet line
        self.thick = max(0.16 * self.width, 1.5)  # arm thickness
        # half width of the silhouette: torso, arm, its reach sideways
        reach = self.arm if cls == 'wave' else self.arm * np.sin(0.15)
        margin = self.width / 2 + self.thick + reach + 2
        lo, hi = max(x_range[0], margin), min(x_range[1], w - margin)
        if hi < lo:
            lo = hi = w / 2
        self.speed = 0.0
        if cls in ('walk_left', 'walk_right'):
            speed = rng.uniform(0.6, 1.6) * w / 160
            travel = min(speed * (frames - 1), max(hi - lo, 0))
            self.speed = travel / max(frames - 1, 1)
            start = rng.uniform(lo + travel, hi) if cls == 'walk_left' else \
                rng.uniform(lo, hi - travel)
            self.x0 = start
            if cls == 'walk_left':
                self.speed = -self.speed
        else:
            self.x0 = rng.uniform(lo, hi)
        self.wave_side = rng.choice([-1, 1])

    def polygons(self, t: int) -> List[np.ndarray]:
        """Polygons (x, y) of the silhouette at frame index ``t``."""
        ha, wa = self.height, self.width
        cx = self.x0 + self.speed * t
        feet = self.ground
        swing = 0.0
        if self.cls in ('walk_left', 'walk_right'):
            feet += abs(np.sin(np.pi * t / self.period + self.phase))
            swing = np.sin(2 * np.pi * t / self.period + self.phase)
        elif self.cls == 'jump':
            feet -= self.amplitude * abs(
                np.sin(np.pi * t / self.period + self.phase))
        top = feet - ha

        def rect(x1, y1, x2, y2):
            return np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])

        head = 0.2 * ha
        hip = top + 0.6 * ha
        polys = [
            rect(cx - 0.3 * wa, top, cx + 0.3 * wa, top + head),  # head
            rect(cx - wa / 2, top + head, cx + wa / 2, hip),  # torso
        ]
        for side in (-1, 1):  # legs
            x = cx + side * 0.25 * wa + side * swing * 0.3 * wa
            polys.append(rect(x - 0.2 * wa, hip - 1, x + 0.2 * wa, feet))
        thick = self.thick
        shoulder_y = top + head + 0.05 * ha
        for side in (-1, 1):  # arms: hang, or swing for wave
            angle = 0.15
            if self.cls == 'wave' and side == self.wave_side:
                angle = 1.6 + 1.2 * np.sin(2 * np.pi * t / self.period +
                                           self.phase)
            sx = cx + side * (wa / 2 + thick / 2)
            dx, dy = side * np.sin(angle), np.cos(angle)  # 0 = down
            ex, ey = sx + self.arm * dx, shoulder_y + self.arm * dy
            nx, ny = -dy * thick / 2, dx * thick / 2
            polys.append(
                np.array([[sx + nx, shoulder_y + ny], [ex + nx, ey + ny],
                          [ex - nx, ey - ny], [sx - nx, shoulder_y - ny]]))
        return polys

    def render(self, t: int, size: Tuple[int, int], grid: Tuple[np.ndarray,
                                                                np.ndarray]):
        """Silhouette mask and texture of frame index ``t``."""
        import cv2
        mask = np.zeros(size, np.uint8)
        for poly in self.polygons(t):
            cv2.fillConvexPoly(
                mask, np.round(poly * 16).astype(np.int32), 1, shift=4)
        ys, xs = grid
        cx = self.x0 + self.speed * t
        stripes = np.sign(
            np.sin(2 * np.pi *
                   ((xs - cx) * self.stripe[0] + ys * self.stripe[1])))
        layer = self.colour + self.contrast * stripes[..., None]
        return mask.astype(bool), layer


def render_jhmdb_clip(
        label: int,
        rng: np.random.Generator,
        frames: int,
        size: Tuple[int, int] = (120, 160),
        num_actors: int = 1,
        stamp_frames: bool = False) -> Tuple[np.ndarray, List[np.ndarray]]:
    """Frames ``(T, H, W, 3)`` uint8 (RGB) of one clip of class ``label``
    and one tube ``(T, 5)`` float32 (``frame x1 y1 x2 y2``, frame 1-based,
    pixels) per actor.

    ``stamp_frames`` paints the 1-based frame number as the grey level
    ``STAMP_STEP * frame`` in the top-left ``STAMP_SIZE`` square (a test aid
    to check which frame a decoder returns)."""
    if not 0 <= label < len(SYNTHETIC_JHMDB_CLASSES):
        raise ValueError(f'label must be in [0, '
                         f'{len(SYNTHETIC_JHMDB_CLASSES) - 1}], got {label}')
    if stamp_frames and STAMP_STEP * frames > 255:
        raise ValueError(f'stamp_frames needs at most {255 // STAMP_STEP} '
                         f'frames, got {frames}')
    cls = SYNTHETIC_JHMDB_CLASSES[label]
    h, w = size
    # one actor per horizontal band, so two actors rarely overlap
    bands = [(w * i / num_actors, w * (i + 1) / num_actors)
             for i in range(num_actors)]
    actors = [_Actor(cls, rng, size, frames, band) for band in bands]
    pan = rng.uniform(-0.3, 0.3, size=2)  # camera pan, px per frame
    pad = int(np.ceil(np.abs(pan).max() * (frames - 1))) + 1
    background = _texture(rng, h + pad, w + pad, int(rng.integers(4, 9)),
                          *BACKGROUND_RANGE)
    grid = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.empty((frames, h, w, 3), np.uint8)
    tubes = [np.zeros((frames, 5), np.float32) for _ in actors]
    for t in range(frames):
        ox, oy = (int(round(p * t)) + (pad - 1 if p < 0 else 0) for p in pan)
        img = background[oy:oy + h, ox:ox + w].copy()
        for actor, tube in zip(actors, tubes):
            mask, layer = actor.render(t, size, grid)
            img[mask] = layer[mask]
            ys, xs = np.nonzero(mask)
            tube[t] = (t + 1, xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
        img += rng.normal(0, 3, size=img.shape)  # sensor noise
        if stamp_frames:
            img[:STAMP_SIZE, :STAMP_SIZE] = STAMP_STEP * (t + 1)
        out[t] = np.clip(img, 0, 255).astype(np.uint8)
    return out, tubes


def _check_size(size) -> Tuple[int, int]:
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) for s in size)):
        raise ValueError(f'size must be (height, width) ints, got {size!r}')
    h, w = size
    if h < 48 or w < 64 or h % 2 or w % 2:
        raise ValueError(f'size must be even and at least (48, 64) (H.264 '
                         f'yuv420p needs even sizes), got {size!r}')
    return h, w


def _check_decodable(out_dir: str, size: Tuple[int, int]) -> None:
    """decord mis-reads some frame widths written by PyAV (16, 24, 48 fail,
    64-320 tested fine): check one tiny video before writing the
    dataset."""
    from .jhmdb import FPS, decord_check
    from .video_io import write_video
    os.makedirs(out_dir, exist_ok=True)
    probe = osp.join(out_dir, '.decord_probe.mp4')
    frames = [np.full(size + (3, ), 128, np.uint8)] * 3
    try:
        write_video(probe, frames, FPS, crf=10)
        n, shape = decord_check(probe)
    except ImportError:
        return
    except Exception as e:  # decord.DECORDError and friends
        raise ValueError(f'size={size}: decord cannot read videos of this '
                         'size; use the default (64, 96)') from e
    finally:
        if osp.exists(probe):
            os.remove(probe)
    if (n, shape) != (3, tuple(size)):
        raise ValueError(f'size={size}: decord reads {n} frames of {shape} '
                         'from a 3-frame video of this size; use the default '
                         '(64, 96)')


def generate_synthetic_jhmdb(out_dir: str,
                             videos_per_class: int = 150,
                             num_frames: Union[int, Sequence[int]] = (16, 22),
                             size: Tuple[int, int] = (64, 96),
                             seed: int = 0,
                             two_actor_prob: float = 0.3,
                             stamp_frames: bool = False) -> Dict[str, str]:
    """Write the dataset in the J-HMDB-21 release layout.

    Args:
        out_dir: output root.
        videos_per_class: videos of each class (>= 3: every split tests
            and trains on every class).
        num_frames: frames per video, an int or an inclusive ``(min, max)``
            range (the release has 15-40; ``MultiSportsMetric``'s video-mAP
            links only tubes of >= 15 frames).
        size: ``(height, width)``, even.
        seed: random seed (the output is a function of the arguments).
        two_actor_prob: probability that a video has two actors.
        stamp_frames: paint the frame number into each frame (test aid,
            see :func:`render_jhmdb_clip`).

    Returns:
        dict: ``gt_file`` (``JHMDB-GT.pkl``) and ``frames_dir``
        (``Frames``), the two inputs of ``convert_jhmdb``.
    """
    import cv2
    if (isinstance(videos_per_class, bool)
            or not isinstance(videos_per_class, int) or videos_per_class < 3):
        raise ValueError('videos_per_class must be an int >= 3 (three '
                         f'folds), got {videos_per_class!r}')
    lo, hi = ((num_frames, num_frames)
              if isinstance(num_frames, int) else tuple(num_frames))
    if not (isinstance(lo, int) and isinstance(hi, int) and 4 <= lo <= hi):
        raise ValueError('num_frames must be an int >= 4 or a (min, max) '
                         f'range with 4 <= min <= max, got {num_frames!r}')
    h, w = _check_size(size)
    if not 0 <= two_actor_prob <= 1:
        raise ValueError(
            f'two_actor_prob must be in [0, 1], got {two_actor_prob}')
    if stamp_frames and STAMP_STEP * hi > 255:
        raise ValueError(f'stamp_frames needs num_frames <= '
                         f'{255 // STAMP_STEP}, got {num_frames!r}')
    _check_decodable(out_dir, (h, w))
    rng = np.random.default_rng(seed)
    frames_dir = osp.join(out_dir, 'Frames')
    gt = dict(
        labels=list(SYNTHETIC_JHMDB_CLASSES),
        gttubes={},
        nframes={},
        train_videos=[[] for _ in range(3)],
        test_videos=[[] for _ in range(3)],
        resolution={})
    for label, cls in enumerate(SYNTHETIC_JHMDB_CLASSES):
        for idx in range(videos_per_class):
            key = f'{cls}/synth_{cls}_{idx:03d}'
            frames = int(rng.integers(lo, hi + 1))
            num_actors = 2 if rng.random() < two_actor_prob else 1
            clip, tubes = render_jhmdb_clip(label, rng, frames, (h, w),
                                            num_actors, stamp_frames)
            video_dir = osp.join(frames_dir, key)
            os.makedirs(video_dir, exist_ok=True)
            for t, frame in enumerate(clip, 1):
                cv2.imwrite(
                    osp.join(video_dir, f'{t:05d}.png'), frame[..., ::-1])
            gt['gttubes'][key] = {label: tubes}
            gt['nframes'][key] = frames
            gt['resolution'][key] = (h, w)
            for split in range(3):
                subset = 'test_videos' if idx % 3 == split else 'train_videos'
                gt[subset][split].append(key)
    for subset in ('train_videos', 'test_videos'):
        gt[subset] = [sorted(videos) for videos in gt[subset]]
    gt_file = osp.join(out_dir, 'JHMDB-GT.pkl')
    with open(gt_file, 'wb') as f:
        pickle.dump(gt, f, protocol=2)
    return dict(gt_file=gt_file, frames_dir=frames_dir)
