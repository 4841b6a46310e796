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

// channels innermost (channels-last): one row of C values per (n, t, s)
template <bool kRelu>
void run_channels_last(const std::vector<Block>& blocks, float* out,
                       int64_t n_batch, int64_t channels, int64_t t_out,
                       int64_t t_c, int64_t space, int64_t ratio,
                       const float* coef) {
  const int64_t rows = n_batch * t_out * space;
  const int64_t tail_row = 2 + 3 * (ratio - 1);
  at::parallel_for(0, rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t s = r % space;
      const int64_t t = (r / space) % t_out;
      const int64_t n = r / (space * t_out);
      float* __restrict__ dst = out + r * channels;
      const int64_t k = std::min(t / ratio, t_c - 1);
      const int64_t q = t - k * ratio;  // 0: computed; > 0: rebuilt / held
      const bool held = q > 0 && k + 1 >= t_c;
      for (const Block& b : blocks) {
        const float* __restrict__ y0 = b.data + n * b.sn + k * b.st + s * b.ss;
        float* __restrict__ o = dst + b.offset;
        const int64_t cb = b.channels;
        if (q == 0 || held) {
          const int64_t row = q == 0 ? 0 : tail_row;
          const float* __restrict__ a = coef + row * channels + b.offset;
          const float* __restrict__ d = a + channels;
          for (int64_t c = 0; c < cb; ++c)
            o[c] = finish<kRelu>(a[c] * y0[c] + d[c]);
        } else {
          const float* __restrict__ y1 = y0 + b.st;
          const float* __restrict__ a =
              coef + (2 + 3 * (q - 1)) * channels + b.offset;
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
  const int64_t tail_row = 2 + 3 * (ratio - 1);
  at::parallel_for(0, planes, 1, [&](int64_t begin, int64_t end) {
    for (int64_t p = begin; p < end; ++p) {
      const int64_t t = p % t_out;
      const int64_t cg = (p / t_out) % channels;
      const int64_t n = p / (t_out * channels);
      const Block* blk = &blocks[0];
      for (const Block& b : blocks)
        if (cg >= b.offset && cg < b.offset + b.channels) blk = &b;
      const int64_t k = std::min(t / ratio, t_c - 1);
      const int64_t q = t - k * ratio;
      const bool held = q > 0 && k + 1 >= t_c;
      const float* __restrict__ y0 = blk->data + n * blk->sn +
                                     (cg - blk->offset) * blk->sc +
                                     k * blk->st;
      float* __restrict__ o = out + p * space;
      if (q == 0 || held) {
        const int64_t row = q == 0 ? 0 : tail_row;
        const float a = coef[row * channels + cg];
        const float d = coef[(row + 1) * channels + cg];
        for (int64_t s = 0; s < space; ++s)
          o[s] = finish<kRelu>(a * y0[s] + d);
      } else {
        const float* __restrict__ y1 = y0 + blk->st;
        const int64_t row = 2 + 3 * (q - 1);
        const float a = coef[row * channels + cg];
        const float bb = coef[(row + 1) * channels + cg];
        const float d = coef[(row + 2) * channels + cg];
        for (int64_t s = 0; s < space; ++s)
          o[s] = finish<kRelu>(a * y0[s] + bb * y1[s] + d);
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
