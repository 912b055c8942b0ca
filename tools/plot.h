// tools/plot.h: line plots and point clouds as PNG, with axes: tick numbers on both
// axes and, when given, a title and axis labels (drawn with stb_easy_font's pixel font).
// Ranges are chosen from the data (ticks at round numbers: 1, 2 or 5 times a power of
// ten), optionally on a log scale, or fixed by the caller.
#pragma once
#include <cmath>
#include <string>
#include <vector>

namespace td::plot {

struct Series {
    std::vector<float> x, y;
    unsigned rgb = 0x1f77b4;  // matplotlib's first colour
};

// What is written around the plot, and its ranges.
struct Axes {
    std::string title, xlabel, ylabel;  // empty: not drawn
    bool log_y = false;                 // y on a log10 scale (ticks at powers of ten)
    // A fixed range; NaN (the default): from the data.
    float xmin = NAN, xmax = NAN, ymin = NAN, ymax = NAN;
    bool equal_aspect = false;  // one unit is as many pixels in x as in y (for points in the plane)
};

// Dots, one size x size square each.
struct Points {
    std::vector<float> x, y;
    unsigned rgb = 0x1f77b4;
    int size = 2;
};

// Arrows from (x, y) to (x + dx, y + dy), in data units, each with a small head.
struct Arrows {
    std::vector<float> x, y, dx, dy;
    unsigned rgb = 0x555555;
};

// Writes a width x height PNG; throws td::Error naming the path if it cannot.
void line_plot(const std::string& path, const std::vector<Series>& series, const Axes& axes = {}, int width = 640,
               int height = 360);
// Points, lines (e.g. trajectories) and arrows (e.g. a vector field) on one pair of axes,
// drawn in that order: arrows, then lines, then points on top.
void scatter_plot(const std::string& path, const std::vector<Points>& points, const std::vector<Series>& lines,
                  const std::vector<Arrows>& arrows, const Axes& axes, int width = 480, int height = 480);

// Interleaved x0 y0 x1 y1 ... (a (N, 2) tensor's to_vector()) as dots, or as one line.
Points points_xy(const std::vector<float>& xy, unsigned rgb, int size = 2);
Series series_xy(const std::vector<float>& xy, unsigned rgb);

}  // namespace td::plot
