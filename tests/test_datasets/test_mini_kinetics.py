# Copyright (c) varedd_mm contributors. All rights reserved.
"""The Mini-Kinetics-200 tool on the public split lists (../shared) and a
generated Kinetics-400-style annotation."""
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest

from varedd_mm.datasets.mini_kinetics import build, youtube_id

TOOL = osp.join(
    osp.dirname(__file__), '..', '..', 'tools', 'data', 'mini_kinetics200',
    'build_annotations.py')


def _ids(path):
    with open(path) as f:
        return [line.strip() for line in f if line.strip()]


def _fake_k400(tmp_path, shared_dir, drop=(), other_classes=5):
    """A K400-style video list holding the Mini-K200 clips (200 of the 400
    classes, 400 train / 25 val each) plus clips of other classes; the ids
    in ``drop`` are left out."""
    rng = np.random.default_rng(0)
    root = osp.join(shared_dir, 'data', 'mini_kinetics_200')
    train_ids, val_ids = (
        _ids(osp.join(root, f'{s}_ytid_list.txt')) for s in ('train', 'val'))
    mini_classes = sorted(rng.choice(400, 200, replace=False).tolist())
    others = [c for c in range(400) if c not in mini_classes][:other_classes]
    files = {}
    for split, ids, per in (('train', train_ids, 400), ('val', val_ids, 25)):
        lines = []
        for n, ytid in enumerate(ids):
            if ytid in drop:
                continue
            label = mini_classes[n // per]
            lines.append(f'class_{label}/{ytid}_{n:06d}_{n + 10:06d}.mp4 '
                         f'{label}')
        for k, label in enumerate(others):  # clips outside Mini-K200
            lines.append(f'class_{label}/other{k:06d}x_000001_000011.mp4 '
                         f'{label}')
        rng.shuffle(lines)
        files[split] = str(tmp_path / f'k400_{split}.txt')
        with open(files[split], 'w') as f:
            f.write('\n'.join(lines) + '\n')
    names = str(tmp_path / 'names.txt')
    with open(names, 'w') as f:
        f.write('\n'.join(f'name{i}' for i in range(400)) + '\n')
    return root, files, names, mini_classes, train_ids, val_ids


def test_youtube_id():
    assert youtube_id('a/b/-3B32lodo2M_000059_000069.mp4') == '-3B32lodo2M'
    assert youtube_id('x_y_000001_000011.mp4') is None  # id is not 11 chars
    assert youtube_id('test.mp4') is None


def test_build_on_public_lists(tmp_path, shared_dir):
    dropped = {'kIRmvrmc2nM', '-7tDxxH2g6I'}  # one train id, one val id
    root, k400, names, classes, train_ids, val_ids = _fake_k400(
        tmp_path, shared_dir, drop=dropped)
    assert {'kIRmvrmc2nM'} <= set(train_ids) and '-7tDxxH2g6I' in val_ids
    out = tmp_path / 'out'
    report = build(
        osp.join(root, 'train_ytid_list.txt'),
        osp.join(root, 'val_ytid_list.txt'), k400['train'], k400['val'],
        str(out), names)
    assert report['train'] == dict(listed=80000, found=79999, missing=1)
    assert report['val'] == dict(listed=5000, found=4999, missing=1)
    assert report['num_classes'] == 200
    assert report['k400_labels'] == classes
    lines = open(report['paths']['train']).read().splitlines()
    assert len(lines) == 79999
    # paths unchanged, labels remapped to 0..199 in K400 label order
    path, label = lines[1].rsplit(' ', 1)
    k400_label = int(path.split('/')[0].split('_')[1])
    assert int(label) == classes.index(k400_label)
    assert open(
        report['paths']['train_missing']).read().split() == ['kIRmvrmc2nM']
    assert open(report['paths']['label_map']).read().splitlines() == [
        f'name{c}' for c in classes
    ]


def test_cli_reports_found_and_missing(tmp_path, shared_dir):
    root, k400, names, *_ = _fake_k400(
        tmp_path, shared_dir, drop={'2B65vtRd5Ck'})
    out = subprocess.run([
        sys.executable, TOOL, '--train-ids',
        osp.join(root, 'train_ytid_list.txt'), '--val-ids',
        osp.join(root,
                 'val_ytid_list.txt'), '--k400-train-list', k400['train'],
        '--k400-val-list', k400['val'], '--k400-label-map', names, '--out-dir',
        str(tmp_path / 'o'), '--max-missing', '0'
    ],
                         capture_output=True,
                         text=True)
    assert 'train: 80000 listed, 79999 found, 1 missing' in out.stdout
    assert 'val: 5000 listed, 5000 found, 0 missing' in out.stdout
    assert out.returncode == 1  # --max-missing 0 and one id is missing


def test_bad_list_line(tmp_path):
    bad = tmp_path / 'bad.txt'
    bad.write_text('video_without_label.mp4\n')
    ids = tmp_path / 'ids.txt'
    ids.write_text('abcdefghijk\n')
    with pytest.raises(
            ValueError, match=r'bad.txt:1: expected "<path> '
            r'<label>"'):
        build(str(ids), str(ids), str(bad), str(bad), str(tmp_path / 'o'))


MINIK_CONFIGS = [
    'configs/recognition/vared2/r2plus1d_r18_8xb16-16x2x1-100e_minik200-'
    'rgb.py',
    'configs/recognition/vared2/vared2-k2_tpn-slowonly_r50_8xb8-8x8x1-30e_'
    'minik200-rgb.py'
]


@pytest.mark.parametrize('config', MINIK_CONFIGS)
def test_missing_lists_point_to_the_build_tool(config, tmp_path):
    """A Mini-Kinetics-200 config whose lists were not built says how to
    build them (not only mmengine's bare FileNotFoundError)."""
    from mmaction.registry import DATASETS
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    root = osp.join(osp.dirname(__file__), '..', '..')
    cfg = Config.fromfile(osp.join(root, config))
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        dataset = cfg[loader].dataset
        assert dataset.type == 'MiniKinetics200Dataset'
        dataset.ann_file = str(tmp_path / 'not_built.txt')
        with DefaultScope.overwrite_default_scope('mmaction'):
            with pytest.raises(FileNotFoundError) as err:
                DATASETS.build(dataset)
        msg = str(err.value)
        assert 'not_built.txt' in msg
        assert 'tools/data/mini_kinetics200/build_annotations.py' in msg
        assert 'github.com/s9xie/Mini-Kinetics-200' in msg


def test_built_lists_load_as_a_video_dataset(tmp_path):
    from mmaction.registry import DATASETS
    from mmengine.registry import DefaultScope
    ann = tmp_path / 'minik200_val_list_videos.txt'
    ann.write_text('abc/aaaaaaaaaaa_000001_000011.mp4 3\n'
                   'xyz/bbbbbbbbbbb_000002_000012.mp4 0\n')
    # as a config builds it: in mmaction's scope, whatever scope an earlier
    # test left current
    with DefaultScope.overwrite_default_scope('mmaction'):
        dataset = DATASETS.build(
            dict(
                type='MiniKinetics200Dataset',
                ann_file=str(ann),
                data_prefix=dict(video='videos'),
                pipeline=[]))
    assert len(dataset) == 2
    assert dataset.get_data_info(0)['filename'] == osp.join(
        'videos', 'abc/aaaaaaaaaaa_000001_000011.mp4')
    assert dataset.get_data_info(0)['label'] == 3
