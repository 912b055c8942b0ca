// notebooks-cpp/render/markdown.h: the markdown the notebooks' prose is written in,
// turned into HTML. CommonMark with GitHub's tables, parsed by md4c (Debian's
// libmd4c-dev); what is ours is the HTML it becomes: headings with an id (slug below),
// ```cpp fences highlighted (highlight.h), code in <pre class=code>.
//
// Raw HTML is not markup here: all text is HTML-escaped, so a notebook cannot inject
// markup into its page (math like `a < b` stays readable). A link to a .md page in
// the same folder (another notebook: "02-autograd.md") points to its .html twin.
#pragma once
#include <string>
#include <vector>

namespace nbrender {

std::string markdown_to_html(const std::string& markdown);

// One line or paragraph of inline markdown (no blocks: text that would start one, such
// as "1. x", comes back escaped as it is).
std::string inline_to_html(const std::string& text);

// & < > " ' as entities: safe in element text and in quoted attributes.
std::string escape_html(const std::string& s);

// "02-autograd.md#the-graph" -> "02-autograd.html#the-graph"; other links unchanged
// (a .md elsewhere, "../../notebooks-cpp/README.md", has no .html twin).
std::string html_link_target(const std::string& href);

// A heading's anchor: lower case, letters and digits, words joined by '-'.
std::string slug(const std::string& heading);

}  // namespace nbrender
