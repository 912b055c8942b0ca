// tests/test_vae.cpp: the KL autoencoder (diffusion/vae.h) and `diffuse train vae`.
// The network against its PyTorch twin (tests/make_fixtures_vae.py) the llm.c way: the
// same random weights on both sides, the posterior, the reconstruction, the loss and the
// gradient of every parameter compared; then the equations on their own (the KL's closed
// form against a Monte-Carlo estimate, the reparameterisation's gradient, finite
// differences of the loss), the config's file round trip and validation, a few training
// steps, and the command end to end on a synthetic data set.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <sys/wait.h>

#include "diffusion/vae.h"
#include "diffusion/vae_trainer.h"
#include "nn/safetensors.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

using namespace td;
using diffusion::VAE;
using diffusion::VAEConfig;

namespace {

const std::string kDir = "tests/fixtures_vae/";

// The reference is float64 rounded to float32; ours runs in float32 through ~20 layers.
// Measured: every compared tensor is within 1e-5 + 1e-5 |expected| (the worst, a
// gradient element of ~0.3, off by 9e-6), a tenth of the tolerance below. A real mistake
// is far above it: sigma = exp(logvar) instead of exp(logvar / 2) moves x_hat by 0.02
// ("tiny") and 1.2 ("three"); a mean instead of a sum moves the loss by the pixel count.
constexpr float kAtol = 1e-4f, kRtol = 1e-4f;

std::vector<int64_t> int_list(const std::string& s) {  // "1,2,2" -> {1, 2, 2}
    std::vector<int64_t> v;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');)
        if (!item.empty()) v.push_back(std::stoll(item));
    return v;
}

struct Fixture {
    VAEConfig config;
    int64_t torch_num_parameters;
    float beta;
    std::map<std::string, Tensor> ref;
};

Fixture load_fixture(const std::string& name) {
    std::map<std::string, std::string> m;
    nn::load_safetensors(kDir + name + "/weights.safetensors", &m);
    VAEConfig c;
    c.in_channels = std::stoll(m.at("in_channels"));
    c.image_size = std::stoll(m.at("image_size"));
    c.ch = std::stoll(m.at("ch"));
    c.mults = int_list(m.at("mults"));
    c.num_res_blocks = std::stoll(m.at("num_res_blocks"));
    c.z_channels = std::stoll(m.at("z_channels"));
    c.groups = std::stoll(m.at("groups"));
    c.mid_attn = m.at("mid_attn") == "1";
    return {c, std::stoll(m.at("num_parameters")), std::stof(m.at("beta")),
            nn::load_safetensors(kDir + name + "/reference.safetensors")};
}

// A small VAE for the tests that need one: 8x8 images, f = 2, 2 latent channels.
VAEConfig tiny_config() {
    VAEConfig c;
    c.image_size = 8;
    c.ch = 8;
    c.mults = {1, 2};
    c.z_channels = 2;
    c.groups = 4;
    return c;
}

}  // namespace

TEST_CASE("vae matches PyTorch: posterior, reconstruction, loss and every gradient (fixtures_vae)") {
    for (const std::string name : {"tiny", "three"}) {
        CAPTURE(name);
        Fixture f = load_fixture(name);
        INFO("config: " << f.config.describe());
        VAE model(f.config);
        nn::load_module(kDir + name + "/weights.safetensors", model);  // strict: the names match both ways
        CHECK(model.num_parameters() == f.torch_num_parameters);

        Tensor x = f.ref.at("x").clone().requires_grad_();
        VAE::Posterior q = model.encode(x);
        CHECK_CLOSE(q.mu, f.ref.at("mu"), kAtol, kRtol);
        CHECK_CLOSE(q.logvar, f.ref.at("logvar"), kAtol, kRtol);
        Tensor z = VAE::reparameterise(q.mu, q.logvar, f.ref.at("eps"));
        Tensor x_hat = model.decode(z);
        CHECK_CLOSE(x_hat, f.ref.at("x_hat"), kAtol, kRtol);
        diffusion::VaeLoss loss = diffusion::vae_loss(x, x_hat, q, f.beta, diffusion::Recon::L1);
        CHECK_CLOSE(loss.total, f.ref.at("loss.total"), kAtol, kRtol);
        CHECK_CLOSE(loss.recon, f.ref.at("loss.recon"), kAtol, kRtol);
        CHECK_CLOSE(loss.kl, f.ref.at("loss.kl"), kAtol, kRtol);
        CHECK_CLOSE(diffusion::vae_loss(x, x_hat, q, f.beta, diffusion::Recon::L2).recon, f.ref.at("loss_l2.recon"),
                    kAtol, kRtol);

        loss.total.backward();
        CHECK_CLOSE(x.grad(), f.ref.at("grad.x"), kAtol, kRtol);
        nn::NamedTensors params = model.named_parameters();
        CHECK(params.size() + 10 == f.ref.size());  // every gradient of the reference is checked
        for (const auto& [pname, p] : params) {
            INFO("parameter " << pname);
            REQUIRE(f.ref.count("grad." + pname));
            CHECK_CLOSE(p.grad(), f.ref.at("grad." + pname), kAtol, kRtol);
        }
    }
}

