// tests/test_nn_torch.cpp: the layer ops (normalisation, softmax, losses, attention,
// embedding) against PyTorch fixtures made by tests/cases_nn.py, then the nn/ modules
// themselves loaded with the fixtures' weights through load_state_dict, plus init,
// naming, train/eval and dropout.
#include <doctest/doctest.h>

#include <cmath>

#include "nn/attention.h"
#include "nn/conv.h"
#include "nn/layers.h"
#include "nn/linear.h"
#include "nn/norm.h"
#include "nn/timestep_embedding.h"
#include "tests/helpers.h"
#include "tests/torch_cases.h"

using namespace td;
using tdtest::Inputs;

namespace {

const bool kRegistered = [] {
    auto& m = tdtest::op_registry();
    using I = const Inputs&;
    auto reg = [&m](const std::string& name, tdtest::Fn fn) {
        m[name] = tdtest::OpCase{"nn", std::move(fn)};
        return &m[name];
    };
    reg("group_norm_2groups", [](I x) { return group_norm(x[0], 2, x[1], x[2]); });
    reg("group_norm_1group", [](I x) { return group_norm(x[0], 1, x[1], x[2]); });
    reg("group_norm_silu", [](I x) { return group_norm_silu(x[0], 3, x[1], x[2]); });
    reg("group_norm_silu_1x1", [](I x) { return group_norm_silu(x[0], 5, x[1], x[2]); });
    reg("group_norm_silu_1group", [](I x) { return group_norm_silu(x[0], 1, x[1], x[2]); });
    reg("group_norm_silu_per_channel", [](I x) { return group_norm_silu(x[0], 5, x[1], x[2]); });
    reg("group_norm_instance", [](I x) { return group_norm(x[0], 4, x[1], x[2]); });
    reg("group_norm_const_affine", [](I x) { return group_norm(x[0], 2, x[1], x[2]); });
    reg("layer_norm_last", [](I x) { return layer_norm(x[0], {5}, x[1], x[2]); });
    reg("layer_norm_two_dims", [](I x) { return layer_norm(x[0], {3, 4}, x[1], x[2]); });
    reg("layer_norm_no_affine", [](I x) { return layer_norm(x[0], {6}, Tensor(), Tensor()); });
    reg("softmax_last", [](I x) { return softmax(x[0], -1); });
    reg("softmax_dim1", [](I x) { return softmax(x[0], 1); });
    reg("log_softmax_last", [](I x) { return log_softmax(x[0], -1); });
    reg("log_softmax_dim0", [](I x) { return log_softmax(x[0] * 3.0f, 0); });
    reg("cross_entropy_op", [](I x) { return cross_entropy(x[0], x[1]); });
    reg("mse_loss_op", [](I x) { return mse_loss(x[0], x[1]); });
    reg("sdpa", [](I x) { return scaled_dot_product_attention(x[0], x[1], x[2]); });
    reg("cross_attention", [](I x) { return nn::Attention::attend(x[0], x[1], x[2], x[3], x[4], x[5], x[6], 2); });
    reg("self_attention", [](I x) { return nn::Attention::attend(x[0], Tensor(), x[1], x[2], x[3], x[4], x[5], 3); });
    reg("embedding_op", [](I x) { return embedding(x[0], x[1]); });
    reg("linear", [](I x) { return matmul(x[0], x[1].transpose(0, 1)) + x[2]; });
    reg("timestep_embedding", [](I x) { return nn::timestep_embedding(x[0], 8); });
    return true;
}();

Tensor fixture(const std::string& name, const std::string& t) { return load_npy(tdtest::fixture_path(name, t)); }

}  // namespace

TEST_CASE("torch fixtures: nn") { tdtest::run_family("nn"); }

// ---- modules, loaded with the fixture's weights -------------------------------------------

