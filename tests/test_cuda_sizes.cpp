// tests/test_cuda_sizes.cpp: the device against the CPU at the sizes the UNet really uses.
//
// The PyTorch fixtures (tests/test_cuda.cpp) are small: every dimension <= 8, so every
// kernel runs one tile, one block, one chunk, and never meets a ragged edge. The cases
// here pick sizes that reach the other paths of cuda/*.cu:
//   GEMM        M, N, K in {1, 17, 129, 300}: one tile and several, edges at every
//               rung's tile size (16, 32, 128), both transposes, beta 0 and 1, a batch with
//               its own matrices and one that broadcasts A (batch stride 0, as conv does)
//   softmax     D = 2000: past the one-warp-per-row path, into the block-per-row one
//   LayerNorm   D = 1000
//   reductions  rows of 5000, few of them (one block per row leaves most of the GPU idle)
//   conv2d      a batch whose column buffers pass the chunk budget, so it is split, the
//               last chunk ragged; its weight gradient is the long thin GEMM
//   attention   L = 300: not a multiple of the kernels' tiles
//   elementwise strided views, broadcasts, and contiguous views that are not 16-byte aligned
//
// Where: on a real GPU, each op runs there and on the CPU and the results are compared
// (FP32: max |device - cpu| / max |cpu| <= 1e-4, the whole tensor's scale, so entries near
// zero do not decide; TF32 rungs 1e-2). Without a GPU the same cases run on the host-memory
// stand-in (tensor/cpu/cuda_standin.h), switched on for the case: the kernels are then the
// CPU's, but every .to(), device check and backward's allocation on the device side is
// exercised at these sizes. The GEMM ladder case calls the CUDA kernels by name
// (cuda/gemm.h), which the stand-in has not: it prints the suite's one SKIPPED line.
#include <cmath>
#include <functional>
#include <vector>

#include "cuda/gemm.h"
#include "cuda/split_plan.h"
#include "tensor/device.h"
#include "tensor/nn_ops.h"
#include "tests/helpers.h"

using namespace td;

