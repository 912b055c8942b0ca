// tensor/cpu/fast_exp.h: e^x and the logistic sigmoid in float, in a form the compiler
// vectorises, shared by the elementwise kernels (elementwise.cpp) and the fused
// SiLU(GroupNorm) kernel (norm.cpp), so both compute SiLU with the same bits.
#pragma once
#include <cstdint>
#include <cstring>

namespace td {

// e^x in float, written so that a loop calling it vectorises (std::exp is a library call
// the compiler cannot vectorise; it was ~8% of a UNet training step through SiLU).
// Cephes' expf: x = n ln2 + r with |r| <= ln2 / 2 (ln2 split in two parts, Cody & Waite,
// so n ln2 is exact), e^r by a degree-7 polynomial, then 2^n written straight into the
// exponent bits. Relative error ~1e-7, a few ulp. x is clamped to [-87, 88] (e^x stays a
// normal float); a NaN stays NaN, so non-finite values still surface.
inline float exp_vec(float x) {
    float xc = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);           // (std::fmin is a call: it would not vectorise)
    float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;  // round(x / ln2): 1.5 * 2^23 trick
    float r = xc - n * 0.693359375f;
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * r * r + r + 1.0f;
    int32_t bits = ((int32_t)n + 127) << 23;  // 2^n as a float: exponent field n + 127
    float scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return x != x ? x : e * scale;
}
inline float sigmoid_of(float x) { return 1.0f / (1.0f + exp_vec(-x)); }

}  // namespace td
