// tests/test_docs.cpp: the documentation in docs/ is checked against the code, so that a
// rename, a deleted function or a new flag without a line of documentation turns a test red.
//
//   docs/equations.md   every table row with a File and a Function column names a file that
//                       exists and a function *defined* in it (not only called or declared);
//                       a "Comment in the code" cell must appear in that function or in the
//                       comment right above it.
//   docs/cli.md         every --flag that `diffuse <command> --help` prints appears in that
//                       command's section of the reference.
//   docs/*.md (ours)    a fenced code block whose info string names a file (```cpp
//                       tensor/ops/elementwise.cpp) quotes that file: its lines appear there,
//                       in order, a line "// ..." standing for lines left out. Every source
//                       path the docs name in backticks exists.
//
// The checkers are plain functions, each also tested on a small made-up document, so a
// checker that silently accepts everything cannot pass. Run: build/run_tests -tc="docs:*"
// (from the repository root, like every test).
#include <doctest/doctest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/helpers.h"

namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
}

std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t\r"), b = s.find_last_not_of(" \t\r");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

bool is_ident_char(char c) { return std::isalnum((unsigned char)c) || c == '_'; }

// The texts between backticks in a markdown cell: "`a.cpp` and `f`" -> {"a.cpp", "f"}.
std::vector<std::string> code_spans(const std::string& cell) {
    std::vector<std::string> spans;
    size_t at = 0;
    while ((at = cell.find('`', at)) != std::string::npos) {
        size_t end = cell.find('`', at + 1);
        if (end == std::string::npos) break;
        spans.push_back(cell.substr(at + 1, end - at - 1));
        at = end + 1;
    }
    return spans;
}

// The cells of a markdown table row "| a | b \| c |" -> {"a", "b | c"} (GFM escapes a pipe as \|).
std::vector<std::string> table_cells(const std::string& line) {
    std::vector<std::string> cells;
    std::string cell;
    std::string row = trim(line);
    for (size_t i = 1; i < row.size(); ++i) {  // row[0] is the leading '|'
        if (row[i] == '\\' && i + 1 < row.size() && row[i + 1] == '|') {
            cell += '|';
            ++i;
        } else if (row[i] == '|') {
            cells.push_back(trim(cell));
            cell.clear();
        } else {
            cell += row[i];
        }
    }
    return cells;
}

// ---- C++ source scanning ---------------------------------------------------------------------

// Where the body that opens at source[open] ('{') closes: the matching '}', skipping
// braces inside comments, strings and character literals. npos if it never closes.
size_t matching_brace(const std::string& src, size_t open) {
    int depth = 0;
    for (size_t i = open; i < src.size(); ++i) {
        char c = src[i];
        if (c == '/' && i + 1 < src.size() && src[i + 1] == '/') {
            i = src.find('\n', i);
            if (i == std::string::npos) return std::string::npos;
        } else if (c == '/' && i + 1 < src.size() && src[i + 1] == '*') {
            i = src.find("*/", i + 2);
            if (i == std::string::npos) return std::string::npos;
            ++i;
        } else if (c == '"' || c == '\'') {
            for (++i; i < src.size() && src[i] != c; ++i)
                if (src[i] == '\\') ++i;
        } else if (c == '{') {
            ++depth;
        } else if (c == '}' && --depth == 0) {
            return i;
        }
    }
    return std::string::npos;
}

// A function's definition in a source file: where its comment block starts (the lines of
// "//" right above it, or the signature itself), and where its body ends.
struct Definition {
    size_t begin = std::string::npos;  // npos: not defined in this file
    size_t end = std::string::npos;
};

