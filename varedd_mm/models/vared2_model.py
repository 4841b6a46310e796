# Copyright (c) varedd_mm contributors. All rights reserved.
"""The one glue between a codebase's model class and the engine.

mmaction's recognizers, mmdet's detectors and mmseg's segmentors all return
a loss dict that mmengine's ``BaseModel.parse_losses`` sums and predict into
data samples. :class:`VARED2ModelMixin` adds, to any of them, the two things
VA-RED² needs:

* training: ``loss_eff`` (summed, its key holds ``loss``) and the logged
  ``eff_ratio_expected`` / ``eff_ratio_realised`` in the loss dict
  (:meth:`VARED2ModelMixin.vared2_loss`), and with ``policy_rank`` the
  gates' counterfactual ranking loss ``loss_policy``
  (:mod:`varedd_mm.ops.policy_rank`; the task model says what one clip's
  task loss is in ``vared2_clip_losses``), and with ``full_choice_loss``
  the task losses of the network forced to the full choice, ``full_*``,
  and optionally to its smallest choice, ``smallest_*``, and to random
  choices, ``random_*``
  (:meth:`VARED2ModelMixin.vared2_full_choice_losses`);
* testing: per predicted sample, the realised GFLOPs of each of its rows
  (views of a clip, windows of an image), each row with its own choices,
  the base model's GFLOPs per row, the choices and the layer names
  (:meth:`VARED2ModelMixin.vared2_attach`), which
  :class:`~varedd_mm.evaluation.VARED2EfficiencyMetric` reads.

A task model is a few-line subclass: ``class VARED2Recognizer3D(
VARED2ModelMixin, Recognizer3D)`` only says, in ``predict``, how its rows
map to samples (:meth:`vared2_attach`); the mixin's ``__init__`` takes
``efficiency_loss`` and its ``loss`` adds :meth:`vared2_loss`. The config
keeps its standard shape (``model.backbone`` where users expect it; base
checkpoints load).
"""
import copy
from contextlib import contextmanager
from typing import Dict, Iterator, List, Optional, Sequence

import torch
from mmengine.registry import MODELS

from varedd_mm.ops import (EfficiencyLoss, dynamic_layers, fixed_policy,
                           random_policy, smallest_policy, track_flops)
from varedd_mm.ops.config import parse_options
from varedd_mm.ops.policy_rank import PolicyRanker, frozen_running_stats

#: keys of ``full_choice_loss`` and their defaults
FULL_CHOICE_DEFAULTS = dict(
    loss_weight=1.0, smallest_weight=0.0, random_weight=0.0)


