// tools/ddpm_settings.cpp: see ddpm_settings.h.
#include "tools/ddpm_settings.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include <omp.h>

#include "diffusion/latent.h"
#include "diffusion/metadata.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace td::cli {

using namespace td::diffusion;

const std::vector<std::string> kDdpmConfigKeys = {
    "data", "image-size", "channels", "ch", "mults", "res-blocks", "attn-res", "heads", "dropout", "groups",
    "schedule", "T", "prediction", "loss-weight", "snr-gamma", "batch", "lr", "lr-schedule", "warmup", "lr-total",
    "weight-decay", "clip", "ema", "flip", "seed", "steps", "minutes", "vae", "cond", "cond-mode", "p-uncond",
    "text-dim", "text-layers", "guidance", "skip-nonfinite", "device"};

void declare_ddpm_options(Args& a) {
    a.option("data", "mnist", "data set: mnist, fashion, cifar10, or a folder of IDX files / CIFAR batches / images");
    declare_common_settings(a, "stop after this many steps in all (0: no step limit; with --resume: the total)");
    a.option("batch", "64", "minibatch size (with --distributed: per rank; the global batch is ranks x this)");
    a.option("lr", "0.001", "peak learning rate (AdamW)");
    a.option("lr-schedule", "cosine", "constant, warmup (linear warm-up then constant) or cosine");
    a.option("warmup", "100", "linear warm-up steps");
    a.option("lr-total", "0", "the step where the cosine schedule ends (0: --steps, or estimated from --minutes)");
    a.option("weight-decay", "0", "AdamW decoupled weight decay");
    a.option("clip", "1", "gradient clipping: max global norm (0: off)");
    a.option("ema", "0.999", "EMA decay of the weights used for sampling (warmed up, see nn/ema.h)");
    a.option("ch", "32", "UNet base channels");
    a.option("mults", "auto", "channel multiplier per resolution level (auto: 1,2,2 where the size allows, as for\n"
                              "28x28 pixels; fewer levels for small inputs, 1 for 7x7 latents)");
    a.option("res-blocks", "2", "ResBlocks per level");
    a.option("attn-res", "auto", "resolutions with self-attention, comma separated (none: no attention; auto: the\n"
                                 "lowest resolution, 7 for 28x28 pixels and for 7x7 latents)");
    a.option("heads", "1", "attention heads");
    a.option("dropout", "0.1", "dropout in the ResBlocks");
    a.option("groups", "8", "GroupNorm groups (each must hold 2+ channels; 4+ is better)");
    a.option("schedule", "linear", "noise schedule: linear (DDPM), cosine (Improved DDPM eq. 17), scaled_linear");
    a.option("T", "1000", "diffusion steps");
    a.option("prediction", "eps", "what the UNet predicts: eps, x0 or v");
    a.option("loss-weight", "none", "none (L_simple, DDPM eq. 14) or min-snr (Hang et al. 2023: min(SNR, gamma) weights)");
    a.option("snr-gamma", "5", "min-snr's gamma");
    a.flag("flip", "random horizontal flips (on for 3-channel data unless the config says false)");
    a.option("image-size", "32", "folders of images only: resize + center crop to this size");
    a.option("channels", "3", "folders of images only: 1 (grey) or 3 (RGB)");
    a.option("vae", "", "train ldm: the autoencoder, a run folder of `diffuse train vae` (or its model.safetensors)");
    a.option("cond", "none", "conditioning: none, class (the data set's labels) or text (captions made from the labels)");
    a.option("cond-mode", "crossattn", "how the condition enters the UNet: add (to the time embedding), concat "
                                       "(as extra input channels) or crossattn (cross-attention, LDM sec. 3.3)");
    a.option("p-uncond", "0.1", "probability of dropping the condition in training (classifier-free guidance)");
    a.option("text-dim", "64", "text conditioning: the text encoder's width");
    a.option("text-layers", "2", "text conditioning: the text encoder's transformer blocks");
    a.flag("skip-nonfinite", "drop a step whose loss or gradient is not finite (counted in metrics.csv) instead of stopping");
    a.option("guidance", "3", "conditional models: the guidance scale w of the grids drawn while and after training");
}

Device device_option(const Args& args) {
    std::string d = args.str("device");
    if (d != "cuda" && d != "cpu" && d != "auto") throw ArgError("--device must be cuda, cpu or auto, got '" + d + "'");
    return parse_device(d);  // cuda without a GPU: td::Error saying why
}

