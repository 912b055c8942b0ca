// tests/test_classifier.cpp: the sample-quality meter: Fréchet distance against closed
// forms, the statistics `diffuse eval` prints (with and without a reject class), the
// classifier's shapes, the synthetic negatives its reject class learns from, and the
// reference images of `diffuse eval --reference`.
#include <algorithm>
#include <functional>
#include <set>

#include "diffusion/classifier.h"
#include "tests/helpers.h"

using namespace td;

namespace {

float min_of(const Tensor& x) { return -max(neg(x)).item(); }
float max_of(const Tensor& x) { return max(x).item(); }

// Four 6x5 images, each one flat level.
Tensor flat_reals() {
    std::vector<float> v;
    for (float level : {-1.0f, -0.5f, 0.5f, 1.0f}) v.insert(v.end(), 30, level);
    return Tensor::from_vector(v, {4, 1, 6, 5});
}

// Each generator, as (n, like, gen) -> images, over the same real images.
std::vector<std::pair<std::string, std::function<Tensor(int64_t, Generator&)>>> generators() {
    Shape like{4, 1, 6, 5};
    return {{"uniform_noise", [=](int64_t n, Generator& g) { return diffusion::uniform_noise(n, like, g); }},
            {"gaussian_noise", [=](int64_t n, Generator& g) { return diffusion::gaussian_noise(n, like, g); }},
            {"salt_and_pepper", [=](int64_t n, Generator& g) { return diffusion::salt_and_pepper(n, like, g); }},
            {"smooth_blobs", [=](int64_t n, Generator& g) { return diffusion::smooth_blobs(n, like, g); }},
            {"constant_images", [=](int64_t n, Generator& g) { return diffusion::constant_images(n, like, g); }},
            {"drowned_images", [](int64_t n, Generator& g) { return diffusion::drowned_images(n, flat_reals(), g); }},
            {"make_negatives", [](int64_t n, Generator& g) { return diffusion::make_negatives(n, flat_reals(), g); }}};
}

// Per image of (N, C, H, W): the values, as a vector.
std::vector<float> image_values(const Tensor& x, int64_t i) { return x.narrow(0, i, 1).to_vector(); }

}  // namespace

TEST_CASE("frechet distance matches its closed form") {
    Generator gen(11);
    int64_t N = 20000, D = 3;
    Tensor z1 = randn({N, D}, gen), z2 = randn({N, D}, gen);
    // identical distributions: ~0
    CHECK(std::fabs(diffusion::frechet_distance(z1, z2)) < 0.01);
    // shifted mean by m, same covariance: |m|^2 (+ sampling noise)
    Tensor m = Tensor::from_vector({1.0f, 2.0f, 0.0f}, {1, 3});
    CHECK(diffusion::frechet_distance(z1 + m, z2) == doctest::Approx(5.0).epsilon(0.02));
    // scaled: N(0, a^2 I) vs N(0, b^2 I): D (a - b)^2
    CHECK(diffusion::frechet_distance(z1 * 3.0f, z2) == doctest::Approx(3 * 4.0).epsilon(0.03));
    // symmetric
    CHECK(diffusion::frechet_distance(z1 * 2.0f, z2 + m) ==
          doctest::Approx(diffusion::frechet_distance(z2 + m, z1 * 2.0f)).epsilon(1e-9));
    CHECK_THROWS_AS(diffusion::frechet_distance(ones({1, 3}), ones({5, 3})), Error);
    CHECK_THROWS_AS(diffusion::frechet_distance(ones({4, 3}), ones({5, 2})), Error);
}

