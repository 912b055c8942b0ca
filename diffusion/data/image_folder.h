// diffusion/data/image_folder.h: a folder of ordinary image files as a Dataset.
//
// Layout (torchvision's ImageFolder convention):
//   DIR/cat/001.png, DIR/cat/002.jpg, DIR/dog/...   one sub-folder per class: labels
//                                                    0, 1, ... in the folders' name order
//   DIR/001.png, DIR/002.png, ...                    no sub-folders: one class, label 0
// Files are taken in name order; names starting with '.' are skipped. Formats: what
// stb_image decodes (png, jpg/jpeg, bmp, gif (first frame), tga, ppm/pgm).
//
// Every image becomes size x size: resize so that the shorter side is `size` (aspect
// ratio kept), then cut the center square (torchvision's Resize(size) + CenterCrop(size)).
// The resize is bilinear, widened into a tent over the whole footprint when shrinking
// (like PIL's Image.resize(BILINEAR)), so shrinking averages pixels instead of skipping them.
#pragma once
#include <cstdint>
#include <string>

#include "diffusion/data/dataset.h"
#include "tensor/tensor.h"

namespace td::diffusion {

// One image file: (channels, size, size) float32 in [-1, 1]. channels: 1 (grey; colour
// images are converted with stb's luma weights 77/256 R + 150/256 G + 29/256 B; a JPEG
// gives its own Y channel, 0.299 R + 0.587 G + 0.114 B) or 3
// (grey images are repeated into R, G, B); an alpha channel is dropped.
Tensor load_image(const std::string& path, int64_t size, int64_t channels);

// The same from an image file's bytes already in memory; `name` stands for the file in
// error messages. load_image reads the file and calls this; so does the fuzz target
// tests/fuzz/fuzz_image.cpp.
Tensor decode_image(const uint8_t* data, size_t bytes, const std::string& name, int64_t size, int64_t channels);

// Every image of `dir` (see the layout above): images (N, channels, size, size), labels (N).
Dataset load_image_folder(const std::string& dir, int64_t size, int64_t channels);

// The resampling itself, on any (C, H, W) float32 tensor: -> (C, out_h, out_w).
Tensor resize_bilinear(const Tensor& image, int64_t out_h, int64_t out_w);

// The shorter side to `size`, then the center size x size square: (C, H, W) -> (C, size, size).
Tensor resize_center_crop(const Tensor& image, int64_t size);

}  // namespace td::diffusion
