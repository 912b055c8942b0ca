// PLACEHOLDER: the conv family is being written; this file is replaced entirely.
#include "tensor/cpu/cpu_backend.h"
#include "tensor/error.h"
namespace td {
void CpuBackend::conv2d_forward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Conv2dShape&) { fail("conv2d: not yet"); }
void CpuBackend::conv2d_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Conv2dShape&) { fail("conv2d: not yet"); }
void CpuBackend::avg_pool2d(const Tensor&, int64_t, const Tensor&) { fail("avg_pool2d: not yet"); }
void CpuBackend::avg_pool2d_backward(const Tensor&, int64_t, const Tensor&) { fail("avg_pool2d: not yet"); }
void CpuBackend::upsample_nearest2d(const Tensor&, int64_t, const Tensor&) { fail("upsample: not yet"); }
void CpuBackend::upsample_nearest2d_backward(const Tensor&, int64_t, const Tensor&) { fail("upsample: not yet"); }
}  // namespace td
