// notebooks-cpp/render/cells.cpp: see cells.h.
#include "notebooks-cpp/render/cells.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace nbrender {

static std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

static bool is_blank(const std::string& s) { return trim(s).empty(); }

// `// %%`, `// %% a title` or `// %% [markdown]`: the start of a cell.
static bool is_cell_header(const std::string& line, CellKind* kind) {
    std::string t = trim(line);
    if (t.compare(0, 5, "// %%") != 0 || (t.size() > 5 && t[5] != ' ')) return false;
    std::string rest = trim(t.substr(5));
    *kind = rest == "[markdown]" || rest == "[md]" ? CellKind::Markdown : CellKind::Code;
    return true;
}

// A line of prose (`// text` -> "text", `//` -> ""), or false when the line is code.
static bool prose_line(const std::string& line, std::string* text) {
    std::string t = line;
    while (!t.empty() && (t.back() == '\r' || t.back() == ' ' || t.back() == '\t')) t.pop_back();
    size_t i = t.find_first_not_of(" \t");
    if (i == std::string::npos) {
        *text = "";
        return true;
    }
    if (t.compare(i, 2, "//") != 0) return false;
    i += 2;
    if (i < t.size() && t[i] == ' ') ++i;
    *text = t.substr(i);
    return true;
}

static bool only_comments(const std::vector<std::string>& lines) {
    for (const std::string& l : lines) {
        std::string t = trim(l);
        if (!t.empty() && t.compare(0, 2, "//") != 0) return false;
    }
    return true;
}

std::vector<Cell> split_cells(const std::string& text) {
    std::vector<Cell> cells(1);  // the lines before the first header
    std::istringstream in(text);
    std::string line;
    int lineno = 0;
    while (std::getline(in, line)) {
        ++lineno;
        CellKind kind;
        if (is_cell_header(line, &kind)) {
            Cell cell;
            cell.kind = kind;
            cell.header_line = lineno;
            cell.first_line = lineno + 1;
            cells.push_back(cell);
            continue;
        }
        std::string prose;
        if (cells.back().kind == CellKind::Markdown && !prose_line(line, &prose)) {
            Cell code;  // code right after prose: a cell of its own, without a header
            code.first_line = lineno;
            cells.push_back(code);
        }
        Cell& cell = cells.back();
        cell.lines.push_back(cell.kind == CellKind::Markdown ? prose : line);
    }
    Cell& head = cells.front();
    head.hidden = only_comments(head.lines);
    if (head.lines.empty()) cells.erase(cells.begin());
    return cells;
}

Notebook read_notebook(const std::string& path) {
    Notebook nb;
    nb.path = path;
    nb.name = std::filesystem::path(path).stem().string();
    nb.cells = split_cells(read_text_file(path, "notebook"));
    return nb;
}

std::vector<std::string> trimmed_lines(const Cell& cell) {
    size_t a = 0, b = cell.lines.size();
    while (a < b && is_blank(cell.lines[a])) ++a;
    while (b > a && is_blank(cell.lines[b - 1])) --b;
    return std::vector<std::string>(cell.lines.begin() + a, cell.lines.begin() + b);
}

std::vector<std::string> dedented(const std::vector<std::string>& lines) {
    size_t common = std::string::npos;
    for (const std::string& l : lines) {
        size_t i = l.find_first_not_of(' ');
        if (i != std::string::npos) common = std::min(common, i);
    }
    if (common == std::string::npos || common == 0) return lines;
    std::vector<std::string> out;
    for (const std::string& l : lines) out.push_back(l.size() > common ? l.substr(common) : "");
    return out;
}

std::string read_text_file(const std::string& path, const char* what) {
    std::ifstream f(path, std::ios::binary);
    td::check(f.good(), "nb_render: cannot read the ", what, " ", path);
    std::ostringstream os;
    os << f.rdbuf();
    return os.str();
}

}  // namespace nbrender
