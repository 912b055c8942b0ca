// diffusion/toy2d.cpp: diffusion on 2-D points (see toy2d.h).
#include "diffusion/toy2d.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <limits>

#include "autograd/node.h"
#include "diffusion/sampling_math.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "nn/timestep_embedding.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion::toy2d {

namespace {

constexpr double kPi = 3.14159265358979323846;

// (n) int64 tensor holding t n times.
Tensor full_t(int64_t n, int64_t t) { return Tensor::from_vector_i64(std::vector<int64_t>(n, t), {n}); }

}  // namespace

Tensor two_moons(int64_t n, Generator& gen, double noise) {
    check(n >= 2, "two_moons: need at least 2 points, got ", n);
    // Half the points on the upper arc (cos a, sin a), half on the lower one
    // (1 - cos a, 0.5 - sin a), a in [0, pi]; then centred (the arcs' middle is
    // (0.5, 0.25)) and scaled by 1.5 to about unit spread.
    Tensor angle = rand({n}, gen, 0.0f, (float)kPi), jitter = randn({n, 2}, gen);
    std::vector<float> a = angle.to_vector(), j = jitter.to_vector(), xy(2 * n);
    for (int64_t i = 0; i < n; ++i) {
        bool upper = i < n / 2;
        double x = upper ? std::cos(a[i]) : 1.0 - std::cos(a[i]);
        double y = upper ? std::sin(a[i]) : 0.5 - std::sin(a[i]);
        xy[2 * i] = (float)(1.5 * (x - 0.5) + noise * j[2 * i]);
        xy[2 * i + 1] = (float)(1.5 * (y - 0.25) + noise * j[2 * i + 1]);
    }
    return Tensor::from_vector(xy, {n, 2});
}

Tensor spiral(int64_t n, Generator& gen, double noise) {
    check(n >= 1, "spiral: need at least 1 point, got ", n);
    // Angle a uniform in [pi/2, 4 pi], radius a / (2 pi): from near the centre out to 2.
    // The square root spreads the points evenly along the arm's length. The arm is not
    // symmetric about the origin (its centre of mass is near (0.05, -0.33)), so the points
    // are centred on their own mean.
    Tensor u = rand({n}, gen), jitter = randn({n, 2}, gen);
    std::vector<float> uv = u.to_vector(), j = jitter.to_vector(), xy(2 * n);
    const double a0 = 0.5 * kPi, a1 = 4.0 * kPi;
    double mean_x = 0, mean_y = 0;
    for (int64_t i = 0; i < n; ++i) {
        double a = std::sqrt(a0 * a0 + uv[i] * (a1 * a1 - a0 * a0)), r = a / (2 * kPi);
        xy[2 * i] = (float)(r * std::cos(a) + noise * j[2 * i]);
        xy[2 * i + 1] = (float)(r * std::sin(a) + noise * j[2 * i + 1]);
        mean_x += xy[2 * i] / (double)n, mean_y += xy[2 * i + 1] / (double)n;
    }
    for (int64_t i = 0; i < n; ++i) xy[2 * i] -= (float)mean_x, xy[2 * i + 1] -= (float)mean_y;
    return Tensor::from_vector(xy, {n, 2});
}

Tensor make_points(const std::string& name, int64_t n, Generator& gen) {
    if (name == "moons") return two_moons(n, gen);
    if (name == "spiral") return spiral(n, gen);
    throw Error("unknown 2-D data set '" + name + "' (expected moons or spiral)");
}

Mlp::Mlp(int64_t hidden, Generator& gen, int64_t temb_dim) : temb_dim_(temb_dim) {
    check(hidden >= 1 && temb_dim >= 2, "toy2d::Mlp: hidden must be >= 1 and temb_dim >= 2, got ", hidden, " and ",
          temb_dim);
    l1_ = register_module("l1", std::make_shared<nn::Linear>(2 + temb_dim, hidden, true, gen));
    l2_ = register_module("l2", std::make_shared<nn::Linear>(hidden, hidden, true, gen));
    l3_ = register_module("l3", std::make_shared<nn::Linear>(hidden, hidden, true, gen));
    l4_ = register_module("l4", std::make_shared<nn::Linear>(hidden, 2, true, gen));
}

