# Copyright (c) varedd_mm contributors. All rights reserved.
"""retain_freed_memory: which glibc settings it makes, its fallback where
a glibc caps the mmap threshold, and where it does not apply. (Its effect
on speed is measured by benchmark.py --retain-freed-memory, README.)"""
import pytest

from varedd_mm.ops import allocator, retain_freed_memory


class FakeMallopt:

    def __init__(self, refused=()):
        self.refused = set(refused)
        self.calls = []

    def __call__(self, param, value):
        self.calls.append((param, value))
        return 0 if param in self.refused else 1


def test_raises_the_mmap_threshold_and_stops_trimming(monkeypatch):
    fake = FakeMallopt()
    monkeypatch.setattr(allocator, '_glibc', lambda: fake)
    assert retain_freed_memory() is True
    assert (allocator._M_MMAP_THRESHOLD, 2**31 - 1) in fake.calls
    assert (allocator._M_TRIM_THRESHOLD, 2**31 - 1) in fake.calls
    assert all(p != allocator._M_MMAP_MAX for p, _ in fake.calls)


def test_switches_mmap_off_where_the_threshold_is_capped(monkeypatch):
    fake = FakeMallopt(refused=[allocator._M_MMAP_THRESHOLD])
    monkeypatch.setattr(allocator, '_glibc', lambda: fake)
    assert retain_freed_memory() is True
    assert (allocator._M_MMAP_MAX, 0) in fake.calls
    # every setting is still tried
    assert (allocator._M_TRIM_THRESHOLD, 2**31 - 1) in fake.calls


@pytest.mark.parametrize('refused', [
    [allocator._M_TRIM_THRESHOLD],
    [allocator._M_MMAP_THRESHOLD, allocator._M_MMAP_MAX],
])
def test_reports_failure_when_a_setting_is_refused(monkeypatch, refused):
    fake = FakeMallopt(refused=refused)
    monkeypatch.setattr(allocator, '_glibc', lambda: fake)
    assert retain_freed_memory() is False


def test_not_applied_off_linux(monkeypatch):
    monkeypatch.setattr(allocator.sys, 'platform', 'darwin')
    assert allocator._glibc() is None
    assert retain_freed_memory() is False


def test_finds_glibc_mallopt_here():
    import os
    import sys
    if not sys.platform.startswith('linux') or os.environ.get('LD_PRELOAD'):
        pytest.skip('glibc malloc: Linux, no preloaded allocator')
    assert allocator._glibc() is not None
