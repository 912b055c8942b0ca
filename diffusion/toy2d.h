// diffusion/toy2d.h: diffusion on points in the plane, small enough to train in seconds.
//
// Everything of DDPM with the images taken out: the data are N points (N, 2) from a
// two-moons or spiral set made in code, the denoiser is a 3-hidden-layer MLP on
// [x_t, sinusoidal(t)], trained by Algorithm 1 with our autograd, and the samplers
// (ancestral DDPM and DDIM with eta = 0) walk a cloud of points back from N(0, I).
// In two dimensions every quantity can be drawn: the points at each t, the learned
// score field as arrows, each sample's whole path. `diffuse train toy` runs it.
//
// Timesteps follow the engine's convention (diffusion/schedule.h): code t = 0..T-1.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "diffusion/forward_process.h"
#include "diffusion/schedule.h"
#include "nn/linear.h"
#include "nn/module.h"
#include "nn/optim.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace td::diffusion::toy2d {

// ---- the data: (n, 2) float32, centred, each coordinate of roughly unit scale (as
// x_T ~ N(0, I) is), so no step of the process has to change the data's size.

// Two interleaved half circles (scikit-learn's make_moons), plus N(0, noise^2) jitter.
Tensor two_moons(int64_t n, Generator& gen, double noise = 0.05);
// One arm of an Archimedean spiral, r proportional to the angle, plus jitter.
Tensor spiral(int64_t n, Generator& gen, double noise = 0.03);
// By name: "moons" or "spiral" (td::Error naming both otherwise).
Tensor make_points(const std::string& name, int64_t n, Generator& gen);

// ---- the denoiser

// out = W4 silu(W3 silu(W2 silu(W1 [x_t, emb(t)] + b1) + b2) + b3) + b4, with emb(t)
// the sinusoidal embedding of the step (nn/timestep_embedding.h). Its 2 outputs are
// eps, x_0 or v, whichever it was trained to predict.
class Mlp : public nn::Module {
public:
    Mlp(int64_t hidden, Generator& gen, int64_t temb_dim = 16);
    // x: (B, 2) float32, t: (B) int64 -> (B, 2)
    Tensor forward(const Tensor& x, const Tensor& t);
    std::string name() const override { return "Mlp"; }

private:
    int64_t temb_dim_;
    std::shared_ptr<nn::Linear> l1_, l2_, l3_, l4_;
};

// ---- training (Algorithm 1 on points)

struct TrainOptions {
    int64_t steps = 3000;
    int64_t batch = 256;
    float lr = 3e-3f;                         // Adam; cosine-decayed to 0 over the steps
    Prediction prediction = Prediction::Eps;  // what the network outputs
    bool min_snr = false;                     // Min-SNR-gamma weights (forward_process.h), else L_simple
    double snr_gamma = 5.0;
    // A weight per timestep (T of them) multiplying each sample's squared error, e.g. the
    // ELBO's own weights; empty: none (L_simple). Not together with min_snr.
    std::vector<float> t_weights;
    uint64_t seed = 0;  // the batches' points, t and eps
};

// Trains `model` on `data` (N, 2) and returns the loss of every step. on_step(step, loss),
// when given, is called after each step (for a progress line).
std::vector<float> train(Mlp& model, const Schedule& s, const Tensor& data, const TrainOptions& o,
                         const std::function<void(int64_t, float)>& on_step = {});

// The same training one step at a time, its whole state in a file: what `diffuse train
// toy` uses to stop on a time budget and to --resume. (train() is this, run through.)
// The schedule and the data must outlive it; o.steps is the cosine learning rate's length.
class Trainer {
public:
    Trainer(Mlp& model, const Schedule& s, const Tensor& data, const TrainOptions& o);  // td::Error for bad options
    float step();  // Algorithm 1 once; returns the loss (td::Error when it is not finite)
    int64_t steps_done() const { return step_; }
    // The MLP's weights ("model.*"), Adam's moments ("optim.*"), the step and the
    // generator's state: a loaded trainer takes exactly the steps the saved one would have.
    void save_checkpoint(const std::string& path) const;
    void load_checkpoint(const std::string& path);  // td::Error naming the file if it does not fit

private:
    Mlp& model_;
    const Schedule& s_;
    Tensor data_, t_weights_;
    TrainOptions o_;
    nn::Adam opt_;
    Generator gen_;
    int64_t step_ = 0;
};

// The same mean squared error as training, per timestep: for each t in `ts`, the loss
// of the model's output against its target on every point of `data` (fresh eps from gen),
// unweighted, and measured on eps (the model's output turned into eps first), so models
// that predict different things are compared on one scale.
std::vector<float> eps_error_per_t(Mlp& model, Prediction p, const Schedule& s, const Tensor& data,
                                   const std::vector<int64_t>& ts, Generator& gen);

// ---- sampling and the score

// eps_theta(x_t, t) for one t over the batch, whatever the model predicts (no gradients).
Tensor predict_eps(Mlp& model, Prediction p, const Schedule& s, const Tensor& xt, int64_t t);
// The score the model implies (Tweedie): grad_x log q_t(x) = -eps_theta(x, t) / sqrt(1 - alpha_bar_t).
Tensor score(Mlp& model, Prediction p, const Schedule& s, const Tensor& xt, int64_t t);
// An n x n grid of points covering [lo, hi]^2, as (n * n, 2) (where to draw a field's arrows).
Tensor grid_points(float lo, float hi, int64_t n);

// Ancestral sampling (Algorithm 2, sigma_t^2 = beta_tilde_t) over all T steps, from x_T
// (n, 2). `path`, when given, receives x_T and then x_t after every `keep_every` steps
// and the final x_0 (for drawing trajectories).
Tensor sample_ddpm(Mlp& model, Prediction p, const Schedule& s, const Tensor& x_T, Generator& gen,
                   std::vector<Tensor>* path = nullptr, int64_t keep_every = 50);
// DDIM with eta = 0 (deterministic) over `steps` trailing timesteps; `path` gets x_T,
// each x_t it visits, and x_0.
Tensor sample_ddim(Mlp& model, Prediction p, const Schedule& s, const Tensor& x_T, int64_t steps,
                   std::vector<Tensor>* path = nullptr);

// How close two point clouds are: the mean distance from each point of `a` to its
// nearest neighbour in `b` (brute force; fine for a few thousand points). Small when
// every sample lies on the data; symmetric use (a->b and b->a) also catches a sampler
// that covers only part of the data.
double mean_nearest_distance(const Tensor& a, const Tensor& b);

}  // namespace td::diffusion::toy2d
