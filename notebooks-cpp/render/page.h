// notebooks-cpp/render/page.h: a notebook and what it printed, as pages a student
// reads like an executed Jupyter notebook: prose, code, printed output and pictures
// in order. Two forms of the same page:
//   DOCS/NAME.md    markdown (GitHub shows it), code in ```cpp fences, output in ```text
//   DOCS/NAME.html  one page with its own CSS (the prose through markdown.h, the code
//                   highlighted), linking back to DOCS/index.html
// Pictures stay files, DOCS/NAME/FILE, the folder the notebook wrote them to ($NB_OUT).
// The .md starts with a comment holding the notebook's title, summary and run time,
// from which write_index() later lists every rendered notebook.
#pragma once
#include <string>
#include <vector>

#include "notebooks-cpp/render/cells.h"
#include "notebooks-cpp/render/run_output.h"

namespace nbrender {

struct PageInfo {
    std::string name;     // 01-tensors
    std::string title;    // the first heading of its prose
    std::string summary;  // the first sentence after the title
    std::string source;   // notebooks-cpp/01-tensors.cpp
    double wall_s = 0;    // how long its run took
};

// The title and summary from the notebook's prose (the name when it has no heading).
PageInfo page_info(const Notebook& nb, double wall_s);

// The two pages as text (pure: the tests call these).
std::string markdown_page(const Notebook& nb, const std::vector<std::vector<Piece>>& outputs, const PageInfo& info,
                          const std::string& source_link);
std::string html_page(const Notebook& nb, const std::vector<std::vector<Piece>>& outputs, const PageInfo& info,
                      const std::string& source_link);

// Writes DOCS/NAME.md and DOCS/NAME.html; throws td::Error naming a picture that the
// output announced but that is not in DOCS/NAME/.
void write_pages(const Notebook& nb, const std::vector<std::vector<Piece>>& outputs, double wall_s,
                 const std::string& docs_dir);

// The metadata comment of a rendered .md page back (false when it has none).
bool read_page_info(const std::string& md_text, PageInfo* info);

// DOCS/index.md and DOCS/index.html: one line per DOCS/NN-name.md, in order.
void write_index(const std::string& docs_dir);

// The CSS every page shares.
const char* page_css();

// "1.2 s", "43 s": a run time as the pages show it.
std::string seconds_str(double s);

}  // namespace nbrender
