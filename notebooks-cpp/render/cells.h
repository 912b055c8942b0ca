// notebooks-cpp/render/cells.h: a notebook split into its cells (the percent format).
//
//   // %% [markdown]          a cell of prose: every line a // comment, the // and one
//   // # A heading            space are stripped and the rest is markdown
//   // Some *prose*.
//   // %%                     a cell of code (optionally `// %% a title`), up to the
//   int x = 2;                next `// %%` line or the end of the file
//
// Lines before the first `// %%` are a code cell too, left out of the rendered page
// when they are only comments (the file's header, for readers of the .cpp). A line
// of code after a markdown cell (not a // comment) starts a code cell without a header:
// a notebook may close main() with `return 0; }` after its last prose.
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
    int marker = -1;                 // the number its cell marker prints (instrument.h); -1: none
};

struct Notebook {
    std::string path;  // as given, e.g. notebooks-cpp/01-tensors.cpp (the #line directives use it)
    std::string name;  // 01-tensors
    std::vector<Cell> cells;
};

// Splits a notebook's text.
std::vector<Cell> split_cells(const std::string& text);

// Reads and splits a notebook file; its name is the file name without ".cpp".
Notebook read_notebook(const std::string& path);

// A cell's lines without the blank lines at its start and end.
std::vector<std::string> trimmed_lines(const Cell& cell);

// Lines without the indentation they all share (code cells inside main, as a reader
// of the page wants them).
std::vector<std::string> dedented(const std::vector<std::string>& lines);

// The whole text of a file, or td::Error naming `what` and the path.
std::string read_text_file(const std::string& path, const char* what);

}  // namespace nbrender