// Where `source` defines the function `name`: "q_sample", or "Class::method" (out of the
// class, as this code base writes them). The heuristic, for a C++ file formatted as ours:
//   - the line starts in column 0 (a call inside a body is indented), with the return type
//     before the name (or nothing, for a constructor "Schedule::Schedule(" or a return type
//     left on the line above);
//   - the name is a whole word ("VAE::reparameterise" is not a definition of "reparameterise")
//     followed by "(";
//   - after the matching ")" (and const, override, noexcept, "-> type") comes a body "{" or a
//     constructor's initialiser list ":", not the ";" of a declaration or "= default".
Definition find_definition(const std::string& source, const std::string& name) {
    std::vector<std::string> lines = lines_of(source);
    size_t line_start = 0;
    for (size_t li = 0; li < lines.size(); line_start += lines[li].size() + 1, ++li) {
        const std::string& line = lines[li];
        if (line.empty() || !(is_ident_char(line[0]) || line[0] == '~')) continue;  // not column 0 code
        for (size_t p = line.find(name + "("); p != std::string::npos; p = line.find(name + "(", p + 1)) {
            if (p > 0 && (is_ident_char(line[p - 1]) || line[p - 1] == ':')) continue;  // part of another name
            std::string prefix = line.substr(0, p);                                     // the return type
            if (prefix.find_first_of("=(;{}\"") != std::string::npos || prefix.find("return ") != std::string::npos)
                continue;
            if (trim(prefix).empty() && name.find("::") == std::string::npos) {
                // a free function needs a return type: on this line, or ending the line above
                std::string above = li > 0 ? trim(lines[li - 1]) : "";
                if (above.empty() ||
                    !(is_ident_char(above.back()) || above.back() == '>' || above.back() == '*' || above.back() == '&'))
                    continue;
            }
            // the parameter list, then what follows it
            size_t open = line_start + p + name.size();
            int depth = 0;
            size_t i = open;
            for (; i < source.size(); ++i) {
                if (source[i] == '(') ++depth;
                else if (source[i] == ')' && --depth == 0) break;
            }
            size_t body = source.find_first_of("{;:=", i + 1);
            while (body != std::string::npos && source[body] == ':' && body + 1 < source.size() &&
                   source[body + 1] == ':')  // "-> std::vector<...>": a return type, not an initialiser list
                body = source.find_first_of("{;:=", body + 2);
            if (body == std::string::npos || source[body] == ';' || source[body] == '=') continue;
            if (source[body] == ':') body = source.find('{', body);  // constructor: the body after the initialisers
            if (body == std::string::npos) continue;
            Definition d;
            d.end = matching_brace(source, body);
            if (d.end == std::string::npos) continue;
            // the comment block right above the signature belongs to the function
            size_t first = li;
            while (first > 0 && trim(lines[first - 1]).rfind("//", 0) == 0) --first;
            if (trim(prefix).empty() && first == li && li > 0) --first;  // the return type's own line
            d.begin = 0;
            for (size_t k = 0; k < first; ++k) d.begin += lines[k].size() + 1;
            return d;
        }
    }
    return {};
}

// `text` without its assignment regions (the lines from "// BEGIN SOLUTION" to "// END
// SOLUTION", which `make assignment` replaces by a stub): a comment the docs point to must
// still be there in a student's copy.
std::string without_solutions(const std::string& text) {
    std::string out;
    bool inside = false;
    for (const std::string& line : lines_of(text)) {
        if (trim(line).rfind("// BEGIN SOLUTION", 0) == 0) inside = true;
        if (!inside) out += line + "\n";
        if (trim(line).rfind("// END SOLUTION", 0) == 0) inside = false;
    }
    return out;
}

// ---- docs/equations.md ------------------------------------------------------------------------

struct MapReport {
    int rows = 0;                       // table rows with a File and a Function column
    int functions = 0;                  // functions checked (a row may name several)
    std::vector<std::string> problems;  // "doc:line: what is wrong", one per problem
};

