# Copyright (c) varedd_mm contributors. All rights reserved.
import os
import os.path as osp

import pytest
import torch

import varedd_mm  # noqa: F401  (applies compat fixes, registers components)


def _share_cores_between_workers():
    """Under pytest-xdist (``-n N``), give each worker and the tool
    subprocesses it starts an equal share of the cores, so N workers do not
    run N times the cores' worth of OpenMP threads."""
    workers = int(os.environ.get('PYTEST_XDIST_WORKER_COUNT', '1'))
    if workers > 1:
        threads = max(1, (os.cpu_count() or 1) // workers)
        os.environ['OMP_NUM_THREADS'] = str(threads)
        torch.set_num_threads(threads)


_share_cores_between_workers()

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
