// diffusion/vae_trainer.cpp: see vae_trainer.h.
#include "diffusion/vae_trainer.h"

#include <algorithm>
#include <cmath>

#include "autograd/node.h"
#include "nn/safetensors.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "version.h"

namespace td::diffusion {

VaeTrainer::VaeTrainer(const VAEConfig& config, const VaeTrainOptions& options, const Dataset& train_set)
    : opt_(options),
      model_(std::make_shared<VAE>(config)),
      batches_(train_set, BatchOptions{.batch_size = options.batch_size, .seed = options.seed}),
      eps_gen_(options.seed + 1) {
    check(train_set.images.size(1) == config.in_channels && train_set.images.size(2) == config.image_size &&
              train_set.images.size(3) == config.image_size,
          "train vae: ", train_set.name, " images are ", train_set.images.shape(), " but the VAE expects ",
          config.in_channels, " x ", config.image_size, " x ", config.image_size);
    check(options.lr > 0 && std::isfinite(options.lr), "train vae: lr must be > 0, got ", options.lr);
    check(options.beta >= 0 && std::isfinite(options.beta), "train vae: beta must be >= 0, got ", options.beta);
    check(options.warmup >= 0 && options.total_steps >= 0, "train vae: warmup and total_steps must be >= 0");
    model_->to(options.device);  // before Adam: its moments are made beside the parameters
    nn::AdamOptions adam;        // plain Adam, as LDM's autoencoder (which uses betas (0.5, 0.9) for its GAN's sake)
    adam.lr = options.lr;
    optim_ = std::make_unique<nn::Adam>(model_->named_parameters(), adam);
    lr_.kind = nn::LrKind::Cosine;
    lr_.base_lr = options.lr;
    lr_.warmup = options.warmup;
    // no end given (a time budget): as if far away, until set_lr_total() says where
    lr_.total = options.total_steps > 0 ? std::max(options.total_steps, options.warmup + 1) : (int64_t)1 << 40;
}

VaeStepStats VaeTrainer::step() {
    model_->train();
    Batch b = batches_.next();                                            // on the CPU, where the data set is
    Tensor x = b.x.to(opt_.device);                                       // (B, C, H, W) in [-1, 1]
    VAE::Posterior q = model_->encode(x);                                 // q(z | x) = N(mu, sigma^2)
    Tensor eps = randn(q.mu.shape(), eps_gen_, 0.0f, 1.0f, opt_.device);  // eps ~ N(0, I)
    Tensor z = VAE::reparameterise(q.mu, q.logvar, eps);                  // z = mu + sigma * eps
    Tensor x_hat = model_->decode(z);                                     // (B, C, H, W)
    VaeLoss loss = vae_loss(x, x_hat, q, opt_.beta, opt_.recon);          // recon + beta * KL
    float loss_value = loss.total.item();
    ++step_;
    check(std::isfinite(loss_value), "train vae: the loss is ", loss_value, " at step ", step_, " (try a lower --lr)");

    optim_->zero_grad();
    loss.total.backward();
    float lr = lr_.at(step_);
    optim_->set_lr(lr);
    optim_->step();
    return {step_, loss_value, loss.recon.item(), loss.kl.item(), lr};
}

void VaeTrainer::save_model(const std::string& path, const Metadata& extra) const {
    Metadata meta = to_metadata(model_->config());
    meta["tinydiffusion.version"] = kVersion;  // (as every model file of ours)
    for (auto& [k, v] : extra) meta[k] = v;
    nn::save_module(path, *model_, meta);
}

Tensor reconstruct(VAE& vae, const Tensor& x, int64_t batch) {
    check(batch >= 1, "reconstruct: batch must be >= 1, got ", batch);
    bool was_training = vae.is_training();
    vae.eval();
    NoGradGuard no_grad;
    std::vector<Tensor> parts;
    Device device = vae.device();
    for (int64_t i = 0; i < x.size(0); i += batch) {
        Tensor xb = x.slice(0, i, std::min(i + batch, x.size(0))).to(device);  // (b, C, H, W)
        parts.push_back(vae.decode(vae.encode(xb).mu).to(Device::CPU));        // z = mu: the posterior's mode
    }
    vae.train(was_training);
    return parts.size() == 1 ? parts[0] : cat(parts, 0);
}

// PSNR_i = 10 log10(MAX^2 / MSE_i) with MAX = 1 (pixels in [0, 1]), averaged over images
double mean_psnr(const Tensor& x, const Tensor& x_hat) {
    check(x.shape() == x_hat.shape() && x.dim() == 4, "mean_psnr: x ", x.shape(), " and x_hat ", x_hat.shape(),
          " must have one shape (N, C, H, W)");
    NoGradGuard no_grad;
    Tensor p = (x + 1.0f) * 0.5f, p_hat = (clamp(x_hat, -1.0f, 1.0f) + 1.0f) * 0.5f;  // [0, 1] pixel values
    Tensor d = p - p_hat;
    std::vector<float> mse = mean(d * d, {1, 2, 3}).to(Device::CPU).to_vector();  // (N): MSE_i
    double total = 0.0;
    for (float m : mse) total += 10.0 * std::log10(1.0 / std::max((double)m, 1e-10));
    return mse.empty() ? 0.0 : total / (double)mse.size();
}

}  // namespace td::diffusion
