// distributed/no_nccl.cpp: distributed/nccl.h for a build without NCCL (the Makefile did
// not find both nvcc and nccl.h, or CUDA=0 / NCCL=0). Nothing can be made; GPU tensors of a
// distributed run, if any, go through host memory and MPI (distributed/mpi.cpp).
#include "distributed/nccl.h"

#include "tensor/error.h"

namespace td::dist {

struct Nccl::State {};

namespace {
const char* kWhy = "this build has no NCCL (the Makefile did not find nvcc and nccl.h, or CUDA=0 / NCCL=0)";
}

std::string Nccl::unavailable_reason() { return kWhy; }

Nccl::Nccl(int, int, const std::function<void(void*, size_t)>&) { fail("NCCL: ", kWhy); }
Nccl::~Nccl() = default;

std::string Nccl::allreduce_sum(const Tensor&, int64_t, double) { fail("NCCL: ", kWhy); }
std::string Nccl::broadcast(const Tensor&, int64_t, int, double) { fail("NCCL: ", kWhy); }
std::string Nccl::version() const { return "none"; }

}  // namespace td::dist
