// notebooks-cpp/render/page.cpp: see page.h. (The index of all pages: index.cpp.)
#include "notebooks-cpp/render/page.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "notebooks-cpp/render/highlight.h"
#include "notebooks-cpp/render/markdown.h"
#include "tensor/error.h"

namespace nbrender {

namespace fs = std::filesystem;

static std::string join_lines(const std::vector<std::string>& lines) {
    std::string out;
    for (const std::string& l : lines) out += l + "\n";
    return out;
}

std::string seconds_str(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, s < 10 ? "%.1f s" : "%.0f s", s);
    return buf;
}

// Whether the word just before position `dot` is an abbreviation ("eq.", "et al.").
static bool after_abbreviation(const std::string& text, size_t dot) {
    static const std::set<std::string> words = {"eq", "eqs", "al", "e.g", "i.e", "vs", "sec", "fig", "cf", "etc"};
    size_t start = text.find_last_of(" (", dot == 0 ? 0 : dot - 1);
    std::string word =
        text.substr(start == std::string::npos ? 0 : start + 1, dot - (start == std::string::npos ? 0 : start + 1));
    for (char& c : word) c = (char)std::tolower((unsigned char)c);
    return words.count(word) > 0;
}

// The first sentence of a paragraph: up to the first ". " outside parentheses that does
// not end an abbreviation, at most ~200 characters.
static std::string first_sentence(const std::string& text) {
    int depth = 0;
    size_t end = std::string::npos;
    for (size_t i = 0; i + 1 < text.size() && end == std::string::npos; ++i) {
        if (text[i] == '(') ++depth;
        if (text[i] == ')' && depth > 0) --depth;
        if (text[i] == '.' && text[i + 1] == ' ' && depth == 0 && !after_abbreviation(text, i)) end = i;
    }
    std::string s = end == std::string::npos ? text : text.substr(0, end + 1);
    if (s.size() > 200) s = s.substr(0, s.rfind(' ', 197)) + " ...";
    return s;
}

PageInfo page_info(const Notebook& nb, double wall_s) {
    PageInfo info;
    info.name = nb.name;
    info.title = nb.name;
    info.source = nb.path;
    info.wall_s = wall_s;
    bool have_title = false;
    std::string paragraph;
    for (const Cell& cell : nb.cells) {
        if (cell.kind != CellKind::Markdown) continue;
        for (const std::string& line : cell.lines) {
            size_t i = line.find_first_not_of(' ');
            bool blank = i == std::string::npos;
            if (!have_title && !blank && line[i] == '#') {
                info.title = line.substr(line.find_first_not_of("# ", i));
                have_title = true;
            } else if (have_title && !blank && line[i] != '#') {
                paragraph += (paragraph.empty() ? "" : " ") + line.substr(i);
            } else if (have_title && !paragraph.empty()) {
                info.summary = first_sentence(paragraph);
                return info;
            }
        }
    }
    if (!paragraph.empty()) info.summary = first_sentence(paragraph);
    return info;
}

// A fence that no run of backticks inside `text` can close early.
static std::string fence_for(const std::string& text) {
    size_t longest = 0, run = 0;
    for (char c : text) {
        run = c == '`' ? run + 1 : 0;
        longest = std::max(longest, run);
    }
    return std::string(std::max<size_t>(3, longest + 1), '`');
}

// Text for inside *...* or [...]: characters markdown would read as markup, escaped.
static std::string md_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '*' || c == '_' || c == '[' || c == ']' || c == '`' || c == '\\') out += '\\';
        out += c;
    }
    return out;
}

static std::string one_line(const std::string& s) {
    std::string out = s;
    std::replace(out.begin(), out.end(), '\n', ' ');
    size_t at;
    while ((at = out.find("--")) != std::string::npos) out.replace(at, 2, "-");  // cannot end the comment
    return out;
}