TEST_CASE("sample statistics: confidence, histogram, entropy") {
    // 4 images: two confidently class 0, one confidently class 2, one unsure
    Tensor logits = Tensor::from_vector({10, 0, 0, 10, 0, 0, 0, 0, 10, 0.1f, 0, 0}, {4, 3});
    Tensor feats = randn({4, 2}, default_generator());
    diffusion::SampleStats s = diffusion::sample_stats(logits, feats, Tensor());
    CHECK(s.n == 4);
    CHECK(s.histogram == std::vector<int64_t>{3, 0, 1});
    CHECK(s.share_confident == doctest::Approx(0.75));
    double p = std::exp(0.1) / (std::exp(0.1) + 2.0);
    CHECK(s.mean_confidence == doctest::Approx((3 * (std::exp(10.0) / (std::exp(10.0) + 2.0)) + p) / 4));
    CHECK(s.class_entropy == doctest::Approx(-(0.75 * std::log(0.75) + 0.25 * std::log(0.25))));
    CHECK(s.frechet == -1.0);
}

TEST_CASE("sample statistics with a reject class: junk is rejected and never recognisable") {
    // 3 real classes + the reject column (last)
    Tensor logits = Tensor::from_vector({10, 0,  0, 0,     // class 0, sure
                                         0,  0,  0, 10,    // junk: rejected, its best real class 0 (a tie, the first)
                                         5,  0,  0, 5.5f,  // junk by a nose: rejected, p(class 0) < 0.5
                                         0,  10, 0, -10,   // class 1, sure
                                         0,  4,  0, 3},    // class 1, p = 0.70: accepted but not recognisable
                                        {5, 4});
    Tensor feats = randn({5, 2}, default_generator());
    diffusion::SampleStats s = diffusion::sample_stats(logits, feats, Tensor(), /*reject_class=*/true);
    CHECK(s.has_reject);
    CHECK(s.n == 5);
    CHECK(s.rejected == 2);
    CHECK(s.share_rejected == doctest::Approx(0.4));
    CHECK(s.histogram == std::vector<int64_t>{3, 2, 0});  // real classes only; rejected images by their best real class
    CHECK(s.share_confident == doctest::Approx(0.4));
    // confidences from the full softmax: the reject column takes its share
    double e10 = std::exp(10.0), e5 = std::exp(5.0), e55 = std::exp(5.5), e4 = std::exp(4.0), e3 = std::exp(3.0);
    double c[5] = {e10 / (e10 + 3), 1 / (e10 + 3), e5 / (e5 + 2 + e55), e10 / (e10 + 2 + std::exp(-10.0)),
                   e4 / (e4 + 2 + e3)};
    CHECK(s.mean_confidence == doctest::Approx((c[0] + c[1] + c[2] + c[3] + c[4]) / 5));
    CHECK(s.class_entropy == doctest::Approx(-(0.6 * std::log(0.6) + 0.4 * std::log(0.4))));

    // the same logits read as a plain 4-class classifier: the last column is just a class
    diffusion::SampleStats plain = diffusion::sample_stats(logits, feats, Tensor());
    CHECK_FALSE(plain.has_reject);
    CHECK(plain.rejected == 0);
    CHECK(plain.histogram == std::vector<int64_t>{1, 2, 0, 2});
    CHECK(plain.share_confident == doctest::Approx(0.6));
    CHECK_THROWS_AS(diffusion::sample_stats(ones({3, 1}), feats, Tensor(), true), Error);
}

TEST_CASE("negatives: shapes, ranges, determinism") {
    for (auto& [name, make] : generators()) {
        INFO(name);
        Generator g1(5), g2(5), g3(6);
        Tensor a = make(40, g1), b = make(40, g2), c = make(40, g3);
        CHECK(a.shape() == Shape{40, 1, 6, 5});
        CHECK(a.dtype() == DType::Float32);
        CHECK(min_of(a) >= -1.0f);
        CHECK(max_of(a) <= 1.0f);
        CHECK(a.to_vector() == b.to_vector());  // same seed: the very same images
        CHECK(a.to_vector() != c.to_vector());
        CHECK(g1.offset() > 0);  // drew from the generator it was given
    }
    // colour images, not square
    Generator g(1);
    Tensor rgb = ones({2, 3, 8, 12});
    CHECK(diffusion::smooth_blobs(3, rgb.shape(), g).shape() == Shape{3, 3, 8, 12});
    CHECK(diffusion::make_negatives(9, rgb, g).shape() == Shape{9, 3, 8, 12});
    CHECK_THROWS_WITH_AS(diffusion::make_negatives(2, ones({1, 1, 4, 4}), g), doctest::Contains("[1, 1, 4, 4]"), Error);
    CHECK_THROWS_AS(diffusion::uniform_noise(2, Shape{4, 4}, g), Error);
}

