// tools/train_toy.cpp: `diffuse train toy`, the smallest end-to-end job of the engine.
//
// A 3-layer MLP y = W3 silu(W2 silu(W1 x + b1) + b2) + b3 learns the curve
// f(x) = sin(3x) exp(-x^2) on [-2, 2] from 256 points, by L2 loss and Adam, every
// gradient coming from our autograd. Before training, gradcheck() compares those
// gradients with finite differences, so a broken backward stops the demo loudly.
// It runs in seconds, so it is the quickest check that ops, autograd and the optimizer
// work together (`make demo` runs the DDPM job instead).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "nn/optim.h"
#include "td.h"
#include "tools/args.h"
#include "tools/plot.h"
#include "tools/progress.h"

namespace td::cli {

namespace {

struct Mlp {
    std::vector<Tensor> params;  // W1 b1 W2 b2 W3 b3

    // PyTorch's nn.Linear default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for W and b.
    static Tensor uniform(const Shape& shape, int64_t fan_in, Generator& gen) {
        float bound = 1.0f / std::sqrt((float)fan_in);
        return rand(shape, gen, -bound, bound).requires_grad_();
    }
    Mlp(int64_t hidden, Generator& gen) {
        params = {uniform({1, hidden}, 1, gen),      uniform({hidden}, 1, gen),
                  uniform({hidden, hidden}, hidden, gen), uniform({hidden}, hidden, gen),
                  uniform({hidden, 1}, hidden, gen),  uniform({1}, hidden, gen)};
    }
    // x: (N, 1) -> (N, 1)
    static Tensor forward(const std::vector<Tensor>& p, const Tensor& x) {
        Tensor h = silu(matmul(x, p[0]) + p[1]);  // (N, H)
        h = silu(matmul(h, p[2]) + p[3]);         // (N, H)
        return matmul(h, p[4]) + p[5];            // (N, 1)
    }
};

}  // namespace

int train_toy(int argc, char** argv, int first) {
    Args args("diffuse train toy [options]",
              "Fits a small MLP to f(x) = sin(3x) exp(-x^2) with the engine's autograd and Adam,\n"
              "after checking its gradients against finite differences. Writes metrics.csv,\n"
              "loss.png, fit.png and index.html into the run folder.");
    args.option("out", "runs/toy", "run folder");
    args.option("steps", "1500", "training steps");
    args.option("hidden", "64", "hidden width");
    args.option("lr", "0.005", "Adam learning rate");
    args.option("seed", "0", "random seed");
    if (!args.parse(argc, argv, first)) { std::printf("%s", args.help().c_str()); return 0; }
    int64_t steps = args.integer("steps"), hidden = args.integer("hidden"), seed = args.integer("seed");
    float lr = (float)args.number("lr");
    if (steps < 1 || hidden < 1 || !(lr > 0)) throw ArgError("--steps and --hidden must be >= 1 and --lr > 0");
    std::string out = args.str("out");
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    check(!ec, out, ": cannot create the run folder (", ec.message(), ")");

    // data: x (256, 1) on [-2, 2], target f(x)
    Tensor x = linspace(-2.0f, 2.0f, 256).reshape({256, 1});
    std::vector<float> fx;
    for (float v : x.to_vector()) fx.push_back(std::sin(3.0f * v) * std::exp(-v * v));
    Tensor target = Tensor::from_vector(fx, {256, 1});
    Generator gen((uint64_t)seed);
    Mlp model(hidden, gen);

    // 1. gradients checked on a few points before any training
    Tensor xs = x.slice(0, 0, 256, 32);  // 8 of the points
    GradcheckResult gc = gradcheck(
        [&](const std::vector<Tensor>& p) { return Mlp::forward(p, xs); }, model.params);
    std::printf("gradcheck of the MLP (%lld parameters): %s, max |analytic - numeric| = %.2e\n",
                (long long)[&] { int64_t n = 0; for (auto& p : model.params) n += p.numel(); return n; }(),
                gc.ok ? "ok" : "FAILED", gc.max_abs_error);
    if (!gc.ok) { std::fprintf(stderr, "%s\n", gc.message.c_str()); return 1; }
    for (Tensor& p : model.params) p.zero_grad();

    // 2. training
    nn::AdamOptions aopt;
    aopt.lr = lr;
    nn::Adam opt(model.params, aopt);
    std::ofstream csv(out + "/metrics.csv");
    check(csv.good(), out, "/metrics.csv: cannot open for writing");
    csv << "step,loss\n";
    std::vector<float> curve_x, curve_y;
    Progress progress(steps);
    for (int64_t step = 1; step <= steps; ++step) {
        Tensor diff = Mlp::forward(model.params, x) - target;
        Tensor loss = mean(diff * diff);  // L2
        opt.zero_grad();
        loss.backward();
        opt.step();
        float l = loss.item();
        check(std::isfinite(l), "train toy: loss became ", l, " at step ", step, "; lower --lr");
        csv << step << "," << l << "\n";
        curve_x.push_back((float)step);
        curve_y.push_back(l);
        char fields[64];
        std::snprintf(fields, sizeof fields, "loss %.5f", l);
        progress.report(step, fields, 100);
    }
    progress.done();
    csv.close();

    // 3. pictures and a page
    Tensor pred;
    { NoGradGuard ng; pred = Mlp::forward(model.params, x); }
    std::vector<float> xv = x.to_vector();
    plot::line_plot(out + "/loss.png", {{curve_x, curve_y, 0x1f77b4}}, /*log_y=*/true);
    plot::line_plot(out + "/fit.png", {{xv, target.to_vector(), 0x999999}, {xv, pred.to_vector(), 0xd62728}});
    std::ofstream html(out + "/index.html");
    html << "<!doctype html><meta charset=utf-8><title>tinydiffusion: toy fit</title>\n"
         << "<h1>Toy fit: an MLP learns sin(3x) exp(-x&sup2;)</h1>\n"
         << "<p>" << steps << " steps of Adam (lr " << lr << "), hidden width " << hidden << ", seed " << seed
         << ". Final L2 loss: " << curve_y.back() << ". Gradient check before training: "
         << (gc.ok ? "passed" : "failed") << " (max abs error " << gc.max_abs_error << ").</p>\n"
         << "<h2>Loss (log scale) per step</h2><img src=loss.png>\n"
         << "<h2>Target (grey) and the model (red) on [-2, 2]</h2><img src=fit.png>\n"
         << "<p>Raw numbers: <a href=metrics.csv>metrics.csv</a></p>\n";
    std::printf("final loss %.5f; wrote %s/{metrics.csv,loss.png,fit.png,index.html}\n", curve_y.back(), out.c_str());
    return 0;
}

}  // namespace td::cli
