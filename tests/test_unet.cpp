// tests/test_unet.cpp: the UNet (diffusion/unet.h) against its PyTorch twin
// (bench/unet_torch.py) the llm.c way: the same random weights loaded on both sides, the
// output and the gradient of every parameter compared with fixtures written by
// tests/make_fixtures_unet.py; then the parameter names and count of the demo config,
// the config's validation errors, the zero output of a fresh UNet, and dropout's
// train/eval switch.
#include <fstream>
#include <sstream>

#include "diffusion/unet.h"
#include "nn/safetensors.h"
#include "tests/helpers.h"

using namespace td;
using diffusion::UNet;
using diffusion::UNetConfig;

namespace {

const std::string kDir = "tests/fixtures_unet/";

// The fixture's reference is float64 rounded to float32; ours runs in float32 through
// ~40 layers (deep: ~70). Measured: output off by at most ~1e-6 (|y| <= 2.4), gradients
// by ~8e-6 (|grad| <= 22), the worst element 1/24 of the tolerance below. A real mistake
// is far above it: t off by one moves y by 0.1, the embedding's other convention
// (divide by half, not half - 1) by 0.26, one head instead of two in mid.attn_1 by 0.006.
constexpr float kAtol = 1e-4f, kRtol = 1e-4f;

std::vector<int64_t> int_list(const std::string& s) {  // "1,2,2" -> {1, 2, 2}; "" -> {}
    std::vector<int64_t> v;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) v.push_back(std::stoll(item));
    return v;
}

// The config the fixture was made with: weights.safetensors carries it in its metadata.
UNetConfig fixture_config(const std::map<std::string, std::string>& meta) {
    UNetConfig c;
    c.in_channels = std::stoll(meta.at("in_channels"));
    c.image_size = std::stoll(meta.at("image_size"));
    c.ch = std::stoll(meta.at("ch"));
    c.mults = int_list(meta.at("mults"));
    c.num_res_blocks = std::stoll(meta.at("num_res_blocks"));
    c.attn_res = int_list(meta.at("attn_res"));
    c.heads = std::stoll(meta.at("heads"));
    c.groups = std::stoll(meta.at("groups"));
    c.dropout = 0.0f;  // the reference has none
    return c;
}

struct Fixture {
    UNetConfig config;
    int64_t torch_num_parameters;
    std::map<std::string, Tensor> ref;  // x, t, r, y, grad.x, grad.<parameter name>
};

Fixture load_fixture(const std::string& name) {
    std::map<std::string, std::string> meta;
    nn::load_safetensors(kDir + name + "/weights.safetensors", &meta);
    return {fixture_config(meta), std::stoll(meta.at("num_parameters")),
            nn::load_safetensors(kDir + name + "/reference.safetensors")};
}

// A UNet with the fixture's config and its (PyTorch's) weights.
std::unique_ptr<UNet> fixture_model(const std::string& name, const UNetConfig& c) {
    auto model = std::make_unique<UNet>(c);
    nn::load_module(kDir + name + "/weights.safetensors", *model);
    return model;
}

float max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(a - b)).item(); }

}  // namespace

TEST_CASE("UNet matches PyTorch: output and every gradient (fixtures_unet)") {
    for (const std::string name : {"tiny", "deep"}) {
        CAPTURE(name);
        Fixture f = load_fixture(name);
        INFO("config: " << f.config.describe());
        auto model = fixture_model(name, f.config);
        CHECK(model->num_parameters() == f.torch_num_parameters);

        // y = eps_theta(x, t) for x (2, C, 8, 8), t = [3, 917]; loss = sum(y * r).
        Tensor x = f.ref.at("x").clone().requires_grad_();
        Tensor y = model->forward(x, f.ref.at("t"));
        CHECK_CLOSE(y, f.ref.at("y"), kAtol, kRtol);
        sum(y * f.ref.at("r")).backward();
        CHECK_CLOSE(x.grad(), f.ref.at("grad.x"), kAtol, kRtol);

        nn::NamedTensors params = model->named_parameters();
        CHECK(params.size() + 5 == f.ref.size());  // every gradient of the reference is checked
        for (const auto& [pname, p] : params) {
            INFO("parameter " << pname);
            REQUIRE(f.ref.count("grad." + pname));
            CHECK_CLOSE(p.grad(), f.ref.at("grad." + pname), kAtol, kRtol);
        }
    }
}

