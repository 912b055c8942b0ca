// tools/sample.cpp: `diffuse sample`: draw images from a trained DDPM with the
// ancestral sampler (DDPM Algorithm 2) or DDIM (Song et al. eq. 12).
//
//   diffuse sample --run runs/demo --n 64 --sampler ddim --steps 50 --out samples.png
//   diffuse sample --run runs/demo --n 1000 --sampler ddim --steps 50 --out samples.npy
//
// FILE.png: a grid; FILE.npy: float32 [N, C, H, W] with pixel values in [0, 1].
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <omp.h>

#include "diffusion/data/image_io.h"
#include "diffusion/model_file.h"
#include "tensor/error.h"
#include "tensor/npy.h"
#include "tools/args.h"
#include "tools/ddpm_figures.h"
#include "tools/progress.h"

namespace td::cli {

namespace fs = std::filesystem;
using namespace td::diffusion;

namespace {

bool ends_with(const std::string& s, const std::string& tail) {
    return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// --ckpt if given; else the run's model.safetensors (EMA weights); else its latest checkpoint.
std::string weights_path(const std::string& run, const std::string& ckpt) {
    if (!ckpt.empty()) return ckpt;
    if (fs::exists(run + "/model.safetensors")) return run + "/model.safetensors";
    std::string latest;
    std::error_code ec;
    for (auto& e : fs::directory_iterator(run + "/checkpoints", ec))
        if (ends_with(e.path().string(), ".safetensors") && e.path().string() > latest) latest = e.path().string();
    check(!latest.empty(), run, ": no model.safetensors and no checkpoints/ (is this a run folder of `diffuse train ddpm`?)");
    return latest;
}

}  // namespace

int sample(int argc, char** argv, int first) {
    Args args("diffuse sample --run runs/NAME [--ckpt FILE] --n N --sampler ddpm|ddim --steps K [--eta E] [--seed S] --out FILE",
              "Draws N images from a trained DDPM. --out FILE.png writes a grid, --out FILE.npy a float32\n"
              "array [N, C, H, W] with pixel values in [0, 1]. ddpm is ancestral sampling (Algorithm 2;\n"
              "with --steps < T, on the respaced process of Improved DDPM sec. 4); ddim is eq. 12 of\n"
              "DDIM, deterministic with --eta 0.");
    args.option("run", "", "the run folder of `diffuse train ddpm`");
    args.option("ckpt", "", "a weights file instead of the run's model.safetensors (a checkpoint works too)");
    args.option("n", "64", "how many images");
    args.option("sampler", "ddim", "ddpm or ddim");
    args.option("steps", "50", "sampling steps (model calls); ddpm with fewer than T respaces the process");
    args.option("eta", "0", "DDIM's eta: 0 deterministic, 1 ancestral (eq. 16)");
    args.option("variance", "beta_tilde", "ddpm: sigma_t^2 = beta (fixed large) or beta_tilde (fixed small)");
    args.flag("no-clip", "do not clip the predicted x_0 to [-1, 1] (ddpm: Algorithm 2 literally; ddim: eq. 12 literally)");
    args.flag("raw", "from a checkpoint, use the live weights instead of the EMA ones");
    args.option("seed", "0", "seed of the starting noise and the sampler's noise");
    args.option("batch", "128", "images per forward pass");
    args.option("threads", "0", "OpenMP threads (0: all cores)");
    args.option("strip", "", "also write a denoising strip (x_T ... x_0 of 8 samples) to this PNG");
    args.option("out", "", "FILE.png (a grid) or FILE.npy (float32 [N, C, H, W] in [0, 1])");
    if (!args.parse(argc, argv, first)) { std::printf("%s", args.help().c_str()); return 0; }
    std::string run = args.str("run"), ckpt = args.str("ckpt"), out = args.str("out"), strip = args.str("strip");
    if (run.empty() && ckpt.empty()) throw ArgError("--run (or --ckpt) is required");
    if (out.empty()) throw ArgError("--out is required: FILE.png or FILE.npy");
    if (!ends_with(out, ".png") && !ends_with(out, ".npy")) throw ArgError("--out must end in .png or .npy, got '" + out + "'");
    if (!strip.empty() && !ends_with(strip, ".png")) throw ArgError("--strip must end in .png");
    int64_t n = args.integer("n"), steps = args.integer("steps"), batch = args.integer("batch");
    int64_t threads = args.integer("threads");
    double eta = args.number("eta");
    if (n < 1 || steps < 1 || batch < 1 || eta < 0 || threads < 0)
        throw ArgError("need --n >= 1, --steps >= 1, --batch >= 1, --eta >= 0, --threads >= 0");
    SamplerOptions o;
    o.sampler = args.str("sampler");
    if (o.sampler != "ddpm" && o.sampler != "ddim") throw ArgError("--sampler must be ddpm or ddim, got '" + o.sampler + "'");
    o.steps = steps;
    o.eta = eta;
    o.clip_x0 = !args.on("no-clip");
    try {
        o.variance = parse_variance(args.str("variance"));
    } catch (const Error& e) {
        throw ArgError(e.what());
    }
    if (threads > 0) omp_set_num_threads((int)threads);

    std::string path = weights_path(run, ckpt);
    LoadedModel m = load_model(path, !args.on("raw"));
    o.prediction = m.info.prediction;
    if (steps > m.info.T)
        throw ArgError("--steps " + std::to_string(steps) + " is more than the model's T = " + std::to_string(m.info.T));
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
