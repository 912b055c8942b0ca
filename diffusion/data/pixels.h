// diffusion/data/pixels.h: the one place 8-bit pixels become model inputs.
//
// Diffusion models work on images in [-1, 1] (DDPM, Ho et al. 2020, section 3.3: "we
// assume that image data consists of integers in {0, 1, ..., 255} scaled linearly to
// [-1, 1]"), so that the data has the same scale as the N(0, I) noise.
#pragma once
#include <cstdint>

namespace td::diffusion {

// x = pixel / 127.5 - 1: 0 -> -1, 127.5 -> 0, 255 -> +1 (exactly).
inline float pixel_to_model(float pixel) { return pixel / 127.5f - 1.0f; }

// The inverse, for writing images: pixel = (x + 1) * 127.5 (not clamped or rounded).
inline float model_to_pixel(float x) { return (x + 1.0f) * 127.5f; }

}  // namespace td::diffusion
