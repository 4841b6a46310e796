# Copyright (c) varedd_mm contributors. All rights reserved.
"""J-HMDB-21 for mmaction2's spatio-temporal detection stack.

Converts the release the action-detection literature ships (``JHMDB-GT.pkl``
+ ``Frames/<class>/<video>/%05d.png``) into what mmaction2 1.2.0's
``AVADataset`` (MultiSports video mode) and ``MultiSportsMetric`` read, for
one of the three official splits:

* ``videos/<class>/<video>.mp4``: one H.264 video per clip (30 fps, the
  release's). ``AVADataset(use_frames=True)`` assumes one shot length for
  all videos (``timestamp_start``/``timestamp_end``), which J-HMDB's 15-40
  frame clips do not have; in video mode ``DecordInit`` reads each video's
  real length. Every video is read back with decord, which must report
  exactly ``nframes`` frames.
* ``annotations/jhmdb_split{N}_{train,val}.csv``: AVA rows
  ``video_id,timestamp,x1,y1,x2,y2,action_id,person_id`` where ``video_id``
  is ``<class>/<video>.mp4`` (the path under ``data_prefix['img']``),
  ``timestamp`` is the **1-based** frame number of the release (the frame
  column of ``gttubes``), boxes are normalised to [0, 1] by the frame size
  and ``action_id`` is the **0-based** index into ``labels`` (see below).
  ``val`` is the split's test list.
* ``annotations/jhmdb_split{N}_proposals_{train,val}.pkl``:
  ``'<video_id>,<timestamp:04d>'`` -> float32 ``(k, 5)`` normalised boxes +
  score, one key per csv frame (the key ``AVADataset`` builds). Without a
  user file these are the **ground-truth boxes** (score 1.0): a different,
  easier protocol than detected person proposals.
* ``annotations/jhmdb_split{N}_GT.pkl``: the release's dictionary
  restricted to the converted videos of the split, with
  ``train_videos = [train]`` and ``test_videos = [test]``
  (``MultiSportsMetric`` reads ``test_videos[0]``); keys are the release's
  (``<class>/<video>``, what the metric gets by stripping ``.mp4`` from
  ``video_id``), boxes stay in pixels as released.
* ``annotations/jhmdb_label_map.txt``: the class names, line ``i`` is
  ``action_id`` ``i``. Nothing in the dataset or the metric reads it
  (``AVADataset`` reads ``label_file`` only with ``custom_classes``).

Dataset settings (those of mmaction's MultiSports config)::

    dict(type='AVADataset', ann_file=..., proposal_file=...,
         data_prefix=dict(img='<out_dir>/videos'), num_classes=21,
         timestamp_start=1, start_index=0, use_frames=False, fps=1)
    pipeline: DecordInit, SampleAVAFrames, DecordDecode, ...
    model: BBoxHeadAVA(num_classes=21, background_class=False,
                       multilabel=False)
    evaluator: MultiSportsMetric(ann_file='<...>_GT.pkl')

Why: ``SampleAVAFrames`` centres the clip on
``fps * (timestamp - timestamp_start) + start_index`` and then adds
``start_index`` to every index again. With ``fps=1``,
``timestamp_start=1`` and ``start_index=0`` the centre is
``timestamp - 1``, the 0-based decord index of the 1-based release frame
(``start_index=1`` would shift it by 2). ``MultiSportsMetric`` matches
``pred['timestamp']`` against the 1-based frame column of ``gttubes`` and
takes ``argmax`` of the class scores as the 0-based index into ``labels``,
so ``action_id`` must be 0-based with ``background_class=False`` (a 1-based
id would need a background column the metric does not skip).

Nothing is dropped silently: skipped videos (missing frame folder or
frames, frame count or size different from the pkl, videos decord cannot
read back) are listed with the reason, annotation rows outside
``1..nframes`` or empty inside the image are counted, and boxes (and
proposals) reaching outside the image are clipped and counted.
"""
import csv
import json
import os
import os.path as osp
import pickle
import time
import warnings
from collections import defaultdict
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from .video_io import write_video

#: keys of the release's ``JHMDB-GT.pkl``
GT_KEYS = ('labels', 'gttubes', 'nframes', 'train_videos', 'test_videos',
           'resolution')
