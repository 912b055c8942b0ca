// tools/run_folder.cpp: see run_folder.h.
#include "tools/run_folder.h"

#include <atomic>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sys/resource.h>
#include <unistd.h>

#include "tensor/error.h"
#include "tools/args.h"

namespace td::cli {

namespace fs = std::filesystem;

void claim_run_folder(const std::string& out, bool overwrite, const std::vector<std::string>& files,
                      const std::vector<std::string>& dirs) {
    if (fs::exists(out + "/config.txt")) {
        // Nothing already written is lost by accident: starting over must be asked for.
        if (!overwrite) throw ArgError(out + " already holds a run: --overwrite starts afresh (deleting it)");
        std::error_code rm;
        for (const std::string& f : files) fs::remove_all(out + "/" + f, rm);
    }
    std::error_code ec;
    fs::create_directories(out, ec);
    for (const std::string& d : dirs) fs::create_directories(out + "/" + d, ec);
    check(!ec, out, ": cannot create the run folder (", ec.message(), ")");
}

void write_text_file(const std::string& path, const std::string& text) {
    std::ofstream f(path + ".tmp");
    f << text;
    f.close();
    check(f.good() && std::rename((path + ".tmp").c_str(), path.c_str()) == 0, path, ": cannot write");
}

namespace {

std::atomic<bool> g_interrupted{false};

void on_sigint(int) {
    g_interrupted = true;
    std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the process at once
}

}  // namespace

void catch_sigint() {
    g_interrupted = false;
    std::signal(SIGINT, on_sigint);
}

bool interrupted() { return g_interrupted; }

void release_sigint() { std::signal(SIGINT, SIG_DFL); }

double resident_mb() {
    // statm: total program size, then resident pages, both counted in pages.
    std::FILE* f = std::fopen("/proc/self/statm", "r");
    if (!f) return 0;
    long long total = 0, resident = 0;
    int got = std::fscanf(f, "%lld %lld", &total, &resident);
    std::fclose(f);
    return got == 2 ? (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0) : 0;
}

double peak_resident_mb() {
    struct rusage u {};
    getrusage(RUSAGE_SELF, &u);
    return (double)u.ru_maxrss / 1024.0;  // KB on Linux
}

}  // namespace td::cli
