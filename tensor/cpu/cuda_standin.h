// tensor/cpu/cuda_standin.h: the host-memory stand-in for a GPU.
//
// Why it exists: to run every `--device cuda` code path (tensors tagged cuda, every device
// check, every .to()) on a machine without a GPU, so that tests and students catch a
// tensor left on the wrong device (a batch not moved, a zeros() made on the CPU inside a
// backward pass, a checkpoint written from GPU memory) on a laptop, not on a GPU machine
// later.
//
// What it is: the CPU backend, registered as Device::CUDA. Its memory is host memory and
// its kernels are the CPU kernels, so a model trained on the stand-in computes exactly
// what it computes on the CPU, bit for bit; only the device tags differ. Its allocations
// are counted, so it can be unregistered again once no cuda tensor is left
// (stop_host_standin_for_cuda, tensor/device.h).
//
// What it cannot catch: host code that reads a cuda tensor's memory directly
// (data_f32() in a loop) works here, because the memory is the host's; on a GPU it would
// crash. Reading values goes through .to(Device::CPU) for that reason.
//
// Switched on by use_host_standin_for_cuda() or TD_CUDA_STANDIN=1 (tensor/device.h).
#pragma once
#include <atomic>
#include <cstdint>

#include "tensor/cpu/cpu_backend.h"

namespace td {

struct CudaStandinBackend : CpuBackend {
    const char* name() const override { return "cuda (host-memory stand-in)"; }
    void* allocate(size_t nbytes) override;
    void deallocate(void* ptr) override;
    int64_t live_blocks() const { return live_.load(); }

private:
    std::atomic<int64_t> live_{0};  // blocks handed out and not yet given back
};

}  // namespace td
