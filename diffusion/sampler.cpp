// diffusion/sampler.cpp: the DDPM and DDIM loops (see sampler.h).
#include "diffusion/sampler.h"

#include <algorithm>

#include "autograd/node.h"
#include "autograd/trace.h"
#include "tensor/choice.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion {

const Choice<Sampler> kSamplers[] = {{"ddpm", Sampler::Ddpm}, {"ddim", Sampler::Ddim}};

Sampler parse_sampler(const std::string& name) { return parse_choice(name, kSamplers, "sampler"); }
std::string sampler_name(Sampler s) { return choice_name(s, kSamplers); }

std::vector<Spacing> spacing_choices(Sampler sampler) {
    if (sampler == Sampler::Ddim) return {Spacing::Trailing, Spacing::Linspace, Spacing::Leading};
    return {Spacing::Linspace, Spacing::Trailing};
}

Spacing sampler_spacing(const SamplerOptions& o) {
    std::vector<Spacing> choices = spacing_choices(o.sampler);
    if (!o.spacing) return choices.front();
    std::string list;
    for (Spacing c : choices) list += (list.empty() ? "" : ", ") + spacing_name(c);
    check(std::find(choices.begin(), choices.end(), *o.spacing) != choices.end(), "sampler: spacing '",
          spacing_name(*o.spacing), "' does not fit ", sampler_name(o.sampler), " (", sampler_name(o.sampler),
          " takes ", list, ", or auto: ", spacing_name(choices.front()), ")");
    return *o.spacing;
}

void check_sampler_options(const SamplerOptions& o, int64_t T) {
    check(o.steps >= 1 && o.steps <= T, "sampler: steps must be in [1, T = ", T, "], got ", o.steps);
    check(o.eta >= 0.0, "sampler: eta must be >= 0, got ", o.eta);
    sampler_spacing(o);
}

std::vector<int64_t> sampling_timesteps(const SamplerOptions& o, int64_t T) {
    check_sampler_options(o, T);
    std::vector<int64_t> ts = spaced_timesteps(sampler_spacing(o), T, o.steps);  // ascending; every t when steps = T
    return {ts.rbegin(), ts.rend()};
}

std::vector<double> respaced_betas(const Schedule& s, const std::vector<int64_t>& ts) {
    std::vector<double> betas;
    double prev = 1.0;  // alpha_bar before the first kept step: x_0 itself
    for (int64_t t : ts) {
        s.check_t(t, "respaced_betas");
        betas.push_back(1.0 - s.alpha_bar[t] / prev);
        prev = s.alpha_bar[t];
    }
    return betas;
}