Tensor Mlp::forward(const Tensor& x, const Tensor& t) {
    Tensor emb = nn::timestep_embedding(t.to(DType::Float32), temb_dim_);  // (B, temb_dim)
    Tensor h = silu(l1_->forward(cat({x, emb}, 1)));
    h = silu(l2_->forward(h));
    h = silu(l3_->forward(h));
    return l4_->forward(h);
}

namespace {

nn::AdamOptions adam_options(float lr) {
    nn::AdamOptions a;
    a.lr = lr;
    return a;
}

}  // namespace

Trainer::Trainer(Mlp& model, const Schedule& s, const Tensor& data, const TrainOptions& o)
    : model_(model), s_(s), data_(data), o_(o), opt_(model.parameters(), adam_options(o.lr)), gen_(o.seed) {
    check(data.dim() == 2 && data.shape()[1] == 2, "toy2d::train: data must be (N, 2), got ", data.shape());
    check(o.steps >= 1 && o.batch >= 1 && o.lr > 0, "toy2d::train: steps and batch must be >= 1 and lr > 0");
    check(o.t_weights.empty() || (int64_t)o.t_weights.size() == s.T, "toy2d::train: t_weights must have T = ", s.T,
          " entries, got ", o.t_weights.size());
    check(o.t_weights.empty() || !o.min_snr, "toy2d::train: t_weights and min_snr do not go together");
    if (!o.t_weights.empty()) t_weights_ = Tensor::from_vector(o.t_weights, {s.T});
}

float Trainer::step() {
    model_.train();
    const int64_t n = data_.shape()[0], B = o_.batch;
    // Algorithm 1: x_0 from the data, t uniform, eps ~ N(0, I), one gradient step
    Tensor x0 = index_select(data_, 0, randint(n, {B}, gen_));
    Tensor t = randint(s_.T, {B}, gen_);
    Tensor eps = randn({B, 2}, gen_);
    Tensor xt = q_sample(s_, x0, t, eps);
    Tensor out = model_.forward(xt, t);
    Tensor target = training_target(o_.prediction, s_, x0, t, eps);
    Tensor loss = o_.min_snr             ? l_weighted(out, target, min_snr_weights(s_, t, o_.prediction, o_.snr_gamma))
                  : t_weights_.defined() ? l_weighted(out, target, index_select(t_weights_, 0, t))
                                         : l_simple(out, target);
    opt_.set_lr(nn::cosine_lr(step_ + 1, o_.lr, 0, o_.steps));  // t counts from 1
    opt_.zero_grad();
    loss.backward();
    opt_.step();
    float l = loss.item();
    ++step_;
    check(std::isfinite(l), "toy2d::train: the loss became ", l, " at step ", step_, "; lower the learning rate");
    return l;
}

void Trainer::save_checkpoint(const std::string& path) const {
    std::map<std::string, Tensor> all;
    for (auto& [k, v] : model_.state_dict()) all["model." + k] = v;
    for (auto& [k, v] : opt_.state_dict()) all["optim." + k] = v;
    nn::save_safetensors(path, all,
                         {{"checkpoint", "toy2d-trainer"},
                          {"step", std::to_string(step_)},
                          {"gen", std::to_string(gen_.seed()) + "," + std::to_string(gen_.offset())}});
}

void Trainer::load_checkpoint(const std::string& path) {
    std::map<std::string, std::string> meta;
    std::map<std::string, Tensor> all = nn::load_safetensors(path, &meta), model, optim;
    check(
        meta.count("checkpoint") && meta.at("checkpoint") == "toy2d-trainer" && meta.count("step") && meta.count("gen"),
        path, ": not a checkpoint of `diffuse train toy`");
    for (auto& [k, v] : all) {
        if (k.rfind("model.", 0) == 0) model[k.substr(6)] = v;
        if (k.rfind("optim.", 0) == 0) optim[k.substr(6)] = v;
    }
    unsigned long long seed = 0, offset = 0;
    long long step = 0;
    check(std::sscanf(meta.at("gen").c_str(), "%llu,%llu", &seed, &offset) == 2 &&
              std::sscanf(meta.at("step").c_str(), "%lld", &step) == 1 && step >= 0,
          path, ": malformed 'step' or 'gen' in its metadata");
    try {
        model_.load_state_dict(model);
        opt_.load_state_dict(optim);
    } catch (const Error& e) {
        fail(path, ": does not fit this model (", e.what(), ")");
    }
    gen_.set_state(seed, offset);
    step_ = step;
}

