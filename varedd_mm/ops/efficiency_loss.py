# Copyright (c) varedd_mm contributors. All rights reserved.
"""The efficiency loss ``L_eff`` of VA-RED²."""
from typing import Dict, Optional, Sequence, Union

import torch
import torch.nn as nn

from .dynamic_base import DynamicConvMixin
from .policy import dynamic_layers


class EfficiencyLoss(nn.Module):
    """Penalise the expected cost of the soft policy.

    ``ratio = sum_l E_policy[MACs_l] / sum_l MACs_l(full)`` over the dynamic
    layers, with gate and cheap-op MACs in the numerator, averaged over the
    clips of the batch. Paper form (``target=None``):
    ``loss = loss_weight * ratio**2``. Budget form:
    ``loss = loss_weight * max(0, ratio - target)**2``.

    Calling it returns a dict whose ``loss_eff`` is summed into the total loss
    by mmengine (the key contains ``loss``) and whose ``eff_ratio_expected`` /
    ``eff_ratio_realised`` (arg-max choices) are only logged.

    ``cost`` picks the ratio the loss is computed from:

    * ``'expected'`` (the paper): the expected cost of the soft policy.
    * ``'realised'``: the value of the realised (arg-max) cost with the
      gradient of the expected cost (straight-through). Meant for gates
      trained with ``straight_through=True``, whose forward runs the arg-max
      choice: a budget on the expected cost can be met by probabilities
      that sit just on the full side of 0.5 (expected 0.50, realised 0.62
      in our demo run), a budget on the realised cost cannot.

    Args:
        loss_weight (float): ``lambda``. Defaults to 1.0.
        target (float, optional): Budget as a fraction of the full cost,
            in (0, 1]. Defaults to None (paper form).
        cost (str): ``'expected'`` or ``'realised'``. Defaults to
            ``'expected'``.
    """

    COSTS = ('expected', 'realised')

    def __init__(self,
                 loss_weight: float = 1.0,
                 target: Optional[float] = None,
                 cost: str = 'expected') -> None:
        super().__init__()
        if cost not in self.COSTS:
            raise ValueError(f'EfficiencyLoss.cost must be one of '
                             f'{self.COSTS}, got {cost!r}')
        self.cost = cost
        if not float(loss_weight) >= 0:
            raise ValueError(f'EfficiencyLoss.loss_weight must be >= 0, got '
                             f'{loss_weight!r}')
        if target is not None and not 0 < float(target) <= 1:
            raise ValueError(f'EfficiencyLoss.target must be in (0, 1] or '
                             f'None, got {target!r}')
        self.loss_weight = float(loss_weight)
        self.target = None if target is None else float(target)

    def forward(
        self, model: Union[nn.Module, Sequence[DynamicConvMixin]]
    ) -> Dict[str, torch.Tensor]:
        """Compute the loss from the last forward of ``model``.

        Args:
            model (nn.Module | Sequence): The model (its dynamic layers are
                found) or the dynamic layers themselves.

        Returns:
            dict: ``loss_eff``, ``eff_ratio_expected``, ``eff_ratio_realised``.
        """
        layers = ([m for _, m in dynamic_layers(model)] if isinstance(
            model, nn.Module) else list(model))
        if not layers:
            raise ValueError('EfficiencyLoss: no VA-RED2 dynamic layers')
        expected, realised, full = None, None, 0
        for m in layers:
            if m.last_expected_macs is None:
                raise RuntimeError(f'EfficiencyLoss: {type(m).__name__} has '
                                   'not run a forward yet')
            e = m.last_expected_macs.float()
            r = m.last_macs.float()
            expected = e if expected is None else expected + e
            realised = r if realised is None else realised + r
            full += m.full_macs
        ratio = expected.mean() / full
        realised_ratio = (realised.mean() / full).to(ratio)
        if self.cost == 'realised':
            ratio = realised_ratio + (ratio - ratio.detach())
        if self.target is None:
            loss = ratio**2
        else:
            loss = torch.clamp(ratio - self.target, min=0)**2
        return dict(
            loss_eff=self.loss_weight * loss,
            eff_ratio_expected=(expected.mean() / full).detach(),
            eff_ratio_realised=realised_ratio)
