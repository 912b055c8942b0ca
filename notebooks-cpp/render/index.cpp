// notebooks-cpp/render/index.cpp: DOCS/index.md and index.html, built from the
// metadata comment at the top of each rendered DOCS/NN-name.md (see page.h), so that
// rendering one notebook (make notebooks NB=04) keeps the others in the list.
#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "notebooks-cpp/render/markdown.h"
#include "notebooks-cpp/render/page.h"
#include "tensor/error.h"

namespace nbrender {

namespace fs = std::filesystem;

bool read_page_info(const std::string& md_text, PageInfo* info) {
    if (md_text.compare(0, 5, "<!--\n") != 0) return false;
    size_t end = md_text.find("-->");
    if (end == std::string::npos) return false;
    std::istringstream in(md_text.substr(5, end - 5));
    bool have_name = false, have_wall = false;
    for (std::string line; std::getline(in, line);) {
        size_t colon = line.find(": ");
        if (colon == std::string::npos) continue;
        std::string key = line.substr(0, colon), value = line.substr(colon + 2);
        if (key == "name") {
            info->name = value;
            have_name = true;
        } else if (key == "title")
            info->title = value;
        else if (key == "summary")
            info->summary = value;
        else if (key == "wall_s") {
            info->wall_s = std::atof(value.c_str());
            have_wall = true;
        }
    }
    return have_name && have_wall;
}

// A markdown table cell: a '|' inside it would end the cell.
static std::string table_cell(const std::string& s) {
    std::string out;
    for (char c : s) out += c == '|' ? std::string("\\|") : std::string(1, c);
    return out;
}

// "04 The forward process" -> "The forward process": the index shows the number once.
static std::string without_number(const std::string& title, const std::string& number) {
    if (title.compare(0, number.size(), number) != 0) return title;
    size_t i = title.find_first_not_of(" .:-\xC2\xB7", number.size());  // also a middle dot (UTF-8 C2 B7)
    return i == std::string::npos || i == number.size() ? title : title.substr(i);
}

// NN-name.md files in docs_dir, in order of their number.
static std::vector<PageInfo> rendered_pages(const std::string& docs_dir) {
    std::vector<PageInfo> pages;
    if (!fs::is_directory(docs_dir)) return pages;
    for (const fs::directory_entry& e : fs::directory_iterator(docs_dir)) {
        std::string file = e.path().filename().string();
        bool numbered = file.size() > 6 && std::isdigit((unsigned char)file[0]) &&
                        std::isdigit((unsigned char)file[1]) && file[2] == '-' && e.path().extension() == ".md";
        if (!numbered) continue;
        std::ifstream f(e.path());
        std::ostringstream text;
        text << f.rdbuf();
        PageInfo info;
        if (read_page_info(text.str(), &info)) pages.push_back(info);
    }
    std::sort(pages.begin(), pages.end(), [](const PageInfo& a, const PageInfo& b) { return a.name < b.name; });
    return pages;
}

static const char* kIntro =
    "Literate C++ programs, read top to bottom: prose, code, and what the code printed, "
    "each building on the last. Each is one file in `notebooks-cpp/` that compiles and runs "
    "on its own; `make notebooks` builds, runs and renders them all (`make notebooks NB=04` "
    "just one), and `make test` keeps them compiling.";

static const char* kTimes =
    "Run times are the wall-clock seconds of the run that rendered each page (on the "
    "2-core machine that rendered them, with the checkpoints already trained). How the pages "
    "are made, and how to write a notebook: [notebooks-cpp/README.md](../../notebooks-cpp/README.md).";

void write_index(const std::string& docs_dir) {
    std::vector<PageInfo> pages = rendered_pages(docs_dir);
    std::ostringstream md, html;
    md << "# tinydiffusion notebooks\n\n"
       << kIntro << "\n\n"
       << "| | notebook | what it shows | run time |\n| --- | --- | --- | ---: |\n";
    html << "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
         << "<title>tinydiffusion notebooks</title>\n<style>\n"
         << page_css() << "</style>\n</head>\n<body>\n"
         << "<main>\n<h1>tinydiffusion notebooks</h1>\n<p>" << inline_to_html(kIntro) << "</p>\n"
         << "<table>\n<thead><tr><th></th><th>notebook</th><th>what it shows</th><th style=\"white-space:nowrap\">run "
            "time</th></tr></thead>\n<tbody>\n";
    for (const PageInfo& p : pages) {
        std::string number = p.name.substr(0, 2), title = without_number(p.title, number);
        md << "| " << number << " | [" << table_cell(title) << "](" << p.name << ".md) | " << table_cell(p.summary)
           << " | " << seconds_str(p.wall_s) << " |\n";
        html << "<tr><td>" << number << "</td><td><a href=\"" << escape_html(p.name) << ".html\">"
             << inline_to_html(title) << "</a></td><td>" << inline_to_html(p.summary)
             << "</td><td style=\"text-align:right; white-space:nowrap\">" << seconds_str(p.wall_s) << "</td></tr>\n";
    }
    md << "\n" << kTimes << "\n";
    html << "</tbody>\n</table>\n<p>" << inline_to_html(kTimes) << "</p>\n</main>\n</body>\n</html>\n";
    for (const auto& [file, text] : {std::pair{"index.md", md.str()}, std::pair{"index.html", html.str()}}) {
        std::ofstream f(fs::path(docs_dir) / file, std::ios::binary);
        f << text;
        f.close();
        td::check(f.good(), "nb_render: cannot write ", (fs::path(docs_dir) / file).string());
    }
}

}  // namespace nbrender
