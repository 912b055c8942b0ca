// tests/test_conv_torch.cpp: the convolution family (conv2d, conv_transpose2d,
// avg_pool2d, upsample_nearest2d) against PyTorch fixtures made by tests/cases_conv.py,
// then against a plain six-loop convolution at a size the fixtures do not reach, then
// thread-count independence and the error messages of misuse.
#include <doctest/doctest.h>
#include <omp.h>

#include <functional>
#include <string>
#include <vector>

#include "tests/helpers.h"
#include "tests/torch_cases.h"

using namespace td;
using tdtest::Inputs;

namespace {

Tensor upsample_then_conv(const Inputs& x) { return conv2d(upsample_nearest2d(x[0], 2), x[1], x[2], 1, 1); }

// The C++ twins of CASES in tests/cases_conv.py, same names, family "conv".
const bool kRegistered = [] {
    auto& m = tdtest::op_registry();
    using I = const Inputs&;
    auto reg = [&m](const std::string& name, tdtest::Fn fn) {
        check(m.count(name) == 0, "registry: case ", name, " registered twice");
        m[name] = tdtest::OpCase{"conv", std::move(fn)};
        return &m[name];
    };
    // conv2d(x, w, bias, stride, padding, groups)
    reg("conv2d_1x1", [](I x) { return conv2d(x[0], x[1], x[2]); });
    reg("conv2d_3x3_pad1", [](I x) { return conv2d(x[0], x[1], x[2], 1, 1); });
    reg("conv2d_stride2", [](I x) { return conv2d(x[0], x[1], x[2], 2, 1); });
    reg("conv2d_stride2_even", [](I x) { return conv2d(x[0], x[1], x[2], 2, 1); });
    reg("conv2d_groups2", [](I x) { return conv2d(x[0], x[1], x[2], 1, 1, 2); });
    reg("conv2d_depthwise", [](I x) { return conv2d(x[0], x[1], x[2], 1, 1, 3); });
    reg("conv2d_no_bias", [](I x) { return conv2d(x[0], x[1], Tensor()); });
    reg("conv2d_batch3", [](I x) { return conv2d(x[0], x[1], x[2], 1, 1); });
    reg("conv2d_nonsquare", [](I x) { return conv2d(x[0], x[1], x[2], 2, 1); });
    reg("conv2d_pad2", [](I x) { return conv2d(x[0], x[1], x[2], 1, 2); });
    reg("conv2d_1x1_stride2", [](I x) { return conv2d(x[0], x[1], x[2], 2, 0); });
    reg("conv2d_noncontig", [](I x) { return conv2d(x[0].transpose(2, 3), x[1], x[2], 1, 1); });
    reg("conv2d_const_weight", [](I x) { return conv2d(x[0], x[1], x[2], 1, 1); });
    reg("conv2d_const_input", [](I x) { return conv2d(x[0], x[1], x[2], 1, 1); });
    // conv_transpose2d(x, w, bias, stride, padding, output_padding, groups)
    reg("conv_transpose2d_stride2_outpad1", [](I x) { return conv_transpose2d(x[0], x[1], x[2], 2, 1, 1); });
    reg("conv_transpose2d_pad1", [](I x) { return conv_transpose2d(x[0], x[1], x[2], 1, 1); });
    reg("conv_transpose2d_groups2", [](I x) { return conv_transpose2d(x[0], x[1], x[2], 2, 0, 0, 2); });
    reg("conv_transpose2d_k4s2p1", [](I x) { return conv_transpose2d(x[0], x[1], Tensor(), 2, 1); });
    reg("conv_transpose2d_nonsquare", [](I x) { return conv_transpose2d(x[0], x[1], x[2], 2, 0, 1); });
    reg("conv_transpose2d_const_weight", [](I x) { return conv_transpose2d(x[0], x[1], x[2], 2, 1); });
    // pooling and upsampling
    reg("avg_pool2d_k2", [](I x) { return avg_pool2d(x[0], 2); });
    reg("avg_pool2d_k3_nonsquare", [](I x) { return avg_pool2d(x[0], 3); });
    reg("avg_pool2d_noncontig", [](I x) { return avg_pool2d(x[0].transpose(2, 3), 2); });
    reg("upsample_nearest2d_s2", [](I x) { return upsample_nearest2d(x[0], 2); });
    reg("upsample_nearest2d_s3", [](I x) { return upsample_nearest2d(x[0], 3); });
    // composites
    reg("conv_silu_avgpool", [](I x) { return avg_pool2d(silu(conv2d(x[0], x[1], x[2], 1, 1)), 2); });
    reg("upsample_conv", upsample_then_conv);
    reg("conv_convtranspose_roundtrip",
        [](I x) { return conv_transpose2d(conv2d(x[0], x[1], Tensor(), 2, 1), x[2], Tensor(), 2, 1, 1); });
    return true;
}();

}  // namespace

