// tools/ddpm_figures.cpp: see ddpm_figures.h.
#include "tools/ddpm_figures.h"

#include <algorithm>

#include "diffusion/data/image_io.h"
#include "diffusion/forward_process.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::cli {

using namespace td::diffusion;

int64_t display_scale(int64_t H) { return std::clamp<int64_t>(56 / std::max<int64_t>(H, 1), 1, 4); }

namespace {

Denoiser denoiser_of(UNet& model) {
    return [&model](const Tensor& x, const Tensor& t) { return model.forward(x, t); };
}

Shape image_shape(const UNet& model, int64_t n) {
    const UNetConfig& c = model.config();
    return {n, c.in_channels, c.image_size, c.image_size};
}

}  // namespace

Tensor draw_samples(UNet& model, const Schedule& s, const SamplerOptions& o, int64_t n, Generator& gen,
                    int64_t batch, const std::function<void(int64_t)>& on_batch) {
    check(n >= 1, "draw_samples: n must be >= 1, got ", n);
    std::vector<Tensor> parts;
    for (int64_t done = 0; done < n;) {
        int64_t b = std::min(batch, n - done);
        Tensor x_T = randn(image_shape(model, b), gen);  // x_T ~ N(0, I)
        parts.push_back(sample(s, denoiser_of(model), x_T, o, gen));
        done += b;
        if (on_batch) on_batch(done);
    }
    return parts.size() == 1 ? parts[0] : cat(parts, 0);
}

void write_denoise_strip(const std::string& path, UNet& model, const Schedule& s, const SamplerOptions& o, int64_t n,
                         int64_t columns, Generator& gen) {
    Tensor x_T = randn(image_shape(model, n), gen);
    int64_t steps = o.steps;
    // keep x after steps k * steps / (columns - 1), k = 1 .. columns-1 (the last is x_0)
    std::vector<Tensor> cols = {x_T};
    int64_t next_k = 1;
    auto keep = [&](int64_t i, int64_t, const Tensor& x) {
        while (next_k < columns && i >= next_k * steps / (columns - 1)) {
            cols.push_back(x);
            ++next_k;
        }
    };
    sample(s, denoiser_of(model), x_T, o, gen, keep);
    // rows = samples, columns = time: stack to (n, columns, C, H, W), flatten row-major
    Tensor grid = stack(cols, 1);
    Shape sh = grid.shape();
    write_png_grid(path, grid.reshape({sh[0] * sh[1], sh[2], sh[3], sh[4]}), (int64_t)cols.size(),
                   display_scale(sh[3]));
}

void write_forward_strip(const std::string& path, const Schedule& s, const Tensor& x0, int64_t columns,
                         Generator& gen) {
    int64_t n = x0.size(0);
    Tensor eps = randn(x0.shape(), gen);
    std::vector<Tensor> cols = {x0};
    for (int64_t k = 1; k < columns; ++k) {
        int64_t t = k * (s.T - 1) / (columns - 1);  // evenly spaced, ending at T-1 (paper's T)
        Tensor tt = Tensor::from_vector_i64(std::vector<int64_t>(n, t), {n});
        cols.push_back(q_sample(s, x0, tt, eps));  // eq. 4
    }
    Tensor grid = stack(cols, 1);
    Shape sh = grid.shape();
    write_png_grid(path, clamp(grid, -1.0f, 1.0f).reshape({sh[0] * sh[1], sh[2], sh[3], sh[4]}), columns,
                   display_scale(sh[3]));
}

}  // namespace td::cli
