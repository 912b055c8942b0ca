// tests/mpi/ranks.cpp: the program tests/test_distributed.cpp runs under mpirun
// (bash distributed/mpirun.sh -np 2 build/test_mpi_ranks MODE); built as
// $(BUILD)/test_mpi_ranks beside run_tests. Every rank runs the same code; each check
// prints "rank R: ok: ..." or "rank R: FAILED: ...", and a rank with a failed check exits 1.
//
// Modes:
//   checks      allreduce_mean = the mean (odd sizes, views, many small buckets); broadcast
//               of float and int64 tensors and of initial weights; ranks that pass
//               different tensors get a td::Error, not garbage; and the equivalence: an MLP
//               trained 5 AdamW steps on P ranks with per-rank batch B ends with the weights
//               of the same MLP trained on 1 rank with batch P * B on the same samples
//               (each rank also trains that reference itself), on every rank alike.
//   fail-abort  rank 1 fails (a td::Error) before a collective and calls abort(): the job
//               ends at once, non-zero, with rank 1's message.
//   fail-crash  rank 1 dies (_Exit, no cleanup) before a collective: mpirun ends the job.
//   fail-stall  rank 1 stalls (sleeps 120 s) before a collective: rank 0's all-reduce
//               times out after TD_DIST_TIMEOUT s and ends the job, non-zero, saying so.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "distributed/communicator.h"
#include "distributed/shard.h"
#include "nn/layers.h"
#include "nn/linear.h"
#include "nn/optim.h"
#include "td.h"

using namespace td;

