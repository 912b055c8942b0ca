// tools/plot.cpp: a tiny rasteriser for line plots (see plot.h).
#include "tools/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <stb/stb_image_write.h>  // implemented in diffusion/data/image_io.cpp

#include "tensor/error.h"

namespace td::plot {

namespace {

struct Canvas {
    int w, h;
    std::vector<unsigned char> rgb;
    Canvas(int w_, int h_) : w(w_), h(h_), rgb((size_t)w_ * h_ * 3, 255) {}
    void set(int x, int y, unsigned c) {
        if (x < 0 || y < 0 || x >= w || y >= h) return;
        unsigned char* p = &rgb[((size_t)y * w + x) * 3];
        p[0] = (c >> 16) & 255; p[1] = (c >> 8) & 255; p[2] = c & 255;
    }
    // Bresenham's line, drawn 2 pixels thick.
    void line(int x0, int y0, int x1, int y1, unsigned c) {
        int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
        int err = dx + dy;
        while (true) {
            set(x0, y0, c); set(x0, y0 + 1, c);
            if (x0 == x1 && y0 == y1) break;
            int e2 = 2 * err;
            if (e2 >= dy) { err += dy; x0 += sx; }
            if (e2 <= dx) { err += dx; y0 += sy; }
        }
    }
};

}  // namespace

void line_plot(const std::string& path, const std::vector<Series>& series, bool log_y, int width, int height) {
    auto ty = [log_y](float v) { return log_y ? std::log10(std::max(v, 1e-12f)) : v; };
    float xmin = INFINITY, xmax = -INFINITY, ymin = INFINITY, ymax = -INFINITY;
    for (const Series& s : series)
        for (size_t i = 0; i < s.x.size() && i < s.y.size(); ++i) {
            if (!std::isfinite(s.y[i])) continue;
            xmin = std::min(xmin, s.x[i]); xmax = std::max(xmax, s.x[i]);
            ymin = std::min(ymin, ty(s.y[i])); ymax = std::max(ymax, ty(s.y[i]));
        }
    if (!(xmax > xmin)) { xmin -= 1; xmax += 1; }
    if (!(ymax > ymin)) { ymin -= 1; ymax += 1; }
    const int m = 20;  // margin in pixels
    Canvas c(width, height);
    auto px = [&](float x) { return m + (int)std::lround((x - xmin) / (xmax - xmin) * (width - 2 * m)); };
    auto py = [&](float y) { return height - m - (int)std::lround((ty(y) - ymin) / (ymax - ymin) * (height - 2 * m)); };
    // frame and a light grid of 4 x 4 cells
    for (int k = 0; k <= 4; ++k) {
        int gx = m + k * (width - 2 * m) / 4, gy = m + k * (height - 2 * m) / 4;
        c.line(gx, m, gx, height - m, k % 4 ? 0xdddddd : 0x555555);
        c.line(m, gy, width - m, gy, k % 4 ? 0xdddddd : 0x555555);
    }
    for (const Series& s : series)
        for (size_t i = 1; i < s.x.size() && i < s.y.size(); ++i) {
            if (!std::isfinite(s.y[i - 1]) || !std::isfinite(s.y[i])) continue;
            c.line(px(s.x[i - 1]), py(s.y[i - 1]), px(s.x[i]), py(s.y[i]), s.rgb);
        }
    std::string tmp = path + ".tmp";
    check(stbi_write_png(tmp.c_str(), width, height, 3, c.rgb.data(), width * 3) != 0, path, ": cannot write PNG");
    check(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot move ", tmp, " into place");
}

}  // namespace td::plot
