// notebooks-cpp/render/markdown.cpp: see markdown.h. The blocks: a loop over lines that
// asks, at each line, which kind of block starts there, and hands each block's text to
// inline_to_html (markdown_inline.cpp).
#include "notebooks-cpp/render/markdown.h"

#include <cctype>
#include <sstream>

#include "notebooks-cpp/render/highlight.h"

namespace nbrender {

using Lines = std::vector<std::string>;

static std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}
static bool blank(const std::string& s) { return trim(s).empty(); }
static size_t indent_of(const std::string& s) {
    size_t i = s.find_first_not_of(' ');
    return i == std::string::npos ? s.size() : i;
}

// A list item's marker at the start of `line`: sets whether it is ordered and the column
// where the item's text starts; false when the line is not an item.
static bool list_marker(const std::string& line, bool* ordered, size_t* content) {
    size_t i = indent_of(line);
    if (i + 1 < line.size() && (line[i] == '-' || line[i] == '*' || line[i] == '+') && line[i + 1] == ' ') {
        *ordered = false;
        *content = i + 2;
        return true;
    }
    size_t j = i;
    while (j < line.size() && std::isdigit((unsigned char)line[j])) ++j;
    if (j > i && j - i <= 9 && j + 1 < line.size() && (line[j] == '.' || line[j] == ')') && line[j + 1] == ' ') {
        *ordered = true;
        *content = j + 2;
        return true;
    }
    return false;
}

static bool fence_start(const std::string& line) {
    std::string t = trim(line);
    return t.compare(0, 3, "```") == 0 || t.compare(0, 3, "~~~") == 0;
}
static bool is_heading(const std::string& line) {
    std::string t = trim(line);
    size_t n = t.find_first_not_of('#');
    return n >= 1 && n <= 6 && n < t.size() && t[n] == ' ';
}
static bool is_rule(const std::string& line) {
    std::string t;
    for (char c : line)
        if (c != ' ') t += c;
    return t.size() >= 3 &&
           (t.find_first_not_of('-') == std::string::npos || t.find_first_not_of('*') == std::string::npos ||
            t.find_first_not_of('_') == std::string::npos);
}
static bool is_table_separator(const std::string& line) {
    std::string t = trim(line);
    return !t.empty() && t.find('-') != std::string::npos && t.find_first_not_of("|:- ") == std::string::npos;
}
static bool table_start(const Lines& lines, size_t i) {
    return trim(lines[i]).compare(0, 1, "|") == 0 && i + 1 < lines.size() && is_table_separator(lines[i + 1]);
}
static bool starts_block(const Lines& lines, size_t i) {
    bool ordered;
    size_t content;
    const std::string& l = lines[i];
    return fence_start(l) || is_heading(l) || is_rule(l) || trim(l).compare(0, 1, ">") == 0 ||
           list_marker(l, &ordered, &content) || table_start(lines, i);
}

// "| a | b |" -> {"a", "b"} (a | inside `code` or written \| stays inside its cell)
static std::vector<std::string> table_cells(const std::string& line) {
    std::string t = trim(line);
    if (!t.empty() && t.front() == '|') t.erase(0, 1);
    if (!t.empty() && t.back() == '|' && (t.size() < 2 || t[t.size() - 2] != '\\')) t.pop_back();
    std::vector<std::string> cells;
    std::string cur;
    bool in_code = false;
    for (size_t i = 0; i < t.size(); ++i) {
        if (t[i] == '`') in_code = !in_code;
        if (t[i] == '\\' && i + 1 < t.size() && t[i + 1] == '|') {
            cur += '|';
            ++i;
        } else if (t[i] == '|' && !in_code) {
            cells.push_back(trim(cur));
            cur.clear();
        } else
            cur += t[i];
    }
    cells.push_back(trim(cur));
    return cells;
}

static std::string blocks_to_html(const Lines& lines, bool tight);

static std::string fence_html(const Lines& lines, size_t& i) {
    std::string open = trim(lines[i]);
    char ch = open[0];
    size_t n = open.find_first_not_of(ch);
    n = n == std::string::npos ? open.size() : n;
    std::string lang = trim(open.substr(n));
    std::string code;
    for (++i; i < lines.size(); ++i) {
        std::string t = trim(lines[i]);
        if (t.size() >= n && t.find_first_not_of(ch) == std::string::npos) {
            ++i;
            break;
        }
        code += lines[i] + "\n";
    }
    bool cpp = lang == "cpp" || lang == "c++" || lang == "c";
    return "<pre class=code><code>" + (cpp ? highlight_cpp(code) : escape_html(code)) + "</code></pre>\n";
}

// Lines indented by 4 spaces or more (blank lines between them included): code, shown as
// it is without those 4 spaces.
static std::string indented_code_html(const Lines& lines, size_t& i) {
    std::string code, blanks;
    for (; i < lines.size(); ++i) {
        if (blank(lines[i])) {
            blanks += "\n";  // kept only if more code follows
        } else if (indent_of(lines[i]) >= 4) {
            code += blanks + lines[i].substr(4) + "\n";
            blanks.clear();
        } else {
            break;
        }
    }
    return "<pre class=code><code>" + escape_html(code) + "</code></pre>\n";
}

