// notebooks-cpp/render/markers.cpp: see markers.h. First the copy of a notebook that prints
// cell markers, then the output it printed cut into the pieces each cell shows.
#include "notebooks-cpp/render/markers.h"

#include <cctype>
#include <cstdlib>
#include <set>
#include <sstream>

#include "tensor/error.h"

namespace nbrender {

// Put before the notebook's first line. Line-buffered stdout (when markers are on) keeps
// what the program prints on stdout and stderr in the order it was written, and a line
// that crashes the program out is not lost in a buffer.
static const char* kPrelude = R"(#include <cstdio>
#include <cstdlib>
static bool nb_markers_on() {
    const char* on = std::getenv("NB_MARKERS");
    return on && on[0] == '1';
}
static struct NbLineBuffered {
    NbLineBuffered() { if (nb_markers_on()) std::setvbuf(stdout, nullptr, _IOLBF, 0); }
} nb_line_buffered;
[[maybe_unused]] static void nb_cell_marker(int cell) {
    if (!nb_markers_on()) return;
    std::fflush(stderr);
    std::printf("@@nb-cell %d@@\n", cell);
    std::fflush(stdout);
}
)";

static bool is_word_char(char c) { return std::isalnum((unsigned char)c) || c == '_'; }

// Follows the braces of the code fed to it, line by line, skipping those in comments,
// string and character literals and preprocessor lines (raw strings are not understood:
// a notebook with a quote or brace inside one may get a marker in the wrong place, and
// the compiler then says so at the notebook's own line). Each '{' opens a *block* of
// statements (a function, lambda, if/for/while, try, or a plain { } inside one) or not (a
// namespace, class, enum, initializer list): the token before it decides, e.g. ")" or
// "else" make a block, "namespace nb" or "=" do not.
struct BraceTracker {
    std::vector<bool> open;  // one per unclosed '{': does it open a block?
    std::string last = ";";  // the last token outside comments and literals
    std::string first;       // the first one since it was last cleared
    bool in_comment = false, in_directive = false;

    void feed(const std::string& line) {
        static const std::set<std::string> block_words = {"else",     "do",       "try",   "const",
                                                          "noexcept", "override", "final", "mutable"};
        size_t start = line.find_first_not_of(" \t");
        if (!in_comment && (in_directive || (start != std::string::npos && line[start] == '#'))) {
            in_directive = !line.empty() && line.back() == '\\';  // a directive goes on after a backslash
            return;
        }
        for (size_t i = 0; i < line.size(); ++i) {
            char c = line[i];
            if (in_comment) {
                if (line.compare(i, 2, "*/") == 0) in_comment = false, ++i;
            } else if (line.compare(i, 2, "/*") == 0) {
                in_comment = true, ++i;
            } else if (line.compare(i, 2, "//") == 0) {
                return;
            } else if (c == '"' || (c == '\'' && !(i > 0 && is_word_char(line[i - 1])))) {  // (1'000 is a number)
                while (++i < line.size() && line[i] != c) i += line[i] == '\\';
                last = "\"";
                if (first.empty()) first = last;
            } else if (!std::isspace((unsigned char)c)) {
                size_t j = i;
                while (j < line.size() && is_word_char(line[j])) ++j;
                std::string token = j > i ? line.substr(i, j - i) : std::string(1, c);
                i += token.size() - 1;
                bool in_block = !open.empty() && open.back();
                if (token == "{")
                    open.push_back(last == ")" || last == "]" || block_words.count(last) ||
                                   ((last == ";" || last == "{" || last == "}") && in_block));
                if (token == "}" && !open.empty()) open.pop_back();
                last = token;
                if (first.empty()) first = last;
            }
        }
    }
    // Inside a block, after ";", "{" or "}": where a statement may start.
    bool at_statement_start() const {
        return !in_comment && !in_directive && !open.empty() && open.back() &&
               (last == ";" || last == "{" || last == "}");
    }
};

