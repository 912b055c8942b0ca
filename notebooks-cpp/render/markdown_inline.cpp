// notebooks-cpp/render/markdown_inline.cpp: see markdown.h. The inline part: one line or
// paragraph of text, read character by character (code spans, links, images, emphasis),
// everything else HTML-escaped. The blocks are in markdown.cpp.
#include <cctype>

#include "notebooks-cpp/render/markdown.h"

namespace nbrender {

std::string escape_html(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&':
                out += "&amp;";
                break;
            case '<':
                out += "&lt;";
                break;
            case '>':
                out += "&gt;";
                break;
            case '"':
                out += "&quot;";
                break;
            case '\'':
                out += "&#39;";
                break;
            default:
                out += c;
        }
    }
    return out;
}

std::string html_link_target(const std::string& href) {
    if (href.find("://") != std::string::npos || href.compare(0, 7, "mailto:") == 0) return href;
    size_t hash = href.find('#');
    std::string path = href.substr(0, hash), rest = hash == std::string::npos ? "" : href.substr(hash);
    if (path.find('/') != std::string::npos) return href;  // not a page beside this one: no .html twin
    if (path.size() > 3 && path.compare(path.size() - 3, 3, ".md") == 0) path.replace(path.size() - 3, 3, ".html");
    return path + rest;
}

std::string slug(const std::string& heading) {
    std::string out;
    for (char c : heading) {
        if (std::isalnum((unsigned char)c))
            out += (char)std::tolower((unsigned char)c);
        else if (!out.empty() && out.back() != '-')
            out += '-';
    }
    while (!out.empty() && out.back() == '-') out.pop_back();
    return out;
}

static bool is_word_char(char c) { return std::isalnum((unsigned char)c) || c == '_'; }

// Index of the `]` that closes the `[` at i (brackets nest), or npos.
static size_t closing_bracket(const std::string& s, size_t i) {
    int depth = 0;
    for (size_t j = i; j < s.size(); ++j) {
        if (s[j] == '\\')
            ++j;
        else if (s[j] == '[')
            ++depth;
        else if (s[j] == ']' && --depth == 0)
            return j;
    }
    return std::string::npos;
}

// After `]` at j: "(url)" or "(url "title")"; sets url and returns the index past ")".
static size_t link_destination(const std::string& s, size_t j, std::string* url) {
    if (j + 1 >= s.size() || s[j + 1] != '(') return std::string::npos;
    size_t close = s.find(')', j + 2);
    if (close == std::string::npos) return std::string::npos;
    std::string inside = s.substr(j + 2, close - j - 2);
    *url = inside.substr(0, inside.find(' '));
    return close + 1;
}

// Where the emphasis that opens with `delim` at i closes, or npos. An opener must be
// followed by a non-space, a closer preceded by one; `_` must also stand outside words
// (so snake_case names like alpha_bar_t stay as they are). Code spans are skipped.
static size_t closing_emphasis(const std::string& s, size_t i, const std::string& delim) {
    size_t open_end = i + delim.size();
    if (open_end >= s.size() || std::isspace((unsigned char)s[open_end])) return std::string::npos;
    bool underscore = delim[0] == '_';
    if (underscore && i > 0 && is_word_char(s[i - 1])) return std::string::npos;
    for (size_t j = open_end + 1; j + delim.size() <= s.size(); ++j) {
        if (s[j] == '`') {  // skip a code span
            size_t e = s.find('`', j + 1);
            if (e == std::string::npos) return std::string::npos;
            j = e;
            continue;
        }
        if (s.compare(j, delim.size(), delim) != 0 || std::isspace((unsigned char)s[j - 1])) continue;
        size_t after = j + delim.size();
        if (after < s.size() && s[after] == delim[0]) continue;  // part of a longer run: *** or **x**
        if (underscore && after < s.size() && is_word_char(s[after])) continue;
        return j;
    }
    return std::string::npos;
}

std::string inline_to_html(const std::string& s) {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
        char c = s[i];
        if (c == '\\' && i + 1 < s.size() && std::ispunct((unsigned char)s[i + 1])) {
            out += escape_html(std::string(1, s[i + 1]));
            i += 2;
            continue;
        }
        if (c == '`') {  // a code span closes with a run of exactly as many backticks
            size_t run_end = s.find_first_not_of('`', i);
            size_t n = (run_end == std::string::npos ? s.size() : run_end) - i;
            std::string run(n, '`');
            size_t close = s.find(run, i + n);
            while (close != std::string::npos && close + n < s.size() && s[close + n] == '`')
                close = s.find(run, s.find_first_not_of('`', close));  // a longer run: look past it
            if (close != std::string::npos) {
                std::string code = s.substr(i + n, close - i - n);
                if (code.size() >= 2 && code.front() == ' ' && code.back() == ' ')
                    code = code.substr(1, code.size() - 2);
                out += "<code>" + escape_html(code) + "</code>";
                i = close + n;
                continue;
            }
            out += run;
            i += n;
            continue;
        }
        if ((c == '!' && i + 1 < s.size() && s[i + 1] == '[') || c == '[') {
            bool image = c == '!';
            size_t open = image ? i + 1 : i, close = closing_bracket(s, open);
            std::string url;
            size_t end = close == std::string::npos ? close : link_destination(s, close, &url);
            if (end != std::string::npos) {
                std::string text = s.substr(open + 1, close - open - 1);
                if (image)
                    out += "<img src=\"" + escape_html(url) + "\" alt=\"" + escape_html(text) + "\">";
                else
                    out += "<a href=\"" + escape_html(html_link_target(url)) + "\">" + inline_to_html(text) + "</a>";
                i = end;
                continue;
            }
        }
        if (c == '<' && (s.compare(i + 1, 7, "http://") == 0 || s.compare(i + 1, 8, "https://") == 0)) {
            size_t close = s.find('>', i);
            if (close != std::string::npos) {
                std::string url = s.substr(i + 1, close - i - 1);
                out += "<a href=\"" + escape_html(url) + "\">" + escape_html(url) + "</a>";
                i = close + 1;
                continue;
            }
        }
        if (c == '*' || c == '_') {
            std::string delim = i + 1 < s.size() && s[i + 1] == c ? std::string(2, c) : std::string(1, c);
            size_t close = closing_emphasis(s, i, delim);
            if (close != std::string::npos) {
                const char* tag = delim.size() == 2 ? "strong" : "em";
                out += std::string("<") + tag + ">" +
                       inline_to_html(s.substr(i + delim.size(), close - i - delim.size())) + "</" + tag + ">";
                i = close + delim.size();
                continue;
            }
            out += escape_html(delim);
            i += delim.size();
            continue;
        }
        out += escape_html(std::string(1, c));
        ++i;
    }
    return out;
}

}  // namespace nbrender
