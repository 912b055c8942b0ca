// diffusion/classifier.cpp
#include "diffusion/classifier.h"

#include <Eigen/Dense>
#include <algorithm>
#include <cmath>
#include <functional>

#include "autograd/node.h"
#include "nn/safetensors.h"
#include "tensor/choice.h"
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace td::diffusion {

Classifier::Classifier(const ClassifierConfig& c, Generator& gen) : cfg(c) {
    check(c.image_size % 4 == 0, "Classifier: image size ", c.image_size, " must be divisible by 4");
    int64_t w = c.width;
    conv1 = register_module("conv1", std::make_shared<nn::Conv2d>(c.in_channels, w, 3, 1, 1, 1, true, gen));
    conv2 = register_module("conv2", std::make_shared<nn::Conv2d>(w, 2 * w, 3, 1, 1, 1, true, gen));
    norm2 = register_module("norm2", std::make_shared<nn::GroupNorm>(8, 2 * w));
    int64_t side = c.image_size / 4;
    fc = register_module("fc", std::make_shared<nn::Linear>(2 * w * side * side, 4 * w, true, gen));
    head = register_module("head", std::make_shared<nn::Linear>(4 * w, c.outputs(), true, gen));
}

Tensor Classifier::features(const Tensor& x) {
    check(x.dim() == 4 && x.size(1) == cfg.in_channels && x.size(2) == cfg.image_size && x.size(3) == cfg.image_size,
          "Classifier: expected images (N, ", cfg.in_channels, ", ", cfg.image_size, ", ", cfg.image_size, "), got ",
          x.shape());
    Tensor h = avg_pool2d(silu(conv1->forward(x)), 2);          // (N, w, H/2, W/2)
    h = avg_pool2d(norm2->forward_silu(conv2->forward(h)), 2);  // (N, 2w, H/4, W/4); SiLU(GroupNorm), one op
    return silu(fc->forward(h.reshape({h.size(0), -1})));       // (N, 4w)
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
    check(feats.dim() == 2 && feats.size(0) >= 2, "frechet_distance: need (N >= 2, D) features, got ", feats.shape());
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
    double d2 = (mu1 - mu2).squaredNorm() + s1.trace() + s2.trace() - 2.0 * tr_sqrt;
    return std::max(d2, 0.0);  // a distance; identical sets give tiny negative rounding errors
}

// Index of the largest of v[0..count).
static int64_t argmax_of(const float* v, int64_t count) { return std::max_element(v, v + count) - v; }

SampleStats sample_stats(const Tensor& logits, const Tensor& features, const Tensor& reference_features,
                         bool reject_class) {
    check(logits.dim() == 2 && logits.size(1) >= (reject_class ? 2 : 1), "sample_stats: expected logits (N, ",
          reject_class ? "K + 1" : "K", "), got ", logits.shape());
    SampleStats s;
    Tensor p = softmax(logits.detach(), 1);  // over every output, the reject class included
    int64_t N = p.size(0), C = p.size(1), K = reject_class ? C - 1 : C;
    std::vector<float> pv = p.to_vector();
    s.n = N;
    s.has_reject = reject_class;
    s.histogram.assign(K, 0);
    for (int64_t i = 0; i < N; ++i) {
        const float* pi = &pv[i * C];
        int64_t best = argmax_of(pi, K);  // the most likely real class, even for a rejected image
        s.mean_confidence += pi[best] / N;
        s.share_confident += (pi[best] > 0.9f ? 1.0 : 0.0) / N;
        s.histogram[best]++;
        if (reject_class && argmax_of(pi, C) == K) s.rejected++;
    }
    s.share_rejected = N > 0 ? (double)s.rejected / N : 0.0;
    for (int64_t c = 0; c < K; ++c)
        if (s.histogram[c] > 0) {
            double q = (double)s.histogram[c] / N;
            s.class_entropy -= q * std::log(q);
        }
    if (reference_features.defined()) s.frechet = frechet_distance(features, reference_features);
    return s;
}

// ---- synthetic negatives -----------------------------------------------------------------------

namespace {

// count uniforms in [lo, hi), as a vector to index per image.
std::vector<float> uniforms(int64_t count, Generator& gen, float lo = 0.0f, float hi = 1.0f) {
    return rand({count}, gen, lo, hi).to_vector();
}

Shape with_batch(int64_t n, const Shape& like) {
    check(like.size() == 4, "negatives: expected an image shape (N, C, H, W), got ", like);
    return {n, like[1], like[2], like[3]};
}

void check_real(const Tensor& real, const char* who) {
    check(real.dim() == 4 && real.size(0) >= 2, who, ": need real images (B >= 2, C, H, W), got ", real.shape());
}

}  // namespace

Tensor uniform_noise(int64_t n, const Shape& like, Generator& gen) {
    return rand(with_batch(n, like), gen, -1.0f, 1.0f);
}

Tensor gaussian_noise(int64_t n, const Shape& like, Generator& gen) {
    Shape shape = with_batch(n, like);
    std::vector<float> mean = uniforms(n, gen, -0.5f, 0.5f), sd = uniforms(n, gen, 0.25f, 1.0f);
    Tensor z = randn(shape, gen);  // contiguous
    float* v = z.data_f32();
    int64_t per = z.numel() / std::max<int64_t>(n, 1);
    for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < per; ++j) v[i * per + j] = std::clamp(mean[i] + sd[i] * v[i * per + j], -1.0f, 1.0f);
    return z;
}

