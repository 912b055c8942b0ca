// bench/cuda_conv.cu: our conv2d on the GPU (cuda/conv.cu: im2col + our GEMM) against cuDNN,
// forward and backward, at the convolutions of the DDPM paper's CIFAR-10 UNet (ch 128,
// mults 1,2,2,2) at batch 128. For scripts/gpu-check.sh.
//
// Ours: backend_for(Device::CUDA).conv2d_forward (y = conv(x, w) + bias) and
// conv2d_backward (dx, dw, db from dy), the kernels td::conv2d runs, called directly so
// no autograd bookkeeping is timed. cuDNN: cudnnConvolutionForward + cudnnAddTensor (the
// bias), and cudnnConvolutionBackwardData + BackwardFilter + BackwardBias, each with the
// fastest algorithm cudnnFind*Algorithm measured for that shape (its workspace included).
//
// Precision: with TD_CUDA_TF32=1 in the environment our GEMMs run on tensor cores (TF32,
// cuda/gemm.h) and cuDNN may use them too (CUDNN_DEFAULT_MATH); without it ours is exact
// FP32 and cuDNN is held to FMA kernels (CUDNN_FMA_MATH), so both columns are FP32.
//
// Method (bench/cuda_timing.h): warm-up, then 3-30 calls timed with CUDA events, median.
// Each of our results is compared with cuDNN's: max |ours - cuDNN| / max |cuDNN| for y,
// dx, dw, db (the largest is shown), and cuDNN's forward with the CPU's on sample 0. The
// "check" column: within tolerance (FP32 1e-4, TF32 1e-2); past it, the bench exits 3.
// cuDNN appears here, in a bench, never in the engine.
//
// Output: markdown (notes lines, then a table); ratio = ours / cuDNN (below 1: we are faster).
//
//   build/bench_cuda_conv                    every row, batch 128
//   TD_CUDA_TF32=1 build/bench_cuda_conv     TF32 on both sides
//   build/bench_cuda_conv --batch 32 --rows conv_in,res256_16 --min-time 0.1
#include <cudnn.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/cuda_timing.h"
#include "cuda/cuda_check.h"
#include "tensor/backend.h"
#include "tensor/device.h"
#include "tensor/error.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace {

using td::cuda::check_cuda;

void check_cudnn(cudnnStatus_t status, const char* what) {
    if (status != CUDNN_STATUS_SUCCESS) td::fail("cuDNN error in ", what, ": ", cudnnGetErrorString(status));
}

// One convolution of the UNet: x (N, C, H, W), w (K, C, k, k), stride, padding.
struct ConvRow {
    const char* name;
    int64_t C, H, K, k, stride, pad;
    const char* where;  // which layers of the UNet have this shape
};

const ConvRow kRows[] = {
    {"conv_in", 3, 32, 128, 3, 1, 1, "conv_in"},
    {"res128_32", 128, 32, 128, 3, 1, 1, "down.0 / up.0 ResBlock convs"},
    {"down128_32", 128, 32, 128, 3, 2, 1, "down.0.downsample (stride 2)"},
    {"res128to256_16", 128, 16, 256, 3, 1, 1, "down.1.block.0.conv1"},
    {"res256_16", 256, 16, 256, 3, 1, 1, "down.1 / up.1 ResBlock convs"},
    {"res256_8", 256, 8, 256, 3, 1, 1, "down.2 / up.2 ResBlock convs"},
    {"res256_4", 256, 4, 256, 3, 1, 1, "down.3 / mid / up.3 ResBlock convs"},
    {"up384to128_32", 384, 32, 128, 3, 1, 1, "up.0 block conv1 on cat(h, skip)"},
    {"up512to256_16", 512, 16, 256, 3, 1, 1, "up.1 block conv1 on cat(h, skip)"},
    {"nin512to256_16", 512, 16, 256, 1, 1, 0, "up.1 nin_shortcut (1x1)"},
    {"conv_out", 128, 32, 3, 3, 1, 1, "conv_out"},
};

// The cuDNN side of one shape: descriptors, the algorithms cudnnFind* picked, a workspace.
struct Cudnn {
    cudnnHandle_t h;
    cudnnTensorDescriptor_t x, y, bias;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    cudnnConvolutionFwdAlgoPerf_t fwd;
    cudnnConvolutionBwdDataAlgoPerf_t bwd_data;
    cudnnConvolutionBwdFilterAlgoPerf_t bwd_filter;
    void* workspace = nullptr;
    size_t workspace_bytes = 0;
};

void usage(FILE* f) {
    std::fprintf(f,
                 "usage: bench_cuda_conv [--batch 128] [--rows NAME,...] [--min-time SECONDS] [--list]\n"
                 "  --batch      images per call (default 128)\n"
                 "  --rows       a subset of the shapes, by name (see --list)\n"
                 "  --min-time   time target per measurement (default 0.2 s; 3 to 30 timed calls)\n"
                 "environment: TD_CUDA_TF32=1 lets both sides use TF32 tensor cores\n");
}

}  // namespace

