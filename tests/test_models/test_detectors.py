# Copyright (c) varedd_mm contributors. All rights reserved.
"""``VARED2FastRCNN``: the spatio-temporal detector of mmaction's AVA /
MultiSports recipes (mmdet's FastRCNN, an mmaction video backbone,
``AVARoIHead`` on precomputed proposals) with a dynamic backbone, built
under the mmdet scope: base equivalence, train and test steps, and BN
recalibration through its inference forward."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmdet.registry import MODELS
from mmengine.config import Config, ConfigDict
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from mmengine.registry import DefaultScope
from mmengine.structures import InstanceData
from torch.nn.modules.batchnorm import _BatchNorm

from varedd_mm import dynamic_layers, fixed_policy
from varedd_mm.engine import VARED2RecalibrateBNHook

NUM_CLASSES = 4
MODEL_BASES = 'configs/_base_/models/'


def _cfg(dynamic: bool) -> ConfigDict:
    """The model-zoo detector (mmaction's AVA recipe, as the Table 8
    configs use it) at a test size: SlowOnly with ResNet-18 blocks and 16
    base channels, 4 classes, 8 sampled RoIs."""
    name = 'vared2_fastrcnn_slowonly_r50.py' if dynamic else \
        'fastrcnn_slowonly_r50.py'
    cfg = Config.fromfile(MODEL_BASES + name).model
    cfg.backbone.update(depth=18, base_channels=16)
    cfg.roi_head.bbox_roi_extractor.output_size = 4
    cfg.roi_head.bbox_head.update(
        in_channels=128, num_classes=NUM_CLASSES, topk=(1, 3))
    cfg.train_cfg.rcnn.sampler.num = 8
    return cfg


@pytest.fixture(autouse=True)
def _mmdet_scope():
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield


def _detector(dynamic=True, **model_keys):
    cfg = _cfg(dynamic)
    cfg.update(model_keys)
    model = MODELS.build(cfg)
    model.init_weights()
    return model


def _batch(n=2, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs, samples = [], []
    for i in range(n):
        inputs.append(
            torch.randint(0, 255, (3, 4, size, size),
                          generator=g).to(torch.uint8))
        s = ActionDataSample()
        s.set_metainfo(dict(img_shape=(size, size), img_key=f'v{i},0001'))
        label = torch.zeros(2, NUM_CLASSES)
        label[0, i % NUM_CLASSES] = 1.0
        label[1, (i + 1) % NUM_CLASSES] = 1.0
        s.gt_instances = InstanceData(
            bboxes=torch.tensor([[4., 4., 30., 40.], [20., 10., 60., 60.]]),
            labels=label)
        s.proposals = InstanceData(
            bboxes=torch.tensor([[5., 4., 31., 40.], [20., 12., 60., 60.],
                                 [0., 0., 20., 20.]]))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def test_full_choice_is_the_base_detector():
    base = _detector(dynamic=False)
    dyn = _detector()
    missing, unexpected = dyn.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and missing
    assert all(k.startswith('backbone.') for k in missing)
    base.eval()
    dyn.eval()
    batch = _batch(n=1)
    with torch.no_grad(), fixed_policy(dyn, 0, 0):
        out = dyn.test_step(copy.deepcopy(batch))[0]
    with torch.no_grad():
        ref = base.test_step(copy.deepcopy(batch))[0]
    assert torch.equal(out.pred_instances.scores, ref.pred_instances.scores)
    assert out.vared2_gflops.shape == (1, )
    assert out.vared2_gflops[0].item() == pytest.approx(
        out.vared2_base_gflops, rel=1e-9)


def test_train_step_adds_the_efficiency_terms():
    model = _detector()
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log = model.train_step(_batch(), optim)
    parts = [k for k in log if k.startswith('loss_')]
    assert 'loss_eff' in parts and 'loss_action_cls' in parts
    for key in ('eff_ratio_expected', 'eff_ratio_realised'):
        assert key in log, key
    log = {k: float(v) for k, v in log.items()}
    assert log['loss'] == pytest.approx(sum(log[k] for k in parts), rel=1e-5)


@pytest.mark.parametrize('smallest_weight', [0.0, 2.0])
def test_full_choice_loss_adds_the_plain_detector_losses(smallest_weight):
    from mmdet.models.detectors import FastRCNN

    from varedd_mm import smallest_policy
    model = _detector(
        full_choice_loss=dict(
            loss_weight=0.5, smallest_weight=smallest_weight))
    model.train()
    forced = copy.deepcopy(model)
    # the loss takes the proposals out of the samples: a batch each (and
    # each of the model's extra forwards must get its own copies)
    full_data, small_data, data = (
        model.data_preprocessor(_batch(), True) for _ in range(3))
    refs = {}
    for prefix, policy, batch in (('full', lambda: fixed_policy(forced, 0, 0),
                                   full_data),
                                  ('smallest', lambda: smallest_policy(forced),
                                   small_data)):
        torch.manual_seed(0)  # the same RoI sampling in all
        with policy():
            refs[prefix] = FastRCNN.loss(forced, *batch.values())
    torch.manual_seed(0)
    out = model.loss(*data.values())
    ends = dict(full=0.5, smallest=smallest_weight)
    for prefix, weight in ends.items():
        ref = refs[prefix]
        got = sorted(k for k in out if k.startswith(f'{prefix}_'))
        if not weight:
            assert not got
            continue
        losses = [k for k in ref if 'loss' in k]
        assert losses and sorted(f'{prefix}_{k}' for k in ref) == got
        for key in losses:
            torch.testing.assert_close(
                out[f'{prefix}_{key}'], weight * ref[key], rtol=0, atol=0)
    if smallest_weight:  # the two ends are different networks
        assert not torch.equal(refs['full']['loss_action_cls'],
                               refs['smallest']['loss_action_cls'])
    assert float(out['eff_ratio_realised']) < 1.0  # the training forward's
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    log = {k: float(v) for k, v in model.train_step(_batch(), optim).items()}
    parts = [
        k for k in log
        if k.startswith(('loss_', 'full_loss_', 'smallest_loss_'))
    ]
    assert 'full_loss_action_cls' in parts
    assert ('smallest_loss_action_cls' in parts) == bool(smallest_weight)
    assert log['loss'] == pytest.approx(sum(log[k] for k in parts), rel=1e-5)


def test_test_step_records_each_clips_cost():
    model = _detector()
    model.eval()
    for _, m in dynamic_layers(model):
        with torch.no_grad():
            m.gate.fc2.bias[1] = 5.0  # every gate takes the reduced time
    with torch.no_grad():
        pred = model.test_step(_batch(n=1))[0]
    assert pred.pred_instances.scores.shape[0] == 3  # one row per proposal
    assert pred.vared2_choices.shape == (len(model.vared2_layer_names), 1, 2)
    assert (pred.vared2_choices[:, 0, 0] == 1).all()
    assert pred.vared2_gflops[0] < 0.8 * pred.vared2_base_gflops


def test_recalibration_runs_every_clip_of_a_training_batch():
    """``AVARoIHead.predict`` takes one clip per batch; the detector's own
    inference forward runs the whole training batch (backbone and RoI
    head), so every backbone BN is re-estimated."""
    model = _detector()
    for m in model.modules():
        if isinstance(m, _BatchNorm):
            m.num_batches_tracked.fill_(7)
    model.train()
    calls = []
    handle = model.roi_head.bbox_head.register_forward_hook(
        lambda mod, args, out: calls.append(out.shape[0]))
    runner = SimpleNamespace(
        model=model,
        train_dataloader=[_batch(n=2, seed=1)],
        logger=MMLogger.get_instance('test_det_recalibration'))
    VARED2RecalibrateBNHook(num_batches=1).recalibrate(runner)
    handle.remove()
    assert calls == [6]  # 3 proposals x 2 clips through the box head
    bns = [m for m in model.backbone.modules() if isinstance(m, _BatchNorm)]
    assert bns and all(bn.num_batches_tracked.item() == 1 for bn in bns)


@pytest.mark.parametrize('choice', [(0, 0), (1, 1)])
def test_realised_gflops_match_mmengine_counter(choice):
    """Backbone, RoI extraction and box head on one clip and one box (what
    ``tools/analysis/benchmark.py`` and ``get_flops.py`` run)."""
    from mmengine.analysis import get_model_complexity_info

    from varedd_mm import clip_gflops, track_flops
    from varedd_mm.analysis import as_network
    net, dims = as_network(_detector())
    assert dims == 3
    net.eval()
    track_flops(net)
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad(), fixed_policy(net, *choice):
        ref = get_model_complexity_info(
            net, inputs=(x, ), show_table=False,
            show_arch=False)['flops'] / 1e9
        scores = net(x)
        ours = clip_gflops(net).item()
    assert scores.shape == (1, NUM_CLASSES)
    assert ours == pytest.approx(ref, rel=0.01)
