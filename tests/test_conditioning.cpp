// tests/test_conditioning.cpp: the conditional UNet the llm.c way.
//
// Against PyTorch twins (bench/unet_torch.py) with identical weights, fixtures written by
// tests/make_fixtures_cond.py: the spatial transformer's output and every gradient, the
// text encoder (and its tokenizer's ids), and tiny conditional UNets in each mode (class
// add, text concat, text crossattn), gradients through the conditioner included. Then,
// without fixtures: class crossattn by finite differences, masked attention, the
// tokenizer, the captions, classifier-free guidance, the config's messages, the model
// file's metadata (old files load as cond none), and that an unconditional UNet is the
// one it was.
#include <fstream>
#include <set>
#include <sstream>

#include "diffusion/captions.h"
#include "diffusion/guidance.h"
#include "diffusion/model_file.h"
#include "diffusion/text_encoder.h"
#include "diffusion/unet.h"
#include "nn/safetensors.h"
#include "nn/transformer.h"
#include "tests/helpers.h"

using namespace td;
using diffusion::cond_mode_name;
using diffusion::Conditioning;
using diffusion::conditioning_name;
using diffusion::CondMode;
using diffusion::parse_cond_mode;
using diffusion::parse_conditioning;
using diffusion::SmallTextEncoder;
using diffusion::UNet;
using diffusion::UNetConfig;

namespace {

const std::string kDir = "tests/fixtures_cond/";

// As tests/test_unet.cpp: the reference is float64 rounded to float32, ours float32.
constexpr float kAtol = 1e-4f, kRtol = 1e-4f;

using Meta = std::map<std::string, std::string>;
using Tensors = std::map<std::string, Tensor>;

std::vector<int64_t> int_list(const std::string& s) {  // "1,2,2" -> {1, 2, 2}
    std::vector<int64_t> v;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) v.push_back(std::stoll(item));
    return v;
}

std::vector<std::string> split(const std::string& s, char sep) {  // keeps empty pieces ("a||b")
    std::vector<std::string> out(1);
    for (char c : s) {
        if (c == sep) out.emplace_back();
        else out.back() += c;
    }
    return out;
}

struct Case {
    Meta meta;    // the weights file's: the case's sizes
    Tensors ref;  // inputs, outputs, r.<output>, grad.<input>, grad.<parameter>
};

Case load_case(const std::string& name) {
    Case c;
    nn::load_safetensors(kDir + name + "/weights.safetensors", &c.meta);
    c.ref = nn::load_safetensors(kDir + name + "/reference.safetensors");
    return c;
}

int64_t num(const Meta& m, const std::string& key) { return std::stoll(m.at(key)); }

// Every parameter's gradient against the reference's grad.<name>, and none left over.
void check_parameter_grads(const nn::Module& model, const Tensors& ref, size_t other_entries) {
    nn::NamedTensors params = model.named_parameters();
    CHECK(params.size() + other_entries == ref.size());
    for (const auto& [pname, p] : params) {
        INFO("parameter " << pname);
        REQUIRE(ref.count("grad." + pname));
        REQUIRE(p.grad().defined());
        CHECK_CLOSE(p.grad(), ref.at("grad." + pname), kAtol, kRtol);
    }
}

UNetConfig fixture_unet_config(const Meta& m) {
    UNetConfig c;
    c.in_channels = num(m, "in_channels");
    c.image_size = num(m, "image_size");
    c.ch = num(m, "ch");
    c.mults = int_list(m.at("mults"));
    c.num_res_blocks = num(m, "num_res_blocks");
    c.attn_res = int_list(m.at("attn_res"));
    c.heads = num(m, "heads");
    c.groups = num(m, "groups");
    c.dropout = 0.0f;
    c.cond = parse_conditioning(m.at("cond"));
    c.cond_mode = parse_cond_mode(m.at("cond_mode"));
    c.num_classes = num(m, "num_classes");
    c.concat_channels = num(m, "concat_channels");
    c.context_dim = num(m, "context_dim");
    c.text_dim = num(m, "text_dim");
    c.text_layers = num(m, "text_layers");
    c.text_heads = num(m, "text_heads");
    c.max_tokens = num(m, "max_tokens");
    return c;
}

// Every parameter random: zero-initialised layers (conv_out, proj_out, conv2) would hide
// the gradients of everything before them. Weights and biases N(0, 0.3^2), norms' gammas
// (the 1-D weights) 1 + N(0, 0.3^2), so normalised signals keep their size.
void randomize(nn::Module& m, uint64_t seed) {
    Generator gen(seed);
    NoGradGuard no_grad;
    for (auto& [n, p] : m.named_parameters()) {
        bool gamma = p.dim() == 1 && n.size() > 7 && n.compare(n.size() - 7, 7, ".weight") == 0;
        p.copy_(randn(p.shape(), gen, gamma ? 1.0f : 0.0f, 0.3f));
    }
}

