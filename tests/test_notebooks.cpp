// tests/test_notebooks.cpp: the notebook renderer (notebooks-cpp/render/, `make notebooks`)
// on tiny notebooks: splitting into cells, where cell markers go, which cell an output
// line belongs to, the pages it writes (HTML escaped) and the index in reading order, and
// one notebook compiled and run for real. No Chromium here: `make notebooks` loads the real pages in it.
#include <doctest/doctest.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "helpers.h"
#include "notebooks-cpp/render/cells.h"
#include "notebooks-cpp/render/markers.h"
#include "notebooks-cpp/render/page.h"

using namespace nbrender;
using tdtest::contains;

namespace {

// A notebook with every kind of cell: a header comment, a namespace-scope cell with a
// function and a struct (braces in strings and comments to confuse a naive scanner),
// main opened in one cell, cells inside it (one beginning with `else`), prose inside
// main, and code after the last prose without a header.
const char* kTiny = R"(// tiny.cpp: a test notebook
// read after: 03
// %% [markdown]
// # 07 Tiny *notebook*
//
// The first sentence. The second one.

// %%
#include <cstdio>
static const char* brace = "{ not a block }";  // nor this: {
int twice(int v) {
    return 2 * v;  /* } */
}
struct S {
    int a = '{';
// %%
    int b = 0;
};

// %%
int main() {
    std::printf("from the cell that opens main\n");
    if (twice(1) == 3) {
        std::printf("never\n");
    }
    // %% [markdown]
    // Prose inside main: `a < b` and <b>not bold</b>.

    // %%
    std::printf("cell five says %d\n", twice(21));
    if (brace[0] == 'x') std::printf("no\n");
    // %%
    else std::printf("an else cell\n");
    std::printf("[[image: pic.png | a <picture> caption]]\n");
    // %% [markdown]
    // Last words.
    return 0;
}
)";

std::vector<Cell> tiny_cells() { return split_cells(kTiny); }

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    return std::string((std::istreambuf_iterator<char>(f)), {});
}

}  // namespace

TEST_CASE("nb_render: a notebook splits into cells at // %% lines") {
    std::vector<Cell> c = tiny_cells();
    REQUIRE(c.size() == 10);
    CHECK(c[0].hidden);  // the header comment: only comments, not rendered
    CHECK(c[1].kind == CellKind::Markdown);
    CHECK(c[1].lines[0] == "# 07 Tiny *notebook*");
    CHECK(c[1].lines[1] == "");  // a bare "//" is an empty line of prose
    CHECK(c[2].kind == CellKind::Code);
    CHECK(c[2].header_line == 8);
    CHECK(c[2].first_line == 9);
    CHECK(c[5].kind == CellKind::Markdown);  // indented prose inside main
    CHECK(c[5].lines[0] == "Prose inside main: `a < b` and <b>not bold</b>.");
    CHECK(c[9].kind == CellKind::Code);  // `return 0; }` after the last prose: a cell without a header
    CHECK(c[9].header_line == 0);
    CHECK(c[9].first_line == 37);
    CHECK(c[9].lines == std::vector<std::string>{"    return 0;", "}"});
}

TEST_CASE("nb_render: markers go only where a statement may start inside a function body") {
    Notebook nb{"tiny.cpp", "tiny", tiny_cells()};
    assign_markers(nb);
    CHECK(nb.cells[2].marker == -1);  // namespace scope: includes, a function, a struct
    CHECK(nb.cells[3].marker == -1);  // inside the struct's body: a member, not a statement
    CHECK(nb.cells[4].marker == -1);  // opens main at namespace scope
    CHECK(nb.cells[6].marker == 6);   // inside main
    CHECK(nb.cells[7].marker == -1);  // starts with `else`: nothing may come between
    CHECK(nb.cells[9].marker == 9);   // the headerless closing cell, inside main

    // Braces in comments and literals do not count; an initializer list is not a block.
    Notebook lists{"x.cpp", "x",
                   split_cells("void f() {\n  auto g = [&](int x) { return x; };\n  int a[] = {1, 2,\n// %%\n  3};\n"
                               "// %%\n  char c = '}'; int n = 1'000; /* { */ const char* s = \"{\\\"\";\n"
                               "// %%\n  // only a comment\n// %%\n  return; }\n// %%\nint h();\n")};
    assign_markers(lists);
    CHECK(lists.cells[1].marker == -1);  // inside an initializer list
    CHECK(lists.cells[2].marker == 2);   // after "3};", inside f
    CHECK(lists.cells[3].marker == -1);  // no code: nothing to mark
    CHECK(lists.cells[4].marker == 4);   // the braces of the literals and comment did not count
    CHECK(lists.cells[5].marker == -1);  // f closed: namespace scope again
}

