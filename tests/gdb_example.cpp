// tests/gdb_example.cpp: a tiny program for gdb to stop in (tests/test_gdb.cpp runs it
// under tools/gdb/gdbinit and prints each variable). Built -O0 -g3 as
// $(BUILD)/gdb_example by `make test`; not part of run_tests.
#include <cstdio>
#include <memory>

#include "nn/linear.h"
#include "nn/module.h"
#include "td.h"
// clang-format off
using namespace td;

int main() {
    Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});  // [[1, 2, 3], [4, 5, 6]]
    Tensor xt = x.transpose(0, 1);                                 // a (3, 2) view, strides [1, 3]
    Tensor w = Tensor::from_vector({0.5f, -1.5f, 2.5f}, {3}).requires_grad_();
    Tensor y = mul(w, 2.0f);                                       // grad_fn "mul"
    Tensor idx = Tensor::from_vector_i64({7, 8, 9}, {3});
    Tensor none;                                                   // undefined
    nn::Linear lin(4, 3);                                          // weight [3, 4], bias [3]
    nn::Sequential seq;
    seq.push_back(std::make_shared<nn::Linear>(4, 8));
    seq.push_back(std::make_shared<nn::Linear>(8, 2, false));
    std::printf("%s %d\n", y.grad_fn()->name.c_str(), (int)(idx.numel() + none.defined() + seq.size()));  // gdb: break here
    return 0;
}
