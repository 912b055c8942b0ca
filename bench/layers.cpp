// bench/layers.cpp: the UNet's layer ops, forward and forward+backward (float32, CPU),
// for bench/run_layers.sh; bench/layers_torch.py times PyTorch on the same rows with the
// same method and prints the same lines, so the two compare row by row.
//
// Rows (batch 128, the shapes of the small UNet's first two levels):
//   conv1_28   td::conv2d 3x3 pad 1,  1 -> 32 ch at 28x28  (the stem)
//   conv32_28  td::conv2d 3x3 pad 1, 32 -> 32 ch at 28x28
//   conv64_14  td::conv2d 3x3 pad 1, 64 -> 64 ch at 14x14
//   gn32_28    td::group_norm, 8 groups, gamma and beta, x (128, 32, 28, 28)
//   gn64_14    td::group_norm, 8 groups, gamma and beta, x (128, 64, 14, 14)
//   gnsilu32_28, gnsilu64_14   td::group_norm_silu (SiLU(GroupNorm(x)) as one op, the pair
//              every ResBlock applies) on the same shapes
//   attn64_49  td::scaled_dot_product_attention, q k v (128, 4, 49, 16): 64 channels
//              at 7x7 = 49 tokens, 4 heads of 16
// Every input (x, weight, bias / gamma, beta / q, k, v) requires grad.
//
// Two modes per row, each measured on its own:
//   fwd      y = op(inputs) with grad mode off (no graph recorded);
//   fwdbwd   y = op(inputs); y.backward(gy) with a fixed upstream gradient gy drawn once.
//            The inputs' .grad are dropped before each call, outside the timed region,
//            so every call allocates and writes fresh gradients, as a training step does.
// The output (and for fwdbwd the gradients) is freed outside the timed region too.
// Method, per row and mode (bench/timing.h, the one of bench/gemm.cpp):
//   1. warm-up: one call (two when it takes under 50 ms), not timed;
//   2. reps = clamp(target / t_warmup, 3, 1000) calls, each timed alone;
//   3. the median call time is reported (and the fastest).
//
// Output: comment lines start with '#'; one line per row and mode:
//   row NAME MODE MEDIAN_S REPS MIN_S
//
//   build/bench_layers                    all rows, ~0.5 s of timed calls per row and mode
//   build/bench_layers --quick            ~0.1 s each (a smoke run)
//   build/bench_layers --rows conv32_28,attn64_49 [--modes fwd] [--min-time S] [--list]
//   perf record -g build/bench_layers --rows gn32_28 --modes fwdbwd     (one thing to profile)
#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/timing.h"
#include "td.h"

