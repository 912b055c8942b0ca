// tensor/device.h: which devices this build and this machine can run tensors on.
//
// The CUDA backend (cuda/) is compiled whenever the Makefile finds nvcc; a build without
// it links cuda/no_cuda.cpp instead, whose answers are all "no GPU". Either way the
// functions below exist, so the rest of the engine asks one question and never needs
// an #ifdef.
//
// On a machine without a GPU, the host-memory stand-in (tensor/cpu/cuda_standin.h) can
// play the GPU: tensors tagged cuda, every device check and every .to() run as they
// would on a GPU, with the CPU kernels doing the arithmetic. Turn it on with
// use_host_standin_for_cuda(), or with TD_CUDA_STANDIN=1 in the environment.
#pragma once
#include <string>

#include "tensor/tensor.h"

namespace td {

// GPUs this process can use: 0 when the build has no CUDA backend, when no driver is
// installed, or when the machine has no GPU; 1 while the stand-in plays the GPU. The
// first call that finds a GPU registers the CUDA backend with the registry of
// tensor/backend.h. The first call also reads TD_CUDA_STANDIN (see below).
int cuda_device_count();
inline bool cuda_available() { return cuda_device_count() > 0; }

// Whether this build contains the CUDA backend at all (nvcc was found when it was built).
bool cuda_built();

// One line on the device: "NVIDIA H200, compute capability 9.0, 139 GiB, 132 SMs", or why
// there is none ("no CUDA backend in this build", "CUDA driver version is insufficient ..."),
// or "host-memory stand-in for cuda (TD_CUDA_STANDIN): no GPU" while the stand-in plays it.
std::string cuda_description();

// ---- the host-memory stand-in for a GPU ------------------------------------------------
//
// Registers the stand-in as the cuda backend: from now on Device::CUDA tensors live in host
// memory and run the CPU kernels, and cuda_available() is true. Idempotent. Throws
// td::Error when a real GPU is present (its backend is registered on the first question,
// and the stand-in must never hide it). TD_CUDA_STANDIN=1 in the environment does the
// same at the first device query; with a real GPU the variable is ignored with a warning.
void use_host_standin_for_cuda();
// Unregisters it again (for tests that need the real answer afterwards). Throws td::Error,
// leaving it registered, while any cuda tensor still holds stand-in memory. A no-op when
// the stand-in is not on.
void stop_host_standin_for_cuda();
// True while the stand-in plays the GPU: cuda_available() is then no proof of a GPU.
bool cuda_is_standin();

// dst = src across devices (host <-> GPU, or within one device): src any layout, dst
// contiguous, same shape and dtype. What Tensor::to(Device) calls; tensor/device.cpp does
// it with the backends' copy_from_host / copy_to_host.
void copy_between_devices(const Tensor& src, const Tensor& dst);

// The device `--device` means: "cuda" (throws td::Error saying why when no GPU can be
// used), "cpu", or "auto" (cuda when available, else cpu).
Device parse_device(const std::string& name);

// One line for a program's output: "cpu", or "cuda (" + cuda_description() + ")".
std::string device_description(Device device);

}  // namespace td
