# Copyright (c) varedd_mm contributors. All rights reserved.
"""Redundancy of video feature maps (Table 12 of the paper).

For one clip's feature map ``(C, T, H, W)`` of a layer, the *tensors* along
a dimension are its slices: along ``temporal`` the ``T`` frame maps of shape
``(C, H, W)``, along ``channel`` the ``C`` channel maps of shape
``(T, H, W)``. Each tensor is compared with a partner:

* ``pairing='adjacent'``: tensor ``i`` with tensor ``i + 1`` (``n - 1``
  comparisons; the reading of "neighbouring frames are alike").
* ``pairing='nearest'``: tensor ``i`` with the other tensor of highest
  correlation (``n`` comparisons; "this tensor could be rebuilt from
  another one").

Per comparison: the Pearson correlation coefficient (CC) of the two
flattened tensors and the root mean square error (RMSE) between them. A
tensor is *redundant* when ``CC > cc_thr`` and the RMSE passes
``rmse_thr`` in the direction ``rmse_rule``: ``'above'`` is the caption of
Table 12 of the paper read literally ("both CC and RMSE above 0.85 and
0.001"), ``'below'`` the other plausible reading (alike *and* close). The
redundancy proportion (RP) is the share of redundant tensors among the
compared ones.

A tensor with zero variance (e.g. a channel that ReLU zeroed everywhere)
has no correlation coefficient; its comparisons are left out of CC and RP
and counted in ``num_constant``.
"""
from typing import Dict, Optional

import torch

DIMS = ('temporal', 'channel')
PAIRINGS = ('adjacent', 'nearest')
RMSE_RULES = ('above', 'below')


def _check_choice(name: str, value: str, allowed) -> None:
    if value not in allowed:
        raise ValueError(f'{name} must be one of {allowed}, got {value!r}')


def split_tensors(feat: torch.Tensor, dim: str) -> torch.Tensor:
    """The tensors of one clip's feature map along ``dim``, flattened.

    Args:
        feat (torch.Tensor): ``(C, T, H, W)``.
        dim (str): ``'temporal'`` or ``'channel'``.

    Returns:
        torch.Tensor: ``(T, C*H*W)`` or ``(C, T*H*W)``.
    """
    _check_choice('dim', dim, DIMS)
    if feat.dim() != 4:
        raise ValueError('feature map must be (C, T, H, W) for one clip, got '
                         f'shape {tuple(feat.shape)}')
    if dim == 'temporal':
        return feat.transpose(0, 1).reshape(feat.shape[1], -1)
    return feat.reshape(feat.shape[0], -1)


def pair_stats(tensors: torch.Tensor,
               pairing: str = 'adjacent') -> Dict[str, torch.Tensor]:
    """CC and RMSE of each tensor with its partner.

    Args:
        tensors (torch.Tensor): ``(n, D)``, one flattened tensor a row.
        pairing (str): ``'adjacent'`` or ``'nearest'``.

    Returns:
        dict: ``cc`` and ``rmse`` (float64, one value per comparison; ``cc``
        is NaN where a tensor of the pair is constant).
    """
    _check_choice('pairing', pairing, PAIRINGS)
    x = tensors.detach().to(torch.float64)
    n, d = x.shape
    if n < 2:
        empty = x.new_zeros(0)
        return dict(cc=empty, rmse=empty)
    centred = x - x.mean(dim=1, keepdim=True)
    norm = centred.norm(dim=1)
    constant = norm == 0
    unit = centred / torch.where(constant, torch.ones_like(norm),
                                 norm).unsqueeze(1)
    if pairing == 'adjacent':
        cc = (unit[:-1] * unit[1:]).sum(dim=1)
        cc[constant[:-1] | constant[1:]] = float('nan')
        rmse = (x[:-1] - x[1:]).square().mean(dim=1).sqrt()
        return dict(cc=cc, rmse=rmse)
    corr = unit @ unit.t()
    bad = constant.unsqueeze(0) | constant.unsqueeze(1)
    corr[bad] = float('nan')
    search = corr.clone()
    search[bad] = -float('inf')
    search.fill_diagonal_(-float('inf'))
    best, partner = search.max(dim=1)
    cc = corr[torch.arange(n), partner]
    cc[constant | torch.isinf(best)] = float('nan')
    rmse = (x - x[partner]).square().mean(dim=1).sqrt()
    return dict(cc=cc, rmse=rmse)


def redundancy_proportion(cc: torch.Tensor,
                          rmse: torch.Tensor,
                          cc_thr: float = 0.85,
                          rmse_thr: float = 1e-3,
                          rmse_rule: str = 'above') -> Optional[float]:
    """Share of the (non-constant) comparisons that count as redundant.

    Returns:
        float | None: RP in [0, 1], or None if no comparison has a CC.
    """
    _check_choice('rmse_rule', rmse_rule, RMSE_RULES)
    valid = ~torch.isnan(cc)
    if not bool(valid.any()):
        return None
    close = rmse > rmse_thr if rmse_rule == 'above' else rmse < rmse_thr
    redundant = (cc > cc_thr) & close & valid
    return float(redundant.sum()) / float(valid.sum())


