// tests/test_ddpm.cpp: DDPM end to end: the sampling loops (an oracle that knows the true
// noise must give back x_0), IDDPM respacing, a short training run whose loss falls,
// checkpoint + resume bit for bit, and the CLI (train ddpm, sample) on a synthetic set.
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <sys/wait.h>

#include "diffusion/data/image_io.h"
#include "diffusion/sampler.h"
#include "diffusion/trainer.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

using namespace td;
using namespace td::diffusion;

namespace {

// The denoiser every model wishes it were: it knows x_0 and answers with the exact eps
// of eq. 4 solved for eps, eps = (x_t - sqrt(alpha_bar_t) x_0) / sqrt(1 - alpha_bar_t).
Denoiser oracle(const Schedule& s, const Tensor& x0) {
    return [&s, x0](const Tensor& x_t, const Tensor& t) { return predict_eps_from_x0(s, x_t, t, x0); };
}

Dataset bars(int n, int size) { return tdtest::bars_dataset(n, size); }
ModelInfo tiny_model() { return tdtest::tiny_ddpm(100); }

}  // namespace

TEST_CASE("DDIM (eta 0) with the true noise recovers x_0 from any x_T") {
    Schedule s = Schedule::named("linear", 1000);
    Generator g(3);
    Tensor x0 = rand({2, 1, 6, 6}, g, -1.0f, 1.0f), x_T = randn({2, 1, 6, 6}, g);
    for (int64_t steps : {1, 10, 50, 1000}) {
        SamplerOptions o;
        o.steps = steps;
        Tensor x = sample(s, oracle(s, x0), x_T, o, g);
        INFO("steps = " << steps);
        CHECK_CLOSE(x, x0, 2e-3, 1e-3);
    }
}

TEST_CASE("ancestral sampling (full and respaced) with the true noise recovers x_0") {
    Schedule s = Schedule::named("linear", 1000);
    Generator g(4);
    Tensor x0 = rand({2, 1, 5, 5}, g, -0.9f, 0.9f), x_T = randn({2, 1, 5, 5}, g);
    for (int64_t steps : {1000, 100, 20}) {
        for (bool clip : {true, false}) {
            SamplerOptions o;
            o.sampler = Sampler::Ddpm;
            o.steps = steps;
            o.clip_x0 = clip;
            // Each step's mean is the posterior mean given the true x_0; the last step (sigma = 0)
            // lands on mu_tilde_1(x_1, x_0), which is x_0 up to the tiny x_t term of eq. 7.
            Tensor x = sample(s, oracle(s, x0), x_T, o, g);
            INFO("steps = " << steps << ", clip = " << clip);
            CHECK_CLOSE(x, x0, 2e-2, 1e-2);
        }
    }
}

TEST_CASE("sampling steps: descending, the requested count, and respaced betas keep alpha_bar") {
    SamplerOptions o;
    o.steps = 50;
    std::vector<int64_t> ts = sampling_timesteps(o, 1000);  // ddim, trailing
    REQUIRE(ts.size() == 50);
    CHECK(ts.front() == 999);
    CHECK(ts.back() == 19);
    for (size_t i = 1; i < ts.size(); ++i) CHECK(ts[i] < ts[i - 1]);

    Schedule s = Schedule::named("cosine", 1000);
    std::vector<int64_t> asc(ts.rbegin(), ts.rend());
    Schedule r(respaced_betas(s, asc));
    REQUIRE(r.T == 50);
    for (size_t i = 0; i < asc.size(); ++i)
        CHECK(r.alpha_bar[i] == doctest::Approx(s.alpha_bar[asc[i]]).epsilon(1e-12));

    o.steps = 0;
    CHECK(tdtest::contains(tdtest::error_of([&] { sampling_timesteps(o, 1000); }), "steps must be in [1, T = 1000]"));
    o.steps = 10;
    CHECK(tdtest::contains(tdtest::error_of([&] { parse_sampler("euler"); }), "unknown sampler 'euler' (ddpm, ddim)"));
    for (Sampler k : {Sampler::Ddpm, Sampler::Ddim}) CHECK(parse_sampler(sampler_name(k)) == k);
}