TEST_CASE("nb_render: the instrumented copy keeps the notebook's line numbers") {
    Notebook nb{"dir/tiny.cpp", "tiny", tiny_cells()};
    assign_markers(nb);
    std::string src = instrumented_source(nb);
    CHECK(contains(src, "#line 1 \"dir/tiny.cpp\"\n// tiny.cpp: a test notebook\n"));
    CHECK(contains(src, "nb_cell_marker(6);\n#line 30 \"dir/tiny.cpp\"\n    std::printf(\"cell five"));
    CHECK(contains(src, "nb_cell_marker(9);\n#line 37 \"dir/tiny.cpp\"\n    return 0;"));
    CHECK_FALSE(contains(src, "nb_cell_marker(7)"));
}

TEST_CASE("nb_render: output lines go to the cell that printed them") {
    Notebook nb{"tiny.cpp", "tiny", tiny_cells()};
    assign_markers(nb);
    std::string out =
        "from the cell that opens main\n"
        "@@nb-cell 6@@\n"
        "cell five says 42\n"
        "no newline@@nb-cell 9@@\n"  // a marker on the line of text printed without "\n"
        "[[image: pic.png | a caption]]\n"
        "after\n";
    std::vector<std::vector<Piece>> p = attribute_output(out, nb);
    REQUIRE(p[4].size() == 1);  // before the first marker: the cell that opens main
    CHECK(p[4][0].text == "from the cell that opens main\n");
    REQUIRE(p[6].size() == 1);
    CHECK(p[6][0].text == "cell five says 42\nno newline\n");
    REQUIRE(p[9].size() == 2);
    CHECK(p[9][0].is_image);
    CHECK(p[9][0].file == "pic.png");
    CHECK(p[9][0].caption == "a caption");
    CHECK(p[9][1].text == "after\n");

    // A marker the notebook does not have: the binary is older than the source.
    CHECK(contains(tdtest::error_of([&] { attribute_output("@@nb-cell 7@@\n", nb); }), "which has no marker"));
}

TEST_CASE("nb_render: markdown becomes escaped HTML") {
    CHECK(markdown_to_html("a <script>alert(1)</script> & b") ==
          "<p>a &lt;script&gt;alert(1)&lt;/script&gt; &amp; b</p>\n");
    CHECK(markdown_to_html("*em* and `a<b> *not em*`, alpha_bar_t") ==
          "<p><em>em</em> and <code>a&lt;b&gt; *not em*</code>, alpha_bar_t</p>\n");
    CHECK(markdown_to_html("[next](02-autograd.md#top) [idx](index.md) [up](../../README.md) <https://a.b/x.md>") ==
          "<p><a href=\"02-autograd.html#top\">next</a> <a href=\"index.html\">idx</a> "
          "<a href=\"../../README.md\">up</a> <a href=\"https://a.b/x.md\">https://a.b/x.md</a></p>\n");
    std::string html = markdown_to_html("| a | b |\n| --- | ---: |\n| 1 | 2 |\n\n```cpp\nint a = x < 1;\n```\n");
    CHECK(contains(html, "<th align=\"right\">b</th>"));
    CHECK(contains(html, "<pre><code class=\"language-cpp\">int a = x &lt; 1;\n</code></pre>"));
    std::string page = html_page("T <1>", "# Title\n");
    CHECK(contains(page, "<title>T &lt;1&gt;</title>"));
    CHECK(contains(page, "<link rel=\"stylesheet\" href=\"notebook.css\">"));  // the one shared style
}

