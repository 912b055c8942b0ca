// tools/args.cpp: see args.h.
#include "tools/args.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "tensor/error.h"
#include "tensor/file_bytes.h"

namespace td::cli {

void Args::declare(const std::string& name, const Spec& spec) {
    order_.push_back(name);
    specs_[name] = spec;
}

void Args::option(const std::string& name, const std::string& default_value, const std::string& help) {
    declare(name, {default_value, help, false});
}
void Args::flag(const std::string& name, const std::string& help) { declare(name, {"", help, true}); }
void Args::optional_value(const std::string& name, const std::string& help) { declare(name, {"", help, false, true}); }

bool Args::parse_or_help(int argc, char** argv, int first) {
    if (parse(argc, argv, first)) return true;
    std::printf("%s", help().c_str());
    return false;
}

const Args::Spec& Args::spec(const std::string& name) const {
    auto it = specs_.find(name);
    if (it == specs_.end()) throw ArgError("internal: option --" + name + " was never declared");
    return it->second;
}

// A switch named "no-..." (--no-clip) has no --no-no-... form.
bool Args::negatable(const std::string& name) const {
    auto it = specs_.find(name);
    return it != specs_.end() && it->second.is_flag && name.rfind("no-", 0) != 0;
}

bool Args::parse(int argc, char** argv, int first) {
    for (int i = first; i < argc; ++i) {
        std::string a = argv[i];
        if (a == "--help" || a == "-h") return false;
        // `--` ends the options, as in every Unix tool. No command takes other arguments, so
        // anything after it is reported, not silently read as an option.
        if (a == "--") {
            if (i + 1 < argc)
                throw ArgError("unexpected argument '" + printable(argv[i + 1]) +
                               "' after `--` (no command takes any)");
            break;
        }
        if (a.rfind("--", 0) != 0) throw ArgError("unexpected argument '" + printable(a) + "'");
        size_t eq = a.find('=');
        bool has_inline = eq != std::string::npos;
        std::string name = has_inline ? a.substr(2, eq - 2) : a.substr(2);
        std::string value = has_inline ? a.substr(eq + 1) : "";
        // --no-X turns the switch --X off, also when a config file or an earlier flag set it.
        bool negated = !specs_.count(name) && name.rfind("no-", 0) == 0 && negatable(name.substr(3));
        if (negated) name = name.substr(3);
        auto it = specs_.find(name);
        if (it == specs_.end()) throw ArgError("unknown option --" + printable(name));
        if (it->second.is_flag) {
            if (has_inline) throw ArgError("--" + std::string(negated ? "no-" : "") + name + " takes no value");
            // (not = "1": GCC 12 -Wrestrict false positive)
            values_.insert_or_assign(name, std::string(1, negated ? '0' : '1'));
            origin_.erase(name);
            continue;
        }
        bool bare = i + 1 >= argc || std::string(argv[i + 1]).rfind("--", 0) == 0;
        if (!has_inline && !(bare && it->second.value_optional)) {
            if (i + 1 >= argc) throw ArgError("--" + name + " needs a value");
            value = argv[++i];
        }
        values_[name] = value;
        origin_.erase(name);  // (a flag given after apply_config: its value is the flag's now)
    }
    return true;
}

std::string Args::from(const std::string& name) const {
    auto it = origin_.find(name);
    return it == origin_.end() ? "" : " (from " + it->second + ")";
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
    if (v.empty() || *end != '\0' || errno == ERANGE)
        throw ArgError("--" + name + " expects an integer, got '" + printable(v) + "'" + from(name));
    return x;
}

double Args::number(const std::string& name) const {
    std::string v = str(name);
    errno = 0;
    char* end = nullptr;
    double x = std::strtod(v.c_str(), &end);
    // (strtod also reads "nan" and "inf": no setting of ours means either)
    if (v.empty() || *end != '\0' || errno == ERANGE || !std::isfinite(x))
        throw ArgError("--" + name + " expects a number, got '" + printable(v) + "'" + from(name));
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

// A config file is a few hundred bytes; a large one is some other file given by mistake.
static const uintmax_t kMaxConfigBytes = 1 << 20;

void Args::apply_config(const std::string& path) {
    std::error_code ec;
    uintmax_t size = std::filesystem::file_size(path, ec);
    check(!ec, path, ": cannot open the config file (", ec.message(), ")");
    check(size <= kMaxConfigBytes, path, ": ", size, " bytes is too large for a config file (is it one?)");
    std::vector<uint8_t> bytes = read_file_bytes(path);
    apply_config_text(std::string(bytes.begin(), bytes.end()), path);
}

// (`path` is whatever name the caller gave the text: the file's path for apply_config.)
// Messages quote the file's text through printable(): a garbage line shows as \xNN
// escapes, never as raw bytes sent to the terminal.
void Args::apply_config_text(const std::string& text, const std::string& path) {
    std::istringstream f(text);
    std::string line;
    for (int lineno = 1; std::getline(f, line); ++lineno) {
        if (lineno == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line = line.substr(3);  // a UTF-8 byte order mark
        check(line.find('\0') == std::string::npos, path, ":", lineno,
              ": binary data (a NUL byte): is this a config file of `key = value` lines?");
        std::string body = trim(line.substr(0, line.find('#')));
        if (body.empty()) continue;
        size_t eq = body.find('=');
        check(eq != std::string::npos, path, ":", lineno, ": expected `key = value`, got '", printable(body), "'");
        std::string key = trim(body.substr(0, eq)), value = trim(body.substr(eq + 1));
        if (key.rfind("--", 0) == 0) key = key.substr(2);
        auto it = specs_.find(key);
        check(it != specs_.end() && key != "config", path, ":", lineno, ": unknown key '", printable(key), "'");
        if (values_.count(key)) continue;  // the command line wins
        origin_[key] = path + ":" + std::to_string(lineno);
        if (it->second.is_flag) {
            check(value == "true" || value == "false", path, ":", lineno, ": '", key,
                  "' is a switch: true or false, got '", printable(value), "'");
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
        std::string help = s.help;  // a help of several lines: each under the first
        for (size_t at = help.find('\n'); at != std::string::npos; at = help.find('\n', at + 1))
            help.insert(at + 1, std::string(26, ' '));
        os << left << std::string(left.size() < 26 ? 26 - left.size() : 1, ' ') << help;
        if (!s.is_flag && !s.default_value.empty()) os << " (default: " << s.default_value << ")";
        os << "\n";
    }
    os << "  --help                  this text\n";
    bool any_switch = false;
    for (const std::string& n : order_) any_switch = any_switch || negatable(n);
    // (worded without a literal flag: docs/cli.md's test takes every flag in --help for one to document)
    if (any_switch)
        os << "\nA switch (an option without VALUE) is turned off by 'no-' before its name; that also\n"
              "overrides a config file's `name = true`.\n";
    return os.str();
}

}  // namespace td::cli
