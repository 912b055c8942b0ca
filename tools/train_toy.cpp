// tools/train_toy.cpp: `diffuse train toy`, diffusion on 2-D points in seconds.
//
// The whole of DDPM on a picture you can see at once: 2,000 points of a two-moons (or
// spiral) set, the forward process blurring them into N(0, I), a small MLP denoiser
// (diffusion/toy2d.h) trained by Algorithm 1 with our autograd and Adam, and both
// samplers (ancestral DDPM, DDIM with eta = 0) walking fresh noise back onto the set.
// Before training, gradcheck() compares the MLP's gradients with finite differences,
// so a broken backward stops the job loudly. It is the quickest end-to-end check of
// ops, autograd, optimizer and samplers together (`make demo` trains the MNIST DDPM).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "diffusion/toy2d.h"
#include "td.h"
#include "tools/args.h"
#include "tools/plot.h"
#include "tools/progress.h"

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
        Tensor xt = diffusion::q_sample(s, data, Tensor::from_vector_i64(std::vector<int64_t>(n, t), {n}),
                                        randn({n, 2}, gen));
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

}  // namespace

int train_toy(int argc, char** argv, int first) {
    Args args("diffuse train toy [options]",
              "Trains a small MLP denoiser on 2,000 points of a 2-D set (DDPM, T = 1000, linear\n"
              "schedule, eps prediction) with the engine's autograd and Adam, after checking its\n"
              "gradients against finite differences, then samples with DDPM and DDIM. Writes\n"
              "metrics.csv, loss.png, forward.png, score.png, samples.png, trajectories.png and\n"
              "index.html into the run folder.");
    args.option("out", "runs/toy", "run folder");
    args.option("data", "moons", "the points: moons or spiral");
    args.option("steps", "3000", "training steps");
    args.option("batch", "256", "points per training step");
    args.option("hidden", "128", "hidden width of the MLP");
    args.option("lr", "0.003", "Adam learning rate (cosine-decayed to 0)");
    args.option("seed", "0", "random seed");
    if (!args.parse(argc, argv, first)) { std::printf("%s", args.help().c_str()); return 0; }
    int64_t steps = args.integer("steps"), hidden = args.integer("hidden"), batch = args.integer("batch");
    int64_t seed = args.integer("seed");
    float lr = (float)args.number("lr");
    std::string data_name = args.str("data");
    if (steps < 1 || hidden < 1 || batch < 1 || !(lr > 0))
        throw ArgError("--steps, --batch and --hidden must be >= 1 and --lr > 0");
    if (data_name != "moons" && data_name != "spiral")
        throw ArgError("--data must be moons or spiral, got '" + data_name + "'");
    std::string out = args.str("out");
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    check(!ec, out, ": cannot create the run folder (", ec.message(), ")");

    Generator gen((uint64_t)seed);
    Tensor data = toy::make_points(data_name, 2000, gen);
    Schedule s = Schedule::named("linear", 1000);
    toy::Mlp model(hidden, gen);

    // 1. gradients checked on a few noisy points before any training
    Tensor xs = data.narrow(0, 0, 4), ts = Tensor::from_vector_i64({0, 10, 500, 999}, {4});
    GradcheckResult gc = gradcheck([&](const std::vector<Tensor>&) { return model.forward(xs, ts); },
                                   model.parameters());
    std::printf("gradcheck of the MLP (%lld parameters): %s, max |analytic - numeric| = %.2e\n",
                (long long)model.num_parameters(), gc.ok ? "ok" : "FAILED", gc.max_abs_error);
    if (!gc.ok) { std::fprintf(stderr, "%s\n", gc.message.c_str()); return 1; }
    model.zero_grad();

    // 2. training (Algorithm 1)
    std::ofstream csv(out + "/metrics.csv");
    check(csv.good(), out, "/metrics.csv: cannot open for writing");
    csv << "step,loss\n";
    toy::TrainOptions topt;
    topt.steps = steps, topt.batch = batch, topt.lr = lr, topt.seed = (uint64_t)seed;
    Progress progress(steps);
    std::vector<float> losses = toy::train(model, s, data, topt, [&](int64_t step, float l) {
        csv << step << "," << l << "\n";
        char fields[64];
        std::snprintf(fields, sizeof fields, "loss %.5f", l);
        progress.report(step, fields, 250);
    });
    progress.done();
    csv.close();

    // 3. pictures and a page
    std::vector<float> step_axis, smooth;  // the loss, averaged over 50 steps (one step's is noisy)
    for (size_t i = 0; i < losses.size(); ++i) {
        size_t from = i >= 49 ? i - 49 : 0;
        double sum = 0;
        for (size_t j = from; j <= i; ++j) sum += losses[j];
        step_axis.push_back((float)(i + 1));
        smooth.push_back((float)(sum / (double)(i - from + 1)));
    }
    plot::Axes la;
    la.title = "L_simple per step (grey), its 50-step mean (blue)", la.xlabel = "step", la.ylabel = "loss", la.log_y = true;
    plot::line_plot(out + "/loss.png", {{step_axis, losses, 0xcccccc}, {step_axis, smooth, kBlue}}, la);
    draw(out, model, s, data, (uint64_t)seed);
    std::ofstream html(out + "/index.html");
    html << "<!doctype html><meta charset=utf-8><title>tinydiffusion: 2-D toy diffusion</title>\n"
         << "<h1>Diffusion on 2-D points (" << data_name << ")</h1>\n"
         << "<p>2,000 points; DDPM with T = 1000 (linear schedule), an MLP denoiser of " << model.num_parameters()
         << " parameters (hidden width " << hidden << ") predicting eps; " << steps << " steps of Adam (lr " << lr
         << ", batch " << batch << "), seed " << seed << ". Loss over the last 50 steps: " << smooth.back()
         << ". Gradient check before training: " << (gc.ok ? "passed" : "failed") << " (max abs error "
         << gc.max_abs_error << ").</p>\n"
         << "<h2>The forward process</h2><img src=forward.png>\n"
         << "<h2>Loss</h2><img src=loss.png>\n"
         << "<h2>The learned score</h2><p>-eps_theta(x, t) / sqrt(1 - alpha_bar_t) at t = 50 on a grid: it points "
            "back towards the data.</p><img src=score.png>\n"
         << "<h2>Samples</h2><p>1,000 points from the same x_T by each sampler.</p><img src=samples.png>\n"
         << "<h2>Trajectories</h2><img src=trajectories.png>\n"
         << "<p>Raw numbers: <a href=metrics.csv>metrics.csv</a></p>\n";
    std::printf("final loss (50-step mean) %.5f; wrote %s/{metrics.csv,loss.png,forward.png,score.png,samples.png,"
                "trajectories.png,index.html}\n", smooth.back(), out.c_str());
    return 0;
}

}  // namespace td::cli
