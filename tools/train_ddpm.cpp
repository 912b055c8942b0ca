// tools/train_ddpm.cpp: `diffuse train ddpm`, the main job: train a DDPM (a UNet
// predicting eps, Algorithm 1 of Ho et al. 2020) and leave a run folder people can look at;
// and `diffuse train ldm`, the same on the latents of a trained autoencoder (Rombach et
// al. 2022; --vae, diffusion/latent.h). Either may be conditional (--cond class|text):
//
//   config.txt, metrics.csv         the settings (a valid --config file); a row per step
//   checkpoints/step-*.safetensors  the last --keep trainer checkpoints (--resume)
//   model.safetensors               the EMA weights (what `diffuse sample` uses)
//   guide.safetensors               unconditional pixel models: the EMA weights at --guide-at,
//                                   autoguidance's weaker model (diffusion/guidance.h)
//   progress/step-*.png             sample grids drawn while training
//   samples.png, denoise.png, forward.png, loss.png, memory.png, loss_per_t.png/.csv,
//   guidance.png (conditional models), index.html
//
// The numerical work lives in the library (diffusion/trainer.h, diffusion/sampler.h). With
// --distributed every rank trains and rank 0 alone writes and decides (docs/distributed.md).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <omp.h>
#include <sstream>

#include "diffusion/data/dataset.h"
#include "diffusion/data/image_io.h"
#include "diffusion/metadata.h"
#include "diffusion/trainer.h"
#include "distributed/communicator.h"
#include "tensor/device.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "tools/args.h"
#include "tools/ddpm_settings.h"
#include "tools/ddpm_figures.h"
#include "tools/html_page.h"
#include "tools/plot.h"
#include "tools/progress.h"
#include "tools/training_run.h"

