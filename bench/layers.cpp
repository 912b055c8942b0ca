// bench/layers.cpp: the UNet's layer ops, forward and backward (float32, CPU), for
// bench/run_layers.sh; bench/layers_torch.py times PyTorch on the same rows with the same
// method and prints the same lines, so the two compare row by row.
//
// Rows (batch 128): every distinct convolution of the two UNets bench/run_unet.sh times,
// the demo's (ch 16, mults 1,2,2, 1 res block, 4 groups) and the reference's (ch 32,
// mults 1,2,2, 2 res blocks, 8 groups), on 28x28 images; then GroupNorm and attention at
// the reference's widths. Conv rows are named by kernel, channels in and
// out and input size: c3_48_16_28 is a 3x3 conv (pad 1), 48 -> 16 channels at 28x28;
// c3s2_ a 3x3 conv with stride 2 (the downsampling), c1_ a 1x1 conv (the ResBlocks'
// nin_shortcut). `--list` says where in which UNet each shape is used. The first three
// rows keep their older names:
//   conv1_28   td::conv2d 3x3 pad 1,  1 -> 32 ch at 28x28  (the reference's stem)
//   conv32_28  td::conv2d 3x3 pad 1, 32 -> 32 ch at 28x28
//   conv64_14  td::conv2d 3x3 pad 1, 64 -> 64 ch at 14x14
//   gn32_28    td::group_norm, 8 groups, gamma and beta, x (128, 32, 28, 28)
//   gn64_14    td::group_norm, 8 groups, gamma and beta, x (128, 64, 14, 14)
//   gnsilu32_28, gnsilu64_14   td::group_norm_silu (SiLU(GroupNorm(x)) as one op, the pair
//              every ResBlock applies) on the same shapes
//   attn64_49  td::scaled_dot_product_attention, q k v (128, 4, 49, 16): 64 channels
//              at 7x7 = 49 tokens, 4 heads of 16
// (In the UNet the ResBlocks' convs and conv_out run inside td::group_norm_silu_conv2d,
// whose convolution is td::conv2d's, forward and backward.)
//
// Modes, each measured on its own:
//   fwd      y = op(inputs) with grad mode off (no graph recorded);
//   fwdbwd   y = op(inputs); y.backward(gy) with a fixed upstream gradient gy drawn once,
//            every input (x, weight, bias / gamma, beta / q, k, v) requiring grad;
//   bwd_dx   conv rows only: the same with only x requiring grad, so the backward
//            computes dx alone (a network's first conv needs no dx; every other needs both);
//   bwd_dw   conv rows only: only weight and bias require grad: the backward computes dW
//            and db alone.
//   The inputs' .grad are dropped before each call, outside the timed region, so every
//   call allocates and writes fresh gradients, as a training step does.
// The output (and the gradients) is freed outside the timed region too.
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
//   build/bench_layers --rows conv32_28,attn64_49 [--modes fwd,bwd_dx] [--min-time S] [--list]
//   perf record -g build/bench_layers --rows c1_96_32_28 --modes bwd_dw     (one thing to profile)
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
    const char* what;       // conv: where the UNets use the shape
    int64_t R = 3;          // conv: an R x R kernel, padding R / 2 (as every conv of the UNet)
    int64_t stride = 1;
};

// A conv row, batch 128: C -> K channels at H x H.
constexpr Row conv(const char* name, int64_t R, int64_t stride, int64_t C, int64_t K, int64_t H, const char* where) {
    return {name, Kind::Conv, 128, C, K, H, H, where, R, stride};
}