namespace {

enum class Kind { Conv, GroupNorm, GroupNormSilu, Attention };

struct Row {
    const char* name;
    Kind kind;
    int64_t N, C, K, H, W;  // conv: C -> K channels at H x W; norm: (N, C, H, W), K groups;
                            // attention: q k v (N, C heads, H tokens, W head dim)
    const char* what;
};

// Keep in step with ROWS in bench/layers_torch.py.
const Row kRows[] = {
    {"conv1_28", Kind::Conv, 128, 1, 32, 28, 28, "conv2d 3x3 pad 1, 1->32 ch, 128x28x28"},
    {"conv32_28", Kind::Conv, 128, 32, 32, 28, 28, "conv2d 3x3 pad 1, 32->32 ch, 128x28x28"},
    {"conv64_14", Kind::Conv, 128, 64, 64, 14, 14, "conv2d 3x3 pad 1, 64->64 ch, 128x14x14"},
    {"gn32_28", Kind::GroupNorm, 128, 32, 8, 28, 28, "group_norm 8 groups + affine, (128, 32, 28, 28)"},
    {"gn64_14", Kind::GroupNorm, 128, 64, 8, 14, 14, "group_norm 8 groups + affine, (128, 64, 14, 14)"},
    {"gnsilu32_28", Kind::GroupNormSilu, 128, 32, 8, 28, 28, "silu(group_norm 8 groups + affine), (128, 32, 28, 28)"},
    {"gnsilu64_14", Kind::GroupNormSilu, 128, 64, 8, 14, 14, "silu(group_norm 8 groups + affine), (128, 64, 14, 14)"},
    {"attn64_49", Kind::Attention, 128, 4, 0, 49, 16, "softmax(q k^T / 4) v, q k v (128, 4, 49, 16)"},
};

bool close(double got, double ref, double mag, const char* row, const char* what) {
    if (std::fabs(got - ref) <= 1e-4 * mag + 1e-4) return true;
    std::fprintf(stderr, "bench_layers: %s: wrong %s: %g vs %g\n", row, what, got, ref);
    return false;
}

// A few output entries against a double-precision reference: the timed call must do the work.
bool spot_check(const Row& s, const std::vector<td::Tensor>& in, const td::Tensor& y) {
    const float* yp = y.data_f32();
    if (s.kind == Kind::Conv) {  // y[n, k, oh, ow] = b[k] + sum w[k, c, r, t] x[n, c, oh - 1 + r, ow - 1 + t]
        const float *x = in[0].data_f32(), *w = in[1].data_f32(), *b = in[2].data_f32();
        const int64_t picks[][4] = {{0, 0, 0, 0}, {s.N - 1, s.K - 1, s.H - 1, s.W - 1}, {s.N / 2, s.K / 3, 5, 7}};
        for (const auto& p : picks) {
            double ref = b[p[1]], mag = std::fabs(ref);
            for (int64_t c = 0; c < s.C; ++c)
                for (int64_t r = 0; r < 3; ++r)
                    for (int64_t t = 0; t < 3; ++t) {
                        int64_t ih = p[2] - 1 + r, iw = p[3] - 1 + t;
                        if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                        double v =
                            (double)w[((p[1] * s.C + c) * 3 + r) * 3 + t] * x[((p[0] * s.C + c) * s.H + ih) * s.W + iw];
                        ref += v, mag += std::fabs(v);
                    }
            if (!close(yp[((p[0] * s.K + p[1]) * s.H + p[2]) * s.W + p[3]], ref, mag, s.name, "conv output"))
                return false;
        }
    } else if (s.kind == Kind::GroupNorm ||
               s.kind == Kind::GroupNormSilu) {  // sample 1, group 3: moments, then one entry
        const float *x = in[0].data_f32(), *gam = in[1].data_f32(), *bet = in[2].data_f32();
        int64_t Cg = s.C / s.K, HW = s.H * s.W, n = 1, g = 3, D = Cg * HW;
        const float* xb = x + (n * s.C + g * Cg) * HW;
        double m = 0, v = 0;
        for (int64_t i = 0; i < D; ++i) m += xb[i];
        m /= D;
        for (int64_t i = 0; i < D; ++i) v += (xb[i] - m) * (xb[i] - m);
        v /= D;
        int64_t c = g * Cg + 1, i = 17;
        double ref = (x[(n * s.C + c) * HW + i] - m) / std::sqrt(v + 1e-5) * gam[c] + bet[c];
        if (s.kind == Kind::GroupNormSilu) ref = ref / (1.0 + std::exp(-ref));
        if (!close(yp[(n * s.C + c) * HW + i], ref, std::fabs(ref) + 1, s.name, "group_norm output")) return false;
    } else {  // head (n, h) = (5, 2), query 11: softmax over the keys, then the weighted sum of v
        const float *q = in[0].data_f32(), *k = in[1].data_f32(), *v = in[2].data_f32();
        int64_t L = s.H, d = s.W, base = (5 * s.C + 2) * L * d, qi = 11;
        std::vector<double> p(L);
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < L; ++j) {
            double dot = 0;
            for (int64_t e = 0; e < d; ++e) dot += (double)q[base + qi * d + e] * k[base + j * d + e];
            p[j] = dot / std::sqrt((double)d);
            mx = std::max(mx, p[j]);
        }
        for (auto& e : p) sum += (e = std::exp(e - mx));
        for (int64_t e = 0; e < d; ++e) {
            double ref = 0, mag = 0;
            for (int64_t j = 0; j < L; ++j)
                ref += p[j] / sum * v[base + j * d + e], mag += std::fabs(p[j] / sum * v[base + j * d + e]);
            if (!close(yp[base + qi * d + e], ref, mag, s.name, "attention output")) return false;
        }
    }
    return true;
}

void usage(FILE* f) {
    std::fprintf(f,
                 "usage: bench_layers [--quick] [--rows NAME,...] [--modes fwd,fwdbwd] [--min-time SECONDS] [--list]\n"
                 "  --quick       ~0.1 s of timed calls per row and mode instead of ~0.5 s\n"
                 "  --rows        a subset, by name (see --list)\n"
                 "  --modes       fwd, fwdbwd or both (the default)\n"
                 "  --min-time    the time target per row and mode, in seconds\n");
}

}  // namespace

