# Copyright (c) varedd_mm contributors. All rights reserved.
"""Packed conv weights (``backend.packed_weight``): channels-last convs at
CPU inference run with the weight in oneDNN's layout, made once per weight,
slice and input shape, renewed when the weight changes and dropped with
it; the output is the plain weight's, bit for bit."""
import gc

import pytest
import torch
import torch.nn.functional as F

from varedd_mm.ops import backend
from varedd_mm.ops.backend import reduced_conv

CL = torch.channels_last_3d

pytestmark = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(),
    reason='oneDNN is not available in this torch build: reduced_conv runs '
    'F.conv3d and packs nothing')


def _entries(weight):
    base = weight if weight._base is None else weight._base
    entry = backend._PACKED.get(id(base))
    return {} if entry is None or entry[0]() is not base else entry[2]


def _plain(x, w, b, relu=False):
    """The same oneDNN conv with the weight as it is (reordered inside the
    call)."""
    return torch.ops.mkldnn._convolution_pointwise(x, w, b, [0, 1, 1],
                                                   [1, 1, 1], [1, 1, 1], 1,
                                                   'relu' if relu else 'none',
                                                   [], None)


@torch.no_grad()
def test_packed_once_and_exact():
    w = torch.randn(12, 8, 1, 3, 3).contiguous(memory_format=CL)
    b = torch.randn(12)
    x = torch.randn(2, 8, 3, 6, 5).contiguous(memory_format=CL)
    y = reduced_conv(x, w, b, 1, (0, 1, 1), 1, 1, relu=True)
    assert len(_entries(w)) == 1
    packed = next(iter(_entries(w).values()))
    assert packed.is_mkldnn
    again = reduced_conv(x, w, b, 1, (0, 1, 1), 1, 1, relu=True)
    assert next(iter(_entries(w).values())) is packed  # reused
    assert torch.equal(y, again)
    assert torch.equal(y, _plain(x, w, b, relu=True))
    assert y.is_contiguous(memory_format=CL)
    torch.testing.assert_close(
        y, F.conv3d(x, w, b, padding=(0, 1, 1)).relu(), rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_slices_shapes_and_the_residual_post_op():
    w = torch.randn(12, 8, 1, 3, 3).contiguous(memory_format=CL)
    x = torch.randn(1, 8, 2, 4, 4).contiguous(memory_format=CL)
    half = w[:6]  # a channel choice's filters: a view of the weight
    y = reduced_conv(x, half, None, 1, (0, 1, 1), 1, 1)
    assert torch.equal(y, _plain(x, half, None))
    # a second input shape and the full weight: their own packed weights,
    # all kept under the parameter
    x2 = torch.randn(1, 8, 3, 4, 4).contiguous(memory_format=CL)
    reduced_conv(x2, half, None, 1, (0, 1, 1), 1, 1)
    reduced_conv(x, w, None, 1, (0, 1, 1), 1, 1)
    assert len(_entries(w)) == 3
    # the residual block's sum and ReLU as oneDNN's binary post-op
    r = torch.randn(1, 12, 2, 4, 4).contiguous(memory_format=CL)
    out = reduced_conv(x, w, None, 1, (0, 1, 1), 1, 1, True, r)
    expected = torch.ops.mkldnn._convolution_pointwise.binary(
        x, r, w, None, [0, 1, 1], [1, 1, 1], [1, 1, 1], 1, 'add', None, 'relu',
        [], None)
    assert torch.equal(out, expected)


@torch.no_grad()
def test_one_pack_serves_every_batch_size():
    """Groups of clips that share a choice change size from batch to
    batch: the pack made at the first batch size serves the others, with
    the plain weight's output bit for bit."""
    w = torch.randn(12, 8, 1, 3, 3).contiguous(memory_format=CL)
    for n in (3, 1, 2, 8):
        x = torch.randn(n, 8, 2, 4, 4).contiguous(memory_format=CL)
        assert torch.equal(
            reduced_conv(x, w, None, 1, (0, 1, 1), 1, 1), _plain(x, w, None))
    assert len(_entries(w)) == 1


@torch.no_grad()
def test_a_changed_weight_is_packed_again_and_a_freed_one_forgotten():
    w = torch.randn(4, 4, 1, 1, 1).contiguous(memory_format=CL)
    x = torch.randn(1, 4, 2, 3, 3).contiguous(memory_format=CL)
    before = reduced_conv(x, w, None, 1, 0, 1, 1)
    w.mul_(2)  # in place: a new version (an optimizer step, load_state_dict)
    after = reduced_conv(x, w, None, 1, 0, 1, 1)
    torch.testing.assert_close(after, 2 * before)
    assert len(_entries(w)) == 1  # the old version's packed weight dropped
    # new data without a new version: a new data pointer
    w.data = torch.randn(4, 4, 1, 1, 1).contiguous(memory_format=CL)
    assert torch.equal(
        reduced_conv(x, w, None, 1, 0, 1, 1),
        torch.ops.mkldnn._convolution_pointwise(x, w.data.clone(), None,
                                                [0, 0, 0], [1, 1, 1],
                                                [1, 1, 1], 1, 'none', [],
                                                None))
    key = id(w)
    del w
    gc.collect()
    assert key not in backend._PACKED


@torch.no_grad()
def test_the_cache_per_weight_is_bounded():
    w = torch.randn(4, 4, 1, 1, 1).contiguous(memory_format=CL)
    for h in range(1, backend._MAX_PACKED + 3):
        x = torch.randn(1, 4, 1, h, 2).contiguous(memory_format=CL)
        reduced_conv(x, w, None, 1, 0, 1, 1)
    assert 0 < len(_entries(w)) <= backend._MAX_PACKED


@torch.no_grad()
def test_what_is_not_packed():
    w = torch.randn(8, 8, 1, 3, 3)
    x = torch.randn(1, 8, 2, 4, 4)
    reduced_conv(x, w, None, 1, (0, 1, 1), 1, 1)  # NCDHW
    assert not _entries(w)
    dw = torch.randn(8, 1, 1, 3, 3).contiguous(memory_format=CL)
    xc = x.contiguous(memory_format=CL)
    reduced_conv(xc, dw, None, 1, (0, 1, 1), 1, 8)  # depthwise
    assert not _entries(dw)
    wg = torch.randn(8, 8, 1, 3, 3, requires_grad=True)
    with torch.enable_grad():  # training: F.conv3d, nothing packed
        reduced_conv(xc, wg.contiguous(memory_format=CL), None, 1, (0, 1, 1),
                     1, 1)
    assert not _entries(wg)


def test_inference_mode_tensors_run_unpacked():
    """A weight made under ``torch.inference_mode`` has no version counter:
    it runs with the plain weight (the same output), nothing kept."""
    with torch.inference_mode():
        w = torch.randn(4, 4, 1, 3, 3).contiguous(memory_format=CL)
        x = torch.randn(1, 4, 2, 3, 3).contiguous(memory_format=CL)
        y = reduced_conv(x, w, None, 1, (0, 1, 1), 1, 1)
        assert torch.equal(y, _plain(x, w, None))
    assert id(w) not in backend._PACKED
