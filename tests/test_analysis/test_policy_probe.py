# Copyright (c) varedd_mm contributors. All rights reserved.
"""probe_policy (tools/analysis/policy_probe.py): the gate probabilities
per group and the task cost of forced choices it reports are those of the
model."""
import os.path as osp

import numpy as np
import pytest
import torch
from mmaction.structures import ActionDataSample
from mmengine.config import Config

from varedd_mm import fixed_policy, recalibrate_bn
from varedd_mm.analysis.model_utils import build_model_from_cfg
from varedd_mm.analysis.policy_probe import probe_policy
from varedd_mm.ops.policy import dynamic_layers

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CFG = osp.join(
    ROOT, 'configs', 'recognition', 'vared2', 'demo',
    'vared2_r2plus1d_r18_1xb8-8x4x1-4e_synthetic-motion-hard-rgb.py')


@pytest.fixture(scope='module')
def model_and_batches():
    torch.manual_seed(0)
    model = build_model_from_cfg(Config.fromfile(CFG))
    model.eval()
    gen = torch.Generator().manual_seed(1)
    batches = []
    for labels in ((0, 5, 1), (7, 2, 9)):
        inputs = [
            torch.randint(0, 256, (1, 3, 8, 32, 32),
                          generator=gen).to(torch.uint8) for _ in labels
        ]
        samples = [
            ActionDataSample().set_gt_label(torch.tensor([label]))
            for label in labels
        ]
        batches.append(dict(inputs=inputs, data_samples=samples))
    return model, batches


def _group_ce(samples, static_labels):
    """Labels, the static mask and the cross-entropy of each group,
    recomputed from predicted samples."""
    labels = np.array([int(s.gt_label[0]) for s in samples])
    p = np.array(
        [float(s.pred_score[label]) for s, label in zip(samples, labels)])
    static = np.isin(labels, static_labels)
    ce = dict(
        static=-np.log(p[static]).mean(), other=-np.log(p[~static]).mean())
    return labels, static, ce


def test_groups_and_forced_costs(model_and_batches):
    model, batches = model_and_batches
    out = probe_policy(
        model, batches, static_labels=[0, 1, 2], choices=[(0, 0), (1, 1)])
    assert out['num_clips'] == dict(static=3, other=3)
    assert set(out['forced']) == {'0,0', '1,1'}
    # the forced cost is the model's, recomputed here
    with torch.no_grad(), fixed_policy(model, 1, 1):
        samples = [s for b in batches for s in model.test_step(b)]
    labels, static, ce = _group_ce(samples, [0, 1, 2])
    assert out['forced']['1,1']['ce'] == pytest.approx(ce, rel=1e-5)
    # realised GFLOPs per view: the forced (1, 1) cost, below the full one
    gflops = np.array([float(s.vared2_gflops.mean()) for s in samples])
    assert out['forced']['1,1']['gflops']['static'] == pytest.approx(
        gflops[static].mean(), rel=1e-6)
    assert out['forced']['1,1']['gflops']['other'] < out['forced']['0,0'][
        'gflops']['other']
    confusion = np.array(out['forced']['1,1']['confusion'])
    assert confusion.shape == (10, 10)
    pred = np.array([int(s.pred_score.argmax()) for s in samples])
    for label, guess in zip(labels, pred):
        confusion[label, guess] -= 1
    assert not confusion.any()  # every clip counted once, where it went
    # the gates are patched only while probing
    assert all('logits' not in vars(m) for m in model.modules())


def test_gate_probabilities_are_the_gates(model_and_batches):
    model, batches = model_and_batches
    gate = model.backbone.conv1.conv.gate
    saved = gate.fc2.bias.detach().clone()
    try:
        with torch.no_grad():
            gate.fc2.bias[0] = 50.0  # full temporal choice for every clip
            gate.fc2.bias[gate.num_temporal] = -50.0  # never full channels
        out = probe_policy(model, batches, static_labels=[0], choices=[])
    finally:
        with torch.no_grad():
            gate.fc2.bias.copy_(saved)
    stem = out['gates']['backbone.conv1.conv.gate']
    assert stem['temporal_full'] == dict(static=1.0, other=1.0, std=0.0)
    assert stem['channel_full']['static'] == pytest.approx(0.0, abs=1e-6)
    assert stem['temporal_chosen_full'] == dict(static=1.0, other=1.0, std=0.0)
    assert stem['channel_chosen_full'] == dict(static=0.0, other=0.0, std=0.0)
    assert out['forced'] == {}


