// diffusion/data/image_folder.cpp: image files -> tensors (stb_image), resize, crop.
#include "diffusion/data/image_folder.h"

// stb_image's implementation is compiled here, once for the whole library: other code
// includes <stb/stb_image.h> without the define and links against these functions.
// stb decodes by the bytes, not by the file's extension, so a "cat.png" holding a PSD
// would reach the PSD decoder: we compile in only the formats is_image_file accepts
// (less decoder code facing untrusted files), and no decoder may claim more than
// 2^14 pixels a side (a header's claim, checked by stb before it allocates).
#define STBI_ONLY_PNG
#define STBI_ONLY_JPEG
#define STBI_ONLY_BMP
#define STBI_ONLY_GIF
#define STBI_ONLY_TGA
#define STBI_ONLY_PNM
#define STBI_MAX_DIMENSIONS (1 << 14)
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>

#include "diffusion/data/pixels.h"
#include "diffusion/data/stb_guard.h"
#include "tensor/error.h"
#include "tensor/file_bytes.h"

namespace td::diffusion {

namespace fs = std::filesystem;

// ---- resampling ----------------------------------------------------------------------

// The taps of one 1-D resampling pass from n_in to n_out samples: output i reads input
// pixels first .. first + w.size() - 1 with weights w (summing to 1).
struct Taps {
    int64_t first = 0;
    std::vector<float> w;
};

// Output pixel i's center lies at input coordinate c = (i + 0.5) * scale (input pixel j's
// center is at j + 0.5). Input pixel j weighs tent((j + 0.5 - c) / support), with
// tent(t) = max(0, 1 - |t|) and support = max(scale, 1): one pixel each side when
// enlarging (plain bilinear interpolation), the output pixel's whole footprint when
// shrinking (so every input pixel contributes: no aliasing from skipped pixels).
// Taps falling outside the image are dropped and the rest renormalised.
// Only output pixels first_out .. first_out + count - 1 are computed (see resize_window).
static std::vector<Taps> resample_taps(int64_t n_in, int64_t n_out, int64_t first_out, int64_t count) {
    double scale = (double)n_in / (double)n_out;
    double support = std::max(scale, 1.0);
    std::vector<Taps> taps(count);
    for (int64_t k = 0; k < count; ++k) {
        double c = (first_out + k + 0.5) * scale;
        int64_t lo = std::max<int64_t>(0, (int64_t)std::floor(c - support));
        int64_t hi = std::min<int64_t>(n_in - 1, (int64_t)std::ceil(c + support));
        double total = 0.0;
        std::vector<double> w;
        for (int64_t j = lo; j <= hi; ++j) {
            double wj = std::max(0.0, 1.0 - std::fabs(j + 0.5 - c) / support);
            w.push_back(wj);
            total += wj;
        }
        taps[k].first = lo;
        for (double wj : w) taps[k].w.push_back((float)(wj / total));
    }
    return taps;
}

// The window (top, left, win_h, win_w) of `src` (C, H, W) resized to out_h x out_w,
// computed without the rest of the resized image: resize-then-crop of a very long,
// thin image (4 x 10000 pixels to a 40 x 40 square: 40 x 100000 before the crop) would
// otherwise build a huge intermediate only to throw most of it away.
static Tensor resize_window(const Tensor& image, int64_t out_h, int64_t out_w, int64_t top, int64_t left, int64_t win_h,
                            int64_t win_w) {
    Tensor src = image.contiguous();
    int64_t C = src.size(0), H = src.size(1), W = src.size(2);
    std::vector<Taps> tx = resample_taps(W, out_w, left, win_w), ty = resample_taps(H, out_h, top, win_h);
    // Only the input rows the window's vertical taps read: y_lo .. y_hi - 1.
    int64_t y_lo = ty.front().first, y_hi = ty.back().first + (int64_t)ty.back().w.size();
    int64_t rows = y_hi - y_lo;

    // Pass 1, along rows: tmp (C, rows, win_w) = src (C, y_lo..y_hi, W) resampled in x.
    std::vector<float> tmp(C * rows * win_w);
    const float* s = src.data_f32();
    for (int64_t c = 0; c < C; ++c)
        for (int64_t r = 0; r < rows; ++r) {
            const float* in = s + (c * H + y_lo + r) * W;
            for (int64_t x = 0; x < win_w; ++x) {
                float acc = 0.0f;
                for (size_t k = 0; k < tx[x].w.size(); ++k) acc += tx[x].w[k] * in[tx[x].first + k];
                tmp[(c * rows + r) * win_w + x] = acc;
            }
        }
    // Pass 2, along columns: out (C, win_h, win_w) = tmp resampled in y.
    Tensor out = Tensor::empty({C, win_h, win_w});
    float* o = out.data_f32();
    for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < win_h; ++y)
            for (int64_t x = 0; x < win_w; ++x) {
                float acc = 0.0f;
                for (size_t k = 0; k < ty[y].w.size(); ++k)
                    acc += ty[y].w[k] * tmp[(c * rows + ty[y].first - y_lo + k) * win_w + x];
                o[(c * win_h + y) * win_w + x] = acc;
            }
    return out;
}