UNetConfig tiny(const std::string& cond, const std::string& mode) {
    UNetConfig c;
    c.image_size = 8;
    c.ch = 4;
    c.mults = {1};
    c.num_res_blocks = 1;
    c.attn_res = {8};
    c.heads = 2;
    c.groups = 2;
    c.dropout = 0.0f;
    c.cond = parse_conditioning(cond);
    c.cond_mode = parse_cond_mode(mode);
    c.num_classes = cond == "class" ? 3 : 0;
    c.text_dim = 8;
    c.text_layers = 1;
    c.text_heads = 2;
    c.max_tokens = 12;
    return c;
}

float max_abs_diff(const Tensor& a, const Tensor& b) { return max(abs(a - b)).item(); }

}  // namespace

// ---------------------------------------------------------------------------------
// Against PyTorch

TEST_CASE("cond: SpatialTransformer matches PyTorch: output and every gradient (fixtures_cond)") {
    Case f = load_case("spatial_transformer");
    const Meta& m = f.meta;
    nn::SpatialTransformer st(num(m, "channels"), num(m, "heads"), num(m, "dim_head"), num(m, "context_dim"),
                              num(m, "groups"));
    CHECK(st.num_parameters() == num(m, "num_parameters"));
    nn::load_module(kDir + "spatial_transformer/weights.safetensors", st);

    Tensor x = f.ref.at("x").clone().requires_grad_();
    Tensor context = f.ref.at("context").clone().requires_grad_();
    Tensor y = st.forward(x, context);
    CHECK_CLOSE(y, f.ref.at("y"), kAtol, kRtol);
    sum(y * f.ref.at("r.y")).backward();
    CHECK_CLOSE(x.grad(), f.ref.at("grad.x"), kAtol, kRtol);
    CHECK_CLOSE(context.grad(), f.ref.at("grad.context"), kAtol, kRtol);  // through attn2's K and V
    check_parameter_grads(st, f.ref, 6);                                  // x, context, y, r.y, grad.x, grad.context

    // LDM's names, one block deep
    std::set<std::string> names;
    for (auto& [n, _] : st.named_parameters()) names.insert(n);
    for (const char* n :
         {"norm.weight", "proj_in.weight", "transformer_blocks.0.attn1.to_q.weight",
          "transformer_blocks.0.attn2.to_k.weight", "transformer_blocks.0.norm3.bias",
          "transformer_blocks.0.ff.net.0.proj.weight", "transformer_blocks.0.ff.net.2.weight", "proj_out.bias"})
        CHECK_MESSAGE(names.count(n), n);
}

TEST_CASE("cond: the text encoder matches PyTorch, and its tokenizer the twin's ids (fixtures_cond)") {
    Case f = load_case("text_encoder");
    const Meta& m = f.meta;
    // The vocabulary is built the same way on both sides.
    std::vector<std::string> torch_vocab = split(m.at("vocabulary"), ' ');
    CHECK(torch_vocab == SmallTextEncoder::vocabulary());

    SmallTextEncoder enc(num(m, "dim"), num(m, "layers"), num(m, "heads"), num(m, "max_tokens"));
    CHECK(enc.num_parameters() == num(m, "num_parameters"));
    nn::load_module(kDir + "text_encoder/weights.safetensors", enc);

    Tensor tokens = enc.tokenize(split(m.at("prompts"), '|'));
    CHECK(tokens.to_vector_i64() == f.ref.at("tokens").to_vector_i64());
    CHECK(tokens.shape() == f.ref.at("tokens").shape());

    Tensor y = enc.encode(tokens);
    Tensor pooled = enc.pool(tokens, y);
    CHECK_CLOSE(y, f.ref.at("y"), kAtol, kRtol);
    CHECK_CLOSE(pooled, f.ref.at("pooled"), kAtol, kRtol);
    (sum(y * f.ref.at("r.y")) + sum(pooled * f.ref.at("r.pooled"))).backward();
    check_parameter_grads(enc, f.ref, 5);  // tokens, y, r.y, pooled, r.pooled
}