class VARED2ModelMixin:
    """Efficiency loss and per-sample cost records for any mm model class
    whose modules contain VA-RED² dynamic layers (module docstring).

    Put it first in the bases (``class X(VARED2ModelMixin, Model)``): its
    ``__init__`` takes ``efficiency_loss`` and passes everything else on,
    its ``loss`` adds the efficiency terms to the base class's loss dict.

    Args:
        efficiency_loss (dict, optional): See :meth:`_init_vared2`.
        policy_rank (dict, optional): See :meth:`_init_vared2`.
        full_choice_loss (dict, optional): See :meth:`_init_vared2`.
        Others: those of the model class it is combined with.
    """

    def __init__(self,
                 *args,
                 efficiency_loss: Optional[dict] = None,
                 policy_rank: Optional[dict] = None,
                 full_choice_loss: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._init_vared2(efficiency_loss, policy_rank, full_choice_loss)

    def loss(self, *args, **kwargs) -> dict:
        """The base class's loss dict plus :meth:`vared2_loss`, with
        ``policy_rank`` ``loss_policy`` and its logged terms, with
        ``full_choice_loss`` the ``full_*`` (``smallest_*``, ``random_*``)
        terms."""
        # the extra forwards first: the training forward's cost records
        # must be the last
        measured = None
        if self._policy_rank is not None:
            measured = self._policy_rank.measure(
                self, lambda: self.vared2_clip_losses(*args, **kwargs))
        full = self.vared2_full_choice_losses(*args, **kwargs)
        losses = super().loss(*args, **kwargs)
        losses.update(self.vared2_loss())
        if measured is not None:
            losses.update(self._policy_rank.loss(measured))
        losses.update(full)
        return losses

    def vared2_full_choice_losses(self, *args, **kwargs) -> dict:
        """With ``full_choice_loss``: the base class's loss dict for the
        arguments of ``loss``, computed with every dynamic layer forced to
        the full choice ``(0, 0)`` (the shared weights as the plain
        network; the gates are not run), each key prefixed ``full_`` and
        each loss term (a key containing ``loss``) times ``loss_weight``;
        with ``smallest_weight > 0`` also the same dict with every layer
        forced to its smallest choice
        (:func:`~varedd_mm.ops.policy.smallest_policy`), keys prefixed
        ``smallest_``, loss terms times ``smallest_weight`` (the sandwich
        rule's two ends); with ``random_weight > 0`` also the dict of the
        network with each layer forced to a random choice, drawn anew every
        step (:func:`~varedd_mm.ops.policy.random_policy`; the draws:
        :meth:`_random_network`), keys prefixed ``random_``, loss terms
        times ``random_weight`` (the sandwich rule's random middle
        network). mmengine sums them into the total loss with the others.
        Without the option: ``{}``.

        Each forward leaves the BN running statistics and the random
        number generators' states as it found them
        (:func:`~varedd_mm.ops.policy_rank.frozen_running_stats`, dropout
        on): the statistics stay those of the learned policy, and the
        training forward draws the same dropout masks (and Gumbel noise)
        as without the option, the same as these forwards'. Cost: one more
        forward and backward per step for each of these networks; each
        one's graph is held until the step's backward (the full choice
        adds about one training forward's activations, the others less).
        """
        if self._full_choice_cfg is None:
            return {}
        networks = (('full', 'loss_weight', lambda: fixed_policy(self, 0, 0)),
                    ('smallest', 'smallest_weight',
                     lambda: smallest_policy(self)),
                    ('random', 'random_weight', self._random_network))
        out = {}
        for prefix, weight_key, policy in networks:
            weight = self._full_choice_cfg[weight_key]
            if weight == 0:  # off (loss_weight is > 0)
                continue
            # the loss may edit its data samples (mmdet's RoI head takes
            # the proposals out of them): each forward gets copies
            copied = copy.deepcopy((args, kwargs), {
                id(t): t
                for t in (*args, *kwargs.values()) if torch.is_tensor(t)
            })
            with frozen_running_stats(self, dropout=True), policy():
                losses = super().loss(*copied[0], **copied[1])
            for key, value in losses.items():
                if 'loss' in key:
                    value = ([weight * v for v in value] if isinstance(
                        value, (list, tuple)) else weight * value)
                out[f'{prefix}_{key}'] = value
        return out

    @contextmanager
    def _random_network(self) -> Iterator[None]:
        """Force every dynamic layer to a random choice
        (:func:`~varedd_mm.ops.policy.random_policy`), drawn from the
        model's own generator state, which moves on with every call.

        Not the global generator: the extra forwards restore its state, so
        when the training forward draws nothing from it (no Gumbel noise,
        no dropout) every step would take the same network. The state is
        seeded from ``torch.initial_seed()`` when the model is built (the
        runner's seed): the processes of a distributed run draw the same
        networks unless ``randomness.diff_rank_seed=True``. It is not saved
        in checkpoints: a resumed run starts the draws again from the
        seed.
        """
        draws = torch.Generator()
        draws.set_state(self._vared2_draws)
        with random_policy(self, draws):
            self._vared2_draws = draws.get_state()
            yield

    def vared2_clip_losses(self, *args, **kwargs) -> torch.Tensor:
        """The task loss of every row the dynamic layers run on (a clip,
        a view), shape ``(rows,)``, for a forward on the arguments of
        ``loss``; what ``policy_rank`` compares between choices. Task
        models that support ``policy_rank`` override it."""
        raise NotImplementedError

    def _init_vared2(self,
                     efficiency_loss: Optional[dict],
                     policy_rank: Optional[dict] = None,
                     full_choice_loss: Optional[dict] = None) -> None:
        """Build the efficiency loss and find the dynamic layers (called by
        ``__init__`` after the model is built).

        Args:
            efficiency_loss (dict, optional): Config of the efficiency loss,
                e.g. ``dict(type='EfficiencyLoss', loss_weight=0.1)``
                (built from mmengine's root registry, so it resolves under
                every codebase's scope). None trains without it; the cost
                ratios are still logged.
            policy_rank (dict, optional): ``dict(loss_weight=1.0,
                dims=None, options='first', layers_per_step=None,
                split=None, split_weight=1.0)`` adds the gates'
                counterfactual ranking loss ``loss_policy``
                (:mod:`varedd_mm.ops.policy_rank`; ``dims`` None: every
                dimension a dynamic layer reduces; ``options='all'`` ranks
                every reduced option of the search space, not only the
                first; ``layers_per_step=n``: ``n`` gates per step, in
                turn, each ranked by its own layer's reduction alone;
                ``split=q``: also ``loss_policy_split``, each gate trained
                to reduce the clips whose loss increase is below the
                batch's ``q``-quantile and keep the others), logged with
                ``policy_delta_<dim>`` (mean task loss increase of the
                reduction; ``policy_delta_<dim>_<k>`` from option ``k - 1``
                to ``k``), ``policy_rank_acc_<...>`` (share of clip pairs
                the gates order right) and with ``split``
                ``policy_split_acc_<...>`` (share of clips the gates label
                right). Only for task models with a per-clip task loss
                (``vared2_clip_losses``). None (default): the paper's
                training.
            full_choice_loss (dict, optional): ``dict(loss_weight=1.0,
                smallest_weight=0.0, random_weight=0.0)``: ``loss_weight``
                (> 0) also trains the shared weights as the plain network:
                every step adds the task losses of the network forced to
                the full choice, ``full_<key>``; ``smallest_weight`` (>= 0;
                0: off) also
                those of the network forced to its smallest choice,
                ``smallest_<key>`` (:meth:`vared2_full_choice_losses`;
                the sandwich rule's largest and smallest networks, as
                slimmable networks train; the smallest end is only
                trained together with the full one); ``random_weight``
                (>= 0; 0: off) also those of the network with every layer
                at a random choice, drawn per step, ``random_<key>`` (the
                sandwich rule's middle network). None (default): the
                paper's training.
        """
        self._full_choice_cfg = None
        if full_choice_loss is not None:
            self._full_choice_cfg = parse_options(
                full_choice_loss,
                FULL_CHOICE_DEFAULTS,
                'full_choice_loss', ('loss_weight', ),
                non_negative=('smallest_weight', 'random_weight'))
        # the random middle network's draws (_random_network), kept as a
        # generator state: a torch.Generator attribute would make the model
        # impossible to deep-copy (EMA, distillation teacher) on older torch
        self._vared2_draws = torch.Generator().manual_seed(
            (torch.initial_seed() + 1) % 2**64).get_state()
        self.efficiency_loss = (None if efficiency_loss is None else
                                MODELS.build(efficiency_loss))
        # without the loss the cost ratios are still logged
        self._ratios = EfficiencyLoss(loss_weight=0.0)
        named = dynamic_layers(self)
        if not named:
            raise ValueError(
                f'{type(self).__name__}: the model has no VA-RED2 dynamic '
                'layers (use a VARED2 backbone, or conv_cfg=dict(type='
                "'VARED2Conv3d' / 'VARED2Conv2d' / 'VARED2Conv2plus1d'))")
        self.vared2_layer_names = [n for n, _ in named]
        self._vared2_layers = [m for _, m in named]
        self._flops = track_flops(self)
        own = type(self).vared2_clip_losses
        if (policy_rank is not None
                and own is VARED2ModelMixin.vared2_clip_losses):
            raise ValueError(
                f'{type(self).__name__}: policy_rank needs the task loss of '
                'each clip, which this model does not define (supported: '
                'VARED2Recognizer3D); leave policy_rank=None')
        self._policy_rank = None if policy_rank is None else PolicyRanker(
            policy_rank, self._vared2_layers,
            f'{type(self).__name__}.policy_rank')

    def vared2_loss(self) -> Dict[str, torch.Tensor]:
        """The efficiency terms of the last (training) forward, for the
        loss dict: ``loss_eff`` (when the model has an efficiency loss) and
        the logged ratios."""
        if self.efficiency_loss is not None:
            return self.efficiency_loss(self._vared2_layers)
        terms = self._ratios(self._vared2_layers)
        terms.pop('loss_eff')
        return terms

    def vared2_attach(self,
                      predictions: Sequence,
                      rows_per_sample: Optional[int] = None,
                      sample_major: bool = True) -> List:
        """Attach the cost records of the last forward to ``predictions``.

        The dynamic layers ran on ``len(predictions) * rows_per_sample``
        rows (clips or windows; None: as many per sample as the forward
        ran), in the order the model called them:
        ``sample_major`` when the rows of a sample are contiguous (the
        views of a recognizer's clip), else row-major (one batch of all
        samples per sliding window, as mmseg's slide inference runs).

        Sets ``vared2_gflops`` (realised GFLOPs of each row of the sample),
        ``vared2_base_gflops`` (the base model's GFLOPs per row),
        ``vared2_choices`` (``(layers, rows, 2)``) and
        ``vared2_layer_names``, for the dynamic layers that ran (dynamic
        convs of a training-only head are left out).
        """
        per_row = self._flops.per_clip_macs() / 1e9
        rows = per_row.numel()
        n = len(predictions)
        if rows_per_sample is None:
            rows_per_sample = rows // max(n, 1)
        if rows != n * rows_per_sample:
            raise RuntimeError(
                f'{type(self).__name__}: the dynamic layers ran on {rows} '
                f'rows for {n} samples x {rows_per_sample} rows each')
        # layers that ran in this forward (a training-only head's dynamic
        # convs do not run at test time, and keep stale records)
        records = self._flops.choices
        ran = [(name, m)
               for name, m in zip(self.vared2_layer_names, self._vared2_layers)
               if records.get(id(m))]
        base = (self._flops.static_macs / rows + sum(m.full_macs
                                                     for _, m in ran)) / 1e9
        choices = torch.stack([torch.cat(records[id(m)])
                               for _, m in ran])  # (layers, rows, 2)
        names = [name for name, _ in ran]
        for i, sample in enumerate(predictions):
            if sample_major:
                idx = slice(i * rows_per_sample, (i + 1) * rows_per_sample)
            else:
                idx = slice(i, rows, n)
            sample.set_field(per_row[idx].clone(), 'vared2_gflops')
            sample.set_field(float(base), 'vared2_base_gflops')
            sample.set_field(choices[:, idx].clone(), 'vared2_choices')
            sample.set_field(names, 'vared2_layer_names')
        return predictions
