# Copyright (c) varedd_mm contributors. All rights reserved.
"""Train and test steps of each dynamic recognizer; the efficiency metric."""
import copy

import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config
from mmengine.optim import OptimWrapper

from varedd_mm.analysis import build_model_from_cfg
from varedd_mm.evaluation import VARED2EfficiencyMetric

CFG = 'configs/recognition/vared2/'
DYNAMIC = {
    'r2plus1d':
    CFG + 'vared2-k2_r2plus1d_r18_8xb16-16x2x1-30e_minik200-rgb.py',
    'i3d': CFG + 'vared2-k2_i3d_r50_8xb8-16x5x1-30e_minik200-rgb.py',
    'x3d': CFG + 'vared2-k2_x3d_m_8xb8-16x5x1-30e_minik200-rgb.py',
    'tpn': CFG + 'vared2-k2_tpn-slowonly_r50_8xb8-8x8x1-30e_minik200-rgb.py',
}


def _model(name, num_classes=5):
    cfg = Config.fromfile(DYNAMIC[name])
    cfg.model.cls_head.num_classes = num_classes
    if cfg.model.get('neck', {}).get('aux_head_cfg'):
        cfg.model.neck.aux_head_cfg.out_channels = num_classes
    cfg.model.backbone.pretrained = None
    if 'pretrained2d' in cfg.model.backbone:
        cfg.model.backbone.pretrained2d = False
    model = build_model_from_cfg(cfg)
    model.init_weights()
    return model


def _batch(n=2, views=1, t=8, size=32, num_classes=5):
    inputs = [
        torch.randint(0, 255, (views, 3, t, size, size), dtype=torch.uint8)
        for _ in range(n)
    ]
    samples = []
    for i in range(n):
        s = ActionDataSample()
        s.set_gt_label(torch.tensor([i % num_classes]))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


@pytest.mark.parametrize('name', list(DYNAMIC))
def test_train_step_logs_efficiency_terms(name):
    model = _model(name)
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log = model.train_step(_batch(), optim)
    for key in ('loss', 'loss_cls', 'loss_eff', 'eff_ratio_expected',
                'eff_ratio_realised'):
        assert key in log, key
    log = {k: float(v) for k, v in log.items()}
    # TPN adds its auxiliary loss; everything else is loss_cls + loss_eff
    parts = ['loss_cls', 'loss_eff'] + (['loss_aux'] if name == 'tpn' else [])
    assert sorted(k for k in log if k.startswith('loss_')) == sorted(parts)
    assert log['loss'] == pytest.approx(sum(log[k] for k in parts), rel=1e-5)
    assert 0 < log['eff_ratio_expected'] <= 1.0 + 1e-3
    gate = next(m for m in model.modules() if hasattr(m, 'gate')).gate
    assert gate.fc2.weight.grad is None  # zeroed by the optim wrapper
    # a step changed the gate parameters
    before = gate.fc2.bias.clone()
    model.train_step(_batch(), optim)
    assert not torch.equal(before, gate.fc2.bias)


def test_train_step_without_efficiency_loss_still_logs_ratios():
    cfg = Config.fromfile(DYNAMIC['r2plus1d'])
    cfg.model.efficiency_loss = None
    cfg.model.cls_head.num_classes = 5
    model = build_model_from_cfg(cfg)
    model.train()
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.01))
    log = model.train_step(_batch(), optim)
    assert 'loss_eff' not in log and 'eff_ratio_expected' in log


