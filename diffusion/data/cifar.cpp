// diffusion/data/cifar.cpp: reading CIFAR-10's binary batches (format in cifar.h).
#include "diffusion/data/cifar.h"

#include <filesystem>
#include <fstream>

#include "diffusion/data/pixels.h"
#include "tensor/error.h"

namespace td::diffusion {

namespace fs = std::filesystem;

static const int64_t kPixels = 3 * 32 * 32;    // 3072 bytes of image per record
static const int64_t kRecord = 1 + kPixels;    // + 1 label byte

std::vector<std::string> cifar10_files(const std::string& dir, const std::string& split) {
    check(split == "train" || split == "test", "cifar10: unknown split '", split, "' (expected train or test)");
    std::vector<std::string> names;
    if (split == "train")
        for (int i = 1; i <= 5; ++i) names.push_back("data_batch_" + std::to_string(i) + ".bin");
    else
        names.push_back("test_batch.bin");
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

Dataset load_cifar10_files(const std::vector<std::string>& files, const std::string& split) {
    // First the sizes: every file must be a whole number of records.
    int64_t total = 0;
    std::vector<int64_t> counts;
    for (const std::string& f : files) {
        std::error_code ec;
        int64_t bytes = (int64_t)fs::file_size(f, ec);
        check(!ec, f, ": cannot open file (", ec.message(), ")");
        check(bytes > 0 && bytes % kRecord == 0, f, ": ", bytes,
              " bytes is not a whole number of CIFAR-10 records (1 label byte + 3072 pixel bytes = 3073 each)");
        counts.push_back(bytes / kRecord);
        total += bytes / kRecord;
    }

    Dataset d;
    d.name = "cifar10";
    d.split = split;
    d.class_names = {"airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"};
    d.num_classes = 10;
    d.images = Tensor::empty({total, 3, 32, 32});  // (N, 3, 32, 32): the records' own layout
    d.labels = Tensor::empty({total}, DType::Int64);
    float* x = d.images.data_f32();
    int64_t* y = d.labels.data_i64();
    std::vector<unsigned char> record(kRecord);
    int64_t i = 0;
    for (size_t k = 0; k < files.size(); ++k) {
        std::ifstream in(files[k], std::ios::binary);
        check(in.good(), files[k], ": cannot open file");
        for (int64_t r = 0; r < counts[k]; ++r, ++i) {
            check((bool)in.read(reinterpret_cast<char*>(record.data()), kRecord), files[k], ": read error at record ",
                  r);
            check(record[0] < 10, files[k], ": record ", r, " has label ", (int)record[0], " (CIFAR-10 labels are 0..9)");
            y[i] = record[0];
            for (int64_t p = 0; p < kPixels; ++p) x[i * kPixels + p] = pixel_to_model(record[1 + p]);
        }
    }
    return d;
}

Dataset load_cifar10(const std::string& dir, const std::string& split) {
    return load_cifar10_files(cifar10_files(dir, split), split);
}

}  // namespace td::diffusion