std::string markdown_page(const Notebook& nb, const std::vector<std::vector<Piece>>& outputs, const PageInfo& info,
                          const std::string& source_link) {
    std::ostringstream os;
    char wall[32];
    std::snprintf(wall, sizeof wall, "%.2f", info.wall_s);
    os << "<!--\n"
       << "nb_render: rendered from " << nb.path << " by `make notebooks`; edit that file, not this one\n"
       << "name: " << one_line(info.name) << "\n"
       << "title: " << one_line(info.title) << "\n"
       << "summary: " << one_line(info.summary) << "\n"
       << "wall_s: " << wall << "\n"
       << "-->\n"
       << "[All notebooks](index.md) · source: [`" << nb.path << "`](" << source_link << ") · ran in "
       << seconds_str(info.wall_s) << "\n\n";
    for (size_t k = 0; k < nb.cells.size(); ++k) {
        const Cell& cell = nb.cells[k];
        if (cell.hidden) continue;
        std::vector<std::string> lines = trimmed_lines(cell);
        if (cell.kind == CellKind::Markdown) {
            if (!lines.empty()) os << join_lines(lines) << "\n";
            continue;
        }
        std::string code = join_lines(dedented(lines));
        if (!lines.empty()) os << fence_for(code) << "cpp\n" << code << fence_for(code) << "\n\n";
        for (const Piece& p : outputs[k]) {
            if (p.is_image)
                os << "![" << md_escape(p.caption) << "](" << nb.name << "/" << p.file << ")\n\n*"
                   << md_escape(p.caption.empty() ? p.file : p.caption) << "*\n\n";
            else
                os << fence_for(p.text) << "text\n" << p.text << fence_for(p.text) << "\n\n";
        }
    }
    return os.str();
}

std::string html_page(const Notebook& nb, const std::vector<std::vector<Piece>>& outputs, const PageInfo& info,
                      const std::string& source_link) {
    std::ostringstream os;
    os << "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
       << "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
       << "<title>" << escape_html(info.title) << " · tinydiffusion notebooks</title>\n"
       << "<style>\n"
       << page_css() << "</style>\n</head>\n<body>\n"
       << "<nav><a href=\"index.html\">&larr; all notebooks</a> <span>source <a href=\"" << escape_html(source_link)
       << "\"><code>" << escape_html(nb.path) << "</code></a> · ran in " << seconds_str(info.wall_s)
       << "</span></nav>\n<main>\n";
    for (size_t k = 0; k < nb.cells.size(); ++k) {
        const Cell& cell = nb.cells[k];
        if (cell.hidden) continue;
        std::vector<std::string> lines = trimmed_lines(cell);
        if (cell.kind == CellKind::Markdown) {
            if (!lines.empty())
                os << "<section class=\"prose\">\n" << markdown_to_html(join_lines(lines)) << "</section>\n";
            continue;
        }
        if (lines.empty() && outputs[k].empty()) continue;
        os << "<section class=\"cell\">\n";
        if (!lines.empty())
            os << "<pre class=\"code\"><code>" << highlight_cpp(join_lines(dedented(lines))) << "</code></pre>\n";
        for (const Piece& p : outputs[k]) {
            if (p.is_image) {
                std::string src = nb.name + "/" + p.file;
                os << "<figure><img src=\"" << escape_html(src) << "\" alt=\"" << escape_html(p.caption) << "\">"
                   << "<figcaption>" << escape_html(p.caption.empty() ? p.file : p.caption)
                   << "</figcaption></figure>\n";
            } else {
                os << "<pre class=\"out\">" << escape_html(p.text) << "</pre>\n";
            }
        }
        os << "</section>\n";
    }
    os << "</main>\n<footer>Rendered by <code>make notebooks</code> from <a href=\"" << escape_html(source_link)
       << "\"><code>" << escape_html(nb.path) << "</code></a>: every output above is what that program printed, "
       << "in " << seconds_str(info.wall_s) << ". <a href=\"index.html\">All notebooks</a>.</footer>\n"
       << "</body>\n</html>\n";
    return os.str();
}