namespace td::cli {

using namespace td::diffusion;

namespace {

// How long the other ranks wait for rank 0 drawing a sample grid, writing a checkpoint or
// making the final pictures (a run's TD_DIST_TIMEOUT, if longer, wins): generous, since
// only a rank 0 that hangs without failing would make them wait that long (a rank 0 that
// fails ends the job at once).
constexpr double kRank0AloneSeconds = 4 * 3600.0;

// Rank 0's values, on every rank (one small broadcast; nothing to do on one rank). The
// decisions that depend on rank 0's clock (a sample grid now? a checkpoint? out of time?)
// go through it each step, so every rank takes the same number of steps.
std::vector<int64_t> from_rank0(dist::Communicator& comm, const std::vector<int64_t>& values) {
    if (comm.size() == 1) return values;
    std::vector<Tensor> t = {Tensor::from_vector_i64(values, {(int64_t)values.size()})};
    comm.broadcast(t);
    return t[0].to_vector_i64();
}

// The other ranks wait here until rank 0 has done its work alone.
void wait_for_rank0(dist::Communicator& comm) {
    if (comm.size() == 1) return;
    double usual = comm.timeout();
    comm.set_timeout(std::max(usual, kRank0AloneSeconds));
    comm.barrier();
    comm.set_timeout(usual);
}

int run_training(Args& args, dist::Communicator& comm, bool latent);

int train_diffusion(int argc, char** argv, int first, bool latent) {
    Args args(
        latent
            ? "diffuse train ldm --vae runs/VAE --data mnist|fashion|cifar10|DIR --out runs/NAME [--minutes M | "
              "--steps S] [options]"
            : "diffuse train ddpm --data mnist|fashion|cifar10|DIR --out runs/NAME [--minutes M | --steps S] [options]",
        latent ? "Trains a latent diffusion model (Rombach et al. 2022): the DDPM of `train ddpm`, on the\n"
                 "codes z = E(x) of a trained, frozen autoencoder (`diffuse train vae`). The training set is\n"
                 "encoded once (cached in runs/VAE/latents/) and scaled by 1/std of its latents; samples are\n"
                 "drawn in the latent space and decoded. --cond class|text adds a condition (cross-attention\n"
                 "by default) and trains it for classifier-free guidance (--p-uncond). Writes the same run\n"
                 "folder as `train ddpm`. Settings: defaults, then --config FILE, then flags.\n"
               : "Trains a DDPM (Ho et al. 2020): a UNet learns to predict the noise eps in\n"
                 "x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (L_simple, Algorithm 1).\n"
                 "Writes checkpoints, metrics.csv, sample grids, denoising and forward-process strips,\n"
                 "a loss curve and index.html into the run folder. --resume continues a stopped run\n"
                 "(Ctrl-C saves a checkpoint first) with the settings saved in its config.txt.\n"
                 "--cond class|text makes it conditional (see `diffuse train ldm --help`).\n"
                 "Settings come from the defaults, then --config FILE (key = value lines), then flags.");
    declare_run_options(args);              // --out, --config, --resume, --overwrite, --threads (tools/training_run.h)
    declare_settings(args, kDdpmSettings);  // the model, the process, training, the budget (tools/ddpm_settings.h)
    args.option("sample-every", "0", "draw a 16-sample grid every this many steps (0: about 6 in a run)");
    args.option("ckpt-every", "0", "write a checkpoint every this many steps (0: every 2 minutes)");
    args.option("keep", "3", "checkpoints to keep");
    args.option("final-samples", "64", "samples in samples.png at the end");
    args.option("final-steps", "50", "DDIM steps for the final samples");
    args.flag("distributed",
              "data-parallel training over the ranks of `mpirun -np P` (docs/distributed.md): --batch\n"
              "is per rank (global batch P x batch); rank 0 writes the run folder");
    if (!args.parse_or_help(argc, argv, first)) return 0;
    if (!args.on("distributed")) return run_training(args, *dist::local_communicator(), latent);

    // Join the job first, before anything touches a GPU (init_distributed gives each rank
    // on a machine its own). A build without MPI throws here, saying how to get it.
    std::unique_ptr<dist::Communicator> comm = dist::init_distributed();
    if (!comm->is_root())
        check(std::freopen("/dev/null", "w", stdout) != nullptr, "cannot silence rank ", comm->rank());
    int code = 0;
    try {
        code = run_training(args, *comm, latent);
    } catch (const ArgError& e) {  // every rank, or rank 0 alone (the run folder): end them all
        comm->abort(std::string("diffuse: ") + e.what(), 2);
    } catch (const std::exception& e) {  // a td::Error on this rank: the others must not hang
        comm->abort(std::string("diffuse: error: ") + e.what(), 1);
    }
    // the others wait here while rank 0 draws the final pictures
    comm->set_timeout(std::max(comm->timeout(), kRank0AloneSeconds));
    comm->finalize();
    return code;
}

// The job itself; on one process comm is the one-rank communicator.
int run_training(Args& args, dist::Communicator& comm, bool latent) {
    const bool root = comm.is_root();
    const int P = comm.size();
    // the folder claimed and locked; with --resume, the run's config.txt under the flags
    TrainingRun run(args,
                    {latent ? "train ldm" : "train ddpm",
                     {"checkpoints", "progress", "metrics.csv", "config.txt", "model.safetensors", "guide.safetensors"},
                     {"checkpoints", "progress"},
                     {"step", "epoch", "loss", "grad_norm", "lr", "seconds", "skipped", "rss_mb"},
                     /*resumable=*/true},
                    root);
    const std::string& out = run.out();

    // ---- settings and data
    DdpmSettings set = ddpm_settings(args);
    if (latent && set.vae.empty()) throw ArgError("train ldm needs --vae runs/VAE (a run of `diffuse train vae`)");
    if (!latent && !set.vae.empty())
        throw ArgError("--vae is for `diffuse train ldm` (latent diffusion), not train ddpm");
    int64_t steps = set.steps, keep = args.integer("keep");
    double minutes = set.minutes;
    int64_t sample_every = args.integer("sample-every"), ckpt_every = args.integer("ckpt-every");
    int64_t final_n = args.integer("final-samples"), final_steps = args.integer("final-steps");
    if (steps == 0 && minutes == 0) throw ArgError("give a budget: --steps S and/or --minutes M (not both 0)");
    if (keep < 1 || sample_every < 0 || ckpt_every < 0 || final_n < 1 || final_steps < 1 || final_steps > set.info.T)
        throw ArgError("bad value: need --keep >= 1, --final-samples >= 1, 1 <= --final-steps <= T");
    set.train.device = device_option(args);  // before the data: a latent run encodes it there
    set.train.comm = &comm;
    if (P > 1) std::printf("distributed: %s\n", comm.description().c_str());
    std::printf("device: %s\n", device_description(set.train.device).c_str());
    Dataset train;  // (a latent run: rank 0 encodes the data set and writes the cache, then the others read it)
    if (root) train = resolve_data(set, args);
    if (latent) wait_for_rank0(comm);
    if (!root) train = resolve_data(set, args);
    if (set.train.batch_size * P > train.size())
        throw ArgError("the global batch, " + std::to_string(P) + " ranks x --batch " +
                       std::to_string(set.train.batch_size) + ", is larger than the data set (" +
                       std::to_string(train.size()) + " images)");
    ModelInfo info = set.info;
    TrainOptions& to = set.train;
    const UNetConfig& u = set.info.unet;

    run.begin();  // the settings and the data are good: now an earlier run may be deleted (--overwrite)

    DdpmTrainer trainer(info, to, train, set.first_stage);  // (distributed: rank 0's weights everywhere)
    info = trainer.info();
    int64_t start_step = 0;
    std::string resumed_from;
    if (run.resuming()) {
        // every rank reads the same files: the newest checkpoint that loads
        resumed_from = run.resume_from([&](const std::string& path) { trainer.load_checkpoint(path); });
        start_step = trainer.steps_done();
    }
    // Every rank has read config.txt and the checkpoint: from here on rank 0 may rewrite them.
    comm.barrier();
    run.open_metrics(start_step);
    if (run.resuming()) {
        std::printf("resumed %s at step %lld (epoch %lld)\n", resumed_from.c_str(), (long long)start_step,
                    (long long)trainer.epoch() + 1);
        if (steps > 0 && start_step >= steps)
            std::printf("the run already has %lld >= --steps %lld steps; nothing to train\n", (long long)start_step,
                        (long long)steps);
    }
    auto write_config = [&] {                       // the values the run resolved (mults, device, ...)
        long long global = trainer.global_batch();  // (a comment: a resumed run may use any number of ranks)
        std::string ranks = P < 2 ? ""
                                  : fmt("# distributed: %d ranks x batch %lld = global batch %lld (resuming on 1 "
                                        "process: --batch %lld continues the same trajectory)\n",
                                        P, (long long)to.batch_size, global, global);
        run.write_config(settings_text(latent ? "train ldm" : "train ddpm", set, kDdpmSettings, ranks));
    };
    write_config();

    std::printf("data: %s, %lld training images %s\n", train.name.c_str(), (long long)train.size(),
                train.image_shape().c_str());
    std::printf("model: UNet, %s: %lld parameters; %s schedule, T = %lld, predicts %s%s\n", u.describe().c_str(),
                (long long)trainer.model().num_parameters(), beta_schedule_name(info.schedule).c_str(),
                (long long)info.T, prediction_name(info.prediction).c_str(),
                latent ? " (in the autoencoder's latent space)" : "");
    if (P > 1)
        std::printf("data parallel: %d ranks x batch %lld = global batch %lld\n", P, (long long)to.batch_size,
                    (long long)trainer.global_batch());
    std::printf("training: batch %lld, AdamW lr %g (%s, warm-up %lld), clip %g, EMA %g, %d threads; budget %s\n",
                (long long)to.batch_size, to.lr, nn::lr_kind_name(to.lr_schedule).c_str(), (long long)to.warmup,
                to.grad_clip, to.ema_decay, omp_get_max_threads(), describe_budget(steps, minutes).c_str());

    // ---- the loop
    SamplerOptions preview;           // the grids drawn while training
    preview.sampler = Sampler::Ddim;  // spacing auto: trailing, as `diffuse sample`
    preview.steps = std::min<int64_t>(25, info.T);
    preview.prediction = info.prediction;
    bool conditional = u.cond != Conditioning::None;
    int64_t K = std::min<int64_t>(train.num_classes, 10);  // classes in the grids of a conditional model
    auto preview_grid = [&](int64_t step) {
        LoadedModel ema = trainer.sampling_model();
        Generator g(1234);  // the same x_T every time: the grids show the model change, not the noise
        Tensor y = conditional ? class_grid_conditions(ema, std::min<int64_t>(K, 8), 2) : Tensor();
        Tensor x = draw_samples(ema, preview, 16, g, y, set.guidance);
        write_png_grid(run.progress_grid(step), x, 8, display_scale(x.size(2)));
    };
    double last_ckpt_s = 0, smoothed = 0;
    auto save_ckpt = [&](int64_t step, double now) {
        run.save_checkpoint(step, keep, [&](const std::string& path) { trainer.save_checkpoint(path); });
        last_ckpt_s = now;
    };
    // Autoguidance's guide: the model a fraction of the way through the cosine schedule, or
    // through the step budget for the other learning-rate schedules (known from the start
    // with --steps, once planned with --minutes alone).
    const std::string guide_file = out + "/guide.safetensors";
    const bool guided = !latent && !conditional && set.guide_at > 0;
    bool want_guide = guided && !std::filesystem::exists(guide_file);
    int64_t guide_saved_at = 0;  // (0: before this invocation, at guide_step())
    // (a cosine that ends at a known step ends the run there too: past it the learning rate is 0)
    const bool cosine_end = steps == 0 && to.lr_schedule == nn::LrKind::Cosine && to.total_steps > 0;
    StepLoop loop(cosine_end ? to.total_steps : steps, minutes, start_step, sample_every, 60.0);
    auto guide_step = [&] {  // 0 until the end is known
        const int64_t end = to.total_steps > 0 ? to.total_steps : loop.step_budget();
        return (int64_t)std::llround(set.guide_at * end);
    };
    while (loop.more()) {
        StepStats s;
        try {
            s = trainer.step();     // Algorithm 1 (diffusion/trainer.h)
        } catch (const Error& e) {  // a non-finite loss: the checkpoints on disk are the last good ones
            run.metrics.close();
            auto ckpts = run.checkpoints();
            fail(e.what(), ckpts.empty() ? std::string(". No checkpoint was written yet.")
                                         : ". The last good checkpoint, " + ckpts.back().second +
                                               ", is kept: --resume continues from it (with other settings)");
        }
        double el = loop.elapsed();
        if (root)
            run.metrics.row({std::to_string(s.step), std::to_string(trainer.epoch() + 1), cell(s.loss),
                             cell(s.grad_norm), cell(s.lr), run.metrics.seconds(el),
                             std::to_string(trainer.steps_skipped()), cell(std::round(resident_mb() * 10) / 10)});
        if (s.skipped)
            std::printf("\nstep %lld: non-finite loss or gradient, step skipped (%lld so far)\n", (long long)s.step,
                        (long long)trainer.steps_skipped());
        else smoothed = s.step == start_step + 1 ? s.loss : 0.98 * smoothed + 0.02 * s.loss;
        loop.step_done(s.step, fmt("epoch %lld  loss %.4f (avg %.4f)  lr %.2g", (long long)trainer.epoch() + 1, s.loss,
                                   smoothed, s.lr));
        // rank 0's clock and Ctrl-C decide for every rank, so that all take the same steps
        StepLoop::Decisions d = loop.decisions();
        bool want_ckpt = ckpt_every > 0 ? s.step % ckpt_every == 0 : el - last_ckpt_s >= 120.0;
        std::vector<int64_t> agreed = from_rank0(comm, {d.estimate, d.grid, want_ckpt, d.out_of_time, d.ctrl_c});
        loop.follow({agreed[0], agreed[1] != 0, agreed[3] != 0, agreed[4] != 0});
        want_ckpt = agreed[2];
        if (agreed[0] > 0 && to.lr_schedule == nn::LrKind::Cosine && to.total_steps == 0) {
            std::printf("budget %.1f min: about %lld steps at this speed; the cosine schedule ends there\n", minutes,
                        (long long)agreed[0]);
            to.total_steps = agreed[0];
            trainer.set_lr_total(agreed[0]);
            write_config();  // recorded, so that a --resume ends the cosine at the same step
        }
        if (want_guide && guide_step() > 0 && s.step >= guide_step()) {
            want_guide = false;
            guide_saved_at = s.step;  // later than guide_step() if the plan came after it
            if (root) {
                trainer.save_ema_model(guide_file);
                std::printf("\nstep %lld: the EMA weights saved as guide.safetensors (autoguidance's guide)\n",
                            (long long)s.step);
            }
        }
        bool want_sample = loop.grid_due();
        if (root && want_sample) preview_grid(s.step);
        if (root && want_ckpt) save_ckpt(s.step, loop.elapsed());
        if (want_sample || want_ckpt) wait_for_rank0(comm);
    }
    loop.end();
    int64_t step = loop.step();
    if (!root) return loop.stopped_by_ctrl_c() ? 130 : 0;  // the files and the pictures are rank 0's
    run.metrics.close();
    if (step > start_step || run.checkpoints().empty()) save_ckpt(step, loop.elapsed());
    if (loop.stopped_by_ctrl_c())
        std::printf("interrupted at step %lld: checkpoint saved; `--resume` continues\n", (long long)step);
    else if (loop.stopped_by_time()) std::printf("time budget reached at step %lld\n", (long long)step);
    trainer.save_ema_model(out + "/model.safetensors");
    if (loop.stopped_by_ctrl_c()) return 130;

    // ---- pictures and the report
    SamplerOptions fin = preview;
    fin.steps = final_steps;
    std::printf("drawing %lld samples with DDIM (%s) from the EMA weights...\n", (long long)final_n,
                describe_steps(fin, info.T).c_str());
    LoadedModel ema = trainer.sampling_model();
    const bool autoguided = guided && std::filesystem::exists(guide_file);
    if (autoguided) ema.load_guide(guide_file);
    Generator g(0);
    int64_t H = set.pixels.images.size(2);
    if (!conditional) {
        write_png_grid(out + "/samples.png", draw_samples(ema, fin, final_n, g, Tensor(), set.guidance),
                       grid_columns(final_n), display_scale(H));
        write_denoise_strip(out + "/denoise.png", ema, fin, 8, 11, g, Tensor(), set.guidance);
    } else {
        // one row per class at w = --guidance, then the guidance sweep: one row per w,
        // one column per class, the same x_T down each column
        int64_t per_class = std::max<int64_t>(1, final_n / K);
        Tensor samples =
            draw_samples(ema, fin, K * per_class, g, class_grid_conditions(ema, K, per_class), set.guidance);
        write_png_grid(out + "/samples.png", samples, per_class, display_scale(H));
        write_png_grid(out + "/guidance.png", guidance_sweep(ema, fin, K, 7), K, display_scale(H));
        write_denoise_strip(out + "/denoise.png", ema, fin, K, 11, g, class_grid_conditions(ema, K, 1), set.guidance);
    }
    write_forward_strip(out + "/forward.png", ema, train.images.slice(0, 0, 8), 11, g);
    HeldOutImages held = held_out_images(ema, set.data, set.data_options);
    std::string per_t = describe_loss_per_t(write_loss_per_t(out, ema, held), held);
    MetricsTable metrics = read_metrics(out + "/metrics.csv");
    float final_loss = plot_loss(out + "/loss.png", metrics, "loss");
    std::vector<float> mem_x, mem_mb;
    metrics.series("rss_mb", mem_x, mem_mb);
    // (the one-point series draws nothing; it puts 0 MB on the axis, so a flat line looks flat)
    if (!mem_mb.empty()) plot::line_plot(out + "/memory.png", {{mem_x, mem_mb, 0x2ca02c}, {{mem_x[0]}, {0.0f}}});

    std::string what =
        std::string(latent ? "Latent diffusion" : "DDPM") + (u.cond == Conditioning::Class  ? ", class-conditional,"
                                                             : u.cond == Conditioning::Text ? ", text-conditional,"
                                                                                            : "");
    std::string cond_text =
        !conditional
            ? std::string()
            : " Conditioned on " +
                  std::string(u.cond == Conditioning::Class ? "class labels" : "captions made from the labels") +
                  " by " + cond_mode_name(u.cond_mode) + ", the condition dropped with probability " +
                  std::to_string(to.p_uncond) + " for classifier-free guidance.";
    std::string latent_text = !latent ? std::string()
                                      : " The UNet works on the " + train.image_shape() +
                                            " latents of a frozen autoencoder (" + info.vae.describe() +
                                            "), scaled by 1/std = " + std::to_string(info.scale_factor) +
                                            "; pictures are decoded.";
    std::ostringstream summary;
    summary << "UNet " << u.describe() << ": " << trainer.model().num_parameters() << " parameters. "
            << beta_schedule_name(info.schedule) << " schedule, T = " << info.T << ", predicting "
            << prediction_name(info.prediction) << ". " << step << " steps at batch " << trainer.global_batch()
            << (P > 1 ? " (" + std::to_string(P) + " ranks x " + std::to_string(to.batch_size) + ")" : std::string())
            << " (epoch " << trainer.epoch() + 1 << "), AdamW peak lr " << to.lr << ", EMA " << to.ema_decay
            << ". Final loss (smoothed): " << final_loss << "." << latent_text << cond_text;
    HtmlPage page(what + " on " + train.name);
    page.p(summary.str()).h2("Samples");
    if (!conditional) {
        page.image(
            "samples.png", "samples",
            std::to_string(final_n) + " samples, DDIM with " + describe_steps(fin, info.T) +
                " (eta 0) from the EMA weights" +
                (autoguided ? ", autoguided with w = " + fmt("%g", set.guidance) + " by guide.safetensors (step " +
                                  std::to_string(guide_saved_at ? guide_saved_at : guide_step()) +
                                  "): D_guide + w (D - D_guide)."
                            : "."));
    } else {
        page.image("samples.png", "samples",
                   "One row per class, classifier-free guidance w = " + cell(set.guidance) + ", DDIM with " +
                       describe_steps(fin, info.T) + " (eta 0) from the EMA weights.")
            .h2("Guidance")
            .image("guidance.png", "guidance",
                   "eps = eps(x, empty) + w (eps(x, c) - eps(x, empty)): one row per w = 0 (unconditional), "
                   "1 (conditional), 3, 7; one column per class, the same x_T down a column.");
    }
    page.h2("Denoising")
        .image("denoise.png", "denoising",
               "Left to right: x_T ~ N(0, I), then x_t along the sampler's steps, down to x_0.")
        .h2("The forward process")
        .image("forward.png", "forward",
               "Left to right: real x_0, then q(x_t | x_0) (DDPM eq. 4) at evenly spaced t up to T.")
        .h2("Loss")
        .image("loss.png", "loss", "L_simple per step (grey) and smoothed (blue), log scale.")
        .h2("Loss per timestep")
        .image("loss_per_t.png", "loss per timestep", per_t);
    if (!mem_mb.empty())
        page.h2("Memory").image(
            "memory.png", "memory",
            "Resident memory after each step, from 0 MB (bottom) up: flat once the first steps have "
            "filled the allocator's cache; a rising line would be a leak. Peak " +
                fmt("%.0f MB", peak_resident_mb()) + " (training and these pictures).");
    page.h2("While training")
        .p("The same 16 starting noises, DDIM with " + describe_steps(preview, info.T) +
           ", EMA weights, at these steps:")
        .progress_grids(out)
        .html(
            "<p>Files: <a href=config.txt>config.txt</a>, <a href=metrics.csv>metrics.csv</a>, model.safetensors "
            "(EMA weights), " +
            std::string(autoguided ? "guide.safetensors (the guide of autoguidance), " : "") + "checkpoints/.</p>\n")
        .write(out + "/index.html");
    std::printf(
        "done: %lld steps in %s, peak resident memory %s; wrote %s/{samples.png,denoise.png,forward.png,"
        "loss.png,loss_per_t.png,memory.png,index.html}\n",
        (long long)step, fmt_seconds(loop.elapsed()).c_str(), fmt("%.0f MB", peak_resident_mb()).c_str(), out.c_str());
    return 0;
}

}  // namespace

int train_ddpm(int argc, char** argv, int first) { return train_diffusion(argc, argv, first, false); }
int train_ldm(int argc, char** argv, int first) { return train_diffusion(argc, argv, first, true); }

}  // namespace td::cli
