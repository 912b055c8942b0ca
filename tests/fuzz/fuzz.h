// tests/fuzz/fuzz.h: what every fuzz target shares.
//
// A fuzz target is one function, LLVMFuzzerTestOneInput(data, size), that libFuzzer
// calls millions of times with byte strings it mutates from the seed files in
// tests/fuzz/corpus/<target>/, keeping those that reach new code. Our parsers may (and
// mostly will) reject such bytes, but only in one way: a td::Error whose message names
// the file. Anything else is a bug that makes the fuzzer stop and save the input:
//   - a crash, an out-of-bounds read or write, a use after free (AddressSanitizer),
//   - undefined behaviour: signed overflow, a shift too far, a null memcpy (UBSan),
//   - a leak (LeakSanitizer), a hang (-timeout), an allocation over -malloc_limit_mb
//     (a header's claim trusted before it was checked against the input's size),
//   - any other exception escaping (std::out_of_range, std::bad_alloc, ...),
//   - a td::Error that does not name the file, or a result that contradicts itself
//     (the checks below, which abort() so that libFuzzer reports them like a crash).
// `make fuzz` builds and runs every target (the Makefile's fuzz section says how).
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tensor/error.h"

namespace fuzz {

// Stops the run like a crash would, saying which property broke.
[[noreturn]] inline void broken(const std::string& what) {
    std::fprintf(stderr, "fuzz target: property broken: %s\n", what.c_str());
    std::abort();
}

inline void expect(bool ok, const std::string& what) {
    if (!ok) broken(what);
}

// The parser's verdict on one input: fine, or a td::Error that must name the file.
template <typename Fn>
void run_parser(const std::string& name, Fn&& parse) {
    try {
        parse();
    } catch (const td::Error& e) {
        std::string msg = e.what();
        expect(msg.find(name) != std::string::npos, "the error does not name the file '" + name + "': " + msg);
    }
}

}  // namespace fuzz