TEST_CASE("UNet: the demo config has PyTorch's parameter names, shapes and count") {
    // mnist_default.txt: bench/unet_torch.py's UNet(UNetConfig()), one "name d0,d1,..." per line.
    std::ifstream in(kDir + "mnist_default.txt");
    REQUIRE(in);
    std::map<std::string, Shape> torch_shapes;
    int64_t torch_count = -1;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("# num_parameters ", 0) == 0) torch_count = std::stoll(line.substr(17));
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        std::string pname, dims;
        ls >> pname >> dims;
        torch_shapes[pname] = int_list(dims);
    }
    REQUIRE(torch_count > 0);

    UNet model{UNetConfig{}};  // the defaults are the demo config
    std::map<std::string, Shape> ours;
    for (const auto& [pname, p] : model.named_parameters()) ours[pname] = p.shape();
    for (const auto& [pname, shape] : torch_shapes) {
        INFO("torch parameter " << pname);
        REQUIRE(ours.count(pname));
        CHECK(shape_str(ours.at(pname)) == shape_str(shape));
    }
    for (const auto& [pname, shape] : ours) {
        INFO("our parameter " << pname);
        CHECK(torch_shapes.count(pname));
    }
    CHECK(model.num_parameters() == torch_count);
}

TEST_CASE("UNet: a fresh model outputs exactly 0, shaped like its MNIST input") {
    // conv_out starts at zero, so eps_theta = 0 and the first L_simple is E[eps^2] = 1.
    UNet model{UNetConfig{}};
    Generator gen(3);
    Tensor x = randn({2, 1, 28, 28}, gen);
    Tensor t = Tensor::from_vector_i64({0, 999}, {2});
    NoGradGuard no_grad;
    Tensor y = model.forward(x, t);
    CHECK(y.shape() == Shape{2, 1, 28, 28});
    CHECK_CLOSE(y, zeros({2, 1, 28, 28}), 0.0f, 0.0f);
    // A wrong input size is caught with the model's expectation in the message.
    tdtest::check_message(tdtest::error_of([&] {
                              model.forward(randn({2, 1, 32, 32}, gen), t);
                          }),
                          {"[2, 1, 32, 32]", "28x28"});
}

TEST_CASE("UNet config: validation errors name the problem") {
    auto message = [](const UNetConfig& c) {
        std::string from_validate = tdtest::error_of([&] { c.validate(); });
        CHECK(tdtest::error_of([&] { UNet m(c); }) == from_validate);  // the constructor validates too
        return from_validate;
    };
    CHECK(message(UNetConfig{}).empty());

    UNetConfig groups;  // widths 40, 80, 60: 8 groups do not divide level 2's
    groups.ch = 20;
    groups.mults = {2, 4, 3};
    tdtest::check_message(message(groups), {"GroupNorm groups 8", "level 2's width 60"});

    UNetConfig attn;  // resolutions 28, 14, 7
    attn.attn_res = {5};
    tdtest::check_message(message(attn), {"attention resolution 5", "not one of the UNet's resolutions"});

    UNetConfig halve;  // 28 -> 14 -> 7 -> ?
    halve.mults = {1, 2, 2, 2};
    tdtest::check_message(message(halve), {"image size 28 cannot be halved 3 times", "resolution 7"});

    UNetConfig heads;
    heads.heads = 3;
    tdtest::check_message(message(heads), {"3 heads do not divide", "width 32"});
}

TEST_CASE("UNet: dropout acts in train() only, with reproducible masks") {
    Fixture f = load_fixture("tiny");
    UNetConfig c = f.config;
    c.dropout = 0.5f;  // before conv2, whose fixture weights are not zero: it shows in y
    c.seed = 7;
    auto a = fixture_model("tiny", c), b = fixture_model("tiny", c);
    const Tensor &x = f.ref.at("x"), &t = f.ref.at("t");
    NoGradGuard no_grad;

    a->eval();
    Tensor y_eval = a->forward(x, t);
    CHECK_CLOSE(a->forward(x, t), y_eval, 0.0f, 0.0f);  // deterministic
    CHECK_CLOSE(y_eval, f.ref.at("y"), kAtol, kRtol);   // and the model without dropout

    a->train();
    b->train();
    Tensor y_train = a->forward(x, t);
    CHECK(max_abs_diff(y_train, y_eval) > 1e-2f);            // masks change the output
    CHECK_CLOSE(b->forward(x, t), y_train, 0.0f, 0.0f);      // same seed, same masks
    CHECK(max_abs_diff(a->forward(x, t), y_train) > 1e-2f);  // the generator moves on
}
