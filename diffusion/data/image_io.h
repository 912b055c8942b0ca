// diffusion/data/image_io.h: images out of the engine, as PNG files people look at:
// a grid of samples, a strip of denoising steps.
//
// Images are float32 tensors with pixel values in [-1, 1] (the engine's convention,
// diffusion/data/pixels.h); they are mapped back with pixel = round((x + 1) * 127.5),
// clipped to [0, 255]. 1-channel images are written grey, 3-channel ones RGB.
// Every file is written to PATH.tmp and renamed: an existing image is replaced whole.
// Images on the GPU are copied to the CPU first; make_grid's result is on the CPU.
#pragma once
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace td::diffusion {

// Tiles images (N, C, H, W) into one (C, rows * (H + pad) + pad, ncol * (W + pad) + pad)
// image, row by row, ncol per row, on a background of value `background` (in [-1, 1]).
Tensor make_grid(const Tensor& images, int64_t ncol, int64_t pad = 2, float background = 1.0f);

// Writes one image (C, H, W), C = 1 or 3, in [-1, 1] as PNG. `scale` > 1 enlarges each
// pixel into a scale x scale block (28x28 digits are tiny on a screen).
void write_png(const std::string& path, const Tensor& image, int64_t scale = 1);

// make_grid + write_png.
void write_png_grid(const std::string& path, const Tensor& images, int64_t ncol, int64_t scale = 1);

// (N, C, H, W) in [-1, 1] -> (N, C, H, W) in [0, 1]: the contract of `diffuse sample --out X.npy`.
Tensor to_unit_range(const Tensor& images);

}  // namespace td::diffusion
