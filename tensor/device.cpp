// tensor/device.cpp: the device questions (the host-memory stand-in included), --device
// parsing, and copies between devices; the same with and without the CUDA backend.
#include "tensor/device.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "tensor/backend.h"
#include "tensor/cpu/cuda_standin.h"
#include "tensor/error.h"
#include "tensor/gpu_probe.h"

namespace td {

// ---- the stand-in ---------------------------------------------------------------------------

namespace {

std::mutex g_standin_mu;
bool g_standin_on = false;  // guarded by g_standin_mu

CudaStandinBackend& standin() {
    static CudaStandinBackend* backend =
        new CudaStandinBackend;  // never destroyed: tensors may outlive static destructors
    return *backend;
}

// TD_CUDA_STANDIN=1 switches the stand-in on at the first device question, so that a
// program that was never told about it (diffuse train ddpm --device cuda) runs on it.
void read_standin_variable_once() {
    static std::once_flag once;
    std::call_once(once, [] {
        const char* v = std::getenv("TD_CUDA_STANDIN");
        if (v == nullptr || std::strcmp(v, "1") != 0) return;
        if (gpu::device_count() > 0) {  // a real GPU always wins
            std::fprintf(stderr, "tinydiffusion: TD_CUDA_STANDIN=1 ignored: a real GPU is present (%s)\n",
                         gpu::description().c_str());
            return;
        }
        use_host_standin_for_cuda();
    });
}

bool standin_on() {
    std::lock_guard<std::mutex> lock(g_standin_mu);
    return g_standin_on;
}

}  // namespace

void use_host_standin_for_cuda() {
    std::lock_guard<std::mutex> lock(g_standin_mu);
    if (g_standin_on) return;
    // Asking registers the real CUDA backend when there is a GPU: then there is nothing to stand in for.
    check(gpu::device_count() == 0, "use_host_standin_for_cuda: a real GPU is present (", gpu::description(),
          "); the stand-in is for machines without one");
    register_backend(Device::CUDA, &standin());
    g_standin_on = true;
}

void stop_host_standin_for_cuda() {
    std::lock_guard<std::mutex> lock(g_standin_mu);
    if (!g_standin_on) return;
    int64_t live = standin().live_blocks();
    check(live == 0, "stop_host_standin_for_cuda: ", live, " blocks of cuda memory are still in use on the stand-in; ",
          "drop every cuda tensor (and module on cuda) first");
    register_backend(Device::CUDA, nullptr);
    g_standin_on = false;
}

bool cuda_is_standin() {
    read_standin_variable_once();
    return standin_on();
}

// ---- the questions: the stand-in when it is on, else the build's GPU layer -----------------

int cuda_device_count() {
    read_standin_variable_once();
    return standin_on() ? 1 : gpu::device_count();
}

std::string cuda_description() {
    read_standin_variable_once();
    if (standin_on()) return "host-memory stand-in for cuda (TD_CUDA_STANDIN): no GPU";
    return gpu::description();
}

std::string device_description(Device device) {
    return device == Device::CPU ? std::string("cpu") : "cuda (" + cuda_description() + ")";
}

Device parse_device(const std::string& name) {
    if (name == "cpu") return Device::CPU;
    if (name == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
    check(name == "cuda", "--device: expected cuda, cpu or auto, got '", name, "'");
    check(cuda_available(), "--device cuda: ", cuda_description(),
          " (TD_CUDA_STANDIN=1 runs the cuda code paths on the CPU, for testing them without a GPU)");
    return Device::CUDA;
}

// ---- copies between devices -----------------------------------------------------------------

void copy_between_devices(const Tensor& src, const Tensor& dst) {
    check(src.shape() == dst.shape() && src.dtype() == dst.dtype(),
          "to(device): shapes or dtypes differ: ", src.shape(), " ", dtype_name(src.dtype()), " and ", dst.shape(), " ",
          dtype_name(dst.dtype()));
    check(dst.is_contiguous(), "to(device): the destination must be contiguous");
    if (src.device() == dst.device()) {  // within one device: its own strided copy kernel
        backend_for(dst.device()).copy(src.detach(), dst);
        return;
    }
    size_t nbytes = (size_t)dst.numel() * dtype_size(dst.dtype());
    if (nbytes == 0) return;
    // The bytes cross as one contiguous block, so a strided source is made contiguous
    // first, on its own device (the cheap side of the bus).
    Tensor s = src.detach().contiguous();
    const void* from = static_cast<const char*>(s.impl()->storage->data) + s.offset() * dtype_size(s.dtype());
    void* to = static_cast<char*>(dst.impl()->storage->data) + dst.offset() * dtype_size(dst.dtype());
    if (s.device() == Device::CPU) {
        backend_for(dst.device()).copy_from_host(to, from, nbytes);
    } else if (dst.device() == Device::CPU) {
        backend_for(s.device()).copy_to_host(to, from, nbytes);
    } else {
        // Between two different accelerators: through host memory. Correct for any pair
        // of backends (Backend has no peer-to-peer entry), and cheap enough for what
        // crosses between devices: a model once, a minibatch per step. (Device has one
        // GPU kind today, so this branch waits for a second.)
        std::vector<char> host(nbytes);
        backend_for(s.device()).copy_to_host(host.data(), from, nbytes);
        backend_for(dst.device()).copy_from_host(to, host.data(), nbytes);
    }
}

}  // namespace td