TEST_CASE("cond: tiny conditional UNets match PyTorch in every mode (fixtures_cond)") {
    for (const std::string name : {"unet_class_add", "unet_text_concat", "unet_text_crossattn"}) {
        CAPTURE(name);
        Case f = load_case(name);
        UNetConfig c = fixture_unet_config(f.meta);
        INFO("config: " << c.describe());
        UNet model(c);
        CHECK(model.num_parameters() == num(f.meta, "num_parameters"));
        nn::load_module(kDir + name + "/weights.safetensors", model);

        Tensor y_cond = f.ref.at("y_cond");
        if (c.cond == Conditioning::Text)  // our tokenizer gives the ids the twin's did
            CHECK(model.text_encoder().tokenize(split(f.meta.at("prompts"), '|')).to_vector_i64() ==
                  y_cond.to_vector_i64());
        Tensor x = f.ref.at("x").clone().requires_grad_();
        Tensor out = model.forward(x, f.ref.at("t"), model.condition(y_cond));
        CHECK_CLOSE(out, f.ref.at("out"), kAtol, kRtol);
        sum(out * f.ref.at("r.out")).backward();
        CHECK_CLOSE(x.grad(), f.ref.at("grad.x"), kAtol, kRtol);
        check_parameter_grads(model, f.ref, 6);  // x, t, y_cond, out, r.out, grad.x
    }
}

// ---------------------------------------------------------------------------------
// Without fixtures

TEST_CASE("cond: class crossattn UNet: the label is one context token; gradients by finite differences") {
    UNetConfig c = tiny("class", "crossattn");
    c.context_dim = 5;
    UNet model(c);
    randomize(model, 11);
    Tensor y = Tensor::from_vector_i64({2, 3}, {2});  // a class and the null label
    UNet::Cond cond = model.condition(y);
    CHECK(cond.context.shape() == Shape{2, 1, 5});
    CHECK(!cond.emb.defined());
    CHECK(!cond.concat.defined());

    Generator gen(5);
    Tensor x = randn({2, 1, 8, 8}, gen);
    Tensor t = Tensor::from_vector_i64({10, 500}, {2});
    // d out / d context, through every SpatialTransformer's attn2
    GradcheckOptions o;
    o.atol = 2e-3f;
    GradcheckResult r = gradcheck(
        [&](const std::vector<Tensor>& in) {
            UNet::Cond k;
            k.context = in[0];
            return model.forward(x, t, k);
        },
        {cond.context.detach().clone().requires_grad_()}, o);
    INFO(r.message);
    CHECK(r.ok);
    // and the label's row of label_emb gets that gradient: row 2 and row 3 only
    model.zero_grad();
    sum(model.forward(x, t, model.condition(y))).backward();
    Tensor g = model.named_parameters().back().second.grad();  // label_emb.weight, registered last
    CHECK(model.named_parameters().back().first == "label_emb.weight");
    CHECK(max(abs(g.narrow(0, 0, 2))).item() == 0.0f);
    CHECK(max(abs(g.narrow(0, 2, 2))).item() > 0.0f);
}

TEST_CASE("cond: masked attention ignores padding keys exactly") {
    // With keys 3..4 hidden, the queries' outputs equal attention over keys 0..2 alone.
    Generator gen(2);
    nn::Attention att(6, 2, 3, 0, gen);
    Tensor x = randn({1, 5, 6}, gen);
    Tensor mask = Tensor::from_vector({1, 1, 1, 0, 0}, {1, 5});
    NoGradGuard no_grad;
    Tensor masked = att.forward(x, Tensor(), mask).narrow(1, 0, 3);
    Tensor first3 = x.narrow(1, 0, 3).contiguous();
    // queries 0..2 over keys 0..2: cross-attention from x[:3] to x[:3] is self-attention on x[:3]
    CHECK_CLOSE(masked, att.forward(first3), 1e-6f, 1e-5f);
    // all ones = no mask
    CHECK_CLOSE(att.forward(x, Tensor(), ones({1, 5})), att.forward(x), 1e-6f, 1e-5f);
    tdtest::check_message(tdtest::error_of([&] { att.forward(x, Tensor(), ones({1, 4})); }), {"key_mask", "[1, 4]"});
}