TEST_CASE("nb_render: the pages and the index, in reading order") {
    namespace fs = std::filesystem;
    Notebook nb{"notebooks-cpp/07-tiny.cpp", "07-tiny", tiny_cells()};
    assign_markers(nb);
    std::vector<std::vector<Piece>> out(nb.cells.size());
    out[6] = {Piece{false, "x < y && ```\n", "", ""}, Piece{true, "", "pic.png", "a <picture>"}};
    PageInfo info = page_info(nb, 1.5);
    CHECK(info.title == "07 Tiny *notebook*");
    CHECK(info.summary == "The first sentence.");
    CHECK(info.read_after == "03");
    Notebook cited{"x.cpp", "08-x",
                   split_cells("// %% [markdown]\n// # T\n// Latent diffusion (Rombach et al. 2022,\n"
                               "// eq. 1) works on codes, see eq. 2. The rest.\n")};
    CHECK(page_info(cited, 0).summary == "Latent diffusion (Rombach et al. 2022, eq. 1) works on codes, see eq. 2.");
    CHECK(page_info(cited, 0).read_after == "");
    Notebook bad{"bad.cpp", "09-bad", split_cells("// read after: four\n// %%\nint x;\n")};
    CHECK(contains(tdtest::error_of([&] { page_info(bad, 0); }), "bad.cpp: `// read after: NN`"));

    std::string md = page_markdown(nb, out, info, "docs/notebooks");
    CHECK(contains(
        md, "source: [`notebooks-cpp/07-tiny.cpp`](../../notebooks-cpp/07-tiny.cpp) · read after 03 · ran in 1.5 s\n"));
    CHECK_FALSE(contains(md, "a test notebook"));           // the hidden header
    CHECK(contains(md, "````text\nx < y && ```\n````\n"));  // a fence longer than any run inside
    CHECK(contains(md, "![a <picture>](07-tiny/pic.png)\\\n*a <picture>*\n"));
    CHECK(contains(md, "```cpp\nstd::printf(\"cell five says %d\\n\", twice(21));\n"));  // dedented
    std::string html = markdown_to_html(md);
    CHECK(contains(html, "<code class=\"language-text\">x &lt; y &amp;&amp; ```\n</code>"));
    CHECK(contains(html, "<img src=\"07-tiny/pic.png\" alt=\"a &lt;picture&gt;\">"));
    CHECK(contains(html, "Prose inside main: <code>a &lt; b</code> and &lt;b&gt;not bold&lt;/b&gt;."));
    CHECK(contains(html, "<a href=\"index.html\">"));
    CHECK_FALSE(contains(html, "<b>"));

    CHECK(contains(md, "```cpp\n    return 0;\n}\n```"));  // "}" has no indentation to share

    // On disk: a picture the output names must exist; each page is .md (its notebook and
    // run time first) and .html; the index lists the pages in reading order (07 after 03).
    fs::path dir = tdtest::scratch("nb_docs"), docs = dir / "docs";
    fs::remove_all(dir);
    fs::create_directories(docs / "07-tiny");
    std::ofstream(dir / "07-tiny.cpp") << kTiny;
    Notebook tiny{(dir / "07-tiny.cpp").string(), "07-tiny", tiny_cells()};
    assign_markers(tiny);
    CHECK(contains(tdtest::error_of([&] { write_pages(tiny, out, 1.5, docs.string()); }), "pic.png"));
    std::ofstream(docs / "07-tiny" / "pic.png") << "not really a png";
    write_pages(tiny, out, 1.5, docs.string());
    for (const char* n : {"03-three", "05-five"}) {
        std::ofstream(dir / (std::string(n) + ".cpp")) << "// %% [markdown]\n// # " << n << "\n";
        Notebook other = read_notebook((dir / (std::string(n) + ".cpp")).string());
        write_pages(other, std::vector<std::vector<Piece>>(other.cells.size()), 0.25, docs.string());
    }
    CHECK(read_file((docs / "07-tiny.md").string()).rfind("<!-- rendered from " + tiny.path + " in 1.50 s", 0) == 0);
    CHECK(contains(read_file((docs / "07-tiny.html").string()), "<h1>07 Tiny <em>notebook</em></h1>"));
    CHECK(read_file((docs / "notebook.css").string()) == read_file(kCssSource));
    write_index(docs.string());
    std::string index = read_file((docs / "index.md").string());
    CHECK(contains(index, "| [07 Tiny *notebook*](07-tiny.md) | The first sentence. | 1.5 s |"));
    size_t three = index.find("(03-three.md)"), seven = index.find("(07-tiny.md)"), five = index.find("(05-five.md)");
    CHECK((three < seven && seven < five && five != std::string::npos));
    CHECK(
        contains(read_file((docs / "index.html").string()), "<a href=\"07-tiny.html\">07 Tiny <em>notebook</em></a>"));

    // A loop of `read after:` lines is an error that names the pages, not a page left out.
    std::vector<PageInfo> loop = {{"04-a", "", "", "05", 0}, {"05-b", "", "", "04", 0}, {"06-c", "", "", "", 0}};
    CHECK(contains(tdtest::error_of([&] { reading_order(loop); }), "04-a (after 05) 05-b (after 04)"));
}

