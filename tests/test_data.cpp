// tests/test_data.cpp: the data loaders (IDX, CIFAR-10, image folders), load_dataset's
// name resolution and errors, and the batch iterator's shuffling, flips and resume.
// Every file is written here, into scratch paths: no real data set is needed (one last
// test checks data/mnist when scripts/get-data.sh has fetched it, and says so when not).
#include <zlib.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>

// stb_image_write, for writing test images; static, so it cannot clash with the copy
// that tools/plot.cpp compiles.
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

#include "diffusion/data/data.h"
#include "tests/helpers.h"

using namespace td;
using namespace td::diffusion;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<uint8_t>;

// An empty scratch folder of that name (emptied if a previous run left files).
std::string fresh_dir(const std::string& name) {
    std::string dir = tdtest::scratch(name);
    fs::remove_all(dir);
    fs::create_directories(dir);
    return dir;
}

void write_file(const std::string& path, const Bytes& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(bytes.data()), (std::streamsize)bytes.size());
    REQUIRE(f.good());
}

void write_gz(const std::string& path, const Bytes& bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(gzwrite(f, bytes.data(), (unsigned)bytes.size()) == (int)bytes.size());
    REQUIRE(gzclose(f) == Z_OK);
}

// An unsigned-byte IDX file: 00 00 08 rank, big-endian dims, data.
Bytes idx_bytes(const std::vector<uint32_t>& dims, const Bytes& data) {
    Bytes b = {0, 0, 0x08, (uint8_t)dims.size()};
    for (uint32_t d : dims) b.insert(b.end(), {uint8_t(d >> 24), uint8_t(d >> 16), uint8_t(d >> 8), uint8_t(d)});
    b.insert(b.end(), data.begin(), data.end());
    return b;
}

using tdtest::error_of;

using tdtest::contains;

#define CHECK_ERROR_MENTIONS(call, part)                    \
    do {                                                    \
        std::string msg_ = error_of([&] { (void)(call); }); \
        INFO("error message: ", msg_);                      \
        CHECK_FALSE(msg_.empty());                          \
        CHECK(contains(msg_, part));                        \
    } while (0)

// A Dataset whose sample i is an image filled with (i, row, column) patterns, label i % 3.
Dataset numbered_dataset(int64_t n, int64_t c = 1, int64_t h = 2, int64_t w = 3) {
    Dataset d;
    d.name = "numbered";
    d.split = "train";
    d.images = Tensor::empty({n, c, h, w});
    d.labels = Tensor::empty({n}, DType::Int64);
    float* x = d.images.data_f32();
    for (int64_t i = 0; i < n; ++i) {
        for (int64_t k = 0; k < c * h * w; ++k) x[i * c * h * w + k] = (float)(i * 1000 + k);
        d.labels.data_i64()[i] = i % 3;
    }
    d.num_classes = 3;
    d.class_names = {"a", "b", "c"};
    return d;
}

// The sample index an image of numbered_dataset came from (its first element / 1000,
// or its last when flipped: either way the row holds i*1000 + small offsets).
int64_t sample_of(const Tensor& x, int64_t k) {
    int64_t chw = x.numel() / x.size(0);
    return (int64_t)x.data_f32()[k * chw] / 1000;
}

}  // namespace

// ---- IDX -----------------------------------------------------------------------------

TEST_CASE("data: IDX images and labels read back exactly, plain and gzipped") {
    std::string dir = fresh_dir("data_idx");
    // 3 images of 2 x 4 pixels: values 0, 255 and a ramp, so the [-1, 1] mapping is visible
    Bytes pixels(3 * 2 * 4);
    for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = (uint8_t)(i * 11);
    pixels[0] = 0;
    pixels[1] = 255;
    Bytes labels = {7, 0, 9};
    write_file(dir + "/img", idx_bytes({3, 2, 4}, pixels));
    write_gz(dir + "/img.gz", idx_bytes({3, 2, 4}, pixels));
    write_file(dir + "/lab", idx_bytes({3}, labels));
    write_gz(dir + "/lab.gz", idx_bytes({3}, labels));

    for (const char* suffix : {"", ".gz"}) {
        CAPTURE(suffix);
        Tensor x = load_idx_images(dir + "/img" + suffix);
        CHECK(x.shape() == Shape{3, 1, 2, 4});  // (N, 1, H, W), H and W from the header
        CHECK(x.dtype() == DType::Float32);
        std::vector<float> v = x.to_vector();
        CHECK(v[0] == -1.0f);  // x = pixel / 127.5 - 1
        CHECK(v[1] == 1.0f);
        for (size_t i = 2; i < v.size(); ++i) CHECK(v[i] == pixels[i] / 127.5f - 1.0f);
        CHECK(x.at({2, 0, 1, 3}) == pixels[2 * 8 + 1 * 4 + 3] / 127.5f - 1.0f);  // row-major (N, H, W)
        Tensor y = load_idx_labels(dir + "/lab" + suffix);
        CHECK(y.dtype() == DType::Int64);
        CHECK(y.to_vector_i64() == std::vector<int64_t>{7, 0, 9});
    }
}

