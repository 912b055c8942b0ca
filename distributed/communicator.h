// distributed/communicator.h: the processes of a data-parallel run, and the collectives
// that keep their models identical (docs/distributed.md).
//
// Data parallelism: P processes ("ranks"), each with a full copy of the model, each
// training on its own slice of every global minibatch (distributed/shard.h). After
// backward, every rank holds the gradient of the mean loss over *its* slice; averaging
// those P gradients (allreduce_mean) gives every rank the gradient of the mean loss over
// the whole global minibatch, so every rank takes the same optimizer step and the
// models, started identical (broadcast), stay identical.
//
// The engines underneath are the standard ones of the field, not home-made:
//   MPI   (Open MPI from Debian) starts the ranks (mpirun) and moves CPU tensors;
//   NCCL  (from the CUDA Toolkit) moves GPU tensors, GPU to GPU (distributed/nccl.h).
// A build without MPI (the Makefile did not find it) compiles distributed/no_mpi.cpp
// instead of distributed/mpi.cpp: the same functions, where init_distributed() throws a
// td::Error saying how to enable it. local_communicator() exists in every build.
#pragma once
#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace td::dist {

// Every collective has a deadline (Options::timeout_s): a rank that died or stalls would
// otherwise leave the others waiting forever inside the collective. When one does not
// complete in time, the rank that notices prints
//   rank R: all-reduce of bucket K did not complete within N s: another rank failed or stalled
// and ends the whole job with MPI_Abort (non-zero exit), rather than hanging.
struct Options {
    // Gradients travel in buckets of about this many bytes (distributed/bucket.h): 25 MB,
    // PyTorch DDP's default. Environment: TD_DIST_BUCKET_MB (a decimal number of MB).
    size_t bucket_bytes = size_t(25) << 20;
    // Seconds one collective may take before the job is aborted. It must exceed the longest
    // stretch one rank works alone while the others wait at the next collective (rank 0
    // writing samples, for instance). Environment: TD_DIST_TIMEOUT (seconds).
    double timeout_s = 300.0;
    // Where a rank's time went, printed by each rank on stderr when it finalizes: its
    // time in the collectives (and, of it, waiting inside MPI: mostly for the slower
    // rank), the CPU time it got and the time it was ready to run but waited for a core
    // (docs/distributed.md, "Where the time goes"). Environment: TD_DIST_PROFILE=1.
    bool profile = false;

    // The defaults above, overridden by TD_DIST_TIMEOUT, TD_DIST_BUCKET_MB and
    // TD_DIST_PROFILE (unset, empty or 0: off) when set; throws td::Error on a timeout or
    // bucket size that is not a positive number.
    static Options from_env();
};

class Communicator {
public:
    virtual ~Communicator() = default;

    virtual int rank() const = 0;                 // 0 .. size() - 1
    virtual int size() const = 0;                 // P, the number of ranks
    bool is_root() const { return rank() == 0; }  // rank 0: the one that writes files
    virtual int local_rank() const = 0;           // rank among the ranks on this machine (picks the GPU)
    // One line: "MPI (Open MPI v4.1.4), rank 0 of 2, ..." or "one process (not distributed)".
    virtual std::string description() const = 0;

    // tensors[i] = the mean over ranks of tensors[i], in place, on every rank. float32,
    // all on one device, the same list of shapes on every rank (checked); any layout.
    // CPU tensors go through MPI, GPU tensors through NCCL, in buckets (bucket.h).
    virtual void allreduce_mean(std::vector<Tensor>& tensors) = 0;
    // tensors[i] = rank 0's tensors[i], on every rank (float32 or int64): the initial
    // weights, so every rank starts from the same model. Written in place, under no
    // autograd (parameters that require grad are fine).
    virtual void broadcast(std::vector<Tensor>& tensors) = 0;
    // Returns once every rank has called it (with the same deadline as the collectives).
    virtual void barrier() = 0;

    // The deadline of the collectives that follow, in seconds (> 0).
    virtual void set_timeout(double seconds) = 0;
    virtual double timeout() const = 0;

    // Leaves the job cleanly (every rank must call it, after its last collective). The
    // destructor calls it too, unless an exception is on its way out: a rank that failed
    // must not wait for the others in MPI_Finalize; its process exits without it and
    // mpirun then ends the whole job. (abort() below ends it at once.)
    virtual void finalize() = 0;
    // Prints "rank R: <why>" on stderr and ends every rank of the job with exit code `code`
    // (non-zero). What the CLI calls when this rank fails with a td::Error.
    [[noreturn]] virtual void abort(const std::string& why, int code = 1) = 0;
};

// The communicator of a run that is not distributed: rank 0 of 1. Every collective is a
// no-op (the mean over one rank is the tensor itself). In every build; touches no MPI.
std::unique_ptr<Communicator> local_communicator();

// Whether this build contains MPI (the Makefile found it; else distributed/no_mpi.cpp).
bool mpi_built();

// Joins the job that mpirun started (MPI_Init_thread; see distributed/mpi.cpp) and
// returns this rank's communicator. Once per process, first thing in main(): before any
// tensor goes to a GPU, since with several ranks on one machine and CUDA_VISIBLE_DEVICES
// unset it sets CUDA_VISIBLE_DEVICES to local_rank() (one GPU per rank). Run outside
// mpirun, it is a job of one rank. In a build without MPI it throws td::Error saying how
// to get MPI (what `diffuse train --distributed` reports there).
std::unique_ptr<Communicator> init_distributed(const Options& options = Options::from_env());

}  // namespace td::dist
