// bench/cuda_timing.h: how the GPU benches (bench/cuda_gemm.cu, bench/cuda_conv.cu) time a
// piece of GPU work, and how they compare two results. Header-only.
//
// Method: two warm-up calls (first-call costs: the caching allocator's cudaMallocs, module
// loading, cuBLAS / cuDNN picking kernels); then one timed call sets how many fit the time
// target, reps = clamp(target / t, 3, max_reps); each call is timed alone between two CUDA
// events recorded on the default stream, i.e. by the GPU's own clock: the host's time to
// queue the work is not counted unless the GPU waits for it. The median is reported.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
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

}  // namespace bench
