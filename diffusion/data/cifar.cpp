// diffusion/data/cifar.cpp: reading CIFAR-10's binary batches (format in cifar.h).
#include "diffusion/data/cifar.h"

#include <filesystem>

#include "diffusion/data/pixels.h"
#include "tensor/error.h"
#include "tensor/file_bytes.h"

namespace td::diffusion {

namespace fs = std::filesystem;

static const int64_t kPixels = 3 * 32 * 32;  // 3072 bytes of image per record
static const int64_t kRecord = 1 + kPixels;  // + 1 label byte

std::vector<std::string> cifar10_files(const std::string& dir, const std::string& split) {
    check(split == "train" || split == "test", "cifar10: unknown split '", split, "' (expected train or test)");
    std::vector<std::string> names;
    if (split == "train")
        for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
    else names.push_back("test_batch.bin");
    for (const fs::path& base : {fs::path(dir), fs::path(dir) / "cifar-10-batches-bin"}) {
        if (!fs::exists(base / names[0])) continue;
        std::vector<std::string> files;
        for (const std::string& n : names) {
            check(fs::exists(base / n), "cifar10: ", (base / n).string(), " is missing (found ", names[0],
                  " beside it)");
            files.push_back((base / n).string());
        }
        return files;
    }
    fail("cifar10: no ", names[0], " in ", dir, "/ (nor in ", dir,
         "/cifar-10-batches-bin/). CIFAR-10 is not fetched by scripts/get-data.sh: download the "
         "binary version (cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html, "
         "unpack it, and point --data at the cifar-10-batches-bin folder");
}

namespace {

// How many records a file of `bytes` bytes holds; a td::Error naming the file when that
// is not a whole, positive number (there is no header: the size is all we can check).
int64_t count_records(int64_t bytes, const std::string& name) {
    check(bytes > 0, name, ": empty file (a CIFAR-10 batch is a run of 3073-byte records)");
    check(bytes % kRecord == 0, name, ": ", bytes,
          " bytes is not a whole number of CIFAR-10 records (1 label byte + 3072 pixel bytes = 3073 each): "
          "truncated, or not a CIFAR-10 batch");
    return bytes / kRecord;
}

// A Dataset of `total` records with CIFAR-10's names and classes, pixels not yet filled in.
Dataset empty_cifar10(int64_t total, const std::string& split) {
    Dataset d;
    d.name = "cifar10";
    d.split = split;
    d.class_names = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
    d.num_classes = 10;
    d.images = Tensor::empty({total, 3, 32, 32});  // (N, 3, 32, 32): the records' own layout
    d.labels = Tensor::empty({total}, DType::Int64);
    return d;
}

// Decodes `count` records from `data` into images x (count, 3, 32, 32) and labels y (count).
void decode_records(const uint8_t* data, int64_t count, const std::string& name, float* x, int64_t* y) {
    for (int64_t r = 0; r < count; ++r) {
        const uint8_t* record = data + r * kRecord;
        check(record[0] < 10, name, ": record ", r, " has label ", (int)record[0], " (CIFAR-10 labels are 0..9)");
        y[r] = record[0];
        for (int64_t p = 0; p < kPixels; ++p) x[r * kPixels + p] = pixel_to_model(record[1 + p]);
    }
}

}  // namespace

Dataset parse_cifar10_bytes(const uint8_t* data, size_t size, const std::string& name, const std::string& split) {
    int64_t count = count_records((int64_t)size, name);
    Dataset d = empty_cifar10(count, split);
    decode_records(data, count, name, d.images.data_f32(), d.labels.data_i64());
    return d;
}

Dataset load_cifar10_files(const std::vector<std::string>& files, const std::string& split) {
    // First the sizes, so that a damaged file is found before anything is allocated.
    int64_t total = 0;
    std::vector<int64_t> counts;
    for (const std::string& f : files) {
        std::error_code ec;
        int64_t bytes = (int64_t)fs::file_size(f, ec);
        check(!ec, f, ": cannot open file (", ec.message(), ")");
        counts.push_back(count_records(bytes, f));
        total += counts.back();
    }

    Dataset d = empty_cifar10(total, split);
    int64_t first = 0;  // the dataset index of this file's first record
    for (size_t k = 0; k < files.size(); ++k) {
        std::vector<uint8_t> bytes = read_file_bytes(files[k]);
        check((int64_t)bytes.size() == counts[k] * kRecord, files[k], ": the file changed size while being read");
        decode_records(bytes.data(), counts[k], files[k], d.images.data_f32() + first * kPixels,
                       d.labels.data_i64() + first);
        first += counts[k];
    }
    return d;
}

Dataset load_cifar10(const std::string& dir, const std::string& split) {
    return load_cifar10_files(cifar10_files(dir, split), split);
}

}  // namespace td::diffusion
