// distributed/mpi.cpp: distributed/communicator.h over MPI, for a build where the Makefile
// found MPI (else distributed/no_mpi.cpp).
//
// One MPI process per rank, started by mpirun. CPU tensors travel through MPI's
// collectives on MPI_COMM_WORLD; GPU tensors through one NCCL communicator
// (distributed/nccl.h), made at their first collective.
//
// Each collective: the tensors are packed into buckets (distributed/bucket.h); each bucket
// is reduced by one non-blocking call (MPI_Iallreduce, or ncclAllReduce) and waited for
// by polling against the deadline (distributed/poll.h); a bucket that does not complete
// in time ends the job through abort(), with a message naming the rank and the bucket.
//
// MPI errors: MPI_COMM_WORLD keeps MPI's default handler, MPI_ERRORS_ARE_FATAL: an MPI
// call that fails prints MPI's message and ends the job, so the calls here need no error
// checks of their own.
#include <mpi.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <fstream>
#include <sstream>
#include <utility>

#include "distributed/bucket.h"
#include "distributed/communicator.h"
#include "distributed/nccl.h"
#include "distributed/poll.h"
#include "tensor/gpu_probe.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace td::dist {

namespace {

MPI_Datatype mpi_type(DType t) { return t == DType::Int64 ? MPI_INT64_T : MPI_FLOAT; }

// Everything that must be the same on every rank for a collective over `tensors` to make
// sense, folded into a few numbers: how many tensors, their elements, the device and a
// hash of the shapes and dtypes (FNV-1a).
std::vector<int64_t> layout_key(const std::vector<Tensor>& tensors) {
    int64_t total = 0;
    uint64_t h = 1469598103934665603ull;
    auto mix = [&h](uint64_t v) { h = (h ^ v) * 1099511628211ull; };
    for (const Tensor& t : tensors) {
        total += t.numel();
        mix((uint64_t)t.dtype());
        mix((uint64_t)t.dim());
        for (int64_t d : t.shape()) mix((uint64_t)d);
    }
    int64_t device = tensors.empty() ? 0 : (int64_t)tensors[0].device();
    return {(int64_t)tensors.size(), total, device, (int64_t)(h >> 1)};
}

double seconds_now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// The CPU time this process was given, in seconds (all its threads).
double process_cpu_seconds() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// How long this process's main thread was ready to run but waited for a core, in seconds:
// the second field of Linux's /proc/self/schedstat (nanoseconds); -1 elsewhere. Large
// when other work shares the cores: a rank then computes slower than its CPU time says.
double seconds_waiting_for_a_core() {
    std::ifstream f("/proc/self/schedstat");
    unsigned long long on_cpu = 0, waiting = 0;
    if (!(f >> on_cpu >> waiting)) return -1;
    return 1e-9 * (double)waiting;
}

// TD_DIST_PROFILE: the time of each kind of collective, summed over the run. It wraps the
// collectives from outside; the algorithm does not know it is there.
struct Profile {
    struct Kind {
        int64_t calls = 0;
        double total_s = 0, in_mpi_s = 0;  // in_mpi_s: waiting for MPI (wait()), part of total_s
    };
    Kind allreduce, broadcast, barrier;
    Kind* current = nullptr;  // the collective being timed, if any
    double start_s = seconds_now(), cpu0_s = process_cpu_seconds(), queued0_s = seconds_waiting_for_a_core();

    // Times one collective of `kind` for as long as it lives (nothing without a profile).
    struct Scope {
        Profile* p;
        Kind* kind = nullptr;
        Kind* outer = nullptr;  // the collective this one runs inside, if any
        double t0 = seconds_now();
        Scope(Profile* profile, Kind Profile::*k) : p(profile) {
            if (!p) return;
            kind = &(p->*k);
            outer = p->current;
            p->current = kind;
        }
        ~Scope() {
            if (!p) return;
            kind->calls++;
            kind->total_s += seconds_now() - t0;
            p->current = outer;
        }
    };

