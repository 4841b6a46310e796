# Copyright (c) varedd_mm contributors. All rights reserved.
"""VA-RED² in mmseg: the dynamic dilated ResNets (base equivalence, FLOPs,
placement, errors) and ``VARED2EncoderDecoder`` (train and test steps, BN
recalibration of the heads)."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmengine.analysis import get_model_complexity_info
from mmengine.config import ConfigDict
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.structures import PixelData
from mmseg.registry import MODELS
from mmseg.structures import SegDataSample
from torch.nn.modules.batchnorm import _BatchNorm

from varedd_mm import (VARED2Conv2d, clip_gflops, dynamic_layers, fixed_policy,
                       track_flops)
from varedd_mm.engine import VARED2RecalibrateBNHook
from varedd_mm.evaluation import VARED2EfficiencyMetric
from varedd_mm.ops.dynamic_base import DYNAMIC_PREFIXES

R18_D8 = dict(depth=18, dilations=(1, 1, 2, 4), strides=(1, 2, 1, 1))
R18 = dict(depth=18)

NORM = dict(type='BN', requires_grad=True)
PSPNET_R18_D8 = dict(
    type='VARED2EncoderDecoder',
    efficiency_loss=dict(type='EfficiencyLoss', loss_weight=0.5),
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=255,
        size=(64, 64)),
    backbone=dict(
        type='VARED2ResNetV1c',
        norm_cfg=NORM,
        contract_dilation=True,
        dynamic_cfg=dict(search_space=2),
        **R18_D8),
    decode_head=dict(
        type='PSPHead',
        in_channels=512,
        in_index=3,
        channels=128,
        pool_scales=(1, 2, 3, 6),
        dropout_ratio=0.1,
        num_classes=5,
        norm_cfg=NORM,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=1.0)),
    auxiliary_head=dict(
        type='FCNHead',
        in_channels=256,
        in_index=2,
        channels=64,
        num_convs=1,
        concat_input=False,
        dropout_ratio=0.1,
        num_classes=5,
        norm_cfg=NORM,
        align_corners=False,
        loss_decode=dict(type='CrossEntropyLoss', loss_weight=0.4)),
    train_cfg=dict(),
    test_cfg=ConfigDict(mode='whole'))


@pytest.fixture(autouse=True)
def _mmseg_scope():
    with DefaultScope.overwrite_default_scope('mmseg'):
        yield


def _backbone(kind, **kwargs):
    cfg = dict(type=kind, contract_dilation=True, **kwargs)
    return MODELS.build(cfg)


@pytest.mark.parametrize('arch', [R18, R18_D8], ids=['plain', 'd8'])
@pytest.mark.parametrize('kind', ['ResNetV1c', 'ResNetV1d', 'ResNet'])
def test_full_choice_is_the_mmseg_backbone_bit_for_bit(arch, kind):
    base = _backbone(kind, **arch)
    base.init_weights()
    dyn = _backbone('VARED2' + kind, **arch)
    missing, unexpected = dyn.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected
    names = dyn.dynamic_report['dynamic']
    assert sorted(missing) == sorted(
        f'{n}.{k}' for n in names for k in dyn.get_submodule(n).state_dict()
        if k.startswith(DYNAMIC_PREFIXES))
    stem = [n for n in names if not n.startswith('layer')]
    assert stem == (['conv1']
                    if kind == 'ResNet' else ['stem.0', 'stem.3', 'stem.6'])
    assert len(names) == len(stem) + 16  # every block conv, no shortcut
    assert all(isinstance(dyn.get_submodule(n), VARED2Conv2d) for n in names)
    base.eval()
    dyn.eval()
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad(), fixed_policy(dyn, channel=0):
        outs = dyn(x)
    with torch.no_grad():
        refs = base(x)
    assert all(torch.equal(o, r) for o, r in zip(outs, refs))


def test_dilated_convs_and_deep_stem_take_the_reduced_choice():
    dyn = _backbone('VARED2ResNetV1c', **R18_D8)
    dyn.eval()  # mmseg's ResNet.train() returns None: no chaining
    dilations = {
        dyn.get_submodule(n).dilation
        for n in dyn.dynamic_report['dynamic']
    }
    assert {(1, 1), (2, 2), (4, 4)} <= dilations
    x = torch.randn(1, 3, 48, 48)
    with torch.no_grad():
        with fixed_policy(dyn, channel=0):
            full = dyn(x)
        with fixed_policy(dyn, channel=1):
            half = dyn(x)
    assert [o.shape for o in half] == [o.shape for o in full]
    for _, m in dynamic_layers(dyn):
        assert m.last_choice.tolist() == [[0, 1]]


class _Features(torch.nn.Module):
    """A backbone as a function of images (what FLOPs counters see)."""

    def __init__(self, backbone):
        super().__init__()
        self.backbone = backbone

    def forward(self, x):
        return self.backbone(x)[-1]


@pytest.mark.parametrize('channel', [0, 1])
def test_realised_gflops_match_mmengine_counter(channel):
    model = _Features(_backbone('VARED2ResNetV1c', **R18_D8))
    model.eval()
    track_flops(model)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), fixed_policy(model, channel=channel):
        ref = get_model_complexity_info(
            model, inputs=(x, ), show_table=False,
            show_arch=False)['flops'] / 1e9
        model(x)
        ours = clip_gflops(model).item()
    assert ours == pytest.approx(ref, rel=0.01)
    if channel:  # the half-channel choice: at most 0.55 of the base
        with torch.no_grad(), fixed_policy(model, channel=0):
            model(x)
            full = clip_gflops(model).item()
        assert ours <= 0.55 * full


@pytest.mark.parametrize('cfg,match', [
    (dict(dims=('temporal', 'channel')),
     r"dynamic_cfg.dims of a 2D VARED2ResNetV1c may only hold 'channel'"),
    (dict(dims='temporal'), r'dynamic_cfg.dims of a 2D'),
    (dict(conv5=True), r"unknown key\(s\) \['conv5'\]"),
    (dict(stages=(5, )), r'dynamic_cfg.stages must be a non-empty subset '
     r'of \(1, 2, 3, 4\)'),
    (dict(search_space='2'), r'dynamic_cfg.search_space must be one of'),
])
def test_backbone_dynamic_cfg_errors(cfg, match):
    with pytest.raises(ValueError, match=match):
        _backbone('VARED2ResNetV1c', dynamic_cfg=cfg, **R18_D8)


def test_placement_keys():
    names = _backbone(
        'VARED2ResNetV1c',
        dynamic_cfg=dict(stem=False, stages=(3, 4), downsample=True),
        **R18_D8).dynamic_report['dynamic']
    assert names and all(n.startswith(('layer3', 'layer4')) for n in names)
    assert 'layer3.0.downsample.0' in names


def _segmentor(**kwargs):
    cfg = copy.deepcopy(PSPNET_R18_D8)
    cfg.update(kwargs)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _batch(n=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for _ in range(n):
        inputs.append(
            torch.randint(0, 255, (3, size, size),
                          generator=g).to(torch.uint8))
        s = SegDataSample()
        label = torch.randint(0, 5, (1, size, size), generator=g)
        s.gt_sem_seg = PixelData(data=label)
        s.set_metainfo(
            dict(
                img_shape=(size, size),
                ori_shape=(size, size),
                pad_shape=(size, size),
                padding_size=[0, 0, 0, 0]))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_train_step_adds_the_efficiency_terms():
    model = _segmentor()
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log = model.train_step(_batch(), optim)
    parts = ['decode.loss_ce', 'aux.loss_ce', 'loss_eff']
    for key in parts + ['eff_ratio_expected', 'eff_ratio_realised']:
        assert key in log, key
    log = {k: float(v) for k, v in log.items()}
    assert log['loss'] == pytest.approx(sum(log[k] for k in parts), rel=1e-5)
    assert 0 < log['eff_ratio_expected'] <= 1.0 + 1e-3


def test_full_choice_loss_adds_the_plain_segmentor_losses():
    from mmseg.models import EncoderDecoder
    model = _segmentor(full_choice_loss=dict(loss_weight=1.5))
    model.train()
    data = model.data_preprocessor(_batch(), True)
    torch.manual_seed(0)
    with fixed_policy(model, 0, 0):
        ref = EncoderDecoder.loss(model, **data)
    torch.manual_seed(0)
    out = model.loss(**data)
    for key in ('decode.loss_ce', 'aux.loss_ce'):
        torch.testing.assert_close(
            out[f'full_{key}'], 1.5 * ref[key], rtol=0, atol=0)
        assert not torch.equal(out[key], ref[key])  # learned gates reduce
    torch.testing.assert_close(out['full_decode.acc_seg'],
                               ref['decode.acc_seg'])
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    log = {k: float(v) for k, v in model.train_step(_batch(), optim).items()}
    parts = [k for k in log if 'loss_' in k]
    assert sorted(parts) == [
        'aux.loss_ce', 'decode.loss_ce', 'full_aux.loss_ce',
        'full_decode.loss_ce', 'loss_eff'
    ]
    assert log['loss'] == pytest.approx(sum(log[k] for k in parts), rel=1e-5)


def test_policy_rank_is_refused_without_a_per_image_loss():
    with pytest.raises(ValueError, match='policy_rank needs the task loss'):
        _segmentor(policy_rank=dict())


@pytest.mark.parametrize('mode', ['whole', 'slide'])
def test_test_step_costs_every_forward_of_each_image(mode, tmp_path):
    test_cfg = ConfigDict(mode='whole') if mode == 'whole' else ConfigDict(
        mode='slide', crop_size=(48, 48), stride=(32, 32))
    model = _segmentor(test_cfg=test_cfg)
    model.eval()
    windows = 1 if mode == 'whole' else 4  # 2 x 2 windows on 64 x 64
    for _, m in dynamic_layers(model):  # images choose differently
        with torch.no_grad():
            m.gate.fc2.weight.normal_(std=5.0)
    batch = _batch(n=3)
    with torch.no_grad():
        preds = model.test_step(batch)
    assert len(preds) == 3 and preds[0].pred_sem_seg.shape == (64, 64)
    layers = model.vared2_layer_names
    for p in preds:
        assert p.vared2_gflops.shape == (windows, )
        assert p.vared2_choices.shape == (len(layers), windows, 2)
        assert (p.vared2_gflops <= p.vared2_base_gflops * 1.001).all()
    # each window of each image on its own gives the cost recorded for it
    data = model.data_preprocessor(batch, False)
    crop = 48 if mode == 'slide' else 64
    i, (y, x) = 1, ((16, 16) if mode == 'slide' else (0, 0))
    with torch.no_grad():  # the network part of one window, one image
        model(
            data['inputs'][i:i + 1, :, y:y + crop, x:x + crop], mode='tensor')
    alone = clip_gflops(model)[0].item()
    assert alone == pytest.approx(preds[i].vared2_gflops[-1].item(), rel=1e-9)
    metric = VARED2EfficiencyMetric(
        row_name='window',
        sample_name='image',
        out_file=str(tmp_path / 'eff.json'))
    metric.process(batch, [p.to_dict() for p in preds])
    out = metric.compute_metrics(metric.results)
    per_image = torch.stack([p.vared2_gflops.sum() for p in preds])
    assert out['gflops_per_image'] == pytest.approx(per_image.mean().item())
    assert out['gflops_per_window'] == pytest.approx(per_image.mean().item() /
                                                     windows)
    assert 'base_gflops_per_window' in out


def test_recalibration_covers_the_decode_head_not_the_aux_head():
    model = _segmentor()
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.num_batches_tracked.fill_(5)
    before = {
        n: m.running_mean.clone()
        for n, m in model.named_modules() if isinstance(m, _BatchNorm)
    }
    model.train()
    runner = SimpleNamespace(
        model=model,
        train_dataloader=[_batch(seed=1), _batch(seed=2)],
        logger=MMLogger.get_instance('test_seg_recalibration'))
    VARED2RecalibrateBNHook(num_batches=2).recalibrate(runner)
    after = {
        n: m
        for n, m in model.named_modules() if isinstance(m, _BatchNorm)
    }
    for name, bn in after.items():
        updated = not torch.equal(bn.running_mean, before[name])
        if name.startswith('auxiliary_head.'):  # training only
            assert not updated and bn.num_batches_tracked.item() == 5, name
        else:
            assert updated and bn.num_batches_tracked.item() == 2, name
    assert any(n.startswith('decode_head.') for n in after)


def test_decode_head_convs_can_be_dynamic_too():
    """Off by default (the paper makes the backbone dynamic); a head's
    ``conv_cfg`` turns its ConvModules into dynamic convs, exact at the
    full choice."""
    conv_cfg = dict(type='VARED2Conv2d', dynamic_cfg=dict(search_space=2))
    model = _segmentor()
    head = _segmentor(
        decode_head=dict(PSPNET_R18_D8['decode_head'], conv_cfg=conv_cfg))
    names = [n for n, _ in dynamic_layers(head)]
    assert not any(
        n.startswith('decode_head.') for n, _ in dynamic_layers(model))
    assert 'decode_head.bottleneck.conv' in names
    assert sum(n.startswith('decode_head.psp_modules.') for n in names) == 4
    head.load_state_dict(model.state_dict(), strict=False)
    model.eval()
    head.eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad(), fixed_policy(
            model, channel=0), fixed_policy(
                head, channel=0):
        assert torch.equal(model(x, mode='tensor'), head(x, mode='tensor'))
    with torch.no_grad(), fixed_policy(head, channel=1):
        head(x, mode='tensor')
    full = head._flops.per_clip_macs().item()
    with torch.no_grad(), fixed_policy(model, channel=1):
        model(x, mode='tensor')
    assert full < model._flops.per_clip_macs().item()