namespace {

int g_rank = 0, g_failures = 0;

void expect(bool ok, const std::string& what) {
    std::printf("rank %d: %s: %s\n", g_rank, ok ? "ok" : "FAILED", what.c_str());
    std::fflush(stdout);
    if (!ok) ++g_failures;
}

double max_abs_diff(const Tensor& a, const Tensor& b) {
    std::vector<float> x = a.to_vector(), y = b.to_vector();
    if (x.size() != y.size()) return INFINITY;
    double m = 0;
    for (size_t i = 0; i < x.size(); ++i) m = std::max(m, std::fabs((double)x[i] - y[i]));
    return m;
}

// Element i of rank r's test tensor number k: different on every rank.
float value(int r, int k, int64_t i) { return (float)((r + 1) * 0.5 + k * 0.25 + i * 0.001); }

// Tensors of awkward sizes (a 0-d one, one larger than a bucket, a transposed view), each
// filled with value(rank, k, i) in row-major order.
std::vector<Tensor> odd_tensors(int rank) {
    std::vector<Shape> shapes = {{}, {1}, {7}, {3, 5}, {1000}, {2, 3, 4}, {4, 6}, {13}};
    std::vector<Tensor> ts;
    for (size_t k = 0; k < shapes.size(); ++k) {
        std::vector<float> v((size_t)numel_of(shapes[k]));
        for (size_t i = 0; i < v.size(); ++i) v[i] = value(rank, (int)k, (int64_t)i);
        ts.push_back(Tensor::from_vector(v, shapes[k]));
    }
    // tensor 6: a (4, 6) view of a (6, 4) tensor, not contiguous; its row-major values
    // are value(rank, 6, i) like the others'
    Tensor base = Tensor::empty({6, 4});
    Tensor view = base.transpose(0, 1);
    view.copy_(ts[6]);
    ts[6] = view;
    return ts;
}

void check_allreduce(dist::Communicator& comm) {
    int P = comm.size();
    std::vector<Tensor> ts = odd_tensors(comm.rank());
    comm.allreduce_mean(ts);
    comm.allreduce_mean(ts);  // a second call reuses the plan; the mean of equal tensors is unchanged
    double worst = 0;
    for (size_t k = 0; k < ts.size(); ++k) {
        std::vector<float> got = ts[k].to_vector();
        for (size_t i = 0; i < got.size(); ++i) {
            double want = 0;
            for (int r = 0; r < P; ++r) want += value(r, (int)k, (int64_t)i);
            want /= P;
            worst = std::max(worst, std::fabs(got[i] - want));
        }
    }
    char line[200];
    std::snprintf(line, sizeof line,
                  "allreduce_mean of 8 tensors (0-d, a view, one larger than a bucket) = the mean over %d ranks "
                  "(max error %.3g)",
                  P, worst);
    expect(worst < 1e-5, line);
    expect(!ts[6].is_contiguous(), "allreduce_mean writes a view in place");
}

void check_broadcast(dist::Communicator& comm) {
    std::vector<Tensor> ts = odd_tensors(comm.rank());
    ts.push_back(Tensor::from_vector_i64({10 + comm.rank(), 20, 30 + 7 * comm.rank()}, {3}));
    comm.broadcast(ts);
    std::vector<Tensor> root = odd_tensors(0);
    double worst = 0;
    for (size_t k = 0; k < root.size(); ++k) worst = std::max(worst, max_abs_diff(ts[k], root[k]));
    expect(worst == 0, "broadcast: every float tensor = rank 0's");
    expect(ts.back().to_vector_i64() == std::vector<int64_t>{10, 20, 30}, "broadcast: an int64 tensor = rank 0's");
}

void check_layout_mismatch(dist::Communicator& comm) {
    std::vector<Tensor> ts = {zeros({comm.rank() == 0 ? 4 : 5})};
    std::string msg;
    try {
        comm.allreduce_mean(ts);
    } catch (const Error& e) {
        msg = e.what();
    }
    expect(comm.size() == 1 || msg.find("the ranks pass different tensors") != std::string::npos,
           "ranks with different tensors get a td::Error (" + msg + ")");
}

// The MLP of the equivalence check; `seed` sets its initial weights.
std::shared_ptr<nn::Sequential> make_mlp(uint64_t seed) {
    Generator gen(seed);
    auto m = std::make_shared<nn::Sequential>();
    m->push_back(std::make_shared<nn::Linear>(5, 16, true, gen));
    m->push_back(std::make_shared<nn::SiLU>());
    m->push_back(std::make_shared<nn::Linear>(16, 3, true, gen));
    return m;
}

// One AdamW step of `model` on the samples `indices` of (X, Y), mse loss (a mean over the
// batch). With a communicator, the gradients are averaged over the ranks first.
void train_step(nn::Sequential& model, nn::Optimizer& opt, const Tensor& X, const Tensor& Y,
                const std::vector<int64_t>& indices, dist::Communicator* comm) {
    Tensor idx = Tensor::from_vector_i64(indices, {(int64_t)indices.size()});
    opt.zero_grad();
    Tensor loss = mse_loss(model.forward(index_select(X, 0, idx)), index_select(Y, 0, idx));
    loss.backward();
    if (comm) {
        std::vector<Tensor> grads;
        for (const Tensor& p : model.parameters()) grads.push_back(p.grad());
        comm->allreduce_mean(grads);
    }
    opt.step();
}

void check_equivalence(dist::Communicator& comm) {
    const int P = comm.size(), B = 4, steps = 5, N = 64;
    Generator data_gen(7);
    Tensor X = randn({N, 5}, data_gen), Y = randn({N, 3}, data_gen);

    // Every rank starts from different weights; the broadcast makes them rank 0's.
    auto model = make_mlp(100 + (uint64_t)comm.rank());
    std::vector<Tensor> params = model->parameters();
    comm.broadcast(params);
    auto initial = make_mlp(100);  // rank 0's initial weights, rebuilt here
    double start_diff = 0;
    for (size_t i = 0; i < params.size(); ++i)
        start_diff = std::max(start_diff, max_abs_diff(params[i], initial->parameters()[i]));
    expect(start_diff == 0, "broadcast of the initial weights: every rank starts from rank 0's model");

    nn::AdamWOptions adamw{.lr = 1e-2f, .weight_decay = 0.1f};
    nn::AdamW opt(model->named_parameters(), adamw);
    auto reference = make_mlp(100);  // 1 rank, batch P * B (trained on every rank, checked on all)
    nn::AdamW ref_opt(reference->named_parameters(), adamw);
    for (int s = 0; s < steps; ++s) {
        // The global minibatch of this step: the P * B indices a 1-rank run would use.
        std::vector<int64_t> global;
        for (int k = 0; k < P * B; ++k) global.push_back((s * 13 + k * 7) % N);
        train_step(*model, opt, X, Y, dist::shard(global, comm.rank(), P), &comm);
        train_step(*reference, ref_opt, X, Y, global, nullptr);
    }
    double diff = 0, moved = 0;
    for (size_t i = 0; i < params.size(); ++i) {
        diff = std::max(diff, max_abs_diff(params[i], reference->parameters()[i]));
        moved = std::max(moved, max_abs_diff(params[i], initial->parameters()[i]));
    }
    expect(moved > 1e-3, "training moved the weights (max change " + std::to_string(moved) + ")");
    char line[200];
    std::snprintf(line, sizeof line, "%d steps on %d ranks x batch %d = 1 rank x batch %d (max abs diff %.3g < 1e-5)",
                  steps, P, B, P * B, diff);
    expect(diff < 1e-5, line);

    // Every rank holds the same model: each compares its weights with rank 0's.
    std::vector<Tensor> from_root;
    for (const Tensor& p : params) from_root.push_back(p.detach().clone());
    comm.broadcast(from_root);
    double across = 0;
    for (size_t i = 0; i < params.size(); ++i) across = std::max(across, max_abs_diff(params[i], from_root[i]));
    expect(across == 0, "after training, this rank's weights are rank 0's, bit for bit");
}

// The failure modes: one good collective first (so the plan exists and the next all-reduce
// goes straight to its buckets), then rank 1 fails in its way while rank 0 reduces.
void run_failure(dist::Communicator& comm, const std::string& mode) {
    std::vector<Tensor> ts = {ones({1000}), ones({10})};
    comm.allreduce_mean(ts);
    if (comm.rank() == 1) {
        if (mode == "fail-abort") fail("rank 1 could not read its shard (a simulated failure)");
        if (mode == "fail-crash") std::_Exit(4);
        if (mode == "fail-stall") sleep(120);
    }
    comm.allreduce_mean(ts);
    std::printf("rank %d: FAILED: the all-reduce completed although rank 1 never joined it\n", comm.rank());
}

}  // namespace

int main(int argc, char** argv) {
    std::string mode = argc > 1 ? argv[1] : "checks";
    std::unique_ptr<dist::Communicator> comm;
    try {
        dist::Options options = dist::Options::from_env();
        options.bucket_bytes = 100;  // 25 floats: many buckets, and tensors larger than one
        comm = dist::init_distributed(options);
        g_rank = comm->rank();
        if (mode == "checks") {
            if (comm->is_root()) std::printf("%s\n", comm->description().c_str());
            check_allreduce(*comm);
            check_broadcast(*comm);
            check_layout_mismatch(*comm);
            check_equivalence(*comm);
            comm->barrier();
            std::printf("rank %d: %s\n", g_rank, g_failures ? "some checks FAILED" : "all checks passed");
        } else if (mode == "fail-abort" || mode == "fail-crash" || mode == "fail-stall") {
            run_failure(*comm, mode);
            return 1;
        } else {
            fail("unknown mode '", mode, "' (checks, fail-abort, fail-crash, fail-stall)");
        }
        comm->finalize();
    } catch (const Error& e) {
        if (comm) comm->abort(e.what(), 2);  // what the CLI does: the whole job ends now
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
    return g_failures ? 1 : 0;
}