TEST_CASE("spacing: the first model call is at T - 1 (trailing, linspace), the steps are the rule's" *
          doctest::test_suite("long")) {
    for (int64_t T : {1000, 50}) {
        Schedule s = Schedule::named("linear", T);
        for (Sampler sampler : {Sampler::Ddim, Sampler::Ddpm})
            for (std::optional<Spacing> spacing :
                 {std::optional<Spacing>(), {Spacing::Trailing}, {Spacing::Linspace}, {Spacing::Leading}})
                for (int64_t S : {int64_t(1), int64_t(7), T / 2, T}) {
                    SamplerOptions o;
                    o.sampler = sampler, o.spacing = spacing, o.steps = S;
                    CAPTURE(T);
                    CAPTURE(sampler_name(o.sampler));
                    CAPTURE(spacing ? spacing_name(*spacing) : "auto");
                    CAPTURE(S);
                    if (o.sampler == Sampler::Ddpm && o.spacing == Spacing::Leading) {
                        CHECK(tdtest::contains(tdtest::error_of([&] { sampling_timesteps(o, T); }),
                                               "spacing 'leading' does not fit ddpm (ddpm takes linspace, trailing"));
                        continue;
                    }
                    std::vector<int64_t> calls;  // the t of every model call, in order
                    Denoiser record = [&](const Tensor& x, const Tensor& t) {
                        calls.push_back(t.to_vector_i64()[0]);
                        return zeros(x.shape());
                    };
                    Generator g(0);
                    sample(s, record, randn({1, 1, 2, 2}, g), o, g);
                    std::vector<int64_t> want = sampling_timesteps(o, T);
                    CHECK(calls == want);
                    Spacing sp = sampler_spacing(o);
                    std::vector<int64_t> rule = spaced_timesteps(sp, T, S);
                    CHECK(std::vector<int64_t>(rule.rbegin(), rule.rend()) == want);
                    if (sp != Spacing::Leading) CHECK(calls.front() == T - 1);
                    if (!o.spacing) CHECK(sp == (o.sampler == Sampler::Ddim ? Spacing::Trailing : Spacing::Linspace));
                }
    }
}

namespace {

// The best possible denoiser for data x_0 ~ N(mu, s^2 I), in closed form: with x_t =
// sqrt(alpha_bar) x_0 + sqrt(1 - alpha_bar) eps, E[x_0 | x_t] = mu + k (x_t - sqrt(alpha_bar) mu),
// k = sqrt(alpha_bar) s^2 / (alpha_bar s^2 + 1 - alpha_bar); its eps is eq. 4 solved for eps.
// Unlike the oracle it does not know the sample: like a trained network, it is right only
// about x_t that look like the forward process's at the t it is told.
Denoiser gaussian_ideal(const Schedule& sch, float mu, float s) {
    return [&sch, mu, s](const Tensor& x_t, const Tensor& t) {
        double ab = sch.alpha_bar[t.to_vector_i64()[0]];
        double k = std::sqrt(ab) * s * s / (ab * s * s + 1.0 - ab);
        Tensor x0 = (x_t - (float)(std::sqrt(ab) * mu)) * (float)k + mu;  // E[x_0 | x_t]
        return (x_t - x0 * (float)std::sqrt(ab)) * (float)(1.0 / std::sqrt(1.0 - ab));
    };
}

}  // namespace

TEST_CASE("spacing: one step from x_T draws from the data, not the noise (trailing, linspace)") {
    Schedule s = Schedule::named("linear", 1000);
    const float mu = 0.5f, sd = 0.1f;  // the data: N(0.5, 0.01 I)
    Generator g(5);
    Tensor x_T = randn({4, 1, 16, 16}, g);
    auto mean_std = [](const Tensor& x) { return std::pair<double, double>{mean(x).item(), std::sqrt(var(x).item())}; };
    for (Sampler sampler : {Sampler::Ddim, Sampler::Ddpm}) {
        for (int64_t S : {1, 2, 10}) {
            SamplerOptions o;
            o.sampler = sampler, o.steps = S;  // spacing auto: ddim trailing, ddpm linspace
            CAPTURE(sampler_name(o.sampler));
            CAPTURE(S);
            auto [m, sd_x] = mean_std(sample(s, gaussian_ideal(s, mu, sd), x_T, o, g));
            CHECK(m == doctest::Approx(mu).epsilon(0.05));
            CHECK(sd_x < 0.2);  // the data's spread is 0.1; the noise's is 1
        }
    }
    // leading with one step asks about t = 0 and gets x_T back: the flaw trailing fixes
    SamplerOptions o;
    o.spacing = Spacing::Leading, o.steps = 1, o.clip_x0 = false;  // (clipping would only cut the noise to [-1, 1])
    auto [m, sd_x] = mean_std(sample(s, gaussian_ideal(s, mu, sd), x_T, o, g));
    CHECK(sd_x > 0.9);
}

