// tools/train_vae.cpp: `diffuse train vae`, the first stage of latent diffusion: train the
// KL autoencoder of diffusion/vae.h and leave a run folder people can look at and
// `diffuse train ldm --vae runs/NAME` can build on:
//
//   runs/NAME/config.txt              every setting of the run (a valid --config file)
//   runs/NAME/metrics.csv             step, loss, recon, kl, lr, seconds, wall_clock
//   runs/NAME/model.safetensors       the weights (CompVis' names), the VAEConfig, the data
//                                     set's name and the held-out PSNR in the metadata
//   runs/NAME/reconstructions.png     held-out images (top rows) and their reconstructions
//   runs/NAME/samples-from-prior.png  decode(z), z ~ N(0, I): what the prior alone gives
//   runs/NAME/progress/step-*.png     the same reconstructions while training
//   runs/NAME/loss.png, index.html
//
// The numerical work lives in the library (diffusion/vae.h, diffusion/vae_trainer.h);
// this file is the budget, the bookkeeping and the pictures.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
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
#include "tools/training_run.h"

namespace td::cli {

namespace fs = std::filesystem;
using namespace td::diffusion;

namespace {

// The keys config.txt holds, in the order it writes them.
const std::vector<std::string> kVaeConfigKeys = {"data",  "image-size", "channels", "ch",     "mults", "res-blocks",
                                                 "z-channels", "groups", "mid-attn", "batch", "lr",    "warmup",
                                                 "beta",  "recon",      "seed",     "steps",  "minutes", "device"};

// The run folder: what --overwrite deletes (latents/: `train ldm`'s cache of this
// autoencoder's codes, stale once the weights change), and metrics.csv's columns.
const RunLayout kLayout = {"train vae",
                           {"config.txt", "metrics.csv", "model.safetensors", "reconstructions.png",
                            "samples-from-prior.png", "loss.png", "index.html", "progress", "latents"},
                           {"progress"},
                           {"step", "loss", "recon", "kl", "lr", "seconds"},
                           /*resumable=*/false};

const int64_t kShown = 16;  // held-out images in reconstructions.png: 2 rows of 8, their reconstructions below

// The held-out images the PSNR is computed on: the first `n` of the test split, or of the
// training set when the data has no test split (said so in `note`).
Tensor held_out_images(const std::string& data, const DataOptions& dopt, const Dataset& train, int64_t n,
                       std::string& note) {
    Dataset test;
    try {
        test = load_dataset(data, "test", dopt);
    } catch (const Error&) {
        note = "training images (the data set has no test split)";
        return train.images.slice(0, 0, std::min(n, train.size()));
    }
    note = "held-out test images";
    return test.images.slice(0, 0, std::min(n, test.size()));
}

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

std::string fmt(const char* format, double v) {
    char buf[64];
    std::snprintf(buf, sizeof buf, format, v);
    return buf;
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
    declare_common_settings(args, "stop after this many steps (0: no step limit)");  // and --minutes, --seed, --device
    args.option("data", "mnist", "data set: mnist, fashion, cifar10, or a folder of IDX files / CIFAR batches / images");
    args.option("image-size", "32", "folders of images only: resize + center crop to this size");
    args.option("channels", "3", "folders of images only: 1 (grey) or 3 (RGB)");
    args.option("batch", "64", "minibatch size");
    args.option("lr", "0.001", "peak learning rate (Adam; linear warm-up, then cosine to 0 at the end of the budget)");
    args.option("warmup", "100", "linear warm-up steps");
    args.option("beta", "1e-6", "KL weight (LDM's kl_weight: 1e-6; both terms are sums per image, means over the batch)");
    args.option("recon", "l1", "reconstruction loss: l1 (LDM's) or l2");
    args.option("ch", "32", "base channels");
    args.option("mults", "1,2,2", "channel multiplier per level; len - 1 stride-2 downsamples (1,2,2: f = 4)");
    args.option("res-blocks", "1", "ResBlocks per level in the encoder (the decoder has one more)");
    args.option("z-channels", "4", "latent channels");
    args.option("groups", "8", "GroupNorm groups (must divide ch * every mult)");
    args.option("mid-attn", "1", "1: self-attention between the mid ResBlocks; 0: none");
    args.option("sample-every", "0", "draw the reconstruction grid every this many steps (0: about 6 in a run)");
    args.option("eval-images", "1000", "held-out images the PSNR is computed on");
    if (!args.parse(argc, argv, first)) { std::printf("%s", args.help().c_str()); return 0; }

    TrainingRun run(args, kLayout);  // the folder claimed and locked, --config applied
    const std::string& out = run.out();

    // ---- settings
    VAEConfig vc;
    vc.ch = args.integer("ch");
    vc.mults = parse_int_list("mults", args.str("mults"));
    vc.num_res_blocks = args.integer("res-blocks");
    vc.z_channels = args.integer("z-channels");
    vc.groups = args.integer("groups");
    int64_t mid_attn = args.integer("mid-attn");
    vc.mid_attn = mid_attn == 1;
    vc.seed = (uint64_t)args.integer("seed");
    VaeTrainOptions to;
    to.batch_size = args.integer("batch");
    to.lr = (float)args.number("lr");
    to.warmup = args.integer("warmup");
    to.beta = (float)args.number("beta");
    to.recon = args.choice("recon", parse_recon);
    to.seed = vc.seed;
    int64_t steps = args.integer("steps");
    int64_t sample_every = args.integer("sample-every"), eval_n = args.integer("eval-images");
    double minutes = args.number("minutes");
    if (mid_attn != 0 && mid_attn != 1) throw ArgError("--mid-attn must be 0 or 1");
    if (steps < 0 || minutes < 0) throw ArgError("--steps and --minutes must be >= 0");
    if (steps == 0 && minutes == 0) throw ArgError("give a budget: --steps N and/or --minutes M (not both 0)");
    if (to.batch_size < 1 || !(to.lr > 0) || to.warmup < 0 || !(to.beta >= 0) || sample_every < 0 || eval_n < 1)
        throw ArgError("bad value: need --batch >= 1, --lr > 0, --warmup >= 0, --beta >= 0, --sample-every >= 0, "
                       "--eval-images >= 1");
    to.device = device_option(args);
    std::printf("device: %s\n", device_description(to.device).c_str());

    // ---- data, model, folder
    std::string data = args.str("data");
    DataOptions dopt;
    dopt.image_size = args.integer("image-size");
    dopt.channels = args.integer("channels");
    Dataset train = load_dataset(data, "train", dopt);
    vc.in_channels = train.images.size(1);
    vc.image_size = train.images.size(2);
    try {
        vc.validate();
    } catch (const Error& e) {
        throw ArgError(e.what());
    }
    if (to.batch_size > train.size())
        throw ArgError("--batch " + std::to_string(to.batch_size) + " is larger than the data set (" +
                       std::to_string(train.size()) + " images)");
    std::string held_note;
    Tensor held = held_out_images(data, dopt, train, eval_n, held_note);
    Tensor shown = held.slice(0, 0, std::min<int64_t>(kShown, held.size(0)));

    run.begin();  // the settings and the data are good: now an earlier run may be deleted (--overwrite)
    if (steps > 0) to.total_steps = steps;
    VaeTrainer trainer(vc, to, train);
    auto write_config = [&] {
        std::string text = "# diffuse train vae: the settings of this run (a valid --config file)\n";
        for (const std::string& key : kVaeConfigKeys)  // the device as resolved from auto
            text += key == "device" ? "device = " + std::string(device_name(to.device)) + "\n" : args.to_config({key});
        run.write_config(text);
    };
    write_config();

    std::printf("data: %s, %lld training images %s; PSNR on %lld %s\n", train.name.c_str(), (long long)train.size(),
                shape_str(Shape(train.images.shape().begin() + 1, train.images.shape().end())).c_str(),
                (long long)held.size(0), held_note.c_str());
    std::printf("model: VAE, %s: %lld parameters\n", vc.describe().c_str(),
                (long long)trainer.model().num_parameters());
    std::printf("training: batch %lld, Adam lr %g (warm-up %lld, cosine), %s recon + beta %g KL, %d threads; "
                "budget %s%s%s\n",
                (long long)to.batch_size, to.lr, (long long)to.warmup, recon_name(to.recon).c_str(), to.beta,
                omp_get_max_threads(), steps ? (std::to_string(steps) + " steps").c_str() : "",
                steps && minutes ? " or " : "", minutes ? (fmt("%g", minutes) + " min").c_str() : "");

    // ---- the loop
    run.metrics.start(out + "/metrics.csv");
    Progress progress(steps > 0 ? steps : 1000000, minutes * 60.0);
    if (steps == 0) progress.set_total(0);  // unknown until the speed is measured
    double last_sample_s = 0, smoothed = 0;
    auto progress_grid = [&](int64_t step) {
        char name[64];
        std::snprintf(name, sizeof name, "/progress/step-%08lld.png", (long long)step);
        write_reconstructions(out + name, shown, reconstruct(trainer.model(), shown));
        last_sample_s = progress.elapsed();
    };
    catch_sigint();
    int64_t step = 0;
    bool stopped_by_time = false;
    while (!interrupted() && (steps == 0 || step < steps)) {
        VaeStepStats s = trainer.step();
        step = s.step;
        double el = progress.elapsed();
        run.metrics.row({std::to_string(step), cell(s.loss), cell(s.recon), cell(s.kl), cell(s.lr), run.metrics.seconds(el)});
        smoothed = step == 1 ? s.loss : 0.98 * smoothed + 0.02 * s.loss;
        // With only a time budget the cosine schedule needs an end: estimate it once
        // from the speed of the first 20 steps, and record it.
        if (steps == 0 && step == 20) {
            int64_t est = (int64_t)(20 * minutes * 60.0 / std::max(el, 1e-6));
            progress.set_total(est);
            trainer.set_lr_total(est);
            std::printf("budget %.1f min: about %lld steps at this speed; the cosine schedule ends there\n", minutes,
                        (long long)est);
        }
        char fields[128];
        std::snprintf(fields, sizeof fields, "loss %.2f (avg %.2f)  recon %.2f  kl %.1f  lr %.2g", s.loss, smoothed,
                      s.recon, s.kl, s.lr);
        progress.report(step, fields, 25);
        bool want_sample = sample_every > 0 ? step % sample_every == 0
                           : steps > 0      ? step % std::max<int64_t>(1, steps / 6) == 0
                                            : el - last_sample_s >= std::max(30.0, minutes * 60.0 / 6);
        if (want_sample) progress_grid(step);
        if (progress.out_of_time()) { stopped_by_time = true; break; }
    }
    progress.done();
    run.metrics.close();
    release_sigint();
    Metadata meta = {{"data", train.name}, {"steps", std::to_string(step)}, {"recon", recon_name(to.recon)},
                     {"beta", fmt("%g", to.beta)}};
    if (interrupted()) {
        trainer.save_model(out + "/model.safetensors", meta);
        std::printf("interrupted at step %lld: the weights are in %s/model.safetensors\n", (long long)step, out.c_str());
        return 130;
    }
    if (stopped_by_time) std::printf("time budget reached at step %lld\n", (long long)step);

    // ---- judging it, pictures and the report
    VAE& vae = trainer.model();
    Tensor held_hat = reconstruct(vae, held);
    double psnr = mean_psnr(held, held_hat);
    LatentStats ls = latent_stats(vae, held);
    meta["held_out_psnr"] = fmt("%.3f", psnr);
    trainer.save_model(out + "/model.safetensors", meta);

    int64_t n_shown = shown.size(0);
    write_reconstructions(out + "/reconstructions.png", shown, held_hat.slice(0, 0, n_shown));
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
          << to.batch_size << " (epoch " << trainer.epoch() + 1 << "), Adam peak lr " << to.lr << ", loss = " << recon_name(to.recon)
          << " (sum over pixels) + " << to.beta << " KL, in " << fmt_seconds(progress.elapsed()) << ".";
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
        .html("<p>Files: <a href=config.txt>config.txt</a>, <a href=metrics.csv>metrics.csv</a>, model.safetensors "
              "(weights, config in the metadata; <code>diffuse train ldm --vae " + escape_html(out) +
              "</code> builds on it).</p>\n")
        .write(out + "/index.html");
    std::printf("held-out PSNR %.2f dB on %lld %s (latent mu std %.3f, mean sigma %.3g)\n", psnr,
                (long long)held.size(0), held_note.c_str(), ls.mu_std, ls.mean_sigma);
    std::printf("done: %lld steps in %s; wrote %s/{model.safetensors,reconstructions.png,samples-from-prior.png,"
                "loss.png,index.html}\n",
                (long long)step, fmt_seconds(progress.elapsed()).c_str(), out.c_str());
    return 0;
}

}  // namespace td::cli
