// notebooks-cpp/render/html.cpp: a page's markdown as its HTML twin (page.h). md4c
// (Debian's libmd4c-dev: CommonMark with GitHub's tables) writes the HTML, with raw HTML
// read as text (MD_FLAG_NOHTML): a notebook cannot inject markup into its page, and math
// like `a < b` stays readable. Ours: links to a .md page beside this one (another
// notebook) point to its .html twin, and the style is one shared file, notebook.css.
#include <md4c-html.h>

#include <filesystem>

#include "notebooks-cpp/render/page.h"

namespace nbrender {

static std::string escape_html(const std::string& s) {
    std::string out;
    for (char c : s) out += c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;" : std::string(1, c);
    return out;
}

// "02-autograd.md#x" -> "02-autograd.html#x"; others unchanged ("../README.md", a URL).
static std::string html_link_target(const std::string& href) {
    size_t hash = href.find('#'), md = href.rfind(".md", hash);
    bool beside = href.find_first_of("/:") == std::string::npos;
    return beside && md != std::string::npos && md + 3 == std::min(hash, href.size())
               ? href.substr(0, md) + ".html" + href.substr(md + 3)
               : href;
}

static void append(const MD_CHAR* text, MD_SIZE size, void* html) { ((std::string*)html)->append(text, size); }

std::string markdown_to_html(const std::string& markdown) {
    std::string html, out;
    md_html(markdown.data(), (MD_SIZE)markdown.size(), append, &html,
            MD_FLAG_TABLES | MD_FLAG_STRIKETHROUGH | MD_FLAG_NOHTML, 0);
    const std::string link = "<a href=\"";
    size_t i = 0;
    for (size_t at; (at = html.find(link, i)) != std::string::npos; i = html.find('"', at + link.size())) {
        size_t start = at + link.size();
        out += html.substr(i, start - i) + html_link_target(html.substr(start, html.find('"', start) - start));
    }
    return out + html.substr(i);
}

std::string html_page(const std::string& title, const std::string& markdown) {
    return "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>" +
           escape_html(title) + "</title>\n<link rel=\"stylesheet\" href=\"notebook.css\">\n</head>\n<body>\n<main>\n" +
           markdown_to_html(markdown) + "</main>\n</body>\n</html>\n";
}

void write_css(const std::string& docs_dir) {
    write_text_file((std::filesystem::path(docs_dir) / "notebook.css").string(),
                    read_text_file(kCssSource, "style sheet"));
}

}  // namespace nbrender
