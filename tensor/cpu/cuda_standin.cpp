// tensor/cpu/cuda_standin.cpp: the stand-in's memory, counted (see cuda_standin.h). Every
// kernel is the CPU backend's, inherited; only allocation is wrapped.
#include "tensor/cpu/cuda_standin.h"

namespace td {

void* CudaStandinBackend::allocate(size_t nbytes) {
    void* p = CpuBackend::allocate(nbytes);
    ++live_;
    return p;
}

void CudaStandinBackend::deallocate(void* ptr) {
    if (!ptr) return;
    --live_;
    CpuBackend::deallocate(ptr);
}

}  // namespace td