// Checks every row of every markdown table in `markdown` whose header has a "File" and a
// "Function" column: the File cell names one existing file (relative to `root`), each name
// in backticks in the Function cell is defined in it (find_definition), and each text in
// backticks in a "Comment in the code" column appears in that function or its comment,
// outside the assignment regions (see without_solutions).
// `doc` names the document in the messages.
MapReport check_equation_map(const std::string& markdown, const std::string& doc, const std::string& root) {
    MapReport r;
    std::vector<std::string> lines = lines_of(markdown);
    int file_col = -1, fn_col = -1, comment_col = -1;
    for (size_t li = 0; li < lines.size(); ++li) {
        std::string line = trim(lines[li]);
        std::string where = doc + ":" + std::to_string(li + 1) + ": ";
        if (line.empty() || line[0] != '|') {  // a table ends where its rows do
            file_col = fn_col = comment_col = -1;
            continue;
        }
        std::vector<std::string> cells = table_cells(line);
        bool separator = line.find("---") != std::string::npos && line.find_first_not_of("|-: ") == std::string::npos;
        if (separator) continue;
        if (li + 1 < lines.size() && trim(lines[li + 1]).rfind("|", 0) == 0 &&
            trim(lines[li + 1]).find("---") != std::string::npos &&
            trim(lines[li + 1]).find_first_not_of("|-: ") == std::string::npos) {  // a header row
            file_col = fn_col = comment_col = -1;
            for (size_t c = 0; c < cells.size(); ++c) {
                if (cells[c] == "File") file_col = (int)c;
                if (cells[c] == "Function") fn_col = (int)c;
                if (cells[c] == "Comment in the code") comment_col = (int)c;
            }
            continue;
        }
        if (file_col < 0 || fn_col < 0) continue;  // a table of another kind
        ++r.rows;
        if ((int)cells.size() <= std::max(file_col, fn_col)) {
            r.problems.push_back(where + "the row has " + std::to_string(cells.size()) +
                                 " cells, fewer than its header");
            continue;
        }
        std::vector<std::string> files = code_spans(cells[file_col]);
        std::vector<std::string> functions = code_spans(cells[fn_col]);
        if (files.size() != 1) {
            r.problems.push_back(where + "the File cell '" + cells[file_col] + "' must name one `file`");
            continue;
        }
        if (functions.empty()) {
            r.problems.push_back(where + "the Function cell '" + cells[fn_col] + "' names no `function`");
            continue;
        }
        const std::string& file = files[0];
        if (!std::filesystem::is_regular_file(root + "/" + file)) {
            r.problems.push_back(where + "`" + file + "` does not exist");
            continue;
        }
        std::string source = tdtest::read_file(root + "/" + file);
        std::vector<std::string> comments = comment_col >= 0 && comment_col < (int)cells.size()
                                                ? code_spans(cells[comment_col])
                                                : std::vector<std::string>{};
        for (const std::string& fn : functions) {
            ++r.functions;
            Definition d = find_definition(source, fn);
            if (d.begin == std::string::npos) {
                r.problems.push_back(where + "`" + fn + "` is not defined in `" + file +
                                     "` (no line there starts a definition of " + fn + "(...) { ... })");
                continue;
            }
            std::string region = without_solutions(source.substr(d.begin, d.end - d.begin + 1));
            for (const std::string& comment : comments)
                if (region.find(comment) == std::string::npos)
                    r.problems.push_back(where + "`" + comment + "` is neither in the body of `" + fn + "` (" + file +
                                         ") nor in the comment above it");
        }
    }
    return r;
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const std::string& x : v) s += x + "\n";
    return s;
}

// ---- quoted code and named paths --------------------------------------------------------------

