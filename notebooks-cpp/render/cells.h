// notebooks-cpp/render/cells.h: a notebook split into its cells (the percent format,
// notebooks-cpp/README.md): `// %% [markdown]` starts a cell of prose (every line a //
// comment, the // and one space stripped), `// %%` a cell of code. The lines before the
// first `// %%` are a code cell too, hidden on the page when they are only comments (the
// file's header, e.g. `// read after: 04`). A line of code right after prose starts a
// code cell without a header: a notebook may close main() with `return 0; }` after it.
#pragma once
#include <string>
#include <vector>

namespace nbrender {

enum class CellKind { Markdown, Code };

struct Cell {
    CellKind kind = CellKind::Code;
    int header_line = 0;             // 1-based line of its `// %%` header; 0: none
    int first_line = 1;              // 1-based line of its first line after the header
    std::vector<std::string> lines;  // markdown: with `// ` stripped; code: as written
    bool hidden = false;             // not rendered (a header made of comments only)
    int marker = -1;                 // the number its cell marker prints (markers.h); -1: none
};

struct Notebook {
    std::string path;  // as given, e.g. notebooks-cpp/01-tensors.cpp (the #line directives use it)
    std::string name;  // 01-tensors
    std::vector<Cell> cells;
};

std::vector<Cell> split_cells(const std::string& text);

// Reads and splits a notebook file; its name is the file name without ".cpp".
Notebook read_notebook(const std::string& path);

// A whole file, or td::Error naming `what` and the path; and the other way.
std::string read_text_file(const std::string& path, const char* what);
void write_text_file(const std::string& path, const std::string& text);

}  // namespace nbrender
