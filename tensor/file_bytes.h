// tensor/file_bytes.h: a whole file into memory.
//
// The file parsers (npy, IDX, CIFAR-10, images) are written over bytes in memory:
// parse_npy_bytes(data, size, name) and friends. The file versions read the file with
// this function and hand its bytes over. That keeps one code path for both, and lets
// the fuzz targets (tests/fuzz/) drive the very parser the engine uses without touching
// the disk. The buffer is as large as the file itself, never as large as what a header
// inside it claims.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace td {

// The file's bytes. A missing file, a folder or a read error throws td::Error naming
// the path ("PATH: cannot open file (No such file or directory)").
std::vector<uint8_t> read_file_bytes(const std::string& path);

// Bytes from a file, made safe to print inside an error message: printable ASCII stays,
// anything else (control characters, invalid or non-ASCII UTF-8, NUL) becomes \xNN,
// and text longer than max_chars is cut with "...". A garbage line in a config file or
// a binary header then shows up as something a terminal can display.
std::string printable(const std::string& bytes, size_t max_chars = 120);

}  // namespace td
