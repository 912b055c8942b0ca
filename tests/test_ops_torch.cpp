// tests/test_ops_torch.cpp: every op, forward and backward, against PyTorch; then the
// same ops against finite differences; then the error messages of misuse.
//
// The fixtures in tests/fixtures/<case>/ come from tests/make_fixtures.py (PyTorch,
// float64, rounded to float32 when saved). The registry below is that script's CASES
// list in C++: one lambda per case name, computing the same thing with td:: ops. For
// every case the test
//   1. loads in0.npy, in1.npy, ... and marks requires_grad on each input that has a
//      grad_in<k>.npy (the differentiable float inputs),
//   2. runs the lambda and compares with out.npy (and out1.npy: max's indices),
//   3. calls out.backward(grad_out.npy) and compares every input's .grad with grad_in<k>.npy,
//   4. runs td::gradcheck (central differences) on the same lambda and inputs.
//
// How to add an op or a case: add Case(...) to tests/make_fixtures.py, run it
// (/usr/bin/python3 tests/make_fixtures.py), and add the C++ twin under the same name
// to tdtest::op_registry() below. The "manifest and registry agree" test fails until both exist.
//
// Tolerances are float32's: the C++ side computes in float32, the reference is float64
// rounded to float32, so |got - want| <= 1e-5 + 1e-4 |want| holds for a single op with a
// few roundings. A case that needs more says why next to its entry.
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/helpers.h"
#include "tests/torch_cases.h"

