// diffusion/model_file.h: what a trained diffusion model is, on disk.
//
// A DDPM is a UNet plus the process it was trained for: the noise schedule (name, T)
// and what the network predicts (eps, x0, v). All of it travels in the "__metadata__"
// of every .safetensors file a run writes, so any one file is enough to sample from:
//
//   runs/NAME/model.safetensors               the EMA weights under the UNet's own names
//                                             (loads into PyTorch's port as they are)
//   runs/NAME/checkpoints/step-00001000.safetensors
//                                             "model.<name>" live weights, "ema.<name>" EMA
//                                             weights, "optim.<key>" optimizer moments, plus
//                                             the trainer's counters and RNG states
//                                             (diffusion/trainer.h)
#pragma once
#include <map>
#include <memory>
#include <string>

#include "diffusion/forward_process.h"
#include "diffusion/schedule.h"
#include "diffusion/sampler.h"
#include "diffusion/unet.h"
#include "diffusion/vae.h"

namespace td::diffusion {

struct ModelInfo {
    UNetConfig unet;
    BetaSchedule schedule = BetaSchedule::Linear;
    int64_t T = 1000;
    Prediction prediction = Prediction::Eps;
    std::string data;  // the training set's name ("mnist", ...): a text model's captions come from it; "" = unknown
    // Latent diffusion (Rombach et al. 2022): the UNet works on scale_factor * z, z = E(x)
    // the codes of a frozen autoencoder, whose weights travel in the same file as
    // "first_stage_model.*" (LDM's name). Metadata: "ldm.scale_factor" and "vae.*".
    double scale_factor = 0;  // 1 / std of the training latents (diffusion/latent.h); 0: a pixel model
    VAEConfig vae;            // the autoencoder, when scale_factor > 0
    bool latent() const { return scale_factor > 0; }
};

// "unet.ch" = "32", "schedule" = "linear", ...; a conditional UNet adds "unet.cond",
// "unet.cond_mode" and its conditioner's sizes ("unet.num_classes", "unet.text_dim", ...).
// The enums are written as their words (beta_schedule_name, conditioning_name, ...).
Metadata to_metadata(const ModelInfo& info);
// Throws td::Error naming `path` and the missing or malformed key. The conditioning keys
// (unet.cond*, unet.text_*, ...) and data are optional: a file without them is cond none.
ModelInfo model_info_from_metadata(const Metadata& meta, const std::string& path);

// A trained model, ready to sample: the UNet, its process, and for a latent model the
// autoencoder that turns the sampled latents into pixels.
struct LoadedModel {
    ModelInfo info;
    std::shared_ptr<UNet> unet;  // in eval mode
    Schedule schedule;
    std::shared_ptr<VAE> vae;     // latent models: the frozen autoencoder (in eval mode); else null
    std::shared_ptr<UNet> guide;  // autoguidance's weaker model (diffusion/guidance.h), or null

    // Puts the UNet, the autoencoder and the schedule's tables on `device` (in place;
    // load_model gives them on the CPU). device(): where they are.
    LoadedModel& to(Device device);
    Device device() const { return unet->device(); }

    // x_T's shape for n samples: (n, C, H, W), pixels or latents.
    Shape noise_shape(int64_t n) const;
    // x_0 in the model's space -> pixels in [-1, 1]: x itself, or D(x / scale_factor).
    Tensor decode(const Tensor& x) const;
    // What the sampler calls: eps_theta(x_t, t) for an unconditional model, or the
    // classifier-free-guided mix for condition y with scale w (diffusion/guidance.h). An
    // unconditional model with a guide is autoguided with scale w instead.
    Denoiser denoiser(const Tensor& y = Tensor(), float w = 1.0f) const;
    // Loads the guide from `path` (a model file of the same UNet, unconditional).
    void load_guide(const std::string& path);
};
// Loads model.safetensors (plain names) or a checkpoint (use_ema: the "ema." weights,
// else the live "model." ones), and a latent model's autoencoder ("first_stage_model.*"),
// on the CPU (LoadedModel::to moves it). Errors name the file and say what does not match.
LoadedModel load_model(const std::string& path, bool use_ema = true);

}  // namespace td::diffusion
