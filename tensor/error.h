// tensor/error.h: the one exception type of the engine.
//
// Every misuse a user can trigger (a shape mismatch, an index out of range, a bad
// file) throws td::Error with a message that names the op and the shapes involved.
// We never assert-abort on user input: the CLI catches td::Error, prints it and
// exits non-zero, and a test can CHECK_THROWS on it.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace td {

struct Error : std::runtime_error {
    explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

// A shape prints as "[2, 3, 4]", so check() takes one as it is: check(ok, "view: shape ",
// x.shape()). The text is then built only when the check fails; shape_str() in every
// check's arguments cost about 5% of a small training step in string formatting.
std::ostream& operator<<(std::ostream& os, const std::vector<int64_t>& shape);

// Builds a message from any streamable pieces: fail("add: shapes ", a, " and ", b).
template <typename... Parts>
[[noreturn]] void fail(const Parts&... parts) {
    std::ostringstream os;
    (os << ... << parts);
    throw Error(os.str());
}

// check(cond, "op: what is wrong", ...): a plain function, so a breakpoint on the
// throw inside fail() catches every error the engine raises.
template <typename... Parts>
void check(bool cond, const Parts&... parts) {
    if (!cond) fail(parts...);
}

}  // namespace td
