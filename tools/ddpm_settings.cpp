// tools/ddpm_settings.cpp: see ddpm_settings.h.
#include "tools/ddpm_settings.h"

#include <algorithm>
#include <cstdio>
#include <cmath>
#include <filesystem>

#include "diffusion/latent.h"
#include "diffusion/metadata.h"
#include "tensor/device.h"
#include "tensor/error.h"

namespace td::cli {

using namespace td::diffusion;

namespace {

using S = DdpmSettings;
using A = const Args&;
using N = const std::string&;

}  // namespace

// The order is config.txt's and --help's. The UNet's size may be left to auto: resolve_data
// chooses it once the size of what the UNet denoises is known.
const std::vector<Setting<DdpmSettings>> kDdpmSettings = joined(
    image_data_settings<DdpmSettings>(),
    {
        auto_field<S>(
            "ch", "UNet base channels (auto: 16 when the UNet has several levels, 32 with one; see below)", "unet.ch",
            [](auto& s) { return &s.info.unet.ch; }, [](auto& s) { return &s.auto_ch; }),
        auto_field<S>(
            "mults",
            "channel multiplier per resolution level (auto: 1,2,2 where the size allows, as for\n"
            "28x28 pixels; fewer levels for small inputs, 1 for 7x7 latents). The other UNet\n"
            "settings left to auto follow the levels: several (28x28 pixels) give --ch 16 and\n"
            "--res-blocks 1, one (7x7 latents) --ch 32 and --res-blocks 2; --groups is ch / 4",
            "unet.mults", [](auto& s) { return &s.info.unet.mults; }, [](auto& s) { return &s.auto_mults; }),
        auto_field<S>(
            "res-blocks", "ResBlocks per level (auto: 1 when the UNet has several levels, 2 with one)",
            "unet.num_res_blocks", [](auto& s) { return &s.info.unet.num_res_blocks; },
            [](auto& s) { return &s.auto_res_blocks; }),
        auto_field<S>(
            "attn-res",
            "resolutions with self-attention, comma separated (none: no attention; auto: the\n"
            "lowest resolution, 7 for 28x28 pixels and for 7x7 latents)",
            "unet.attn_res", [](auto& s) { return &s.info.unet.attn_res; }, [](auto& s) { return &s.auto_attn_res; }),
        field<S>("heads", "1", "attention heads", "unet.heads", [](auto& s) { return &s.info.unet.heads; }),
        field<S>("dropout", "0", "dropout in the ResBlocks", "unet.dropout",
                 [](auto& s) { return &s.info.unet.dropout; }),
        auto_field<S>(
            "groups", "GroupNorm groups (each must hold 2+ channels; 4+ is better; auto: ch / 4)", "unet.groups",
            [](auto& s) { return &s.info.unet.groups; }, [](auto& s) { return &s.auto_groups; }),
        enum_field<S>("schedule", "linear",
                      "noise schedule: linear (DDPM), cosine (Improved DDPM eq. 17), scaled_linear", "schedule",
                      parse_beta_schedule, beta_schedule_name, [](auto& s) { return &s.info.schedule; }),
        field<S>("T", "1000", "diffusion steps", "T", [](auto& s) { return &s.info.T; }),
        enum_field<S>("prediction", "v", "what the UNet predicts: eps, x0 or v", "prediction", parse_prediction,
                      prediction_name, [](auto& s) { return &s.info.prediction; }),
        enum_field<S>("loss-weight", "none",
                      "none (L_simple, DDPM eq. 14) or min-snr (Hang et al. 2023: min(SNR, gamma) weights)", "",
                      parse_loss_weight, loss_weight_name, [](auto& s) { return &s.train.loss_weight; }),
        field<S>("snr-gamma", "5", "min-snr's gamma", "", [](auto& s) { return &s.train.snr_gamma; }),
        enum_field<S>("t-sampling", "logit-normal",
                      "how a training step draws t: uniform (DDPM) or logit-normal (Esser et al. 2024:\n"
                      "t = T sigmoid(m + s n), more steps mid-way, where a sample commits to what it shows)",
                      "", parse_timestep_draw, timestep_draw_name, [](auto& s) { return &s.train.t_draw; }),
        field<S>("t-loc", "-0.5", "logit-normal's m: 0 centres the draws on t = T/2, below 0 on smaller t", "",
                 [](auto& s) { return &s.train.t_loc; }),
        field<S>("t-scale", "1", "logit-normal's s: the spread of the draws", "",
                 [](auto& s) { return &s.train.t_scale; }),
        field<S>("batch", "32", "minibatch size (with --distributed: per rank; the global batch is ranks x this)", "",
                 [](auto& s) { return &s.train.batch_size; }),
        field<S>("lr", "0.004", "peak learning rate (AdamW)", "", [](auto& s) { return &s.train.lr; }),
        enum_field<S>("lr-schedule", "cosine", "constant, warmup (linear warm-up then constant) or cosine", "",
                      nn::parse_lr_kind, nn::lr_kind_name, [](auto& s) { return &s.train.lr_schedule; }),
        field<S>("warmup", "100", "linear warm-up steps", "", [](auto& s) { return &s.train.warmup; }),
        // (config.txt: as resolved from the budget)
        field<S>("lr-total", "0", "the step where the cosine schedule ends (0: --steps, or planned from --minutes)", "",
                 [](auto& s) { return &s.train.total_steps; }),
        field<S>("weight-decay", "0", "AdamW decoupled weight decay", "",
                 [](auto& s) { return &s.train.weight_decay; }),
        field<S>("clip", "1", "gradient clipping: max global norm (0: off)", "",
                 [](auto& s) { return &s.train.grad_clip; }),
        field<S>("ema", "0.999", "EMA decay of the weights used for sampling (warmed up, see nn/ema.h)", "",
                 [](auto& s) { return &s.train.ema_decay; }),
        field<S>("flip", nullptr, "random horizontal flips (on for 3-channel data unless the config says false)", "",
                 [](auto& s) { return &s.train.hflip; }),
        {"seed", "0", "random seed (weights, data order, noise)", "",
         [](S& s, A a, N n) { s.info.unet.seed = s.train.seed = (uint64_t)a.integer(n); },
         [](const S& s) { return as_text(s.train.seed); }},
        field<S>("steps", "6200",
                 "stop after this many steps in all (0: no step limit; with --resume: the total; with\n"
                 "--minutes and no --steps: no step limit, the time decides)",
                 "", [](auto& s) { return &s.steps; }),
        minutes_setting<S>(),
        // ("": a pixel model)
        field<S>("vae", "",
                 "train ldm: the autoencoder, a run folder of `diffuse train vae` (or its model.safetensors)", "",
                 [](auto& s) { return &s.vae; }),
        enum_field<S>("cond", "none",
                      "conditioning: none, class (the data set's labels) or text (captions made from the labels)",
                      "unet.cond", parse_conditioning, conditioning_name, [](auto& s) { return &s.info.unet.cond; }),
        enum_field<S>("cond-mode", "crossattn",
                      "how the condition enters the UNet: add (to the time embedding), concat (as extra input\n"
                      "channels) or crossattn (cross-attention, LDM sec. 3.3)",
                      "unet.cond_mode", parse_cond_mode, cond_mode_name,
                      [](auto& s) { return &s.info.unet.cond_mode; }),
        field<S>("p-uncond", "0.1", "probability of dropping the condition in training (classifier-free guidance)", "",
                 [](auto& s) { return &s.train.p_uncond; }),
        field<S>("text-dim", "64", "text conditioning: the text encoder's width", "unet.text_dim",
                 [](auto& s) { return &s.info.unet.text_dim; }),
        field<S>("text-layers", "2", "text conditioning: the text encoder's transformer blocks", "unet.text_layers",
                 [](auto& s) { return &s.info.unet.text_layers; }),
        field<S>("text-heads", "4", "text conditioning: the text encoder's attention heads (divide --text-dim)",
                 "unet.text_heads", [](auto& s) { return &s.info.unet.text_heads; }),
        field<S>("max-tokens", "16", "text conditioning: tokens per prompt, <bos> and <eos> included",
                 "unet.max_tokens", [](auto& s) { return &s.info.unet.max_tokens; }),
        field<S>("concat-channels", "4", "--cond-mode concat: the input channels the condition adds",
                 "unet.concat_channels", [](auto& s) { return &s.info.unet.concat_channels; }),
        field<S>("context-dim", "0",
                 "--cond-mode crossattn: the width of the context tokens (0: derived, the text encoder's\n"
                 "width for text, the time embedding's for class)",
                 "unet.context_dim", [](auto& s) { return &s.info.unet.context_dim; }),
        field<S>("guidance", "3",
                 "the guidance scale w of the samples drawn after training: classifier-free for a\n"
                 "conditional model, autoguidance for an unconditional one with a guide (--guide-at)",
                 "", [](auto& s) { return &s.guidance; }),
        field<S>("guide-at", "0.25",
                 "unconditional pixel models: save the EMA weights this far through the cosine schedule (or\n"
                 "the --steps budget) as guide.safetensors, the weaker model autoguidance steers away from (0: none)",
                 "", [](auto& s) { return &s.guide_at; }),
        field<S>("skip-nonfinite", nullptr,
                 "drop a step whose loss or gradient is not finite (counted in metrics.csv) instead of stopping", "",
                 [](auto& s) { return &s.train.skip_nonfinite; }),
        device_setting<S>([](auto& s) { return &s.train.device; }),
    });

DdpmSettings ddpm_settings(const Args& args) {
    DdpmSettings s = read_settings(args, kDdpmSettings);
    as_usage_error([&] { make_betas(s.info.schedule, s.info.T); }, "--T: ");  // T out of range
    const TrainOptions& to = s.train;
    if (!(to.p_uncond >= 0 && to.p_uncond <= 1)) throw ArgError("--p-uncond must be in [0, 1]");
    if (!(s.guidance >= 0)) throw ArgError("--guidance must be >= 0");
    if (!(s.guide_at >= 0 && s.guide_at < 1)) throw ArgError("--guide-at must be in [0, 1)");
    if (s.steps < 0 || s.minutes < 0) throw ArgError("--steps and --minutes must be >= 0");
    if (s.minutes > 0 && !args.given("steps")) s.steps = 0;  // a time budget alone: the clock decides
    if (to.batch_size < 1 || !(to.lr > 0) || to.warmup < 0 || to.total_steps < 0 || to.grad_clip < 0 ||
        !(to.ema_decay >= 0 && to.ema_decay < 1) || !(to.snr_gamma > 0))
        throw ArgError(
            "bad value: need --batch >= 1, --lr > 0, --warmup >= 0, --lr-total >= 0, --clip >= 0, "
            "0 <= --ema < 1, --snr-gamma > 0");
    if (!(to.t_scale > 0) || !std::isfinite(to.t_loc))
        throw ArgError("bad value: need --t-scale > 0 and a finite --t-loc");
    return s;
}

namespace {

// The UNet's levels when --mults is auto: 1,2,2 (28: 28 -> 14 -> 7), fewer where the size
// cannot be halved evenly to 4 or more (14: 1,2; 7: 1).
std::vector<int64_t> default_mults(int64_t size) {
    std::vector<int64_t> mults = {1};
    // A level halves the resolution: only an even size halves exactly, and below 4 x 4 a
    // 3 x 3 convolution sees mostly padding.
    for (int64_t res = size; mults.size() < 3 && res % 2 == 0 && res / 2 >= 4; res /= 2) mults.push_back(2);
    return mults;
}

struct UNetSize {
    int64_t ch, res_blocks;
};

// --ch and --res-blocks when auto, for a UNet of `levels` resolution levels.
UNetSize default_unet_size(size_t levels) {
    // Several levels (28 x 28 pixels): depth comes from the levels, one narrow ResBlock each.
    // One level (7 x 7 latents): no levels to go down, so wider and two ResBlocks deep.
    return levels > 1 ? UNetSize{16, 1} : UNetSize{32, 2};
}

// --groups when auto.
int64_t default_groups(int64_t ch) {
    int64_t g = std::max<int64_t>(1, ch / 4);  // 4 channels a group,
    while (ch % g) --g;                        // or the nearest smaller count that divides ch
    return g;
}

// Fills what --mults, --attn-res, --ch, --res-blocks and --groups left to auto; says what
// it chose and why ("" if nothing).
std::string choose_unet_defaults(DdpmSettings& s) {
    UNetConfig& u = s.info.unet;
    if (!s.auto_mults && !s.auto_attn_res && !s.auto_ch && !s.auto_res_blocks && !s.auto_groups) return "";
    std::string what = std::to_string(u.in_channels) + " x " + std::to_string(u.image_size) + " x " +
                       std::to_string(u.image_size) + (s.vae.empty() ? " images" : " latents");
    std::string said;
    auto say = [&](const std::string& part) { said += (said.empty() ? "" : ", ") + part; };
    if (s.auto_mults) {
        u.mults = default_mults(u.image_size);
        std::string levels = std::to_string(u.image_size);
        for (size_t i = 1, r = u.image_size; i < u.mults.size(); ++i) levels += " -> " + std::to_string(r /= 2);
        std::string n = std::to_string(u.image_size);
        say("--mults " + join_ints(u.mults) + " (" +
            (u.mults.size() > 1 ? "resolutions " + levels
             : u.image_size % 2 ? "one level: " + n + " is odd, it cannot be halved"
                                : "one level: " + n + " halved would be under 4") +
            ")");
    }
    if (s.auto_attn_res) {
        int64_t lowest = u.image_size >> (u.mults.empty() ? 0 : u.mults.size() - 1);
        u.attn_res = {lowest};
        say("--attn-res " + std::to_string(lowest) + " (the lowest resolution, where attention is cheapest)");
    }
    UNetSize size = default_unet_size(u.mults.size());
    if (s.auto_ch) u.ch = size.ch;
    if (s.auto_res_blocks) u.num_res_blocks = size.res_blocks;
    if (s.auto_ch || s.auto_res_blocks)
        say((s.auto_ch ? "--ch " + std::to_string(u.ch) : "") + (s.auto_ch && s.auto_res_blocks ? " " : "") +
            (s.auto_res_blocks ? "--res-blocks " + std::to_string(u.num_res_blocks) : "") + " (" +
            (u.mults.size() > 1 ? "several levels" : "one level") + ")");
    if (s.auto_groups) {
        u.groups = default_groups(u.ch);
        say("--groups " + std::to_string(u.groups) + " (ch / 4)");
    }
    return "UNet for " + what + ": " + said + " (defaults; set any of them by a flag or in --config)";
}

}  // namespace

Dataset resolve_data(DdpmSettings& s, const Args& args) {
    Dataset train = load_dataset(s.data, "train", s.data_options);
    s.info.data = train.name;
    s.pixels = train;
    UNetConfig& u = s.info.unet;
    if (u.cond == Conditioning::Class) {
        if (train.num_classes < 2)
            throw ArgError("--cond class: " + train.name + " has no class labels to condition on (" +
                           std::to_string(train.num_classes) + " class)");
        u.num_classes = train.num_classes;
    }
    if (!s.vae.empty()) {
        // Latent diffusion: the frozen autoencoder's codes of the training set, computed
        // once (cached beside the autoencoder), scaled to unit variance.
        std::string vae_file = file_in_run(s.vae, "model.safetensors");
        LoadedVAE v = load_vae(vae_file);
        v.vae->to(s.train.device);  // it encodes the data set there once, and decodes the pictures
        s.first_stage = v.vae;
        s.info.vae = v.config;
        check(v.config.in_channels == train.images.size(1) && v.config.image_size == train.images.size(2), vae_file,
              ": this autoencoder was trained on ", v.config.in_channels, " x ", v.config.image_size, " x ",
              v.config.image_size, " images, the data are ", train.image_shape());
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
    as_usage_error([&] { u.validate(); });
    check_batch_fits(s.train.batch_size, train);
    if (s.train.lr_schedule == nn::LrKind::Cosine && s.train.total_steps == 0 && s.steps > 0)
        s.train.total_steps = s.steps;
    return train;
}

void declare_sampling_options(Args& a) {
    a.option("run", "", "the run folder of `diffuse train ddpm`");
    a.option("ckpt", "", "a weights file instead of the run's model.safetensors (a checkpoint works too)");
    a.flag("raw", "from a checkpoint, use the live weights instead of the EMA ones");
    a.option("sampler", "ddim", "ddpm or ddim");
    a.option("steps", "50", "sampling steps (model calls); ddpm with fewer than T respaces the process");
    a.option("spacing", "auto",
             "which of the T steps they visit: trailing (T-1 down by T/steps), linspace (both ends\n"
             "kept, Improved DDPM) or leading (0 up by T/steps, the DDIM paper's); auto: trailing for\n"
             "ddim, linspace for ddpm (which does not take leading)");
    a.option("eta", "0", "DDIM's eta: 0 deterministic, 1 ancestral (eq. 16)");
    a.option("variance", "beta_tilde", "ddpm: sigma_t^2 = beta (fixed large) or beta_tilde (fixed small)");
    a.flag("no-clip",
           "do not clip the predicted x_0 to [-1, 1] (ddpm: Algorithm 2 literally; ddim: eq. 12 literally;\n"
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
    o.sampler = args.choice("sampler", parse_sampler);
    if (args.str("spacing") != "auto") o.spacing = args.choice("spacing", parse_spacing);  // auto: the sampler's own
    o.steps = args.integer("steps");
    o.eta = args.number("eta");
    o.clip_x0 = !args.on("no-clip");
    o.variance = args.choice("variance", parse_variance);
    std::vector<Spacing> fits = spacing_choices(o.sampler);
    if (o.spacing && std::find(fits.begin(), fits.end(), *o.spacing) == fits.end()) {
        std::string list, name = sampler_name(o.sampler);
        for (Spacing f : fits) list += (list.empty() ? "" : ", ") + spacing_name(f);
        throw ArgError("--spacing " + spacing_name(*o.spacing) + " does not fit --sampler " + name + ": " + name +
                       " takes " + list + " (or auto: " + spacing_name(fits.front()) + ")");
    }
    if (o.steps < 1 || o.eta < 0) throw ArgError("need --steps >= 1, --eta >= 0");
    apply_threads(args);

    std::string path = ckpt;
    if (path.empty() && std::filesystem::exists(run + "/model.safetensors")) path = run + "/model.safetensors";
    if (path.empty()) {
        auto ckpts = list_checkpoints(run);
        check(!ckpts.empty(), run,
              ": no model.safetensors and no checkpoints/ (is this a run folder of `diffuse train ddpm`?)");
        path = ckpts.back().second;
    }
    LoadedModel m = load_model(path, !args.on("raw"));
    // an unconditional pixel run keeps its weaker, earlier self for autoguidance (train --guide-at)
    const std::string guide = run + "/guide.safetensors";
    if (!run.empty() && !m.info.latent() && m.info.unet.cond == Conditioning::None && std::filesystem::exists(guide))
        m.load_guide(guide);
    o.prediction = m.info.prediction;
    if (m.info.latent()) o.clip_x0 = false;  // latents are unbounded: never clipped (tools/ddpm_figures.cpp)
    if (o.steps > m.info.T)
        throw ArgError("--steps " + std::to_string(o.steps) +
                       " is more than the model's T = " + std::to_string(m.info.T));
    return {path, std::move(m), o};
}

}  // namespace td::cli
