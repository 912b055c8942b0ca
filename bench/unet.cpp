// bench/unet.cpp: the whole UNet (diffusion/unet.h), training and sampling, for
// bench/run_unet.sh; bench/unet_torch_bench.py does the same with bench/unet_torch.py
// and prints the same lines, so the two compare configuration by configuration.
//
// One configuration per process, so that the process's peak resident memory (ru_maxrss)
// is that configuration's:
//   --mode train   a full training step at --batch B: t ~ U{0..999}, eps ~ N(0, I),
//                  x_t = q_sample(x_0, t, eps), loss = L_simple = mse(model(x_t, t), eps),
//                  backward, Adam step (lr 2e-4). The model is in train() (dropout on).
//                  Method (bench/timing.h): warm-up step(s), then reps = clamp(target /
//                  t_warmup, 3, 1000) steps timed one by one; the median step.
//   --mode sample  DDIM (eq. 12, eta 0) with --steps S model calls on a batch of B
//                  images, td::diffusion::sample on the "linear" schedule (T = 1000),
//                  model in eval() under no_grad; after one untimed forward pass (the
//                  warm-up), the whole loop timed once.
//
// The network is the demo's unless told otherwise: --ch 32 --mults 1,2,2 --res-blocks 2
// --attn-res 7 --heads 1 --dropout 0.1 --groups 8 --image-size 28 --in-channels 1.
// Its weights are the UNet's own initialisation (conv_out zero), so the first training
// loss is E[eps^2] ~ 1: the check that the timed step computes what it should.
//
// Output: comment lines start with '#'; then one of
//   train BATCH MEDIAN_S REPS MIN_S
//   sample BATCH STEPS SECONDS
// and last
//   mem PEAK_RSS_KB START_RSS_KB      (ru_maxrss; VmRSS when main() started)
//
//   build/bench_unet --mode train --batch 64 [--quick] [--min-time S] [--threads N]
//   build/bench_unet --mode sample --batch 64 --steps 50
#include <omp.h>
#include <sys/resource.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "bench/timing.h"
#include "bench/unet_options.h"
#include "diffusion/forward_process.h"
#include "diffusion/sampler.h"
#include "diffusion/schedule.h"
#include "diffusion/unet.h"
#include "nn/optim.h"
#include "td.h"

namespace {

// The process's resident memory now (VmRSS), in KB.
long rss_now_kb() {
    std::ifstream f("/proc/self/status");
    for (std::string line; std::getline(f, line);)
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    return -1;
}

long peak_rss_kb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;  // KB on Linux
}

void usage(FILE* f) {
    std::fprintf(f,
                 "usage: bench_unet --mode train|sample [--batch N] [--steps S] [--quick] [--min-time SECONDS]\n"
                 "                  [--threads N] [--ch 32] [--mults 1,2,2] [--res-blocks 2] [--attn-res 7]\n"
                 "                  [--heads 1] [--dropout 0.1] [--groups 8] [--image-size 28] [--in-channels 1]\n"
                 "  --mode        train: one training step (fwd, loss, bwd, Adam), timed; sample: DDIM, timed\n"
                 "  --batch       images per step (default 128 for train, 64 for sample)\n"
                 "  --steps       DDIM steps (model calls) for sample (default 50)\n"
                 "  --quick       the fewest timed training steps (3), for a smoke run\n"
                 "  --min-time    seconds of timed training steps to aim for (default 10)\n"
                 "  --threads     OpenMP threads (default: OMP_NUM_THREADS or all cores)\n");
}

}  // namespace

