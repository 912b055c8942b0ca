// diffusion/data/image_folder.cpp: image files -> tensors (stb_image), resize, crop.
#include "diffusion/data/image_folder.h"

// stb_image's implementation is compiled here, once for the whole library: other code
// includes <stb/stb_image.h> without the define and links against these functions.
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <memory>

#include "diffusion/data/pixels.h"
#include "tensor/error.h"

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
static std::vector<Taps> resample_taps(int64_t n_in, int64_t n_out) {
    double scale = (double)n_in / (double)n_out;
    double support = std::max(scale, 1.0);
    std::vector<Taps> taps(n_out);
    for (int64_t i = 0; i < n_out; ++i) {
        double c = (i + 0.5) * scale;
        int64_t lo = std::max<int64_t>(0, (int64_t)std::floor(c - support));
        int64_t hi = std::min<int64_t>(n_in - 1, (int64_t)std::ceil(c + support));
        double total = 0.0;
        std::vector<double> w;
        for (int64_t j = lo; j <= hi; ++j) {
            double wj = std::max(0.0, 1.0 - std::fabs(j + 0.5 - c) / support);
            w.push_back(wj);
            total += wj;
        }
        taps[i].first = lo;
        for (double wj : w) taps[i].w.push_back((float)(wj / total));
    }
    return taps;
}

Tensor resize_bilinear(const Tensor& image, int64_t out_h, int64_t out_w) {
    check(image.dim() == 3 && image.dtype() == DType::Float32, "resize_bilinear: expected a (C, H, W) float32 image, got ",
          shape_str(image.shape()));
    check(out_h >= 1 && out_w >= 1, "resize_bilinear: output size ", out_h, "x", out_w, " must be positive");
    Tensor src = image.contiguous();
    int64_t C = src.size(0), H = src.size(1), W = src.size(2);
    std::vector<Taps> tx = resample_taps(W, out_w), ty = resample_taps(H, out_h);

    // Pass 1, along rows: tmp (C, H, out_w) = src (C, H, W) resampled in x.
    std::vector<float> tmp(C * H * out_w);
    const float* s = src.data_f32();
    for (int64_t row = 0; row < C * H; ++row)
        for (int64_t x = 0; x < out_w; ++x) {
            float acc = 0.0f;
            for (size_t k = 0; k < tx[x].w.size(); ++k) acc += tx[x].w[k] * s[row * W + tx[x].first + k];
            tmp[row * out_w + x] = acc;
        }
    // Pass 2, along columns: out (C, out_h, out_w) = tmp resampled in y.
    Tensor out = Tensor::empty({C, out_h, out_w});
    float* o = out.data_f32();
    for (int64_t c = 0; c < C; ++c)
        for (int64_t y = 0; y < out_h; ++y)
            for (int64_t x = 0; x < out_w; ++x) {
                float acc = 0.0f;
                for (size_t k = 0; k < ty[y].w.size(); ++k)
                    acc += ty[y].w[k] * tmp[(c * H + ty[y].first + k) * out_w + x];
                o[(c * out_h + y) * out_w + x] = acc;
            }
    return out;
}

Tensor resize_center_crop(const Tensor& image, int64_t size) {
    check(image.dim() == 3, "resize_center_crop: expected a (C, H, W) image, got ", shape_str(image.shape()));
    check(size >= 1, "resize_center_crop: size ", size, " must be positive");
    int64_t H = image.size(1), W = image.size(2);
    // the shorter side becomes `size`, the longer keeps the aspect ratio (rounded)
    int64_t nh = H <= W ? size : std::max<int64_t>(size, std::llround((double)H * size / W));
    int64_t nw = H <= W ? std::max<int64_t>(size, std::llround((double)W * size / H)) : size;
    Tensor resized = (nh == H && nw == W) ? image : resize_bilinear(image, nh, nw);
    int64_t top = (nh - size) / 2, left = (nw - size) / 2;
    return resized.narrow(1, top, size).narrow(2, left, size).contiguous();  // the center square
}

// ---- files ---------------------------------------------------------------------------

Tensor load_image(const std::string& path, int64_t size, int64_t channels) {
    check(channels == 1 || channels == 3, path, ": channels must be 1 (grey) or 3 (RGB), got ", channels);
    check(size >= 1 && size <= 4096, path, ": image size ", size, " out of range (1 to 4096)");
    int w = 0, h = 0, comp = 0;
    check(stbi_info(path.c_str(), &w, &h, &comp) != 0, path, ": cannot read image (", stbi_failure_reason(), ")");
    check((int64_t)w * h <= (int64_t(1) << 26), path, ": image is ", w, "x", h, ", too large (at most 64 megapixels)");
    std::unique_ptr<unsigned char, void (*)(void*)> px(stbi_load(path.c_str(), &w, &h, &comp, (int)channels),
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
    std::vector<std::pair<fs::path, int64_t>> items;  // (file, label)
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
