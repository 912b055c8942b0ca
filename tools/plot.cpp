// tools/plot.cpp: a tiny rasteriser for plots with axes (see plot.h).
//
// A plot is a Frame (where the data's ranges land on the canvas, and the ticks) drawn
// onto a Canvas (RGB pixels, lines, squares and text). Text is stb_easy_font's: every
// glyph a handful of axis-aligned quads, filled here pixel by pixel.
#include "tools/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include <stb/stb_image_write.h>  // implemented in diffusion/data/image_io.cpp
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"  // the header's helpers we do not call
#include <stb/stb_easy_font.h>
#pragma GCC diagnostic pop

#include "tensor/error.h"

namespace td::plot {

namespace {

struct Canvas {
    int w, h;
    int clip_x0 = 0, clip_y0 = 0, clip_x1, clip_y1;  // pixels outside [x0, x1) x [y0, y1) are not drawn
    std::vector<unsigned char> rgb;
    Canvas(int w_, int h_) : w(w_), h(h_), clip_x1(w_), clip_y1(h_), rgb((size_t)w_ * h_ * 3, 255) {}
    void set(int x, int y, unsigned c) {
        if (x < clip_x0 || y < clip_y0 || x >= clip_x1 || y >= clip_y1) return;
        unsigned char* p = &rgb[((size_t)y * w + x) * 3];
        p[0] = (c >> 16) & 255;
        p[1] = (c >> 8) & 255;
        p[2] = c & 255;
    }
    void fill(int x0, int y0, int x1, int y1, unsigned c) {  // [x0, x1) x [y0, y1)
        for (int y = y0; y < y1; ++y)
            for (int x = x0; x < x1; ++x) set(x, y, c);
    }
    // Bresenham's line, `thick` pixels (1 or 2) thick.
    void line(int x0, int y0, int x1, int y1, unsigned c, int thick = 2) {
        int dx = std::abs(x1 - x0), dy = -std::abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1;
        int err = dx + dy;
        while (true) {
            set(x0, y0, c);
            if (thick > 1) set(x0, y0 + 1, c);
            if (x0 == x1 && y0 == y1) break;
            int e2 = 2 * err;
            if (e2 >= dy) {
                err += dy;
                x0 += sx;
            }
            if (e2 <= dx) {
                err += dx;
                y0 += sy;
            }
        }
    }
    // Text with its top-left corner at (x, y); `vertical`: turned a quarter left (reads
    // bottom to top, for a y label), its bottom-left corner then at (x, y).
    void text(int x, int y, const std::string& s, unsigned c, bool vertical = false) {
        std::string copy = s;
        // ~270 bytes a glyph is the header's average, not its most: a buffer that runs
        // out drops the last glyphs silently, so give each glyph room for 32 quads.
        std::vector<char> quads(copy.size() * 32 * 64 + 64);
        int n = stb_easy_font_print(0, 0, copy.data(), nullptr, quads.data(), (int)quads.size());
        for (int q = 0; q < n; ++q) {
            const float* v0 = (const float*)(quads.data() + q * 64);       // 4 vertices of 16 bytes
            const float* v2 = (const float*)(quads.data() + q * 64 + 32);  // the opposite corner
            for (int gy = (int)v0[1]; gy < (int)v2[1]; ++gy)
                for (int gx = (int)v0[0]; gx < (int)v2[0]; ++gx)
                    vertical ? set(x + gy, y - gx, c) : set(x + gx, y + gy, c);
        }
    }
    static int text_width(const std::string& s) {
        std::string copy = s;
        return stb_easy_font_width(copy.data());
    }
};

// A tick's label: as many decimals as the tick spacing needs, or %g for very large or
// small numbers.
std::string tick_label(double v, double step) {
    char buf[32];
    if (std::abs(v) < 1e-12 * std::max(1.0, step)) v = 0;  // no "-0" or "1e-17"
    double mag = std::max(std::abs(v), step);
    if (mag >= 1e5 || mag < 1e-3) std::snprintf(buf, sizeof buf, "%.3g", v);
    else std::snprintf(buf, sizeof buf, "%.*f", std::max(0, (int)-std::floor(std::log10(step) + 1e-9)), v);
    return buf;
}

// Where the data land on the canvas: [lo, hi] in x and y (y already log10 when log_y)
// mapped into the plot area's pixels, and the ticks with their labels.
struct Frame {
    double xlo, xhi, ylo, yhi;
    int left, right, top, bottom;  // the plot area: [left, right] x [top, bottom] in pixels
    bool log_y;
    double ty(double y) const { return log_y ? std::log10(std::max(y, 1e-30)) : y; }
    int px(double x) const { return left + (int)std::lround((x - xlo) / (xhi - xlo) * (right - left)); }
    int py(double y) const { return bottom - (int)std::lround((ty(y) - ylo) / (yhi - ylo) * (bottom - top)); }
};

// The round numbers an axis from lo to hi is labelled at: multiples of 1, 2 or 5 times
// a power of ten, about `target` of them.
std::vector<double> nice_ticks(double lo, double hi, int target = 5) {
    if (!(hi > lo) || !std::isfinite(lo) || !std::isfinite(hi)) return {lo};
    double raw = (hi - lo) / std::max(1, target), p = std::pow(10.0, std::floor(std::log10(raw)));
    double step = raw / p < 1.5 ? p : raw / p < 3.5 ? 2 * p : raw / p < 7.5 ? 5 * p : 10 * p;
    std::vector<double> ticks;
    for (double k = std::ceil(lo / step - 1e-9); k * step <= hi + 1e-9 * step; ++k) ticks.push_back(k * step);
    return ticks;
}

// The y ticks of a log axis: each power of ten in range (as values, not exponents),
// or round numbers when the range spans less than a decade.
std::vector<double> log_ticks(double lo, double hi) {
    std::vector<double> ticks;
    for (double e = std::ceil(lo); e <= hi + 1e-9; ++e) ticks.push_back(std::pow(10.0, e));
    if (ticks.size() >= 2) {
        while (ticks.size() > 8) {  // every other decade when there are many
            std::vector<double> fewer;
            for (size_t i = 0; i < ticks.size(); i += 2) fewer.push_back(ticks[i]);
            ticks = fewer;
        }
        return ticks;
    }
    ticks.clear();
    for (double v : nice_ticks(std::pow(10.0, lo), std::pow(10.0, hi), 4))
        if (v > 0) ticks.push_back(v);
    return ticks;
}

// Frame, grid, ticks, labels and title; returns the frame the data are drawn in.
Frame draw_axes(Canvas& c, double xlo, double xhi, double ylo, double yhi, const Axes& a) {
    if (!(xhi > xlo)) {
        xlo -= 1;
        xhi += 1;
    }
    if (!(yhi > ylo)) {
        ylo -= 1;
        yhi += 1;
    }
    std::vector<double> xt = nice_ticks(xlo, xhi), yt = a.log_y ? log_ticks(ylo, yhi) : nice_ticks(ylo, yhi);
    double xstep = xt.size() > 1 ? xt[1] - xt[0] : 1, ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
    std::vector<std::string> ylabels;
    int label_w = 0;
    for (double v : yt) {
        ylabels.push_back(a.log_y ? tick_label(v, v) : tick_label(v, ystep));
        label_w = std::max(label_w, Canvas::text_width(ylabels.back()));
    }
    Frame f{xlo, xhi, ylo, yhi, 0, c.w - 14, a.title.empty() ? 10 : 24, 0, a.log_y};
    f.left = 8 + (a.ylabel.empty() ? 0 : 14) + label_w + 6;
    f.bottom = c.h - 18 - (a.xlabel.empty() ? 0 : 14);
    if (a.equal_aspect) {  // widen the range that is short for its side, keeping it centred
        double sx = (f.right - f.left) / (xhi - xlo), sy = (f.bottom - f.top) / (yhi - ylo);
        if (sx > sy) {
            double mid = (xlo + xhi) / 2, half = (f.right - f.left) / sy / 2;
            f.xlo = mid - half;
            f.xhi = mid + half;
        } else {
            double mid = (ylo + yhi) / 2, half = (f.bottom - f.top) / sx / 2;
            f.ylo = mid - half;
            f.yhi = mid + half;
        }
        if (sx > sy) xt = nice_ticks(f.xlo, f.xhi), xstep = xt.size() > 1 ? xt[1] - xt[0] : 1;
        else if (!a.log_y) {
            yt = nice_ticks(f.ylo, f.yhi), ystep = yt.size() > 1 ? yt[1] - yt[0] : 1;
            ylabels.clear();
            for (double v : yt) ylabels.push_back(tick_label(v, ystep));
        }
    }
    const unsigned grid = 0xe4e4e4, ink = 0x333333;
    for (size_t i = 0; i < xt.size(); ++i) {
        int x = f.px(xt[i]);
        if (x < f.left || x > f.right) continue;
        c.line(x, f.top, x, f.bottom, grid, 1);
        c.line(x, f.bottom, x, f.bottom + 3, ink, 1);
        std::string s = tick_label(xt[i], xstep);
        c.text(x - Canvas::text_width(s) / 2, f.bottom + 6, s, ink);
    }
    for (size_t i = 0; i < yt.size(); ++i) {
        int y = f.py(yt[i]);
        if (y < f.top || y > f.bottom) continue;
        c.line(f.left, y, f.right, y, grid, 1);
        c.line(f.left - 3, y, f.left, y, ink, 1);
        c.text(f.left - 5 - Canvas::text_width(ylabels[i]), y - 3, ylabels[i], ink);
    }
    c.line(f.left, f.top, f.right, f.top, 0x999999, 1);
    c.line(f.right, f.top, f.right, f.bottom, 0x999999, 1);
    c.line(f.left, f.bottom, f.right, f.bottom, ink, 1);
    c.line(f.left, f.top, f.left, f.bottom, ink, 1);
    if (!a.title.empty()) c.text((f.left + f.right - Canvas::text_width(a.title)) / 2, 8, a.title, 0x000000);
    if (!a.xlabel.empty()) c.text((f.left + f.right - Canvas::text_width(a.xlabel)) / 2, c.h - 14, a.xlabel, ink);
    if (!a.ylabel.empty())
        c.text(6, (f.top + f.bottom + Canvas::text_width(a.ylabel)) / 2, a.ylabel, ink, /*vertical=*/true);
    c.clip_x0 = f.left, c.clip_y0 = f.top, c.clip_x1 = f.right + 1, c.clip_y1 = f.bottom + 1;  // the data stay inside
    return f;
}

// The range of the finite values in `vs` (log10 of the positive ones when `log`), grown
// into `lo`, `hi`.
void grow(const std::vector<float>& vs, bool log, double& lo, double& hi) {
    for (float v : vs) {
        if (!std::isfinite(v) || (log && v <= 0)) continue;
        double t = log ? std::log10((double)v) : (double)v;
        lo = std::min(lo, t), hi = std::max(hi, t);
    }
}

// The caller's fixed range where given (NaN: keep the data's).
void fix(float want_lo, float want_hi, bool log, double& lo, double& hi) {
    if (std::isfinite(want_lo)) lo = log ? std::log10(std::max(want_lo, 1e-30f)) : want_lo;
    if (std::isfinite(want_hi)) hi = log ? std::log10(std::max(want_hi, 1e-30f)) : want_hi;
}

void draw_series(Canvas& c, const Frame& f, const Series& s, int thick) {
    auto ok = [&](size_t i) { return std::isfinite(s.x[i]) && std::isfinite(s.y[i]) && (!f.log_y || s.y[i] > 0); };
    for (size_t i = 1; i < s.x.size() && i < s.y.size(); ++i)
        if (ok(i - 1) && ok(i)) c.line(f.px(s.x[i - 1]), f.py(s.y[i - 1]), f.px(s.x[i]), f.py(s.y[i]), s.rgb, thick);
    if (s.x.size() == 1 && !s.y.empty() && ok(0))
        c.fill(f.px(s.x[0]) - 1, f.py(s.y[0]) - 1, f.px(s.x[0]) + 2, f.py(s.y[0]) + 2, s.rgb);
}

void write(const std::string& path, const Canvas& c) {
    std::string tmp = path + ".tmp";
    check(stbi_write_png(tmp.c_str(), c.w, c.h, 3, c.rgb.data(), c.w * 3) != 0, path, ": cannot write PNG");
    check(std::rename(tmp.c_str(), path.c_str()) == 0, path, ": cannot move ", tmp, " into place");
}

}  // namespace

Points points_xy(const std::vector<float>& xy, unsigned rgb, int size) {
    Points p;
    p.rgb = rgb, p.size = size;
    for (size_t i = 0; i + 1 < xy.size(); i += 2) p.x.push_back(xy[i]), p.y.push_back(xy[i + 1]);
    return p;
}

Series series_xy(const std::vector<float>& xy, unsigned rgb) {
    Points p = points_xy(xy, rgb);
    return {p.x, p.y, rgb};
}

void line_plot(const std::string& path, const std::vector<Series>& series, const Axes& axes, int width, int height) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (const Series& s : series) grow(s.x, false, xlo, xhi), grow(s.y, axes.log_y, ylo, yhi);
    if (!axes.log_y && std::isfinite(ylo)) {  // a little air above and below the curves
        double pad = 0.04 * (yhi - ylo);
        ylo -= pad, yhi += pad;
    }
    fix(axes.xmin, axes.xmax, false, xlo, xhi);
    fix(axes.ymin, axes.ymax, axes.log_y, ylo, yhi);
    if (!std::isfinite(xlo)) xlo = 0, xhi = 1;
    if (!std::isfinite(ylo)) ylo = 0, yhi = 1;
    Canvas c(width, height);
    Frame f = draw_axes(c, xlo, xhi, ylo, yhi, axes);
    for (const Series& s : series) draw_series(c, f, s, 2);
    write(path, c);
}