@pytest.mark.parametrize('name', list(DYNAMIC))
def test_test_step_records_and_metric(name, tmp_path):
    model = _model(name)
    model.eval()
    batch = _batch(n=3, views=2)
    with torch.no_grad():  # as mmengine's test loop (TPNHead needs it)
        preds = model.test_step(batch)
    assert len(preds) == 3
    layers = model.vared2_layer_names
    for p in preds:
        assert p.vared2_gflops.shape == (2, )
        assert p.vared2_choices.shape == (len(layers), 2, 2)
        assert (p.vared2_gflops <= p.vared2_base_gflops * 1.001).all()
    metric = VARED2EfficiencyMetric(out_file=str(tmp_path / 'eff.json'))
    metric.process(batch, [p.to_dict() for p in preds])
    out = metric.compute_metrics(metric.results)
    views = torch.cat([p.vared2_gflops for p in preds])
    assert out['gflops_per_view'] == pytest.approx(views.mean().item())
    assert out['gflops_per_video'] == pytest.approx(2 * out['gflops_per_view'])
    assert out['gflops_ratio'] == pytest.approx(out['gflops_per_view'] /
                                                out['base_gflops_per_view'])
    import json
    report = json.load(open(tmp_path / 'eff.json'))
    assert set(report['choice_share_per_layer']) == set(layers)
    for shares in report['choice_share_per_layer'].values():
        assert sum(shares.values()) == pytest.approx(1.0)


def test_max_testing_views_counts_every_view():
    """mmaction runs the backbone on chunks of views with
    ``max_testing_views``; every view still gets its own cost."""
    model = _model('r2plus1d')
    model.test_cfg = dict(max_testing_views=2)
    model.eval()
    preds = model.test_step(_batch(n=1, views=5))
    assert preds[0].vared2_gflops.shape == (5, )
    assert preds[0].vared2_choices.shape[1] == 5


def test_clip_without_views_axis_names_the_expected_layout():
    model = _model('r2plus1d').eval()
    clip = torch.randn(2, 3, 8, 32, 32)  # (N, C, T, H, W): no views axis
    for mode in ('tensor', 'predict'):
        samples = [ActionDataSample() for _ in range(2)]
        with pytest.raises(ValueError) as err:
            with torch.no_grad():
                model(clip, samples, mode=mode)
        msg = str(err.value)
        assert '(N, views, C, T, H, W)' in msg and 'x[:, None]' in msg
        assert '(2, 3, 8, 32, 32)' in msg and 'Conv2plus1d' not in msg
    with torch.no_grad():  # the layout it names works
        feats = model(clip[:, None], mode='tensor')
    assert feats.shape[0] == 2


def _train_model(dynamic_cfg=None, dropout=None, **model_keys):
    """The R(2+1)D-18 recognizer (5 classes, seeded weights) in training
    mode, with ``dynamic_cfg`` and ``model_keys`` set in its config."""
    cfg = Config.fromfile(DYNAMIC['r2plus1d'])
    cfg.model.backbone.dynamic_cfg.update(dynamic_cfg or {})
    cfg.model.cls_head.num_classes = 5
    if dropout is not None:
        cfg.model.cls_head.dropout_ratio = dropout
    cfg.model.backbone.pretrained = None
    cfg.model.update(model_keys)
    torch.manual_seed(0)
    model = build_model_from_cfg(cfg)
    model.init_weights()
    return model.train()


def _distill_model(**distill):
    # no dropout: teacher and student comparable
    return _train_model(dropout=0.0, inplace_distill=distill)


def test_inplace_distillation_pulls_the_policy_towards_the_full_model():
    from varedd_mm import fixed_policy
    model = _distill_model(loss_weight=2.0, temperature=2.0)
    data = model.data_preprocessor(_batch(), True)
    # forced to (0, 0) the student is its teacher: nothing to distil
    with fixed_policy(model, 0, 0):
        losses = model.loss(**data)
    assert float(losses['loss_distill']) == pytest.approx(0.0, abs=1e-6)
    # at (1, 1) it is not; the records are the student's, not the teacher's
    with fixed_policy(model, 1, 1):
        losses = model.loss(**data)
    assert float(losses['loss_distill']) > 1e-4
    assert float(losses['eff_ratio_realised']) < 0.5
    # learned gates: the distillation gradient reaches gates and weights
    model.zero_grad()
    losses = model.loss(**data)
    losses['loss_distill'].backward()
    gate = next(p for n, p in model.named_parameters() if '.gate.' in n)
    stem = model.backbone.conv1.conv.conv_s.weight
    assert gate.grad is not None and gate.grad.abs().sum() > 0
    assert stem.grad is not None and stem.grad.abs().sum() > 0