// Keep in step with ROWS in bench/layers_torch.py. The conv rows are the output of walking
// both UNets' modules (demo: ch 16, 1 res block; ref: ch 32, 2 res blocks), deduplicated.
const Row kRows[] = {
    conv("conv1_28", 3, 1, 1, 32, 28, "ref conv_in"),
    conv("conv32_28", 3, 1, 32, 32, 28, "ref down.0 conv1 and conv2, up.0 conv2; demo up.1.upsample.conv"),
    conv("conv64_14", 3, 1, 64, 64, 14, "ref down.1 and up.1 conv2, down.1.block.1.conv1, up.2.upsample.conv"),
    // the demo UNet's other 3x3 convs (stride 1)
    conv("c3_1_16_28", 3, 1, 1, 16, 28, "demo conv_in"),
    conv("c3_16_16_28", 3, 1, 16, 16, 28, "demo down.0 conv1 and conv2, up.0 conv2"),
    conv("c3_48_16_28", 3, 1, 48, 16, 28, "demo up.0.block.0.conv1"),
    conv("c3_32_16_28", 3, 1, 32, 16, 28, "demo up.0.block.1.conv1"),
    conv("c3_16_1_28", 3, 1, 16, 1, 28, "demo conv_out"),
    conv("c3_16_32_14", 3, 1, 16, 32, 14, "demo down.1.block.0.conv1"),
    conv("c3_32_32_14", 3, 1, 32, 32, 14, "demo down.1 and up.1 conv2, up.2.upsample.conv"),
    conv("c3_64_32_14", 3, 1, 64, 32, 14, "demo up.1.block.0.conv1"),
    conv("c3_48_32_14", 3, 1, 48, 32, 14, "demo up.1.block.1.conv1"),
    conv("c3_32_32_7", 3, 1, 32, 32, 7, "demo down.2, mid and up.2 conv2, down.2 and mid conv1"),
    conv("c3_64_32_7", 3, 1, 64, 32, 7, "demo up.2 conv1"),
    // the reference UNet's other 3x3 convs (stride 1)
    conv("c3_96_32_28", 3, 1, 96, 32, 28, "ref up.0.block.0.conv1"),
    conv("c3_64_32_28", 3, 1, 64, 32, 28, "ref up.0.block.1 and .2 conv1"),
    conv("c3_64_64_28", 3, 1, 64, 64, 28, "ref up.1.upsample.conv"),
    conv("c3_32_1_28", 3, 1, 32, 1, 28, "ref conv_out"),
    conv("c3_32_64_14", 3, 1, 32, 64, 14, "ref down.1.block.0.conv1"),
    conv("c3_128_64_14", 3, 1, 128, 64, 14, "ref up.1.block.0 and .1 conv1"),
    conv("c3_96_64_14", 3, 1, 96, 64, 14, "ref up.1.block.2.conv1"),
    conv("c3_64_64_7", 3, 1, 64, 64, 7, "ref down.2, mid and up.2 conv2, down.2 and mid conv1"),
    conv("c3_128_64_7", 3, 1, 128, 64, 7, "ref up.2 conv1"),
    // the downsampling: 3x3, stride 2
    conv("c3s2_16_16_28", 3, 2, 16, 16, 28, "demo down.0.downsample.conv"),
    conv("c3s2_32_32_14", 3, 2, 32, 32, 14, "demo down.1.downsample.conv"),
    conv("c3s2_32_32_28", 3, 2, 32, 32, 28, "ref down.0.downsample.conv"),
    conv("c3s2_64_64_14", 3, 2, 64, 64, 14, "ref down.1.downsample.conv"),
    // the ResBlocks' nin_shortcut: 1x1, where the width changes
    conv("c1_16_32_14", 1, 1, 16, 32, 14, "demo down.1.block.0.nin_shortcut"),
    conv("c1_48_16_28", 1, 1, 48, 16, 28, "demo up.0.block.0.nin_shortcut"),
    conv("c1_32_16_28", 1, 1, 32, 16, 28, "demo up.0.block.1.nin_shortcut"),
    conv("c1_64_32_14", 1, 1, 64, 32, 14, "demo up.1.block.0.nin_shortcut"),
    conv("c1_48_32_14", 1, 1, 48, 32, 14, "demo up.1.block.1.nin_shortcut"),
    conv("c1_64_32_7", 1, 1, 64, 32, 7, "demo up.2 nin_shortcut"),
    conv("c1_32_64_14", 1, 1, 32, 64, 14, "ref down.1.block.0.nin_shortcut"),
    conv("c1_96_32_28", 1, 1, 96, 32, 28, "ref up.0.block.0.nin_shortcut"),
    conv("c1_64_32_28", 1, 1, 64, 32, 28, "ref up.0.block.1 and .2 nin_shortcut"),
    conv("c1_128_64_14", 1, 1, 128, 64, 14, "ref up.1.block.0 and .1 nin_shortcut"),
    conv("c1_96_64_14", 1, 1, 96, 64, 14, "ref up.1.block.2.nin_shortcut"),
    conv("c1_128_64_7", 1, 1, 128, 64, 7, "ref up.2 nin_shortcut"),
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

// A conv row's output height (or width) for an input of `size`.
int64_t conv_out_size(const Row& s, int64_t size) { return (size + 2 * (s.R / 2) - s.R) / s.stride + 1; }

// A few output entries against a double-precision reference: the timed call must do the work.
bool spot_check(const Row& s, const std::vector<td::Tensor>& in, const td::Tensor& y) {
    const float* yp = y.data_f32();
    if (s.kind == Kind::Conv) {  // y[n, k, oh, ow] = b[k] + sum w[k, c, r, t] x[n, c, oh st - pad + r, ow st - pad + t]
        const float *x = in[0].data_f32(), *w = in[1].data_f32(), *b = in[2].data_f32();
        const int64_t R = s.R, st = s.stride, pad = R / 2, OH = conv_out_size(s, s.H), OW = conv_out_size(s, s.W);
        const int64_t picks[][4] = {
            {0, 0, 0, 0}, {s.N - 1, s.K - 1, OH - 1, OW - 1}, {s.N / 2, s.K / 3, OH / 2, OW / 3}};
        for (const auto& p : picks) {
            double ref = b[p[1]], mag = std::fabs(ref);
            for (int64_t c = 0; c < s.C; ++c)
                for (int64_t r = 0; r < R; ++r)
                    for (int64_t t = 0; t < R; ++t) {
                        int64_t ih = p[2] * st - pad + r, iw = p[3] * st - pad + t;
                        if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                        double v =
                            (double)w[((p[1] * s.C + c) * R + r) * R + t] * x[((p[0] * s.C + c) * s.H + ih) * s.W + iw];
                        ref += v, mag += std::fabs(v);
                    }
            if (!close(yp[((p[0] * s.K + p[1]) * OH + p[2]) * OW + p[3]], ref, mag, s.name, "conv output"))
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

// The modes: which inputs require grad in the timed call. Inputs are x, weight, bias for a
// conv row (gamma, beta for a norm row; q, k, v for attention).
enum class Grads { None, All, XOnly, WeightOnly };
struct Mode {
    const char* name;
    Grads grads;  // None: forward alone, under NoGradGuard
    bool conv_only;
};
const Mode kModes[] = {{"fwd", Grads::None, false},
                       {"fwdbwd", Grads::All, false},
                       {"bwd_dx", Grads::XOnly, true},
                       {"bwd_dw", Grads::WeightOnly, true}};

bool needs_grad(const Mode& m, size_t input) {
    return m.grads == Grads::All || (m.grads == Grads::XOnly && input == 0) ||
           (m.grads == Grads::WeightOnly && input > 0);
}

// A row's inputs (none requiring grad yet), the fixed upstream gradient and the op.
struct Case {
    std::vector<td::Tensor> in;
    td::Tensor gy;  // the output's shape
    std::function<td::Tensor()> op;
};

void make_case(const Row& s, td::Generator& gen, Case& c) {
    auto& in = c.in;
    switch (s.kind) {
        case Kind::Conv: {
            float fan_in = (float)(s.C * s.R * s.R);
            in = {td::randn({s.N, s.C, s.H, s.W}, gen),
                  td::randn({s.K, s.C, s.R, s.R}, gen, 0.0f, 1.0f / std::sqrt(fan_in)), td::randn({s.K}, gen)};
            c.gy = td::randn({s.N, s.K, conv_out_size(s, s.H), conv_out_size(s, s.W)}, gen);
            c.op = [&in, &s] { return td::conv2d(in[0], in[1], in[2], s.stride, s.R / 2); };
            break;
        }
        case Kind::GroupNorm:
        case Kind::GroupNormSilu:
            in = {td::randn({s.N, s.C, s.H, s.W}, gen), td::randn({s.C}, gen, 1.0f, 0.1f), td::randn({s.C}, gen)};
            c.gy = td::randn({s.N, s.C, s.H, s.W}, gen);
            if (s.kind == Kind::GroupNorm) c.op = [&in, &s] { return td::group_norm(in[0], s.K, in[1], in[2]); };
            else c.op = [&in, &s] { return td::group_norm_silu(in[0], s.K, in[1], in[2]); };
            break;
        case Kind::Attention:
            for (int i = 0; i < 3; ++i) in.push_back(td::randn({s.N, s.C, s.H, s.W}, gen));
            c.gy = td::randn({s.N, s.C, s.H, s.W}, gen);
            c.op = [&in] { return td::scaled_dot_product_attention(in[0], in[1], in[2]); };
            break;
    }
}

// One row in one mode: the timing, or false when the backward did not leave exactly the
// gradients the mode asks for.
bool time_mode(const Row& s, const Mode& m, Case& c, double target, bench::Timing& out) {
    for (size_t i = 0; i < c.in.size(); ++i) c.in[i].requires_grad_(needs_grad(m, i));
    auto clear_grads = [&] {
        for (auto& t : c.in) t.zero_grad();
    };
    if (m.grads == Grads::None) {
        out = bench::measure(target, clear_grads, [&] {
            td::NoGradGuard no_grad;
            return c.op();
        });
        return true;
    }
    out = bench::measure(target, clear_grads, [&] {
        td::Tensor y = c.op();
        y.backward(c.gy);
        return y;
    });
    for (size_t i = 0; i < c.in.size(); ++i)
        if (c.in[i].grad().defined() != needs_grad(m, i)) {
            std::fprintf(stderr, "bench_layers: %s %s: input %zu's .grad is %s\n", s.name, m.name, i,
                         needs_grad(m, i) ? "undefined" : "defined, but the mode does not ask for it");
            return false;
        }
    return true;
}

// --modes: a comma-separated list of kModes' names; false (and a message) on another word.
bool parse_modes(const std::string& list, std::vector<std::string>& modes) {
    modes.clear();
    bench::split_list(list, modes);
    for (const auto& w : modes) {
        bool known = false;
        for (const auto& m : kModes) known |= w == m.name;
        if (!known) {
            std::fprintf(stderr, "bench_layers: unknown mode '%s' (known: fwd, fwdbwd, bwd_dx, bwd_dw)\n", w.c_str());
            return false;
        }
    }
    return !modes.empty();
}

void usage(FILE* f) {
    std::fprintf(f,
                 "usage: bench_layers [--quick] [--rows NAME,...] [--modes MODE,...] [--min-time SECONDS] [--list]\n"
                 "  --quick       ~0.1 s of timed calls per row and mode instead of ~0.5 s\n"
                 "  --rows        a subset, by name (see --list)\n"
                 "  --modes       a subset of fwd, fwdbwd, bwd_dx, bwd_dw (default: all four); bwd_dx\n"
                 "                (only x requires grad) and bwd_dw (only weight and bias) time conv rows only\n"
                 "  --min-time    the time target per row and mode, in seconds\n");
}

// --list: a line per row; a conv row says its geometry and where the UNets use it.
void list_rows() {
    for (const auto& s : kRows) {
        if (s.kind != Kind::Conv) {
            std::printf("%-14s %s\n", s.name, s.what);
            continue;
        }
        std::printf("%-14s conv2d %lldx%lld stride %lld pad %lld, %lld->%lld ch, %lldx%lldx%lld: %s\n", s.name,
                    (long long)s.R, (long long)s.R, (long long)s.stride, (long long)(s.R / 2), (long long)s.C,
                    (long long)s.K, (long long)s.N, (long long)s.H, (long long)s.W, s.what);
    }
}

}  // namespace

int main(int argc, char** argv) {
    const char* prog = "bench_layers";
    double target = 0.5;
    std::vector<std::string> wanted, modes = {"fwd", "fwdbwd", "bwd_dx", "bwd_dw"};
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i], value;
        int exit_code = -1;
        if (bench::common_option(prog, argc, argv, i, target, usage, &exit_code)) {
            if (exit_code >= 0) return exit_code;
        } else if (arg == "--list") {
            list_rows();
            return 0;
        } else if (bench::option_value(prog, "--rows", argc, argv, i, value)) {
            bench::split_list(value, wanted);
        } else if (bench::option_value(prog, "--modes", argc, argv, i, value)) {
            if (!parse_modes(value, modes)) return 2;
        } else {
            return bench::unknown_option(prog, arg.c_str(), usage);
        }
    }
    if (!bench::known_names(prog, "row", wanted, kRows)) return 2;

    std::printf(
        "# impl tinydiffusion td::conv2d (3x3 pad 1: tensor/cpu/conv3x3.cpp at stride 1, conv3x3_s2.cpp at stride 2; "
        "1x1: conv1x1.cpp; else im2col + Eigen %d.%d.%d GEMM), td::group_norm and td::group_norm_silu (fused), "
        "td::scaled_dot_product_attention (batched matmul + "
        "softmax), float32, CPU\n",
        EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION, EIGEN_MINOR_VERSION);
    bench::print_run_info(target, "row and mode", "row NAME MODE MEDIAN_S REPS MIN_S", /*eigen_threads=*/false);

    td::Generator gen(1234);
    for (const Row& s : kRows) {
        if (!bench::is_wanted(wanted, s.name)) continue;
        Case c;
        make_case(s, gen, c);
        {
            td::NoGradGuard no_grad;
            if (!spot_check(s, c.in, c.op())) return 1;
        }
        for (const Mode& m : kModes) {  // in kModes' order, whatever the order of --modes
            if (!bench::is_wanted(modes, m.name) || (m.conv_only && s.kind != Kind::Conv)) continue;
            bench::Timing t;
            if (!time_mode(s, m, c, target, t)) return 1;
            std::printf("row %s %s %.6e %d %.6e\n", s.name, m.name, t.median_s, t.reps, t.min_s);
            std::fflush(stdout);
        }
    }
    return 0;
}
