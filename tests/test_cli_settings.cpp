// tests/test_cli_settings.cpp: every setting of every training command makes the whole
// trip: its flag, with a value other than the default, lands in config.txt, in the model
// file's metadata where the model needs it, and config.txt given back as --config gives the
// same config.txt; for `train ddpm`, `diffuse sample` builds the model from the file too.
// The list of settings comes from each command's --help: a new flag without a case here,
// or a new metadata key without a flag, fails the test.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "diffusion/classifier.h"
#include "diffusion/metadata.h"
#include "diffusion/sampler.h"
#include "diffusion/trainer.h"
#include "diffusion/unet.h"
#include "diffusion/vae.h"
#include "nn/lr_schedule.h"
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
            {"t-sampling", "uniform", "", ""},
            {"t-loc", "0.25", "", ""},
            {"t-scale", "0.5", "", ""},
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
            {"guide-at", "0.5", "", ""},
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

// The flags of `train ddpm` that are not settings of the model or its training (the
// pictures, the checkpoints, the ranks; the run folder's are kRunFlags), and --vae (train
// ldm's; tests/test_ldm.cpp).
const std::set<std::string> kNotSettings = {"keep",        "sample-every", "ckpt-every", "final-samples",
                                            "final-steps", "distributed",  "vae"};

// The metadata keys that no flag sets: the file's own ("format": safetensors' "pt"), and
// what the data decide.
const std::set<std::string> kDerivedKeys = {
    "format",          "model",           "tinydiffusion.version", "unet.in_channels", "unet.out_channels",
    "unet.image_size", "unet.num_classes"};

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
    if (!a.empty() && !b.empty() && *ea == '\0' && *eb == '\0')
        return std::abs(x - y) <= 1e-6 * std::max(1.0, std::abs(x));
    return a == b;
}

std::string flags_of(const std::vector<Case>& cases) {
    std::string s;
    for (const Case& c : cases) s += c.value == "true" ? " --" + c.flag : " --" + c.flag + " " + c.value;
    return s;
}

// What the runs of one command covered between them.
struct Covered {
    std::set<std::string> flags, keys, written;  // flags given; metadata keys checked; keys the files hold
};

// Trains `command` into `dir` with every case's flag (and `extra`: the flags that are not
// settings), then checks config.txt and the metadata of RUN/`model_file` ("": a command
// without one), and that config.txt, given back as --config, gives the same config.txt.
void round_trip(const std::string& command, const std::vector<Case>& cases, const std::string& dir,
                const std::string& model_file, const std::string& extra, Covered& covered) {
    fs::remove_all(dir);
    Run t = run_diffuse(command + " --out " + dir + flags_of(cases) + extra + " --threads 1");
    INFO(t.output);
    REQUIRE(t.code == 0);

    std::map<std::string, std::string> config = config_of(dir + "/config.txt");
    td::diffusion::Metadata meta;
    if (!model_file.empty()) td::nn::load_safetensors(dir + "/" + model_file, &meta);
    for (const auto& kv : meta) covered.written.insert(kv.first);
    for (const Case& c : cases) {
        CAPTURE(c.flag);
        covered.flags.insert(c.flag);
        REQUIRE(config.count(c.flag));
        CHECK(config.at(c.flag) == c.value);
        if (c.metadata.empty()) continue;
        covered.keys.insert(c.metadata);
        REQUIRE(meta.count(c.metadata));
        CHECK(same_value(meta.at(c.metadata), c.stored.empty() ? c.value : c.stored));
    }

    // config.txt is a --config file: read back, it gives the same settings
    fs::remove_all(dir + "-again");
    Run again =
        run_diffuse(command + " --config " + dir + "/config.txt --out " + dir + "-again" + extra + " --threads 1");
    INFO(again.output);
    REQUIRE(again.code == 0);
    CHECK(config_of(dir + "-again/config.txt") == config);
    fs::remove_all(dir + "-again");
}

// Every flag of the command's --help is a setting the runs gave, or named as not one; every
// metadata key the files hold comes from a flag, or from the data (`derived`).
void check_covered(const std::string& command, const Covered& covered, const std::set<std::string>& not_settings,
                   const std::set<std::string>& derived) {
    Run help = run_diffuse(command + " --help");
    REQUIRE(help.code == 0);
    for (const std::string& f : help_flags(help.output)) {
        CAPTURE(f);
        CHECK((covered.flags.count(f) || not_settings.count(f)));
    }
    for (const std::string& k : covered.written) {
        CAPTURE(k);
        CHECK((covered.keys.count(k) || derived.count(k)));
    }
}

