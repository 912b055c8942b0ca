// diffusion/data/idx.h: the IDX format of MNIST and Fashion-MNIST, plain or gzipped.
//
// An IDX file (LeCun et al., http://yann.lecun.com/exdb/mnist/) is
//   bytes 0-1   0x00 0x00
//   byte  2     the element type: 0x08 = unsigned byte (the only one MNIST uses, and ours)
//   byte  3     the number of dimensions, k (3 for images: N, H, W; 1 for labels: N)
//   k x 4 bytes each dimension's size, big-endian uint32
//   then        prod(dims) elements, row-major (for images: N images of H rows of W pixels)
// The .gz files are the same bytes gzipped (they start with the gzip magic 1f 8b); zlib's
// inflate decompresses them in memory, only as far as the header's claim reaches.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "diffusion/data/dataset.h"
#include "tensor/tensor.h"

namespace td::diffusion {

struct IdxArray {
    Shape dims;                  // as in the header, e.g. [60000, 28, 28]
    std::vector<uint8_t> bytes;  // prod(dims) elements, row-major
};

// Reads an unsigned-byte IDX file (plain or .gz) of rank `expected_rank` (0 = any).
// Checks the magic, the rank, and that the data holds exactly the bytes the header
// claims, before allocating them: a lying header is a td::Error naming the file.
IdxArray read_idx(const std::string& path, int expected_rank = 0);

// The same from bytes already in memory (a plain or gzipped IDX file); `name` stands for
// the file in error messages. read_idx reads the file and calls this; so does the fuzz
// target tests/fuzz/fuzz_idx.cpp.
IdxArray parse_idx_bytes(const uint8_t* data, size_t size, const std::string& name, int expected_rank = 0);

// images: (N, 1, H, W) float32 in [-1, 1] (x = pixel / 127.5 - 1); labels: (N) int64.
Tensor load_idx_images(const std::string& path);
Tensor load_idx_labels(const std::string& path);

// An images file and its labels file as a Dataset (counts must agree, labels < num_classes).
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path, const std::string& name,
                         const std::string& split, const std::vector<std::string>& class_names);

}  // namespace td::diffusion