    std::string report(int rank) const {
        char buf[512];
        double queued = seconds_waiting_for_a_core();
        int n = std::snprintf(buf, sizeof buf, "rank %d: %.2f s since init, %.2f s of CPU, ", rank,
                              seconds_now() - start_s, process_cpu_seconds() - cpu0_s);
        n += queued < 0
                 ? std::snprintf(buf + n, sizeof buf - n, "time waiting for a core unknown")
                 : std::snprintf(buf + n, sizeof buf - n, "%.2f s ready but waiting for a core", queued - queued0_s);
        const std::pair<const char*, const Kind*> kinds[] = {
            {"all-reduces", &allreduce}, {"broadcasts", &broadcast}, {"barriers", &barrier}};
        for (auto& [name, k] : kinds)
            n += std::snprintf(buf + n, sizeof buf - n, "; %lld %s %.1f ms (waiting in MPI %.1f ms)",
                               (long long)k->calls, name, 1e3 * k->total_s, 1e3 * k->in_mpi_s);
        return buf;
    }
};

class MpiCommunicator final : public Communicator {
public:
    explicit MpiCommunicator(const Options& options) : opt_(options) {
        if (opt_.profile) profile_ = std::make_unique<Profile>();
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &size_);
        // The ranks that share this machine's memory: their rank among them picks the GPU.
        MPI_Comm node;
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
        MPI_Comm_rank(node, &local_rank_);
        MPI_Comm_size(node, &local_size_);
        MPI_Comm_free(&node);
    }

    ~MpiCommunicator() override {
        // Leaving with an exception in flight: this rank failed. Finalizing would wait for
        // the others, who wait for this rank in their next collective; instead the process
        // exits without MPI_Finalize and mpirun ends the job (the program prints its error
        // on the way out). abort() is the direct route.
        if (!finalized_ && std::uncaught_exceptions() == 0) finalize();
    }

    int rank() const override { return rank_; }
    int size() const override { return size_; }
    int local_rank() const override { return local_rank_; }
    int local_size() const { return local_size_; }

    std::string description() const override {
        char lib[MPI_MAX_LIBRARY_VERSION_STRING];
        int len = 0;
        MPI_Get_library_version(lib, &len);
        std::string name(lib, (size_t)len);
        name = name.substr(0, name.find_first_of(",\n"));  // "Open MPI v4.1.4"
        char host[MPI_MAX_PROCESSOR_NAME];
        MPI_Get_processor_name(host, &len);
        std::ostringstream os;
        os << "MPI (" << name << "), rank " << rank_ << " of " << size_ << ", local rank " << local_rank_ << " of "
           << local_size_ << " on " << std::string(host, (size_t)len);
        return os.str();
    }

    void allreduce_mean(std::vector<Tensor>& tensors) override {
        Profile::Scope timed(profile_.get(), &Profile::allreduce);
        for (size_t i = 0; i < tensors.size(); ++i) {
            check(tensors[i].defined(), "allreduce_mean: tensor ", i,
                  " is undefined (a parameter without a gradient?)");
            check(tensors[i].dtype() == DType::Float32, "allreduce_mean: tensor ", i, " is ",
                  dtype_name(tensors[i].dtype()), ": the mean needs float32");
        }
        // The plan is made once and reused while the tensors keep their shapes, as they do
        // from one training step to the next; a new plan is first checked against the other
        // ranks' (one small all-reduce). So a list that changes on one rank only, later in a
        // run, is not caught: pass every parameter's gradient, every step (all defined).
        std::vector<int64_t> key = layout_key(tensors);
        if (key != plan_key_) {
            agree_on_layout(key, "allreduce_mean");
            plan_ = plan_buckets(tensors, opt_.bucket_bytes);
            plan_key_ = key;
        }
        if (plan_.empty()) return;
        Tensor flat = buffer(tensors[0].device(), DType::Float32, max_bucket_numel(plan_));
        for (size_t k = 0; k < plan_.size(); ++k) {
            const Bucket& b = plan_[k];
            pack(b, tensors, flat);
            sum(flat, b.numel, "all-reduce of bucket " + std::to_string(k));
            flat.narrow(0, 0, b.numel).mul_(1.0f / (float)size_);  // sum -> mean
            unpack(b, flat, tensors);
        }
    }

    void broadcast(std::vector<Tensor>& tensors) override {
        Profile::Scope timed(profile_.get(), &Profile::broadcast);
        for (size_t i = 0; i < tensors.size(); ++i) {
            check(tensors[i].defined(), "broadcast: tensor ", i, " is undefined");
            check(tensors[i].dtype() == DType::Float32 || tensors[i].dtype() == DType::Int64, "broadcast: tensor ", i,
                  " is ", dtype_name(tensors[i].dtype()));
        }
        // Checked and planned once per list of shapes, as in allreduce_mean: the trainer
        // broadcasts rank 0's decisions every step, and the check is a collective of its own.
        std::vector<int64_t> key = layout_key(tensors);
        if (key != broadcast_key_) {
            agree_on_layout(key, "broadcast");
            broadcast_plan_ = plan_buckets(tensors, opt_.bucket_bytes);
            broadcast_key_ = key;
        }
        const std::vector<Bucket>& plan = broadcast_plan_;
        for (size_t k = 0; k < plan.size(); ++k) {
            const Bucket& b = plan[k];
            Tensor flat = buffer(tensors[0].device(), b.dtype, max_bucket_numel(plan));
            if (rank_ == 0) pack(b, tensors, flat);
            copy_from_root(flat, b.numel, "broadcast of bucket " + std::to_string(k));
            if (rank_ != 0) unpack(b, flat, tensors);
        }
    }

