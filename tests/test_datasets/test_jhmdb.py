# Copyright (c) varedd_mm contributors. All rights reserved.
"""J-HMDB-21 conversion: the release's Python-2 GT pickle, the synthetic
dataset in the release layout, and the converted data through mmaction's
AVADataset + SampleAVAFrames/decord pipeline and MultiSportsMetric."""
import csv
import importlib.util
import os
import os.path as osp
import pickle
import shutil
import struct
from collections import defaultdict

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope

from varedd_mm.datasets.jhmdb import (GT_KEYS, convert_jhmdb, decord_check,
                                      load_jhmdb_gt)
from varedd_mm.datasets.synthetic_jhmdb import (STAMP_SIZE, STAMP_STEP,
                                                SYNTHETIC_JHMDB_CLASSES,
                                                generate_synthetic_jhmdb,
                                                render_jhmdb_clip)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SIZE = (64, 96)  # (h, w)
NUM_CLASSES = len(SYNTHETIC_JHMDB_CLASSES)


def _py2_dumps(obj) -> bytes:
    """Pickle ``obj`` as Python 2 did (protocol 2): ``str`` as byte strings
    (BINSTRING) and numpy arrays with their raw data as a byte string, which
    Python 3 reads only with ``encoding='latin1'``."""
    out = [b'\x80\x02']

    def string(data: bytes):
        out.append(b'T' + struct.pack('<I', len(data)) + data)

    def emit(o):
        if o is None:
            out.append(b'N')
        elif isinstance(o, str):
            string(o.encode('latin1'))
        elif isinstance(o, (bool, np.bool_)):
            out.append(b'\x88' if o else b'\x89')
        elif isinstance(o, (int, np.integer)):
            out.append(b'J' + struct.pack('<i', int(o)))
        elif isinstance(o, tuple):
            out.append(b'(')
            for x in o:
                emit(x)
            out.append(b't')
        elif isinstance(o, list):
            out.append(b'](')
            for x in o:
                emit(x)
            out.append(b'e')
        elif isinstance(o, dict):
            out.append(b'}(')
            for k, v in o.items():
                emit(k)
                emit(v)
            out.append(b'u')
        elif isinstance(o, np.ndarray):
            out.append(b'cnumpy.core.multiarray\n_reconstruct\ncnumpy\n'
                       b'ndarray\n')
            emit((0, ))
            string(b'b')
            out.append(b'\x87R(')  # TUPLE3 REDUCE, state:
            emit(1)
            emit(tuple(o.shape))
            out.append(b'cnumpy\ndtype\n')
            string(o.dtype.str[1:].encode())
            out.append(b'\x89\x88\x87R')
            emit((3, '<', None, None, None, -1, -1, 0))
            out.append(b'b\x89')  # BUILD the dtype, is_fortran=False
            string(
                np.ascontiguousarray(o, o.dtype.newbyteorder('<')).tobytes())
            out.append(b'tb')
        else:
            raise TypeError(type(o))

    emit(obj)
    return b''.join(out) + b'.'


def _tiny_gt():
    tube = np.array([[1, 10.5, 20, 60, 200], [2, 11.5, 21, 61, 201]],
                    np.float32)
    return dict(
        labels=['brush_hair', 'catch'],
        gttubes={'catch/v_0': {
            1: [tube]
        }},
        nframes={'catch/v_0': 2},
        train_videos=[[], [], []],
        test_videos=[['catch/v_0'], ['catch/v_0'], ['catch/v_0']],
        resolution={'catch/v_0': (240, 320)})


def test_load_python2_pickle(tmp_path):
    gt = _tiny_gt()
    py2 = tmp_path / 'py2.pkl'
    py2.write_bytes(_py2_dumps(gt))
    with pytest.raises(UnicodeDecodeError):  # why encoding='latin1'
        with open(py2, 'rb') as f:
            pickle.load(f)
    py3 = tmp_path / 'py3.pkl'
    with open(py3, 'wb') as f:
        pickle.dump(gt, f, protocol=2)
    for path in (py2, py3):
        loaded = load_jhmdb_gt(str(path))
        assert loaded['labels'] == gt['labels']
        assert loaded['test_videos'] == gt['test_videos']
        tube = loaded['gttubes']['catch/v_0'][1][0]
        assert tube.dtype == np.float32
        np.testing.assert_array_equal(tube, gt['gttubes']['catch/v_0'][1][0])
        assert tuple(loaded['resolution']['catch/v_0']) == (240, 320)