TEST_CASE("vae: CompVis' parameter names, and latents f times smaller (28 -> 7, 32 -> 8)") {
    VAE model{VAEConfig{}};  // ch 32, mults 1,2,2, 1 res block, 4 latent channels
    std::map<std::string, Tensor> sd = model.state_dict();
    for (const char* name : {"encoder.conv_in.weight",
                             "encoder.down.0.block.0.conv1.weight",
                             "encoder.down.0.downsample.conv.weight",
                             "encoder.down.1.block.0.nin_shortcut.weight",
                             "encoder.down.2.block.0.conv2.bias",
                             "encoder.mid.block_1.norm1.weight",
                             "encoder.mid.attn_1.attn.to_q.weight",
                             "encoder.mid.block_2.conv2.weight",
                             "encoder.norm_out.weight",
                             "encoder.conv_out.weight",
                             "quant_conv.weight",
                             "post_quant_conv.bias",
                             "decoder.conv_in.weight",
                             "decoder.mid.attn_1.norm.bias",
                             "decoder.up.2.block.1.conv1.weight",
                             "decoder.up.2.upsample.conv.weight",
                             "decoder.up.1.upsample.conv.weight",
                             "decoder.up.0.block.0.nin_shortcut.weight",
                             "decoder.up.0.block.1.conv2.weight",
                             "decoder.norm_out.bias",
                             "decoder.conv_out.weight"}) {
        INFO(name);
        CHECK(sd.count(name));
    }
    CHECK(!sd.count("encoder.down.2.downsample.conv.weight"));              // the last level does not downsample
    CHECK(!sd.count("decoder.up.0.upsample.conv.weight"));                  // nor does the first level upsample
    CHECK(!sd.count("encoder.mid.block_1.temb_proj.weight"));               // no time step in an autoencoder
    CHECK(sd.at("encoder.conv_out.weight").shape() == Shape{8, 64, 3, 3});  // 2 z moments
    CHECK(sd.at("quant_conv.weight").shape() == Shape{8, 8, 1, 1});
    CHECK(sd.at("post_quant_conv.weight").shape() == Shape{4, 4, 1, 1});

    NoGradGuard no_grad;
    Generator gen(1);
    CHECK(model.config().factor() == 4);
    VAE::Posterior q = model.encode(randn({2, 1, 28, 28}, gen));
    CHECK(q.mu.shape() == Shape{2, 4, 7, 7});
    CHECK(q.logvar.shape() == Shape{2, 4, 7, 7});
    CHECK(model.decode(q.mu).shape() == Shape{2, 1, 28, 28});

    VAEConfig rgb;  // CIFAR-10's 32x32x3: 8x8 latents
    rgb.in_channels = 3;
    rgb.image_size = 32;
    rgb.ch = 8;
    rgb.groups = 4;
    rgb.mid_attn = false;
    VAE m32(rgb);
    CHECK(rgb.latent_size() == 8);
    VAE::Posterior q32 = m32.encode(randn({1, 3, 32, 32}, gen));
    CHECK(q32.mu.shape() == Shape{1, 4, 8, 8});
    CHECK(m32.decode(q32.mu).shape() == Shape{1, 3, 32, 32});
    CHECK(!m32.state_dict().count("encoder.mid.attn_1.norm.weight"));

    // wrong sizes are caught with the model's expectation in the message
    tdtest::check_message(tdtest::error_of([&] {
                              model.encode(randn({2, 1, 32, 32}, gen));
                          }),
                          {"VAE::encode", "[2, 1, 32, 32]", "28x28"});
    tdtest::check_message(tdtest::error_of([&] {
                              model.decode(randn({2, 3, 7, 7}, gen));
                          }),
                          {"VAE::decode", "[2, 3, 7, 7]", "4 channels, 7x7"});
}

