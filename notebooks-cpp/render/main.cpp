// notebooks-cpp/render/main.cpp: nb_render, the three steps of `make notebooks` that
// are not compiling or running (scripts/notebooks.sh calls them in order):
//
//   nb_render instrument NOTEBOOK.cpp OUT.cpp
//       the copy that is compiled: a cell marker at the top of each cell in a function
//       body, #line directives back to NOTEBOOK.cpp (instrument.h)
//   nb_render render NOTEBOOK.cpp OUTPUT.txt WALL_SECONDS DOCS_DIR
//       OUTPUT.txt is what the instrumented program printed (stdout and stderr, run
//       with NB_MARKERS=1 and NB_OUT=DOCS_DIR/NAME); writes DOCS_DIR/NAME.md and .html
//   nb_render index DOCS_DIR
//       DOCS_DIR/index.md and index.html, listing every rendered notebook
//
// Exit status: 0 done, 1 a td::Error (its message says what and where), 2 bad usage.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "notebooks-cpp/render/cells.h"
#include "notebooks-cpp/render/instrument.h"
#include "notebooks-cpp/render/page.h"
#include "notebooks-cpp/render/run_output.h"
#include "tensor/error.h"

namespace {

constexpr int kMaxOutputLines = 400;  // per piece of text; longer ones keep head and tail

int usage() {
    std::fprintf(stderr,
                 "usage: nb_render instrument NOTEBOOK.cpp OUT.cpp\n"
                 "       nb_render render NOTEBOOK.cpp OUTPUT.txt WALL_SECONDS DOCS_DIR\n"
                 "       nb_render index DOCS_DIR\n");
    return 2;
}

// Writes the instrumented copy, but leaves an identical one untouched: its unchanged
// time stamp tells make that the notebook need not be compiled again (after a change to
// nb_render that does not change its output).
void instrument(const std::string& notebook, const std::string& out_path) {
    nbrender::Notebook nb = nbrender::read_notebook(notebook);
    nbrender::assign_markers(nb);
    std::string text = nbrender::instrumented_source(nb);
    if (std::filesystem::exists(out_path) && nbrender::read_text_file(out_path, "instrumented copy") == text) return;
    std::filesystem::path parent = std::filesystem::path(out_path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
    std::ofstream f(out_path, std::ios::binary);
    f << text;
    f.close();
    td::check(f.good(), "nb_render: cannot write ", out_path);
}

void render(const std::string& notebook, const std::string& output_path, const std::string& wall,
            const std::string& docs_dir) {
    char* end = nullptr;
    double wall_s = std::strtod(wall.c_str(), &end);
    td::check(end != wall.c_str() && *end == '\0' && wall_s >= 0, "nb_render render: WALL_SECONDS '", wall,
              "' is not a number of seconds");
    nbrender::Notebook nb = nbrender::read_notebook(notebook);
    nbrender::assign_markers(nb);
    std::string output = nbrender::read_text_file(output_path, "program output");
    std::vector<std::vector<nbrender::Piece>> pieces = nbrender::attribute_output(output, nb);
    for (std::vector<nbrender::Piece>& p : pieces) nbrender::shorten_long_text(p, kMaxOutputLines);
    nbrender::write_pages(nb, pieces, wall_s, docs_dir);
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) return usage();
    std::string cmd = argv[1];
    try {
        if (cmd == "instrument" && argc == 4)
            instrument(argv[2], argv[3]);
        else if (cmd == "render" && argc == 6)
            render(argv[2], argv[3], argv[4], argv[5]);
        else if (cmd == "index" && argc == 3)
            nbrender::write_index(argv[2]);
        else
            return usage();
    } catch (const td::Error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    } catch (const std::exception& e) {  // a filesystem error, bad_alloc: still a message, not an abort
        std::fprintf(stderr, "nb_render %s: %s\n", cmd.c_str(), e.what());
        return 1;
    }
    return 0;
}
