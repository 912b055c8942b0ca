// tests/main.cpp: doctest's runner, plus the closing line CI reads.
//
// doctest prints its own summary; we add one last line "N passed, N failed" counting
// test cases, the plain form every CI log reader here understands.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

namespace {

struct Totals {
    int passed = 0, failed = 0;
};
Totals g_totals;

// A listener that sees each test case end and counts it.
struct CountingListener : doctest::IReporter {
    explicit CountingListener(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats& s) override {
        g_totals.failed = (int)s.numTestCasesFailed;
        g_totals.passed = (int)s.numTestCasesPassingFilters - (int)s.numTestCasesFailed;
    }
    void test_case_start(const doctest::TestCaseData&) override {}
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {}
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};

}  // namespace

REGISTER_LISTENER("counting", 1, CountingListener);

int main(int argc, char** argv) {
    doctest::Context context;
    context.applyCommandLine(argc, argv);
    int rc = context.run();
    if (context.shouldExit()) return rc;
    std::fflush(stdout);
    std::printf("%d passed, %d failed\n", g_totals.passed, g_totals.failed);
    return rc;
}
