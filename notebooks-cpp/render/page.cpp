// notebooks-cpp/render/page.cpp: see page.h. (The index of all pages: index.cpp.)
#include "notebooks-cpp/render/page.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>

#include "tensor/error.h"

namespace nbrender {

namespace fs = std::filesystem;

std::string seconds_str(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, s < 10 ? "%.1f s" : "%.0f s", s);
    return buf;
}

// The first sentence of a paragraph: up to the first ". " outside parentheses that does
// not end an abbreviation ("eq.", "et al."), at most ~200 characters.
static std::string first_sentence(const std::string& text) {
    static const std::set<std::string> abbreviations = {"eq", "eqs", "al",  "e.g", "i.e",
                                                        "vs", "sec", "fig", "cf",  "etc"};
    int depth = 0;
    size_t end = text.size();
    for (size_t i = 0; i + 1 < text.size() && end == text.size(); ++i) {
        depth += text[i] == '(' ? 1 : text[i] == ')' && depth > 0 ? -1 : 0;
        if (text[i] != '.' || text[i + 1] != ' ' || depth > 0) continue;
        size_t word = text.find_last_of(" (", i) + 1;  // (npos + 1 == 0: the first word)
        std::string before = text.substr(word, i - word);
        for (char& c : before) c = (char)std::tolower((unsigned char)c);
        if (!abbreviations.count(before)) end = i + 1;
    }
    std::string s = text.substr(0, end);
    return s.size() > 200 ? s.substr(0, s.rfind(' ', 197)) + " ..." : s;
}

PageInfo page_info(const Notebook& nb, double wall_s) {
    PageInfo info{nb.name, nb.name, "", "", wall_s};
    const std::string key = "read after:";
    if (!nb.cells.empty() && nb.cells[0].hidden)
        for (const std::string& line : nb.cells[0].lines)
            if (size_t at = line.find(key); at != std::string::npos) {
                std::string n;
                std::istringstream(line.substr(at + key.size())) >> n;
                td::check(n.size() == 2 && std::isdigit((unsigned char)n[0]) && std::isdigit((unsigned char)n[1]),
                          nb.path, ": `// read after: NN` wants the two-digit number of a notebook, not '", n, "'");
                info.read_after = n;
            }
    bool have_title = false;
    std::string paragraph;
    for (const Cell& cell : nb.cells) {
        if (cell.kind != CellKind::Markdown) continue;
        for (const std::string& line : cell.lines) {
            size_t i = line.find_first_not_of(' ');
            bool empty = i == std::string::npos;
            if (!have_title && !empty && line[i] == '#') {
                info.title = line.substr(line.find_first_not_of("# ", i));
                have_title = true;
            } else if (have_title && !empty && line[i] != '#') {
                paragraph += (paragraph.empty() ? "" : " ") + line.substr(i);
            } else if (have_title && !paragraph.empty()) {
                info.summary = first_sentence(paragraph);
                return info;
            }
        }
    }
    info.summary = first_sentence(paragraph);
    return info;
}

static bool blank(const std::string& s) { return s.find_first_not_of(" \t\r") == std::string::npos; }

// A cell's lines without the blank lines at its start and end.
static std::vector<std::string> trimmed_lines(const Cell& cell) {
    size_t a = 0, b = cell.lines.size();
    while (a < b && blank(cell.lines[a])) ++a;
    while (b > a && blank(cell.lines[b - 1])) --b;
    return std::vector<std::string>(cell.lines.begin() + a, cell.lines.begin() + b);
}

// Lines without the indentation they all share (code cells inside main, as a reader
// of the page wants them).
static std::vector<std::string> dedented(const std::vector<std::string>& lines) {
    size_t common = std::string::npos;
    for (const std::string& l : lines)
        if (!blank(l)) common = std::min(common, l.find_first_not_of(' '));
    std::vector<std::string> out;
    for (const std::string& l : lines) out.push_back(blank(l) ? "" : l.substr(common));
    return out;
}

// A fence that no run of backticks inside `text` can close early.
static std::string fence_for(const std::string& text) {
    size_t longest = 0, run = 0;
    for (char c : text) longest = std::max(longest, run = c == '`' ? run + 1 : 0);
    return std::string(std::max<size_t>(3, longest + 1), '`');
}

// Text for inside *...* or [...]: characters markdown would read as markup, escaped.
static std::string md_escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (std::string("*_[]`\\").find(c) != std::string::npos) out += '\\';
        out += c;
    }
    return out;
}

static std::string join_lines(const std::vector<std::string>& lines) {
    std::string out;
    for (const std::string& l : lines) out += l + "\n";
    return out;
}

std::string page_markdown(const Notebook& nb, const std::vector<std::vector<Piece>>& outputs, const PageInfo& info,
                          const std::string& docs_dir) {
    std::string source = fs::relative(fs::absolute(nb.path), fs::absolute(docs_dir)).generic_string();
    std::string ran = "ran in " + seconds_str(info.wall_s), from = "[`" + nb.path + "`](" + source + ")";
    std::ostringstream os;
    os << "[All notebooks](index.md) · source: " << from << " · "
       << (info.read_after.empty() ? "" : "read after " + info.read_after + " · ") << ran << "\n\n";
    for (size_t k = 0; k < nb.cells.size(); ++k) {
        const Cell& cell = nb.cells[k];
        std::vector<std::string> lines = cell.hidden ? std::vector<std::string>() : trimmed_lines(cell);
        std::string code = join_lines(dedented(lines));
        if (!lines.empty() && cell.kind == CellKind::Markdown) os << join_lines(lines) << "\n";
        if (!lines.empty() && cell.kind == CellKind::Code)
            os << fence_for(code) << "cpp\n" << code << fence_for(code) << "\n\n";
        for (const Piece& p : outputs[k]) {
            if (p.is_image)  // (a backslash at the end of a line: a line break)
                os << "![" << md_escape(p.caption) << "](" << nb.name << "/" << p.file << ")\\\n*"
                   << md_escape(p.caption.empty() ? p.file : p.caption) << "*\n\n";
            else os << fence_for(p.text) << "text\n" << p.text << fence_for(p.text) << "\n\n";
        }
    }
    os << "---\n\nRendered by `make notebooks` from " << from << ": every output above is what that program "
       << "printed, in " << seconds_str(info.wall_s) << ". [All notebooks](index.md).\n";
    return os.str();
}

void write_pages(const Notebook& nb, const std::vector<std::vector<Piece>>& outputs, double wall_s,
                 const std::string& docs_dir) {
    for (const std::vector<Piece>& pieces : outputs)
        for (const Piece& p : pieces)
            td::check(!p.is_image || fs::is_regular_file(fs::path(docs_dir) / nb.name / p.file), nb.name,
                      " announced the picture [[image: ", p.file, "]] but ",
                      (fs::path(docs_dir) / nb.name / p.file).string(),
                      " does not exist (did it write the file into nb::out_dir()?)");
    PageInfo info = page_info(nb, wall_s);
    std::string page = page_markdown(nb, outputs, info, docs_dir);
    char wall[32];
    std::snprintf(wall, sizeof wall, "%.2f", wall_s);  // (index.cpp reads the comment back)
    std::string comment =
        "<!-- rendered from " + nb.path + " in " + wall + " s by `make notebooks`: edit that file -->\n";
    fs::create_directories(docs_dir);
    fs::path base = fs::path(docs_dir) / nb.name;
    write_text_file(base.string() + ".md", comment + page);
    write_text_file(base.string() + ".html", html_page(info.title + " · tinydiffusion notebooks", page));
    write_css(docs_dir);
}

}  // namespace nbrender
