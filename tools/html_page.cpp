// tools/html_page.cpp: see html_page.h.
#include "tools/html_page.h"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <vector>

#include "tools/training_run.h"

namespace td::cli {

std::string escape_html(const std::string& text) {
    std::string out;
    for (char c : text) {
        if (c == '&') out += "&amp;";
        else if (c == '<') out += "&lt;";
        else if (c == '>') out += "&gt;";
        else if (c == '"') out += "&quot;";
        else if (c == '\'') out += "&#39;";
        else out += c;
    }
    return out;
}

HtmlPage::HtmlPage(const std::string& title, const std::string& extra_css) {
    html_ = "<!doctype html><meta charset=utf-8><title>tinydiffusion: " + escape_html(title) +
            "</title>\n"
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto;padding:0 1em}"
            "img{image-rendering:pixelated;max-width:100%}code{background:#eee}" +
            extra_css +
            "</style>\n"
            "<h1>" +
            escape_html(title) + "</h1>\n";
}

HtmlPage& HtmlPage::h2(const std::string& text) { return html("<h2>" + escape_html(text) + "</h2>\n"); }

HtmlPage& HtmlPage::p(const std::string& text) { return html("<p>" + escape_html(text) + "</p>\n"); }

HtmlPage& HtmlPage::image(const std::string& src, const std::string& alt, const std::string& caption) {
    if (!caption.empty()) p(caption);
    return html("<img src=\"" + escape_html(src) + "\" alt=\"" + escape_html(alt) + "\">\n");
}

HtmlPage& HtmlPage::html(const std::string& markup) {
    html_ += markup;
    return *this;
}

HtmlPage& HtmlPage::progress_grids(const std::string& run_dir) {
    std::vector<std::string> grids;
    std::error_code ec;
    for (auto& e : std::filesystem::directory_iterator(run_dir + "/progress", ec)) {
        std::string name = e.path().filename().string();
        if (name.rfind("step-", 0) == 0 && name.size() > 9 && name.substr(name.size() - 4) == ".png")
            grids.push_back(name);
    }
    std::sort(grids.begin(), grids.end());  // step-%08d: by name is by step
    for (const std::string& g : grids)
        html("<p>step " + std::to_string(std::atoll(g.c_str() + 5)) + "<br><img src=\"progress/" + escape_html(g) +
             "\" alt=\"" + escape_html(g) + "\"></p>\n");
    return *this;
}

void HtmlPage::write(const std::string& path) const { write_text_file(path, html_); }

}  // namespace td::cli
