// tests/test_norm_silu.cpp: group_norm_silu, the fused SiLU(GroupNorm(x)) of the ResBlocks,
// against the two ops it replaces, silu(group_norm(x)), forward and backward, on awkward
// shapes; against the backend's composed default (what a backend without a fused kernel
// runs); and the same bits for 1 and 2 threads. (Its PyTorch fixtures and their gradcheck:
// the group_norm_silu* cases of tests/cases_nn.py.)
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

// Awkward shapes: one group and one group per channel, channel counts that are not a
// multiple of 16 (the SIMD width), batch 1, 1x1 positions (a block of one element when
// groups == C: zero variance), 7x7 and 28x28, and a 3-D input.
struct Awkward {
    Shape shape;
    int64_t groups;
};
const Awkward kAwkward[] = {
    {{4, 16, 7, 7}, 4},  {{3, 6, 5, 9}, 3},  {{1, 8, 28, 28}, 8}, {{2, 4, 3}, 1},      {{3, 20, 1, 1}, 5},
    {{2, 12, 1, 1}, 12}, {{1, 20, 1, 1}, 1}, {{5, 24, 7, 7}, 1},  {{1, 3, 28, 28}, 3}, {{2, 10, 28, 28}, 5},
};

}  // namespace

TEST_CASE("group_norm_silu equals silu(group_norm(x)) bit for bit, forward and backward, on awkward shapes") {
    int i = 0;
    for (const Awkward& a : kAwkward) {
        CAPTURE(shape_str(a.shape));
        CAPTURE(a.groups);
        Generator gen(3 + i++);
        Tensor x = randn(a.shape, gen) * 2.0f + 0.5f;
        Tensor g = randn({a.shape[1]}, gen), b = randn({a.shape[1]}, gen), gy = randn(a.shape, gen);
        Grads fused = run(x, g, b, gy, a.groups, true), plain = run(x, g, b, gy, a.groups, false);
        // the same kernels' arithmetic in the same order: equal, not just close
        CHECK(fused.y.to_vector() == plain.y.to_vector());
        CHECK(fused.dx.to_vector() == plain.dx.to_vector());
        CHECK(fused.dgamma.to_vector() == plain.dgamma.to_vector());
        CHECK(fused.dbeta.to_vector() == plain.dbeta.to_vector());
    }
}

TEST_CASE("group_norm_silu: an input that needs no gradient still gives dgamma and dbeta") {
    Generator gen(17);
    Tensor x = randn({2, 6, 7, 7}, gen), gy = randn({2, 6, 7, 7}, gen);
    Tensor g = randn({6}, gen).requires_grad_(), b = randn({6}, gen).requires_grad_();
    group_norm_silu(x, 3, g, b).backward(gy);
    Grads all = run(x, g, b, gy, 3, true);
    CHECK(!x.grad().defined());
    CHECK(g.grad().to_vector() == all.dgamma.to_vector());
    CHECK(b.grad().to_vector() == all.dbeta.to_vector());
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
    CHECK(y1.to_vector() == y2.to_vector());                             // the same SiLU (fast_exp.h) on the same z
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
    auto once = [](int threads, const Awkward& a) {
        omp_set_num_threads(threads);
        Generator gen(4);
        Tensor x = randn(a.shape, gen), g = randn({a.shape[1]}, gen), b = randn({a.shape[1]}, gen);
        Grads r = run(x, g, b, randn(a.shape, gen), a.groups, true);
        return std::vector<std::vector<float>>{r.y.to_vector(), r.dx.to_vector(), r.dgamma.to_vector(),
                                               r.dbeta.to_vector()};
    };
    int saved = omp_get_max_threads();
    // more blocks than threads, one block alone, and one-element blocks
    for (const Awkward& a : {Awkward{{5, 12, 14, 14}, 4}, Awkward{{1, 20, 7, 7}, 1}, Awkward{{3, 20, 1, 1}, 20}}) {
        CAPTURE(shape_str(a.shape));
        auto one = once(1, a), two = once(2, a);
        CHECK(one == two);
    }
    omp_set_num_threads(saved);
}

TEST_CASE("errors: group_norm_silu names itself and the shapes") {
    CHECK(tdtest::error_of([] {
              group_norm_silu(zeros({2, 6, 4, 4}), 4, ones({6}), zeros({6}));
          }).find("group_norm_silu: 4 groups do not divide 6 channels") != std::string::npos);
}