TEST_CASE("cond: the tokenizer: known words, <unk>, truncation, the empty prompt") {
    SmallTextEncoder enc(8, 1, 2, 6);
    auto id = SmallTextEncoder::token_id;
    const int64_t P = SmallTextEncoder::kPad, B = SmallTextEncoder::kBos, E = SmallTextEncoder::kEos,
                  U = SmallTextEncoder::kUnk;
    const std::vector<std::string>& V = SmallTextEncoder::vocabulary();
    REQUIRE(V.size() > 10);
    CHECK(V[0] == "<pad>");
    CHECK(V[1] == "<bos>");
    CHECK(V[2] == "<eos>");
    CHECK(V[3] == "<unk>");
    CHECK(std::is_sorted(V.begin() + 4, V.end()));
    CHECK(V[id("seven")] == "seven");
    CHECK(id("<pad>") == U);  // a special is not a word

    CHECK(SmallTextEncoder::split_words("An ANKLE-boot, please!") ==
          std::vector<std::string>{"an", "ankle", "boot", "please"});
    CHECK(SmallTextEncoder::split_words("  ") == std::vector<std::string>{});

    Tensor tk = enc.tokenize({"A handwritten SEVEN.", "a zebra", "", "a photo of a small bird and a cat"});
    CHECK(tk.shape() == Shape{4, 6});
    std::vector<int64_t> v = tk.to_vector_i64();
    std::vector<int64_t> row0(v.begin(), v.begin() + 6), row1(v.begin() + 6, v.begin() + 12),
        row2(v.begin() + 12, v.begin() + 18), row3(v.begin() + 18, v.end());
    CHECK(row0 == std::vector<int64_t>{B, id("a"), id("handwritten"), id("seven"), E, P});
    CHECK(row1 == std::vector<int64_t>{B, id("a"), U, E, P, P});                         // unknown word
    CHECK(row2 == std::vector<int64_t>{B, E, P, P, P, P});                               // "": the null prompt
    CHECK(row3 == std::vector<int64_t>{B, id("a"), id("photo"), id("of"), id("a"), E});  // cut to 4 words
    CHECK(enc.tokenize({}).shape() == Shape{0, 6});

    // pool takes the <eos> position's feature
    Generator gen(4);
    Tensor feats = randn({4, 6, 8}, gen);
    Tensor pooled = enc.pool(tk, feats);
    CHECK_CLOSE(pooled.narrow(0, 0, 1), feats.narrow(0, 0, 1).narrow(1, 4, 1).reshape({1, 8}), 0.0f, 0.0f);
    CHECK_CLOSE(pooled.narrow(0, 2, 1), feats.narrow(0, 2, 1).narrow(1, 1, 1).reshape({1, 8}), 0.0f, 0.0f);

    tdtest::check_message(tdtest::error_of([&] {
                              enc.encode(Tensor::from_vector_i64({1, 999}, {1, 2}));
                          }),
                          {"token id 999", "vocabulary"});
    tdtest::check_message(tdtest::error_of([&] {
                              enc.encode(zeros({1, 7}, DType::Int64));
                          }),
                          {"max_tokens = 6", "[1, 7]"});
}

TEST_CASE("cond: captions for every class of the three data sets, with a/an") {
    CHECK(diffusion::num_phrasings() == 4);
    CHECK(diffusion::caption("mnist", 7, 0) == "a handwritten seven");
    CHECK(diffusion::caption("mnist", 7, 1) == "the digit 7");
    CHECK(diffusion::caption("mnist", 7, 2) == "a drawing of the number seven");
    CHECK(diffusion::caption("mnist", 7, 3) == "seven");
    CHECK(diffusion::caption("mnist", 8, 0) == "a handwritten eight");
    CHECK(diffusion::caption("fashion", 9, 0) == "an ankle boot");
    CHECK(diffusion::caption("fashion-mnist", 9, 1) == "a photo of an ankle boot");
    CHECK(diffusion::caption("fashion", 9, 2) == "a picture of an ankle boot");
    CHECK(diffusion::caption("fashion", 0, 0) == "a t-shirt");
    CHECK(diffusion::caption("fashion", 1, 0) == "a pair of trousers");
    CHECK(diffusion::caption("cifar10", 0, 0) == "an airplane");
    CHECK(diffusion::caption("CIFAR-10", 0, 1) == "a photo of an airplane");
    CHECK(diffusion::caption("cifar10", 1, 0) == "an automobile");
    CHECK(diffusion::caption("cifar10", 9, 0) == "a truck");
    CHECK(diffusion::caption("flowers", 1, 0, {"Rose", "Orchid"}) == "a picture of an orchid");
    CHECK(diffusion::caption("flowers", 1, 0) == "a picture of class 1");
    CHECK(diffusion::with_article("umbrella") == "an umbrella");
    CHECK(diffusion::with_article("unicorn") == "a unicorn");
    CHECK(diffusion::with_article("hour glass") == "an hour glass");
    CHECK(diffusion::with_article("dog") == "a dog");

    // Every caption of every class: distinct per class, and every word known to the tokenizer.
    for (const char* d : {"mnist", "fashion", "cifar10"}) {
        for (int64_t p = 0; p < diffusion::num_phrasings(); ++p) {
            std::set<std::string> seen;
            for (int64_t label = 0; label < 10; ++label) {
                std::string cap = diffusion::caption(d, label, p);
                CAPTURE(cap);
                CHECK(seen.insert(cap).second);
                for (const std::string& w : SmallTextEncoder::split_words(cap))
                    CHECK(SmallTextEncoder::token_id(w) != SmallTextEncoder::kUnk);
                // no "a a..." / "a e..." slips: the article before a vowel is "an"
                CHECK(cap.find(" a a") == std::string::npos);
                CHECK(cap.rfind("a a", 0) == std::string::npos);
            }
        }
    }
    tdtest::check_message(tdtest::error_of([] { diffusion::caption("mnist", 10, 0); }), {"mnist", "0..9", "10"});
    tdtest::check_message(tdtest::error_of([] { diffusion::caption("mnist", 1, 4); }), {"phrasing 4", "[0, 4)"});
    tdtest::check_message(tdtest::error_of([] {
                              diffusion::caption("flowers", 2, 0, {"rose", "orchid"});
                          }),
                          {"label 2", "flowers"});
}