Tensor salt_and_pepper(int64_t n, const Shape& like, Generator& gen) {
    Shape shape = with_batch(n, like);
    std::vector<float> bg = uniforms(n, gen, -1.0f, 1.0f), black = uniforms(n, gen),
                       density = uniforms(n, gen, 0.02f, 0.3f);
    Tensor u = rand(shape, gen);  // per pixel: below density -> a dot, whose colour the rest of u decides
    float* v = u.data_f32();
    int64_t per = u.numel() / std::max<int64_t>(n, 1);
    for (int64_t i = 0; i < n; ++i) {
        float flat = black[i] < 0.5f ? -1.0f : bg[i];
        for (int64_t j = 0; j < per; ++j) {
            float r = v[i * per + j];
            v[i * per + j] = r >= density[i] ? flat : (r < 0.5f * density[i] ? -1.0f : 1.0f);
        }
    }
    return u;
}

Tensor smooth_blobs(int64_t n, const Shape& like, Generator& gen) {
    Shape shape = with_batch(n, like);
    int64_t C = shape[1], H = shape[2], W = shape[3];
    constexpr int64_t kMaxGrid = 6;
    std::vector<int64_t> grid = randint(kMaxGrid - 1, {n}, gen).to_vector_i64();  // + 2: 2..6 points a side
    std::vector<float> sharp = uniforms(n, gen, 1.0f, 3.0f);
    std::vector<float> level = uniforms(n * C * kMaxGrid * kMaxGrid, gen, -1.0f, 1.0f);
    Tensor out = Tensor::empty(shape);
    float* o = out.data_f32();
    for (int64_t i = 0; i < n; ++i) {
        int64_t g = grid[i] + 2;
        float k = sharp[i], norm = std::tanh(k);
        for (int64_t c = 0; c < C; ++c) {
            const float* L = &level[(i * C + c) * kMaxGrid * kMaxGrid];  // (g, g) used of (kMaxGrid, kMaxGrid)
            for (int64_t y = 0; y < H; ++y) {
                float gy = (float)y * (g - 1) / std::max<int64_t>(H - 1, 1);
                int64_t y0 = std::min<int64_t>((int64_t)gy, g - 2);
                float ty = gy - y0;
                for (int64_t x = 0; x < W; ++x) {
                    float gx = (float)x * (g - 1) / std::max<int64_t>(W - 1, 1);
                    int64_t x0 = std::min<int64_t>((int64_t)gx, g - 2);
                    float tx = gx - x0;
                    auto at = [&](int64_t a, int64_t b) { return L[a * kMaxGrid + b]; };
                    float top = (1 - tx) * at(y0, x0) + tx * at(y0, x0 + 1);
                    float bottom = (1 - tx) * at(y0 + 1, x0) + tx * at(y0 + 1, x0 + 1);
                    float v = (1 - ty) * top + ty * bottom;
                    o[((i * C + c) * H + y) * W + x] = std::tanh(k * v) / norm;  // |v| <= 1 -> in [-1, 1]
                }
            }
        }
    }
    return out;
}

