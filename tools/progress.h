// tools/progress.h: the progress line every long job prints:
//   step 1200/3000  epoch 3  loss 0.0412  410 it/s  ETA 4.4s
// Rewritten in place on a terminal, one line per report otherwise (logs, CI).
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace td::cli {

std::string fmt_seconds(double s);  // "4.4s", "2m05s"
// printf into a std::string of any length: fmt("%.2f", psnr), fmt("loss %.4f  lr %.2g", l, lr)
std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));

// "3600 steps", "5 min" or "3600 steps or 5 min": a budget of --steps and/or --minutes.
std::string describe_budget(int64_t steps, double minutes);

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

// What every training command's loop does around the algorithm's own step: the budget
// (--steps and/or --minutes), Ctrl-C, the progress line and when to draw a progress grid.
// The step itself stays in the command, where it can be read:
//
//   StepLoop loop(steps, minutes, first, sample_every, 30.0);
//   while (loop.more()) {
//       Stats s = trainer.step();                             // the algorithm
//       run.metrics.row(...);
//       if (int64_t est = loop.step_done(s.step, "loss ...")) trainer.set_lr_total(est);
//       if (loop.grid_due()) draw_grid(s.step);
//   }
//   loop.end();
class StepLoop {
public:
    // steps: the step budget (0: none); minutes: the time budget (0: none); first: the step a
    // resumed run starts from; grid_every: a grid every this many steps (0: about six in a
    // run, at least min_grid_gap_s apart under a time budget alone); report_every: steps
    // between progress lines. Catches Ctrl-C (tools/training_run.h) until end().
    StepLoop(int64_t steps, double minutes, int64_t first, int64_t grid_every, double min_grid_gap_s,
             int64_t report_every = 25);
    ~StepLoop();  // (end() if an exception left the loop)
    StepLoop(const StepLoop&) = delete;
    StepLoop& operator=(const StepLoop&) = delete;

    // Another step? Not past the step budget, nor after the time budget or Ctrl-C ended the loop.
    bool more() const;
    // After each step: the progress line (`fields`: "loss 0.04 ..."). Under a time budget
    // alone, once the speed is measured (5% of the budget in), returns the steps the budget
    // holds at that speed, which become the step budget (a cosine learning rate needs that
    // end); 0 otherwise.
    int64_t step_done(int64_t step, const std::string& fields);
    // A progress grid after this step? (A true answer counts as drawn: the next is due from now.)
    bool grid_due();
    // What step_done measured now, and the decisions: a distributed run replaces them
    // with rank 0's (follow), so that every rank stops at the same step.
    struct Decisions {
        int64_t estimate = 0;  // step_done's return value
        bool grid = false, out_of_time = false, ctrl_c = false;
    };
    Decisions decisions();
    void follow(const Decisions& d);

    int64_t step() const { return step_; }
    int64_t step_budget() const { return steps_; }  // --steps, or the plan under --minutes alone (0 until made)
    double elapsed() const { return progress_.elapsed(); }
    bool stopped_by_time() const { return out_of_time_; }
    bool stopped_by_ctrl_c() const { return ctrl_c_; }
    void end_line() { progress_.done(); }  // before printing a line of one's own (a tty's line is open)
    void end();                            // the progress line closed, Ctrl-C's default action back

private:
    int64_t plan_steps(int64_t step, double el);
    void plan(int64_t steps);

    Progress progress_;
    int64_t steps_, first_, step_, grid_every_, report_every_;
    double minutes_, min_grid_gap_s_, last_grid_s_ = 0, mark_s_ = 0;
    int64_t estimate_ = 0;
    bool out_of_time_ = false, ctrl_c_ = false, grid_ = false, ended_ = false;
};

}  // namespace td::cli
