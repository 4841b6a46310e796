# Copyright (c) varedd_mm contributors. All rights reserved.
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


@pytest.fixture
def run_tool():
    """Run ``python <args>`` in the repository root; fail the test with the
    tail of its output unless it exits with 0; return stdout + stderr."""

    def run(args, timeout=900):
        out = subprocess.run(
            [sys.executable] + list(args),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout)
        assert out.returncode == 0, (out.stdout[-3000:], out.stderr[-3000:])
        return out.stdout + out.stderr

    return run