TEST_CASE("nn modules reproduce PyTorch with PyTorch's weights") {
    SUBCASE("Linear") {
        nn::Linear lin(4, 5);
        lin.load_state_dict({{"weight", fixture("linear", "in1")}, {"bias", fixture("linear", "in2")}});
        Tensor x = fixture("linear", "in0").requires_grad_();
        Tensor y = lin(x);
        CHECK_CLOSE(y, fixture("linear", "out"), 1e-5f, 1e-4f);
        y.backward(fixture("linear", "grad_out"));
        CHECK_CLOSE(x.grad(), fixture("linear", "grad_in0"), 1e-5f, 1e-4f);
        CHECK_CLOSE(lin.weight.grad(), fixture("linear", "grad_in1"), 1e-5f, 1e-4f);
        CHECK_CLOSE(lin.bias.grad(), fixture("linear", "grad_in2"), 1e-5f, 1e-4f);
    }
    SUBCASE("GroupNorm") {
        nn::GroupNorm gn(2, 4);
        const std::string c = "group_norm_2groups";
        gn.load_state_dict({{"weight", fixture(c, "in1")}, {"bias", fixture(c, "in2")}});
        Tensor x = fixture(c, "in0").requires_grad_();
        Tensor y = gn(x);
        CHECK_CLOSE(y, fixture(c, "out"), 1e-5f, 1e-4f);
        y.backward(fixture(c, "grad_out"));
        CHECK_CLOSE(x.grad(), fixture(c, "grad_in0"), 1e-5f, 1e-4f);
        CHECK_CLOSE(gn.weight.grad(), fixture(c, "grad_in1"), 1e-5f, 1e-4f);
        CHECK_CLOSE(gn.bias.grad(), fixture(c, "grad_in2"), 1e-5f, 1e-4f);
    }
    SUBCASE("LayerNorm") {
        nn::LayerNorm ln(5);
        const std::string c = "layer_norm_last";
        ln.load_state_dict({{"weight", fixture(c, "in1")}, {"bias", fixture(c, "in2")}});
        Tensor x = fixture(c, "in0").requires_grad_();
        Tensor y = ln(x);
        CHECK_CLOSE(y, fixture(c, "out"), 1e-5f, 1e-4f);
        y.backward(fixture(c, "grad_out"));
        CHECK_CLOSE(ln.weight.grad(), fixture(c, "grad_in1"), 1e-5f, 1e-4f);
    }
    SUBCASE("Attention (cross)") {
        nn::Attention att(6, 2, 4, 5);
        const std::string c = "cross_attention";
        att.load_state_dict({{"to_q.weight", fixture(c, "in2")},
                             {"to_k.weight", fixture(c, "in3")},
                             {"to_v.weight", fixture(c, "in4")},
                             {"to_out.weight", fixture(c, "in5")},
                             {"to_out.bias", fixture(c, "in6")}});
        Tensor x = fixture(c, "in0").requires_grad_(), ctx = fixture(c, "in1").requires_grad_();
        Tensor y = att.forward(x, ctx);
        CHECK_CLOSE(y, fixture(c, "out"), 1e-5f, 1e-4f);
        y.backward(fixture(c, "grad_out"));
        CHECK_CLOSE(ctx.grad(), fixture(c, "grad_in1"), 1e-5f, 1e-4f);
        CHECK_CLOSE(att.to_k->weight.grad(), fixture(c, "grad_in3"), 1e-5f, 1e-4f);
    }
    SUBCASE("Embedding") {
        nn::Embedding emb(6, 3);
        emb.load_state_dict({{"weight", fixture("embedding_op", "in0")}});
        Tensor y = emb.forward(fixture("embedding_op", "in1"));
        CHECK_CLOSE(y, fixture("embedding_op", "out"), 1e-6f, 1e-6f);
        y.backward(fixture("embedding_op", "grad_out"));
        CHECK_CLOSE(emb.weight.grad(), fixture("embedding_op", "grad_in0"), 1e-5f, 1e-4f);
    }
}

// ---- names, init, modes ----------------------------------------------------------------

namespace {
struct Block : nn::Module {
    std::shared_ptr<nn::Conv2d> conv1;
    std::shared_ptr<nn::GroupNorm> norm;
    Block() {
        conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(4, 8, 3, 1, 1));
        norm = register_module("norm", std::make_shared<nn::GroupNorm>(2, 8));
    }
};
struct Net : nn::Module {
    std::shared_ptr<nn::Sequential> down = std::make_shared<nn::Sequential>();
    std::shared_ptr<nn::Linear> head;
    std::shared_ptr<nn::Dropout> drop;
    Net() {
        register_module("down", down);
        down->push_back(std::make_shared<nn::Linear>(3, 3));
        head = register_module("head", std::make_shared<nn::Linear>(3, 2, false));
        drop = register_module("drop", std::make_shared<nn::Dropout>(0.5f, 1));
    }
};
}  // namespace

TEST_CASE("modules: dotted PyTorch-style names, counts, summary") {
    Block b;
    std::vector<std::string> names;
    for (auto& [n, _] : b.named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"conv1.weight", "conv1.bias", "norm.weight", "norm.bias"});
    CHECK(b.num_parameters() == 8 * 4 * 9 + 8 + 8 + 8);
    Net net;
    auto sd = net.state_dict();
    CHECK(sd.count("down.0.weight") == 1);
    CHECK(sd.count("head.weight") == 1);
    CHECK(sd.count("head.bias") == 0);
    CHECK(net.summary().find("Linear") != std::string::npos);
}

