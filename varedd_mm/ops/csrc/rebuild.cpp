// Copyright (c) varedd_mm contributors. All rights reserved.
//
// One-pass writer of a VA-RED2 layer's full output at inference (CPU,
// float32): the computed part, the channels the ghost op generated and the
// frames the temporal rebuild fills, each element written once with its
// per-channel affine (the fused BN) and, optionally, the ReLU that follows
// the layer. The torch-op path of varedd_mm/ops/cheap_ops.py computes the
// same values (to float rounding: the coefficients are folded) in several
// memory passes; this file is built on first use (varedd_mm/ops/native.py)
// and that path remains the fallback.
//
// Output element (n, c, t, s), t < t_out, R = ratio, y = the channel blocks
// (N, C_b, T_c, S) read as one (N, C, T_c, S) tensor:
//   t = R k (computed):                 a0[c] y[k] + d0[c]
//   t = R k + q, k + 1 < T_c (rebuilt):  a_q[c] y[k] + b_q[c] y[k+1] + d_q[c]
//   t > R (T_c - 1) (held):             at[c] y[T_c - 1] + dt[c]
// coef rows: a0, d0, then (a_q, b_q, d_q) for q = 1 .. R-1, then at, dt.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/torch.h>

#include <algorithm>
#include <vector>

namespace {

struct Block {
  const float* data;
  int64_t channels, offset;   // channels, first channel in the output
  int64_t sn, sc, st, ss;     // strides of n, c, t and the flat space
};

template <bool kRelu>
inline float finish(float v) {
  return kRelu ? std::max(v, 0.f) : v;
}

// What output frame t reads: computed frame k, the first coef row of its
// terms, and whether it also reads frame k + 1 (a rebuilt frame) or not (a
// computed or a held frame: a0/d0 or at/dt).
struct Frame {
  int64_t k, row;
  bool pair;
};

inline Frame frame_of(int64_t t, int64_t ratio, int64_t t_c) {
  const int64_t k = std::min(t / ratio, t_c - 1);
  const int64_t q = t - k * ratio;
  if (q == 0) return {k, 0, false};
  if (k + 1 >= t_c) return {k, 2 + 3 * (ratio - 1), false};
  return {k, 2 + 3 * (q - 1), true};
}

// channels innermost (channels-last): one row of C values per (n, t, s)
template <bool kRelu>
void run_channels_last(const std::vector<Block>& blocks, float* out,
                       int64_t n_batch, int64_t channels, int64_t t_out,
                       int64_t t_c, int64_t space, int64_t ratio,
                       const float* coef) {
  const int64_t rows = n_batch * t_out * space;
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t s = r % space;
      const int64_t n = r / (space * t_out);
      const Frame f = frame_of((r / space) % t_out, ratio, t_c);
      float* __restrict__ dst = out + r * channels;
      for (const Block& b : blocks) {
        const float* __restrict__ y0 =
            b.data + n * b.sn + f.k * b.st + s * b.ss;
        float* __restrict__ o = dst + b.offset;
        const float* __restrict__ a = coef + f.row * channels + b.offset;
        const int64_t cb = b.channels;
        if (!f.pair) {
          const float* __restrict__ d = a + channels;
          for (int64_t c = 0; c < cb; ++c)
            o[c] = finish<kRelu>(a[c] * y0[c] + d[c]);
        } else {
          const float* __restrict__ y1 = y0 + b.st;
          const float* __restrict__ bb = a + channels;
          const float* __restrict__ d = bb + channels;
          for (int64_t c = 0; c < cb; ++c)
            o[c] = finish<kRelu>(a[c] * y0[c] + bb[c] * y1[c] + d[c]);
        }
      }
    }
  });
}

// contiguous (N, C, T, S): one plane of S values per (n, c, t)
template <bool kRelu>
void run_contiguous(const std::vector<Block>& blocks, float* out,
                    int64_t n_batch, int64_t channels, int64_t t_out,
                    int64_t t_c, int64_t space, int64_t ratio,
                    const float* coef) {
  const int64_t planes = n_batch * channels * t_out;
  at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t cg = (p / t_out) % channels;
      const int64_t n = p / (t_out * channels);
      const Frame f = frame_of(p % t_out, ratio, t_c);
      const Block* blk = &blocks[0];
      for (const Block& b : blocks)
        if (cg >= b.offset && cg < b.offset + b.channels) blk = &b;
      const float* __restrict__ y0 = blk->data + n * blk->sn +
                                     (cg - blk->offset) * blk->sc +
                                     f.k * blk->st;
      float* __restrict__ o = out + p * space;
      const float a = coef[f.row * channels + cg];
      // the second row: d0 / dt (one frame read) or b_q (two)
      const float bd = coef[(f.row + 1) * channels + cg];
      if (!f.pair) {
        for (int64_t s = 0; s < space; ++s)
          o[s] = finish<kRelu>(a * y0[s] + bd);
      } else {
        const float* __restrict__ y1 = y0 + blk->st;
        const float d = coef[(f.row + 2) * channels + cg];
        for (int64_t s = 0; s < space; ++s)
          o[s] = finish<kRelu>(a * y0[s] + bd * y1[s] + d);
      }
    }
  });
}

}  // namespace

