// tools/settings.cpp: see settings.h.
#include "tools/settings.h"

#include <charconv>
#include <cstdlib>
#include <sstream>

#include "diffusion/metadata.h"

namespace td::cli {

std::string as_text(int64_t v) { return std::to_string(v); }
std::string as_text(uint64_t v) { return std::to_string((int64_t)v); }  // as Args::integer reads a seed
std::string as_text(bool v) { return v ? "true" : "false"; }
std::string as_text(const std::vector<int64_t>& v) { return v.empty() ? "none" : diffusion::join_ints(v); }

std::string as_text(float v) {
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

std::string as_text(double v) {
    char buf[32];
    return std::string(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

// "1,2,2" -> {1, 2, 2}; "none" or "" -> {}; anything else: ArgError naming --flag.
static std::vector<int64_t> parse_int_list(const std::string& flag, const std::string& v) {
    std::vector<int64_t> out;
    if (v.empty() || v == "none") return out;
    std::stringstream ss(v);
    for (std::string item; std::getline(ss, item, ',');) {
        char* end = nullptr;
        long long x = std::strtoll(item.c_str(), &end, 10);
        if (item.empty() || *end != '\0' || x <= 0)
            throw ArgError("--" + flag + " expects positive integers separated by commas, got '" + v + "'");
        out.push_back(x);
    }
    return out;
}

void read_value(const Args& a, const std::string& n, int64_t& v) { v = a.integer(n); }
void read_value(const Args& a, const std::string& n, uint64_t& v) { v = (uint64_t)a.integer(n); }
void read_value(const Args& a, const std::string& n, bool& v) { v = a.on(n); }
void read_value(const Args& a, const std::string& n, float& v) { v = (float)a.number(n); }
void read_value(const Args& a, const std::string& n, double& v) { v = a.number(n); }
void read_value(const Args& a, const std::string& n, std::string& v) { v = a.str(n); }
void read_value(const Args& a, const std::string& n, std::vector<int64_t>& v) { v = parse_int_list(n, a.str(n)); }

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

Device device_option(const Args& args) {
    std::string d = args.str("device");
    if (d != "cuda" && d != "cpu" && d != "auto") throw ArgError("--device must be cuda, cpu or auto, got '" + d + "'");
    return parse_device(d);  // cuda without a GPU: td::Error saying why
}

}  // namespace td::cli
