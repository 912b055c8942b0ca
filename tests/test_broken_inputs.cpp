// tests/test_broken_inputs.cpp: deliberately broken inputs, one kind of damage per test
// case, through the loaders' public APIs and through the `diffuse` command line.
//
// What every case checks: the failure is a td::Error (exit code 1 from the
// CLI; 2 for a usage error), its message names the file and says what is wrong, a size
// claimed by a header is checked before anything that large is allocated (a header
// claiming 10^12 elements must fail at once, not with std::bad_alloc), and nothing is
// written over an existing file when a run fails. The last case kills a training run
// with SIGKILL at a few moments and checks that its newest checkpoint always loads.
// The fuzz targets in tests/fuzz/ (`make fuzz`) try millions of such inputs; these are
// the named ones, run by `make test`.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include "diffusion/data/data.h"
#include "diffusion/data/image_io.h"
#include "diffusion/model_file.h"
#include "diffusion/trainer.h"
#include "nn/linear.h"
#include "nn/safetensors.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"
#include "tools/args.h"

using namespace td;
using namespace td::diffusion;
namespace fs = std::filesystem;
using tdtest::check_message;
using tdtest::error_of;

namespace {

using Bytes = std::string;  // a file's bytes

// A fresh scratch folder for one test case.
std::string fresh_dir(const std::string& name) {
    std::string dir = tdtest::scratch("broken/" + name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

void write_file(const std::string& path, const Bytes& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), (std::streamsize)bytes.size());
    REQUIRE(f.good());
}

Bytes read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return Bytes((std::istreambuf_iterator<char>(f)), {});
}

Bytes gzip(const Bytes& in) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    Bytes out(deflateBound(&z, in.size()), '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = (uInt)in.size();
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = (uInt)out.size();
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

// ---- valid files of each format, to break ----

// An unsigned-byte IDX file: 00 00 08 rank, big-endian dims, then the data.
Bytes idx_file(const std::vector<uint32_t>& dims, size_t data_bytes) {
    Bytes b = {0, 0, 8, (char)dims.size()};
    for (uint32_t d : dims) b += {(char)(d >> 24), (char)(d >> 16), (char)(d >> 8), (char)d};
    return b + Bytes(data_bytes, '\x7f');
}

// A .npy file (version 1.0) with this header dict and data.
Bytes npy_file(const std::string& dict, const Bytes& data) {
    std::string header = dict;
    header += std::string((64 - (10 + header.size() + 1) % 64) % 64, ' ') + "\n";
    Bytes b = "\x93NUMPY";
    b += {1, 0, (char)(header.size() & 0xff), (char)(header.size() >> 8)};
    return b + header + data;
}

// A .safetensors file: 8-byte little-endian header length, JSON header, data.
Bytes safetensors_file(std::string header, const Bytes& data) {
    header += std::string((8 - header.size() % 8) % 8, ' ');
    uint64_t n = header.size();
    return Bytes(reinterpret_cast<const char*>(&n), 8) + header + data;
}

// One CIFAR-10 record: a label byte and 3072 pixel bytes.
Bytes cifar_record(char label) { return label + Bytes(3072, '\x40'); }

// A small valid PNG, written by the engine's own writer.
Bytes png_file(const std::string& dir) {
    std::string path = dir + "/made.png";
    write_png(path, zeros({1, 4, 4}));
    return read_file(path);
}

// The message of loading `bytes` (written to `path`) with `load`, which must fail.
template <typename Load>
std::string fails(const std::string& path, const Bytes& bytes, Load load) {
    write_file(path, bytes);
    std::string msg = error_of([&] { load(path); });
    INFO("loading " << path);
    CHECK_FALSE(msg.empty());
    return msg;
}

void load_npy_file(const std::string& p) { load_npy(p); }
void load_safetensors_file(const std::string& p) { nn::load_safetensors(p); }
void load_idx_file(const std::string& p) { load_idx_images(p); }
void load_cifar_file(const std::string& p) { load_cifar10_files({p}, "train"); }
void load_image_file(const std::string& p) { load_image(p, 8, 3); }

}  // namespace

// ---- files -------------------------------------------------------------------------------

