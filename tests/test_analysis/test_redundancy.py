# Copyright (c) varedd_mm contributors. All rights reserved.
"""CC / RMSE / RP of feature maps (Table 12 of the paper)."""
import numpy as np
import pytest
import torch

from varedd_mm.analysis.redundancy import (RedundancyMeter, pair_stats,
                                           redundancy_proportion,
                                           split_tensors)


def test_split_tensors_layout():
    feat = torch.arange(2 * 3 * 2 * 2.).reshape(2, 3, 2, 2)  # C, T, H, W
    t = split_tensors(feat, 'temporal')
    c = split_tensors(feat, 'channel')
    assert t.shape == (3, 8) and c.shape == (2, 12)
    torch.testing.assert_close(t[1], feat[:, 1].flatten())
    torch.testing.assert_close(c[1], feat[1].flatten())
    with pytest.raises(
            ValueError,
            match=r"dim must be one of \('temporal', "
            r"'channel'\), got 'spatial'"):
        split_tensors(feat, 'spatial')
    with pytest.raises(ValueError, match=r'must be \(C, T, H, W\)'):
        split_tensors(feat[0], 'temporal')


def test_adjacent_matches_numpy():
    x = torch.randn(5, 40, dtype=torch.float64)
    st = pair_stats(x, 'adjacent')
    a = x.numpy()
    ref_cc = [np.corrcoef(a[i], a[i + 1])[0, 1] for i in range(4)]
    ref_rmse = [np.sqrt(np.mean((a[i] - a[i + 1])**2)) for i in range(4)]
    np.testing.assert_allclose(st['cc'].numpy(), ref_cc, rtol=1e-12)
    np.testing.assert_allclose(st['rmse'].numpy(), ref_rmse, rtol=1e-12)


def test_affine_copies_and_constants():
    base = torch.randn(30, dtype=torch.float64)
    x = torch.stack([base, 2 * base + 3, -base, torch.full_like(base, 7.)])
    st = pair_stats(x, 'adjacent')
    torch.testing.assert_close(st['cc'][:2],
                               torch.tensor([1., -1.], dtype=torch.float64))
    assert torch.isnan(st['cc'][2])  # constant tensor: no correlation
    torch.testing.assert_close(st['rmse'][0],
                               (base + 3).square().mean().sqrt())


def test_nearest_pairing_finds_the_best_partner():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2, 50, generator=g, dtype=torch.float64)
    x = torch.stack([a, b, a + 0.01 * b, torch.zeros(50, dtype=a.dtype)])
    st = pair_stats(x, 'nearest')
    # 0 and 2 are each other's partners; 1's best partner is 2 (it holds b)
    corr = np.corrcoef(x[:3].numpy())
    np.testing.assert_allclose(
        st['cc'][:3].numpy(), [corr[0, 2], corr[1, 2], corr[2, 0]], rtol=1e-12)
    assert torch.isnan(st['cc'][3])
    torch.testing.assert_close(st['rmse'][0],
                               (a - x[2]).square().mean().sqrt())
    # a single tensor has nothing to pair with
    assert pair_stats(x[:1], 'nearest')['cc'].numel() == 0


def test_rp_readings():
    cc = torch.tensor([0.99, 0.99, 0.5, float('nan')], dtype=torch.float64)
    rmse = torch.tensor([0.0, 0.5, 0.5, 0.0], dtype=torch.float64)
    # literal caption: CC and RMSE both above their thresholds
    assert redundancy_proportion(cc, rmse, 0.85, 1e-3, 'above') == 1 / 3
    assert redundancy_proportion(cc, rmse, 0.85, 1e-3, 'below') == 1 / 3
    assert redundancy_proportion(cc, rmse, 0.85, 1.0, 'below') == 2 / 3
    assert redundancy_proportion(cc[3:], rmse[3:]) is None
    with pytest.raises(
            ValueError,
            match=r"rmse_rule must be one of "
            r"\('above', 'below'\), got 'over'"):
        redundancy_proportion(cc, rmse, rmse_rule='over')


def test_meter_averages_clips_then_classes():
    # clip 0: identical frames (CC 1, RMSE 0); clip 1: independent frames
    frame = torch.randn(4, 1, 3, 3)
    static = frame.expand(4, 6, 3, 3)
    noisy = torch.randn(4, 6, 3, 3)
    feats = torch.stack([static, noisy])
    meter = RedundancyMeter(dims=('temporal', ), rmse_rule='below')
    meter.update('layer', feats, labels=torch.tensor([0, 1]))
    out = meter.summary()
    noisy_st = pair_stats(split_tensors(noisy, 'temporal'))
    t = out['layers']['layer']['temporal']
    assert t['num_clips'] == 2 and t['num_constant'] == 0
    assert t['cc'] == pytest.approx((1.0 + noisy_st['cc'].mean().item()) / 2)
    assert t['rmse'] == pytest.approx(noisy_st['rmse'].mean().item() / 2)
    s = out['by_class']['0']['layer']['temporal']
    assert s['cc'] == pytest.approx(1.0) and s['rmse'] == 0 and s['rp'] == 1
    assert out['settings'] == dict(
        pairing='adjacent', cc_thr=0.85, rmse_thr=1e-3, rmse_rule='below')
    # T = 1: nothing to pair, the layer is left out rather than reported 0
    meter.update('deep', torch.randn(2, 4, 1, 3, 3))
    assert 'deep' not in meter.summary()['layers']


def test_meter_errors():
    with pytest.raises(ValueError, match=r"dims must be one of"):
        RedundancyMeter(dims=('time', ))
    with pytest.raises(ValueError, match=r'cc_thr must be in \[-1, 1\]'):
        RedundancyMeter(cc_thr=2)
    with pytest.raises(ValueError, match=r'rmse_thr must be >= 0'):
        RedundancyMeter(rmse_thr=-1)
    with pytest.raises(ValueError, match=r"pairing must be one of"):
        RedundancyMeter(pairing='all')
    meter = RedundancyMeter()
    with pytest.raises(ValueError, match=r'expected \(N, C, T, H, W\)'):
        meter.update('x', torch.randn(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r'1 labels for 2 clips'):
        meter.update('x', torch.randn(2, 3, 2, 4, 4), torch.tensor([0]))
