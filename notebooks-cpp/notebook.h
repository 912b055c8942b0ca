// notebooks-cpp/notebook.h: the few helpers a notebook uses to show things.
//
// A notebook is a plain C++ program in the percent format: `// %% [markdown]` cells
// of prose (each line a `//` comment) and `// %%` cells of code, read top to bottom.
// It compiles and runs on its own (`make notebooks` does both, then renders it
// into docs/notebooks/NN-name.md and .html with every printed output in place).
//
// Printing is plain std::cout / printf. Pictures are PNG files written into the
// notebook's image folder, announced on stdout by one line
//     [[image: FILE | caption]]
// that the renderer turns into an inline picture; run by hand, the line simply says
// where the picture is. The image folder is $NB_OUT when set (the renderer sets it
// to docs/notebooks/NN-name/), else build/notebooks/NN-name/.
//
// Which cell printed what: `make notebooks` compiles a copy of the notebook with a
// marker statement at the top of each code cell inside main (notebooks-cpp/render/
// instrument.h); the markers print only when NB_MARKERS=1, so run by hand the program
// prints exactly what its code prints. See notebooks-cpp/README.md.
#pragma once
#include <cmath>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "diffusion/data/image_io.h"
#include "td.h"
#include "tools/plot.h"

namespace nb {

// The folder pictures go to (created on first use). `name` is the notebook's own
// name ("04-forward-process"), used when $NB_OUT is not set.
inline std::string out_dir(const std::string& name) {
    const char* env = std::getenv("NB_OUT");
    std::string dir = env && *env ? std::string(env) : "build/notebooks/" + name;
    std::filesystem::create_directories(dir);
    return dir;
}

// Tells the renderer (and the reader of the terminal) where a picture is.
inline void announce_image(const std::string& file, const std::string& caption) {
    std::printf("[[image: %s | %s]]\n", file.c_str(), caption.c_str());
    std::fflush(stdout);
}

// One image (C, H, W), values in [-1, 1] (the engine's pixel convention), each pixel
// drawn as a scale x scale block.
inline void show_image(const std::string& notebook, const std::string& file, const td::Tensor& image,
                       const std::string& caption, int scale = 4) {
    td::diffusion::write_png(out_dir(notebook) + "/" + file, image, scale);
    announce_image(file, caption);
}

// A grid of images (N, C, H, W) in [-1, 1], ncol per row.
inline void show_grid(const std::string& notebook, const std::string& file, const td::Tensor& images, int ncol,
                      const std::string& caption, int scale = 2) {
    td::diffusion::write_png_grid(out_dir(notebook) + "/" + file, images, ncol, scale);
    announce_image(file, caption);
}

// A line plot with tick numbers on its axes; `axes` adds a title and axis labels
// (tools/plot.h).
inline void show_plot(const std::string& notebook, const std::string& file, const std::vector<td::plot::Series>& series,
                      const std::string& caption, const td::plot::Axes& axes) {
    td::plot::line_plot(out_dir(notebook) + "/" + file, series, axes);
    announce_image(file, caption);
}
inline void show_plot(const std::string& notebook, const std::string& file, const std::vector<td::plot::Series>& series,
                      const std::string& caption, bool log_y = false) {
    td::plot::Axes axes;
    axes.log_y = log_y;
    show_plot(notebook, file, series, caption, axes);
}

// Points in the plane, with lines (paths) and arrows (a vector field) under them.
inline void show_scatter(const std::string& notebook, const std::string& file,
                         const std::vector<td::plot::Points>& points, const std::vector<td::plot::Series>& lines,
                         const std::vector<td::plot::Arrows>& arrows, const std::string& caption,
                         const td::plot::Axes& axes, int width = 480, int height = 480) {
    td::plot::scatter_plot(out_dir(notebook) + "/" + file, points, lines, arrows, axes, width, height);
    announce_image(file, caption);
}

// The frame every picture of the 2-D toy shares (diffusion/toy2d.h; notebooks 11 and 13):
// [-3, 3]^2 with axes x[0] and x[1], one unit as long in x as in y.
inline td::plot::Axes plane_axes(const std::string& title) {
    td::plot::Axes a;
    a.title = title, a.xlabel = "x[0]", a.ylabel = "x[1]";
    a.xmin = a.ymin = -3.0f, a.xmax = a.ymax = 3.0f;
    a.equal_aspect = true;
    return a;
}

// One line per tensor: name, shape, mean, std, min, max (the numbers a student checks
// first when something looks wrong).
inline void describe(const std::string& name, const td::Tensor& t) {
    td::Tensor x = t.contiguous();
    std::vector<float> v = x.to_vector();
    double sum = 0, sq = 0, lo = v.empty() ? 0 : v[0], hi = lo;
    for (float f : v) {
        sum += f;
        sq += (double)f * f;
        lo = f < lo ? f : lo;
        hi = f > hi ? f : hi;
    }
    double n = v.empty() ? 1 : (double)v.size();
    double mean = sum / n, var = sq / n - mean * mean;
    std::printf("%-16s %-18s mean %+.4f  std %.4f  min %+.4f  max %+.4f\n", name.c_str(),
                td::shape_str(t.shape()).c_str(), mean, var > 0 ? std::sqrt(var) : 0.0, lo, hi);
    std::fflush(stdout);
}

// printf into a std::string (for the text of a check).
inline std::string fmt(const char* format, ...) __attribute__((format(printf, 1, 2)));
inline std::string fmt(const char* format, ...) {
    char buf[512];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    return buf;
}

// A numerical check: prints "PASS: what" or "FAIL: what", and counts the failures so
// that main can `return nb::failures();`, which makes `make notebooks` stop on a notebook
// whose derivation and numbers no longer agree.
inline int& failure_count() {
    static int count = 0;
    return count;
}
inline bool expect(bool ok, const std::string& what) {
    std::printf("%s: %s\n", ok ? "PASS" : "FAIL", what.c_str());
    std::fflush(stdout);
    if (!ok) ++failure_count();
    return ok;
}
inline int failures() { return failure_count() == 0 ? 0 : 1; }

}  // namespace nb
