// tools/sample.cpp: `diffuse sample`: draw images from a trained DDPM with the
// ancestral sampler (DDPM Algorithm 2) or DDIM (Song et al. eq. 12).
//
//   diffuse sample --run runs/demo --n 64 --sampler ddim --steps 50 --out samples.png
//   diffuse sample --run runs/demo --n 1000 --sampler ddim --steps 50 --out samples.npy
//
// FILE.png: a grid; FILE.npy: float32 [N, C, H, W] with pixel values in [0, 1].
#include <cmath>
#include <cstdio>

#include "diffusion/data/image_io.h"
#include "diffusion/model_file.h"
#include "tensor/error.h"
#include "tensor/npy.h"
#include "tools/args.h"
#include "tools/ddpm_settings.h"
#include "tools/ddpm_figures.h"
#include "tools/progress.h"

namespace td::cli {

using namespace td::diffusion;

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

int sample(int argc, char** argv, int first) {
    Args args("diffuse sample --run runs/NAME [--ckpt FILE] --n N --sampler ddpm|ddim --steps K [--eta E] [--seed S] --out FILE",
              "Draws N images from a trained DDPM. --out FILE.png writes a grid, --out FILE.npy a float32\n"
              "array [N, C, H, W] with pixel values in [0, 1]. ddpm is ancestral sampling (Algorithm 2;\n"
              "with --steps < T, on the respaced process of Improved DDPM sec. 4); ddim is eq. 12 of\n"
              "DDIM, deterministic with --eta 0.");
    declare_sampling_options(args);  // --run --ckpt --raw --sampler --steps --eta --variance --no-clip --threads
    args.option("n", "64", "how many images");
    args.option("seed", "0", "seed of the starting noise and the sampler's noise");
    args.option("batch", "128", "images per forward pass");
    args.option("strip", "", "also write a denoising strip (x_T ... x_0 of 8 samples) to this PNG");
    args.option("out", "", "FILE.png (a grid) or FILE.npy (float32 [N, C, H, W] in [0, 1])");
    if (!args.parse(argc, argv, first)) { std::printf("%s", args.help().c_str()); return 0; }
    std::string out = args.str("out"), strip = args.str("strip");
    if (out.empty()) throw ArgError("--out is required: FILE.png or FILE.npy");
    if (!ends_with(out, ".png") && !ends_with(out, ".npy")) throw ArgError("--out must end in .png or .npy, got '" + out + "'");
    if (!strip.empty() && !ends_with(strip, ".png")) throw ArgError("--strip must end in .png");
    int64_t n = args.integer("n"), batch = args.integer("batch");
    if (n < 1 || batch < 1) throw ArgError("need --n >= 1 and --batch >= 1");
    SamplingSetup setup = setup_sampling(args);
    LoadedModel& m = setup.model;
    const SamplerOptions& o = setup.options;
    const std::string& path = setup.weights;
    int64_t steps = o.steps;
    double eta = o.eta;
    std::printf("model: %s (%s, %lld parameters); %s, %lld steps%s\n", path.c_str(), m.info.unet.describe().c_str(),
                (long long)m.unet->num_parameters(), o.sampler.c_str(), (long long)steps,
                o.sampler == "ddim" ? (", eta " + std::to_string(eta)).c_str() : "");

    Generator gen((uint64_t)args.integer("seed"));
    Progress progress(n);
    Tensor x = draw_samples(*m.unet, m.schedule, o, n, gen, batch, [&](int64_t done) {
        progress.report(done, "images", 1);
    });
    progress.done();
    if (ends_with(out, ".png")) {
        int64_t ncol = std::max<int64_t>(1, (int64_t)std::ceil(std::sqrt((double)n)));
        write_png_grid(out, x, ncol, display_scale(m.info.unet.image_size));
    } else {
        save_npy(out, to_unit_range(x));
    }
    if (!strip.empty()) write_denoise_strip(strip, *m.unet, m.schedule, o, 8, 11, gen);
    std::printf("wrote %s (%lld images, %s)%s%s\n", out.c_str(), (long long)n, fmt_seconds(progress.elapsed()).c_str(),
                strip.empty() ? "" : " and ", strip.c_str());
    return 0;
}

}  // namespace td::cli