TEST_CASE("torch fixtures: conv") { tdtest::run_family("conv"); }

// ---- a plain convolution, six loops in double, as a second oracle -------------------------

namespace {

struct Conv2dRef {
    std::vector<double> y, dx, dw, db;
};

// y = conv2d(x, w, b) and, for the upstream gradient gy, dx, dw, db, straight from the
// definition: y[n,k,oh,ow] = b[k] + sum_{c,r,s} w[k,c,r,s] x[n, k's group c, oh*st-p+r, ow*st-p+s].
Conv2dRef conv2d_reference(const Tensor& x, const Tensor& w, const Tensor& b, const Tensor& gy, int64_t st, int64_t p,
                           int64_t G) {
    int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    int64_t K = w.size(0), Cg = w.size(1), R = w.size(2), S = w.size(3), Kg = K / G;
    int64_t OH = (H + 2 * p - R) / st + 1, OW = (W + 2 * p - S) / st + 1;
    std::vector<float> xv = x.to_vector(), wv = w.to_vector(), bv = b.to_vector(), gv = gy.to_vector();
    Conv2dRef out{std::vector<double>(N * K * OH * OW), std::vector<double>(N * C * H * W, 0.0),
                  std::vector<double>(K * Cg * R * S, 0.0), std::vector<double>(K, 0.0)};
    for (int64_t n = 0; n < N; ++n)
        for (int64_t k = 0; k < K; ++k)
            for (int64_t oh = 0; oh < OH; ++oh)
                for (int64_t ow = 0; ow < OW; ++ow) {
                    int64_t yi = ((n * K + k) * OH + oh) * OW + ow;
                    double acc = bv[k], g = gv[yi];
                    out.db[k] += g;
                    for (int64_t c = 0; c < Cg; ++c)
                        for (int64_t r = 0; r < R; ++r)
                            for (int64_t s = 0; s < S; ++s) {
                                int64_t ih = oh * st - p + r, iw = ow * st - p + s;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                int64_t xi = ((n * C + (k / Kg) * Cg + c) * H + ih) * W + iw;
                                int64_t wi = ((k * Cg + c) * R + r) * S + s;
                                acc += wv[wi] * (double)xv[xi];
                                out.dx[xi] += wv[wi] * g;
                                out.dw[wi] += xv[xi] * g;
                            }
                    out.y[yi] = acc;
                }
    return out;
}

void check_close_to(const Tensor& got, const std::vector<double>& want, double atol, double rtol, const char* what) {
    INFO(what);
    std::vector<float> g = got.to_vector();
    REQUIRE(g.size() == want.size());
    int64_t bad = 0, first = -1;
    for (size_t i = 0; i < g.size(); ++i)
        if (std::fabs(g[i] - want[i]) > atol + rtol * std::fabs(want[i])) {
            ++bad;
            if (first < 0) first = (int64_t)i;
        }
    INFO("first bad element " << first << ": " << (first >= 0 ? g[first] : 0) << " vs "
                              << (first >= 0 ? want[first] : 0));
    CHECK(bad == 0);
}

}  // namespace

