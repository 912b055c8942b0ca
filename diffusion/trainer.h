// diffusion/trainer.h: DDPM training, one step of Algorithm 1 at a time, and the state
// that lets a run stop and resume exactly where it was.
//
//   DdpmTrainer trainer(info, options, train_set);
//   while (...) { StepStats s = trainer.step(); ... }   // one minibatch
//   trainer.save_checkpoint("runs/x/checkpoints/step-00001000.safetensors");
//   trainer.load_checkpoint(path);                        // later, same results as never stopping
//
// Every source of randomness is a counter-based td::Generator whose (seed, offset) is
// saved: the minibatch order and flips (BatchIterator), t and eps (noise_gen), dropout
// masks (the UNet's generator). With the optimizer moments, the EMA shadow and the step
// count, that is all the state there is, so a resumed run's losses match an
// uninterrupted run's bit for bit on the same machine and thread count.
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "diffusion/data/batches.h"
#include "diffusion/model_file.h"
#include "distributed/data_parallel.h"
#include "nn/ema.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"

namespace td::dist {
class Communicator;  // distributed/communicator.h
}

namespace td::diffusion {

// How the squared errors of a batch are weighted: not at all (L_simple, DDPM eq. 14) or
// by min(SNR, gamma) (Hang et al. 2023, forward_process.h). Words: "none", "min-snr".
enum class LossWeight { None, MinSnr };
LossWeight parse_loss_weight(const std::string& name);  // td::Error listing the words
std::string loss_weight_name(LossWeight w);

// Which t a training step draws (Algorithm 1, line 3): uniform over the T steps, as in
// DDPM, or logit-normal (Esser et al. 2024, eq. 19): t = floor(T sigmoid(m + s n)) with
// n ~ N(0, 1), which spends more of the steps in the middle of the process, where a
// sample commits to what it shows, and fewer at the ends, where the loss is either out
// of reach (t near T: the average image) or already tiny (t near 0). Words: "uniform",
// "logit-normal".
enum class TimestepDraw { Uniform, LogitNormal };
TimestepDraw parse_timestep_draw(const std::string& name);  // td::Error listing the words
std::string timestep_draw_name(TimestepDraw d);
// n timesteps in {0, ..., T-1} (0-based) drawn as `how` says; m, s: logit-normal's location and scale.
Tensor draw_timesteps(TimestepDraw how, double m, double s, int64_t T, int64_t n, Generator& gen);

struct TrainOptions {
    int64_t batch_size = 64;  // per rank: the global batch is comm->size() * batch_size
    float lr = 1e-3f;
    nn::LrKind lr_schedule = nn::LrKind::Cosine;  // constant | warmup | cosine (nn/lr_schedule.h)
    int64_t warmup = 100;                         // steps of linear warm-up
    int64_t total_steps = 0;                      // the cosine schedule's end; 0: the run's step budget
    float weight_decay = 0.0f;                    // AdamW's decoupled decay (0: plain Adam)
    float grad_clip = 1.0f;                       // max global gradient norm (0: no clipping)
    float ema_decay = 0.999f;                     // with the warm-up of nn/ema.h
    bool hflip = false;                           // random horizontal flips (CIFAR-10, not digits)
    LossWeight loss_weight = LossWeight::None;    // L_simple (eq. 14) or min-SNR (Hang et al. 2023)
    double snr_gamma = 5.0;                       // min-snr's gamma
    TimestepDraw t_draw = TimestepDraw::Uniform;  // how t is drawn (above)
    double t_loc = 0.0, t_scale = 1.0;            // logit-normal's m and s
    bool skip_nonfinite = false;                  // a non-finite loss / gradient: skip the step (true) or stop (false)
    float p_uncond = 0.1f;                        // conditional models: P(condition dropped) (classifier-free guidance)
    uint64_t seed = 0;
    Device device = Device::CPU;  // where the model, the optimizer and every step's tensors live
    // Data-parallel training: this rank's communicator (null: one process, as if one rank).
    // Not owned; it must outlive the trainer. Every rank must call step() equally often.
    dist::Communicator* comm = nullptr;
};

struct StepStats {
    int64_t step;          // 1-based number of the step just taken
    float loss;            // L_simple on this minibatch (the global one: the mean over the ranks)
    float grad_norm;       // before clipping
    float lr;              // used for this step
    bool skipped = false;  // non-finite and dropped (TrainOptions::skip_nonfinite)
};

// Devices: the data set stays on the CPU; the model, its optimizer and EMA, and each
// step's batch, t, noise and schedule tables live on options.device. The random draws
// are made on the CPU and moved (the same numbers on every device). Whatever goes to disk
// (checkpoints, model files) is copied back to the CPU by the writers.
//
// Data parallelism (TrainOptions::comm, docs/distributed.md): P ranks, each with this
// trainer. Every rank draws the same global minibatch of P * B samples, and the same t,
// eps and conditions for all of it, exactly as a 1-rank run with batch P * B would, and
// keeps its own contiguous slice of B (distributed/shard.h); after backward the gradients
// are averaged over the ranks (one bucketed all-reduce, distributed/data_parallel.h), so every rank takes the same
// optimizer step and the weights, the AdamW moments and the EMA stay identical. The
// counters a checkpoint stores (data position, noise generator) are the global ones, so a
// P-rank checkpoint resumes on 1 rank with batch P * B (and the reverse).
class DdpmTrainer {
public:
    // first_stage: a latent model's frozen autoencoder (train_set then holds its scaled
    // latents, diffusion/latent.h); it is not trained, only stored in every file written
    // (as "first_stage_model.*", LDM's name) so that one file is enough to sample from.
    DdpmTrainer(const ModelInfo& info, const TrainOptions& options, const Dataset& train_set,
                std::shared_ptr<VAE> first_stage = nullptr);

