// tests/test_cli.cpp: the `diffuse` command line: --help, exit codes, bad flags, and
// the toy job writing its run folder. Runs the built binary next to this test binary.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>

#include "diffusion/classifier.h"
#include "diffusion/data/dataset.h"
#include "nn/safetensors.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

namespace {

using Run = tdtest::CliRun;
Run run(const std::string& args) { return tdtest::run_diffuse(args); }

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

TEST_CASE("--spacing: an unknown value, or one the sampler does not take, exits 2 naming the choices") {
    // refused while reading the flags, before any model is loaded
    std::string out = tdtest::scratch("spacing.png");
    Run u = run("sample --run runs/nowhere --spacing uniform --out " + out);
    CHECK(u.code == 2);
    CHECK(tdtest::contains(u.output, "--spacing must be leading, trailing, linspace or auto, got 'uniform'"));
    Run d = run("sample --run runs/nowhere --sampler ddpm --spacing leading --out " + out);
    CHECK(d.code == 2);
    CHECK(tdtest::contains(d.output, "--spacing leading does not fit --sampler ddpm: ddpm takes linspace, trailing "
                                     "(or auto: linspace)"));
    Run t = run("trace sample --run runs/nowhere --spacing sideways");
    CHECK(t.code == 2);
    CHECK(tdtest::contains(t.output, "--spacing must be leading, trailing, linspace or auto"));
    CHECK(tdtest::contains(run("sample --help").output, "--spacing"));
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

namespace {

// The percentage on the line of `output` that starts with `key` ("rejected:" -> 100.0); -1 if none.
double percent_after(const std::string& output, const std::string& key) {
    size_t at = output.find("\n" + key);
    if (at == std::string::npos) return -1.0;
    return std::atof(output.c_str() + at + 1 + key.size());
}

}  // namespace

TEST_CASE("train classifier learns a toy data set; eval judges samples and rejects bad ones") {
    std::string data = tdtest::scratch("bars"), rundir = tdtest::scratch("run_bars");
    std::filesystem::create_directories(data);
    std::filesystem::remove_all(rundir);
    tdtest::write_bars(data, "train", 256);
    tdtest::write_bars(data, "test", 64);
    // the default --reject-class 1: bars, plus "not a bar image" learnt from synthetic negatives
    Run t = run("train classifier --data " + data + " --out " + rundir + " --epochs 5 --batch 32 --width 8");
    INFO(t.output);
    REQUIRE(t.code == 0);
    CHECK(t.output.find("held-out accuracy 100.00%") != std::string::npos);
    CHECK(t.output.find("held-out negatives rejected") != std::string::npos);
    for (const char* f : {"classifier.safetensors", "reference_features.npy", "metrics.csv", "loss.png", "index.html"})
        CHECK(std::filesystem::exists(rundir + "/" + f));

    // samples: the test images themselves, as [0, 1] pixels -> confident, none rejected, FID near 0
    td::diffusion::Dataset test = td::diffusion::load_dataset(data, "test");
    std::string samples = tdtest::scratch("bars_samples.npy");
    td::save_npy(samples, (test.images + 1.0f) * 0.5f);
    Run e = run("eval --classifier " + rundir + " --samples " + samples);
    INFO(e.output);
    REQUIRE(e.code == 0);
    CHECK(e.output.find("class histogram:      32 32") != std::string::npos);
    CHECK(e.output.find("confidence > 0.9:") != std::string::npos);
    CHECK(e.output.find("class entropy:") != std::string::npos);
    CHECK(e.output.find("classifier FID:") != std::string::npos);
    CHECK(percent_after(e.output, "rejected:") == 0.0);

    // the reference rows: uniform noise is "not a bar image", the real bars are bars
    Run noise = run("eval --classifier " + rundir + " --reference noise");
    INFO(noise.output);
    REQUIRE(noise.code == 0);
    CHECK(noise.output.find("64 from reference 'noise'") != std::string::npos);  // --count capped at the held-out 64
    CHECK(percent_after(noise.output, "rejected:") >= 90.0);
    CHECK(percent_after(noise.output, "confidence > 0.9:") <= 5.0);
    Run real = run("eval --classifier " + rundir + " --reference real --count 32");
    INFO(real.output);
    REQUIRE(real.code == 0);
    CHECK(real.output.find("32 from reference 'real'") != std::string::npos);
    CHECK(percent_after(real.output, "confidence > 0.9:") >= 90.0);
    CHECK(percent_after(real.output, "rejected:") == 0.0);
    CHECK(run("eval --classifier " + rundir + " --reference blur").code == 0);

    // a classifier file from before the reject class (no 'reject_class' key) loads as a plain one
    std::string old_run = tdtest::scratch("run_bars_old");
    std::filesystem::create_directories(old_run);
    td::diffusion::ClassifierConfig cfg;
    cfg.width = 8;
    td::Generator gen(0);
    td::diffusion::Classifier plain(cfg, gen);
    td::nn::save_module(old_run + "/classifier.safetensors", plain,
                        {{"model", "classifier"}, {"data", data}, {"in_channels", "1"}, {"image_size", "28"},
                         {"num_classes", "10"}, {"width", "8"}});
    Run old = run("eval --classifier " + old_run + " --samples " + samples);
    INFO(old.output);
    CHECK(old.code == 0);
    CHECK(old.output.find("rejected:             n/a") != std::string::npos);
    CHECK(old.output.find("classifier FID:") != std::string::npos);
    std::filesystem::remove_all(old_run);

    // wrong shape, missing file, missing or conflicting flags
    td::save_npy(samples, td::zeros({4, 3, 28, 28}));
    Run bad = run("eval --classifier " + rundir + " --samples " + samples);
    CHECK(bad.code == 1);
    CHECK(bad.output.find("bars_samples.npy") != std::string::npos);
    CHECK(bad.output.find("[4, 3, 28, 28]") != std::string::npos);
    CHECK(run("eval --classifier " + rundir + " --samples /nonexistent.npy").code == 1);
    CHECK(run("eval --samples " + samples).code == 2);
    CHECK(run("eval --classifier " + rundir + " --samples " + samples + " --reference noise").code == 2);
    CHECK(run("eval --classifier " + rundir + " --reference fog").code == 2);
    CHECK(run("train classifier --data " + data + " --out " + rundir + " --reject-class 2").code == 2);
    std::filesystem::remove_all(rundir);
}