// Checks the fenced code blocks of `markdown` whose info string names a file after the
// language ("```cpp tensor/ops/elementwise.cpp"): the block's lines, trimmed, must appear
// in that file as consecutive lines, and in order; a line "// ..." (or "# ...") in the
// block stands for lines left out. Blocks without a file name are not checked.
std::vector<std::string> check_quotes(const std::string& markdown, const std::string& doc, const std::string& root,
                                      int* quotes = nullptr) {
    std::vector<std::string> problems;
    std::vector<std::string> lines = lines_of(markdown);
    for (size_t li = 0; li < lines.size(); ++li) {
        std::string fence = trim(lines[li]);
        if (fence.rfind("```", 0) != 0) continue;
        size_t end = li + 1;
        while (end < lines.size() && trim(lines[end]).rfind("```", 0) != 0) ++end;
        std::istringstream info(fence.substr(3));
        std::string lang, file;
        info >> lang >> file;
        size_t first = li + 1;  // the block's first line (0-based); the fence is line `first` (1-based)
        li = end;               // past the block whatever happens
        if (file.empty()) continue;
        if (quotes) ++*quotes;
        std::string where = doc + ":" + std::to_string(first) + ": ";
        if (!std::filesystem::is_regular_file(root + "/" + file)) {
            problems.push_back(where + "the quoted file `" + file + "` does not exist");
            continue;
        }
        std::vector<std::string> src = lines_of(tdtest::read_file(root + "/" + file));
        for (std::string& s : src) s = trim(s);
        // the block in pieces of consecutive lines, split at the elisions
        std::vector<std::vector<std::string>> pieces(1);
        for (size_t k = first; k < end; ++k) {
            std::string t = trim(lines[k]);
            if (t == "// ..." || t == "# ..." || t == "...") pieces.emplace_back();
            else if (!t.empty()) pieces.back().push_back(t);
        }
        size_t from = 0;  // each piece must come after the previous one
        for (const std::vector<std::string>& piece : pieces) {
            if (piece.empty()) continue;
            size_t found = std::string::npos;
            for (size_t s = from; s + piece.size() <= src.size() && found == std::string::npos; ++s) {
                size_t a = s, k = 0;
                for (; k < piece.size() && a < src.size(); ++a) {
                    if (src[a].empty()) continue;  // blank lines in the file may be left out
                    if (src[a] != piece[k]) break;
                    ++k;
                }
                if (k == piece.size()) found = a;
            }
            if (found == std::string::npos) {
                problems.push_back(where + "the quote of `" + file + "` starting '" + piece[0] +
                                   "' is not in the file (in order, as consecutive lines)");
                break;
            }
            from = found;
        }
    }
    return problems;
}

// Every `path` in backticks that points into the source tree (tensor/, nn/, ..., docs/)
// must exist; runs/, data/ and other paths outside the tree are examples, not checked.
std::vector<std::string> check_paths(const std::string& markdown, const std::string& doc, const std::string& root) {
    static const std::vector<std::string> kTrees = {"tensor/",        "autograd/", "nn/",      "diffusion/", "tools/",
                                                    "tests/",         "docs/",     "configs/", "scripts/",   "bench/",
                                                    "notebooks-cpp/", "cuda/"};
    std::vector<std::string> problems;
    std::vector<std::string> lines = lines_of(markdown);
    bool in_code = false;
    for (size_t li = 0; li < lines.size(); ++li) {
        if (trim(lines[li]).rfind("```", 0) == 0) in_code = !in_code;
        if (in_code) continue;
        for (const std::string& span : code_spans(lines[li])) {
            std::string path = span.substr(0, span.find_first_of(" :("));  // "tensor/ops.h: ..." -> the path
            bool in_tree = false;
            for (const std::string& t : kTrees) in_tree = in_tree || path.rfind(t, 0) == 0;
            if (!in_tree || path.find_first_of("*<>{}$") != std::string::npos) continue;  // a pattern, not a path
            if (!std::filesystem::exists(root + "/" + path))
                problems.push_back(doc + ":" + std::to_string(li + 1) + ": `" + path + "` does not exist");
        }
    }
    return problems;
}

// ---- docs/cli.md --------------------------------------------------------------------------------

// Every "--flag" in `text`, in order of first appearance.
std::vector<std::string> flags_in(const std::string& text) {
    std::vector<std::string> flags;
    for (size_t at = text.find("--"); at != std::string::npos; at = text.find("--", at + 2)) {
        if (at > 0 && (is_ident_char(text[at - 1]) || text[at - 1] == '-')) continue;  // "a--b", "---"
        size_t end = at + 2;
        while (end < text.size() && (std::islower((unsigned char)text[end]) || std::isdigit((unsigned char)text[end]) ||
                                     text[end] == '-' || std::isupper((unsigned char)text[end])))
            ++end;
        if (end == at + 2 || !std::isalpha((unsigned char)text[at + 2])) continue;
        std::string f = text.substr(at, end - at);
        while (f.back() == '-') f.pop_back();
        bool seen = false;
        for (const std::string& g : flags) seen = seen || g == f;
        if (!seen) flags.push_back(f);
    }
    return flags;
}