TEST_CASE("broken input: bad magic") {
    std::string dir = fresh_dir("magic");
    Bytes npy = npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }", Bytes(4, '\0'));
    npy[1] = 'X';  // "\x93XUMPY"
    std::string p = dir + "/a.npy";
    check_message(fails(p, npy, load_npy_file), {p, "not a .npy file (bad magic)"});

    Bytes idx = idx_file({2, 2, 2}, 8);
    idx[0] = 0x1f;
    p = dir + "/images-idx3-ubyte";
    check_message(fails(p, idx, load_idx_file), {p, "bad magic"});

    Bytes png = png_file(dir);
    png[1] = 'Q';  // "\x89QNG"
    p = dir + "/a.png";
    check_message(fails(p, png, load_image_file), {p, "cannot read image"});

    // A gzip file whose content is not IDX: the magic is checked after decompressing.
    p = dir + "/text-idx3-ubyte.gz";
    check_message(fails(p, gzip("hello, world\n"), load_idx_file), {p, "bad magic"});
}

TEST_CASE("broken input: truncated files") {
    std::string dir = fresh_dir("truncated");
    Bytes npy = npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", Bytes(24, '\0'));
    std::string p = dir + "/a.npy";
    check_message(fails(p, npy.substr(0, npy.size() - 5), load_npy_file), {p, "truncated", "24 bytes of data"});
    check_message(fails(p, npy.substr(0, 40), load_npy_file), {p, "runs past the end of the file"});

    Bytes st = safetensors_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", Bytes(16, '\0'));
    p = dir + "/a.safetensors";
    check_message(fails(p, st.substr(0, st.size() - 1), load_safetensors_file), {p, "run past the end"});
    check_message(fails(p, st.substr(0, 20), load_safetensors_file), {p, "larger than the file"});

    Bytes idx = idx_file({3, 4, 4}, 48);
    p = dir + "/images-idx3-ubyte";
    check_message(fails(p, idx.substr(0, idx.size() - 10), load_idx_file), {p, "truncated?"});
    p = dir + "/images-idx3-ubyte.gz";
    check_message(fails(p, gzip(idx.substr(0, idx.size() - 10)), load_idx_file), {p, "truncated"});
    Bytes gz = gzip(idx);  // the gzip stream itself cut short
    check_message(fails(p, gz.substr(0, gz.size() - 12), load_idx_file), {p, "truncated"});

    p = dir + "/data_batch_1.bin";
    Bytes two = cifar_record(1) + cifar_record(2);
    check_message(fails(p, two.substr(0, 5000), load_cifar_file), {p, "5000 bytes", "not a whole number"});

    Bytes png = png_file(dir);
    p = dir + "/cut.png";
    check_message(fails(p, png.substr(0, png.size() / 2), load_image_file), {p, "cannot decode image"});
}

TEST_CASE("broken input: a header claiming 10^12 elements fails before allocating them") {
    // Each file is a few hundred bytes; honouring its header would take terabytes. The
    // loaders compare the claim with the file's size first, so the error is a td::Error
    // about the claim, not a std::bad_alloc (or the machine swapping).
    std::string dir = fresh_dir("huge");
    std::string p = dir + "/a.npy";
    Bytes npy = npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }", Bytes(8, '\0'));
    check_message(fails(p, npy, load_npy_file), {p, "[1000000, 1000000]", "truncated"});
    // A zero makes the array empty, but the other dimensions still size its strides.
    npy = npy_file("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 999999999999, 999999999999), }", "");
    check_message(fails(p, npy, load_npy_file), {p, "over 2^40 elements"});

    p = dir + "/a.safetensors";
    Bytes st = safetensors_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1000000,1000000],\"data_offsets\":[0,8]}}",
                                Bytes(8, '\0'));
    check_message(fails(p, st, load_safetensors_file), {p, "'w'", "too large for its data_offsets [0, 8]"});
    st = safetensors_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1000000,1000000],\"data_offsets\":[0,4000000000000]}}",
                          Bytes(8, '\0'));
    check_message(fails(p, st, load_safetensors_file), {p, "'w'", "run past the end of the data section"});

    p = dir + "/images-idx3-ubyte";
    check_message(fails(p, idx_file({1000000, 1000, 1000}, 16), load_idx_file),
                  {p, "[1000000, 1000, 1000]", "truncated?"});
    p = dir + "/images-idx3-ubyte.gz";
    check_message(fails(p, gzip(idx_file({1000000, 1000, 1000}, 16)), load_idx_file), {p, "more than a .gz file of"});

    // PNG headers (IHDR: width and height at bytes 16 and 20) claiming 10000 x 10000
    // pixels (over our 64-megapixel limit) and 100000 x 100000 (over stb's own limit).
    // (The chunk's CRC is left wrong: stb reads the size without checking it.)
    Bytes png = png_file(dir);
    const char big[8] = {0, 0, 0x27, 0x10, 0, 0, 0x27, 0x10};  // 10000, 10000
    png.replace(16, 8, big, 8);
    p = dir + "/huge.png";
    check_message(fails(p, png, load_image_file), {p, "10000x10000, too large"});
    const char bigger[8] = {0, 1, (char)0x86, (char)0xa0, 0, 1, (char)0x86, (char)0xa0};  // 100000, 100000
    png.replace(16, 8, bigger, 8);
    check_message(fails(p, png, load_image_file), {p, "cannot read image"});
}

