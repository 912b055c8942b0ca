// tests/fuzz/fuzz_cli.cpp: the command-line parser (tools/args.h parse), with argv made
// from the input: arguments separated by NUL bytes, like /proc/PID/cmdline. Any
// problem must be an ArgError (the CLI's exit code 2), never a crash.
// Seeds: tests/fuzz/corpus/cli/ (command lines of diffuse train ddpm and sample).
#include <vector>

#include "tests/fuzz/fuzz.h"
#include "tools/args.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::vector<std::string> words(1, "diffuse");
    std::string word;
    for (size_t i = 0; i < size; ++i) {
        if (data[i] == 0) {
            words.push_back(word);
            word.clear();
        } else {
            word += (char)data[i];
        }
    }
    words.push_back(word);
    std::vector<char*> argv;
    for (std::string& w : words) argv.push_back(w.data());

    td::cli::Args args("fuzz", "a few options of each kind");
    args.option("out", "", "a file");
    args.option("n", "64", "an integer");
    args.option("eta", "0", "a number");
    args.option("steps", "50", "an integer");
    args.flag("raw", "a switch");
    args.flag("no-clip", "a switch");
    try {
        if (!args.parse((int)argv.size(), argv.data(), 1)) {
            args.help();
            return 0;
        }
        args.str("out");
        args.on("raw");
        args.on("no-clip");
        for (const char* n : {"n", "steps"}) {
            try {
                args.integer(n);
            } catch (const td::cli::ArgError&) {}
        }
        try {
            args.number("eta");
        } catch (const td::cli::ArgError&) {}
        args.to_config({"out", "n", "eta", "steps", "raw", "no-clip"});
    } catch (const td::cli::ArgError&) {
        // a usage error: the CLI prints it and exits 2
    }
    return 0;
}
