// tools/ddpm_figures.h: the pictures of a diffusion run, shared by `diffuse train ddpm`
// and `diffuse sample`: sample grids, the denoising strip (x_T ... x_0), the forward
// strip (x_0 ... x_T), all written as PNG (diffusion/data/image_io.h).
#pragma once
#include <string>

#include "diffusion/sampler.h"
#include "diffusion/unet.h"

namespace td::cli {

// Draws n samples in batches of at most `batch` (x_T from gen), returns (n, C, H, W) in
// [-1, 1]. on_batch(done) is called after each batch (for a progress line).
Tensor draw_samples(diffusion::UNet& model, const diffusion::Schedule& s, const diffusion::SamplerOptions& o,
                    int64_t n, Generator& gen, int64_t batch = 128,
                    const std::function<void(int64_t done)>& on_batch = {});

// One row per sample (n rows): x_T, then x_t after evenly spaced steps, ..., x_0
// (`columns` images per row). The sampler's own timesteps decide where the columns fall.
void write_denoise_strip(const std::string& path, diffusion::UNet& model, const diffusion::Schedule& s,
                         const diffusion::SamplerOptions& o, int64_t n, int64_t columns, Generator& gen);

// One row per image of x0 (N, C, H, W): x_0, then q_sample at evenly spaced t up to
// t = T-1 (eq. 4), the same eps along a row so the image visibly dissolves.
void write_forward_strip(const std::string& path, const diffusion::Schedule& s, const Tensor& x0, int64_t columns,
                         Generator& gen);

// The PNG scale that makes a (H x W) image about 56 pixels on screen (28x28 digits: 2).
int64_t display_scale(int64_t H);

}  // namespace td::cli
