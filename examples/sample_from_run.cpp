// examples/sample_from_run.cpp: load a trained model and draw a grid of samples, with
// the library alone (what `diffuse sample` does, less its flags).
//
//   sample_from_run runs/demo/model.safetensors grid.png [N] [STEPS]
//
// One model file is enough: its metadata holds the UNet's shape, the noise schedule and
// what the network predicts (diffusion/model_file.h). A latent model's file also holds
// its autoencoder, and decode() turns the sampled latents into pixels.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "diffusion/data/image_io.h"
#include "diffusion/model_file.h"
#include "diffusion/sampler.h"
#include "td.h"

using namespace td;
using namespace td::diffusion;

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s MODEL.safetensors OUT.png [N] [STEPS]\n", argv[0]);
        return 2;
    }
    int64_t n = argc > 3 ? std::atoll(argv[3]) : 16;
    try {
        LoadedModel model = load_model(argv[1]);  // the EMA weights, on the CPU
        SamplerOptions options;                   // DDIM, eta 0: deterministic
        options.steps = argc > 4 ? std::atoll(argv[4]) : 50;
        options.prediction = model.info.prediction;
        options.clip_x0 = !model.info.latent();  // latents are not pixels: never clip them

        Generator gen(0);
        Tensor x_T = randn(model.noise_shape(n), gen);
        Tensor x_0 =
            sample(model.schedule, model.denoiser(), x_T, options, gen, [](int64_t i, int64_t t, const Tensor&) {
                std::printf("\rstep %lld (t = %lld)  ", (long long)i, (long long)t);
            });
        Tensor images = model.decode(x_0);  // pixels in [-1, 1]
        int64_t columns = (int64_t)std::ceil(std::sqrt((double)n));
        write_png_grid(argv[2], images, columns, images.size(2) < 64 ? 4 : 1);
        std::printf("\nwrote %s: %lld samples of %s\n", argv[2], (long long)n, model.info.unet.describe().c_str());
    } catch (const Error& e) {  // a missing file, a file that is not a model: the message says which
        std::fprintf(stderr, "error: %s\n", e.what());
        return 1;
    }
    return 0;
}
