// notebooks-cpp/render/code_scan.cpp: see code_scan.h.
#include "notebooks-cpp/render/code_scan.h"

#include <cctype>
#include <set>

namespace nbrender {

static bool is_word_char(char c) { return std::isalnum((unsigned char)c) || c == '_'; }

// The words after which a '{' opens a block of statements: `} else {`, `do {`, `try {`,
// and what may stand between a function's ")" and its body.
static bool opens_block_after(const std::string& word) {
    static const std::set<std::string> words = {"else",     "do",       "try",   "const",
                                                "noexcept", "override", "final", "mutable"};
    return words.count(word) > 0;
}

void CodeScanner::open_brace() {
    const std::string& t = last_token_;
    bool inside_block = !open_.empty() && open_.back();
    // ")" ends a function head, a lambda's parameters or an if/for/while condition;
    // "]" a capture list without parameters; after a statement, "{" starts a nested block.
    bool block = t == ")" || t == "]" || opens_block_after(t) || ((t == ";" || t == "{" || t == "}") && inside_block);
    open_.push_back(block);
}

// Index just past the literal that starts at `i` with quote `q` ('"' or '\''), or the
// line's end when it does not close on this line.
static size_t skip_literal(const std::string& line, size_t i, char q) {
    for (size_t j = i + 1; j < line.size(); ++j) {
        if (line[j] == '\\')
            ++j;
        else if (line[j] == q)
            return j + 1;
    }
    return line.size();
}

// Index just past a number (a C++ "pp-number": 0x1F, 1'000, 1e-5f, 3.14) starting at `i`.
static size_t skip_number(const std::string& line, size_t i) {
    size_t j = i + 1;
    while (j < line.size()) {
        char c = line[j], prev = line[j - 1];
        bool sign_of_exponent = (c == '+' || c == '-') && (prev == 'e' || prev == 'E' || prev == 'p' || prev == 'P');
        bool separator = c == '\'' && j + 1 < line.size() && is_word_char(line[j + 1]);
        if (!(is_word_char(c) || c == '.' || sign_of_exponent || separator)) break;
        ++j;
    }
    return j;
}

void CodeScanner::feed(const std::string& line) {
    size_t i = 0, n = line.size();
    if (!in_block_comment_ && !in_raw_string_) {
        size_t first = line.find_first_not_of(" \t");
        if (in_preprocessor_ || (first != std::string::npos && line[first] == '#')) {
            in_preprocessor_ = !line.empty() && line.back() == '\\';  // a directive goes on after a backslash
            return;
        }
    }
    while (i < n) {
        if (in_block_comment_) {
            size_t end = line.find("*/", i);
            if (end == std::string::npos) return;
            in_block_comment_ = false;
            i = end + 2;
            continue;
        }
        if (in_raw_string_) {
            size_t end = line.find(raw_end_, i);
            if (end == std::string::npos) return;
            in_raw_string_ = false;
            last_token_ = "\"";
            i = end + raw_end_.size();
            continue;
        }
        char c = line[i], next = i + 1 < n ? line[i + 1] : '\0';
        if (std::isspace((unsigned char)c)) {
            ++i;
        } else if (c == '/' && next == '/') {
            return;
        } else if (c == '/' && next == '*') {
            in_block_comment_ = true;
            i += 2;
        } else if (std::isalpha((unsigned char)c) || c == '_') {
            size_t j = i;
            while (j < n && is_word_char(line[j])) ++j;
            std::string word = line.substr(i, j - i);
            i = j;
            bool raw_prefix = word == "R" || word == "LR" || word == "uR" || word == "UR" || word == "u8R";
            if (raw_prefix && i < n && line[i] == '"') {  // R"delim( ... )delim"
                size_t paren = line.find('(', i);
                if (paren == std::string::npos) return;  // not valid C++; let the compiler say so
                raw_end_ = ")" + line.substr(i + 1, paren - i - 1) + "\"";
                in_raw_string_ = true;
                i = paren + 1;
                continue;
            }
            last_token_ = word;
        } else if (std::isdigit((unsigned char)c) || (c == '.' && std::isdigit((unsigned char)next))) {
            i = skip_number(line, i);
            last_token_ = "0";
        } else if (c == '"' || c == '\'') {
            i = skip_literal(line, i, c);
            last_token_ = std::string(1, c);
        } else if (c == '{') {
            open_brace();
            last_token_ = "{";
            ++i;
        } else if (c == '}') {
            if (!open_.empty()) open_.pop_back();
            last_token_ = "}";
            ++i;
        } else {
            last_token_ = std::string(1, c);
            ++i;
        }
    }
}

bool CodeScanner::at_statement_start() const {
    if (in_block_comment_ || in_raw_string_ || in_preprocessor_ || open_.empty() || !open_.back()) return false;
    return last_token_ == ";" || last_token_ == "{" || last_token_ == "}";
}

std::string first_word(const std::vector<std::string>& lines) {
    for (const std::string& line : lines) {
        size_t i = line.find_first_not_of(" \t");
        if (i == std::string::npos || line.compare(i, 2, "//") == 0) continue;
        size_t j = i;
        while (j < line.size() && is_word_char(line[j])) ++j;
        return j > i ? line.substr(i, j - i) : line.substr(i, 1);
    }
    return "";
}

}  // namespace nbrender
