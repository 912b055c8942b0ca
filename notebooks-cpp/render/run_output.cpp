// notebooks-cpp/render/run_output.cpp: see run_output.h.
#include "notebooks-cpp/render/run_output.h"

#include <cctype>
#include <sstream>

#include "notebooks-cpp/render/instrument.h"
#include "tensor/error.h"

namespace nbrender {

static std::string trim(const std::string& s) {
    size_t a = s.find_first_not_of(" \t"), b = s.find_last_not_of(" \t");
    return a == std::string::npos ? "" : s.substr(a, b - a + 1);
}

bool parse_image_line(const std::string& line, std::string* file, std::string* caption) {
    std::string t = trim(line);
    if (t.compare(0, 8, "[[image:") != 0 || t.size() < 10 || t.compare(t.size() - 2, 2, "]]") != 0) return false;
    std::string body = t.substr(8, t.size() - 10);
    size_t bar = body.find('|');
    *file = trim(body.substr(0, bar));
    *caption = bar == std::string::npos ? "" : trim(body.substr(bar + 1));
    return !file->empty();
}

std::string visible_text(const std::string& line) {
    std::string out;
    for (size_t i = 0; i < line.size(); ++i) {
        char c = line[i];
        if (c == '\x1b' && i + 1 < line.size() && line[i + 1] == '[') {  // ESC [ ... letter
            i += 2;
            while (i < line.size() && !std::isalpha((unsigned char)line[i])) ++i;
        } else if (c == '\r') {
            if (i + 1 < line.size()) out.clear();  // what follows overwrites the line
        } else {
            out += c;
        }
    }
    return out;
}

// Appends one line of text to a cell's pieces, joining it to the text piece before it.
static void add_text(std::vector<Piece>& pieces, const std::string& text) {
    if (pieces.empty() || pieces.back().is_image) pieces.push_back(Piece{});
    pieces.back().text += text;
}

// The cell that shows what is printed before the first marker.
static int first_cell(const Notebook& nb) {
    int last_code = -1;
    for (size_t k = 0; k < nb.cells.size(); ++k) {
        const Cell& c = nb.cells[k];
        if (c.kind != CellKind::Code) continue;
        if (c.marker >= 0) return last_code >= 0 ? last_code : (int)k;
        if (!c.hidden) last_code = (int)k;
    }
    return last_code;
}

std::vector<std::vector<Piece>> attribute_output(const std::string& output, const Notebook& nb) {
    std::vector<std::vector<Piece>> out(nb.cells.size());
    int cell = first_cell(nb);
    const std::string open = kMarkerOpen, close = kMarkerClose;
    std::istringstream in(output);
    std::string line;
    while (std::getline(in, line)) {
        // A marker may follow text that did not end its line (printf without "\n").
        bool had_marker = false;
        size_t at;
        while ((at = line.find(open)) != std::string::npos) {
            size_t end = line.find(close, at + open.size());
            if (end == std::string::npos) break;
            std::string before = visible_text(line.substr(0, at));
            if (!before.empty() && cell >= 0) add_text(out[cell], before + "\n");
            std::string number = line.substr(at + open.size(), end - at - open.size());
            int k = -1;
            try {
                k = std::stoi(number);
            } catch (const std::exception&) {
            }
            td::check(k >= 0 && k < (int)nb.cells.size() && nb.cells[k].marker == k, "nb_render: the output of ",
                      nb.name, " names cell ", number, ", which has no marker in ", nb.path,
                      ": was the program built from an older version of it?");
            cell = k;
            had_marker = true;
            line = line.substr(end + close.size());
        }
        if (had_marker && line.empty()) continue;  // the marker's own line
        if (cell < 0) continue;                    // nothing to attach it to: a notebook without code cells
        Piece image;
        image.is_image = true;
        if (parse_image_line(line, &image.file, &image.caption))
            out[cell].push_back(image);
        else
            add_text(out[cell], visible_text(line) + "\n");
    }
    return out;
}

void shorten_long_text(std::vector<Piece>& pieces, int max_lines) {
    for (Piece& p : pieces) {
        if (p.is_image) continue;
        std::vector<std::string> lines;
        std::istringstream in(p.text);
        for (std::string l; std::getline(in, l);) lines.push_back(l);
        if ((int)lines.size() <= max_lines) continue;
        int head = max_lines * 3 / 4, tail = max_lines - head;
        std::ostringstream os;
        for (int i = 0; i < head; ++i) os << lines[i] << "\n";
        os << "... (" << lines.size() - head - tail << " more lines) ...\n";
        for (size_t i = lines.size() - tail; i < lines.size(); ++i) os << lines[i] << "\n";
        p.text = os.str();
    }
}

}  // namespace nbrender
