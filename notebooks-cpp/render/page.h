// notebooks-cpp/render/page.h: a notebook and what it printed, as pages a student reads
// like an executed Jupyter notebook: prose, code, printed output and pictures in order.
// One markdown text makes both forms of a page: DOCS/NAME.md (GitHub shows it; code in
// ```cpp fences, output in ```text) and DOCS/NAME.html (html.cpp), styled by the one
// DOCS/notebook.css. Pictures stay files, DOCS/NAME/FILE, where the notebook wrote them.
// The .md starts with a comment naming its notebook and run time, for index.cpp.
#pragma once
#include <string>
#include <vector>

#include "notebooks-cpp/render/cells.h"
#include "notebooks-cpp/render/markers.h"

namespace nbrender {

struct PageInfo {
    std::string name;        // 01-tensors
    std::string title;       // the first heading of its prose (the name when it has none)
    std::string summary;     // the first sentence after the title
    std::string read_after;  // "04" from a header line `// read after: 04`; "": by number
    double wall_s = 0;       // how long its run took
};

// Throws td::Error for a `read after:` that is not a two-digit number.
PageInfo page_info(const Notebook& nb, double wall_s);

// The page's markdown, without its first comment.
std::string page_markdown(const Notebook& nb, const std::vector<std::vector<Piece>>& outputs, const PageInfo& info,
                          const std::string& docs_dir);

// Writes DOCS/NAME.md, .html and DOCS/notebook.css; throws td::Error naming a picture
// that the output announced but that is not in DOCS/NAME/.
void write_pages(const Notebook& nb, const std::vector<std::vector<Piece>>& outputs, double wall_s,
                 const std::string& docs_dir);

// Markdown as HTML: a fragment, and a whole page with `title` in the browser's tab.
std::string markdown_to_html(const std::string& markdown);
std::string html_page(const std::string& title, const std::string& markdown);

// Copies the style sheet's one source (the path is from the repository root, where
// nb_render runs) to DOCS/notebook.css.
inline const char* kCssSource = "notebooks-cpp/render/notebook.css";
void write_css(const std::string& docs_dir);

// Pages sorted by name, in reading order: each right after the page it reads after, the
// rest by number. Throws td::Error when `read after:` lines make a loop.
std::vector<PageInfo> reading_order(const std::vector<PageInfo>& pages);

// DOCS/index.md and index.html: one row per rendered DOCS/NN-name.md, in reading order.
void write_index(const std::string& docs_dir);

// "1.2 s", "43 s": a run time as the pages show it.
std::string seconds_str(double s);

}  // namespace nbrender
