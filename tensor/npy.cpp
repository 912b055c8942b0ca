// tensor/npy.cpp: reading and writing .npy files (see npy.h for the format).
#include "tensor/npy.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <vector>

#include "tensor/error.h"

namespace td {

// The value that follows 'key': in the header dict, as raw text up to the next ',' or
// the closing ')' for the shape tuple.
static std::string header_field(const std::string& header, const std::string& key, const std::string& path) {
    size_t k = header.find("'" + key + "'");
    check(k != std::string::npos, path, ": npy header has no '", key, "' field: ", header);
    size_t colon = header.find(':', k);
    check(colon != std::string::npos, path, ": malformed npy header: ", header);
    size_t begin = header.find_first_not_of(' ', colon + 1);
    check(begin != std::string::npos, path, ": malformed npy header: ", header);
    size_t end = header[begin] == '(' ? header.find(')', begin) + 1 : header.find_first_of(",}", begin);
    check(end != std::string::npos && end > begin, path, ": malformed npy header: ", header);
    return header.substr(begin, end - begin);
}

static Shape parse_shape(const std::string& tuple, const std::string& path) {
    check(tuple.size() >= 2 && tuple.front() == '(' && tuple.back() == ')', path, ": bad shape ", tuple);
    Shape shape;
    std::string body = tuple.substr(1, tuple.size() - 2);
    std::stringstream ss(body);
    std::string item;
    while (std::getline(ss, item, ',')) {
        size_t b = item.find_first_not_of(' ');
        if (b == std::string::npos) continue;  // the trailing comma of (3,)
        size_t e = item.find_last_not_of(' ');
        std::string num = item.substr(b, e - b + 1);
        check(!num.empty() && num.find_first_not_of("0123456789") == std::string::npos && num.size() <= 12, path,
              ": bad dimension '", num, "' in shape ", tuple);
        shape.push_back(std::stoll(num));
    }
    return shape;
}

Tensor load_npy(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    check(f.good(), path, ": cannot open file");
    f.seekg(0, std::ios::end);
    int64_t file_size = (int64_t)f.tellg();
    f.seekg(0);
    char pre[10];
    check(file_size >= 10 && f.read(pre, 10), path, ": too short to be a .npy file (", file_size, " bytes)");
    check(std::memcmp(pre, "\x93NUMPY", 6) == 0, path, ": not a .npy file (bad magic)");
    check(pre[6] == 1 || pre[6] == 2 || pre[6] == 3, path, ": unsupported .npy version ", (int)pre[6]);
    int64_t header_len, data_start;
    if (pre[6] == 1) {
        header_len = (uint8_t)pre[8] | ((uint8_t)pre[9] << 8);
        data_start = 10 + header_len;
    } else {  // versions 2 and 3: a 4-byte header length
        char more[2];
        check(file_size >= 12 && f.read(more, 2), path, ": truncated .npy header");
        header_len = (int64_t)(uint8_t)pre[8] | ((int64_t)(uint8_t)pre[9] << 8) | ((int64_t)(uint8_t)more[0] << 16) |
                     ((int64_t)(uint8_t)more[1] << 24);
        data_start = 12 + header_len;
    }
    check(data_start <= file_size, path, ": header length ", header_len, " runs past the end of the file");
    std::string header(header_len, '\0');
    check((bool)f.read(header.data(), header_len), path, ": truncated .npy header");

    std::string descr = header_field(header, "descr", path);
    std::string fortran = header_field(header, "fortran_order", path);
    Shape shape = parse_shape(header_field(header, "shape", path), path);
    check(fortran == "False", path, ": Fortran-order arrays are not supported (save with np.ascontiguousarray)");
    size_t elem;
    if (descr == "'<f4'") elem = 4;
    else if (descr == "'<f8'" || descr == "'<i8'") elem = 8;
    else fail(path, ": unsupported dtype ", descr, " (expected '<f4', '<f8' or '<i8')");

    // Check the claimed size against the file before allocating anything.
    int64_t n = 1;
    for (int64_t d : shape) {
        check(d == 0 || n <= (file_size / (int64_t)elem) / d, path, ": header claims shape ", shape_str(shape),
              ", more data than the file's ", file_size, " bytes");
        n *= d;
    }
    check(data_start + n * (int64_t)elem <= file_size, path, ": truncated: shape ", shape_str(shape), " needs ",
          n * (int64_t)elem, " bytes of data, the file has ", file_size - data_start);

    if (descr == "'<i8'") {
        Tensor t = Tensor::empty(shape, DType::Int64);
        f.read(reinterpret_cast<char*>(t.data_i64()), n * 8);
        return t;
    }
    Tensor t = Tensor::empty(shape);
    if (elem == 4) {
        f.read(reinterpret_cast<char*>(t.data_f32()), n * 4);
    } else {
        std::vector<double> tmp(n);
        f.read(reinterpret_cast<char*>(tmp.data()), n * 8);
        for (int64_t i = 0; i < n; ++i) t.data_f32()[i] = (float)tmp[i];
    }
    check(f.good(), path, ": read error");
    return t;
}

void save_npy(const std::string& path, const Tensor& t) {
    Tensor c = t.detach().contiguous();
    check(c.device() == Device::CPU, "save_npy ", path, ": tensor is on ", device_name(c.device()));
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
