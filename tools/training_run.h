// tools/training_run.h: a training run's life, written once for every `diffuse train`
// command: claiming runs/NAME/ (--overwrite, --resume, and a lock so that a second
// process on the same folder is refused while the first runs), config.txt, metrics.csv
// (tools/metrics.h), checkpoints (rotated, written whole or not at all, a damaged newest
// one passed over on --resume), Ctrl-C, and the flags every training command shares.
//
//   TrainingRun run(args, layout);          // flags read, folder locked, configs applied
//   ... settings checked, data loaded ...
//   run.begin();                            // a fresh run: the earlier one deleted (--overwrite)
//   run.write_config(text);  run.open_metrics(step);
//   while (...) { step; run.metrics.row(...); run.save_checkpoint(step, save); }
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "tools/args.h"
#include "tools/metrics.h"

namespace td::cli {

// --out (required unless given a default), --config, --overwrite, --resume, --threads.
void declare_run_options(Args& a, const std::string& out_default = "");

// --threads N: OpenMP's threads for the rest of the process (0 leaves all cores); ArgError below 0.
void apply_threads(const Args& args);

// A model file named by its run folder or by itself: RUN/`file` for a folder, else the path as given.
std::string file_in_run(const std::string& run_or_file, const std::string& file);

// What a command keeps in its run folder.
struct RunLayout {
    std::string command;               // "train ddpm": in messages
    std::vector<std::string> files;    // what --overwrite deletes (files or folders, relative to the run)
    std::vector<std::string> dirs;     // the sub-folders a run needs
    std::vector<std::string> columns;  // metrics.csv's columns, `seconds` among them (wall_clock follows)
    bool resumable = false;            // writes checkpoints/ that --resume continues from
};

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& run);  // (step, path), oldest first
std::string step_file(int64_t step, const std::string& ext);  // "step-00001000." + ext: sorts by step

class TrainingRun {
public:
    // Reads --out, --resume, --overwrite (ArgError for a missing --out, both at once, a
    // folder that holds a run without either, --resume of a command without checkpoints)
    // and --threads; with --resume applies the run's config.txt under the flags given
    // now, then --config. The writer (rank 0 of a distributed run; the only process
    // otherwise) creates the folder and locks it: td::Error when another process holds it.
    TrainingRun(Args& args, RunLayout layout, bool writer = true);
    ~TrainingRun();
    TrainingRun(const TrainingRun&) = delete;
    TrainingRun& operator=(const TrainingRun&) = delete;

    const std::string& out() const { return out_; }
    std::string path(const std::string& name) const { return out_ + "/" + name; }
    bool resuming() const { return resume_; }

    // Deletes what an earlier run left (--overwrite) and makes the sub-folders. Called once
    // the settings and data are good, so a mistake in the flags never costs an earlier run.
    void begin();

    void write_config(const std::string& text) const;  // config.txt, whole or not at all
    // metrics.csv: a fresh one, or on --resume the rows up to `step` kept (MetricsWriter::resume).
    void open_metrics(int64_t step = 0);
    // Where the sample grid drawn after `step` goes (HtmlPage::progress_grids shows them).
    std::string progress_grid(int64_t step) const { return path("progress/" + step_file(step, "png")); }

    // Loads the newest checkpoint that `load` accepts (load throws td::Error for a
    // damaged or foreign file), saying which it passed over and why; the writer renames
    // those to *.damaged, out of the rotation. Returns the path loaded; td::Error when
    // none loads.
    std::string resume_from(const std::function<void(const std::string& path)>& load);

    // Writes checkpoints/step-N.safetensors through `save` (which writes PATH.tmp and
    // renames it: no .tmp is left behind when it fails) and keeps the newest `keep`.
    void save_checkpoint(int64_t step, int64_t keep, const std::function<void(const std::string& path)>& save);
    std::vector<std::pair<int64_t, std::string>> checkpoints() const { return list_checkpoints(out_); }

    MetricsWriter metrics;

private:
    RunLayout layout_;
    std::string out_;
    bool resume_ = false, overwrite_ = false, writer_ = true;
    int lock_fd_ = -1;
    std::vector<std::string> damaged_;  // checkpoints passed over by resume_from
};

// Writes `text` to PATH.tmp and renames it to PATH: readers see the old file or the new
// one, never half of one, and a failed write leaves no PATH.tmp. td::Error naming PATH.
void write_text_file(const std::string& path, const std::string& text);

// Ctrl-C as a request: after catch_sigint(), the first SIGINT sets interrupted() (a second
// ends the process at once); release_sigint() restores the default when the loop is over.
void catch_sigint();
bool interrupted();
void release_sigint();

// Resident memory now (/proc/self/statm; 0 where it cannot be read) and at most so far
// (ru_maxrss), in MB: metrics.csv's rss_mb, where a leak shows as a rising line.
double resident_mb();
double peak_resident_mb();

}  // namespace td::cli
