// tests/test_gemm_ladder.cpp: the CPU reference of the CUDA GEMM ladder (tensor/cpu/gemm_ladder.h)
// against td::matmul (Eigen), on shapes that hit every edge case of the tiling: a single
// element, odd sizes, sizes that are not multiples of the tile (8, 16 or 32 for v2, 128 for
// v3), a tall-skinny and a wide product, and K = 0. Select them with -tc="gemm ladder*".
//
// The load counts are checked against the reuse formulas the notebook
// (notebooks-cpp/10-gemm-ladder.cpp) teaches: v1 reads 2 M N K elements, a tiled kernel
// reads every element of A once per column of blocks and every element of B once per row.
#include "tests/helpers.h"
#include "tensor/cpu/gemm_ladder.h"

using namespace td;

namespace {

struct GemmShape {
    int64_t M, N, K;
};

// 1x1x1, odd, not multiples of the tiles (and two that are), more than one v3 block each
// way, tall-skinny, wide.
const std::vector<GemmShape> kShapes = {
    {1, 1, 1},      {3, 5, 7},     {17, 33, 19}, {16, 16, 16}, {70, 65, 129},
    {128, 256, 32}, {130, 257, 9}, {300, 3, 5},  {2, 257, 40},
};

int64_t ceil_div(int64_t n, int64_t d) { return (n + d - 1) / d; }

// A (M, K), B (K, N) drawn from a generator seeded by the shape, so each case has its own data.
void operands(const GemmShape& s, Tensor& A, Tensor& B) {
    Generator gen(1000 * s.M + 100 * s.N + s.K);
    A = randn({s.M, s.K}, gen);
    B = randn({s.K, s.N}, gen);
}

// The sums run in a different order from Eigen's; with K <= 129 and N(0, 1) entries the
// differences stay around 1e-5.
constexpr float kAtol = 1e-4f, kRtol = 1e-4f;

}  // namespace

TEST_CASE("gemm ladder: v1 naive matches td::matmul") {
    for (const GemmShape& s : kShapes) {
        CAPTURE(s.M);
        CAPTURE(s.N);
        CAPTURE(s.K);
        Tensor A, B;
        operands(s, A, B);
        CHECK_CLOSE(gemm_v1_naive(A, B), matmul(A, B), kAtol, kRtol);
    }
}

TEST_CASE("gemm ladder: v2 tiled matches td::matmul for tiles 16, 32, 8 and 1") {
    for (int64_t tile : {16, 32, 8, 1})
        for (const GemmShape& s : kShapes) {
            CAPTURE(tile);
            CAPTURE(s.M);
            CAPTURE(s.N);
            CAPTURE(s.K);
            Tensor A, B;
            operands(s, A, B);
            CHECK_CLOSE(gemm_v2_tiled(A, B, tile), matmul(A, B), kAtol, kRtol);
        }
}

TEST_CASE("gemm ladder: v3 register blocked matches td::matmul") {
    for (const GemmShape& s : kShapes) {
        CAPTURE(s.M);
        CAPTURE(s.N);
        CAPTURE(s.K);
        Tensor A, B;
        operands(s, A, B);
        CHECK_CLOSE(gemm_v3_register_blocked(A, B), matmul(A, B), kAtol, kRtol);
    }
}

TEST_CASE("gemm ladder: transposed views and K = 0") {
    Generator gen(7);
    Tensor At = randn({23, 41}, gen), B = randn({23, 18}, gen);  // A = At^T: (41, 23), not contiguous
    Tensor A = At.transpose(0, 1);
    CHECK_CLOSE(gemm_v1_naive(A, B), matmul(A, B), kAtol, kRtol);
    CHECK_CLOSE(gemm_v2_tiled(A, B), matmul(A, B), kAtol, kRtol);
    CHECK_CLOSE(gemm_v3_register_blocked(A, B), matmul(A, B), kAtol, kRtol);
    // An empty sum is 0: every element of C is written even when there is nothing to add.
    Tensor A0 = zeros({5, 0}), B0 = zeros({0, 9});
    for (const Tensor& C : {gemm_v1_naive(A0, B0), gemm_v2_tiled(A0, B0), gemm_v3_register_blocked(A0, B0)}) {
        CHECK(C.shape() == Shape{5, 9});
        CHECK_CLOSE(C, zeros({5, 9}), 0.0f, 0.0f);
    }
}

