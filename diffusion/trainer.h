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
#include "nn/ema.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"

namespace td::diffusion {

struct TrainOptions {
    int64_t batch_size = 64;
    float lr = 1e-3f;
    std::string lr_schedule = "cosine";  // constant | warmup | cosine (nn/lr_schedule.h)
    int64_t warmup = 100;                // steps of linear warm-up
    int64_t total_steps = 0;             // the cosine schedule's end; 0: the run's step budget
    float weight_decay = 0.0f;           // AdamW's decoupled decay (0: plain Adam)
    float grad_clip = 1.0f;              // max global gradient norm (0: no clipping)
    float ema_decay = 0.999f;            // with the warm-up of nn/ema.h
    bool hflip = false;                  // random horizontal flips (CIFAR-10, not digits)
    std::string loss_weight = "none";    // none (L_simple, eq. 14) | min-snr (Hang et al. 2023)
    double snr_gamma = 5.0;              // min-snr's gamma
    uint64_t seed = 0;
};

struct StepStats {
    int64_t step;     // 1-based number of the step just taken
    float loss;       // L_simple on this minibatch
    float grad_norm;  // before clipping
    float lr;         // used for this step
};

class DdpmTrainer {
public:
    DdpmTrainer(const ModelInfo& info, const TrainOptions& options, const Dataset& train_set);

    // Algorithm 1 on one minibatch: x_0 ~ data, t ~ U{0..T-1}, eps ~ N(0, I),
    // gradient step on || target - net(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t) ||^2.
    // Throws td::Error when the loss or the gradient norm is not finite. before_backward,
    // if given, sees the loss tensor with its autograd graph (diffuse trace --graph).
    StepStats step(const std::function<void(const Tensor& loss)>& before_backward = {});

    int64_t steps_done() const { return step_; }
    int64_t epoch() const { return batches_.epoch(); }
    UNet& model() { return *model_; }
    const ModelInfo& info() const { return info_; }
    const Schedule& schedule() const { return schedule_; }
    const TrainOptions& options() const { return opt_; }

    // Where the cosine schedule ends (a time-budgeted run learns it after a few steps).
    void set_lr_total(int64_t total) { lr_.total = std::max(total, lr_.warmup + 1); }

    // A UNet in eval mode holding the EMA weights (the ones to sample with).
    std::shared_ptr<UNet> ema_model() const;

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
    ModelInfo info_;
    TrainOptions opt_;
    Schedule schedule_;
    std::shared_ptr<UNet> model_;
    std::unique_ptr<nn::Optimizer> optim_;
    std::unique_ptr<nn::EMA> ema_;
    BatchIterator batches_;
    Generator noise_gen_;  // t and eps
    int64_t step_ = 0;
    nn::LrSchedule lr_;
};

}  // namespace td::diffusion
