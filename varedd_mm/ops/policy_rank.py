# Copyright (c) varedd_mm contributors. All rights reserved.
"""Counterfactual ranking of the clips for the gates (``policy_rank``).

What reaches a gate in plain VA-RED² training is the first-order estimate of
what its choice changes in the loss of one clip (the gradient of the
mixture). Measured on the harder benchmark (docs/policy.md, "What reaches
the gates in training") that estimate is dominated by per-clip noise, while
the *actual* loss change of a reduction differs strongly between clips: with
every layer at every second frame still clips keep their top-1 and pans
lose 40 points. ``policy_rank`` measures that change and hands it to the
gates:

1. Before the training forward, without gradients, with training-mode BN
   whose running statistics are left untouched (:func:`frozen_running_stats`)
   and dropout off, the model runs once with every dynamic layer at the full
   choice and once per ranked dimension ``d`` with every layer at ``d``'s
   first reduced option (``fixed_policy``). ``delta_d[n]`` is clip ``n``'s
   task loss increase from that reduction (:func:`counterfactual_deltas`).
   With ``options='all'`` and a search space of more than two options, also
   once per further option ``k`` of ``d`` (``search_space=3``: a quarter):
   ``delta_d_k[n]`` is the increase from option ``k - 1`` to option ``k``.
   Only the layers that ran in these forwards are ranked (a training-only
   head's gates cannot change the task loss measured here). The cost
   records (``track_flops``) of the step then cover these forwards too;
   the efficiency loss reads the layers' own records of the training
   forward, which runs last.
2. After the training forward, every gate that ran is asked to order the
   clips of the batch as ``delta_d`` does. The loss reaches the gate MLPs
   only (their logits are recomputed from the pooled features they read,
   detached), not the backbone features the gates pool. With ``s_n`` the
   gate's log-odds
   of reducing ``d`` for clip ``n`` (logits over the temperature), for every
   pair with ``delta_d[a] < delta_d[b]`` the loss is
   ``softplus(s_b - s_a)`` (RankNet), weighted by ``delta_d[b] -
   delta_d[a]`` normalised to sum 1 (:func:`rank_loss`), averaged over the
   gates and dimensions. For option ``k`` (``delta_d_k``) ``s_n`` is the
   log-odds of taking option ``k`` or a cheaper one against a dearer one:
   each step down the options is ranked by what that step costs.
3. With ``split=q`` each gate also gets a label per clip: "reduce" where
   the clip's delta is below the batch's ``q``-quantile, else "keep", and
   the binary cross-entropy of ``s_n`` against it (``loss_policy_split``).
   The ranking alone leaves each gate's level to the budget, which can keep
   (or reduce) every clip in a layer whatever the order; the labels ask
   every gate to split the batch, cheap clips reduced, dear clips kept.

With ``layers_per_step=n`` (:class:`PolicyRanker`) each step measures
instead ``n`` layers in turn, each forced alone while the others run their
gates, and ranks only that layer's gate by its own deltas.

The ranking fixes only the *order* of the clips: a common shift of every
clip's log-odds leaves it unchanged, so how much each layer reduces on average
stays the efficiency loss's business (the budget); ``split`` is the
exception, and the efficiency loss then pulls against it. Cost: one extra
forward without gradients per ranked option plus one at the full choice per
training step (per ranked layer with ``layers_per_step``); the labels cost
nothing more.
"""
from contextlib import contextmanager
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd

from .config import parse_options
from .dynamic_base import DynamicConvMixin
from .gate import PooledStandardize
from .policy import dynamic_layers, fixed_policy

DIMS = ('temporal', 'channel')
#: keys of ``policy_rank`` and their defaults
POLICY_RANK_DEFAULTS = dict(
    loss_weight=1.0,
    dims=None,
    options='first',
    layers_per_step=None,
    split=None,
    split_weight=1.0)
#: values of ``policy_rank.options``
RANKED_OPTIONS = ('first', 'all')


def delta_key(dim: str, option: int) -> str:
    """Name of the deltas of ``dim``'s reduced ``option`` (1: ``dim``,
    else ``<dim>_<option>``), as logged in ``policy_delta_<key>``."""
    return dim if option == 1 else f'{dim}_{option}'


def split_key(key: str) -> Tuple[str, int]:
    """``(dim, option)`` of a :func:`delta_key`."""
    dim, _, option = key.partition('_')
    valid = option == '' or (option.isdigit() and int(option) >= 2)
    if dim not in DIMS or not valid:
        raise ValueError(f'policy_rank: unknown deltas key {key!r}; '
                         f'expected a dimension of {DIMS}, optionally '
                         'followed by _<option> (option >= 2)')
    return dim, int(option) if option else 1


