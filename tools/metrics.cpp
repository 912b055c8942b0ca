// tools/metrics.cpp: see metrics.h.
#include "tools/metrics.h"

#include <cmath>
#include <cstdlib>
#include <ctime>
#include <sstream>

#include "tensor/error.h"
#include "tools/plot.h"
#include "tools/training_run.h"

namespace td::cli {

namespace {

std::vector<std::string> split_csv(const std::string& line) {
    std::vector<std::string> cells;
    std::stringstream ss(line);
    for (std::string c; std::getline(ss, c, ',');) cells.push_back(c);
    if (!line.empty() && line.back() == ',') cells.push_back("");
    return cells;
}

std::string join_csv(const std::vector<std::string>& cells) {
    std::string line;
    for (size_t i = 0; i < cells.size(); ++i) line += (i ? "," : "") + cells[i];
    return line;
}

double number_or_nan(const std::string& s) {
    char* end = nullptr;
    double v = std::strtod(s.c_str(), &end);
    return s.empty() || *end != '\0' ? NAN : v;
}

// "2026-12-06T20:55:01Z": sorts as text, and every spreadsheet reads it.
std::string utc_now() {
    std::time_t now = std::time(nullptr);
    std::tm t{};
    gmtime_r(&now, &t);
    char buf[32];
    std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &t);
    return buf;
}

}  // namespace

std::string cell(double v) {
    std::ostringstream s;
    s << v;
    return s.str();
}

MetricsTable read_metrics(const std::string& path) {
    MetricsTable t;
    std::ifstream in(path);
    std::string line;
    if (!std::getline(in, line)) return t;
    t.columns = split_csv(line);
    while (std::getline(in, line)) {
        std::vector<double> row;
        for (const std::string& c : split_csv(line)) row.push_back(number_or_nan(c));
        row.resize(t.columns.size(), NAN);
        t.rows.push_back(row);
    }
    return t;
}

void MetricsTable::series(const std::string& column, std::vector<float>& steps, std::vector<float>& values) const {
    size_t c = 0;
    while (c < columns.size() && columns[c] != column) ++c;
    if (c == columns.size() || columns.empty()) return;
    for (const std::vector<double>& r : rows)
        if (std::isfinite(r[c]) && std::isfinite(r[0])) {
            steps.push_back((float)r[0]);  // the step is every file's first column
            values.push_back((float)r[c]);
        }
}

double MetricsTable::at_step(int64_t step, const std::string& column) const {
    for (size_t c = 0; c < columns.size(); ++c)
        if (columns[c] == column)
            for (const std::vector<double>& r : rows)
                if (r[0] == (double)step) return r[c];
    return NAN;
}

float plot_loss(const std::string& path, const MetricsTable& metrics, const std::string& column) {
    std::vector<float> xs, ys;
    metrics.series(column, xs, ys);
    std::vector<float> sm(ys.size());
    for (size_t i = 0; i < ys.size(); ++i) sm[i] = i == 0 ? ys[0] : 0.98f * sm[i - 1] + 0.02f * ys[i];
    plot::Axes axes;
    axes.log_y = true;
    plot::line_plot(path, {{xs, ys, 0xbbbbbb}, {xs, sm, 0x1f77b4}}, axes);
    return sm.empty() ? 0.0f : sm.back();
}

std::string MetricsWriter::header() const { return join_csv(columns_) + ",wall_clock"; }

void MetricsWriter::open(const std::string& path, const std::string& text) {
    path_ = path;
    write_text_file(path, text);
    file_.open(path, std::ios::app);
    check(file_.good(), path, ": cannot open for writing");
}

void MetricsWriter::start(const std::string& path) {
    seconds_before_ = 0;
    open(path, header() + "\n");
}

void MetricsWriter::resume(const std::string& path, int64_t step) {
    // Read by column name: a file written before a column was added gets it, empty.
    std::vector<std::string> now = columns_;
    now.push_back("wall_clock");
    std::ifstream in(path);
    std::string line, kept = header() + "\n";
    std::getline(in, line);
    std::vector<std::string> was = split_csv(line);
    seconds_before_ = 0;
    for (size_t i = 0; std::getline(in, line); ++i) {
        if (std::atoll(line.c_str()) > step) continue;  // past the checkpoint: that training is redone
        std::vector<std::string> cells = split_csv(line), moved(now.size());
        for (size_t c = 0; c < cells.size() && c < was.size(); ++c)
            for (size_t to = 0; to < now.size(); ++to)
                if (now[to] == was[c]) moved[to] = cells[c];
        kept += join_csv(moved) + "\n";
        for (size_t c = 0; c < now.size(); ++c)
            if (now[c] == "seconds" && std::isfinite(number_or_nan(moved[c])))
                seconds_before_ = number_or_nan(moved[c]);
    }
    in.close();
    open(path, kept);
}

void MetricsWriter::row(const std::vector<std::string>& values) {
    file_ << join_csv(values) << "," << utc_now() << "\n";
    file_.flush();  // a row per step as it finishes: `tail -f metrics.csv` follows the run
    check(file_.good(), path_, ": cannot write (disk full?)");
}

}  // namespace td::cli
