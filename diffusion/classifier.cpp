// diffusion/classifier.cpp
#include "diffusion/classifier.h"

#include <Eigen/Dense>
#include <cmath>

#include "autograd/node.h"
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td::diffusion {

Classifier::Classifier(const ClassifierConfig& c, Generator& gen) : cfg(c) {
    check(c.image_size % 4 == 0, "Classifier: image size ", c.image_size, " must be divisible by 4");
    int64_t w = c.width;
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(c.in_channels, w, 3, 1, 1, 1, true, gen));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(w, 2 * w, 3, 1, 1, 1, true, gen));
    norm2 = register_module("norm2", std::make_shared<nn::GroupNorm>(8, 2 * w));
    int64_t side = c.image_size / 4;
    fc = register_module("fc", std::make_shared<nn::Linear>(2 * w * side * side, 4 * w, true, gen));
    head = register_module("head", std::make_shared<nn::Linear>(4 * w, c.num_classes, true, gen));
}

Tensor Classifier::features(const Tensor& x) {
    check(x.dim() == 4 && x.size(1) == cfg.in_channels && x.size(2) == cfg.image_size && x.size(3) == cfg.image_size,
          "Classifier: expected images (N, ", cfg.in_channels, ", ", cfg.image_size, ", ", cfg.image_size, "), got ",
          shape_str(x.shape()));
    Tensor h = avg_pool2d(silu(conv1->forward(x)), 2);                   // (N, w, H/2, W/2)
    h = avg_pool2d(silu(norm2->forward(conv2->forward(h))), 2);          // (N, 2w, H/4, W/4)
    return silu(fc->forward(h.reshape({h.size(0), -1})));                // (N, 4w)
}

Tensor Classifier::forward(const Tensor& x) { return head->forward(features(x)); }

void classify(Classifier& model, const Tensor& images, Tensor& logits, Tensor& features, int64_t batch) {
    NoGradGuard no_grad;
    bool was_training = model.is_training();
    model.eval();
    std::vector<Tensor> ls, fs;
    for (int64_t i = 0; i < images.size(0); i += batch) {
        Tensor x = images.narrow(0, i, std::min(batch, images.size(0) - i));
        Tensor f = model.features(x);
        fs.push_back(f);
        ls.push_back(model.head->forward(f));
    }
    model.train(was_training);
    logits = cat(ls, 0);
    features = cat(fs, 0);
}

// Mean (D) and covariance (D, D) of the rows of feats, in double.
static void gaussian_fit(const Tensor& feats, Eigen::VectorXd& mu, Eigen::MatrixXd& cov) {
    check(feats.dim() == 2 && feats.size(0) >= 2, "frechet_distance: need (N >= 2, D) features, got ",
          shape_str(feats.shape()));
    int64_t N = feats.size(0), D = feats.size(1);
    std::vector<float> v = feats.to_vector();
    Eigen::MatrixXd X(N, D);
    for (int64_t i = 0; i < N; ++i)
        for (int64_t j = 0; j < D; ++j) X(i, j) = v[i * D + j];
    mu = X.colwise().mean();
    Eigen::MatrixXd C = X.rowwise() - mu.transpose();
    cov = (C.transpose() * C) / double(N - 1);
}

double frechet_distance(const Tensor& f1, const Tensor& f2) {
    check(f1.size(1) == f2.size(1), "frechet_distance: feature widths differ (", f1.size(1), " vs ", f2.size(1), ")");
    Eigen::VectorXd mu1, mu2;
    Eigen::MatrixXd s1, s2;
    gaussian_fit(f1, mu1, s1);
    gaussian_fit(f2, mu2, s2);
    // Tr (S1 S2)^{1/2} = Tr (S1^{1/2} S2 S1^{1/2})^{1/2}: the latter is symmetric PSD, so
    // its square root's trace is the sum of the square roots of its eigenvalues.
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> e1(s1);
    Eigen::VectorXd l1 = e1.eigenvalues().cwiseMax(0.0).cwiseSqrt();
    Eigen::MatrixXd sqrt_s1 = e1.eigenvectors() * l1.asDiagonal() * e1.eigenvectors().transpose();
    Eigen::MatrixXd m = sqrt_s1 * s2 * sqrt_s1;
    Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> em(0.5 * (m + m.transpose()));
    double tr_sqrt = em.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
    return (mu1 - mu2).squaredNorm() + s1.trace() + s2.trace() - 2.0 * tr_sqrt;
}

SampleStats sample_stats(const Tensor& logits, const Tensor& features, const Tensor& reference_features) {
    SampleStats s;
    Tensor p = softmax(logits.detach(), 1);
    int64_t N = p.size(0), C = p.size(1);
    std::vector<float> pv = p.to_vector();
    s.n = N;
    s.histogram.assign(C, 0);
    for (int64_t i = 0; i < N; ++i) {
        int64_t best = 0;
        for (int64_t c = 1; c < C; ++c)
            if (pv[i * C + c] > pv[i * C + best]) best = c;
        s.mean_confidence += pv[i * C + best] / N;
        s.share_confident += (pv[i * C + best] > 0.9f ? 1.0 : 0.0) / N;
        s.histogram[best]++;
    }
    for (int64_t c = 0; c < C; ++c)
        if (s.histogram[c] > 0) {
            double q = (double)s.histogram[c] / N;
            s.class_entropy -= q * std::log(q);
        }
    if (reference_features.defined()) s.frechet = frechet_distance(features, reference_features);
    return s;
}

}  // namespace td::diffusion