TEST_CASE("a short DDPM training run: the loss falls and samples come out image-shaped" * doctest::test_suite("long")) {
    Dataset d = bars(64, 8);
    TrainOptions to;
    to.batch_size = 16;
    to.lr = 3e-3f;
    to.warmup = 5;
    to.total_steps = 60;
    DdpmTrainer trainer(tiny_model(), to, d);
    double first = 0, last = 0;
    for (int i = 0; i < 60; ++i) {
        StepStats s = trainer.step();
        CHECK(std::isfinite(s.loss));
        if (i < 10) first += s.loss / 10;
        if (i >= 50) last += s.loss / 10;
    }
    INFO("mean loss of steps 1-10: " << first << ", of steps 51-60: " << last);
    CHECK(first > 0.5);  // a fresh UNet outputs 0 (zero-initialised conv_out): loss ~ E[eps^2] = 1
    CHECK(last < 0.6 * first);
    auto ema = trainer.ema_model();
    SamplerOptions o;
    o.steps = 10;
    Generator g(0);
    Tensor x = sample(
        trainer.schedule(), [&](const Tensor& xt, const Tensor& t) { return ema->forward(xt, t); },
        randn({4, 1, 8, 8}, g), o, g);
    CHECK(x.shape() == Shape{4, 1, 8, 8});
    for (float v : x.to_vector()) CHECK(std::isfinite(v));
}

TEST_CASE("checkpoint + resume gives the uninterrupted run's losses bit for bit") {
    Dataset d = bars(40, 8);  // 40 / 16: an epoch boundary falls inside the run
    TrainOptions to;
    to.batch_size = 16;
    to.total_steps = 8;
    std::vector<float> straight, resumed;
    {
        DdpmTrainer a(tiny_model(), to, d);
        for (int i = 0; i < 8; ++i) straight.push_back(a.step().loss);
    }
    std::string ckpt = tdtest::scratch("ddpm_resume.safetensors");
    {
        DdpmTrainer b(tiny_model(), to, d);
        for (int i = 0; i < 3; ++i) resumed.push_back(b.step().loss);
        b.save_checkpoint(ckpt);
    }
    TrainOptions other = to;
    other.seed = 99;  // everything random must come from the checkpoint, not from the seed
    DdpmTrainer c(tiny_model(), other, d);
    c.load_checkpoint(ckpt);
    CHECK(c.steps_done() == 3);
    for (int i = 3; i < 8; ++i) resumed.push_back(c.step().loss);
    REQUIRE(resumed.size() == straight.size());
    for (size_t i = 0; i < straight.size(); ++i) {
        INFO("step " << i + 1);
        CHECK(resumed[i] == straight[i]);  // exactly
    }

    // the EMA weights alone load for sampling; a checkpoint of another model is refused
    std::string ema_path = tdtest::scratch("ddpm_ema.safetensors");
    c.save_ema_model(ema_path);
    LoadedModel m = load_model(ema_path);
    CHECK(m.info.unet.ch == 8);
    CHECK(m.schedule.T == 100);
    ModelInfo wider = tiny_model();
    wider.unet.ch = 16;
    DdpmTrainer w(wider, to, d);
    CHECK(tdtest::contains(tdtest::error_of([&] { w.load_checkpoint(ckpt); }), "checkpoint is of another model"));
    CHECK(tdtest::contains(tdtest::error_of([&] { w.load_checkpoint(ema_path); }), "not a trainer checkpoint"));
    std::filesystem::remove(ckpt);
    std::filesystem::remove(ema_path);
}

