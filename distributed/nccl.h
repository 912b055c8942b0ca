// distributed/nccl.h: GPU buffers between ranks through NCCL (NVIDIA's collective
// communication library, shipped with the CUDA Toolkit).
//
// Why NCCL for GPU tensors rather than MPI: MPI moves host memory (a CUDA-aware MPI can
// take device pointers, Debian's Open MPI is not built so); staging every bucket through
// host memory costs two PCIe copies per step. NCCL runs the all-reduce as CUDA kernels
// that move data GPU to GPU (NVLink, PCIe peer to peer, or InfiniBand with GPUDirect),
// ordered on a CUDA stream like any other kernel.
//
// MPI still starts the ranks: NCCL's communicator is named by a 128-byte unique id that
// rank 0 creates and every rank must receive before joining (share_id below: an
// MPI_Bcast). One NCCL communicator per run, made the first time GPU tensors are reduced.
//
// distributed/nccl.cpp is compiled when the Makefile finds nvcc and nccl.h, else
// distributed/no_nccl.cpp, whose unavailable_reason() says so.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "tensor/tensor.h"

namespace td::dist {

class Nccl {
public:
    // "" when NCCL can be used by this process; otherwise why not (no NCCL in this build,
    // libnccl.so.2 does not load, no GPU).
    static std::string unavailable_reason();

    // Joins rank `rank` of `size` to one NCCL communicator on the current GPU.
    // share_id(bytes, n): copies rank 0's n bytes into `bytes` on every rank (MPI_Bcast).
    // Blocks until every rank has joined (NCCL's blocking initialisation: no deadline).
    Nccl(int rank, int size, const std::function<void(void* bytes, size_t n)>& share_id);
    ~Nccl();
    Nccl(const Nccl&) = delete;
    Nccl& operator=(const Nccl&) = delete;

    // The first `count` elements of `flat` (contiguous, on the GPU, float32) become
    // their sum over the ranks, in place. Broadcast: they become rank `root`'s (float32 or
    // int64). Both wait for the result at most timeout_s seconds and return "" when it
    // arrived, else the reason ("did not complete within N s: ...", or NCCL's error); the
    // communicator is then aborted (its kernels stop) and the caller ends the job.
    std::string allreduce_sum(const Tensor& flat, int64_t count, double timeout_s);
    std::string broadcast(const Tensor& flat, int64_t count, int root, double timeout_s);

    // NCCL's version, "2.28.9".
    std::string version() const;

private:
    struct State;  // NCCL's handles (distributed/nccl.cpp)
    std::unique_ptr<State> s_;
};

}  // namespace td::dist
