// tools/ddpm_figures.h: the pictures of a diffusion run, shared by `diffuse train ddpm|ldm`
// and `diffuse sample`: sample grids, the denoising strip (x_T ... x_0), the forward
// strip (x_0 ... x_T), all written as PNG (diffusion/data/image_io.h), and the loss per
// timestep on held-out images (loss_per_t.png and .csv). A latent model's pictures are
// decoded to pixels by its autoencoder (LoadedModel::decode).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "diffusion/data/dataset.h"
#include "diffusion/loss_per_timestep.h"
#include "diffusion/model_file.h"
#include "diffusion/sampler.h"

namespace td::cli {

// Draws n samples in batches of at most `batch` on the model's device; returns pixels
// (n, C, H, W) in [-1, 1] on the CPU. y: the condition of each sample (undefined: none);
// guidance: CFG's w, or autoguidance's for an unconditional model with a guide
// (diffusion/guidance.h); on_batch(done) after each batch.
Tensor draw_samples(const diffusion::LoadedModel& m, const diffusion::SamplerOptions& o, int64_t n, Generator& gen,
                    const Tensor& y = Tensor(), float guidance = 1.0f, int64_t batch = 128,
                    const std::function<void(int64_t done)>& on_batch = {});

// One row per sample: x_T, then x_t after evenly spaced sampler steps, ..., x_0.
void write_denoise_strip(const std::string& path, const diffusion::LoadedModel& m, const diffusion::SamplerOptions& o,
                         int64_t n, int64_t columns, Generator& gen, const Tensor& y = Tensor(), float guidance = 1.0f);

// One row per image of x0 (in the model's space): x_0, then q_sample at evenly spaced t up
// to T-1 (eq. 4), the same eps along a row so the image visibly dissolves.
void write_forward_strip(const std::string& path, const diffusion::LoadedModel& m, const Tensor& x0, int64_t columns,
                         Generator& gen);

// The condition of `n` samples of class c (a text model: the class's first caption), or
// of a prompt (text models).
Tensor class_condition(const diffusion::LoadedModel& m, int64_t c, int64_t n);
Tensor prompt_condition(const diffusion::LoadedModel& m, const std::string& prompt, int64_t n);

// ---- where the model errs: the loss per timestep (diffusion/loss_per_timestep.h)

// Images the model never trained on, in its own space, with their conditions.
struct HeldOutImages {
    Tensor x0;         // (n, C, H, W): pixels in [-1, 1], or a latent model's scaled codes
    Tensor y;          // the condition of each (labels or caption tokens); undefined: none
    std::string what;  // "256 held-out mnist images", for the page and the log
};
// The data set's "test" split; where it has none, its training split (`held_out` false).
diffusion::Dataset held_out_split(const std::string& data, const diffusion::DataOptions& options, bool& held_out);

// n images spread evenly over held_out_split's images; `what` says which.
HeldOutImages held_out_images(const diffusion::LoadedModel& m, const std::string& data,
                              const diffusion::DataOptions& options, int64_t n = 256);

// Measures the curve on `held` and writes DIR/loss_per_t.csv (t 0-based, loss, eps_mse,
// x0_mse) and DIR/loss_per_t.png (against log(t + 1), log scale). Returns the curve.
std::vector<diffusion::LossAtT> write_loss_per_t(const std::string& dir, const diffusion::LoadedModel& m,
                                                 const HeldOutImages& held);

// The figure's caption for the run's page: what is drawn, where the loss is highest and lowest.
std::string describe_loss_per_t(const std::vector<diffusion::LossAtT>& curve, const HeldOutImages& held);

// `diffuse eval --loss-per-t RUN`: the same for a trained run (or its weights file),
// written into out_dir; data_dir: the data set's folder, if not data/<name>/.
void loss_per_t_of_run(const std::string& run, const std::string& out_dir, const std::string& data_dir);

// The guidance scales of the sweep grids (guidance.png, `diffuse sample --sweep`).
inline const std::vector<float> kGuidanceSweep = {0.0f, 1.0f, 3.0f, 7.0f};

// The conditions of a grid of a conditional model: classes 0..K-1, each `per_class` times in a row.
Tensor class_grid_conditions(const diffusion::LoadedModel& m, int64_t K, int64_t per_class);

// A row of classes 0..K-1 per w of kGuidanceSweep, the same x_T down each column.
Tensor guidance_sweep(const diffusion::LoadedModel& m, const diffusion::SamplerOptions& o, int64_t K, uint64_t seed,
                      int64_t batch = 128, const std::function<void(int64_t done)>& on_row = {});

// The PNG scale that makes a (H x W) image about 56 pixels on screen (28x28 digits: 2).
int64_t display_scale(int64_t H);
// The columns of a grid of n images that is about square.
int64_t grid_columns(int64_t n);

}  // namespace td::cli