@pytest.mark.parametrize('drop', ['gttubes', 'test_videos'])
def test_load_missing_key(tmp_path, drop):
    gt = _tiny_gt()
    del gt[drop]
    path = tmp_path / 'gt.pkl'
    with open(path, 'wb') as f:
        pickle.dump(gt, f, protocol=2)
    with pytest.raises(ValueError, match=f"misses the key.*'{drop}'"):
        load_jhmdb_gt(str(path))


def test_load_bad_layout(tmp_path):
    gt = _tiny_gt()
    gt['train_videos'] = [[]]
    path = tmp_path / 'gt.pkl'
    with open(path, 'wb') as f:
        pickle.dump(gt, f, protocol=2)
    with pytest.raises(ValueError, match="'train_videos' must be a list of 3"):
        load_jhmdb_gt(str(path))
    with pytest.raises(FileNotFoundError, match='gt_file'):
        load_jhmdb_gt(str(tmp_path / 'none.pkl'))


def test_convert_rejects_bad_arguments(tmp_path):
    path = tmp_path / 'gt.pkl'
    with open(path, 'wb') as f:
        pickle.dump(_tiny_gt(), f, protocol=2)
    frames = tmp_path / 'Frames'
    frames.mkdir()
    for split in (0, 4, '1', True):
        with pytest.raises(ValueError, match='split must be 1, 2 or 3'):
            convert_jhmdb(str(path), str(frames), str(tmp_path), split=split)
    with pytest.raises(ValueError, match='train_stride'):
        convert_jhmdb(str(path), str(frames), str(tmp_path), train_stride=0)
    with pytest.raises(FileNotFoundError, match='frames_dir'):
        convert_jhmdb(str(path), str(tmp_path / 'x'), str(tmp_path))


def test_render_clip_classes_move_as_named():
    rng = np.random.default_rng(0)
    for label, cls in enumerate(SYNTHETIC_JHMDB_CLASSES):
        clip, tubes = render_jhmdb_clip(label, rng, 24, SIZE, num_actors=1)
        assert clip.shape == (24, ) + SIZE + (3, ) and clip.dtype == np.uint8
        box = tubes[0]
        np.testing.assert_array_equal(box[:, 0], np.arange(1, 25))
        w, h = box[:, 3] - box[:, 1], box[:, 4] - box[:, 2]
        assert (h > w).all() or cls == 'wave', cls  # person-shaped
        assert (box[:, 1:] >= 0).all() and (box[:, 3] <= SIZE[1]).all()
        cx, top = (box[:, 1] + box[:, 3]) / 2, box[:, 2]
        dx = cx[-1] - cx[0]
        if cls == 'stand':
            assert np.ptp(box[:, 1:], axis=0).max() == 0
        elif cls == 'walk_left':
            assert dx < -5
        elif cls == 'walk_right':
            assert dx > 5
        elif cls == 'jump':
            assert np.ptp(top) > 3 and np.ptp(cx) == 0
        elif cls == 'wave':  # the body stays, the arm box changes
            assert np.ptp(box[:, 4]) == 0 and np.ptp(w) > 3
        # the actor stands out from a low-contrast background
        outside = np.ones(clip.shape[:3], bool)
        for t, (_, x1, y1, x2, y2) in enumerate(box.astype(int)):
            outside[t, y1:y2, x1:x2] = False
        low, high = np.percentile(clip[outside], [1, 99])
        assert high - low <= 60, cls  # 113-118 with the earlier 70-190


@pytest.fixture(scope='module')
def synthetic(tmp_path_factory):
    """A tiny synthetic release (frame numbers painted into the pixels),
    converted for split 1."""
    root = tmp_path_factory.mktemp('jhmdb')
    src = generate_synthetic_jhmdb(
        str(root / 'release'),
        videos_per_class=3,
        num_frames=(16, 20),
        size=SIZE,
        seed=1,
        two_actor_prob=0.5,
        stamp_frames=True)
    lines = []
    report = convert_jhmdb(
        src['gt_file'],
        src['frames_dir'],
        str(root / 'out'),
        split=1,
        train_stride=2,
        log=lines.append)
    return dict(root=root, src=src, report=report, log='\n'.join(lines))


def _read_csv(path):
    with open(path) as f:
        return [row for row in csv.reader(f)]