TEST_CASE("modules: load_state_dict reports missing, unexpected and mis-shaped names") {
    Net net;
    auto sd = net.state_dict();
    sd.erase("head.weight");
    sd["extra.weight"] = zeros({1});
    sd["down.0.bias"] = zeros({7});
    try {
        net.load_state_dict(sd);
        FAIL("load_state_dict accepted a bad state dict");
    } catch (const Error& e) {
        std::string m = e.what();
        CHECK(m.find("missing: head.weight") != std::string::npos);
        CHECK(m.find("unexpected: extra.weight") != std::string::npos);
        CHECK(m.find("down.0.bias") != std::string::npos);
    }
}

TEST_CASE("modules: init follows PyTorch's defaults") {
    Generator gen(3);
    nn::Linear lin(100, 50, true, gen);
    float bound = 1.0f / std::sqrt(100.0f);
    CHECK(max(abs(lin.weight)).item() <= bound);
    CHECK(max(abs(lin.weight)).item() > 0.9f * bound);  // fills the interval
    // U(-b, b) has variance b^2 / 3
    CHECK(var(lin.weight).item() == doctest::Approx(bound * bound / 3).epsilon(0.05));
    nn::Conv2d conv(8, 16, 3, 1, 1, 2, true, gen);
    CHECK(conv.weight.shape() == Shape{16, 4, 3, 3});
    CHECK(max(abs(conv.weight)).item() <= 1.0f / std::sqrt(4.0f * 9.0f));
    nn::ConvTranspose2d up(8, 4, 4, 2, 1);
    CHECK(up.weight.shape() == Shape{8, 4, 4, 4});
    nn::GroupNorm gn(4, 8);
    CHECK(gn.weight.to_vector() == std::vector<float>(8, 1.0f));
    CHECK(gn.bias.to_vector() == std::vector<float>(8, 0.0f));
    nn::Embedding emb(1000, 10, gen);
    CHECK(std::fabs(var(emb.weight).item() - 1.0f) < 0.05f);
}

TEST_CASE("dropout: inverted scaling, seeded, off in eval") {
    Net net;
    Tensor x = ones({10000});
    Tensor y = net.drop->forward(x);
    std::vector<float> v = y.to_vector();
    int64_t zeros_ = 0;
    for (float e : v) {
        CHECK((e == 0.0f || e == 2.0f));
        zeros_ += e == 0.0f;
    }
    CHECK(zeros_ > 4700);
    CHECK(zeros_ < 5300);
    nn::Dropout a(0.3f, 9), b(0.3f, 9);
    CHECK(a(x).to_vector() == b(x).to_vector());
    net.eval();
    CHECK_FALSE(net.drop->is_training());
    CHECK(net.drop->forward(x).to_vector() == x.to_vector());
    net.train();
    CHECK(net.drop->is_training());
    // the gradient flows only through kept elements, scaled the same way
    Tensor w = ones({1000}).requires_grad_();
    nn::Dropout d(0.5f, 4);
    Tensor out = d(w);
    sum(out).backward();
    CHECK(w.grad().to_vector() == out.detach().to_vector());
}

TEST_CASE("nn ops: error messages name the op and shapes") {
    CHECK_THROWS_WITH_AS(group_norm(ones({2, 6, 3}), 4, ones({6}), zeros({6})), doctest::Contains("group_norm"), Error);
    CHECK_THROWS_WITH_AS(group_norm(ones({2, 6, 3}), 3, ones({5}), zeros({6})), doctest::Contains("[6]"), Error);
    CHECK_THROWS_WITH_AS(layer_norm(ones({2, 5}), {4}, Tensor(), Tensor()), doctest::Contains("[2, 5]"), Error);
    CHECK_THROWS_WITH_AS(cross_entropy(ones({3, 4}), zeros({2}, DType::Int64)), doctest::Contains("cross_entropy"),
                         Error);
    CHECK_THROWS_WITH_AS(cross_entropy(ones({3, 4}), zeros({3})), doctest::Contains("int64"), Error);
    CHECK_THROWS_WITH_AS(scaled_dot_product_attention(ones({2, 3, 4}), ones({2, 5, 3}), ones({2, 5, 4})),
                         doctest::Contains("attention"), Error);
    CHECK_THROWS_WITH_AS(embedding(ones({4, 2}), ones({3})), doctest::Contains("int64"), Error);
    CHECK_THROWS_AS(embedding(ones({4, 2}), Tensor::from_vector_i64({5}, {1})), Error);  // out of range
    nn::Linear lin(3, 2);
    CHECK_THROWS_WITH_AS(lin(ones({4, 5})), doctest::Contains("in_features"), Error);
    Generator gen(0);
    CHECK_THROWS_AS(dropout(ones({2}), 1.0f, true, gen), Error);
}
