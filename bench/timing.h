// bench/timing.h: what bench/gemm.cpp and bench/layers.cpp share (header-only): the
// clock, the timing method, the command-line helpers and the '#' lines about the machine.
//
// Method (bench/bench_common.py has its twin for the PyTorch side):
//   1. warm-up: one call (two when it takes under 50 ms), not timed; the slowest
//      warm-up call sets how many timed calls fit the time target;
//   2. timed: reps = clamp(target / t_warmup, 3, 1000) calls, each timed alone;
//   3. the median call time is reported (and the fastest).
#pragma once

#include <omp.h>

#include <Eigen/Core>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <cstdlib>
#include <ctime>
#include <string>
#include <utility>
#include <vector>

namespace bench {

// BENCH_CLOCK=cpu: the CPU time of the whole process instead of the wall clock. With one
// thread that is the time the work took whatever else the machine runs (other processes
// take turns on the core; they do not add to our CPU time), so figures from a busy machine
// stay comparable. With more threads it also counts OpenMP's waiting: use the wall clock.
inline double now_s() {
    static const bool cpu_clock = [] {
        const char* c = std::getenv("BENCH_CLOCK");
        return c != nullptr && std::string(c) == "cpu";
    }();
    if (cpu_clock) {
        timespec t;
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
        return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
    }
    using clock = std::chrono::steady_clock;
    return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Timing {
    double median_s, min_s;
    int reps;
    bool ok;  // false: the check on the first warm-up result failed (nothing was timed after it)
};

// One call: prep() before it, untimed; call() timed; check(result), if given, sees what
// call() returned, which is destroyed after the clock stops.
template <class Prep, class Call, class Check>
double time_once(Prep& prep, Call& call, Check* check, bool* check_ok) {
    prep();
    double t0 = now_s();
    auto keep = call();
    double t = now_s() - t0;
    if (check) *check_ok = (*check)(keep);
    keep = decltype(keep)();
    return t;
}

// The method above; check(first warm-up result) -> bool guards against a timed call
// that returns quickly without doing the work.
template <class Prep, class Call, class Check>
Timing measure(double target, Prep prep, Call call, Check check) {
    bool ok = true;
    double t_warm = time_once(prep, call, &check, &ok);
    if (!ok) return {0, 0, 0, false};
    Check* none = nullptr;
    if (t_warm < 0.05) t_warm = time_once(prep, call, none, &ok);
    int reps = (int)std::clamp(std::ceil(target / std::max(t_warm, 1e-7)), 3.0, 1000.0);
    std::vector<double> times;
    times.reserve(reps);
    for (int r = 0; r < reps; ++r) times.push_back(time_once(prep, call, none, &ok));
    return {median(times), *std::min_element(times.begin(), times.end()), reps, true};
}

template <class Prep, class Call>
Timing measure(double target, Prep prep, Call call) {
    return measure(target, std::move(prep), std::move(call), [](const auto&) { return true; });
}

// argv[i] is "--opt VALUE" or "--opt=VALUE": true, with the value in out (i moves past
// it); another argument: false. A missing value ends the program (exit 2).
inline bool option_value(const char* prog, const char* opt, int argc, char** argv, int& i, std::string& out) {
    std::string arg = argv[i], o = opt;
    if (arg.rfind(o + "=", 0) == 0) {
        out = arg.substr(o.size() + 1);
        return true;
    }
    if (arg != o) return false;
    if (i + 1 < argc) {
        out = argv[++i];
        return true;
    }
    std::fprintf(stderr, "%s: %s needs a value\n", prog, opt);
    std::exit(2);
}

// "a,b,,c" -> {a, b, c}, appended to out.
inline void split_list(const std::string& list, std::vector<std::string>& out) {
    size_t start = 0;
    while (start <= list.size()) {
        size_t comma = list.find(',', start);
        if (comma == std::string::npos) comma = list.size();
        if (comma > start) out.push_back(list.substr(start, comma - start));
        start = comma + 1;
    }
}

// The options both programs take: --quick, --min-time S, -h/--help. True when argv[i]
// was one of them; *exit_code is set when the program should stop (help: 0, error: 2).
inline bool common_option(const char* prog, int argc, char** argv, int& i, double& target, void (*usage)(FILE*),
                          int* exit_code) {
    std::string arg = argv[i], value;
    if (arg == "--quick") {
        target = 0.1;
    } else if (option_value(prog, "--min-time", argc, argv, i, value)) {
        target = std::atof(value.c_str());
        if (!(target > 0)) {
            std::fprintf(stderr, "%s: --min-time needs a positive number\n", prog);
            *exit_code = 2;
        }
    } else if (arg == "-h" || arg == "--help") {
        usage(stdout);
        *exit_code = 0;
    } else {
        return false;
    }
    return true;
}

inline int unknown_option(const char* prog, const char* arg, void (*usage)(FILE*)) {
    std::fprintf(stderr, "%s: unknown option '%s'\n", prog, arg);
    usage(stderr);
    return 2;
}

// Every wanted name is one of table[].name: true; else says which is not (false).
template <class Table>
bool known_names(const char* prog, const char* what, const std::vector<std::string>& wanted, const Table& table) {
    for (const auto& w : wanted) {
        bool known = false;
        for (const auto& s : table) known |= w == s.name;
        if (!known) {
            std::fprintf(stderr, "%s: unknown %s '%s' (see --list)\n", prog, what, w.c_str());
            return false;
        }
    }
    return true;
}

inline bool is_wanted(const std::vector<std::string>& wanted, const char* name) {
    return wanted.empty() || std::find(wanted.begin(), wanted.end(), name) != wanted.end();
}

// The '#' lines after the impl line: threads, SIMD, method, columns.
inline void print_run_info(double target, const char* per, const char* columns, bool eigen_threads) {
    if (eigen_threads)
        std::printf("# threads omp_get_max_threads=%d eigen_nbThreads=%d\n", omp_get_max_threads(), Eigen::nbThreads());
    else std::printf("# threads omp_get_max_threads=%d\n", omp_get_max_threads());
    std::printf("# simd %s\n", Eigen::SimdInstructionSetsInUse());
    std::printf("# method warm-up then median of reps, target %.2f s per %s\n", target, per);
    std::printf("# columns: %s\n", columns);
    std::fflush(stdout);
}

}  // namespace bench
