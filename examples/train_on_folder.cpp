// examples/train_on_folder.cpp: a small DDPM on your own folder of images, then samples.
//
//   train_on_folder DIR [STEPS]     writes my-model.safetensors and my-samples.png
//
// DIR holds images (PNG, JPG, ...), in sub-folders per class or not; they are resized and
// center-cropped to 32x32 RGB. A few hundred steps already give blurry shapes of the
// right colours; thousands give recognisable ones. `diffuse train ddpm --data DIR` is the
// same trainer with checkpoints, resume and a report page.
#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "diffusion/data/dataset.h"
#include "diffusion/data/image_io.h"
#include "diffusion/sampler.h"
#include "diffusion/trainer.h"
#include "td.h"

using namespace td;
using namespace td::diffusion;

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: %s IMAGE_DIR [STEPS]\n", argv[0]);
        return 2;
    }
    int64_t steps = argc > 2 ? std::atoll(argv[2]) : 500;
    try {
        DataOptions data_options;  // 32x32, RGB
        Dataset images = load_dataset(argv[1], "train", data_options);
        std::printf("%lld images from %s\n", (long long)images.images.size(0), argv[1]);

        ModelInfo info;  // the UNet and the process: a small UNet, the linear schedule, T = 1000
        info.unet.in_channels = 3;
        info.unet.image_size = 32;
        info.unet.ch = 16;
        info.unet.mults = {1, 2, 2};
        info.unet.num_res_blocks = 1;
        info.unet.attn_res = {8};
        info.unet.groups = 4;
        TrainOptions options;
        options.batch_size = std::min<int64_t>(32, images.images.size(0));  // (a folder may hold fewer)
        options.total_steps = steps;  // where the cosine learning-rate schedule ends
        options.hflip = true;

        DdpmTrainer trainer(info, options, images);
        for (int64_t i = 1; i <= steps; ++i) {
            StepStats s = trainer.step();  // Algorithm 1 on one minibatch
            if (i % 50 == 0 || i == steps) std::printf("step %lld  loss %.4f  lr %.2e\n", (long long)i, s.loss, s.lr);
        }
        trainer.save_ema_model("my-model.safetensors");  // examples/sample_from_run.cpp reads it

        LoadedModel model = trainer.sampling_model();  // the EMA weights
        SamplerOptions sampler;                        // DDIM-50, eta 0
        Generator gen(1);
        Tensor x = sample(model.schedule, model.denoiser(), randn(model.noise_shape(16), gen), sampler, gen);
        write_png_grid("my-samples.png", x, 4, 4);
        std::printf("wrote my-model.safetensors and my-samples.png\n");
    } catch (const Error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
