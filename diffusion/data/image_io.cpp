// diffusion/data/image_io.cpp: grids and PNG files (see image_io.h).
#include "diffusion/data/image_io.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <vector>

// The one definition of stb_image_write in the library (tools/plot.cpp uses it too).
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion {

Tensor make_grid(const Tensor& images, int64_t ncol, int64_t pad, float background) {
    check(images.dim() == 4 && images.dtype() == DType::Float32, "make_grid: expected float32 (N, C, H, W), got ",
          images.shape());
    check(ncol >= 1 && pad >= 0, "make_grid: ncol must be >= 1 and pad >= 0");
    int64_t N = images.size(0), C = images.size(1), H = images.size(2), W = images.size(3);
    int64_t cols = std::min(ncol, std::max<int64_t>(N, 1)), rows = (N + cols - 1) / cols;
    int64_t GH = rows * (H + pad) + pad, GW = cols * (W + pad) + pad;
    Tensor grid = full({C, GH, GW}, background);
    Tensor src = images.detach().to(Device::CPU).contiguous();  // read on the host, from any device
    const float* s = src.data_f32();
    float* g = grid.data_f32();
    for (int64_t n = 0; n < N; ++n) {
        int64_t y0 = pad + (n / cols) * (H + pad), x0 = pad + (n % cols) * (W + pad);
        for (int64_t c = 0; c < C; ++c)
            for (int64_t y = 0; y < H; ++y)
                for (int64_t x = 0; x < W; ++x) g[(c * GH + y0 + y) * GW + x0 + x] = s[((n * C + c) * H + y) * W + x];
    }
    return grid;
}

void write_png(const std::string& path, const Tensor& image, int64_t scale) {
    check(image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3) && image.dtype() == DType::Float32, path,
          ": write_png expects a float32 (1 or 3, H, W) image, got ", image.shape());
    check(scale >= 1 && scale <= 16, path, ": write_png scale must be in [1, 16], got ", scale);
    int64_t C = image.size(0), H = image.size(1), W = image.size(2), OH = H * scale, OW = W * scale;
    Tensor src = image.detach().to(Device::CPU).contiguous();  // read on the host, from any device
    const float* s = src.data_f32();
    std::vector<unsigned char> px((size_t)(OH * OW * C));
    for (int64_t y = 0; y < OH; ++y)
        for (int64_t x = 0; x < OW; ++x)
            for (int64_t c = 0; c < C; ++c) {
                float v = s[(c * H + y / scale) * W + x / scale];
                float p = std::isfinite(v) ? std::round((v + 1.0f) * 127.5f) : 0.0f;
                px[(size_t)((y * OW + x) * C + c)] = (unsigned char)std::clamp(p, 0.0f, 255.0f);
            }
    std::string tmp = path + ".tmp";
    check(stbi_write_png(tmp.c_str(), (int)OW, (int)OH, (int)C, px.data(), (int)(OW * C)) != 0, path,
          ": cannot write PNG (is the folder there and writable?)");
    check(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot move ", tmp, " into place");
}

void write_png_grid(const std::string& path, const Tensor& images, int64_t ncol, int64_t scale) {
    write_png(path, make_grid(images, ncol), scale);
}

Tensor to_unit_range(const Tensor& images) { return clamp((images + 1.0f) * 0.5f, 0.0f, 1.0f); }

}  // namespace td::diffusion