    // Algorithm 1 on one minibatch: x_0 ~ data, t ~ U{0..T-1}, eps ~ N(0, I),
    // gradient step on || target - net(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t) ||^2.
    // When the loss or the gradient norm is not finite it throws td::Error naming the step
    // and the first non-finite tensor (a weight, a traced activation, a gradient), or,
    // with skip_nonfinite, leaves the weights alone and returns skipped. before_backward,
    // if given, sees the loss tensor with its autograd graph (diffuse trace --graph).
    StepStats step(const std::function<void(const Tensor& loss)>& before_backward = {});

    // The condition input of one minibatch for a conditional UNet (none: undefined):
    // class labels (B), or the token ids (B, L) of a caption drawn for each label, each
    // replaced by the null condition with probability p_uncond.
    Tensor draw_condition(const Tensor& labels);

    int64_t steps_done() const { return step_; }
    int ranks() const;  // P (1 without a communicator)
    int64_t global_batch() const { return opt_.batch_size * ranks(); }
    int64_t steps_skipped() const { return skipped_; }  // non-finite steps dropped (skip_nonfinite)
    int64_t epoch() const { return batches_.epoch(); }
    UNet& model() { return *model_; }
    const ModelInfo& info() const { return info_; }
    const Schedule& schedule() const { return schedule_; }
    const TrainOptions& options() const { return opt_; }

    // Where the cosine schedule ends (a time-budgeted run learns it after a few steps).
    void set_lr_total(int64_t total) { lr_.total = std::max(total, lr_.warmup + 1); }

    // A UNet in eval mode holding the EMA weights (the ones to sample with).
    std::shared_ptr<UNet> ema_model() const;
    // The EMA model with its schedule (and decoder): what diffuse sample would load.
    LoadedModel sampling_model() const;

    // One .safetensors file: "model.*", "ema.*", "optim.*" tensors; the model info,
    // step, EMA update count and RNG / data-order states in the metadata (+ `extra`).
    // Written to PATH.tmp and renamed (nn/safetensors.h): whole or not at all.
    void save_checkpoint(const std::string& path, const Metadata& extra = {}) const;
    // Restores everything save_checkpoint wrote; returns the file's metadata. The file
    // must describe the same model (td::Error listing what differs otherwise).
    Metadata load_checkpoint(const std::string& path);
    // The EMA weights alone, with the model info: runs/NAME/model.safetensors.
    void save_ema_model(const std::string& path) const;

private:
    // Algorithm 1's random draws for one step: this rank's slice, on options.device.
    struct Draws {
        Tensor x0, t, eps;  // lines 2-4
        Tensor y;           // the condition (undefined for an unconditional model)
    };
    Draws draw();
    Tensor loss_of(const Draws& d);
    std::string first_nonfinite_forward(const Draws& d);
    StepStats nonfinite(const std::string& what, float value, const std::function<std::string()>& where, float loss,
                        float lr);
    void give_rank_its_dropout_stream();

    ModelInfo info_;
    TrainOptions opt_;
    Schedule schedule_;
    std::shared_ptr<UNet> model_;
    std::shared_ptr<VAE> first_stage_;  // latent models: the frozen autoencoder, else null
    std::unique_ptr<nn::Optimizer> optim_;
    std::unique_ptr<nn::EMA> ema_;
    dist::DataParallel parallel_;  // the ranks' hooks (no-ops on one process)
    BatchIterator batches_;
    Generator noise_gen_;  // t and eps, and which conditions are dropped
    std::string dataset_;  // the training set's name: the captions of a text-conditional model
    int64_t step_ = 0;
    int64_t skipped_ = 0;
    nn::LrSchedule lr_;
};

}  // namespace td::diffusion