def parse_policy_rank(cfg: Optional[dict],
                      layers: Sequence[DynamicConvMixin],
                      owner: str = 'policy_rank') -> Optional[dict]:
    """Validate a ``policy_rank`` config against the model's layers.

    Args:
        cfg (dict, optional): ``dict(loss_weight=1.0, dims=None,
            options='first', layers_per_step=None, split=None,
            split_weight=1.0)``; None disables the loss. ``options``:
            ``'first'`` ranks each dimension's first reduced option only,
            ``'all'`` every reduced option of the search space.
            ``layers_per_step``: None ranks every gate by the
            counterfactual of every layer reduced together; an int ``n >=
            1`` ranks ``n`` gates per step (in turn), each by the
            counterfactual of its own layer alone (:class:`PolicyRanker`).
            ``split``: None ranks only; a quantile ``q`` in (0, 1) also
            labels, per batch, the clips whose deltas are below their
            ``q``-quantile "reduce" and the others "keep", and trains every
            gate on those labels (:func:`rank_loss`), at ``split_weight``
            times the ranking's weight.
        layers: The model's dynamic layers (``dims=None`` ranks every
            dimension one of them reduces).
        owner (str): Prefix of the error messages.

    Returns:
        dict | None: ``loss_weight`` (float), ``dims`` (tuple),
        ``options`` (``{dim: number of ranked reduced options}``),
        ``layers_per_step`` (None or int), ``split`` (None or float) and
        ``split_weight`` (float).
    """
    if cfg is None:
        return None
    parsed = parse_options(cfg, POLICY_RANK_DEFAULTS, owner,
                           ('loss_weight', 'split_weight'))
    reduced = [d for d in DIMS if any(d in m.dims for m in layers)]
    dims = parsed['dims']
    if dims is None:
        dims = tuple(reduced)
    else:
        valid = (
            isinstance(dims, (list, tuple)) and len(dims) > 0
            and len(set(dims)) == len(dims) and set(dims) <= set(DIMS))
        if not valid:
            raise ValueError(f'{owner}.dims must be None or a non-empty '
                             f'subset of {DIMS}, got {dims!r}')
        missing = [d for d in dims if d not in reduced]
        if missing:
            raise ValueError(f'{owner}.dims: no dynamic layer of the model '
                             f'reduces {missing} (the layers reduce '
                             f'{reduced})')
        dims = tuple(d for d in DIMS if d in dims)
    if parsed['options'] not in RANKED_OPTIONS:
        raise ValueError(f'{owner}.options must be one of {RANKED_OPTIONS}, '
                         f"got {parsed['options']!r}")
    options = {}
    for d in dims:
        # a layer's options along d (1 where it does not reduce d)
        counts = {
            m.dynamic_spec.num_temporal
            if d == 'temporal' else m.dynamic_spec.num_channel
            for m in layers if d in m.dims
        }
        if parsed['options'] == 'first':
            options[d] = 1
        elif len(counts) > 1:
            raise ValueError(f"{owner}.options='all': the layers reducing "
                             f'{d} have different numbers of options '
                             f'{sorted(counts)}; use options=\'first\'')
        else:
            options[d] = counts.pop() - 1
    split = parsed['split']
    number = isinstance(split, (int, float)) and not isinstance(split, bool)
    if split is not None and not (number and 0 < split < 1):
        raise ValueError(f'{owner}.split must be None (order only) or a '
                         'quantile in (0, 1), such as 0.5, got '
                         f'{split!r}')
    if split is None and 'split_weight' in cfg:
        raise ValueError(f'{owner}.split_weight weighs the labels of '
                         'split=q; without split it would do nothing (set '
                         'split, or leave split_weight out)')
    per_step = parsed['layers_per_step']
    whole = isinstance(per_step, int) and not isinstance(per_step, bool)
    if per_step is not None and not (whole and per_step >= 1):
        raise ValueError(f'{owner}.layers_per_step must be None (every '
                         'layer reduced together) or an int >= 1, got '
                         f'{per_step!r}')
    return dict(
        loss_weight=float(parsed['loss_weight']),
        dims=dims,
        options=options,
        layers_per_step=per_step,
        split=None if split is None else float(split),
        split_weight=float(parsed['split_weight']))