namespace {

using td::Tensor;
using tdtest::Fn;
using tdtest::Inputs;
using tdtest::OpCase;

// split/chunk pieces, each times its own constant, joined again: every piece's gradient
// is then distinguishable (make_fixtures.py's pieces_scaled).
Tensor pieces_scaled(const std::vector<Tensor>& pieces, int64_t dim, const std::vector<float>& scales) {
    td::check(pieces.size() == scales.size(), "pieces_scaled: ", pieces.size(), " pieces but ", scales.size(),
              " scales");
    std::vector<Tensor> scaled;
    for (size_t i = 0; i < pieces.size(); ++i) scaled.push_back(pieces[i] * scales[i]);
    return td::cat(scaled, dim);
}

// softmax along dim, the numerically safe way (max subtracted), from basic ops.
Tensor softmax_manual(const Tensor& x, int64_t dim) {
    Tensor e = td::exp(x - td::max(x, dim, /*keepdim=*/true).values);
    return e / td::sum(e, {dim}, /*keepdim=*/true);
}

constexpr int64_t kEnd = std::numeric_limits<int64_t>::max();  // Python's x[a::s]

// The C++ twin of CASES in tests/make_fixtures.py, in the same order.
// Added to the shared registry (tests/torch_cases.h) at start-up.
const bool kRegistered = [] {
    std::map<std::string, OpCase>& m = tdtest::op_registry();
    auto reg = [&m](const std::string& name, const std::string& family, Fn fn) {
        td::check(m.count(name) == 0, "registry: case ", name, " registered twice");
        m[name] = OpCase{family, std::move(fn)};
        return &m[name];
    };
    using I = const Inputs&;

    // ---- elementwise, same shapes
    reg("add", "elementwise", [](I x) { return td::add(x[0], x[1]); });
    reg("sub", "elementwise", [](I x) { return td::sub(x[0], x[1]); });
    reg("mul", "elementwise", [](I x) { return td::mul(x[0], x[1]); });
    reg("div", "elementwise", [](I x) { return td::div(x[0], x[1]); });
    reg("pow", "elementwise", [](I x) { return td::pow(x[0], x[1]); });
    reg("pow_scalar_int", "elementwise", [](I x) { return td::pow(x[0], 3.0f); });
    reg("pow_scalar_frac", "elementwise", [](I x) { return td::pow(x[0], 2.5f); });
    reg("pow_scalar_neg", "elementwise", [](I x) { return td::pow(x[0], -1.5f); });
    reg("add_scalar", "elementwise", [](I x) { return td::add(x[0], 1.5f); });
    reg("mul_scalar", "elementwise", [](I x) { return td::mul(x[0], -2.5f); });
    reg("scalar_operators", "elementwise", [](I x) {
        const Tensor& a = x[0];
        return 3.0f - a * 2.0f + a / 4.0f - 1.0f + 2.0f * a + (0.5f + a);
    });
    reg("neg", "elementwise", [](I x) { return -x[0]; });
    reg("exp", "elementwise", [](I x) { return td::exp(x[0]); });
    reg("log", "elementwise", [](I x) { return td::log(x[0]); });
    reg("sqrt", "elementwise", [](I x) { return td::sqrt(x[0]); });
    reg("abs", "elementwise", [](I x) { return td::abs(x[0]); });
    reg("tanh", "elementwise", [](I x) { return td::tanh(x[0]); });
    reg("sigmoid", "elementwise", [](I x) { return td::sigmoid(x[0]); });
    reg("relu", "elementwise", [](I x) { return td::relu(x[0]); });
    reg("silu", "elementwise", [](I x) { return td::silu(x[0]); });
    reg("gelu", "elementwise", [](I x) { return td::gelu(x[0]); });
    reg("softplus", "elementwise", [](I x) { return td::softplus(x[0]); });
    reg("softplus_beta_threshold", "elementwise", [](I x) { return td::softplus(x[0], 2.0f, 1.0f); });
    reg("softplus_wide", "elementwise", [](I x) { return td::softplus(x[0] * 15.0f); });
    reg("clamp", "elementwise", [](I x) { return td::clamp(x[0], -0.5f, 0.5f); });
    reg("clamp_wide", "elementwise", [](I x) { return td::clamp(x[0], -1.0f, 2.0f); });
    reg("where", "elementwise", [](I x) { return td::where(x[0], x[1], x[2]); });
    reg("gt", "elementwise", [](I x) { return td::gt(x[0], x[1]); });
    reg("lt", "elementwise", [](I x) { return td::lt(x[0], x[1]); });
    reg("eq", "elementwise", [](I x) { return td::eq(x[0], x[1]); });
    reg("pow_scalar_zero", "elementwise", [](I x) { return td::pow(x[0], 0.0f); });
    reg("exp_transposed", "elementwise", [](I x) { return td::exp(x[0].transpose(0, 1)); });
    reg("exp_expanded", "elementwise", [](I x) { return td::exp(x[0].expand({3, 4})); });
    reg("tanh_expanded_0d", "elementwise", [](I x) { return td::tanh(x[0].expand({2, 3})); });
    reg("mul_expanded_sliced", "elementwise", [](I x) { return x[0].expand({3, 4}) * x[1].slice(1, 1, kEnd, 2); });
    reg("add_noncontig", "elementwise", [](I x) { return x[0].transpose(0, 1) + x[1]; });
    reg("mul_nograd_b", "elementwise", [](I x) { return x[0] * x[1]; });
    reg("div_nograd_a", "elementwise", [](I x) { return x[0] / x[1]; });
    reg("pow_nograd_b", "elementwise", [](I x) { return td::pow(x[0], x[1]); });

    // ---- elementwise, broadcasting
    reg("add_bcast_234_31", "broadcast", [](I x) { return x[0] + x[1]; });
    reg("mul_bcast_4_214", "broadcast", [](I x) { return x[0] * x[1]; });
    reg("sub_bcast_214_31", "broadcast", [](I x) { return x[0] - x[1]; });
    reg("div_bcast_23_3", "broadcast", [](I x) { return x[0] / x[1]; });
    reg("div_bcast_1_23", "broadcast", [](I x) { return x[0] / x[1]; });
    reg("pow_bcast_31_14", "broadcast", [](I x) { return td::pow(x[0], x[1]); });
    reg("mul_bcast_0d", "broadcast", [](I x) { return x[0] * x[1]; });
    reg("add_bcast_0d_left", "broadcast", [](I x) { return x[0] + x[1]; });
    reg("where_bcast", "broadcast", [](I x) { return td::where(x[0], x[1], x[2]); });
    reg("mul_bcast_nograd", "broadcast", [](I x) { return x[0] * x[1]; });
    reg("add_bcast_both", "broadcast", [](I x) { return x[0] + x[1]; });

    // ---- reductions
    reg("sum_all", "reduce", [](I x) { return td::sum(x[0]); });
    reg("sum_dim1", "reduce", [](I x) { return td::sum(x[0], {1}); });
    reg("sum_dim1_keep", "reduce", [](I x) { return td::sum(x[0], {1}, true); });
    reg("sum_dims02", "reduce", [](I x) { return td::sum(x[0], {0, 2}); });
    reg("sum_dims02_keep", "reduce", [](I x) { return td::sum(x[0], {0, 2}, true); });
    reg("sum_neg_dim", "reduce", [](I x) { return td::sum(x[0], {-1}); });
    reg("sum_all_keep", "reduce", [](I x) { return td::sum(x[0], {0, 1, 2}, true); });
    reg("mean_all", "reduce", [](I x) { return td::mean(x[0]); });
    reg("mean_dim0", "reduce", [](I x) { return td::mean(x[0], {0}); });
    reg("mean_dims12_keep", "reduce", [](I x) { return td::mean(x[0], {1, 2}, true); });
    reg("var_all", "reduce", [](I x) { return td::var(x[0]); });
    reg("var_all_c0", "reduce", [](I x) { return td::var(x[0], {}, false, 0); });
    reg("var_dim1", "reduce", [](I x) { return td::var(x[0], {1}); });
    reg("var_dim1_keep_c0", "reduce", [](I x) { return td::var(x[0], {1}, true, 0); });
    reg("var_dims02", "reduce", [](I x) { return td::var(x[0], {0, 2}); });
    reg("var_dims02_keep_c0", "reduce", [](I x) { return td::var(x[0], {0, 2}, true, 0); });
    reg("var_neg_dim", "reduce", [](I x) { return td::var(x[0], {-1}); });
    reg("sum_permuted", "reduce", [](I x) { return td::sum(x[0].permute({2, 0, 1}), {1}); });
    reg("sum_expanded", "reduce", [](I x) { return td::sum(x[0].expand({3, 4}), {0}); });
    reg("var_sliced", "reduce", [](I x) { return td::var(x[0].slice(0, 0, kEnd, 2).slice(1, 1, kEnd), {1}); });
    reg("sum_0d", "reduce", [](I x) { return td::sum(x[0]); });
    reg("sum_0d_dim0", "reduce", [](I x) { return td::sum(x[0], {0}); });
    reg("sum_empty", "reduce", [](I x) { return td::sum(x[0], {0}); });
    reg("max_dim1", "reduce", [](I x) { return td::max(x[0], 1).values; })->out1 = [](I x) {
        return td::max(x[0], 1).indices;
    };
    reg("max_dim0_keep", "reduce", [](I x) { return td::max(x[0], 0, true).values; })->out1 = [](I x) {
        return td::max(x[0], 0, true).indices;
    };
    reg("max_neg_dim", "reduce", [](I x) { return td::max(x[0], -2).values; })->out1 = [](I x) {
        return td::max(x[0], -2).indices;
    };
    reg("max_all", "reduce", [](I x) { return td::max(x[0]); });
    reg("max_transposed", "reduce", [](I x) { return td::max(x[0].transpose(0, 1), 1).values; })->out1 = [](I x) {
        return td::max(x[0].transpose(0, 1), 1).indices;
    };
    reg("argmax_dim1", "reduce", [](I x) { return td::argmax(x[0], 1); });
    reg("argmax_dim0_keep", "reduce", [](I x) { return td::argmax(x[0], 0, true); });
    reg("argmax_3d", "reduce", [](I x) { return td::argmax(x[0], 2); });

    // ---- matmul
    reg("matmul_2d", "matmul", [](I x) { return td::matmul(x[0], x[1]); });
    reg("matmul_batched", "matmul", [](I x) { return td::matmul(x[0], x[1]); });
    reg("matmul_bcast_4d_2d", "matmul", [](I x) { return td::matmul(x[0], x[1]); });
    reg("matmul_bcast_3d_1", "matmul", [](I x) { return td::matmul(x[0], x[1]); });
    reg("matmul_bcast_2d_3d", "matmul", [](I x) { return td::matmul(x[0], x[1]); });
    reg("matmul_bcast_both", "matmul", [](I x) { return td::matmul(x[0], x[1]); });
    reg("matmul_transposed_a", "matmul", [](I x) { return td::matmul(x[0].transpose(0, 1), x[1]); });
    reg("matmul_transposed_b", "matmul", [](I x) { return td::matmul(x[0], x[1].transpose(-1, -2)); });
    reg("matmul_permuted_batch", "matmul", [](I x) { return td::matmul(x[0].permute({1, 0, 2}), x[1]); });
    reg("matmul_permuted_4d", "matmul", [](I x) { return td::matmul(x[0].permute({0, 2, 1, 3}), x[1]); });
    reg("matmul_outer", "matmul", [](I x) { return td::matmul(x[0], x[1]); });
    reg("matmul_dot", "matmul", [](I x) { return td::matmul(x[0], x[1]); });
    reg("matmul_sliced", "matmul", [](I x) { return td::matmul(x[0].slice(1, 0, kEnd, 2), x[1]); });
    reg("matmul_nograd_b", "matmul", [](I x) { return td::matmul(x[0], x[1]); });
    reg("matmul_nograd_a", "matmul", [](I x) { return td::matmul(x[0], x[1]); });
    reg("matmul_expanded_a", "matmul", [](I x) { return td::matmul(x[0].expand({2, 3, 4}), x[1]); });
    reg("matmul_expanded_rows", "matmul", [](I x) { return td::matmul(x[0].expand({3, 4}), x[1]); });
    reg("matmul_expanded_cols", "matmul", [](I x) { return td::matmul(x[0].expand({3, 4}), x[1]); });
    reg("matmul_expanded_b", "matmul", [](I x) { return td::matmul(x[0], x[1].expand({4, 5})); });
    reg("matmul_expanded_0d", "matmul", [](I x) { return td::matmul(x[0].expand({1, 4}), x[1]); });

    // ---- views
    reg("view", "views", [](I x) { return x[0].view({6, 4}); });
    reg("view_infer", "views", [](I x) { return x[0].view({-1, 2}); });
    reg("view_of_narrow", "views", [](I x) { return x[0].narrow(0, 1, 2).view({12}); });
    reg("reshape", "views", [](I x) { return x[0].reshape({4, 6}); });
    reg("reshape_noncontig", "views", [](I x) { return x[0].permute({2, 0, 1}).reshape({4, 6}); });
    reg("permute", "views", [](I x) { return x[0].permute({2, 0, 1}); });
    reg("permute_neg", "views", [](I x) { return x[0].permute({-1, 0, -2}); });
    reg("transpose", "views", [](I x) { return x[0].transpose(0, 2); });
    reg("transpose_neg", "views", [](I x) { return x[0].transpose(-1, -2); });
    reg("narrow", "views", [](I x) { return x[0].narrow(1, 1, 3); });
    reg("slice_step", "views", [](I x) { return x[0].slice(1, 1, 6, 2); });
    reg("slice_neg_start", "views", [](I x) { return x[0].slice(0, -5, kEnd, 2); });
    reg("slice_end_clamped", "views", [](I x) { return x[0].slice(1, 2, 100); });
    reg("expand", "views", [](I x) { return x[0].expand({2, 3, 4}); });
    reg("expand_neg1", "views", [](I x) { return x[0].expand({3, -1}); });
    reg("squeeze", "views", [](I x) { return x[0].squeeze(1); });
    reg("squeeze_neg", "views", [](I x) { return x[0].squeeze(-1); });
    reg("squeeze_noop", "views", [](I x) { return x[0].squeeze(0); });
    reg("unsqueeze", "views", [](I x) { return x[0].unsqueeze(1); });
    reg("unsqueeze_neg", "views", [](I x) { return x[0].unsqueeze(-1); });
    reg("contiguous_permuted", "views", [](I x) { return x[0].permute({1, 2, 0}).contiguous(); });
    reg("view_after_contiguous", "views", [](I x) { return x[0].transpose(0, 1).contiguous().view({3, 8}); });
    reg("clone", "views", [](I x) { return x[0].clone(); });
    reg("expand_0d", "views", [](I x) { return x[0].expand({2, 3}); });
    reg("unsqueeze_0d", "views", [](I x) { return x[0].unsqueeze(0); });
    reg("slice_of_expand", "views", [](I x) { return x[0].expand({3, 4}).slice(1, 1, 3); });
    reg("narrow_of_permuted", "views", [](I x) { return x[0].permute({1, 0, 2}).narrow(0, 1, 2); });
    reg("view_of_expand", "views", [](I x) { return x[0].expand({3, 4}).view({3, 2, 2}); });
    reg("view_split_noncontig", "views", [](I x) { return x[0].transpose(0, 1).view({3, 2, 2, 2}); });
    reg("view_merge_permuted", "views", [](I x) { return x[0].permute({2, 0, 1}).view({4, 6}); });
    reg("view_unit_dims", "views", [](I x) { return x[0].unsqueeze(1).transpose(0, 1).view({2, 3}); });
    reg("views_into_mul", "views", [](I x) { return x[0].transpose(1, 2) * x[1].unsqueeze(0).slice(2, 0, 3, 1); });

    // ---- join and split
    reg("cat_dim0", "join", [](I x) { return td::cat({x[0], x[1], x[2]}, 0); });
    reg("cat_dim1", "join", [](I x) { return td::cat({x[0], x[1]}, 1); });
    reg("cat_neg_dim", "join", [](I x) { return td::cat({x[0], x[1]}, -1); });
    reg("cat_views", "join", [](I x) { return td::cat({x[0].transpose(0, 1), x[1].slice(0, 0, kEnd, 2)}, 0); });
    reg("stack_dim0", "join", [](I x) { return td::stack({x[0], x[1], x[2]}, 0); });
    reg("stack_dim1", "join", [](I x) { return td::stack({x[0], x[1]}, 1); });
    reg("stack_neg", "join", [](I x) { return td::stack({x[0], x[1]}, -1); });
    reg("split_dim0", "join", [](I x) { return pieces_scaled(td::split(x[0], 2, 0), 0, {1.0f, -2.0f, 0.5f}); });
    reg("split_dim1", "join", [](I x) { return pieces_scaled(td::split(x[0], 3, 1), 1, {1.5f, -1.0f, 3.0f}); });
    reg("chunk_dim0", "join", [](I x) { return pieces_scaled(td::chunk(x[0], 3, 0), 0, {2.0f, -0.5f, 1.0f}); });
    reg("chunk_fewer", "join", [](I x) { return pieces_scaled(td::chunk(x[0], 4, 1), 1, {-1.0f, 0.25f, 2.0f}); });
    reg("split_bigger", "join", [](I x) { return pieces_scaled(td::split(x[0], 5, 1), 1, {2.0f}); });
    reg("cat_expanded", "join", [](I x) { return td::cat({x[0].expand({2, 3}), x[1]}, 0); });
    reg("stack_0d", "join", [](I x) { return td::stack({x[0], x[1]}, 0); });
    reg("cat_int64", "join", [](I x) { return td::cat({x[0], x[1]}, 0); });
    reg("cat_empty_piece", "join", [](I x) { return td::cat({x[0], x[1]}, 0); });

    // ---- indexing
    reg("index_select_dim0", "index", [](I x) { return td::index_select(x[0], 0, x[1]); });
    reg("index_select_dim1", "index", [](I x) { return td::index_select(x[0], 1, x[1]); });
    reg("index_select_3d", "index", [](I x) { return td::index_select(x[0], 1, x[1]); });
    reg("gather_dim1", "index", [](I x) { return td::gather(x[0], 1, x[1]); });
    reg("gather_dim0", "index", [](I x) { return td::gather(x[0], 0, x[1]); });
    reg("gather_smaller", "index", [](I x) { return td::gather(x[0], 1, x[1]); });
    reg("gather_3d_neg", "index", [](I x) { return td::gather(x[0], -1, x[1]); });
    reg("index_select_noncontig", "index", [](I x) { return td::index_select(x[0].transpose(0, 1), 0, x[1]); });
    reg("gather_noncontig", "index", [](I x) { return td::gather(x[0].transpose(0, 1), 1, x[1]); });

    // ---- composites
    reg("mlp", "composite", [](I x) {
        // x (4,3) @ W1 (3,5) + b1 (5) -> silu -> @ W2 (5,2) + b2 (2) -> sum
        return td::sum(td::matmul(td::silu(td::matmul(x[0], x[1]) + x[2]), x[3]) + x[4]);
    });
    reg("reuse", "composite", [](I x) { return x[0] * x[0] + x[0] - td::exp(x[0]) * x[0]; });
    reg("softmax", "composite", [](I x) { return softmax_manual(x[0], 1); });
    reg("layernorm", "composite", [](I x) {
        const Tensor& v = x[0];
        return (v - td::mean(v, {-1}, true)) / td::sqrt(td::var(v, {-1}, true, 0) + 1e-5f) * x[1] + x[2];
    });
    reg("mse", "composite", [](I x) { return td::mean(td::pow(x[0] - x[1], 2.0f)); });
    reg("attention", "composite", [](I x) {
        // softmax(q k^T / sqrt(d)) v with q, k, v: (2, 3, 4), sqrt(d) = 2
        return td::matmul(softmax_manual(td::matmul(x[0], x[1].transpose(-1, -2)) / 2.0f, -1), x[2]);
    });
    reg("cross_entropy", "composite",
        [](I x) { return -td::mean(td::gather(td::log(softmax_manual(x[0], 1)), 1, x[1])); });
    reg("gelu_tanh_mix", "composite", [](I x) { return td::gelu(x[0]) * td::tanh(x[1]) + td::sigmoid(x[0] / x[1]); });
    return true;
}();

}  // namespace