Tensor constant_images(int64_t n, const Shape& like, Generator& gen) {
    Shape shape = with_batch(n, like);
    int64_t C = shape[1], HW = shape[2] * shape[3];
    std::vector<float> level = uniforms(n * C, gen, -1.0f, 1.0f), black = uniforms(n, gen);
    Tensor out = Tensor::empty(shape);
    float* o = out.data_f32();
    for (int64_t i = 0; i < n; ++i)
        for (int64_t c = 0; c < C; ++c)
            std::fill(o + (i * C + c) * HW, o + (i * C + c + 1) * HW, black[i] < 0.5f ? -1.0f : level[i * C + c]);
    return out;
}

Tensor drowned_images(int64_t n, const Tensor& real, Generator& gen) {
    check_real(real, "drowned_images");
    Tensor pick = randint(real.size(0), {n}, gen);
    std::vector<float> sd = uniforms(n, gen, 1.0f, 2.0f);
    Tensor noise = randn(with_batch(n, real.shape()), gen) * Tensor::from_vector(sd, {n, 1, 1, 1});
    return clamp(index_select(real, 0, pick) + noise, -1.0f, 1.0f).contiguous();
}

Tensor make_negatives(int64_t n, const Tensor& real, Generator& gen) {
    check_real(real, "make_negatives");
    constexpr int64_t kKinds = 6;
    std::vector<int64_t> kind = randint(kKinds, {n}, gen).to_vector_i64();
    int64_t count[kKinds] = {};
    for (int64_t k : kind) count[k]++;
    const Shape& like = real.shape();
    const std::function<Tensor(int64_t)> make[kKinds] = {[&](int64_t m) { return uniform_noise(m, like, gen); },
                                                         [&](int64_t m) { return gaussian_noise(m, like, gen); },
                                                         [&](int64_t m) { return salt_and_pepper(m, like, gen); },
                                                         [&](int64_t m) { return smooth_blobs(m, like, gen); },
                                                         [&](int64_t m) { return constant_images(m, like, gen); },
                                                         [&](int64_t m) { return drowned_images(m, real, gen); }};
    std::vector<Tensor> parts;  // grouped by kind: the order within a batch does not matter to the loss
    for (int64_t k = 0; k < kKinds; ++k)
        if (count[k] > 0) parts.push_back(make[k](count[k]));
    return parts.empty() ? Tensor::empty(with_batch(0, like)) : cat(parts, 0);
}

// ---- reference rows ------------------------------------------------------------------------------

Tensor gaussian_blur(const Tensor& images, float sigma) {
    check(images.dim() == 4 && sigma > 0, "gaussian_blur: need images (N, C, H, W) and sigma > 0, got ", images.shape(),
          " and ", sigma);
    int64_t r = (int64_t)std::ceil(3.0f * sigma);
    std::vector<float> k(2 * r + 1);
    float total = 0;
    for (int64_t d = -r; d <= r; ++d) total += k[d + r] = std::exp(-0.5f * d * d / (sigma * sigma));
    for (float& v : k) v /= total;
    int64_t P = images.size(0) * images.size(1), H = images.size(2), W = images.size(3);
    Tensor src = images.contiguous(), mid = Tensor::empty(images.shape()), out = Tensor::empty(images.shape());
    const float* s = src.data_f32();
    float* m = mid.data_f32();
    float* o = out.data_f32();
    auto clip = [](int64_t v, int64_t n) { return std::clamp<int64_t>(v, 0, n - 1); };  // repeat the edge
    for (int64_t p = 0; p < P; ++p)
        for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x) {
                float a = 0;
                for (int64_t d = -r; d <= r; ++d) a += k[d + r] * s[(p * H + y) * W + clip(x + d, W)];
                m[(p * H + y) * W + x] = a;
            }
    for (int64_t p = 0; p < P; ++p)
        for (int64_t y = 0; y < H; ++y)
            for (int64_t x = 0; x < W; ++x) {
                float a = 0;
                for (int64_t d = -r; d <= r; ++d) a += k[d + r] * m[(p * H + clip(y + d, H)) * W + x];
                o[(p * H + y) * W + x] = a;
            }
    return out;
}

