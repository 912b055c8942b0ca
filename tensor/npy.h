// tensor/npy.h: NumPy's .npy format, the way tensors leave and enter the engine
// (PyTorch fixtures, sampled images, debugging dumps).
//
// Layout (format version 1.0): the magic "\x93NUMPY", version bytes 1 0, a 2-byte
// little-endian header length, then a Python-dict header such as
// {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }, padded with spaces to a
// multiple of 64 bytes and ended by '\n', then the raw little-endian data.
#pragma once
#include <cstdint>
#include <string>

#include "tensor/tensor.h"

namespace td {

// Reads float32 ('<f4'), float64 ('<f8', converted to float32) and int64 ('<i8') arrays
// in C order. Any problem (missing file, bad magic, truncated data, a header claiming
// more data than the file holds, bytes left over after the data) throws td::Error
// naming the file; a header's claim is checked against the file size before anything
// is allocated.
Tensor load_npy(const std::string& path);

// The same from a .npy file's bytes already in memory; `name` stands for the file in
// error messages. load_npy reads the file and calls this; so does the fuzz target
// tests/fuzz/fuzz_npy.cpp.
Tensor parse_npy_bytes(const uint8_t* data, size_t size, const std::string& name);

// Writes C-order '<f4' or '<i8' (a tensor on the GPU is copied to the CPU first).
// Written to PATH.tmp and renamed, so an existing file is replaced whole or not at all.
void save_npy(const std::string& path, const Tensor& t);

}  // namespace td
