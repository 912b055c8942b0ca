// tests/test_gdb.cpp: the gdb pretty-printers (tools/gdb/tinydiffusion.py). Runs gdb in
// batch mode on gdb_example (built beside this test binary by `make test`), stops on the
// line marked "gdb: break here" in tests/gdb_example.cpp and checks what `print` shows.
// Without gdb on the machine it says SKIPPED and passes (scripts/install-deps.sh
// installs gdb).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/helpers.h"

namespace {

std::string read_file(const std::string& path) {
    std::ifstream f(path);
    return std::string((std::istreambuf_iterator<char>(f)), {});
}

// The 1-based line of tests/gdb_example.cpp holding `marker`; 0 when absent.
int line_of(const std::string& path, const std::string& marker) {
    std::ifstream f(path);
    std::string line;
    for (int n = 1; std::getline(f, line); ++n)
        if (line.find(marker) != std::string::npos) return n;
    return 0;
}

// The text between the line starting "$<n> = " and the next "$<n+1> = " (or the end).
std::string printed(const std::string& out, int n) {
    std::string start = "$", next = "$";  // built with += : GCC 12 -O3 warns (-Wrestrict) on "$" + s
    start += std::to_string(n) + " = ";
    next += std::to_string(n + 1) + " = ";
    size_t a = out.find(start);
    if (a == std::string::npos) return "";
    size_t b = out.find(next, a);
    return out.substr(a, b == std::string::npos ? std::string::npos : b - a);
}

}  // namespace

TEST_CASE("gdb pretty-printers show tensors and modules") {
    if (std::system("command -v gdb > /dev/null 2>&1") != 0) {
        MESSAGE("SKIPPED: gdb not found");
        return;
    }
    std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
    std::string example = (self.parent_path() / "gdb_example").string();
    REQUIRE_MESSAGE(std::filesystem::exists(example), example << " is missing: `make test` builds it");
    int line = line_of("tests/gdb_example.cpp", "gdb: break here");
    REQUIRE(line > 0);

    std::string out = tdtest::scratch("gdb_test_output.txt");
    // detect_leaks=0: LeakSanitizer refuses to run under ptrace (build-sanitize/).
    std::string cmd = "ASAN_OPTIONS=detect_leaks=0 gdb -batch -nx -x tools/gdb/gdbinit -ex 'break gdb_example.cpp:" +
                      std::to_string(line) +
                      "' -ex run -ex 'print x' -ex 'print xt' -ex 'print w' -ex 'print y' -ex 'print idx' "
                      "-ex 'print none' -ex 'print lin' -ex 'print seq' -ex 'print *x.impl_._M_ptr' " +
                      example + " > " + out + " 2>&1";
    int status = std::system(cmd.c_str());
    std::string text = read_file(out);
    INFO("gdb output:\n" << text);
    CHECK(status == 0);

    std::string x = printed(text, 1), xt = printed(text, 2), w = printed(text, 3), y = printed(text, 4);
    std::string idx = printed(text, 5), none = printed(text, 6), lin = printed(text, 7), seq = printed(text, 8);
    std::string impl = printed(text, 9);
    using tdtest::contains;

    // x: a fresh (2, 3) float tensor
    for (const char* part : {"td::Tensor", "float32", "cpu", "shape=[2, 3]", "strides=[3, 1]", "offset=0", "not-a-view",
                             "requires_grad=false", "grad=none", "grad_fn=none", "values=[1, 2, 3, 4, 5, 6]"})
        CHECK_MESSAGE(contains(x, part), "print x lacks '" << part << "'");
    // xt: its transpose, a view walked in row-major order through the strides
    for (const char* part : {"shape=[3, 2]", "strides=[1, 3]", " view ", "values=[1, 4, 2, 5, 3, 6]"})
        CHECK_MESSAGE(contains(xt, part), "print xt lacks '" << part << "'");
    CHECK(!contains(xt, "not-a-view"));
    // w requires grad; y = mul(w, 2) carries the node's name
    CHECK(contains(w, "requires_grad=true"));
    CHECK(contains(w, "values=[0.5, -1.5, 2.5]"));
    CHECK(contains(y, "grad_fn=mul"));
    CHECK(contains(y, "values=[1, -3, 5]"));
    // int64, undefined
    CHECK(contains(idx, "int64"));
    CHECK(contains(idx, "values=[7, 8, 9]"));
    CHECK(contains(none, "undefined"));
    // modules: dotted names and shapes [out, in]
    CHECK(contains(lin, "td::nn::Linear"));
    CHECK(contains(lin, "weight"));
    CHECK(contains(lin, "shape=[3, 4]"));
    CHECK(contains(lin, "bias"));
    CHECK(contains(seq, "td::nn::Sequential"));
    CHECK(contains(seq, "0.weight"));
    CHECK(contains(seq, "1.weight"));
    CHECK(contains(seq, "shape=[2, 8]"));
    CHECK(!contains(seq, "1.bias"));
    // the TensorImpl behind a handle prints the same way
    CHECK(contains(impl, "values=[1, 2, 3, 4, 5, 6]"));
    std::remove(out.c_str());
}
