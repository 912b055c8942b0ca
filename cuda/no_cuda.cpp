// cuda/no_cuda.cpp: the GPU layer of a build without nvcc (tensor/gpu_probe.h). Every
// answer is "no GPU"; the Makefile compiles this file instead of cuda/*.cu when nvcc is
// not found (or CUDA=0). The host-memory stand-in (tensor/device.h) works here too.
#include "cuda/gemm.h"
#include "tensor/device.h"
#include "tensor/error.h"
#include "tensor/gpu_probe.h"

namespace td {

bool cuda_built() { return false; }

namespace gpu {

int device_count() { return 0; }
std::string description() { return "no CUDA backend in this build (nvcc was not found, or CUDA=0)"; }
void select_device(int) {}

}  // namespace gpu

// The GEMM ladder by name (cuda/gemm.h), for the tests and benches that call a rung
// directly: without the CUDA backend there is no kernel to run, and no GPU memory to
// run it on (they check cuda_available() first; this only makes such a program link).
namespace cuda {

void gemm_with(GemmKernel, bool, bool, int64_t, int64_t, int64_t, const float*, int64_t, int64_t, const float*, int64_t,
               int64_t, float*, int64_t, int64_t, int64_t, float) {
    fail("cuda gemm: this build has no CUDA backend (nvcc was not found, or CUDA=0)");
}

}  // namespace cuda

}  // namespace td
