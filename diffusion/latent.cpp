// diffusion/latent.cpp: see latent.h.
#include "diffusion/latent.h"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "autograd/node.h"
#include "nn/safetensors.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion {

namespace fs = std::filesystem;

Tensor encode_latents(VAE& vae, const Tensor& images, int64_t batch) {
    check(images.dim() == 4, "encode_latents: images must be (N, C, H, W), got ", images.shape());
    NoGradGuard no_grad;
    bool was_training = vae.is_training();
    vae.eval();
    std::vector<Tensor> parts;
    Device device = vae.device();
    for (int64_t i = 0; i < images.size(0); i += batch) {
        Tensor x = images.slice(0, i, std::min(images.size(0), i + batch)).to(device);  // (b, C, H, W)
        parts.push_back(vae.encode(x).mu.to(Device::CPU));                              // (b, c, h, w)
    }
    vae.train(was_training);
    return cat(parts, 0);
}

double latent_scale_factor(const Tensor& latents) {
    // std over every element, in double: 8,000 x 196 floats summed in float would lose digits
    std::vector<float> v = latents.to(Device::CPU).to_vector();
    check(v.size() > 1, "latent_scale_factor: need more than one latent value");
    double mean = 0;
    for (float a : v) mean += a;
    mean /= (double)v.size();
    double ss = 0;
    for (float a : v) ss += (a - mean) * (a - mean);
    double std = std::sqrt(ss / (double)(v.size() - 1));
    check(std > 0 && std::isfinite(std), "latent_scale_factor: the latents have std ", std,
          " (a collapsed or broken autoencoder)");
    return 1.0 / std;
}

void save_latent_cache(const std::string& path, const LatentCache& c) {
    check(c.latents.defined() && c.labels.defined() && c.latents.size(0) == c.labels.size(0), path,
          ": latents and labels must have one row per image");
    nn::save_safetensors(
        path, {{"latents", c.latents}, {"labels", c.labels}},
        {{"latent_cache", "1"}, {"dataset", c.dataset}, {"split", c.split}, {"vae_digest", c.vae_digest}});
}

LatentCache load_latent_cache(const std::string& path) {
    std::map<std::string, std::string> meta;
    auto t = nn::load_safetensors(path, &meta);
    check(meta.count("latent_cache") && t.count("latents") && t.count("labels"), path,
          ": not a latent cache (no 'latents' / 'labels' tensors or 'latent_cache' metadata)");
    LatentCache c;
    c.latents = t["latents"];
    c.labels = t["labels"];
    c.dataset = meta["dataset"];
    c.split = meta["split"];
    c.vae_digest = meta["vae_digest"];
    check(c.latents.dim() == 4 && c.labels.dim() == 1 && c.labels.size(0) == c.latents.size(0) &&
              c.labels.dtype() == DType::Int64,
          path, ": latents ", c.latents.shape(), " and labels ", c.labels.shape(),
          " do not fit together (expected (N, c, h, w) float and (N) int64)");
    return c;
}

std::string file_digest(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    check(in.good(), path, ": cannot open");
    uint64_t h = 1469598103934665603ull;  // FNV-1a offset basis
    char buf[1 << 16];
    while (in) {
        in.read(buf, sizeof buf);
        for (std::streamsize i = 0; i < in.gcount(); ++i) {
            h ^= (unsigned char)buf[i];
            h *= 1099511628211ull;  // FNV prime
        }
    }
    char hex[17];
    std::snprintf(hex, sizeof hex, "%016llx", (unsigned long long)h);
    return hex;
}

LatentCache cached_latents(VAE& vae, const std::string& vae_file, const Dataset& data, const std::string& cache_dir) {
    std::string digest = file_digest(vae_file);
    std::string path = cache_dir + "/" + data.name + "-" + data.split + ".safetensors";
    if (fs::exists(path)) {
        try {
            LatentCache c = load_latent_cache(path);
            if (c.vae_digest == digest && c.dataset == data.name && c.split == data.split &&
                c.latents.size(0) == data.size()) {
                std::printf("latents: %lld cached codes %s from %s\n", (long long)c.latents.size(0),
                            shape_str(Shape(c.latents.shape().begin() + 1, c.latents.shape().end())).c_str(),
                            path.c_str());
                return c;
            }
            std::printf("latents: %s was made from other weights or data; encoding again\n", path.c_str());
        } catch (const Error& e) {
            std::printf("latents: ignoring a broken cache (%s); encoding again\n", e.what());
        }
    }
    std::printf("latents: encoding %lld %s images with the autoencoder (once; cached in %s)\n", (long long)data.size(),
                data.name.c_str(), path.c_str());
    LatentCache c;
    c.latents = encode_latents(vae, data.images);
    c.labels = data.labels;
    c.dataset = data.name;
    c.split = data.split;
    c.vae_digest = digest;
    std::error_code ec;
    fs::create_directories(cache_dir, ec);
    try {
        save_latent_cache(path, c);  // a cache that cannot be written costs time, not the run
    } catch (const Error& e) {
        std::printf("latents: could not write the cache (%s); continuing without it\n", e.what());
    }
    return c;
}

Dataset latent_dataset(const Dataset& data, const LatentCache& cache, double scale) {
    check(cache.latents.size(0) == data.size(), "latent_dataset: ", cache.latents.size(0), " latents for ", data.size(),
          " images");
    Dataset d = data;
    d.images = cache.latents * (float)scale;  // unit variance, what the forward process assumes
    d.labels = cache.labels;
    return d;
}

}  // namespace td::diffusion
