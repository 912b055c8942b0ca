// notebooks-cpp/render/highlight.cpp: see highlight.h. One left-to-right pass; each
// branch below recognises one kind of token and says where it ends.
#include "notebooks-cpp/render/highlight.h"

#include <cctype>
#include <set>

#include "notebooks-cpp/render/markdown.h"

namespace nbrender {

static bool is_word_char(char c) { return std::isalnum((unsigned char)c) || c == '_'; }

static bool is_keyword(const std::string& w) {
    static const std::set<std::string> words = {
        "alignas",     "auto",      "bool",      "break",     "case",    "catch",    "char",    "class",
        "const",       "constexpr", "continue",  "default",   "delete",  "do",       "double",  "else",
        "enum",        "explicit",  "false",     "float",     "for",     "if",       "inline",  "int",
        "int64_t",     "long",      "mutable",   "namespace", "new",     "noexcept", "nullptr", "operator",
        "override",    "private",   "protected", "public",    "return",  "short",    "size_t",  "static",
        "static_cast", "struct",    "switch",    "template",  "this",    "throw",    "true",    "try",
        "typename",    "uint64_t",  "unsigned",  "using",     "virtual", "void",     "while"};
    return words.count(w) > 0;
}

static std::string span(const char* cls, const std::string& text) {
    return std::string("<span class=") + cls + ">" + escape_html(text) + "</span>";
}

// Where a token starting at i ends (one past it), for each kind of token.
static size_t end_of_line(const std::string& s, size_t i) {
    size_t e = s.find('\n', i);
    return e == std::string::npos ? s.size() : e;
}
static size_t end_of_block_comment(const std::string& s, size_t i) {
    size_t e = s.find("*/", i + 2);
    return e == std::string::npos ? s.size() : e + 2;
}
static size_t end_of_literal(const std::string& s, size_t i) {  // "..." or '...', on one line
    char q = s[i];
    for (size_t j = i + 1; j < s.size() && s[j] != '\n'; ++j) {
        if (s[j] == '\\')
            ++j;
        else if (s[j] == q)
            return j + 1;
    }
    return end_of_line(s, i);
}
static size_t end_of_raw_string(const std::string& s, size_t quote) {  // R"delim( ... )delim"
    size_t paren = s.find('(', quote);
    if (paren == std::string::npos) return end_of_line(s, quote);
    std::string close = ")" + s.substr(quote + 1, paren - quote - 1) + "\"";
    size_t e = s.find(close, paren);
    return e == std::string::npos ? s.size() : e + close.size();
}
static size_t end_of_directive(const std::string& s, size_t i) {  // up to a newline not after '\'
    size_t e = end_of_line(s, i);
    while (e < s.size() && e > 0 && s[e - 1] == '\\') e = end_of_line(s, e + 1);
    return e;
}

// True when only spaces stand between the start of the line and position i.
static bool starts_line(const std::string& s, size_t i) {
    while (i > 0 && (s[i - 1] == ' ' || s[i - 1] == '\t')) --i;
    return i == 0 || s[i - 1] == '\n';
}

std::string highlight_cpp(const std::string& s) {
    std::string out;
    size_t i = 0;
    while (i < s.size()) {
        char c = s[i], next = i + 1 < s.size() ? s[i + 1] : '\0';
        size_t e;
        if (c == '/' && next == '/') {
            e = end_of_line(s, i);
            out += span("c", s.substr(i, e - i));
        } else if (c == '/' && next == '*') {
            e = end_of_block_comment(s, i);
            out += span("c", s.substr(i, e - i));
        } else if (c == '#' && starts_line(s, i)) {
            e = end_of_directive(s, i);
            out += span("p", s.substr(i, e - i));
        } else if (c == '"' || c == '\'') {
            e = end_of_literal(s, i);
            out += span("s", s.substr(i, e - i));
        } else if (std::isdigit((unsigned char)c)) {
            e = i + 1;
            while (e < s.size() && (is_word_char(s[e]) || s[e] == '.' || s[e] == '\'')) ++e;
            out += span("n", s.substr(i, e - i));
        } else if (std::isalpha((unsigned char)c) || c == '_') {
            e = i;
            while (e < s.size() && is_word_char(s[e])) ++e;
            std::string word = s.substr(i, e - i);
            if ((word == "R" || word == "u8R" || word == "LR") && e < s.size() && s[e] == '"') {
                e = end_of_raw_string(s, e);
                out += span("s", s.substr(i, e - i));
            } else {
                out += is_keyword(word) ? span("k", word) : escape_html(word);
            }
        } else {
            e = i + 1;
            out += escape_html(std::string(1, c));
        }
        i = e;
    }
    return out;
}

}  // namespace nbrender