TEST_CASE("make_grid tiles images row by row") {
    Tensor imgs = Tensor::from_vector({-1, -0.5f, 0, 0.5f, 1}, {5, 1, 1, 1});
    Tensor g = make_grid(imgs, 2, 1, 0.25f);  // 3 rows x 2 columns of 1x1 images, 1 px padding
    REQUIRE(g.shape() == Shape{1, 7, 5});
    std::vector<float> v = g.to_vector();
    CHECK(v[1 * 5 + 1] == -1.0f);
    CHECK(v[1 * 5 + 3] == -0.5f);
    CHECK(v[3 * 5 + 1] == 0.0f);
    CHECK(v[5 * 5 + 1] == 1.0f);
    CHECK(v[5 * 5 + 3] == 0.25f);  // no sixth image: background
}

// ---- the CLI ------------------------------------------------------------------------------

using tdtest::run_diffuse;
using Run = tdtest::CliRun;

TEST_CASE("diffuse train ddpm + sample on a synthetic data set" * doctest::test_suite("long")) {
    std::string data = tdtest::scratch("bars16"), dir = tdtest::scratch("run_ddpm");
    std::filesystem::create_directories(data);
    std::filesystem::remove_all(dir);
    tdtest::write_bars(data, "train", 64, 16);
    std::string model = " --ch 8 --mults 1,2 --res-blocks 1 --attn-res 8 --groups 4 --T 50 --batch 16";
    Run t = run_diffuse("train ddpm --data " + data + " --out " + dir + model +
                        " --steps 6 --final-samples 4 --final-steps 3 --threads 1");
    INFO(t.output);
    REQUIRE(t.code == 0);
    CHECK(tdtest::contains(t.output, "it/s"));
    for (const char* f : {"config.txt", "metrics.csv", "model.safetensors", "checkpoints/step-00000006.safetensors",
                          "samples.png", "denoise.png", "forward.png", "loss.png", "index.html", "guide.safetensors"})
        CHECK(std::filesystem::exists(dir + "/" + f));
    // the guide is the EMA model a quarter of the way through (--guide-at 0.25 of 6 steps: step 2),
    // and the samples on the page are autoguided by it
    CHECK(tdtest::contains(t.output, "step 2: the EMA weights saved as guide.safetensors"));
    CHECK(tdtest::contains(tdtest::read_file(dir + "/index.html"), "autoguided with w = 3"));

    // resume to a larger budget: the run continues from step 6
    Run r =
        run_diffuse("train ddpm --out " + dir + " --resume --steps 8 --final-samples 4 --final-steps 2 --data " + data);
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(tdtest::contains(r.output, "resumed"));
    CHECK(std::filesystem::exists(dir + "/checkpoints/step-00000008.safetensors"));

    // a finished run is not overwritten by accident
    Run again = run_diffuse("train ddpm --data " + data + " --out " + dir + model + " --steps 2");
    CHECK(again.code == 2);
    CHECK(tdtest::contains(again.output, "already holds a run"));
    CHECK(std::filesystem::exists(dir + "/checkpoints/step-00000008.safetensors"));

    std::string npy = tdtest::scratch("ddpm_samples.npy");
    Run s = run_diffuse("sample --run " + dir + " --n 3 --sampler ddpm --steps 5 --out " + npy);
    INFO(s.output);
    REQUIRE(s.code == 0);
    Tensor x = load_npy(npy);
    CHECK(x.shape() == Shape{3, 1, 16, 16});
    for (float v : x.to_vector()) CHECK((v >= 0.0f && v <= 1.0f));
    CHECK(run_diffuse("sample --run " + dir + " --n 2 --steps 2 --out " + tdtest::scratch("g.png")).code == 0);

    // usage errors: exit 2 with a message; a bad file: exit 1 naming it
    Run e1 = run_diffuse("train ddpm --data " + data + " --steps 2");
    CHECK(e1.code == 2);
    CHECK(tdtest::contains(e1.output, "--out is required"));
    Run e2 = run_diffuse("train ddpm --data " + data + " --out " + dir + "2 --steps 2 --mults 1,x");
    CHECK(e2.code == 2);
    CHECK(tdtest::contains(e2.output, "--mults expects positive integers"));
    Run e3 = run_diffuse("train ddpm --data " + data + " --out " + dir + "2 --steps 2" + model + " --groups 3");
    CHECK(e3.code == 2);
    CHECK(tdtest::contains(e3.output, "GroupNorm groups 3"));
    Run e4 = run_diffuse("sample --run " + dir + " --out x.jpg");
    CHECK(e4.code == 2);
    CHECK(tdtest::contains(e4.output, ".png or .npy"));
    Run e5 = run_diffuse("sample --run " + dir + " --steps 51 --out " + npy);
    CHECK(e5.code == 2);
    CHECK(tdtest::contains(e5.output, "T = 50"));
    Run e6 = run_diffuse("sample --ckpt " + dir + "/config.txt --out " + npy);
    CHECK(e6.code == 1);
    CHECK(tdtest::contains(e6.output, "config.txt"));
    Run e9 = run_diffuse("train ddpm --data " + data + " --out " + dir + "2 --steps 2 --guide-at 1");
    CHECK(e9.code == 2);
    CHECK(tdtest::contains(e9.output, "--guide-at must be in [0, 1)"));
    Run e7 = run_diffuse("train ddpm --data " + data + " --out " + dir + "2 --steps 2 --config /nonexistent.cfg");
    CHECK(e7.code == 1);
    CHECK(tdtest::contains(e7.output, "/nonexistent.cfg"));
    CHECK(run_diffuse("sample --help").code == 0);
    CHECK(run_diffuse("train ddpm --help").code == 0);

    // a config file with a bad key names the file and the line
    std::string cfg = tdtest::scratch("bad.cfg");
    std::ofstream(cfg) << "# comment\nch = 8\nchannel_mults = 1,2\n";
    Run e8 = run_diffuse("train ddpm --data " + data + " --out " + dir + "2 --steps 2 --config " + cfg);
    CHECK(e8.code == 1);
    CHECK(tdtest::contains(e8.output, "bad.cfg:3: unknown key 'channel_mults'"));
    std::filesystem::remove_all(dir);
    std::filesystem::remove_all(dir + "2");
}