TEST_CASE("cond: classifier-free guidance: the combination and the batched denoiser") {
    Tensor u = Tensor::from_vector({1.0f, -2.0f, 0.5f}, {3});
    Tensor c = Tensor::from_vector({3.0f, 0.0f, 0.5f}, {3});
    CHECK_CLOSE(diffusion::cfg_combine(u, c, 0.0f), u, 0.0f, 0.0f);  // w = 0: unconditional
    CHECK_CLOSE(diffusion::cfg_combine(u, c, 1.0f), c, 0.0f, 0.0f);  // w = 1: conditional
    // BEGIN HIDE cfg
    // w = 3: u + 3 (c - u) = 3 c - 2 u, away from the unconditional prediction (the sign)
    // END HIDE cfg
    CHECK_CLOSE(diffusion::cfg_combine(u, c, 3.0f), Tensor::from_vector({7.0f, 4.0f, 0.5f}, {3}), 1e-6f, 0.0f);
    tdtest::check_message(tdtest::error_of([&] { diffusion::cfg_combine(u, ones({2}), 2.0f); }), {"cfg_combine"});

    for (const std::string cond : {"class", "text"}) {
        CAPTURE(cond);
        UNet model(tiny(cond, cond == "class" ? "add" : "crossattn"));
        randomize(model, 3);
        model.eval();
        Generator gen(9);
        Tensor x = randn({2, 1, 8, 8}, gen);
        Tensor t = Tensor::from_vector_i64({100, 900}, {2});
        Tensor y = cond == "class" ? Tensor::from_vector_i64({0, 2}, {2})
                                   : model.text_encoder().tokenize({"a handwritten seven", "the digit 2"});
        NoGradGuard no_grad;
        Tensor eps_c = model.forward(x, t, model.condition(y));
        Tensor eps_u = model.forward(x, t, model.condition(model.null_condition(2)));
        CHECK(max_abs_diff(eps_c, eps_u) > 1e-3f);  // the condition matters
        // one batched forward of 2B = two separate calls, combined
        Tensor guided = diffusion::guided_denoiser(model, y, 3.0f)(x, t);
        CHECK_CLOSE(guided, diffusion::cfg_combine(eps_u, eps_c, 3.0f), 1e-5f, 1e-4f);
        CHECK_CLOSE(diffusion::guided_denoiser(model, y, 1.0f)(x, t), eps_c, 1e-6f, 1e-5f);
        CHECK_CLOSE(diffusion::guided_denoiser(model, y, 0.0f)(x, t), eps_u, 1e-6f, 1e-5f);
        tdtest::check_message(tdtest::error_of([&] {
                                  diffusion::guided_denoiser(model, y, 2.0f)(randn({3, 1, 8, 8}, gen), t);
                              }),
                              {"x_t has 3 samples", "y has 2"});
    }
    UNet plain(tiny("none", "crossattn"));
    tdtest::check_message(
        tdtest::error_of([&] { diffusion::guided_denoiser(plain, Tensor::from_vector_i64({0}, {1}), 2.0f); }),
        {"unconditional"});
}

