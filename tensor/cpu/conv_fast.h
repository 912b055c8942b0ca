// tensor/cpu/conv_fast.h: fast paths beside the reference convolution of conv.cpp.
//
// CpuBackend::conv2d_forward / conv2d_backward (conv.cpp) take a fast path when one
// applies to the shape and fall back to im2col + GEMM otherwise:
//   conv3x3.cpp   3x3, stride 1, padding 1, one group: the UNet's ResBlock convolutions
//                 (no im2col; a register-blocked micro-kernel; see its header)
//   conv3x3_s2.cpp  3x3, stride 2, padding 1, one group: the UNet's downsampling convolutions
//                 (the same padded layout and row tiles read at stride 2; dx by the parity
//                 of the input position instead of col2im)
//   conv1x1.cpp   1x1, stride 1, no padding, one group: the ResBlocks' skip connections
//                 (conv3x3.cpp's register tiles with one tap; no per-image operand packing)
// set_conv_fast_paths(false) turns every fast path off, so tests and benches can run the
// reference on the same inputs and compare (tests/test_conv_fast.cpp).
#pragma once
#include <cstdint>

#include "tensor/backend.h"

namespace td {

void set_conv_fast_paths(bool on);  // default on
bool conv_fast_paths_enabled();

bool conv3x3_fast_path_applies(const Conv2dShape& g, bool wants_dx = false);
// Contiguous float32 buffers in the layouts of conv.cpp; bias may be null.
void conv3x3_forward(const float* x, const float* w, const float* bias, float* y, const Conv2dShape& g);
// dx, dw and/or db (null: not wanted; at least one of dx, dw); dw and db are summed over
// `pieces` fixed pieces of the batch, so they do not depend on the thread count.
void conv3x3_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                      const Conv2dShape& g, int64_t pieces);

// db in every fast backward pass: each image adds the sums of its K planes of dy (P floats
// each) onto its batch piece's db_partial (K), while that dy is still in cache ...
void add_bias_sums(const float* dy_image, int64_t K, int64_t P, double* db_piece);

// ... and the last step sums the pieces, as the weight gradient's below: in piece order, in
// double, so the same bits for any thread count (conv3x3.cpp). db (K) from db_partial (pieces, K);
void sum_bias_pieces(const double* db_partial, int64_t pieces, int64_t K, float* db);
// dw[l * l_stride + s * s_stride] from partial (pieces, S, L16), for l < L: the weight
// gradient as the kernels accumulate it (16 lanes l per vector) put back in w's layout.
void sum_weight_pieces(const float* partial, int64_t pieces, int64_t S, int64_t L, int64_t L16, int64_t l_stride,
                       int64_t s_stride, float* dw);

// The 3x3 weight gradient of one image, stride 1 or 2, padding 1 (conv3x3.cpp, used by
// conv3x3_s2.cpp too), added onto partial (C, 9, K16) (stored there when `first`):
// partial[c][tap][k] += sum over dy's positions of dyT[q][k] * x[c] at tap's position.
// dyT: dy transposed (OH OW, K16); x: the image's C planes; zero_plane: H W zeros.
void conv3x3_dw_image(const float* dyT, int64_t K16, const float* x, const Conv2dShape& g, const float* zero_plane,
                      bool first, float* partial);
// src (K, P) -> dst (P, K16): dst[q][k] = src[k][q], 0 past row K. Blocks of 16 x 16, one
// register transpose each; a last block of P % 16 reads nothing past src's row.
void transpose_planes(const float* src, int64_t K, int64_t K16, int64_t P, float* dst);

// A growable float buffer per thread and slot (0 .. kConvThreadBuffers - 1), kept between
// calls so that a training step reuses its memory; every convolution path draws on the same
// ones (conv.cpp).
constexpr int kConvThreadBuffers = 4;
float* conv_thread_buffer(int slot, int64_t floats);

// The same for stride 2: any channel counts and sizes (odd ones included).
bool conv3x3_s2_fast_path_applies(const Conv2dShape& g);
void conv3x3_s2_forward(const float* x, const float* w, const float* bias, float* y, const Conv2dShape& g);
void conv3x3_s2_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                         const Conv2dShape& g, int64_t pieces);

// 1x1, stride 1, no padding: any channel counts and sizes.
bool conv1x1_fast_path_applies(const Conv2dShape& g);
void conv1x1_forward(const float* x, const float* w, const float* bias, float* y, const Conv2dShape& g);
void conv1x1_backward(const float* x, const float* w, const float* dy, float* dx, float* dw, float* db,
                      const Conv2dShape& g, int64_t pieces);

}  // namespace td
