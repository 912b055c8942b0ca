// tensor/cpu/softmax.cpp: softmax and log_softmax over the last dim, x viewed as (M, D).
//
//   softmax:      y = exp(x - max) / sum(exp(x - max))       (subtracting the max keeps exp finite)
//   log_softmax:  y = x - max - log(sum(exp(x - max)))
// Backward from the saved output y:
//   softmax:      dx = y * (dy - sum(dy * y))
//   log_softmax:  dx = dy - exp(y) * sum(dy)
#include <cmath>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/cpu/lane_sum.h"

namespace td {

void CpuBackend::softmax_forward(const Tensor& x, const Tensor& y, bool log) {
    int64_t D = x.size(-1), M = x.numel() / std::max<int64_t>(D, 1);
    const float* xp = x.data_f32();
    float* yp = y.data_f32();
#pragma omp parallel for if (M * D > 32768)
    for (int64_t m = 0; m < M; ++m) {
        const float* xr = xp + m * D;
        float* yr = yp + m * D;
        float mx = -INFINITY;
        for (int64_t d = 0; d < D; ++d) mx = xr[d] > mx ? xr[d] : mx;
        // exp computed once: kept in y, summed, then normalised in place
        for (int64_t d = 0; d < D; ++d) yr[d] = std::exp(xr[d] - mx);
        double sum = lane_sum(yr, D);
        if (log) {
            float log_sum = (float)std::log(sum);
            for (int64_t d = 0; d < D; ++d) yr[d] = xr[d] - mx - log_sum;
        } else {
            float inv = (float)(1.0 / sum);
            for (int64_t d = 0; d < D; ++d) yr[d] *= inv;
        }
    }
}

void CpuBackend::softmax_backward(const Tensor& y, const Tensor& dy, const Tensor& dx, bool log) {
    int64_t D = y.size(-1), M = y.numel() / std::max<int64_t>(D, 1);
    const float* yp = y.data_f32();
    const float* dyp = dy.data_f32();
    float* dxp = dx.data_f32();
#pragma omp parallel for if (M * D > 32768)
    for (int64_t m = 0; m < M; ++m) {
        const float* yr = yp + m * D;
        const float* dyr = dyp + m * D;
        float* dxr = dxp + m * D;
        if (log) {
            double s = lane_sum(dyr, D);
            for (int64_t d = 0; d < D; ++d) dxr[d] = dyr[d] - std::exp(yr[d]) * (float)s;
        } else {
            double s = lane_dot(dyr, yr, D);
            for (int64_t d = 0; d < D; ++d) dxr[d] = yr[d] * (dyr[d] - (float)s);
        }
    }
}

}  // namespace td