TEST_CASE("conv2d matches a plain six-loop convolution beyond the fixtures' sizes") {
    // N = 19 > 16 samples: several (unequal) pieces of the batch in the dW sum; groups;
    // stride 2 with padding on a non-square input; the 1x1 no-im2col path.
    struct Geometry {
        Shape x, w;
        int64_t stride, pad, groups;
    };
    for (const Geometry& geo :
         {Geometry{{19, 4, 9, 7}, {6, 2, 3, 3}, 2, 1, 2}, Geometry{{3, 8, 6, 6}, {4, 8, 1, 1}, 1, 0, 1},
          Geometry{{5, 3, 8, 8}, {5, 3, 5, 5}, 1, 2, 1}}) {
        CAPTURE(shape_str(geo.x));
        Generator gen(7);
        Tensor x = randn(geo.x, gen).requires_grad_(), w = randn(geo.w, gen).requires_grad_();
        Tensor b = randn({geo.w[0]}, gen).requires_grad_();
        Tensor y = conv2d(x, w, b, geo.stride, geo.pad, geo.groups);
        Tensor gy = randn(y.shape(), gen);
        y.backward(gy);
        Conv2dRef ref = conv2d_reference(x, w, b, gy, geo.stride, geo.pad, geo.groups);
        check_close_to(y, ref.y, 1e-4, 1e-4, "y");
        check_close_to(x.grad(), ref.dx, 1e-4, 1e-4, "dx");
        check_close_to(w.grad(), ref.dw, 1e-3, 1e-4, "dw");
        check_close_to(b.grad(), ref.db, 1e-3, 1e-4, "db");
    }
}

// ---- thread-count independence ------------------------------------------------------------

TEST_CASE("conv2d and conv_transpose2d give the same bits with 1 and 2 OpenMP threads") {
    auto run = [](int threads, bool transpose) {
        omp_set_num_threads(threads);
        Generator gen(3);
        // batch 20: more samples than dW's 16 batch pieces, so pieces differ in size.
        // w (4, 3, 3, 3), groups 2: conv2d maps 6 -> 4 channels, conv_transpose2d 4 -> 6.
        Tensor x = randn({20, transpose ? 4 : 6, 10, 9}, gen).requires_grad_();
        Tensor w = randn({4, 3, 3, 3}, gen).requires_grad_();
        Tensor b = randn({transpose ? 6 : 4}, gen).requires_grad_();
        Tensor y = transpose ? conv_transpose2d(x, w, b, 2, 1, 1, 2) : conv2d(x, w, b, 2, 1, 2);
        y.backward(randn(y.shape(), gen));
        return std::vector<std::vector<float>>{y.to_vector(), x.grad().to_vector(), w.grad().to_vector(),
                                               b.grad().to_vector()};
    };
    int saved = omp_get_max_threads();
    for (bool transpose : {false, true}) {
        CAPTURE(transpose);
        auto one = run(1, transpose), two = run(2, transpose);
        CHECK(one[0] == two[0]);  // y
        CHECK(one[1] == two[1]);  // dx
        CHECK(one[2] == two[2]);  // dw
        CHECK(one[3] == two[3]);  // db
    }
    omp_set_num_threads(saved);
}

// ---- error messages -----------------------------------------------------------------------

namespace {

using tdtest::check_message;
using tdtest::error_of;

}  // namespace

