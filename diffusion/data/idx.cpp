// diffusion/data/idx.cpp: reading IDX files (see idx.h for the format).
#include "diffusion/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <filesystem>

#include "diffusion/data/pixels.h"
#include "tensor/error.h"

namespace td::diffusion {

namespace {

// Owns a zlib file handle: closed however we leave the reader.
struct GzFile {
    gzFile f = nullptr;
    ~GzFile() {
        if (f) gzclose(f);
    }
};

// Reads up to n bytes; returns how many came (fewer only at the end of the data).
int64_t read_some(gzFile f, uint8_t* dst, int64_t n, const std::string& path) {
    int64_t got = 0;
    while (got < n) {
        unsigned chunk = (unsigned)std::min<int64_t>(n - got, 1 << 24);  // gzread takes an unsigned
        int r = gzread(f, dst + got, chunk);
        if (r < 0) {
            int errnum = 0;
            const char* msg = gzerror(f, &errnum);
            fail(path, ": read error (", msg, "): a damaged or truncated .gz file?");
        }
        if (r == 0) break;
        got += r;
    }
    return got;
}

// A deflate stream expands at most ~1032:1, so a .gz file of `compressed` bytes cannot
// hold more than this many: a cheap first check of a header's claim.
int64_t max_gunzipped_bytes(int64_t compressed) { return compressed * 1032 + 4096; }

}  // namespace

IdxArray read_idx(const std::string& path, int expected_rank) {
    std::error_code ec;
    int64_t file_size = (int64_t)std::filesystem::file_size(path, ec);
    check(!ec, path, ": cannot open file (", ec.message(), ")");

    GzFile file;
    file.f = gzopen(path.c_str(), "rb");  // reads .gz and plain files alike
    check(file.f != nullptr, path, ": cannot open file");
    gzbuffer(file.f, 1 << 17);

    uint8_t magic[4];
    check(read_some(file.f, magic, 4, path) == 4, path, ": too short to be an IDX file");
    check(magic[0] == 0 && magic[1] == 0, path, ": not an IDX file (bad magic: the first two bytes are ",
          (int)magic[0], " ", (int)magic[1], ", expected 0 0)");
    check(magic[2] == 0x08, path, ": IDX element type ", (int)magic[2],
          " is not supported (only unsigned bytes, type 8, as in MNIST)");
    int rank = magic[3];
    check(rank >= 1 && rank <= 4, path, ": IDX header claims ", rank, " dimensions (expected 1 to 4)");
    check(expected_rank == 0 || rank == expected_rank, path, ": IDX file has ", rank, " dimensions, expected ",
          expected_rank, expected_rank == 3 ? " (N, H, W): is this an images file?" : " (N): is this a labels file?");

    uint8_t raw[16];
    check(read_some(file.f, raw, 4 * rank, path) == 4 * rank, path, ": truncated IDX header");
    IdxArray out;
    int64_t claimed = 1;  // bytes of data the header claims, checked for overflow on the way
    const int64_t max_bytes = int64_t(1) << 40;
    for (int d = 0; d < rank; ++d) {
        const uint8_t* b = raw + 4 * d;
        int64_t n = ((int64_t)b[0] << 24) | ((int64_t)b[1] << 16) | ((int64_t)b[2] << 8) | (int64_t)b[3];
        check(n >= 1, path, ": IDX dimension ", d, " is 0");
        out.dims.push_back(n);
        check(claimed <= max_bytes / n, path, ": IDX header claims shape ", shape_str(out.dims), "..., over 1 TiB");
        claimed *= n;
    }

    // Check the claim against the file before allocating: exactly, for a plain file;
    // against deflate's best ratio for a .gz (its exact size is known only after reading).
    int64_t header_bytes = 4 + 4 * rank;
    if (gzdirect(file.f)) {
        check(claimed == file_size - header_bytes, path, ": IDX header claims shape ", shape_str(out.dims), " = ",
              claimed, " bytes of data, the file holds ", file_size - header_bytes,
              claimed > file_size - header_bytes ? " (truncated?)" : " (trailing bytes?)");
    } else {
        check(claimed <= max_gunzipped_bytes(file_size), path, ": IDX header claims shape ", shape_str(out.dims),
              " = ", claimed, " bytes of data, more than a .gz file of ", file_size, " bytes can hold");
    }

    // Read in chunks, growing the buffer only as data actually arrives.
    int64_t got = 0;
    while (got < claimed) {
        int64_t want = std::min<int64_t>(claimed - got, int64_t(1) << 24);
        out.bytes.resize(got + want);
        int64_t r = read_some(file.f, out.bytes.data() + got, want, path);
        got += r;
        if (r < want) break;
    }
    check(got == claimed, path, ": truncated: IDX header claims shape ", shape_str(out.dims), " = ", claimed,
          " bytes of data, the file holds ", got);
    uint8_t extra;
    check(read_some(file.f, &extra, 1, path) == 0, path, ": more data than the IDX header's shape ",
          shape_str(out.dims), " accounts for");
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
