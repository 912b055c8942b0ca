// tests/test_cli_settings.cpp: every setting of `diffuse train ddpm` makes the whole trip:
// its flag, with a value other than the default, lands in config.txt, in the model file's
// metadata where the model needs it, and `diffuse sample` builds the model from that file.
// The list of settings comes from `train ddpm --help`: a new flag without a case here, or
// a new metadata key without a flag, fails the test.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "diffusion/metadata.h"
#include "nn/safetensors.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

namespace {

namespace fs = std::filesystem;
using tdtest::run_diffuse;
using Run = tdtest::CliRun;

// A setting given a value other than its default. `metadata`: the model file's key that
// must hold it ("" for a setting of the training alone); `stored`: what the key holds,
// when that is not the value itself.
struct Case {
    std::string flag, value, metadata, stored;
};

// Two runs between them cover every setting: one text-conditional with cross-attention,
// one class-conditional by concatenation. Values are small, so each run takes seconds.
std::vector<Case> common_cases(const std::string& data) {
    return {{"data", data, "data", fs::path(data).filename().string()},
            {"image-size", "24", "", ""},
            {"channels", "1", "", ""},
            {"ch", "8", "unet.ch", ""},
            {"mults", "1,2", "unet.mults", ""},
            {"res-blocks", "1", "unet.num_res_blocks", ""},
            {"attn-res", "8", "unet.attn_res", ""},
            {"heads", "2", "unet.heads", ""},
            {"dropout", "0.05", "unet.dropout", ""},
            {"groups", "4", "unet.groups", ""},
            {"schedule", "cosine", "schedule", ""},
            {"T", "40", "T", ""},
            {"prediction", "x0", "prediction", ""},
            {"loss-weight", "min-snr", "", ""},
            {"snr-gamma", "4", "", ""},
            {"batch", "8", "", ""},
            {"lr", "0.003", "", ""},
            {"lr-schedule", "warmup", "", ""},
            {"warmup", "3", "", ""},
            {"lr-total", "9", "", ""},
            {"weight-decay", "0.01", "", ""},
            {"clip", "0.5", "", ""},
            {"ema", "0.99", "", ""},
            {"flip", "true", "", ""},
            {"seed", "3", "", ""},
            {"steps", "2", "", ""},
            {"minutes", "5", "", ""},
            {"p-uncond", "0.2", "", ""},
            {"guidance", "2", "", ""},
            {"skip-nonfinite", "true", "", ""},
            {"device", "cpu", "", ""}};
}

std::vector<Case> text_cases() {
    return {{"cond", "text", "unet.cond", ""},
            {"cond-mode", "crossattn", "unet.cond_mode", ""},
            {"text-dim", "16", "unet.text_dim", ""},
            {"text-layers", "1", "unet.text_layers", ""},
            {"text-heads", "2", "unet.text_heads", ""},
            {"max-tokens", "20", "unet.max_tokens", ""},
            {"context-dim", "16", "unet.context_dim", ""}};
}

std::vector<Case> class_cases() {
    return {{"cond", "class", "unet.cond", ""},
            {"cond-mode", "concat", "unet.cond_mode", ""},
            {"concat-channels", "3", "unet.concat_channels", ""}};
}

// The flags of `train ddpm` that are not settings of the model or its training (the run
// folder, the pictures, the machine), and --vae (train ldm's; tests/test_ldm.cpp).
const std::set<std::string> kNotSettings = {"out",  "config",        "resume",      "overwrite",   "threads",
                                            "keep", "sample-every",  "ckpt-every",  "final-samples",
                                            "final-steps", "distributed", "vae",     "help"};

// The metadata keys that no flag sets: the file's own ("format": safetensors' "pt"), and
// what the data decide.
const std::set<std::string> kDerivedKeys = {"format",           "model",           "tinydiffusion.version",
                                            "unet.in_channels", "unet.out_channels", "unet.image_size",
                                            "unet.num_classes"};

std::vector<std::string> help_flags(const std::string& help) {
    std::vector<std::string> flags;
    std::istringstream in(help);
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("  --", 0) != 0) continue;
        std::string name = line.substr(4, line.find_first_of(" \t", 4) - 4);
        flags.push_back(name);
    }
    return flags;
}

std::map<std::string, std::string> config_of(const std::string& path) {
    std::map<std::string, std::string> kv;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
        size_t eq = line.find(" = ");
        if (!line.empty() && line[0] != '#' && eq != std::string::npos) kv[line.substr(0, eq)] = line.substr(eq + 3);
    }
    return kv;
}

// "0.05" and "0.050000" are the same setting.
bool same_value(const std::string& a, const std::string& b) {
    char *ea = nullptr, *eb = nullptr;
    double x = std::strtod(a.c_str(), &ea), y = std::strtod(b.c_str(), &eb);
    if (!a.empty() && !b.empty() && *ea == '\0' && *eb == '\0') return std::abs(x - y) <= 1e-6 * std::max(1.0, std::abs(x));
    return a == b;
}

std::string flags_of(const std::vector<Case>& cases) {
    std::string s;
    for (const Case& c : cases) s += c.value == "true" ? " --" + c.flag : " --" + c.flag + " " + c.value;
    return s;
}

