// tensor/cpu/lane_sum.h: sums and dot products of float arrays, accumulated in double.
#pragma once
#include <cstdint>

namespace td {

// Sum of n contiguous floats in double, in kLanes independent running sums added at the
// end in a fixed order. One running sum would make every addition wait for the one
// before it; kLanes of them let the compiler keep two vector registers of sums (8 doubles
// each) busy, and the fixed order keeps the result the same on every run. (8 lanes, one
// register, made each addition wait for the last; 16 made group_norm's forward 15%
// faster, and 32 made its backward slower again, on the short planes' final adds.)
inline constexpr int kLanes = 16;

inline double lane_sum(const float* x, int64_t n) {
    double lane[kLanes] = {0};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int k = 0; k < kLanes; ++k) lane[k] += x[i + k];
    double s = 0.0;
    for (; i < n; ++i) s += x[i];
    for (int k = 0; k < kLanes; ++k) s += lane[k];
    return s;
}

// sum of (x - m)^2, the same way
inline double lane_sum_sq(const float* x, int64_t n, double m) {
    double lane[kLanes] = {0};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int k = 0; k < kLanes; ++k) lane[k] += (x[i + k] - m) * (x[i + k] - m);
    double s = 0.0;
    for (; i < n; ++i) s += (x[i] - m) * (x[i] - m);
    for (int k = 0; k < kLanes; ++k) s += lane[k];
    return s;
}

// sum of x[i] * y[i], the same way
inline double lane_dot(const float* x, const float* y, int64_t n) {
    double lane[kLanes] = {0};
    int64_t i = 0;
    for (; i + kLanes <= n; i += kLanes)
        for (int k = 0; k < kLanes; ++k) lane[k] += (double)x[i + k] * y[i + k];
    double s = 0.0;
    for (; i < n; ++i) s += (double)x[i] * y[i];
    for (int k = 0; k < kLanes; ++k) s += lane[k];
    return s;
}

}  // namespace td
