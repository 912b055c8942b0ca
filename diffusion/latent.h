// diffusion/latent.h: the data side of latent diffusion (Rombach et al. 2022, sec. 3).
//
// A latent diffusion model is a DDPM trained on z = E(x), the codes of a frozen
// autoencoder (diffusion/vae.h), instead of on pixels x. Since the autoencoder never
// changes while the diffusion model trains, each training image's code is computed once
// and kept in a cache file beside the autoencoder:
//
//   runs/VAE/latents/mnist-train.safetensors   "latents" (N, c, h, w), "labels" (N)
//
// and a DDPM is trained on those codes, scaled to unit variance (latent_scale_factor).
// Sampling runs the reverse process in the latent space and decodes once at the end:
// x = D(z_0 / scale).
#pragma once
#include <memory>
#include <string>

#include "diffusion/data/dataset.h"
#include "diffusion/vae.h"

namespace td::diffusion {

// z = the mean of q(z | x) for every image, in batches, without gradients. The mean
// (the posterior's mode) rather than a sample: LDM's trainer draws z ~ q(z | x) afresh
// each step, but with the tiny KL weight those posteriors are narrow (sigma of a few
// hundredths against a latent std near 1), and a deterministic code is what a cache can
// hold. images: (N, C, H, W) in [-1, 1] -> (N, z_channels, H / f, W / f). The batches run
// on the autoencoder's device; the codes come back to the CPU (a data set's home).
Tensor encode_latents(VAE& vae, const Tensor& images, int64_t batch = 256);

// 1 / std(z) over every element of the training latents. The diffusion process
// assumes data of about unit variance (x_T ~ N(0, I) must look like fully-noised
// data); an autoencoder's codes have whatever scale it learned. Stable Diffusion's
// 0.18215 is exactly this number, measured once on its autoencoder's latents of a
// batch of training images and then frozen into the config.
double latent_scale_factor(const Tensor& latents);

// A cache file: the latents of one data set's split under one autoencoder.
struct LatentCache {
    Tensor latents;          // (N, c, h, w), unscaled
    Tensor labels;           // (N) int64
    std::string dataset;     // "mnist", ...
    std::string split;       // "train" / "test"
    std::string vae_digest;  // file_digest() of the autoencoder's weights file
};
void save_latent_cache(const std::string& path, const LatentCache& cache);
// Throws td::Error naming the file when it is not a latent cache.
LatentCache load_latent_cache(const std::string& path);

// The latents of `data` under the autoencoder stored in `vae_file`: read from
// cache_dir/<dataset>-<split>.safetensors when that file was made from the same data
// set, split, size and autoencoder weights (same digest); computed and written there
// otherwise. Prints what it did.
LatentCache cached_latents(VAE& vae, const std::string& vae_file, const Dataset& data, const std::string& cache_dir);

// A short fingerprint of a file's bytes (FNV-1a, 64-bit, in hex): different weights,
// different digest, so a cache made with an older autoencoder is never reused.
std::string file_digest(const std::string& path);

// The training set the DDPM sees: the data set with its images replaced by scale * z.
Dataset latent_dataset(const Dataset& data, const LatentCache& cache, double scale);

}  // namespace td::diffusion
