// tests/test_run_lifecycle.cpp: a run folder's life through the `diffuse train` commands
// (tools/training_run.h): the lock, metrics.csv rows as steps finish, --resume dropping
// the rows past its checkpoint and passing over a damaged checkpoint, a failed
// checkpoint write leaving no .tmp, and train classifier claiming its folder like the
// others. Runs the built binary next to this test binary.
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include "tests/helpers.h"
#include "tests/synthetic_data.h"

namespace fs = std::filesystem;

namespace {

using Run = tdtest::CliRun;

// What config.txt does not keep, so a --resume gives it again: few pictures, and small.
const char* kQuick = " --threads 1 --final-samples 2 --final-steps 2 --sample-every 100000";

// A DDPM small enough to take a step in a fraction of a second on 8x8 bars.
const std::string kTiny =
    " --ch 8 --mults 1,2 --res-blocks 1 --attn-res 4 --groups 4 --T 50 --batch 8" + std::string(kQuick);

std::string bars8() {
    std::string data = tdtest::scratch("bars8_lifecycle");
    if (!fs::exists(data + "/train-images-idx3-ubyte.gz") && !fs::exists(data + "/train-images-idx3-ubyte")) {
        fs::create_directories(data);
        tdtest::write_bars(data, "train", 32, 8);
        tdtest::write_bars(data, "test", 16, 8);
    }
    return data;
}

std::string slurp(const std::string& path) {
    std::ifstream f(path);
    return std::string((std::istreambuf_iterator<char>(f)), {});
}

// metrics.csv's rows: the header, then each row split at the commas.
std::vector<std::vector<std::string>> csv_rows(const std::string& path) {
    std::vector<std::vector<std::string>> rows;
    std::ifstream f(path);
    for (std::string line; std::getline(f, line);) {
        std::vector<std::string> cells;
        size_t at = 0;
        for (size_t comma; (comma = line.find(',', at)) != std::string::npos; at = comma + 1)
            cells.push_back(line.substr(at, comma - at));
        cells.push_back(line.substr(at));
        rows.push_back(cells);
    }
    return rows;
}

// The `column` cells of every data row.
std::vector<std::string> column(const std::vector<std::vector<std::string>>& rows, const std::string& name) {
    std::vector<std::string> out;
    size_t c = 0;
    while (c < rows.at(0).size() && rows[0][c] != name) ++c;
    REQUIRE(c < rows[0].size());
    for (size_t r = 1; r < rows.size(); ++r) out.push_back(rows[r].at(c));
    return out;
}

bool alive(pid_t pid) {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), {});
    size_t paren = text.rfind(')');
    return paren != std::string::npos && paren + 2 < text.size() && text[paren + 2] != 'Z';  // a zombie has ended
}

}  // namespace