Tensor resize_bilinear(const Tensor& image, int64_t out_h, int64_t out_w) {
    check(image.dim() == 3 && image.dtype() == DType::Float32,
          "resize_bilinear: expected a (C, H, W) float32 image, got ", image.shape());
    check(out_h >= 1 && out_w >= 1, "resize_bilinear: output size ", out_h, "x", out_w, " must be positive");
    return resize_window(image, out_h, out_w, 0, 0, out_h, out_w);
}

Tensor resize_center_crop(const Tensor& image, int64_t size) {
    check(image.dim() == 3 && image.dtype() == DType::Float32,
          "resize_center_crop: expected a (C, H, W) float32 image, got ", image.shape());
    check(size >= 1, "resize_center_crop: size ", size, " must be positive");
    int64_t H = image.size(1), W = image.size(2);
    // the shorter side becomes `size`, the longer keeps the aspect ratio (rounded)
    int64_t nh = H <= W ? size : std::max<int64_t>(size, std::llround((double)H * size / W));
    int64_t nw = H <= W ? std::max<int64_t>(size, std::llround((double)W * size / H)) : size;
    int64_t top = (nh - size) / 2, left = (nw - size) / 2;
    if (nh == H && nw == W) return image.narrow(1, top, size).narrow(2, left, size).contiguous();
    return resize_window(image, nh, nw, top, left, size, size);  // only the center square is computed
}

// ---- files ---------------------------------------------------------------------------

Tensor load_image(const std::string& path, int64_t size, int64_t channels) {
    std::vector<uint8_t> file = read_file_bytes(path);
    return decode_image(file.data(), file.size(), path, size, channels);
}

// (`path` is whatever name the caller gave the bytes: the file's path for load_image.)
Tensor decode_image(const uint8_t* data, size_t bytes, const std::string& path, int64_t size, int64_t channels) {
    check(channels == 1 || channels == 3, path, ": channels must be 1 (grey) or 3 (RGB), got ", channels);
    check(size >= 1 && size <= 4096, path, ": image size ", size, " out of range (1 to 4096)");
    check(bytes > 0, path, ": empty file");
    check(bytes <= INT32_MAX, path, ": ", bytes, " bytes is too large for an image file (stb_image reads up to 2 GB)");
    const stbi_uc* buf = data;
    int len = (int)bytes, w = 0, h = 0, comp = 0;
    check_stb_hazards(data, bytes, path);  // inputs that Debian's stb_image mishandles (stb_guard.h)
    // First only the header: the claimed size is checked before anything is decoded.
    check(stbi_info_from_memory(buf, len, &w, &h, &comp) != 0, path, ": cannot read image (", stbi_failure_reason(),
          ")");
    check(w >= 1 && h >= 1 && (int64_t)w * h <= (int64_t(1) << 26), path, ": image is ", w, "x", h,
          ", too large (at most 64 megapixels)");
    std::unique_ptr<unsigned char, void (*)(void*)> px(stbi_load_from_memory(buf, len, &w, &h, &comp, (int)channels),
                                                       stbi_image_free);
    check(px != nullptr, path, ": cannot decode image (", stbi_failure_reason(), ")");

    // stb gives interleaved pixels (H, W, C); our tensors are planar (C, H, W).
    Tensor img = Tensor::empty({channels, h, w});
    float* p = img.data_f32();
    for (int64_t c = 0; c < channels; ++c)
        for (int64_t i = 0; i < (int64_t)w * h; ++i) p[c * w * h + i] = px.get()[i * channels + c];

    Tensor out = resize_center_crop(img, size);  // still pixel values in [0, 255]
    float* o = out.data_f32();
    for (int64_t i = 0; i < out.numel(); ++i) o[i] = pixel_to_model(o[i]);
    return out;
}

