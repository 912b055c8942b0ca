// bench/cuda_gemm.cu: our GEMM ladder (cuda/gemm.h, cuda/matmul.cu) against cuBLAS, the
// yardstick, on square products of float32 matrices. For scripts/gpu-check.sh.
//
// Rows, per size n (C (n, n) = A (n, n) B (n, n), all row-major, device memory):
//   cuBLAS FP32      cublasGemmEx, compute type CUBLAS_COMPUTE_32F (no tensor cores)
//   cuBLAS TF32      cublasGemmEx, CUBLAS_COMPUTE_32F_FAST_TF32 (tensor cores, inputs rounded to TF32)
//   v1 naive         gemm_with(GemmKernel::Naive): only up to n = 2048 (it needs seconds above)
//   v2 tiled         gemm_with(GemmKernel::Tiled)
//   v3 reg-blocked   gemm_with(GemmKernel::RegisterBlocked): what gemm() runs by default
//   v4 TF32 wmma     gemm_with(GemmKernel::TensorCoreTF32): what gemm() runs with TD_CUDA_TF32=1
//   gemm() default   gemm_with(GemmKernel::Best): the dispatch the engine uses
// Our FP32 rows are compared with cuBLAS FP32, v4 with cuBLAS TF32 (the same precision);
// the target is >= 70 % of cuBLAS for v3 and v4.
//
// cuBLAS is column-major. A row-major (n, n) matrix is the column-major view of its
// transpose, so C = A B row-major is C^T = B^T A^T column-major: cuBLAS is called with
// B first, then A, and writes C^T column-major, which is C row-major.
//
// Method (bench/cuda_timing.h): two warm-up calls, then 3 to 50 calls (as many as fit
// --min-time) each timed alone with CUDA events; the median. TFLOP/s = 2 n^3 / median.
// Each result is then copied to the host and compared with cuBLAS FP32's:
// max |C - C_ref| / max |C_ref| (FP32 rows ~1e-6; TF32 ~1e-3); the "check" column says
// whether it is within tolerance (FP32 1e-4, TF32 1e-2; bench/cuda_timing.h), and the
// bench exits 3 when any row is not. cuBLAS's own C is checked first against the CPU: 256
// entries, picked at random, recomputed as dot products in double.
// cuBLAS appears here, in a bench, never in the engine.
//
// Output: markdown (notes lines, then a table).
//
//   build/bench_cuda_gemm                          sizes 1024, 2048, 4096, 8192
//   build/bench_cuda_gemm --sizes 1024,4096 --min-time 0.5
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/cuda_timing.h"
#include "cuda/cuda_check.h"
#include "cuda/gemm.h"
#include "tensor/device.h"
#include "tensor/error.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace {

using td::cuda::check_cuda;
using td::cuda::GemmKernel;

void check_cublas(cublasStatus_t status, const char* what) {
    if (status != CUBLAS_STATUS_SUCCESS) td::fail("cuBLAS error in ", what, ": ", cublasGetStatusString(status));
}

struct Row {
    const char* name;
    bool tf32;          // compared with cuBLAS TF32 (else FP32)
    bool ours;          // one of our kernels (else cuBLAS)
    GemmKernel kernel;  // ours only
    bool has_target;    // the >= 70 % target applies
};

const Row kRows[] = {
    {"cuBLAS FP32", false, false, GemmKernel::Best, false},
    {"cuBLAS TF32", true, false, GemmKernel::Best, false},
    {"v1 naive", false, true, GemmKernel::Naive, false},
    {"v2 tiled", false, true, GemmKernel::Tiled, false},
    {"v3 register-blocked", false, true, GemmKernel::RegisterBlocked, true},
    {"v4 tensor-core TF32", true, true, GemmKernel::TensorCoreTF32, true},
    {"gemm() default", false, true, GemmKernel::Best, false},
};

void usage(FILE* f) {
    std::fprintf(f,
                 "usage: bench_cuda_gemm [--sizes 1024,2048,4096,8192] [--min-time SECONDS]\n"
                 "  --sizes      square sizes n (C (n, n) = A (n, n) B (n, n), float32)\n"
                 "  --min-time   time target per kernel and size (default 0.25 s; 3 to 50 timed calls)\n");
}

}  // namespace

