// tests/fuzz/make_corpus.cpp: writes the fuzzers' seed files, tests/fuzz/corpus/<target>/.
//
//   make fuzz-corpus        (builds this program in build-fuzz/ and runs it)
//
// A seed is a small valid file of the format: libFuzzer starts from these and mutates
// them, so every corner of a valid file is a few mutations away. The files are made by
// the engine's own writers where it has them (save_npy, save_safetensors) and by
// stb_image_write for images; the rest is spelt out byte by byte below. All of it is
// deterministic: running this again rewrites the same bytes.
#include <zlib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "nn/safetensors.h"
#include "tensor/npy.h"

namespace fs = std::filesystem;
using Bytes = std::vector<uint8_t>;

namespace {

std::string g_root;  // tests/fuzz/corpus

void put(const std::string& target, const std::string& name, const Bytes& b) {
    fs::create_directories(g_root + "/" + target);
    std::ofstream f(g_root + "/" + target + "/" + name, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), (std::streamsize)b.size());
}
void put(const std::string& target, const std::string& name, const std::string& s) {
    put(target, name, Bytes(s.begin(), s.end()));
}
std::string path(const std::string& target, const std::string& name) {
    fs::create_directories(g_root + "/" + target);
    return g_root + "/" + target + "/" + name;
}