int run(int argc, char** argv) {
    int64_t N = 128;
    double target = 0.2;
    std::vector<std::string> wanted;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return 0;
        } else if (arg == "--list") {
            for (const ConvRow& r : kRows) std::printf("%-16s %s\n", r.name, r.where);
            return 0;
        } else if (arg == "--batch" && i + 1 < argc) {
            N = std::stoll(argv[++i]);
        } else if (arg == "--min-time" && i + 1 < argc) {
            target = std::atof(argv[++i]);
        } else if (arg == "--rows" && i + 1 < argc) {
            std::string list = argv[++i];
            for (size_t start = 0; start < list.size();) {
                size_t comma = std::min(list.find(',', start), list.size());
                if (comma > start) wanted.push_back(list.substr(start, comma - start));
                start = comma + 1;
            }
        } else {
            std::fprintf(stderr, "bench_cuda_conv: unknown option '%s'\n", arg.c_str());
            usage(stderr);
            return 2;
        }
    }
    for (const std::string& w : wanted) {
        bool known = false;
        for (const ConvRow& r : kRows) known |= w == r.name;
        if (!known) {
            std::fprintf(stderr, "bench_cuda_conv: unknown row '%s' (see --list)\n", w.c_str());
            return 2;
        }
    }
    if (N <= 0) {
        std::fprintf(stderr, "bench_cuda_conv: --batch must be > 0\n");
        return 2;
    }
    if (!td::cuda_available() || td::cuda_is_standin()) {
        std::fprintf(stderr, "bench_cuda_conv: no GPU: %s\n", td::cuda_description().c_str());
        return 1;
    }
    const char* tf32_env = std::getenv("TD_CUDA_TF32");
    const bool tf32 = tf32_env && std::string(tf32_env) == "1";
    const cudnnMathType_t math = tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;

    Cudnn dnn;
    check_cudnn(cudnnCreate(&dnn.h), "cudnnCreate");
    check_cudnn(cudnnCreateTensorDescriptor(&dnn.x), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateTensorDescriptor(&dnn.y), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateTensorDescriptor(&dnn.bias), "cudnnCreateTensorDescriptor");
    check_cudnn(cudnnCreateFilterDescriptor(&dnn.w), "cudnnCreateFilterDescriptor");
    check_cudnn(cudnnCreateConvolutionDescriptor(&dnn.conv), "cudnnCreateConvolutionDescriptor");

    std::printf("- device: %s\n", td::cuda_description().c_str());
    std::printf("- cuDNN %zu; precision: %s\n", cudnnGetVersion(),
                tf32 ? "TF32 (TD_CUDA_TF32=1: our GEMMs on tensor cores; cuDNN CUDNN_DEFAULT_MATH)"
                     : "FP32 (our GEMMs exact FP32; cuDNN CUDNN_FMA_MATH: no tensor cores)");
    std::printf(
        "- ours: backend_for(Device::CUDA).conv2d_forward (with bias) / conv2d_backward (dx, dw, db); "
        "cuDNN: Forward + AddTensor / BackwardData + BackwardFilter + BackwardBias, fastest algorithm by "
        "cudnnFind*\n");
    std::printf(
        "- batch %lld, float32, NCHW; median of 3-30 calls timed with CUDA events (~%.2f s each); "
        "ratio = ours / cuDNN (below 1: ours is faster)\n\n",
        (long long)N, target);
    std::printf(
        "| row | x -> y (kernel, stride) | fwd ours ms | fwd cuDNN ms | fwd ratio | bwd ours ms | bwd cuDNN ms "
        "| bwd ratio | max rel. error | check | cuDNN algos (fwd, data, filter) |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|---|---|\n");
    std::fflush(stdout);

    td::Backend& ours = td::backend_for(td::Device::CUDA);
    td::Generator gen(11);
    const auto dev = td::Device::CUDA;
    const float one = 1.0f, zero = 0.0f;
    double sum[4] = {0, 0, 0, 0};  // fwd ours, fwd cuDNN, bwd ours, bwd cuDNN
    bench::Checks checks;
    for (const ConvRow& r : kRows) {
        if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), r.name) == wanted.end()) continue;
        const int64_t OH = (r.H + 2 * r.pad - r.k) / r.stride + 1;
        const td::Conv2dShape g{N, r.C, r.H, r.H, r.K, r.k, r.k, r.stride, r.pad, 1, OH, OH};
        const td::Tensor x = td::randn({N, r.C, r.H, r.H}, gen, 0.0f, 1.0f, dev);
        const td::Tensor w = td::randn({r.K, r.C, r.k, r.k}, gen, 0.0f, 0.05f, dev);
        const td::Tensor b = td::randn({r.K}, gen, 0.0f, 1.0f, dev);
        const td::Tensor dy = td::randn({N, r.K, OH, OH}, gen, 0.0f, 1.0f, dev);
        auto empty_like = [&](const td::Tensor& t) { return td::Tensor::empty(t.shape(), td::DType::Float32, dev); };
        td::Tensor y = empty_like(dy), dx = empty_like(x), dw = empty_like(w), db = empty_like(b);
        td::Tensor y_ref = empty_like(dy), dx_ref = empty_like(x), dw_ref = empty_like(w), db_ref = empty_like(b);

        // cuDNN's descriptors for this shape, and its fastest algorithms (cudnnFind* runs each).
        check_cudnn(cudnnSetTensor4dDescriptor(dnn.x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)N, (int)r.C, (int)r.H,
                                               (int)r.H),
                    "cudnnSetTensor4dDescriptor(x)");
        check_cudnn(
            cudnnSetTensor4dDescriptor(dnn.y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, (int)N, (int)r.K, (int)OH, (int)OH),
            "cudnnSetTensor4dDescriptor(y)");
        check_cudnn(cudnnSetTensor4dDescriptor(dnn.bias, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, (int)r.K, 1, 1),
                    "cudnnSetTensor4dDescriptor(bias)");
        check_cudnn(cudnnSetFilter4dDescriptor(dnn.w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, (int)r.K, (int)r.C, (int)r.k,
                                               (int)r.k),
                    "cudnnSetFilter4dDescriptor");
        check_cudnn(cudnnSetConvolution2dDescriptor(dnn.conv, (int)r.pad, (int)r.pad, (int)r.stride, (int)r.stride, 1,
                                                    1, CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
                    "cudnnSetConvolution2dDescriptor");
        check_cudnn(cudnnSetConvolutionMathType(dnn.conv, math), "cudnnSetConvolutionMathType");
        int found = 0;
        check_cudnn(cudnnFindConvolutionForwardAlgorithm(dnn.h, dnn.x, dnn.w, dnn.conv, dnn.y, 1, &found, &dnn.fwd),
                    "cudnnFindConvolutionForwardAlgorithm");
        td::check(found == 1 && dnn.fwd.status == CUDNN_STATUS_SUCCESS, "cuDNN found no forward algorithm for ",
                  r.name);
        check_cudnn(
            cudnnFindConvolutionBackwardDataAlgorithm(dnn.h, dnn.w, dnn.y, dnn.conv, dnn.x, 1, &found, &dnn.bwd_data),
            "cudnnFindConvolutionBackwardDataAlgorithm");
        td::check(found == 1 && dnn.bwd_data.status == CUDNN_STATUS_SUCCESS,
                  "cuDNN found no backward-data algorithm for ", r.name);
        check_cudnn(cudnnFindConvolutionBackwardFilterAlgorithm(dnn.h, dnn.x, dnn.y, dnn.conv, dnn.w, 1, &found,
                                                                &dnn.bwd_filter),
                    "cudnnFindConvolutionBackwardFilterAlgorithm");
        td::check(found == 1 && dnn.bwd_filter.status == CUDNN_STATUS_SUCCESS,
                  "cuDNN found no backward-filter algorithm for ", r.name);
        const size_t need = std::max({dnn.fwd.memory, dnn.bwd_data.memory, dnn.bwd_filter.memory});
        if (need > dnn.workspace_bytes) {
            if (dnn.workspace) check_cuda(cudaFree(dnn.workspace), "cudaFree(workspace)");
            check_cuda(cudaMalloc(&dnn.workspace, need), "cudaMalloc(workspace)");
            dnn.workspace_bytes = need;
        }

        auto cudnn_forward = [&] {
            check_cudnn(cudnnSetConvolutionMathType(dnn.conv, dnn.fwd.mathType), "cudnnSetConvolutionMathType");
            check_cudnn(
                cudnnConvolutionForward(dnn.h, &one, dnn.x, x.data_f32(), dnn.w, w.data_f32(), dnn.conv, dnn.fwd.algo,
                                        dnn.workspace, dnn.workspace_bytes, &zero, dnn.y, y_ref.data_f32()),
                "cudnnConvolutionForward");
            check_cudnn(cudnnAddTensor(dnn.h, &one, dnn.bias, b.data_f32(), &one, dnn.y, y_ref.data_f32()),
                        "cudnnAddTensor");
        };
        auto cudnn_backward = [&] {
            check_cudnn(cudnnSetConvolutionMathType(dnn.conv, dnn.bwd_data.mathType), "cudnnSetConvolutionMathType");
            check_cudnn(cudnnConvolutionBackwardData(dnn.h, &one, dnn.w, w.data_f32(), dnn.y, dy.data_f32(), dnn.conv,
                                                     dnn.bwd_data.algo, dnn.workspace, dnn.workspace_bytes, &zero,
                                                     dnn.x, dx_ref.data_f32()),
                        "cudnnConvolutionBackwardData");
            check_cudnn(cudnnSetConvolutionMathType(dnn.conv, dnn.bwd_filter.mathType), "cudnnSetConvolutionMathType");
            check_cudnn(cudnnConvolutionBackwardFilter(dnn.h, &one, dnn.x, x.data_f32(), dnn.y, dy.data_f32(), dnn.conv,
                                                       dnn.bwd_filter.algo, dnn.workspace, dnn.workspace_bytes, &zero,
                                                       dnn.w, dw_ref.data_f32()),
                        "cudnnConvolutionBackwardFilter");
            check_cudnn(
                cudnnConvolutionBackwardBias(dnn.h, &one, dnn.y, dy.data_f32(), &zero, dnn.bias, db_ref.data_f32()),
                "cudnnConvolutionBackwardBias");
        };
        auto ours_forward = [&] { ours.conv2d_forward(x, w, b, y, g); };
        auto ours_backward = [&] { ours.conv2d_backward(x, w, dy, dx, dw, db, g); };

        const double t[4] = {bench::time_gpu(ours_forward, target, 30), bench::time_gpu(cudnn_forward, target, 30),
                             bench::time_gpu(ours_backward, target, 30), bench::time_gpu(cudnn_backward, target, 30)};
        check_cuda(cudaDeviceSynchronize(), r.name);
        for (int i = 0; i < 4; ++i) sum[i] += t[i];
        const double err = std::max({bench::max_rel_error(y, y_ref), bench::max_rel_error(dx, dx_ref),
                                     bench::max_rel_error(dw, dw_ref), bench::max_rel_error(db, db_ref)});
        const double tol = bench::tolerance(tf32);
        const char* verdict = checks.add(std::string(r.name) + ": ours vs cuDNN (y, dx, dw, db)", err, tol);
        {  // cuDNN itself, against the CPU: sample 0's forward (one sample keeps the CPU's share short)
            const td::Conv2dShape g1{1, r.C, r.H, r.H, r.K, r.k, r.k, r.stride, r.pad, 1, OH, OH};
            const td::Tensor x0 = x.narrow(0, 0, 1).to(td::Device::CPU), wc = w.to(td::Device::CPU),
                             bc = b.to(td::Device::CPU);
            td::Tensor y0 = td::Tensor::empty({1, r.K, OH, OH}, td::DType::Float32, td::Device::CPU);
            td::backend_for(td::Device::CPU).conv2d_forward(x0, wc, bc, y0, g1);
            checks.add(std::string(r.name) + ": cuDNN vs the CPU (sample 0's y)",
                       bench::max_rel_error(y_ref.narrow(0, 0, 1), y0), tol);
        }
        std::printf(
            "| %s | %lldx%lldx%lld -> %lldx%lldx%lld (%lldx%lld, s%lld) | %.3f | %.3f | %.2f | %.3f | %.3f | %.2f "
            "| %.1e | %s | %d, %d, %d |\n",
            r.name, (long long)r.C, (long long)r.H, (long long)r.H, (long long)r.K, (long long)OH, (long long)OH,
            (long long)r.k, (long long)r.k, (long long)r.stride, t[0] * 1e3, t[1] * 1e3, t[0] / t[1], t[2] * 1e3,
            t[3] * 1e3, t[2] / t[3], err, verdict, (int)dnn.fwd.algo, (int)dnn.bwd_data.algo, (int)dnn.bwd_filter.algo);
        std::fflush(stdout);
    }
    if (sum[1] > 0)
        std::printf("| **sum** | | %.3f | %.3f | %.2f | %.3f | %.3f | %.2f | | | |\n", sum[0] * 1e3, sum[1] * 1e3,
                    sum[0] / sum[1], sum[2] * 1e3, sum[3] * 1e3, sum[2] / sum[3]);
    if (dnn.workspace) cudaFree(dnn.workspace);
    cudnnDestroyConvolutionDescriptor(dnn.conv);
    cudnnDestroyFilterDescriptor(dnn.w);
    cudnnDestroyTensorDescriptor(dnn.bias);
    cudnnDestroyTensorDescriptor(dnn.y);
    cudnnDestroyTensorDescriptor(dnn.x);
    cudnnDestroy(dnn.h);
    return checks.report("bench_cuda_conv");
}

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {  // td::Error from a CUDA or cuDNN call, a bad number
        std::fprintf(stderr, "bench_cuda_conv: %s\n", e.what());
        return 1;
    }
}
