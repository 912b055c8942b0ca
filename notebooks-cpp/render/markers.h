// notebooks-cpp/render/markers.h: how the renderer tells which cell printed what.
//
// markers.cpp writes the copy of a notebook that is compiled: each code cell that
// starts among the statements of a function body gets one statement more at its top,
// `nb_cell_marker(K);`, which prints `@@nb-cell K@@` when NB_MARKERS=1 (run by hand, the
// program prints nothing extra), and `#line` directives keep compiler messages and gdb
// on the notebook's own lines. It then reads the output (stdout and stderr) back:
// a marker switches to its cell, a line `[[image: FILE | caption]]` (notebook.h) is a
// picture, the rest is text. Cells at namespace scope have no marker: what their
// functions print shows under the cell that called them, and what is printed before the
// first marker under the code cell just before the first marked one (it opens main).
#pragma once
#include <string>
#include <vector>

#include "notebooks-cpp/render/cells.h"

namespace nbrender {

// Decides which code cells get a marker: sets Cell::marker to the cell's index.
void assign_markers(Notebook& nb);

// The instrumented source (call assign_markers first).
std::string instrumented_source(const Notebook& nb);

struct Piece {
    bool is_image = false;
    std::string text;  // the lines printed, each ending in '\n' (text pieces)
    std::string file;  // the picture's file name in the image folder (image pieces)
    std::string caption;
};

// One list of pieces per cell of `nb` (empty for prose cells and silent code cells).
// Throws td::Error when a marker names a cell that has none (a stale binary).
std::vector<std::vector<Piece>> attribute_output(const std::string& output, const Notebook& nb);

}  // namespace nbrender