    void barrier() override {
        Profile::Scope timed(profile_.get(), &Profile::barrier);
        MPI_Request req;
        MPI_Ibarrier(MPI_COMM_WORLD, &req);
        wait(req, "barrier");
    }

    void set_timeout(double seconds) override {
        check(seconds > 0, "set_timeout: ", seconds, " s: must be positive");
        opt_.timeout_s = seconds;
    }
    double timeout() const override { return opt_.timeout_s; }

    void finalize() override {
        if (finalized_) return;
        barrier();  // a rank missing here is reported after the deadline, not waited for forever
        if (profile_) {
            std::fprintf(stderr, "%s\n", profile_->report(rank_).c_str());
            std::fflush(stderr);
        }
        nccl_.reset();
        MPI_Finalize();
        finalized_ = true;
    }

    [[noreturn]] void abort(const std::string& why, int code) override {
        std::fprintf(stderr, "rank %d: %s\n", rank_, why.c_str());
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code != 0 ? code : 1);  // ends every rank of the job
        std::_Exit(code != 0 ? code : 1);                 // (MPI_Abort does not return)
    }

private:
    // Waits for a non-blocking MPI call; past the deadline, ends the job.
    void wait(MPI_Request& req, const std::string& what) {
        double t0 = profile_ ? seconds_now() : 0;
        bool done = poll_until(
            [&req] {
                int flag = 0;
                MPI_Test(&req, &flag, MPI_STATUS_IGNORE);
                return flag != 0;
            },
            opt_.timeout_s);
        if (!done) abort(what + timeout_reason(), 3);
        if (profile_ && profile_->current) profile_->current->in_mpi_s += seconds_now() - t0;
    }

    std::string timeout_reason() const {
        std::ostringstream os;
        os << " did not complete within " << opt_.timeout_s << " s: another rank failed or stalled";
        return os.str();
    }

    void check_count(int64_t count, const std::string& what) const {
        check(count <= INT_MAX, what, ": ", count, " elements is more than one MPI call can move (", INT_MAX,
              "): a single tensor that large cannot be reduced");
    }

    // flat[0:count] = its sum over the ranks, in place.
    void sum(const Tensor& flat, int64_t count, const std::string& what) {
        if (flat.device() == Device::CUDA && nccl()) {
            std::string failure = nccl_->allreduce_sum(flat, count, opt_.timeout_s);
            if (!failure.empty()) abort(what + " " + failure, 3);
            return;
        }
        check_count(count, what);
        Tensor host = on_host(flat, count);
        MPI_Request req;
        MPI_Iallreduce(MPI_IN_PLACE, host.data_f32(), (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD, &req);
        wait(req, what);
        back_from_host(host, flat, count);
    }

    // flat[0:count] = rank 0's flat[0:count].
    void copy_from_root(const Tensor& flat, int64_t count, const std::string& what) {
        if (flat.device() == Device::CUDA && nccl()) {
            std::string failure = nccl_->broadcast(flat, count, 0, opt_.timeout_s);
            if (!failure.empty()) abort(what + " " + failure, 3);
            return;
        }
        check_count(count, what);
        Tensor host = on_host(flat, count);
        MPI_Request req;
        void* data = static_cast<char*>(host.impl()->storage->data) + host.offset() * (int64_t)dtype_size(host.dtype());
        MPI_Ibcast(data, (int)count, mpi_type(host.dtype()), 0, MPI_COMM_WORLD, &req);
        wait(req, what);
        back_from_host(host, flat, count);
    }

    // A CPU tensor holding flat[0:count]: the buffer itself on the CPU, a copy from the GPU
    // (when NCCL cannot be used: GPU tensors then go through host memory and MPI).
    Tensor on_host(const Tensor& flat, int64_t count) {
        Tensor part = flat.narrow(0, 0, count);
        return flat.device() == Device::CPU ? part : part.to(Device::CPU);
    }
    void back_from_host(const Tensor& host, const Tensor& flat, int64_t count) {
        if (flat.device() != Device::CPU) copy_between_devices(host, flat.narrow(0, 0, count));
    }

    // The NCCL communicator, made at the first GPU collective; nullptr when NCCL cannot be
    // used. Every rank must take the same road (NCCL or MPI), so they first agree: NCCL
    // only if it works on every rank.
    Nccl* nccl() {
        if (nccl_tried_) return nccl_.get();
        nccl_tried_ = true;
        std::string why = Nccl::unavailable_reason();
        int usable = why.empty() ? 1 : 0, everywhere = 0;
        MPI_Request req;
        MPI_Iallreduce(&usable, &everywhere, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD, &req);
        wait(req, "the NCCL check");
        if (everywhere) {
            nccl_ = std::make_unique<Nccl>(rank_, size_, [this](void* bytes, size_t n) {
                MPI_Request r;
                MPI_Ibcast(bytes, (int)n, MPI_BYTE, 0, MPI_COMM_WORLD, &r);
                wait(r, "sending the NCCL id");
            });
        } else if (rank_ == 0) {
            std::fprintf(stderr, "note: NCCL cannot be used (%s): GPU tensors go through host memory and MPI\n",
                         why.empty() ? "not on every rank" : why.c_str());
        }
        return nccl_.get();
    }

    // Compares a layout_key() across the ranks (one small all-reduce of max and -min) and
    // throws td::Error on every rank if they differ: reducing tensors that do not
    // correspond would mix unrelated numbers, or wait forever for elements never sent.
    void agree_on_layout(const std::vector<int64_t>& key, const char* op) {
        std::vector<int64_t> both;
        for (int64_t v : key) both.push_back(v);
        for (int64_t v : key) both.push_back(-v);
        MPI_Request req;
        MPI_Iallreduce(MPI_IN_PLACE, both.data(), (int)both.size(), MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD, &req);
        wait(req, std::string(op) + ": comparing the tensors of the ranks");
        for (size_t i = 0; i < key.size(); ++i) {
            check(both[i] == -both[key.size() + i], op, ": the ranks pass different tensors (rank ", rank_, " has ",
                  key[0], " tensors, ", key[1], " elements on ", device_name((Device)key[2]),
                  "); every rank must pass the same list of shapes, dtypes and device");
        }
    }

    // A flat buffer of at least `numel` elements, kept from one call to the next.
    Tensor buffer(Device device, DType dtype, int64_t numel) {
        Tensor& b = buffers_[(int)device * 2 + (dtype == DType::Int64 ? 1 : 0)];
        if (!b.defined() || b.numel() < numel) b = Tensor::empty({numel}, dtype, device);
        return b;
    }

    Options opt_;
    int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1;
    bool finalized_ = false;
    std::vector<int64_t> plan_key_;
    std::vector<Bucket> plan_;
    std::vector<int64_t> broadcast_key_;  // the same for broadcast
    std::vector<Bucket> broadcast_plan_;
    Tensor buffers_[4];  // (CPU, CUDA) x (float32, int64)
    bool nccl_tried_ = false;
    std::unique_ptr<Nccl> nccl_;
    std::unique_ptr<Profile> profile_;  // TD_DIST_PROFILE; null: off
};

}  // namespace