TEST_CASE("broken input: images that Debian's stb_image mishandles are refused first") {
    // Found by tests/fuzz/fuzz_image.cpp; kept in its corpus. A JPEG Huffman table (DHT) whose
    // 16 counts add up to more than 256 codes overflows stbi__build_huffman's arrays in
    // stb_image 2.27 (diffusion/data/stb_guard.h); the second file hides its start-of-image
    // marker behind FF fill bytes, which stb accepts.
    for (const char* f : {"regress-jpeg-dht-257-codes.jpg", "regress-jpeg-fill-bytes-before-soi.jpg"}) {
        std::string p = std::string("tests/fuzz/corpus/image/") + f;
        REQUIRE(fs::exists(p));
        check_message(error_of([&] { load_image(p, 8, 3); }), {p, "damaged JPEG: a Huffman table", "codes"});
    }
    // A PNG whose image data chunk claims 1.6 GB in a 122-byte file: stb would allocate
    // that much before finding out.
    std::string p = "tests/fuzz/corpus/image/regress-png-idat-claims-1.6gb.png";
    check_message(error_of([&] { load_image(p, 8, 3); }),
                  {p, "truncated PNG: chunk 'IDAT' at byte 33 claims 1610612757 bytes"});
    // A PGM header whose height has 30 digits: stb's int would overflow reading it.
    p = "tests/fuzz/corpus/image/regress-pgm-height-30-digits.pgm";
    check_message(error_of([&] { load_image(p, 8, 3); }), {p, "damaged PNM header: its height has too many digits"});
    // Valid files pass the guard and decode.
    for (const char* f :
         {"rgb_16x16.jpg", "grey_9x11.jpg", "rgb_5x7.png", "rgba_4x4.png", "grey_4x3.pgm", "rgb_2x2.ppm"})
        CHECK(load_image(std::string("tests/fuzz/corpus/image/") + f, 8, 3).shape() == Shape{3, 8, 8});
}

TEST_CASE("broken input: a 1 x 16384 image costs no more than its crop") {
    // Found by fuzzing: resizing the shorter side to `size` first made a 1-pixel-wide
    // image 16384 * size pixels tall before the center crop threw nearly all of it away
    // (13 GB of floats here). Only the center square is computed now, with the same values.
    std::string dir = fresh_dir("thin");
    std::string p = dir + "/thin.png";
    std::vector<float> ramp(16384);
    for (size_t i = 0; i < ramp.size(); ++i) ramp[i] = (float)(i % 256) / 127.5f - 1.0f;
    write_png(p, Tensor::from_vector(ramp, {1, 16384, 1}));
    Tensor x = load_image(p, 256, 1);
    CHECK(x.shape() == Shape{1, 256, 256});

    // The window equals the whole resize followed by the crop (a size where both fit).
    Generator g(5);
    Tensor img = rand({3, 7, 300}, g, 0.0f, 255.0f);
    Tensor whole = resize_bilinear(img, 16, 686);  // 300 * 16 / 7 = 685.7, rounded
    CHECK_CLOSE(resize_center_crop(img, 16), whole.narrow(2, (686 - 16) / 2, 16).contiguous(), 0.0f, 0.0f);
}

TEST_CASE("broken input: weights of the wrong shape for the model") {
    std::string dir = fresh_dir("shape");
    std::string p = dir + "/linear.safetensors";
    nn::Linear small(3, 2), big(4, 2);
    nn::save_module(p, big);
    std::string msg = error_of([&] { nn::load_module(p, small); });
    check_message(msg, {p, "shape mismatch: weight is [2, 3] in the model, [2, 4]"});

    // A whole diffusion model: its metadata says one UNet, one tensor has another shape.
    ModelInfo info = tdtest::tiny_ddpm(50);
    UNet unet(info.unet);
    std::map<std::string, Tensor> state = unet.state_dict();
    REQUIRE(state.count("conv_in.weight"));
    state["conv_in.weight"] = zeros({3, 3});
    p = dir + "/model.safetensors";
    nn::save_safetensors(p, state, to_metadata(info));
    check_message(error_of([&] { load_model(p); }), {p, "do not fit", "conv_in.weight"});
}