// Whether `text` mentions `flag` as a whole word ("--step" is not in "--steps 50").
bool mentions_flag(const std::string& text, const std::string& flag) {
    for (size_t at = text.find(flag); at != std::string::npos; at = text.find(flag, at + 1)) {
        size_t end = at + flag.size();
        bool whole_end = end == text.size() || !(is_ident_char(text[end]) || text[end] == '-');
        bool whole_start = at == 0 || !(is_ident_char(text[at - 1]) || text[at - 1] == '-');
        if (whole_start && whole_end) return true;
    }
    return false;
}

// The section of `markdown` under the "## " heading that contains `needle`, up to the next
// "## " or "# " heading; "" when no such heading exists.
std::string section(const std::string& markdown, const std::string& needle) {
    std::vector<std::string> lines = lines_of(markdown);
    std::string out;
    bool inside = false;
    for (const std::string& line : lines) {
        bool h2 = line.rfind("## ", 0) == 0, h1 = line.rfind("# ", 0) == 0;
        if (inside && (h1 || h2)) break;
        if (h2 && line.find(needle) != std::string::npos) inside = true;
        if (inside) out += line + "\n";
    }
    return out;
}

// The flags of `help` (one command's --help output) that `doc_section` does not mention.
std::vector<std::string> undocumented_flags(const std::string& help, const std::string& doc_section) {
    std::vector<std::string> missing;
    for (const std::string& f : flags_in(help))
        if (!mentions_flag(doc_section, f)) missing.push_back(f);
    return missing;
}

const std::string kRoot = ".";  // the tests run from the repository root

std::string doc_text(const std::string& name) {
    std::string path = kRoot + "/docs/" + name;
    REQUIRE_MESSAGE(std::filesystem::exists(path), path << " is missing (the tests run from the repository root)");
    return tdtest::read_file(path);
}

}  // namespace

// ---- the checkers themselves, on made-up documents --------------------------------------------

TEST_CASE("docs: find_definition tells a definition from a call or a declaration") {
    std::string fp = tdtest::read_file("diffusion/forward_process.cpp");
    REQUIRE(!fp.empty());
    CHECK(find_definition(fp, "q_sample").begin != std::string::npos);
    CHECK(find_definition(fp, "l_simple").begin != std::string::npos);
    CHECK(find_definition(fp, "sample").begin == std::string::npos);  // only inside "q_sample("
    CHECK(find_definition(tdtest::read_file("diffusion/forward_process.h"), "q_sample").begin ==
          std::string::npos);  // declared
    CHECK(find_definition(tdtest::read_file("diffusion/trainer.cpp"), "q_sample").begin ==
          std::string::npos);  // called
    std::string vae = tdtest::read_file("diffusion/vae.cpp");
    CHECK(find_definition(vae, "VAE::reparameterise").begin != std::string::npos);
    CHECK(find_definition(vae, "reparameterise").begin == std::string::npos);  // a member, not a free function
    CHECK(find_definition(tdtest::read_file("diffusion/schedule.cpp"), "Schedule::Schedule").begin !=
          std::string::npos);

    // a made-up file: multi-line signatures, a constructor, a declaration, a call, a comment
    std::string src =
        "// f: the one\n"
        "static float f(int a,\n"
        "               int b) {\n"
        "    return g(a) + b;  // } in a comment\n"
        "}\n"
        "float g(int a);\n"
        "Box::Box(int w) : w_(w) { init(w); }\n"
        "std::vector<int>\n"
        "h(int n) { return {n}; }\n"
        "auto k(int n) -> std::vector<int> { return {n}; }\n";
    Definition f = find_definition(src, "f");
    REQUIRE(f.begin != std::string::npos);
    CHECK(src.substr(f.begin, f.end - f.begin + 1).find("// f: the one") == 0);  // with its comment
    CHECK(src.substr(f.begin, f.end - f.begin + 1).find("return g(a) + b;") != std::string::npos);
    CHECK(find_definition(src, "g").begin == std::string::npos);
    CHECK(find_definition(src, "Box::Box").begin != std::string::npos);
    CHECK(find_definition(src, "init").begin == std::string::npos);
    CHECK(find_definition(src, "h").begin != std::string::npos);
    CHECK(find_definition(src, "k").begin != std::string::npos);
    CHECK(without_solutions("a\n  // BEGIN SOLUTION x: y\n  b\n  // END SOLUTION x\nc\n") == "a\nc\n");
}

