// notebooks-cpp/render/highlight.h: C++ source as HTML with a few colours: comments,
// string and character literals, numbers, keywords and preprocessor lines each get a
// <span class=...> (the page's CSS colours them); all text is HTML-escaped.
#pragma once
#include <string>

namespace nbrender {

std::string highlight_cpp(const std::string& code);

}  // namespace nbrender
