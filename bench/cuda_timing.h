// bench/cuda_timing.h: how the GPU benches (bench/cuda_gemm.cu, bench/cuda_conv.cu) time a
// piece of GPU work, and how they compare two results. Header-only.
//
// Method: two warm-up calls (first-call costs: the caching allocator's cudaMallocs, module
// loading, cuBLAS / cuDNN picking kernels); then one timed call sets how many fit the time
// target, reps = clamp(target / t, 3, max_reps); each call is timed alone between two CUDA
// events recorded on the default stream, i.e. by the GPU's own clock: the host's time to
// queue the work is not counted unless the GPU waits for it. The median is reported.
// Before each timed call the L2 cache is flushed (flush_l2: a write of twice its size,
// outside the events): an H100's 50 MB of L2 holds a whole 2048 x 2048 GEMM's operands, so
// without it every call after the first would read them from L2 and time a cache, not the
// memory a real step's first touch of its data pays for.
//
// Checking: every bench compares each result with a reference (cuBLAS, cuDNN or the CPU)
// and records it in a Checks; at the end Checks::report prints one line per failure and
// the bench exits with kWrongResults when any row is past its tolerance (FP32 1e-4, TF32
// 1e-2, relative to the reference's largest element), so a fast wrong kernel fails the
// run instead of being reported as fast. scripts/gpu-check.sh says "ok" only for exit 0.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda/cuda_check.h"
#include "tensor/error.h"
#include "tensor/tensor.h"

namespace bench {

inline double median_of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Evicts everything from the L2 cache: writes a buffer twice its size (allocated at the
// first call, kept for the process) on the default stream.
inline void flush_l2() {
    using td::cuda::check_cuda;
    static void* buffer = nullptr;
    static size_t bytes = 0;
    if (buffer == nullptr) {
        int device = 0, l2 = 0;
        check_cuda(cudaGetDevice(&device), "cudaGetDevice");
        check_cuda(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device), "cudaDeviceGetAttribute(L2)");
        bytes = std::max<size_t>(2 * (size_t)l2, size_t(1) << 20);
        check_cuda(cudaMalloc(&buffer, bytes), "cudaMalloc(L2 flush buffer)");
    }
    check_cuda(cudaMemsetAsync(buffer, 0, bytes), "cudaMemsetAsync(L2 flush)");
}

// The median GPU time of call() in seconds. call() queues work on the default stream.
template <class Call>
double time_gpu(Call call, double target_s, int max_reps = 50) {
    using td::cuda::check_cuda;
    call();
    call();
    cudaEvent_t start, stop;
    check_cuda(cudaEventCreate(&start), "cudaEventCreate");
    check_cuda(cudaEventCreate(&stop), "cudaEventCreate");
    auto once = [&] {
        flush_l2();  // queued before the start event: not timed
        check_cuda(cudaEventRecord(start), "cudaEventRecord");
        call();
        check_cuda(cudaEventRecord(stop), "cudaEventRecord");
        check_cuda(cudaEventSynchronize(stop), "cudaEventSynchronize");
        float ms = 0.0f;
        check_cuda(cudaEventElapsedTime(&ms, start, stop), "cudaEventElapsedTime");
        return ms * 1e-3;
    };
    double first = once();
    int reps = (int)std::clamp(std::ceil(target_s / std::max(first, 1e-7)), 3.0, (double)max_reps);
    std::vector<double> times;
    for (int r = 0; r < reps; ++r) times.push_back(once());
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    return median_of(times);
}

// max |got - ref| / max |ref| over every element (on the host): a relative error for the
// whole tensor, not element by element, so entries near zero do not blow it up.
inline double max_rel_error(const td::Tensor& got_t, const std::vector<float>& ref) {
    std::vector<float> got = got_t.to(td::Device::CPU).to_vector();
    td::check(got.size() == ref.size(), "max_rel_error: ", got.size(), " values against ", ref.size());
    double max_diff = 0.0, max_ref = 0.0;
    for (size_t i = 0; i < ref.size(); ++i) {
        max_diff = std::max(max_diff, std::fabs((double)got[i] - ref[i]));
        max_ref = std::max(max_ref, std::fabs((double)ref[i]));
    }
    return max_ref > 0 ? max_diff / max_ref : max_diff;
}

inline double max_rel_error(const td::Tensor& got, const td::Tensor& ref) {
    return max_rel_error(got, ref.to(td::Device::CPU).to_vector());
}

// Exit code of a bench whose results were past their tolerance (1: it could not run).
constexpr int kWrongResults = 3;

// The tolerance of a relative error (max_rel_error) for a result of this precision.
inline double tolerance(bool tf32) { return tf32 ? 1e-2 : 1e-4; }

// The verdicts of one bench run: add() each comparison, then return report() from main.
struct Checks {
    int checked = 0;
    std::vector<std::string> failures;

    // Records one comparison; returns the table cell: "ok" or "**FAIL**".
    const char* add(const std::string& what, double rel_error, double tol) {
        ++checked;
        if (rel_error <= tol) return "ok";  // (NaN fails: every comparison with it is false)
        char line[512];
        std::snprintf(line, sizeof line, "%s: relative error %.2e > tolerance %.0e", what.c_str(), rel_error, tol);
        failures.push_back(line);
        return "**FAIL**";
    }

    // Prints the verdict (markdown, after the tables) and returns the exit code.
    int report(const char* prog) const {
        if (failures.empty()) {
            std::printf(
                "\n- check: all %d results within tolerance (FP32 1e-4, TF32 1e-2 of the reference's "
                "largest element)\n",
                checked);
            return 0;
        }
        std::printf("\n- check: **%zu of %d results past tolerance**:\n", failures.size(), checked);
        for (const std::string& f : failures) std::printf("  - %s\n", f.c_str());
        std::fflush(stdout);
        std::fprintf(stderr, "%s: %zu results past tolerance (exit %d)\n", prog, failures.size(), kWrongResults);
        return kWrongResults;
    }
};

}  // namespace bench