static bool is_image_file(const fs::directory_entry& e) {
    if (!e.is_regular_file() || e.path().filename().string()[0] == '.') return false;
    std::string ext = e.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return (char)std::tolower(c); });
    for (const char* ok : {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tga", ".ppm", ".pgm"})
        if (ext == ok) return true;
    return false;
}

// The image files directly inside `dir`, in name order.
static std::vector<fs::path> image_files(const fs::path& dir) {
    std::vector<fs::path> files;
    for (const fs::directory_entry& e : fs::directory_iterator(dir))
        if (is_image_file(e)) files.push_back(e.path());
    std::sort(files.begin(), files.end());
    return files;
}

Dataset load_image_folder(const std::string& dir, int64_t size, int64_t channels) {
    check(fs::is_directory(dir), dir, ": not a folder");
    // Sub-folders holding images are the classes, in name order.
    std::vector<fs::path> class_dirs;
    for (const fs::directory_entry& e : fs::directory_iterator(dir))
        if (e.is_directory() && e.path().filename().string()[0] != '.' && !image_files(e.path()).empty())
            class_dirs.push_back(e.path());
    std::sort(class_dirs.begin(), class_dirs.end());
    std::vector<fs::path> loose = image_files(dir);

    Dataset d;
    fs::path abs = fs::absolute(dir).lexically_normal();
    d.name = (abs.filename().empty() ? abs.parent_path() : abs).filename().string();  // "x" for "a/x" or "a/x/"
    std::vector<std::pair<fs::path, int64_t>> items;                                  // (file, label)
    if (class_dirs.empty()) {
        check(!loose.empty(), dir, ": no images (png, jpg, bmp, gif, tga, ppm, pgm) in this folder or its sub-folders");
        for (const fs::path& f : loose) items.push_back({f, 0});
        d.class_names = {d.name};
    } else {
        if (!loose.empty())  // (not check(): its arguments are evaluated even when it passes)
            fail(dir, ": holds both images (", loose[0].filename().string(),
                 ") and class sub-folders; put every image in a class folder");
        for (size_t c = 0; c < class_dirs.size(); ++c) {
            for (const fs::path& f : image_files(class_dirs[c])) items.push_back({f, (int64_t)c});
            d.class_names.push_back(class_dirs[c].filename().string());
        }
    }
    d.num_classes = (int64_t)d.class_names.size();

    int64_t n = (int64_t)items.size(), per_image = channels * size * size;
    d.images = Tensor::empty({n, channels, size, size});  // (N, C, size, size)
    d.labels = Tensor::empty({n}, DType::Int64);
    for (int64_t i = 0; i < n; ++i) {
        Tensor x = load_image(items[i].first.string(), size, channels);
        std::memcpy(d.images.data_f32() + i * per_image, x.data_f32(), per_image * sizeof(float));
        d.labels.data_i64()[i] = items[i].second;
    }
    return d;
}

}  // namespace td::diffusion