// n distinct indices of [0, N), drawn by a partial Fisher-Yates shuffle, in increasing
// order. Random rather than evenly spaced: a held-out set stored in a periodic class order
// (0, 1, 2, ... 0, 1, 2, ...) would otherwise give a subset of a few classes only.
static std::vector<int64_t> random_subset(int64_t N, int64_t n, uint64_t seed) {
    std::vector<int64_t> idx(N);
    for (int64_t i = 0; i < N; ++i) idx[i] = i;
    Generator gen(seed);
    for (int64_t i = 0; i < n && n < N; ++i) {
        int64_t j = i + randint(N - i, {1}, gen).to_vector_i64()[0];
        std::swap(idx[i], idx[j]);
    }
    idx.resize(n);
    std::sort(idx.begin(), idx.end());
    return idx;
}

const Choice<Reference> kReferences[] = {
    {"real", Reference::Real}, {"noise", Reference::Noise}, {"blur", Reference::Blur}};

Reference parse_reference(const std::string& name) { return parse_choice(name, kReferences, "reference"); }
std::string reference_name(Reference r) { return choice_name(r, kReferences); }

Tensor reference_images(Reference kind, const Tensor& held_out, int64_t count, uint64_t seed) {
    check(held_out.dim() == 4 && held_out.size(0) >= 1 && count >= 1,
          "reference_images: need held-out images (N >= 1, C, H, W) and count >= 1, got ", held_out.shape(), " and ",
          count);
    int64_t N = held_out.size(0), n = std::min(count, N);
    if (kind == Reference::Noise) {
        Generator gen(seed);
        return rand(with_batch(n, held_out.shape()), gen);
    }
    std::vector<int64_t> idx = random_subset(N, n, seed);
    Tensor real = (index_select(held_out, 0, Tensor::from_vector_i64(idx, {n})) + 1.0f) * 0.5f;  // -> [0, 1]
    return kind == Reference::Blur ? gaussian_blur(real, 1.5f) : real.contiguous();
}

// ---- loading a trained classifier ---------------------------------------------------------

namespace {

int64_t meta_int(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& path) {
    auto it = meta.find(key);
    check(it != meta.end(), path, ": metadata has no '", key,
          "' (not a classifier written by diffuse train classifier?)");
    try {
        size_t used = 0;
        int64_t v = std::stoll(it->second, &used);
        check(used == it->second.size() && v > 0, path, ": metadata '", key, "' = '", it->second,
              "' is not a positive integer");
        return v;
    } catch (const std::logic_error&) {
        fail(path, ": metadata '", key, "' = '", it->second, "' is not an integer");
    }
}

// Whether the classifier has a reject class. Files written before the switch existed have
// no key: they are plain classifiers.
bool meta_reject_class(const std::map<std::string, std::string>& meta, const std::string& path) {
    auto it = meta.find("reject_class");
    if (it == meta.end()) return false;
    check(it->second == "0" || it->second == "1", path, ": metadata 'reject_class' = '", it->second, "' is not 0 or 1");
    return it->second == "1";
}

}  // namespace

std::unique_ptr<Classifier> load_classifier(const std::string& path, std::map<std::string, std::string>* meta_out) {
    std::map<std::string, std::string> meta;
    std::map<std::string, Tensor> state = nn::load_safetensors(path, &meta);
    ClassifierConfig cfg;
    cfg.in_channels = meta_int(meta, "in_channels", path);
    cfg.image_size = meta_int(meta, "image_size", path);
    cfg.num_classes = meta_int(meta, "num_classes", path);
    cfg.width = meta_int(meta, "width", path);
    cfg.reject_class = meta_reject_class(meta, path);
    Generator gen(0);  // every weight is overwritten by the file's
    auto model = std::make_unique<Classifier>(cfg, gen);
    model->load_state_dict(state);
    model->eval();
    if (meta_out) *meta_out = std::move(meta);
    return model;
}

}  // namespace td::diffusion