TEST_CASE("broken input: wrong dtype") {
    std::string dir = fresh_dir("dtype");
    // An int64 tensor where the model has a float parameter: refused, not converted.
    std::string p = dir + "/linear.safetensors";
    nn::Linear lin(2, 2);
    std::map<std::string, Tensor> state = lin.state_dict();
    state["weight"] = Tensor::from_vector_i64({1, 2, 3, 4}, {2, 2});
    nn::save_safetensors(p, state);
    check_message(error_of([&] { nn::load_module(p, lin); }),
                  {p, "dtype mismatch: weight is float32 in the model, int64 in the file"});

    // The same in a whole diffusion model file (load_model goes through load_state_dict).
    ModelInfo info = tdtest::tiny_ddpm(50);
    UNet unet(info.unet);
    std::map<std::string, Tensor> ustate = unet.state_dict();
    REQUIRE(ustate.count("conv_in.bias"));
    ustate["conv_in.bias"] = zeros(ustate["conv_in.bias"].shape(), DType::Int64);
    p = dir + "/model.safetensors";
    nn::save_safetensors(p, ustate, to_metadata(info));
    check_message(error_of([&] { load_model(p); }), {p, "dtype mismatch: conv_in.bias is float32", "int64"});

    // dtypes the readers do not know
    p = dir + "/a.safetensors";
    check_message(
        fails(p, safetensors_file("{\"w\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}", Bytes(4, '\0')),
              load_safetensors_file),
        {p, "dtype I32 is not supported"});
    // a dtype whose size does not match the offsets: F64 x 1 is 8 bytes, not 4
    check_message(
        fails(p, safetensors_file("{\"w\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,4]}}", Bytes(4, '\0')),
              load_safetensors_file),
        {p, "too large for its data_offsets"});
    p = dir + "/a.npy";
    check_message(
        fails(p, npy_file("{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", Bytes(8, '\0')), load_npy_file),
        {p, "unsupported dtype '<i4'"});
    p = dir + "/images-idx3-ubyte";
    Bytes floats = idx_file({1, 1, 1}, 4);
    floats[2] = 0x0D;  // IDX element type 0x0D: float32
    check_message(fails(p, floats, load_idx_file), {p, "element type 13 is not supported"});
}

TEST_CASE("broken input: empty files") {
    std::string dir = fresh_dir("empty");
    std::string p = dir + "/a.npy";
    check_message(fails(p, "", load_npy_file), {p, "too short to be a .npy file (0 bytes)"});
    p = dir + "/a.safetensors";
    check_message(fails(p, "", load_safetensors_file), {p, "the file has 0 bytes"});
    p = dir + "/images-idx3-ubyte";
    check_message(fails(p, "", load_idx_file), {p, "too short to be an IDX file"});
    p = dir + "/data_batch_1.bin";
    check_message(fails(p, "", load_cifar_file), {p, "empty file"});
    p = dir + "/a.png";
    check_message(fails(p, "", load_image_file), {p, "empty file"});
    // A folder where a file should be, and a file that is not there.
    check_message(error_of([&] { load_npy(dir); }), {dir, "cannot open file"});
    check_message(error_of([&] { nn::load_safetensors(dir + "/missing.safetensors"); }),
                  {dir + "/missing.safetensors", "cannot open file"});
}

