# Copyright (c) varedd_mm contributors. All rights reserved.
"""Why a learned policy does or does not adapt to the clip.

Two measurements on a recognizer and a test set split into two groups of
classes (``static`` and the rest):

* **gate probabilities**: per dynamic layer, the soft probability of the
  full temporal and the full channel option, averaged per group, and their
  standard deviation over all clips. A gate whose probabilities barely
  vary over the clips has one pattern for every clip, whatever its input.
* **forced choices**: top-1 and cross-entropy (probabilities clipped at
  1e-8) per group with every layer
  forced to one choice (``fixed_policy``). This says what a reduction
  costs each group in the task loss, which is the only thing that makes a
  gate spend more on one clip than on another. By default the forced
  choices run with the checkpoint's BN statistics (those of its learned
  policy); ``recalibrate`` re-estimates them for each forced choice.
"""
import copy
from contextlib import contextmanager
from typing import (Callable, Dict, Iterable, Iterator, List, Optional,
                    Sequence, Tuple)

import numpy as np
import torch
import torch.nn as nn

from ..ops.gate import SoftModulationGate
from ..ops.policy import dynamic_layers, fixed_policy

Choice = Tuple[int, int]


@contextmanager
def _record_gate_probs(model: nn.Module) -> Iterator[Dict[str, list]]:
    """Record ``(P(temporal full), P(channel full), temporal full chosen,
    channel full chosen)`` per clip of every gate run inside the block
    (the last two 1.0 where the arg-max of the logits, the eval-mode
    choice, is the full option, else 0.0), keyed by the gate's module
    name."""
    records: Dict[str, list] = {}
    patched = []
    for name, gate in model.named_modules():
        if not isinstance(gate, SoftModulationGate):
            continue

        def logits(x, _gate=gate, _name=name, _orig=gate.logits):
            t, c = _orig(x)
            probs = [
                torch.softmax(v / _gate.temperature, 1)[:, 0] for v in (t, c)
            ]
            chosen = [(v.argmax(1) == 0).float() for v in (t, c)]
            records.setdefault(_name, []).append(
                tuple(v.detach().cpu() for v in probs + chosen))
            return t, c

        gate.logits = logits  # instance attribute shadows the method
        patched.append(gate)
    try:
        yield records
    finally:
        for gate in patched:
            del gate.logits


def _labels_and_scores(
        samples) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    labels = np.array(
        [int(np.asarray(s.gt_label).reshape(-1)[0]) for s in samples])
    scores = np.stack([np.asarray(s.pred_score.cpu()) for s in samples])
    gflops = None  # realised GFLOPs per view, averaged per sample
    if all('vared2_gflops' in s for s in samples):
        gflops = np.array(
            [float(s.vared2_gflops.float().mean()) for s in samples])
    return labels, scores, gflops


def _group_stats(values: np.ndarray, static: np.ndarray) -> dict:
    return dict(
        static=float(values[static].mean()) if static.any() else None,
        other=float(values[~static].mean()) if (~static).any() else None)


