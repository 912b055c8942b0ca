// tensor/file_bytes.cpp: see file_bytes.h.
#include "tensor/file_bytes.h"

#include <filesystem>
#include <fstream>

#include "tensor/error.h"

namespace td {

std::vector<uint8_t> read_file_bytes(const std::string& path) {
    // file_size fails on a folder and on a missing file, with the reason in `ec`.
    std::error_code ec;
    uintmax_t size = std::filesystem::file_size(path, ec);
    check(!ec, path, ": cannot open file (", ec.message(), ")");
    std::ifstream f(path, std::ios::binary);
    check(f.good(), path, ": cannot open file");
    std::vector<uint8_t> bytes(size);
    f.read(reinterpret_cast<char*>(bytes.data()), (std::streamsize)size);
    check(f.good() && (uintmax_t)f.gcount() == size, path, ": read error after ", f.gcount(), " of ", size, " bytes");
    return bytes;
}

std::string printable(const std::string& bytes, size_t max_chars) {
    static const char* hex = "0123456789abcdef";
    std::string out;
    for (size_t i = 0; i < bytes.size(); ++i) {
        if (i == max_chars) return out + "...";
        unsigned char c = (unsigned char)bytes[i];
        if (c >= 0x20 && c < 0x7f) out += (char)c;
        else out += std::string("\\x") + hex[c >> 4] + hex[c & 15];
    }
    return out;
}

}  // namespace td