TEST_CASE("negatives: each kind is what it says") {
    Generator gen(3);
    Shape like{1, 1, 28, 28};
    int64_t n = 50;

    Tensor u = diffusion::uniform_noise(n, like, gen);
    CHECK(std::fabs(mean(u).item()) < 0.02f);
    CHECK(var(u).item() == doctest::Approx(1.0 / 3.0).epsilon(0.03));

    // flat: one level per image, black for about half of them
    Tensor k = diffusion::constant_images(n, like, gen);
    int black = 0;
    for (int64_t i = 0; i < n; ++i) {
        std::vector<float> v = image_values(k, i);
        CHECK(std::all_of(v.begin(), v.end(), [&](float x) { return x == v[0]; }));
        black += v[0] == -1.0f;
    }
    CHECK(black > 10);
    CHECK(black < 40);

    // salt and pepper: a flat background and black or white dots, nothing else
    Tensor sp = diffusion::salt_and_pepper(n, like, gen);
    for (int64_t i = 0; i < n; ++i) {
        std::vector<float> v = image_values(sp, i);
        std::set<float> levels(v.begin(), v.end());
        levels.erase(-1.0f);
        levels.erase(1.0f);
        CHECK(levels.size() <= 1);
    }

    // blobs are smooth: neighbours differ by little, yet images are not flat
    Tensor bl = diffusion::smooth_blobs(n, like, gen);
    Tensor dx = abs(bl.narrow(3, 1, 27) - bl.narrow(3, 0, 27)), dy = abs(bl.narrow(2, 1, 27) - bl.narrow(2, 0, 27));
    CHECK(mean(dx).item() < 0.15f);
    CHECK(mean(dy).item() < 0.15f);
    CHECK(var(bl).item() > 0.05f);

    // drowned: the image still shows through the noise (black stays darker than white),
    // but every image is far from where it started
    Tensor dark = diffusion::drowned_images(200, full({2, 1, 6, 5}, -1.0f), gen);
    Tensor bright = diffusion::drowned_images(200, full({2, 1, 6, 5}, 1.0f), gen);
    CHECK(mean(dark).item() < -0.2f);
    CHECK(mean(dark).item() > -0.7f);
    CHECK(mean(bright).item() > 0.2f);
    CHECK(mean(bright).item() < 0.7f);

    // the mix: every kind turns up in a few hundred
    Tensor mixed = diffusion::make_negatives(350, flat_reals(), gen);
    CHECK(mixed.shape() == Shape{350, 1, 6, 5});
    int flat = 0;
    for (int64_t i = 0; i < 350; ++i) {
        std::vector<float> v = image_values(mixed, i);
        flat += std::all_of(v.begin(), v.end(), [&](float x) { return x == v[0]; });
    }
    CHECK(flat > 20);  // the constant images: about 1/6 of them
}

