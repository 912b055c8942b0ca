// tools/train_vae.cpp: `diffuse train vae`, the first stage of latent diffusion: train the
// KL autoencoder of diffusion/vae.h and leave a run folder people can look at and
// `diffuse train ldm --vae runs/NAME` can build on:
//
//   config.txt, metrics.csv           the settings (a valid --config file); step, loss, recon, kl, lr
//   model.safetensors                 the weights (CompVis' names); the VAEConfig, the data
//                                     set's name and the held-out PSNR in the metadata
//   reconstructions.png               held-out images (top rows) and their reconstructions
//   samples-from-prior.png            decode(z), z ~ N(0, I): what the prior alone gives
//   progress/step-*.png, loss.png, index.html
//
// The numerical work lives in the library (diffusion/vae.h, diffusion/vae_trainer.h);
// this file is the budget, the bookkeeping and the pictures.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <omp.h>
#include <sstream>

#include "autograd/node.h"
#include "diffusion/data/dataset.h"
#include "diffusion/data/image_io.h"
#include "diffusion/vae_trainer.h"
#include "tensor/device.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "tools/args.h"
#include "tools/ddpm_figures.h"
#include "tools/ddpm_settings.h"
#include "tools/html_page.h"
#include "tools/plot.h"
#include "tools/progress.h"
#include "tools/settings.h"
#include "tools/training_run.h"