class RedundancyMeter:
    """Average CC, RMSE and RP per layer and dimension over clips.

    Every clip counts once: its tensors' values are averaged first, then
    the clip averages are averaged (per class too, if labels are given).

    Args:
        dims (tuple[str]): Dimensions to analyse. Defaults to both.
        pairing (str): See :func:`pair_stats`. Defaults to ``'adjacent'``.
        cc_thr (float): CC threshold. Defaults to 0.85.
        rmse_thr (float): RMSE threshold. Defaults to 0.001.
        rmse_rule (str): ``'above'`` (the caption read literally) or
            ``'below'``. Defaults to ``'above'``.
    """

    def __init__(self,
                 dims=DIMS,
                 pairing: str = 'adjacent',
                 cc_thr: float = 0.85,
                 rmse_thr: float = 1e-3,
                 rmse_rule: str = 'above') -> None:
        dims = tuple(dims)
        if not dims:
            raise ValueError(f'dims must be a non-empty subset of {DIMS}')
        for d in dims:
            _check_choice('dims', d, DIMS)
        _check_choice('pairing', pairing, PAIRINGS)
        _check_choice('rmse_rule', rmse_rule, RMSE_RULES)
        if not -1 <= float(cc_thr) <= 1:
            raise ValueError(f'cc_thr must be in [-1, 1], got {cc_thr!r}')
        if not float(rmse_thr) >= 0:
            raise ValueError(f'rmse_thr must be >= 0, got {rmse_thr!r}')
        self.dims = dims
        self.pairing = pairing
        self.cc_thr = float(cc_thr)
        self.rmse_thr = float(rmse_thr)
        self.rmse_rule = rmse_rule
        # (layer, dim, group) -> {stat: [sum, count]}, group 'all' or label
        self._sums: Dict[tuple, Dict[str, list]] = {}
        self._constant: Dict[tuple, int] = {}
        self._layers: list = []

    def _add(self, key, stat, value) -> None:
        if value is None:
            return
        entry = self._sums.setdefault(key, {})
        acc = entry.setdefault(stat, [0.0, 0])
        acc[0] += float(value)
        acc[1] += 1

    def update(self,
               layer: str,
               feats: torch.Tensor,
               labels: Optional[torch.Tensor] = None) -> None:
        """Add the feature maps of a batch of clips at one layer.

        Args:
            layer (str): Layer name.
            feats (torch.Tensor): ``(N, C, T, H, W)``.
            labels (torch.Tensor, optional): ``(N,)`` class of each clip.
        """
        if feats.dim() != 5:
            raise ValueError(f'{layer}: expected (N, C, T, H, W) feature '
                             f'maps, got shape {tuple(feats.shape)}')
        if labels is not None and len(labels) != feats.shape[0]:
            raise ValueError(f'{layer}: {len(labels)} labels for '
                             f'{feats.shape[0]} clips')
        if layer not in self._layers:
            self._layers.append(layer)
        for i in range(feats.shape[0]):
            groups = ['all']
            if labels is not None:
                groups.append(int(labels[i]))
            for dim in self.dims:
                st = pair_stats(
                    split_tensors(feats[i], dim), pairing=self.pairing)
                if st['cc'].numel() == 0:
                    continue  # a single tensor (e.g. T = 1): nothing to pair
                valid = ~torch.isnan(st['cc'])
                rp = redundancy_proportion(st['cc'], st['rmse'], self.cc_thr,
                                           self.rmse_thr, self.rmse_rule)
                for g in groups:
                    key = (layer, dim, g)
                    self._constant[key] = (
                        self._constant.get(key, 0) + int((~valid).sum()))
                    if bool(valid.any()):
                        self._add(key, 'cc', st['cc'][valid].mean())
                    self._add(key, 'rmse', st['rmse'].mean())
                    self._add(key, 'rp', rp)

    def summary(self) -> dict:
        """Per layer and dimension: ``cc``, ``rmse``, ``rp`` (clip means),
        ``num_clips`` and ``num_constant``; per class under ``by_class``."""

        def block(group):
            out = {}
            for layer in self._layers:
                per_dim = {}
                for dim in self.dims:
                    key = (layer, dim, group)
                    entry = self._sums.get(key)
                    if entry is None:
                        continue
                    stats = {
                        s: (entry[s][0] / entry[s][1] if s in entry else None)
                        for s in ('cc', 'rmse', 'rp')
                    }
                    stats['num_clips'] = entry['rmse'][1]
                    stats['num_constant'] = self._constant.get(key, 0)
                    per_dim[dim] = stats
                if per_dim:
                    out[layer] = per_dim
            return out

        labels = sorted({k[2] for k in self._sums if k[2] != 'all'})
        return dict(
            settings=dict(
                pairing=self.pairing,
                cc_thr=self.cc_thr,
                rmse_thr=self.rmse_thr,
                rmse_rule=self.rmse_rule),
            layers=block('all'),
            by_class={str(c): block(c)
                      for c in labels})
