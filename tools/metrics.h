// tools/metrics.h: a run folder's metrics.csv, one writer and one reader.
//
// One row per training step (and whatever else a command logs), written and flushed as
// the step finishes, so `tail -f runs/NAME/metrics.csv` follows a run live. Every
// command's file has a `seconds` column (training time, counted on across a --resume)
// and, last, `wall_clock` (the UTC time the row was written), so the rows of a run
// stopped and resumed read as one run.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace td::cli {

// A number as a metrics.csv cell (six significant digits, as iostreams print it).
std::string cell(double v);

// The rows of a metrics.csv, by column name. A missing or empty cell is NaN.
struct MetricsTable {
    std::vector<std::string> columns;
    std::vector<std::vector<double>> rows;
    // The values of `column` in every row where it is finite, and the steps they belong to.
    void series(const std::string& column, std::vector<float>& steps, std::vector<float>& values) const;
    // The first row's value of `column` at `step`; NaN if there is no such row.
    double at_step(int64_t step, const std::string& column) const;
};

// Reads PATH; an absent file is an empty table.
MetricsTable read_metrics(const std::string& path);

// loss.png: `column` per step (grey) and its exponential moving average (blue,
// 0.98 / 0.02), log scale. Returns the average's last value (0 for no rows).
float plot_loss(const std::string& path, const MetricsTable& metrics, const std::string& column);

class MetricsWriter {
public:
    // `columns`: the command's columns, `seconds` among them, without the `wall_clock`
    // the writer adds at the end.
    explicit MetricsWriter(std::vector<std::string> columns) : columns_(std::move(columns)) {}

    // A fresh file: the header alone.
    void start(const std::string& path);
    // A resumed run: keeps the rows up to `step` (the ones its checkpoint has seen) and
    // appends after them; rows of an older file with fewer columns are padded with empty
    // cells. The `seconds` of the last kept row is where this run's clock goes on.
    void resume(const std::string& path, int64_t step);

    // The `seconds` cell of a row: `elapsed` (this invocation's time) plus the time the
    // run had trained before a --resume.
    std::string seconds(double elapsed) const { return cell(seconds_before_ + elapsed); }
    // One row: a cell per column (an empty string for an empty cell), then the wall
    // clock. Flushed at once.
    void row(const std::vector<std::string>& values);
    void close() { file_.close(); }

private:
    std::string header() const;
    void open(const std::string& path, const std::string& text);  // PATH holds `text`, rows append
    std::vector<std::string> columns_;
    std::ofstream file_;
    std::string path_;
    double seconds_before_ = 0;  // the training time of the invocations before this one
};

}  // namespace td::cli