// blocks: (N, C_b, T_c, S) float32 CPU tensors, all with channel stride 1
// (channels-last) or all with space stride 1 (contiguous); coef:
// (2 + 3 (R - 1) + 2, C) contiguous. Returns (N, C, t_out, S) in the
// blocks' layout.
torch::Tensor rebuild(const std::vector<torch::Tensor>& ys, int64_t t_out,
                      int64_t ratio, const torch::Tensor& coef, bool relu,
                      bool channels_last) {
  TORCH_CHECK(!ys.empty(), "rebuild: no blocks");
  TORCH_CHECK(ratio >= 1, "rebuild: ratio must be >= 1, got ", ratio);
  const auto& y = ys[0];
  TORCH_CHECK(y.dim() == 4, "rebuild: blocks must be (N, C, T, S)");
  const int64_t n_batch = y.size(0), t_c = y.size(2), space = y.size(3);
  TORCH_CHECK(t_c == (t_out + ratio - 1) / ratio,
              "rebuild: ", t_c, " computed frames for t_out=", t_out,
              " and ratio ", ratio);
  std::vector<Block> blocks;
  int64_t channels = 0;
  for (const auto& b : ys) {
    TORCH_CHECK(b.scalar_type() == torch::kFloat && b.device().is_cpu(),
                "rebuild: float32 CPU tensors only");
    TORCH_CHECK(b.dim() == 4 && b.size(0) == n_batch && b.size(2) == t_c &&
                    b.size(3) == space,
                "rebuild: blocks differ in shape");
    // the loops read channels (channels-last) or space (contiguous) at
    // unit stride; every other stride is taken from the tensor
    if (channels_last) {
      TORCH_CHECK(b.stride(1) == 1 || b.size(1) == 1,
                  "rebuild: block is not channels-last");
    } else {
      TORCH_CHECK(b.stride(3) == 1 || space == 1,
                  "rebuild: block is not contiguous");
    }
    blocks.push_back({b.data_ptr<float>(), b.size(1), channels, b.stride(0),
                      b.stride(1), b.stride(2), b.stride(3)});
    channels += b.size(1);
  }
  const int64_t rows = 2 + 3 * (ratio - 1) + 2;
  TORCH_CHECK(coef.scalar_type() == torch::kFloat && coef.is_contiguous() &&
                  coef.dim() == 2 && coef.size(0) == rows &&
                  coef.size(1) == channels,
              "rebuild: coef must be a contiguous (", rows, ", ", channels,
              ") float32 tensor");
  // channels-last (N, C, T, S) is (N, T, S, C) in memory
  auto out = channels_last
                 ? torch::empty({n_batch, t_out, space, channels}, y.options())
                       .permute({0, 3, 1, 2})
                 : torch::empty({n_batch, channels, t_out, space}, y.options());
  float* dst = out.data_ptr<float>();
  const float* cf = coef.data_ptr<float>();
  if (channels_last) {
    if (relu)
      run_channels_last<true>(blocks, dst, n_batch, channels, t_out, t_c,
                              space, ratio, cf);
    else
      run_channels_last<false>(blocks, dst, n_batch, channels, t_out, t_c,
                               space, ratio, cf);
  } else {
    if (relu)
      run_contiguous<true>(blocks, dst, n_batch, channels, t_out, t_c, space,
                           ratio, cf);
    else
      run_contiguous<false>(blocks, dst, n_batch, channels, t_out, t_c,
                            space, ratio, cf);
  }
  return out;
}

// a dispatcher op (torch.ops.varedd_mm.rebuild), so that the profiler
// records it like any aten op
TORCH_LIBRARY(varedd_mm, m) {
  m.def(
      "rebuild(Tensor[] blocks, int t_out, int ratio, Tensor coef, "
      "bool relu, bool channels_last) -> Tensor");
}

TORCH_LIBRARY_IMPL(varedd_mm, CPU, m) { m.impl("rebuild", &rebuild); }
