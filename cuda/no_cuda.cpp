// cuda/no_cuda.cpp: the GPU layer of a build without nvcc (tensor/gpu_probe.h). Every
// answer is "no GPU"; the Makefile compiles this file instead of cuda/*.cu when nvcc is
// not found (or CUDA=0). The host-memory stand-in (tensor/device.h) works here too.
#include "tensor/device.h"
#include "tensor/gpu_probe.h"

namespace td {

bool cuda_built() { return false; }

namespace gpu {

int device_count() { return 0; }
std::string description() { return "no CUDA backend in this build (nvcc was not found, or CUDA=0)"; }
void select_device(int) {}

}  // namespace gpu

}  // namespace td