namespace {

// The device side of a case: the real GPU, or the stand-in switched on for the case's
// duration (off again at the end, so other test files see the machine's real answer).
class DeviceUnderTest {
public:
    DeviceUnderTest() : started_(!cuda_available()) {
        if (started_) use_host_standin_for_cuda();
    }
    ~DeviceUnderTest() {
        if (!started_) return;
        std::string why = tdtest::error_of(stop_host_standin_for_cuda);
        if (!why.empty()) FAIL_CHECK("the stand-in could not be switched off: " << why);
    }
    DeviceUnderTest(const DeviceUnderTest&) = delete;
    DeviceUnderTest& operator=(const DeviceUnderTest&) = delete;

private:
    bool started_;
};

// max |got - want| / max |want| over the whole tensor (both brought to the CPU); NaN or a
// shape mismatch gives infinity.
double rel_error(const Tensor& got, const Tensor& want) {
    if (got.shape() != want.shape()) return INFINITY;
    std::vector<float> g = got.to(Device::CPU).to_vector(), w = want.to(Device::CPU).to_vector();
    double diff = 0.0, scale = 0.0;
    for (size_t i = 0; i < g.size(); ++i) {
        if (std::isnan(g[i]) != std::isnan(w[i])) return INFINITY;
        diff = std::max(diff, std::fabs((double)g[i] - w[i]));
        scale = std::max(scale, std::fabs((double)w[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

constexpr double kFp32Tol = 1e-4, kTf32Tol = 1e-2;

// f's outputs and the gradients of sum(out_0 * dout) with respect to every input, with the
// inputs copied to `dev` as leaves; everything comes back on the CPU.
struct Run {
    Tensor out;
    std::vector<Tensor> grads;
};
using Fn = std::function<Tensor(const std::vector<Tensor>&)>;
Run run_on(Device dev, const std::vector<Tensor>& inputs, const Fn& f, const Tensor& dout) {
    std::vector<Tensor> leaves;
    for (const Tensor& x : inputs) leaves.push_back(x.to(dev).detach().requires_grad_());
    Tensor out = f(leaves);
    REQUIRE(out.device() == dev);
    sum(mul(out, dout.to(dev))).backward();
    Run r{out.detach().to(Device::CPU), {}};
    for (const Tensor& l : leaves) {
        REQUIRE(l.grad().defined());
        REQUIRE(l.grad().device() == dev);
        r.grads.push_back(l.grad().to(Device::CPU));
    }
    return r;
}

// Runs f forward and backward on the device and on the CPU and compares the output and
// every input's gradient.
void check_against_cpu(const char* what, const std::vector<Tensor>& inputs, const Fn& f, Generator& gen,
                       double tol = kFp32Tol) {
    INFO(what);
    Tensor probe = f(inputs);  // its shape, for the upstream gradient
    Tensor dout = randn(probe.shape(), gen);
    Run cpu = run_on(Device::CPU, inputs, f, dout);
    Run dev = run_on(Device::CUDA, inputs, f, dout);
    double e = rel_error(dev.out, cpu.out);
    INFO("output: relative error " << e);
    CHECK(e <= tol);
    for (size_t i = 0; i < inputs.size(); ++i) {
        double g = rel_error(dev.grads[i], cpu.grads[i]);
        INFO("gradient of input " << i << ": relative error " << g);
        CHECK(g <= tol);
    }
}

}  // namespace

TEST_CASE("cuda sizes: the GEMM ladder, every rung x transposes x beta x batch stride, M N K in {1, 17, 129, 300}") {
    if (tdtest::skip_without_gpu()) return;
    if (cuda_is_standin()) return;  // TD_CUDA_STANDIN=1 for the whole run: no kernels to call by name
    using cuda::GemmKernel;
    const int64_t sizes[] = {1, 17, 129, 300};
    const int64_t batch = 2;
    Generator gen(11);
    int failures = 0;
    for (int64_t M : sizes)
        for (int64_t N : sizes)
            for (int64_t K : sizes)
                for (int trans = 0; trans < 4; ++trans)
                    for (int shared_a = 0; shared_a < 2; ++shared_a) {
                        const bool ta = trans & 1, tb = trans & 2;
                        // shared_a: one A for the whole batch (stride 0), stored with a padded
                        // row (ld = row length + 3): the layout conv's weights have, and an ld
                        // that is not the row length.
                        const int64_t a_rows = ta ? K : M, a_cols = ta ? M : K, b_rows = tb ? N : K,
                                      b_cols = tb ? K : N;
                        const int64_t lda = a_cols + (shared_a ? 3 : 0), ldb = b_cols;
                        Tensor A = randn({shared_a ? 1 : batch, a_rows, lda}, gen);
                        Tensor B = randn({batch, b_rows, ldb}, gen);
                        Tensor C0 = randn({batch, M, N}, gen);
                        // The CPU's answer: op(A_b) op(B_b) (+ C0_b), through td::matmul.
                        Tensor a_op = A.narrow(2, 0, a_cols), b_op = B;
                        if (ta) a_op = a_op.transpose(1, 2);
                        if (tb) b_op = b_op.transpose(1, 2);
                        Tensor prod = matmul(a_op.expand({batch, M, K}), b_op);
                        Tensor Ad = A.to(Device::CUDA), Bd = B.to(Device::CUDA);
                        for (GemmKernel kernel : {GemmKernel::Naive, GemmKernel::Tiled, GemmKernel::RegisterBlocked,
                                                  GemmKernel::TensorCoreTF32})
                            for (float beta : {0.0f, 1.0f}) {
                                Tensor Cd = C0.to(Device::CUDA);
                                cuda::gemm_with(kernel, ta, tb, M, N, K, Ad.data_f32(), lda,
                                                shared_a ? 0 : a_rows * lda, Bd.data_f32(), ldb, b_rows * ldb,
                                                Cd.data_f32(), N, M * N, batch, beta);
                                Tensor want = beta == 0.0f ? prod : add(prod, C0);
                                const double tol = kernel == GemmKernel::TensorCoreTF32 ? kTf32Tol : kFp32Tol;
                                const double e = rel_error(Cd, want);
                                if (e <= tol) continue;
                                if (++failures > 20) continue;  // the first 20 are enough to see the pattern
                                FAIL_CHECK("rung " << (int)kernel << " (0 naive .. 3 TF32), M " << M << ", N " << N
                                                   << ", K " << K << ", trans_a " << ta << ", trans_b " << tb
                                                   << ", beta " << beta << ", A shared " << shared_a
                                                   << ": relative error " << e << " > " << tol);
                            }
                    }
    CHECK(failures == 0);
}

TEST_CASE("cuda sizes: matmul through the op at the UNet's shapes, transposed operands included") {
    DeviceUnderTest device;
    Generator gen(12);
    // (B, M, K) @ (B, K, N): attention's q k^T at 16 x 16 (L = 256, d = 128) and a ragged one
    for (Shape s : {Shape{2, 256, 128, 256}, Shape{3, 300, 129, 17}}) {
        Tensor a = randn({s[0], s[1], s[2]}, gen), b = randn({s[0], s[2], s[3]}, gen);
        check_against_cpu(
            "matmul", {a, b}, [](const std::vector<Tensor>& t) { return matmul(t[0], t[1]); }, gen);
    }
}

TEST_CASE("cuda sizes: softmax and log_softmax over D = 2000 (the block-per-row path)") {
    DeviceUnderTest device;
    Generator gen(13);
    Tensor x = randn({37, 2000}, gen, 0.0f, 3.0f);
    check_against_cpu(
        "softmax", {x}, [](const std::vector<Tensor>& t) { return softmax(t[0], -1); }, gen);
    check_against_cpu(
        "log_softmax", {x}, [](const std::vector<Tensor>& t) { return log_softmax(t[0], -1); }, gen);
    Tensor small = randn({300, 77}, gen);  // the warp-per-row path, a ragged last warp
    check_against_cpu(
        "softmax, D = 77", {small}, [](const std::vector<Tensor>& t) { return softmax(t[0], -1); }, gen);
}

TEST_CASE("cuda sizes: LayerNorm over D = 1000 and GroupNorm on a UNet feature map") {
    // 130 rows: the backward's gamma and beta sums run in chunks of 64 rows, the last one ragged
    DeviceUnderTest device;
    Generator gen(14);
    Tensor x = randn({130, 1000}, gen, 0.5f, 2.0f), gamma = randn({1000}, gen), beta = randn({1000}, gen);
    check_against_cpu(
        "layer_norm", {x, gamma, beta},
        [](const std::vector<Tensor>& t) { return layer_norm(t[0], {1000}, t[1], t[2]); }, gen);
    Tensor f = randn({3, 64, 16, 16}, gen), g = randn({64}, gen), b = randn({64}, gen);
    check_against_cpu(
        "group_norm", {f, g, b}, [](const std::vector<Tensor>& t) { return group_norm(t[0], 32, t[1], t[2]); }, gen);
}

TEST_CASE("cuda sizes: sum and max over rows of 5000, few rows and many") {
    DeviceUnderTest device;
    Generator gen(15);
    for (Shape s : {Shape{3, 5000}, Shape{1, 250000}, Shape{64, 5000}}) {
        INFO("x " << shape_str(s));
        Tensor x = randn(s, gen, 1.0f, 1.0f);  // mean 1: the sum grows with the row, as a loss's does
        check_against_cpu(
            "sum", {x}, [](const std::vector<Tensor>& t) { return sum(t[0], {1}); }, gen);
        check_against_cpu(
            "max", {x}, [](const std::vector<Tensor>& t) { return max(t[0], 1).values; }, gen);
        Tensor idx_dev = argmax(x.to(Device::CUDA), 1).to(Device::CPU), idx_cpu = argmax(x, 1);
        CHECK(idx_dev.to_vector_i64() == idx_cpu.to_vector_i64());
    }
}

TEST_CASE("cuda sizes: conv2d whose batch is split into chunks (a ragged last one), forward and backward" *
          doctest::test_suite("long")) {
    DeviceUnderTest device;
    Generator gen(16);
    // 4 channels, 3 x 3, 256 x 256: 2.4 M floats of columns per sample, so the 128 MiB
    // budget of cuda/conv.cu holds 14 samples and a batch of 15 runs as 14 + 1. Its weight
    // gradient is the GEMM (8, 36) @ K = 14 x 65,536 that one block would do alone.
    Tensor x = randn({15, 4, 256, 256}, gen), w = randn({8, 4, 3, 3}, gen, 0.0f, 0.3f), bias = randn({8}, gen);
    check_against_cpu(
        "conv2d 3x3 pad 1", {x, w, bias}, [](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t[2], 1, 1); },
        gen);
    // groups and a stride: the group loop inside each chunk, and col2im's stride tests
    Tensor wg = randn({8, 2, 3, 3}, gen, 0.0f, 0.3f);
    check_against_cpu(
        "conv2d groups 2, stride 2", {x, wg},
        [](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], Tensor(), 2, 1, 2); }, gen);
}

TEST_CASE("cuda sizes: attention with L = 300, not a multiple of the tile") {
    DeviceUnderTest device;
    Generator gen(17);
    Tensor q = randn({2, 300, 64}, gen), k = randn({2, 300, 64}, gen), v = randn({2, 300, 64}, gen);
    check_against_cpu(
        "attention", {q, k, v},
        [](const std::vector<Tensor>& t) { return scaled_dot_product_attention(t[0], t[1], t[2]); }, gen);
}

TEST_CASE("cuda sizes: elementwise on strided views, broadcasts and unaligned contiguous views") {
    DeviceUnderTest device;
    Generator gen(18);
    Tensor x = randn({8, 64, 32, 32}, gen), bias = randn({1, 64, 1, 1}, gen);
    check_against_cpu(
        "broadcast add of a per-channel bias", {x, bias}, [](const std::vector<Tensor>& t) { return add(t[0], t[1]); },
        gen);
    check_against_cpu(
        "silu of a transposed view", {x}, [](const std::vector<Tensor>& t) { return silu(t[0].transpose(1, 3)); }, gen);
    // rows 1.. of a (1001, 37) matrix: contiguous, but starting 37 floats in (not 16-byte aligned)
    Tensor m = randn({1001, 37}, gen), n = randn({1001, 37}, gen);
    check_against_cpu(
        "mul of unaligned contiguous views", {m, n},
        [](const std::vector<Tensor>& t) { return mul(t[0].narrow(0, 1, 1000), t[1].narrow(0, 1, 1000)); }, gen);
}

TEST_CASE("cuda split plan: long thin sums are cut into pieces that cover them exactly") {
    using cuda::SplitPlan;
    // every plan covers its length with non-empty pieces, the last one maybe shorter
    auto covers = [](const SplitPlan& p, int64_t length) {
        return p.pieces >= 1 && p.piece >= 1 && (p.pieces - 1) * p.piece < length && p.pieces * p.piece >= length;
    };
    for (int64_t blocks : {1, 3, 9, 100, 256, 1000})
        for (int64_t length : {1, 1000, 1024, 5000, 65537, 917504, 10000000}) {
            INFO("blocks " << blocks << ", length " << length);
            SplitPlan p = cuda::plan_split(blocks, length, 1024, 256);
            CHECK(covers(p, length));
            CHECK(p.pieces <= 256);
            CHECK(blocks * p.pieces <= std::max<int64_t>(blocks, 2 * cuda::kTargetBlocks));
            if (p.pieces > 1) CHECK(p.piece >= 1024);
        }
    // conv's weight gradient in tests above: (8, 36) over 14 x 65,536 terms: one tile, split
    SplitPlan conv = cuda::plan_split_k(8, 36, 14 * 65536);
    CHECK(conv.pieces == 256);
    CHECK(covers(conv, 14 * 65536));
    // the UNet's 128-channel 3x3 conv at 32 x 32, a chunk of 25 samples: 9 tiles -> 25 pieces of 1,024
    CHECK(cuda::plan_split_k(128, 1152, 25 * 1024).pieces == 25);
    // a wide layer has tiles enough: no split
    CHECK(cuda::plan_split_k(512, 4608, 8 * 64).pieces == 1);
    // reductions: 3 rows of 5,000 -> 2 pieces each; 64 rows of 5,000 -> 2; one row of 250,000 -> 122
    CHECK(cuda::plan_split_rows(3, 5000).pieces == 2);
    CHECK(cuda::plan_split_rows(64, 5000).pieces == 2);
    CHECK(cuda::plan_split_rows(1, 250000).pieces == 122);
    CHECK(cuda::plan_split_rows(10000, 64).pieces == 1);  // many short rows: one block each
    CHECK(cuda::plan_split_rows(5, 0).pieces == 1);
}