// BEGIN HIDE vae-loss
TEST_CASE("vae: the KL in closed form matches a Monte-Carlo estimate") {
    // KL(q || p) = E_{z ~ q}[log q(z) - log p(z)]. With z = mu + sigma eps, the log
    // densities of N(mu, sigma^2) and N(0, 1) differ by 0.5 (z^2 - eps^2 - logvar) per
    // element (the log(2 pi) terms cancel). One "image" of 6 latent elements, N samples.
    std::vector<float> mu_v = {0.0f, 1.5f, -0.7f, 2.0f, 0.3f, -1.2f};
    std::vector<float> lv_v = {0.0f, -1.0f, 1.2f, -3.0f, 0.5f, 2.0f};
    Tensor mu = Tensor::from_vector(mu_v, {1, 6}), logvar = Tensor::from_vector(lv_v, {1, 6});
    double closed = diffusion::kl_to_standard_normal(mu, logvar).item();
    double by_hand = 0;
    for (size_t i = 0; i < mu_v.size(); ++i) by_hand += 0.5 * (mu_v[i] * mu_v[i] + std::exp(lv_v[i]) - 1.0 - lv_v[i]);
    CHECK(closed == doctest::Approx(by_hand).epsilon(1e-6));

    const int64_t N = 200000;
    Generator gen(42);
    Tensor eps = randn({N, 6}, gen);
    Tensor z = VAE::reparameterise(mu.expand({N, 6}).contiguous(), logvar.expand({N, 6}).contiguous(), eps);
    std::vector<float> zv = z.to_vector(), ev = eps.to_vector();
    double s = 0, s2 = 0;
    for (int64_t n = 0; n < N; ++n) {
        double v = 0;  // log q(z_n) - log p(z_n), summed over the 6 elements
        for (int64_t i = 0; i < 6; ++i) {
            double zi = zv[n * 6 + i], ei = ev[n * 6 + i];
            v += 0.5 * (zi * zi - ei * ei - lv_v[i]);
        }
        s += v;
        s2 += v * v;
    }
    double mc = s / N, se = std::sqrt((s2 / N - mc * mc) / N);  // the estimate and its standard error
    INFO("closed form " << closed << ", Monte Carlo " << mc << " +- " << se);
    // Tolerance: 4 standard errors of the Monte-Carlo mean (a correct KL fails this with
    // probability ~6e-5 for a random seed; the seed is fixed). se is ~0.014 here, while a
    // KL with sigma instead of sigma^2, or without the -1, is off by 3.
    CHECK(std::fabs(mc - closed) < 4 * se);
    CHECK(se < 0.05);

    // The reduction: summed over each image's elements, averaged over the batch.
    Tensor mu2 = cat({mu, mu * 0.0f}, 0), lv2 = cat({logvar, logvar * 0.0f}, 0);  // the second image has KL 0
    CHECK(diffusion::kl_to_standard_normal(mu2, lv2).item() == doctest::Approx(closed / 2).epsilon(1e-6));
    CHECK(diffusion::kl_to_standard_normal(zeros({3, 4, 2, 2}), zeros({3, 4, 2, 2})).item() == 0.0f);
}
// END HIDE vae-loss

