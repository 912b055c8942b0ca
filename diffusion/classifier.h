// diffusion/classifier.h: a small CNN classifier for 28x28 (or 32x32) images, and the
// sample-quality statistics we compute with it.
//
// Why our own classifier: Inception-v3 FID needs 299x299 RGB ImageNet features, which
// mean nothing for 1-channel 28x28 digits (and no pretrained network can be fetched
// here). So, like the MNIST diffusion literature that reports anything at all, we train
// a classifier on the data set itself and measure samples with it: its confidence, the
// spread of classes it sees, and a Fréchet distance between its penultimate features
// of generated and real images -- the "classifier FID". Numbers are comparable between
// runs that use the same classifier, not with published Inception FIDs.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/conv.h"
#include "nn/layers.h"
#include "nn/linear.h"
#include "nn/norm.h"

namespace td::diffusion {

struct ClassifierConfig {
    int64_t in_channels = 1, image_size = 28, num_classes = 10, width = 32;
    // One more output, index num_classes: "not an image of this data set". Off by
    // default here so that a classifier file without the key loads as it was written;
    // `diffuse train classifier` turns it on (--reject-class 1).
    bool reject_class = false;
    int64_t outputs() const { return num_classes + (reject_class ? 1 : 0); }
};

// conv3x3(C -> w) SiLU pool2 | conv3x3(w -> 2w) GN SiLU pool2 | flatten
// | Linear(2w * (S/4)^2 -> 4w) SiLU -> features (4w) | Linear(4w -> outputs)
class Classifier : public nn::Module {
public:
    explicit Classifier(const ClassifierConfig& cfg, Generator& gen);
    Tensor features(const Tensor& x);  // x: (N, C, H, W) in [-1, 1] -> (N, 4w), the penultimate layer
    Tensor forward(const Tensor& x);   // -> logits (N, outputs): num_classes (+ 1 for the reject class)
    std::string name() const override { return "Classifier"; }
    ClassifierConfig cfg;
    std::shared_ptr<nn::Conv2d> conv1, conv2;
    std::shared_ptr<nn::GroupNorm> norm2;
    std::shared_ptr<nn::Linear> fc, head;
};

// Fréchet distance between two Gaussians fitted to feature sets (Heusel et al. 2017):
//   d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})
// feats: (N, D) each, N >= 2.
double frechet_distance(const Tensor& feats1, const Tensor& feats2);

// Why a reject class: a plain softmax over the 10 digits must spread all its mass over
// digits, and a network that has only ever seen digits is often sure of itself on
// uniform noise. Such a meter calls garbage "a confident 8". So the classifier gets one
// more output, "not an image of this data set" (index num_classes), trained on
// synthetic negatives mixed into every batch (make_negatives below). The negatives are
// all far from anything a sampler should be rewarded for -- noise, blank pages, smooth
// blobs, a digit drowned in noise -- and never merely degraded real images (blurred,
// faint, thicker, slightly grainy): an imperfect but readable DDPM sample should be
// judged as the digit it is, not rejected for its imperfection.
//
// What is not among the negatives, and why: two real images of different classes. Tried
// on MNIST (4 epochs each, 1,000 held-out digits): 50/50 blends are faint, ghostly
// strokes, and the reject class learnt "faint = junk": it rejected all blurred digits
// (sigma 1.5) and 65% of digits at 70% brightness (still 92% and 2% when the real digits
// were also trained at random brightness; 0% and 0% without blends). Overlays
// (the brighter pixel of the two) taught "extra ink = junk" instead: 60% of digits
// thickened by one pixel rejected, 65% of digits under light noise (sigma 0.2). Without
// pairs the classifier judges such degraded digits as the plain classifier does (same
// share recognisable within a few points) and still rejects all uniform noise.
// Ambiguous, digit-like junk needs no reject class: its confidence is spread over classes.
//
// ---- synthetic negatives: what the reject class learns from --------------------------------
// Each generator returns `n` images shaped like `like` (any (N, C, H, W)) with values in
// [-1, 1], the model's input range, and draws everything from `gen` (deterministic).

// Every pixel uniform in [-1, 1]: what `diffuse eval --reference noise` measures.
Tensor uniform_noise(int64_t n, const Shape& like, Generator& gen);
// Gaussian noise around a random grey level (mean in [-0.5, 0.5], std in [0.25, 1]), clipped.
Tensor gaussian_noise(int64_t n, const Shape& like, Generator& gen);
// A flat background (black half the time) with 2% to 30% of the pixels set to black or white.
Tensor salt_and_pepper(int64_t n, const Shape& like, Generator& gen);
// Smooth random fields: a coarse 2x2 to 6x6 grid of random levels, bilinearly upsampled
// and softly saturated (tanh): large shapeless blobs with no strokes.
Tensor smooth_blobs(int64_t n, const Shape& like, Generator& gen);
// Flat images of one random level per channel; black (-1) half the time, the blank
// page a collapsed sampler produces.
Tensor constant_images(int64_t n, const Shape& like, Generator& gen);
// Real images under heavy Gaussian noise (std in [1, 2], clipped): the shape is barely
// there. Only heavy noise: a slightly grainy sample must still count as a digit.
Tensor drowned_images(int64_t n, const Tensor& real, Generator& gen);

// The mix trained on: n negatives, each of a kind drawn uniformly from the six above.
// real: a batch of real images (B >= 2, C, H, W) to drown. -> (n, C, H, W) in [-1, 1]
Tensor make_negatives(int64_t n, const Tensor& real, Generator& gen);

// ---- judging a set of images ----------------------------------------------------------------

// What `diffuse eval` reports about a set of images. With a reject class, every
// probability comes from the full softmax over num_classes + 1 outputs, so an image the
// classifier calls junk has little probability left for any class and is never "confident".
struct SampleStats {
    int64_t n = 0;
    double mean_confidence = 0;      // mean over images of the top real-class probability
    double share_confident = 0;      // share of images whose top real-class probability > 0.9 ("recognisable")
    std::vector<int64_t> histogram;  // per real class: images whose most likely real class it is (rejected ones too)
    double class_entropy = 0;        // entropy (nats) of that histogram; log(10) = 2.303 is uniform
    bool has_reject = false;         // the logits have a reject column
    int64_t rejected = 0;            // images whose most likely output is the reject class
    double share_rejected = 0;       // rejected / n
    double frechet = -1;             // classifier FID against the reference set (-1: none given)
};

// Runs the classifier in batches (no grad, eval mode) and returns logits and features.
void classify(Classifier& model, const Tensor& images, Tensor& logits, Tensor& features, int64_t batch = 256);
// logits: (N, K) or, with reject_class, (N, K + 1) with the reject class last.
SampleStats sample_stats(const Tensor& logits, const Tensor& features, const Tensor& reference_features,
                         bool reject_class = false);

// ---- reference rows of the quality table --------------------------------------------------
// What `diffuse eval --reference real|noise|blur` judges instead of samples: `count`
// images in [0, 1] pixels (what a sampler writes), shaped like the held-out set.
//   real   held-out images, a random subset (Generator(seed); all of them if count >= N)
//   noise  uniform noise in [0, 1], from Generator(seed)
//   blur   the same held-out images as "real", Gaussian-blurred with sigma 1.5 pixels
// held_out: (N, C, H, W) in [-1, 1] (a Dataset's images). count is capped at N.
enum class Reference { Real, Noise, Blur };
Reference parse_reference(const std::string& name);  // "real", "noise", "blur"; td::Error listing them
std::string reference_name(Reference r);
Tensor reference_images(Reference kind, const Tensor& held_out, int64_t count, uint64_t seed = 0);
// Separable Gaussian blur of (N, C, H, W), radius ceil(3 sigma), edges repeated.
Tensor gaussian_blur(const Tensor& images, float sigma);

// A classifier written by `diffuse train classifier` (classifier.safetensors), rebuilt from
// the configuration in its file's metadata (in_channels, image_size, num_classes, width,
// reject_class) and put in eval mode. `meta`, when given, receives the whole metadata
// (the data set's name, the held-out accuracy). Errors name the file and the bad key.
std::unique_ptr<Classifier> load_classifier(const std::string& path,
                                            std::map<std::string, std::string>* meta = nullptr);

}  // namespace td::diffusion
