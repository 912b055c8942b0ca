// notebooks-cpp/render/markdown.cpp: see markdown.h. md4c (CommonMark, with GitHub's
// tables) parses; the callbacks below write the HTML, in the page's own classes: headings
// get an id, ```cpp fences are highlighted, and raw HTML is text like everything else.
#include "notebooks-cpp/render/markdown.h"

#include <md4c.h>

#include <cctype>

#include "notebooks-cpp/render/highlight.h"

namespace nbrender {

std::string escape_html(const std::string& s) {
    std::string out;
    for (char c : s) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

std::string html_link_target(const std::string& href) {
    if (href.find("://") != std::string::npos || href.compare(0, 7, "mailto:") == 0) return href;
    size_t hash = href.find('#');
    std::string path = href.substr(0, hash), rest = hash == std::string::npos ? "" : href.substr(hash);
    if (path.find('/') != std::string::npos) return href;  // not a page beside this one: no .html twin
    if (path.size() > 3 && path.compare(path.size() - 3, 3, ".md") == 0) path.replace(path.size() - 3, 3, ".html");
    return path + rest;
}

std::string slug(const std::string& heading) {
    std::string out;
    for (char c : heading) {
        if (std::isalnum((unsigned char)c))
            out += (char)std::tolower((unsigned char)c);
        else if (!out.empty() && out.back() != '-')
            out += '-';
    }
    while (!out.empty() && out.back() == '-') out.pop_back();
    return out;
}

namespace {

// The HTML written so far, and what a block or span being read holds back until its end:
// a heading (its id is made from its whole text), a code block (highlighted whole), an
// image's alt text (an attribute, not markup).
struct Writer {
    std::string out;
    bool in_heading = false, in_code = false;
    std::string heading, heading_text, code, code_lang;
    int in_image = 0;
    std::string alt, image_src;

    std::string& sink() { return in_heading ? heading : out; }
    void new_line() {  // every block tag starts a line
        if (!out.empty() && out.back() != '\n') out += '\n';
    }
};

std::string text_of(const MD_ATTRIBUTE& a) { return std::string(a.text, a.size); }

std::string lang_of(const MD_BLOCK_CODE_DETAIL* d) { return d->lang.text ? text_of(d->lang) : ""; }

const char* align_style(MD_ALIGN a) {
    return a == MD_ALIGN_CENTER ? " style=\"text-align:center\"" : a == MD_ALIGN_RIGHT ? " style=\"text-align:right\"" : "";
}

int enter_block(MD_BLOCKTYPE type, void* detail, void* user) {
    Writer& w = *(Writer*)user;
    switch (type) {
        case MD_BLOCK_QUOTE: w.new_line(), w.out += "<blockquote>\n"; break;
        case MD_BLOCK_UL: w.new_line(), w.out += "<ul>\n"; break;
        case MD_BLOCK_OL: w.new_line(), w.out += "<ol>\n"; break;
        case MD_BLOCK_LI: w.out += "<li>"; break;
        case MD_BLOCK_HR: w.new_line(), w.out += "<hr>\n"; break;
        case MD_BLOCK_H: w.new_line(), w.in_heading = true, w.heading.clear(), w.heading_text.clear(); break;
        case MD_BLOCK_CODE:
            w.new_line(), w.in_code = true, w.code.clear(), w.code_lang = lang_of((MD_BLOCK_CODE_DETAIL*)detail);
            break;
        case MD_BLOCK_P: w.new_line(), w.out += "<p>"; break;
        case MD_BLOCK_TABLE: w.new_line(), w.out += "<table>\n"; break;
        case MD_BLOCK_THEAD: w.out += "<thead>"; break;
        case MD_BLOCK_TBODY: w.out += "<tbody>\n"; break;
        case MD_BLOCK_TR: w.out += "<tr>"; break;
        case MD_BLOCK_TH: w.out += std::string("<th") + align_style(((MD_BLOCK_TD_DETAIL*)detail)->align) + ">"; break;
        case MD_BLOCK_TD: w.out += std::string("<td") + align_style(((MD_BLOCK_TD_DETAIL*)detail)->align) + ">"; break;
        default: break;  // the document itself; raw HTML blocks are off (MD_FLAG_NOHTML)
    }
    return 0;
}

int leave_block(MD_BLOCKTYPE type, void* detail, void* user) {
    Writer& w = *(Writer*)user;
    switch (type) {
        case MD_BLOCK_QUOTE: w.new_line(), w.out += "</blockquote>\n"; break;
        case MD_BLOCK_UL: w.out += "</ul>"; break;
        case MD_BLOCK_OL: w.out += "</ol>"; break;
        case MD_BLOCK_LI: w.out += "</li>\n"; break;
        case MD_BLOCK_H: {
            std::string h = "h" + std::to_string(((MD_BLOCK_H_DETAIL*)detail)->level);
            w.in_heading = false;
            w.out += "<" + h + " id=\"" + slug(w.heading_text) + "\">" + w.heading + "</" + h + ">\n";
            break;
        }
        case MD_BLOCK_CODE: {
            bool cpp = w.code_lang == "cpp" || w.code_lang == "c++" || w.code_lang == "c";
            w.in_code = false;
            w.out += "<pre class=code><code>" + (cpp ? highlight_cpp(w.code) : escape_html(w.code)) + "</code></pre>\n";
            break;
        }
        case MD_BLOCK_P: w.out += "</p>\n"; break;
        case MD_BLOCK_TABLE: w.out += "</table>\n"; break;
        case MD_BLOCK_THEAD: w.out += "</thead>\n"; break;
        case MD_BLOCK_TBODY: w.out += "</tbody>\n"; break;
        case MD_BLOCK_TR: w.out += "</tr>\n"; break;
        case MD_BLOCK_TH: w.out += "</th>"; break;
        case MD_BLOCK_TD: w.out += "</td>"; break;
        default: break;
    }
    return 0;
}

int enter_span(MD_SPANTYPE type, void* detail, void* user) {
    Writer& w = *(Writer*)user;
    if (w.in_image) return 0;  // inside an alt text only the words count
    switch (type) {
        case MD_SPAN_EM: w.sink() += "<em>"; break;
        case MD_SPAN_STRONG: w.sink() += "<strong>"; break;
        case MD_SPAN_CODE: w.sink() += "<code>"; break;
        case MD_SPAN_DEL: w.sink() += "<del>"; break;
        case MD_SPAN_A:
            w.sink() += "<a href=\"" + escape_html(html_link_target(text_of(((MD_SPAN_A_DETAIL*)detail)->href))) + "\">";
            break;
        case MD_SPAN_IMG: w.image_src = text_of(((MD_SPAN_IMG_DETAIL*)detail)->src), w.alt.clear(); break;
        default: break;
    }
    if (type == MD_SPAN_IMG) ++w.in_image;
    return 0;
}

int leave_span(MD_SPANTYPE type, void*, void* user) {
    Writer& w = *(Writer*)user;
    if (type == MD_SPAN_IMG && --w.in_image == 0)
        w.sink() += "<img src=\"" + escape_html(w.image_src) + "\" alt=\"" + escape_html(w.alt) + "\">";
    if (w.in_image) return 0;
    switch (type) {
        case MD_SPAN_EM: w.sink() += "</em>"; break;
        case MD_SPAN_STRONG: w.sink() += "</strong>"; break;
        case MD_SPAN_CODE: w.sink() += "</code>"; break;
        case MD_SPAN_DEL: w.sink() += "</del>"; break;
        case MD_SPAN_A: w.sink() += "</a>"; break;
        default: break;
    }
    return 0;
}

int text(MD_TEXTTYPE type, const MD_CHAR* chars, MD_SIZE size, void* user) {
    Writer& w = *(Writer*)user;
    std::string s(chars, size);
    if (type == MD_TEXT_NULLCHAR) s = "\xEF\xBF\xBD";  // U+FFFD, as CommonMark says
    if (type == MD_TEXT_SOFTBR) s = "\n";
    if (w.in_code) {
        w.code += s;
    } else if (w.in_image) {
        w.alt += type == MD_TEXT_SOFTBR ? " " : s;
    } else {
        if (w.in_heading) w.heading_text += s;
        // an entity (&amp;) is markup already; everything else is text
        w.sink() += type == MD_TEXT_BR ? "<br>\n" : type == MD_TEXT_ENTITY ? s : escape_html(s);
    }
    return 0;
}

}  // namespace

std::string markdown_to_html(const std::string& markdown) {
    MD_PARSER parser{};
    parser.flags = MD_FLAG_TABLES | MD_FLAG_STRIKETHROUGH | MD_FLAG_NOHTML;
    parser.enter_block = enter_block;
    parser.leave_block = leave_block;
    parser.enter_span = enter_span;
    parser.leave_span = leave_span;
    parser.text = text;
    Writer w;
    md_parse(markdown.data(), (MD_SIZE)markdown.size(), &parser, &w);
    w.new_line();
    return w.out == "\n" ? "" : w.out;
}

std::string inline_to_html(const std::string& text) {
    std::string html = markdown_to_html(text);
    // one paragraph: its inside; text that would start a block ("1. x", "# x") stays text
    if (html.compare(0, 3, "<p>") != 0 || html.find("<p>", 3) != std::string::npos) return escape_html(text);
    return html.substr(3, html.size() - 3 - 5);
}

}  // namespace nbrender