// BEGIN HIDE vae-loss
TEST_CASE("vae: the reparameterisation's gradient, and finite differences of the loss") {
    Generator gen(7);
    Tensor mu = randn({2, 3, 2, 2}, gen).requires_grad_(), logvar = randn({2, 3, 2, 2}, gen).requires_grad_();
    Tensor eps = randn({2, 3, 2, 2}, gen);
    Tensor z = VAE::reparameterise(mu, logvar, eps);
    CHECK_CLOSE(z, mu.detach() + exp(logvar.detach() * 0.5f) * eps, 1e-6f, 1e-6f);  // z = mu + sigma eps
    sum(z).backward();
    CHECK_CLOSE(mu.grad(), ones({2, 3, 2, 2}), 0.0f, 0.0f);                              // dz/dmu = 1
    CHECK_CLOSE(logvar.grad(), exp(logvar.detach() * 0.5f) * eps * 0.5f, 1e-6f, 1e-5f);  // dz/dlogvar = sigma eps / 2

    // Finite differences of the whole loss with respect to mu, logvar and x_hat, for both
    // reconstruction terms (x_hat kept >= 0.2 away from x: |.| has a kink at 0).
    Tensor x = randn({2, 1, 4, 4}, gen);
    Tensor offset =
        rand({2, 1, 4, 4}, gen, 0.2f, 1.0f) * (gt(randn({2, 1, 4, 4}, gen), zeros({2, 1, 4, 4})) * 2.0f - 1.0f);
    for (diffusion::Recon recon : {diffusion::Recon::L1, diffusion::Recon::L2}) {
        CAPTURE(diffusion::recon_name(recon));
        auto f = [&](const std::vector<Tensor>& in) {
            return diffusion::vae_loss(x, in[2], VAE::Posterior{in[0], in[1]}, 0.3f, recon).total;
        };
        Tensor m = randn({2, 3, 2, 2}, gen).requires_grad_(), lv = randn({2, 3, 2, 2}, gen).requires_grad_();
        Tensor xh = (x + offset).requires_grad_();
        GradcheckResult r = gradcheck(f, {m, lv, xh});
        INFO(r.message);
        CHECK(r.ok);
    }
    tdtest::check_message(tdtest::error_of([&] { diffusion::parse_recon("l3"); }), {"recon", "(l1, l2)", "'l3'"});
    tdtest::check_message(tdtest::error_of([&] {
                              VAE::reparameterise(mu, logvar, zeros({2, 3}));
                          }),
                          {"reparameterise", "[2, 3, 2, 2]", "[2, 3]"});
}
// END HIDE vae-loss

TEST_CASE("vae: from_moments splits mu / logvar and clamps logvar to [-30, 20]") {
    // moments (1, 4, 1, 1): mu = (1, 2), logvar = (50, -40) -> clamped to (20, -30)
    Tensor moments = Tensor::from_vector({1.0f, 2.0f, 50.0f, -40.0f}, {1, 4, 1, 1}).requires_grad_();
    VAE::Posterior q = VAE::from_moments(moments);
    CHECK(q.mu.to_vector() == std::vector<float>{1.0f, 2.0f});
    CHECK(q.logvar.to_vector() == std::vector<float>{20.0f, -30.0f});
    sum(q.logvar).backward();
    CHECK(moments.grad().to_vector() == std::vector<float>{0.0f, 0.0f, 0.0f, 0.0f});  // clamped: no gradient
    // the KL stays finite at the edges (exp(20) ~ 4.9e8 fits float32)
    CHECK(std::isfinite(diffusion::kl_to_standard_normal(q.mu, q.logvar).item()));
    tdtest::check_message(tdtest::error_of([] {
                              VAE::from_moments(zeros({1, 3, 2, 2}));
                          }),
                          {"from_moments", "(B, 2 z, h, w)", "[1, 3, 2, 2]"});
}

