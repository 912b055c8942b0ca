// tensor/npy.cpp: reading and writing .npy files (see npy.h for the format).
#include "tensor/npy.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "tensor/error.h"
#include "tensor/file_bytes.h"

namespace td {

// The value that follows 'key': in the header dict, as raw text up to the next ',' or
// the closing ')' for the shape tuple.
static std::string header_field(const std::string& header, const std::string& key, const std::string& path) {
    size_t k = header.find("'" + key + "'");
    check(k != std::string::npos, path, ": npy header has no '", key, "' field: ", printable(header));
    size_t colon = header.find(':', k);
    check(colon != std::string::npos, path, ": malformed npy header: ", printable(header));
    size_t begin = header.find_first_not_of(' ', colon + 1);
    check(begin != std::string::npos, path, ": malformed npy header: ", printable(header));
    size_t end = header[begin] == '(' ? header.find(')', begin) + 1 : header.find_first_of(",}", begin);
    check(end != std::string::npos && end > begin, path, ": malformed npy header: ", printable(header));
    return header.substr(begin, end - begin);
}

// NumPy allows at most 64 dimensions (32 before NumPy 2.0); more is a damaged header.
static const size_t kMaxDims = 64;
// A bound on any array's element count, even one with a 0 in its shape: such an array
// holds no data, so the file size cannot bound its other dimensions, yet their product
// still sizes the tensor's strides. 2^40 elements is 4 TB of float32.
static const int64_t kMaxElements = int64_t(1) << 40;

// "(2, 3)" -> {2, 3}; "(3,)" -> {3}; "()" -> {} (a scalar).
static Shape parse_shape(const std::string& tuple, const std::string& path) {
    check(tuple.size() >= 2 && tuple.front() == '(' && tuple.back() == ')', path, ": bad shape ", printable(tuple));
    Shape shape;
    std::string body = tuple.substr(1, tuple.size() - 2);
    std::stringstream ss(body);
    std::string item;
    while (std::getline(ss, item, ',')) {  // (getline yields no empty item after the comma of (3,))
        size_t b = item.find_first_not_of(' ');
        check(b != std::string::npos, path, ": bad shape ", printable(tuple), " (an empty dimension)");
        size_t e = item.find_last_not_of(' ');
        std::string num = item.substr(b, e - b + 1);
        check(num.find_first_not_of("0123456789") == std::string::npos && num.size() <= 12, path, ": bad dimension '",
              printable(num), "' in shape ", printable(tuple));
        shape.push_back(std::stoll(num));
        check(shape.size() <= kMaxDims, path, ": shape ", printable(tuple), " has more than ", kMaxDims, " dimensions");
    }
    return shape;
}

Tensor load_npy(const std::string& path) {
    std::vector<uint8_t> file = read_file_bytes(path);
    return parse_npy_bytes(file.data(), file.size(), path);
}

// (`path` is whatever name the caller gave the bytes: the file's path for load_npy.)
Tensor parse_npy_bytes(const uint8_t* data, size_t size, const std::string& path) {
    const char* pre = reinterpret_cast<const char*>(data);
    int64_t file_size = (int64_t)size;
    check(file_size >= 10, path, ": too short to be a .npy file (", file_size, " bytes)");
    check(std::memcmp(pre, "\x93NUMPY", 6) == 0, path, ": not a .npy file (bad magic)");
    check(pre[6] == 1 || pre[6] == 2 || pre[6] == 3, path, ": unsupported .npy version ", (int)pre[6]);
    int64_t header_len, header_start;
    if (pre[6] == 1) {  // version 1: a 2-byte little-endian header length
        header_len = (int64_t)data[8] | ((int64_t)data[9] << 8);
        header_start = 10;
    } else {  // versions 2 and 3: a 4-byte one
        check(file_size >= 12, path, ": truncated .npy header");
        header_len = (int64_t)data[8] | ((int64_t)data[9] << 8) | ((int64_t)data[10] << 16) | ((int64_t)data[11] << 24);
        header_start = 12;
    }
    int64_t data_start = header_start + header_len;
    check(data_start <= file_size, path, ": header length ", header_len, " runs past the end of the file (", file_size,
          " bytes): truncated?");
    std::string header(pre + header_start, (size_t)header_len);

    std::string descr = header_field(header, "descr", path);
    std::string fortran = header_field(header, "fortran_order", path);
    Shape shape = parse_shape(header_field(header, "shape", path), path);
    check(fortran == "False", path, ": Fortran-order arrays are not supported (save with np.ascontiguousarray)");
    int64_t elem;
    if (descr == "'<f4'") elem = 4;
    else if (descr == "'<f8'" || descr == "'<i8'") elem = 8;
    else fail(path, ": unsupported dtype ", printable(descr), " (expected '<f4', '<f8' or '<i8')");

    // Check the claimed size against the file before allocating anything. The product is
    // bounded on the way (each factor against kMaxElements / the product so far), so it
    // cannot overflow whatever the header says.
    int64_t nonzero = 1;  // the product of the non-zero dimensions
    bool empty = false;
    for (int64_t d : shape) {
        if (d == 0) {
            empty = true;
            continue;
        }
        check(nonzero <= kMaxElements / d, path, ": header claims shape ", shape,
              ", over 2^40 elements: a damaged header?");
        nonzero *= d;
    }
    int64_t n = empty ? 0 : nonzero, data_bytes = file_size - data_start;
    check(n * elem <= data_bytes, path, ": truncated: header claims shape ", shape, " of ", descr, " = ", n * elem,
          " bytes of data, the file holds ", data_bytes);
    check(n * elem == data_bytes, path, ": ", data_bytes - n * elem, " bytes after the data of shape ", shape, " (",
          n * elem, " bytes): a wrong header, or not a .npy file");

    const uint8_t* src = data + data_start;  // not aligned: copied with memcpy, never cast
    if (descr == "'<i8'") {
        Tensor t = Tensor::empty(shape, DType::Int64);
        if (n > 0) std::memcpy(t.data_i64(), src, (size_t)(n * 8));
        return t;
    }
    Tensor t = Tensor::empty(shape);
    float* out = t.data_f32();
    if (elem == 4) {
        if (n > 0) std::memcpy(out, src, (size_t)(n * 4));
    } else {
        for (int64_t i = 0; i < n; ++i) {
            double v;
            std::memcpy(&v, src + 8 * i, 8);
            out[i] = (float)v;
        }
    }
    return t;
}

void save_npy(const std::string& path, const Tensor& t) {
    Tensor c = t.detach().to(Device::CPU).contiguous();  // written from host memory, whatever the device
    std::string shape = "(";
    for (int64_t d : c.shape()) shape += std::to_string(d) + ", ";
    if (c.dim() >= 2) shape.resize(shape.size() - 1), shape.back() = ')';
    else if (c.dim() == 1) shape.resize(shape.size() - 1), shape += ")";
    else shape += ")";
    std::string header = std::string("{'descr': '") + (c.dtype() == DType::Float32 ? "<f4" : "<i8") +
                         "', 'fortran_order': False, 'shape': " + shape + ", }";
    size_t total = 10 + header.size() + 1;
    header += std::string((64 - total % 64) % 64, ' ') + "\n";

    std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        check(f.good(), path, ": cannot open for writing");
        uint16_t hl = (uint16_t)header.size();
        char pre[10] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0, char(hl & 0xff), char(hl >> 8)};
        f.write(pre, 10);
        f.write(header.data(), header.size());
        f.write(static_cast<const char*>(c.impl()->storage->data) + c.offset() * dtype_size(c.dtype()),
                c.numel() * dtype_size(c.dtype()));
        f.flush();
        check(f.good(), path, ": write failed (disk full?)");
    }
    check(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot rename ", tmp, " into place");
}

}  // namespace td