void assign_markers(Notebook& nb) {
    BraceTracker braces;
    for (size_t k = 0; k < nb.cells.size(); ++k) {
        Cell& cell = nb.cells[k];
        cell.marker = -1;
        if (cell.kind != CellKind::Code) continue;  // (prose cells are comments: nothing to follow)
        // Its first token, past comments: `else` and `catch` continue the statement before
        // them (nothing may come between), and a cell without code needs no marker.
        bool at_start = braces.at_statement_start();
        braces.first.clear();
        for (const std::string& line : cell.lines) braces.feed(line);
        if (at_start && !braces.first.empty() && braces.first != "else" && braces.first != "catch")
            cell.marker = (int)k;
    }
}

// A #line directive: the next line is `line` of the notebook.
static std::string line_directive(int line, const std::string& path) {
    return "#line " + std::to_string(line) + " \"" + path + "\"\n";
}

std::string instrumented_source(const Notebook& nb) {
    std::ostringstream os;
    os << "// Generated by nb_render from " << nb.path << ": edit that file, not this one.\n"
       << kPrelude << line_directive(1, nb.path);
    for (const Cell& cell : nb.cells) {
        if (cell.header_line > 0) os << "// %%" << (cell.kind == CellKind::Markdown ? " [markdown]" : "") << "\n";
        if (cell.marker >= 0)
            os << "nb_cell_marker(" << cell.marker << ");\n" << line_directive(cell.first_line, nb.path);
        for (const std::string& l : cell.lines)  // (prose lost its `//`: put it back)
            os << (cell.kind == CellKind::Markdown ? (l.empty() ? "//" : "// " + l) : l) << "\n";
    }
    return os.str();
}

static std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

// `[[image: FILE | caption]]` -> FILE and caption (the caption may be missing).
static bool parse_image_line(const std::string& line, std::string* file, std::string* caption) {
    std::string t = trim(line);
    if (t.compare(0, 8, "[[image:") != 0 || t.size() < 10 || t.compare(t.size() - 2, 2, "]]") != 0) return false;
    std::string body = t.substr(8, t.size() - 10);
    size_t bar = body.find('|');
    *file = trim(body.substr(0, bar));
    *caption = bar == std::string::npos ? "" : trim(body.substr(bar + 1));
    return !file->empty();
}

// Appends text to a cell's pieces, joining it to the text piece before it.
static void add_text(std::vector<Piece>& pieces, const std::string& text) {
    if (pieces.empty() || pieces.back().is_image) pieces.push_back(Piece{});
    pieces.back().text += text;
}

// The cell that shows what is printed before the first marker.
static int first_cell(const Notebook& nb) {
    int last_code = -1;
    for (size_t k = 0; k < nb.cells.size(); ++k) {
        const Cell& c = nb.cells[k];
        if (c.kind == CellKind::Code && c.marker >= 0) return last_code >= 0 ? last_code : (int)k;
        if (c.kind == CellKind::Code && !c.hidden) last_code = (int)k;
    }
    return last_code;
}

std::vector<std::vector<Piece>> attribute_output(const std::string& output, const Notebook& nb) {
    std::vector<std::vector<Piece>> out(nb.cells.size());
    int cell = first_cell(nb);
    const std::string open = "@@nb-cell ", close = "@@";  // (what kPrelude's nb_cell_marker prints)
    std::istringstream in(output);
    for (std::string line; std::getline(in, line);) {
        // A marker may follow text that did not end its line (printf without "\n").
        size_t at = line.find(open), end = line.find(close, at + open.size());
        if (at != std::string::npos && end != std::string::npos) {
            if (at > 0 && cell >= 0) add_text(out[cell], line.substr(0, at) + "\n");
            std::string number = line.substr(at + open.size(), end - at - open.size());
            int k = (int)std::strtol(number.c_str(), nullptr, 10);
            td::check(!number.empty() && number.find_first_not_of("0123456789") == std::string::npos && k >= 0 &&
                          k < (int)nb.cells.size() && nb.cells[k].marker == k,
                      "the output of ", nb.name, " names cell ", number, ", which has no marker in ", nb.path,
                      ": was the program built from an older version of it?");
            cell = k;
            line = line.substr(end + close.size());
            if (line.empty()) continue;  // the marker's own line
        }
        Piece image{true, {}, {}, {}};
        if (cell >= 0 && parse_image_line(line, &image.file, &image.caption)) out[cell].push_back(image);
        else if (cell >= 0)  // (-1: a notebook without code cells, nothing to attach it to)
            add_text(out[cell], line + "\n");
    }
    return out;
}

}  // namespace nbrender
