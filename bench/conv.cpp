// bench/conv.cpp: td::conv2d forward and forward+backward (float32, CPU) at the sizes of
// a small UNet's early levels; bench/conv_torch.py times torch.nn.functional.conv2d on
// the same shapes with the same method, so the two outputs compare line by line.
//
//   build/bench_conv [--reps N]        (default 7 timed reps per shape)
//   OMP_NUM_THREADS=2 build/bench_conv ; /usr/bin/python3 bench/conv_torch.py --threads 2
//
// Method, per shape: x (N, C, H, W), w (K, C, 3, 3), b (K) and an upstream gradient gy
// drawn once; one untimed warm-up of each measurement, then `reps` timed calls of
//   fwd:      y = conv2d(x, w, b, 1, 1)            (inputs not requiring grad)
//   fwd+bwd:  y = conv2d(x, w, b, 1, 1); y.backward(gy)   (x, w, b requiring grad;
//             their .grad dropped before each call, outside the timed region)
// and the median of each. GFLOP/s counts 2 N K C R S OH OW per GEMM-sized product:
// one for the forward, three for forward+backward (y, dx, dw).
//
// Output: '#' comment lines, then one line per shape:
//   shape NAME FWD_MEDIAN_S FWDBWD_MEDIAN_S FWD_GFLOPS FWDBWD_GFLOPS REPS
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "td.h"

namespace {

struct ConvShape {
    const char* name;
    int64_t N, C, K, H, W;  // 3x3, stride 1, padding 1
};

const ConvShape kShapes[] = {
    {"c32_28", 128, 32, 32, 28, 28},  // batch 128, 32 -> 32 channels at 28x28
    {"c64_14", 128, 64, 64, 14, 14},  // batch 128, 64 -> 64 channels at 14x14
};

double now_s() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

int main(int argc, char** argv) {
    int reps = 7;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
        else if (a == "-h" || a == "--help") { std::printf("usage: bench_conv [--reps N]\n"); return 0; }
        else { std::fprintf(stderr, "bench_conv: unknown option '%s'\n", a.c_str()); return 2; }
    }
    std::printf("# impl td::conv2d (im2col + Eigen GEMM, OpenMP over the batch)\n");
    std::printf("# threads %d\n", omp_get_max_threads());
    std::printf("# columns: shape NAME FWD_MEDIAN_S FWDBWD_MEDIAN_S FWD_GFLOPS FWDBWD_GFLOPS REPS\n");
    td::Generator gen(1);
    for (const ConvShape& s : kShapes) {
        td::Tensor x = td::randn({s.N, s.C, s.H, s.W}, gen).requires_grad_();
        td::Tensor w = td::randn({s.K, s.C, 3, 3}, gen).requires_grad_();
        td::Tensor b = td::randn({s.K}, gen).requires_grad_();
        td::Tensor gy = td::randn({s.N, s.K, s.H, s.W}, gen);
        double flop = 2.0 * s.N * s.K * s.C * 9 * s.H * s.W;  // one product

        std::vector<double> fwd, fwdbwd;
        for (int r = 0; r <= reps; ++r) {  // r == 0: warm-up
            {
                td::NoGradGuard no_grad;
                double t0 = now_s();
                td::Tensor y = td::conv2d(x, w, b, 1, 1);
                double t = now_s() - t0;
                if (r > 0) fwd.push_back(t);
            }
            x.zero_grad(), w.zero_grad(), b.zero_grad();
            double t0 = now_s();
            td::Tensor y = td::conv2d(x, w, b, 1, 1);
            y.backward(gy);
            double t = now_s() - t0;
            if (r > 0) fwdbwd.push_back(t);
        }
        double f = median(fwd), fb = median(fwdbwd);
        std::printf("shape %s %.6e %.6e %.1f %.1f %d\n", s.name, f, fb, flop / f / 1e9, 3 * flop / fb / 1e9, reps);
        std::fflush(stdout);
    }
    return 0;
}