void scatter_plot(const std::string& path, const std::vector<Points>& points, const std::vector<Series>& lines,
                  const std::vector<Arrows>& arrows, const Axes& axes, int width, int height) {
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (const Points& p : points) grow(p.x, false, xlo, xhi), grow(p.y, false, ylo, yhi);
    for (const Series& s : lines) grow(s.x, false, xlo, xhi), grow(s.y, false, ylo, yhi);
    for (const Arrows& a : arrows) grow(a.x, false, xlo, xhi), grow(a.y, false, ylo, yhi);
    if (std::isfinite(xlo)) {
        double pad = 0.05 * std::max(xhi - xlo, yhi - ylo);
        xlo -= pad, xhi += pad, ylo -= pad, yhi += pad;
    }
    fix(axes.xmin, axes.xmax, false, xlo, xhi);
    fix(axes.ymin, axes.ymax, false, ylo, yhi);
    if (!std::isfinite(xlo)) xlo = 0, xhi = 1;
    if (!std::isfinite(ylo)) ylo = 0, yhi = 1;
    Axes a = axes;
    a.log_y = false;
    Canvas c(width, height);
    Frame f = draw_axes(c, xlo, xhi, ylo, yhi, a);
    for (const Arrows& ar : arrows)
        for (size_t i = 0; i < ar.x.size() && i < ar.y.size() && i < ar.dx.size() && i < ar.dy.size(); ++i) {
            double x0 = f.px(ar.x[i]), y0 = f.py(ar.y[i]), x1 = f.px(ar.x[i] + ar.dx[i]), y1 = f.py(ar.y[i] + ar.dy[i]);
            double len = std::hypot(x1 - x0, y1 - y0);
            c.line((int)x0, (int)y0, (int)x1, (int)y1, ar.rgb, 1);
            if (len < 2) continue;
            // the head: two strokes 25 degrees either side of the shaft, back from the tip
            double head = std::min(5.0, 0.4 * len), ux = (x0 - x1) / len, uy = (y0 - y1) / len;
            for (double turn : {0.44, -0.44}) {
                double hx = ux * std::cos(turn) - uy * std::sin(turn), hy = ux * std::sin(turn) + uy * std::cos(turn);
                c.line((int)x1, (int)y1, (int)std::lround(x1 + head * hx), (int)std::lround(y1 + head * hy), ar.rgb, 1);
            }
        }
    for (const Series& s : lines) draw_series(c, f, s, 1);
    for (const Points& p : points)
        for (size_t i = 0; i < p.x.size() && i < p.y.size(); ++i) {
            if (!std::isfinite(p.x[i]) || !std::isfinite(p.y[i])) continue;
            int x = f.px(p.x[i]) - p.size / 2, y = f.py(p.y[i]) - p.size / 2;
            c.fill(x, y, x + p.size, y + p.size, p.rgb);
        }
    write(path, c);
}

}  // namespace td::plot