TEST_CASE("data: malformed IDX files raise td::Error naming the file") {
    std::string dir = fresh_dir("data_idx_bad");
    Bytes four(2 * 2 * 2, 100);  // two 2x2 images

    std::string bad_magic = dir + "/bad_magic";
    Bytes b = idx_bytes({2, 2, 2}, four);
    b[0] = 0x1f;  // not 00 00
    write_file(bad_magic, b);
    CHECK_ERROR_MENTIONS(load_idx_images(bad_magic), bad_magic);
    CHECK_ERROR_MENTIONS(load_idx_images(bad_magic), "bad magic");

    std::string floats = dir + "/float_type";
    b = idx_bytes({2, 2, 2}, four);
    b[2] = 0x0D;  // float elements
    write_file(floats, b);
    CHECK_ERROR_MENTIONS(load_idx_images(floats), floats);

    // truncated: the header claims 2 images, the data holds 1.5
    Bytes cut = idx_bytes({2, 2, 2}, four);
    cut.erase(cut.end() - 2, cut.end());
    write_file(dir + "/short", cut);
    write_gz(dir + "/short.gz", cut);
    CHECK_ERROR_MENTIONS(load_idx_images(dir + "/short"), dir + "/short");
    CHECK_ERROR_MENTIONS(load_idx_images(dir + "/short.gz"), "truncated");

    // a lying header: 10^9 images of 28 x 28 (784 GB) in a file of a few bytes. It must
    // fail on the claim, before allocating anything like it.
    Bytes liar = idx_bytes({1000000000u, 28, 28}, four);
    write_file(dir + "/liar", liar);
    write_gz(dir + "/liar.gz", liar);
    CHECK_ERROR_MENTIONS(load_idx_images(dir + "/liar"), dir + "/liar");
    CHECK_ERROR_MENTIONS(load_idx_images(dir + "/liar.gz"), dir + "/liar.gz");
    CHECK_ERROR_MENTIONS(load_idx_labels(dir + "/liar"), "dimensions");  // rank 3 is no labels file

    // more data than the header accounts for
    Bytes longer = idx_bytes({2, 2, 2}, four);
    longer.push_back(1);
    write_file(dir + "/long", longer);
    write_gz(dir + "/long.gz", longer);
    CHECK_ERROR_MENTIONS(load_idx_images(dir + "/long"), dir + "/long");
    CHECK_ERROR_MENTIONS(load_idx_images(dir + "/long.gz"), "more data");

    // a .gz file cut short in the middle of its compressed stream
    std::string gz = dir + "/cut.gz";
    Bytes big(64 * 64 * 4);
    for (size_t i = 0; i < big.size(); ++i) big[i] = (uint8_t)(i * 2654435761u >> 24);
    write_gz(gz, idx_bytes({4, 64, 64}, big));
    fs::resize_file(gz, fs::file_size(gz) / 2);
    CHECK_ERROR_MENTIONS(load_idx_images(gz), gz);

    CHECK_ERROR_MENTIONS(load_idx_images(dir + "/nothing_here"), dir + "/nothing_here");
    write_file(dir + "/empty", {});
    CHECK_ERROR_MENTIONS(load_idx_images(dir + "/empty"), dir + "/empty");
}

// ---- CIFAR-10 ------------------------------------------------------------------------

// A CIFAR-10 record: label, then R, G, B planes; pixel (c, y, x) = (label * 20 + c * 7 + y + x) % 256.
static Bytes cifar_record(uint8_t label) {
    Bytes r = {label};
    for (int c = 0; c < 3; ++c)
        for (int y = 0; y < 32; ++y)
            for (int x = 0; x < 32; ++x) r.push_back((uint8_t)((label * 20 + c * 7 + y + x) % 256));
    return r;
}

