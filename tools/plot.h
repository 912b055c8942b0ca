// tools/plot.h: line plots as PNG, for loss curves and fits in a run's report.
// No text is drawn (labels go in the HTML page beside the image); the y range is
// chosen from the data, optionally on a log scale.
#pragma once
#include <string>
#include <vector>

namespace td::plot {

struct Series {
    std::vector<float> x, y;
    unsigned rgb = 0x1f77b4;  // matplotlib's first colour
};

// Writes a width x height PNG; throws td::Error naming the path if it cannot.
void line_plot(const std::string& path, const std::vector<Series>& series, bool log_y = false, int width = 640,
               int height = 360);

}  // namespace td::plot