TEST_CASE("min-SNR weights and the weighted loss") {
    Schedule s = Schedule::named("linear", 1000);
    Tensor t = Tensor::from_vector_i64({0, 100, 999}, {3});
    std::vector<float> w_eps = min_snr_weights(s, t, Prediction::Eps, 5.0).to_vector();
    double snr0 = s.alpha_bar[0] / (1 - s.alpha_bar[0]), snr100 = s.alpha_bar[100] / (1 - s.alpha_bar[100]);
    CHECK(w_eps[0] == doctest::Approx(5.0 / snr0).epsilon(1e-5));  // SNR ~ 1e4 at t = 0: down-weighted
    CHECK(w_eps[1] == doctest::Approx(std::min(snr100, 5.0) / snr100).epsilon(1e-5));
    CHECK(w_eps[2] == doctest::Approx(1.0));  // SNR << 5 near T: weight 1
    std::vector<float> w_v = min_snr_weights(s, t, Prediction::V, 5.0).to_vector();
    CHECK(w_v[0] == doctest::Approx(5.0 / (snr0 + 1)).epsilon(1e-5));

    Generator g(0);
    Tensor a = randn({3, 1, 4, 4}, g), b = randn({3, 1, 4, 4}, g);
    CHECK(l_weighted(a, b, ones({3})).item() == doctest::Approx(l_simple(a, b).item()).epsilon(1e-6));
    Tensor w = Tensor::from_vector({1, 0, 0}, {3});  // only the first sample counts, divided by B = 3
    Tensor d = a.slice(0, 0, 1) - b.slice(0, 0, 1);
    CHECK(l_weighted(a, b, w).item() == doctest::Approx(mean(d * d).item() / 3).epsilon(1e-6));
    CHECK(tdtest::contains(tdtest::error_of([&] { l_weighted(a, b, ones({2})); }), "l_weighted: weights"));
}
