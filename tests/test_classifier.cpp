// tests/test_classifier.cpp: the sample-quality meter: Fréchet distance against closed
// forms, the statistics `diffuse eval` prints, and the classifier's shapes.
#include "diffusion/classifier.h"
#include "tests/helpers.h"

using namespace td;

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