TEST_CASE("data: CIFAR-10 binary batches read back as (N, 3, 32, 32) and labels") {
    std::string dir = fresh_dir("data_cifar");
    std::string inner = dir + "/cifar-10-batches-bin";  // the archive's own folder
    fs::create_directories(inner);
    for (int k = 1; k <= 5; ++k) {
        Bytes file;
        for (int r = 0; r < k; ++r) {  // batch k holds k records: 15 in all
            Bytes rec = cifar_record((uint8_t)((k + r) % 10));
            file.insert(file.end(), rec.begin(), rec.end());
        }
        write_file(inner + "/data_batch_" + std::to_string(k) + ".bin", file);
    }
    Bytes test = cifar_record(3);
    write_file(inner + "/test_batch.bin", test);

    Dataset train = load_dataset("cifar10", "train", {.data_dir = dir});
    CHECK(train.images.shape() == Shape{15, 3, 32, 32});
    CHECK(train.labels.to_vector_i64() == std::vector<int64_t>{1, 2, 3, 3, 4, 5, 4, 5, 6, 7, 5, 6, 7, 8, 9});
    CHECK(train.num_classes == 10);
    CHECK(train.class_names[3] == "cat");
    // sample 1 (label 2), green plane, row 5, column 9
    CHECK(train.images.at({1, 1, 5, 9}) == ((2 * 20 + 7 + 5 + 9) % 256) / 127.5f - 1.0f);
    Dataset t = load_dataset(inner, "test");  // a bare folder is recognised too
    CHECK(t.size() == 1);
    CHECK(t.name == "cifar10");
    CHECK(t.images.at({0, 2, 31, 31}) == ((3 * 20 + 14 + 62) % 256) / 127.5f - 1.0f);

    // damaged files
    Bytes odd = test;
    odd.pop_back();
    std::string bad = fresh_dir("data_cifar_bad");
    write_file(bad + "/test_batch.bin", odd);
    CHECK_ERROR_MENTIONS(load_cifar10(bad, "test"), bad + "/test_batch.bin");
    Bytes label11 = cifar_record(11);
    write_file(bad + "/test_batch.bin", label11);
    CHECK_ERROR_MENTIONS(load_cifar10(bad, "test"), "label 11");
    CHECK_ERROR_MENTIONS(load_cifar10(bad, "train"), "cs.toronto.edu");  // missing: where to get it
}

// configs/cifar10-ddpm.cfg trains on CIFAR-10's own file layout: a folder of binary
// batches (data_batch_1.bin .. data_batch_5.bin, test_batch.bin), given as --data DIR.
TEST_CASE("data: train ddpm with configs/cifar10-ddpm.cfg on a folder of CIFAR-10 batches" *
          doctest::test_suite("long")) {
    std::string dir = fresh_dir("data_cifar_ddpm");
    std::string batches = dir + "/cifar-10-batches-bin";
    fs::create_directories(batches);
    for (int k = 1; k <= 5; ++k) {
        Bytes file;
        for (int r = 0; r < 2; ++r) {  // 2 records a batch: 10 training images
            Bytes rec = cifar_record((uint8_t)((2 * k + r) % 10));
            file.insert(file.end(), rec.begin(), rec.end());
        }
        REQUIRE(file.size() == 2 * 3073);
        write_file(batches + "/data_batch_" + std::to_string(k) + ".bin", file);
    }
    write_file(batches + "/test_batch.bin", cifar_record(3));
    std::string out = dir + "/run";
    tdtest::CliRun r =
        tdtest::run_diffuse("train ddpm --config configs/cifar10-ddpm.cfg --data " + batches + " --out " + out +
                            " --steps 2 --batch 4 --final-samples 2 --final-steps 2 --threads 1" +
                            " --ch 8 --groups 4 --T 50");  // the config's levels and attention, small
    INFO(r.output);
    CHECK(r.code == 0);
    CHECK(fs::exists(out + "/model.safetensors"));
}

// ---- folders of images ---------------------------------------------------------------