namespace td::cli {

using namespace td::diffusion;

namespace {

struct VaeSettings {
    VAEConfig model;        // in_channels / image_size: from the data
    VaeTrainOptions train;  // total_steps: from the budget
    std::string data;       // --data: mnist, fashion, cifar10 or a folder
    DataOptions data_options;
    int64_t steps = 0;   // the step budget (0: none)
    double minutes = 0;  // the time budget (0: none)
};

using S = VaeSettings;

// The settings of `train vae` (tools/settings.h); the order is config.txt's and --help's.
const std::vector<Setting<VaeSettings>> kVaeSettings = joined(
    image_data_settings<VaeSettings>(),
    {
        field<S>("ch", "32", "base channels", "vae.ch", [](auto& s) { return &s.model.ch; }),
        field<S>("mults", "1,2,2", "channel multiplier per level; len - 1 stride-2 downsamples (1,2,2: f = 4)",
                 "vae.mults", [](auto& s) { return &s.model.mults; }),
        field<S>("res-blocks", "1", "ResBlocks per level in the encoder (the decoder has one more)",
                 "vae.num_res_blocks", [](auto& s) { return &s.model.num_res_blocks; }),
        field<S>("z-channels", "4", "latent channels", "vae.z_channels", [](auto& s) { return &s.model.z_channels; }),
        field<S>("groups", "8", "GroupNorm groups (must divide ch * every mult)", "vae.groups",
                 [](auto& s) { return &s.model.groups; }),
        {"mid-attn", "1", "1: self-attention between the mid ResBlocks; 0: none", "vae.mid_attn",
         [](S& s, const Args& a, const std::string& n) { s.model.mid_attn = zero_or_one(a, n); },
         [](const S& s) { return as_text((int64_t)s.model.mid_attn); }},
        field<S>("batch", "64", "minibatch size", "", [](auto& s) { return &s.train.batch_size; }),
        field<S>("lr", "0.001", "peak learning rate (Adam; linear warm-up, then cosine to 0 at the end of the budget)",
                 "", [](auto& s) { return &s.train.lr; }),
        field<S>("warmup", "100", "linear warm-up steps", "", [](auto& s) { return &s.train.warmup; }),
        field<S>("beta", "1e-6",
                 "KL weight (LDM's kl_weight: 1e-6; both terms are sums per image, means over the batch)", "beta",
                 [](auto& s) { return &s.train.beta; }),
        enum_field<S>("recon", "l1", "reconstruction loss: l1 (LDM's) or l2", "recon", parse_recon, recon_name,
                      [](auto& s) { return &s.train.recon; }),
        {"seed", "0", "random seed (weights, data order, noise)", "vae.seed",
         [](S& s, const Args& a, const std::string& n) { s.model.seed = s.train.seed = (uint64_t)a.integer(n); },
         [](const S& s) { return as_text(s.train.seed); }},
        field<S>("steps", "0", "stop after this many steps (0: no step limit)", "", [](auto& s) { return &s.steps; }),
        minutes_setting<S>(),
        device_setting<S>([](auto& s) { return &s.train.device; }),
    });

// Reads the settings; ArgError for a value out of range.
VaeSettings vae_settings(const Args& args) {
    VaeSettings s = read_settings(args, kVaeSettings);
    s.train.device = device_option(args);  // (td::Error for cuda without a GPU)
    const VaeTrainOptions& to = s.train;
    if (s.steps < 0 || s.minutes < 0) throw ArgError("--steps and --minutes must be >= 0");
    if (s.steps == 0 && s.minutes == 0) throw ArgError("give a budget: --steps N and/or --minutes M (not both 0)");
    if (to.batch_size < 1 || !(to.lr > 0) || to.warmup < 0 || !(to.beta >= 0))
        throw ArgError("bad value: need --batch >= 1, --lr > 0, --warmup >= 0, --beta >= 0");
    return s;
}

// The run folder: what --overwrite deletes (latents/: `train ldm`'s cache of this
// autoencoder's codes, stale once the weights change), and metrics.csv's columns.
const RunLayout kLayout = {"train vae",
                           {"config.txt", "metrics.csv", "model.safetensors", "reconstructions.png",
                            "samples-from-prior.png", "loss.png", "index.html", "progress", "latents"},
                           {"progress"},
                           {"step", "loss", "recon", "kl", "lr", "seconds"},
                           /*resumable=*/false};

const int64_t kShown = 16;  // held-out images in reconstructions.png: 2 rows of 8, their reconstructions below

// Originals in the top rows, reconstructions below, 8 per row: (2 n, C, H, W) -> PNG.
void write_reconstructions(const std::string& path, const Tensor& x, const Tensor& x_hat) {
    Tensor grid = cat({x, clamp(x_hat, -1.0f, 1.0f)}, 0);
    write_png_grid(path, grid, 8, display_scale(x.size(2)));
}

struct LatentStats {
    double mu_std = 0;      // std of every element of mu over the held-out images
    double mean_sigma = 0;  // mean of sigma = exp(logvar / 2)
};

LatentStats latent_stats(VAE& vae, const Tensor& images) {
    NoGradGuard no_grad;
    vae.eval();
    std::vector<Tensor> mus, sigmas;
    for (int64_t i = 0; i < images.size(0); i += 250) {
        VAE::Posterior q = vae.encode(images.slice(0, i, std::min(i + 250, images.size(0))).to(vae.device()));
        mus.push_back(q.mu.reshape({-1}));
        sigmas.push_back(exp(q.logvar * 0.5f).reshape({-1}));
    }
    vae.train();
    Tensor mu = cat(mus, 0), sigma = cat(sigmas, 0);
    return {std::sqrt((double)var(mu).item()), (double)mean(sigma).item()};
}

}  // namespace

int train_vae(int argc, char** argv, int first) {
    Args args("diffuse train vae --data mnist|fashion|cifar10|DIR --out runs/NAME [--steps N | --minutes M] [options]",
              "Trains the KL autoencoder of latent diffusion (Rombach et al. 2022): an encoder to\n"
              "q(z | x) = N(mu, sigma^2) on a latent f = 2^(len(mults) - 1) times smaller per side,\n"
              "z = mu + sigma * eps, a decoder back to the image; loss = reconstruction (l1 or l2,\n"
              "summed over pixels, mean over the batch) + beta * KL(q(z | x) || N(0, I)).\n"
              "Writes model.safetensors, metrics.csv, reconstructions of held-out images, decoded\n"
              "prior samples, a loss curve and index.html, and reports the held-out PSNR.\n"
              "Settings come from the defaults, then --config FILE (key = value lines), then flags.");
    declare_run_options(args);  // --out, --config, --resume, --overwrite, --threads (tools/training_run.h)
    declare_settings(args, kVaeSettings);
    // (not settings of the model or its training: config.txt leaves them out)
    args.option("sample-every", "0", "draw the reconstruction grid every this many steps (0: about 6 in a run)");
    args.option("eval-images", "1000", "held-out images the PSNR is computed on");
    if (!args.parse_or_help(argc, argv, first)) return 0;

    TrainingRun run(args, kLayout);  // the folder claimed and locked, --config applied
    const std::string& out = run.out();

    // ---- settings
    VaeSettings set = vae_settings(args);
    VAEConfig& vc = set.model;
    VaeTrainOptions& to = set.train;
    const int64_t steps = set.steps;
    int64_t sample_every = args.integer("sample-every"), eval_n = args.integer("eval-images");
    if (sample_every < 0 || eval_n < 1) throw ArgError("bad value: need --sample-every >= 0, --eval-images >= 1");
    std::printf("device: %s\n", device_description(to.device).c_str());

    // ---- data, model, folder
    Dataset train = load_dataset(set.data, "train", set.data_options);
    vc.in_channels = train.images.size(1);
    vc.image_size = train.images.size(2);
    as_usage_error([&] { vc.validate(); });
    check_batch_fits(to.batch_size, train);
    bool held_out = true;  // the images the PSNR is computed on: the first of the test split, if any
    Dataset held_set = held_out_split(set.data, set.data_options, held_out);
    std::string held_note = held_out ? "held-out test images" : "training images (the data set has no test split)";
    Tensor held = held_set.images.slice(0, 0, std::min(eval_n, held_set.size()));
    Tensor shown = held.slice(0, 0, std::min<int64_t>(kShown, held.size(0)));

    run.begin();  // the settings and the data are good: now an earlier run may be deleted (--overwrite)
    if (steps > 0) to.total_steps = steps;
    VaeTrainer trainer(vc, to, train);
    run.write_config(settings_text("train vae", set, kVaeSettings));

    std::printf("data: %s, %lld training images %s; PSNR on %lld %s\n", train.name.c_str(), (long long)train.size(),
                train.image_shape().c_str(), (long long)held.size(0), held_note.c_str());
    std::printf("model: VAE, %s: %lld parameters\n", vc.describe().c_str(),
                (long long)trainer.model().num_parameters());
    std::printf(
        "training: batch %lld, Adam lr %g (warm-up %lld, cosine), %s recon + beta %g KL, %d threads; "
        "budget %s\n",
        (long long)to.batch_size, to.lr, (long long)to.warmup, recon_name(to.recon).c_str(), to.beta,
        omp_get_max_threads(), describe_budget(steps, set.minutes).c_str());

    // ---- the loop
    run.open_metrics();
    StepLoop loop(steps, set.minutes, 0, sample_every, 30.0);
    double smoothed = 0;
    while (loop.more()) {
        VaeStepStats s = trainer.step();
        run.metrics.row({std::to_string(s.step), cell(s.loss), cell(s.recon), cell(s.kl), cell(s.lr),
                         run.metrics.seconds(loop.elapsed())});
        smoothed = s.step == 1 ? s.loss : 0.98 * smoothed + 0.02 * s.loss;
        std::string fields =
            fmt("loss %.2f (avg %.2f)  recon %.2f  kl %.1f  lr %.2g", s.loss, smoothed, s.recon, s.kl, s.lr);
        if (int64_t est = loop.step_done(s.step, fields)) {  // a time budget alone: the cosine's end
            trainer.set_lr_total(est);
            std::printf("budget %.1f min: about %lld steps at this speed; the cosine schedule ends there\n",
                        set.minutes, (long long)est);
        }
        if (loop.grid_due())
            write_reconstructions(run.progress_grid(s.step), shown, reconstruct(trainer.model(), shown));
    }
    loop.end();
    run.metrics.close();
    int64_t step = loop.step();
    Metadata meta = {{"data", train.name},
                     {"steps", std::to_string(step)},
                     {"recon", recon_name(to.recon)},
                     {"beta", fmt("%g", to.beta)}};
    if (loop.stopped_by_ctrl_c()) {
        trainer.save_model(out + "/model.safetensors", meta);
        std::printf("interrupted at step %lld: the weights are in %s/model.safetensors\n", (long long)step,
                    out.c_str());
        return 130;
    }
    if (loop.stopped_by_time()) std::printf("time budget reached at step %lld\n", (long long)step);

    // ---- judging it, pictures and the report
    VAE& vae = trainer.model();
    Tensor held_hat = reconstruct(vae, held);
    double psnr = mean_psnr(held, held_hat);
    LatentStats ls = latent_stats(vae, held);
    meta["held_out_psnr"] = fmt("%.3f", psnr);
    trainer.save_model(out + "/model.safetensors", meta);

    write_reconstructions(out + "/reconstructions.png", shown, held_hat.slice(0, 0, shown.size(0)));
    Generator g(0);
    int64_t s = vc.latent_size();
    Tensor prior;
    {
        NoGradGuard no_grad;
        vae.eval();
        Tensor z = randn({32, vc.z_channels, s, s}, g, 0.0f, 1.0f, to.device);  // z ~ N(0, I)
        prior = clamp(vae.decode(z), -1.0f, 1.0f);
    }
    write_png_grid(out + "/samples-from-prior.png", prior, 8, display_scale(vc.image_size));
    plot_loss(out + "/loss.png", read_metrics(out + "/metrics.csv"), "loss");

    std::ostringstream about, latents;
    about << vc.describe() << ": " << vae.num_parameters() << " parameters. " << step << " steps at batch "
          << to.batch_size << " (epoch " << trainer.epoch() + 1 << "), Adam peak lr " << to.lr
          << ", loss = " << recon_name(to.recon) << " (sum over pixels) + " << to.beta << " KL, in "
          << fmt_seconds(loop.elapsed()) << ".";
    latents << "Latents (" << vc.z_channels << " x " << s << " x " << s << " per image): mu has std "
            << fmt("%.3f", ls.mu_std) << " over the held-out images (latent diffusion divides by it, as Stable "
            << "Diffusion's 0.18215 does), the encoder's sigma averages " << fmt("%.3g", ls.mean_sigma) << ".";
    HtmlPage("KL autoencoder (VAE) on " + train.name)
        .p(about.str())
        .html("<p><b>PSNR " + fmt("%.2f", psnr) + " dB</b> on " + std::to_string(held.size(0)) + " " +
              escape_html(held_note) +
              ": PSNR = 10 log10(1 / MSE) per image with pixels in [0, 1] (reconstruction clamped to the pixel "
              "range), averaged over the images; reconstructions decode z = mu.</p>\n")
        .p(latents.str())
        .h2("Reconstructions")
        .image("reconstructions.png", "reconstructions",
               "Top rows: held-out images; below them, their reconstructions in the same order.")
        .h2("Samples from the prior")
        .image("samples-from-prior.png", "samples from the prior",
               "decode(z) for z ~ N(0, I). With a small beta the codes of real images are not spread like N(0, I), "
               "so these are mostly not images: that is why latent diffusion learns the distribution of the latents "
               "instead of trusting the prior.")
        .h2("Loss")
        .image("loss.png", "loss", "recon + beta KL per step (grey) and smoothed (blue), log scale.")
        .h2("While training")
        .p("The same held-out images and their reconstructions at these steps:")
        .progress_grids(out)
        .html(
            "<p>Files: <a href=config.txt>config.txt</a>, <a href=metrics.csv>metrics.csv</a>, model.safetensors "
            "(weights, config in the metadata; <code>diffuse train ldm --vae " +
            escape_html(out) + "</code> builds on it).</p>\n")
        .write(out + "/index.html");
    std::printf("held-out PSNR %.2f dB on %lld %s (latent mu std %.3f, mean sigma %.3g)\n", psnr,
                (long long)held.size(0), held_note.c_str(), ls.mu_std, ls.mean_sigma);
    std::printf(
        "done: %lld steps in %s; wrote %s/{model.safetensors,reconstructions.png,samples-from-prior.png,"
        "loss.png,index.html}\n",
        (long long)step, fmt_seconds(loop.elapsed()).c_str(), out.c_str());
    return 0;
}

}  // namespace td::cli
