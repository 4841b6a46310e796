# Copyright (c) varedd_mm contributors. All rights reserved.
"""The embedded synthetic segmentation dataset: ADE20K layout and labels,
read by mmseg's own ``ADE20KDataset`` into labels 0..K-1 and 255."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from varedd_mm.datasets.synthetic_segmentation import (ADE20K_INDEX,
                                                       SEG_CLASSES, UNLABELED,
                                                       ade20k_values, generate,
                                                       render_image)

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
K = len(SEG_CLASSES)


def _read(path):
    return np.array(Image.open(path))


@pytest.fixture(scope='module')
def dataset_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp('synthetic_seg')
    generate(str(root), num_train=12, num_val=6, size=64, seed=0)
    return root


def test_classes_are_ade20k_classes():
    from mmseg.datasets import ADE20KDataset
    ade = ADE20KDataset.METAINFO['classes']
    assert len(SEG_CLASSES) == 8 == len(set(SEG_CLASSES))
    for name in SEG_CLASSES:
        assert ade[ADE20K_INDEX[name]] == name
    assert ade20k_values() == {
        name: ade.index(name) + 1
        for name in SEG_CLASSES
    }


def test_render_image_is_deterministic():
    img_a, lbl_a = render_image(np.random.default_rng(3), 64)
    img_b, lbl_b = render_image(np.random.default_rng(3), 64)
    img_c, lbl_c = render_image(np.random.default_rng(4), 64)
    assert img_a.shape == (64, 64, 3) and img_a.dtype == np.uint8
    assert lbl_a.shape == (64, 64) and lbl_a.dtype == np.uint8
    assert lbl_a.tobytes() == lbl_b.tobytes()
    assert img_a.tobytes() == img_b.tobytes()
    assert lbl_a.tobytes() != lbl_c.tobytes()


def test_generate_is_deterministic(tmp_path):
    for name, seed in (('a', 1), ('b', 1), ('c', 2)):
        generate(str(tmp_path / name), 2, 1, seed=seed)

    def png(name):
        with open(
                tmp_path / name / 'annotations' / 'validation' /
                'synth_000001.png', 'rb') as f:
            return f.read()

    assert png('a') == png('b')
    assert png('a') != png('c')


def test_layout_counts_and_formats(tmp_path):
    paths = generate(str(tmp_path), num_train=5, num_val=3, size=48)
    for split, count in (('training', 5), ('validation', 3)):
        imgs = sorted(os.listdir(tmp_path / 'images' / split))
        anns = sorted(os.listdir(tmp_path / 'annotations' / split))
        assert len(imgs) == len(anns) == count
        assert imgs[0] == 'synth_000001.jpg'
        assert [f[:-4] for f in imgs] == [f[:-4] for f in anns]
        assert all(f.endswith('.jpg') for f in imgs)
        assert all(f.endswith('.png') for f in anns)
        img = Image.open(tmp_path / 'images' / split / imgs[0])
        ann = Image.open(tmp_path / 'annotations' / split / anns[0])
        assert (img.format, img.mode, img.size) == ('JPEG', 'RGB', (48, 48))
        assert (ann.format, ann.mode, ann.size) == ('PNG', 'L', (48, 48))
    assert paths == {
        'train_img': str(tmp_path / 'images' / 'training'),
        'train_ann': str(tmp_path / 'annotations' / 'training'),
        'val_img': str(tmp_path / 'images' / 'validation'),
        'val_ann': str(tmp_path / 'annotations' / 'validation'),
    }
    # regenerating with fewer images leaves no stale ones behind
    generate(str(tmp_path), num_train=2, num_val=1, size=48)
    assert len(os.listdir(tmp_path / 'images' / 'training')) == 2
    assert len(os.listdir(tmp_path / 'annotations' / 'validation')) == 1


def test_annotation_values_and_class_coverage(dataset_dir):
    allowed = {UNLABELED} | set(ade20k_values().values())
    seen = set()
    unlabeled = []
    for split in ('training', 'validation'):
        folder = dataset_dir / 'annotations' / split
        for name in sorted(os.listdir(folder)):
            ann = _read(folder / name)
            values = set(np.unique(ann).tolist())
            assert values <= allowed, values - allowed
            seen |= values
            unlabeled.append((ann == UNLABELED).mean())
    assert seen == allowed  # every class (and the ignored 0) occurs
    # a thin unlabeled band, not whole regions
    assert 0.02 < np.mean(unlabeled) < 0.2


def test_classes_differ_by_texture_not_colour():
    """Vertical and horizontal stripes (``curtain`` / ``blind``) differ by
    gradient direction while their pixel colours overlap, so the model must
    use texture, not colour alone."""
    values = ade20k_values()
    rng = np.random.default_rng(0)
    ratios = {'curtain': [], 'blind': []}
    hists = {name: np.zeros(64) for name in ratios}
    for _ in range(60):
        img, lbl = render_image(rng, 64)
        grey = img.astype(float).mean(-1)
        dx = np.abs(np.diff(grey, axis=1))[:-1]
        dy = np.abs(np.diff(grey, axis=0))[:, :-1]
        bins = (img // 64).astype(int) @ np.array([16, 4, 1])
        for name in ratios:
            inside = lbl == values[name]
            if inside.sum() > 50:
                ratios[name].append(dx[inside[:-1, :-1]].mean() /
                                    dy[inside[:-1, :-1]].mean())
            hists[name] += np.bincount(bins[inside], minlength=64)
    # vertical stripes: intensity changes along x; horizontal: along y
    assert np.median(ratios['curtain']) > 2
    assert np.median(ratios['blind']) < 0.5
    overlap = np.minimum(*(h / h.sum() for h in hists.values())).sum()
    assert overlap > 0.4, overlap


def test_mmseg_ade20k_dataset_maps_labels(dataset_dir):
    import mmseg.datasets  # noqa: F401  (registers datasets)
    import mmseg.datasets.transforms  # noqa: F401  (registers transforms)
    from mmengine.registry import DefaultScope
    from mmseg.registry import DATASETS

    cfg = dict(
        type='ADE20KDataset',
        data_root=str(dataset_dir),
        data_prefix=dict(
            img_path='images/validation',
            seg_map_path='annotations/validation'),
        metainfo=dict(classes=SEG_CLASSES),
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='LoadAnnotations', reduce_zero_label=True),
            dict(type='PackSegInputs')
        ])
    with DefaultScope.overwrite_default_scope('mmseg'):
        ds = DATASETS.build(cfg)
        samples = [ds[i] for i in range(len(ds))]
    assert len(ds) == 6
    assert tuple(ds.metainfo['classes']) == SEG_CLASSES
    assert len(ds.metainfo['palette']) == K
    # BaseSegDataset.get_label_map: ADE20K index (after reduce_zero_label)
    # -> position in SEG_CLASSES, every other ADE20K class -> 255
    label_map = ds.metainfo['label_map']
    assert {
        k: v
        for k, v in label_map.items() if v != 255
    } == {
        ADE20K_INDEX[name]: i
        for i, name in enumerate(SEG_CLASSES)
    }
    lut = np.full(256, 255, dtype=np.int64)  # 0 (unlabeled) -> 255
    for i, name in enumerate(SEG_CLASSES):
        lut[ade20k_values()[name]] = i
    seen = set()
    for i, sample in enumerate(samples):
        gt = sample['data_samples'].gt_sem_seg.data.numpy()
        assert gt.shape == (1, 64, 64)
        seen |= set(np.unique(gt).tolist())
        img_path = sample['data_samples'].img_path
        stem = osp.splitext(osp.basename(img_path))[0]
        ann = _read(dataset_dir / 'annotations' / 'validation' / f'{stem}.png')
        np.testing.assert_array_equal(gt[0], lut[ann])  # pixel for pixel
        assert tuple(sample['inputs'].shape) == (3, 64, 64)
    assert seen <= set(range(K)) | {255}
    assert {0, 255} <= seen and len(seen) > 4


@pytest.mark.parametrize('kwargs,match', [
    (dict(size=16), r'size must be an int >= 32 \(pixels\), got 16'),
    (dict(size=64.0), 'size must be an int >= 32'),
    (dict(num_train=0), r'num_train must be a positive int \(>= 1\), got 0'),
    (dict(num_val=-1), r'num_val must be a positive int \(>= 1\), got -1'),
    (dict(num_val=2.5), 'num_val must be a positive int'),
    (dict(seed=-1), 'seed must be a non-negative int'),
])
def test_generate_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        generate(str(tmp_path / 'out'), **kwargs)
    assert not (tmp_path / 'out').exists()  # nothing written


def test_render_image_rejects_small_size():
    with pytest.raises(ValueError, match='size must be an int >= 32'):
        render_image(np.random.default_rng(0), 31)


def test_cli(tmp_path):
    cmd = [
        sys.executable, 'tools/data/generate_synthetic_segmentation.py',
        str(tmp_path), '--num-train', '3', '--num-val', '2', '--size', '32'
    ]
    out = subprocess.run(
        cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert '3 train + 2 val images of 32x32' in out.stdout
    assert 'curtain=19' in out.stdout
    assert len(os.listdir(tmp_path / 'images' / 'training')) == 3
    assert len(os.listdir(tmp_path / 'annotations' / 'validation')) == 2
