# Copyright (c) varedd_mm contributors. All rights reserved.
import os.path as osp

import pytest
import torch

import varedd_mm  # noqa: F401  (applies compat fixes, registers components)

SHARED = osp.abspath(osp.join(osp.dirname(__file__), '..', '..', 'shared'))


@pytest.fixture
def shared_dir():
    """``../shared`` next to the repo; skip with a reason where absent."""
    if not osp.isdir(osp.join(SHARED, 'data')):
        pytest.skip(f'../shared/data not found at {SHARED}: the sample data '
                    'of the product repo is not available on this machine')
    return SHARED


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