TEST_CASE("vae config: metadata round trip, load_vae, and errors naming the file") {
    VAEConfig c;
    c.in_channels = 3;
    c.image_size = 32;
    c.ch = 16;
    c.mults = {1, 2, 2, 2};
    c.num_res_blocks = 2;
    c.z_channels = 3;
    c.groups = 4;
    c.mid_attn = false;
    c.seed = 7;
    diffusion::Metadata m = diffusion::to_metadata(c);
    CHECK(m.at("model") == "vae");
    CHECK(m.at("vae.mults") == "1,2,2,2");
    VAEConfig back = diffusion::vae_config_from_metadata(m, "x.safetensors");
    CHECK(diffusion::to_metadata(back) == m);
    CHECK(back.describe() == c.describe());
    CHECK(back.factor() == 8);
    CHECK(back.latent_size() == 4);

    auto err = [](diffusion::Metadata meta) {
        return tdtest::error_of([&] { diffusion::vae_config_from_metadata(meta, "runs/v/model.safetensors"); });
    };
    diffusion::Metadata missing = m;
    missing.erase("vae.z_channels");
    tdtest::check_message(err(missing), {"runs/v/model.safetensors", "'vae.z_channels'"});
    diffusion::Metadata bad = m;
    bad["vae.ch"] = "16x";
    tdtest::check_message(err(bad), {"runs/v/model.safetensors", "'vae.ch'", "not an integer"});
    bad = m;
    bad["vae.mults"] = "1,two";
    tdtest::check_message(err(bad), {"'vae.mults'", "comma-separated"});
    bad = m;
    bad["model"] = "ddpm-unet";
    tdtest::check_message(err(bad), {"runs/v/model.safetensors", "'ddpm-unet'", "not a VAE"});
    bad = m;
    bad["vae.groups"] = "5";
    tdtest::check_message(err(bad), {"runs/v/model.safetensors", "GroupNorm groups 5"});

    // load_vae: the file of a trained model gives back the same function
    VAEConfig tc = tiny_config();
    VAE model(tc);
    std::string path = tdtest::scratch("vae_model.safetensors");
    diffusion::Metadata meta = diffusion::to_metadata(tc);
    meta["data"] = "bars";
    nn::save_module(path, model, meta);
    diffusion::LoadedVAE loaded = diffusion::load_vae(path);
    CHECK(loaded.data == "bars");
    CHECK(diffusion::to_metadata(loaded.config) == diffusion::to_metadata(tc));
    CHECK(!loaded.vae->is_training());
    Generator gen(3);
    Tensor x = randn({2, 1, 8, 8}, gen);
    NoGradGuard no_grad;
    CHECK_CLOSE(loaded.vae->encode(x).mu, model.encode(x).mu, 0.0f, 0.0f);

    // weights that do not fit the config the metadata states
    diffusion::Metadata wrong = meta;
    wrong["vae.ch"] = "4";
    std::string wrong_path = tdtest::scratch("vae_wrong.safetensors");
    nn::save_module(wrong_path, model, wrong);
    tdtest::check_message(tdtest::error_of([&] { diffusion::load_vae(wrong_path); }),
                          {"vae_wrong.safetensors", "do not fit the VAE"});
    tdtest::check_message(tdtest::error_of([] { diffusion::load_vae("/nonexistent/model.safetensors"); }),
                          {"/nonexistent/model.safetensors"});
}

TEST_CASE("vae config: validation errors name the field") {
    auto message = [](const VAEConfig& c) {
        std::string from_validate = tdtest::error_of([&] { c.validate(); });
        CHECK(tdtest::error_of([&] { VAE m(c); }) == from_validate);  // the constructor validates too
        return from_validate;
    };
    CHECK(message(VAEConfig{}).empty());

    VAEConfig groups;  // widths 20, 40, 60: 8 groups divide none of them
    groups.ch = 20;
    groups.mults = {1, 2, 3};
    tdtest::check_message(message(groups), {"GroupNorm groups 8", "level 0's width 20"});

    VAEConfig f8;  // 28 -> 14 -> 7 -> 3.5
    f8.mults = {1, 2, 2, 2};
    tdtest::check_message(message(f8), {"image size 28", "not divisible by f = 8"});

    VAEConfig z;
    z.z_channels = 0;
    tdtest::check_message(message(z), {"z_channels must be > 0", "0"});

    VAEConfig none;
    none.mults = {};
    tdtest::check_message(message(none), {"mults needs 1 to 6 levels"});

    VAEConfig zero_mult;
    zero_mult.mults = {1, 0};
    tdtest::check_message(message(zero_mult), {"mults must be > 0", "1,0"});

    VAEConfig blocks;
    blocks.num_res_blocks = 0;
    tdtest::check_message(message(blocks), {"num_res_blocks must be > 0"});
}