TEST_CASE("docs: the equation-map checker reports each bad row with its line") {
    std::string doc =
        "# made up\n"
        "\n"
        "| Equation | File | Function | Comment in the code |\n"
        "| --- | --- | --- | --- |\n"
        "| DDPM eq. 4 | `diffusion/forward_process.cpp` | `q_sample` | `// eq. 4` |\n"
        "| nothing | `diffusion/forward_process.cpp` | `q_sample_that_was_renamed` | |\n"
        "| a call only | `diffusion/trainer.cpp` | `q_sample` | |\n"
        "| no file | `diffusion/no_such_file.cpp` | `q_sample` | |\n"
        "| wrong comment | `diffusion/forward_process.cpp` | `l_simple` | `// eq. 4` |\n"
        "| no backticks | diffusion/forward_process.cpp | `q_sample` | |\n"
        "| two, one bad | `diffusion/forward_process.cpp` | `posterior_mean`, `posterior_mode` | |\n"
        "\n"
        "| A table of another kind | Value |\n"
        "| --- | --- |\n"
        "| `not_a_function` | 1 |\n";
    MapReport r = check_equation_map(doc, "made-up.md", kRoot);
    INFO(joined(r.problems));
    CHECK(r.rows == 7);
    REQUIRE(r.problems.size() == 6);
    CHECK(tdtest::contains(r.problems[0],
                           "made-up.md:6: `q_sample_that_was_renamed` is not defined in "
                           "`diffusion/forward_process.cpp`"));
    CHECK(tdtest::contains(r.problems[1], "made-up.md:7: `q_sample` is not defined in `diffusion/trainer.cpp`"));
    CHECK(tdtest::contains(r.problems[2], "made-up.md:8: `diffusion/no_such_file.cpp` does not exist"));
    CHECK(tdtest::contains(r.problems[3], "made-up.md:9: `// eq. 4` is neither in the body of `l_simple`"));
    CHECK(tdtest::contains(r.problems[4], "made-up.md:10: the File cell"));
    CHECK(tdtest::contains(r.problems[5], "made-up.md:11: `posterior_mode` is not defined"));
}

TEST_CASE("docs: the quote and path checkers catch code that is not in its file") {
    std::string doc =
        "Real:\n"
        "```cpp diffusion/forward_process.cpp\n"
        "Tensor l_simple(const Tensor& prediction, const Tensor& target) {\n"
        "// ...\n"
        "    return mean(d * d);  // eq. 14\n"
        "```\n"
        "Out of order:\n"
        "```cpp diffusion/forward_process.cpp\n"
        "    return mean(d * d);  // eq. 14\n"
        "// ...\n"
        "Tensor l_simple(const Tensor& prediction, const Tensor& target) {\n"
        "```\n"
        "Not there:\n"
        "```cpp diffusion/forward_process.cpp\n"
        "Tensor l_simple(const Tensor& prediction, const Tensor& target) {\n"
        "    return 42;\n"
        "```\n"
        "Not a quote (no file), not checked:\n"
        "```cpp\n"
        "whatever();\n"
        "```\n"
        "See `diffusion/forward_process.h` and `diffusion/gone.h`, and `runs/NAME/config.txt` (an example).\n";
    int quotes = 0;
    std::vector<std::string> q = check_quotes(doc, "made-up.md", kRoot, &quotes);
    INFO(joined(q));
    CHECK(quotes == 3);
    REQUIRE(q.size() == 2);
    CHECK(
        tdtest::contains(q[0], "made-up.md:8: the quote of `diffusion/forward_process.cpp` starting 'Tensor l_simple"));
    CHECK(tdtest::contains(q[1],
                           "made-up.md:14: the quote of `diffusion/forward_process.cpp` starting 'Tensor l_simple"));
    std::vector<std::string> p = check_paths(doc, "made-up.md", kRoot);
    INFO(joined(p));
    REQUIRE(p.size() == 1);
    CHECK(tdtest::contains(p[0], "made-up.md:22: `diffusion/gone.h` does not exist"));
}