// Trains with every case's flag, then checks config.txt, the metadata and `diffuse sample`.
void round_trip(const std::vector<Case>& cases, const std::string& dir, const std::string& sample_flags,
                std::set<std::string>& covered_flags, std::set<std::string>& covered_keys,
                std::set<std::string>& written_keys) {
    fs::remove_all(dir);
    Run t = run_diffuse("train ddpm --out " + dir + flags_of(cases) + " --final-samples 2 --final-steps 2 --threads 1");
    INFO(t.output);
    REQUIRE(t.code == 0);

    std::map<std::string, std::string> config = config_of(dir + "/config.txt");
    td::diffusion::Metadata meta;
    td::nn::load_safetensors(dir + "/model.safetensors", &meta);
    for (const auto& kv : meta) written_keys.insert(kv.first);
    for (const Case& c : cases) {
        CAPTURE(c.flag);
        covered_flags.insert(c.flag);
        REQUIRE(config.count(c.flag));
        CHECK(config.at(c.flag) == c.value);
        if (c.metadata.empty()) continue;
        covered_keys.insert(c.metadata);
        REQUIRE(meta.count(c.metadata));
        CHECK(same_value(meta.at(c.metadata), c.stored.empty() ? c.value : c.stored));
    }

    // config.txt is a --config file: read back, it gives the same settings
    fs::remove_all(dir + "-again");
    Run again = run_diffuse("train ddpm --config " + dir + "/config.txt --out " + dir +
                            "-again --final-samples 2 --final-steps 2 --threads 1");
    INFO(again.output);
    REQUIRE(again.code == 0);
    CHECK(config_of(dir + "-again/config.txt") == config);

    // sample builds the UNet from the file's metadata alone (strict: every weight must fit)
    std::string npy = dir + "/drawn.npy";
    Run s = run_diffuse("sample --run " + dir + " --n 2 --steps 2 --out " + npy + sample_flags);
    INFO(s.output);
    CHECK(s.code == 0);
    CHECK(fs::exists(npy));
    fs::remove_all(dir);
    fs::remove_all(dir + "-again");
}

}  // namespace

TEST_CASE("settings: every train ddpm setting goes flag -> config.txt -> model file -> sample" * doctest::test_suite("long")) {
    std::string data = tdtest::scratch("settings-bars");
    fs::create_directories(data);
    tdtest::write_bars(data, "train", 32, 16);

    std::set<std::string> flags, keys, written;
    std::vector<Case> text = common_cases(data), cls = common_cases(data);
    for (const Case& c : text_cases()) text.push_back(c);
    for (const Case& c : class_cases()) cls.push_back(c);
    round_trip(text, tdtest::scratch("settings-text"), " --prompt \"a bar\"", flags, keys, written);
    round_trip(cls, tdtest::scratch("settings-class"), " --class 1", flags, keys, written);

    // every flag of --help is a setting tested here, or named as not one
    Run help = run_diffuse("train ddpm --help");
    for (const std::string& f : help_flags(help.output)) {
        CAPTURE(f);
        CHECK((flags.count(f) || kNotSettings.count(f)));
    }
    // every metadata key the two models' files hold comes from a flag, or from the data
    for (const std::string& k : written) {
        CAPTURE(k);
        CHECK((keys.count(k) || kDerivedKeys.count(k)));
    }
}

TEST_CASE("settings: a bad word for an enum setting exits 2 naming the flag and the choices") {
    std::string data = tdtest::scratch("settings-bars");
    fs::create_directories(data);
    tdtest::write_bars(data, "train", 32, 16);
    struct Bad {
        std::string flags, message;
    };
    for (const Bad& b : {Bad{"--cond label", "--cond: unknown conditioning 'label' (none, class, text)"},
                         Bad{"--cond-mode hybrid", "--cond-mode: unknown cond_mode 'hybrid' (add, concat, crossattn)"},
                         Bad{"--schedule quadratic", "--schedule: unknown schedule 'quadratic' (linear, cosine, scaled_linear)"},
                         Bad{"--prediction score", "--prediction: unknown prediction 'score' (eps, x0, v)"},
                         Bad{"--loss-weight snr", "--loss-weight: unknown loss weight 'snr' (none, min-snr)"},
                         Bad{"--lr-schedule step", "--lr-schedule: unknown lr schedule 'step' (constant, warmup, cosine)"}}) {
        CAPTURE(b.flags);
        Run r = run_diffuse("train ddpm --data " + data + " --out " + tdtest::scratch("settings-bad") + " --steps 1 " +
                            b.flags);
        CHECK(r.code == 2);
        CHECK(tdtest::contains(r.output, b.message));
        CHECK(!fs::exists(tdtest::scratch("settings-bad") + "/model.safetensors"));
    }
    Run s = run_diffuse("sample --run " + tdtest::scratch("nowhere") + " --sampler euler --out x.npy");
    CHECK(s.code == 2);
    CHECK(tdtest::contains(s.output, "--sampler: unknown sampler 'euler' (ddpm, ddim)"));
}