std::vector<int64_t> parse_int_list(const std::string& flag, const std::string& v) {
    std::vector<int64_t> out;
    if (v.empty() || v == "none") return out;
    std::stringstream ss(v);
    for (std::string item; std::getline(ss, item, ',');) {
        char* end = nullptr;
        long long x = std::strtoll(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || x <= 0)
            throw ArgError("--" + flag + " expects positive integers separated by commas, got '" + v + "'");
        out.push_back(x);
    }
    return out;
}

DdpmSettings ddpm_settings(const Args& args) {
    DdpmSettings s;
    UNetConfig& u = s.info.unet;
    u.ch = args.integer("ch");
    s.auto_mults = args.str("mults") == "auto";  // chosen by resolve_data, once the input size is known
    s.auto_attn_res = args.str("attn-res") == "auto";
    if (!s.auto_mults) u.mults = parse_int_list("mults", args.str("mults"));
    u.num_res_blocks = args.integer("res-blocks");
    if (!s.auto_attn_res) u.attn_res = parse_int_list("attn-res", args.str("attn-res"));
    u.heads = args.integer("heads");
    u.dropout = (float)args.number("dropout");
    u.groups = args.integer("groups");
    u.seed = (uint64_t)args.integer("seed");
    s.info.schedule = args.str("schedule");
    s.info.T = args.integer("T");
    try {
        s.info.prediction = parse_prediction(args.str("prediction"));
        make_betas(s.info.schedule, s.info.T);
    } catch (const Error& e) {
        throw ArgError(e.what());
    }
    TrainOptions& to = s.train;
    to.batch_size = args.integer("batch");
    to.lr = (float)args.number("lr");
    to.lr_schedule = args.str("lr-schedule");
    to.warmup = args.integer("warmup");
    to.total_steps = args.integer("lr-total");
    to.weight_decay = (float)args.number("weight-decay");
    to.grad_clip = (float)args.number("clip");
    to.ema_decay = (float)args.number("ema");
    to.seed = u.seed;
    to.loss_weight = args.str("loss-weight");
    to.snr_gamma = args.number("snr-gamma");
    to.hflip = args.on("flip");
    s.data = args.str("data");
    s.data_options.image_size = args.integer("image-size");
    s.data_options.channels = args.integer("channels");
    s.steps = args.integer("steps");
    s.minutes = args.number("minutes");
    s.vae = args.str("vae");
    u.cond = args.str("cond");
    u.cond_mode = args.str("cond-mode");
    u.text_dim = args.integer("text-dim");
    u.text_layers = args.integer("text-layers");
    to.p_uncond = (float)args.number("p-uncond");
    to.skip_nonfinite = args.on("skip-nonfinite");
    s.guidance = (float)args.number("guidance");
    if (u.cond != "none" && u.cond != "class" && u.cond != "text")
        throw ArgError("--cond must be none, class or text, got '" + u.cond + "'");
    if (u.cond_mode != "add" && u.cond_mode != "concat" && u.cond_mode != "crossattn")
        throw ArgError("--cond-mode must be add, concat or crossattn, got '" + u.cond_mode + "'");
    if (!(to.p_uncond >= 0 && to.p_uncond <= 1)) throw ArgError("--p-uncond must be in [0, 1]");
    if (!(s.guidance >= 0)) throw ArgError("--guidance must be >= 0");
    if (s.steps < 0 || s.minutes < 0) throw ArgError("--steps and --minutes must be >= 0");
    if (to.batch_size < 1 || !(to.lr > 0) || to.warmup < 0 || to.total_steps < 0 || to.grad_clip < 0 ||
        !(to.ema_decay >= 0 && to.ema_decay < 1) || !(to.snr_gamma > 0))
        throw ArgError("bad value: need --batch >= 1, --lr > 0, --warmup >= 0, --lr-total >= 0, --clip >= 0, "
                       "0 <= --ema < 1, --snr-gamma > 0");
    if (to.lr_schedule != "constant" && to.lr_schedule != "warmup" && to.lr_schedule != "cosine")
        throw ArgError("--lr-schedule must be constant, warmup or cosine, got '" + to.lr_schedule + "'");
    if (to.loss_weight != "none" && to.loss_weight != "min-snr")
        throw ArgError("--loss-weight must be none or min-snr, got '" + to.loss_weight + "'");
    return s;
}

