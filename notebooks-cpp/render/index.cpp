// notebooks-cpp/render/index.cpp: DOCS/index.md and index.html, one row for each rendered
// DOCS/NN-name.md (so that rendering one notebook, make notebooks NB=04, keeps the others
// in the list), with what its notebook says now: title, summary, place in the order.
#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "notebooks-cpp/render/page.h"
#include "tensor/error.h"

namespace nbrender {

namespace fs = std::filesystem;

// The notebook a rendered page came from and how long it ran, from the page's first line
// (write_pages); false when the .md is not a rendered page.
static bool rendered_from(const std::string& md, std::string* source, double* wall_s) {
    char path[1024] = "";
    bool ok = std::sscanf(md.c_str(), "<!-- rendered from %1023s in %lf s", path, wall_s) == 2;
    *source = path;
    return ok;
}

// Appends `page` and, after it, each page that reads after it (and theirs after them).
static void place(const PageInfo& page, const std::vector<PageInfo>& pages, std::vector<PageInfo>& out) {
    out.push_back(page);
    for (const PageInfo& p : pages)
        if (p.read_after == page.name.substr(0, 2)) place(p, pages, out);
}

std::vector<PageInfo> reading_order(const std::vector<PageInfo>& pages) {
    std::vector<PageInfo> out;
    std::string numbers, looped;
    for (const PageInfo& p : pages) numbers += p.name.substr(0, 2) + " ";
    for (const PageInfo& p : pages)  // (one `read after` each: a page not reached from these is in a loop)
        if (p.read_after.empty() || numbers.find(p.read_after + " ") == std::string::npos) place(p, pages, out);
    for (const PageInfo& p : pages)
        if (std::none_of(out.begin(), out.end(), [&](const PageInfo& q) { return q.name == p.name; }))
            looped += " " + p.name + " (after " + p.read_after + ")";
    td::check(out.size() == pages.size(), "the `// read after:` lines of these pages make a loop:", looped);
    return out;
}

// A markdown table cell: a '|' inside it would end the cell.
static std::string table_cell(const std::string& s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
}

static const char* kIntro =
    "Literate C++ programs, read top to bottom: prose, code, and what the code printed, "
    "each building on the last. Each is one file in `notebooks-cpp/` that compiles and runs "
    "on its own; `make notebooks` builds, runs and renders them all (`make notebooks NB=04` "
    "just one), and `make test` keeps them compiling. They are listed in reading order: a "
    "notebook that says `// read after: NN` at its top comes right after notebook NN.";

static const char* kTimes =
    "Run times are the wall-clock seconds of the run that rendered each page, with the "
    "checkpoints already trained (on two cores; other work on the machine makes them longer). How the pages "
    "are made, and how to write a notebook: [notebooks-cpp/README.md](../../notebooks-cpp/README.md).";

void write_index(const std::string& docs_dir) {
    std::vector<PageInfo> pages;
    if (fs::is_directory(docs_dir))
        for (const fs::directory_entry& e : fs::directory_iterator(docs_dir)) {
            std::string file = e.path().filename().string(), source;
            double wall_s;
            if (file.size() > 6 && std::isdigit((unsigned char)file[0]) && std::isdigit((unsigned char)file[1]) &&
                file[2] == '-' && e.path().extension() == ".md" &&
                rendered_from(read_text_file(e.path().string(), "page"), &source, &wall_s))
                pages.push_back(page_info(read_notebook(source), wall_s));
        }
    std::sort(pages.begin(), pages.end(), [](const PageInfo& a, const PageInfo& b) { return a.name < b.name; });
    std::ostringstream md;
    md << "# tinydiffusion notebooks\n\n"
       << kIntro << "\n\n| notebook | what it shows | run time |\n| --- | --- | ---: |\n";
    for (const PageInfo& p : reading_order(pages))
        md << "| [" << table_cell(p.title) << "](" << p.name << ".md) | " << table_cell(p.summary) << " | "
           << seconds_str(p.wall_s) << " |\n";
    md << "\n" << kTimes << "\n";
    write_text_file((fs::path(docs_dir) / "index.md").string(), md.str());
    write_text_file((fs::path(docs_dir) / "index.html").string(), html_page("tinydiffusion notebooks", md.str()));
    write_css(docs_dir);
}

}  // namespace nbrender
