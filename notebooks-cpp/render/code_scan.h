// notebooks-cpp/render/code_scan.h: just enough of a C++ lexer to know, between two
// lines of a notebook, whether the next line would sit among the statements of a
// function body (where the renderer may insert a statement that marks a cell).
//
// It follows braces only, skipping those inside comments, string and character
// literals (raw strings too) and preprocessor lines. Each '{' is remembered as
// opening a *block* (a function, lambda, if/for/while, try, or a plain { } inside
// one) or not (a namespace, class, enum, initializer list): what came before the
// brace decides, e.g. ")" or "else" make a block, "namespace nb" or "= " do not.
#pragma once
#include <string>
#include <vector>

namespace nbrender {

class CodeScanner {
public:
    // Feeds one line (without its newline).
    void feed(const std::string& line);

    // True when the text fed so far ends where a statement may start inside a block:
    // inside at least one brace, the innermost one a block, after ";", "{" or "}".
    bool at_statement_start() const;

    int depth() const { return (int)open_.size(); }

private:
    std::vector<bool> open_;  // one per unclosed '{': does it open a block?
    bool in_block_comment_ = false;
    bool in_raw_string_ = false;
    std::string raw_end_;           // ")delim\"" that ends the raw string we are in
    bool in_preprocessor_ = false;  // a '#' line continued with a backslash
    std::string last_token_ = ";";  // the last token outside comments and literals

    void open_brace();
};

// The first word of a piece of code, skipping blank lines and // comments ("" if none).
std::string first_word(const std::vector<std::string>& lines);

}  // namespace nbrender