TEST_CASE("nb_render: a notebook compiled from its instrumented copy runs and tells its cells apart") {
    namespace fs = std::filesystem;
    fs::path dir = tdtest::scratch("nb_tiny");
    fs::create_directories(dir);
    Notebook nb{(dir / "tiny.cpp").string(), "tiny", tiny_cells()};
    assign_markers(nb);
    std::ofstream(dir / "tiny.cpp") << kTiny;
    std::ofstream(dir / "cells.cpp") << instrumented_source(nb);
    std::string exe = (dir / "tiny").string(), log = (dir / "out.txt").string();
    std::string cxx = std::getenv("CXX") ? std::getenv("CXX") : "g++";
    int built = std::system(
        (cxx + " -std=c++20 -w " + (dir / "cells.cpp").string() + " -o " + exe + " > " + log + " 2>&1").c_str());
    INFO(read_file(log));
    REQUIRE(built == 0);

    REQUIRE(std::system(("NB_MARKERS=1 " + exe + " > " + log + " 2>&1").c_str()) == 0);
    std::vector<std::vector<Piece>> p = attribute_output(read_file(log), nb);
    REQUIRE(p[4].size() == 1);
    CHECK(p[4][0].text == "from the cell that opens main\n");
    REQUIRE(p[6].size() == 2);  // the else cell has no marker: its output stays with cell 6
    CHECK(p[6][0].text == "cell five says 42\nan else cell\n");
    CHECK(p[6][1].is_image);
    CHECK(p[6][1].caption == "a <picture> caption");
    CHECK(p[9].empty());

    // Run by hand (no NB_MARKERS), it prints only its own output.
    REQUIRE(std::system((exe + " > " + log + " 2>&1").c_str()) == 0);
    CHECK_FALSE(contains(read_file(log), "@@nb-cell"));

    // A compiler error points at the notebook's own line, not the instrumented copy's.
    std::string broken = kTiny;
    broken.replace(broken.find("twice(21)"), 9, "twice(undeclared)");
    Notebook bad{(dir / "tiny.cpp").string(), "tiny", split_cells(broken)};
    assign_markers(bad);
    std::ofstream(dir / "cells.cpp") << instrumented_source(bad);
    int status = std::system(
        (cxx + " -std=c++20 -fsyntax-only " + (dir / "cells.cpp").string() + " > " + log + " 2>&1").c_str());
    CHECK(status != 0);
    CHECK(contains(read_file(log), "tiny.cpp:30:"));
}

// `make notebooks` on a fresh clone trains every run a notebook loads: each "runs/NAME/..."
// string in notebooks-cpp/NN-*.cpp needs a command in the Makefile's notebooks recipe (or
// in scripts/notebooks.sh) that writes --out runs/NAME, run when `test -f runs/NAME/...`
// finds it missing.
TEST_CASE("make notebooks trains every run a notebook loads") {
    namespace fs = std::filesystem;
    std::string makers = read_file("Makefile") + read_file("scripts/notebooks.sh");
    REQUIRE(contains(makers, "notebooks:"));
    std::vector<fs::path> sources;
    for (const fs::directory_entry& e : fs::directory_iterator("notebooks-cpp")) {
        std::string f = e.path().filename().string();
        if (f.size() > 3 && std::isdigit((unsigned char)f[0]) && f[2] == '-' && e.path().extension() == ".cpp")
            sources.push_back(e.path());
    }
    REQUIRE(sources.size() >= 10);
    std::set<std::string> runs;
    for (const fs::path& src : sources) {
        std::string text = read_file(src.string());
        for (size_t at = text.find("\"runs/"); at != std::string::npos; at = text.find("\"runs/", at + 1)) {
            size_t name_end = text.find_first_of("/\" ", at + 6);
            if (name_end == std::string::npos || text[name_end] != '/') continue;  // "runs/x was ..." in a message
            std::string run = text.substr(at + 1, name_end - at - 1);
            INFO(src.string() << " loads " << text.substr(at + 1, text.find('"', at + 1) - at - 1));
            bool trained = contains(makers, "--out " + run + " ") || contains(makers, "--out " + run + "\n");
            CHECK_MESSAGE(trained, "nothing in the Makefile or scripts/notebooks.sh trains " << run);
            CHECK_MESSAGE(contains(makers, "test -f " + run + "/"), "make notebooks never checks for " << run);
            runs.insert(run);
        }
    }
    CHECK(runs.count("runs/demo"));  // the scan found what the notebooks load
    CHECK(runs.count("runs/mnist-clf"));
}