int main(int argc, char** argv) {
    const char* prog = "bench_layers";
    double target = 0.5;
    std::vector<std::string> wanted;
    bool run_fwd = true, run_fwdbwd = true;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i], value;
        int exit_code = -1;
        if (bench::common_option(prog, argc, argv, i, target, usage, &exit_code)) {
            if (exit_code >= 0) return exit_code;
        } else if (arg == "--list") {
            for (const auto& s : kRows) std::printf("%-10s %s\n", s.name, s.what);
            return 0;
        } else if (bench::option_value(prog, "--rows", argc, argv, i, value)) {
            bench::split_list(value, wanted);
        } else if (bench::option_value(prog, "--modes", argc, argv, i, value)) {
            const std::string& m = value;
            run_fwd = m == "fwd" || m == "fwd,fwdbwd" || m == "fwdbwd,fwd";
            run_fwdbwd = m == "fwdbwd" || m == "fwd,fwdbwd" || m == "fwdbwd,fwd";
            if (!run_fwd && !run_fwdbwd) {
                std::fprintf(stderr, "bench_layers: --modes takes fwd, fwdbwd or fwd,fwdbwd\n");
                return 2;
            }
        } else {
            return bench::unknown_option(prog, arg.c_str(), usage);
        }
    }
    if (!bench::known_names(prog, "row", wanted, kRows)) return 2;

    std::printf(
        "# impl tinydiffusion td::conv2d (im2col + Eigen %d.%d.%d GEMM), td::group_norm and td::group_norm_silu "
        "(fused), "
        "td::scaled_dot_product_attention (batched matmul + softmax), float32, CPU\n",
        EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
    bench::print_run_info(target, "row and mode", "row NAME MODE MEDIAN_S REPS MIN_S", /*eigen_threads=*/false);

    td::Generator gen(1234);
    for (const Row& s : kRows) {
        if (!bench::is_wanted(wanted, s.name)) continue;
        std::vector<td::Tensor> in;  // the op's inputs, all requiring grad
        td::Tensor gy;               // the fixed upstream gradient, the output's shape
        std::function<td::Tensor()> op;
        switch (s.kind) {
            case Kind::Conv:
                in = {td::randn({s.N, s.C, s.H, s.W}, gen),
                      td::randn({s.K, s.C, 3, 3}, gen, 0.0f, 1.0f / std::sqrt(9.0f * s.C)), td::randn({s.K}, gen)};
                gy = td::randn({s.N, s.K, s.H, s.W}, gen);
                op = [&] { return td::conv2d(in[0], in[1], in[2], 1, 1); };
                break;
            case Kind::GroupNorm:
            case Kind::GroupNormSilu:
                in = {td::randn({s.N, s.C, s.H, s.W}, gen), td::randn({s.C}, gen, 1.0f, 0.1f), td::randn({s.C}, gen)};
                gy = td::randn({s.N, s.C, s.H, s.W}, gen);
                if (s.kind == Kind::GroupNorm) op = [&] { return td::group_norm(in[0], s.K, in[1], in[2]); };
                else op = [&] { return td::group_norm_silu(in[0], s.K, in[1], in[2]); };
                break;
            case Kind::Attention:
                for (int i = 0; i < 3; ++i) in.push_back(td::randn({s.N, s.C, s.H, s.W}, gen));
                gy = td::randn({s.N, s.C, s.H, s.W}, gen);
                op = [&] { return td::scaled_dot_product_attention(in[0], in[1], in[2]); };
                break;
        }
        for (auto& t : in) t.requires_grad_();
        {
            td::NoGradGuard no_grad;
            if (!spot_check(s, in, op())) return 1;
        }
        auto clear_grads = [&] {
            for (auto& t : in) t.zero_grad();
        };

        if (run_fwd) {
            bench::Timing fwd = bench::measure(
                target, [] {},
                [&] {
                    td::NoGradGuard no_grad;
                    return op();
                });
            std::printf("row %s fwd %.6e %d %.6e\n", s.name, fwd.median_s, fwd.reps, fwd.min_s);
            std::fflush(stdout);
        }
        if (!run_fwdbwd) continue;
        bench::Timing fb = bench::measure(target, clear_grads, [&] {
            td::Tensor y = op();
            y.backward(gy);
            return y;
        });
        for (auto& t : in)
            if (!t.grad().defined()) {
                std::fprintf(stderr, "bench_layers: %s: backward left a .grad undefined\n", s.name);
                return 1;
            }
        std::printf("row %s fwdbwd %.6e %d %.6e\n", s.name, fb.median_s, fb.reps, fb.min_s);
        std::fflush(stdout);
    }
    return 0;
}
