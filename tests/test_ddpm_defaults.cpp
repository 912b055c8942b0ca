// tests/test_ddpm_defaults.cpp: the defaults a student types. `diffuse train ddpm` with
// no setting but the data trains the demo's recipe (configs/mnist-demo.cfg), and `diffuse
// train ldm` with none fits its UNet to 7 x 7 latents as configs/mnist-ldm-class.cfg does:
// --ch, --res-blocks and --groups follow the levels --mults auto picks for the input size.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tests/helpers.h"
#include "tests/synthetic_data.h"

namespace {

namespace fs = std::filesystem;
using tdtest::run_diffuse;
using Run = tdtest::CliRun;

// `key = value` lines (a --config file, a run's config.txt), comments left out.
std::map<std::string, std::string> config_of(const std::string& path) {
    std::map<std::string, std::string> kv;
    std::ifstream in(path);
    REQUIRE_MESSAGE(in.good(), path << " is missing");
    for (std::string line; std::getline(in, line);) {
        size_t eq = line.find(" = ");
        if (!line.empty() && line[0] != '#' && eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 3);
    }
    return kv;
}

// The "(default: X)" of each option in a --help text (a help of several lines has it on its last).
std::map<std::string, std::string> help_defaults(const std::string& help) {
    std::map<std::string, std::string> out;
    std::istringstream in(help);
    std::string name;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("  --", 0) == 0) name = line.substr(4, line.find_first_of(" \t", 4) - 4);
        size_t at = line.find("(default: ");
        if (!name.empty() && at != std::string::npos) out[name] = line.substr(at + 10, line.rfind(')') - at - 10);
    }
    return out;
}

// "0.002" and "0.0020" are the same setting.
bool same_value(const std::string& a, const std::string& b) {
    char *ea = nullptr, *eb = nullptr;
    double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
    if (!a.empty() && !b.empty() && *ea == '\0' && *eb == '\0')
        return std::abs(x - y) <= 1e-9 * std::max(1.0, std::abs(x));
    return a == b;
}

const std::string kBudget = " --final-samples 2 --final-steps 2 --threads 1";

}  // namespace

TEST_CASE("defaults: train ddpm with nothing but the data trains the demo recipe (configs/mnist-demo.cfg)" *
          doctest::test_suite("long")) {
    // 28 x 28 images, as MNIST's
    std::string data = tdtest::scratch("bars28_defaults"), dir = tdtest::scratch("run_defaults");
    fs::create_directories(data);
    fs::remove_all(dir);
    tdtest::write_bars(data, "train", 64, 28);
    std::map<std::string, std::string> demo = config_of("configs/mnist-demo.cfg");
    REQUIRE(demo.size() >= 15);

    // every key of the demo's config is --help's default, or auto
    std::map<std::string, std::string> help = help_defaults(run_diffuse("train ddpm --help").output);
    for (const auto& [key, value] : demo) {
        CAPTURE(key);
        REQUIRE(help.count(key));
        CHECK((same_value(help.at(key), value) || help.at(key) == "auto"));
    }

    // ... and what auto resolves to for 28 x 28 images is the demo's: config.txt holds it
    Run t = run_diffuse("train ddpm --data " + data + " --out " + dir + " --steps 2" + kBudget);
    INFO(t.output);
    REQUIRE(t.code == 0);
    CHECK(tdtest::contains(t.output,
                           "UNet for 1 x 28 x 28 images: --mults 1,2,2 (resolutions 28 -> 14 -> 7), "
                           "--attn-res 7 (the lowest resolution, where attention is cheapest), "
                           "--ch 16 --res-blocks 1 (several levels), --groups 4 (ch / 4)"));
    // (no test/ split here: the loss per timestep says it is measured on training images)
    CHECK(tdtest::contains(run_diffuse("eval --loss-per-t " + dir + " --out " + dir + "/again").output,
                           "64 training (the data set has no held-out split)"));
    std::map<std::string, std::string> run = config_of(dir + "/config.txt");
    for (const auto& [key, value] : demo) {
        if (key == "data" || key == "steps") continue;  // given here: a synthetic set, 2 steps
        CAPTURE(key);
        REQUIRE(run.count(key));
        CHECK(same_value(run.at(key), value));
    }

    // the step budget: the demo's unless --minutes alone sets a time budget; --steps 0 alone is none
    fs::remove_all(dir);
    Run m = run_diffuse("train ddpm --data " + data + " --out " + dir + " --minutes 0.0001" + kBudget);
    INFO(m.output);
    REQUIRE(m.code == 0);
    CHECK(tdtest::contains(m.output, "time budget reached"));
    CHECK(config_of(dir + "/config.txt").at("steps") == "0");

    // --minutes alone plans the run's steps from its measured speed: the cosine ends at the
    // plan, and the run never goes past it (past it the learning rate would be 0)
    fs::remove_all(dir);
    Run p = run_diffuse("train ddpm --data " + data + " --out " + dir +
                        " --minutes 0.1 --ch 8 --mults 1 --attn-res none --res-blocks 1 --batch 4" + kBudget);
    INFO(p.output);
    REQUIRE(p.code == 0);
    const std::string said = "about ";
    size_t at = p.output.find(said);
    REQUIRE(at != std::string::npos);  // (a tiny model takes hundreds of steps in 6 s)
    int64_t planned = std::stoll(p.output.substr(at + said.size()));
    CHECK(config_of(dir + "/config.txt").at("lr-total") == std::to_string(planned));
    std::string csv = tdtest::read_file(dir + "/metrics.csv");
    int64_t last = std::stoll(csv.substr(csv.rfind('\n', csv.size() - 2) + 1));  // the last row's step
    CHECK(last <= planned);
    fs::remove_all(dir);
    Run none = run_diffuse("train ddpm --data " + data + " --out " + dir + " --steps 0" + kBudget);
    CHECK(none.code == 2);
    CHECK(tdtest::contains(none.output, "give a budget"));
    CHECK_FALSE(fs::exists(dir + "/config.txt"));

    // auto follows a size the user chose: one level (--mults 1) is the latents' UNet;
    // a width the user chose keeps its groups at ch / 4
    fs::remove_all(dir);
    Run one =
        run_diffuse("train ddpm --data " + data + " --out " + dir + " --mults 1 --attn-res none --steps 1" + kBudget);
    INFO(one.output);
    REQUIRE(one.code == 0);
    std::map<std::string, std::string> c1 = config_of(dir + "/config.txt");
    CHECK(c1.at("ch") == "32");
    CHECK(c1.at("res-blocks") == "2");
    CHECK(c1.at("groups") == "8");
    fs::remove_all(dir);
    Run w = run_diffuse("train ddpm --data " + data + " --out " + dir + " --ch 12 --steps 1" + kBudget);
    INFO(w.output);
    REQUIRE(w.code == 0);
    CHECK(config_of(dir + "/config.txt").at("groups") == "3");
    CHECK(config_of(dir + "/config.txt").at("res-blocks") == "1");
    fs::remove_all(dir);
}

