// tests/fuzz/fuzz_npy.cpp: the .npy reader (tensor/npy.h), fed from memory.
// Seeds: tests/fuzz/corpus/npy/ (float32, float64, int64 arrays, a scalar, an empty one).
#include "tensor/npy.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::run_parser("fuzz.npy", [&] {
        td::Tensor t = td::parse_npy_bytes(data, size, "fuzz.npy");
        // Every element came from at least 4 bytes of the file ('<f4'; '<f8' and '<i8' take 8).
        fuzz::expect(t.numel() * 4 <= (int64_t)size, "a tensor larger than the file");
    });
    return 0;
}
