// tools/args.cpp: see args.h.
#include "tools/args.h"

#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "tensor/error.h"

namespace td::cli {

void Args::option(const std::string& name, const std::string& default_value, const std::string& help) {
    order_.push_back(name);
    specs_[name] = {default_value, help, false};
}

void Args::flag(const std::string& name, const std::string& help) {
    order_.push_back(name);
    specs_[name] = {"", help, true};
}

const Args::Spec& Args::spec(const std::string& name) const {
    auto it = specs_.find(name);
    if (it == specs_.end()) throw ArgError("internal: option --" + name + " was never declared");
    return it->second;
}

bool Args::parse(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") return false;
        if (a.rfind("--", 0) != 0) throw ArgError("unexpected argument '" + a + "'");
        size_t eq = a.find('=');
        bool has_inline = eq != std::string::npos;
        std::string name = has_inline ? a.substr(2, eq - 2) : a.substr(2);
        std::string value = has_inline ? a.substr(eq + 1) : "";
        auto it = specs_.find(name);
        if (it == specs_.end()) throw ArgError("unknown option --" + name);
        if (it->second.is_flag) {
            if (has_inline) throw ArgError("--" + name + " takes no value");
            values_.insert_or_assign(name, std::string(1, '1'));  // (not = "1": GCC 12 -Wrestrict false positive)
            continue;
        }
        if (!has_inline) {
            if (i + 1 >= argc) throw ArgError("--" + name + " needs a value");
            value = argv[++i];
        }
        values_[name] = value;
    }
    return true;
}

std::string Args::str(const std::string& name) const {
    const Spec& s = spec(name);
    auto it = values_.find(name);
    return it != values_.end() ? it->second : s.default_value;
}

int64_t Args::integer(const std::string& name) const {
    std::string v = str(name);
    errno = 0;
    char* end = nullptr;
    long long x = std::strtoll(v.c_str(), &end, 10);
    if (v.empty() || *end != '\0' || errno == ERANGE) throw ArgError("--" + name + " expects an integer, got '" + v + "'");
    return x;
}

double Args::number(const std::string& name) const {
    std::string v = str(name);
    errno = 0;
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || errno == ERANGE) throw ArgError("--" + name + " expects a number, got '" + v + "'");
    return x;
}

bool Args::on(const std::string& name) const {
    spec(name);
    auto it = values_.find(name);
    return it != values_.end() && it->second != "0";
}

namespace {

std::string trim(const std::string& s) {
    size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

}  // namespace

void Args::apply_config(const std::string& path) {
    std::ifstream f(path);
    check(f.good(), path, ": cannot open the config file");
    std::string line;
    for (int lineno = 1; std::getline(f, line); ++lineno) {
        std::string body = trim(line.substr(0, line.find('#')));
        if (body.empty()) continue;
        size_t eq = body.find('=');
        check(eq != std::string::npos, path, ":", lineno, ": expected `key = value`, got '", body, "'");
        std::string key = trim(body.substr(0, eq)), value = trim(body.substr(eq + 1));
        if (key.rfind("--", 0) == 0) key = key.substr(2);
        auto it = specs_.find(key);
        check(it != specs_.end() && key != "config", path, ":", lineno, ": unknown key '", key, "'");
        if (values_.count(key)) continue;  // the command line wins
        if (it->second.is_flag) {
            check(value == "true" || value == "false", path, ":", lineno, ": '", key, "' is a switch: true or false, got '",
                  value, "'");
            // "false" is recorded too: given() then says the file decided, on() says no
            values_.insert_or_assign(key, std::string(1, value == "true" ? '1' : '0'));
            continue;
        }
        check(!value.empty(), path, ":", lineno, ": '", key, "' has no value");
        values_[key] = value;
    }
}

std::string Args::to_config(const std::vector<std::string>& names) const {
    std::ostringstream os;
    for (const std::string& n : names) {
        const Spec& s = spec(n);
        os << n << " = " << (s.is_flag ? (on(n) ? "true" : "false") : str(n)) << "\n";
    }
    return os.str();
}

std::string Args::help() const {
    std::ostringstream os;
    os << "usage: " << usage_ << "\n\n" << summary_ << "\n\noptions:\n";
    for (const std::string& n : order_) {
        const Spec& s = specs_.at(n);
        std::string left = "  --" + n + (s.is_flag ? "" : " VALUE");
        os << left << std::string(left.size() < 26 ? 26 - left.size() : 1, ' ') << s.help;
        if (!s.is_flag && !s.default_value.empty()) os << " (default: " << s.default_value << ")";
        os << "\n";
    }
    os << "  --help                  this text\n";
    return os.str();
}

}  // namespace td::cli
