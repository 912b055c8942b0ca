// tools/ddpm_figures.cpp: see ddpm_figures.h.
#include "tools/ddpm_figures.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "diffusion/data/image_io.h"
#include "diffusion/forward_process.h"
#include "diffusion/captions.h"
#include "diffusion/latent.h"
#include "diffusion/text_encoder.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "tools/metrics.h"
#include "tools/plot.h"
#include "tools/progress.h"  // fmt
#include "tools/training_run.h"

namespace td::cli {

using namespace td::diffusion;

int64_t display_scale(int64_t H) { return std::clamp<int64_t>(56 / std::max<int64_t>(H, 1), 1, 4); }
int64_t grid_columns(int64_t n) { return std::max<int64_t>(1, (int64_t)std::ceil(std::sqrt((double)n))); }

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

Dataset held_out_split(const std::string& data, const DataOptions& options, bool& held_out) {
    try {
        held_out = true;
        return load_dataset(data, "test", options);
    } catch (const Error&) {  // a folder of images without test/: the training images are all there is
        held_out = false;
        return load_dataset(data, "train", options);
    }
}

HeldOutImages held_out_images(const LoadedModel& m, const std::string& data, const DataOptions& options, int64_t n) {
    check(n >= 1, "held_out_images: n must be >= 1, got ", n);
    bool held_out = true;
    Dataset d = held_out_split(data, options, held_out);
    std::string split = held_out ? "held-out" : "training (the data set has no held-out split)";
    n = std::min(n, d.size());
    std::vector<int64_t> index;  // spread over the split: the classes come in blocks in some files
    for (int64_t i = 0; i < n; ++i) index.push_back(i * d.size() / n);
    Tensor pick = Tensor::from_vector_i64(index, {n});
    HeldOutImages h;
    h.x0 = index_select(d.images, 0, pick);
    if (m.info.latent()) {  // the codes the UNet was trained on: scale * E(x) (diffusion/latent.h)
        check(m.vae != nullptr, "held_out_images: a latent model without its autoencoder");
        h.x0 = encode_latents(*m.vae, h.x0) * (float)m.info.scale_factor;
    }
    const UNetConfig& u = m.info.unet;
    if (u.cond != Conditioning::None) {
        std::vector<int64_t> all = d.labels.to_vector_i64(), labels;
        for (int64_t i : index) labels.push_back(all[i]);
        if (u.cond == Conditioning::Class) {
            h.y = Tensor::from_vector_i64(labels, {n});
        } else {  // each image's plainest caption (diffusion/captions.h)
            std::vector<std::string> captions;
            for (int64_t c : labels) captions.push_back(caption(m.info.data, c, 0));
            h.y = m.unet->text_encoder().tokenize(captions);
        }
    }
    h.what = std::to_string(n) + " " + split + " " + d.name + " images";
    return h;
}

// The timesteps the curve is measured at: n (or a few fewer: distinct ones) spaced evenly
// in log t, so the first steps, where a model's errors differ most, get as many points as
// the last hundreds.
static std::vector<int64_t> loss_per_t_timesteps(int64_t T, int64_t n = 16) {
    check(T >= 2 && n >= 2, "loss_per_t_timesteps: need T >= 2 and n >= 2, got T = ", T, ", n = ", n);
    std::vector<int64_t> ts;
    for (int64_t i = 0; i < n; ++i) {
        // the paper's t = T^(i / (n-1)) runs from 1 to T; the engine's t is one less
        int64_t t = std::llround(std::pow((double)T, (double)i / (double)(n - 1))) - 1;
        if (ts.empty() || t > ts.back()) ts.push_back(std::min(t, T - 1));
    }
    return ts;
}

std::vector<LossAtT> write_loss_per_t(const std::string& dir, const LoadedModel& m, const HeldOutImages& held) {
    std::vector<LossAtT> curve = loss_per_timestep(m, held.x0, loss_per_t_timesteps(m.info.T), /*seed=*/0, held.y);
    std::string csv = "t,loss,eps_mse,x0_mse\n";
    plot::Series loss{{}, {}, 0x1f77b4}, eps{{}, {}, 0xff7f0e}, x0{{}, {}, 0x2ca02c};
    for (const LossAtT& r : curve) {
        csv += std::to_string(r.t) + "," + cell(r.target_mse) + "," + cell(r.eps_mse) + "," + cell(r.x0_mse) + "\n";
        float x = (float)std::log10((double)(r.t + 1));  // log t, with t = 0 at 0
        for (plot::Series* s : {&loss, &eps, &x0}) s->x.push_back(x);
        loss.y.push_back((float)r.target_mse);
        eps.y.push_back((float)r.eps_mse);
        x0.y.push_back((float)r.x0_mse);
    }
    write_text_file(dir + "/loss_per_t.csv", csv);
    plot::Axes axes;
    axes.xlabel = "log10(t + 1), t = 0 ... " + std::to_string(m.info.T - 1);
    axes.ylabel = "mean squared error";
    axes.log_y = true;
    plot::line_plot(dir + "/loss_per_t.png", {eps, x0, loss}, axes);  // the loss drawn last, on top
    return curve;
}

std::string describe_loss_per_t(const std::vector<LossAtT>& curve, const HeldOutImages& held) {
    check(!curve.empty(), "describe_loss_per_t: an empty curve");
    auto by_loss = [](const LossAtT& a, const LossAtT& b) { return a.target_mse < b.target_mse; };
    const LossAtT& hi = *std::max_element(curve.begin(), curve.end(), by_loss);
    const LossAtT& lo = *std::min_element(curve.begin(), curve.end(), by_loss);
    return fmt(
        "Where the model errs: L_simple (blue) at %zu timesteps spaced evenly in log t, on %s with one "
        "eps for all, and the error of the eps (orange) and of the x_0 (green) it implies; the loss is "
        "highest at t = %lld (%.3g) and lowest at t = %lld (%.3g) (loss_per_t.csv).",
        curve.size(), held.what.c_str(), (long long)hi.t, hi.target_mse, (long long)lo.t, lo.target_mse);
}

namespace {

// The run's --data as its config.txt holds it (a folder's whole path; the model file keeps
// only its name), or `name` when there is no such line.
std::string data_of_run(const std::string& dir, const std::string& name) {
    std::ifstream in(dir + "/config.txt");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("data = ", 0) == 0) return line.substr(7);
    return name;
}

}  // namespace

