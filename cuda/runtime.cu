// cuda/runtime.cu: is there a GPU, and registering the CUDA backend when there is
// (tensor/gpu_probe.h; tensor/device.cpp adds the host-memory stand-in on top).
#include <cstdio>
#include <mutex>

#include "cuda/cuda_backend.h"
#include "cuda/cuda_check.h"
#include "tensor/device.h"
#include "tensor/gpu_probe.h"

namespace td {

namespace {

struct Probe {
    int count = 0;
    std::string why;  // when count == 0: the runtime's reason
};

// Asked once per process: cudaGetDeviceCount initialises the runtime (~100 ms with a
// driver; an immediate error without one).
const Probe& probe() {
    static Probe p;
    static std::once_flag once;
    std::call_once(once, [] {
        cudaError_t err = cudaGetDeviceCount(&p.count);
        if (err != cudaSuccess) {
            p.count = 0;
            p.why = cudaGetErrorString(err);
            cudaGetLastError();  // clear it: later calls should not see a stale error
        } else if (p.count == 0) {
            p.why = "no GPU found";
        }
        if (p.count > 0) {
            static CudaBackend backend;  // lives as long as the process
            register_backend(Device::CUDA, &backend);
        }
    });
    return p;
}

}  // namespace

bool cuda_built() { return true; }

int gpu::device_count() { return probe().count; }

void gpu::select_device(int local_rank) {
    const Probe& p = probe();
    if (p.count > 1) cuda::check_cuda(cudaSetDevice(local_rank % p.count), "cudaSetDevice");
}

std::string gpu::description() {
    const Probe& p = probe();
    if (p.count == 0) return "no GPU can be used: " + p.why;
    int dev = 0;
    cuda::check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
    cudaDeviceProp prop{};
    cuda::check_cuda(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
    char buf[512];  // prop.name is at most 256 bytes
    std::snprintf(
        buf, sizeof buf, "%.256s, compute capability %d.%d, %.0f GiB, %d SMs%s", prop.name, prop.major, prop.minor,
        (double)prop.totalGlobalMem / (1024.0 * 1024.0 * 1024.0), prop.multiProcessorCount,
        p.count > 1 ? (" (using device " + std::to_string(dev) + " of " + std::to_string(p.count) + ")").c_str() : "");
    return buf;
}

}  // namespace td
