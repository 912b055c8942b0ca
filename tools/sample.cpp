// tools/sample.cpp: `diffuse sample`: draw images from a trained DDPM with the
// ancestral sampler (DDPM Algorithm 2) or DDIM (Song et al. eq. 12).
//
//   diffuse sample --run runs/demo --n 64 --sampler ddim --steps 50 --out samples.png
//   diffuse sample --run runs/demo --n 1000 --sampler ddim --steps 50 --out samples.npy
//
// FILE.png: a grid; FILE.npy: float32 [N, C, H, W] with pixel values in [0, 1]; DIR/: one
// PNG per image at its own size, the folder layout FID tools (pytorch-fid, clean-fid) read.
// Latent models (diffuse train ldm) are sampled the same way: the loop runs on latents
// and the run's own autoencoder decodes them. Conditional models take --class or
// --prompt and --guidance (classifier-free guidance, diffusion/guidance.h):
//
//   diffuse sample --run runs/ldm-class --class 7 --guidance 3 --n 16 --out sevens.png
//   diffuse sample --run runs/ldm-class --class all --n 100 --out grid.png   (a row per class)
//   diffuse sample --run runs/ldm-text --prompt "a handwritten three" --out threes.png
//   diffuse sample --run runs/ldm-class --sweep --out sweep.png  (rows w = 0, 1, 3, 7)
//
// An unconditional pixel run whose folder holds guide.safetensors (train ddpm --guide-at) is
// autoguided with the same --guidance w: D_guide + w (D - D_guide); --guidance 1 turns it off.
#include <cstdio>
#include <filesystem>

#include "diffusion/data/image_io.h"
#include "diffusion/model_file.h"
#include "tensor/device.h"
#include "tensor/error.h"
#include "tensor/npy.h"
#include "tools/args.h"
#include "tools/ddpm_settings.h"
#include "tools/ddpm_figures.h"
#include "tools/progress.h"

namespace td::cli {

using namespace td::diffusion;

namespace {

// DIR/000000.png, DIR/000001.png, ...: each image at its own size (a FID tool resizes
// as it needs), named so that the files sort in the order they were drawn.
void write_png_folder(const std::string& dir, const Tensor& images) {
    std::filesystem::create_directories(dir);
    for (int64_t i = 0; i < images.size(0); ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "%06lld.png", (long long)i);
        write_png((std::filesystem::path(dir) / name).string(), images.narrow(0, i, 1).squeeze(0));
    }
}

}  // namespace