namespace {

// t for every sample of x, on x's device (the model's)
Tensor full_t(const Tensor& x, int64_t t) {
    int64_t B = x.size(0);
    return Tensor::from_vector_i64(std::vector<int64_t>(B, t), {B}).to(x.device());
}

// eps_theta(x_t, t), whatever the network predicts. Its input and output are trace
// points, around the network's own (diffuse trace sample lists them in this order).
Tensor eps_theta(const Schedule& s, const Denoiser& model, const Tensor& x, int64_t t, const SamplerOptions& o) {
    if (tracing())
        trace("x_t", x,
              (o.sampler == Sampler::Ddim ? "DDIM" : "DDPM") + std::string(": the sample at t = ") + std::to_string(t));
    Tensor tt = full_t(x, t);
    Tensor out = model(x, tt);
    check(out.shape() == x.shape(), "sampler: the model returned ", out.shape(), " for x_t ", x.shape());
    Tensor eps = o.prediction == Prediction::Eps ? out : model_eps(o.prediction, s, x, tt, out);
    trace("eps_theta", eps, "the model's noise estimate eps_theta(x_t, t)");
    return eps;
}

// What one step of a loop used and made.
struct Step {
    int64_t i;          // steps done: 1..S
    int64_t t, t_prev;  // the timestep denoised, and the one reached (-1: x_0)
    Tensor x_t, eps, z, x_prev;
};

// The per-step hook of both loops: the step's remaining trace points (diffuse trace
// sample), then the caller's on_step (progress, intermediate images).
void after_step(const Schedule& s, const SamplerOptions& o, const Step& st, const StepCallback& on_step) {
    if (tracing()) {
        const bool ddim = o.sampler == Sampler::Ddim;
        if (ddim)
            trace("x_0_pred", predict_x0_from_eps(s, st.x_t, st.t, st.eps),
                  "DDIM eq. 12, the predicted x_0: (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)");
        trace("z", st.z,
              ddim ? "DDIM eq. 12: z ~ N(0, I), scaled by sigma_t (eq. 16); none when eta = 0"
                   : "Algorithm 2, line 3: z ~ N(0, I) if t > 1, else z = 0");
        trace("x_prev", st.x_prev,
              ddim        ? "DDIM eq. 12: the sample at t_prev = " + std::to_string(st.t_prev)
              : o.clip_x0 ? "DDPM eqs. 4 + 7: x_{t-1} = mu_tilde(x_t, clip(x_0)) + sigma_t z"
                          : "DDPM Algorithm 2, line 4: x_{t-1}");
    }
    if (on_step) on_step(st.i, st.t, st.x_prev);
}

// DDIM (Song et al. 2021) over the kept timesteps. The last pair is (t_0, -1): after its
// lowest kept step (19 for trailing, 0 for leading) the walk lands on x_0 itself, eq. 12
// with alpha_bar_prev = 1 (the paper's alpha_0 = 1), where sigma = 0 and x_prev is the
// predicted x_0.
Tensor ddim_loop(const Schedule& s, const Denoiser& model, Tensor x, const std::vector<int64_t>& ts_desc,
                 const SamplerOptions& o, Generator& gen, const StepCallback& on_step) {
    int64_t i = 0;
    for (auto [t, t_prev] : ddim_step_pairs({ts_desc.rbegin(), ts_desc.rend()})) {
        Tensor eps = eps_theta(s, model, x, t, o);
        double sigma = ddim_sigma(s, t, t_prev, o.eta);  // eq. 16
        Tensor z = sigma > 0.0 ? randn(x.shape(), gen, 0.0f, 1.0f, x.device()) : Tensor();
        Tensor x_prev = ddim_step(s, x, t, t_prev, eps, o.eta, z, o.clip_x0);  // eq. 12
        after_step(s, o, {++i, t, t_prev, x, eps, z, x_prev}, on_step);
        x = x_prev;
    }
    return x;
}

// DDPM Algorithm 2 on the respaced process (the full one when steps = T). Its step i is
// the original process's timestep ts_desc[k]; the model is called with the original t.
Tensor ddpm_loop(const Schedule& s, const Denoiser& model, Tensor x, const std::vector<int64_t>& ts_desc,
                 const SamplerOptions& o, Generator& gen, const StepCallback& on_step) {
    const int64_t S = (int64_t)ts_desc.size();
    Schedule r = S == s.T ? s : Schedule(respaced_betas(s, {ts_desc.rbegin(), ts_desc.rend()}));
    for (int64_t k = 0; k < S; ++k) {  // line 2: t = T, ..., 1
        int64_t i = S - 1 - k;         // t in the respaced process
        Tensor eps = eps_theta(s, model, x, ts_desc[k], o);
        Tensor z = i > 0 ? randn(x.shape(), gen, 0.0f, 1.0f, x.device()) : Tensor();      // line 3
        Tensor x_prev = o.clip_x0 ? ddpm_step_clipped(r, x, i, eps, o.variance, z, true)  // eqs. 4 + 7, x_0 clipped
                                  : ddpm_step_algorithm2(r, x, i, eps, o.variance, z);    // line 4
        after_step(s, o, {k + 1, ts_desc[k], k + 1 < S ? ts_desc[k + 1] : -1, x, eps, z, x_prev}, on_step);
        x = x_prev;
    }
    return x;
}

}  // namespace

Tensor sample(const Schedule& s, const Denoiser& model, const Tensor& x_T, const SamplerOptions& o, Generator& gen,
              const StepCallback& on_step) {
    NoGradGuard no_grad;
    std::vector<int64_t> ts = sampling_timesteps(o, s.T);  // descending
    return o.sampler == Sampler::Ddim ? ddim_loop(s, model, x_T, ts, o, gen, on_step)
                                      : ddpm_loop(s, model, x_T, ts, o, gen, on_step);
}

}  // namespace td::diffusion
