// tests/test_cli.cpp: the `diffuse` command line: --help, exit codes, bad flags, and
// the toy job writing its run folder. Runs the built binary next to this test binary.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>

#include "diffusion/data/dataset.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

namespace {

// The diffuse binary of the same build (build/, build-sanitize/, ...).
std::string diffuse_path() {
    std::string self = std::filesystem::read_symlink("/proc/self/exe").string();
    return std::filesystem::path(self).parent_path().string() + "/diffuse";
}

struct Run {
    int code;
    std::string output;
};

Run run(const std::string& args) {
    std::string out = tdtest::scratch("cli_test_output.txt");
    std::string cmd = diffuse_path() + " " + args + " > " + out + " 2>&1";
    int status = std::system(cmd.c_str());
    std::ifstream f(out);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    std::remove(out.c_str());
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

}  // namespace

TEST_CASE("diffuse --help lists the commands") {
    Run r = run("--help");
    CHECK(r.code == 0);
    CHECK(r.output.find("train") != std::string::npos);
    CHECK(r.output.find("sample") != std::string::npos);
    Run t = run("train toy --help");
    CHECK(t.code == 0);
    CHECK(t.output.find("--steps") != std::string::npos);
}

TEST_CASE("bad usage exits 2 with a message") {
    Run r = run("frobnicate");
    CHECK(r.code == 2);
    CHECK(r.output.find("unknown command 'frobnicate'") != std::string::npos);
    Run f = run("train toy --no-such-flag");
    CHECK(f.code == 2);
    CHECK(f.output.find("--no-such-flag") != std::string::npos);
    Run n = run("train toy --steps many");
    CHECK(n.code == 2);
    CHECK(n.output.find("expects an integer") != std::string::npos);
    Run m = run("train toy --steps");
    CHECK(m.code == 2);
    CHECK(m.output.find("needs a value") != std::string::npos);
    CHECK(run("").code == 2);
}

TEST_CASE("train toy fits its curve and writes the run folder") {
    std::string dir = tdtest::scratch("test_run_toy");
    std::filesystem::remove_all(dir);
    Run r = run("train toy --steps 300 --hidden 16 --out " + dir);
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(r.output.find("gradcheck of the MLP") != std::string::npos);
    CHECK(r.output.find(": ok") != std::string::npos);
    CHECK(r.output.find("it/s") != std::string::npos);
    for (const char* f : {"metrics.csv", "loss.png", "fit.png", "index.html"})
        CHECK(std::filesystem::exists(dir + "/" + f));
    // the loss fell: compare the first and last rows of metrics.csv
    std::ifstream csv(dir + "/metrics.csv");
    std::string line, first, last;
    std::getline(csv, line);  // header
    std::getline(csv, first);
    while (std::getline(csv, line)) last = line;
    float l0 = std::stof(first.substr(first.find(',') + 1)), l1 = std::stof(last.substr(last.find(',') + 1));
    CHECK(l1 < 0.2f * l0);
    std::filesystem::remove_all(dir);
}

// ---- train classifier + eval on a tiny synthetic IDX data set ------------------------------


TEST_CASE("train classifier learns a toy data set; eval judges samples and rejects bad ones") {
    std::string data = tdtest::scratch("bars"), rundir = tdtest::scratch("run_bars");
    std::filesystem::create_directories(data);
    std::filesystem::remove_all(rundir);
    tdtest::write_bars(data, "train", 256);
    tdtest::write_bars(data, "test", 64);
    Run t = run("train classifier --data " + data + " --out " + rundir + " --epochs 3 --batch 32 --width 8");
    INFO(t.output);
    REQUIRE(t.code == 0);
    CHECK(t.output.find("held-out accuracy 100.00%") != std::string::npos);
    for (const char* f : {"classifier.safetensors", "reference_features.npy", "metrics.csv", "loss.png", "index.html"})
        CHECK(std::filesystem::exists(rundir + "/" + f));

    // samples: the test images themselves, as [0, 1] pixels -> confident, FID near 0
    td::diffusion::Dataset test = td::diffusion::load_dataset(data, "test");
    std::string samples = tdtest::scratch("bars_samples.npy");
    td::save_npy(samples, (test.images + 1.0f) * 0.5f);
    Run e = run("eval --classifier " + rundir + " --samples " + samples);
    INFO(e.output);
    REQUIRE(e.code == 0);
    CHECK(e.output.find("class histogram:      32 32") != std::string::npos);
    CHECK(e.output.find("confidence > 0.9:") != std::string::npos);
    CHECK(e.output.find("classifier FID:") != std::string::npos);

    // wrong shape, missing file, missing flags
    td::save_npy(samples, td::zeros({4, 3, 28, 28}));
    Run bad = run("eval --classifier " + rundir + " --samples " + samples);
    CHECK(bad.code == 1);
    CHECK(bad.output.find("bars_samples.npy") != std::string::npos);
    CHECK(bad.output.find("[4, 3, 28, 28]") != std::string::npos);
    CHECK(run("eval --classifier " + rundir + " --samples /nonexistent.npy").code == 1);
    CHECK(run("eval --samples " + samples).code == 2);
    std::filesystem::remove_all(rundir);
}
