// tools/progress.cpp
#include "tools/progress.h"

#include <algorithm>
#include <cstdio>

#include <unistd.h>

namespace td::cli {

std::string fmt_seconds(double s) {
    char buf[32];
    if (s >= 60) std::snprintf(buf, sizeof buf, "%dm%02ds", (int)s / 60, (int)s % 60);
    else std::snprintf(buf, sizeof buf, "%.1fs", s);
    return buf;
}

std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
}

std::string describe_budget(int64_t steps, double minutes) {
    std::string s = steps ? std::to_string(steps) + " steps" : "";
    return s + (steps && minutes ? " or " : "") + (minutes ? fmt("%g", minutes) + " min" : "");
}

int64_t steps_in_minutes(int64_t done, double elapsed, double minutes) {
    return (int64_t)((double)done * minutes * 60.0 / std::max(elapsed, 1e-6));
}

bool grid_due(int64_t step, int64_t first, int64_t every, int64_t steps, double minutes, double since_s,
              double min_gap_s) {
    if (every > 0) return step % every == 0;
    if (steps > 0) return (step - first) % std::max<int64_t>(1, (steps - first) / 6) == 0;
    return since_s >= std::max(min_gap_s, minutes * 60.0 / 6);
}

Progress::Progress(int64_t total, double budget_s, int64_t first)
    : total_(total), budget_s_(budget_s), start_(std::chrono::steady_clock::now()), last_(first), tty_(isatty(1)) {}

double Progress::elapsed() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void Progress::report(int64_t step, const std::string& fields, int64_t every) {
    if (step - last_ < every && step != total_) return;
    // The speed of the steps since the last report, not since the start: on a shared
    // machine the rate changes, and the ETA should follow what is happening now.
    double el = elapsed(), its = (step - last_) / std::max(el - last_el_, 1e-9);
    last_ = step;
    last_el_ = el;
    double eta = (total_ - step) / std::max(its, 1e-9);
    if (budget_s_ > 0) eta = std::min(eta, std::max(0.0, budget_s_ - el));
    std::printf("%sstep %lld/%lld  %s  %.1f it/s  ETA %s%s", tty_ ? "\r" : "", (long long)step, (long long)total_,
                fields.c_str(), its, fmt_seconds(eta).c_str(), tty_ ? "   " : "\n");
    std::fflush(stdout);
}

void Progress::done() {
    if (tty_) std::printf("\n");
    std::fflush(stdout);
}

}  // namespace td::cli