def test_generated_release_layout(synthetic):
    gt = load_jhmdb_gt(synthetic['src']['gt_file'])
    assert set(GT_KEYS) <= set(gt)
    assert gt['labels'] == list(SYNTHETIC_JHMDB_CLASSES)
    assert len(gt['nframes']) == 3 * NUM_CLASSES
    for split in range(3):
        test, train = gt['test_videos'][split], gt['train_videos'][split]
        assert len(test) == NUM_CLASSES and not set(test) & set(train)
        assert {v.split('/')[0] for v in test} == set(SYNTHETIC_JHMDB_CLASSES)
    assert len({tuple(t) for t in gt['test_videos']}) == 3  # 3 splits
    two = 0
    for key, n in gt['nframes'].items():
        files = sorted(
            os.listdir(osp.join(synthetic['src']['frames_dir'], key)))
        assert files == [f'{i:05d}.png' for i in range(1, n + 1)]
        (label, tubes), = gt['gttubes'][key].items()
        assert SYNTHETIC_JHMDB_CLASSES[label] == key.split('/')[0]
        two += len(tubes) == 2
        assert all(t.shape == (n, 5) for t in tubes)
    assert two > 0


def test_convert_outputs(synthetic):
    report, root = synthetic['report'], synthetic['root']
    gt = load_jhmdb_gt(synthetic['src']['gt_file'])
    train, test = gt['train_videos'][0], gt['test_videos'][0]
    assert report['skipped'] == {}
    assert report['counts']['train']['videos'] == len(train)
    assert report['counts']['val']['videos'] == len(test)
    assert report['videos_encoded'] == len(train) + len(test)
    assert report['frames_encoded'] == sum(gt['nframes'].values())
    assert 'GROUND-TRUTH' in report['proposals_source']
    assert 'WARNING' in synthetic['log'] and 'split 1' in synthetic['log']
    paths = report['paths']
    # val: every annotated frame; train: every 2nd row of each tube
    for subset, videos, stride in (('val', test, 1), ('train', train, 2)):
        rows = _read_csv(paths[subset])
        expected = sum(
            len(tube[::stride]) for v in videos
            for tubes in gt['gttubes'][v].values() for tube in tubes)
        assert len(rows) == expected == report['counts'][subset]['rows']
        boxes = np.array([r[2:6] for r in rows], float)
        assert ((boxes >= 0) & (boxes <= 1)).all()
        assert (boxes[:, 2] > boxes[:, 0]).all()
        assert {r[0] for r in rows} == {f'{v}.mp4' for v in videos}
        assert {int(r[6]) for r in rows} == set(range(NUM_CLASSES))
        with open(paths[f'proposals_{subset}'], 'rb') as f:
            props = pickle.load(f)
        keys = {f'{r[0]},{int(r[1]):04d}' for r in rows}
        assert set(props) == keys
        for arr in props.values():
            assert arr.dtype == np.float32 and arr.shape[1] == 5
            assert (arr >= 0).all() and (arr <= 1).all()
            assert (arr[:, 4] == 1).all()
    with open(paths['gt'], 'rb') as f:
        out_gt = pickle.load(f)
    assert out_gt['test_videos'] == [test]
    assert out_gt['train_videos'] == [train]
    assert out_gt['labels'] == gt['labels']
    for key in test + train:
        assert out_gt['nframes'][key] == gt['nframes'][key]
        assert tuple(out_gt['resolution'][key]) == SIZE
        for label, tubes in gt['gttubes'][key].items():
            for a, b in zip(out_gt['gttubes'][key][label], tubes):
                np.testing.assert_array_equal(a, b)  # pixels, as released
        n, size = decord_check(osp.join(paths['videos'], f'{key}.mp4'))
        assert (n, size) == (gt['nframes'][key], SIZE)
    with open(paths['label_map']) as f:
        assert f.read().split() == list(SYNTHETIC_JHMDB_CLASSES)
    assert osp.isfile(paths['summary'])
    assert paths['videos'] == str(root / 'out' / 'videos')


def _pipeline(test_mode):
    return [
        dict(type='DecordInit'),
        dict(
            type='SampleAVAFrames',
            clip_len=8,
            frame_interval=2,
            test_mode=test_mode),
        dict(type='DecordDecode'),
        dict(type='FormatShape', input_format='NCTHW', collapse=True),
        dict(type='PackActionInputs')
    ]


def _dataset(synthetic, subset, test_mode, start_index=0):
    import mmaction.datasets  # noqa: F401 (registers the transforms)
    from mmaction.datasets import AVADataset
    paths = synthetic['report']['paths']
    return AVADataset(
        ann_file=paths[subset],
        pipeline=_pipeline(test_mode),
        proposal_file=paths[f'proposals_{subset}'],
        data_prefix=dict(img=paths['videos']),
        num_classes=NUM_CLASSES,
        test_mode=test_mode,
        timestamp_start=1,
        start_index=start_index,
        use_frames=False,
        fps=1)