std::vector<int64_t> default_mults(int64_t size) {
    std::vector<int64_t> mults = {1};
    // A level halves the resolution: only an even size halves exactly, and below 4 x 4 a
    // 3 x 3 convolution sees mostly padding.
    for (int64_t res = size; mults.size() < 3 && res % 2 == 0 && res / 2 >= 4; res /= 2) mults.push_back(2);
    return mults;
}

namespace {

// Fills what --mults and --attn-res left to auto; says what it chose and why ("" if nothing).
std::string choose_unet_defaults(DdpmSettings& s) {
    UNetConfig& u = s.info.unet;
    if (!s.auto_mults && !s.auto_attn_res) return "";
    std::string what = std::to_string(u.in_channels) + " x " + std::to_string(u.image_size) + " x " +
                       std::to_string(u.image_size) + (s.vae.empty() ? " images" : " latents");
    std::string said;
    if (s.auto_mults) {
        u.mults = default_mults(u.image_size);
        std::string levels = std::to_string(u.image_size);
        for (size_t i = 1, r = u.image_size; i < u.mults.size(); ++i) levels += " -> " + std::to_string(r /= 2);
        std::string n = std::to_string(u.image_size);
        said += "--mults " + join_ints(u.mults) + " (" +
                (u.mults.size() > 1 ? "resolutions " + levels
                 : u.image_size % 2 ? "one level: " + n + " is odd, it cannot be halved"
                                    : "one level: " + n + " halved would be under 4") + ")";
    }
    if (s.auto_attn_res) {
        int64_t lowest = u.image_size >> (u.mults.empty() ? 0 : u.mults.size() - 1);
        u.attn_res = {lowest};
        said += std::string(said.empty() ? "" : ", ") + "--attn-res " + std::to_string(lowest) +
                " (the lowest resolution, where attention is cheapest)";
    }
    return "UNet for " + what + ": " + said + " (defaults; set either by a flag or in --config)";
}

}  // namespace

Dataset resolve_data(DdpmSettings& s, const Args& args) {
    Dataset train = load_dataset(s.data, "train", s.data_options);
    s.info.data = train.name;
    s.pixels = train;
    UNetConfig& u = s.info.unet;
    if (u.cond == "class") {
        if (train.num_classes < 2)
            throw ArgError("--cond class: " + train.name + " has no class labels to condition on (" +
                           std::to_string(train.num_classes) + " class)");
        u.num_classes = train.num_classes;
    }
    if (!s.vae.empty()) {
        // Latent diffusion: the frozen autoencoder's codes of the training set, computed
        // once (cached beside the autoencoder), scaled to unit variance.
        std::string vae_file = s.vae;
        if (std::filesystem::is_directory(vae_file)) vae_file += "/model.safetensors";
        LoadedVAE v = load_vae(vae_file);
        v.vae->to(s.train.device);  // it encodes the data set there once, and decodes the pictures
        s.first_stage = v.vae;
        s.info.vae = v.config;
        check(v.config.in_channels == train.images.size(1) && v.config.image_size == train.images.size(2), vae_file,
              ": this autoencoder was trained on ", v.config.in_channels, " x ", v.config.image_size, " x ",
              v.config.image_size, " images, the data are ", shape_str(Shape(train.images.shape().begin() + 1, train.images.shape().end())));
        std::string cache_dir = std::filesystem::path(vae_file).parent_path().string() + "/latents";
        LatentCache cache = cached_latents(*v.vae, vae_file, train, cache_dir);
        s.info.scale_factor = latent_scale_factor(cache.latents);
        std::printf("latents: scale factor 1/std = %.5f (Stable Diffusion's 0.18215 is the same measurement)\n",
                    s.info.scale_factor);
        train = latent_dataset(train, cache, s.info.scale_factor);
    }
    u.in_channels = train.images.size(1);
    u.image_size = train.images.size(2);
    s.train.hflip = args.on("flip") || (!args.given("flip") && u.in_channels == 3 && s.vae.empty());
    std::string chosen = choose_unet_defaults(s);  // what was left to auto, now that the size is known
    if (!chosen.empty()) std::printf("%s\n", chosen.c_str());
    try {
        u.validate();
    } catch (const Error& e) {
        throw ArgError(e.what());
    }
    if (s.train.batch_size > train.size())
        throw ArgError("--batch " + std::to_string(s.train.batch_size) + " is larger than the data set (" +
                       std::to_string(train.size()) + " images)");
    if (s.train.lr_schedule == "cosine" && s.train.total_steps == 0 && s.steps > 0) s.train.total_steps = s.steps;
    return train;
}

