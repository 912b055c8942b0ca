// tools/eval.cpp: `diffuse eval --classifier runs/NAME --samples X.npy`: how a set of
// images looks to a classifier trained on the real data (diffusion/classifier.h):
// mean confidence, share of confident images, the class histogram and its entropy, and
// the Fréchet distance between the classifier's penultimate features of the samples
// and of the held-out real images (our "classifier FID": comparable between runs that
// use the same classifier, not with Inception FIDs). With a classifier that has a reject
// class (the default of `diffuse train classifier`) it also says how many images are
// "not an image of this data set", and no such image counts as recognisable.
// `--reference real|noise|blur` judges held-out real images, uniform noise or blurred
// held-out images instead: the reference rows of a quality table. `--json` prints the
// same figures as one JSON object, for scripts (bench/run_quality.sh reads it).
// `--loss-per-t runs/NAME` instead measures a diffusion run's loss per timestep
// (tools/ddpm_figures.h).
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "diffusion/classifier.h"
#include "diffusion/data/dataset.h"
#include "diffusion/metadata.h"
#include "nn/safetensors.h"
#include "td.h"
#include "tools/args.h"
#include "tools/ddpm_figures.h"
#include "tools/progress.h"      // fmt
#include "tools/training_run.h"  // file_in_run

namespace td::cli {

namespace {

using diffusion::meta_or;

// X.npy, checked against the classifier: float32 (N >= 2, C, H, W), finite, ideally in [0, 1].
Tensor load_samples(const std::string& path, const diffusion::ClassifierConfig& cfg) {
    Tensor x = load_npy(path);
    check(x.dtype() == DType::Float32 && x.dim() == 4 && x.size(1) == cfg.in_channels && x.size(2) == cfg.image_size &&
              x.size(3) == cfg.image_size,
          path, ": expected float32 images [N, ", cfg.in_channels, ", ", cfg.image_size, ", ", cfg.image_size,
          "] for this classifier, got ", dtype_name(x.dtype()), " ", x.shape());
    check(x.size(0) >= 2, path, ": need at least 2 images, got ", x.size(0));
    float lo = -max(neg(x)).item(), hi = max(x).item();
    check(std::isfinite(lo) && std::isfinite(hi), path, ": holds NaN or infinite values");
    if (lo < -0.01f || hi > 1.01f)
        std::fprintf(stderr, "diffuse eval: warning: %s has values in [%g, %g], expected [0, 1]\n", path.c_str(), lo,
                     hi);
    return x;
}

// What the reject class means, in words: "an MNIST digit", "an image of bars", ...
std::string what_it_judges(const std::string& data) {
    if (data == "mnist") return "an MNIST digit";
    if (data.rfind("fashion", 0) == 0) return "a Fashion-MNIST image";
    if (data.rfind("cifar", 0) == 0) return "a CIFAR-10 image";
    std::string leaf = std::filesystem::path(data).filename().string();
    return "an image of " + (leaf.empty() ? data : leaf);
}

// What --reference judges, in words, for the "images:" line.
std::string reference_description(diffusion::Reference kind) {
    if (kind == diffusion::Reference::Real) return "held-out real images, random subset, seed 0";
    if (kind == diffusion::Reference::Noise) return "uniform noise in [0, 1], seed 0";
    return "the 'real' images, Gaussian blur sigma 1.5 px";
}

void print_stats(const diffusion::SampleStats& s, const std::string& source, const std::string& weights,
                 const std::map<std::string, std::string>& meta, int64_t reference_count) {
    std::string data = meta_or(meta, "data", "?");
    std::printf("images:               %lld from %s\n", (long long)s.n, source.c_str());
    std::printf("classifier:           %s (%s, held-out accuracy %s, %s)\n", weights.c_str(), data.c_str(),
                meta_or(meta, "held_out_accuracy", "?").c_str(), s.has_reject ? "reject class" : "no reject class");
    std::printf("mean confidence:      %.4f\n", s.mean_confidence);
    std::printf("confidence > 0.9:     %.2f%% (recognisable)\n", 100.0 * s.share_confident);
    if (s.has_reject)
        std::printf("rejected:             %.2f%% (%lld of %lld judged not %s)\n", 100.0 * s.share_rejected,
                    (long long)s.rejected, (long long)s.n, what_it_judges(data).c_str());
    else
        std::printf(
            "rejected:             n/a (this classifier has no reject class; train one with --reject-class 1)\n");
    std::printf("class histogram:     ");
    for (int64_t c : s.histogram) std::printf(" %lld", (long long)c);
    std::printf("%s\n", s.has_reject ? "  (most likely real class of every image, rejected ones too)" : "");
    std::printf("class entropy:        %.4f nats (uniform over %zu classes: %.4f)\n", s.class_entropy,
                s.histogram.size(), std::log((double)s.histogram.size()));
    std::printf("classifier FID:       %.4f (Fréchet distance of penultimate features to %lld held-out images)\n",
                s.frechet, (long long)reference_count);
}

// The figures of print_stats as one JSON object, one key per line. Shares are fractions
// in [0, 1], not percentages; what does not apply (no reject class, no --labels) is null.
// `as_requested` < 0: no --labels.
// (strings through nn::json_quote, which writes the safetensors headers: paths may hold
// quotes, backslashes or control bytes)
void print_json(const diffusion::SampleStats& s, const std::string& source, const std::string& weights,
                const std::map<std::string, std::string>& meta, int64_t reference_count, double as_requested) {
    auto number = [](double x) { return fmt("%.17g", x); };
    std::string histogram;
    for (int64_t c : s.histogram) histogram += (histogram.empty() ? "" : ", ") + std::to_string(c);
    std::printf("{\n");
    std::printf("  \"images\": %lld,\n", (long long)s.n);
    std::printf("  \"source\": %s,\n", nn::json_quote(source).c_str());
    std::printf("  \"classifier\": %s,\n", nn::json_quote(weights).c_str());
    std::printf("  \"data\": %s,\n", nn::json_quote(meta_or(meta, "data", "?")).c_str());
    std::printf("  \"mean_confidence\": %s,\n", number(s.mean_confidence).c_str());
    std::printf("  \"recognisable\": %s,\n", number(s.share_confident).c_str());
    std::printf("  \"rejected\": %s,\n", s.has_reject ? number(s.share_rejected).c_str() : "null");
    std::printf("  \"class_histogram\": [%s],\n", histogram.c_str());
    std::printf("  \"class_entropy\": %s,\n", number(s.class_entropy).c_str());
    std::printf("  \"max_class_entropy\": %s,\n", number(std::log((double)s.histogram.size())).c_str());
    std::printf("  \"classifier_fid\": %s,\n", number(s.frechet).c_str());
    std::printf("  \"reference_images\": %lld,\n", (long long)reference_count);
    std::printf("  \"as_requested\": %s\n", as_requested >= 0 ? number(as_requested).c_str() : "null");
    std::printf("}\n");
}

}  // namespace

int eval(int argc, char** argv, int first) {
    Args args(
        "diffuse eval --classifier runs/NAME (--samples X.npy | --reference real|noise|blur) [options]\n"
        "       diffuse eval --loss-per-t runs/NAME [--out DIR]",
        "Judges images with a classifier trained by `diffuse train classifier`. X.npy holds\n"
        "float32 images [N, C, H, W] with pixel values in [0, 1] (what `diffuse sample --out\n"
        "X.npy` writes). Reports the mean confidence and the share of images the classifier\n"
        "is more than 90% sure of (recognisable), the share it judges 'not an image of this\n"
        "data set' (classifiers with a reject class), the class histogram and its entropy,\n"
        "and the classifier FID against the held-out images.\n\n"
        "--reference judges, instead of samples, the reference rows of a quality table:\n"
        "  real   --count held-out real images, a random subset (seed 0) of the held-out set\n"
        "  noise  --count images of uniform noise in [0, 1] (seed 0)\n"
        "  blur   the same held-out images as 'real', Gaussian-blurred (sigma 1.5 pixels)\n"
        "The held-out features of the classifier FID include those real images, so 'real'\n"
        "is the floor the FID of samples can be compared with.");
    args.option("classifier", "", "the classifier's run folder (or its classifier.safetensors)");
    args.option("samples", "", "the images to judge, .npy [N, C, H, W] in [0, 1]");
    args.option("reference", "", "judge a reference set instead: real, noise or blur (see above)");
    args.option("labels", "",
                "the class each sample was asked for, .npy int64 [N] (`diffuse sample --class all`\n"
                "writes X.labels.npy): reports the share classified as that class");
    args.option("count", "1000", "images in a --reference set (at most the held-out set's size)");
    args.option("data-dir", "",
                "where the classifier's data set is, if not data/<name>/ (for the reference; with\n"
                "--loss-per-t: the model's)");
    args.flag("json", "print the figures as one JSON object (shares as fractions in [0, 1]) instead of text");
    args.option("loss-per-t", "",
                "instead of judging images: a diffusion run's loss per timestep on held-out images\n"
                "(runs/NAME of `train ddpm|ldm`), written as loss_per_t.png and loss_per_t.csv");
    args.option("out", "", "--loss-per-t: the folder to write them into (default: the run folder)");
    if (!args.parse_or_help(argc, argv, first)) return 0;
    if (std::string run = args.str("loss-per-t"); !run.empty()) {
        if (args.given("classifier") || args.given("samples") || args.given("reference"))
            throw ArgError("--loss-per-t measures a diffusion run: it takes no --classifier, --samples or --reference");
        std::string out = args.str("out").empty() ? run : args.str("out");
        if (!std::filesystem::is_directory(run) && args.str("out").empty())
            out = std::filesystem::path(run).parent_path().string();  // beside the weights file
        loss_per_t_of_run(run, out.empty() ? "." : out, args.str("data-dir"));
        return 0;
    }
    std::string run = args.str("classifier"), samples_path = args.str("samples");
    bool judge_reference = !args.str("reference").empty();
    if (run.empty() || samples_path.empty() == !judge_reference)
        throw ArgError("--classifier and one of --samples or --reference are required");
    diffusion::Reference reference =
        judge_reference ? args.choice("reference", diffusion::parse_reference) : diffusion::Reference::Real;
    int64_t count = args.integer("count");
    if (count < 2) throw ArgError("--count must be >= 2");
    std::string weights = file_in_run(run, "classifier.safetensors");
    std::string folder = std::filesystem::path(weights).parent_path().string();
    if (folder.empty()) folder = ".";

    std::map<std::string, std::string> meta;
    std::unique_ptr<diffusion::Classifier> model = diffusion::load_classifier(weights, &meta);
    diffusion::DataOptions dopt;
    dopt.data_dir = args.str("data-dir");
    std::string data = meta_or(meta, "data", "mnist");
    auto held_out = [&] { return diffusion::load_dataset(data, "test", dopt); };

    Tensor x;
    std::string source = samples_path;
    if (!judge_reference) {
        x = load_samples(samples_path, model->cfg);
    } else {
        x = diffusion::reference_images(reference, held_out().images, count);
        source = "reference '" + diffusion::reference_name(reference) + "' (" + reference_description(reference) + ")";
    }

    // the reference features: held-out features saved by training, or computed from the data set now
    Tensor ref;
    std::string ref_path = folder + "/reference_features.npy";
    if (std::filesystem::exists(ref_path)) {
        ref = load_npy(ref_path);
    } else {
        Tensor l;
        diffusion::classify(*model, held_out().images, l, ref);
    }

    Tensor logits, feats;
    diffusion::classify(*model, x * 2.0f - 1.0f, logits, feats);  // [0, 1] -> the model's [-1, 1]
    diffusion::SampleStats s = diffusion::sample_stats(logits, feats, ref, model->cfg.reject_class);
    int64_t hits = 0, asked_for = 0;  // --labels: samples classified as the class they were drawn for
    if (!args.str("labels").empty()) {
        // conditional samples: did the model draw what it was asked for? A rejected
        // image (the classifier's extra class) counts as a miss.
        std::string lp = args.str("labels");
        Tensor want = load_npy(lp);
        check(want.dtype() == DType::Int64 && want.dim() == 1 && want.size(0) == x.size(0), lp,
              ": expected int64 labels [", x.size(0), "] (one per sample), got ", dtype_name(want.dtype()), " ",
              want.shape());
        std::vector<int64_t> got = argmax(logits, 1).to_vector_i64(), asked = want.to_vector_i64();
        for (size_t i = 0; i < got.size(); ++i) hits += got[i] == asked[i];
        asked_for = (int64_t)got.size();
    }
    double as_requested = asked_for > 0 ? (double)hits / (double)asked_for : -1.0;
    if (args.on("json")) {
        print_json(s, source, weights, meta, ref.size(0), as_requested);
        return 0;
    }
    print_stats(s, source, weights, meta, ref.size(0));
    if (asked_for > 0)
        std::printf("as requested:         %.2f%% (%lld of %lld classified as the class they were drawn for)\n",
                    100.0 * as_requested, (long long)hits, (long long)asked_for);
    return 0;
}

}  // namespace td::cli
