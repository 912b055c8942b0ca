// tests/test_cli.cpp: the `diffuse` command line: --help, --version, exit codes, bad flags,
// the GNU conventions (--no-X, `--`), machine-readable output (eval --json, sample --out
// DIR/), and the toy job writing its run folder. Runs the built binary next to this test binary.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <sys/wait.h>

#include "autograd/node.h"
#include "diffusion/classifier.h"
#include "diffusion/data/dataset.h"
#include "diffusion/model_file.h"
#include "diffusion/unet.h"
#include "nn/safetensors.h"
#include "tensor/npy.h"
#include "tensor/ops.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"
#include "tools/args.h"
#include "version.h"

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

TEST_CASE("diffuse --version prints the version in version.h") {
    Run r = run("--version");
    CHECK(r.code == 0);
    CHECK(r.output == std::string("diffuse (tinydiffusion) ") + td::kVersion + "\n");
    CHECK(run("--help").output.find("--version") != std::string::npos);
}

TEST_CASE("there is no `diffuse bench`: it says where the benchmarks are") {
    Run r = run("bench");
    CHECK(r.code == 2);
    CHECK(r.output.find("make bench") != std::string::npos);
    CHECK(run("--help").output.find("  bench ") == std::string::npos);
}

namespace {

td::cli::Args switches() {
    td::cli::Args a("test", "test");
    a.option("steps", "10", "");
    a.flag("flip", "");
    a.flag("no-clip", "");
    return a;
}

// Parses `words` (after a program name) into `a`; the ArgError's message, or "" if none.
std::string parse(td::cli::Args& a, std::vector<std::string> words) {
    words.insert(words.begin(), "prog");
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());
    try {
        a.parse((int)argv.size(), argv.data(), 1);
    } catch (const td::cli::ArgError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("every switch --X has a --no-X that turns it off, over a config file too") {
    td::cli::Args a = switches();
    CHECK(parse(a, {"--flip", "--no-flip"}) == "");
    CHECK(!a.on("flip"));
    CHECK(a.given("flip"));  // decided by the command line: a config file's value does not apply
    std::string cfg = tdtest::scratch("switches.cfg");
    std::ofstream(cfg) << "flip = true\n";
    td::cli::Args b = switches();
    CHECK(parse(b, {"--no-flip"}) == "");
    b.apply_config(cfg);
    CHECK(!b.on("flip"));
    td::cli::Args c = switches();
    CHECK(parse(c, {"--no-flip", "--flip"}) == "");  // the last one wins
    CHECK(c.on("flip"));
    // a switch already named no-X keeps its one form; options and unknown names have no --no-
    td::cli::Args d = switches();
    CHECK(parse(d, {"--no-clip"}) == "");
    CHECK(d.on("no-clip"));
    td::cli::Args e = switches();
    CHECK(parse(e, {"--no-no-clip"}) == "unknown option --no-no-clip");
    CHECK(parse(e, {"--no-steps"}) == "unknown option --no-steps");
    CHECK(parse(e, {"--no-such"}) == "unknown option --no-such");
    CHECK(parse(e, {"--no-flip=1"}) == "--no-flip takes no value");
    // the help says so once
    CHECK(e.help().find("'no-' before its name") != std::string::npos);
}

TEST_CASE("`--` ends the options; anything after it is an error, since no command takes arguments") {
    td::cli::Args a = switches();
    CHECK(parse(a, {"--steps", "5", "--"}) == "");
    CHECK(a.integer("steps") == 5);
    td::cli::Args b = switches();
    CHECK(parse(b, {"--", "--steps", "5"}).find("unexpected argument '--steps' after `--`") != std::string::npos);
    CHECK(b.integer("steps") == 10);  // not read as an option
    td::cli::Args c = switches();
    CHECK(parse(c, {"--", "--help"}) != "");  // not a request for help either
    Run r = run("train toy -- --steps 5");
    CHECK(r.code == 2);
    CHECK(r.output.find("after `--`") != std::string::npos);
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
    CHECK(tdtest::contains(u.output, "--spacing: unknown spacing 'uniform' (leading, trailing, linspace)"));
    Run d = run("sample --run runs/nowhere --sampler ddpm --spacing leading --out " + out);
    CHECK(d.code == 2);
    CHECK(tdtest::contains(d.output,
                           "--spacing leading does not fit --sampler ddpm: ddpm takes linspace, trailing "
                           "(or auto: linspace)"));
    Run t = run("trace sample --run runs/nowhere --spacing sideways");
    CHECK(t.code == 2);
    CHECK(tdtest::contains(t.output, "--spacing: unknown spacing 'sideways' (leading, trailing, linspace)"));
    CHECK(tdtest::contains(run("sample --help").output, "--spacing"));
}

TEST_CASE("train toy trains a 2-D diffusion model and writes the run folder" * doctest::test_suite("long")) {
    std::string dir = tdtest::scratch("test_run_toy");
    std::filesystem::remove_all(dir);
    Run r = run("train toy --steps 3000 --hidden 64 --out " + dir);  // ~6 s on 2 cores
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(r.output.find("gradcheck of the MLP") != std::string::npos);
    CHECK(r.output.find(": ok") != std::string::npos);
    CHECK(r.output.find("it/s") != std::string::npos);
    for (const char* f :
         {"metrics.csv", "loss.png", "forward.png", "score.png", "samples.png", "trajectories.png", "index.html"})
        CHECK(std::filesystem::exists(dir + "/" + f));
    // the loss fell: the mean of the first and of the last 100 rows of metrics.csv
    std::ifstream csv(dir + "/metrics.csv");
    std::string line;
    std::vector<float> losses;
    std::getline(csv, line);  // header
    while (std::getline(csv, line)) losses.push_back(std::stof(line.substr(line.find(',') + 1)));
    REQUIRE(losses.size() == 3000);
    double first = 0, last = 0;
    for (int i = 0; i < 100; ++i) first += losses[i], last += losses[2900 + i];
    CHECK(last < 0.8 * first);
    // and the samples are nearer the data than the noise they started from
    size_t at = r.output.find("mean distance to the nearest data point: x_T ");
    REQUIRE(at != std::string::npos);
    float noise = 0, ddpm = 0, ddim = 0;
    REQUIRE(std::sscanf(r.output.c_str() + at,
                        "mean distance to the nearest data point: x_T %f, DDPM samples %f, "
                        "DDIM-50 samples %f",
                        &noise, &ddpm, &ddim) == 3);
    CHECK(ddpm < 0.5f * noise);
    CHECK(ddim < 0.5f * noise);
    CHECK(run("train toy --data circles --out " + dir + " --overwrite").code == 2);
    std::filesystem::remove_all(dir);
}

TEST_CASE("train toy keeps a run folder like the other training commands: config.txt, --resume, --overwrite") {
    std::string dir = tdtest::scratch("test_run_toy_resume");
    std::filesystem::remove_all(dir);
    Run a = run("train toy --steps 40 --hidden 16 --batch 64 --out " + dir);
    INFO(a.output);
    REQUIRE(a.code == 0);
    CHECK(std::filesystem::exists(dir + "/config.txt"));
    CHECK(std::filesystem::exists(dir + "/checkpoints/step-00000040.safetensors"));
    Run again = run("train toy --steps 40 --out " + dir);  // a finished run is not overwritten by accident
    CHECK(again.code == 2);
    CHECK(tdtest::contains(again.output, "already holds a run"));
    // --resume takes the run's settings from config.txt (hidden 16, batch 64) and goes on to the new total
    Run r = run("train toy --resume --steps 60 --out " + dir);
    INFO(r.output);
    REQUIRE(r.code == 0);
    CHECK(tdtest::contains(r.output, "resumed"));
    CHECK(tdtest::contains(r.output, "at step 40"));
    CHECK(std::filesystem::exists(dir + "/checkpoints/step-00000060.safetensors"));
    std::ifstream csv(dir + "/metrics.csv");
    int rows = 0;
    for (std::string line; std::getline(csv, line);) ++rows;
    CHECK(rows == 1 + 60);  // the header, then one row per step of both invocations
    CHECK(run("train toy --steps 20 --hidden 16 --overwrite --out " + dir).code == 0);
    CHECK(!std::filesystem::exists(dir + "/checkpoints/step-00000060.safetensors"));
    CHECK(run("train toy --device cuda --overwrite --out " + dir).code == 2);
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

// The number after `"key": ` in `json` (diffuse eval --json); NaN if the key is missing.
double json_number(const std::string& json, const std::string& key) {
    size_t at = json.find("\"" + key + "\": ");
    if (at == std::string::npos) return std::nan("");
    return std::atof(json.c_str() + at + key.size() + 4);
}

}  // namespace

TEST_CASE("train classifier learns a toy data set; eval judges samples and rejects bad ones" *
          doctest::test_suite("long")) {
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
    std::map<std::string, std::string> meta;
    td::nn::load_safetensors(rundir + "/classifier.safetensors", &meta);
    CHECK(meta["tinydiffusion.version"] == td::kVersion);

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

    // --json: the same figures as one object for scripts, shares as fractions, no prose
    std::string labels = tdtest::scratch("bars_labels.npy");
    td::save_npy(labels, test.labels);
    Run j = run("eval --classifier " + rundir + " --samples " + samples + " --labels " + labels + " --json");
    INFO(j.output);
    REQUIRE(j.code == 0);
    CHECK(j.output.rfind("{\n  \"images\": 64,\n", 0) == 0);
    CHECK(j.output.substr(j.output.size() - 2) == "}\n");
    CHECK(j.output.find("\"class_histogram\": [32, 32") != std::string::npos);
    CHECK(json_number(j.output, "recognisable") * 100 ==
          doctest::Approx(percent_after(e.output, "confidence > 0.9:")).epsilon(0.001));
    CHECK(json_number(j.output, "rejected") == 0.0);
    CHECK(json_number(j.output, "as_requested") == 1.0);
    CHECK(json_number(j.output, "classifier_fid") >= 0.0);
    CHECK(j.output.find("confidence > 0.9:") == std::string::npos);
    Run jn = run("eval --classifier " + rundir + " --samples " + samples + " --json --no-json");
    CHECK(jn.output.find("confidence > 0.9:") != std::string::npos);

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
                        {{"model", "classifier"},
                         {"data", data},
                         {"in_channels", "1"},
                         {"image_size", "28"},
                         {"num_classes", "10"},
                         {"width", "8"}});
    Run old = run("eval --classifier " + old_run + " --samples " + samples);
    INFO(old.output);
    CHECK(old.code == 0);
    CHECK(old.output.find("rejected:             n/a") != std::string::npos);
    Run old_json = run("eval --classifier " + old_run + " --samples " + samples + " --json");
    CHECK(old_json.output.find("\"rejected\": null,") != std::string::npos);
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

// ---- sample --out DIR/: one PNG per image, for FID tools -------------------------------------

namespace {

// Width and height of a PNG, from its IHDR chunk; {0, 0} if the file is not a PNG.
std::pair<int, int> png_size(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    unsigned char h[24] = {};
    f.read(reinterpret_cast<char*>(h), sizeof h);
    if (!f || h[1] != 'P' || h[2] != 'N' || h[3] != 'G') return {0, 0};
    auto be32 = [&](int at) { return (h[at] << 24) | (h[at + 1] << 16) | (h[at + 2] << 8) | h[at + 3]; };
    return {be32(16), be32(20)};
}

}  // namespace

TEST_CASE("sample --out DIR/ writes one PNG per image at its own size; model files record the version") {
    // a tiny untrained pixel model: the layout of the output is what is tested, not the images
    td::diffusion::ModelInfo info;
    info.unet.image_size = 8;
    info.unet.ch = 4;
    info.unet.mults = {1};
    info.unet.num_res_blocks = 1;
    info.unet.attn_res = {};
    info.unet.groups = 2;
    info.unet.dropout = 0.0f;
    info.T = 10;
    std::string run_dir = tdtest::scratch("tiny_run"), out = tdtest::scratch("tiny_samples");
    std::filesystem::remove_all(run_dir);
    std::filesystem::remove_all(out);
    std::filesystem::create_directories(run_dir);
    td::diffusion::UNet net(info.unet);
    td::nn::save_module(run_dir + "/model.safetensors", net, td::diffusion::to_metadata(info));
    std::map<std::string, std::string> meta;
    td::nn::load_safetensors(run_dir + "/model.safetensors", &meta);
    CHECK(meta["tinydiffusion.version"] == td::kVersion);

    Run r = run("sample --run " + run_dir + " --n 3 --steps 2 --threads 1 --out " + out + "/");
    INFO(r.output);
    REQUIRE(r.code == 0);
    for (const char* f : {"000000.png", "000001.png", "000002.png"})
        CHECK(png_size(out + "/" + f) == std::pair<int, int>{8, 8});
    CHECK(!std::filesystem::exists(out + "/000003.png"));
    // --guidance does not apply to an unconditional model without a guide ...
    Run unguided = run("sample --run " + run_dir + " --n 1 --steps 2 --threads 1 --guidance 2 --out " + out + "/");
    CHECK(unguided.code == 2);
    CHECK(unguided.output.find("without a guide.safetensors") != std::string::npos);
    // ... and autoguides it with one (another tiny UNet here); --guidance 1 is the model alone
    td::diffusion::UNet other(info.unet);
    {
        td::NoGradGuard no_grad;
        for (auto& [name, p] : other.named_parameters()) p.fill_(0.01f);
    }
    td::nn::save_module(run_dir + "/guide.safetensors", other, td::diffusion::to_metadata(info));
    for (const char* w : {"1", "3"}) {
        Run g = run("sample --run " + run_dir + " --n 2 --steps 2 --threads 1 --guidance " + w + " --out " + out + "/" +
                    w + ".npy");
        INFO(g.output);
        CHECK(g.code == 0);
        CHECK((g.output.find("autoguidance: w = " + std::string(w)) != std::string::npos));
    }
    td::Tensor plain = td::load_npy(out + "/1.npy"), guided = td::load_npy(out + "/3.npy");
    CHECK(td::max(td::abs(plain - guided)).item() > 1e-4f);
    std::filesystem::remove(run_dir + "/guide.safetensors");
    // a folder that exists needs no trailing slash; a file name of another kind is still refused
    Run again = run("sample --run " + run_dir + " --n 1 --steps 2 --threads 1 --out " + out);
    CHECK(again.code == 0);
    Run bad = run("sample --run " + run_dir + " --out " + out + "/x.jpg");
    CHECK(bad.code == 2);
    CHECK(bad.output.find("in / for a folder") != std::string::npos);
    std::filesystem::remove_all(run_dir);
    std::filesystem::remove_all(out);
}
