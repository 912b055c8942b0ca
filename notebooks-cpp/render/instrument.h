// notebooks-cpp/render/instrument.h: the copy of a notebook that tells, as it runs,
// which cell is printing.
//
// Each code cell that starts among the statements of a function body (main, mostly)
// gets one extra statement at its top, `nb_cell_marker(K);`, which prints the line
//     @@nb-cell K@@
// when the environment has NB_MARKERS=1 (the renderer sets it; run by hand, the
// program prints nothing extra). Everything printed after it, up to the next marker,
// belongs to cell K. Cells at namespace scope (includes, function definitions) get no
// marker: what their functions print shows under the cell that called them.
// `#line` directives keep the compiler's messages (and gdb) on the notebook's own
// file and line numbers.
#pragma once
#include <string>

#include "notebooks-cpp/render/cells.h"

namespace nbrender {

// The text the marker prints before the cell number, and after it.
inline const char* kMarkerOpen = "@@nb-cell ";
inline const char* kMarkerClose = "@@";

// Decides which code cells get a marker: sets Cell::marker to the cell's index.
void assign_markers(Notebook& nb);

// The instrumented source (call assign_markers first).
std::string instrumented_source(const Notebook& nb);

}  // namespace nbrender
