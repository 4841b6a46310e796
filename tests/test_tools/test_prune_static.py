# Copyright (c) varedd_mm contributors. All rights reserved.
"""tools/analysis/prune_static.py (Table 7 of the paper's baselines): each
criterion hits the GFLOPs target, and the pruned config + checkpoint train
and test through the standard tools (real sample clips of
../shared/data/mmaction2_samples)."""
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from varedd_mm.analysis import as_network, load_model
from varedd_mm.analysis.model_utils import build_model_from_cfg
from varedd_mm.analysis.prune import network_gflops

pytest.importorskip('torch_pruning', reason='the prune extra is needed')

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
BASE = osp.join(ROOT, 'configs', 'recognition', 'vared2', 'demo',
                'r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-rgb.py')


@pytest.fixture(scope='module')
def base_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    _, model = load_model(BASE)
    path = tmp_path_factory.mktemp('base') / 'base.pth'
    torch.save(dict(state_dict=model.state_dict()), path)
    return str(path)


@pytest.mark.parametrize('method', ['l1', 'slimming', 'fpgm'])
def test_each_method_reaches_the_target(method, base_ckpt, tmp_path, run_tool):
    target = 0.3  # the unpruned demo model: 0.476 GFLOPs per 8x32x32 clip
    wd = tmp_path / method
    out = run_tool([
        'tools/analysis/prune_static.py', BASE, base_ckpt, '--target-gflops',
        str(target), '--method', method, '--work-dir',
        str(wd)
    ])
    gflops = float(re.search(r': ([\d.]+) GFLOPs per clip', out).group(1))
    assert abs(gflops - target) <= 0.05 * target
    # the written config rebuilds the pruned widths; the checkpoint loads
    # strictly into it, and the GFLOPs agree
    cfg = Config.fromfile(str(wd / 'pruned_config.py'))
    assert cfg.model.type == 'VARED2PrunedModel'
    assert cfg.load_from == str(wd / 'pruned.pth')
    model = build_model_from_cfg(cfg)
    ckpt = torch.load(str(wd / 'pruned.pth'), map_location='cpu')
    model.load_state_dict(ckpt['state_dict'], strict=True)
    assert ckpt['meta']['pruning']['method'] == method
    net, _ = as_network(model.eval())
    counted = network_gflops(net, torch.randn(1, 3, 8, 32, 32))
    assert counted == pytest.approx(ckpt['meta']['pruning']['gflops'])
    assert counted == pytest.approx(gflops, abs=1e-3)  # printed to 3 dp
    base_params = sum(p.numel() for p in load_model(BASE)[1].parameters())
    assert sum(p.numel() for p in model.parameters()) < base_params


def test_refuses_unreachable_targets(base_ckpt, tmp_path):
    from varedd_mm.analysis.prune import prune_to_gflops
    _, model = load_model(BASE, base_ckpt)
    net, _ = as_network(model)
    x = torch.randn(1, 3, 8, 32, 32)
    with pytest.raises(ValueError, match='target_gflops must be in'):
        prune_to_gflops(net, x, 1.0, 'l1', [])
    with pytest.raises(ValueError, match='method must be one of'):
        prune_to_gflops(net, x, 0.3, 'random', [])


def test_pruned_model_trains_and_tests_with_the_standard_tools(
        base_ckpt, tmp_path, sample_clip_opts, run_tool):
    wd = tmp_path / 'prune'
    run_tool([
        'tools/analysis/prune_static.py', BASE, base_ckpt, '--target-gflops',
        '0.3', '--method', 'l1', '--work-dir',
        str(wd)
    ])
    opts = sample_clip_opts
    cfg = str(wd / 'pruned_config.py')
    log = run_tool([
        'tools/train.py', cfg, '--work-dir',
        str(tmp_path / 'ft'), '--cfg-options'
    ] + opts)
    assert 'Load checkpoint from' in log and 'loss_cls' in log
    assert 'size mismatch' not in log and 'missing keys' not in log
    log = run_tool([
        'tools/test.py', cfg,
        str(tmp_path / 'ft' / 'epoch_1.pth'), '--work-dir',
        str(tmp_path / 'test'), '--cfg-options'
    ] + opts)
    assert 'acc/top1' in log