TEST_CASE("vae trainer: Adam steps on bars lower the loss; PSNR and reconstruct") {
    diffusion::Dataset bars = tdtest::bars_dataset(64, 8);
    diffusion::VaeTrainOptions o;
    o.batch_size = 16;
    o.lr = 3e-3f;
    o.warmup = 5;
    o.total_steps = 60;
    diffusion::VaeTrainer trainer(tiny_config(), o, bars);
    std::vector<float> recon;
    for (int i = 0; i < 60; ++i) recon.push_back(trainer.step().recon);
    CHECK(trainer.steps_done() == 60);
    float first = (recon[0] + recon[1] + recon[2]) / 3, last = (recon[57] + recon[58] + recon[59]) / 3;
    INFO("recon (L1 per image) from " << first << " to " << last);
    CHECK(last < 0.5f * first);

    Tensor x_hat = diffusion::reconstruct(trainer.model(), bars.images, 20);  // batches of 20: 20, 20, 20, 4
    CHECK(x_hat.shape() == bars.images.shape());
    CHECK(trainer.model().is_training());  // reconstruct leaves the mode as it found it
    double psnr = diffusion::mean_psnr(bars.images, x_hat);
    CHECK(psnr > 10.0);

    // PSNR by hand: pixels in [0, 1]; an error of 0.1 everywhere is 20 dB, 0.01 is 40 dB,
    // and the dB are averaged over images (not computed from the pooled MSE).
    Tensor a = zeros({2, 1, 2, 2});
    Tensor b = cat({full({1, 1, 2, 2}, 0.2f), full({1, 1, 2, 2}, 0.02f)}, 0);  // [-1, 1] units: 0.1 and 0.01 in [0, 1]
    CHECK(diffusion::mean_psnr(a, b) == doctest::Approx(30.0).epsilon(1e-4));
    CHECK(diffusion::mean_psnr(a, a) == doctest::Approx(100.0));                             // MSE floored at 1e-10
    CHECK(diffusion::mean_psnr(full({1, 1, 2, 2}, 1.0f), full({1, 1, 2, 2}, 3.0f)) > 99.0);  // x_hat clamped to [-1, 1]

    std::string wrong = tdtest::error_of([&] {
        diffusion::VaeTrainer t(VAEConfig{}, o, bars);  // 28x28 expected, the bars are 8x8
    });
    tdtest::check_message(wrong, {"train vae", "bars", "[64, 1, 8, 8]", "1 x 28 x 28"});
}

// ---- the CLI ------------------------------------------------------------------------------

