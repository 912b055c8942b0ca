// tools/run_folder.h: the chores every training command does with its run folder
// runs/NAME/: claim it without destroying an earlier run by accident, write its small
// text files whole or not at all, and stop cleanly on Ctrl-C.
// (Used by `diffuse train vae`; `diffuse train ddpm` still has its own copies.)
#pragma once
#include <string>
#include <vector>

namespace td::cli {

// Makes `out` (and its sub-folders `dirs`) ready for a fresh run. When `out` already
// holds a run (its config.txt exists): without `overwrite`, throws ArgError saying so;
// with it, deletes `files` (files or folders, relative to out) first. td::Error when the
// folders cannot be created.
void claim_run_folder(const std::string& out, bool overwrite, const std::vector<std::string>& files,
                      const std::vector<std::string>& dirs = {});

// Writes `text` to PATH.tmp and renames it to PATH: readers see the old file or the new
// one, never half of one. td::Error naming PATH when it cannot.
void write_text_file(const std::string& path, const std::string& text);

// Ctrl-C as a request: after catch_sigint(), the first SIGINT sets interrupted() and
// restores the default handler (a second Ctrl-C ends the process at once);
// release_sigint() restores it when the loop is over.
void catch_sigint();
bool interrupted();
void release_sigint();

// This process's resident memory now (/proc/self/statm) and the most it has held so far
// (getrusage's ru_maxrss), in MB: what metrics.csv's rss_mb column and the end-of-run
// line report, so a leak shows up as a rising line (bench/run_memory.sh). 0 where /proc
// cannot be read.
double resident_mb();
double peak_resident_mb();

}  // namespace td::cli
