// tests/test_conv_fast.cpp: the convolution fast paths (tensor/cpu/conv_fast.h) against the
// reference im2col + GEMM of tensor/cpu/conv.cpp, on the same inputs, forward and backward.
// The PyTorch fixtures (tests/test_conv_torch.cpp) already run through whichever path a
// shape takes; these cases add the awkward shapes: widths that leave a ragged last vector
// (7, 9, 13, 14, 17), channel counts that are not a multiple of the 8- or 16-channel blocks
// (output channels 40, 44, 48: dW's 32-channel tile and a 16-channel rest), batch 1,
// 3-channel 32x32 (CIFAR), and padding 0 beside them (which must keep using the reference).
// The stride-2 path (conv3x3_s2.cpp) has its own cases below: even and odd sizes, where dx's
// odd rows and columns and the forward's last tap reach past the edge; so has the 1x1 path
// (conv1x1.cpp): planes that end in a short tile, and both ways round of dW's lanes.
#include <algorithm>
#include <cmath>
#include <doctest/doctest.h>
#include <omp.h>

#include "tensor/cpu/conv_fast.h"
#include "tests/helpers.h"

using namespace td;

namespace {

struct Result {
    Tensor y, dx, dw, db;
};

Result run_conv(const Tensor& x0, const Tensor& w0, const Tensor& b0, const Tensor& gy, int64_t stride, int64_t pad,
                bool fast) {
    set_conv_fast_paths(fast);
    Tensor x = x0.detach().requires_grad_(), w = w0.detach().requires_grad_(), b = b0.detach().requires_grad_();
    Tensor y = conv2d(x, w, b, stride, pad);
    y.backward(gy);
    set_conv_fast_paths(true);
    return {y.detach(), x.grad(), w.grad(), b.grad()};
}

struct Geometry {
    Shape x;
    int64_t K, R, stride, pad;
};

}  // namespace

TEST_CASE("conv fast paths equal the im2col reference on awkward shapes") {
    const Geometry cases[] = {
        {{2, 16, 28, 28}, 16, 3, 1, 1},  // the demo UNet's first level
        {{3, 5, 7, 7}, 11, 3, 1, 1},     // 7x7: one vector per row pair; 5 -> 11 channels
        {{1, 3, 32, 32}, 13, 3, 1, 1},   // batch 1, CIFAR's 3 channels
        {{19, 4, 9, 13}, 6, 3, 1, 1},    // 19 > 16 samples: dW in unequal batch pieces; non-square
        {{2, 9, 14, 14}, 1, 3, 1, 1},    // one output channel (conv_out)
        {{2, 4, 5, 3}, 8, 3, 1, 1},      // four input channels (the fewest the fast path takes), tiny plane
        {{2, 1, 5, 3}, 8, 3, 1, 1},      // one input channel: reference path either way
        {{2, 6, 9, 9}, 4, 3, 2, 1},      // stride 2: the stride-2 fast path
        {{2, 6, 9, 9}, 4, 1, 1, 0},      // 1x1: the 1x1 fast path
        {{2, 6, 8, 8}, 4, 3, 1, 0},      // padding 0: reference path either way
        {{3, 7, 14, 14}, 40, 3, 1, 1},   // 40 output channels: dW's 32-channel tile, then a 16-channel one
        {{2, 5, 16, 17}, 64, 3, 1, 1},   // rows of 17 and 16: a vector copy plus an overlapping one
        {{17, 33, 7, 7}, 48, 3, 1, 1},   // 7x7 row tiles, 33 input channels, 48 output channels
        {{2, 6, 4, 7}, 40, 3, 1, 1},     // 7 wide, 4 rows: two-row tiles only, 32 + 8 output channels
        {{4, 12, 8, 8}, 36, 3, 1, 1},    // 8x8 row tiles (CIFAR's third level), 36 output channels
        {{1, 5, 3, 42}, 20, 3, 1, 1},    // rows of 42: three row tiles of 14 per row
        {{2, 5, 1, 7}, 20, 3, 1, 1},     // 7 wide, one row: both the row above and below are off
        {{3, 6, 2, 7}, 33, 3, 1, 1},     // 7 wide, two rows: one two-row tile; 33 = 32 + 1 channels
        {{2, 4, 3, 1}, 5, 3, 1, 1},      // 1 wide: each position is its row's first and last
    };
    for (const Geometry& geo : cases) {
        CAPTURE(shape_str(geo.x));
        CAPTURE(geo.K);
        Generator gen(11);
        Tensor x = randn(geo.x, gen), w = randn({geo.K, geo.x[1], geo.R, geo.R}, gen), b = randn({geo.K}, gen);
        Tensor probe = conv2d(x, w, b, geo.stride, geo.pad);
        Tensor gy = randn(probe.shape(), gen);
        Result ref = run_conv(x, w, b, gy, geo.stride, geo.pad, false);
        Result fast = run_conv(x, w, b, gy, geo.stride, geo.pad, true);
        CHECK_CLOSE(fast.y, ref.y, 1e-4, 1e-4);
        CHECK_CLOSE(fast.dx, ref.dx, 1e-4, 1e-4);
        CHECK_CLOSE(fast.dw, ref.dw, 1e-3, 1e-4);
        CHECK_CLOSE(fast.db, ref.db, 1e-4, 1e-4);
    }
}

