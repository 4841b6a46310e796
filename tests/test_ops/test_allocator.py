# Copyright (c) varedd_mm contributors. All rights reserved.
"""retain_freed_memory: a second large activation reuses the first one's
pages (no page faults), and the setting reports where it cannot apply."""
import subprocess
import sys

import pytest

from varedd_mm.ops import allocator, retain_freed_memory

# the module alone (importing varedd_mm would import every codebase)
SCRIPT = '''
import importlib.util, resource, sys, torch
spec = importlib.util.spec_from_file_location("allocator", sys.argv[2])
allocator = importlib.util.module_from_spec(spec)
spec.loader.exec_module(allocator)
if sys.argv[1] == "retain":
    assert allocator.retain_freed_memory()
faults = []
for _ in range(3):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    x = torch.empty(64 << 20, dtype=torch.uint8).fill_(1)  # 64 MB
    del x
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(faults[-1])
'''


def _faults(mode):
    out = subprocess.run(
        [sys.executable, '-c', SCRIPT, mode, allocator.__file__],
        capture_output=True,
        text=True,
        check=True)
    return int(out.stdout.split()[-1])


@pytest.mark.skipif(
    not sys.platform.startswith('linux'), reason='glibc malloc is Linux')
def test_retained_memory_is_reused_without_page_faults():
    # 64 MB is 16384 pages of 4 KB: by default every allocation maps fresh
    # pages (or a few huge pages with THP); retained, it reuses the heap
    default, retained = _faults('default'), _faults('retain')
    assert retained < 100, retained
    assert default > 10 * max(retained, 1), (default, retained)


def test_not_applied_off_linux(monkeypatch):
    monkeypatch.setattr(allocator.sys, 'platform', 'darwin')
    assert retain_freed_memory() is False
