// tests/test_reproduce.cpp: `make reproduce` in miniature, so the pipeline behind
// docs/reproductions.md cannot rot while nobody runs the full hour: every table trained and
// measured with tiny models on a made-up data set, the page rendered complete, a second call
// retraining nothing; and the renderer refusing a page with a measurement missing.
// Run: build/run_tests -tc="reproduce:*"
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <sys/wait.h>

#include "tests/helpers.h"
#include "tests/synthetic_data.h"

namespace {

struct Shell {
    int code;
    std::string output;
};

// Runs a shell command from the repository root; stdout and stderr together.
Shell shell(const std::string& command) {
    std::string out = tdtest::scratch("reproduce_output.txt");
    int status = std::system((command + " > " + out + " 2>&1").c_str());
    std::ifstream f(out);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, std::string((std::istreambuf_iterator<char>(f)), {})};
}

std::string read(const std::string& path) {
    std::ifstream f(path);
    return std::string((std::istreambuf_iterator<char>(f)), {});
}

void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// The build folder of this test binary (build/, build-sanitize/, ...): the tools beside it.
std::string build_dir() { return std::filesystem::read_symlink("/proc/self/exe").parent_path().string(); }

}  // namespace

TEST_CASE("reproduce: every table runs end to end in miniature and the page has every measurement" *
          doctest::test_suite("long")) {
    std::string data = tdtest::scratch("reproduce_bars"), out = tdtest::scratch("reproduce_mini");
    std::filesystem::remove_all(out);
    std::filesystem::create_directories(data);
    tdtest::write_bars(data, "train", 256);
    tdtest::write_bars(data, "test", 64);
    std::string page = out + "/reproductions.md";
    std::string env = "MINI=1 OUT=" + out + " PAGE=" + page + " DATA=" + data + " BUILD=" + build_dir() + " ";

    Shell first = shell(env + "bash reproduce/reproduce.sh");
    INFO(first.output);
    REQUIRE(first.code == 0);
    std::string text = read(page);
    CHECK(text.find("{{") == std::string::npos);
    CHECK(text.find("miniature") != std::string::npos);  // the page says what kind of run it holds
    CHECK(text.find("| eta = 0 | ") != std::string::npos);
    for (const char* picture : {"ddim-consistency.png", "ddim-interpolation.png", "cfg-sweep.png"})
        CHECK_MESSAGE(std::filesystem::file_size(out + "/reproductions/" + picture) > 100, picture);

    // a second call, of one table: nothing is trained again, the table is measured again
    Shell again = shell(env + "bash reproduce/reproduce.sh ddpm");
    INFO(again.output);
    REQUIRE(again.code == 0);
    CHECK(again.output.find("x0-linear: trained already") != std::string::npos);
    CHECK(again.output.find("reproduce: training") == std::string::npos);

    // the real template with one measurement taken away: no page, and the key is named
    std::string measured = out + "/measurements/ddpm.txt", kept = read(measured);
    std::string without;
    std::istringstream lines(kept);
    for (std::string line; std::getline(lines, line);)
        if (line.rfind("ddpm_v_fid ", 0) != 0) without += line + "\n";
    REQUIRE(without.size() < kept.size());
    write(measured, without);
    std::string other = out + "/other.md";
    Shell render =
        shell("bash reproduce/render.sh reproduce/reproductions.md.in " + other + " " + out + "/measurements/*.txt");
    CHECK(render.code == 1);
    CHECK(render.output.find("no measurement for \"ddpm_v_fid\"") != std::string::npos);
    CHECK_FALSE(std::filesystem::exists(other));

    // a table never measured: the tables asked for are measured, the page is not written
    std::filesystem::remove(out + "/measurements/cfg.txt");
    std::filesystem::remove(page);
    Shell partial = shell(env + "bash reproduce/reproduce.sh judge");
    CHECK(partial.code == 1);
    CHECK(partial.output.find("never measured in " + out + ": cfg") != std::string::npos);
    CHECK(std::filesystem::exists(out + "/measurements/judge.txt"));
    CHECK_FALSE(std::filesystem::exists(page));

    // an unknown table is a usage error
    Shell unknown = shell(env + "bash reproduce/reproduce.sh nosuchtable");
    CHECK(unknown.code == 2);
    CHECK(unknown.output.find("unknown TABLE=nosuchtable") != std::string::npos);
}

TEST_CASE("reproduce: the renderer fills values and comparisons, and keeps the old page when a key is missing") {
    std::string dir = tdtest::scratch("reproduce_render");
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    write(dir + "/page.md.in",
          "FID {{a_fid}} vs {{b_fid}}: a {{a_fid < b_fid ? wins : loses}}, {{b_fid > 3 ? b above 3 : b at most 3}}\n");
    write(dir + "/m.txt", "a_fid 12.5\nb_fid 2.0\nmachine Some CPU @ 2 GHz\n");
    Shell ok = shell("bash reproduce/render.sh " + dir + "/page.md.in " + dir + "/page.md " + dir + "/m.txt");
    INFO(ok.output);
    REQUIRE(ok.code == 0);
    CHECK(read(dir + "/page.md") == "FID 12.5 vs 2.0: a loses, b at most 3\n");

    write(dir + "/page.md.in", "line one\n{{machine}} and {{c_fid}} and {{d_rec}}\n");
    Shell missing = shell("bash reproduce/render.sh " + dir + "/page.md.in " + dir + "/page.md " + dir + "/m.txt");
    CHECK(missing.code == 1);
    CHECK(missing.output.find("page.md.in:2: no measurement for \"c_fid\"") != std::string::npos);
    CHECK(missing.output.find("no measurement for \"d_rec\"") != std::string::npos);
    CHECK(read(dir + "/page.md") == "FID 12.5 vs 2.0: a loses, b at most 3\n");  // the old page stays
    CHECK_FALSE(std::filesystem::exists(dir + "/page.md.tmp"));

    Shell usage = shell("bash reproduce/render.sh " + dir + "/page.md.in");
    CHECK(usage.code == 2);
    Shell absent = shell("bash reproduce/render.sh " + dir + "/page.md.in " + dir + "/page.md " + dir + "/nothing.txt");
    CHECK(absent.code == 2);
    CHECK(absent.output.find("nothing.txt: no such file") != std::string::npos);
}