TEST_CASE("conv 3x3 fast path: grey and RGB conv_in, weight gradient alone, equal the reference") {
    // With fewer than 4 input channels the fast path takes the forward pass and dW, and dx
    // (when wanted) goes to the reference with dW: so x here does not require grad, as a
    // network's input does not. One channel takes dw_tile<1, 1>, two and three the 1 x 3
    // tile with zero planes; 28 wide (padded row tiles), 7 wide (seven_tile), 13 (micro-kernel).
    const Geometry cases[] = {
        {{3, 1, 28, 28}, 16, 3, 1, 1}, {{3, 1, 28, 28}, 32, 3, 1, 1}, {{2, 2, 7, 7}, 20, 3, 1, 1},
        {{2, 3, 9, 13}, 40, 3, 1, 1},  {{2, 3, 14, 14}, 8, 3, 1, 1},
    };
    for (const Geometry& geo : cases) {
        CAPTURE(shape_str(geo.x));
        CAPTURE(geo.K);
        Generator gen(5);
        Tensor x = randn(geo.x, gen), w0 = randn({geo.K, geo.x[1], 3, 3}, gen), b0 = randn({geo.K}, gen);
        Tensor gy = randn(conv2d(x, w0, b0, 1, 1).shape(), gen);
        auto run = [&](bool fast) {
            set_conv_fast_paths(fast);
            Tensor w = w0.detach().requires_grad_(), b = b0.detach().requires_grad_();
            Tensor y = conv2d(x, w, b, 1, 1);
            y.backward(gy);
            set_conv_fast_paths(true);
            return Result{y.detach(), Tensor(), w.grad(), b.grad()};
        };
        Result ref = run(false), fast = run(true);
        CHECK_CLOSE(fast.y, ref.y, 1e-4, 1e-4);
        CHECK_CLOSE(fast.dw, ref.dw, 1e-3, 1e-4);
        CHECK_CLOSE(fast.db, ref.db, 1e-4, 1e-4);
    }
}