// ---- the fixture set and the registry are twins --------------------------------------------

TEST_CASE("torch fixtures: manifest and registry agree") {
    std::vector<std::string> names = tdtest::manifest();
    REQUIRE_MESSAGE(names.size() > 0,
                    "tests/fixtures/MANIFEST.txt is missing or empty; run "
                    "/usr/bin/python3 tests/make_fixtures.py from the repository root");
    std::set<std::string> in_manifest(names.begin(), names.end());
    CHECK_MESSAGE(in_manifest.size() == names.size(), "MANIFEST.txt lists a case twice");
    for (const std::string& n : names) {
        CHECK_MESSAGE(tdtest::op_registry().count(n) == 1,
                      "fixture case '" << n << "' has no C++ entry in tdtest::op_registry()");
        CHECK_MESSAGE(tdtest::exists(tdtest::fixture_path(n, "out")), "fixture case '" << n << "' has no out.npy");
    }
    for (const auto& [n, c] : tdtest::op_registry()) {
        CHECK_MESSAGE(in_manifest.count(n) == 1, "registry entry '" << n << "' has no fixture in MANIFEST.txt");
        CHECK_MESSAGE(!c.family.empty(), "registry entry '" << n << "' has no family");
    }
}

TEST_CASE("torch fixtures: elementwise") { tdtest::run_family("elementwise"); }
TEST_CASE("torch fixtures: broadcast") { tdtest::run_family("broadcast"); }
TEST_CASE("torch fixtures: reduce") { tdtest::run_family("reduce"); }
TEST_CASE("torch fixtures: matmul") { tdtest::run_family("matmul"); }
TEST_CASE("torch fixtures: views") { tdtest::run_family("views"); }
TEST_CASE("torch fixtures: join") { tdtest::run_family("join"); }
TEST_CASE("torch fixtures: index") { tdtest::run_family("index"); }
TEST_CASE("torch fixtures: composite") { tdtest::run_family("composite"); }

