// tests/test_autograd.cpp: the engine itself: accumulation, graph shapes, no_grad,
// detach, freeing the graph, broadcast-aware reduction, gradcheck catching a bad backward.
#include "tests/helpers.h"

using namespace td;

TEST_CASE("backward of a scalar through a small expression") {
    // y = sum(a * b + a^2): dy/da = b + 2a, dy/db = a
    Tensor a = Tensor::from_vector({1, 2, 3}, {3}).requires_grad_();
    Tensor b = Tensor::from_vector({4, 5, 6}, {3}).requires_grad_();
    Tensor y = sum(a * b + a * a);
    CHECK(y.item() == doctest::Approx(1 * 4 + 2 * 5 + 3 * 6 + 1 + 4 + 9));
    y.backward();
    CHECK(a.grad().to_vector() == std::vector<float>{6, 9, 12});
    CHECK(b.grad().to_vector() == std::vector<float>{1, 2, 3});
}

TEST_CASE("a tensor used twice gets both gradients (diamond graph)") {
    Tensor x = Tensor::from_vector({2}, {1}).requires_grad_();
    Tensor u = x * 3.0f, v = exp(x);
    Tensor y = sum(u * v);  // y = 3x e^x, dy/dx = 3 e^x (1 + x)
    y.backward();
    CHECK(x.grad().item() == doctest::Approx(3 * std::exp(2.0) * 3).epsilon(1e-5));
}

TEST_CASE("gradients accumulate over backward calls until zero_grad") {
    Tensor w = ones({2}).requires_grad_();
    sum(w * 2.0f).backward();
    sum(w * 2.0f).backward();
    CHECK(w.grad().to_vector() == std::vector<float>{4, 4});
    w.zero_grad();
    CHECK_FALSE(w.grad().defined());
}

TEST_CASE("add's two inputs get independent .grad tensors") {
    Tensor a = ones({2}).requires_grad_(), b = ones({2}).requires_grad_();
    sum(a + b).backward();
    CHECK(a.grad().impl()->storage != b.grad().impl()->storage);
    {
        NoGradGuard ng;
        a.grad().mul_(10.0f);
    }
    CHECK(b.grad().to_vector() == std::vector<float>{1, 1});
}

TEST_CASE("broadcasting: the gradient is summed back to the input's shape") {
    Tensor a = ones({2, 3}).requires_grad_();
    Tensor b = Tensor::from_vector({1, 2, 3}, {3}).requires_grad_();
    Tensor c = full({2, 1}, 2.0f).requires_grad_();
    sum(a * b * c).backward();
    CHECK(b.grad().shape() == Shape{3});
    CHECK(b.grad().to_vector() == std::vector<float>{4, 4, 4});
    CHECK(c.grad().shape() == Shape{2, 1});
    CHECK(c.grad().to_vector() == std::vector<float>{6, 6});
}

TEST_CASE("the graph is freed after backward unless retained") {
    Tensor x = ones({2}).requires_grad_();
    Tensor y = sum(exp(x));
    y.backward();
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("already freed"), Error);

    Tensor z = sum(exp(x));
    x.zero_grad();
    z.backward(Tensor(), /*retain_graph=*/true);
    z.backward();
    CHECK(x.grad().at({0}) == doctest::Approx(2 * std::exp(1.0)));
}

TEST_CASE("freeing the graph releases saved tensors") {
    Tensor x = ones({1000}).requires_grad_();
    Tensor h = exp(x);
    // (the backward keeps h's data, through a detached handle of its own: watch the storage)
    std::weak_ptr saved(h.impl()->storage);
    Tensor y = sum(h * h);
    h = Tensor();  // our handle is gone; the graph still holds its data
    CHECK_FALSE(saved.expired());
    y.backward();
    CHECK(saved.expired());
}

TEST_CASE("no_grad and detach cut the graph") {
    Tensor x = ones({2}).requires_grad_();
    {
        NoGradGuard ng;
        Tensor y = x * 2.0f;
        CHECK_FALSE(y.requires_grad());
        CHECK(y.grad_fn() == nullptr);
    }
    CHECK(grad_mode_enabled());
    Tensor d = (x * 2.0f).detach();
    CHECK_FALSE(d.requires_grad());
    Tensor y = sum(d * x);
    y.backward();
    CHECK(x.grad().to_vector() == std::vector<float>{2, 2});
    CHECK_THROWS_WITH_AS(sum(d).backward(), doctest::Contains("does not require grad"), Error);
}

TEST_CASE("requires_grad propagates and names the op") {
    Tensor a = ones({2}).requires_grad_();
    Tensor b = ones({2});
    Tensor c = matmul(a.reshape({1, 2}), b.reshape({2, 1}));
    CHECK(c.requires_grad());
    REQUIRE(c.grad_fn() != nullptr);
    CHECK(c.grad_fn()->name == "matmul");
    CHECK_FALSE((b * 2.0f).requires_grad());
}

TEST_CASE("backward needs a gradient for non-scalars, of the right shape") {
    Tensor x = ones({2, 2}).requires_grad_();
    Tensor y = x * 3.0f;
    CHECK_THROWS_WITH_AS(y.backward(), doctest::Contains("not a scalar"), Error);
    CHECK_THROWS_WITH_AS(y.backward(ones({3})), doctest::Contains("does not match"), Error);
    y.backward(ones({2, 2}));
    CHECK(x.grad().to_vector() == std::vector<float>{3, 3, 3, 3});
}

TEST_CASE("in-place updates of tensors that require grad are refused in grad mode") {
    Tensor w = ones({2}).requires_grad_();
    CHECK_THROWS_WITH_AS(w.fill_(0), doctest::Contains("NoGradGuard"), Error);
    NoGradGuard ng;
    w.add_(ones({2}), -0.5f);
    CHECK(w.to_vector() == std::vector<float>{0.5f, 0.5f});
}

TEST_CASE("a deep chain does not overflow the stack") {
    Tensor x = ones({1}).requires_grad_();
    Tensor y = x;
    for (int i = 0; i < 20000; ++i) y = y * 1.0f;
    sum(y).backward();
    CHECK(x.grad().item() == 1.0f);
}

TEST_CASE("gradcheck passes a correct backward and catches a wrong one") {
    Generator gen(5);
    Tensor a = randn({3, 4}, gen).requires_grad_();
    Tensor b = randn({4, 2}, gen).requires_grad_();
    GradcheckResult ok = gradcheck([](const std::vector<Tensor>& in) { return tanh(matmul(in[0], in[1])); }, {a, b});
    INFO(ok.message);
    CHECK(ok.ok);

    // an op whose backward is deliberately off by a factor 2
    auto bad_square = [](const std::vector<Tensor>& in) {
        const Tensor& x = in[0];
        Tensor y = (x * x).detach();
        return record("bad_square", y, {x}, [x](const Tensor& dy) -> std::vector<Tensor> {
            return {dy * x * 4.0f};  // should be 2x
        });
    };
    GradcheckResult bad = gradcheck(bad_square, {a});
    CHECK_FALSE(bad.ok);
    CHECK(bad.message.find("analytic") != std::string::npos);
}

TEST_CASE("a backward returning the wrong shape is reported with the op's name") {
    Tensor x = ones({2, 3}).requires_grad_();
    Tensor y = record("broken", (x * 1.0f).detach(), {x}, [](const Tensor&) -> std::vector<Tensor> {
        return {ones({3, 2})};
    });
    CHECK_THROWS_WITH_AS(sum(y).backward(), doctest::Contains("broken"), Error);
}
