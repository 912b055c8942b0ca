// tests/test_assignments.cpp: the course assignments (docs/assignments.md).
//
// For each assignment of scripts/assignments.txt, scripts/make-assignment.sh writes two
// copies of the tree under <build>/assignment-test/: the student's (its regions replaced
// by their stubs) and the reference (solutions kept, markers removed). Each copy gets this
// build's objects and test runner, timestamps kept, so make recompiles only the files the
// copy changed (the stubbed ones, and those that lost a HIDE region) and relinks; then the
// copy's own grade.sh runs the graded parts. The stub must score 0 of every part, with the
// stub's "not implemented yet", the solution full marks; and no fingerprint of the solution
// (scripts/assignments.txt) may appear anywhere in the student copy but its hints.md.
// Under SANITIZE=1 one assignment goes end to end (the test says which), the others get the
// marker checks only. One assignment alone: -sc=NAME.
//
// Then the script itself: the list (exit 2), its error messages with file:line on a small
// tree of bad markers, and what a stub and a stripped region look like. Last, a grading test
// of attention-backward: the fused op's gradients against finite differences.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>

#include "tests/helpers.h"

namespace fs = std::filesystem;
using namespace td;

namespace {

// The ones every copy of the course must offer; scripts/assignments.txt may list more.
const std::vector<std::string> kRequired = {
    "groupnorm-backward", "attention-backward", "cosine-schedule", "ddim-step",          "cfg",
    "tiled-gemm",         "q-sample",           "ancestral-step",  "timestep-embedding", "vae-loss"};

struct Run {
    int code;
    std::string output;
};

// Runs a shell command from the repository root, stdout and stderr into one string. The
// make of `make test` leaves its jobserver in MAKEFLAGS; a make started here must not use it.
Run shell(const std::string& cmd) {
    REQUIRE_MESSAGE(cmd.find('\'') == std::string::npos, "shell(): no single quotes in " << cmd);
    std::string log = tdtest::scratch("assignment_command.txt");
    std::string full =
        "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u GNUMAKEFLAGS bash -c '" + cmd + "' > " + log + " 2>&1";
    int status = std::system(full.c_str());
    std::ifstream f(log);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

std::string tail(const std::string& s, size_t n = 3000) { return s.size() > n ? "..." + s.substr(s.size() - n) : s; }

void write_file(const fs::path& p, const std::string& text) {
    fs::create_directories(p.parent_path());
    std::ofstream(p) << text;
}

// The names in scripts/assignments.txt, in order.
std::vector<std::string> assignment_names() {
    std::vector<std::string> names;
    std::ifstream in("scripts/assignments.txt");
    for (std::string line; std::getline(in, line);)
        if (line.rfind("name: ", 0) == 0) names.push_back(line.substr(6));
    return names;
}

// The values of one key of one assignment in scripts/assignments.txt ("fingerprint", "part").
std::vector<std::string> assignment_key(const std::string& name, const std::string& key) {
    std::vector<std::string> values;
    std::ifstream in("scripts/assignments.txt");
    std::string current;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("name: ", 0) == 0) current = line.substr(6);
        else if (current == name && line.rfind(key + ": ", 0) == 0) values.push_back(line.substr(key.size() + 2));
    }
    return values;
}

// The points of an assignment: the sum over its parts (the first field of each).
int total_points(const std::string& name) {
    int total = 0;
    for (const std::string& part : assignment_key(name, "part")) total += std::atoi(part.c_str());
    return total;
}

// The files under `dir` (not its build folders, runs/, data/ or .git, not hints.md) that
// contain `text`, one a line.
std::string files_containing(const fs::path& dir, const std::string& text) {
    std::string found;
    for (auto it = fs::recursive_directory_iterator(dir); it != fs::recursive_directory_iterator(); ++it) {
        const std::string base = it->path().filename().string();
        if (it->is_directory() &&
            (base == "build" || base.rfind("build-", 0) == 0 || base == "runs" || base == "data" || base == ".git")) {
            it.disable_recursion_pending();
            continue;
        }
        if (it->is_symlink() || !it->is_regular_file() || base == "hints.md" || base == ".git") continue;
        if (tdtest::read_file(it->path()).find(text) != std::string::npos) found += it->path().string() + "\n";
    }
    return found;
}