bool mpi_built() { return true; }

// MPI_Init_thread with MPI_THREAD_FUNNELED: each rank runs OpenMP threads inside its ops,
// but only the main thread ever calls MPI (a collective happens between ops, never inside a
// parallel region). FUNNELED is the level that promises exactly that; plain MPI_Init means
// MPI_THREAD_SINGLE, which by the standard allows no other threads in the process at all.
// (MULTIPLE, any thread calling MPI at any time, costs locking inside MPI we do not need.)
std::unique_ptr<Communicator> init_distributed(const Options& options) {
    int initialized = 0;
    MPI_Initialized(&initialized);
    check(!initialized, "init_distributed: MPI is already initialised (call init_distributed once per process)");
    int provided = 0;
    MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    if (provided < MPI_THREAD_FUNNELED) {
        MPI_Finalize();
        fail("init_distributed: this MPI library offers thread level ", provided, ", below MPI_THREAD_FUNNELED (",
             MPI_THREAD_FUNNELED, "), which OpenMP inside a rank needs");
    }
    auto comm = std::make_unique<MpiCommunicator>(options);
    // One GPU per rank: with several ranks on this machine, rank i on it takes GPU i (the
    // CUDA backend uses the first GPU it sees). Only while CUDA_VISIBLE_DEVICES is unset
    // (the user's choice wins) and before CUDA starts, which reads it once.
    if (comm->local_size() > 1 && !std::getenv("CUDA_VISIBLE_DEVICES"))
        setenv("CUDA_VISIBLE_DEVICES", std::to_string(comm->local_rank()).c_str(), 0);
    // And when the launcher showed every rank all the GPUs (SLURM --gres, a user's export):
    // local rank i takes GPU i % count, or NCCL would find two ranks on one GPU.
    if (comm->local_size() > 1) gpu::select_device(comm->local_rank());
    return comm;
}

}  // namespace td::dist