TEST_CASE("data: a folder of PNG and JPG images: classes, resize, center crop, channels") {
    std::string dir = fresh_dir("data_images");
    fs::create_directories(dir + "/cats");
    fs::create_directories(dir + "/dogs");
    // cats/a.png: RGB 8 wide x 4 high; R = 30 * x, G = 200, B = 10 * y
    std::vector<unsigned char> rgb;
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 8; ++x) rgb.insert(rgb.end(), {(unsigned char)(30 * x), 200, (unsigned char)(10 * y)});
    REQUIRE(stbi_write_png((dir + "/cats/a.png").c_str(), 8, 4, 3, rgb.data(), 8 * 3));
    // cats/b.png: grey 4 x 4, left half 0, right half 255
    std::vector<unsigned char> grey;
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 4; ++x) grey.push_back(x < 2 ? 0 : 255);
    REQUIRE(stbi_write_png((dir + "/cats/b.png").c_str(), 4, 4, 1, grey.data(), 4));
    // dogs/c.jpg: a flat colour 16 x 16 (JPEG is lossy: flat survives it well)
    std::vector<unsigned char> flat(16 * 16 * 3);
    for (size_t i = 0; i < flat.size(); i += 3) flat[i] = 100, flat[i + 1] = 150, flat[i + 2] = 50;
    REQUIRE(stbi_write_jpg((dir + "/dogs/c.jpg").c_str(), 16, 16, 3, flat.data(), 95));
    write_file(dir + "/dogs/notes.txt", {'h', 'i'});  // not an image: ignored

    Dataset d = load_dataset(dir, "train", {.data_dir = "", .image_size = 4, .channels = 3});
    CHECK(d.images.shape() == Shape{3, 3, 4, 4});
    CHECK(d.labels.to_vector_i64() == std::vector<int64_t>{0, 0, 1});
    CHECK(d.class_names == std::vector<std::string>{"cats", "dogs"});
    CHECK(d.num_classes == 2);
    CHECK(d.name == "data_images");
    // a.png is 8 x 4: its shorter side is already 4, so no resampling, only the center crop
    // (columns 2..5): R = 30 * (x + 2) exactly
    for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 4; ++x) {
            CHECK(d.images.at({0, 0, y, x}) == (30 * (x + 2)) / 127.5f - 1.0f);
            CHECK(d.images.at({0, 1, y, x}) == 200 / 127.5f - 1.0f);
            CHECK(d.images.at({0, 2, y, x}) == (10 * y) / 127.5f - 1.0f);
        }
    // b.png is grey: repeated into R, G, B
    CHECK(d.images.at({1, 0, 0, 0}) == -1.0f);
    CHECK(d.images.at({1, 2, 3, 3}) == 1.0f);
    // c.jpg: close to the flat colour
    CHECK(std::fabs(d.images.at({2, 0, 1, 1}) - (100 / 127.5f - 1.0f)) < 0.05f);
    CHECK(std::fabs(d.images.at({2, 1, 2, 2}) - (150 / 127.5f - 1.0f)) < 0.05f);

    // shrinking averages: grey b.png (left black, right white) at 2 x 2, one channel
    Tensor small = load_image(dir + "/cats/b.png", 2, 1);
    CHECK(small.shape() == Shape{1, 2, 2});
    CHECK(small.at({0, 0, 0}) < -0.3f);  // the left column stays dark, the right bright,
    CHECK(small.at({0, 1, 1}) > 0.3f);   // each blended with its neighbour by the tent
    CHECK(small.at({0, 0, 0}) == doctest::Approx(-small.at({0, 0, 1})).epsilon(1e-5));
    // a constant image stays constant through any resize
    Tensor c = resize_bilinear(full({2, 5, 7}, 42.0f), 3, 11);
    CHECK(c.shape() == Shape{2, 3, 11});
    for (float v : c.to_vector()) CHECK(v == doctest::Approx(42.0f));
    // RGB -> one channel uses stb's luma (77 R + 150 G + 29 B) / 256
    Tensor luma = load_image(dir + "/dogs/c.jpg", 8, 1);
    CHECK(luma.shape() == Shape{1, 8, 8});
    CHECK(std::fabs(luma.at({0, 4, 4}) - ((77 * 100 + 150 * 150 + 29 * 50) / 256 / 127.5f - 1.0f)) < 0.05f);

    // errors name the file or the folder
    std::string broken = fresh_dir("data_images_bad");
    write_file(broken + "/x.png", {0x89, 'P', 'N', 'G', 1, 2, 3});
    CHECK_ERROR_MENTIONS(load_dataset(broken, "train", {.data_dir = "", .image_size = 4}), broken + "/x.png");
    std::string empty = fresh_dir("data_images_empty");
    CHECK_ERROR_MENTIONS(load_dataset(empty, "train"), "no images");
    CHECK_ERROR_MENTIONS(load_dataset(dir, "test"), "no 'test' sub-folder");
}

