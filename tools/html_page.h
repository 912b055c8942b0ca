// tools/html_page.h: the index.html of a run folder (or of a trace), written one way.
//
// Every piece of text that comes from outside the program -- a data set's or a folder's
// name, a path, a tensor's name -- goes through escape_html(), so a name with '<' or '&'
// in it shows as itself and cannot break the page. The markup a command adds itself
// (<b>, <code>, a table) is passed as html().
//
//   HtmlPage page("DDPM on mnist");            // <title>, the style, <h1>
//   page.p("1,800 steps at batch 64 ...");     // text: escaped
//   page.image("samples.png", "samples");
//   page.write(run + "/index.html");           // whole or not at all
#pragma once
#include <string>

namespace td::cli {

// & < > " ' as entities: the text is safe in an element and in a quoted attribute.
std::string escape_html(const std::string& text);

class HtmlPage {
public:
    // extra_css: rules added to the common style (a trace's table).
    explicit HtmlPage(const std::string& title, const std::string& extra_css = "");

    HtmlPage& h2(const std::string& text);
    HtmlPage& p(const std::string& text);
    // <img> with its alt text; a caption, if given, is a paragraph before it.
    HtmlPage& image(const std::string& src, const std::string& alt, const std::string& caption = "");
    // Markup the command wrote itself: everything in it from outside must be escaped.
    HtmlPage& html(const std::string& markup);
    // The sample grids a run drew while training (DIR/progress/step-*.png), oldest first,
    // each under its step number.
    HtmlPage& progress_grids(const std::string& run_dir);

    void write(const std::string& path) const;  // PATH.tmp renamed to PATH

private:
    std::string html_;
};

}  // namespace td::cli