TEST_CASE("cond: autoguidance steps away from the guide's prediction, w = 1 is the model alone") {
    auto net = std::make_shared<UNet>(tiny("none", "crossattn"));
    auto guide = std::make_shared<UNet>(tiny("none", "crossattn"));
    randomize(*net, 3);
    randomize(*guide, 4);
    net->eval();
    guide->eval();
    Generator gen(9);
    Tensor x = randn({2, 1, 8, 8}, gen);
    Tensor t = Tensor::from_vector_i64({100, 900}, {2});
    NoGradGuard no_grad;
    Tensor d = net->forward(x, t), d_guide = guide->forward(x, t);
    CHECK(max_abs_diff(d, d_guide) > 1e-3f);  // two different networks
    CHECK_CLOSE(diffusion::autoguided_denoiser(net, guide, 1.0f)(x, t), d, 0.0f, 0.0f);
    CHECK_CLOSE(diffusion::autoguided_denoiser(net, guide, 0.0f)(x, t), d_guide, 1e-6f, 1e-5f);
    // w = 2.5: D_guide + 2.5 (D - D_guide) = 2.5 D - 1.5 D_guide
    CHECK_CLOSE(diffusion::autoguided_denoiser(net, guide, 2.5f)(x, t), d * 2.5f - d_guide * 1.5f, 1e-5f, 1e-4f);
    auto conditional = std::make_shared<UNet>(tiny("class", "add"));
    tdtest::check_message(tdtest::error_of([&] { diffusion::autoguided_denoiser(conditional, guide, 2.0f); }),
                          {"unconditional"});
}

TEST_CASE("cond: condition(), null_condition() and forward's checks") {
    UNet cls(tiny("class", "add"));
    Tensor null = cls.null_condition(3);
    CHECK(null.to_vector_i64() == std::vector<int64_t>{3, 3, 3});  // num_classes is the null label
    CHECK(cls.condition(Tensor::from_vector_i64({0, 3}, {2})).emb.shape() == Shape{2, 16});  // temb_dim = 4 ch
    tdtest::check_message(tdtest::error_of([&] { cls.condition(Tensor::from_vector_i64({4}, {1})); }),
                          {"label 4", "[0, 3]", "null label"});
    tdtest::check_message(tdtest::error_of([&] { cls.text_encoder(); }), {"no text encoder", "cond class"});
    Generator gen(1);
    Tensor x = randn({2, 1, 8, 8}, gen);
    Tensor t = Tensor::from_vector_i64({1, 2}, {2});
    tdtest::check_message(tdtest::error_of([&] { cls.forward(x, t); }),
                          {"built for cond class (add)", "none", "null_condition"});

    UNet txt(tiny("text", "concat"));
    Tensor null_tokens = txt.null_condition(2);
    CHECK(null_tokens.to_vector_i64() == txt.text_encoder().tokenize({"", ""}).to_vector_i64());
    CHECK(txt.condition(null_tokens).concat.shape() == Shape{2, 4, 8, 8});  // concat_channels planes
    tdtest::check_message(tdtest::error_of([&] {
                              txt.condition(Tensor::from_vector_i64({1, 2}, {2}));
                          }),
                          {"cond text takes token ids (B, L)"});
    tdtest::check_message(tdtest::error_of([&] { txt.forward(x, t, txt.condition(txt.null_condition(1))); }),
                          {"a condition for 1 samples", "2 inputs"});

    UNet plain(tiny("none", "crossattn"));
    tdtest::check_message(tdtest::error_of([&] { plain.condition(null); }), {"unconditional"});
    UNet::Cond stray;
    stray.concat = zeros({2, 4, 8, 8});
    tdtest::check_message(tdtest::error_of([&] { plain.forward(x, t, stray); }), {"not built for cond_mode concat"});

    // A fresh conditional UNet still predicts exactly 0 (conv_out is zero), in every mode.
    for (const std::string mode : {"add", "concat", "crossattn"}) {
        UNet m(tiny("text", mode));
        NoGradGuard no_grad;
        Tensor out = m.forward(x, t, m.condition(m.text_encoder().tokenize({"seven", "an ankle boot"})));
        CHECK_CLOSE(out, zeros({2, 1, 8, 8}), 0.0f, 0.0f);
    }
}