static std::string table_html(const Lines& lines, size_t& i) {
    std::vector<std::string> head = table_cells(lines[i]), seps = table_cells(lines[i + 1]);
    std::vector<std::string> align;
    for (const std::string& sp : seps) {
        bool l = !sp.empty() && sp.front() == ':', r = !sp.empty() && sp.back() == ':';
        align.push_back(l && r ? " style=\"text-align:center\"" : r ? " style=\"text-align:right\"" : "");
    }
    auto row = [&](const std::vector<std::string>& cells, const char* tag) {
        std::string out = "<tr>";
        for (size_t k = 0; k < cells.size(); ++k)
            out += std::string("<") + tag + (k < align.size() ? align[k] : "") + ">" + inline_to_html(cells[k]) + "</" +
                   tag + ">";
        return out + "</tr>\n";
    };
    std::string out = "<table>\n<thead>" + row(head, "th") + "</thead>\n<tbody>\n";
    for (i += 2; i < lines.size() && trim(lines[i]).compare(0, 1, "|") == 0; ++i)
        out += row(table_cells(lines[i]), "td");
    return out + "</tbody>\n</table>\n";
}

// A list: items with the same kind of marker, each item's lines re-indented and rendered
// as blocks of their own (so lists nest). Tight (no blank line between items): no <p>.
static std::string list_html(const Lines& lines, size_t& i) {
    bool ordered;
    size_t content;
    list_marker(lines[i], &ordered, &content);
    size_t marker_indent = indent_of(lines[i]);
    std::vector<Lines> items;
    bool tight = true;
    while (i < lines.size()) {
        bool o;
        size_t c;
        const std::string& l = lines[i];
        if (list_marker(l, &o, &c) && indent_of(l) == marker_indent && o == ordered) {
            items.push_back({l.substr(c)});
            content = c;
        } else if (blank(l)) {
            size_t k = i + 1;  // a blank line goes on the list only if the list goes on after it
            if (k >= lines.size() || blank(lines[k])) break;
            bool more = indent_of(lines[k]) >= content ||
                        (list_marker(lines[k], &o, &c) && indent_of(lines[k]) == marker_indent && o == ordered);
            if (!more) break;
            items.back().push_back("");
            tight = false;
        } else if (indent_of(l) >= content) {
            items.back().push_back(l.substr(content));
        } else if (!blank(items.back().back()) && !starts_block(lines, i)) {
            items.back().push_back(trim(l));  // a lazy continuation of the item's paragraph
        } else {
            break;
        }
        ++i;
    }
    std::string tag = ordered ? "ol" : "ul", out = "<" + tag + ">\n";
    for (const Lines& item : items) {
        std::string body = blocks_to_html(item, tight);
        while (!body.empty() && body.back() == '\n') body.pop_back();
        out += "<li>" + body + "</li>\n";
    }
    return out + "</" + tag + ">\n";
}

static std::string blocks_to_html(const Lines& lines, bool tight) {
    std::string out;
    size_t i = 0;
    while (i < lines.size()) {
        const std::string& l = lines[i];
        bool ordered;
        size_t content;
        if (blank(l)) {
            ++i;
        } else if (indent_of(l) >= 4) {
            out += indented_code_html(lines, i);
        } else if (fence_start(l)) {
            out += fence_html(lines, i);
        } else if (is_heading(l)) {
            std::string t = trim(l);
            size_t n = t.find_first_not_of('#');
            std::string text = trim(t.substr(n));
            std::string h = "h" + std::to_string(n);
            out += "<" + h + " id=\"" + slug(text) + "\">" + inline_to_html(text) + "</" + h + ">\n";
            ++i;
        } else if (is_rule(l)) {
            out += "<hr>\n";
            ++i;
        } else if (trim(l).compare(0, 1, ">") == 0) {
            Lines quote;
            for (; i < lines.size() && trim(lines[i]).compare(0, 1, ">") == 0; ++i) {
                std::string t = trim(lines[i]).substr(1);
                quote.push_back(!t.empty() && t[0] == ' ' ? t.substr(1) : t);
            }
            out += "<blockquote>\n" + blocks_to_html(quote, false) + "</blockquote>\n";
        } else if (table_start(lines, i)) {
            out += table_html(lines, i);
        } else if (list_marker(l, &ordered, &content)) {
            out += list_html(lines, i);
        } else {
            std::string text = trim(l);
            for (++i; i < lines.size() && !blank(lines[i]) && !starts_block(lines, i); ++i)
                text += "\n" + trim(lines[i]);
            out += tight ? inline_to_html(text) + "\n" : "<p>" + inline_to_html(text) + "</p>\n";
        }
    }
    return out;
}

std::string markdown_to_html(const std::string& markdown) {
    Lines lines;
    std::istringstream in(markdown);
    for (std::string l; std::getline(in, l);) {
        if (!l.empty() && l.back() == '\r') l.pop_back();
        std::string expanded;  // tabs as 4 spaces, so indentation is counted one way
        for (char c : l) expanded += c == '\t' ? std::string(4, ' ') : std::string(1, c);
        lines.push_back(expanded);
    }
    return blocks_to_html(lines, false);
}

}  // namespace nbrender
