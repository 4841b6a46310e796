# Copyright (c) varedd_mm contributors. All rights reserved.
"""tools/analysis/get_flops.py: the input shape comes from the config, only
the answer is printed, nothing is downloaded."""
import json
import os.path as osp
import re
import subprocess
import sys

import pytest
from mmengine.config import Config

from varedd_mm.analysis import default_input_shape

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
REC = 'configs/recognition/vared2/'
I3D = REC + 'i3d_imagenet-pretrained-r50_8xb8-16x5x1-100e_minik200-rgb.py'


@pytest.mark.parametrize(
    'config, dims, shape',
    [(I3D, 3, [16, 224, 224]),
     (REC + 'r2plus1d_r18_8xb16-4x8x1-100e_minik200-rgb.py', 3, [4, 112, 112]),
     (REC + 'vared2-k2_tpn-slowonly_r50_8xb8-16x4x1-30e_minik200-rgb.py', 3,
      [16, 224, 224]),
     (REC + 'demo/vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb.py',
      3, [8, 32, 32]),
     ('configs/detection/vared2/vared2-k2_slowonly_r50_8xb8-8x2x1-10e_'
      'jhmdb-split1-rgb.py', 3, [8, 256, 256]),
     ('configs/segmentation/vared2/pspnet_r18-d8_4xb2-80k_cityscapes-'
      '512x1024.py', 2, [512, 1024])])
def test_default_shape_is_the_validation_input(config, dims, shape):
    cfg = Config.fromfile(osp.join(ROOT, config))
    got, source = default_input_shape(cfg, dims)
    assert got == shape, source


def test_no_fixed_frame_size_asks_for_the_shape():
    """The synthetic J-HMDB demo keeps the videos' frame size: no default
    is made up."""
    cfg = Config.fromfile(
        osp.join(
            ROOT, 'configs/detection/vared2/demo/'
            'slowonly_r18_1xb8-8x2x1-5e_synthetic-jhmdb-rgb.py'))
    with pytest.raises(ValueError, match='give the shape'):
        default_input_shape(cfg, 3)


def test_i3d_default_is_its_224_input_and_prints_only_the_answer():
    """The I3D base config asks for torchvision's ImageNet ResNet-50 (not
    installed here): it must still count, at 16x224x224 (16.64 GFLOPs; the
    fixed 16x112x112 default gave 4.28), and print two lines."""
    done = subprocess.run([sys.executable, 'tools/analysis/get_flops.py', I3D],
                          cwd=ROOT,
                          capture_output=True,
                          text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith('input 1x3x16x224x224 (val pipeline')
    assert lines[0].endswith('M parameters')
    gflops = float(re.search(r': ([\d.]+) GFLOPs per clip', lines[1])[1])
    assert gflops == pytest.approx(16.64, abs=0.01)


def test_shape_option_overrides_the_config(run_tool, tmp_path):
    out_file = tmp_path / 'flops.json'
    out = run_tool([
        'tools/analysis/get_flops.py', REC +
        'demo/vared2_r2plus1d_r18_1xb8-8x4x1-15e_synthetic-motion-rgb.py',
        '--shape', '4', '32', '32', '--choice', '1', '1', '--out',
        str(out_file)
    ])
    assert 'input 1x3x4x32x32 (--shape); ' in out
    result = json.loads(out_file.read_text())
    assert result['shape'] == [4, 32, 32]
    assert 0 < result['gflops'] < result['base_gflops']
    assert result['params_m'] > 30  # R(2+1)D-18 + gates and cheap ops