TEST_CASE("defaults: train ldm with no UNet settings gets the latent recipe's UNet (configs/mnist-ldm-class.cfg)" *
          doctest::test_suite("long")) {
    // 28 x 28 images through an f = 4 autoencoder: 7 x 7 latents, as MNIST's
    std::string data = tdtest::scratch("bars28_ldm_defaults"), vae = tdtest::scratch("run_defaults_vae"),
                ldm = tdtest::scratch("run_defaults_ldm");
    fs::create_directories(data);
    for (auto d : {vae, ldm}) fs::remove_all(d);
    tdtest::write_bars(data, "train", 32, 28);
    tdtest::write_bars(data, "test", 8, 28);
    Run v =
        run_diffuse("train vae --data " + data + " --out " + vae +
                    " --ch 8 --mults 1,2,2 --z-channels 2 --groups 4 --steps 2 --batch 8 --threads 1 --eval-images 8");
    INFO(v.output);
    REQUIRE(v.code == 0);
    std::map<std::string, std::string> recipe = config_of("configs/mnist-ldm-class.cfg");
    for (std::string cond : {"class", "text"}) {
        CAPTURE(cond);
        fs::remove_all(ldm);
        Run l = run_diffuse("train ldm --vae " + vae + " --data " + data + " --out " + ldm + " --cond " + cond +
                            " --steps 2 --batch 8" + kBudget);
        INFO(l.output);
        REQUIRE(l.code == 0);
        CHECK(tdtest::contains(l.output,
                               "UNet for 2 x 7 x 7 latents: --mults 1 (one level: 7 is odd, it cannot be "
                               "halved), --attn-res 7 (the lowest resolution, where attention is cheapest), "
                               "--ch 32 --res-blocks 2 (one level), --groups 8 (ch / 4)"));
        std::map<std::string, std::string> run = config_of(ldm + "/config.txt");
        for (const char* key : {"ch", "mults", "res-blocks", "attn-res", "groups", "dropout"}) {
            CAPTURE(key);
            CHECK(same_value(run.at(key), recipe.at(key)));
        }
        CHECK(fs::exists(ldm + "/loss_per_t.csv"));  // latent runs measure theirs too (on encoded held-out images)
    }
    for (auto d : {vae, ldm}) fs::remove_all(d);
}
