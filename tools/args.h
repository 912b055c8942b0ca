// tools/args.h: the command-line parser behind every `diffuse` subcommand.
//
// A subcommand declares its options (name, default, help); parse() fills them from
// argv and throws ArgError on an unknown flag, a missing value or a value that is not
// a number. The CLI turns ArgError into a message and exit code 2.
#pragma once
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

namespace td::cli {

struct ArgError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

class Args {
public:
    Args(std::string usage, std::string summary) : usage_(std::move(usage)), summary_(std::move(summary)) {}

    // Declares --name VALUE (with a default) or a --name switch.
    void option(const std::string& name, const std::string& default_value, const std::string& help);
    void flag(const std::string& name, const std::string& help);

    // Parses argv[first..]; returns false when --help was asked (help() says what to print).
    bool parse(int argc, char** argv, int first);

    std::string str(const std::string& name) const;
    int64_t integer(const std::string& name) const;  // throws ArgError naming the flag if not an integer
    double number(const std::string& name) const;
    bool on(const std::string& name) const;
    bool given(const std::string& name) const { return values_.count(name) > 0; }  // set by a flag or the config
    std::string help() const;

    // Fills options from a config file of `key = value` lines ('#' starts a comment; keys
    // are the long option names without the dashes; a switch takes true / false). Values
    // already given on the command line win: flags override the file. An unknown key or
    // a malformed line throws td::Error naming the file and the line.
    void apply_config(const std::string& path);
    // The current values of `names` as such a file (a run folder's config.txt).
    std::string to_config(const std::vector<std::string>& names) const;

private:
    struct Spec {
        std::string default_value, help;
        bool is_flag = false;
    };
    std::string usage_, summary_;
    std::vector<std::string> order_;
    std::map<std::string, Spec> specs_;
    std::map<std::string, std::string> values_;
    const Spec& spec(const std::string& name) const;
};

}  // namespace td::cli