TEST_CASE("cond: the conditioner is a submodule; the unconditional UNet is unchanged") {
    UNetConfig base;  // the demo config
    UNet plain(base);
    for (auto& [n, _] : plain.named_parameters()) {
        CHECK(n.rfind("label_emb", 0) != 0);
        CHECK(n.rfind("cond_", 0) != 0);
    }
    UNetConfig cc = base;
    cc.cond = Conditioning::Class;
    cc.cond_mode = CondMode::Add;
    cc.num_classes = 10;
    UNet cls(cc);
    // every parameter of the plain UNet, with the same initial values (the conditioner
    // has a generator of its own), plus label_emb (11 rows: the null label)
    std::map<std::string, Tensor> sc = cls.state_dict();
    for (auto& [n, p] : plain.named_parameters()) {
        INFO(n);
        REQUIRE(sc.count(n));
        CHECK_CLOSE(sc.at(n), p, 0.0f, 0.0f);
    }
    CHECK(sc.at("label_emb.weight").shape() == Shape{11, 128});
    CHECK(cls.num_parameters() == plain.num_parameters() + 11 * 128);

    UNetConfig tc = base;
    tc.cond = Conditioning::Text;  // crossattn by default
    UNet txt(tc);
    std::map<std::string, Tensor> st = txt.state_dict();
    for (const char* n :
         {"cond_stage_model.token_embedding.weight", "cond_stage_model.position_embedding.weight",
          "cond_stage_model.layers.1.attn.to_q.weight", "cond_stage_model.layers.0.mlp.net.0.0.weight",
          "cond_stage_model.final_layer_norm.weight", "mid.attn_1.transformer_blocks.0.attn2.to_k.weight",
          "down.2.attn.1.proj_out.weight", "up.2.attn.2.transformer_blocks.0.ff.net.0.proj.weight"})
        CHECK_MESSAGE(st.count(n), n);
    CHECK(st.at("mid.attn_1.transformer_blocks.0.attn2.to_k.weight").shape() == Shape{64, 64});  // context = text_dim
    CHECK(txt.config().context_dim == 64);                                                       // derived
    CHECK(st.count("cond_proj.weight") == 0);  // crossattn needs no pooled vector
}

TEST_CASE("cond: the demo UNet with cond text has PyTorch's parameter names, shapes and count") {
    // text_default.txt: bench/unet_torch.py's UNet(UNetConfig(cond="text")), "name d0,d1,..." per line
    std::ifstream in(kDir + "text_default.txt");
    REQUIRE(in);
    std::map<std::string, std::string> torch_shapes;
    int64_t torch_count = -1;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("# num_parameters ", 0) == 0) torch_count = std::stoll(line.substr(17));
        if (line.empty() || line[0] == '#') continue;
        std::istringstream ls(line);
        std::string pname, dims;
        ls >> pname >> dims;
        torch_shapes[pname] = shape_str(int_list(dims));
    }
    UNetConfig c;
    c.cond = Conditioning::Text;
    UNet model(c);
    std::map<std::string, std::string> ours;
    for (const auto& [pname, p] : model.named_parameters()) ours[pname] = shape_str(p.shape());
    CHECK(ours == torch_shapes);  // same names, same shapes
    CHECK(model.num_parameters() == torch_count);
}

TEST_CASE("cond: UNet config validation names what does not fit") {
    auto message = [](const UNetConfig& c) {
        std::string from_validate = tdtest::error_of([&] { c.validate(); });
        CHECK(tdtest::error_of([&] { UNet m(c); }) == from_validate);
        return from_validate;
    };
    UNetConfig ok;
    ok.cond_mode = CondMode::Add;  // cond none: the mode is unused, any valid one is fine
    CHECK(message(ok).empty());

    // the words of the model file and the CLI, both ways
    tdtest::check_message(tdtest::error_of([] { parse_conditioning("label"); }), {"(none, class, text)", "'label'"});
    tdtest::check_message(tdtest::error_of([] { parse_cond_mode("hybrid"); }),
                          {"(add, concat, crossattn)", "'hybrid'"});
    for (Conditioning k : {Conditioning::None, Conditioning::Class, Conditioning::Text})
        CHECK(parse_conditioning(conditioning_name(k)) == k);
    for (CondMode k : {CondMode::Add, CondMode::Concat, CondMode::CrossAttn})
        CHECK(parse_cond_mode(cond_mode_name(k)) == k);
    UNetConfig c;
    c.cond = Conditioning::Class;
    tdtest::check_message(message(c), {"cond class needs num_classes >= 1", "got 0"});
    c.num_classes = 10;
    CHECK(message(c).empty());
    c.cond_mode = CondMode::Add;
    c.context_dim = 32;
    tdtest::check_message(message(c), {"context_dim (32)", "cond_mode add has none"});
    c.context_dim = 0;
    c.cond_mode = CondMode::Concat;
    c.concat_channels = 0;
    tdtest::check_message(message(c), {"concat_channels >= 1"});

    c = UNetConfig{};
    c.cond = Conditioning::Text;
    CHECK(message(c).empty());
    c.text_heads = 3;
    tdtest::check_message(message(c), {"text_dim > 0 divisible by text_heads", "text_dim 64, text_heads 3"});
    c.text_heads = 4;
    c.context_dim = 32;
    tdtest::check_message(message(c), {"context_dim 32 must equal text_dim 64"});
    c.context_dim = 64;
    CHECK(message(c).empty());
    c.max_tokens = 5;
    tdtest::check_message(message(c), {"max_tokens 5", "built-in captions", "needs"});
    c.max_tokens = 16;
    c.text_layers = 0;
    tdtest::check_message(message(c), {"text_layers >= 1"});

    UNetConfig d;
    d.cond = Conditioning::Text;
    d.cond_mode = CondMode::Concat;
    CHECK(tdtest::contains(d.describe(), "cond text (concat, 4 channels; text encoder 64 wide, 2 layers"));
    CHECK(UNetConfig{}.describe().find("cond") == std::string::npos);  // unconditional: as before
}