TEST_CASE("diffuse train vae on a synthetic data set: the run folder, the PSNR, bad flags") {
    using tdtest::run_diffuse;
    namespace fs = std::filesystem;
    std::string data = tdtest::scratch("bars16_vae"), dir = tdtest::scratch("run_vae");
    fs::create_directories(data);
    for (const char* suffix : {"", "2", "3"}) fs::remove_all(dir + suffix);
    tdtest::write_bars(data, "train", 64, 16);
    tdtest::write_bars(data, "test", 16, 16);
    std::string model = " --ch 8 --mults 1,2,2 --groups 4 --z-channels 2 --batch 16 --threads 1";
    tdtest::CliRun t = run_diffuse("train vae --data " + data + " --out " + dir + model + " --steps 6");
    INFO(t.output);
    REQUIRE(t.code == 0);
    CHECK(tdtest::contains(t.output, "it/s"));
    CHECK(tdtest::contains(t.output, "(f = 4, 16x16 -> 4x4)"));
    CHECK(tdtest::contains(t.output, "held-out PSNR"));
    for (const char* f : {"config.txt", "metrics.csv", "model.safetensors", "reconstructions.png",
                          "samples-from-prior.png", "loss.png", "index.html"})
        CHECK(fs::exists(dir + "/" + f));
    CHECK(!fs::is_empty(dir + "/progress"));

    // metrics.csv: a header and one row per step
    std::ifstream csv(dir + "/metrics.csv");
    std::string line;
    std::getline(csv, line);
    CHECK(line == "step,loss,recon,kl,lr,seconds,wall_clock");
    int rows = 0;
    while (std::getline(csv, line)) ++rows;
    CHECK(rows == 6);

    // the model file: the config, the data set and the PSNR in its metadata
    diffusion::LoadedVAE v = diffusion::load_vae(dir + "/model.safetensors");
    CHECK(v.config.latent_size() == 4);
    CHECK(v.config.z_channels == 2);
    CHECK(v.data == "bars16_vae");
    CHECK(v.meta.count("held_out_psnr"));
    std::ifstream html(dir + "/index.html");
    std::string page((std::istreambuf_iterator<char>(html)), {});
    CHECK(tdtest::contains(page, "PSNR"));
    CHECK(tdtest::contains(page, "reconstructions.png"));

    // config.txt is a valid --config (flags still win)
    tdtest::CliRun c =
        run_diffuse("train vae --config " + dir + "/config.txt --out " + dir + "2 --steps 2 --threads 1");
    INFO(c.output);
    CHECK(c.code == 0);
    CHECK(tdtest::contains(c.output, "budget 2 steps"));
    CHECK(tdtest::contains(c.output, "2 latent channels"));

    // a finished run is not overwritten by accident; --overwrite starts afresh
    tdtest::CliRun again = run_diffuse("train vae --data " + data + " --out " + dir + model + " --steps 2");
    CHECK(again.code == 2);
    CHECK(tdtest::contains(again.output, "already holds a run"));
    CHECK(fs::exists(dir + "/model.safetensors"));
    tdtest::CliRun over =
        run_diffuse("train vae --data " + data + " --out " + dir + "2" + model + " --steps 3 --overwrite");
    CHECK(over.code == 0);

    // Ctrl-C stops the run cleanly: the weights are saved, the exit code is 130 (128 + SIGINT)
    std::string exe = (fs::read_symlink("/proc/self/exe").parent_path() / "diffuse").string();
    std::string log = tdtest::scratch("vae_sigint.txt");
    // SIGINT once training runs (its progress line is out), not at a fixed time: under
    // the sanitizers on a busy machine the start alone can take seconds.
    fs::remove(log);
    int status = std::system(("(" + exe + " train vae --data " + data + " --out " + dir + "3" + model +
                              " --steps 1000000 > " + log + " 2>&1 & p=$!; for i in $(seq 1200); do grep -q 'it/s' " +
                              log + " 2>/dev/null && break; sleep 0.1; done; kill -INT $p; wait $p; exit $?)")
                                 .c_str());
    std::ifstream sig_log(log);
    std::string sig_out((std::istreambuf_iterator<char>(sig_log)), {});
    INFO(sig_out);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 130);
    CHECK(tdtest::contains(sig_out, "interrupted at step"));
    CHECK(diffusion::load_vae(dir + "3/model.safetensors").config.z_channels == 2);
    fs::remove_all(dir + "3");

    // usage errors: exit 2 with a message; a bad data set: exit 1 naming it
    struct Bad {
        std::string flags, message;
    };
    std::string base = "train vae --data " + data + " --out " + dir + "3 --threads 1";
    for (const Bad& b : {Bad{" --steps 2" + model + " --recon l3", "--recon: unknown recon 'l3' (l1, l2)"},
                         Bad{" --steps 2 --mults 1,x", "--mults expects positive integers"},
                         Bad{" --steps 2 --ch 8 --groups 3", "GroupNorm groups 3"},
                         Bad{" --steps 2 --ch 8 --groups 4 --mults 1,1,1,1,1,1", "not divisible by f = 32"},
                         Bad{" --steps 2 --mid-attn 2", "--mid-attn must be 0 or 1"}, Bad{model, "give a budget"},
                         Bad{" --steps 2 --batch 100 --ch 8 --groups 4", "larger than the data set"},
                         Bad{" --steps 2 --no-such-flag", "--no-such-flag"}}) {
        tdtest::CliRun r = run_diffuse(base + b.flags);
        INFO(b.flags << ": " << r.output);
        CHECK(r.code == 2);
        CHECK(tdtest::contains(r.output, b.message));
    }
    tdtest::CliRun no_out = run_diffuse("train vae --data " + data + " --steps 2");
    CHECK(no_out.code == 2);
    CHECK(tdtest::contains(no_out.output, "--out is required"));
    tdtest::CliRun no_data = run_diffuse("train vae --data /nonexistent/dir --out " + dir + "3 --steps 2");
    CHECK(no_data.code == 1);
    CHECK(tdtest::contains(no_data.output, "/nonexistent/dir"));
    CHECK(run_diffuse("train vae --help").code == 0);
    CHECK(!fs::exists(dir + "3/config.txt"));  // a refused run leaves nothing behind
    fs::remove_all(dir);
    fs::remove_all(dir + "2");
}