def probe_policy(model: nn.Module,
                 batches: Iterable[dict],
                 static_labels: Sequence[int],
                 choices: Sequence[Choice] = ((0, 0), (1, 0), (0, 1), (1, 1)),
                 recalibrate: Optional[Callable[[nn.Module], object]] = None,
                 layer_choice: Optional[Choice] = None) -> dict:
    """Gate probabilities per group and the task cost of forced choices.

    Args:
        model (nn.Module): A VA-RED² recognizer with ``test_step``.
        batches (Iterable[dict]): Test batches as a dataloader gives them
            (iterated once per choice, plus once for the learned policy).
        static_labels (Sequence[int]): Labels of the ``static`` group; the
            other labels are the ``other`` group.
        choices (Sequence[tuple]): Choices ``(temporal, channel)`` to force.
        recalibrate (callable, optional): ``recalibrate(model)``, run with
            each forced choice before it is measured (for example
            :func:`varedd_mm.recalibrate_bn` on training batches), so the
            forced choice is measured with BN statistics of its own outputs
            rather than those the checkpoint has for its learned policy.
            The model's state is restored after each choice. None (default)
            measures the forced choices with the checkpoint's statistics.
        layer_choice (tuple, optional): Also force each dynamic layer alone
            to this choice, the others keeping their learned gates (and the
            checkpoint's statistics): what reducing that one layer costs
            each group, where the gate of that layer decides.

    Returns:
        dict: ``gates`` (per layer: ``temporal_full`` and ``channel_full``,
        the gate's probability of the full option, and
        ``temporal_chosen_full`` and ``channel_chosen_full``, the share of
        clips whose arg-max choice is the full option (what runs at
        inference), each ``{'static', 'other', 'std'}``; per test sample,
        views averaged; a group without samples is ``None``), ``learned`` and
        ``forced`` (per choice ``'t,c'``) with ``top1``, ``ce`` and
        ``gflops`` (realised GFLOPs per view, gates and rebuild included;
        None when the model does not report them) per group and the
        ``confusion`` matrix (rows: true labels, columns: predicted),
        ``num_clips`` per group and, with ``layer_choice``, ``per_layer``
        (per layer name: ``top1``, ``ce`` and ``gflops`` per group with
        that layer alone forced).
    """
    batches = list(batches)
    static_set = {int(v) for v in static_labels}
    model.eval()

    def run() -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
        samples: List = []
        with torch.no_grad():
            for batch in batches:
                samples += model.test_step(batch)
        return _labels_and_scores(samples)

    def task(labels, scores, gflops) -> dict:
        static = np.isin(labels, list(static_set))
        p = scores[np.arange(len(labels)), labels]
        pred = scores.argmax(1)
        confusion = np.zeros((scores.shape[1], scores.shape[1]), int)
        np.add.at(confusion, (labels, pred), 1)
        return dict(
            top1=_group_stats((pred == labels).astype(float), static),
            ce=_group_stats(-np.log(np.clip(p, 1e-8, None)), static),
            gflops=None if gflops is None else _group_stats(gflops, static),
            confusion=confusion.tolist())

    with _record_gate_probs(model) as records:
        labels, scores, gflops = run()
    bad = sorted(static_set - set(range(scores.shape[1])))
    if bad:
        raise ValueError(f'probe_policy: static_labels {bad} are not labels '
                         f'of this {scores.shape[1]}-class model')
    if not records:
        raise ValueError('probe_policy: no gate ran; is this a VA-RED2 '
                         'model with learned gates?')
    static = np.isin(labels, list(static_set))
    gates = {}
    for name, calls in records.items():
        per_dim = {}
        for i, dim in enumerate(
            ('temporal_full', 'channel_full', 'temporal_chosen_full',
             'channel_chosen_full')):
            values = torch.cat([c[i] for c in calls]).numpy()
            if len(values) != len(labels):
                # multi-view tests: one probability per view, the views of
                # a video next to each other; averaged per video
                if len(values) % len(labels):
                    raise RuntimeError(
                        f'probe_policy: {name} ran on {len(values)} clips '
                        f'for {len(labels)} test samples')
                values = values.reshape(len(labels), -1).mean(1)
            per_dim[dim] = dict(
                _group_stats(values, static), std=float(values.std()))
        gates[name] = per_dim
    out = dict(
        num_clips=dict(static=int(static.sum()), other=int((~static).sum())),
        gates=gates,
        learned=task(labels, scores, gflops),
        forced={})
    saved = None if recalibrate is None else copy.deepcopy(model.state_dict())
    for choice in choices:
        try:
            with fixed_policy(model, *choice):
                if recalibrate is not None:
                    recalibrate(model)
                    model.eval()
                out['forced'][f'{choice[0]},{choice[1]}'] = task(*run())
        finally:
            if saved is not None:
                model.load_state_dict(saved)
    if layer_choice is not None:
        out['per_layer'] = {}
        for name, layer in dynamic_layers(model):
            with fixed_policy(layer, *layer_choice):
                result = task(*run())
            del result['confusion']
            out['per_layer'][name] = result
    return out