TEST_CASE("docs: the flag checker finds an undocumented flag") {
    std::string help =
        "usage: diffuse sample --run runs/NAME [--steps K]\n"
        "  --steps VALUE   sampling steps\n"
        "  --step VALUE    the step to trace\n"
        "  --no-clip       do not clip\n";
    CHECK(flags_in(help) == std::vector<std::string>{"--run", "--steps", "--step", "--no-clip"});
    std::string doc =
        "## `diffuse sample`\n| `--run RUN` | the run |\n| `--steps K` | steps |\n| `--no-clip` | |\n"
        "## `diffuse eval`\n| `--step` | elsewhere |\n";
    CHECK(undocumented_flags(help, section(doc, "`diffuse sample`")) == std::vector<std::string>{"--step"});
    CHECK(section(doc, "`diffuse nothing`").empty());
}

// ---- the real documents ---------------------------------------------------------------------------

TEST_CASE("docs: equations.md maps every equation to a function that exists") {
    MapReport r = check_equation_map(doc_text("equations.md"), "docs/equations.md", kRoot);
    INFO(joined(r.problems));
    CHECK(r.problems.empty());
    CHECK_MESSAGE(r.rows >= 40, "docs/equations.md has only " << r.rows << " checked rows");
    MESSAGE("docs/equations.md: " << r.rows << " rows, " << r.functions << " functions checked");
}

TEST_CASE("docs: code quoted in docs/ is the real code, and the paths named exist") {
    for (const char* name : {"architecture.md", "equations.md", "add-an-op.md", "cli.md"}) {
        std::string text = doc_text(name);
        std::string doc = std::string("docs/") + name;
        int quotes = 0;
        std::vector<std::string> problems = check_quotes(text, doc, kRoot, &quotes);
        for (const std::string& p : check_paths(text, doc, kRoot)) problems.push_back(p);
        INFO(doc << ": " << quotes << " quotes\n" << joined(problems));
        CHECK(problems.empty());
        if (std::string(name) == "add-an-op.md") CHECK(quotes >= 6);  // the tutorial is made of real code
    }
}

TEST_CASE("docs: cli.md documents every flag of every command's --help") {
    std::string cli = doc_text("cli.md");
    // The commands `diffuse --help` lists, each with the section of cli.md that documents it.
    tdtest::CliRun top = tdtest::run_diffuse("--help");
    REQUIRE(top.code == 0);
    std::vector<std::string> listed;
    bool in_commands = false;
    for (const std::string& line : lines_of(top.output)) {
        if (line == "commands:") {
            in_commands = true;
            continue;
        }
        if (in_commands && line.rfind("  ", 0) != 0) break;
        if (in_commands) listed.push_back(trim(line.substr(0, line.find("  ", 2))));
    }
    REQUIRE(listed.size() >= 8);
    for (const std::string& cmd : listed)
        CHECK_MESSAGE(
            !section(cli, "`diffuse " + cmd).empty(),
            "docs/cli.md has no '## `diffuse " << cmd << "...`' section for a command `diffuse --help` lists");

    // Each command's --help, against its section ("trace" has two subcommands of its own).
    std::vector<std::string> commands = listed;
    commands.push_back("trace train");
    commands.push_back("trace sample");
    commands.push_back("train");
    for (const std::string& cmd : commands) {
        tdtest::CliRun help = tdtest::run_diffuse(cmd + " --help");
        CHECK_MESSAGE(!help.output.empty(), "`diffuse " << cmd << " --help` printed nothing");
        std::string where = section(cli, "`diffuse " + cmd + "`");
        if (cmd == "train" || cmd == "trace") where = cli;  // their help only names the subcommands
        INFO("`diffuse " << cmd << " --help`, against its section of docs/cli.md");
        CHECK_MESSAGE(!where.empty(), "no section with a heading naming `diffuse " << cmd << "`");
        for (const std::string& f : undocumented_flags(help.output, where))
            CHECK_MESSAGE(false, "docs/cli.md does not document " << f << " of `diffuse " << cmd << "`");
    }
}
