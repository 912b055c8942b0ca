// diffusion/data/idx.cpp: reading IDX files (see idx.h for the format).
#include "diffusion/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "diffusion/data/pixels.h"
#include "tensor/error.h"
#include "tensor/file_bytes.h"

namespace td::diffusion {

namespace {

// The decoded bytes of an IDX file, handed out piece by piece: a plain file straight
// from memory, a gzipped one through zlib's inflate. Decompressing on demand means a
// .gz file is only ever expanded as far as its header's (checked) claim reaches: a small
// "zip bomb" cannot fill the memory before we notice that it lies.
class IdxBytes {
public:
    IdxBytes(const uint8_t* data, size_t size, const std::string& name) : data_(data), size_(size), name_(name) {
        gzipped_ = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;  // the gzip magic
        if (!gzipped_) return;
        // 15 + 16: a window of up to 2^15 bytes, and expect a gzip (not a zlib) wrapper.
        check(inflateInit2(&z_, 15 + 16) == Z_OK, name_, ": zlib cannot start decompressing");
        z_.next_in = const_cast<uint8_t*>(data);  // zlib's API is not const, but it only reads
        z_.avail_in = (uInt)std::min<size_t>(size, UINT32_MAX);
        check(z_.avail_in == size, name_, ": a .gz file over 4 GB is not supported");
    }
    ~IdxBytes() {
        if (gzipped_) inflateEnd(&z_);
    }
    IdxBytes(const IdxBytes&) = delete;
    IdxBytes& operator=(const IdxBytes&) = delete;

    bool gzipped() const { return gzipped_; }