std::vector<float> train(Mlp& model, const Schedule& s, const Tensor& data, const TrainOptions& o,
                         const std::function<void(int64_t, float)>& on_step) {
    Trainer trainer(model, s, data, o);
    std::vector<float> losses;
    while (trainer.steps_done() < o.steps) {
        losses.push_back(trainer.step());
        if (on_step) on_step(trainer.steps_done(), losses.back());
    }
    model.eval();
    return losses;
}

std::vector<float> eps_error_per_t(Mlp& model, Prediction p, const Schedule& s, const Tensor& data,
                                   const std::vector<int64_t>& ts, Generator& gen) {
    NoGradGuard no_grad;
    const int64_t n = data.shape()[0];
    std::vector<float> errors;
    for (int64_t t : ts) {
        Tensor eps = randn({n, 2}, gen), tt = full_t(n, t);
        Tensor xt = q_sample(s, data, tt, eps);
        Tensor eps_hat = model_eps(p, s, xt, tt, model.forward(xt, tt));
        errors.push_back(l_simple(eps_hat, eps).item());
    }
    return errors;
}

Tensor predict_eps(Mlp& model, Prediction p, const Schedule& s, const Tensor& xt, int64_t t) {
    NoGradGuard no_grad;
    Tensor tt = full_t(xt.shape()[0], t);
    return model_eps(p, s, xt, tt, model.forward(xt, tt));
}

Tensor score(Mlp& model, Prediction p, const Schedule& s, const Tensor& xt, int64_t t) {
    return predict_eps(model, p, s, xt, t) * (float)(-1.0 / s.sqrt_one_minus_alpha_bar[t]);
}

Tensor grid_points(float lo, float hi, int64_t n) {
    check(n >= 2 && hi > lo, "grid_points: need n >= 2 and hi > lo");
    std::vector<float> xy;
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < n; ++j)
            xy.push_back(lo + (hi - lo) * (float)j / (float)(n - 1)),
                xy.push_back(lo + (hi - lo) * (float)i / (float)(n - 1));
    return Tensor::from_vector(xy, {n * n, 2});
}

Tensor sample_ddpm(Mlp& model, Prediction p, const Schedule& s, const Tensor& x_T, Generator& gen,
                   std::vector<Tensor>* path, int64_t keep_every) {
    Tensor x = x_T;
    if (path) path->push_back(x);
    for (int64_t t = s.T - 1; t >= 0; --t) {
        Tensor eps = predict_eps(model, p, s, x, t);
        // unclipped: points have no [-1, 1] range to clip x_0 to
        x = ddpm_step(s, x, t, eps, Variance::BetaTilde, gen, DdpmForm::Algorithm2);
        if (path && (t % keep_every == 0 || t == 0)) path->push_back(x);
    }
    return x;
}

Tensor sample_ddim(Mlp& model, Prediction p, const Schedule& s, const Tensor& x_T, int64_t steps,
                   std::vector<Tensor>* path) {
    Tensor x = x_T;
    if (path) path->push_back(x);
    for (auto [t, t_prev] : ddim_step_pairs(trailing_timesteps(s.T, steps))) {
        x = ddim_step(s, x, t, t_prev, predict_eps(model, p, s, x, t), 0.0, Tensor());
        if (path) path->push_back(x);
    }
    return x;
}

double mean_nearest_distance(const Tensor& a, const Tensor& b) {
    std::vector<float> av = a.contiguous().to_vector(), bv = b.contiguous().to_vector();
    const size_t na = av.size() / 2, nb = bv.size() / 2;
    check(na > 0 && nb > 0, "mean_nearest_distance: empty point set");
    double total = 0;
    for (size_t i = 0; i < na; ++i) {
        double best = std::numeric_limits<double>::infinity();
        for (size_t j = 0; j < nb; ++j) {
            double dx = av[2 * i] - bv[2 * j], dy = av[2 * i + 1] - bv[2 * j + 1];
            best = std::min(best, dx * dx + dy * dy);
        }
        total += std::sqrt(best);
    }
    return total / (double)na;
}

}  // namespace td::diffusion::toy2d
