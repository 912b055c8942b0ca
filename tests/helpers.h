// tests/helpers.h: comparing tensors the llm.c way.
//
// CHECK_CLOSE(actual, expected, atol, rtol) passes when every element satisfies
// |a - e| <= atol + rtol * |e| and the shapes agree; when it fails it prints the
// worst element and the first few values side by side.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sys/wait.h>
#include <filesystem>
#include <functional>
#include <iterator>
#include <sstream>
#include <string>
#include <vector>

#include "td.h"
#include "tensor/device.h"

namespace tdtest {

// Where the committed PyTorch fixtures live (tests run from the repository root).
inline std::string fixture_path(const std::string& case_name, const std::string& tensor) {
    return "tests/fixtures/" + case_name + "/" + tensor + ".npy";
}

// A path for a scratch file, in a folder beside the test binary (build/scratch/,
// build-sanitize/scratch/, ...), created on first use.
inline std::string scratch(const std::string& file) {
    std::filesystem::path dir = std::filesystem::read_symlink("/proc/self/exe").parent_path() / "scratch";
    std::filesystem::create_directories(dir);
    return (dir / file).string();
}

// Runs the `diffuse` binary of the same build (build/, build-sanitize/, ...) with `args`
// and returns its exit code and everything it printed (stdout and stderr).
struct CliRun {
    int code;
    std::string output;
};
inline CliRun run_diffuse(const std::string& args) {
    std::string exe = (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "diffuse").string();
    std::string out = scratch("diffuse_cli_output.txt");
    int status = std::system((exe + " " + args + " > " + out + " 2>&1").c_str());
    std::ifstream f(out);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

// The message of the td::Error that fn throws; "" when it throws none.
inline std::string error_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const td::Error& e) {
        return e.what();
    }
    return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
// A text file's whole content ("" if it cannot be read).
inline std::string read_file(const std::filesystem::path& path) {
    std::ifstream in(path);
    return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Checks that an error message mentions every one of `parts` (the op, the shapes, ...).
inline void check_message(const std::string& msg, const std::vector<std::string>& parts) {
    INFO("message: " << msg);
    for (const std::string& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "missing '" << p << "'");
}

// Empty string when close; otherwise a report of what differs.
inline std::string compare(const td::Tensor& actual, const td::Tensor& expected, float atol, float rtol) {
    std::ostringstream os;
    if (!actual.defined() || !expected.defined()) return "undefined tensor";
    if (actual.shape() != expected.shape()) {
        os << "shape " << td::shape_str(actual.shape()) << " vs expected " << td::shape_str(expected.shape());
        return os.str();
    }
    std::vector<float> a = actual.to_vector(), e = expected.to_vector();
    int64_t worst = -1;
    double worst_excess = 0.0;
    for (size_t i = 0; i < a.size(); ++i) {
        double diff = std::fabs((double)a[i] - e[i]);
        double excess = diff - (atol + rtol * std::fabs(e[i]));
        bool bad = excess > 0 || (std::isnan(a[i]) != std::isnan(e[i]));
        if (bad && (worst < 0 || excess > worst_excess)) {
            worst = (int64_t)i;
            worst_excess = excess;
        }
    }
    if (worst < 0) return "";
    os << "element " << worst << ": " << a[worst] << " vs expected " << e[worst] << " (atol " << atol << ", rtol "
       << rtol << ")\n  first values (actual | expected):";
    for (size_t i = 0; i < std::min<size_t>(a.size(), 6); ++i) os << "\n    " << a[i] << " | " << e[i];
    return os.str();
}

// For every GPU test case (tests/test_cuda*.cpp): true when there is no GPU to run on.
// The first call prints the suite's one SKIPPED line, saying why; later calls print nothing,
// so a machine without a GPU shows one line for all CUDA tests, not one per case.
inline bool skip_without_gpu() {
    if (td::cuda_available()) return false;
    static bool said = false;  // one per process: an inline function's static is shared by every file
    if (!said) {
        std::printf("SKIPPED: CUDA tests (every op family, fused kernels and a UNet step on the GPU): %s\n",
                    td::cuda_description().c_str());
        std::fflush(stdout);
        said = true;
    }
    return true;
}

}  // namespace tdtest

#define CHECK_CLOSE(actual, expected, atol, rtol)                                       \
    do {                                                                                \
        std::string td_report_ = tdtest::compare((actual), (expected), (atol), (rtol)); \
        INFO(td_report_);                                                               \
        CHECK(td_report_.empty());                                                      \
    } while (0)
