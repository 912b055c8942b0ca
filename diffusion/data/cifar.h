// diffusion/data/cifar.h: CIFAR-10's binary batches (Krizhevsky 2009,
// https://www.cs.toronto.edu/~kriz/cifar.html, the "binary version").
//
// Each file (data_batch_1.bin .. data_batch_5.bin: 10,000 train images each;
// test_batch.bin: 10,000 test images) is a run of 3,073-byte records:
//   1 byte    the label, 0..9
//   3072 bytes the 32 x 32 image: 1024 red, then 1024 green, then 1024 blue values,
//             each plane row-major: already the (C, H, W) layout of our tensors.
// There is no header: the file size alone says how many records it holds.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "diffusion/data/dataset.h"

namespace td::diffusion {

// The batch files of `split` ("train": data_batch_1..5.bin, "test": test_batch.bin)
// found in `dir` or in `dir`/cifar-10-batches-bin (how the archive unpacks).
// Throws a td::Error saying where to get them when they are missing.
std::vector<std::string> cifar10_files(const std::string& dir, const std::string& split);

// Reads batch files into one Dataset: images (N, 3, 32, 32) in [-1, 1], labels (N).
Dataset load_cifar10_files(const std::vector<std::string>& files, const std::string& split);

// One batch file's bytes already in memory as a Dataset; `name` stands for the file in
// error messages. load_cifar10_files decodes each file's bytes the same way; the fuzz
// target tests/fuzz/fuzz_cifar.cpp calls this.
Dataset parse_cifar10_bytes(const uint8_t* data, size_t size, const std::string& name, const std::string& split);

// cifar10_files + load_cifar10_files.
Dataset load_cifar10(const std::string& dir, const std::string& split);

}  // namespace td::diffusion
