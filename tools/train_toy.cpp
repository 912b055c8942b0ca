// tools/train_toy.cpp: `diffuse train toy`, diffusion on 2-D points in seconds.
//
// The whole of DDPM on a picture you can see at once: 2,000 points of a two-moons (or
// spiral) set, the forward process blurring them into N(0, I), a small MLP denoiser
// (diffusion/toy2d.h) trained by Algorithm 1 with our autograd and Adam, and both
// samplers (ancestral DDPM, DDIM with eta = 0) walking fresh noise back onto the set.
// Before training, gradcheck() compares the MLP's gradients with finite differences,
// so a broken backward stops the job loudly. It is the quickest end-to-end check of
// ops, autograd, optimizer and samplers together (`make demo` trains the MNIST DDPM).
// The run folder is a TrainingRun's (tools/training_run.h), as every training command's.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "diffusion/toy2d.h"
#include "td.h"
#include "tools/args.h"
#include "tools/html_page.h"
#include "tools/metrics.h"
#include "tools/plot.h"
#include "tools/progress.h"
#include "tools/settings.h"
#include "tools/training_run.h"

namespace td::cli {

namespace {

using diffusion::Schedule;
namespace toy = diffusion::toy2d;

constexpr unsigned kData = 0xbbbbbb, kBlue = 0x1f77b4, kOrange = 0xff7f0e, kRed = 0xd62728;

// The scatter plots' common frame: the data's square, a little wider.
plot::Axes square(const std::string& title) {
    plot::Axes a;
    a.title = title, a.xlabel = "x[0]", a.ylabel = "x[1]";
    a.xmin = a.ymin = -3.0f, a.xmax = a.ymax = 3.0f;
    a.equal_aspect = true;
    return a;
}

// The pictures of the run page, each a PNG in `out`.
void draw(const std::string& out, toy::Mlp& model, const Schedule& s, const Tensor& data, uint64_t seed) {
    Generator gen(seed + 1);
    // the forward process: the data, then x_t at three t (eq. 4)
    std::vector<plot::Points> fwd = {plot::points_xy(data.to_vector(), kData)};
    unsigned colours[] = {kBlue, kOrange, kRed};
    int k = 0;
    for (int64_t t : {50, 200, 999}) {
        int64_t n = data.shape()[0];
        Tensor xt =
            diffusion::q_sample(s, data, Tensor::from_vector_i64(std::vector<int64_t>(n, t), {n}), randn({n, 2}, gen));
        fwd.push_back(plot::points_xy(xt.narrow(0, 0, 400).to_vector(), colours[k++]));
    }
    plot::scatter_plot(out + "/forward.png", fwd, {}, {}, square("x_0 (grey), x_t at t = 50, 200, 999"));
    // the learned score at t = 50, a 21 x 21 grid of arrows (scaled to fit the grid)
    Tensor grid = toy::grid_points(-2.5f, 2.5f, 21);
    Tensor sc = toy::score(model, diffusion::Prediction::Eps, s, grid, 50);
    std::vector<float> g = grid.to_vector(), v = sc.to_vector();
    float longest = 1e-6f;
    for (size_t i = 0; i + 1 < v.size(); i += 2) longest = std::max(longest, std::hypot(v[i], v[i + 1]));
    plot::Arrows arrows;
    for (size_t i = 0; i + 1 < v.size(); i += 2)
        arrows.x.push_back(g[i]), arrows.y.push_back(g[i + 1]), arrows.dx.push_back(0.3f * v[i] / longest),
            arrows.dy.push_back(0.3f * v[i + 1] / longest);
    plot::scatter_plot(out + "/score.png", {plot::points_xy(data.to_vector(), kData)}, {}, {arrows},
                       square("the learned score at t = 50"));
    // samples and the paths of 24 of them
    Tensor x_T = randn({1000, 2}, gen);
    std::vector<Tensor> ddpm_path, ddim_path;
    Tensor ddpm = toy::sample_ddpm(model, diffusion::Prediction::Eps, s, x_T, gen, &ddpm_path, 10);
    Tensor ddim = toy::sample_ddim(model, diffusion::Prediction::Eps, s, x_T, 50, &ddim_path);
    plot::scatter_plot(out + "/samples.png",
                       {plot::points_xy(data.to_vector(), kData), plot::points_xy(ddpm.to_vector(), kRed),
                        plot::points_xy(ddim.to_vector(), kBlue)},
                       {}, {}, square("data (grey), DDPM (red), DDIM-50 (blue)"));
    std::vector<plot::Series> paths;
    for (int64_t i = 0; i < 24; ++i)
        for (auto [path, rgb] : {std::pair{&ddpm_path, kRed}, std::pair{&ddim_path, kBlue}}) {
            std::vector<float> xy;
            for (const Tensor& x : *path) xy.push_back(x.at({i, 0})), xy.push_back(x.at({i, 1}));
            paths.push_back(plot::series_xy(xy, rgb));
        }
    plot::scatter_plot(out + "/trajectories.png", {plot::points_xy(data.to_vector(), kData)}, paths, {},
                       square("24 paths x_T -> x_0: DDPM (red), DDIM-50 (blue)"));
    std::printf("mean distance to the nearest data point: x_T %.3f, DDPM samples %.3f, DDIM-50 samples %.3f\n",
                toy::mean_nearest_distance(x_T, data), toy::mean_nearest_distance(ddpm, data),
                toy::mean_nearest_distance(ddim, data));
}

// The run folder: what --overwrite deletes, the checkpoints --resume continues from,
// metrics.csv's columns; and the settings config.txt records.
const RunLayout kLayout = {"train toy",
                           {"config.txt", "metrics.csv", "checkpoints", "loss.png", "forward.png", "score.png",
                            "samples.png", "trajectories.png", "index.html"},
                           {"checkpoints"},
                           {"step", "loss", "seconds"},
                           /*resumable=*/true};

struct ToySettings {
    std::string data;         // moons or spiral
    int64_t hidden = 0;       // the MLP's width
    toy::TrainOptions train;  // steps, batch, lr, seed
    double minutes = 0;       // the time budget (0: none)
};

using S = ToySettings;

// The settings of `train toy` (tools/settings.h); the order is config.txt's and --help's.
const std::vector<Setting<ToySettings>> kToySettings = {
    field<S>("data", "moons", "the points: moons or spiral", "", [](auto& s) { return &s.data; }),
    field<S>("hidden", "128", "hidden width of the MLP", "", [](auto& s) { return &s.hidden; }),
    field<S>("batch", "256", "points per training step", "", [](auto& s) { return &s.train.batch; }),
    field<S>("lr", "0.003", "Adam learning rate (cosine-decayed to 0 over --steps)", "",
             [](auto& s) { return &s.train.lr; }),
    field<S>("seed", "0", "random seed (weights, data order, noise)", "", [](auto& s) { return &s.train.seed; }),
    field<S>("steps", "3000", "training steps in all; the learning rate's cosine decays over them", "",
             [](auto& s) { return &s.train.steps; }),
    minutes_setting<S>(),
    {"device", "auto", "where to train: the CPU (cpu or auto; the toy has no GPU code)", "",
     [](S&, const Args& a, const std::string& n) {
         if (a.str(n) != "cpu" && a.str(n) != "auto")
             throw ArgError("--device: train toy runs on the CPU (cpu or auto)");
     },
     [](const S&) { return std::string("cpu"); }},
};

}  // namespace

int train_toy(int argc, char** argv, int first) {
    Args args("diffuse train toy [options]",
              "Trains a small MLP denoiser on 2,000 points of a 2-D set (DDPM, T = 1000, linear\n"
              "schedule, eps prediction) with the engine's autograd and Adam, after checking its\n"
              "gradients against finite differences, then samples with DDPM and DDIM. Writes\n"
              "metrics.csv, loss.png, forward.png, score.png, samples.png, trajectories.png and\n"
              "index.html into the run folder; --resume continues a stopped run from its checkpoint.");
    declare_run_options(args, "runs/toy");  // --out, --config, --resume, --overwrite, --threads
    declare_settings(args, kToySettings);
    if (!args.parse_or_help(argc, argv, first)) return 0;
    TrainingRun run(args, kLayout);  // the folder claimed and locked; with --resume, its config.txt applied
    ToySettings set = read_settings(args, kToySettings);
    const toy::TrainOptions& topt = set.train;
    int64_t steps = topt.steps, hidden = set.hidden, seed = (int64_t)topt.seed;
    if (steps < 1 || hidden < 1 || topt.batch < 1 || !(topt.lr > 0) || set.minutes < 0)
        throw ArgError("--steps, --batch and --hidden must be >= 1, --lr > 0 and --minutes >= 0");
    Generator gen((uint64_t)seed);
    Tensor data;
    as_usage_error([&] { data = toy::make_points(set.data, 2000, gen); }, "--data: ");
    const std::string& out = run.out();
    run.begin();  // the settings are good: now an earlier run may be deleted (--overwrite)
    run.write_config(settings_text("train toy", set, kToySettings));

    Schedule s = Schedule::named(diffusion::BetaSchedule::Linear, 1000);
    toy::Mlp model(hidden, gen);

    // 1. gradients checked on a few noisy points before any training
    Tensor xs = data.narrow(0, 0, 4), ts = Tensor::from_vector_i64({0, 10, 500, 999}, {4});
    GradcheckResult gc =
        gradcheck([&](const std::vector<Tensor>&) { return model.forward(xs, ts); }, model.parameters());
    std::printf("gradcheck of the MLP (%lld parameters): %s, max |analytic - numeric| = %.2e\n",
                (long long)model.num_parameters(), gc.ok ? "ok" : "FAILED", gc.max_abs_error);
    if (!gc.ok) {
        std::fprintf(stderr, "%s\n", gc.message.c_str());
        return 1;
    }
    model.zero_grad();

    // 2. training (Algorithm 1), stopped by --steps, --minutes or Ctrl-C
    toy::Trainer trainer(model, s, data, topt);
    if (run.resuming()) {
        std::string from = run.resume_from([&](const std::string& path) { trainer.load_checkpoint(path); });
        std::printf("resumed %s at step %lld\n", from.c_str(), (long long)trainer.steps_done());
    }
    run.open_metrics(trainer.steps_done());
    int64_t start = trainer.steps_done();
    StepLoop loop(steps, set.minutes, start, /*grid_every=*/0, 0.0, /*report_every=*/250);
    while (loop.more()) {
        float l = trainer.step();
        run.metrics.row({std::to_string(trainer.steps_done()), cell(l), run.metrics.seconds(loop.elapsed())});
        loop.step_done(trainer.steps_done(), fmt("loss %.5f", l));
    }
    loop.end();
    run.metrics.close();
    if (trainer.steps_done() > start || run.checkpoints().empty())
        run.save_checkpoint(trainer.steps_done(), 1, [&](const std::string& path) { trainer.save_checkpoint(path); });
    if (trainer.steps_done() < steps) {  // stopped early: the pictures wait for the end of the run
        std::printf("stopped at step %lld of %lld: `--resume` continues\n", (long long)trainer.steps_done(),
                    (long long)steps);
        return loop.stopped_by_ctrl_c() ? 130 : 0;
    }
    model.eval();

    // 3. pictures and a page
    float smoothed = plot_loss(out + "/loss.png", read_metrics(out + "/metrics.csv"), "loss");
    draw(out, model, s, data, (uint64_t)seed);
    std::ostringstream about;
    about << "2,000 points; DDPM with T = 1000 (linear schedule), an MLP denoiser of " << model.num_parameters()
          << " parameters (hidden width " << hidden << ") predicting eps; " << steps << " steps of Adam (lr " << topt.lr
          << ", batch " << topt.batch << "), seed " << seed << ". Smoothed loss at the end: " << smoothed
          << ". Gradient check before training: " << (gc.ok ? "passed" : "failed") << " (max abs error "
          << gc.max_abs_error << ").";
    HtmlPage("Diffusion on 2-D points (" + set.data + ")")
        .p(about.str())
        .h2("The forward process")
        .image("forward.png", "the forward process")
        .h2("Loss")
        .image("loss.png", "loss", "L_simple per step (grey) and smoothed (blue), log scale.")
        .h2("The learned score")
        .image("score.png", "the learned score",
               "-eps_theta(x, t) / sqrt(1 - alpha_bar_t) at t = 50 on a grid: it points back towards the data.")
        .h2("Samples")
        .image("samples.png", "samples", "1,000 points from the same x_T by each sampler.")
        .h2("Trajectories")
        .image("trajectories.png", "trajectories")
        .html("<p>Raw numbers: <a href=metrics.csv>metrics.csv</a>; settings: <a href=config.txt>config.txt</a></p>\n")
        .write(out + "/index.html");
    std::printf(
        "final loss (smoothed) %.5f; wrote %s/{metrics.csv,loss.png,forward.png,score.png,samples.png,"
        "trajectories.png,index.html}\n",
        smoothed, out.c_str());
    return 0;
}

}  // namespace td::cli