@contextmanager
def _keep_gate_logits(model: nn.Module) -> Iterator[Dict[str, list]]:
    """Keep the logits tensors of every gate call inside the block (in the
    autograd graph, gradients retained), keyed by the gate's name."""
    kept: Dict[str, list] = {}
    patched = []
    for name, gate in model.named_modules():
        if not isinstance(gate, SoftModulationGate):
            continue

        def logits(x, _name=name, _orig=gate.logits):
            t, c = _orig(x)
            for v in (t, c):
                if v.requires_grad:
                    v.retain_grad()
            kept.setdefault(_name, []).append((t, c))
            return t, c

        gate.logits = logits
        patched.append(gate)
    try:
        yield kept
    finally:
        for gate in patched:
            del gate.logits


def _towards_reduced(grad: Optional[torch.Tensor]) -> Optional[torch.Tensor]:
    """Per clip, how much one gradient-descent step on these logit
    gradients moves the gate towards its reduced options: ``g_full -
    mean(g_reduced)`` (the step changes the margin ``l_full -
    mean(l_reduced)`` by ``-lr`` times that). ``None`` for a dimension
    with one option."""
    if grad is None or grad.shape[1] < 2:
        return None
    return grad[:, 0] - grad[:, 1:].mean(dim=1)


def gate_gradients(model: nn.Module,
                   batches: Iterable[dict],
                   static_labels: Sequence[int],
                   task_loss: str = 'loss_cls',
                   efficiency_loss: str = 'loss_eff') -> dict:
    """What reaches each gate in training, per group of clips.

    Runs ``model`` in training mode (the training forward of its config:
    soft or straight-through gates, ``normalize_grad``) on each batch and
    back-propagates the task loss and the efficiency loss separately to the
    gates' logits. Per layer and dimension it reports, averaged over the
    clips of each group, how much a gradient-descent step of each loss
    moves the gate towards its reduced options (``g_full -
    mean(g_reduced)``, per clip, times the batch size so that it does not
    depend on it; positive: towards reducing). A policy adapts to the clip
    only if the task part pushes the static clips towards reducing more
    (or away from it less) than the others. Only these two losses are
    measured (an in-place distillation loss, for one, is not). Weights are
    not updated; the model's state (BN statistics included) and its
    training / eval mode are restored. The batches are what the loader
    gives: with a shuffling loader, two runs see different clips.

    Returns:
        dict: ``num_clips`` per group and ``layers``: per gate name,
        ``temporal`` / ``channel`` (``None`` for a dimension with one
        option), each with ``task`` and ``efficiency`` per group
        (``static``, ``other``), the ``task_std`` over all clips and
        ``task_difference_z``: the static minus the other group's task
        mean over its standard error (``None`` without both groups); with
        no difference between the groups it is within about ±2 in 95 % of
        the layers.
    """
    static_set = {int(v) for v in static_labels}
    saved = copy.deepcopy(model.state_dict())
    was_training = model.training
    sums: Dict[str, dict] = {}
    labels_all = []
    try:
        model.train()
        for batch in batches:
            data = model.data_preprocessor(batch, training=True)
            for s in data['data_samples']:
                label = s.gt_label
                if label.numel() != 1 or label.is_floating_point():
                    raise ValueError(
                        'gate_gradients needs one integer label per clip '
                        f'(got {label}); soft labels (MixUp / CutMix '
                        'blending) cannot be put in a group')
            labels = torch.cat(
                [s.gt_label.reshape(-1) for s in data['data_samples']]).cpu()
            with _keep_gate_logits(model) as kept:
                losses = model(**data, mode='loss')
                for key in (task_loss, efficiency_loss):
                    if key not in losses:
                        raise KeyError(f'gate_gradients: the model returns '
                                       f'no {key!r} (got {sorted(losses)})')
                pushes = {}
                for part, key in (('task', task_loss), ('efficiency',
                                                        efficiency_loss)):
                    for calls in kept.values():
                        for t, c in calls:
                            t.grad = c.grad = None
                    losses[key].backward(retain_graph=part == 'task')
                    for name, calls in kept.items():
                        if len(calls) != 1:
                            raise RuntimeError(
                                f'gate_gradients: {name} ran {len(calls)} '
                                'times in one forward')
                        t, c = calls[0]
                        n = t.shape[0]
                        if n != len(labels):
                            raise ValueError(
                                f'gate_gradients: {name} saw {n} clips for '
                                f'{len(labels)} labels (several clips per '
                                'sample in training are not supported)')
                        for dim, v in (('temporal', t), ('channel', c)):
                            if v.shape[1] > 1 and v.grad is None:
                                raise RuntimeError(
                                    f'gate_gradients: no gradient of {key} '
                                    f'reached {name} ({dim})')
                            push = _towards_reduced(v.grad)
                            pushes.setdefault(name, {}).setdefault(
                                dim, {})[part] = (None if push is None else
                                                  push.detach().cpu() * n)
            model.zero_grad(set_to_none=True)
            labels_all.append(labels)
            for name, dims in pushes.items():
                for dim, parts in dims.items():
                    for part, v in parts.items():
                        sums.setdefault(name,
                                        {}).setdefault(dim, {}).setdefault(
                                            part, []).append(v)
    finally:
        model.load_state_dict(saved)
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    labels = torch.cat(labels_all).numpy()
    static = np.isin(labels, list(static_set))
    layers = {}
    for name, dims in sums.items():
        layers[name] = {}
        for dim, parts in dims.items():
            if any(v is None for v in parts['task']):
                layers[name][dim] = None
                continue
            task = torch.cat(parts['task']).numpy()
            eff = torch.cat(parts['efficiency']).numpy()
            groups = _group_stats(task, static)
            z = None
            if static.any() and (~static).any() and task.std() > 0:
                # the group difference over its standard error (the spread
                # of the per-clip values, taken as equal in both groups)
                se = task.std() * np.sqrt(1 / static.sum() + 1 /
                                          (~static).sum())
                z = float((groups['static'] - groups['other']) / se)
            layers[name][dim] = dict(
                task=groups,
                efficiency=_group_stats(eff, static),
                task_std=float(task.std()),
                task_difference_z=z)
    return dict(
        num_clips=dict(static=int(static.sum()), other=int((~static).sum())),
        layers=layers)


def gradient_summary(result: dict) -> dict:
    """Summary of :func:`gate_gradients` over the gate dimensions with a
    ``task_difference_z``: how many there are, in how many ``|z| > 2``,
    the largest ``|z|``, in how many ``z > 0`` (static clips pushed more
    towards reducing), and the median over them of the per-clip spread of
    the task push over the clip-weighted mean efficiency push."""
    n = result['num_clips']
    zs, spread = [], []
    for dims in result['layers'].values():
        for g in dims.values():
            if g is None or g['task_difference_z'] is None:
                continue
            zs.append(g['task_difference_z'])
            eff = (g['efficiency']['static'] * n['static'] +
                   g['efficiency']['other'] * n['other']) / (
                       n['static'] + n['other'])
            if eff != 0:
                spread.append(g['task_std'] / abs(eff))
    if not zs:
        raise ValueError('gradient_summary: no gate dimension has both '
                         'groups and a non-zero spread')
    return dict(
        dimensions=len(zs),
        z_above_2=sum(abs(z) > 2 for z in zs),
        largest_abs_z=max(abs(z) for z in zs),
        z_positive=sum(z > 0 for z in zs),
        median_spread_over_efficiency=float(np.median(spread))
        if spread else None)
