// tests/fuzz/fuzz_idx_gz.cpp: the IDX reader's gzip path with well-formed gzip data.
//
// Mutating a .gz file mostly breaks its deflate stream, so fuzz_idx rarely gets past
// zlib with an interesting IDX header inside. Here the fuzzer's bytes are the IDX file
// itself; we gzip them and parse the result, so every mutation of the header reaches
// the gzip path intact. The first byte also picks a damage to the gzip data: none, cut
// at some point, a second gzip member, or bytes of something else after the end.
// Seeds: tests/fuzz/corpus/idx_gz/ (plain IDX files, each prefixed by that byte).
#include <zlib.h>

#include <vector>

#include "diffusion/data/idx.h"
#include "tests/fuzz/fuzz.h"

namespace {

// gzip (not zlib) wrapping of `bytes`, as gzip(1) would write it.
std::vector<uint8_t> gzip(const uint8_t* bytes, size_t n) {
    z_stream z{};
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) fuzz::broken("deflateInit2");
    std::vector<uint8_t> out(deflateBound(&z, n));
    z.next_in = const_cast<uint8_t*>(bytes);
    z.avail_in = (uInt)n;
    z.next_out = out.data();
    z.avail_out = (uInt)out.size();
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) fuzz::broken("deflate");
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    uint8_t how = data[0];
    std::vector<uint8_t> gz = gzip(data + 1, size - 1);
    switch (how % 4) {
        case 0: break;                                         // intact
        case 1: gz.resize(gz.size() * (how / 4) / 64); break;  // cut short (how/4 of 64ths)
        case 2: {
            auto again = gz;
            gz.insert(gz.end(), again.begin(), again.end());
            break;
        }                                  // two members
        case 3: gz.push_back(how); break;  // trailing garbage
    }
    fuzz::run_parser("fuzz.idx.gz", [&] {
        td::diffusion::IdxArray a = td::diffusion::parse_idx_bytes(gz.data(), gz.size(), "fuzz.idx.gz");
        int64_t n = 1;
        for (int64_t d : a.dims) n *= d;
        fuzz::expect(n == (int64_t)a.bytes.size(), "the data does not hold prod(dims) bytes");
    });
    return 0;
}
