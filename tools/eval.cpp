// tools/eval.cpp: `diffuse eval --classifier runs/NAME --samples X.npy`: how a set of
// images looks to a classifier trained on the real data (diffusion/classifier.h):
// mean confidence, share of confident images, the class histogram and its entropy, and
// the Fréchet distance between the classifier's penultimate features of the samples
// and of the held-out real images (our "classifier FID": comparable between runs that
// use the same classifier, not with Inception FIDs).
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "diffusion/classifier.h"
#include "diffusion/data/dataset.h"
#include "nn/safetensors.h"
#include "td.h"
#include "tools/args.h"

namespace td::cli {

namespace {

int64_t meta_int(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& path) {
    auto it = meta.find(key);
    check(it != meta.end(), path, ": metadata has no '", key, "' (not a classifier written by diffuse train classifier?)");
    try {
        size_t used = 0;
        int64_t v = std::stoll(it->second, &used);
        check(used == it->second.size() && v > 0, path, ": metadata '", key, "' = '", it->second, "' is not a positive integer");
        return v;
    } catch (const std::logic_error&) {
        fail(path, ": metadata '", key, "' = '", it->second, "' is not an integer");
    }
}

}  // namespace

int eval(int argc, char** argv, int first) {
    Args args("diffuse eval --classifier runs/NAME --samples X.npy [options]",
              "Judges images with a classifier trained by `diffuse train classifier`. X.npy holds\n"
              "float32 images [N, C, H, W] with pixel values in [0, 1] (what `diffuse sample --out\n"
              "X.npy` writes).");
    args.option("classifier", "", "the classifier's run folder (or its classifier.safetensors)");
    args.option("samples", "", "the images to judge, .npy [N, C, H, W] in [0, 1]");
    args.option("data-dir", "", "where the classifier's data set is, if not data/<name>/ (for the reference)");
    if (!args.parse(argc, argv, first)) { std::printf("%s", args.help().c_str()); return 0; }
    std::string run = args.str("classifier"), samples_path = args.str("samples");
    if (run.empty() || samples_path.empty()) throw ArgError("--classifier and --samples are both required");
    std::string weights = std::filesystem::is_directory(run) ? run + "/classifier.safetensors" : run;
    std::string folder = std::filesystem::path(weights).parent_path().string();
    if (folder.empty()) folder = ".";

    std::map<std::string, std::string> meta;
    std::map<std::string, Tensor> state = nn::load_safetensors(weights, &meta);
    diffusion::ClassifierConfig cfg;
    cfg.in_channels = meta_int(meta, "in_channels", weights);
    cfg.image_size = meta_int(meta, "image_size", weights);
    cfg.num_classes = meta_int(meta, "num_classes", weights);
    cfg.width = meta_int(meta, "width", weights);
    Generator gen(0);
    diffusion::Classifier model(cfg, gen);
    model.load_state_dict(state);

    Tensor x = load_npy(samples_path);
    check(x.dtype() == DType::Float32 && x.dim() == 4 && x.size(1) == cfg.in_channels &&
              x.size(2) == cfg.image_size && x.size(3) == cfg.image_size,
          samples_path, ": expected float32 images [N, ", cfg.in_channels, ", ", cfg.image_size, ", ", cfg.image_size,
          "] for this classifier, got ", dtype_name(x.dtype()), " ", shape_str(x.shape()));
    check(x.size(0) >= 2, samples_path, ": need at least 2 images, got ", x.size(0));
    float lo = -max(neg(x)).item(), hi = max(x).item();
    check(std::isfinite(lo) && std::isfinite(hi), samples_path, ": holds NaN or infinite values");
    if (lo < -0.01f || hi > 1.01f)
        std::fprintf(stderr, "diffuse eval: warning: %s has values in [%g, %g], expected [0, 1]\n",
                     samples_path.c_str(), lo, hi);

    // the reference: held-out features saved by training, or computed from the data set now
    Tensor ref;
    std::string ref_path = folder + "/reference_features.npy";
    if (std::filesystem::exists(ref_path)) {
        ref = load_npy(ref_path);
    } else {
        diffusion::DataOptions dopt;
        dopt.data_dir = args.str("data-dir");
        diffusion::Dataset test = diffusion::load_dataset(meta.count("data") ? meta["data"] : "mnist", "test", dopt);
        Tensor l;
        diffusion::classify(model, test.images, l, ref);
    }

    Tensor logits, feats;
    diffusion::classify(model, x * 2.0f - 1.0f, logits, feats);  // [0, 1] -> the model's [-1, 1]
    diffusion::SampleStats s = diffusion::sample_stats(logits, feats, ref);
    std::printf("images:               %lld from %s\n", (long long)s.n, samples_path.c_str());
    std::printf("classifier:           %s (%s, held-out accuracy %s)\n", weights.c_str(),
                meta.count("data") ? meta["data"].c_str() : "?",
                meta.count("held_out_accuracy") ? meta["held_out_accuracy"].c_str() : "?");
    std::printf("mean confidence:      %.4f\n", s.mean_confidence);
    std::printf("confidence > 0.9:     %.2f%%\n", 100.0 * s.share_confident);
    std::printf("class histogram:     ");
    for (int64_t c : s.histogram) std::printf(" %lld", (long long)c);
    std::printf("\nclass entropy:        %.4f nats (uniform over %zu classes: %.4f)\n", s.class_entropy,
                s.histogram.size(), std::log((double)s.histogram.size()));
    std::printf("classifier FID:       %.4f (Fréchet distance of penultimate features to %lld held-out images)\n",
                s.frechet, (long long)ref.size(0));
    return 0;
}

}  // namespace td::cli
