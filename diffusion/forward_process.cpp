// diffusion/forward_process.cpp: q, its posterior and the prediction targets (see forward_process.h).
#include "diffusion/forward_process.h"

#include <algorithm>

#include "tensor/choice.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion {

namespace {

// table[t] as (B, 1, ..., 1) matching x's rank, after checking x's batch size.
Tensor coef(const Tensor& table, const Tensor& t, const Tensor& x, const char* op) {
    check(x.dim() >= 1 && t.dim() == 1 && x.size(0) == t.size(0), op, ": x ", x.shape(), " and t ", t.shape(),
          " disagree on the batch size");
    return Schedule::at(table, t, x.dim());
}

}  // namespace

// eq. 4: the forward process in one jump, q(x_t | x_0), sampled with the given eps
Tensor q_sample(const Schedule& s, const Tensor& x0, const Tensor& t, const Tensor& eps) {
    check(x0.shape() == eps.shape(), "q_sample: x0 ", x0.shape(), " and eps ", eps.shape());
    // BEGIN SOLUTION q-sample: x_t of q(x_t | x_0) with this eps, one coefficient pair per sample (coef)
    // STUB: (void)s, (void)t;
    // STUB: fail("q_sample: not implemented yet (assignment q-sample)");
    return coef(s.f32.sqrt_alpha_bar, t, x0, "q_sample") * x0 +
           coef(s.f32.sqrt_one_minus_alpha_bar, t, x0, "q_sample") * eps;  // eq. 4
    // END SOLUTION q-sample
}

Tensor posterior_mean(const Schedule& s, const Tensor& x0, const Tensor& xt, const Tensor& t) {
    check(x0.shape() == xt.shape(), "posterior_mean: x0 ", x0.shape(), " and xt ", xt.shape());
    return coef(s.f32.mu_coef_x0, t, x0, "posterior_mean") * x0 +
           coef(s.f32.mu_coef_xt, t, xt, "posterior_mean") * xt;  // eq. 7
}

Tensor posterior_variance(const Schedule& s, const Tensor& t, int64_t rank) {
    return Schedule::at(s.f32.beta_tilde, t, rank);  // eq. 7
}

Posterior q_posterior(const Schedule& s, const Tensor& x0, const Tensor& xt, const Tensor& t) {
    return {posterior_mean(s, x0, xt, t), posterior_variance(s, t, xt.dim())};
}

Tensor predict_x0_from_eps(const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& eps) {
    return (xt - coef(s.f32.sqrt_one_minus_alpha_bar, t, xt, "predict_x0_from_eps") * eps) /
           coef(s.f32.sqrt_alpha_bar, t, xt, "predict_x0_from_eps");
}

Tensor predict_eps_from_x0(const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& x0) {
    return (xt - coef(s.f32.sqrt_alpha_bar, t, xt, "predict_eps_from_x0") * x0) /
           coef(s.f32.sqrt_one_minus_alpha_bar, t, xt, "predict_eps_from_x0");
}

Tensor v_target(const Schedule& s, const Tensor& x0, const Tensor& t, const Tensor& eps) {
    // BEGIN SOLUTION q-sample: v = d x_t / d phi, in terms of alpha_bar_t
    // STUB: (void)s, (void)x0, (void)t, (void)eps;
    // STUB: fail("v_target: not implemented yet (assignment q-sample)");
    return coef(s.f32.sqrt_alpha_bar, t, x0, "v_target") * eps -
           coef(s.f32.sqrt_one_minus_alpha_bar, t, x0, "v_target") * x0;
    // END SOLUTION q-sample
}

Tensor predict_x0_from_v(const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& v) {
    return coef(s.f32.sqrt_alpha_bar, t, xt, "predict_x0_from_v") * xt -
           coef(s.f32.sqrt_one_minus_alpha_bar, t, xt, "predict_x0_from_v") * v;
}

Tensor predict_eps_from_v(const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& v) {
    return coef(s.f32.sqrt_one_minus_alpha_bar, t, xt, "predict_eps_from_v") * xt +
           coef(s.f32.sqrt_alpha_bar, t, xt, "predict_eps_from_v") * v;
}

const Choice<Prediction> kPredictions[] = {{"eps", Prediction::Eps}, {"x0", Prediction::X0}, {"v", Prediction::V}};

Prediction parse_prediction(const std::string& name) { return parse_choice(name, kPredictions, "prediction"); }
std::string prediction_name(Prediction p) { return choice_name(p, kPredictions); }

Tensor training_target(Prediction p, const Schedule& s, const Tensor& x0, const Tensor& t, const Tensor& eps) {
    switch (p) {
        case Prediction::Eps: return eps;
        case Prediction::X0: return x0;
        case Prediction::V: return v_target(s, x0, t, eps);
    }
    fail("training_target: bad prediction");
}

Tensor model_x0(Prediction p, const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& out) {
    switch (p) {
        case Prediction::Eps: return predict_x0_from_eps(s, xt, t, out);
        case Prediction::X0: return out;
        case Prediction::V: return predict_x0_from_v(s, xt, t, out);
    }
    fail("model_x0: bad prediction");
}

Tensor model_eps(Prediction p, const Schedule& s, const Tensor& xt, const Tensor& t, const Tensor& out) {
    switch (p) {
        case Prediction::Eps: return out;
        case Prediction::X0: return predict_eps_from_x0(s, xt, t, out);
        case Prediction::V: return predict_eps_from_v(s, xt, t, out);
    }
    fail("model_eps: bad prediction");
}

Tensor l_simple(const Tensor& prediction, const Tensor& target) {
    check(prediction.shape() == target.shape(), "l_simple: prediction ", prediction.shape(), " and target ",
          target.shape());
    // BEGIN SOLUTION q-sample: L_simple (eq. 14), the mean over all elements
    // STUB: fail("l_simple: not implemented yet (assignment q-sample)");
    Tensor d = prediction - target;
    return mean(d * d);  // eq. 14
    // END SOLUTION q-sample
}

Tensor min_snr_weights(const Schedule& s, const Tensor& t, Prediction p, double gamma) {
    check(gamma > 0, "min_snr_weights: gamma must be > 0, got ", gamma);
    std::vector<int64_t> ts = t.to(Device::CPU).to_vector_i64();
    std::vector<float> w(ts.size());
    for (size_t b = 0; b < ts.size(); ++b) {
        s.check_t(ts[b], "min_snr_weights");
        double snr = s.alpha_bar[ts[b]] / (1.0 - s.alpha_bar[ts[b]]);  // SNR(t)
        double clipped = std::min(snr, gamma);
        w[b] = (float)(p == Prediction::Eps ? clipped / snr : p == Prediction::X0 ? clipped : clipped / (snr + 1.0));
    }
    return Tensor::from_vector(w, {(int64_t)w.size()}).to(t.device());  // beside t, where the loss is computed
}

Tensor l_weighted(const Tensor& prediction, const Tensor& target, const Tensor& weights) {
    check(prediction.shape() == target.shape() && prediction.dim() >= 1, "l_weighted: prediction ", prediction.shape(),
          " and target ", target.shape());
    check(weights.dim() == 1 && weights.size(0) == prediction.size(0), "l_weighted: weights ", weights.shape(),
          " must be (B) with B = ", prediction.size(0));
    Tensor d = prediction - target;
    Tensor per_sample = mean((d * d).reshape({prediction.size(0), -1}), {1});  // (B)
    return mean(per_sample * weights);
}

}  // namespace td::diffusion
