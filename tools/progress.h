// tools/progress.h: the progress line every long job prints:
//   step 1200/3000  epoch 3  loss 0.0412  410 it/s  ETA 4.4s
// Rewritten in place on a terminal, one line per report otherwise (logs, CI).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace td::cli {

std::string fmt_seconds(double s);              // "4.4s", "2m05s"
std::string fmt(const char* format, double v);  // one number as printf writes it: fmt("%.2f", psnr)

// "3600 steps", "5 min" or "3600 steps or 5 min": a budget of --steps and/or --minutes.
std::string describe_budget(int64_t steps, double minutes);

// A time budget alone leaves a cosine learning rate without an end: the steps that fit in
// `minutes` at the speed of the first `done` steps (`elapsed` seconds).
int64_t steps_in_minutes(int64_t done, double elapsed, double minutes);

// Whether a sample grid is due after `step` of a job that began at step `first`: every
// `every` steps when given; else about six over a step budget (`steps` in all), or with a
// time budget alone one every sixth of `minutes`, `min_gap_s` at least (the last was `since_s` ago).
bool grid_due(int64_t step, int64_t first, int64_t every, int64_t steps, double minutes, double since_s,
              double min_gap_s);

class Progress {
public:
    // total: the planned number of steps; budget_s > 0: a time limit that may end the job first;
    // first: the step a resumed job starts from (speed and ETA count only this job's steps)
    explicit Progress(int64_t total, double budget_s = 0.0, int64_t first = 0);
    void set_total(int64_t total) { total_ = total; }
    double elapsed() const;
    bool out_of_time() const { return budget_s_ > 0 && elapsed() >= budget_s_; }
    // Prints when `every` steps have passed since the last report (and at the last step).
    void report(int64_t step, const std::string& fields, int64_t every = 50);
    void done();  // ends the in-place line

private:
    int64_t total_;
    double budget_s_;
    std::chrono::steady_clock::time_point start_;
    int64_t last_ = 0;      // the step of the last report (at first, the job's first step)
    double last_el_ = 0.0;  // elapsed() at the last report
    bool tty_;
};

}  // namespace td::cli
