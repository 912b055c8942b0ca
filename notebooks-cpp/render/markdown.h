// notebooks-cpp/render/markdown.h: the markdown the notebooks' prose is written in,
// turned into HTML. A small subset of CommonMark, enough for lessons:
//
//   blocks   # headings, paragraphs, - * + and 1. lists (nested by indentation),
//            ``` code fences (```cpp is highlighted), code indented by 4 spaces,
//            > quotes, | tables |, ---
//   inline   *em* _em_ **strong**, `code`, [links](url), ![images](src), \escapes,
//            <https://autolinks>
//
// Everything else is text, and all text is HTML-escaped: a notebook cannot inject
// markup into its page (math like `a < b` stays readable). A link to a .md page in
// the same folder (another notebook: "02-autograd.md") points to its .html twin.
#pragma once
#include <string>
#include <vector>

namespace nbrender {

std::string markdown_to_html(const std::string& markdown);

// One line or paragraph of inline markdown (no blocks).
std::string inline_to_html(const std::string& text);

// & < > " ' as entities: safe in element text and in quoted attributes.
std::string escape_html(const std::string& s);

// "02-autograd.md#the-graph" -> "02-autograd.html#the-graph"; other links unchanged
// (a .md elsewhere, "../../notebooks-cpp/README.md", has no .html twin).
std::string html_link_target(const std::string& href);

// A heading's anchor: lower case, letters and digits, words joined by '-'.
std::string slug(const std::string& heading);

}  // namespace nbrender
