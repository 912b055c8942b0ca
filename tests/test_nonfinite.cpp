// tests/test_nonfinite.cpp: a training step whose loss or gradient is not finite stops
// the run with a message naming the step and the first tensor that went bad, or, with
// skip_nonfinite / --skip-nonfinite, is dropped without touching the weights.
#include <cmath>
#include <filesystem>
#include <fstream>

#include "diffusion/trainer.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

using namespace td;
using namespace td::diffusion;

namespace {

TrainOptions small_options(bool skip) {
    TrainOptions o;
    o.batch_size = 8;
    o.seed = 3;
    o.skip_nonfinite = skip;
    return o;
}

// Poisons one weight with NaN, as a diverged update would.
void poison(UNet& net, const std::string& name) {
    for (auto& [n, p] : net.named_parameters())
        if (n == name) {
            NoGradGuard g;
            p.fill_(NAN);
        }
}

}  // namespace

TEST_CASE("non-finite: a NaN weight stops training naming the step and the weight") {
    DdpmTrainer tr(tdtest::tiny_ddpm(50), small_options(false), tdtest::bars_dataset(16, 8));
    tr.step();
    poison(tr.model(), "down.0.block.0.conv1.weight");
    try {
        tr.step();
        FAIL("a NaN weight must stop the step");
    } catch (const Error& e) {
        std::string m = e.what();
        INFO(m);
        CHECK(tdtest::contains(m, "at step 2"));
        CHECK(tdtest::contains(m, "the weight down.0.block.0.conv1.weight"));
        CHECK(tdtest::contains(m, "--skip-nonfinite"));
    }
}

TEST_CASE("non-finite: with skip_nonfinite the step is dropped and the weights stay as they were") {
    DdpmTrainer tr(tdtest::tiny_ddpm(50), small_options(true), tdtest::bars_dataset(16, 8));
    tr.step();
    poison(tr.model(), "conv_out.bias");
    std::vector<float> before = tr.model().named_parameters()[0].second.to_vector();
    StepStats s = tr.step();
    CHECK(s.skipped);
    CHECK(s.step == 2);
    CHECK(tr.steps_skipped() == 1);
    CHECK(tr.model().named_parameters()[0].second.to_vector() == before);  // no update was applied
}

TEST_CASE("non-finite: diffuse train ddpm with a huge lr stops (exit 1) or skips with --skip-nonfinite") {
    std::string data = tdtest::scratch("bars8_nonfinite"), dir = tdtest::scratch("run_nonfinite");
    std::filesystem::create_directories(data);
    std::filesystem::remove_all(dir);
    tdtest::write_bars(data, "train", 32, 8);
    std::string common = "train ddpm --data " + data +
                         " --ch 8 --mults 1,2 --res-blocks 1 --attn-res 4 --groups 4 "
                         "--T 50 --batch 8 --lr 1e30 --warmup 0 --clip 0 --final-samples 2 --final-steps 2 "
                         "--threads 1 --steps 6 --ckpt-every 1 --out " +
                         dir;
    auto stop = tdtest::run_diffuse(common);
    INFO(stop.output);
    CHECK(stop.code == 1);
    CHECK(tdtest::contains(stop.output, "first non-finite"));
    CHECK(tdtest::contains(stop.output, "last good checkpoint"));

    auto skip = tdtest::run_diffuse(common + " --overwrite --skip-nonfinite");
    INFO(skip.output);
    CHECK(skip.code == 0);
    std::ifstream csv(dir + "/metrics.csv");
    std::string header, line, last;
    std::getline(csv, header);
    CHECK(header == "step,epoch,loss,grad_norm,lr,seconds,skipped,rss_mb,wall_clock");
    while (std::getline(csv, line)) last = line;
    std::vector<std::string> fields;
    std::stringstream row(last);
    for (std::string f; std::getline(row, f, ',');) fields.push_back(f);
    REQUIRE(fields.size() == 9);
    CHECK(std::atoi(fields[6].c_str()) > 0);    // skipped steps were counted
    CHECK(std::atof(fields[7].c_str()) > 1.0);  // and the resident memory (MB) recorded
}