// This binary's build folder, relative to the repository root (build, build-sanitize, ...),
// and the make switches that built it, so make in a copy uses the same flags.
std::string build_dir() {
    return fs::relative(fs::read_symlink("/proc/self/exe").parent_path(), fs::current_path()).string();
}
std::string make_switches() {
    std::string s = "BUILD=" + build_dir();
#if defined(__SANITIZE_ADDRESS__)
    s += " SANITIZE=1";
#endif
#if !defined(__OPTIMIZE__)
    s += " DEBUG=1";
#if defined(_OPENMP)
    s += " OMP=1";
#endif
#endif
    if (build_dir() == "build-portable") s += " PORTABLE=1";
    return s;
}

// Writes the copy (stub or reference) of one assignment, seeds it with this build's
// objects and library (cp -a: timestamps kept), and runs its grade.sh.
Run make_and_grade(const std::string& name, bool solution, const fs::path& dir) {
    const std::string b = build_dir();
    Run made = shell("bash scripts/make-assignment.sh" + std::string(solution ? " --solution" : "") + " --out " +
                     dir.string() + " " + name);
    if (made.code != 0) return {-100, "make-assignment.sh failed:\n" + made.output};
    // The library's objects: <build>/obj, and the CUDA backend's in the Makefile's CUDA_BUILD
    // (build-cuda/, shared by all builds) when nvcc built them.
    Run seeded =
        shell("mkdir -p " + (dir / b).string() + " && cp -a " + b + "/obj " + b + "/libtinydiffusion.a " + b +
              "/run_tests " + (dir / b).string() + "/ && cuda=$(sed -n \"s/^CUDA_BUILD *:= *//p\" Makefile) && " +
              "if [ -n \"$cuda\" ] && [ -d \"$cuda/obj\" ]; then cp -a \"$cuda\" " + dir.string() + "/; fi");
    if (seeded.code != 0) return {-100, "copying the objects failed:\n" + seeded.output};
    return shell("cd " + dir.string() + " && bash grade.sh " + make_switches());
}

}  // namespace

TEST_CASE("assignments: the list names the required ones, every marker is well formed") {
    if (fs::exists("ASSIGNMENT.md")) {
        MESSAGE("a student copy (ASSIGNMENT.md): the assignment machinery is checked in the course's tree only");
        return;
    }
    std::vector<std::string> names = assignment_names();
    for (const std::string& r : kRequired)
        CHECK_MESSAGE(std::find(names.begin(), names.end(), r) != names.end(), "scripts/assignments.txt lacks " << r);
    Run check = shell("bash scripts/make-assignment.sh --check");
    INFO(check.output);
    CHECK(check.code == 0);
    CHECK(tdtest::contains(check.output, std::to_string(names.size()) + " assignments"));
}

