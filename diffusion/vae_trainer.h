// diffusion/vae_trainer.h: training the KL autoencoder (diffusion/vae.h) one minibatch at a
// time, and judging it: reconstructions of held-out images and their PSNR.
//
//   VaeTrainer trainer(config, options, train_set);
//   while (...) { VaeStepStats s = trainer.step(); ... }
//   trainer.save_model("runs/vae/model.safetensors", {{"data", "mnist"}});
//   double db = mean_psnr(test.images, reconstruct(trainer.model(), test.images));
//
// One step: x ~ data, (mu, logvar) = encode(x), eps ~ N(0, I), z = mu + sigma * eps,
// x_hat = decode(z), loss = recon(x, x_hat) + beta KL(q(z | x) || N(0, I)) (vae_loss),
// then Adam. Randomness: the minibatch order (BatchIterator) and eps (its own generator),
// both seeded from options.seed.
#pragma once
#include <memory>
#include <string>

#include "diffusion/data/batches.h"
#include "diffusion/vae.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"

namespace td::diffusion {

struct VaeTrainOptions {
    int64_t batch_size = 64;
    float lr = 1e-3f;         // Adam's peak learning rate
    int64_t warmup = 100;     // steps of linear warm-up
    int64_t total_steps = 0;  // where the cosine decay ends; 0: unknown yet (set_lr_total), constant until then
    float beta = 1e-6f;       // the KL weight (LDM's kl_weight; see vae_loss for the reduction)
    Recon recon = Recon::L1;
    uint64_t seed = 0;
    Device device = Device::CPU;  // where the model, Adam's moments and each step's tensors live
};

struct VaeStepStats {
    int64_t step;  // 1-based number of the step just taken
    float loss;    // recon + beta * kl on this minibatch
    float recon;   // the reconstruction term (per image)
    float kl;      // KL per image, in nats
    float lr;      // used for this step
};

class VaeTrainer {
public:
    // Throws td::Error when the data does not fit the config or an option is out of range.
    VaeTrainer(const VAEConfig& config, const VaeTrainOptions& options, const Dataset& train_set);

    // One Adam step on one minibatch; td::Error when the loss is not finite.
    VaeStepStats step();

    int64_t steps_done() const { return step_; }
    int64_t epoch() const { return batches_.epoch(); }
    VAE& model() { return *model_; }
    const VaeTrainOptions& options() const { return opt_; }
    void set_lr_total(int64_t total) { lr_.total = std::max(total, lr_.warmup + 1); }

    // The weights under their plain names, the config (to_metadata) and `extra` in the
    // metadata; written to PATH.tmp and renamed.
    void save_model(const std::string& path, const Metadata& extra = {}) const;

private:
    VaeTrainOptions opt_;
    std::shared_ptr<VAE> model_;
    std::unique_ptr<nn::Adam> optim_;
    BatchIterator batches_;
    Generator eps_gen_;
    int64_t step_ = 0;
    nn::LrSchedule lr_;
};

// decode(mu) for every image of x (N, C, H, W), in batches, without gradients, in eval
// mode: the deterministic reconstruction (z = the posterior's mean, its mode). The
// batches run on the autoencoder's device; the result is on the CPU.
Tensor reconstruct(VAE& vae, const Tensor& x, int64_t batch = 250);

// PSNR in dB, mean over images: with both mapped to [0, 1] pixel values (p = (x + 1) / 2,
// x_hat clamped to [-1, 1] first, as a PNG would show it),
//   PSNR_i = 10 log10(1 / MSE_i),  MSE_i = mean over the image's pixels of (p - p_hat)^2,
// and the result is the mean of PSNR_i over the N images (MSE_i floored at 1e-10: 100 dB).
// x, x_hat: (N, C, H, W) in [-1, 1].
double mean_psnr(const Tensor& x, const Tensor& x_hat);

}  // namespace td::diffusion
