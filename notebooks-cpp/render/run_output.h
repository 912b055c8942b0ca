// notebooks-cpp/render/run_output.h: what a notebook printed, cut into the pieces
// each code cell shows under its code.
//
// The run's output (stdout and stderr together) is read line by line: a cell marker
// (instrument.h) switches to the cell it names, a line `[[image: FILE | caption]]`
// (notebook.h's show_* functions) becomes a picture, anything else is text. What is
// printed before the first marker belongs to the code cell just before the first
// marked one (the cell that opens main, usually).
#pragma once
#include <string>
#include <vector>

#include "notebooks-cpp/render/cells.h"

namespace nbrender {

struct Piece {
    bool is_image = false;
    std::string text;  // the lines printed, each ending in '\n' (text pieces)
    std::string file;  // the picture's file name in the image folder (image pieces)
    std::string caption;
};

// One list of pieces per cell of `nb` (empty for prose cells and silent code cells).
// Throws td::Error when a marker names a cell that has none (a stale binary).
std::vector<std::vector<Piece>> attribute_output(const std::string& output, const Notebook& nb);

// `[[image: FILE | caption]]` -> FILE and caption (the caption may be missing).
bool parse_image_line(const std::string& line, std::string* file, std::string* caption);

// A terminal line as a page shows it: colour escapes dropped, and only what the last
// carriage return left visible (progress lines redraw themselves with '\r').
std::string visible_text(const std::string& line);

// Text pieces longer than max_lines keep their first and last lines with a note between.
void shorten_long_text(std::vector<Piece>& pieces, int max_lines);

}  // namespace nbrender
