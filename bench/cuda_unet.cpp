// bench/cuda_unet.cpp: a DDPM training step on the GPU with the DDPM paper's CIFAR-10 UNet,
// for scripts/gpu-check.sh; bench/cuda_unet_torch.py is the same step in PyTorch.
//
// The model (Ho et al. 2020, appendix B, CIFAR-10): 3x32x32 images, ch 128, mults 1,2,2,2,
// 2 res blocks per level, self-attention at 16x16, dropout 0.1, GroupNorm with 32 groups:
// about 35.7 M parameters. The data are random (a batch of x_0 uniform in [-1, 1], drawn
// once): the speed of a step does not depend on what the pixels are.
//
// One step (DDPM Algorithm 1): t ~ U{0..999}, eps ~ N(0, I) drawn on the device,
// x_t = q_sample(x_0, t, eps), loss = L_simple = mse(eps_theta(x_t, t), eps), backward,
// AdamW (lr 2e-4, weight decay 1e-2); the model in train() (dropout on). No gradient
// clipping and no EMA (`diffuse train` adds both: two passes over the parameters, small
// next to this).
//
// Method: --warmup steps (default 3: the first steps pay for every cudaMalloc until the
// caching allocator holds what a step needs), then --steps steps (default 20) timed one by
// one on the host clock, fewer if they pass --max-time seconds (default 60; 3 at least).
// loss.item() copies the loss to the host at the end of each step, which waits for the
// GPU: a step's time is the GPU's time for it, not the time to queue it. The median step
// is reported, as images/s.
//
// Memory: the GPU memory in use (cudaMemGetInfo: total - free) after the timed steps,
// minus what was in use before the model was built. The caching allocator (cuda/memory.cu)
// never gives a block back while memory lasts, so that is the step's high-water mark of
// memory held (PyTorch's torch.cuda.max_memory_reserved() is the same quantity).
//
// Output (markdown, for the report): notes lines starting with "- ", then one table row
//   | side | device | batch | steps | median step ms | images/s | fastest step ms | GPU memory MiB |
//
//   build/bench_cuda_unet                                  the DDPM CIFAR-10 step, batch 128, on the GPU
//   TD_CUDA_TF32=1 build/bench_cuda_unet                   the same with tensor-core (TF32) GEMMs
//   build/bench_cuda_unet --device cpu --batch 8 --steps 2 --warmup 1    a smoke run on the CPU
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "bench/timing.h"
#include "bench/unet_options.h"
#include "diffusion/forward_process.h"
#include "diffusion/schedule.h"
#include "diffusion/unet.h"
#include "nn/optim.h"
#include "td.h"
#include "tensor/device.h"

namespace {

// Bytes of GPU memory in use on the current device (every process's, the context included).
// 0 when there is no real GPU (the CPU, or the host-memory stand-in).
size_t gpu_bytes_in_use(td::Device device) {
    if (device != td::Device::CUDA || td::cuda_is_standin()) return 0;
    size_t free_b = 0, total_b = 0;
    if (cudaMemGetInfo(&free_b, &total_b) != cudaSuccess) return 0;
    return total_b - free_b;
}

void usage(FILE* f) {
    std::fprintf(f,
                 "usage: bench_cuda_unet [--device cuda|cpu] [--batch 128] [--steps 20] [--warmup 3] [--max-time 60]\n"
                 "                       [--ch 128] [--mults 1,2,2,2] [--res-blocks 2] [--attn-res 16] [--heads 1]\n"
                 "                       [--dropout 0.1] [--groups 32] [--image-size 32] [--in-channels 3]\n"
                 "  --device      where the model trains (default cuda; cpu for a smoke run without a GPU)\n"
                 "  --batch       images per step (default 128, the DDPM paper's)\n"
                 "  --steps       timed steps (default 20); --warmup untimed steps before them (default 3)\n"
                 "  --max-time    stop timing after this many seconds of timed steps (3 steps at least)\n"
                 "  the rest      the UNet (default: the DDPM paper's CIFAR-10 model, ~35.7 M parameters)\n"
                 "environment: TD_CUDA_TF32=1 runs the GEMMs on tensor cores (TF32), cuda/gemm.h\n");
}

}  // namespace