void declare_sampling_options(Args& a) {
    a.option("run", "", "the run folder of `diffuse train ddpm`");
    a.option("ckpt", "", "a weights file instead of the run's model.safetensors (a checkpoint works too)");
    a.flag("raw", "from a checkpoint, use the live weights instead of the EMA ones");
    a.option("sampler", "ddim", "ddpm or ddim");
    a.option("steps", "50", "sampling steps (model calls); ddpm with fewer than T respaces the process");
    a.option("spacing", "auto", "which of the T steps they visit: trailing (T-1 down by T/steps), linspace (both ends\n"
                                "kept, Improved DDPM) or leading (0 up by T/steps, the DDIM paper's); auto: trailing for\n"
                                "ddim, linspace for ddpm (which does not take leading)");
    a.option("eta", "0", "DDIM's eta: 0 deterministic, 1 ancestral (eq. 16)");
    a.option("variance", "beta_tilde", "ddpm: sigma_t^2 = beta (fixed large) or beta_tilde (fixed small)");
    a.flag("no-clip", "do not clip the predicted x_0 to [-1, 1] (ddpm: Algorithm 2 literally; ddim: eq. 12 literally;\n"
              "latent models are never clipped)");
    a.option("threads", "0", "OpenMP threads (0: all cores)");
}

std::string describe_steps(const SamplerOptions& o, int64_t T) {
    std::vector<int64_t> ts = sampling_timesteps(o, T);  // descending
    std::string list;
    for (size_t i = 0; i < ts.size(); ++i) {
        if (ts.size() > 4 && i == 2) {  // the first two and the last: the spacing shows
            list += ", ...";
            i = ts.size() - 1;
        }
        list += (i ? ", " : "") + std::to_string(ts[i]);
    }
    return std::to_string(o.steps) + (o.steps == 1 ? " step, " : " steps, ") + spacing_name(sampler_spacing(o)) +
           " spacing: t = " + list;
}

SamplingSetup setup_sampling(const Args& args) {
    std::string run = args.str("run"), ckpt = args.str("ckpt");
    if (run.empty() && ckpt.empty()) throw ArgError("--run (or --ckpt) is required");
    SamplerOptions o;
    o.sampler = args.str("sampler");
    o.spacing = args.str("spacing");
    o.steps = args.integer("steps");
    o.eta = args.number("eta");
    o.clip_x0 = !args.on("no-clip");
    int64_t threads = args.integer("threads");
    if (o.sampler != "ddpm" && o.sampler != "ddim") throw ArgError("--sampler must be ddpm or ddim, got '" + o.sampler + "'");
    if (o.spacing != "auto") {
        std::string list;
        for (const std::string& c : spacing_choices(o.sampler)) list += (list.empty() ? "" : ", ") + c;
        if (o.spacing != "leading" && o.spacing != "trailing" && o.spacing != "linspace")
            throw ArgError("--spacing must be leading, trailing, linspace or auto, got '" + o.spacing + "'");
        try {
            sampler_spacing(o);
        } catch (const Error&) {
            throw ArgError("--spacing " + o.spacing + " does not fit --sampler " + o.sampler + ": " + o.sampler +
                           " takes " + list + " (or auto: " + spacing_choices(o.sampler).front() + ")");
        }
    }
    if (o.steps < 1 || o.eta < 0 || threads < 0) throw ArgError("need --steps >= 1, --eta >= 0, --threads >= 0");
    try {
        o.variance = parse_variance(args.str("variance"));
    } catch (const Error& e) {
        throw ArgError(e.what());
    }
    if (threads > 0) omp_set_num_threads((int)threads);

    std::string path = ckpt;
    if (path.empty() && std::filesystem::exists(run + "/model.safetensors")) path = run + "/model.safetensors";
    if (path.empty()) {
        auto ckpts = list_checkpoints(run);
        check(!ckpts.empty(), run, ": no model.safetensors and no checkpoints/ (is this a run folder of `diffuse train ddpm`?)");
        path = ckpts.back().second;
    }
    LoadedModel m = load_model(path, !args.on("raw"));
    o.prediction = m.info.prediction;
    if (m.info.latent()) o.clip_x0 = false;  // latents are unbounded: never clipped (tools/ddpm_figures.cpp)
    if (o.steps > m.info.T)
        throw ArgError("--steps " + std::to_string(o.steps) + " is more than the model's T = " + std::to_string(m.info.T));
    return {path, std::move(m), o};
}

}  // namespace td::cli
