// tests/fuzz/fuzz_idx.cpp: the IDX reader (diffusion/data/idx.h) on raw bytes, plain or
// gzipped (the seeds hold both: the mutations then hit the gzip header, the deflate
// stream and its checksum as well as the IDX header).
// Seeds: tests/fuzz/corpus/idx/ (images and labels files, .gz and not).
#include "diffusion/data/idx.h"
#include "tests/fuzz/fuzz.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    fuzz::run_parser("fuzz.idx", [&] {
        td::diffusion::IdxArray a = td::diffusion::parse_idx_bytes(data, size, "fuzz.idx");
        int64_t n = 1;
        for (int64_t d : a.dims) n *= d;
        fuzz::expect(n == (int64_t)a.bytes.size(), "the data does not hold prod(dims) bytes");
    });
    return 0;
}
