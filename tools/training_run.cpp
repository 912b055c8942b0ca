// tools/training_run.cpp: see training_run.h.
#include "tools/training_run.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <fcntl.h>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <omp.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tensor/error.h"

namespace td::cli {

namespace fs = std::filesystem;

void declare_run_options(Args& a, const std::string& out_default) {
    a.option("out", out_default, out_default.empty() ? "run folder (required)" : "run folder");
    a.option("config", "", "a file of `key = value` lines (the long option names); flags override it");
    a.flag("resume", "continue the run in --out from its latest checkpoint");
    a.flag("overwrite", "start afresh in a run folder that already holds a run (deleting it)");
    a.option("threads", "0", "OpenMP threads (0: all cores)");
}

void apply_threads(const Args& args) {
    int64_t threads = args.integer("threads");
    if (threads < 0) throw ArgError("--threads must be >= 0 (0: all cores)");
    if (threads > 0) omp_set_num_threads((int)threads);
}

std::string file_in_run(const std::string& run_or_file, const std::string& file) {
    return fs::is_directory(run_or_file) ? run_or_file + "/" + file : run_or_file;
}

std::string step_file(int64_t step, const std::string& ext) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "step-%08lld.", (long long)step);
    return buf + ext;
}

std::vector<std::pair<int64_t, std::string>> list_checkpoints(const std::string& run) {
    std::vector<std::pair<int64_t, std::string>> out;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(run + "/checkpoints", ec)) {
        std::string n = e.path().filename().string();
        long long step = 0;
        char tail[32] = {0};
        if (std::sscanf(n.c_str(), "step-%lld.%31s", &step, tail) == 2 && std::string(tail) == "safetensors")
            out.push_back({step, e.path().string()});
    }
    std::sort(out.begin(), out.end());
    return out;
}

namespace {

// A folder holds a run once a training command has written its settings or a metric.
bool holds_run(const std::string& out) { return fs::exists(out + "/config.txt") || fs::exists(out + "/metrics.csv"); }

// The folder's lock: flock() on runs/NAME/.lock, held while the process lives (the
// kernel drops it when the process ends, however it ends). The file holds the pid of
// its holder, for the message a second process gets. Returns the open descriptor.
int lock_run_folder(const std::string& out) {
    std::string path = out + "/.lock";
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    check(fd >= 0, path, ": cannot create the run folder's lock (", std::strerror(errno), ")");
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = {0};
        ssize_t n = ::pread(fd, pid, sizeof pid - 1, 0);
        ::close(fd);
        fail(out, " is in use: another process (pid ", n > 0 ? std::string(pid) : std::string("?"),
             ") is training in it; wait for it to end, or give another --out");
    }
    std::string me = std::to_string(::getpid());
    if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, me.data(), me.size(), 0) != (ssize_t)me.size())
        std::fprintf(stderr, "diffuse: warning: %s: cannot record this process in it\n", path.c_str());
    return fd;
}

}  // namespace

TrainingRun::TrainingRun(Args& args, RunLayout layout, bool writer)
    : metrics(layout.columns), layout_(std::move(layout)), writer_(writer) {
    out_ = args.str("out");
    if (out_.empty()) throw ArgError("--out is required (e.g. --out runs/NAME)");
    resume_ = args.on("resume");
    overwrite_ = args.on("overwrite");
    if (resume_ && overwrite_) throw ArgError("--resume and --overwrite contradict each other");
    if (resume_ && !layout_.resumable)
        throw ArgError(layout_.command + " writes no checkpoints, so it cannot --resume: --overwrite starts afresh");
    apply_threads(args);
    if (resume_)
        check(fs::exists(out_ + "/config.txt"), out_,
              "/config.txt: no run to resume here (start one without --resume)");
    if (writer_) {
        std::error_code ec;
        fs::create_directories(out_, ec);
        check(!ec, out_, ": cannot create the run folder (", ec.message(), ")");
        lock_fd_ = lock_run_folder(out_);
        // Nothing already written is lost by accident: starting over must be asked for.
        if (!resume_ && !overwrite_ && holds_run(out_))
            throw ArgError(out_ + " already holds a run: " + (layout_.resumable ? "--resume continues it, " : "") +
                           "--overwrite starts afresh (deleting it)");
    }
    if (resume_) args.apply_config(out_ + "/config.txt");  // the run's own settings, under any flags given now
    if (!args.str("config").empty()) args.apply_config(args.str("config"));
}

TrainingRun::~TrainingRun() {
    if (lock_fd_ >= 0) ::close(lock_fd_);  // (the lock file stays: removing it would race a new holder)
}

void TrainingRun::begin() {
    if (!writer_) return;
    if (!resume_) {
        std::error_code rm;
        for (const std::string& f : layout_.files) fs::remove_all(out_ + "/" + f, rm);
    }
    std::error_code ec;
    for (const std::string& d : layout_.dirs) fs::create_directories(out_ + "/" + d, ec);
    check(!ec, out_, ": cannot create the run folder (", ec.message(), ")");
}

void TrainingRun::write_config(const std::string& text) const {
    if (writer_) write_text_file(out_ + "/config.txt", text);
}

void TrainingRun::open_metrics(int64_t step) {
    if (!writer_) return;
    if (resume_) metrics.resume(path("metrics.csv"), step);
    else metrics.start(path("metrics.csv"));
}

std::string TrainingRun::resume_from(const std::function<void(const std::string& path)>& load) {
    auto ckpts = checkpoints();
    check(!ckpts.empty(), out_, "/checkpoints: no checkpoint to resume from");
    for (auto it = ckpts.rbegin(); it != ckpts.rend(); ++it) {
        try {
            load(it->second);
        } catch (const Error& e) {
            std::printf("%s does not load, passing over it: %s\n", it->second.c_str(), e.what());
            damaged_.push_back(it->second);
            continue;
        }
        // Out of the rotation: a damaged file sorted after the new checkpoints would
        // otherwise outlive them.
        if (writer_)
            for (const std::string& d : damaged_) {
                std::error_code ec;
                fs::rename(d, d + ".damaged", ec);
                if (!ec) std::printf("renamed it %s.damaged\n", d.c_str());
            }
        return it->second;
    }
    fail(out_, "/checkpoints: no checkpoint loads (", ckpts.size(), " tried, newest first; see above)");
}

void TrainingRun::save_checkpoint(int64_t step, int64_t keep,
                                  const std::function<void(const std::string& path)>& save) {
    if (!writer_) return;
    std::string path = out_ + "/checkpoints/" + step_file(step, "safetensors");
    try {
        save(path);
    } catch (...) {
        std::error_code ec;
        fs::remove(path + ".tmp", ec);
        throw;
    }
    auto ckpts = checkpoints();
    std::error_code ec;
    for (size_t i = 0; i + keep < ckpts.size(); ++i) fs::remove(ckpts[i].second, ec);
}

void write_text_file(const std::string& path, const std::string& text) {
    std::string tmp = path + ".tmp";
    std::ofstream f(tmp);
    f << text;
    f.close();
    bool ok = f.good() && std::rename(tmp.c_str(), path.c_str()) == 0;
    if (!ok) std::remove(tmp.c_str());
    check(ok, path, ": cannot write");
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