// ---- load_dataset --------------------------------------------------------------------

TEST_CASE("data: load_dataset finds IDX files by their usual names and says how to get missing ones") {
    std::string dir = fresh_dir("data_named");
    Bytes px(5 * 3 * 3, 128), lab = {0, 1, 2, 9, 4};
    write_gz(dir + "/train-images-idx3-ubyte.gz", idx_bytes({5, 3, 3}, px));
    write_gz(dir + "/train-labels-idx1-ubyte.gz", idx_bytes({5}, lab));
    write_file(dir + "/t10k-images-idx3-ubyte", idx_bytes({2, 3, 3}, Bytes(18, 0)));  // the original names
    write_file(dir + "/t10k-labels-idx1-ubyte", idx_bytes({2}, {3, 3}));

    Dataset d = load_dataset("mnist", "train", {.data_dir = dir});
    CHECK(d.name == "mnist");
    CHECK(d.images.shape() == Shape{5, 1, 3, 3});
    CHECK(d.num_classes == 10);
    CHECK(class_histogram(d) == std::vector<int64_t>{1, 1, 1, 0, 1, 0, 0, 0, 0, 1});
    Dataset t = load_dataset("fashion", "test", {.data_dir = dir});
    CHECK(t.size() == 2);
    CHECK(t.class_names[9] == "Ankle boot");
    CHECK(load_dataset(dir, "test").size() == 2);  // a bare folder of IDX files

    std::string none = fresh_dir("data_named_none");
    CHECK_ERROR_MENTIONS(load_dataset("mnist", "train", {.data_dir = none}), "scripts/get-data.sh mnist");
    CHECK_ERROR_MENTIONS(load_dataset("fashion", "test", {.data_dir = none}), "scripts/get-data.sh fashion");
    CHECK_ERROR_MENTIONS(load_dataset("mnist", "valid", {.data_dir = dir}), "valid");
    CHECK_ERROR_MENTIONS(load_dataset("imagenet-please"), "imagenet-please");

    // images and labels that disagree on the count
    write_file(dir + "/t10k-labels-idx1-ubyte", idx_bytes({3}, {3, 3, 3}));
    CHECK_ERROR_MENTIONS(load_dataset("mnist", "test", {.data_dir = dir}), "3 labels");
}

// ---- the batch iterator ----------------------------------------------------------------

TEST_CASE("data: shuffling is a deterministic permutation per seed and epoch") {
    Dataset d = numbered_dataset(10);
    auto one_epoch = [&](BatchIterator& it) {
        std::vector<int64_t> seen;
        for (int64_t b = 0; b < it.batches_per_epoch(); ++b) {
            Batch batch = it.next();
            for (int64_t k = 0; k < batch.x.size(0); ++k) {
                seen.push_back(sample_of(batch.x, k));
                CHECK(batch.y.data_i64()[k] == seen.back() % 3);  // labels travel with their images
            }
        }
        return seen;
    };
    BatchIterator a(d, {.batch_size = 3, .seed = 7, .drop_last = false});
    BatchIterator b(d, {.batch_size = 3, .seed = 7, .drop_last = false});
    BatchIterator c(d, {.batch_size = 3, .seed = 8, .drop_last = false});
    CHECK(a.batches_per_epoch() == 4);  // 3 + 3 + 3 + 1
    std::vector<int64_t> a0 = one_epoch(a), b0 = one_epoch(b), c0 = one_epoch(c);
    std::vector<int64_t> sorted = a0;
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == std::vector<int64_t>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});  // a permutation
    CHECK(a0 == b0);                                                      // same seed, same order
    CHECK(a0 != c0);                                                      // another seed, another
    std::vector<int64_t> a1 = one_epoch(a);
    CHECK(a.epoch() == 1);
    CHECK(a1 != a0);  // each epoch its own order
    std::sort(a1.begin(), a1.end());
    CHECK(a1 == sorted);

    BatchIterator plain(d, {.batch_size = 4, .shuffle = false});  // drop_last: 2 full batches
    CHECK(plain.batches_per_epoch() == 2);
    CHECK(sample_of(plain.next().x, 0) == 0);
    CHECK(sample_of(plain.next().x, 3) == 7);
    CHECK(sample_of(plain.next().x, 0) == 0);  // samples 8, 9 dropped: a new epoch began
    CHECK(plain.epoch() == 1);

    CHECK_ERROR_MENTIONS(BatchIterator(d, {.batch_size = 11}), "larger than");
    CHECK_ERROR_MENTIONS(BatchIterator(d, {.batch_size = 0}), "batch size");
}

