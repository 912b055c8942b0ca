// tests/test_random_lanes.cpp: rand() fills whole groups of 16 Philox blocks in vector lanes
// (tensor/cpu/random.cpp's philox_lanes); every number must still be the one philox_block
// gives for its block and word, at any offset of the stream and any length (the groups and
// the blocks after them), with 1 and 2 threads.
#include <doctest/doctest.h>
#include <omp.h>

#include "tensor/random.h"
#include "tests/helpers.h"

using namespace td;

TEST_CASE("rand: the lane-parallel Philox gives philox_block's numbers") {
    const int saved = omp_get_max_threads();
    for (int threads : {1, 2}) {
        omp_set_num_threads(threads);
        for (int64_t n : {int64_t(1), int64_t(63), int64_t(64), int64_t(65), int64_t(1000), int64_t(300001)}) {
            CAPTURE(threads);
            CAPTURE(n);
            Generator g(0x123456789abcdefull);
            g.set_state(0x123456789abcdefull, 0xfffffff0ull);  // the block counter carries into its high word
            const uint64_t first = g.offset();
            std::vector<float> u = rand({n}, g, -1.0f, 2.0f).to_vector();
            int64_t wrong = 0;
            for (int64_t i = 0; i < n; ++i) {
                const uint32_t word = philox_block(g.seed(), first + uint64_t(i / 4))[i % 4];
                const float unit = float(word >> 8) * (1.0f / 16777216.0f);
                if (u[i] != std::fma(3.0f, unit, -1.0f)) ++wrong;
            }
            CHECK(wrong == 0);
        }
    }
    omp_set_num_threads(saved);
}
