// tools/progress.cpp
#include "tools/progress.h"

#include <algorithm>
#include <cstdarg>
#include <cstdio>

#include <unistd.h>

#include "tools/training_run.h"  // catch_sigint, interrupted

namespace td::cli {

std::string fmt_seconds(double s) {
    char buf[32];
    if (s >= 60) std::snprintf(buf, sizeof buf, "%dm%02ds", (int)s / 60, (int)s % 60);
    else std::snprintf(buf, sizeof buf, "%.1fs", s);
    return buf;
}

std::string fmt(const char* format, ...) {
    va_list args, again;
    va_start(args, format);
    va_copy(again, args);
    std::string out((size_t)std::vsnprintf(nullptr, 0, format, args), '\0');
    std::vsnprintf(out.data(), out.size() + 1, format, again);
    va_end(again);
    va_end(args);
    return out;
}

std::string describe_budget(int64_t steps, double minutes) {
    std::string s = steps ? std::to_string(steps) + " steps" : "";
    return s + (steps && minutes ? " or " : "") + (minutes ? fmt("%g", minutes) + " min" : "");
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
    if (budget_s_ > 0) eta = std::min(eta, budget_s_ - el);
    eta = std::max(eta, 0.0);
    std::printf("%sstep %lld/%lld  %s  %.1f it/s  ETA %s%s", tty_ ? "\r" : "", (long long)step, (long long)total_,
                fields.c_str(), its, fmt_seconds(eta).c_str(), tty_ ? "   " : "\n");
    std::fflush(stdout);
}

void Progress::done() {
    if (tty_) std::printf("\n");
    std::fflush(stdout);
}

// ---- StepLoop ---------------------------------------------------------------------------

StepLoop::StepLoop(int64_t steps, double minutes, int64_t first, int64_t grid_every, double min_grid_gap_s,
                   int64_t report_every)
    // (a time budget alone: the total is unknown until the speed is measured)
    : progress_(steps > 0 ? steps : first, minutes * 60.0, first),
      steps_(steps),
      first_(first),
      step_(first),
      grid_every_(grid_every),
      report_every_(report_every),
      minutes_(minutes),
      min_grid_gap_s_(min_grid_gap_s) {
    catch_sigint();
}

StepLoop::~StepLoop() { end(); }

bool StepLoop::more() const { return !out_of_time_ && !ctrl_c_ && (steps_ == 0 || step_ < steps_); }

int64_t StepLoop::step_done(int64_t step, const std::string& fields) {
    step_ = step;
    double el = elapsed();
    estimate_ = steps_ == 0 && minutes_ > 0 ? plan_steps(step, el) : 0;
    if (estimate_ > 0) plan(estimate_);
    // a grid every grid_every steps; else about six over a step budget, or one every sixth
    // of a time budget (min_grid_gap_s at least)
    if (grid_every_ > 0) grid_ = step % grid_every_ == 0;
    else if (steps_ > 0) grid_ = (step - first_) % std::max<int64_t>(1, (steps_ - first_) / 6) == 0;
    else grid_ = el - last_grid_s_ >= std::max(min_grid_gap_s_, minutes_ * 60.0 / 6);
    out_of_time_ = progress_.out_of_time();
    ctrl_c_ = interrupted();
    progress_.report(step, fields, report_every_);
    return estimate_;
}

// A time budget alone: how many steps fit? The first steps are slow (the memory plan fills,
// the caches warm up), so the speed is measured from step first + 20 over the next 5% of
// the budget; what is left of the budget at that speed, less 3% for the progress grids and
// checkpoints still to come, is the plan. Before the plan, step first + 20 gives the
// progress line a first guess. 0 until the plan is made.
int64_t StepLoop::plan_steps(int64_t step, double el) {
    const double budget_s = minutes_ * 60.0;
    if (step == first_ + 20) {
        mark_s_ = el;
        progress_.set_total(first_ + (int64_t)(20.0 * budget_s / std::max(el, 1e-6)));
        return 0;
    }
    if (step < first_ + 20 || el - mark_s_ < 0.05 * budget_s) return 0;
    double steps_per_s = (step - first_ - 20) / std::max(el - mark_s_, 1e-6);
    return step + std::max<int64_t>(1, (int64_t)(0.97 * steps_per_s * std::max(0.0, budget_s - el)));
}

void StepLoop::plan(int64_t steps) {
    steps_ = steps;
    progress_.set_total(steps);
}

bool StepLoop::grid_due() {
    if (grid_) last_grid_s_ = elapsed();
    return grid_;
}

StepLoop::Decisions StepLoop::decisions() { return {estimate_, grid_, out_of_time_, ctrl_c_}; }

void StepLoop::follow(const Decisions& d) {
    if (d.estimate > 0) plan(d.estimate);
    else if (estimate_ > 0) steps_ = 0;  // this rank planned before rank 0 did: wait for its plan
    estimate_ = d.estimate, grid_ = d.grid, out_of_time_ = d.out_of_time, ctrl_c_ = d.ctrl_c;
}

void StepLoop::end() {
    if (ended_) return;
    ended_ = true;
    progress_.done();
    release_sigint();
}

}  // namespace td::cli