def test_chosen_full_is_the_choice_the_layers_ran(model_and_batches):
    model, batches = model_and_batches
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    gen = torch.Generator().manual_seed(0)
    ran = {}
    labels = []
    try:
        with torch.no_grad():  # gates that choose differently per clip
            for _, m in dynamic_layers(model):
                m.gate.fc2.weight.copy_(
                    torch.randn(m.gate.fc2.weight.shape, generator=gen) * 3)
                m.gate.fc2.bias.zero_()
        out = probe_policy(model, batches, static_labels=[0, 1, 2], choices=[])
        # the same test forward by hand: the choices each layer ran
        with torch.no_grad():
            for b in batches:
                labels += [int(s.gt_label.item()) for s in model.test_step(b)]
                for name, m in dynamic_layers(model):
                    full = (m.last_choice == 0).float()
                    ran.setdefault(name + '.gate', []).append(full)
    finally:
        model.load_state_dict(saved)
    every = torch.cat([torch.cat(c) for c in ran.values()])
    assert 0 < float(every.mean()) < 1  # both kinds of choice ran
    static = np.isin(labels, [0, 1, 2])
    for name, chunks in ran.items():
        full = torch.cat(chunks).numpy()
        for col, dim in enumerate(('temporal', 'channel')):
            got = out['gates'][name][f'{dim}_chosen_full']
            assert got['static'] == pytest.approx(full[static, col].mean())
            assert got['other'] == pytest.approx(full[~static, col].mean())


def test_views_are_averaged_per_video_and_empty_groups_are_none(
        model_and_batches):
    model, batches = model_and_batches
    two_views = [
        dict(
            inputs=[torch.cat([x, x.flip(2)]) for x in b['inputs']],
            data_samples=b['data_samples']) for b in batches
    ]
    out = probe_policy(model, two_views, static_labels=[], choices=[])
    assert out['num_clips'] == dict(static=0, other=6)
    stem = out['gates']['backbone.conv1.conv.gate']['temporal_full']
    assert stem['static'] is None
    # the mean over videos of the per-video mean of the two views
    probs = []
    gate = model.backbone.conv1.conv.gate
    with torch.no_grad():
        for b in two_views:
            data = model.data_preprocessor(b, False)
            clips = data['inputs'].flatten(0, 1)  # (videos * views, ...)
            t, _ = gate.logits(clips)  # the stem gate reads the clips
            probs.append(torch.softmax(t, 1)[:, 0].view(-1, 2).mean(1))
    assert stem['other'] == pytest.approx(
        float(torch.cat(probs).mean()), rel=1e-5)


def test_unknown_static_labels_are_refused(model_and_batches):
    model, batches = model_and_batches
    with pytest.raises(ValueError, match=r'static_labels \[10\]'):
        probe_policy(model, batches, static_labels=[0, 10], choices=[])


def test_needs_gates(model_and_batches):
    model, batches = model_and_batches
    with fixed_policy(model, 0, 0), pytest.raises(
            ValueError, match='no gate ran'):
        probe_policy(model, batches, static_labels=[0], choices=[])


def test_forced_choices_with_recalibrated_bn(model_and_batches):
    """``recalibrate`` runs under each forced choice before it is measured,
    and the model's state is restored after each choice."""
    model, batches = model_and_batches
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []

    def recalibrate(m):
        seen.append(m.backbone.layer1[0].conv1.conv.forced_choice)
        recalibrate_bn(m, batches, forward=lambda mod, b: mod.test_step(b))

    out = probe_policy(
        model,
        batches,
        static_labels=[0, 1, 2],
        choices=[(0, 0), (1, 1)],
        recalibrate=recalibrate)
    assert seen == [(0, 0), (1, 1)]
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    # what it reports is the model with statistics of the forced outputs
    with fixed_policy(model, 1, 1):
        recalibrate_bn(model, batches, forward=lambda mod, b: mod.test_step(b))
        model.eval()
        with torch.no_grad():
            samples = [s for b in batches for s in model.test_step(b)]
    model.load_state_dict(before)
    _, _, ce = _group_ce(samples, [0, 1, 2])
    assert out['forced']['1,1']['ce'] == pytest.approx(ce, rel=1e-5)
    plain = probe_policy(
        model, batches, static_labels=[0, 1, 2], choices=[(1, 1)])
    assert plain['forced']['1,1']['ce'] != out['forced']['1,1']['ce']