int sample(int argc, char** argv, int first) {
    Args args(
        "diffuse sample --run runs/NAME [--ckpt FILE] --n N --sampler ddpm|ddim --steps K [--eta E] [--seed S] --out "
        "FILE",
        "Draws N images from a trained DDPM. --out FILE.png writes a grid, --out FILE.npy a float32\n"
        "array [N, C, H, W] with pixel values in [0, 1], --out DIR/ one PNG per image (for FID tools).\n"
        "ddpm is ancestral sampling (Algorithm 2;\n"
        "with --steps < T, on the respaced process of Improved DDPM sec. 4); ddim is eq. 12 of\n"
        "DDIM, deterministic with --eta 0.");
    declare_sampling_options(
        args);  // --run --ckpt --raw --sampler --spacing --steps --eta --variance --no-clip --threads
    args.option("n", "64", "how many images");
    args.option("seed", "0", "seed of the starting noise and the sampler's noise");
    args.option("batch", "128", "images per forward pass");
    args.option("strip", "", "also write a denoising strip (x_T ... x_0 of 8 samples) to this PNG");
    args.option("out", "",
                "FILE.png (a grid), FILE.npy (float32 [N, C, H, W] in [0, 1]) or DIR/ (DIR/000000.png, ...)");
    args.option("class", "",
                "conditional models: the class to draw (0-based), or 'all' (N spread over the classes,\n"
                "one row each in a grid; FILE.npy comes with FILE.labels.npy)");
    args.option("prompt", "", "text-conditional models: the caption to draw, e.g. \"a handwritten seven\"");
    args.option("guidance", "3",
                "classifier-free guidance w: eps(x, empty) + w (eps(x, c) - eps(x, empty));\n"
                "0 unconditional, 1 plain conditional, > 1 stronger. An unconditional run with a\n"
                "guide.safetensors (trained with guide-at > 0) is autoguided instead: D_guide + w (D - D_guide)");
    args.flag("sweep", "conditional models: a grid with one row per w = 0, 1, 3, 7 and one column per class");
    args.option("device", "auto", "where to sample: cuda, cpu, or auto (cuda when a GPU is present)");
    if (!args.parse_or_help(argc, argv, first)) return 0;
    std::string out = args.str("out"), strip = args.str("strip");
    if (out.empty()) throw ArgError("--out is required: FILE.png, FILE.npy or DIR/");
    // (a folder is asked for by the trailing slash, or by naming one that exists)
    bool to_folder = out.ends_with("/") || std::filesystem::is_directory(out);
    if (!to_folder && !out.ends_with(".png") && !out.ends_with(".npy"))
        throw ArgError("--out must end in .png or .npy, or in / for a folder of PNGs, got '" + out + "'");
    if (!strip.empty() && !strip.ends_with(".png")) throw ArgError("--strip must end in .png");
    int64_t n = args.integer("n"), batch = args.integer("batch");
    if (n < 1 || batch < 1) throw ArgError("need --n >= 1 and --batch >= 1");
    Device device = device_option(args);
    std::printf("device: %s\n", device_description(device).c_str());
    SamplingSetup setup = setup_sampling(args);
    LoadedModel& m = setup.model;
    m.to(device);  // loaded on the CPU; the images come back to it (tools/ddpm_figures.h)
    const SamplerOptions& o = setup.options;
    const std::string& path = setup.weights;
    double eta = o.eta;
    std::printf("model: %s (%s, %lld parameters%s); %s, %s%s\n", path.c_str(), m.info.unet.describe().c_str(),
                (long long)m.unet->num_parameters(), m.info.latent() ? ", latent" : "", sampler_name(o.sampler).c_str(),
                describe_steps(o, m.info.T).c_str(),
                o.sampler == Sampler::Ddim ? (", eta " + std::to_string(eta)).c_str() : "");

    // ---- the condition: checked against what the model was trained with
    const Conditioning cond = m.info.unet.cond;
    const std::string klass = args.str("class"), prompt = args.str("prompt");
    float w = (float)args.number("guidance");
    bool sweep = args.on("sweep");
    if (!(w >= 0)) throw ArgError("--guidance must be >= 0");
    if (cond == Conditioning::None && (!klass.empty() || args.given("prompt") || sweep))
        throw ArgError(path +
                       " is an unconditional model: --class, --prompt and --sweep do not apply "
                       "(train one with --cond class or --cond text)");
    if (cond == Conditioning::None && !m.guide && args.given("guidance"))
        throw ArgError(path +
                       " is an unconditional model without a guide.safetensors beside it: --guidance does not "
                       "apply (train with guide-at > 0 for autoguidance, or --cond class|text for classifier-free)");
    if (m.guide)
        std::printf("autoguidance: w = %g, guided away from %s/guide.safetensors\n", w, args.str("run").c_str());
    if (!prompt.empty() && cond != Conditioning::Text)
        throw ArgError("--prompt needs a text-conditional model; " + path +
                       " is conditioned on class labels (use --class)");
    if (!prompt.empty() && !klass.empty()) throw ArgError("give --class or --prompt, not both");
    int64_t K = m.info.unet.cond == Conditioning::Class ? m.info.unet.num_classes
                                                        : 10;  // a text model's captions name 10 classes
    int64_t c = -1;                                            // -1: all
    if (!klass.empty() && klass != "all") {
        char* end = nullptr;
        long long v = std::strtoll(klass.c_str(), &end, 10);
        if (*end != '\0' || v < 0 || v >= K)
            throw ArgError("--class must be 'all' or a class in 0.." + std::to_string(K - 1) + ", got '" + klass + "'");
        c = v;
    }
    Tensor y, labels;  // the condition of each sample; the requested class of each (for eval)
    if (!prompt.empty()) {
        y = prompt_condition(m, prompt, n);
    } else if (cond != Conditioning::None && !sweep) {
        if (klass.empty()) std::printf("no --class or --prompt: drawing unconditional samples (the null condition)\n");
        std::vector<int64_t> ls(n);
        for (int64_t i = 0; i < n; ++i) ls[i] = c >= 0 ? c : i * K / n;  // 'all': rows of equal classes
        labels = Tensor::from_vector_i64(ls, {n});
        std::vector<Tensor> ys;
        for (int64_t i = 0; i < n; ++i)
            ys.push_back(klass.empty() ? m.unet->null_condition(1) : class_condition(m, ls[i], 1));
        y = cat(ys, 0);
        if (klass.empty()) labels = Tensor();
    }

    Generator gen((uint64_t)args.integer("seed"));
    Progress progress(sweep ? K * (int64_t)kGuidanceSweep.size() : n);
    Tensor x;
    int64_t ncol = grid_columns(n);
    if (sweep) {  // rows: w; columns: classes; the same x_T down each column
        x = guidance_sweep(m, o, K, (uint64_t)args.integer("seed"), batch,
                           [&](int64_t done) { progress.report(done, "images", 1); });
        ncol = K;
    } else {
        x = draw_samples(m, o, n, gen, y, w, batch, [&](int64_t done) { progress.report(done, "images", 1); });
        if (klass == "all") ncol = std::max<int64_t>(1, n / K);
    }
    progress.done();
    int64_t H = x.size(2);
    if (to_folder) {
        write_png_folder(out, x);
    } else if (out.ends_with(".png")) {
        write_png_grid(out, x, ncol, display_scale(H));
    } else {
        save_npy(out, to_unit_range(x));
        if (labels.defined()) save_npy(out.substr(0, out.size() - 4) + ".labels.npy", labels);
    }
    if (!strip.empty()) write_denoise_strip(strip, m, o, std::min<int64_t>(8, n), 11, gen, y, w);
    std::printf("wrote %s (%lld images, %s)%s%s\n", out.c_str(), (long long)n, fmt_seconds(progress.elapsed()).c_str(),
                strip.empty() ? "" : " and ", strip.c_str());
    return 0;
}

}  // namespace td::cli
