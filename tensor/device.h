// tensor/device.h: which devices this build and this machine can run tensors on.
//
// The CUDA backend (cuda/) is compiled whenever the Makefile finds nvcc; a build without
// it links cuda/no_cuda.cpp instead, whose answers are all "no GPU". Either way the
// functions below exist, so the rest of the engine asks one question and never needs
// an #ifdef.
#pragma once
#include <string>

#include "tensor/tensor.h"

namespace td {

// GPUs this process can use: 0 when the build has no CUDA backend, when no driver is
// installed, or when the machine has no GPU. The first call that finds one registers
// the CUDA backend with the registry of tensor/backend.h.
int cuda_device_count();
inline bool cuda_available() { return cuda_device_count() > 0; }

// Whether this build contains the CUDA backend at all (nvcc was found when it was built).
bool cuda_built();

// One line on the device: "NVIDIA H200, compute capability 9.0, 139 GiB, 132 SMs", or why
// there is none ("no CUDA backend in this build", "CUDA driver version is insufficient ...").
std::string cuda_description();

// dst = src across devices (host <-> GPU, or GPU <-> GPU): src any layout, dst contiguous,
// same shape and dtype. What Tensor::to(Device) calls; cuda/memory.cu does the work.
void copy_between_devices(const Tensor& src, const Tensor& dst);

// The device `--device` means: "cuda" (throws td::Error saying why when no GPU can be
// used), "cpu", or "auto" (cuda when available, else cpu).
Device parse_device(const std::string& name);

}  // namespace td
