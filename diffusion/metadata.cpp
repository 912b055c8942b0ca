// diffusion/metadata.cpp: see metadata.h.
#include "diffusion/metadata.h"

#include <sstream>
#include <stdexcept>

#include "tensor/error.h"

namespace td::diffusion {

std::string join_ints(const std::vector<int64_t>& v) {
    std::ostringstream o;
    for (size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
    return o.str();
}

const std::string& meta_need(const Metadata& m, const std::string& key, const std::string& path) {
    auto it = m.find(key);
    check(it != m.end(), path, ": metadata has no '", key, "' (not a file written by `diffuse train`?)");
    return it->second;
}

int64_t meta_int(const Metadata& m, const std::string& key, const std::string& path) {
    const std::string& s = meta_need(m, key, path);
    try {
        size_t used = 0;
        long long v = std::stoll(s, &used);
        if (used == s.size()) return v;
    } catch (const std::exception&) {}
    fail(path, ": metadata '", key, "' = '", s, "' is not an integer");
}

double meta_double(const Metadata& m, const std::string& key, const std::string& path) {
    const std::string& s = meta_need(m, key, path);
    try {
        size_t used = 0;
        double v = std::stod(s, &used);
        if (used == s.size()) return v;
    } catch (const std::exception&) {}
    fail(path, ": metadata '", key, "' = '", s, "' is not a number");
}

std::vector<int64_t> meta_list(const Metadata& m, const std::string& key, const std::string& path) {
    std::vector<int64_t> out;
    std::stringstream ss(meta_need(m, key, path));
    for (std::string item; std::getline(ss, item, ',');) {
        try {
            size_t used = 0;
            out.push_back(std::stoll(item, &used));
            if (used != item.size()) throw std::invalid_argument(item);
        } catch (const std::exception&) {
            fail(path, ": metadata '", key, "' is not a comma-separated list of integers");
        }
    }
    return out;
}

std::string meta_or(const Metadata& m, const std::string& key, const std::string& fallback) {
    auto it = m.find(key);
    return it == m.end() ? fallback : it->second;
}

int64_t meta_int_or(const Metadata& m, const std::string& key, int64_t fallback, const std::string& path) {
    return m.count(key) ? meta_int(m, key, path) : fallback;
}

}  // namespace td::diffusion
