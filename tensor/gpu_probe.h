// tensor/gpu_probe.h: what the build's GPU layer says about real GPUs, before the
// host-memory stand-in is taken into account. cuda/runtime.cu answers it with the CUDA
// runtime (and registers the CUDA backend when it finds a GPU); cuda/no_cuda.cpp answers
// "none" in a build without nvcc. Only tensor/device.cpp (and distributed/mpi.cpp, for
// select_device) calls these: everything else asks tensor/device.h, whose answers include
// the stand-in.
#pragma once
#include <string>

namespace td::gpu {

int device_count();         // real GPUs usable by this process (0: none)
std::string description();  // the GPU in one line, or why there is none
// Data-parallel runs (distributed/mpi.cpp): with several GPUs visible, the i-th rank on a
// machine takes GPU i % count, so ranks sharing a machine never share a GPU. No GPU, or
// just one: nothing to choose.
void select_device(int local_rank);

}  // namespace td::gpu
