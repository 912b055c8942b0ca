// tools/settings.cpp: see settings.h.
#include "tools/settings.h"

#include <charconv>

namespace td::cli {

std::string as_text(int64_t v) { return std::to_string(v); }
std::string as_text(bool v) { return v ? "true" : "false"; }

std::string as_text(float v) {
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

std::string as_text(double v) {
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

bool zero_or_one(const Args& args, const std::string& name) {
    int64_t v = args.integer(name);
    if (v != 0 && v != 1) throw ArgError("--" + name + " must be 0 or 1");
    return v == 1;
}

void check_batch_fits(int64_t batch, const diffusion::Dataset& train) {
    if (batch > train.size())
        throw ArgError("--batch " + std::to_string(batch) + " is larger than the data set (" +
                       std::to_string(train.size()) + " images)");
}

}  // namespace td::cli
