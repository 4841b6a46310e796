# Copyright (c) varedd_mm contributors. All rights reserved.
"""Every config of configs/*/vared2 has one metafile.yml entry with the
fields mmaction's model-zoo metafiles carry, and the entry agrees with its
config (schedule, batch size, input) and with its base model's FLOPs."""
import glob
import os.path as osp
import re

import mmengine
import pytest
import torch
from mmengine.analysis import FlopAnalyzer
from mmengine.config import Config

from varedd_mm import fixed_policy
from varedd_mm.analysis import as_network, default_input_shape, load_model

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TASKS = ('recognition', 'segmentation', 'detection')
FIELDS = ('Architecture', 'Batch Size', 'FLOPs', 'Parameters', 'Pretrained',
          'Resolution', 'Training Data', 'Training Resources')


def metafile(task):
    return mmengine.load(
        osp.join(ROOT, 'configs', task, 'vared2', 'metafile.yml'))


def configs(task):
    return sorted(
        osp.relpath(p, ROOT) for p in glob.glob(
            osp.join(ROOT, 'configs', task, 'vared2', '**', '*.py'),
            recursive=True))


def entries():
    return [(task, model) for task in TASKS
            for model in metafile(task)['Models']]


def gflops(text):
    m = re.fullmatch(r'(\d+\.\d+)G', text)
    assert m, f'FLOPs must read like 11.86G, got {text!r}'
    return float(m[1])


@pytest.mark.parametrize('task', TASKS)
def test_every_config_has_exactly_one_entry(task):
    meta = metafile(task)
    listed = [m['Config'] for m in meta['Models']]
    assert sorted(listed) == configs(task)
    names = [m['Name'] for m in meta['Models']]
    assert len(set(names)) == len(names)
    collections = {c['Name'] for c in meta['Collections']}
    assert meta['Collections'][0]['README'] == (
        f'configs/{task}/vared2/README.md')
    for m in meta['Models']:
        assert m['In Collection'] in collections


@pytest.mark.parametrize(
    'task, model', entries(), ids=[m['Name'] for _, m in entries()])
def test_entry_fields_agree_with_the_config(task, model):
    path = model['Config']
    assert model['Name'] == osp.splitext(osp.basename(path))[0]
    assert model['Modality'] == 'RGB'
    meta = model['Metadata']
    missing = [f for f in FIELDS if f not in meta]
    assert not missing, f'{model["Name"]}: no {missing}'
    cfg = Config.fromfile(osp.join(ROOT, path))
    if cfg.train_cfg.get('type') == 'IterBasedTrainLoop':
        assert meta['Iterations'] == cfg.train_cfg.max_iters
    else:
        assert meta['Epochs'] == cfg.train_cfg.max_epochs
    assert meta['Batch Size'] == cfg.train_dataloader.batch_size
    gpus = int(re.search(r'_(\d+)xb\d+', model['Name'])[1])
    if '/demo/' not in path:
        assert meta['Training Resources'] == f'{gpus} GPUs'
    assert gflops(meta['FLOPs']) > 0
    assert re.fullmatch(r'\d+\.\d+M', meta['Parameters'])
    dynamic = model['Name'].startswith('vared2')
    if dynamic:
        assert gflops(meta['FLOPs at choice (1, 1)']) < gflops(meta['FLOPs'])
    if task != 'detection':  # detection FLOPs are at the J-HMDB frame size
        dims = 2 if task == 'segmentation' else 3
        shape, _ = default_input_shape(cfg, dims)
        assert meta['Resolution'] == f'{shape[-2]}x{shape[-1]}'
        if dims == 3:
            assert meta['Frames'] == shape[0]


def test_dynamic_entries_cost_their_base_at_the_full_choice():
    """A VA-RED2 model's full choice runs its base's ops: same FLOPs as the
    base config's entry it is fine-tuned from (the one its load_from
    names)."""
    checked = 0
    for task in TASKS:
        by_name = {m['Name']: m for m in metafile(task)['Models']}
        for name, model in by_name.items():
            base = model['Metadata']['Pretrained'].split(' ')[0]
            if name.startswith('vared2') and base in by_name:
                assert model['Metadata']['FLOPs'] == (
                    by_name[base]['Metadata']['FLOPs']), name
                checked += 1
    assert checked >= 25


@pytest.mark.parametrize('task, name', [
    ('recognition', 'r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-rgb'),
    ('recognition', 'vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb'),
    ('segmentation', 'pspnet_r18-d8_1xb8-1k_synthetic-seg-64x64'),
])
def test_flops_are_what_mmengine_counts(task, name):
    """Recount the cheap (demo) entries at their stated input."""
    model = {m['Name']: m for m in metafile(task)['Models']}[name]
    meta = model['Metadata']
    _, task_model = load_model(osp.join(ROOT, model['Config']))
    net, dims = as_network(task_model)
    h, w = (int(v) for v in meta['Resolution'].split('x'))
    shape = (1, 3, meta['Frames'], h, w) if dims == 3 else (1, 3, h, w)
    x = torch.randn(shape)
    with torch.no_grad():
        if name.startswith('vared2'):
            with fixed_policy(net, 0, 0):
                count = FlopAnalyzer(net, (x, )).uncalled_modules_warnings(
                    False).unsupported_ops_warnings(False).total()
        else:
            count = FlopAnalyzer(net, (x, )).unsupported_ops_warnings(
                False).uncalled_modules_warnings(False).total()
    assert f'{count / 1e9:.2f}G' == meta['FLOPs']
    params = sum(p.numel() for p in net.parameters()) / 1e6
    assert f'{params:.2f}M' == meta['Parameters']
