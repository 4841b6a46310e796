# Copyright (c) varedd_mm contributors. All rights reserved.
"""tools/demo/inference_recognizer.py on a real sample clip (mmaction2's
demo.mp4 in ../shared) with a checkpoint written by the test: top-k labels,
realised GFLOPs per view, per-layer choices."""
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch
from mmengine.runner import save_checkpoint

from varedd_mm.analysis import load_model

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TOOL = 'tools/demo/inference_recognizer.py'
CFG = ('configs/recognition/vared2/demo/'
       'vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb.py')
BASE_CFG = ('configs/recognition/vared2/demo/'
            'r2plus1d_r18_1xb8-8x4x1-20e_synthetic-motion-rgb.py')


def run(args):
    done = subprocess.run(
        [sys.executable, TOOL] + args,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def video(shared_dir):
    path = osp.join(shared_dir, 'data', 'mmaction2_samples', 'demo.mp4')
    if not osp.isfile(path):
        pytest.skip(f'{path} not found')
    return path


def checkpoint(config, path, choose_reduced):
    """A randomly initialised model's checkpoint; with ``choose_reduced``
    every gate prefers choice (1, 1) whatever its input."""
    _, model = load_model(osp.join(ROOT, config))
    if choose_reduced:
        for name, module in model.named_modules():
            if name.endswith('.gate'):
                k_t = module.num_temporal
                with torch.no_grad():
                    module.fc2.weight.zero_()
                    module.fc2.bias.zero_()
                    module.fc2.bias[1] = 5.0  # temporal choice 1
                    module.fc2.bias[k_t + 1] = 5.0  # channel choice 1
    save_checkpoint({'state_dict': model.state_dict()}, str(path))
    return str(path)


def test_topk_gflops_per_view_and_policy(video, tmp_path):
    ckpt = checkpoint(CFG, tmp_path / 'reduced.pth', choose_reduced=True)
    labels = tmp_path / 'labels.txt'
    labels.write_text('still\npan-x\npan-y\n')
    out = run([
        CFG, ckpt, video, '--label-map',
        str(labels), '--topk', '2', '--policy', '--device', 'cpu'
    ])
    top = re.findall(r'^  \d\. (\S+): ([\d.]+)$', out, flags=re.M)
    assert len(top) == 2 and {n for n, _ in top} <= {'still', 'pan-x', 'pan-y'}
    assert float(top[0][1]) >= float(top[1][1])
    # the demo config's test pipeline samples 2 clips x 1 crop
    views = re.search(
        r'GFLOPs per view \(realised, (\d+) views\): (.*)$', out, flags=re.M)
    assert views and int(views[1]) == 2
    gflops = [float(v) for v in views[2].split()]
    base = float(re.search(r'base model ([\d.]+) per view', out)[1])
    assert base == pytest.approx(0.476, abs=0.001)
    # every gate chose (1, 1): about a quarter of the base cost per view
    assert all(0.15 * base < g < 0.4 * base for g in gflops)
    rows = re.findall(
        r'^  (backbone\.\S+) +((?:\(\d, \d\) ?)+)$', out, flags=re.M)
    assert len(rows) == 17  # the dynamic convs of R(2+1)D-18
    assert all(r[1].split(') (') == ['(1, 1', '1, 1)'] for r in rows)
    assert 'choice shares over layers and views: (1, 1): 100.0 %' in out


def test_static_recognizer_prints_labels_only(video, tmp_path):
    ckpt = checkpoint(BASE_CFG, tmp_path / 'base.pth', choose_reduced=False)
    out = run([BASE_CFG, ckpt, video, '--topk', '3'])
    assert len(re.findall(r'^  \d\. \d: ', out, flags=re.M)) == 3
    assert 'static recognizer: no per-view GFLOPs' in out


def test_fused_inference_prints_the_same(video, tmp_path):
    """``--fuse-conv-bn --channels-last`` runs the fused inference model
    (every gate at (1, 1): the rebuilds run): the same labels, scores,
    GFLOPs and choices (to the printed digits)."""
    ckpt = checkpoint(CFG, tmp_path / 'model.pth', choose_reduced=True)
    args = [CFG, ckpt, video, '--topk', '3', '--policy']
    fused = run(args + ['--fuse-conv-bn', '--channels-last'])
    line = 'fused inference model (BN folded into the convs, channels-last)\n'
    assert fused.count(line) == 1
    assert fused.replace(line, '') == run(args)
