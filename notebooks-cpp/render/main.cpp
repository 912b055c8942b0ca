// notebooks-cpp/render/main.cpp: nb_render, the steps of `make notebooks` that are not
// compiling or running (scripts/notebooks.sh calls them in order, from the repository root):
//   nb_render instrument NOTEBOOK.cpp OUT.cpp
//       the copy that is compiled: cell markers and #line directives (instrument.h)
//   nb_render render NOTEBOOK.cpp OUTPUT.txt WALL_SECONDS DOCS_DIR
//       OUTPUT.txt is what the instrumented program printed (stdout and stderr, run
//       with NB_MARKERS=1 and NB_OUT=DOCS_DIR/NAME); writes DOCS_DIR/NAME.md and .html
//   nb_render index DOCS_DIR
//       DOCS_DIR/index.md and index.html, every rendered notebook in reading order
//
// Exit status: 0 done, 1 a td::Error (its message says what and where), 2 bad usage.
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "notebooks-cpp/render/markers.h"
#include "notebooks-cpp/render/page.h"
#include "tensor/error.h"

using namespace nbrender;

// Writes the instrumented copy, but leaves an identical one untouched: its unchanged
// time stamp tells make that the notebook need not be compiled again.
static void instrument(const std::string& notebook, const std::string& out_path) {
    Notebook nb = read_notebook(notebook);
    assign_markers(nb);
    std::string text = instrumented_source(nb);
    if (std::filesystem::exists(out_path) && read_text_file(out_path, "instrumented copy") == text) return;
    std::filesystem::create_directories(std::filesystem::absolute(out_path).parent_path());
    write_text_file(out_path, text);
}

static void render(const std::string& notebook, const std::string& output, const std::string& wall,
                   const std::string& docs_dir) {
    char* end = nullptr;
    double wall_s = std::strtod(wall.c_str(), &end);
    td::check(end != wall.c_str() && *end == '\0' && wall_s >= 0, "WALL_SECONDS '", wall,
              "' is not a number of seconds");
    Notebook nb = read_notebook(notebook);
    assign_markers(nb);
    write_pages(nb, attribute_output(read_text_file(output, "program output"), nb), wall_s, docs_dir);
}

static int usage() {
    std::fprintf(stderr,
                 "usage: nb_render instrument NOTEBOOK.cpp OUT.cpp\n"
                 "       nb_render render NOTEBOOK.cpp OUTPUT.txt WALL_SECONDS DOCS_DIR\n"
                 "       nb_render index DOCS_DIR\n");
    return 2;
}

int main(int argc, char** argv) {
    std::string cmd = argc > 1 ? argv[1] : "";
    try {
        if (cmd == "instrument" && argc == 4) instrument(argv[2], argv[3]);
        else if (cmd == "render" && argc == 6) render(argv[2], argv[3], argv[4], argv[5]);
        else if (cmd == "index" && argc == 3) write_index(argv[2]);
        else return usage();
    } catch (const std::exception& e) {  // a td::Error names what and where; a filesystem error its path
        std::fprintf(stderr, "nb_render %s: %s\n", cmd.c_str(), e.what());
        return 1;
    }
    return 0;
}