int run(int argc, char** argv) {
    const char* prog = "bench_unet";
    long start_rss = rss_now_kb();
    std::string mode, value;
    int64_t batch = 0, steps = 50;
    double target = 10.0;
    td::diffusion::UNetConfig c;  // the defaults are the demo config
    for (int i = 1; i < argc; ++i) {
        std::string arg = argv[i];
        int exit_code = -1;
        if (arg == "--quick") {
            target = 0.0;  // measure() then times its minimum, 3 steps
        } else if (bench::common_option(prog, argc, argv, i, target, usage, &exit_code)) {
            if (exit_code >= 0) return exit_code;
        } else if (bench::option_value(prog, "--mode", argc, argv, i, value)) {
            mode = value;
        } else if (bench::option_value(prog, "--batch", argc, argv, i, value)) {
            batch = std::stoll(value);
        } else if (bench::option_value(prog, "--steps", argc, argv, i, value)) {
            steps = std::stoll(value);
        } else if (bench::option_value(prog, "--threads", argc, argv, i, value)) {
            omp_set_num_threads(std::stoi(value));
        } else if (bench::unet_config_option(prog, argc, argv, i, c)) {
            // --ch, --mults, ... (bench/unet_options.h)
        } else {
            return bench::unknown_option(prog, arg.c_str(), usage);
        }
    }
    if (mode != "train" && mode != "sample") {
        std::fprintf(stderr, "%s: --mode train or --mode sample is needed\n", prog);
        usage(stderr);
        return 2;
    }
    if (batch <= 0) batch = mode == "train" ? 128 : 64;

    td::diffusion::UNet model(c);  // validates the config (td::Error, reported by main)
    std::printf("# impl tinydiffusion td::diffusion::UNet, nn::Adam, td::diffusion::sample (DDIM), float32, CPU\n");
    std::printf("# config %s, image %lldx%lldx%lld; %lld parameters\n", c.describe().c_str(), (long long)c.in_channels,
                (long long)c.image_size, (long long)c.image_size, (long long)model.num_parameters());
    std::printf("# threads omp_get_max_threads=%d\n# simd %s\n", omp_get_max_threads(),
                Eigen::SimdInstructionSetsInUse());
    std::printf(
        "# method train: warm-up then median of >= 3 timed steps, target %.0f s; sample: one timed run after one "
        "warm-up forward\n",
        target);
    std::printf(
        "# columns: train BATCH MEDIAN_S REPS MIN_S | sample BATCH STEPS SECONDS | mem PEAK_RSS_KB START_RSS_KB\n");
    std::fflush(stdout);

    td::Generator gen(1234);
    auto schedule = td::diffusion::Schedule::named("linear", 1000);
    td::Shape shape = {batch, c.in_channels, c.image_size, c.image_size};

    if (mode == "train") {
        model.train();
        td::nn::Adam opt(model.named_parameters(), {.lr = 2e-4f});
        td::Tensor x0 = td::rand(shape, gen, -1.0f, 1.0f);  // stands in for a batch of images in [-1, 1]
        auto step = [&] {
            td::Tensor t = td::randint(schedule.T, {batch}, gen);  // (B)
            td::Tensor eps = td::randn(shape, gen);
            td::Tensor xt = td::diffusion::q_sample(schedule, x0, t, eps);
            td::Tensor loss = td::diffusion::l_simple(model.forward(xt, t), eps);
            opt.zero_grad();
            loss.backward();
            opt.step();
            return loss.item();
        };
        // conv_out starts at zero: the first loss is mean(eps^2) ~ 1.
        auto first_loss_ok = [](float loss) {
            if (std::fabs(loss - 1.0f) < 0.1f) return true;
            std::fprintf(stderr, "bench_unet: first training loss %g, expected ~1\n", loss);
            return false;
        };
        bench::Timing tm = bench::measure(
            target, [] {}, step, first_loss_ok);
        if (!tm.ok) return 1;
        std::printf("train %lld %.6e %d %.6e\n", (long long)batch, tm.median_s, tm.reps, tm.min_s);
    } else {
        model.eval();
        td::diffusion::SamplerOptions o;
        o.sampler = td::diffusion::Sampler::Ddim;
        o.steps = steps;
        td::diffusion::Denoiser eps_model = [&](const td::Tensor& x, const td::Tensor& t) {
            return model.forward(x, t);
        };
        td::Tensor x_T = td::randn(shape, gen);
        {
            td::NoGradGuard no_grad;
            eps_model(x_T, td::Tensor::from_vector_i64(std::vector<int64_t>(batch, 999), {batch}));
        }
        double t0 = bench::now_s();
        td::Tensor x0 = td::diffusion::sample(schedule, eps_model, x_T, o, gen);
        double seconds = bench::now_s() - t0;
        for (float v : x0.to_vector())
            if (!std::isfinite(v)) {
                std::fprintf(stderr, "bench_unet: a sample is not finite\n");
                return 1;
            }
        std::printf("sample %lld %lld %.6e\n", (long long)batch, (long long)steps, seconds);
    }
    std::printf("mem %ld %ld\n", peak_rss_kb(), start_rss);
    return 0;
}

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const td::Error& e) {  // a bad config, most likely
        std::fprintf(stderr, "bench_unet: %s\n", e.what());
        return 1;
    }
}
