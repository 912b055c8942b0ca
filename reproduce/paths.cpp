// reproduce/paths.cpp: the three experiments of docs/reproductions.md that need a chosen
// starting noise x_T, which `diffuse sample` (it draws x_T from --seed) cannot give.
//
//   reproduce_paths consistency MODEL OUT.png N SEED S1,S2,...   DDIM, Fig. 5
//   reproduce_paths slerp       MODEL OUT.png PAIRS SEED STEPS    DDIM, Fig. 6
//   reproduce_paths skip        MODEL OUT.npy N SEED STEPS FRACTION   Improved DDPM, skipping
//
// MODEL is a run's model.safetensors. Every sampler here is DDIM with eta 0 (deterministic,
// trailing spacing, x_0 clipped for pixel models, as `diffuse sample` does by default), so
// the image is a function of x_T alone. The figures are printed as `key value` lines,
// which reproduce/reproduce.sh appends to its measurements.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

#include "diffusion/data/image_io.h"
#include "diffusion/model_file.h"
#include "diffusion/sampler.h"
#include "tensor/npy.h"
#include "td.h"

using namespace td;
using namespace td::diffusion;

namespace {

// Deterministic DDIM (eq. 12 with eta = 0) from x_T down to x_0, decoded to pixels in [-1, 1].
Tensor ddim_decode(const LoadedModel& m, const Schedule& s, const Tensor& x_T, int64_t steps) {
    SamplerOptions o;
    o.steps = steps;
    o.prediction = m.info.prediction;
    o.clip_x0 = !m.info.latent();
    Generator unused(0);  // eta 0 draws no noise
    return m.decode(sample(s, m.denoiser(), x_T, o, unused));
}

// Mean absolute difference per pixel of two image batches, in units of the [0, 1] range.
double mean_abs_diff(const Tensor& a, const Tensor& b) { return mean(abs(a - b)).item() / 2.0; }

std::vector<int64_t> parse_list(const std::string& text) {
    std::vector<int64_t> out;
    std::stringstream ss(text);
    for (std::string item; std::getline(ss, item, ',');) {
        int64_t v = std::atoll(item.c_str());
        if (v < 1) throw Error("consistency: the step counts must be whole numbers >= 1, got '" + text + "'");
        out.push_back(v);
    }
    if (out.empty()) throw Error("consistency: no step counts given");
    return out;
}

// Fig. 5: the same x_T decoded with S steps for each S in the list, one row per S. If the
// sampler is a good ODE solver the rows agree: x_T is then a code of the image. Prints,
// for each S, the mean pixel distance to the row of the largest S, and the mean distance
// between different samples of that row (the scale: what "a different image" looks like).
int consistency(const LoadedModel& m, const std::string& out, int64_t n, uint64_t seed, const std::vector<int64_t>& S) {
    Generator gen(seed);
    Tensor x_T = randn(m.noise_shape(n), gen);
    std::vector<Tensor> rows;
    for (int64_t steps : S) rows.push_back(ddim_decode(m, m.schedule, x_T, steps));
    const Tensor& last = rows.back();
    for (size_t i = 0; i < S.size(); ++i)
        std::printf("S%lld_vs_S%lld %.4f\n", (long long)S[i], (long long)S.back(), mean_abs_diff(rows[i], last));
    std::printf("between_samples %.4f\n", mean_abs_diff(last.narrow(0, 1, n - 1), last.narrow(0, 0, n - 1)));
    write_png_grid(out, cat(rows, 0), n, 2);
    return 0;
}

// DDIM's spherical interpolation (slerp): sin((1 - a) theta) / sin(theta) x0 + sin(a theta) / sin(theta) x1,
// theta the angle between x0 and x1. A plain average of two Gaussian draws has too small a
// norm to be a likely x_T; slerp keeps it on the shell where x_T lives.
Tensor slerp(const Tensor& x0, const Tensor& x1, double a) {
    double theta = std::acos(sum(x0 * x1).item() / std::sqrt(sum(x0 * x0).item() * sum(x1 * x1).item()));
    return x0 * (float)(std::sin((1 - a) * theta) / std::sin(theta)) +
           x1 * (float)(std::sin(a * theta) / std::sin(theta));
}

// Fig. 6: PAIRS rows, each decoding 9 points on the slerp between two draws of x_T.
int interpolation(const LoadedModel& m, const std::string& out, int64_t pairs, uint64_t seed, int64_t steps) {
    const int64_t points = 9;
    Generator gen(seed);
    std::vector<Tensor> rows;
    for (int64_t p = 0; p < pairs; ++p) {
        Tensor a = randn(m.noise_shape(1), gen), b = randn(m.noise_shape(1), gen);
        std::vector<Tensor> xs;
        for (int64_t i = 0; i < points; ++i) xs.push_back(slerp(a, b, (double)i / (points - 1)));
        rows.push_back(ddim_decode(m, m.schedule, cat(xs, 0), steps));
    }
    write_png_grid(out, cat(rows, 0), points, 2);
    std::printf("interpolation_points %lld\n", (long long)points);
    return 0;
}

// Improved DDPM: skip the first `fraction` of the reverse process. The
// schedule cut to its first T' = (1 - fraction) T steps is the same process up to T'; a
// sampler on it starts from N(0, I) at t = T' - 1, as if x_{T'} were pure noise. Where the
// schedule has already destroyed the signal by T' (the linear one's last steps), nothing is
// lost; the step size T / STEPS is kept, so fewer model calls are made.
int skip_prefix(const LoadedModel& m, const std::string& out, int64_t n, uint64_t seed, int64_t steps,
                double fraction) {
    int64_t T = m.schedule.T, kept = (int64_t)std::llround(T * (1.0 - fraction));
    if (fraction < 0 || kept < 1) throw Error("skip: FRACTION must be in [0, 1), got " + std::to_string(fraction));
    Schedule cut(std::vector<double>(m.schedule.beta.begin(), m.schedule.beta.begin() + kept));
    int64_t cut_steps = std::max<int64_t>(1, (int64_t)std::llround((double)steps * kept / T));
    Generator gen(seed);
    Tensor x_T = randn(m.noise_shape(n), gen);
    std::vector<Tensor> parts;
    const int64_t batch = 128;
    for (int64_t i = 0; i < n; i += batch)
        parts.push_back(ddim_decode(m, cut, x_T.narrow(0, i, std::min(batch, n - i)), cut_steps));
    save_npy(out, to_unit_range(cat(parts, 0)));
    std::printf("alpha_bar_start %.6g\nmodel_calls %lld\n", m.schedule.alpha_bar[kept - 1], (long long)cut_steps);
    return 0;
}

int usage() {
    std::fprintf(stderr,
                 "usage: reproduce_paths consistency MODEL OUT.png N SEED S1,S2,...\n"
                 "       reproduce_paths slerp MODEL OUT.png PAIRS SEED STEPS\n"
                 "       reproduce_paths skip MODEL OUT.npy N SEED STEPS FRACTION\n");
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 7) return usage();
    std::string what = argv[1], out = argv[3];
    int64_t n = std::atoll(argv[4]);
    uint64_t seed = std::strtoull(argv[5], nullptr, 10);
    if (n < 2) {
        std::fprintf(stderr, "reproduce_paths: N (or PAIRS) must be at least 2, got '%s'\n", argv[4]);
        return 2;
    }
    try {
        LoadedModel m = load_model(argv[2]);
        if (m.info.unet.cond != Conditioning::None)
            throw Error(std::string(argv[2]) + ": an unconditional model is needed here");
        if (what == "consistency") return consistency(m, out, n, seed, parse_list(argv[6]));
        if (what == "slerp") return interpolation(m, out, n, seed, std::atoll(argv[6]));
        if (what == "skip" && argc == 8) return skip_prefix(m, out, n, seed, std::atoll(argv[6]), std::atof(argv[7]));
        return usage();
    } catch (const Error& e) {
        std::fprintf(stderr, "reproduce_paths: %s\n", e.what());
        return 1;
    }
}
