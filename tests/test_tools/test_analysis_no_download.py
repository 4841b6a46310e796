# Copyright (c) varedd_mm contributors. All rights reserved.
"""The analysis tools build every shipped config without fetching weights:
the base configs' ImageNet / Kinetics initialisations are dropped by the
one helper they all use (``varedd_mm.analysis.load_model``)."""
import ast
import glob
import os.path as osp
import socket
import sys

import pytest
import torch
from mmengine.config import Config

from varedd_mm import clip_gflops, dynamic_layers, fixed_policy, track_flops
from varedd_mm.analysis import as_network, load_model, without_pretrained

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
CONFIGS = sorted(
    p for p in glob.glob(
        osp.join(ROOT, 'configs', '**', '*.py'), recursive=True)
    if '_base_' not in p)
TOOLS = ('get_flops.py', 'benchmark.py', 'redundancy.py')


@pytest.fixture
def no_network(monkeypatch):
    """Any connection attempt or torchvision import fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError(f'network access attempted: {args[1:]}')

    monkeypatch.setattr(socket.socket, 'connect', refuse)
    monkeypatch.setattr(socket.socket, 'connect_ex', refuse)
    monkeypatch.setattr(socket, 'create_connection', refuse)
    monkeypatch.setitem(sys.modules, 'torchvision', None)


def test_configs_found():
    assert len(CONFIGS) >= 45
    kinds = {osp.relpath(p, ROOT).split(osp.sep)[1] for p in CONFIGS}
    assert kinds == {'recognition', 'segmentation', 'detection'}


@pytest.mark.parametrize(
    'path', CONFIGS, ids=[osp.relpath(p, ROOT) for p in CONFIGS])
def test_config_builds_for_flops_without_downloads(path, no_network):
    _, model = load_model(path)
    net, dims = as_network(model)
    net.eval()
    track_flops(net)
    if dims == 3:
        clip_len = Config.fromfile(
            path).val_dataloader.dataset.pipeline[1]['clip_len']
        x = torch.randn(1, 3, clip_len, 32, 32)
    else:
        x = torch.randn(1, 3, 64, 64)
    dynamic = bool(dynamic_layers(net))
    assert dynamic == osp.basename(path).startswith('vared2')
    with torch.no_grad():
        if dynamic:
            with fixed_policy(net, 0, 0):
                net(x)
        else:
            net(x)
        full = clip_gflops(net).item()
    assert full > 0
    if dynamic:
        with torch.no_grad(), fixed_policy(net, 1, 1):
            net(x)
            assert clip_gflops(net).item() < full


@pytest.mark.parametrize(
    'name, keys',
    [('recognition/vared2/i3d_imagenet-pretrained-r50_8xb8-16x5x1-100e_'
      'minik200-rgb.py',
      ['model.backbone.pretrained', 'model.backbone.pretrained2d']),
     ('recognition/vared2/tpn-slowonly_imagenet-pretrained-r50_8xb8-8x8x1-'
      '150e_minik200-rgb.py', ['model.backbone.pretrained']),
     ('detection/vared2/slowonly_kinetics400-pretrained-r50_8xb8-8x2x1-20e_'
      'jhmdb-split1-rgb.py', ['model.init_cfg']),
     ('segmentation/vared2/pspnet_r18-d8_4xb2-100k_ade20k-512x512.py',
      ['model.pretrained']),
     ('recognition/vared2/vared2-k2_r2plus1d_r18_8xb16-16x2x1-30e_minik200-'
      'rgb.py', ['load_from'])])
def test_without_pretrained_drops_each_download(name, keys):
    cfg = Config.fromfile(osp.join(ROOT, 'configs', name))
    assert sorted(without_pretrained(cfg)) == sorted(keys)
    assert without_pretrained(cfg) == []  # nothing left to drop
    assert cfg.get('load_from') is None


def test_without_pretrained_keeps_other_init_cfgs():
    cfg = Config(
        dict(
            model=dict(
                init_cfg=[
                    dict(type='Kaiming', layer='Conv2d'),
                    dict(type='Pretrained', checkpoint='x.pth')
                ],
                head=dict(init_cfg=dict(type='Normal', std=0.01)))))
    assert without_pretrained(cfg) == ['model.init_cfg']
    assert cfg.model.init_cfg == [dict(type='Kaiming', layer='Conv2d')]
    assert cfg.model.head.init_cfg == dict(type='Normal', std=0.01)


@pytest.mark.parametrize('tool', TOOLS)
def test_analysis_tools_build_models_through_load_model(tool):
    """One helper for every tool: a tool that built its model another way
    could fetch weights again."""
    with open(osp.join(ROOT, 'tools', 'analysis', tool)) as f:
        tree = ast.parse(f.read())
    called = {
        node.func.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    attrs = {
        node.func.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
    }
    assert 'load_model' in called
    assert 'build_model_from_cfg' not in called
    assert not {'init_weights', 'build'} & attrs  # e.g. MODELS.build
