// tools/args.h: the command-line parser behind every `diffuse` subcommand.
//
// A subcommand declares its options (name, default, help); parse() fills them from
// argv and throws ArgError on an unknown flag, a missing value or a value that is not
// a number. The CLI turns ArgError into a message and exit code 2. Every switch --X also
// takes the form --no-X, and `--` ends the options (the GNU conventions people expect).
#pragma once
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "tensor/error.h"

namespace td::cli {

struct ArgError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// Runs `work` (a library check that throws td::Error: a config's validate(), ...) and turns
// its complaint into a usage error, ArgError (exit 2), `prefix` before it ("--T: ").
template <class Work>
void as_usage_error(Work work, const std::string& prefix = "") {
    try {
        work();
    } catch (const Error& e) {
        throw ArgError(prefix + e.what());
    }
}

class Args {
public:
    Args(std::string usage, std::string summary) : usage_(std::move(usage)), summary_(std::move(summary)) {}

    // Declares --name VALUE (with a default) or a --name switch (and with it --no-name).
    void option(const std::string& name, const std::string& default_value, const std::string& help);
    void flag(const std::string& name, const std::string& help);
    // Declares --name [VALUE]: given alone (the last word, or one before another option), it
    // counts as given with the value "" (`trace --graph`: the default file).
    void optional_value(const std::string& name, const std::string& help);

    // Parses argv[first..]; returns false when --help was asked (help() says what to print).
    bool parse(int argc, char** argv, int first);
    // The same for a command: prints help() to stdout when --help was asked (and returns false).
    bool parse_or_help(int argc, char** argv, int first);

    std::string str(const std::string& name) const;
    // Both throw ArgError naming the flag (and the config file's line, if the value came
    // from one) when the value is not an integer / a finite number.
    int64_t integer(const std::string& name) const;
    double number(const std::string& name) const;
    bool on(const std::string& name) const;
    // An enum's value, read by one of the library's parse_ functions (parse_sampler, ...,
    // whose td::Error lists the words): ArgError naming the flag for any other word.
    template <class Enum>
    Enum choice(const std::string& name, Enum (*parse)(const std::string&)) const {
        try {
            return parse(str(name));
        } catch (const Error& e) {
            throw ArgError("--" + name + ": " + e.what() + from(name));
        }
    }
    bool given(const std::string& name) const { return values_.count(name) > 0; }  // set by a flag or the config
    std::string help() const;

    // Fills options from a config file of `key = value` lines ('#' starts a comment; keys
    // are the long option names without the dashes; a switch takes true / false). Values
    // already given on the command line win: flags override the file. An unknown key or
    // a malformed line throws td::Error naming the file and the line ("run.cfg:3: ...").
    void apply_config(const std::string& path);
    // The same from the file's text already in memory; `name` stands for the file in
    // messages. apply_config reads the file and calls this; so does the fuzz target
    // tests/fuzz/fuzz_config.cpp.
    void apply_config_text(const std::string& text, const std::string& name);
    // The current values of `names` as such a file (a run folder's config.txt).
    std::string to_config(const std::vector<std::string>& names) const;

private:
    struct Spec {
        std::string default_value, help;
        bool is_flag = false;
        bool value_optional = false;
    };
    std::string usage_, summary_;
    std::vector<std::string> order_;
    std::map<std::string, Spec> specs_;
    std::map<std::string, std::string> values_;
    std::map<std::string, std::string> origin_;  // "run.cfg:3" for a value a config file gave
    void declare(const std::string& name, const Spec& spec);
    const Spec& spec(const std::string& name) const;
    bool negatable(const std::string& name) const;    // a switch that takes the form --no-name
    std::string from(const std::string& name) const;  // " (from run.cfg:3)", or "" for a flag's value
};

}  // namespace td::cli