@contextmanager
def frozen_running_stats(model: nn.Module,
                         dropout: bool = False) -> Iterator[nn.Module]:
    """Let ``model`` run in its current mode while its BN running statistics
    (and ``num_batches_tracked``), those of the gates' input
    standardisation and the random number generators' states (Gumbel
    noise of the gates that run, dropout masks; CPU and CUDA) are restored
    on exit: a training-mode forward then normalises with the batch's
    statistics and leaves no trace in the model, and the forward after it
    draws the same random numbers as it would have without it.

    The statistics are restored without a version bump of the tensors
    (BN's backward saves them with its inputs, and a training-mode BN's
    gradient does not depend on them), so the graph of a forward run
    inside stays valid for a backward after the context.

    Args:
        model (nn.Module): The model.
        dropout (bool): Keep the dropout layers as they are. Default
            False: switched off inside (the counterfactual forwards
            compare choices, not dropout masks).
    """
    bns = [
        m for m in model.modules()
        if (isinstance(m, _BatchNorm) and m.track_running_stats)
        or isinstance(m, PooledStandardize)
    ]
    saved = [(m.running_mean.clone(), m.running_var.clone(),
              m.num_batches_tracked.clone()) for m in bns]
    drops = [] if dropout else [
        m for m in model.modules() if isinstance(m, _DropoutNd)
    ]
    modes = [m.training for m in drops]
    cuda = sorted({
        p.device.index or 0
        for p in model.parameters() if p.device.type == 'cuda'
    })
    try:
        for m in drops:
            m.eval()
        with torch.random.fork_rng(devices=cuda):
            yield model
    finally:
        for m, mode in zip(drops, modes):
            m.train(mode)
        for m, (mean, var, count) in zip(bns, saved):
            # .data: no version bump (see above)
            m.running_mean.data.copy_(mean)
            m.running_var.data.copy_(var)
            m.num_batches_tracked.data.copy_(count)


def counterfactual_deltas(
    model: nn.Module,
    clip_losses: Callable[[], torch.Tensor],
    dims: Sequence[str],
    options: Optional[Dict[str, int]] = None,
    forced: Optional[nn.Module] = None
) -> Tuple[Dict[str, torch.Tensor], List[nn.Module]]:
    """Per-clip task loss increase when every dynamic layer of ``forced``
    takes a reduced option of each dimension in ``dims``.

    Args:
        model (nn.Module): The task model (its dynamic layers are forced).
        clip_losses (callable): Runs the model's forward on the training
            batch and returns the task loss of each clip, shape ``(N,)``.
        dims (Sequence[str]): Dimensions to measure.
        options (dict, optional): ``{dim: n}``: measure options ``1..n`` of
            ``dim``, each against the one before (:func:`delta_key`); None:
            option 1 of each dimension.
        forced (nn.Module, optional): The part of ``model`` whose dynamic
            layers are forced: the full choice, then each option. Default
            ``model``; a single layer measures what that layer's reduction
            alone costs, the other layers running their gates as in
            training (the soft mixture, or with straight-through gates the
            arg-max; with Gumbel noise the same sample in every forward).

    Returns:
        tuple: ``{delta_key: (N,) tensor}`` (detached; ``{dim: ...}`` for
        the first options), and the dynamic layers
        that ran in these forwards (those the loss can speak for: a
        training-only head's layers, such as TPN's auxiliary head, do
        not).
    """
    ran = {}

    def seen(module, args):
        ran[id(module)] = module

    forced = model if forced is None else forced
    handles = [
        m.register_forward_pre_hook(seen) for _, m in dynamic_layers(forced)
    ]

    def run(choice):
        # every forward from the same random state: the same Gumbel noise
        with frozen_running_stats(model), fixed_policy(forced, *choice):
            return clip_losses().float()

    try:
        with torch.no_grad():
            full = run((0, 0))
            deltas = {}
            for d in dims:
                previous = full
                for k in range(1, (options or {}).get(d, 1) + 1):
                    losses = run((k, 0) if d == 'temporal' else (0, k))
                    deltas[delta_key(d, k)] = losses - previous
                    previous = losses
    finally:
        for h in handles:
            h.remove()
    return deltas, list(ran.values())


def split_labels(delta: torch.Tensor, split: float) -> torch.Tensor:
    """``policy_rank.split``'s labels: 1 ("reduce") for the clips whose
    delta is below the ``split``-quantile of ``delta``, 0 ("keep") for the
    others. Where no clip is below it (the lowest deltas tied at the
    quantile, as clips whose loss is 0 at both choices are), the tied clips
    at the quantile are labelled 1 instead, so the cheapest clips are never
    the ones told to keep. Every delta equal: every clip 1 (the ranking has
    no pair then either, and :func:`rank_loss` skips both)."""
    delta = delta.float()
    threshold = torch.quantile(delta, split)
    labels = delta < threshold
    if not labels.any():
        labels = delta <= threshold
    return labels.float()


