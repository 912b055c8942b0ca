// tests/torch_cases.h: the registry of PyTorch-fixture cases, shared by every test file
// that checks ops or layers against tests/fixtures/ (see tests/test_ops_torch.cpp for
// how a case is run, and tests/make_fixtures.py for how its fixture is made).
//
// A test file adds its cases at start-up, into op_registry(), under a family name, and
// runs each family from a doctest test case with run_family("family"). The manifest check in
// test_ops_torch.cpp makes sure every fixture has exactly one C++ twin and vice versa.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "td.h"

namespace tdtest {

using Inputs = std::vector<td::Tensor>;
using Fn = std::function<td::Tensor(const Inputs&)>;

struct OpCase {
    std::string family;  // which test case runs it: elementwise, broadcast, reduce, ...
    Fn fn;               // the op(s) under test; its output is compared with out.npy
    Fn out1 = nullptr;   // a second output, compared with out1.npy (max's int64 indices)
    float atol = 1e-5f;  // forward and gradient tolerances against the PyTorch fixture
    float rtol = 1e-4f;
    td::GradcheckOptions gradcheck = {};  // finite differences (h = 1e-2, atol 1e-3, rtol 1e-2)
};

// All registered cases by name.
std::map<std::string, OpCase>& op_registry();

bool exists(const std::string& path);
std::vector<std::string> manifest();  // tests/fixtures/MANIFEST.txt
// On `device`: inputs are moved there, outputs and gradients compared back on the CPU
// (the finite-difference check runs on the CPU only).
void run_case(const std::string& name, const OpCase& c, td::Device device = td::Device::CPU);
// Runs every manifest case of one family, each as its own SUBCASE.
void run_family(const std::string& family, td::Device device = td::Device::CPU);

}  // namespace tdtest
