// tools/ddpm_figures.cpp: see ddpm_figures.h.
#include "tools/ddpm_figures.h"

#include <algorithm>

#include "diffusion/data/image_io.h"
#include "diffusion/forward_process.h"
#include "diffusion/captions.h"
#include "diffusion/text_encoder.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::cli {

using namespace td::diffusion;

int64_t display_scale(int64_t H) { return std::clamp<int64_t>(56 / std::max<int64_t>(H, 1), 1, 4); }

namespace {

// Clipping the predicted x_0 to [-1, 1] is a prior about pixels. A latent model's x_0 is
// a unit-variance code with no bounds (a third of its values lie outside [-1, 1]):
// clipping it wrecks every sample, and LDM's samplers do not clip. So never for latents.
SamplerOptions for_model(const LoadedModel& m, SamplerOptions o) {
    if (m.info.latent()) o.clip_x0 = false;
    return o;
}

// Rows [a, b) of a condition on the model's device, or nothing for an unconditional model.
Tensor rows(const Tensor& y, int64_t a, int64_t b, Device device) {
    return y.defined() ? y.slice(0, a, b).to(device) : Tensor();
}

// x_0 or x_t in the model's space -> pixels on the CPU, for the PNG writers.
Tensor pixels(const LoadedModel& m, const Tensor& x) { return m.decode(x).to(Device::CPU); }

// (n, columns, C, H, W) -> a grid of n rows
void write_rows(const std::string& path, const std::vector<Tensor>& cols) {
    Tensor grid = stack(cols, 1);
    Shape sh = grid.shape();
    write_png_grid(path, clamp(grid, -1.0f, 1.0f).reshape({sh[0] * sh[1], sh[2], sh[3], sh[4]}), (int64_t)cols.size(),
                   display_scale(sh[3]));
}

}  // namespace

Tensor draw_samples(const LoadedModel& m, const SamplerOptions& options, int64_t n, Generator& gen, const Tensor& y,
                    float guidance, int64_t batch, const std::function<void(int64_t)>& on_batch) {
    SamplerOptions o = for_model(m, options);
    check(n >= 1, "draw_samples: n must be >= 1, got ", n);
    if (y.defined()) check(y.size(0) == n, "draw_samples: ", n, " samples but ", y.size(0), " conditions");
    std::vector<Tensor> parts;
    Device device = m.device();  // the loop runs where the model is; the pixels come back to the CPU
    for (int64_t done = 0; done < n;) {
        int64_t b = std::min(batch, n - done);
        Tensor x_T = randn(m.noise_shape(b), gen, 0.0f, 1.0f, device);  // x_T ~ N(0, I), pixels or latents
        Tensor x_0 = sample(m.schedule, m.denoiser(rows(y, done, done + b, device), guidance), x_T, o, gen);
        parts.push_back(pixels(m, x_0));
        done += b;
        if (on_batch) on_batch(done);
    }
    return parts.size() == 1 ? parts[0] : cat(parts, 0);
}

void write_denoise_strip(const std::string& path, const LoadedModel& m, const SamplerOptions& options, int64_t n,
                         int64_t columns, Generator& gen, const Tensor& y, float guidance) {
    SamplerOptions o = for_model(m, options);
    Device device = m.device();
    Tensor x_T = randn(m.noise_shape(n), gen, 0.0f, 1.0f, device);
    int64_t steps = o.steps;
    // keep x after steps k * steps / (columns - 1), k = 1 .. columns-1 (the last is x_0)
    std::vector<Tensor> cols = {pixels(m, x_T)};
    int64_t next_k = 1;
    auto keep = [&](int64_t i, int64_t, const Tensor& x) {
        while (next_k < columns && i >= next_k * steps / (columns - 1)) {
            cols.push_back(pixels(m, x));  // a latent x_t is shown through the decoder
            ++next_k;
        }
    };
    sample(m.schedule, m.denoiser(rows(y, 0, n, device), guidance), x_T, o, gen, keep);
    write_rows(path, cols);
}

void write_forward_strip(const std::string& path, const LoadedModel& m, const Tensor& x0, int64_t columns,
                         Generator& gen) {
    int64_t n = x0.size(0);
    Device device = m.device();
    Tensor x = x0.to(device);
    Tensor eps = randn(x0.shape(), gen, 0.0f, 1.0f, device);
    std::vector<Tensor> cols = {pixels(m, x)};
    for (int64_t k = 1; k < columns; ++k) {
        int64_t t = k * (m.schedule.T - 1) / (columns - 1);  // evenly spaced, ending at T-1 (paper's T)
        Tensor tt = Tensor::from_vector_i64(std::vector<int64_t>(n, t), {n}).to(device);
        cols.push_back(pixels(m, q_sample(m.schedule, x, tt, eps)));  // eq. 4
    }
    write_rows(path, cols);
}

Tensor class_condition(const LoadedModel& m, int64_t c, int64_t n) {
    const UNetConfig& u = m.info.unet;
    if (u.cond == Conditioning::Class) return Tensor::from_vector_i64(std::vector<int64_t>(n, c), {n});
    check(u.cond == Conditioning::Text, "class_condition: the model is not conditional");
    return prompt_condition(m, caption(m.info.data, c, 0), n);
}

Tensor prompt_condition(const LoadedModel& m, const std::string& prompt, int64_t n) {
    check(m.info.unet.cond == Conditioning::Text, "prompt_condition: the model is not text-conditional");
    return m.unet->text_encoder().tokenize(std::vector<std::string>(n, prompt));
}

}  // namespace td::cli