TEST_CASE("broken input: garbage in a config file names the file and the line") {
    std::string dir = fresh_dir("config");
    auto args = [] {
        cli::Args a("test", "test");
        a.option("ch", "32", "");
        a.option("lr", "1e-3", "");
        a.flag("flip", "");
        return a;
    };
    std::string p = dir + "/run.cfg";
    // Line 3 is Latin-1 and binary junk, not `key = value`: shown escaped, not raw.
    write_file(p, "# fine\nch = 8\ncaf\xe9 \xff\xfe\n");
    cli::Args a = args();
    check_message(error_of([&] { a.apply_config(p); }), {p + ":3: expected `key = value`", "caf\\xe9 \\xff\\xfe"});
    // Non-UTF-8 bytes in a key
    write_file(p, "ch = 8\n\xc3\x28 = 1\n");
    a = args();
    check_message(error_of([&] { a.apply_config(p); }), {p + ":2: unknown key '\\xc3('"});
    // A binary file given as --config: its first line, then a line with NUL bytes
    write_file(p, Bytes("\x89PNG\r\n\x1a\n\0\0\0\rIHDR", 16));
    a = args();
    check_message(error_of([&] { a.apply_config(p); }), {p + ":1: expected `key = value`, got '\\x89PNG'"});
    write_file(p, Bytes("ch = 8\n\0\0\0\rIHDR\n", 16));
    a = args();
    check_message(error_of([&] { a.apply_config(p); }), {p + ":2: binary data (a NUL byte)"});
    // A value that is no number: the CLI's usage error, naming the option and the line
    write_file(p, "lr = fast\n");
    a = args();
    a.apply_config(p);
    std::string msg;
    try {
        a.number("lr");
    } catch (const cli::ArgError& e) {
        msg = e.what();
    }
    check_message(msg, {"--lr expects a number, got 'fast'", p + ":1"});
    write_file(p, "lr = nan\n");
    a = args();
    a.apply_config(p);
    CHECK_THROWS_AS(a.number("lr"), cli::ArgError);
    // A missing config file, a folder as config file
    check_message(error_of([&] { args().apply_config(dir + "/none.cfg"); }), {dir + "/none.cfg", "cannot open"});
    check_message(error_of([&] { args().apply_config(dir); }), {dir, "cannot open"});
}

// ---- the command line --------------------------------------------------------------------

TEST_CASE("broken input: the CLI exits 2 on an unknown flag, 1 on a bad file naming it") {
    std::string dir = fresh_dir("cli");
    tdtest::CliRun r = tdtest::run_diffuse("sample --ckpt x.safetensors --out x.png --no-such-flag");
    CHECK(r.code == 2);
    check_message(r.output, {"unknown option --no-such-flag"});

    std::string ckpt = dir + "/garbage.safetensors";
    write_file(ckpt, "this is not a safetensors file at all, only some text\n");
    r = tdtest::run_diffuse("sample --ckpt " + ckpt + " --out " + dir + "/x.png");
    CHECK(r.code == 1);
    check_message(r.output, {"error:", ckpt, "header length"});

    // A data set whose images file is cut short.
    std::string data = dir + "/data";
    fs::create_directories(data);
    tdtest::write_bars(data, "train", 16, 8);
    std::string images = data + "/train-images-idx3-ubyte";
    fs::resize_file(images, fs::file_size(images) - 100);
    r = tdtest::run_diffuse("train ddpm --data " + data + " --out " + dir + "/run --steps 1");
    CHECK(r.code == 1);
    check_message(r.output, {"error:", images, "truncated"});

    std::string cfg = dir + "/bad.cfg";
    write_file(cfg, "steps = 5\n\xff\xfe garbage\n");
    r = tdtest::run_diffuse("train ddpm --data " + dir + " --out " + dir + "/run --config " + cfg);
    CHECK(r.code == 1);
    check_message(r.output, {cfg + ":2:", "\\xff\\xfe garbage"});
}

TEST_CASE("broken input: no partial output over an existing file") {
    std::string dir = fresh_dir("no_partial");
    // A failed run: the output file it was told to write keeps its old bytes.
    std::string existing_png = dir + "/existing.png", existing_npy = dir + "/existing.npy";
    write_file(existing_png, "old picture bytes");
    write_file(existing_npy, "old array bytes");
    std::string broken = dir + "/broken.safetensors";
    Bytes st = safetensors_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", Bytes(16, '\0'));
    write_file(broken, st.substr(0, st.size() - 3));
    for (const std::string& out : {existing_png, existing_npy}) {
        tdtest::CliRun r = tdtest::run_diffuse("sample --ckpt " + broken + " --out " + out + " --n 2 --steps 2");
        CHECK(r.code == 1);
        check_message(r.output, {broken});
    }
    CHECK(read_file(existing_png) == "old picture bytes");
    CHECK(read_file(existing_npy) == "old array bytes");

    // The writers themselves: each writes PATH.tmp and renames it. When PATH.tmp cannot
    // be written (here a folder is in its way), the old file stays as it was.
    for (std::string name : {"a.npy", "a.safetensors", "a.png"}) {
        std::string path = dir + "/" + name;
        write_file(path, "old bytes");
        fs::create_directories(path + ".tmp");
        std::string msg = error_of([&] {
            if (name == "a.npy") save_npy(path, ones({2, 2}));
            else if (name == "a.safetensors") nn::save_safetensors(path, {{"w", ones({2})}});
            else write_png(path, zeros({1, 2, 2}));
        });
        check_message(msg, {path});
        CHECK(read_file(path) == "old bytes");
    }
}

