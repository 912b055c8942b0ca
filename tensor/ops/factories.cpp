// tensor/ops/factories.cpp: new tensors filled with constants and ranges.
// (Random tensors come from a td::Generator: tensor/random.cpp.)
//
// Constants are filled on their device by its backend; ranges are written on the host
// (a loop a student can read) and copied over in one transfer when the device is another.
#include <cmath>

#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td {

Tensor zeros(const Shape& shape, DType dtype, Device device) {
    Tensor t = Tensor::empty(shape, dtype, device);
    backend_for(device).fill(t, 0.0);
    return t;
}

Tensor full(const Shape& shape, float value, Device device) {
    Tensor t = Tensor::empty(shape, DType::Float32, device);
    backend_for(device).fill(t, value);
    return t;
}

Tensor ones(const Shape& shape, Device device) { return full(shape, 1.0f, device); }
Tensor zeros_like(const Tensor& x) { return zeros(x.shape(), x.dtype(), x.device()); }
Tensor ones_like(const Tensor& x) { return ones(x.shape(), x.device()); }
Tensor scalar_tensor(float value, Device device) { return full({}, value, device); }

// start, start + step, ... while < end (for step > 0), like torch.arange
Tensor arange(float start, float end, float step, Device device) {
    check(step != 0.0f, "arange: step must be non-zero");
    check((end - start) / step >= 0, "arange: step ", step, " goes the wrong way from ", start, " to ", end);
    int64_t n = (int64_t)std::ceil((double(end) - start) / step);
    Tensor t = Tensor::empty({n});
    float* p = t.data_f32();
    for (int64_t i = 0; i < n; ++i) p[i] = (float)(start + (double)i * step);
    return t.to(device);
}

Tensor arange_i64(int64_t end, Device device) {
    check(end >= 0, "arange_i64: end must be >= 0, got ", end);
    Tensor t = Tensor::empty({end}, DType::Int64);
    int64_t* p = t.data_i64();
    for (int64_t i = 0; i < end; ++i) p[i] = i;
    return t.to(device);
}

// `steps` points from start to end inclusive, evenly spaced (end hit exactly)
Tensor linspace(float start, float end, int64_t steps, Device device) {
    check(steps >= 0, "linspace: steps must be >= 0, got ", steps);
    Tensor t = Tensor::empty({steps});
    float* p = t.data_f32();
    double step = steps > 1 ? (double(end) - start) / (steps - 1) : 0.0;
    // Like PyTorch: the first half counts up from start, the second half down from end,
    // so both ends are exact.
    if (steps == 1) p[0] = start;
    for (int64_t i = 0; steps > 1 && i < steps; ++i)
        p[i] = i < steps / 2 ? (float)(start + step * i) : (float)(end - step * (steps - 1 - i));
    return t.to(device);
}

}  // namespace td
