# Copyright (c) varedd_mm contributors. All rights reserved.
"""The glue between mmaction's ``Recognizer3D`` and the engine."""
from typing import Optional

import torch
from mmaction.models.recognizers import Recognizer3D
from mmaction.registry import MODELS

from varedd_mm.ops import EfficiencyLoss, dynamic_layers, track_flops


@MODELS.register_module()
class VARED2Recognizer3D(Recognizer3D):
    """``Recognizer3D`` + the efficiency loss + per-clip cost records.

    Training: the loss dict gains ``loss_eff`` (summed into the total loss)
    and the logged ``eff_ratio_expected`` / ``eff_ratio_realised``.
    Testing: every predicted data sample carries ``vared2_gflops`` (realised
    GFLOPs of each of its views, each with its own choices),
    ``vared2_base_gflops`` (the base model's GFLOPs per view),
    ``vared2_choices`` (``(layers, views, 2)`` choices) and
    ``vared2_layer_names``, which :class:`VARED2EfficiencyMetric` reads.

    Args:
        efficiency_loss (dict, optional): Config of the efficiency loss, for
            example ``dict(type='EfficiencyLoss', loss_weight=0.1)``. None
            trains without it (the cost ratios are still logged).
        Others: as ``Recognizer3D``.
    """

    def __init__(self,
                 *args,
                 efficiency_loss: Optional[dict] = None,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.efficiency_loss = (None if efficiency_loss is None else
                                MODELS.build(efficiency_loss))
        # without the loss the cost ratios are still logged
        self._ratios = EfficiencyLoss(loss_weight=0.0)
        named = dynamic_layers(self)
        if not named:
            raise ValueError('VARED2Recognizer3D: the model has no VA-RED2 '
                             'dynamic layers (use a VARED2 backbone or '
                             "conv_cfg=dict(type='VARED2Conv3d'))")
        self.vared2_layer_names = [n for n, _ in named]
        self._vared2_layers = [m for _, m in named]
        self._flops = track_flops(self)

    def loss(self, inputs: torch.Tensor, data_samples, **kwargs) -> dict:
        losses = super().loss(inputs, data_samples, **kwargs)
        if self.efficiency_loss is not None:
            losses.update(self.efficiency_loss(self._vared2_layers))
        else:
            eff = self._ratios(self._vared2_layers)
            eff.pop('loss_eff')
            losses.update(eff)
        return losses

    def predict(self, inputs: torch.Tensor, data_samples, **kwargs):
        predictions = super().predict(inputs, data_samples, **kwargs)
        views = inputs.shape[1]
        per_view = self._flops.per_clip_macs() / 1e9
        base = (self._flops.static_macs / per_view.numel() +
                sum(m.full_macs for m in self._vared2_layers)) / 1e9
        choices = torch.stack([
            torch.cat(rec) for rec in self._choices_records()
        ])  # (layers, N * views, 2)
        for n, sample in enumerate(predictions):
            sl = slice(n * views, (n + 1) * views)
            sample.set_field(per_view[sl].clone(), 'vared2_gflops')
            sample.set_field(float(base), 'vared2_base_gflops')
            sample.set_field(choices[:, sl].clone(), 'vared2_choices')
            sample.set_field(self.vared2_layer_names, 'vared2_layer_names')
        return predictions

    def _choices_records(self):
        """Per layer, the choices of every backbone call of the forward."""
        records = self._flops.choices
        return [records[id(m)] for m in self._vared2_layers]