// ---- error messages: misuse throws td::Error naming the op and the shapes ------------------

namespace {

using tdtest::check_message;
using tdtest::error_of;

}  // namespace

TEST_CASE("errors: misuse names the op and the shapes") {
    Tensor a23 = td::zeros({2, 3}), a4 = td::zeros({4});

    SUBCASE("add of shapes that cannot broadcast") {
        CHECK_THROWS_AS(td::add(a23, a4), td::Error);
        check_message(error_of([&] { td::add(a23, a4); }), {"add", "[2, 3]", "[4]"});
        check_message(error_of([&] { (void)(a23 * a4); }), {"mul", "[2, 3]", "[4]"});
    }
    SUBCASE("matmul inner dims differ") {
        check_message(error_of([] {
                          td::matmul(td::zeros({2, 3}), td::zeros({4, 5}));
                      }),
                      {"matmul", "[2, 3]", "[4, 5]"});
        check_message(error_of([] { td::matmul(td::zeros({3}), td::zeros({3, 2})); }), {"matmul", "[3]"});
    }
    SUBCASE("view of an incompatible layout or size") {
        Tensor t = td::zeros({2, 3}).transpose(0, 1);  // (3, 2), not contiguous
        check_message(error_of([&] { t.view({6}); }), {"view", "[6]", "[3, 2]"});
        check_message(error_of([&] { a23.view({4, 2}); }), {"view", "[4, 2]", "[2, 3]"});
    }
    SUBCASE("narrow out of range") {
        check_message(error_of([&] { a23.narrow(1, 2, 2); }), {"narrow", "[2, 3]"});
        check_message(error_of([&] { a23.narrow(2, 0, 1); }), {"narrow"});
    }
    SUBCASE("normalising an empty input") {  // (the kernels would divide by a group size of 0)
        Tensor g = td::ones({4}), b = td::zeros({4});
        check_message(error_of([&] {
                          td::group_norm(td::zeros({0, 4, 3}), 2, g, b);
                      }),
                      {"group_norm", "[0, 4, 3]", "empty"});
        check_message(error_of([&] {
                          td::layer_norm(td::zeros({0, 4}), {4}, g, b);
                      }),
                      {"layer_norm", "[0, 4]", "empty"});
    }
    SUBCASE("index_select index out of range") {
        Tensor idx = Tensor::from_vector_i64({0, 5}, {2});
        check_message(error_of([&] { td::index_select(td::zeros({4, 3}), 0, idx); }), {"index_select", "5", "[4, 3]"});
    }
    SUBCASE("gather with an index of the wrong rank") {
        Tensor idx = Tensor::from_vector_i64({0, 1, 2}, {3});
        check_message(error_of([&] { td::gather(td::zeros({3, 4}), 1, idx); }), {"gather", "[3]", "[3, 4]"});
    }
    SUBCASE("cat of mismatched shapes") {
        check_message(error_of([] {
                          td::cat({td::zeros({3, 4}), td::zeros({2, 4})}, 1);
                      }),
                      {"cat", "[3, 4]", "[2, 4]"});
        check_message(error_of([] {
                          td::stack({td::zeros({3, 4}), td::zeros({4, 3})}, 0);
                      }),
                      {"stack", "[3, 4]", "[4, 3]"});
    }
    SUBCASE("requires_grad on an int64 tensor") {
        Tensor idx = Tensor::from_vector_i64({0, 1}, {2});
        check_message(error_of([&] { idx.requires_grad_(); }), {"requires_grad", "int64"});
    }
    SUBCASE("backward on a non-scalar without a gradient") {
        Tensor x = td::ones({2, 3});
        x.requires_grad_();
        Tensor y = x * 2.0f;
        check_message(error_of([&] { y.backward(); }), {"backward", "[2, 3]"});
        check_message(error_of([&] { y.backward(td::ones({3, 2})); }), {"backward", "[3, 2]", "[2, 3]"});
    }
    SUBCASE("permute with a repeated dim") {
        check_message(error_of([] { td::zeros({2, 3, 4}).permute({0, 0, 1}); }), {"permute", "repeated"});
        check_message(error_of([] { td::zeros({2, 3, 4}).permute({0, 1}); }), {"permute", "[2, 3, 4]"});
    }
    SUBCASE("reductions and others") {
        check_message(error_of([&] { td::sum(a23, {2}); }), {"sum"});
        check_message(error_of([] { td::var(td::zeros({1, 3}), {0}); }), {"var", "[1, 3]"});
        check_message(error_of([&] { td::clamp(a23, 1.0f, -1.0f); }), {"clamp"});
        check_message(error_of([&] { td::softplus(a23, 0.0f); }), {"softplus", "beta", "> 0"});
        check_message(error_of([&] { a23.expand({4, 3}); }), {"expand", "[2, 3]", "[4, 3]"});
        check_message(error_of([&] { td::where(td::zeros({2}), a23, a23); }), {"where", "[2]", "[2, 3]"});
    }
}
