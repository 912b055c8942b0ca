// distributed/nccl.cpp: distributed/nccl.h with NCCL, for a build where the Makefile found
// nvcc and nccl.h (else distributed/no_nccl.cpp).
//
// Loading NCCL: dlopen("libnccl.so.2") at first use, not -lnccl at link time. The toolkit
// ships NCCL as a shared library only (no libnccl_static.a), and a program linked against
// it would refuse to start wherever libnccl.so.2 is not on the loader's path, CPU-only runs
// included, while the rest of the CUDA backend links the static CUDA runtime precisely so
// that the programs start on any machine (cuda/, Makefile). With dlopen only a run that
// reduces GPU tensors needs NCCL, and where it is missing that run falls back to host
// memory and MPI (distributed/mpi.cpp) instead of failing to start. The function types
// still come from nccl.h (decltype(&ncclAllReduce)), so every call is checked by the
// compiler against the header the build found.
//
// Ordering: the CUDA backend launches its kernels on the legacy default stream (stream 0),
// and so does every NCCL call here, so an all-reduce starts after the kernels that packed
// its bucket and the unpacking kernels start after it, with no extra synchronisation.
#include <cuda_runtime.h>
#include <dlfcn.h>
#include <nccl.h>

#include <sstream>

#include "distributed/nccl.h"
#include "distributed/poll.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace td::dist {

namespace {

// The NCCL functions this file calls, found in libnccl.so.2.
struct Api {
    decltype(&ncclGetVersion) get_version = nullptr;
    decltype(&ncclGetUniqueId) get_unique_id = nullptr;
    decltype(&ncclCommInitRank) comm_init_rank = nullptr;
    decltype(&ncclCommDestroy) comm_destroy = nullptr;
    decltype(&ncclCommAbort) comm_abort = nullptr;
    decltype(&ncclCommGetAsyncError) comm_get_async_error = nullptr;
    decltype(&ncclAllReduce) all_reduce = nullptr;
    decltype(&ncclBroadcast) broadcast = nullptr;
    decltype(&ncclGetErrorString) get_error_string = nullptr;
    std::string error;  // why NCCL cannot be used; "" when every function was found
};

template <typename F>
void bind(void* lib, const char* name, F& fn, std::string& error) {
    fn = reinterpret_cast<F>(dlsym(lib, name));
    if (!fn && error.empty()) error = std::string("libnccl.so.2 has no symbol ") + name;
}

// Loaded once per process. First the loader's own search (LD_LIBRARY_PATH, ldconfig's
// cache), then the toolkit folder the Makefile found nccl.h beside (TD_NCCL_LIB_DIR).
const Api& api() {
    static const Api loaded = [] {
        Api a;
        void* lib = dlopen("libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
        if (!lib) lib = dlopen(TD_NCCL_LIB_DIR "/libnccl.so.2", RTLD_NOW | RTLD_LOCAL);
        if (!lib) {
            const char* why = dlerror();
            a.error = std::string("libnccl.so.2 could not be loaded (") + (why ? why : "not found") +
                      "; add its folder to LD_LIBRARY_PATH)";
            return a;
        }
        bind(lib, "ncclGetVersion", a.get_version, a.error);
        bind(lib, "ncclGetUniqueId", a.get_unique_id, a.error);
        bind(lib, "ncclCommInitRank", a.comm_init_rank, a.error);
        bind(lib, "ncclCommDestroy", a.comm_destroy, a.error);
        bind(lib, "ncclCommAbort", a.comm_abort, a.error);
        bind(lib, "ncclCommGetAsyncError", a.comm_get_async_error, a.error);
        bind(lib, "ncclAllReduce", a.all_reduce, a.error);
        bind(lib, "ncclBroadcast", a.broadcast, a.error);
        bind(lib, "ncclGetErrorString", a.get_error_string, a.error);
        return a;
    }();
    return loaded;
}

void check_nccl(ncclResult_t r, const char* call) {
    check(r == ncclSuccess, call, ": NCCL error ", (int)r, ": ", api().get_error_string(r));
}

ncclDataType_t nccl_type(DType t) { return t == DType::Int64 ? ncclInt64 : ncclFloat32; }

// The address of element 0 of `flat`, whatever its dtype.
void* device_data(const Tensor& flat) {
    return static_cast<char*>(flat.impl()->storage->data) + flat.offset() * (int64_t)dtype_size(flat.dtype());
}

void check_flat(const Tensor& flat, int64_t count, const char* op) {
    check(
        flat.defined() && flat.device() == Device::CUDA && flat.is_contiguous() && count >= 0 && count <= flat.numel(),
        op, ": needs a contiguous GPU tensor of at least ", count, " elements");
}

}  // namespace

struct Nccl::State {
    ncclComm_t comm = nullptr;