TEST_CASE("reference images: real, noise, blur") {
    Generator gen(4);
    Tensor held = rand({10, 1, 8, 8}, gen, -1.0f, 1.0f);
    Tensor real = diffusion::reference_images(diffusion::Reference::Real, held, 5);
    CHECK(real.shape() == Shape{5, 1, 8, 8});
    // 5 distinct held-out images, in their held-out order
    std::vector<float> h = ((held + 1.0f) * 0.5f).to_vector(), r = real.to_vector();
    int64_t last = -1;
    for (int64_t i = 0; i < 5; ++i) {
        int64_t found = -1;
        for (int64_t j = 0; j < 10 && found < 0; ++j)
            if (std::equal(r.begin() + i * 64, r.begin() + (i + 1) * 64, h.begin() + j * 64)) found = j;
        CHECK(found > last);
        last = found;
    }
    CHECK(real.to_vector() == diffusion::reference_images(diffusion::Reference::Real, held, 5).to_vector());  // seeded
    CHECK(real.to_vector() != diffusion::reference_images(diffusion::Reference::Real, held, 5, 1).to_vector());
    CHECK(diffusion::reference_images(diffusion::Reference::Real, held, 1000).shape() == Shape{10, 1, 8, 8});  // capped
    Tensor noise = diffusion::reference_images(diffusion::Reference::Noise, held, 7);
    CHECK(noise.shape() == Shape{7, 1, 8, 8});
    CHECK(min_of(noise) >= 0.0f);
    CHECK(max_of(noise) < 1.0f);
    CHECK(noise.to_vector() == diffusion::reference_images(diffusion::Reference::Noise, held, 7).to_vector());
    Tensor blur = diffusion::reference_images(diffusion::Reference::Blur, held, 5);
    CHECK(blur.shape() == Shape{5, 1, 8, 8});
    CHECK(var(blur).item() < 0.5f * var(real).item());                     // smoother
    CHECK_CLOSE(blur, diffusion::gaussian_blur(real, 1.5f), 1e-6f, 0.0f);  // of the same images as "real"
    CHECK(min_of(blur) >= 0.0f);
    CHECK(max_of(blur) <= 1.0f);
    CHECK_THROWS_WITH_AS(diffusion::parse_reference("fog"), doctest::Contains("'fog' (real, noise, blur)"), Error);
}

TEST_CASE("gaussian blur: keeps flat images, spreads a point by sigma") {
    CHECK_CLOSE(diffusion::gaussian_blur(full({1, 2, 9, 7}, 0.3f), 1.5f), full({1, 2, 9, 7}, 0.3f), 1e-6f, 0.0f);
    std::vector<float> v(21 * 21, 0.0f);
    v[10 * 21 + 10] = 1.0f;
    Tensor blurred = diffusion::gaussian_blur(Tensor::from_vector(v, {1, 1, 21, 21}), 1.5f);
    std::vector<float> b = blurred.to_vector();
    double total = 0, second_moment = 0;
    for (int64_t y = 0; y < 21; ++y)
        for (int64_t x = 0; x < 21; ++x) {
            total += b[y * 21 + x];
            second_moment += b[y * 21 + x] * (x - 10) * (x - 10);
        }
    CHECK(total == doctest::Approx(1.0).epsilon(1e-5));
    CHECK(std::sqrt(second_moment) == doctest::Approx(1.5).epsilon(0.02));  // the kernel's own sigma (truncated at 3)
    CHECK_THROWS_AS(diffusion::gaussian_blur(ones({2, 8, 8}), 1.5f), Error);
}

TEST_CASE("classifier with a reject class: one more output") {
    Generator gen(2);
    diffusion::ClassifierConfig cfg;
    cfg.width = 8;
    cfg.reject_class = true;
    CHECK(cfg.outputs() == 11);
    diffusion::Classifier model(cfg, gen);
    Tensor x = randn({3, 1, 28, 28}, gen);
    CHECK(model.forward(x).shape() == Shape{3, 11});
    CHECK(model.features(x).shape() == Shape{3, 32});
}

TEST_CASE("classifier: shapes of features and logits") {
    Generator gen(2);
    diffusion::ClassifierConfig cfg;
    cfg.width = 8;
    diffusion::Classifier model(cfg, gen);
    Tensor x = randn({3, 1, 28, 28}, gen);
    CHECK(model.features(x).shape() == Shape{3, 32});
    CHECK(model.forward(x).shape() == Shape{3, 10});
    CHECK_THROWS_WITH_AS(model.forward(randn({3, 3, 28, 28}, gen)), doctest::Contains("[3, 3, 28, 28]"), Error);
    Tensor logits, feats;
    diffusion::classify(model, x, logits, feats, 2);
    CHECK(logits.shape() == Shape{3, 10});
    CHECK_CLOSE(logits, model.forward(x), 1e-5f, 1e-4f);
}