TEST_CASE("assignments: each fails on its stub and passes on its solution") {
    if (fs::exists("ASSIGNMENT.md")) {
        MESSAGE("a student copy (ASSIGNMENT.md): grade.sh grades it, this test does not");
        return;
    }
    const std::string b = build_dir();
    const bool built_by_make = fs::exists(fs::path(b) / "obj") && fs::exists(fs::path(b) / "libtinydiffusion.a");
    REQUIRE_MESSAGE(built_by_make,
                    "run from the repository root, in a build made by make (found build folder '" << b << "')");
    std::vector<std::string> names = assignment_names();
    REQUIRE(!names.empty());
    // make test builds first; a stale build still works, but every copy then recompiles the stale files
    if (shell("make -q " + make_switches() + " " + b + "/run_tests").code != 0)
        MESSAGE(b << "/ is not up to date with the sources (make -q): each copy recompiles what is stale, "
                     "which is slow; run make first");
#if defined(__SANITIZE_ADDRESS__)
    // ASan builds compile and link several times slower: one assignment end to end here,
    // every one in the optimised build (and the markers of all in the test case above).
    const std::set<std::string> end_to_end = {"cosine-schedule"};
    MESSAGE("SANITIZE build: only cosine-schedule is built and graded end to end; the optimised build grades all "
            << names.size());
#else
    const std::set<std::string> end_to_end(names.begin(), names.end());
#endif
    const fs::path root = fs::path(b) / "assignment-test";
    for (const std::string& name : names) {
        if (!end_to_end.count(name)) continue;
        SUBCASE(name.c_str()) {
            const fs::path stub_dir = root / name, solution_dir = root / (name + "-solution");
            const int total = total_points(name);
            REQUIRE_MESSAGE(total > 0, name << " has no part: in scripts/assignments.txt");
            const std::string zero = "score: 0/" + std::to_string(total),
                              full = "score: " + std::to_string(total) + "/" + std::to_string(total);
            Run stub = make_and_grade(name, false, stub_dir);
            // every part fails: each one's tests reach the stub
            // (grade.sh prints a score, not doctest's counts: a part whose filter matched no
            // test scores 0 and says so, so "full marks" means every part's tests ran and passed)
            const bool stub_fails =
                stub.code != 0 && tdtest::contains(stub.output, zero + "\ngrade: FAIL (" + name + ")");
            const bool stub_named = tdtest::contains(stub.output, "not implemented yet");
            {
                INFO("the stubbed copy " << stub_dir.string() << ", grade.sh said:\n" << tail(stub.output));
                CHECK_MESSAGE(stub_fails, "the stub did not score " << zero << " (or no part ran)");
                CHECK_MESSAGE(stub_named, "the failure does not come from the stub (no \"not implemented yet\")");
            }
            // no fingerprint of the solution in the student copy (hints.md holds the formula on purpose)
            bool sealed = true;
            for (const std::string& fp : assignment_key(name, "fingerprint")) {
                CAPTURE(fp);
                CHECK_MESSAGE(!files_containing(".", fp).empty(),
                              "the fingerprint is nowhere in the course's tree: it fingerprints nothing");
                std::string leaks = files_containing(stub_dir, fp);
                CHECK_MESSAGE(leaks.empty(), "the student copy holds the solution's fingerprint in:\n" << leaks);
                sealed = sealed && leaks.empty();
            }
            Run solved = make_and_grade(name, true, solution_dir);
            const bool solution_passes =
                solved.code == 0 && tdtest::contains(solved.output, full + "\ngrade: PASS (" + name + ")");
            {
                INFO("the reference copy " << solution_dir.string() << ", grade.sh said:\n" << tail(solved.output));
                CHECK_MESSAGE(solution_passes, "the solution did not score " << full);
            }
            // Kept when something failed, to look at; else removed (each copy holds a build).
            if (stub_fails && stub_named && solution_passes && sealed) {
                fs::remove_all(stub_dir);
                fs::remove_all(solution_dir);
            }
        }
    }
}

