// tests/synthetic_data.h: tiny data sets made on the spot, so tests never need downloads.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "diffusion/data/dataset.h"
#include "diffusion/model_file.h"
#include "td.h"

namespace tdtest {

// An IDX file: magic 0x00000800 + rank, big-endian sizes, then unsigned bytes.
inline void write_idx(const std::string& path, const std::vector<uint32_t>& dims, const std::vector<uint8_t>& data) {
    std::ofstream f(path, std::ios::binary);
    unsigned char magic[4] = {0, 0, 8, (unsigned char)dims.size()};
    f.write((const char*)magic, 4);
    for (uint32_t d : dims) {
        unsigned char be[4] = {(unsigned char)(d >> 24), (unsigned char)(d >> 16), (unsigned char)(d >> 8),
                               (unsigned char)d};
        f.write((const char*)be, 4);
    }
    f.write((const char*)data.data(), data.size());
}

// Two classes of size x size images: a bright vertical bar in the left half (label 0)
// or in the right half (label 1), at one of 4 columns. Written as {split}-images-idx3-ubyte
// and {split}-labels-idx1-ubyte in dir (what load_dataset(dir) reads).
inline void write_bars(const std::string& dir, const std::string& split, int n, int size = 28) {
    std::vector<uint8_t> img((size_t)n * size * size, 0), lab(n);
    for (int i = 0; i < n; ++i) {
        lab[i] = i % 2;
        int col = (lab[i] ? size * 18 / 28 : size * 6 / 28) + (i / 2) % 4;
        for (int r = size / 7; r < size - size / 7; ++r) img[(size_t)i * size * size + r * size + col] = 255;
    }
    write_idx(dir + "/" + split + "-images-idx3-ubyte", {(uint32_t)n, (uint32_t)size, (uint32_t)size}, img);
    write_idx(dir + "/" + split + "-labels-idx1-ubyte", {(uint32_t)n}, lab);
}

// The same bars in memory: (n, 1, size, size) in [-1, 1], a bright bar on a dark ground.
inline td::diffusion::Dataset bars_dataset(int n, int size) {
    std::vector<float> px((size_t)n * size * size, -1.0f);
    std::vector<int64_t> lab(n);
    for (int i = 0; i < n; ++i) {
        lab[i] = i % 2;
        int col = (lab[i] ? size * 5 / 8 : size / 8) + (i / 2) % 2;
        for (int r = 1; r < size - 1; ++r) px[(size_t)i * size * size + r * size + col] = 1.0f;
    }
    td::diffusion::Dataset d;
    d.name = "bars";
    d.split = "train";
    d.images = td::Tensor::from_vector(px, {n, 1, size, size});
    d.labels = td::Tensor::from_vector_i64(lab, {n});
    d.num_classes = 2;
    return d;
}

// A DDPM small enough for tests: an 8x8 UNet (ch 8, two levels, attention at 4),
// dropout on (so the dropout generator's state matters), T steps.
inline td::diffusion::ModelInfo tiny_ddpm(int64_t T) {
    td::diffusion::ModelInfo info;
    info.unet.image_size = 8;
    info.unet.ch = 8;
    info.unet.mults = {1, 2};
    info.unet.num_res_blocks = 1;
    info.unet.attn_res = {4};
    info.unet.groups = 4;
    info.unet.dropout = 0.1f;
    info.T = T;
    return info;
}

}  // namespace tdtest