void loss_per_t_of_run(const std::string& run, const std::string& out_dir, const std::string& data_dir) {
    namespace fs = std::filesystem;
    check(fs::exists(run), run,
          ": no such run folder (--loss-per-t takes a run folder of `diffuse train ddpm|ldm`"
          " or its model.safetensors)");
    std::string weights = fs::is_directory(run) ? run + "/model.safetensors" : run;
    check(fs::exists(weights), weights, ": no such file (the run has not finished training)");
    LoadedModel m = load_model(weights);
    DataOptions options;  // a folder of images is read at the size the model was trained on
    options.data_dir = data_dir;
    options.image_size = m.info.latent() ? m.info.vae.image_size : m.info.unet.image_size;
    options.channels = m.info.latent() ? m.info.vae.in_channels : m.info.unet.in_channels;
    std::string data = data_of_run(fs::path(weights).parent_path().string(), m.info.data);
    HeldOutImages held = held_out_images(m, data, options);
    fs::create_directories(out_dir);
    std::vector<LossAtT> curve = write_loss_per_t(out_dir, m, held);
    std::printf("%-6s %-12s %-12s %-12s\n", "t", "loss", "eps_mse", "x0_mse");
    for (const LossAtT& r : curve)
        std::printf("%-6lld %-12.5g %-12.5g %-12.5g\n", (long long)r.t, r.target_mse, r.eps_mse, r.x0_mse);
    std::printf("%s\nwrote %s/loss_per_t.png and loss_per_t.csv\n", describe_loss_per_t(curve, held).c_str(),
                out_dir.c_str());
}

Tensor class_condition(const LoadedModel& m, int64_t c, int64_t n) {
    const UNetConfig& u = m.info.unet;
    if (u.cond == Conditioning::Class) return Tensor::from_vector_i64(std::vector<int64_t>(n, c), {n});
    check(u.cond == Conditioning::Text, "class_condition: the model is not conditional");
    return prompt_condition(m, caption(m.info.data, c, 0), n);
}

Tensor class_grid_conditions(const LoadedModel& m, int64_t K, int64_t per_class) {
    std::vector<Tensor> ys;
    for (int64_t c = 0; c < K; ++c) ys.push_back(class_condition(m, c, per_class));
    return cat(ys, 0);
}

Tensor guidance_sweep(const LoadedModel& m, const SamplerOptions& o, int64_t K, uint64_t seed, int64_t batch,
                      const std::function<void(int64_t)>& on_row) {
    std::vector<Tensor> rows;
    for (float w : kGuidanceSweep) {
        Generator g(seed);
        rows.push_back(draw_samples(m, o, K, g, class_grid_conditions(m, K, 1), w, batch));
        if (on_row) on_row((int64_t)rows.size() * K);
    }
    return cat(rows, 0);
}

Tensor prompt_condition(const LoadedModel& m, const std::string& prompt, int64_t n) {
    check(m.info.unet.cond == Conditioning::Text, "prompt_condition: the model is not text-conditional");
    return m.unet->text_encoder().tokenize(std::vector<std::string>(n, prompt));
}

}  // namespace td::cli
