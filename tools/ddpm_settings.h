// tools/ddpm_settings.h: the settings of a DDPM run, one table (kDdpmSettings, see
// tools/settings.h) for `diffuse train ddpm|ldm` (flags, --config, config.txt, --help) and
// `diffuse trace train` (a run's config.txt); and the options of sampling from a run.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "diffusion/data/dataset.h"
#include "diffusion/model_file.h"
#include "diffusion/sampler.h"
#include "diffusion/trainer.h"
#include "diffusion/vae.h"
#include "tools/args.h"
#include "tools/settings.h"
#include "tools/training_run.h"  // list_checkpoints

namespace td::cli {

struct DdpmSettings {
    diffusion::ModelInfo info;      // in_channels / image_size are filled once the data is loaded
    diffusion::TrainOptions train;  // hflip: on when --flip is given (see resolve_data); device:
                                    // the CPU unless the command sets it (device_option, tools/settings.h)
    std::string data;               // --data: mnist, fashion, cifar10 or a folder
    diffusion::DataOptions data_options;
    int64_t steps = 0;             // the step budget (0: none)
    double minutes = 0;            // the time budget (0: none)
    float guidance = 3;            // w of the samples drawn by the trainer (classifier-free, or autoguidance)
    double guide_at = 0.25;        // unconditional pixel models: save guide.safetensors this far in (0: none)
    std::string vae;               // --vae: latent diffusion on this autoencoder's codes ("" pixels)
    bool auto_mults = false;       // --mults / --attn-res auto: resolve_data picks them for the
    bool auto_attn_res = false;    // size of what the UNet denoises (pixels or latents), and
    bool auto_ch = false;          // --ch, --res-blocks, --groups auto for the levels it chose
    bool auto_res_blocks = false;  // (default_unet_size, default_groups)
    bool auto_groups = false;
    // filled by resolve_data:
    diffusion::Dataset pixels;                    // the training images (also for a latent model)
    std::shared_ptr<diffusion::VAE> first_stage;  // the frozen autoencoder of a latent model, or null
};

extern const std::vector<Setting<DdpmSettings>> kDdpmSettings;

// Reads the declared options; throws ArgError for a value out of range.
DdpmSettings ddpm_settings(const Args& args);

// Loads the training set and completes the settings from it: image size and channels,
// classes, flips (on for 3-channel pixels unless set), the UNet sizes left to auto (said
// with the reason), the cosine's end (the step budget if unset); validates the UNet
// (ArgError). With --vae it loads the autoencoder onto s.train.device and returns the
// scaled latents of the training set (on the CPU) instead of its pixels.
diffusion::Dataset resolve_data(DdpmSettings& s, const Args& args);

// ---- sampling from a run (`diffuse sample`, `diffuse trace sample`)

// Declares --run, --ckpt, --raw, --sampler, --spacing, --steps, --eta, --variance, --no-clip, --threads.
void declare_sampling_options(Args& args);

struct SamplingSetup {
    std::string weights;  // the file the model came from
    diffusion::LoadedModel model;
    diffusion::SamplerOptions options;  // prediction set from the model
};
// Reads those options, applies --threads, picks the weights file (--ckpt; else the run's
// model.safetensors; else its latest checkpoint) and loads it. ArgError for bad values
// (--steps more than the model's T among them), td::Error for a bad file.
SamplingSetup setup_sampling(const Args& args);

// "50 steps, trailing spacing: t = 999, 979, ..., 19": what a run's output says of the walk.
std::string describe_steps(const diffusion::SamplerOptions& o, int64_t T);

}  // namespace td::cli
