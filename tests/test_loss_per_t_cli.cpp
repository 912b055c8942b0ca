// tests/test_loss_per_t_cli.cpp: the loss per timestep in a run folder (`diffuse train
// ddpm` writes loss_per_t.csv and .png and shows them on index.html; `diffuse eval
// --loss-per-t` measures the same for a finished run).
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "diffusion/schedule.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

using namespace td;
using namespace td::diffusion;

namespace {

namespace fs = std::filesystem;
using tdtest::run_diffuse;
using Run = tdtest::CliRun;

struct Row {
    int64_t t;
    double loss, eps_mse, x0_mse;
};

// loss_per_t.csv's rows; REQUIREs the header.
std::vector<Row> read_curve(const std::string& path) {
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), path << " is missing");
    std::string line;
    std::getline(in, line);
    REQUIRE(line == "t,loss,eps_mse,x0_mse");
    std::vector<Row> rows;
    while (std::getline(in, line)) {
        Row r{};
        char c1, c2, c3;
        std::istringstream ss(line);
        REQUIRE_MESSAGE((ss >> r.t >> c1 >> r.loss >> c2 >> r.eps_mse >> c3 >> r.x0_mse), "bad row: " << line);
        rows.push_back(r);
    }
    return rows;
}

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), {});
}

}  // namespace

TEST_CASE(
    "loss per timestep: train ddpm writes loss_per_t.csv / .png and shows them; eval --loss-per-t measures the same" *
    doctest::test_suite("long")) {
    std::string data = tdtest::scratch("bars16_per_t"), dir = tdtest::scratch("run_per_t"),
                again = tdtest::scratch("run_per_t_eval");
    fs::create_directories(data);
    for (auto d : {dir, again}) fs::remove_all(d);
    tdtest::write_bars(data, "train", 64, 16);
    tdtest::write_bars(data, "test", 40, 16);
    // eps-prediction: its curve has a property any trained model shows (below)
    Run t = run_diffuse("train ddpm --data " + data + " --out " + dir +
                        " --ch 8 --mults 1,2 --res-blocks 1 --attn-res 8 --groups 4 --T 100 --batch 16 --prediction eps"
                        " --lr 0.003 --ema 0.9 --steps 150 --final-samples 2 --final-steps 2 --threads 1");
    INFO(t.output);
    REQUIRE(t.code == 0);

    std::vector<Row> curve = read_curve(dir + "/loss_per_t.csv");
    REQUIRE(curve.size() >= 10);
    CHECK(curve.front().t == 0);
    CHECK(curve.back().t == 99);
    // spaced in log t: the first 10 steps (the square root of T) get a third of the points
    // or more, where evenly spaced ones would give them one
    size_t low = 0;
    for (const Row& r : curve) low += r.t < 10;
    CHECK(low * 3 >= curve.size());
    Schedule s = Schedule::named("linear", 100);
    for (size_t i = 0; i < curve.size(); ++i) {
        const Row& r = curve[i];
        CAPTURE(r.t);
        if (i) CHECK(r.t > curve[i - 1].t);
        CHECK((std::isfinite(r.loss) && r.loss > 0 && std::isfinite(r.eps_mse) && std::isfinite(r.x0_mse)));
        CHECK(r.loss == r.eps_mse);  // an eps model's own target is eps
        // x_0 = (x_t - sqrt(1 - alpha_bar) eps) / sqrt(alpha_bar): the x_0 error is the eps
        // error times (1 - alpha_bar) / alpha_bar (to the csv's six digits)
        const double ab = s.alpha_bar_at(r.t);
        CHECK(r.x0_mse == doctest::Approx(r.eps_mse * (1 - ab) / ab).epsilon(1e-4));
    }
    // At the noisiest t, x_t is nearly all eps and a trained model sees it; at t = 0 the
    // noise is a whisper under the image, which no model can tell from the image's own detail.
    CHECK(curve.back().eps_mse < 0.5 * curve.front().eps_mse);
    // ... and x_0 the other way round: plain to see at t = 0, all but gone at T
    CHECK(curve.front().x0_mse < curve.back().x0_mse);

    std::string png = slurp(dir + "/loss_per_t.png");
    CHECK(png.size() > 1000);
    CHECK(png.rfind("\x89PNG", 0) == 0);
    std::string page = slurp(dir + "/index.html");
    CHECK(tdtest::contains(page, "<img src=\"loss_per_t.png\""));
    CHECK(tdtest::contains(page, "40 held-out"));  // measured on the test split, not the training images

    // an existing run: the same curve from model.safetensors (the EMA weights the trainer measured)
    Run e = run_diffuse("eval --loss-per-t " + dir + " --out " + again);
    INFO(e.output);
    REQUIRE(e.code == 0);
    CHECK(tdtest::contains(e.output, "wrote " + again + "/loss_per_t.png"));
    std::vector<Row> measured = read_curve(again + "/loss_per_t.csv");
    REQUIRE(measured.size() == curve.size());
    for (size_t i = 0; i < curve.size(); ++i) {
        CHECK(measured[i].t == curve[i].t);
        CHECK(measured[i].loss == doctest::Approx(curve[i].loss).epsilon(1e-4));
    }
    CHECK(fs::exists(again + "/loss_per_t.png"));

    // usage errors exit 2, a missing run exits 1 naming it; nothing is written
    Run both = run_diffuse("eval --loss-per-t " + dir + " --classifier " + dir);
    CHECK(both.code == 2);
    CHECK(tdtest::contains(both.output, "--loss-per-t measures a diffusion run"));
    Run none = run_diffuse("eval --loss-per-t " + dir + "-missing");
    CHECK(none.code == 1);
    CHECK(tdtest::contains(none.output, dir + "-missing: no such run folder"));
    CHECK_FALSE(fs::exists(dir + "-missing"));
    for (auto d : {dir, again}) fs::remove_all(d);
}
