// tests/test_cuda.cpp: the CUDA backend, checked against the same PyTorch fixtures as the
// CPU backend (tests/torch_cases.h), one family of ops at a time.
//
// On a machine without a GPU (or a build without nvcc) the GPU cases print one line,
// "SKIPPED: ...", saying why; what does not need a GPU still runs: the device API's
// answers and errors are the same either way, so a student's program that asks for
// `--device cuda` on a laptop gets a clear message, not a crash.
//
// Tolerances on the GPU: the fixtures' own (atol 1e-5, rtol 1e-4 by default), since the
// default GEMM is exact FP32 (TD_CUDA_TF32=1 opts into tensor cores; cuda/gemm.h).
#include <cstdio>
#include <cstdlib>

#include "tensor/device.h"
#include "tests/helpers.h"
#include "tests/torch_cases.h"

using namespace td;

using tdtest::skip_without_gpu;

TEST_CASE("cuda: the device API answers the same with or without a GPU") {
    CHECK(cuda_device_count() >= 0);
    CHECK(!cuda_description().empty());
    CHECK(parse_device("cpu") == Device::CPU);
    CHECK(parse_device("auto") == (cuda_available() ? Device::CUDA : Device::CPU));
    std::string bad;
    try {
        parse_device("gpu");
    } catch (const Error& e) {
        bad = e.what();
    }
    CHECK(tdtest::contains(bad, "expected cuda, cpu or auto"));
    Tensor x = Tensor::from_vector({1, 2, 3}, {3});
    CHECK(x.to(Device::CPU).impl() == x.impl());  // already there: the same tensor, no copy
    if (!cuda_available()) {
        // Asking for the GPU where there is none: a td::Error that says why, never a crash.
        std::string why;
        try {
            parse_device("cuda");
        } catch (const Error& e) {
            why = e.what();
        }
        CHECK(tdtest::contains(why, "--device cuda"));
        CHECK_THROWS_AS(x.to(Device::CUDA), Error);
        CHECK_THROWS_AS(Tensor::empty({2}, DType::Float32, Device::CUDA), Error);
    }
}

TEST_CASE("cuda: tensors go to the GPU and back unchanged") {
    if (skip_without_gpu()) return;
    Generator gen(3);
    Tensor x = randn({4, 5, 6}, gen);
    Tensor back = x.to(Device::CUDA).to(Device::CPU);
    CHECK(back.to_vector() == x.to_vector());
    // a strided view: made contiguous on its own device first
    Tensor t = x.transpose(0, 2);
    CHECK(t.to(Device::CUDA).to(Device::CPU).to_vector() == t.contiguous().to_vector());
    Tensor idx = Tensor::from_vector_i64({3, 1, 2}, {3});
    CHECK(idx.to(Device::CUDA).to(Device::CPU).to_vector_i64() == idx.to_vector_i64());
    // the copy is differentiable: the gradient comes back to the CPU leaf
    Tensor leaf = randn({3, 3}, gen).requires_grad_();
    sum(mul(leaf.to(Device::CUDA), 2.0f)).backward();
    REQUIRE(leaf.grad().defined());
    CHECK(leaf.grad().device() == Device::CPU);
    CHECK_CLOSE(leaf.grad(), full({3, 3}, 2.0f), 0.0f, 0.0f);
}

TEST_CASE("cuda: op families vs the PyTorch fixtures") {
    if (skip_without_gpu()) return;
    for (const char* family :
         {"elementwise", "broadcast", "reduce", "matmul", "views", "join", "index", "composite", "conv", "nn"}) {
        INFO("family " << family);
        tdtest::run_family(family, Device::CUDA);
    }
}