int run(int argc, char** argv) {
    const char* prog = "bench_cuda_unet";
    std::string value, device_name = "cuda";
    int64_t batch = 128, steps = 20, warmup = 3;
    double max_time = 60.0;
    td::diffusion::UNetConfig c;  // the DDPM paper's CIFAR-10 model
    c.in_channels = 3;
    c.image_size = 32;
    c.ch = 128;
    c.mults = {1, 2, 2, 2};
    c.num_res_blocks = 2;
    c.attn_res = {16};
    c.heads = 1;
    c.dropout = 0.1f;
    c.groups = 32;
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return 0;
        } else if (bench::option_value(prog, "--device", argc, argv, i, value)) {
            device_name = value;
        } else if (bench::option_value(prog, "--batch", argc, argv, i, value)) {
            batch = std::stoll(value);
        } else if (bench::option_value(prog, "--steps", argc, argv, i, value)) {
            steps = std::stoll(value);
        } else if (bench::option_value(prog, "--warmup", argc, argv, i, value)) {
            warmup = std::stoll(value);
        } else if (bench::option_value(prog, "--max-time", argc, argv, i, value)) {
            max_time = std::stod(value);
        } else if (bench::unet_config_option(prog, argc, argv, i, c)) {
            // --ch, --mults, ... (bench/unet_options.h)
        } else {
            return bench::unknown_option(prog, arg.c_str(), usage);
        }
    }
    if (batch <= 0 || steps <= 0 || warmup < 1) {
        std::fprintf(stderr, "%s: --batch and --steps must be > 0, --warmup >= 1\n", prog);
        return 2;
    }
    const td::Device device = td::parse_device(device_name);  // td::Error saying why when there is no GPU
    const size_t bytes_before = gpu_bytes_in_use(device);     // the context, before any tensor of ours

    td::diffusion::UNet model(c);  // validates the config
    model.to(device);              // build optimizers after to(): their state is made beside the parameters
    model.train();
    td::nn::AdamW opt(model.named_parameters(), {.lr = 2e-4f});
    const char* tf32 = std::getenv("TD_CUDA_TF32");
    const bool use_tf32 = device == td::Device::CUDA && !td::cuda_is_standin() && tf32 && std::string(tf32) == "1";

    std::printf("- ours: td::diffusion::UNet, nn::AdamW (lr 2e-4), float32, %s GEMMs\n",
                device == td::Device::CPU ? "CPU (Eigen)"
                : use_tf32                ? "TF32 tensor-core (TD_CUDA_TF32=1)"
                                          : "exact FP32");
    std::printf("- device: %s\n", td::device_description(device).c_str());
    std::printf("- model: %s, image %lldx%lldx%lld; %lld parameters\n", c.describe().c_str(), (long long)c.in_channels,
                (long long)c.image_size, (long long)c.image_size, (long long)model.num_parameters());
    std::printf(
        "- method: %lld warm-up step(s), then up to %lld steps (or %.0f s) timed one by one, each ending "
        "with loss.item(), which waits for the GPU; the median\n",
        (long long)warmup, (long long)steps, max_time);
    std::fflush(stdout);

    td::Generator gen(1234);
    auto schedule = td::diffusion::Schedule::named("linear", 1000);
    const td::Shape shape = {batch, c.in_channels, c.image_size, c.image_size};
    const td::Tensor x0 = td::rand(shape, gen, -1.0f, 1.0f, device);  // stands in for a batch of images in [-1, 1]

    auto step = [&] {
        td::Tensor t = td::randint(schedule.T, {batch}, gen).to(device);  // (B), drawn on the host: 128 numbers
        td::Tensor eps = td::randn(shape, gen, 0.0f, 1.0f, device);
        td::Tensor xt = td::diffusion::q_sample(schedule, x0, t, eps);
        td::Tensor loss = td::diffusion::l_simple(model.forward(xt, t), eps);
        opt.zero_grad();
        loss.backward();
        opt.step();
        return loss.item();  // waits for the GPU
    };

    // conv_out starts at zero, so the first loss is mean(eps^2) ~ 1: the step computes what it should.
    float first = step();
    std::printf("- first loss: %.4f (expected ~1: conv_out starts at zero)\n", first);
    if (!(std::fabs(first - 1.0f) < 0.1f)) {
        std::fprintf(stderr, "%s: first training loss %g, expected ~1\n", prog, first);
        return 1;
    }
    for (int64_t i = 1; i < warmup; ++i) step();
    std::vector<double> times;
    float last = 0.0f;
    double total = 0.0;
    for (int64_t i = 0; i < steps && (i < 3 || total < max_time); ++i) {
        double t0 = bench::now_s();
        last = step();
        times.push_back(bench::now_s() - t0);
        total += times.back();
    }
    if (!std::isfinite(last)) {
        std::fprintf(stderr, "%s: the loss is not finite after %lld steps\n", prog, (long long)(warmup + steps));
        return 1;
    }
    const double med = bench::median(times), fastest = *std::min_element(times.begin(), times.end());
    const size_t bytes_after = gpu_bytes_in_use(device);
    std::printf("- last loss: %.4f\n", last);
    std::string mem = bytes_after > bytes_before ? std::to_string((bytes_after - bytes_before) >> 20) : "-";
    std::printf("| tinydiffusion%s | %s | %lld | %lld | %.1f | %.1f | %.1f | %s |\n", use_tf32 ? " (TF32)" : " (FP32)",
                td::device_name(device), (long long)batch, (long long)times.size(), med * 1e3, batch / med,
                fastest * 1e3, mem.c_str());
    return 0;
}

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const std::exception& e) {  // td::Error (no GPU, a bad config, a CUDA error), a bad number
        std::fprintf(stderr, "bench_cuda_unet: %s\n", e.what());
        return 1;
    }
}