int run(int argc, char** argv) {
    std::vector<int64_t> sizes = {1024, 2048, 4096, 8192};
    double target = 0.25;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return 0;
        } else if (arg == "--sizes" && i + 1 < argc) {
            sizes.clear();
            std::string list = argv[++i];
            for (size_t start = 0; start < list.size();) {
                size_t comma = std::min(list.find(',', start), list.size());
                if (comma > start) sizes.push_back(std::stoll(list.substr(start, comma - start)));
                start = comma + 1;
            }
        } else if (arg == "--min-time" && i + 1 < argc) {
            target = std::atof(argv[++i]);
        } else {
            std::fprintf(stderr, "bench_cuda_gemm: unknown option '%s'\n", arg.c_str());
            usage(stderr);
            return 2;
        }
    }
    for (int64_t n : sizes)
        if (n <= 0) {
            std::fprintf(stderr, "bench_cuda_gemm: sizes must be > 0\n");
            return 2;
        }
    if (!td::cuda_available() || td::cuda_is_standin()) {
        std::fprintf(stderr, "bench_cuda_gemm: no GPU: %s\n", td::cuda_description().c_str());
        return 1;
    }
    // gemm() reads TD_CUDA_TF32 once; say which kernel the "default" row is.
    const char* tf32_env = std::getenv("TD_CUDA_TF32");
    const bool default_tf32 = tf32_env && std::string(tf32_env) == "1";
    int cublas_version = 0;
    cublasHandle_t handle;
    check_cublas(cublasCreate(&handle), "cublasCreate");
    check_cublas(cublasGetVersion(handle, &cublas_version), "cublasGetVersion");

    std::printf("- device: %s\n", td::cuda_description().c_str());
    std::printf("- cuBLAS %d (cublasGemmEx: CUBLAS_COMPUTE_32F for FP32, CUBLAS_COMPUTE_32F_FAST_TF32 for TF32)\n",
                cublas_version);
    std::printf("- gemm() default = %s (TD_CUDA_TF32 %s)\n", default_tf32 ? "v4" : "v3", tf32_env ? tf32_env : "unset");
    std::printf(
        "- method: 2 warm-up calls, then 3-50 calls (~%.2f s) each timed with CUDA events; the median. "
        "%% of cuBLAS: against cuBLAS of the same precision. "
        "Error: max |C - C_cuBLAS FP32| / max |C_cuBLAS FP32|\n\n",
        target);
    std::printf("| n | kernel | median ms | TFLOP/s | %% of cuBLAS | >= 70 %% | max rel. error | check |\n");
    std::printf("|---|---|---|---|---|---|---|---|\n");
    std::fflush(stdout);

    td::Generator gen(7);
    bench::Checks checks;
    for (int64_t n : sizes) {
        const td::Tensor A = td::randn({n, n}, gen, 0.0f, 1.0f, td::Device::CUDA);
        const td::Tensor B = td::randn({n, n}, gen, 0.0f, 1.0f, td::Device::CUDA);
        td::Tensor C = td::Tensor::empty({n, n}, td::DType::Float32, td::Device::CUDA);
        const float* a = A.data_f32();
        const float* b = B.data_f32();
        float* c = C.data_f32();
        const double flop = 2.0 * n * n * n;
        const int dim = (int)n;
        auto cublas = [&](cublasComputeType_t compute) {
            const float alpha = 1.0f, beta = 0.0f;
            check_cublas(cublasGemmEx(handle, CUBLAS_OP_N, CUBLAS_OP_N, dim, dim, dim, &alpha,  //
                                      b, CUDA_R_32F, dim, a, CUDA_R_32F, dim, &beta,            // B first: see above
                                      c, CUDA_R_32F, dim, compute, CUBLAS_GEMM_DEFAULT),
                         "cublasGemmEx");
        };
        // The reference: cuBLAS FP32's C, on the host.
        cublas(CUBLAS_COMPUTE_32F);
        check_cuda(cudaDeviceSynchronize(), "cublasGemmEx (reference)");
        const std::vector<float> ref = C.to(td::Device::CPU).to_vector();
        {  // the reference itself, against the CPU: 256 entries as double-precision dot products
            const std::vector<float> ha = A.to(td::Device::CPU).to_vector(), hb = B.to(td::Device::CPU).to_vector();
            uint64_t state = 12345;
            double max_diff = 0.0, max_ref = 0.0;
            for (int e = 0; e < 256; ++e) {
                state = state * 6364136223846793005ULL + 1442695040888963407ULL;  // an LCG: any spread will do
                const int64_t i = (int64_t)((state >> 33) % (uint64_t)n), j = (int64_t)((state >> 13) % (uint64_t)n);
                double dot = 0.0;
                for (int64_t k = 0; k < n; ++k) dot += (double)ha[i * n + k] * hb[k * n + j];
                max_diff = std::max(max_diff, std::fabs(dot - ref[i * n + j]));
                max_ref = std::max(max_ref, std::fabs(dot));
            }
            checks.add("n " + std::to_string(n) + ", cuBLAS FP32 vs the CPU (256 entries)",
                       max_ref > 0 ? max_diff / max_ref : max_diff, bench::tolerance(false));
        }

        double cublas_s[2] = {0.0, 0.0};  // FP32, TF32
        for (const Row& row : kRows) {
            if (row.ours && row.kernel == GemmKernel::Naive && n > 2048) continue;  // seconds per call
            double s;
            if (row.ours) {
                auto ours = [&] {  // C = A B: no transposes, ld = n, one matrix (batch 1), beta 0
                    td::cuda::gemm_with(row.kernel, false, false, n, n, n, a, n, 0, b, n, 0, c, n, 0, 1, 0.0f);
                };
                s = bench::time_gpu(ours, target);
            } else {
                s = bench::time_gpu([&] { cublas(row.tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F); },
                                    target);
                cublas_s[row.tf32 ? 1 : 0] = s;
            }
            check_cuda(cudaDeviceSynchronize(), row.name);
            const bool tf32 = row.tf32 || (row.kernel == GemmKernel::Best && row.ours && default_tf32);
            const double pct = 100.0 * cublas_s[tf32 ? 1 : 0] / s;
            const double err = bench::max_rel_error(C, ref);
            const char* verdict = checks.add("n " + std::to_string(n) + ", " + row.name, err, bench::tolerance(tf32));
            std::string pct_s = row.ours ? std::to_string((int)std::lround(pct)) + " %" : "";
            std::string target_s = row.has_target ? (pct >= 70.0 ? "yes" : "**no**") : "";
            std::printf("| %lld | %s | %.3f | %.1f | %s | %s | %.1e | %s |\n", (long long)n, row.name, s * 1e3,
                        flop / s / 1e12, pct_s.c_str(), target_s.c_str(), err, verdict);
            std::fflush(stdout);
        }
    }
    cublasDestroy(handle);
    return checks.report("bench_cuda_gemm");
}

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {  // td::Error from a CUDA or cuBLAS call, a bad number
        std::fprintf(stderr, "bench_cuda_gemm: %s\n", e.what());
        return 1;
    }
}