    // Waits for the collective just queued on stream 0; on failure or timeout, aborts the
    // communicator (its kernels stop spinning on the GPU) and returns why. Stream 0 also
    // holds the backward kernels queued before the collective, so the wait is mostly for
    // the GPU, not for another rank: it spins for up to 0.1 s before napping (a nap would
    // add up to 1 ms to every step; the CPU thread has nothing else to do meanwhile).
    std::string wait(double timeout_s) {
        std::string failure;
        bool done = poll_until(
            [&] {
                cudaError_t e = cudaStreamQuery(0);
                if (e == cudaSuccess) return true;
                if (e != cudaErrorNotReady) {
                    failure = std::string("failed: CUDA error: ") + cudaGetErrorString(e);
                    return true;
                }
                ncclResult_t async = ncclSuccess;
                api().comm_get_async_error(comm, &async);
                if (async != ncclSuccess && async != ncclInProgress) {
                    failure = std::string("failed: NCCL error: ") + api().get_error_string(async);
                    return true;
                }
                return false;
            },
            timeout_s, 0.1);
        if (done && failure.empty()) return "";
        if (!done) {
            std::ostringstream os;
            os << "did not complete within " << timeout_s << " s: another rank failed or stalled";
            failure = os.str();
        }
        api().comm_abort(comm);
        comm = nullptr;
        return failure;
    }
};

std::string Nccl::unavailable_reason() {
    if (!api().error.empty()) return api().error;
    if (!cuda_available()) return cuda_description();  // "no GPU can be used: ..." or "no CUDA backend ..."
    return "";
}

Nccl::Nccl(int rank, int size, const std::function<void(void* bytes, size_t n)>& share_id)
    : s_(std::make_unique<State>()) {
    std::string why = unavailable_reason();
    check(why.empty(), "NCCL: ", why);
    ncclUniqueId id{};
    if (rank == 0) check_nccl(api().get_unique_id(&id), "ncclGetUniqueId");
    share_id(&id, sizeof id);
    check_nccl(api().comm_init_rank(&s_->comm, size, id, rank), "ncclCommInitRank");
}

Nccl::~Nccl() {
    if (s_ && s_->comm) api().comm_destroy(s_->comm);
}

std::string Nccl::allreduce_sum(const Tensor& flat, int64_t count, double timeout_s) {
    check(s_->comm, "NCCL all-reduce: the communicator was aborted by an earlier failure");
    check_flat(flat, count, "NCCL all-reduce");
    check(flat.dtype() == DType::Float32, "NCCL all-reduce: needs float32");
    void* p = device_data(flat);
    check_nccl(api().all_reduce(p, p, (size_t)count, ncclFloat32, ncclSum, s_->comm, 0), "ncclAllReduce");
    return s_->wait(timeout_s);
}

std::string Nccl::broadcast(const Tensor& flat, int64_t count, int root, double timeout_s) {
    check(s_->comm, "NCCL broadcast: the communicator was aborted by an earlier failure");
    check_flat(flat, count, "NCCL broadcast");
    void* p = device_data(flat);
    check_nccl(api().broadcast(p, p, (size_t)count, nccl_type(flat.dtype()), root, s_->comm, 0), "ncclBroadcast");
    return s_->wait(timeout_s);
}

std::string Nccl::version() const {
    int v = 0;
    check_nccl(api().get_version(&v), "ncclGetVersion");
    // NCCL >= 2.9 encodes major * 10000 + minor * 100 + patch.
    return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
}

}  // namespace td::dist