def _stamps(inputs):
    """Frame numbers painted into a (C, T, H, W) clip."""
    patch = inputs[:, :, 2:STAMP_SIZE - 2, 2:STAMP_SIZE - 2].float()
    return (patch.mean(dim=(0, 2, 3)) / STAMP_STEP).round().long().tolist()


def test_avadataset_centre_frame_boxes_and_proposals(synthetic):
    gt = load_jhmdb_gt(synthetic['src']['gt_file'])
    h, w = SIZE
    with DefaultScope.overwrite_default_scope('mmaction'):
        ds = _dataset(synthetic, 'val', test_mode=True)
        assert len(ds) == synthetic['report']['counts']['val']['frames']
        seen = set()
        for idx in range(len(ds)):
            item = ds[idx]
            sample = item['data_samples']
            video = sample.video_id[:-len('.mp4')]
            t, n = sample.timestamp, gt['nframes'][video]
            assert tuple(item['inputs'].shape) == (3, 8, h, w)
            # the clip is centred on the annotated (1-based) frame
            expected = np.clip(t - 1 + 2 * np.arange(-4, 4), 0, n - 1) + 1
            assert _stamps(item['inputs']) == expected.tolist()
            assert _stamps(item['inputs'])[4] == t
            # pixel boxes of that frame (DecordDecode scales them)
            want = sorted(tube[tube[:, 0] == t][0, 1:].tolist()
                          for tubes in gt['gttubes'][video].values()
                          for tube in tubes)
            got = sample.gt_instances.bboxes.numpy()
            np.testing.assert_allclose(sorted(got.tolist()), want, atol=1e-3)
            (label, _), = gt['gttubes'][video].items()
            assert (sample.gt_instances.labels.argmax(1) == label).all()
            np.testing.assert_allclose(
                sorted(sample.proposals.bboxes.numpy().tolist()),
                want,
                atol=1e-3)
            seen.add((video, t))
        assert {(v, 1) for v in gt['test_videos'][0]} <= seen
        # the pitfall: SampleAVAFrames adds start_index twice, so the
        # AVA setting start_index=1 centres 2 frames late
        ds = _dataset(synthetic, 'val', test_mode=True, start_index=1)
        idx = next(
            i for i in range(len(ds))
            if 2 <= ds.get_data_info(i)['timestamp'] <= 10)
        item = ds[idx]
        assert _stamps(item['inputs'])[4] == item['data_samples'].timestamp + 2
        # train mode: random offsets of up to -1 frame around the centre
        ds = _dataset(synthetic, 'train', test_mode=False)
        for idx in range(0, len(ds), 7):
            item = ds[idx]
            centre = _stamps(item['inputs'])[4]
            assert item['data_samples'].timestamp - centre in (0, 1)


def test_multisports_metric_perfect_predictions(synthetic):
    from mmaction.evaluation import MultiSportsMetric
    paths = synthetic['report']['paths']
    by_frame = defaultdict(list)
    for row in _read_csv(paths['val']):
        by_frame[(row[0], int(row[1]))].append(
            ([float(v) for v in row[2:6]], int(row[6])))

    def evaluate(shift):
        preds = []
        for (video_id, t), boxes in by_frame.items():
            if (video_id, t + shift) not in by_frame:
                continue
            scores = torch.zeros(len(boxes), NUM_CLASSES)
            scores[torch.arange(len(boxes)), [b[1] for b in boxes]] = 1
            preds.append(
                dict(
                    video_id=video_id,
                    timestamp=t + shift,
                    pred_instances=dict(
                        bboxes=torch.tensor([b[0] for b in boxes]),
                        scores=scores)))
        metric = MultiSportsMetric(ann_file=paths['gt'], verbose=False)
        metric.process([], preds)
        return metric.evaluate(len(preds))

    result = evaluate(0)
    assert result['mAP/frameAP'] == 100.0  # percent
    assert {'mAP/v_map@0.2', 'mAP/v_map@0.5'} <= set(result)
    # boxes one frame late are worse: the metric reads 1-based timestamps
    assert evaluate(1)['mAP/frameAP'] < 100.0


