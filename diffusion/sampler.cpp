// diffusion/sampler.cpp: the DDPM and DDIM loops (see sampler.h).
#include "diffusion/sampler.h"

#include <algorithm>

#include "autograd/node.h"
#include "autograd/trace.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion {

std::vector<std::string> spacing_choices(const std::string& sampler) {
    if (sampler == "ddim") return {"trailing", "linspace", "leading"};
    if (sampler == "ddpm") return {"linspace", "trailing"};
    fail("sampler: unknown sampler '", sampler, "' (ddpm, ddim)");
}

Spacing sampler_spacing(const SamplerOptions& o) {
    std::vector<std::string> choices = spacing_choices(o.sampler);
    if (o.spacing == "auto") return parse_spacing(choices.front());
    std::string list;
    for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
    check(std::find(choices.begin(), choices.end(), o.spacing) != choices.end(), "sampler: spacing '", o.spacing,
          "' does not fit ", o.sampler, " (", o.sampler, " takes ", list, ", or auto: ", choices.front(), ")");
    return parse_spacing(o.spacing);
}

void check_sampler_options(const SamplerOptions& o, int64_t T) {
    check(o.sampler == "ddpm" || o.sampler == "ddim", "sampler: unknown sampler '", o.sampler, "' (ddpm, ddim)");
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

// eps_theta(x_t, t), whatever the network predicts.
Tensor eps_of(const Schedule& s, const Denoiser& model, const Tensor& x, int64_t t, Prediction p) {
    Tensor tt = full_t(x, t);
    Tensor out = model(x, tt);
    check(out.shape() == x.shape(), "sampler: the model returned ", shape_str(out.shape()), " for x_t ",
          shape_str(x.shape()));
    return p == Prediction::Eps ? out : model_eps(p, s, x, tt, out);
}

}  // namespace

Tensor sample(const Schedule& s, const Denoiser& model, const Tensor& x_T, const SamplerOptions& o, Generator& gen,
              const StepCallback& on_step) {
    NoGradGuard no_grad;
    std::vector<int64_t> ts = sampling_timesteps(o, s.T);  // descending
    Tensor x = x_T;
    if (o.sampler == "ddim") {
        int64_t i = 0;
        // The last pair is (t_0, -1): after its lowest kept step (19 for trailing, 0 for
        // leading) the walk lands on x_0 itself, eq. 12 with alpha_bar_prev = 1 (the paper's
        // alpha_0 = 1), where sigma = 0 and x_prev is the predicted x_0.
        for (auto [t, t_prev] : ddim_step_pairs({ts.rbegin(), ts.rend()})) {
            if (tracing()) trace("x_t", x, "DDIM: the sample at t = " + std::to_string(t));
            Tensor eps = eps_of(s, model, x, t, o.prediction);
            trace("eps_theta", eps, "the model's noise estimate eps_theta(x_t, t)");
            if (tracing()) trace("x_0_pred", predict_x0_from_eps(s, x, full_t(x, t), eps),
                                 "DDIM eq. 12, the predicted x_0: (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)");
            double sigma = ddim_sigma(s, t, t_prev, o.eta);      // eq. 16
            Tensor z = sigma > 0.0 ? randn(x.shape(), gen, 0.0f, 1.0f, x.device()) : Tensor();
            trace("z", z, "DDIM eq. 12: z ~ N(0, I), scaled by sigma_t (eq. 16); none when eta = 0");
            x = ddim_step(s, x, t, t_prev, eps, o.eta, z, o.clip_x0);  // eq. 12
            if (tracing()) trace("x_prev", x, "DDIM eq. 12: the sample at t_prev = " + std::to_string(t_prev));
            if (on_step) on_step(++i, t, x);
        }
        return x;
    }
    // DDPM: the respaced process (the full one when steps = T). Its step i is the
    // original process's timestep ts_asc[i]; the model is called with the original t.
    std::vector<int64_t> asc(ts.rbegin(), ts.rend());
    Schedule r = (int64_t)asc.size() == s.T ? s : Schedule(respaced_betas(s, asc));
    for (size_t k = 0; k < ts.size(); ++k) {
        int64_t i = (int64_t)(ts.size() - 1 - k);  // index in the respaced process
        if (tracing()) trace("x_t", x, "DDPM: the sample at t = " + std::to_string(ts[k]));
        Tensor eps = eps_of(s, model, x, ts[k], o.prediction);
        trace("eps_theta", eps, "the model's noise estimate eps_theta(x_t, t)");
        Tensor z = i > 0 ? randn(x.shape(), gen, 0.0f, 1.0f, x.device()) : Tensor();
        trace("z", z, "Algorithm 2, line 3: z ~ N(0, I) if t > 1, else z = 0");
        x = o.clip_x0 ? ddpm_step_clipped(r, x, i, eps, o.variance, z, true)  // eqs. 4 + 7, x_0 clipped
                      : ddpm_step_algorithm2(r, x, i, eps, o.variance, z);    // Algorithm 2, line 4
        if (tracing()) trace("x_prev", x, o.clip_x0 ? "DDPM eqs. 4 + 7: x_{t-1} = mu_tilde(x_t, clip(x_0)) + sigma_t z"
                                                    : "DDPM Algorithm 2, line 4: x_{t-1}");
        if (on_step) on_step((int64_t)k + 1, ts[k], x);
    }
    return x;
}

}  // namespace td::diffusion
