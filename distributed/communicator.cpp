// distributed/communicator.cpp: what every build has: the options and the communicator
// of a run that is not distributed (distributed/communicator.h).
#include "distributed/communicator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tensor/error.h"

namespace td::dist {

namespace {

// A positive decimal number from the environment variable `name`, or `fallback` if unset.
double positive_from_env(const char* name, double fallback) {
    const char* s = std::getenv(name);
    if (!s || !*s) return fallback;
    char* end = nullptr;
    double v = std::strtod(s, &end);
    check(end && *end == '\0' && v > 0 && v < 1e12, name, "=", s, ": expected a positive number");
    return v;
}

class LocalCommunicator final : public Communicator {
public:
    int rank() const override { return 0; }
    int size() const override { return 1; }
    int local_rank() const override { return 0; }
    std::string description() const override { return "one process (not distributed)"; }

    // The mean over one rank is the tensor itself; the checks are the MPI communicator's,
    // so a mistake shows up in a one-process run too.
    void allreduce_mean(std::vector<Tensor>& tensors) override {
        for (size_t i = 0; i < tensors.size(); ++i) {
            check(tensors[i].defined(), "allreduce_mean: tensor ", i,
                  " is undefined (a parameter without a gradient?)");
            check(tensors[i].dtype() == DType::Float32, "allreduce_mean: tensor ", i, " is ",
                  dtype_name(tensors[i].dtype()), ": the mean needs float32");
            check(tensors[i].device() == tensors[0].device(), "allreduce_mean: tensors on ",
                  device_name(tensors[0].device()), " and ", device_name(tensors[i].device()));
        }
    }
    void broadcast(std::vector<Tensor>& tensors) override {
        for (size_t i = 0; i < tensors.size(); ++i)
            check(tensors[i].defined(), "broadcast: tensor ", i, " is undefined");
    }
    void barrier() override {}
    void set_timeout(double seconds) override {
        check(seconds > 0, "set_timeout: ", seconds, " s: must be positive");
        timeout_ = seconds;
    }
    double timeout() const override { return timeout_; }
    void finalize() override {}
    [[noreturn]] void abort(const std::string& why, int code) override {
        std::fprintf(stderr, "rank 0: %s\n", why.c_str());
        std::fflush(stderr);
        std::exit(code != 0 ? code : 1);
    }

private:
    double timeout_ = Options{}.timeout_s;
};

}  // namespace

Options Options::from_env() {
    Options o;
    o.timeout_s = positive_from_env("TD_DIST_TIMEOUT", o.timeout_s);
    double mb = positive_from_env("TD_DIST_BUCKET_MB", (double)o.bucket_bytes / (1 << 20));
    o.bucket_bytes = std::max<size_t>(4, (size_t)(mb * (1 << 20)));  // at least one float
    const char* profile = std::getenv("TD_DIST_PROFILE");
    o.profile = profile && *profile && std::string(profile) != "0";
    return o;
}

std::unique_ptr<Communicator> local_communicator() { return std::make_unique<LocalCommunicator>(); }

}  // namespace td::dist
