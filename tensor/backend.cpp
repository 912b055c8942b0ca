// tensor/backend.cpp: the backend registry (which backend runs which device) and the
// defaults of the optional Backend entries (tensor/backend.h). Each default throws a
// td::Error naming the backend and the entry, so a missing kernel is a clear message,
// never a silent fallback to another device.
#include "tensor/backend.h"

#include <atomic>

#include "tensor/cpu/cpu_backend.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace td {

// ---- registry: which backend runs which device -------------------------------------------

// Atomic: the stand-in (tensor/device.h) may register or unregister itself while another
// thread asks for a backend.
static std::atomic<Backend*> g_cuda_backend{nullptr};

Backend& backend_for(Device device) {
    static CpuBackend cpu;  // built on first use: no static-initialisation-order surprises
    if (device == Device::CPU) return cpu;
    if (g_cuda_backend.load() == nullptr) cuda_device_count();  // the first ask registers the CUDA backend, if usable
    Backend* cuda = g_cuda_backend.load();
    check(cuda != nullptr, "cuda: ", cuda_description());
    return *cuda;
}

// The CUDA backend (cuda/runtime.cu, on finding a GPU) or the host-memory stand-in
// (tensor/device.cpp); nullptr unregisters (stop_host_standin_for_cuda).
void register_backend(Device device, Backend* backend) {
    check(device == Device::CUDA, "register_backend: the CPU backend is built in");
    g_cuda_backend.store(backend);
}

// ---- defaults of the optional entries ------------------------------------------------------

// SiLU(GroupNorm(x)), composed from the unfused entries. The backward rebuilds z = GroupNorm(x)
// (the same kernel, so the same bits as the forward's), takes dz = dy * silu'(z), then
// runs GroupNorm's backward on dz.
void Backend::group_norm_silu_forward(const Tensor& x, int64_t groups, const Tensor& gamma, const Tensor& beta,
                                      float eps, const Tensor& y, const Tensor& mean, const Tensor& rstd) {
    group_norm_forward(x, groups, gamma, beta, eps, y, mean, rstd);
    unary(UnaryOp::Silu, y, y, 0.0f, 0.0f);
}
void Backend::group_norm_silu_backward(const Tensor& dy, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                                       const Tensor& gamma, const Tensor& beta, int64_t groups, float eps,
                                       const Tensor& dx, const Tensor& dgamma, const Tensor& dbeta) {
    // z again: the same kernel on the same input gives the forward's bits (and statistics)
    Tensor z = Tensor::empty(x.shape(), DType::Float32, x.device());
    Tensor m2 = Tensor::empty(mean.shape(), DType::Float32, x.device());
    Tensor r2 = Tensor::empty(rstd.shape(), DType::Float32, x.device());
    group_norm_forward(x, groups, gamma, beta, eps, z, m2, r2);
    Tensor dz = Tensor::empty(x.shape(), DType::Float32, x.device());
    unary_backward(UnaryOp::Silu, z, dy, dz, 0.0f, 0.0f);
    group_norm_backward(dz, x, mean, rstd, gamma, groups, dx, dgamma, dbeta);
}

void Backend::copy_from_host(void*, const void*, size_t) {
    fail(name(), " backend: copy_from_host is not implemented");
}
void Backend::copy_to_host(void*, const void*, size_t) { fail(name(), " backend: copy_to_host is not implemented"); }

void Backend::attention_forward(const Tensor&, const Tensor&, const Tensor&, float, const Tensor&, const Tensor&) {
    fail(name(), " backend: attention_forward is not implemented");
}
void Backend::attention_backward(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const Tensor&,
                                 const Tensor&, float, const Tensor&, const Tensor&, const Tensor&) {
    fail(name(), " backend: attention_backward is not implemented");
}

void Backend::adam_update(const Tensor&, const Tensor&, const Tensor&, const Tensor&, const AdamStep&) {
    fail(name(), " backend: adam_update is not implemented");
}
void Backend::ema_update(const Tensor&, const Tensor&, float) {
    fail(name(), " backend: ema_update is not implemented");
}

void Backend::fill_random(const Tensor&, Distribution, uint64_t, uint64_t, float, float) {
    fail(name(), " backend: fill_random is not implemented");
}

}  // namespace td