def test_tool_refuses_a_negative_recalibration(capsys):
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        'policy_probe_tool',
        osp.join(ROOT, 'tools', 'analysis', 'policy_probe.py'))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    with pytest.raises(SystemExit) as exc:
        tool.parse_args(
            [CFG, 'x.pth', '--static-labels', '0', '--recalibrate-bn', '-1'])
    assert exc.value.code == 2
    assert '--recalibrate-bn must be >= 0' in capsys.readouterr().err
    args = tool.parse_args(
        [CFG, 'x.pth', '--static-labels', '0', '--recalibrate-bn', '3'])
    assert args.recalibrate_bn == 3


def test_recalibration_failure_restores_the_model(model_and_batches):
    model, batches = model_and_batches
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def broken(m):
        for bn in m.modules():
            if isinstance(bn, torch.nn.BatchNorm3d):
                bn.running_mean.add_(1.0)
        raise RuntimeError('no batches')

    with pytest.raises(RuntimeError, match='no batches'):
        probe_policy(
            model,
            batches,
            static_labels=[0],
            choices=[(1, 1)],
            recalibrate=broken)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(
        getattr(m, 'forced_choice', None) is None for m in model.modules())


def test_per_layer_forces_one_layer_at_a_time(model_and_batches):
    """layer_choice: each dynamic layer alone forced, the others learned;
    the figures are the model's with only that layer forced."""
    model, batches = model_and_batches
    out = probe_policy(
        model,
        batches,
        static_labels=[0, 1, 2],
        choices=[],
        layer_choice=(1, 1))
    names = [n for n, _ in dynamic_layers(model)]
    assert list(out['per_layer']) == names
    layer = model.get_submodule(names[3])
    with torch.no_grad(), fixed_policy(layer, 1, 1):
        samples = [s for b in batches for s in model.test_step(b)]
    _, static, ce = _group_ce(samples, [0, 1, 2])
    assert out['per_layer'][names[3]]['ce'] == pytest.approx(ce, rel=1e-5)
    gflops = np.array([float(s.vared2_gflops.mean()) for s in samples])
    assert out['per_layer'][names[3]]['gflops'] == pytest.approx(
        dict(static=gflops[static].mean(), other=gflops[~static].mean()),
        rel=1e-6)
    assert all(
        getattr(m, 'forced_choice', None) is None for m in model.modules())