NUM_SPLITS = 3
#: frame rate of the J-HMDB frames (and of the written videos)
FPS = 30
#: the dataset settings the converted files are written for
DATASET_SETTINGS = dict(
    timestamp_start=1, start_index=0, use_frames=False, fps=1)


def _to_str(value):
    return value.decode('latin1') if isinstance(value, bytes) else value


def load_jhmdb_gt(path: str) -> dict:
    """Load a ``JHMDB-GT.pkl`` (a Python-2 pickle: ``encoding='latin1'``)
    and check its layout; keys and labels are returned as ``str``."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'gt_file: {path} does not exist')
    with warnings.catch_warnings():
        # Python-2 numpy pickles name numpy.core (an alias in numpy 2)
        warnings.simplefilter('ignore', DeprecationWarning)
        with open(path, 'rb') as f:
            try:
                gt = pickle.load(f, encoding='latin1')
            except Exception as e:
                raise ValueError(f'gt_file: {path} is not a readable pickle '
                                 f'({type(e).__name__}: {e})') from e
    if not isinstance(gt, dict):
        raise ValueError(f'gt_file: {path} holds a {type(gt).__name__}, '
                         'expected the J-HMDB GT dict')
    gt = {_to_str(k): v for k, v in gt.items()}
    missing = [k for k in GT_KEYS if k not in gt]
    if missing:
        raise ValueError(f'gt_file: {path} misses the key(s) {missing} '
                         f'(a J-HMDB GT pkl has {list(GT_KEYS)})')
    gt['labels'] = [_to_str(label) for label in gt['labels']]
    for key in ('gttubes', 'nframes', 'resolution'):
        if not isinstance(gt[key], dict):
            raise ValueError(f"gt_file: '{key}' must be a dict keyed by "
                             f'video, got {type(gt[key]).__name__}')
        gt[key] = {_to_str(v): val for v, val in gt[key].items()}
    for key in ('train_videos', 'test_videos'):
        lists = gt[key]
        if (not isinstance(lists, (list, tuple)) or len(lists) != NUM_SPLITS
                or not all(isinstance(v, (list, tuple)) for v in lists)):
            raise ValueError(f"gt_file: '{key}' must be a list of "
                             f'{NUM_SPLITS} video lists (one per split)')
        gt[key] = [[_to_str(v) for v in videos] for videos in lists]
    return gt


def check_split(split) -> int:
    if isinstance(split, bool) or split not in range(1, NUM_SPLITS + 1):
        raise ValueError(f'split must be 1, 2 or 3, got {split!r}')
    return int(split)


def split_videos(gt: dict, split: int) -> Tuple[List[str], List[str]]:
    """Train and test videos of ``split`` (1-based, as in the papers)."""
    split = check_split(split)
    return (list(gt['train_videos'][split - 1]),
            list(gt['test_videos'][split - 1]))


def decord_check(path: str) -> Tuple[int, Tuple[int, int]]:
    """Number of frames and (h, w) decord reads from ``path`` (decoding the
    last frame)."""
    try:
        import decord
    except ImportError as e:
        raise ImportError(
            'decord (mmaction\'s video reader) is needed to '
            'check the written videos: pip install decord') from e
    reader = decord.VideoReader(path)
    n = len(reader)
    if n == 0:
        return 0, (0, 0)
    last = reader[n - 1].asnumpy()
    return n, tuple(last.shape[:2])


def _frame_files(frame_dir: str, nframes: int,
                 frame_tmpl: str) -> Optional[str]:
    """None if ``frame_dir`` holds exactly frames 1..nframes, else why
    not."""
    if not osp.isdir(frame_dir):
        return f'missing frame folder {frame_dir}'
    ext = osp.splitext(frame_tmpl.format(1))[1]
    present = {f for f in os.listdir(frame_dir) if f.endswith(ext)}
    expected = [frame_tmpl.format(i) for i in range(1, nframes + 1)]
    missing = [f for f in expected if f not in present]
    if missing or len(present) != nframes:
        detail = (f', missing {missing[:3]}{"..." if len(missing) > 3 else ""}'
                  if missing else '')
        return (f'frame count mismatch: {len(present)} {ext} files in '
                f'{frame_dir}, nframes={nframes}{detail}')
    return None


def _read_frames(frame_dir: str, nframes: int,
                 frame_tmpl: str) -> List[np.ndarray]:
    import cv2
    frames = []
    for i in range(1, nframes + 1):
        img = cv2.imread(
            osp.join(frame_dir, frame_tmpl.format(i)), cv2.IMREAD_COLOR)
        if img is None:
            raise ValueError(f'unreadable frame {frame_tmpl.format(i)} in '
                             f'{frame_dir}')
        frames.append(np.ascontiguousarray(img[..., ::-1]))
    return frames


def _prepare_video(key: str, gt: dict, frames_dir: str, video_path: str,
                   frame_tmpl: str, overwrite: bool, crf: int,
                   stats: dict) -> Optional[str]:
    """Encode (or reuse) the mp4 of ``key``; None on success, else the
    reason the video is skipped."""
    for name in ('nframes', 'resolution', 'gttubes'):
        if key not in gt[name]:
            return f"no entry in the GT pkl's '{name}'"
    if ',' in key:
        return 'a comma in the video name breaks the AVA csv'
    nframes = int(gt['nframes'][key])
    h, w = (int(x) for x in gt['resolution'][key])
    if nframes < 1:
        return f'nframes={nframes}'
    why = _frame_files(osp.join(frames_dir, key), nframes, frame_tmpl)
    if why:
        return why
    if not overwrite and osp.isfile(video_path):
        try:
            if decord_check(video_path) == (nframes, (h, w)):
                stats['videos_reused'] += 1
                return None
        except Exception:  # unreadable: encode it again
            pass
    try:
        frames = _read_frames(osp.join(frames_dir, key), nframes, frame_tmpl)
    except ValueError as e:
        return str(e)
    sizes = {f.shape[:2] for f in frames}
    if sizes != {(h, w)}:
        return (f'frame size {sorted(sizes)} differs from the GT pkl '
                f'resolution (h, w)={(h, w)}')
    if h % 2 or w % 2:
        return f'odd frame size {h}x{w} cannot be encoded as yuv420p H.264'
    os.makedirs(osp.dirname(video_path), exist_ok=True)
    write_video(video_path, frames, FPS, crf)
    n, size = decord_check(video_path)
    if (n, size) != (nframes, (h, w)):
        os.remove(video_path)
        return (f'decord reads {n} frames of {size} from the written video, '
                f'expected {nframes} of {(h, w)}')
    stats['videos_encoded'] += 1
    stats['frames_encoded'] += nframes
    return None


def _tube_rows(key: str, gt: dict, label_ok: Callable[[int], bool],
               stats: dict) -> Tuple[Optional[str], list, dict]:
    """Per-frame rows ``(frame, label, entity, box_norm)`` of the tubes of
    ``key`` (box clipped to the image) and the tubes restricted to frames
    ``1..nframes``; or the reason the video is skipped."""
    nframes = int(gt['nframes'][key])
    h, w = (float(x) for x in gt['resolution'][key])
    scale = np.array([w, h, w, h])
    rows, kept_tubes, entity = [], {}, 0
    tubes = gt['gttubes'][key]
    if not isinstance(tubes, dict):
        return 'gttubes entry is not a {label: [tubes]} dict', [], {}
    for label, label_tubes in sorted(tubes.items()):
        if not isinstance(label, (int, np.integer)) or not label_ok(label):
            return f'label index {label!r} not in labels', [], {}
        kept_tubes[int(label)] = []
        for tube in label_tubes:
            tube = np.asarray(tube)
            if tube.ndim != 2 or tube.shape[1] != 5:
                return (f'tube of shape {tube.shape}, expected (n, 5) rows '
                        '"frame x1 y1 x2 y2"'), [], {}
            frames = tube[:, 0].astype(np.int64)
            inside = (frames >= 1) & (frames <= nframes)
            stats['rows_outside_video'] += int((~inside).sum())
            if not inside.all():
                stats['notes'].append(
                    f'{key}: {int((~inside).sum())} tube rows with frames '
                    f'outside 1..{nframes} dropped')
            tube = tube[inside]
            kept_tubes[int(label)].append(tube)
            for row_idx, row in enumerate(tube):
                box = row[1:5] / scale
                clipped = np.clip(box, 0, 1)
                if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
                    stats['rows_empty_box'] += 1
                    stats['notes'].append(
                        f'{key}: frame {int(row[0])} box {row[1:5].tolist()}'
                        ' is empty inside the image, row dropped')
                    continue
                if not np.allclose(clipped, box, rtol=0, atol=1e-6):
                    stats['boxes_clipped'] += 1
                rows.append(
                    (int(row[0]), int(label), entity, row_idx, clipped))
            entity += 1
    return None, rows, kept_tubes


def _load_user_proposals(path: str) -> dict:
    if not osp.isfile(path):
        raise FileNotFoundError(f'proposals: {path} does not exist')
    with open(path, 'rb') as f:
        proposals = pickle.load(f, encoding='latin1')
    if not isinstance(proposals, dict):
        raise ValueError(f'proposals: {path} must hold a dict '
                         "'<class>/<video>,<frame:04d>' -> (k, 4|5) array")
    return {_to_str(k): v for k, v in proposals.items()}


def _lookup(proposals: dict, video_id: str, frame: int):
    key = video_id[:-len('.mp4')]
    for k in (f'{video_id},{frame:04d}', f'{key},{frame:04d}',
              f'{video_id},{frame}', f'{key},{frame}'):
        if k in proposals:
            return proposals[k]
    return None


def _user_proposal(value, scale: np.ndarray, pixels: bool, where: str,
                   stats: dict) -> Optional[np.ndarray]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] not in (4, 5):
        raise ValueError(f'proposals: {where} has shape {arr.shape}, '
                         'expected (k, 4) or (k, 5)')
    if arr.shape[0] == 0:
        stats['proposals_empty'] += 1
        return None
    if arr.shape[1] == 4:
        stats['proposals_no_score'] += 1
        arr = np.concatenate([arr, np.ones((len(arr), 1))], axis=1)
    if pixels:
        arr[:, :4] /= scale
    elif arr[:, :4].max() > 2:
        raise ValueError(f'proposals: {where} has coordinates up to '
                         f'{arr[:, :4].max():.1f}; they look like pixels, '
                         'pass proposals_pixels=True (--proposals-pixels)')
    clipped = np.clip(arr, 0, 1)
    stats['proposals_clipped'] += int((np.abs(clipped - arr)
                                       > 1e-6).any(axis=1).sum())
    return clipped.astype(np.float32)


def convert_jhmdb(gt_file: str,
                  frames_dir: str,
                  out_dir: str,
                  split: int = 1,
                  train_stride: int = 1,
                  proposals: Optional[str] = None,
                  proposals_pixels: bool = False,
                  frame_tmpl: str = '{:05d}.png',
                  overwrite: bool = False,
                  crf: int = 10,
                  log: Optional[Callable[[str], None]] = print) -> dict:
    """Convert one split of J-HMDB-21 (see the module docstring).

    Args:
        gt_file: the release's ``JHMDB-GT.pkl``.
        frames_dir: the release's ``Frames`` folder
            (``<class>/<video>/%05d.png``).
        out_dir: output root (``videos/`` and ``annotations/``).
        split: 1, 2 or 3.
        train_stride: keep every ``train_stride``-th annotated frame of each
            train tube (val keeps all: frame-mAP is over every annotated
            frame).
        proposals: optional pickle ``'<class>/<video>,<frame:04d>'`` (with
            or without ``.mp4``; frame 1-based) -> ``(k, 5)`` boxes + score
            (or ``(k, 4)``, score 1), normalised to [0, 1] unless
            ``proposals_pixels``. Without it the GT boxes are the proposals.
        proposals_pixels: the user proposals are in pixels.
        frame_tmpl: frame file names (1-based index).
        overwrite: encode videos even if a valid mp4 is already there (else
            it is reused, e.g. when converting another split).
        crf: x264 quality (lower is better; 10 is near lossless).
        log: called with progress / report lines (None: quiet).

    Returns:
        dict: counts, skipped videos with reasons, notes and the paths.
    """
    split = check_split(split)
    if (isinstance(train_stride, bool) or not isinstance(train_stride, int)
            or train_stride < 1):
        raise ValueError(
            f'train_stride must be a positive int, got {train_stride!r}')
    if not osp.isdir(frames_dir):
        raise FileNotFoundError(
            f'frames_dir: {frames_dir} is not a directory (the release\'s '
            'Frames/<class>/<video>/%05d.png)')
    log = log or (lambda msg: None)
    start = time.time()
    gt = load_jhmdb_gt(gt_file)
    user_props = _load_user_proposals(proposals) if proposals else None
    labels = gt['labels']
    train, test = split_videos(gt, split)
    overlap = sorted(set(train) & set(test))
    if overlap:
        raise ValueError(f'gt_file: split {split} has {len(overlap)} videos '
                         f'in both train_videos and test_videos, e.g. '
                         f'{overlap[0]}')

    ann_dir = osp.join(out_dir, 'annotations')
    video_dir = osp.join(out_dir, 'videos')
    os.makedirs(ann_dir, exist_ok=True)
    prefix = osp.join(ann_dir, f'jhmdb_split{split}')
    paths = dict(
        videos=video_dir,
        label_map=osp.join(ann_dir, 'jhmdb_label_map.txt'),
        train=f'{prefix}_train.csv',
        val=f'{prefix}_val.csv',
        proposals_train=f'{prefix}_proposals_train.pkl',
        proposals_val=f'{prefix}_proposals_val.pkl',
        gt=f'{prefix}_GT.pkl',
        summary=f'{prefix}_summary.json')
    stats = defaultdict(int)
    stats['notes'] = []
    skipped: Dict[str, str] = {}
    out_gt = dict(
        labels=list(labels),
        gttubes={},
        nframes={},
        resolution={},
        train_videos=[[]],
        test_videos=[[]])
    counts = {}
    proposal_source = (f'user file {proposals}'
                       if proposals else 'GROUND-TRUTH boxes (score 1.0)')
    log(f'J-HMDB split {split}: {len(train)} train + {len(test)} test videos'
        f' listed, {len(labels)} classes -> {out_dir}')
    if user_props is None:
        log('  WARNING: no --proposals file: the GROUND-TRUTH boxes are '
            'written as proposals (score 1.0)')
    for subset, videos, stride in (('train', train, train_stride), ('val',
                                                                    test, 1)):
        csv_rows, props = [], {}
        kept = 0
        for i, key in enumerate(videos):
            video_id = f'{key}.mp4'
            why = _prepare_video(key, gt, frames_dir,
                                 osp.join(video_dir, video_id), frame_tmpl,
                                 overwrite, crf, stats)
            if why is None:
                why, rows, tubes = _tube_rows(key, gt,
                                              lambda la: 0 <= la < len(labels),
                                              stats)
            if why is not None:
                skipped[key] = why
                log(f'  skip {key}: {why}')
                continue
            kept += 1
            out_gt['gttubes'][key] = tubes
            out_gt['nframes'][key] = int(gt['nframes'][key])
            out_gt['resolution'][key] = tuple(
                int(x) for x in gt['resolution'][key])
            out_gt['train_videos' if subset ==
                   'train' else 'test_videos'][0].append(key)
            h, w = out_gt['resolution'][key]
            scale = np.array([w, h, w, h], dtype=np.float64)
            by_frame = defaultdict(list)
            for frame, label, entity, row_idx, box in rows:
                if row_idx % stride:
                    continue
                csv_rows.append(
                    (video_id, frame, *(f'{v:.5f}'
                                        for v in box), label, entity))
                by_frame[frame].append(box)
            for frame, boxes in sorted(by_frame.items()):
                img_key = f'{video_id},{frame:04d}'
                if user_props is None:
                    boxes = np.array(boxes, dtype=np.float32).round(5)
                    props[img_key] = np.concatenate(
                        [boxes, np.ones((len(boxes), 1), np.float32)], 1)
                    continue
                value = _lookup(user_props, video_id, frame)
                if value is None:
                    stats[f'proposals_missing_{subset}'] += 1
                    continue
                arr = _user_proposal(value, scale, proposals_pixels, img_key,
                                     stats)
                if arr is not None:
                    props[img_key] = arr
            if (i + 1) % 100 == 0:
                log(f'  {subset}: {i + 1}/{len(videos)} videos '
                    f'({time.time() - start:.0f} s)')
        csv_rows.sort(key=lambda r: (r[0], r[1], r[7], r[6]))
        with open(paths[subset], 'w', newline='') as f:
            csv.writer(f).writerows(csv_rows)
        with open(paths[f'proposals_{subset}'], 'wb') as f:
            pickle.dump(props, f)
        counts[subset] = dict(
            videos=kept,
            rows=len(csv_rows),
            frames=len({(r[0], r[1])
                        for r in csv_rows}),
            proposals=len(props),
            proposal_boxes=int(sum(len(v) for v in props.values())))
    with open(paths['gt'], 'wb') as f:
        pickle.dump(out_gt, f)
    with open(paths['label_map'], 'w') as f:
        f.write('\n'.join(labels) + '\n')
    report = dict(
        split=split,
        num_classes=len(labels),
        train_stride=train_stride,
        counts=counts,
        videos_encoded=stats['videos_encoded'],
        videos_reused=stats['videos_reused'],
        frames_encoded=stats['frames_encoded'],
        boxes_clipped=stats['boxes_clipped'],
        rows_empty_box=stats['rows_empty_box'],
        rows_outside_video=stats['rows_outside_video'],
        proposals_source=proposal_source,
        proposals_clipped=stats['proposals_clipped'],
        proposals_empty=stats['proposals_empty'],
        proposals_no_score=stats['proposals_no_score'],
        proposals_missing=dict(
            train=stats['proposals_missing_train'],
            val=stats['proposals_missing_val']),
        skipped=skipped,
        notes=stats['notes'],
        dataset_settings=dict(DATASET_SETTINGS, num_classes=len(labels)),
        paths=paths,
        seconds=round(time.time() - start, 1))
    with open(paths['summary'], 'w') as f:
        json.dump(report, f, indent=2)
    for line in format_report(report):
        log(line)
    return report


def format_report(report: dict) -> List[str]:
    """Human-readable lines of a :func:`convert_jhmdb` report."""
    c = report['counts']
    lines = [
        f"split {report['split']}: {c['train']['videos']} train + "
        f"{c['val']['videos']} val videos ({report['videos_encoded']} "
        f"encoded, {report['frames_encoded']} frames; "
        f"{report['videos_reused']} reused), {len(report['skipped'])} "
        f"skipped, {report['seconds']} s"
    ]
    for subset in ('train', 'val'):
        stride = (f", every {report['train_stride']}-th annotated frame"
                  if subset == 'train' and report['train_stride'] > 1 else '')
        lines.append(f"  {subset}: {c[subset]['rows']} boxes on "
                     f"{c[subset]['frames']} frames{stride} -> "
                     f"{report['paths'][subset]}")
    lines.append(f"  boxes clipped to the image: {report['boxes_clipped']}; "
                 f"rows dropped: {report['rows_empty_box']} empty inside "
                 f"the image, {report['rows_outside_video']} outside "
                 '1..nframes')
    for key, why in sorted(report['skipped'].items()):
        lines.append(f'  skipped {key}: {why}')
    for note in report['notes'][:20]:
        lines.append(f'  note: {note}')
    if len(report['notes']) > 20:
        lines.append(f"  ... {len(report['notes']) - 20} more notes in "
                     f"{report['paths']['summary']}")
    if report['proposals_source'].startswith('GROUND-TRUTH'):
        lines.append(
            '  WARNING: proposals are the GROUND-TRUTH boxes (score 1.0), '
            'not detected persons: results measure classification of known '
            'boxes, a different (easier) protocol than detector proposals '
            '(pass --proposals for those)')
    else:
        missing = report['proposals_missing']
        lines.append(
            f"  proposals from {report['proposals_source']}: "
            f"{report['proposals_clipped']} boxes clipped to [0, 1], "
            f"{report['proposals_no_score']} frames without scores "
            f"(score 1.0), {report['proposals_empty']} empty; frames "
            f"without proposals (AVADataset then uses the whole frame): "
            f"{missing['train']} train, {missing['val']} val")
    lines.append(f"  proposals: {report['paths']['proposals_train']}, "
                 f"{report['paths']['proposals_val']}")
    lines.append(f"  metric GT: {report['paths']['gt']}; labels: "
                 f"{report['paths']['label_map']}; videos: "
                 f"{report['paths']['videos']}")
    s = report['dataset_settings']
    lines.append(
        f"  AVADataset: data_prefix=dict(img={report['paths']['videos']!r}),"
        f" num_classes={s['num_classes']}, timestamp_start="
        f"{s['timestamp_start']}, start_index={s['start_index']}, "
        f"use_frames={s['use_frames']}, fps={s['fps']}")
    return lines