def rank_loss(layers: Sequence[DynamicConvMixin],
              deltas: Dict[str, torch.Tensor],
              split: Optional[float] = None) -> Dict[str, torch.Tensor]:
    """The ranking loss of the last training forward's gates.

    Args:
        layers: The dynamic layers; those whose gate ran in the last
            training forward (``last_gate_features`` set) and that reduce
            a dimension of ``deltas`` take part.
        deltas (dict): ``{delta_key: (N,) loss increase}`` from
            :func:`counterfactual_deltas` on the same batch.
        split (float, optional): A quantile ``q`` in (0, 1): the clips whose
            delta is below the ``q``-quantile of the batch's deltas are
            labelled "reduce" (1), the others "keep" (0)
            (:func:`split_labels`), and each gate's
            log-odds of reducing get the binary cross-entropy with those
            labels (``split_loss``). Unlike the ranking it sets each gate's
            level per clip, not only the order, so it pulls against the
            budget where the budget would reduce (or keep) every clip of a
            layer. None: no labels.

    Returns:
        dict: ``loss`` (mean over gates and ranked options,
        differentiable), per key ``acc_<key>``: the weighted share of
        clip pairs the gates order as ``deltas`` does (detached, 0.5 =
        chance), and with ``split`` ``split_loss`` (mean over gates and
        ranked options, differentiable) and per key ``split_acc_<key>``:
        the share of clips whose gate's arg-max between reducing and
        keeping matches its label (detached).
    """
    out: Dict[str, torch.Tensor] = {}
    terms = []
    split_terms = []
    anchor = None
    for key, delta in deltas.items():
        d, k = split_key(key)
        col = DIMS.index(d)
        # w[a, b] > 0 where clip a loses less than clip b from reducing d
        w = (delta[None, :] - delta[:, None]).clamp(min=0)
        total = w.sum()
        if split is not None:
            labels = split_labels(delta, split)
        accs = []
        split_accs = []
        for m in layers:
            features = m.last_gate_features
            if features is None or d not in m.dims:
                continue
            # the logits of the training forward, recomputed from the gate
            # MLP's detached input: the loss trains the gate MLPs only
            lg = m.gate.head(features)[col] / m.gate.temperature
            if lg.shape[0] != delta.shape[0]:
                raise RuntimeError(
                    f'policy_rank: a gate ran on {lg.shape[0]} clips, the '
                    f'counterfactual forwards on {delta.shape[0]}')
            if lg.shape[1] <= k:
                raise RuntimeError(
                    f'policy_rank: deltas {key!r} rank option {k}, a gate '
                    f'has {lg.shape[1]} options along {d}')
            anchor = lg.sum() * 0 if anchor is None else anchor
            if not total > 0:
                continue
            # log-odds of option k or cheaper against a dearer one
            cheaper = torch.logsumexp(lg[:, k:], dim=1)
            s = cheaper - torch.logsumexp(lg[:, :k], dim=1)
            gap = s[:, None] - s[None, :]  # s_a - s_b
            wn = (w / total).to(gap)
            terms.append((wn * F.softplus(-gap)).sum())
            # a tie counts half: 0.5 is chance
            right = (gap > 0).to(gap) + 0.5 * (gap == 0).to(gap)
            accs.append((wn * right).sum().detach())
            if split is not None:
                target = labels.to(s)
                split_terms.append(
                    F.binary_cross_entropy_with_logits(s, target))
                split_accs.append(
                    ((s > 0).to(s) == target).to(s).mean().detach())
        if accs:
            out[f'acc_{key}'] = torch.stack(accs).mean()
        if split_accs:
            out[f'split_acc_{key}'] = torch.stack(split_accs).mean()
    if anchor is None:
        raise RuntimeError('policy_rank: no gate ran in the last forward '
                           'for the ranked dimensions '
                           f'{sorted(deltas)}')
    # no pair to order (one clip, or equal losses): zero, still connected
    # to the gates so distributed training sees every parameter used
    out['loss'] = torch.stack(terms).mean() if terms else anchor
    if split is not None:
        out['split_loss'] = (
            torch.stack(split_terms).mean() if split_terms else anchor)
    return out


