// tests/torch_cases.cpp: running one PyTorch-fixture case (see torch_cases.h).
#include "tests/torch_cases.h"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>

#include "tests/helpers.h"

namespace tdtest {

using td::Tensor;

std::map<std::string, OpCase>& op_registry() {
    static std::map<std::string, OpCase> registry;
    return registry;
}

bool exists(const std::string& path) { return std::filesystem::exists(path); }

std::vector<std::string> manifest() {
    std::vector<std::string> names;
    std::ifstream in("tests/fixtures/MANIFEST.txt");
    std::string line;
    while (std::getline(in, line))
        if (!line.empty()) names.push_back(line);
    return names;
}

// in0.npy, in1.npy, ... on `device`, with requires_grad on those that have a grad_in<k>.npy.
static Inputs load_inputs(const std::string& name, std::vector<bool>& has_grad, td::Device device = td::Device::CPU) {
    Inputs in;
    has_grad.clear();
    for (int k = 0; exists(tdtest::fixture_path(name, "in" + std::to_string(k))); ++k) {
        Tensor x = td::load_npy(tdtest::fixture_path(name, "in" + std::to_string(k))).to(device);
        bool g = exists(tdtest::fixture_path(name, "grad_in" + std::to_string(k)));
        if (g) x.requires_grad_();
        in.push_back(x);
        has_grad.push_back(g);
    }
    return in;
}

// float outputs within tolerance; int64 outputs exactly.
static void check_output(const Tensor& got_on_device, const Tensor& want, float atol, float rtol,
                         const std::string& what) {
    INFO(what);
    REQUIRE(got_on_device.defined());
    Tensor got = got_on_device.detach().to(td::Device::CPU);
    CHECK(td::dtype_name(got.dtype()) == std::string(td::dtype_name(want.dtype())));
    if (want.dtype() == td::DType::Int64) {
        CHECK(td::shape_str(got.shape()) == td::shape_str(want.shape()));
        if (got.dtype() == td::DType::Int64) CHECK(got.to_vector_i64() == want.to_vector_i64());
    } else {
        CHECK_CLOSE(got, want, atol, rtol);
    }
}

void run_case(const std::string& name, const OpCase& c, td::Device device) {
    std::vector<bool> has_grad;
    Inputs in = load_inputs(name, has_grad, device);
    REQUIRE_MESSAGE(!in.empty(), "no inputs in tests/fixtures/" << name);
    bool differentiable = false;
    for (bool g : has_grad) differentiable = differentiable || g;

    // forward
    Tensor out = c.fn(in);
    check_output(out, td::load_npy(tdtest::fixture_path(name, "out")), c.atol, c.rtol, "output");
    bool has_out1 = exists(tdtest::fixture_path(name, "out1"));
    CHECK_MESSAGE(has_out1 == bool(c.out1), "out1.npy and the registry's out1 must come together");
    if (has_out1 && c.out1)
        check_output(c.out1(in), td::load_npy(tdtest::fixture_path(name, "out1")), c.atol, c.rtol,
                     "second output (out1)");

    // backward
    bool has_grad_out = exists(tdtest::fixture_path(name, "grad_out"));
    CHECK_MESSAGE(has_grad_out == differentiable, "grad_out.npy exists iff some input has a gradient");
    if (!differentiable) {
        CHECK_MESSAGE(!out.requires_grad(), "no input requires grad, yet the output does");
        return;
    }
    REQUIRE(out.requires_grad());
    out.backward(td::load_npy(tdtest::fixture_path(name, "grad_out")).to(device));  // dL/dout where out lives
    for (size_t k = 0; k < in.size(); ++k) {
        if (!has_grad[k]) {
            CHECK_MESSAGE(!in[k].grad().defined(), "input " << k << " got a gradient it should not have");
            continue;
        }
        INFO("gradient of input " << k);
        CHECK_CLOSE(in[k].grad().to(td::Device::CPU),
                    td::load_npy(tdtest::fixture_path(name, "grad_in" + std::to_string(k))), c.atol, c.rtol);
    }
    // Finite differences need one exact float per perturbation: the CPU's twin of each
    // op is checked by them; a device run is checked against the same fixtures instead.
    if (device != td::Device::CPU) return;

    // finite differences, on fresh copies of the same inputs
    Inputs fresh = load_inputs(name, has_grad);
    td::GradcheckResult gc = td::gradcheck(c.fn, fresh, c.gradcheck);
    INFO("gradcheck: " << gc.message << " (max abs error " << gc.max_abs_error << ")");
    CHECK(gc.ok);
}

// Runs every manifest case of one family, each as its own SUBCASE (so a failure names
// the case); an exception inside a case fails that case only.
void run_family(const std::string& family, td::Device device) {
    int ran = 0;
    for (const std::string& name : manifest()) {
        auto it = op_registry().find(name);
        if (it == op_registry().end() || it->second.family != family) continue;
        ++ran;
        SUBCASE(name.c_str()) {
            try {
                run_case(name, it->second, device);
            } catch (const std::exception& e) {
                FAIL_CHECK("case " << name << " threw: " << std::string(e.what()));
            }
        }
    }
    CHECK_MESSAGE(ran > 0, "no fixture case in family " << family);
}

}  // namespace tdtest