// The flags of every training command that are about the run folder and the machine.
const std::set<std::string> kRunFlags = {"out", "config", "resume", "overwrite", "threads", "help"};

std::set<std::string> with_run_flags(std::set<std::string> flags) {
    flags.insert(kRunFlags.begin(), kRunFlags.end());
    return flags;
}

// A data set of bars (tests/synthetic_data.h), 16 x 16, with a train and a test split.
std::string bars_data() {
    std::string data = tdtest::scratch("settings-bars16");
    fs::create_directories(data);
    tdtest::write_bars(data, "train", 32, 16);
    tdtest::write_bars(data, "test", 16, 16);
    return data;
}

}  // namespace

TEST_CASE("settings: every train ddpm setting goes flag -> config.txt -> model file -> sample" *
          doctest::test_suite("long")) {
    std::string data = tdtest::scratch("settings-bars");
    fs::create_directories(data);
    tdtest::write_bars(data, "train", 32, 16);

    Covered covered;
    std::vector<Case> text = common_cases(data), cls = common_cases(data);
    for (const Case& c : text_cases()) text.push_back(c);
    for (const Case& c : class_cases()) cls.push_back(c);
    for (auto [cases, dir, sample_flags] : {std::tuple{text, tdtest::scratch("settings-text"), " --prompt \"a bar\""},
                                            std::tuple{cls, tdtest::scratch("settings-class"), " --class 1"}}) {
        round_trip("train ddpm", cases, dir, "model.safetensors", " --final-samples 2 --final-steps 2", covered);
        // sample builds the UNet from the file's metadata alone (strict: every weight must fit)
        std::string npy = dir + "/drawn.npy";
        Run s = run_diffuse("sample --run " + dir + " --n 2 --steps 2 --out " + npy + sample_flags);
        INFO(s.output);
        CHECK(s.code == 0);
        CHECK(fs::exists(npy));
        fs::remove_all(dir);
    }
    check_covered("train ddpm", covered, with_run_flags(kNotSettings), kDerivedKeys);
}

TEST_CASE("settings: every train vae setting goes flag -> config.txt -> model file") {
    std::string data = bars_data();
    std::vector<Case> cases = {{"data", data, "data", fs::path(data).filename().string()},
                               {"image-size", "24", "", ""},
                               {"channels", "1", "", ""},
                               {"ch", "8", "vae.ch", ""},
                               {"mults", "1,2", "vae.mults", ""},
                               {"res-blocks", "2", "vae.num_res_blocks", ""},
                               {"z-channels", "2", "vae.z_channels", ""},
                               {"groups", "4", "vae.groups", ""},
                               {"mid-attn", "0", "vae.mid_attn", ""},
                               {"batch", "8", "", ""},
                               {"lr", "0.002", "", ""},
                               {"warmup", "3", "", ""},
                               {"beta", "0.001", "beta", ""},
                               {"recon", "l2", "recon", ""},
                               {"seed", "3", "vae.seed", ""},
                               {"steps", "2", "", ""},
                               {"minutes", "5", "", ""},
                               {"device", "cpu", "", ""}};
    Covered covered;
    std::string dir = tdtest::scratch("settings-vae");
    round_trip("train vae", cases, dir, "model.safetensors", " --eval-images 8", covered);
    fs::remove_all(dir);
    check_covered(
        "train vae", covered, with_run_flags({"sample-every", "eval-images"}),
        {"format", "model", "tinydiffusion.version", "vae.in_channels", "vae.image_size", "steps", "held_out_psnr"});
}

TEST_CASE("settings: every train classifier setting goes flag -> config.txt -> model file") {
    // --data fashion read from the bars' folder: a named data set given its own --data-dir
    std::vector<Case> cases = {{"data", "fashion", "data", ""}, {"data-dir", bars_data(), "", ""},
                               {"epochs", "2", "", ""},         {"batch", "8", "", ""},
                               {"lr", "0.003", "", ""},         {"width", "16", "width", ""},
                               {"shift", "1", "", ""},          {"reject-class", "0", "reject_class", ""},
                               {"seed", "3", "", ""},           {"steps", "3", "", ""},
                               {"minutes", "5", "", ""},        {"device", "cpu", "", ""}};
    Covered covered;
    std::string dir = tdtest::scratch("settings-classifier");
    round_trip("train classifier", cases, dir, "classifier.safetensors", "", covered);
    fs::remove_all(dir);
    check_covered("train classifier", covered, kRunFlags,
                  {"format", "model", "tinydiffusion.version", "in_channels", "image_size", "num_classes", "steps",
                   "held_out_accuracy", "held_out_rejected", "negatives_rejected"});
}

