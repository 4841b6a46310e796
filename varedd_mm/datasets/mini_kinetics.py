# Copyright (c) varedd_mm contributors. All rights reserved.
"""Mini-Kinetics-200 annotations from a Kinetics-400 video list.

Mini-Kinetics-200 (Xie et al., 2018) is published as two lists of YouTube
ids (80,000 train, 5,000 val). A Kinetics-400 copy names each clip
``<youtube_id>_<start:06d>_<end:06d>.<ext>`` (possibly under a class folder),
and mmaction's video list holds ``<path> <label>``. This module matches the
ids against the K400 lists, keeps the K400 paths unchanged, relabels the
200 classes ``0..199`` in K400 label order, and reports every id that was
not found: nothing is dropped or renamed silently.
"""
import os
import os.path as osp
import re
from typing import Dict, List, Optional, Tuple

_YTID = re.compile(r'^(?P<ytid>.{11})_\d{6}_\d{6}$')


def youtube_id(path: str) -> Optional[str]:
    """YouTube id of a Kinetics clip path, or None if it does not follow the
    ``<id>_<start>_<end>`` naming."""
    stem = osp.splitext(osp.basename(path))[0]
    m = _YTID.match(stem)
    return m.group('ytid') if m else None


def read_video_list(path: str) -> List[Tuple[str, int]]:
    """An mmaction video list: ``<path> <label>`` per line."""
    entries = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            parts = line.rsplit(maxsplit=1)
            if len(parts) != 2 or not parts[1].lstrip('-').isdigit():
                raise ValueError(f'{path}:{lineno}: expected "<path> <label>"'
                                 f', got {line!r}')
            entries.append((parts[0], int(parts[1])))
    return entries


def read_ids(path: str) -> List[str]:
    with open(path) as f:
        ids = [line.strip() for line in f if line.strip()]
    dup = len(ids) - len(set(ids))
    if dup:
        raise ValueError(f'{path}: {dup} duplicated YouTube ids')
    return ids


def match_split(ids: List[str], entries: List[Tuple[str, int]],
                list_name: str) -> Tuple[List[Tuple[str, int]], List[str]]:
    """Entries of ``entries`` whose YouTube id is in ``ids`` (in the order of
    ``ids``) and the ids with no entry."""
    by_id: Dict[str, Tuple[str, int]] = {}
    unnamed = 0
    for path, label in entries:
        ytid = youtube_id(path)
        if ytid is None:
            unnamed += 1
            continue
        if ytid in by_id and by_id[ytid][1] != label:
            raise ValueError(f'{list_name}: YouTube id {ytid} appears with '
                             f'labels {by_id[ytid][1]} and {label}')
        by_id.setdefault(ytid, (path, label))
    if unnamed and not by_id:
        raise ValueError(f'{list_name}: no path follows the Kinetics naming '
                         '<youtube_id>_<start:06d>_<end:06d>.<ext>')
    found = [by_id[i] for i in ids if i in by_id]
    missing = [i for i in ids if i not in by_id]
    return found, missing


def build(train_ids: str,
          val_ids: str,
          k400_train_list: str,
          k400_val_list: str,
          out_dir: str,
          k400_label_map: Optional[str] = None) -> Dict[str, object]:
    """Write ``minik200_{train,val}_list_videos.txt``,
    ``minik200_label_map.txt`` and ``minik200_{train,val}_missing.txt``.

    Returns:
        dict: counts (listed / found / missing per split), the class
        mapping and the written paths.
    """
    names = None
    if k400_label_map is not None:
        with open(k400_label_map) as f:
            names = [line.strip() for line in f if line.strip()]
    report: Dict[str, object] = {}
    matched = {}
    for split, ids_path, list_path in (('train', train_ids, k400_train_list),
                                       ('val', val_ids, k400_val_list)):
        ids = read_ids(ids_path)
        found, missing = match_split(ids, read_video_list(list_path),
                                     list_path)
        matched[split] = (found, missing)
        report[split] = dict(
            listed=len(ids), found=len(found), missing=len(missing))
    classes = sorted({label for _, label in matched['train'][0]})
    extra = sorted({label for _, label in matched['val'][0]} - set(classes))
    if extra:
        raise ValueError(f'val clips have K400 labels {extra} that no train '
                         'clip has: the lists do not describe one class set')
    if names is not None and classes and classes[-1] >= len(names):
        raise ValueError(f'K400 label {classes[-1]} is outside the label map '
                         f'{k400_label_map} ({len(names)} names)')
    remap = {k400: new for new, k400 in enumerate(classes)}
    os.makedirs(out_dir, exist_ok=True)
    paths = {}
    for split, (found, missing) in matched.items():
        out = osp.join(out_dir, f'minik200_{split}_list_videos.txt')
        with open(out, 'w') as f:
            f.writelines(f'{p} {remap[label]}\n' for p, label in found)
        miss = osp.join(out_dir, f'minik200_{split}_missing.txt')
        with open(miss, 'w') as f:
            f.writelines(f'{i}\n' for i in missing)
        paths[split] = out
        paths[f'{split}_missing'] = miss
    label_map = osp.join(out_dir, 'minik200_label_map.txt')
    with open(label_map, 'w') as f:
        for k400 in classes:
            f.write(f'{names[k400] if names else k400}\n')
    paths['label_map'] = label_map
    report.update(num_classes=len(classes), k400_labels=classes, paths=paths)
    return report
