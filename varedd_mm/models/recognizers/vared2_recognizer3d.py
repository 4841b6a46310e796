# Copyright (c) varedd_mm contributors. All rights reserved.
"""mmaction's ``Recognizer3D`` with the VA-RED² glue."""

import copy
from typing import Optional

import torch
import torch.nn.functional as F
from mmaction.models.recognizers import Recognizer3D
from mmaction.registry import MODELS

from varedd_mm.models.vared2_model import VARED2ModelMixin
from varedd_mm.ops import fixed_policy
from varedd_mm.ops.config import parse_options

#: keys of ``inplace_distill`` and their defaults
DISTILL_DEFAULTS = dict(loss_weight=1.0, temperature=1.0, teacher='current')
DISTILL_TEACHERS = ('current', 'initial')


def _parse_distill(cfg: Optional[dict]) -> Optional[dict]:
    if cfg is None:
        return None
    parsed = parse_options(cfg, DISTILL_DEFAULTS, 'inplace_distill',
                           ('loss_weight', 'temperature'))
    if parsed['teacher'] not in DISTILL_TEACHERS:
        raise ValueError(f'inplace_distill.teacher must be one of '
                         f'{DISTILL_TEACHERS}, got {parsed["teacher"]!r}')
    return parsed


def check_clip_layout(inputs: torch.Tensor, owner: str) -> None:
    """Raise a ``ValueError`` naming the expected layout unless ``inputs``
    is a 6-d ``(N, views, C, T, H, W)`` tensor.

    A 3D recognizer folds the views into the batch before its backbone; a
    5-d ``(N, C, T, H, W)`` clip would be folded along its channels and
    fail deep inside the first conv with a message about that conv.
    """
    if isinstance(inputs, torch.Tensor) and inputs.dim() == 6:
        return
    got = (f'a {inputs.dim()}-d tensor of shape {tuple(inputs.shape)}'
           if isinstance(inputs, torch.Tensor) else type(inputs).__name__)
    hint = (' A 5-d tensor is one view per sample without its views axis: '
            'pass x[:, None].'
            if isinstance(inputs, torch.Tensor) and inputs.dim() == 5 else '')
    raise ValueError(
        f'{owner} takes clips as a 6-d tensor (N, views, C, T, H, W): N '
        'samples, views (clips x crops) per sample, C channels, T frames, '
        f'H x W pixels; got {got}.{hint} The data preprocessor builds this '
        'layout from a dataloader batch; varedd_mm.analysis.as_network('
        'model) gives a network that takes (N, C, T, H, W) clips.')


