// tests/test_norm_conv.cpp: what the training step keeps in memory, and the ops that keep
// less. group_norm_silu_conv2d, a ResBlock's norm, SiLU, dropout and conv as one op whose
// backward recomputes the conv's input, against the composed ops, bit for bit, forward
// and every gradient, on awkward shapes; dropout's mask drawn again in its backward; and
// the graph letting go of an intermediate that no backward needs.
#include <doctest/doctest.h>

#include <memory>

#include "autograd/node.h"
#include "tests/helpers.h"

using namespace td;

namespace {

struct Case {
    Shape x;
    int64_t groups, K, R, stride, pad;
    float p;  // dropout
};

struct Result {
    Tensor y, dx, dgamma, dbeta, dw, db;
    uint64_t gen_offset;  // where the dropout generator stands after the forward
};

Result run(const Case& c, const Tensor& x0, const Tensor& g0, const Tensor& b0, const Tensor& w0, const Tensor& bias0,
           const Tensor& gy, bool fused) {
    Tensor x = x0.detach().requires_grad_(), g = g0.detach().requires_grad_(), b = b0.detach().requires_grad_();
    Tensor w = w0.detach().requires_grad_(), bias = bias0.detach().requires_grad_();
    Generator gen(77);
    Tensor y;
    if (fused) {
        y = group_norm_silu_conv2d(x, c.groups, g, b, 1e-5f, w, bias, c.stride, c.pad, c.p, &gen);
    } else {
        Tensor a = group_norm_silu(x, c.groups, g, b);
        if (c.p > 0.0f) a = dropout(a, c.p, /*training=*/true, gen);
        y = conv2d(a, w, bias, c.stride, c.pad);
    }
    uint64_t offset = gen.offset();
    y.backward(gy);
    return {y.detach(), x.grad(), g.grad(), b.grad(), w.grad(), bias.grad(), offset};
}

bool same_bits(const Tensor& a, const Tensor& b) { return a.shape() == b.shape() && a.to_vector() == b.to_vector(); }

}  // namespace

TEST_CASE("group_norm_silu_conv2d equals conv2d(dropout(group_norm_silu(x))) bit for bit") {
    const Case cases[] = {
        {{3, 6, 5, 7}, 3, 5, 3, 1, 1, 0.0f},      // odd sizes, the 3x3 fast path
        {{2, 8, 9, 6}, 4, 4, 3, 1, 1, 0.3f},      // with dropout
        {{2, 4, 7, 7}, 2, 6, 3, 2, 1, 0.5f},      // stride 2: the im2col reference
        {{1, 6, 4, 5}, 1, 3, 1, 1, 0, 0.1f},      // a 1x1 conv
        {{4, 16, 14, 14}, 8, 16, 3, 1, 1, 0.1f},  // a ResBlock's shape
    };
    for (const Case& c : cases) {
        CAPTURE(shape_str(c.x));
        CAPTURE(c.p);
        Generator gen(5);
        int64_t C = c.x[1];
        Tensor x = randn(c.x, gen) * 1.5f + 0.3f, g = randn({C}, gen), b = randn({C}, gen);
        Tensor w = randn({c.K, C, c.R, c.R}, gen) * 0.2f, bias = randn({c.K}, gen);
        int64_t OH = (c.x[2] + 2 * c.pad - c.R) / c.stride + 1, OW = (c.x[3] + 2 * c.pad - c.R) / c.stride + 1;
        Tensor gy = randn({c.x[0], c.K, OH, OW}, gen);
        Result fused = run(c, x, g, b, w, bias, gy, true), plain = run(c, x, g, b, w, bias, gy, false);
        CHECK(same_bits(fused.y, plain.y));
        CHECK(same_bits(fused.dx, plain.dx));
        CHECK(same_bits(fused.dgamma, plain.dgamma));
        CHECK(same_bits(fused.dbeta, plain.dbeta));
        CHECK(same_bits(fused.dw, plain.dw));
        CHECK(same_bits(fused.db, plain.db));
        CHECK(fused.gen_offset == plain.gen_offset);
    }
}

TEST_CASE("group_norm_silu_conv2d: only the conv's weight needs a gradient; errors") {
    Generator gen(8);
    Tensor x = randn({2, 4, 5, 5}, gen), g = randn({4}, gen), b = randn({4}, gen);
    Tensor w = randn({3, 4, 3, 3}, gen).requires_grad_();
    Tensor y = group_norm_silu_conv2d(x, 2, g, b, 1e-5f, w, Tensor(), 1, 1);
    sum(y).backward();
    Tensor w2 = w.detach().requires_grad_();
    sum(conv2d(group_norm_silu(x, 2, g, b), w2, Tensor(), 1, 1)).backward();
    CHECK(same_bits(w.grad(), w2.grad()));
    CHECK_THROWS_WITH_AS(group_norm_silu_conv2d(x, 2, g, b, 1e-5f, w, Tensor(), 1, 1, 0.1f, nullptr),
                         doctest::Contains("generator"), Error);
    CHECK_THROWS_WITH_AS(group_norm_silu_conv2d(x, 3, g, b, 1e-5f, w, Tensor(), 1, 1), doctest::Contains("groups"),
                         Error);
    CHECK_THROWS_WITH_AS(group_norm_silu_conv2d(x, 2, g, b, 1e-5f, randn({3, 5, 3, 3}, gen), Tensor(), 1, 1),
                         doctest::Contains("conv2d"), Error);
}

TEST_CASE("dropout: the backward draws the forward's mask again, however the generator moved on") {
    Generator gen(21);
    Tensor x = (randn({3, 50}, gen) + 2.0f).requires_grad_();
    Generator dgen(4);
    Tensor y = dropout(x, 0.4f, /*training=*/true, dgen);
    uint64_t after = dgen.offset();
    Generator ref(4);
    rand({3, 50}, ref);  // the draw a mask of 150 elements takes
    CHECK(after == ref.offset());
    randn({1000}, dgen);  // the generator moves on before the backward
    Tensor gy = randn({3, 50}, gen);
    y.backward(gy);
    std::vector<float> yv = y.to_vector(), xv = x.detach().to_vector(), gv = gy.to_vector(), dx = x.grad().to_vector();
    const float scale = 1.0f / (1.0f - 0.4f);
    int64_t dropped = 0;
    for (size_t i = 0; i < yv.size(); ++i) {
        bool kept = yv[i] != 0.0f;  // no x is exactly 0, so a zero is a dropped element
        dropped += !kept;
        CHECK(dx[i] == (kept ? gv[i] * scale : 0.0f));
        CHECK(yv[i] == (kept ? xv[i] * scale : 0.0f));
    }
    CHECK(dropped > 30);  // about 60 of 150
    CHECK(dropped < 90);
}

TEST_CASE("the graph frees an intermediate that no backward needs") {
    Tensor x = ones({64, 64}).requires_grad_();
    Tensor h = x * 3.0f;  // mul_scalar keeps its input x, not h
    std::weak_ptr<Storage> h_data = h.impl()->storage;
    Tensor y = h + ones({64, 64});  // add keeps no input for its backward; its node holds h as an edge
    Tensor z = sum(y);
    h = Tensor();
    CHECK(h_data.expired());                             // freed in the forward: nothing kept its values
    CHECK(y.grad_fn()->inputs[0].grad_fn() != nullptr);  // the edge still leads to mul_scalar
    z.backward();
    CHECK(x.grad().to_vector() == std::vector<float>(64 * 64, 3.0f));
}
