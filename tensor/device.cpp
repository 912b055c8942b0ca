// tensor/device.cpp: --device parsing, the same with and without the CUDA backend.
#include "tensor/device.h"

#include "tensor/error.h"

namespace td {

Device parse_device(const std::string& name) {
    if (name == "cpu") return Device::CPU;
    if (name == "auto") return cuda_available() ? Device::CUDA : Device::CPU;
    check(name == "cuda", "--device: expected cuda, cpu or auto, got '", name, "'");
    check(cuda_available(), "--device cuda: no GPU can be used: ", cuda_description());
    return Device::CUDA;
}

}  // namespace td
