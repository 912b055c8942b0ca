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
#include "diffusion/unet.h"

namespace td::diffusion {

struct ModelInfo {
    UNetConfig unet;
    std::string schedule = "linear";  // diffusion/schedule.h: linear, cosine, scaled_linear
    int64_t T = 1000;
    Prediction prediction = Prediction::Eps;
};

using Metadata = std::map<std::string, std::string>;
Metadata to_metadata(const ModelInfo& info);  // "unet.ch" = "32", "schedule" = "linear", ...
// Throws td::Error naming `path` and the missing or malformed key.
ModelInfo model_info_from_metadata(const Metadata& meta, const std::string& path);
std::string prediction_name(Prediction p);    // "eps", "x0", "v"

struct LoadedModel {
    ModelInfo info;
    std::shared_ptr<UNet> unet;  // in eval mode
    Schedule schedule;
};
// Loads model.safetensors (plain names) or a checkpoint (use_ema: the "ema." weights,
// else the live "model." ones). Errors name the file and say what does not match.
LoadedModel load_model(const std::string& path, bool use_ema = true);

}  // namespace td::diffusion