namespace {

// The fast path's y, dx, dW and db for a (21, C, 14, W) input and K output channels (an
// R x R kernel, padding R / 2), computed with 1 and then 2 OpenMP threads: the same bits both times.
void check_same_bits_with_1_and_2_threads(int64_t R, int64_t stride, int64_t W, uint64_t seed, int64_t C = 10,
                                          int64_t K = 44) {
    CAPTURE(R);
    CAPTURE(stride);
    CAPTURE(W);
    auto run = [&](int threads) {
        omp_set_num_threads(threads);
        Generator gen(seed);
        Tensor x = randn({21, C, 14, W}, gen), w = randn({K, C, R, R}, gen), b = randn({K}, gen);
        Tensor gy = randn(conv2d(x, w, b, stride, R / 2).shape(), gen);
        Result r = run_conv(x, w, b, gy, stride, R / 2, true);
        return std::vector<std::vector<float>>{r.y.to_vector(), r.dx.to_vector(), r.dw.to_vector(), r.db.to_vector()};
    };
    int saved = omp_get_max_threads();
    auto one = run(1), two = run(2);
    omp_set_num_threads(saved);
    CHECK(one[0] == two[0]);
    CHECK(one[1] == two[1]);
    CHECK(one[2] == two[2]);
    CHECK(one[3] == two[3]);
}

}  // namespace

TEST_CASE("conv 3x3 fast path: the same bits with 1 and 2 OpenMP threads") {
    for (int64_t W : {17, 14, 7, 28})
        check_same_bits_with_1_and_2_threads(3, 1, W, 5);  // 17: the micro-kernel; else row tiles
}

namespace {

// The largest |value| of t: the scale for an absolute tolerance, so that elements that
// cancel to near zero are held to the same 1e-5 of the tensor's size as the rest.
double max_abs(const Tensor& t) {
    double m = 0.0;
    for (float v : t.to_vector()) m = std::max(m, (double)std::fabs(v));
    return m;
}

// x, w, b and dy drawn from `seed`: the fast path's y, dx, dW and db against the reference's,
// each to 1e-5 of the tensor's largest value.
void check_fast_equals_reference(const Geometry& geo, uint64_t seed) {
    Generator gen(seed);
    Tensor x = randn(geo.x, gen), w = randn({geo.K, geo.x[1], geo.R, geo.R}, gen), b = randn({geo.K}, gen);
    Tensor gy = randn(conv2d(x, w, b, geo.stride, geo.pad).shape(), gen);
    Result ref = run_conv(x, w, b, gy, geo.stride, geo.pad, false);
    Result fast = run_conv(x, w, b, gy, geo.stride, geo.pad, true);
    CHECK_CLOSE(fast.y, ref.y, 1e-5 * max_abs(ref.y), 1e-5);
    CHECK_CLOSE(fast.dx, ref.dx, 1e-5 * max_abs(ref.dx), 1e-5);
    CHECK_CLOSE(fast.dw, ref.dw, 1e-5 * max_abs(ref.dw), 1e-5);
    CHECK_CLOSE(fast.db, ref.db, 1e-5 * max_abs(ref.db), 1e-5);
}

Conv2dShape s2_shape(const Shape& x, int64_t K) {
    const int64_t OH = (x[2] - 1) / 2 + 1, OW = (x[3] - 1) / 2 + 1;
    return {x[0], x[1], x[2], x[3], K, 3, 3, /*stride=*/2, /*pad=*/1, /*groups=*/1, OH, OW};
}

}  // namespace

TEST_CASE("conv 3x3 stride 2 fast path equals the im2col reference") {
    const Geometry cases[] = {
        {{2, 16, 28, 28}, 16, 3, 2, 1},  // the demo UNet's down.0: 28 -> 14, forward tiles of 14
        {{3, 32, 14, 14}, 32, 3, 2, 1},  // down.1: 14 -> 7, forward tiles of 7, two vectors of channels
        {{3, 5, 7, 7}, 17, 3, 2, 1},     // odd: 7 -> 4, the last tap reads the zero column and row
        {{1, 3, 32, 32}, 13, 3, 2, 1},   // batch 1, CIFAR's 3 channels
        {{3, 33, 14, 14}, 40, 3, 2, 1},  // 33 channels (32 + 1 for dx), 40 (dW's 32-channel tile + 16)
        {{2, 17, 5, 5}, 33, 3, 2, 1},    // 5 -> 3
        {{3, 4, 1, 1}, 8, 3, 2, 1},      // 1 -> 1: only the centre tap sees a pixel
        {{2, 6, 9, 13}, 5, 3, 2, 1},     // non-square, both odd
        {{2, 8, 28, 14}, 20, 3, 2, 1},   // non-square, both even
        {{1, 5, 6, 30}, 33, 3, 2, 1},    // 30 -> 15: ragged last tiles, forward and dx
        {{19, 4, 10, 6}, 6, 3, 2, 1},    // 19 > 16 samples: dW in unequal batch pieces
    };
    for (const Geometry& geo : cases) {
        CAPTURE(shape_str(geo.x));
        CAPTURE(geo.K);
        CHECK(
            conv3x3_s2_fast_path_applies(s2_shape(geo.x, geo.K)));  // else the test compares the reference with itself
        check_fast_equals_reference(geo, 13);
    }
    set_conv_fast_paths(false);
    CHECK_FALSE(conv3x3_s2_fast_path_applies(s2_shape({2, 16, 28, 28}, 16)));
    set_conv_fast_paths(true);
}

