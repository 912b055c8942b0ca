// tests/test_norm_silu.cpp: group_norm_silu, the fused SiLU(GroupNorm(x)) of the ResBlocks,
// against the two ops it replaces, silu(group_norm(x)), forward and backward; against the
// backend's composed default (what a backend without a fused kernel runs); and the same
// bits for 1 and 2 threads.
#include <doctest/doctest.h>
#include <omp.h>

#include "tensor/backend.h"
#include "tests/helpers.h"

using namespace td;

namespace {

struct Grads {
    Tensor y, dx, dgamma, dbeta;
};

Grads run(const Tensor& x0, const Tensor& g0, const Tensor& b0, const Tensor& gy, int64_t groups, bool fused) {
    Tensor x = x0.detach().requires_grad_(), g = g0.detach().requires_grad_(), b = b0.detach().requires_grad_();
    Tensor y = fused ? group_norm_silu(x, groups, g, b) : silu(group_norm(x, groups, g, b));
    y.backward(gy);
    return {y.detach(), x.grad(), g.grad(), b.grad()};
}

}  // namespace

TEST_CASE("group_norm_silu equals silu(group_norm(x)), forward and backward") {
    const Shape shapes[] = {{4, 16, 7, 7}, {3, 6, 5, 9}, {1, 8, 28, 28}, {2, 4, 3}};
    const int64_t groups[] = {4, 3, 8, 1};
    for (int i = 0; i < 4; ++i) {
        CAPTURE(shape_str(shapes[i]));
        Generator gen(3 + i);
        Tensor x = randn(shapes[i], gen) * 2.0f + 0.5f;
        Tensor g = randn({shapes[i][1]}, gen), b = randn({shapes[i][1]}, gen), gy = randn(shapes[i], gen);
        Grads fused = run(x, g, b, gy, groups[i], true), plain = run(x, g, b, gy, groups[i], false);
        CHECK_CLOSE(fused.y, plain.y, 1e-6, 1e-6);
        CHECK_CLOSE(fused.dx, plain.dx, 1e-5, 1e-5);
        CHECK_CLOSE(fused.dgamma, plain.dgamma, 1e-4, 1e-5);
        CHECK_CLOSE(fused.dbeta, plain.dbeta, 1e-4, 1e-5);
    }
}

TEST_CASE("group_norm_silu: the CPU's fused kernels equal the backend's composed defaults") {
    Generator gen(9);
    Tensor x = randn({3, 8, 6, 6}, gen), g = randn({8}, gen), b = randn({8}, gen), dy = randn({3, 8, 6, 6}, gen);
    Backend& be = backend_for(Device::CPU);
    auto empty = [](const Shape& s) { return Tensor::empty(s, DType::Float32, Device::CPU); };
    Tensor y1 = empty(x.shape()), m1 = empty({3, 2}), r1 = empty({3, 2});
    Tensor y2 = empty(x.shape()), m2 = empty({3, 2}), r2 = empty({3, 2});
    be.group_norm_silu_forward(x, 2, g, b, 1e-5f, y1, m1, r1);
    be.Backend::group_norm_silu_forward(x, 2, g, b, 1e-5f, y2, m2, r2);  // the composed default
    CHECK(y1.to_vector() == y2.to_vector());  // the same SiLU (fast_exp.h) on the same z
    CHECK(m1.to_vector() == m2.to_vector());
    Tensor dx1 = empty(x.shape()), dg1 = empty({8}), db1 = empty({8});
    Tensor dx2 = empty(x.shape()), dg2 = empty({8}), db2 = empty({8});
    be.group_norm_silu_backward(dy, x, m1, r1, g, b, 2, 1e-5f, dx1, dg1, db1);
    be.Backend::group_norm_silu_backward(dy, x, m1, r1, g, b, 2, 1e-5f, dx2, dg2, db2);
    CHECK(dx1.to_vector() == dx2.to_vector());
    CHECK(dg1.to_vector() == dg2.to_vector());
    CHECK(db1.to_vector() == db2.to_vector());
}

TEST_CASE("group_norm_silu: the same bits with 1 and 2 OpenMP threads") {
    auto once = [](int threads) {
        omp_set_num_threads(threads);
        Generator gen(4);
        Tensor x = randn({5, 12, 14, 14}, gen), g = randn({12}, gen), b = randn({12}, gen);
        Grads r = run(x, g, b, randn({5, 12, 14, 14}, gen), 4, true);
        return std::vector<std::vector<float>>{r.y.to_vector(), r.dx.to_vector(), r.dgamma.to_vector(),
                                               r.dbeta.to_vector()};
    };
    int saved = omp_get_max_threads();
    auto one = once(1), two = once(2);
    omp_set_num_threads(saved);
    CHECK(one == two);
}

TEST_CASE("errors: group_norm_silu names itself and the shapes") {
    CHECK(tdtest::error_of([] { group_norm_silu(zeros({2, 6, 4, 4}), 4, ones({6}), zeros({6})); })
              .find("group_norm_silu: 4 groups do not divide 6 channels") != std::string::npos);
}