    // Copies up to n of the next bytes to dst; returns how many (fewer only at the end).
    int64_t read(uint8_t* dst, int64_t n) {
        if (!gzipped_) {
            int64_t got = std::min<int64_t>(n, (int64_t)(size_ - pos_));
            if (got > 0) std::memcpy(dst, data_ + pos_, (size_t)got);  // (memcpy from a null data_ is UB even for 0)
            pos_ += (size_t)got;
            return got;
        }
        int64_t got = 0;
        while (got < n && !ended_) {
            z_.next_out = dst + got;
            z_.avail_out = (uInt)std::min<int64_t>(n - got, 1 << 30);
            uInt before = z_.avail_out;
            int r = inflate(&z_, Z_NO_FLUSH);
            got += before - z_.avail_out;
            if (r == Z_STREAM_END) {
                // gzip allows several members one after the other (`cat a.gz b.gz`);
                // anything else after the end is not ours to guess about.
                if (z_.avail_in == 0) ended_ = true;
                else if (z_.avail_in >= 2 && z_.next_in[0] == 0x1f && z_.next_in[1] == 0x8b) inflateReset(&z_);
                else fail(name_, ": ", z_.avail_in, " bytes of something else after the end of the gzip data");
            } else if (r == Z_BUF_ERROR && z_.avail_in == 0) {
                fail(name_, ": truncated: the gzip data ends in the middle of its stream");
            } else if (r != Z_OK && r != Z_BUF_ERROR) {
                fail(name_, ": damaged .gz file (zlib: ", z_.msg ? z_.msg : zError(r), ")");
            }
        }
        return got;
    }

private:
    const uint8_t* data_;
    size_t size_, pos_ = 0;
    const std::string& name_;
    bool gzipped_ = false, ended_ = false;
    z_stream z_{};
};

// A deflate stream expands at most ~1032:1, so a .gz file of `compressed` bytes cannot
// hold more than this many: a cheap first check of a header's claim.
int64_t max_gunzipped_bytes(int64_t compressed) { return compressed * 1032 + 4096; }

}  // namespace

IdxArray read_idx(const std::string& path, int expected_rank) {
    std::vector<uint8_t> file = read_file_bytes(path);
    return parse_idx_bytes(file.data(), file.size(), path, expected_rank);
}

// (`path` is whatever name the caller gave the bytes: the file's path for read_idx.)
IdxArray parse_idx_bytes(const uint8_t* data, size_t size, const std::string& path, int expected_rank) {
    IdxBytes file(data, size, path);
    int64_t file_size = (int64_t)size;

    uint8_t magic[4];
    check(file.read(magic, 4) == 4, path, ": too short to be an IDX file (", file_size, " bytes)");
    check(magic[0] == 0 && magic[1] == 0, path, ": not an IDX file (bad magic: the first two bytes are ", (int)magic[0],
          " ", (int)magic[1], ", expected 0 0)");
    check(magic[2] == 0x08, path, ": IDX element type ", (int)magic[2],
          " is not supported (only unsigned bytes, type 8, as in MNIST)");
    int rank = magic[3];
    check(rank >= 1 && rank <= 4, path, ": IDX header claims ", rank, " dimensions (expected 1 to 4)");
    check(expected_rank == 0 || rank == expected_rank, path, ": IDX file has ", rank, " dimensions, expected ",
          expected_rank, expected_rank == 3 ? " (N, H, W): is this an images file?" : " (N): is this a labels file?");

    uint8_t raw[16];
    check(file.read(raw, 4 * rank) == 4 * rank, path, ": truncated IDX header");
    IdxArray out;
    int64_t claimed = 1;  // bytes of data the header claims, checked for overflow on the way
    const int64_t max_bytes = int64_t(1) << 40;
    for (int d = 0; d < rank; ++d) {
        const uint8_t* b = raw + 4 * d;
        int64_t n = ((int64_t)b[0] << 24) | ((int64_t)b[1] << 16) | ((int64_t)b[2] << 8) | (int64_t)b[3];
        check(n >= 1, path, ": IDX dimension ", d, " is 0");
        out.dims.push_back(n);
        check(claimed <= max_bytes / n, path, ": IDX header claims shape ", out.dims, "..., over 1 TiB");
        claimed *= n;
    }

    // Check the claim against the file before allocating: exactly, for a plain file;
    // against deflate's best ratio for a .gz (its exact size is known only after reading).
    int64_t header_bytes = 4 + 4 * rank;
    if (!file.gzipped()) {
        check(claimed == file_size - header_bytes, path, ": IDX header claims shape ", out.dims, " = ", claimed,
              " bytes of data, the file holds ", file_size - header_bytes,
              claimed > file_size - header_bytes ? " (truncated?)" : " (trailing bytes?)");
    } else {
        check(claimed <= max_gunzipped_bytes(file_size), path, ": IDX header claims shape ", out.dims, " = ", claimed,
              " bytes of data, more than a .gz file of ", file_size, " bytes can hold");
    }

    // Read in chunks, growing the buffer only as data actually arrives.
    int64_t got = 0;
    while (got < claimed) {
        int64_t want = std::min<int64_t>(claimed - got, int64_t(1) << 24);
        out.bytes.resize(got + want);
        int64_t r = file.read(out.bytes.data() + got, want);
        got += r;
        if (r < want) break;
    }
    check(got == claimed, path, ": truncated: IDX header claims shape ", out.dims, " = ", claimed,
          " bytes of data, the file holds ", got);
    uint8_t extra;
    check(file.read(&extra, 1) == 0, path, ": more data than the IDX header's shape ", out.dims, " accounts for");
    return out;
}

Tensor load_idx_images(const std::string& path) {
    IdxArray a = read_idx(path, 3);
    int64_t n = a.dims[0], h = a.dims[1], w = a.dims[2];
    Tensor x = Tensor::empty({n, 1, h, w});  // x: (N, 1, H, W), same order as the file
    float* p = x.data_f32();
    for (size_t i = 0; i < a.bytes.size(); ++i) p[i] = pixel_to_model(a.bytes[i]);
    return x;
}

Tensor load_idx_labels(const std::string& path) {
    IdxArray a = read_idx(path, 1);
    Tensor y = Tensor::empty({a.dims[0]}, DType::Int64);  // y: (N)
    int64_t* p = y.data_i64();
    for (size_t i = 0; i < a.bytes.size(); ++i) p[i] = a.bytes[i];
    return y;
}

// Without class names (a folder of IDX files of unknown origin) the classes are named
// "0", "1", ...: ten of them (MNIST-like) unless a label is larger.
Dataset load_idx_dataset(const std::string& images_path, const std::string& labels_path, const std::string& name,
                         const std::string& split, const std::vector<std::string>& class_names) {
    Dataset d;
    d.name = name;
    d.split = split;
    d.images = load_idx_images(images_path);
    d.labels = load_idx_labels(labels_path);
    check(d.images.size(0) == d.labels.size(0), name, ": ", images_path, " holds ", d.images.size(0), " images but ",
          labels_path, " holds ", d.labels.size(0), " labels");
    const int64_t* y = d.labels.data_i64();
    int64_t max_label = *std::max_element(y, y + d.labels.numel());
    d.class_names = class_names;
    if (d.class_names.empty())
        for (int64_t c = 0; c < std::max<int64_t>(10, max_label + 1); ++c) d.class_names.push_back(std::to_string(c));
    d.num_classes = (int64_t)d.class_names.size();
    check(max_label < d.num_classes, labels_path, ": label ", max_label, " out of range for ", d.num_classes,
          " classes");
    return d;
}

}  // namespace td::diffusion