TEST_CASE("data: horizontal flip mirrors each row, for about half the samples") {
    Dataset d = numbered_dataset(64, 2, 3, 4);  // element k of sample i = i*1000 + k
    BatchIterator it(d, {.batch_size = 64, .seed = 3, .shuffle = false, .hflip = true});
    Batch b = it.next();
    int flipped = 0;
    for (int64_t i = 0; i < 64; ++i) {
        bool is_flipped = b.x.at({i, 0, 0, 0}) == (float)(i * 1000 + 3);  // the row's last element came first
        flipped += is_flipped;
        for (int64_t c = 0; c < 2; ++c)
            for (int64_t y = 0; y < 3; ++y)
                for (int64_t x = 0; x < 4; ++x) {
                    int64_t sx = is_flipped ? 3 - x : x;
                    CHECK(b.x.at({i, c, y, x}) == (float)(i * 1000 + (c * 3 + y) * 4 + sx));
                }
    }
    CHECK(flipped > 16);  // 64 fair coins: 32 expected
    CHECK(flipped < 48);
    BatchIterator again(d, {.batch_size = 64, .seed = 3, .shuffle = false, .hflip = true});
    CHECK(again.next().x.to_vector() == b.x.to_vector());  // the same coins for the same seed
    BatchIterator off(d, {.batch_size = 64, .seed = 3, .shuffle = false, .hflip = false});
    CHECK(off.next().x.to_vector() == d.images.to_vector());
}

TEST_CASE("data: a restored iterator continues with the very same batches") {
    Dataset d = numbered_dataset(10);
    BatchOptions opt{.batch_size = 4, .seed = 11, .hflip = true};  // 2 batches per epoch
    BatchIterator it(d, opt);
    for (int i = 0; i < 3; ++i) it.next();  // into epoch 1
    BatchState saved = it.state();
    CHECK(saved.epoch == 1);
    CHECK(saved.index == 4);
    std::vector<std::vector<float>> expected_x;
    std::vector<std::vector<int64_t>> expected_y;
    for (int i = 0; i < 5; ++i) {  // across two more epoch boundaries
        Batch b = it.next();
        expected_x.push_back(b.x.to_vector());
        expected_y.push_back(b.y.to_vector_i64());
    }
    BatchIterator resumed(d, opt);
    resumed.restore(saved);
    CHECK(resumed.epoch() == 1);
    for (int i = 0; i < 5; ++i) {
        Batch b = resumed.next();
        CHECK(b.x.to_vector() == expected_x[i]);
        CHECK(b.y.to_vector_i64() == expected_y[i]);
    }
    CHECK(resumed.state().gen_offset == it.state().gen_offset);

    BatchIterator other(numbered_dataset(12), opt);
    CHECK_ERROR_MENTIONS(other.restore(saved), "10 samples");
}

// ---- the real data, when scripts/get-data.sh has fetched it --------------------------

TEST_CASE("data: the fetched MNIST split is 8,000 train + 2,000 held out, stratified by digit") {
    if (!fs::exists("data/mnist/train-images-idx3-ubyte.gz")) {
        MESSAGE("SKIPPED: data/mnist not fetched (run scripts/get-data.sh mnist)");
        return;
    }
    Dataset train = load_dataset("mnist", "train");
    Dataset test = load_dataset("mnist", "test");
    CHECK(train.images.shape() == Shape{8000, 1, 28, 28});
    CHECK(test.images.shape() == Shape{2000, 1, 28, 28});
    // 80% of each digit's images in the package (1001 1127 991 1032 980 863 1014 1070 944 978)
    CHECK(class_histogram(train) == std::vector<int64_t>{801, 902, 793, 826, 784, 690, 811, 856, 755, 782});
    CHECK(class_histogram(test) == std::vector<int64_t>{200, 225, 198, 206, 196, 173, 203, 214, 189, 196});
    std::vector<float> v = train.images.to_vector();
    CHECK(*std::min_element(v.begin(), v.end()) == -1.0f);
    CHECK(*std::max_element(v.begin(), v.end()) == 1.0f);
    CHECK(train.labels.to_vector_i64()[13] == 3);  // round-robin order: sample k has label k % 10
}
