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
};

// conv3x3(C -> w) SiLU pool2 | conv3x3(w -> 2w) GN SiLU pool2 | flatten
// | Linear(2w * (S/4)^2 -> 4w) SiLU -> features (4w) | Linear(4w -> classes)
class Classifier : public nn::Module {
public:
    explicit Classifier(const ClassifierConfig& cfg, Generator& gen);
    Tensor features(const Tensor& x);  // x: (N, C, H, W) in [-1, 1] -> (N, 4w), the penultimate layer
    Tensor forward(const Tensor& x);   // -> logits (N, classes)
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

// What `diffuse eval` reports about a set of images.
struct SampleStats {
    int64_t n = 0;
    double mean_confidence = 0;    // mean over images of the top softmax probability
    double share_confident = 0;    // share of images whose top probability > 0.9
    std::vector<int64_t> histogram;  // predicted class counts
    double class_entropy = 0;      // entropy (nats) of the predicted-class histogram; log(10) = 2.303 is uniform
    double frechet = -1;           // classifier FID against the reference set (-1: none given)
};

// Runs the classifier in batches (no grad, eval mode) and returns logits and features.
void classify(Classifier& model, const Tensor& images, Tensor& logits, Tensor& features, int64_t batch = 256);
SampleStats sample_stats(const Tensor& logits, const Tensor& features, const Tensor& reference_features);

}  // namespace td::diffusion