def test_convert_reports_bad_input(synthetic, tmp_path):
    src = tmp_path / 'release'
    shutil.copytree(synthetic['src']['frames_dir'], src / 'Frames')
    gt = load_jhmdb_gt(synthetic['src']['gt_file'])
    test = gt['test_videos'][0]
    shutil.rmtree(src / 'Frames' / test[0])  # missing folder
    os.remove(src / 'Frames' / test[1] / '00003.png')  # missing frame
    gt['nframes'][test[2]] += 1  # count mismatch
    tube = next(iter(gt['gttubes'][test[3]].values()))[0]
    tube[0, 3] = SIZE[1] + 7  # box leaves the image
    tube[1, 1:] = (-9, -9, -1, -1)  # empty inside the image
    label, tubes = next(iter(gt['gttubes'][test[4]].items()))
    tubes[0] = np.concatenate([tubes[0], [[99, 1, 1, 9, 9]]]).astype('f4')
    with open(src / 'gt.pkl', 'wb') as f:
        pickle.dump(gt, f, protocol=2)
    props = {}  # user proposals in pixels, some outside the image
    for key in test[3:]:
        for frame in range(1, gt['nframes'][key] + 1):
            props[f'{key},{frame:04d}'] = np.array(
                [[-4, 2, 50, 60, 0.95], [10, 10, 40, 40, 0.3]], np.float32)
    with open(src / 'props.pkl', 'wb') as f:
        pickle.dump(props, f, protocol=2)
    report = convert_jhmdb(
        str(src / 'gt.pkl'),
        str(src / 'Frames'),
        str(tmp_path / 'out'),
        proposals=str(src / 'props.pkl'),
        proposals_pixels=True,
        log=None)
    skipped = report['skipped']
    assert set(skipped) == set(test[:3])
    assert 'missing frame folder' in skipped[test[0]]
    assert 'frame count mismatch' in skipped[test[1]]
    assert '00003.png' in skipped[test[1]]
    assert 'nframes=' in skipped[test[2]]
    assert report['boxes_clipped'] == 1 and report['rows_empty_box'] == 1
    assert report['rows_outside_video'] == 1
    assert report['counts']['val']['videos'] == len(test) - 3
    # the first-frame proposals reach x=-4: one box per frame clipped
    assert report['proposals_clipped'] == report['counts']['val']['frames']
    assert report['proposals_missing']['val'] == 0
    assert report['proposals_missing']['train'] > 0
    with open(report['paths']['gt'], 'rb') as f:
        out_gt = pickle.load(f)
    assert out_gt['test_videos'] == [test[3:]]
    assert set(out_gt['nframes']) == set(test[3:]) | set(gt['train_videos'][0])
    kept = out_gt['gttubes'][test[4]][label][0]
    assert kept[:, 0].max() == gt['nframes'][test[4]]
    with open(report['paths']['proposals_val'], 'rb') as f:
        arr = next(iter(pickle.load(f).values()))
    np.testing.assert_allclose(
        arr, [[0, 2 / 64, 50 / 96, 60 / 64, 0.95],
              [10 / 96, 10 / 64, 40 / 96, 40 / 64, 0.3]],
        atol=1e-6)
    with pytest.raises(ValueError, match='look like pixels'):
        convert_jhmdb(
            str(src / 'gt.pkl'),
            str(src / 'Frames'),
            str(tmp_path / 'out2'),
            proposals=str(src / 'props.pkl'),
            log=None)


def _tool(name):
    path = osp.join(ROOT, 'tools', 'data', 'jhmdb', f'{name}.py')
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tools(tmp_path, capsys):
    gen = _tool('generate_synthetic_jhmdb')
    assert gen.main([
        str(tmp_path), '--videos-per-class', '3', '--frames', '8', '10',
        '--size', '48', '64'
    ]) == 0
    assert 'JHMDB-GT.pkl' in capsys.readouterr().out
    conv = _tool('convert_jhmdb')
    assert conv.main([
        str(tmp_path / 'JHMDB-GT.pkl'),
        str(tmp_path / 'Frames'),
        str(tmp_path), '--split', '3'
    ]) == 0
    out = capsys.readouterr().out
    assert 'GROUND-TRUTH' in out and '0 skipped' in out
    assert osp.isfile(tmp_path / 'annotations' / 'jhmdb_split3_GT.pkl')
    with pytest.raises(SystemExit):
        conv.main([str(tmp_path / 'JHMDB-GT.pkl'), 'nope', str(tmp_path)])
    assert 'frames_dir' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gen.main([str(tmp_path / 'g'), '--videos-per-class', '2'])
    assert 'videos_per_class' in capsys.readouterr().err
