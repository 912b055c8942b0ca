// tests/test_timestep_draw.cpp: how a training step draws t (Algorithm 1, line 3):
// uniform is the plain randint it always was, logit-normal puts the draws where its
// m and s say.
#include <algorithm>
#include <cmath>

#include "diffusion/trainer.h"
#include "tests/helpers.h"

using namespace td;
using namespace td::diffusion;

namespace {
std::vector<int64_t> draws(TimestepDraw how, double m, double s, int64_t T, int64_t n, uint64_t seed) {
    Generator g(seed);
    return draw_timesteps(how, m, s, T, n, g).to_vector_i64();
}
double share_above(const std::vector<int64_t>& t, int64_t above) {
    return (double)std::count_if(t.begin(), t.end(), [&](int64_t x) { return x > above; }) / (double)t.size();
}
}  // namespace

TEST_CASE("timestep draw: uniform is randint over the T steps, number for number") {
    Generator g(7);
    std::vector<int64_t> plain = randint(1000, {4096}, g).to_vector_i64();
    CHECK(draws(TimestepDraw::Uniform, 0.0, 1.0, 1000, 4096, 7) == plain);
}

TEST_CASE("timestep draw: logit-normal stays in {0..T-1}, centred on T sigmoid(m), thin at the ends") {
    const int64_t T = 1000, n = 20000;
    for (double m : {0.0, -0.5, 1.0}) {
        std::vector<int64_t> t = draws(TimestepDraw::LogitNormal, m, 1.0, T, n, 3);
        CHECK(*std::min_element(t.begin(), t.end()) >= 0);
        CHECK(*std::max_element(t.begin(), t.end()) <= T - 1);
        std::nth_element(t.begin(), t.begin() + n / 2, t.end());
        const double expected_median = T / (1.0 + std::exp(-m));  // the median of sigmoid(m + s n) is sigmoid(m)
        CHECK(std::abs((double)t[n / 2] - expected_median) < 15.0);
    }
    // m = 0, s = 1: P(t > 0.9 T) = P(n > logit(0.9) = 2.197) = 1.4%, against 10% uniform.
    std::vector<int64_t> t = draws(TimestepDraw::LogitNormal, 0.0, 1.0, T, n, 11);
    CHECK(share_above(t, 900) > 0.008);
    CHECK(share_above(t, 900) < 0.022);
    CHECK(share_above(draws(TimestepDraw::Uniform, 0.0, 1.0, T, n, 11), 900) > 0.08);
    // a wider s spreads the draws towards both ends
    CHECK(share_above(draws(TimestepDraw::LogitNormal, 0.0, 2.0, T, n, 11), 900) > 0.1);
}

TEST_CASE("timestep draw: the words, and an unknown one listed with the choices") {
    CHECK(parse_timestep_draw("uniform") == TimestepDraw::Uniform);
    CHECK(parse_timestep_draw("logit-normal") == TimestepDraw::LogitNormal);
    CHECK(timestep_draw_name(TimestepDraw::LogitNormal) == "logit-normal");
    try {
        parse_timestep_draw("lognormal");
        FAIL("no error for an unknown word");
    } catch (const Error& e) {
        std::string what = e.what();
        CHECK(what.find("uniform") != std::string::npos);
        CHECK(what.find("logit-normal") != std::string::npos);
    }
}