TEST_CASE("gemm ladder: global loads show the reuse of each version") {
    for (const GemmShape& s : kShapes) {
        CAPTURE(s.M);
        CAPTURE(s.N);
        CAPTURE(s.K);
        Tensor A, B;
        operands(s, A, B);
        const int64_t MK = s.M * s.K, KN = s.K * s.N, MN = s.M * s.N;

        GemmCounts c1;
        gemm_v1_naive(A, B, &c1);
        CHECK(c1.global_loads_a == MN * s.K);  // every thread reads a row of A ...
        CHECK(c1.global_loads_b == MN * s.K);  // ... and a column of B
        CHECK(c1.global_stores == MN);
        CHECK(c1.shared_loads == 0);
        CHECK(c1.fmas == MN * s.K);

        for (int64_t tile : {16, 32}) {
            CAPTURE(tile);
            GemmCounts c2;
            gemm_v2_tiled(A, B, tile, &c2);
            CHECK(c2.global_loads_a == MK * ceil_div(s.N, tile));  // once per column of blocks
            CHECK(c2.global_loads_b == KN * ceil_div(s.M, tile));  // once per row of blocks
            CHECK(c2.global_stores == MN);
            // padded phases: every block runs ceil(K / T) phases of T^3 multiply-adds
            CHECK(c2.fmas == ceil_div(s.M, tile) * ceil_div(s.N, tile) * ceil_div(s.K, tile) * tile * tile * tile);
            CHECK(c2.shared_loads == 2 * c2.fmas);
        }

        GemmCounts c3;
        gemm_v3_register_blocked(A, B, &c3);
        CHECK(c3.global_loads_a == MK * ceil_div(s.N, kBN));
        CHECK(c3.global_loads_b == KN * ceil_div(s.M, kBM));
        CHECK(c3.global_stores == MN);
        CHECK(c3.fmas == ceil_div(s.M, kBM) * ceil_div(s.N, kBN) * ceil_div(s.K, kBK) * kBM * kBN * kBK);
        CHECK(c3.shared_loads * kTM * kTN == c3.fmas * (kTM + kTN));  // 16 reads per 64 multiply-adds
    }
}

TEST_CASE("gemm ladder: counts accumulate across calls") {
    Generator gen(3);
    Tensor A = randn({20, 10}, gen), B = randn({10, 30}, gen);
    GemmCounts c;
    gemm_v2_tiled(A, B, 16, &c);
    gemm_v2_tiled(A, B, 16, &c);
    CHECK(c.global_stores == 2 * 20 * 30);
    CHECK(c.global_loads() == 2 * (20 * 10 * 2 + 10 * 30 * 2));
}

TEST_CASE("gemm ladder: bad arguments throw td::Error naming the kernel") {
    Generator gen(5);
    Tensor A = randn({4, 3}, gen), B = randn({5, 6}, gen);
    tdtest::check_message(tdtest::error_of([&] { gemm_v1_naive(A, B); }),
                          {"gemm_v1_naive", "A's columns (3)", "B's rows (5)", "[4, 3]", "[5, 6]"});
    tdtest::check_message(tdtest::error_of([&] { gemm_v3_register_blocked(A, B); }), {"gemm_v3_register_blocked"});
    tdtest::check_message(tdtest::error_of([&] {
                              gemm_v2_tiled(randn({2, 3, 4}, gen), B);
                          }),
                          {"gemm_v2_tiled", "2-D", "[2, 3, 4]"});
    Tensor B3 = randn({3, 6}, gen);
    tdtest::check_message(tdtest::error_of([&] { gemm_v2_tiled(A, B3, 33); }), {"gemm_v2_tiled", "tile 33", "1,024"});
    tdtest::check_message(tdtest::error_of([&] { gemm_v2_tiled(A, B3, 0); }), {"gemm_v2_tiled", "tile 0"});
    tdtest::check_message(tdtest::error_of([&] { gemm_v1_naive(A.to(DType::Int64), B3); }),
                          {"gemm_v1_naive", "float32", "int64"});
}