def test_gate_gradients_are_the_losses_gradients(model_and_batches,
                                                 monkeypatch):
    from varedd_mm.analysis.policy_probe import gate_gradients
    model, batches = model_and_batches
    # no dropout, so that the training forward below is the same one
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            monkeypatch.setattr(m, 'p', 0.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = gate_gradients(model, batches, static_labels=[0, 1, 2])
    assert out['num_clips'] == dict(static=3, other=3)
    assert set(out['layers']) == {
        f'{name}.gate'
        for name, _ in dynamic_layers(model)
    }
    # the model is as it was: weights, BN statistics, eval mode, no grads
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not model.training
    assert all(p.grad is None for p in model.parameters())

    # recompute one layer's pushes directly with autograd
    name, layer = dynamic_layers(model)[3]
    task, eff, labels = [], [], []
    model.train()
    try:
        for batch in batches:
            kept = []
            orig = layer.gate.logits

            def logits(x, _orig=orig):
                t, c = _orig(x)
                kept.append(t)
                return t, c

            layer.gate.logits = logits
            data = model.data_preprocessor(batch, training=True)
            losses = model(**data, mode='loss')
            del layer.gate.logits
            (t, ) = kept
            for key, sink in (('loss_cls', task), ('loss_eff', eff)):
                (g, ) = torch.autograd.grad(losses[key], t, retain_graph=True)
                sink.append((g[:, 0] - g[:, 1:].mean(1)) * t.shape[0])
            labels += [int(s.gt_label[0]) for s in data['data_samples']]
    finally:
        model.load_state_dict(before)
        model.eval()
    static = np.isin(labels, [0, 1, 2])
    task, eff = torch.cat(task).numpy(), torch.cat(eff).numpy()
    got = out['layers'][f'{name}.gate']['temporal']
    assert got['task']['static'] == pytest.approx(
        task[static].mean(), rel=1e-4, abs=1e-9)
    assert got['task']['other'] == pytest.approx(
        task[~static].mean(), rel=1e-4, abs=1e-9)
    assert got['efficiency']['static'] == pytest.approx(
        eff[static].mean(), rel=1e-4, abs=1e-9)
    assert got['task_std'] == pytest.approx(task.std(), rel=1e-4, abs=1e-9)
    se = task.std() * np.sqrt(1 / static.sum() + 1 / (~static).sum())
    assert got['task_difference_z'] == pytest.approx(
        (task[static].mean() - task[~static].mean()) / se, rel=1e-3)
    # the summary counts the gate dimensions' z values
    from varedd_mm.analysis.policy_probe import gradient_summary
    zs = [
        g['task_difference_z'] for dims in out['layers'].values()
        for g in dims.values()
        if g is not None and g['task_difference_z'] is not None
    ]
    summary = gradient_summary(out)
    assert summary['dimensions'] == len(zs) > 0
    assert summary['z_above_2'] == sum(abs(z) > 2 for z in zs)
    assert summary['z_positive'] == sum(z > 0 for z in zs)
    assert summary['largest_abs_z'] == max(abs(z) for z in zs)
    assert summary['median_spread_over_efficiency'] > 0
    # the efficiency loss never favours the full option
    assert (eff >= 0).all() and eff.max() > 0


def test_gate_gradients_needs_both_losses(model_and_batches):
    from varedd_mm.analysis.policy_probe import gate_gradients
    model, batches = model_and_batches
    with pytest.raises(KeyError, match="no 'loss_nope'"):
        gate_gradients(model, batches, [0], efficiency_loss='loss_nope')
    assert not model.training


def test_gate_gradients_sum_to_the_gate_bias_gradient(model_and_batches,
                                                      monkeypatch):
    """Independent check: over one batch, the clips' pushes sum to what the
    task loss's plain backward gives each gate's output bias (the bias
    gradient is the logits' gradient summed over the clips), for every
    layer and both dimensions."""
    from varedd_mm.analysis.policy_probe import gate_gradients
    model, batches = model_and_batches
    for m in model.modules():
        if isinstance(m, torch.nn.Dropout):
            monkeypatch.setattr(m, 'p', 0.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = gate_gradients(model, batches[:1], static_labels=[0, 1, 2])
    n = out['num_clips']
    model.train()
    try:
        data = model.data_preprocessor(batches[0], training=True)
        model.zero_grad(set_to_none=True)
        model(**data, mode='loss')['loss_cls'].backward()
        checked = 0
        for name, layer in dynamic_layers(model):
            gate = layer.gate
            grad = gate.fc2.bias.grad
            parts = (('temporal', grad[:gate.num_temporal]),
                     ('channel', grad[gate.num_temporal:]))
            for dim, g in parts:
                got = out['layers'][f'{name}.gate'][dim]
                if len(g) < 2:
                    assert got is None
                    continue
                task = got['task']
                total = task['static'] * n['static'] + task['other'] * n[
                    'other']
                expected = float(g[0] - g[1:].mean())
                assert total / (n['static'] + n['other']) == pytest.approx(
                    expected, rel=1e-3, abs=1e-7), (name, dim)
                checked += 1
        assert checked >= 20
    finally:
        model.zero_grad(set_to_none=True)
        model.load_state_dict(before)
        model.eval()