def test_initial_teacher_is_a_frozen_copy_outside_the_state_dict():
    model = _distill_model(teacher='initial')
    data = model.data_preprocessor(_batch(), True)
    optim = torch.optim.SGD(model.parameters(), lr=0.5)
    stem = model.backbone.conv1.conv.conv_s.weight
    initial = stem.detach().clone()
    for _ in range(2):
        optim.zero_grad()
        losses = model.loss(**data)
        (losses['loss_distill'] + losses['loss_cls']).backward()
        optim.step()
    teacher = model._distill_teacher
    assert not torch.equal(stem, initial)  # the student moved
    assert torch.equal(teacher.backbone.conv1.conv.conv_s.weight, initial)
    assert not teacher.training
    assert not any(p.requires_grad for p in teacher.parameters())
    assert not any('distill' in k for k in model.state_dict())
    assert float(losses['loss_distill']) > 0


@pytest.mark.parametrize('bad,match', [
    (dict(weight=1.0), 'unknown keys'),
    (dict(teacher='base'), 'teacher must be one of'),
    (dict(temperature=0), 'temperature must be a number > 0'),
    (dict(loss_weight=True), 'loss_weight must be a number > 0'),
])
def test_inplace_distillation_refuses_bad_settings(bad, match):
    with pytest.raises(ValueError, match=match):
        _distill_model(**bad)


def _assert_same_training_forward(out, ref, model, plain):
    """The task and efficiency terms of ``out`` (``model``'s loss dict) are
    exactly those of ``ref`` (``plain``'s, without the extra forwards), and
    the two models' states (BN statistics included) are equal."""
    for key in ('loss_cls', 'loss_eff', 'eff_ratio_expected',
                'eff_ratio_realised'):
        torch.testing.assert_close(out[key], ref[key], rtol=0, atol=0)
    for (k, v), w in zip(model.state_dict().items(),
                         plain.state_dict().values()):
        assert torch.equal(v, w), k


def _losses_with_and_without(model, plain):
    """Loss dicts of ``model`` (with an option) and ``plain`` (without it,
    given ``model``'s weights) on one batch, each from the same random
    state, and the batch."""
    plain.load_state_dict(model.state_dict())
    data = model.data_preprocessor(_batch(n=4), True)
    torch.manual_seed(1)
    a = model.loss(**data)
    torch.manual_seed(1)
    return a, plain.loss(**data), data


def _assert_trains_weights_not_gates(model, loss):
    """``loss``'s gradient reaches the shared weights (the stem's) and no
    gate parameter."""
    model.zero_grad()
    loss.backward()
    stem = model.backbone.conv1.conv.conv_s.weight
    assert stem.grad is not None and stem.grad.abs().sum() > 0
    gates = [p.grad for n, p in model.named_parameters() if '.gate.' in n]
    assert gates and all(g is None or not g.any() for g in gates)


def _full_choice_model(full_choice_loss):
    return _train_model(full_choice_loss=full_choice_loss)


def test_full_choice_loss_adds_the_plain_network_loss_first():
    from mmaction.models.recognizers import Recognizer3D

    from varedd_mm import fixed_policy
    model = _full_choice_model(dict(loss_weight=2.0))
    plain = _full_choice_model(None)
    plain.load_state_dict(model.state_dict())
    data = model.data_preprocessor(_batch(n=4), True)
    # the reference: the recognizer's own loss at (0, 0) and the training
    # forward, each from the same random state (the same dropout mask)
    forced = copy.deepcopy(plain)
    torch.manual_seed(3)
    with fixed_policy(forced, 0, 0):
        ref = Recognizer3D.loss(forced, **data)
    torch.manual_seed(3)
    ref_train = plain.loss(**data)
    torch.manual_seed(3)
    out = model.loss(**data)
    assert sorted(set(out) - set(ref_train)) == ['full_loss_cls'] + sorted(
        f'full_{k}' for k in ref if 'loss' not in k)
    torch.testing.assert_close(
        out['full_loss_cls'], 2.0 * ref['loss_cls'], rtol=0, atol=0)
    # the training forward (run last) is the one the records and the
    # efficiency terms speak for, exactly as without the option, and the
    # full-choice forward left no BN statistics behind
    _assert_same_training_forward(out, ref_train, model, plain)
    # the full-choice term trains the shared weights, not the gates
    _assert_trains_weights_not_gates(model, out['full_loss_cls'])
    # mmengine sums it into the total loss
    optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.0))
    log = {k: float(v) for k, v in model.train_step(_batch(), optim).items()}
    parts = ('loss_cls', 'loss_eff', 'full_loss_cls')
    assert log['loss'] == pytest.approx(sum(log[k] for k in parts), rel=1e-5)


