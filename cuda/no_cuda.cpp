// cuda/no_cuda.cpp: tensor/device.h for a build without nvcc. Every answer is "no GPU";
// the Makefile compiles this file instead of cuda/*.cu when nvcc is not found (or CUDA=0).
#include "tensor/device.h"

#include "tensor/error.h"

namespace td {

int cuda_device_count() { return 0; }
bool cuda_built() { return false; }
void copy_between_devices(const Tensor&, const Tensor&) {
    fail("to(cuda): no CUDA backend in this build (nvcc was not found, or CUDA=0)");
}

std::string cuda_description() { return "no CUDA backend in this build (nvcc was not found, or CUDA=0)"; }

}  // namespace td