@MODELS.register_module()
class VARED2Recognizer3D(VARED2ModelMixin, Recognizer3D):
    """``Recognizer3D`` + the efficiency loss + per-clip cost records
    (:class:`~varedd_mm.models.vared2_model.VARED2ModelMixin`).

    Training: the loss dict gains ``loss_eff`` (summed into the total loss)
    and the logged ``eff_ratio_expected`` / ``eff_ratio_realised``.
    Testing: every predicted data sample carries ``vared2_gflops`` (realised
    GFLOPs of each of its views, each with its own choices),
    ``vared2_base_gflops`` (the base model's GFLOPs per view),
    ``vared2_choices`` (``(layers, views, 2)`` choices) and
    ``vared2_layer_names``, which :class:`VARED2EfficiencyMetric` reads.

    Distillation (optional, ``inplace_distill``): the network with every
    gate forced to the full choice (0, 0), either the model itself (shared
    weights, as slimmable networks train their sub-networks) or a frozen
    copy taken at the first training step, is run first on the training
    batch without gradients, and ``loss_distill`` = ``loss_weight * T**2 *
    KL(softmax(teacher / T) || softmax(student / T))`` on the class scores
    pulls the dynamic model's scores towards it. One extra forward per
    step (and, with the frozen copy, a second set of weights in memory).
    On the embedded harder benchmark it lowered top-1 in every setting
    tried (docs/policy.md), so it is off by default.

    Args:
        efficiency_loss (dict, optional): Config of the efficiency loss, for
            example ``dict(type='EfficiencyLoss', loss_weight=0.1)``. None
            trains without it (the cost ratios are still logged).
        inplace_distill (dict, optional): ``dict(loss_weight=1.0,
            temperature=1.0, teacher='current')`` (both numbers > 0) to add
            ``loss_distill``; ``teacher='current'``: the model itself at
            the full option (shared weights, training-mode BN), ``'initial'``:
            a frozen eval-mode copy of the model taken at the first training
            step, at the full option. None (default) trains without it.
        policy_rank (dict, optional): ``dict(loss_weight=1.0, dims=None,
            options='first', layers_per_step=None)`` to train the gates to
            rank the clips of each batch by what a reduction actually costs
            them in the task loss (:mod:`varedd_mm.ops.policy_rank`,
            docs/policy.md); a keyword of :class:`VARED2ModelMixin`. None
            (default): the paper's training.
        full_choice_loss (dict, optional): ``dict(loss_weight=1.0,
            smallest_weight=0.0)`` to also train the shared weights as the
            plain network (the ``full_*`` loss terms of the network forced
            to the full choice) and, with ``smallest_weight > 0``, as the
            network forced to its smallest choice (``smallest_*``); a
            keyword of :class:`VARED2ModelMixin`. With
            ``inplace_distill`` and ``teacher='current'`` the teacher is
            the same network without gradients, run once more. None
            (default): the paper's training.
        Others: as ``Recognizer3D``.
    """

    def __init__(self,
                 *args,
                 inplace_distill: Optional[dict] = None,
                 **kwargs) -> None:
        self._distill_cfg = _parse_distill(inplace_distill)
        super().__init__(*args, **kwargs)

    def loss(self, inputs: torch.Tensor, data_samples, **kwargs) -> dict:
        """The recognizer's losses, ``loss_eff`` and, with
        ``inplace_distill``, ``loss_distill``."""
        if self._distill_cfg is None:
            return super().loss(inputs, data_samples, **kwargs)
        teacher_model = self._teacher()
        with torch.no_grad(), fixed_policy(teacher_model, 0, 0):
            feats, head_kwargs = teacher_model.extract_feat(
                inputs, data_samples=data_samples)
            teacher = teacher_model.cls_head(feats, **head_kwargs)
        scores = []
        handle = self.cls_head.register_forward_hook(
            lambda module, args, out: scores.append(out))
        try:  # the student's forward runs last: its cost records count
            losses = super().loss(inputs, data_samples, **kwargs)
        finally:
            handle.remove()
        t = self._distill_cfg['temperature']
        kl = F.kl_div(
            F.log_softmax(scores[-1] / t, dim=1),
            F.softmax(teacher / t, dim=1),
            reduction='batchmean')
        losses['loss_distill'] = self._distill_cfg['loss_weight'] * t * t * kl
        return losses

    def _teacher(self):
        """The model itself (``teacher='current'``) or, for ``'initial'``,
        a frozen eval-mode copy of it taken at the first training step (the
        base checkpoint's weights when fine-tuning from it). The copy is not
        a registered submodule: it is in no state dict and no optimizer,
        and stays on the device of that first step."""
        if self._distill_cfg['teacher'] == 'current':
            return self
        teacher = self.__dict__.get('_distill_teacher')
        if teacher is None:
            teacher = copy.deepcopy(self).eval()
            teacher.requires_grad_(False)
            object.__setattr__(self, '_distill_teacher', teacher)
        return teacher

    def vared2_clip_losses(self, inputs: torch.Tensor, data_samples,
                           **kwargs) -> torch.Tensor:
        """Cross-entropy of every view's class scores against its
        sample's label, shape ``(N * views,)`` (views of a sample
        contiguous, as the dynamic layers see them), for ``policy_rank``.
        Single-label classification only (one class index per sample)."""
        # without data samples the TPN neck skips its auxiliary head
        feats, head_kwargs = self.extract_feat(inputs)
        head_kwargs.pop('loss_aux', None)
        scores = self.cls_head(feats, **head_kwargs)
        labels = []
        for i, sample in enumerate(data_samples):
            label = sample.gt_label
            if label.numel() != 1 or label.is_floating_point():
                raise ValueError(
                    'policy_rank takes one class index per sample; sample '
                    f'{i} has gt_label {tuple(label.shape)} of '
                    f'{label.dtype} (soft or multiple labels: use '
                    'policy_rank=None)')
            labels.append(label.reshape(()))
        labels = torch.stack(labels).to(scores.device)
        if scores.shape[0] % labels.shape[0]:
            raise RuntimeError(
                f'policy_rank: {scores.shape[0]} score rows for '
                f'{labels.shape[0]} samples')
        labels = labels.repeat_interleave(scores.shape[0] // labels.shape[0])
        return F.cross_entropy(scores, labels, reduction='none')

    def extract_feat(self, inputs: torch.Tensor, *args, **kwargs) -> tuple:
        """``Recognizer3D.extract_feat`` after checking the input layout.

        Args:
            inputs (torch.Tensor): ``(N, views, C, T, H, W)`` clips.
            Others: as ``Recognizer3D.extract_feat``.
        """
        check_clip_layout(inputs, type(self).__name__)
        return super().extract_feat(inputs, *args, **kwargs)

    def predict(self, inputs: torch.Tensor, data_samples, **kwargs):
        predictions = super().predict(inputs, data_samples, **kwargs)
        return self.vared2_attach(predictions, rows_per_sample=inputs.shape[1])

    def vared2_inference_forward(self, data_batch: dict):
        """``predict`` on a *training* batch (for BN recalibration), without
        ``test_cfg.max_testing_views``: that memory-saving chunking of the
        views takes one sample per batch; a training batch fits as it is."""
        data = self.data_preprocessor(data_batch, False)
        test_cfg = self.test_cfg
        if test_cfg and 'max_testing_views' in test_cfg:
            self.test_cfg = {
                k: v
                for k, v in test_cfg.items() if k != 'max_testing_views'
            }
        try:
            return self._run_forward(data, mode='predict')
        finally:
            self.test_cfg = test_cfg