TEST_CASE("cond: metadata round trip, and files without the cond keys load as cond none") {
    diffusion::ModelInfo info;
    info.unet = tiny("text", "concat");
    info.unet.concat_channels = 3;
    info.unet.text_dim = 12;
    info.unet.text_heads = 3;
    info.data = "fashion";
    diffusion::Metadata meta = diffusion::to_metadata(info);
    CHECK(meta.at("unet.cond") == "text");
    diffusion::ModelInfo back = diffusion::model_info_from_metadata(meta, "x.safetensors");
    const UNetConfig &a = info.unet, &b = back.unet;
    CHECK(b.cond == a.cond);
    CHECK(b.cond_mode == a.cond_mode);
    CHECK(b.concat_channels == 3);
    CHECK(b.text_dim == 12);
    CHECK(b.text_layers == a.text_layers);
    CHECK(b.text_heads == 3);
    CHECK(b.max_tokens == a.max_tokens);
    CHECK(back.data == "fashion");
    CHECK(b.describe() == a.describe());

    diffusion::ModelInfo ci;
    ci.unet.cond = Conditioning::Class;
    ci.unet.num_classes = 10;
    ci.unet.cond_mode = CondMode::Add;
    diffusion::ModelInfo cb = diffusion::model_info_from_metadata(diffusion::to_metadata(ci), "c.safetensors");
    CHECK(cb.unet.cond == Conditioning::Class);
    CHECK(cb.unet.num_classes == 10);
    CHECK(cb.unet.cond_mode == CondMode::Add);

    // An unconditional model writes no cond keys, and a file from before them (the same
    // keys) reads as cond none.
    diffusion::Metadata old = diffusion::to_metadata(diffusion::ModelInfo{});
    for (auto& [k, _] : old) CHECK(k.rfind("unet.cond", 0) != 0);
    CHECK(old.count("unet.text_dim") == 0);
    diffusion::ModelInfo ob = diffusion::model_info_from_metadata(old, "old.safetensors");
    CHECK(ob.unet.cond == Conditioning::None);
    CHECK(ob.data.empty());

    // A bad value is named with its file.
    meta["unet.num_classes"] = "ten";
    meta["unet.cond"] = "class";
    tdtest::check_message(tdtest::error_of([&] { diffusion::model_info_from_metadata(meta, "bad.safetensors"); }),
                          {"bad.safetensors", "unet.num_classes", "'ten'"});
    meta["unet.num_classes"] = "0";
    tdtest::check_message(tdtest::error_of([&] { diffusion::model_info_from_metadata(meta, "bad.safetensors"); }),
                          {"bad.safetensors", "num_classes >= 1"});

    // A conditional model survives save + load_model with its conditioner's weights.
    diffusion::ModelInfo li;
    li.unet = tiny("class", "crossattn");
    UNet net(li.unet);
    randomize(net, 8);
    std::string path = tdtest::scratch("cond_model.safetensors");
    nn::save_module(path, net, diffusion::to_metadata(li));
    diffusion::LoadedModel lm = diffusion::load_model(path);
    CHECK(lm.info.unet.cond == Conditioning::Class);
    Generator gen(3);
    Tensor x = randn({2, 1, 8, 8}, gen);
    Tensor t = Tensor::from_vector_i64({5, 6}, {2});
    Tensor y = Tensor::from_vector_i64({1, 3}, {2});
    net.eval();
    NoGradGuard no_grad;
    CHECK_CLOSE(lm.unet->forward(x, t, lm.unet->condition(y)), net.forward(x, t, net.condition(y)), 0.0f, 0.0f);
}