TEST_CASE("lifecycle: metrics.csv rows appear as steps finish, and a running run's folder is locked") {
    std::string data = bars8(), dir = tdtest::scratch("run_lifecycle_live"),
                log = tdtest::scratch("lifecycle_live.log");
    fs::remove_all(dir);
    std::string exe = (fs::read_symlink("/proc/self/exe").parent_path() / "diffuse").string();
    // A long run with no checkpoint and no sample grid before the end: whatever metrics.csv
    // holds while it runs was written as the steps finished.
    std::string args = " train ddpm --data " + data + kTiny + " --steps 100000 --ckpt-every 100000 --out ";
    std::string pid_file = tdtest::scratch("lifecycle_live.pid");
    REQUIRE(std::system((exe + args + dir + " > " + log + " 2>&1 & echo $! > " + pid_file).c_str()) == 0);
    pid_t pid = (pid_t)std::atoi(slurp(pid_file).c_str());
    REQUIRE(pid > 0);

    // Wait (generously: the machine may be busy) for three rows.
    size_t rows = 0;
    for (int i = 0; i < 6000 && rows < 4 && alive(pid); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        rows = csv_rows(dir + "/metrics.csv").size();
    }
    INFO(slurp(log));
    CHECK(rows >= 4);                           // the header and three steps
    CHECK(fs::is_empty(dir + "/checkpoints"));  // ... before any checkpoint was written
    auto header = csv_rows(dir + "/metrics.csv").at(0);
    CHECK(header.back() == "wall_clock");

    // A second process on the same folder is refused while the first runs, and nothing
    // of the first is deleted, --overwrite or not.
    Run second = tdtest::run_diffuse(args.substr(1) + dir + " --steps 2 --overwrite");
    CHECK(second.code == 1);
    CHECK(tdtest::contains(second.output, dir + " is in use"));
    CHECK(tdtest::contains(second.output, "pid " + std::to_string(pid)));
    CHECK(fs::exists(dir + "/config.txt"));
    CHECK(alive(pid));

    // Once it has ended, however it ended, the folder is free again.
    ::kill(pid, SIGKILL);
    for (int i = 0; i < 300 && alive(pid); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    REQUIRE(!alive(pid));
    Run after = tdtest::run_diffuse(args.substr(1) + dir + " --steps 2 --overwrite");
    INFO(after.output);
    CHECK(after.code == 0);
    fs::remove_all(dir);
}

TEST_CASE("lifecycle: the lock is the kernel's: a folder locked by another holder is refused") {
    std::string data = bars8(), dir = tdtest::scratch("run_lifecycle_locked");
    fs::remove_all(dir);
    fs::create_directories(dir);
    int fd = ::open((dir + "/.lock").c_str(), O_RDWR | O_CREAT, 0644);
    REQUIRE(fd >= 0);
    REQUIRE(::flock(fd, LOCK_EX | LOCK_NB) == 0);
    Run r = tdtest::run_diffuse("train ddpm --data " + data + kTiny + " --steps 1 --out " + dir);
    CHECK(r.code == 1);
    CHECK(tdtest::contains(r.output, "is in use"));
    CHECK(!fs::exists(dir + "/config.txt"));
    ::close(fd);  // released: now it trains
    Run ok = tdtest::run_diffuse("train ddpm --data " + data + kTiny + " --steps 1 --out " + dir);
    INFO(ok.output);
    CHECK(ok.code == 0);
    fs::remove_all(dir);
}

TEST_CASE("lifecycle: --resume passes over a damaged checkpoint and drops the metrics rows past the one it loads") {
    std::string data = bars8(), dir = tdtest::scratch("run_lifecycle_resume");
    fs::remove_all(dir);
    std::string common = "train ddpm --data " + data + kTiny + " --ckpt-every 2 --keep 5 --out " + dir;
    Run first = tdtest::run_diffuse(common + " --steps 4");
    INFO(first.output);
    REQUIRE(first.code == 0);
    REQUIRE(column(csv_rows(dir + "/metrics.csv"), "step") == std::vector<std::string>{"1", "2", "3", "4"});
    double seconds_at_2 = std::atof(column(csv_rows(dir + "/metrics.csv"), "seconds")[1].c_str());

    // the newest checkpoint cut short, as by a full disk or a crash outside our writer
    std::string latest = dir + "/checkpoints/step-00000004.safetensors";
    fs::resize_file(latest, 100);
    Run r = tdtest::run_diffuse("train ddpm --out " + dir + " --resume --steps 5 --data " + data + kQuick);
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(tdtest::contains(r.output, "step-00000004.safetensors does not load"));
    CHECK(tdtest::contains(r.output, "resumed " + dir + "/checkpoints/step-00000002.safetensors at step 2"));
    // out of the rotation, kept for a look
    CHECK(!fs::exists(latest));
    CHECK(fs::exists(latest + ".damaged"));
    CHECK(fs::exists(dir + "/checkpoints/step-00000005.safetensors"));

    // rows 3 and 4 came from training the checkpoint never saw: redone, not repeated
    auto rows = csv_rows(dir + "/metrics.csv");
    CHECK(column(rows, "step") == std::vector<std::string>{"1", "2", "3", "4", "5"});
    // the clock goes on from the checkpoint's row, and every row has its wall-clock time
    std::vector<std::string> seconds = column(rows, "seconds");
    CHECK(std::atof(seconds[1].c_str()) == seconds_at_2);
    CHECK(std::atof(seconds[2].c_str()) > seconds_at_2);
    for (const std::string& w : column(rows, "wall_clock")) CHECK(w.size() == 20);  // 2026-01-02T03:04:05Z

    // no checkpoint loads: an error naming the folder, exit 1
    for (auto& e : fs::directory_iterator(dir + "/checkpoints")) fs::resize_file(e.path(), 10);
    Run none = tdtest::run_diffuse("train ddpm --out " + dir + " --resume --steps 6 --data " + data + kQuick);
    CHECK(none.code == 1);
    CHECK(tdtest::contains(none.output, "no checkpoint loads"));
    fs::remove_all(dir);
}

TEST_CASE("lifecycle: train classifier takes the common flags and refuses an existing run without --overwrite") {
    std::string data = bars8(), dir = tdtest::scratch("run_lifecycle_clf & <co>");
    fs::remove_all(dir);
    std::string cfg = tdtest::scratch("lifecycle_clf.cfg");
    std::ofstream(cfg) << "width = 8\nbatch = 16\n";
    std::string common = "train classifier --data " + data + " --config " + cfg +
                         " --threads 1 --device cpu --seed 3 --steps 3 --out '" + dir + "'";
    Run first = tdtest::run_diffuse(common);
    INFO(first.output);
    REQUIRE(first.code == 0);
    std::string config = slurp(dir + "/config.txt");
    for (const char* line : {"width = 8\n", "batch = 16\n", "seed = 3\n", "steps = 3\n", "device = cpu\n"})
        CHECK(tdtest::contains(config, line));
    auto rows = csv_rows(dir + "/metrics.csv");
    CHECK(rows.at(0).back() == "wall_clock");
    // two steps an epoch (32 images, batch 16), each epoch ending with a held-out row
    CHECK(column(rows, "step") == std::vector<std::string>{"1", "2", "2", "3", "3"});
    CHECK(column(rows, "held_out_accuracy")[2] != "");

    Run again = tdtest::run_diffuse(common);
    CHECK(again.code == 2);
    CHECK(tdtest::contains(again.output, "already holds a run: --overwrite starts afresh"));
    CHECK(fs::exists(dir + "/classifier.safetensors"));
    Run resume = tdtest::run_diffuse(common + " --resume");
    CHECK(resume.code == 2);
    CHECK(tdtest::contains(resume.output, "train classifier writes no checkpoints, so it cannot --resume"));
    Run over = tdtest::run_diffuse(common + " --overwrite");
    INFO(over.output);
    CHECK(over.code == 0);
    fs::remove_all(dir);
}

TEST_CASE("lifecycle: names from outside are escaped in index.html") {
    std::string data = tdtest::scratch("bars <b>&amp"), dir = tdtest::scratch("run_lifecycle_html");
    fs::remove_all(dir);
    fs::create_directories(data);
    tdtest::write_bars(data, "train", 32, 8);
    tdtest::write_bars(data, "test", 16, 8);
    Run r = tdtest::run_diffuse("train classifier --data '" + data +
                                "' --width 8 --batch 16 --steps 2 --threads 1 --out " + dir);
    INFO(r.output);
    REQUIRE(r.code == 0);
    std::string page = slurp(dir + "/index.html");
    CHECK(tdtest::contains(page, "bars &lt;b&gt;&amp;amp"));
    CHECK(!tdtest::contains(page, "<b>&amp"));
    fs::remove_all(dir);
    fs::remove_all(data);
}

TEST_CASE("lifecycle: train classifier --device cuda, on the host-memory stand-in, gives the CPU's numbers") {
    std::string data = bars8(), cpu = tdtest::scratch("run_lifecycle_clf_cpu"),
                gpu = tdtest::scratch("run_lifecycle_clf_gpu");
    fs::remove_all(cpu);
    fs::remove_all(gpu);
    std::string exe = (fs::read_symlink("/proc/self/exe").parent_path() / "diffuse").string();
    std::string args = " train classifier --data " + data + " --width 8 --batch 16 --steps 3 --threads 1 --out ";
    std::string log = tdtest::scratch("lifecycle_standin.log");
    // the variable in the child's environment only: this process keeps its own answer
    int code = std::system(("env TD_CUDA_STANDIN=1 " + exe + args + gpu + " --device cuda > " + log + " 2>&1").c_str());
    INFO(slurp(log));
    REQUIRE(code == 0);
    CHECK(tdtest::contains(slurp(log), "device: cuda"));
    Run c = tdtest::run_diffuse(args.substr(1) + cpu + " --device cpu");
    REQUIRE(c.code == 0);
    CHECK(column(csv_rows(gpu + "/metrics.csv"), "loss") == column(csv_rows(cpu + "/metrics.csv"), "loss"));
    CHECK(slurp(gpu + "/config.txt").find("device = cuda\n") != std::string::npos);
    fs::remove_all(cpu);
    fs::remove_all(gpu);
}