TEST_CASE("assignments: the script lists the names, and names file:line of a bad marker") {
    if (fs::exists("ASSIGNMENT.md")) return;  // a student copy (see above)
    std::vector<std::string> names = assignment_names();
    for (const std::string& args : {std::string(""), std::string("no-such-assignment")}) {
        Run r = shell("bash scripts/make-assignment.sh " + args);
        INFO("make-assignment.sh " << args << ":\n" << r.output);
        CHECK(r.code == 2);
        for (const std::string& n : names) CHECK(tdtest::contains(r.output, "  " + n + " "));
        if (!args.empty()) CHECK(tdtest::contains(r.output, "unknown assignment 'no-such-assignment'"));
    }

    // A small tree of its own: the list, and one source file per case.
    const fs::path tree = fs::absolute(fs::path(build_dir()) / "assignment-test" / "markers");
    fs::remove_all(tree);
    write_file(tree / "scripts/assignments.txt",
               "name: demo\ntitle: a demo\npart: 2 | the demo | demo* |\nabout: Write f.\nquestion: Why?\n"
               "hint1: Look.\nhint3: f = 42\nfingerprint: 42 + a\n");
    struct Bad {
        std::string source, where, what;
    };
    const std::vector<Bad> bad = {
        {"int f() {\n    // BEGIN SOLUTION demo\n    return 1;\n}\n", "f.cpp:2:", "has no END SOLUTION demo"},
        {"int f() {\n    return 1;\n    // END SOLUTION demo\n}\n", "f.cpp:3:", "without a BEGIN"},
        {"// BEGIN SOLUTION demo\n// BEGIN SOLUTION demo\n// END SOLUTION demo\n", "f.cpp:2:", "do not nest"},
        {"// BEGIN SOLUTION demo\nint x;\n// END SOLUTION other\n", "f.cpp:3:", "closes region SOLUTION demo"},
        {"// BEGIN HIDE demo\nint x;\n// END SOLUTION demo\n// BEGIN SOLUTION demo\n// END SOLUTION demo\n",
         "f.cpp:3:", "closes region HIDE demo"},
        {"int x;\n//BEGIN SOLUTION demo\n", "f.cpp:2:", "malformed marker"},
        {"// BEGIN SOLUTION Demo_1\n", "f.cpp:1:", "malformed marker"},
        {"// BEGIN SOLUTION demo\nint x;\n// STUB: int x = 0;\n// END SOLUTION demo\n", "f.cpp:3:", "outside the head"},
        {"// BEGIN SOLUTION other\n// END SOLUTION other\n", "f.cpp:1:", "region other is not listed"},
        {"int f();\n", "scripts/assignments.txt:1:", "assignment demo has no region"},
    };
    for (const Bad& c : bad) {
        write_file(tree / "src/f.cpp", c.source);
        Run r = shell("bash scripts/make-assignment.sh --src " + tree.string() + " demo");
        INFO("source:\n" << c.source << "said:\n" << r.output);
        CHECK(r.code == 1);
        CHECK(tdtest::contains(r.output, c.where));
        CHECK(tdtest::contains(r.output, c.what));
    }

    // A good file: the stub keeps the signature, adds the TODO and the uncommented stub; the
    // region without STUB lines gets the default stub; the reference copy keeps the solution.
    write_file(tree / "src/f.cpp",
               "// f: the answer\n"
               "int f(int a) {\n"
               "    // BEGIN SOLUTION demo: return the answer\n"
               "    // STUB: (void)a;\n"
               "    // STUB: fail(\"f: not implemented yet\");\n"
               "    return 42 + a * 0;\n"
               "    // END SOLUTION demo\n"
               "}\n"
               "void g() {\n"
               "    // BEGIN SOLUTION demo\n"
               "    h();\n"
               "    // END SOLUTION demo\n"
               "}\n");
    // a HIDE region: in the student copy its stub lines alone, in the reference its code
    write_file(tree / "src/g.cpp",
               "int g() {\n    // BEGIN HIDE demo\n    // STUB: return 0;  // left out\n"
               "    return 42;\n    // END HIDE demo\n}\n");
    Run stubbed = shell("bash scripts/make-assignment.sh --src " + tree.string() + " demo");
    INFO(stubbed.output);
    REQUIRE(stubbed.code == 0);
    std::string f = tdtest::read_file(tree / "build/assignments/demo/src/f.cpp");
    CHECK(f ==
          "// f: the answer\n"
          "int f(int a) {\n"
          "    // TODO(demo): return the answer\n"
          "    (void)a;\n"
          "    fail(\"f: not implemented yet\");\n"
          "}\n"
          "void g() {\n"
          "    // TODO(demo): write this part\n"
          "    td::fail(\"assignment demo: not implemented yet\");\n"
          "}\n");
    CHECK(tdtest::read_file(tree / "build/assignments/demo/src/g.cpp") == "int g() {\n    return 0;  // left out\n}\n");
    std::string md = tdtest::read_file(tree / "build/assignments/demo/ASSIGNMENT.md");
    CHECK(!tdtest::contains(md, "g.cpp"));  // a HIDE region is no task
    CHECK(tdtest::contains(md, "Write f."));
    CHECK(tdtest::contains(md, "`src/f.cpp:3`, in `f`"));
    CHECK(tdtest::contains(md, "## Written question\n\nWhy?"));
    CHECK(tdtest::contains(md, "| the demo | 2 |"));
    CHECK(tdtest::contains(tdtest::read_file(tree / "build/assignments/demo/grade.sh"), "'2|the demo|demo*|'"));
    std::string hints = tdtest::read_file(tree / "build/assignments/demo/hints.md");
    CHECK(tdtest::contains(hints, "## Tier 1: where to start\n\nLook."));
    CHECK(tdtest::contains(hints, "## Tier 3: the formula\n\nf = 42"));
    // the copy's list keeps no hint and no fingerprint
    std::string list = tdtest::read_file(tree / "build/assignments/demo/scripts/assignments.txt");
    CHECK(!tdtest::contains(list, "hint3:"));
    CHECK(!tdtest::contains(list, "fingerprint:"));
    CHECK(!fs::exists(tree / "build/assignments/demo/build"));  // the copy holds no build folder
    Run reference = shell("bash scripts/make-assignment.sh --solution --src " + tree.string() + " demo");
    REQUIRE(reference.code == 0);
    CHECK(tdtest::read_file(tree / "build/assignments/demo/src/f.cpp") ==
          "// f: the answer\nint f(int a) {\n    return 42 + a * 0;\n}\nvoid g() {\n    h();\n}\n");
    CHECK(tdtest::read_file(tree / "build/assignments/demo/src/g.cpp") == "int g() {\n    return 42;\n}\n");
    // --out refuses to replace a folder that is not an earlier copy
    write_file(tree / "build/precious/keep.txt", "mine");
    Run refused = shell("bash scripts/make-assignment.sh --src " + tree.string() + " --out " +
                        (tree / "build/precious").string() + " demo");
    CHECK(refused.code == 1);
    CHECK(tdtest::contains(refused.output, "not an assignment copy"));
    CHECK(fs::exists(tree / "build/precious/keep.txt"));
    fs::remove_all(tree);
}

