// tests/fuzz/fuzz_config.cpp: the config file parser (tools/args.h apply_config), then
// every value read back as the commands read them (integer, number, switch). A bad line
// must be a td::Error naming the file and the line ("fuzz.cfg:3: ..."); a bad value an
// ArgError naming the option.
// Seeds: tests/fuzz/corpus/config/ (configs/*.cfg-like files); keys in config.dict.
#include "tests/fuzz/fuzz.h"
#include "tools/args.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    td::cli::Args args("fuzz", "a few options of each kind, like diffuse train ddpm's");
    args.option("config", "", "a config file");
    args.option("data", "mnist", "a name or a folder");
    args.option("ch", "32", "an integer");
    args.option("mults", "1,2,2", "a list");
    args.option("lr", "2e-4", "a number");
    args.option("steps", "0", "an integer");
    args.flag("flip", "a switch");
    args.flag("resume", "a switch");
    // a flag given on the command line, which the file must not override
    char prog[] = "fuzz", flag[] = "--ch=8";
    char* argv[] = {prog, flag};
    args.parse(2, argv, 1);

    fuzz::run_parser("fuzz.cfg", [&] {
        args.apply_config_text(std::string(reinterpret_cast<const char*>(data), size), "fuzz.cfg");
        fuzz::expect(args.integer("ch") == 8, "the config file overrode a flag");
        for (const char* n : {"ch", "steps"}) {
            try {
                args.integer(n);
            } catch (const td::cli::ArgError&) {}
        }
        try {
            args.number("lr");
        } catch (const td::cli::ArgError&) {}
        args.on("flip");
        args.on("resume");
        args.to_config({"data", "ch", "mults", "lr", "steps", "flip", "resume"});
    });
    return 0;
}