class PolicyRanker:
    """``policy_rank`` of a task model: the counterfactual forwards before
    its training forward (:meth:`measure`), the ranking loss and the logged
    terms after it (:meth:`loss`).

    With ``layers_per_step=None`` every layer is forced together and every
    gate that ran is ranked by the same deltas (:func:`counterfactual_deltas`
    on the model). With ``layers_per_step=n`` the model's dynamic layers
    take turns, ``n`` per step (in the order of the model): each is forced
    alone, the other layers running their gates, and only its own gate is
    ranked by those deltas, which are then what *this* layer's reduction
    costs each clip where the others stand (each layer along the ranked
    dimensions it reduces). A layer that did not run in the counterfactual
    forwards (a training-only head's), or whose gate does not train (a
    frozen stage in eval mode), leaves the turns. The turns are not part
    of a checkpoint: a resumed run starts them again at the first layer.
    Cost per step: one forward without gradients at the full choice plus
    one per ranked option, once (every layer together) or per ranked layer;
    in the second mode the other layers run their gates as in training
    (the soft mixture of their options, or with straight-through gates the
    arg-max), which costs more than a forced forward.

    Args:
        cfg (dict): The model's ``policy_rank`` (:func:`parse_policy_rank`).
        layers: The model's dynamic layers.
        owner (str): Prefix of the error messages.
    """

    #: per-key accuracies of :func:`rank_loss` and their logged names
    #: (``policy_<name>_<key>``)
    LOGGED_ACCS = dict(acc='rank_acc', split_acc='split_acc')

    def __init__(self, cfg: dict, layers: Sequence[DynamicConvMixin],
                 owner: str) -> None:
        parsed = parse_policy_rank(cfg, layers, owner)
        self.loss_weight = parsed['loss_weight']
        self.dims = parsed['dims']
        self.options = parsed['options']
        self.layers_per_step = parsed['layers_per_step']
        self.split = parsed['split']
        self.split_weight = parsed['split_weight']
        self.owner = owner
        self._turns = [
            m for m in layers if any(d in m.dims for d in self.dims)
        ]
        self._next = 0

    def _all_options(self) -> List[Tuple[str, int]]:
        return [(d, k) for d in self.dims
                for k in range(1, self.options[d] + 1)]

    def measure(
        self, model: nn.Module, clip_losses: Callable[[], torch.Tensor]
    ) -> List[Tuple[List[nn.Module], Dict[str, torch.Tensor]]]:
        """Run the counterfactual forwards of one step (before its training
        forward): ``[(ranked layers, deltas)]``."""
        if self.layers_per_step is None:
            deltas, ran = counterfactual_deltas(model, clip_losses, self.dims,
                                                self.options)
            return [(ran, deltas)]
        measured = []
        while len(measured) < min(self.layers_per_step, len(self._turns)):
            layer = self._turns[self._next]
            dims = [d for d in self.dims if d in layer.dims]
            ran = []
            if layer.training:
                deltas, ran = counterfactual_deltas(model, clip_losses, dims,
                                                    self.options, layer)
            if ran:
                measured.append((ran, deltas))
                self._next += 1
            else:  # the next layer takes its place (and its turn)
                self._turns.remove(layer)
            if not self._turns:
                raise RuntimeError(
                    f'{self.owner}.layers_per_step: none of the dynamic '
                    'layers ran in training mode in the task loss forward')
            self._next %= len(self._turns)
        return measured

    def loss(
        self, measured: List[Tuple[List[nn.Module], Dict[str, torch.Tensor]]]
    ) -> Dict[str, torch.Tensor]:
        """``loss_policy`` (weighted mean over the ranked layers),
        ``policy_delta_<key>`` (mean loss increase: of every layer reduced
        together, or with ``layers_per_step`` the mean over the ranked
        layers of each one's reduction alone) and ``policy_rank_acc_<key>``
        (mean share of pairs ordered right), for the loss dict, after the
        training forward of the step; with ``split`` also
        ``loss_policy_split`` (``loss_weight * split_weight`` times the
        mean label loss) and ``policy_split_acc_<key>``."""
        parts = [
            rank_loss(layers, deltas, self.split)
            for layers, deltas in measured
        ]
        out = {
            'loss_policy':
            self.loss_weight * torch.stack([p['loss'] for p in parts]).mean()
        }
        if self.split is not None:
            out['loss_policy_split'] = (
                self.loss_weight * self.split_weight *
                torch.stack([p['split_loss'] for p in parts]).mean())
        for d, k in self._all_options():
            key = delta_key(d, k)
            means = [
                deltas[key].mean() for _, deltas in measured if key in deltas
            ]
            if means:  # no ranked layer reduces d this step: not logged
                out[f'policy_delta_{key}'] = torch.stack(means).mean()
            for name, logged in self.LOGGED_ACCS.items():
                accs = [
                    p[f'{name}_{key}'] for p in parts if f'{name}_{key}' in p
                ]
                if accs:
                    out[f'policy_{logged}_{key}'] = torch.stack(accs).mean()
        return out
