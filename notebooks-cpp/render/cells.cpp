// notebooks-cpp/render/cells.cpp: see cells.h.
#include "notebooks-cpp/render/cells.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace nbrender {

static bool is_blank(const std::string& s) { return s.find_first_not_of(" \t\r") == std::string::npos; }

// `// %%`, `// %% a title` or `// %% [markdown]`: the start of a cell.
static bool is_cell_header(const std::string& line, CellKind* kind) {
    size_t i = line.find_first_not_of(" \t");
    if (i == std::string::npos || line.compare(i, 5, "// %%") != 0 || (line.size() > i + 5 && line[i + 5] != ' '))
        return false;
    *kind = line.find("[markdown]", i) != std::string::npos ? CellKind::Markdown : CellKind::Code;
    return true;
}

// A line of prose (`// text` -> "text", `//` -> ""), or false when the line is code.
static bool prose_line(std::string line, std::string* text) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t i = line.find_first_not_of(" \t");
    if (i != std::string::npos && line.compare(i, 2, "//") != 0) return false;
    i = i == std::string::npos ? line.size() : i + 2;
    *text = line.substr(std::min(line.size(), i + (line[i] == ' ')));
    return true;
}

std::vector<Cell> split_cells(const std::string& text) {
    std::vector<Cell> cells(1);  // the lines before the first header
    std::istringstream in(text);
    std::string line, prose;
    for (int lineno = 1; std::getline(in, line); ++lineno) {
        CellKind kind;
        if (is_cell_header(line, &kind)) {
            cells.push_back(Cell{kind, lineno, lineno + 1, {}});
            continue;
        }
        bool is_prose = prose_line(line, &prose);
        if (cells.back().kind == CellKind::Markdown && !is_prose)
            cells.push_back(Cell{CellKind::Code, 0, lineno, {}});  // code right after prose: a cell without a header
        Cell& cell = cells.back();
        cell.lines.push_back(cell.kind == CellKind::Markdown ? prose : line);
    }
    Cell& head = cells.front();
    head.hidden = std::all_of(head.lines.begin(), head.lines.end(), [](const std::string& l) {
        return is_blank(l) || l.compare(l.find_first_not_of(" \t"), 2, "//") == 0;
    });
    if (head.lines.empty()) cells.erase(cells.begin());
    return cells;
}

Notebook read_notebook(const std::string& path) {
    return Notebook{path, std::filesystem::path(path).stem().string(), split_cells(read_text_file(path, "notebook"))};
}

std::string read_text_file(const std::string& path, const char* what) {
    std::ifstream f(path, std::ios::binary);
    td::check(f.good(), "cannot read the ", what, " ", path);
    std::ostringstream os;
    os << f.rdbuf();
    return os.str();
}

void write_text_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
    f.close();
    td::check(f.good(), "cannot write ", path);
}

}  // namespace nbrender
