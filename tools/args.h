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
    std::string help() const;

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
