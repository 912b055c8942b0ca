// diffusion/data/dataset.cpp: finding a data set by name (see dataset.h).
#include "diffusion/data/dataset.h"

#include <algorithm>
#include <filesystem>

#include "diffusion/data/cifar.h"
#include "diffusion/data/idx.h"
#include "diffusion/data/image_folder.h"
#include "tensor/error.h"

namespace td::diffusion {

namespace fs = std::filesystem;

namespace {

// The file names an IDX split goes by: ours (train-, test-), the original distribution's
// (train-, t10k-), with '-' or '.' before idx3 (both circulate), plain or .gz.
std::vector<std::string> idx_candidates(const std::string& split, const std::string& kind /* images | labels */) {
    std::vector<std::string> prefixes =
        split == "train" ? std::vector<std::string>{"train"} : std::vector<std::string>{"test", "t10k"};
    std::string idx = kind == "images" ? "idx3-ubyte" : "idx1-ubyte";
    std::vector<std::string> names;
    for (const std::string& p : prefixes)
        for (const char* sep : {"-", "."})
            for (const char* gz : {".gz", ""}) names.push_back(p + "-" + kind + sep + idx + gz);
    return names;
}

// The first candidate present in dir, or "".
std::string find_first(const fs::path& dir, const std::vector<std::string>& names) {
    for (const std::string& n : names)
        if (fs::is_regular_file(dir / n)) return (dir / n).string();
    return "";
}

bool has_idx(const fs::path& dir, const std::string& split) {
    return !find_first(dir, idx_candidates(split, "images")).empty();
}

bool has_cifar(const fs::path& dir) {
    for (const fs::path& base : {dir, dir / "cifar-10-batches-bin"})
        if (fs::exists(base / "data_batch_1.bin") || fs::exists(base / "test_batch.bin")) return true;
    return false;
}

// An IDX data set in `dir`; `hint` says how to get the files when they are missing.
Dataset load_idx_dir(const fs::path& dir, const std::string& name, const std::string& split,
                     const std::vector<std::string>& class_names, const std::string& hint) {
    std::vector<std::string> image_names = idx_candidates(split, "images"),
                             label_names = idx_candidates(split, "labels");
    std::string images = find_first(dir, image_names), labels = find_first(dir, label_names);
    check(!images.empty(), name, ": no ", image_names[0], " in ", dir.string(), "/ (nor ", image_names.back(),
          " or the other usual names). ", hint);
    check(!labels.empty(), name, ": found ", images, " but no ", label_names[0], " beside it (nor ", label_names.back(),
          " or the other usual names). ", hint);
    return load_idx_dataset(images, labels, name, split, class_names);
}

// "x" for "a/x", "a/x/" and "a/x/.".
std::string folder_name(const fs::path& dir) {
    fs::path p = fs::absolute(dir).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
    return p.filename().string();
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return (char)std::tolower(c); });
    return s;
}

}  // namespace

std::string Dataset::image_shape() const { return shape_str(Shape(images.shape().begin() + 1, images.shape().end())); }

std::string builtin_dataset(const std::string& name) {
    std::string d = lower(name);
    if (d == "fashion-mnist" || d == "fashion_mnist") return "fashion";
    if (d == "cifar-10") return "cifar10";
    return d == "mnist" || d == "fashion" || d == "cifar10" ? d : "";
}

Dataset load_dataset(const std::string& name_or_dir, const std::string& split, const DataOptions& options) {
    check(split == "train" || split == "test", "load_dataset: unknown split '", split, "' (expected train or test)");
    std::string name = builtin_dataset(name_or_dir);
    auto dir_for = [&](const std::string& default_dir) {
        return fs::path(options.data_dir.empty() ? default_dir : options.data_dir);
    };

    if (name == "mnist") {
        std::vector<std::string> digits;
        for (int c = 0; c < 10; ++c) digits.push_back(std::to_string(c));
        return load_idx_dir(dir_for("data/mnist"), "mnist", split, digits,
                            "Run scripts/get-data.sh mnist to fetch it, or point --data at a folder holding the "
                            "MNIST IDX files.");
    }
    if (name == "fashion") {
        // Zalando's label names (https://github.com/zalandoresearch/fashion-mnist)
        std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
        return load_idx_dir(dir_for("data/fashion"), "fashion", split, names,
                            "Run scripts/get-data.sh fashion to fetch it, or point --data at a folder holding the "
                            "Fashion-MNIST IDX files.");
    }
    if (name == "cifar10") return load_cifar10(dir_for("data/cifar10").string(), split);

    // Otherwise a folder: of IDX files, of CIFAR-10 batches, or of images.
    fs::path dir = name_or_dir;
    check(fs::is_directory(dir), "load_dataset: '", name_or_dir,
          "' is neither a known data set (mnist, fashion, cifar10) nor a folder");
    if (has_cifar(dir)) return load_cifar10(dir.string(), split);
    if (has_idx(dir, "train") || has_idx(dir, "test")) return load_idx_dir(dir, folder_name(dir), split, {}, "");
    // A folder of images: DIR/train/ and DIR/test/ when it has them, else DIR is the train set.
    fs::path images = dir;
    if (fs::is_directory(dir / split)) images = dir / split;
    else
        check(split == "train", name_or_dir, ": no '", split, "' sub-folder, so there is no ", split,
              " split (the folder itself is used as the train split)");
    Dataset d = load_image_folder(images.string(), options.image_size, options.channels);
    d.name = folder_name(dir);
    d.split = split;
    return d;
}

std::vector<int64_t> class_histogram(const Dataset& data) {
    std::vector<int64_t> h(data.num_classes, 0);
    const int64_t* y = data.labels.data_i64();
    for (int64_t i = 0; i < data.labels.numel(); ++i) {
        check(y[i] >= 0 && y[i] < data.num_classes, data.name, ": label ", y[i], " of sample ", i, " out of range for ",
              data.num_classes, " classes");
        h[y[i]]++;
    }
    return h;
}

}  // namespace td::diffusion