def test_full_choice_loss_leaves_policy_rank_and_gumbel_noise_alone():
    # Gumbel gates and ranking one layer per step: the counterfactual
    # forwards and the training forward must draw the same noise, with or
    # without the full-choice forward between them; its backward must
    # survive the counterfactual forwards' restoring of the BN statistics
    rank = dict(dims=('temporal', ), layers_per_step=1)
    gate = dict(gate=dict(norm_input=True, gumbel=True))
    model = _train_model(
        gate, policy_rank=rank, full_choice_loss=dict(loss_weight=1.0))
    plain = _train_model(gate, policy_rank=rank)
    a, b, _ = _losses_with_and_without(model, plain)
    assert sorted(set(a) - set(b)) == [
        'full_loss_cls', 'full_top1_acc', 'full_top5_acc'
    ]
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    sum(v for k, v in a.items() if 'loss' in k).backward()
    stem = model.backbone.conv1.conv.conv_s.weight
    assert stem.grad is not None and stem.grad.abs().sum() > 0


@pytest.mark.parametrize('end', ['smallest', 'random'])
def test_sandwich_terms_train_their_network_and_nothing_else(end):
    # smallest_weight / random_weight: the smallest network, a random one
    from mmaction.models.recognizers import Recognizer3D

    from varedd_mm import dynamic_layers, random_policy, smallest_policy
    model = _train_model(full_choice_loss={
        'loss_weight': 1.0,
        f'{end}_weight': 2.0
    })
    plain = _train_model(full_choice_loss=dict(loss_weight=1.0))
    draws = torch.Generator()
    draws.set_state(model._vared2_draws)
    a, b, data = _losses_with_and_without(model, plain)
    assert sorted(set(a) - set(b)) == [
        f'{end}_loss_cls', f'{end}_top1_acc', f'{end}_top5_acc'
    ]
    # the full-choice terms and the training forward are untouched
    for key in b:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, msg=key)
    _assert_same_training_forward(a, b, model, plain)
    # the recognizer's own loss with every layer at that network's choices
    # (the random one: the same draws), from the same random state (the
    # same dropout mask; training-mode BN normalises with the batch's
    # statistics, whatever the running ones)
    torch.manual_seed(1)
    policy = (
        smallest_policy(plain) if end == 'smallest' else random_policy(
            plain, draws))
    with policy:
        choices = [m.forced_choice for _, m in dynamic_layers(plain)]
        ref = Recognizer3D.loss(plain, **data)
    if end == 'smallest':
        assert set(choices) == {(1, 1)}
    else:  # a mixture: neither end
        assert len(set(choices)) > 1
    torch.testing.assert_close(
        a[f'{end}_loss_cls'], 2.0 * ref['loss_cls'], rtol=0, atol=0)
    _assert_trains_weights_not_gates(model, a[f'{end}_loss_cls'])


def _rank_model(policy_rank, **dynamic_cfg):
    return _train_model(dynamic_cfg, policy_rank=policy_rank)


def _forced_ce(model, data, choice):
    """Per-clip cross-entropy with every layer forced to ``choice``, as
    ``policy_rank`` measures it (no gradients, training-mode BN whose
    statistics are left alone, dropout off)."""
    from varedd_mm import fixed_policy
    from varedd_mm.ops.policy_rank import frozen_running_stats
    labels = torch.tensor([s.gt_label.item() for s in data['data_samples']])
    with torch.no_grad(), frozen_running_stats(model), fixed_policy(
            model, *choice):
        feats, kw = model.extract_feat(data['inputs'])
        return torch.nn.functional.cross_entropy(
            model.cls_head(feats, **kw), labels, reduction='none')