static void write_file(const std::string& path, const std::string& text) {
    std::ofstream f(path, std::ios::binary);
    f << text;
    f.close();
    td::check(f.good(), "nb_render: cannot write ", path);
}

void write_pages(const Notebook& nb, const std::vector<std::vector<Piece>>& outputs, double wall_s,
                 const std::string& docs_dir) {
    for (const std::vector<Piece>& pieces : outputs)
        for (const Piece& p : pieces)
            td::check(!p.is_image || fs::is_regular_file(fs::path(docs_dir) / nb.name / p.file), "nb_render: ", nb.name,
                      " announced the picture [[image: ", p.file, "]] but ",
                      (fs::path(docs_dir) / nb.name / p.file).string(),
                      " does not exist (did it write the file into nb::out_dir()?)");
    PageInfo info = page_info(nb, wall_s);
    std::string source_link = fs::relative(fs::absolute(nb.path), fs::absolute(docs_dir)).generic_string();
    fs::create_directories(docs_dir);
    write_file((fs::path(docs_dir) / (nb.name + ".md")).string(), markdown_page(nb, outputs, info, source_link));
    write_file((fs::path(docs_dir) / (nb.name + ".html")).string(), html_page(nb, outputs, info, source_link));
}

const char* page_css() {
    return R"(body { margin: 0; background: #fff; color: #1f2328;
       font: 16px/1.55 "DejaVu Sans", system-ui, sans-serif; }
nav { display: flex; justify-content: space-between; gap: 1em; flex-wrap: wrap; padding: .55em 1.2em;
      background: #f3f4f6; border-bottom: 1px solid #d8dee4; font-size: 14px; }
main { max-width: 1000px; margin: 0 auto; padding: 0 1.2em 2em; }
footer { max-width: 1000px; margin: 2em auto; padding: 1em 1.2em; border-top: 1px solid #d8dee4;
         color: #57606a; font-size: 14px; }
a { color: #0b5cad; }
h1 { font-size: 1.9em; margin: 1em 0 .4em; }
h2 { font-size: 1.4em; margin: 1.4em 0 .4em; border-bottom: 1px solid #e5e7eb; }
h3 { font-size: 1.15em; margin: 1.2em 0 .3em; }
code, pre { font: 13.5px/1.45 "DejaVu Sans Mono", ui-monospace, monospace; }
:not(pre) > code { background: #f0f2f4; padding: .05em .3em; border-radius: 3px; }
pre { margin: 0; padding: .6em .9em; overflow-x: auto; white-space: pre; }
.prose pre.code { margin: .6em 0; }
.cell { margin: .9em 0 1.1em; }
pre.code { background: #f6f8fa; border: 1px solid #d8dee4; border-left: 4px solid #6e9ed6; border-radius: 4px; }
pre.out { border-left: 4px solid #d0d7de; background: #fff; color: #24292f; margin-top: .35em;
          white-space: pre-wrap; overflow-wrap: anywhere; }
figure { margin: .6em 0 .6em 4px; padding-left: .9em; border-left: 4px solid #d0d7de; }
figure img { display: block; max-width: 100%; image-rendering: pixelated; border: 1px solid #e5e7eb; }
figcaption { color: #57606a; font-size: 14px; font-style: italic; margin-top: .3em; }
table { border-collapse: collapse; margin: .8em 0; } th, td { border: 1px solid #d0d7de; padding: .3em .7em; }
th { background: #f6f8fa; }
blockquote { margin: .8em 0; padding: .1em 1em; border-left: 4px solid #e5c07b; background: #fdf8ec; }
.c { color: #6a737d; font-style: italic; } .s { color: #0a7d32; } .n { color: #a3480f; } .k { color: #8839c4; }
.p { color: #b5540b; }
)";
}

}  // namespace nbrender