// A grading test of attention-backward (scripts/assignments.txt): the op is one node of
// the graph, so these gradients are its hand-written backward's, not the matmuls'.
TEST_CASE("attention backward: one recorded op, gradients match finite differences") {
    Generator gen(17);
    // Multi-head with Lq != Lk and d != dv; q arrives as a permuted view, as split_heads makes it.
    Tensor q = randn({2, 4, 3, 5}, gen).requires_grad_(), k = randn({2, 3, 6, 5}, gen).requires_grad_(),
           v = randn({2, 3, 6, 2}, gen).requires_grad_();
    auto heads = [](const std::vector<Tensor>& x) {
        return scaled_dot_product_attention(x[0].permute({0, 2, 1, 3}), x[1], x[2]);  // q: (2, 3, 4, 5)
    };
    GradcheckResult g4 = gradcheck(heads, {q, k, v});
    INFO(g4.message);
    CHECK(g4.ok);
    // No batch dims at all: (Lq, d), (Lk, d), (Lk, dv)
    auto plain = [](const std::vector<Tensor>& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); };
    GradcheckResult g2 = gradcheck(plain, {randn({3, 4}, gen).requires_grad_(), randn({5, 4}, gen).requires_grad_(),
                                           randn({5, 3}, gen).requires_grad_()});
    INFO(g2.message);
    CHECK(g2.ok);

    Tensor qq = randn({2, 3, 4}, gen), kk = randn({2, 5, 4}, gen).requires_grad_(), vv = randn({2, 5, 3}, gen);
    Tensor y = scaled_dot_product_attention(qq, kk, vv);
    REQUIRE(y.grad_fn() != nullptr);
    CHECK(y.grad_fn()->name == "scaled_dot_product_attention");
    CHECK(y.grad_fn()->inputs.size() == 3);
    sum(y).backward();
    CHECK(kk.grad().defined());  // only k asked for a gradient
    CHECK(!qq.grad().defined());
    CHECK(!vv.grad().defined());
    tdtest::check_message(
        tdtest::error_of([&] {
            scaled_dot_product_attention(randn({2, 3, 4}, gen), randn({1, 5, 4}, gen), randn({1, 5, 3}, gen));
        }),
        {"attention", "same batch dims", "[2, 3, 4]", "[1, 5, 4]"});
}
