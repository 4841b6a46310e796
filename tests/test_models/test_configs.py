# Copyright (c) varedd_mm contributors. All rights reserved.
"""Every config in configs/ builds and runs one forward on a tiny input."""
import glob
import os.path as osp

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config

from varedd_mm import dynamic_layers
from varedd_mm.analysis import build_model_from_cfg

ROOT = osp.join(osp.dirname(__file__), '..', '..', 'configs')
CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'recognition', '**', '*.py'), recursive=True))


def test_configs_found():
    assert len(CONFIGS) >= 30


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds_and_runs_forward(path):
    cfg = Config.fromfile(path)
    assert 'varedd_mm' in cfg.custom_imports['imports']
    name = osp.basename(path)
    dynamic = name.startswith('vared2')
    assert (cfg.model.type == 'VARED2Recognizer3D') == dynamic
    if dynamic:
        assert cfg.load_from, 'dynamic configs start from a base checkpoint'
        types = [e['type'] for e in cfg.test_evaluator]
        assert 'VARED2EfficiencyMetric' in types
    # the backbone must not download ImageNet weights in a test
    cfg.model.backbone.pretrained = None
    if 'pretrained2d' in cfg.model.backbone:
        cfg.model.backbone.pretrained2d = False
    model = build_model_from_cfg(cfg).eval()
    assert bool(dynamic_layers(model)) == dynamic
    clip = cfg.test_dataloader.dataset.pipeline[1]['clip_len']
    inputs = torch.randint(0, 255, (1, 1, 3, clip, 32, 32)).float()
    with torch.no_grad():
        out = model(inputs, [ActionDataSample()], mode='predict')
    num_classes = cfg.model.cls_head.num_classes
    assert out[0].pred_score.shape == (num_classes, )
    if dynamic:
        assert out[0].vared2_gflops.shape == (1, )
        assert out[0].vared2_gflops[0] <= out[0].vared2_base_gflops * 1.01


SEG_CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'segmentation', '**', '*.py'), recursive=True))


def test_segmentation_configs_found():
    # Table 11 of the paper (base + VA-RED2) and the two Cityscapes
    # cross-checks (FCN, PSPNet; base + VA-RED2)
    assert len(SEG_CONFIGS) >= 6


@pytest.mark.parametrize(
    'path', SEG_CONFIGS, ids=[osp.relpath(p, ROOT) for p in SEG_CONFIGS])
def test_segmentation_config_builds_and_runs_forward(path):
    from mmseg.structures import SegDataSample
    cfg = Config.fromfile(path)
    assert 'varedd_mm' in cfg.custom_imports['imports']
    assert cfg.default_scope == 'mmseg'
    dynamic = osp.basename(path).startswith('vared2')
    assert (cfg.model.type == 'VARED2EncoderDecoder') == dynamic
    assert cfg.model.backbone.depth == 18
    assert cfg.model.backbone.dilations == (1, 1, 2, 4)
    if dynamic:
        assert cfg.load_from and cfg.model.pretrained is None
        types = [e['type'] for e in cfg.test_evaluator]
        assert types == ['IoUMetric', 'VARED2EfficiencyMetric']
        hooks = [h['type'] for h in cfg.custom_hooks]
        assert hooks == ['VARED2RecalibrateBNHook']
        assert cfg.custom_hooks[0].interval == (
            cfg.default_hooks.checkpoint.interval)
    cfg.model.pretrained = None  # no ImageNet download in a test
    cfg.model.test_cfg = dict(mode='whole')
    model = build_model_from_cfg(cfg)
    model.eval()
    assert bool(dynamic_layers(model)) == dynamic
    sample = SegDataSample()
    sample.set_metainfo(
        dict(img_shape=(64, 64), ori_shape=(64, 64), pad_shape=(64, 64)))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 64, 64), [sample], mode='predict')
    assert out[0].pred_sem_seg.shape == (64, 64)
    assert out[0].seg_logits.data.shape[0] == cfg.model.decode_head.num_classes
    if dynamic:
        assert out[0].vared2_gflops[0] <= out[0].vared2_base_gflops * 1.01


DET_CONFIGS = sorted(
    glob.glob(osp.join(ROOT, 'detection', '**', '*.py'), recursive=True))


def test_detection_configs_found():
    # Table 8 of the paper (base + VA-RED2) and the demo pair
    assert len(DET_CONFIGS) >= 4


@pytest.mark.parametrize(
    'path', DET_CONFIGS, ids=[osp.relpath(p, ROOT) for p in DET_CONFIGS])
def test_detection_config_builds_and_runs_forward(path):
    from mmengine.structures import InstanceData
    cfg = Config.fromfile(path)
    assert 'varedd_mm' in cfg.custom_imports['imports']
    assert cfg.model['_scope_'] == 'mmdet'
    dataset = cfg.train_dataloader.dataset
    # the settings the J-HMDB converter was verified with
    assert (dataset.timestamp_start, dataset.start_index, dataset.use_frames,
            dataset.fps) == (1, 0, False, 1)
    assert cfg.val_dataloader.batch_size == 1  # AVARoIHead.predict
    dynamic = osp.basename(path).startswith('vared2')
    assert (cfg.model.type == 'VARED2FastRCNN') == dynamic
    evaluators = cfg.test_evaluator if isinstance(
        cfg.test_evaluator, list) else [cfg.test_evaluator]
    assert evaluators[0]['type'] == 'MultiSportsMetric'
    if dynamic:
        assert cfg.load_from
        assert [e['type'] for e in evaluators
                ] == ['MultiSportsMetric', 'VARED2EfficiencyMetric']
        assert [h['type']
                for h in cfg.custom_hooks] == ['VARED2RecalibrateBNHook']
    cfg.model.init_cfg = None  # no Kinetics download in a test
    model = build_model_from_cfg(cfg)
    model.eval()
    assert bool(dynamic_layers(model)) == dynamic
    sample = ActionDataSample()
    sample.set_metainfo(dict(img_shape=(64, 64)))
    sample.proposals = InstanceData(bboxes=torch.tensor([[8., 8., 40., 60.]]))
    with torch.no_grad():
        out = model(torch.randn(1, 3, 8, 64, 64), [sample], mode='predict')[0]
    num_classes = cfg.model.roi_head.bbox_head.num_classes
    assert out.pred_instances.scores.shape == (1, num_classes)
    if dynamic:
        assert out.vared2_gflops[0] <= out.vared2_base_gflops * 1.01
