// bench/gemm.cpp: GEMM throughput of td::matmul (float32, CPU), for bench/run_gemm.sh.
//
// For each shape it allocates A (M, K) and B (K, N) once, then times td::matmul(A, B)
// exactly as a user calls it: the op's checks, the allocation of the (M, N) output and
// the Eigen product are all inside the timed region. Method (bench/gemm_torch.py uses
// the same one, so the two columns compare):
//   1. warm-up: one call (two for shapes that take under 50 ms), not timed; the
//      slowest warm-up call sets how many timed calls fit the time target;
//   2. timed: reps = clamp(target / t_warmup, 3, 1000) calls, each timed alone;
//   3. report the median call time and GFLOP/s = 2 M N K / median / 1e9.
//
// Output: comment lines start with '#'; one line per shape:
//   shape NAME M K N MEDIAN_S GFLOPS REPS MIN_S
//
//   build/bench_gemm                      all shapes, ~0.5 s of timed calls each
//   build/bench_gemm --quick              ~0.1 s each (a smoke run)
//   build/bench_gemm --shapes sq1024,conv64
//   build/bench_gemm --list               the shape names
#include <Eigen/Core>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/timing.h"
#include "td.h"

namespace {

struct GemmShape {
    const char* name;
    int64_t M, K, N;
    const char* what;
};

// The square sizes, plus the two conv-as-GEMM products of a UNet's early levels:
// weights (Cout, Cin*3*3) @ im2col columns (Cin*3*3, batch*H*W).
const GemmShape kShapes[] = {
    {"sq256", 256, 256, 256, "square"},
    {"sq512", 512, 512, 512, "square"},
    {"sq1024", 1024, 1024, 1024, "square"},
    {"sq2048", 2048, 2048, 2048, "square"},
    {"conv64", 64, 576, 100352, "conv 3x3 64->64 ch, 32x56x56 (im2col)"},
    {"conv128", 128, 1152, 25088, "conv 3x3 128->128 ch, 32x28x28 (im2col)"},
};

// A few entries of C against a double-precision dot product: the timed call must
// compute the product, not just return quickly.
bool spot_check(const td::Tensor& a, const td::Tensor& b, const td::Tensor& c) {
    int64_t M = a.size(0), K = a.size(1), N = b.size(1);
    const float *pa = a.data_f32(), *pb = b.data_f32(), *pc = c.data_f32();
    const int64_t picks[][2] = {{0, 0}, {M - 1, N - 1}, {M / 2, N / 3}, {M / 3, N - 1}};
    for (const auto& p : picks) {
        double ref = 0, mag = 0;
        for (int64_t k = 0; k < K; ++k) {
            double t = (double)pa[p[0] * K + k] * pb[k * N + p[1]];
            ref += t;
            mag += std::fabs(t);
        }
        double got = pc[p[0] * N + p[1]];
        if (std::fabs(got - ref) > 1e-4 * mag + 1e-5) {
            std::fprintf(stderr, "bench_gemm: wrong result at (%lld, %lld): %g vs %g\n", (long long)p[0],
                         (long long)p[1], got, ref);
            return false;
        }
    }
    return true;
}

void usage(FILE* f) {
    std::fprintf(f,
                 "usage: bench_gemm [--quick] [--shapes NAME,NAME,...] [--min-time SECONDS] [--list]\n"
                 "  --quick       ~0.1 s of timed calls per shape instead of ~0.5 s\n"
                 "  --shapes      a subset, by name (see --list)\n"
                 "  --min-time    the time target per shape, in seconds\n");
}

}  // namespace

int main(int argc, char** argv) {
    const char* prog = "bench_gemm";
    double target = 0.5;
    std::vector<std::string> wanted;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i], list;
        int exit_code = -1;
        if (bench::common_option(prog, argc, argv, i, target, usage, &exit_code)) {
            if (exit_code >= 0) return exit_code;
        } else if (arg == "--list") {
            for (const auto& s : kShapes)
                std::printf("%-8s M=%-5lld K=%-5lld N=%-6lld %s\n", s.name, (long long)s.M, (long long)s.K,
                            (long long)s.N, s.what);
            return 0;
        } else if (bench::option_value(prog, "--shapes", argc, argv, i, list)) {
            bench::split_list(list, wanted);
        } else {
            return bench::unknown_option(prog, arg.c_str(), usage);
        }
    }
    if (!bench::known_names(prog, "shape", wanted, kShapes)) return 2;

    std::printf("# impl td::matmul (Eigen %d.%d.%d GEMM, float32, CPU)\n", EIGEN_WORLD_VERSION, EIGEN_MAJOR_VERSION,
                EIGEN_MINOR_VERSION);
    bench::print_run_info(target, "shape", "shape NAME M K N MEDIAN_S GFLOPS REPS MIN_S", /*eigen_threads=*/true);

    td::NoGradGuard no_grad;  // inference-style calls; the inputs do not require grad anyway
    td::Generator gen(1234);
    for (const auto& s : kShapes) {
        if (!bench::is_wanted(wanted, s.name)) continue;
        td::Tensor a = td::randn({s.M, s.K}, gen);
        td::Tensor b = td::randn({s.K, s.N}, gen);

        // Warm-up (first-touch of the output pages, Eigen's blocking buffers, the OpenMP
        // pool), checked; then the timed calls, each output freed outside the timed
        // region, like a loop body ending.
        bench::Timing t = bench::measure(
            target, [] {}, [&] { return td::matmul(a, b); }, [&](const td::Tensor& c) { return spot_check(a, b, c); });
        if (!t.ok) return 1;
        double gflops = 2.0 * (double)s.M * (double)s.N * (double)s.K / t.median_s / 1e9;
        std::printf("shape %s %lld %lld %lld %.6e %.2f %d %.6e\n", s.name, (long long)s.M, (long long)s.K,
                    (long long)s.N, t.median_s, gflops, t.reps, t.min_s);
        std::fflush(stdout);
    }
    return 0;
}