TEST_CASE("conv 3x3 stride 2 fast path: the same bits with 1 and 2 OpenMP threads") {
    for (int64_t W : {28, 14, 7, 9}) check_same_bits_with_1_and_2_threads(3, 2, W, 7);
}

namespace {

Conv2dShape c1_shape(const Shape& x, int64_t K) {
    return {x[0], x[1], x[2], x[3], K, 1, 1, /*stride=*/1, /*pad=*/0, /*groups=*/1, x[2], x[3]};
}

}  // namespace

TEST_CASE("conv 1x1 fast path equals the reference GEMM") {
    const Geometry cases[] = {
        {{3, 128, 14, 14}, 64, 1, 1, 0},  // the reference UNet's 128 -> 64 skip: 14 channel tiles per plane
        {{2, 96, 7, 7}, 64, 1, 1, 0},     // 7x7: three channel tiles of 14 and a short one of 7
        {{2, 48, 28, 28}, 16, 1, 1, 0},   // 48 -> 16: lane tiles; dW broadcasts the 16-channel side
        {{2, 16, 14, 14}, 32, 1, 1, 0},   // 16 -> 32: dW puts output channels in the lanes
        {{19, 5, 3, 5}, 3, 1, 1, 0},      // 19 > 16 samples: unequal batch pieces; 15 positions
        {{1, 33, 1, 1}, 17, 1, 1, 0},     // batch 1, one position: only the short tile
        {{2, 1, 4, 4}, 40, 1, 1, 0},      // one input channel; 40 = 32 + 8 output channels
        {{2, 40, 5, 7}, 1, 1, 1, 0},      // one output channel
        {{3, 50, 6, 6}, 50, 1, 1, 0},     // equal sides, 36 positions: 32 + 16 + 2 lanes past them
        {{2, 70, 5, 5}, 20, 1, 1, 0},     // forward by channel tiles (>= 64 inputs), dx by lane tiles
        {{2, 8, 5, 5}, 80, 1, 1, 0},      // the other way round; 25 positions: a tile of 14, then 11
    };
    for (const Geometry& geo : cases) {
        CAPTURE(shape_str(geo.x));
        CAPTURE(geo.K);
        CHECK(conv1x1_fast_path_applies(c1_shape(geo.x, geo.K)));  // else the test compares the reference with itself
        check_fast_equals_reference(geo, 17);
    }
    set_conv_fast_paths(false);
    CHECK_FALSE(conv1x1_fast_path_applies(c1_shape({2, 16, 28, 28}, 16)));
    set_conv_fast_paths(true);
}

TEST_CASE("conv 1x1 fast path: the same bits with 1 and 2 OpenMP threads") {
    for (int64_t W : {14, 7, 9}) {
        check_same_bits_with_1_and_2_threads(1, 1, W, 9);          // lane tiles (10 and 44 inputs)
        check_same_bits_with_1_and_2_threads(1, 1, W, 9, 70, 66);  // channel tiles (70 and 66)
    }
}
