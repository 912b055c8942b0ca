// tests/fuzz/fuzz_cifar.cpp: the CIFAR-10 binary batch reader (diffusion/data/cifar.h).
// The format has no header, so there is little to get wrong: the size must be a whole
// number of 3073-byte records and every label byte 0..9.
// Seeds: tests/fuzz/corpus/cifar/ (batches of 1 and 2 records).
#include "diffusion/data/cifar.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::run_parser("fuzz.bin", [&] {
        td::diffusion::Dataset d = td::diffusion::parse_cifar10_bytes(data, size, "fuzz.bin", "train");
        fuzz::expect(d.size() * 3073 == (int64_t)size, "records do not match the size");
        for (int64_t y : d.labels.to_vector_i64()) fuzz::expect(y >= 0 && y < 10, "a label out of 0..9");
    });
    return 0;
}
