// PLACEHOLDER: being written.
#include "tensor/cpu/cpu_backend.h"
#include "tensor/error.h"
namespace td {
void CpuBackend::group_norm_forward(const Tensor&, int64_t, const Tensor&, const Tensor&, float, const Tensor&, const Tensor&, const Tensor&) { fail("not yet"); }
void CpuBackend::group_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, int64_t, const Tensor&, const Tensor&, const Tensor&) { fail("not yet"); }
void CpuBackend::layer_norm_forward(const Tensor&, const Tensor&, const Tensor&, float, const Tensor&, const Tensor&, const Tensor&) { fail("not yet"); }
void CpuBackend::layer_norm_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&) { fail("not yet"); }
void CpuBackend::softmax_forward(const Tensor&, const Tensor&, bool) { fail("not yet"); }
void CpuBackend::softmax_backward(const Tensor&, const Tensor&, const Tensor&, bool) { fail("not yet"); }
}  // namespace td
