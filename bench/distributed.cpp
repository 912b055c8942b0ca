// bench/distributed.cpp: data-parallel training steps per second, for
// `bench/run_distributed.sh --steps-only`, which runs it once without a communicator and then under
// `mpirun -np 1` and `-np 2`.
//
// One step, as a P-rank run would take it (docs/distributed.md): every rank draws the same
// global minibatch of P * B images, timesteps and noises and keeps its slice of B
// (distributed/shard.h); forward, L_simple, backward; the gradients averaged over the ranks
// (allreduce_mean, bucketed); AdamW. The model is a small UNet (diffusion/unet.h), its
// weights broadcast from rank 0 first. Data: uniform noise standing in for images in
// [-1, 1] (the bench measures time, not learning).
//
// Output (rank 0): '#' comment lines, then
//   result RANKS BATCH_PER_RANK MEDIAN_STEP_S MEDIAN_ALLREDUCE_S STEPS
// where a step runs from the first op of forward to the end of the optimizer step, and
// the all-reduce time includes waiting for the slowest rank to get there.
//
//   bench_distributed [--batch 16] [--steps 20] [--no-comm] [--ch 16] [--mults 1,2]
//                     [--image-size 16] [--res-blocks 1]
//   --no-comm: one process, no MPI at all (the baseline a distributed run is compared with)
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "diffusion/forward_process.h"
#include "diffusion/schedule.h"
#include "diffusion/unet.h"
#include "distributed/bucket.h"
#include "distributed/communicator.h"
#include "distributed/shard.h"
#include "nn/optim.h"
#include "td.h"

using namespace td;

namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::vector<int64_t> int_list(const std::string& s) {
    std::vector<int64_t> v;
    size_t start = 0;
    while (start < s.size()) {
        size_t comma = s.find(',', start);
        if (comma == std::string::npos) comma = s.size();
        v.push_back(std::stoll(s.substr(start, comma - start)));
        start = comma + 1;
    }
    return v;
}

int run(int argc, char** argv) {
    int64_t B = 16;
    int steps = 20, warmup = 2;
    bool use_comm = true;
    diffusion::UNetConfig c;  // small: a 2-level UNet without attention on 16 x 16 images
    c.ch = 16;
    c.mults = {1, 2};
    c.num_res_blocks = 1;
    c.attn_res = {};
    c.image_size = 16;
    c.dropout = 0.0f;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            check(i + 1 < argc, "bench_distributed: ", a, " needs a value");
            return argv[++i];
        };
        if (a == "--batch") B = std::stoll(next());
        else if (a == "--steps") steps = std::stoi(next());
        else if (a == "--no-comm") use_comm = false;
        else if (a == "--ch") c.ch = std::stoll(next());
        else if (a == "--mults") c.mults = int_list(next());
        else if (a == "--image-size") c.image_size = std::stoll(next());
        else if (a == "--res-blocks") c.num_res_blocks = std::stoll(next());
        else
            fail("bench_distributed: unknown option '", a,
                 "' (--batch --steps --no-comm --ch --mults --image-size --res-blocks)");
    }
    check(B > 0 && steps > 0, "bench_distributed: --batch and --steps must be positive");

    // MPI first, before anything else (distributed/communicator.h).
    std::unique_ptr<dist::Communicator> comm = use_comm ? dist::init_distributed() : dist::local_communicator();
    const int P = comm->size(), r = comm->rank();

    diffusion::UNet model(c);
    model.train();
    std::vector<Tensor> params = model.parameters();
    comm->broadcast(params);
    nn::AdamW opt(model.named_parameters(), {.lr = 2e-4f});
    auto schedule = diffusion::Schedule::named("linear", 1000);
    const Shape global_shape = {P * B, c.in_channels, c.image_size, c.image_size};

    if (comm->is_root()) {
        size_t grad_bytes = (size_t)model.num_parameters() * 4;
        std::printf("# comm %s\n", comm->description().c_str());
        std::printf(
            "# config %s, image %lldx%lld; %lld parameters in %zu tensors, %.2f MB of gradients, %zu bucket(s)\n",
            c.describe().c_str(), (long long)c.image_size, (long long)c.image_size, (long long)model.num_parameters(),
            params.size(), grad_bytes / 1e6, dist::plan_buckets(params, dist::Options::from_env().bucket_bytes).size());
        std::printf("# threads %d per rank\n", omp_get_max_threads());
        std::fflush(stdout);
    }

    std::vector<double> step_s, comm_s;
    for (int s = 0; s < warmup + steps; ++s) {
        // The global minibatch, the same on every rank (one generator per step), then this
        // rank's slice of it.
        Generator gen(1000 + (uint64_t)s);
        Tensor x0 = dist::shard(rand(global_shape, gen, -1.0f, 1.0f), r, P);
        Tensor t = dist::shard(randint(schedule.T, {P * B}, gen), r, P);
        Tensor eps = dist::shard(randn(global_shape, gen), r, P).contiguous();
        comm->barrier();  // every rank starts the step together: the times are the step's own

        double t0 = now_s();
        opt.zero_grad();
        Tensor loss = diffusion::l_simple(model.forward(diffusion::q_sample(schedule, x0, t, eps), t), eps);
        loss.backward();
        double t1 = now_s();
        std::vector<Tensor> grads;
        for (const Tensor& p : params) grads.push_back(p.grad());
        comm->allreduce_mean(grads);
        double t2 = now_s();
        opt.step();
        double t3 = now_s();
        if (s >= warmup) {
            step_s.push_back(t3 - t0);
            comm_s.push_back(t2 - t1);
        }
    }
    if (comm->is_root())
        std::printf("result %d %lld %.6e %.6e %d\n", P, (long long)B, median(step_s), median(comm_s), steps);
    comm->finalize();
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run(argc, argv);
    } catch (const Error& e) {
        std::fprintf(stderr, "bench_distributed: %s\n", e.what());
        return 1;
    }
}