TEST_CASE("errors: conv family misuse names the op and the shapes") {
    Tensor none;
    SUBCASE("conv2d") {
        check_message(error_of([&] {
                          conv2d(zeros({3, 5, 5}), zeros({4, 3, 3, 3}), none);
                      }),
                      {"conv2d", "input", "[3, 5, 5]", "4-D"});
        check_message(error_of([&] {
                          conv2d(zeros({1, 3, 5, 5}), zeros({4, 3, 3}), none);
                      }),
                      {"conv2d", "weight", "[4, 3, 3]"});
        check_message(error_of([&] {
                          conv2d(zeros({1, 3, 5, 5}), zeros({4, 2, 3, 3}), none);
                      }),
                      {"conv2d", "[1, 3, 5, 5]", "[4, 2, 3, 3]", "3 channels"});
        check_message(error_of([&] {
                          conv2d(zeros({1, 4, 5, 5}), zeros({6, 2, 3, 3}), none, 1, 1, 3);
                      }),
                      {"conv2d", "groups = 3", "[1, 4, 5, 5]", "[6, 2, 3, 3]"});
        check_message(error_of([&] {
                          conv2d(zeros({1, 1, 2, 2}), zeros({1, 1, 5, 5}), none, 1, 1);
                      }),
                      {"conv2d", "5x5", "larger than the padded input 4x4", "[1, 1, 2, 2]"});
        check_message(error_of([&] {
                          conv2d(zeros({1, 3, 5, 5}, DType::Int64), zeros({4, 3, 3, 3}), none);
                      }),
                      {"conv2d", "float32", "int64", "[1, 3, 5, 5]"});
        check_message(error_of([&] {
                          conv2d(zeros({1, 3, 5, 5}), zeros({4, 3, 3, 3}), zeros({3}));
                      }),
                      {"conv2d", "bias", "[3]", "[4]"});
        check_message(error_of([&] {
                          conv2d(zeros({1, 3, 5, 5}), zeros({4, 3, 3, 3}), none, 0);
                      }),
                      {"conv2d", "stride"});
    }
    SUBCASE("conv_transpose2d") {
        check_message(error_of([&] {
                          conv_transpose2d(zeros({2, 3, 3}), zeros({3, 2, 3, 3}), none);
                      }),
                      {"conv_transpose2d", "[2, 3, 3]", "4-D"});
        check_message(error_of([&] {
                          conv_transpose2d(zeros({1, 3, 4, 4}), zeros({2, 3, 3, 3}), none);
                      }),
                      {"conv_transpose2d", "[1, 3, 4, 4]", "[2, 3, 3, 3]", "(C_in, C_out / groups, R, S)"});
        check_message(error_of([&] {
                          conv_transpose2d(zeros({1, 3, 4, 4}), zeros({3, 2, 3, 3}), none, 1, 0, 0, 2);
                      }),
                      {"conv_transpose2d", "groups = 2", "[1, 3, 4, 4]"});
        check_message(error_of([&] {
                          conv_transpose2d(zeros({1, 2, 4, 4}), zeros({2, 2, 3, 3}), none, 2, 1, 2);
                      }),
                      {"conv_transpose2d", "output_padding 2", "stride = 2"});
        check_message(error_of([&] {
                          conv_transpose2d(zeros({1, 2, 4, 4}), zeros({2, 2, 3, 3}, DType::Int64), none);
                      }),
                      {"conv_transpose2d", "float32", "int64", "[2, 2, 3, 3]"});
        check_message(error_of([&] {
                          conv_transpose2d(zeros({1, 2, 1, 1}), zeros({2, 2, 3, 3}), none, 1, 2);
                      }),
                      {"conv_transpose2d", "output would be", "[1, 2, 1, 1]"});
        check_message(error_of([&] {
                          conv_transpose2d(zeros({1, 2, 4, 4}), zeros({2, 3, 3, 3}), zeros({2}));
                      }),
                      {"conv_transpose2d", "bias", "[2]", "[3]"});
    }
    SUBCASE("avg_pool2d and upsample_nearest2d") {
        check_message(error_of([&] {
                          avg_pool2d(zeros({1, 1, 5, 4}), 2);
                      }),
                      {"avg_pool2d", "[1, 1, 5, 4]", "not divisible by k = 2"});
        check_message(error_of([&] { avg_pool2d(zeros({4, 4}), 2); }), {"avg_pool2d", "[4, 4]", "4-D"});
        check_message(error_of([&] {
                          avg_pool2d(zeros({1, 1, 4, 4}, DType::Int64), 2);
                      }),
                      {"avg_pool2d", "float32", "int64"});
        check_message(error_of([&] { avg_pool2d(zeros({1, 1, 4, 4}), 0); }), {"avg_pool2d", "k = 0"});
        check_message(error_of([&] {
                          upsample_nearest2d(zeros({2, 3, 4}), 2);
                      }),
                      {"upsample_nearest2d", "[2, 3, 4]", "4-D"});
        check_message(error_of([&] {
                          upsample_nearest2d(zeros({1, 1, 2, 2}), 0);
                      }),
                      {"upsample_nearest2d", "s = 0", "[1, 1, 2, 2]"});
    }
}