// ---- kill -9 during training --------------------------------------------------------------

namespace {

// The checkpoints of a run folder by the rule `diffuse train ddpm --resume` uses:
// checkpoints/step-<N>.safetensors, nothing else (no *.tmp), oldest first.
std::vector<std::string> checkpoints(const std::string& run) {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(run + "/checkpoints", ec)) {
        std::string n = e.path().filename().string();
        if (n.rfind("step-", 0) == 0 && n.size() > 17 && n.substr(n.size() - 12) == ".safetensors")
            out.push_back(e.path());
    }
    std::sort(out.begin(), out.end());
    return out;
}

// Starts `diffuse ARGS` in the background (output to log); returns its process id.
// Between fork and exec the child only calls async-signal-safe functions (open, dup2,
// execv, _exit): the test process may have other threads running.
pid_t start_diffuse(const std::vector<std::string>& args, const std::string& log) {
    std::string exe = (fs::read_symlink("/proc/self/exe").parent_path() / "diffuse").string();
    std::vector<char*> argv{const_cast<char*>(exe.c_str())};
    for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execv(exe.c_str(), argv.data());
        _exit(127);
    }
    return pid;
}

}  // namespace

TEST_CASE("broken input: kill -9 at any moment leaves the newest checkpoint loadable") {
    using clock = std::chrono::steady_clock;
    std::string data = fresh_dir("kill_data"), run = tdtest::scratch("broken/kill_run");
    fs::remove_all(run);
    tdtest::write_bars(data, "train", 32, 8);
    // A checkpoint every step, so that most moments fall inside or near a save.
    std::vector<std::string> args = {
        "train",        "ddpm",   "--data",       data, "--out",    run, "--ch",      "8",  "--mults", "1,2",
        "--res-blocks", "1",      "--attn-res",   "4",  "--groups", "4", "--T",       "50", "--batch", "8",
        "--steps",      "100000", "--ckpt-every", "1",  "--keep",   "2", "--threads", "1"};
    std::string log = tdtest::scratch("broken/kill_run.log");
    std::string newest_before;
    // Four runs (the first fresh, then --resume), each killed a different time after
    // its first new checkpoint appears. (A resumed run that started from anything but
    // the newest checkpoint would rewrite old step numbers: no newer one would appear.)
    for (int delay_ms : {0, 23, 61, 137}) {
        CAPTURE(delay_ms);
        std::vector<std::string> a = args;
        if (!newest_before.empty()) {
            a.push_back("--resume");
            // A trap: a half-written checkpoint of a later step, as a kill during a save
            // leaves it. --resume must not take it (it would fail to load: exit 1).
            Bytes whole = read_file(newest_before);
            write_file(run + "/checkpoints/step-99999999.safetensors.tmp", whole.substr(0, whole.size() / 2));
        }
        pid_t pid = start_diffuse(a, log);
        REQUIRE(pid > 0);
        auto start = clock::now();
        bool new_checkpoint = false;
        while (!new_checkpoint && clock::now() - start < std::chrono::seconds(20)) {
            std::vector<std::string> c = checkpoints(run);
            new_checkpoint = !c.empty() && c.back() != newest_before;
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        kill(pid, SIGKILL);
        int status = 0;
        waitpid(pid, &status, 0);
        INFO(read_file(log));
        REQUIRE(WIFSIGNALED(status));  // it was still training: killed, not finished or failed
        CHECK(WTERMSIG(status) == SIGKILL);
        REQUIRE(new_checkpoint);

        std::vector<std::string> c = checkpoints(run);
        REQUIRE_FALSE(c.empty());
        CHECK(c.back() > newest_before);
        // The newest checkpoint loads, both weight sets, as a model and as trainer state.
        std::string newest = c.back();
        INFO("newest checkpoint: " << newest);
        CHECK(error_of([&] { load_model(newest, true); }) == "");
        CHECK(error_of([&] { load_model(newest, false); }) == "");
        std::map<std::string, std::string> meta;
        nn::load_safetensors(newest, &meta);
        TrainOptions to;
        to.batch_size = 8;
        DdpmTrainer trainer(model_info_from_metadata(meta, newest), to, load_dataset(data, "train"));
        CHECK(error_of([&] { trainer.load_checkpoint(newest); }) == "");
        CHECK(trainer.steps_done() == std::stoll(meta["step"]));
        newest_before = newest;
    }
    fs::remove_all(run);
}
