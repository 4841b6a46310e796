# Copyright (c) varedd_mm contributors. All rights reserved.
"""BN recalibration of whole recognizers, through the runner hook: the BNs
of the real inference forward (neck and head included) are re-estimated,
frozen and training-only BNs keep their statistics, and a briefly trained
model then behaves in eval mode as in train mode under the same hard
choices."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.optim import OptimWrapper
from torch.nn.modules.batchnorm import _BatchNorm

from varedd_mm import dynamic_layers
from varedd_mm.analysis import build_model_from_cfg
from varedd_mm.engine import VARED2RecalibrateBNHook
from varedd_mm.engine.hooks import inference_forward

TPN_CFG = ('configs/recognition/vared2/'
           'vared2-k2_tpn-slowonly_r50_8xb8-8x8x1-30e_minik200-rgb.py')

# SlowOnly-R18 with 16 base channels (stages 16/32/64/128) and a TPN neck
# sized for it: the structure of the model-zoo TPN-8f at a test size
SMALL_NECK = dict(
    in_channels=(64, 128),
    out_channels=64,
    spatial_modulation_cfg=dict(in_channels=(64, 128), out_channels=128),
    temporal_modulation_cfg=dict(downsample_scales=(8, 8)),
    level_fusion_cfg=dict(
        in_channels=(64, 64),
        mid_channels=(64, 64),
        out_channels=128,
        downsample_scales=((1, 1, 1), (1, 1, 1))),
    aux_head_cfg=dict(out_channels=4, loss_weight=0.5))


def _tpn(norm_eval=False):
    cfg = Config.fromfile(TPN_CFG)
    cfg.model.backbone.update(
        depth=18, base_channels=16, norm_eval=norm_eval, pretrained=None)
    cfg.model.neck.update(copy.deepcopy(SMALL_NECK))
    cfg.model.cls_head.update(num_classes=4, dropout_ratio=0.0)
    model = build_model_from_cfg(cfg)
    model.init_weights()
    return model


def _batch(n=8, size=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [
        torch.randint(0, 255, (1, 3, 8, size, size),
                      generator=g).to(torch.uint8) for _ in range(n)
    ]
    samples = []
    for i in range(n):
        s = ActionDataSample()
        s.set_gt_label(torch.tensor([i % 4]))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def _runner(model, batches):
    return SimpleNamespace(
        model=model,
        train_dataloader=batches,
        logger=MMLogger.get_instance('test_recalibration'))


def _bn_state(module):
    return {
        name: (m.running_mean.clone(), m.running_var.clone(),
               m.num_batches_tracked.clone())
        for name, m in module.named_modules() if isinstance(m, _BatchNorm)
    }


def _scramble(module):
    """Distinctive statistics, so that a reset or an update shows."""
    for m in module.modules():
        if isinstance(m, _BatchNorm):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.num_batches_tracked.fill_(5)


def _scores(model, batch):
    with torch.no_grad():
        preds = model.test_step(batch)
    return torch.stack([p.pred_score for p in preds])


@pytest.mark.parametrize('norm_eval', [False, True])
def test_tpn_neck_bns_are_estimated_frozen_and_aux_bns_kept(norm_eval):
    model = _tpn(norm_eval=norm_eval)
    _scramble(model)
    before = _bn_state(model)
    model.train()
    VARED2RecalibrateBNHook(num_batches=2).recalibrate(
        _runner(model, [_batch(seed=0), _batch(seed=1)]))
    after = _bn_state(model)
    neck_bns = [
        n for n in after
        if n.startswith('neck.') and not n.startswith('neck.aux_head.')
    ]
    aux_bns = [n for n in after if n.startswith('neck.aux_head.')]
    backbone_bns = [n for n in after if n.startswith('backbone.')]
    assert neck_bns and aux_bns and backbone_bns
    for name in neck_bns:  # run at inference: re-estimated on 2 batches
        mean, var, tracked = after[name]
        assert tracked.item() == 2, name
        assert not torch.equal(mean, before[name][0]), name
        assert not torch.equal(var, before[name][1]), name
    for name in aux_bns:  # training-only head: untouched
        assert all(
            torch.equal(a, b) for a, b in zip(after[name], before[name])), name
    for name in backbone_bns:  # frozen by norm_eval: untouched
        same = all(
            torch.equal(a, b) for a, b in zip(after[name], before[name]))
        assert same == norm_eval, name
    assert model.training  # the model's modes are restored


def test_trained_tpn_recognizer_eval_matches_train_mode_hard_policy():
    """Train the small TPN recognizer briefly (gates learn mixed choices),
    recalibrate on a batch, then its eval-mode scores on that batch equal
    the scores of train-mode BN (batch statistics) under the same hard
    per-clip choices, up to the unbiased-variance factor."""
    torch.manual_seed(0)
    model = _tpn()
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.02))
    for step in range(4):
        model.train_step(_batch(seed=step), optim)
    batch = _batch(seed=10)
    # decisive gates whose choices differ between clips: the small
    # normalisation differences between the two runs must not flip a
    # near-tie arg-max, and grouped inference must be exercised
    for _, m in dynamic_layers(model):
        with torch.no_grad():
            m.gate.fc2.weight.normal_(std=3.0)
            m.gate.fc2.bias.normal_(std=0.5)

    # reference: train-mode BN, dynamic layers on their hard policy
    state = copy.deepcopy(model.state_dict())
    for _, m in dynamic_layers(model):
        m.training = False
        m.gate.eval()
    ref = _scores(model, batch)
    ref_choices = [m.last_choice.clone() for _, m in dynamic_layers(model)]
    model.load_state_dict(state, strict=False)  # TPNHead adds new_cls
    model.train()

    VARED2RecalibrateBNHook(num_batches=1).recalibrate(_runner(model, [batch]))
    model.eval()
    got = _scores(model, batch)
    choices = [m.last_choice for _, m in dynamic_layers(model)]
    assert all(torch.equal(a, b) for a, b in zip(ref_choices, choices))
    assert any(len(torch.unique(c, dim=0)) > 1 for c in choices)
    assert torch.equal(got.argmax(1), ref.argmax(1))
    torch.testing.assert_close(got, ref, atol=1e-2, rtol=0)


def test_inference_forward_runs_what_test_step_runs():
    """The hook's forward is the network part of ``test_step``: the same
    class scores, through the neck and the head, in one head call."""
    model = _tpn()
    model.eval()
    batch = _batch(n=2)
    scores = []
    handle = model.cls_head.register_forward_hook(
        lambda mod, args, out: scores.append(out))
    with torch.no_grad():
        inference_forward(model, batch)
    handle.remove()
    assert len(scores) == 1
    ref = _scores(model, batch)
    got = model.cls_head.average_clip(scores[0], num_segs=1)
    torch.testing.assert_close(got, ref)


def test_training_only_dynamic_convs_are_left_out_of_the_test_records():
    """``aux_head=True`` makes the TPN's training-only auxiliary head
    dynamic: it runs in training, not at test time, and the test records
    (choices, base GFLOPs) cover exactly the layers that ran."""
    cfg = Config.fromfile(TPN_CFG)
    cfg.model.backbone.update(depth=18, base_channels=16, pretrained=None)
    cfg.model.neck.update(copy.deepcopy(SMALL_NECK))
    cfg.model.neck.dynamic_cfg = dict(search_space=2, aux_head=True)
    cfg.model.cls_head.update(num_classes=4, dropout_ratio=0.0)
    model = build_model_from_cfg(cfg)
    model.init_weights()
    aux = [n for n in model.vared2_layer_names if '.aux_head.' in n]
    assert aux
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    model.train_step(_batch(n=2), optim)
    model.eval()
    with torch.no_grad():
        pred = model.test_step(_batch(n=1))[0]
    assert pred.vared2_layer_names == [
        n for n in model.vared2_layer_names if n not in aux
    ]
    assert pred.vared2_choices.shape[0] == len(pred.vared2_layer_names)
    with torch.no_grad():
        model.test_step(_batch(n=1))
    from varedd_mm import fixed_policy
    with torch.no_grad(), fixed_policy(model, 0, 0):
        full = model.test_step(_batch(n=1))[0]
    assert full.vared2_gflops[0].item() == pytest.approx(
        full.vared2_base_gflops, rel=1e-9)


def test_hook_refuses_schedules_that_miss_the_checkpoints():
    from mmengine.runner import IterBasedTrainLoop
    loop = IterBasedTrainLoop.__new__(IterBasedTrainLoop)
    runner = SimpleNamespace(train_loop=loop)
    with pytest.raises(ValueError, match='by_epoch must be False'):
        VARED2RecalibrateBNHook(by_epoch=True).before_train(runner)
    VARED2RecalibrateBNHook(by_epoch=False).before_train(runner)
    epoch_loop = SimpleNamespace(
        dataloader=SimpleNamespace(persistent_workers=True))
    runner = SimpleNamespace(train_loop=epoch_loop)
    with pytest.raises(ValueError, match='would restart the running epoch'):
        VARED2RecalibrateBNHook(by_epoch=False).before_train(runner)
    VARED2RecalibrateBNHook(by_epoch=True).before_train(runner)