TEST_CASE("settings: every train toy setting goes flag -> config.txt") {
    std::vector<Case> cases = {{"data", "spiral", "", ""}, {"hidden", "16", "", ""}, {"batch", "32", "", ""},
                               {"lr", "0.002", "", ""},    {"seed", "3", "", ""},    {"steps", "20", "", ""},
                               {"minutes", "5", "", ""},   {"device", "cpu", "", ""}};
    Covered covered;
    std::string dir = tdtest::scratch("settings-toy");
    round_trip("train toy", cases, dir, "", "", covered);  // (its weights are checkpoints only)
    fs::remove_all(dir);
    check_covered("train toy", covered, kRunFlags, {});
}

TEST_CASE("settings: a bad word for an enum setting exits 2 naming the flag and the choices") {
    std::string data = tdtest::scratch("settings-bars");
    fs::create_directories(data);
    tdtest::write_bars(data, "train", 32, 16);
    struct Bad {
        std::string flags, message;
    };
    for (const Bad& b :
         {Bad{"--cond label", "--cond: unknown conditioning 'label' (none, class, text)"},
          Bad{"--cond-mode hybrid", "--cond-mode: unknown cond_mode 'hybrid' (add, concat, crossattn)"},
          Bad{"--schedule quadratic", "--schedule: unknown schedule 'quadratic' (linear, cosine, scaled_linear)"},
          Bad{"--prediction score", "--prediction: unknown prediction 'score' (eps, x0, v)"},
          Bad{"--loss-weight snr", "--loss-weight: unknown loss weight 'snr' (none, min-snr)"},
          Bad{"--t-sampling lognormal", "--t-sampling: unknown timestep sampling 'lognormal' (uniform, logit-normal)"},
          Bad{"--t-scale 0", "need --t-scale > 0 and a finite --t-loc"},
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

// Each enum's word -> value -> word is the identity (the tables of tensor/choice.h), an
// alias reads as its value and writes as the first word, and another word lists the choices.
template <class Enum>
void check_words(Enum (*parse)(const std::string&), std::string (*name)(Enum), const std::vector<std::string>& words) {
    for (const std::string& w : words) {
        CAPTURE(w);
        CHECK(name(parse(w)) == w);
    }
}

TEST_CASE("settings: every enum's words read and write back; an unknown word lists the choices") {
    using namespace td::diffusion;
    check_words(parse_sampler, sampler_name, {"ddpm", "ddim"});
    check_words(parse_spacing, spacing_name, {"leading", "trailing", "linspace"});
    check_words(parse_beta_schedule, beta_schedule_name, {"linear", "cosine", "scaled_linear"});
    check_words(parse_prediction, prediction_name, {"eps", "x0", "v"});
    check_words(parse_conditioning, conditioning_name, {"none", "class", "text"});
    check_words(parse_cond_mode, cond_mode_name, {"add", "concat", "crossattn"});
    check_words(parse_loss_weight, loss_weight_name, {"none", "min-snr"});
    check_words(parse_recon, recon_name, {"l1", "l2"});
    check_words(parse_reference, reference_name, {"real", "noise", "blur"});
    check_words(td::nn::parse_lr_kind, td::nn::lr_kind_name, {"constant", "warmup", "cosine"});
    // the DDPM code's names for the two variances are read too, and not listed
    CHECK(parse_variance("fixedlarge") == Variance::Beta);
    CHECK(parse_variance("fixedsmall") == Variance::BetaTilde);
    CHECK(parse_variance("beta_tilde") == Variance::BetaTilde);
    CHECK_THROWS_WITH(parse_variance("large"), "unknown variance 'large' (beta, beta_tilde)");
    CHECK_THROWS_WITH(parse_spacing("even"), "unknown spacing 'even' (leading, trailing, linspace)");
    CHECK_THROWS_WITH(parse_sampler(""), "unknown sampler '' (ddpm, ddim)");
}