@pytest.mark.parametrize('per_step', [None, 1])
def test_policy_rank_adds_its_loss_and_leaves_the_training_forward_alone(
        per_step):
    # Gumbel noise: the training forward must draw the same noise with and
    # without the counterfactual forwards before it
    gate = dict(norm_input=True, gumbel=True)
    ranked = _rank_model(
        dict(loss_weight=0.5, dims=('temporal', ), layers_per_step=per_step),
        gate=gate)
    plain = _rank_model(None, gate=gate)
    with torch.no_grad():
        a, b, data = _losses_with_and_without(ranked, plain)
    assert sorted(set(a) - set(b)) == [
        'loss_policy', 'policy_delta_temporal', 'policy_rank_acc_temporal'
    ]
    # the counterfactual forwards run first and leave no trace: the
    # efficiency records and every BN statistic are the training forward's
    _assert_same_training_forward(a, b, ranked, plain)
    # delta: the task loss increase of every layer at every second frame,
    # measured with dropout off and training-mode BN
    if per_step is None:
        half, full = (_forced_ce(ranked, data, c) for c in ((1, 0), (0, 0)))
        every = half - full
        torch.testing.assert_close(a['policy_delta_temporal'], every.mean())
    # loss_policy trains the gates (every one, or the layer whose turn it
    # is: the first takes the first step, the second the next)
    if per_step:
        ranked._policy_rank._next = 1  # the second layer's turn
        layer = ranked._policy_rank._turns[1]
    else:
        layer = ranked.backbone.layer2[0].conv1.conv
    ranked.zero_grad()
    ranked.loss(**data)['loss_policy'].backward()
    grads = [
        m.gate.fc2.weight.grad is not None
        and bool(m.gate.fc2.weight.grad.abs().sum() > 0)
        for m in ranked._vared2_layers
    ]
    assert grads[ranked._vared2_layers.index(layer)]
    if per_step:
        assert sum(grads) == 1


def test_policy_rank_of_every_option_logs_each_step():
    model = _rank_model(
        dict(dims=('temporal', ), options='all'),
        dims=('temporal', ),
        search_space=3)
    data = model.data_preprocessor(_batch(n=3), True)
    with torch.no_grad():
        out = model.loss(**data)
    logged = sorted(k for k in out if k.startswith('policy_'))
    assert logged == [
        'policy_delta_temporal', 'policy_delta_temporal_2',
        'policy_rank_acc_temporal', 'policy_rank_acc_temporal_2'
    ]
    # the quarter option's delta: the step from half the frames
    step = _forced_ce(model, data, (2, 0)) - _forced_ce(model, data, (1, 0))
    torch.testing.assert_close(out['policy_delta_temporal_2'], step.mean())


def test_policy_rank_split_adds_the_label_loss_of_the_gates():
    model = _rank_model(
        dict(dims=('temporal', ), split=0.5, split_weight=2.0),
        dims=('temporal', ))
    data = model.data_preprocessor(_batch(n=4), True)
    out = model.loss(**data)
    logged = sorted(k for k in out if 'split' in k)
    assert logged == ['loss_policy_split', 'policy_split_acc_temporal']
    # the labels train the gate MLPs only
    model.zero_grad()
    out['loss_policy_split'].backward()
    layers = model._vared2_layers
    assert all(p.grad is None for n, p in model.named_parameters()
               if '.gate.' not in n)
    assert any(
        m.gate.fc2.bias.grad is not None and bool(m.gate.fc2.bias.grad.any())
        for m in layers)


def test_policy_rank_refuses_what_it_cannot_rank():
    model = _rank_model(dict())
    batch = _batch(n=2)
    batch['data_samples'][1].set_gt_label(torch.tensor([0.3, 0.7]))
    data = model.data_preprocessor(batch, True)
    with pytest.raises(ValueError, match='one class index per sample'):
        model.loss(**data)
    with pytest.raises(ValueError, match='unknown keys'):
        _rank_model(dict(weight=1.0))