Bytes gzip(const Bytes& in) {
    z_stream z{};
    deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    Bytes out(deflateBound(&z, in.size()));
    z.next_in = const_cast<uint8_t*>(in.data());
    z.avail_in = (uInt)in.size();
    z.next_out = out.data();
    z.avail_out = (uInt)out.size();
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

// An unsigned-byte IDX file: 00 00 08 rank, big-endian dims, data.
Bytes idx(const std::vector<uint32_t>& dims, const Bytes& data) {
    Bytes b = {0, 0, 0x08, (uint8_t)dims.size()};
    for (uint32_t d : dims) b.insert(b.end(), {uint8_t(d >> 24), uint8_t(d >> 16), uint8_t(d >> 8), uint8_t(d)});
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

Bytes ramp(size_t n, int step) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = (uint8_t)(i * step);
    return b;
}

// A .npy file by hand (for what save_npy does not write: float64, version 2).
Bytes npy(int version, const std::string& dict, const Bytes& data) {
    std::string header = dict;
    size_t pre = version == 1 ? 10 : 12;
    header += std::string((64 - (pre + header.size() + 1) % 64) % 64, ' ') + "\n";
    Bytes b = {0x93, 'N', 'U', 'M', 'P', 'Y', (uint8_t)version, 0};
    uint32_t n = (uint32_t)header.size();
    b.push_back(uint8_t(n));
    b.push_back(uint8_t(n >> 8));
    if (version != 1) b.insert(b.end(), {uint8_t(n >> 16), uint8_t(n >> 24)});
    b.insert(b.end(), header.begin(), header.end());
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

// A .safetensors file by hand: 8-byte length, the header padded to 8, the data.
Bytes safetensors(std::string header, const Bytes& data) {
    header += std::string((8 - header.size() % 8) % 8, ' ');
    Bytes b(8);
    uint64_t n = header.size();
    std::memcpy(b.data(), &n, 8);
    b.insert(b.end(), header.begin(), header.end());
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

Bytes with_prefix(uint8_t first, const Bytes& rest) {
    Bytes b = {first};
    b.insert(b.end(), rest.begin(), rest.end());
    return b;
}

// Pixels of a w x h image with c channels: smooth ramps, so JPEG keeps some detail.
std::vector<unsigned char> pixels(int w, int h, int c) {
    std::vector<unsigned char> p;
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x)
            for (int k = 0; k < c; ++k) p.push_back((unsigned char)((x * 40 + y * 25 + k * 80) % 256));
    return p;
}

}  // namespace

int main(int argc, char** argv) {
    g_root = argc > 1 ? argv[1] : "tests/fuzz/corpus";

    // IDX: images and labels, plain and gzipped.
    Bytes images = idx({3, 4, 5}, ramp(60, 7)), labels = idx({5}, {0, 1, 9, 3, 7});
    put("idx", "images-idx3-ubyte", images);
    put("idx", "labels-idx1-ubyte", labels);
    put("idx", "images-idx3-ubyte.gz", gzip(images));
    put("idx", "labels-idx1-ubyte.gz", gzip(labels));
    put("idx", "rank4", idx({2, 1, 2, 3}, ramp(12, 20)));
    // idx_gz: plain IDX bytes after the byte that picks the damage (fuzz_idx_gz.cpp).
    put("idx_gz", "intact", with_prefix(0, images));
    put("idx_gz", "cut", with_prefix(1 + 4 * 40, images));
    put("idx_gz", "two-members", with_prefix(2, labels));
    put("idx_gz", "trailing", with_prefix(3, labels));

    // CIFAR-10: batches of 1 and 2 records (label, 1024 R, 1024 G, 1024 B).
    Bytes one = {3};
    Bytes planes = ramp(3072, 3);
    one.insert(one.end(), planes.begin(), planes.end());
    Bytes two = one;
    two.push_back(9);
    two.insert(two.end(), planes.rbegin(), planes.rend());
    put("cifar", "one_record.bin", one);
    put("cifar", "two_records.bin", two);

    // npy: what save_npy writes, and by hand float64, version 2, scalar, empty.
    td::save_npy(path("npy", "f32_2x3.npy"), td::Tensor::from_vector({1, -2, 3.5f, 0, 1e-3f, 7}, {2, 3}));
    td::save_npy(path("npy", "i64_3.npy"), td::Tensor::from_vector_i64({1, -1, 1234567890123}, {3}));
    Bytes f64(16);
    double d2[2] = {0.25, -8.0};
    std::memcpy(f64.data(), d2, 16);
    put("npy", "f64_2.npy", npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", f64));
    Bytes f4(4);
    float one_f = 1.0f;
    std::memcpy(f4.data(), &one_f, 4);
    put("npy", "scalar_v2.npy", npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f4));
    put("npy", "empty_0x5.npy", npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 5), }", {}));

    // safetensors: our writer (F32 + I64 + metadata), then by hand F16, BF16, F64, empty, scalar.
    td::nn::save_safetensors(path("safetensors", "ours.safetensors"),
                             {{"down.0.conv.weight", td::Tensor::from_vector({1, 2, 3, 4, 5, 6}, {1, 2, 3})},
                              {"step", td::Tensor::from_vector_i64({42}, {})}},
                             {{"format", "pt"}, {"unet.ch", "8"}});
    put("safetensors", "halves.safetensors",
        safetensors("{\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                    "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[4,8]}}",
                    {0x00, 0x3c, 0x00, 0xfc, 0x80, 0x3f, 0x80, 0x7f}));
    put("safetensors", "f64_and_empty.safetensors",
        safetensors("{\"__metadata__\":{\"name\":\"caf\\u00e9\"},\"d\":{\"dtype\":\"F64\",\"shape\":[1],"
                    "\"data_offsets\":[0,8]},\"e\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[8,8]}}",
                    Bytes(f64.begin(), f64.begin() + 8)));
    put("safetensors", "empty_header.safetensors", safetensors("{}", {}));

    // images: every format the loader reads, small.
    auto grey = pixels(6, 4, 1), rgb = pixels(5, 7, 3), rgba = pixels(4, 4, 4);
    stbi_write_png(path("image", "grey_6x4.png").c_str(), 6, 4, 1, grey.data(), 6);
    stbi_write_png(path("image", "rgb_5x7.png").c_str(), 5, 7, 3, rgb.data(), 5 * 3);
    stbi_write_png(path("image", "rgba_4x4.png").c_str(), 4, 4, 4, rgba.data(), 4 * 4);
    auto big = pixels(16, 16, 3);
    stbi_write_jpg(path("image", "rgb_16x16.jpg").c_str(), 16, 16, 3, big.data(), 80);
    auto bigg = pixels(9, 11, 1);
    stbi_write_jpg(path("image", "grey_9x11.jpg").c_str(), 9, 11, 1, bigg.data(), 50);
    stbi_write_bmp(path("image", "rgb_5x7.bmp").c_str(), 5, 7, 3, rgb.data());
    stbi_write_tga(path("image", "rgba_4x4.tga").c_str(), 4, 4, 4, rgba.data());
    // GIF89a, 1x1, a 2-colour global palette (the smallest well-known GIF).
    put("image", "one_pixel.gif",
        Bytes{0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0xff, 0xff,
              0xff, 0x00, 0x00, 0x00, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00,
              0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b});
    std::string pgm = "P5\n4 3\n255\n", ppm = "P6\n2 2\n255\n";
    Bytes pg = ramp(12, 21), pp = ramp(12, 20);
    put("image", "grey_4x3.pgm", pgm + std::string(pg.begin(), pg.end()));
    put("image", "rgb_2x2.ppm", ppm + std::string(pp.begin(), pp.end()));

    // config files: the shape of configs/*.cfg, with comments, switches, CRLF lines.
    put("config", "demo.cfg",
        "# a run's settings\ndata = mnist\nch = 16\nmults = 1,2,2\nlr = 0.002\nsteps = 1800\nflip = false\n");
    put("config", "flags.cfg", "--resume = true   # a comment\r\n\r\nflip=true\nsteps=12\n");
    put("config", "bom.cfg",
        "\xEF\xBB\xBF"
        "data = runs/x y\n");

    // command lines: arguments separated by NUL bytes.
    put("cli", "sample",
        std::string("--out\0grid.png\0--n\0"
                    "16\0--eta=0.5\0--raw",
                    37));
    put("cli", "help",
        std::string("--steps\0"
                    "10\0--help",
                    17));
    put("cli", "switch_value", std::string("--no-clip\0--steps=abc", 21));
    std::printf("make_corpus: wrote the seeds under %s/\n", g_root.c_str());
    return 0;
}
