// tests/test_distributed.cpp: data-parallel training's pieces (distributed/): the
// one-process communicator, the shard of a global minibatch, the bucket plan and its
// pack / unpack round trip; then, where this build has MPI and mpirun is found, the
// program tests/mpi/ranks.cpp under `mpirun -np 2` (the 2-rank checks, among them the
// equivalence of 2 ranks x batch B with 1 rank x batch 2B, and the failure modes); and
// the trainer itself, `mpirun -np 2 diffuse train ddpm --distributed`, against a
// 1-process run. Without MPI those print one line, "SKIPPED: MPI tests (...)", saying why.
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "distributed/bucket.h"
#include "distributed/communicator.h"
#include "distributed/nccl.h"
#include "distributed/shard.h"
#include "nn/linear.h"
#include "nn/safetensors.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

using namespace td;
using tdtest::contains;
using tdtest::error_of;

namespace {

// Tensors of awkward sizes: a 0-d one, a one-element one, several not a multiple of
// anything, one far larger than the buckets below, a transposed (non-contiguous) view.
std::vector<Tensor> odd_tensors() {
    std::vector<Shape> shapes = {{}, {1}, {7}, {3, 5}, {1000}, {2, 3, 4}, {13}, {6, 4}, {9}};
    std::vector<Tensor> ts;
    float next = 1.0f;
    for (const Shape& s : shapes) {
        std::vector<float> v((size_t)numel_of(s));
        for (float& x : v) x = next++;
        ts.push_back(Tensor::from_vector(v, s));
    }
    ts[7] = ts[7].transpose(0, 1);  // (4, 6) with strides (1, 4)
    return ts;
}

}  // namespace

TEST_CASE("distributed: the one-process communicator is rank 0 of 1 and its collectives change nothing") {
    auto comm = dist::local_communicator();
    CHECK(comm->rank() == 0);
    CHECK(comm->size() == 1);
    CHECK(comm->is_root());
    CHECK(comm->local_rank() == 0);
    std::vector<Tensor> ts = odd_tensors();
    std::vector<std::vector<float>> before;
    for (const Tensor& t : ts) before.push_back(t.to_vector());
    comm->allreduce_mean(ts);
    comm->broadcast(ts);
    comm->barrier();
    for (size_t i = 0; i < ts.size(); ++i) CHECK(ts[i].to_vector() == before[i]);
    // The MPI communicator's checks hold here too, so a mistake shows without mpirun.
    std::vector<Tensor> bad = {ones({2}), Tensor()};
    CHECK(contains(error_of([&] { comm->allreduce_mean(bad); }), "tensor 1 is undefined"));
    std::vector<Tensor> ints = {arange_i64(3)};
    CHECK(contains(error_of([&] { comm->allreduce_mean(ints); }), "the mean needs float32"));
    CHECK(contains(error_of([&] { comm->set_timeout(0); }), "must be positive"));
    comm->set_timeout(5);
    CHECK(comm->timeout() == 5);
    comm->finalize();
}

TEST_CASE("distributed: a build without MPI says how to get it; options come from the environment") {
    if (!dist::mpi_built()) {
        std::string msg = error_of([] { dist::init_distributed(); });
        tdtest::check_message(msg, {"this build has none", "bash scripts/install-deps.sh --mpi", "make clean && make"});
    }
    setenv("TD_DIST_TIMEOUT", "5", 1);
    setenv("TD_DIST_BUCKET_MB", "0.5", 1);
    dist::Options o = dist::Options::from_env();
    CHECK(o.timeout_s == 5.0);
    CHECK(o.bucket_bytes == size_t(512) * 1024);
    CHECK(!o.profile);
    setenv("TD_DIST_PROFILE", "0", 1);
    CHECK(!dist::Options::from_env().profile);
    setenv("TD_DIST_PROFILE", "1", 1);
    CHECK(dist::Options::from_env().profile);
    unsetenv("TD_DIST_PROFILE");
    setenv("TD_DIST_TIMEOUT", "soon", 1);
    CHECK(contains(error_of([] { dist::Options::from_env(); }), "TD_DIST_TIMEOUT=soon: expected a positive number"));
    unsetenv("TD_DIST_TIMEOUT");
    unsetenv("TD_DIST_BUCKET_MB");
    o = dist::Options::from_env();
    CHECK(o.timeout_s == 300.0);
    CHECK(o.bucket_bytes == size_t(25) << 20);
}

TEST_CASE("distributed: shards are equal contiguous slices that cover the global batch once") {
    std::vector<int64_t> global = {40, 3, 17, 8, 99, 5, 61, 2, 7, 11, 13, 0};  // P * B = 12
    for (int P : {1, 2, 3, 4, 6, 12}) {
        std::vector<int64_t> joined;
        for (int r = 0; r < P; ++r) {
            dist::ShardRange range = dist::shard_range(12, r, P);
            CHECK(range.begin == r * (12 / P));
            CHECK(range.count() == 12 / P);
            std::vector<int64_t> part = dist::shard(global, r, P);
            joined.insert(joined.end(), part.begin(), part.end());
        }
        CHECK(joined == global);  // rank order = the 1-rank run's order
    }
    tdtest::check_message(error_of([&] { dist::shard(global, 0, 5); }),
                          {"12 samples does not split evenly over 5 ranks", "5 * B"});
    CHECK(contains(error_of([&] { dist::shard(global, 2, 2); }), "rank 2 is not one of 0 .. 1"));

    Tensor images = randn({6, 1, 2, 2}, default_generator());
    Tensor mine = dist::shard(images, 1, 3);
    CHECK(mine.shape() == Shape{2, 1, 2, 2});
    CHECK(mine.impl()->storage == images.impl()->storage);  // a view, no copy
    CHECK_CLOSE(mine, images.narrow(0, 2, 2), 0.0f, 0.0f);
}

TEST_CASE("distributed: the mean of the shards' mean gradients is the global batch's mean gradient") {
    // The identity data parallelism rests on (distributed/shard.h), in one process.
    Generator gen(3);
    nn::Linear lin(4, 2, true, gen);
    Tensor X = randn({8, 4}, gen), Y = randn({8, 2}, gen);
    lin.zero_grad();
    mse_loss(lin.forward(X), Y).backward();
    Tensor want_w = lin.weight.grad().clone(), want_b = lin.bias.grad().clone();

    const int P = 4;
    Tensor sum_w = zeros(want_w.shape()), sum_b = zeros(want_b.shape());
    for (int r = 0; r < P; ++r) {
        lin.zero_grad();
        mse_loss(lin.forward(dist::shard(X, r, P)), dist::shard(Y, r, P)).backward();
        sum_w.add_(lin.weight.grad());
        sum_b.add_(lin.bias.grad());
    }
    CHECK_CLOSE(sum_w.mul_(1.0f / P), want_w, 1e-6f, 1e-5f);
    CHECK_CLOSE(sum_b.mul_(1.0f / P), want_b, 1e-6f, 1e-5f);
}

TEST_CASE("distributed: the bucket plan keeps order, respects the size and splits on a dtype change") {
    std::vector<Tensor> ts = odd_tensors();
    const size_t limit = 64;  // bytes: 16 floats
    std::vector<dist::Bucket> plan = dist::plan_buckets(ts, limit);
    size_t next = 0;
    for (const dist::Bucket& b : plan) {
        REQUIRE(!b.slots.empty());
        int64_t offset = 0;
        for (const dist::BucketSlot& s : b.slots) {
            CHECK(s.tensor == next++);  // every tensor once, in order
            CHECK(s.offset == offset);  // packed back to back
            CHECK(s.numel == ts[s.tensor].numel());
            offset += s.numel;
        }
        CHECK(b.numel == offset);
        // within the limit, unless a single tensor is larger than it
        CHECK((b.numel * 4 <= (int64_t)limit || b.slots.size() == 1));
    }
    CHECK(next == ts.size());
    CHECK(plan.size() > 3);
    CHECK(dist::max_bucket_numel(plan) == 1000);  // the large tensor, alone
    // One bucket holds everything when the limit allows it.
    CHECK(dist::plan_buckets(ts, size_t(25) << 20).size() == 1);
    // A change of dtype starts a new bucket.
    std::vector<Tensor> mixed = {ones({2}), arange_i64(3), arange_i64(2), ones({1})};
    std::vector<dist::Bucket> mp = dist::plan_buckets(mixed, 1 << 20);
    REQUIRE(mp.size() == 3);
    CHECK(mp[1].dtype == DType::Int64);
    CHECK(mp[1].slots.size() == 2);

    std::vector<Tensor> bad = {ones({2}), Tensor()};
    CHECK(contains(error_of([&] { dist::plan_buckets(bad, 64); }), "tensor 1 is undefined"));
    CHECK(contains(error_of([&] { dist::plan_buckets(ts, 0); }), "bucket_bytes must be positive"));
}

TEST_CASE("distributed: pack then unpack through buckets restores every tensor, views included") {
    std::vector<Tensor> ts = odd_tensors();
    ts.push_back(arange_i64(5));  // an int64 tail: its own bucket
    std::vector<std::vector<float>> originals;
    for (const Tensor& t : ts) originals.push_back(t.to_vector());

    for (size_t limit : {size_t(4), size_t(60), size_t(100), size_t(4000), size_t(1) << 20}) {
        CAPTURE(limit);
        std::vector<dist::Bucket> plan = dist::plan_buckets(ts, limit);
        // Pack every bucket, checking that it holds its tensors' values back to back in
        // row-major order; then wipe the tensors and unpack them again.
        std::vector<Tensor> flats;
        for (const dist::Bucket& b : plan) {
            Tensor flat = Tensor::empty({b.numel + 3}, b.dtype);  // larger than needed is fine
            dist::pack(b, ts, flat);
            std::vector<float> got = flat.to_vector(), want;
            for (const dist::BucketSlot& s : b.slots)
                want.insert(want.end(), originals[s.tensor].begin(), originals[s.tensor].end());
            got.resize(want.size());
            CHECK(got == want);
            flats.push_back(flat);
        }
        for (Tensor& t : ts) t.fill_(-1.0f);
        for (size_t k = 0; k < plan.size(); ++k) dist::unpack(plan[k], flats[k], ts);
        for (size_t i = 0; i < ts.size(); ++i) CHECK(ts[i].to_vector() == originals[i]);
    }
    CHECK(!ts[7].is_contiguous());  // the view was written in place, not replaced

    std::vector<dist::Bucket> plan = dist::plan_buckets(ts, 1 << 20);
    CHECK(contains(error_of([&] { dist::pack(plan[0], ts, zeros({3})); }), "at least"));
    CHECK(contains(error_of([&] { dist::pack(plan[1], ts, zeros({5})); }), "flat buffer is float32, the bucket int64"));
}

TEST_CASE("distributed: NCCL on one GPU: buckets packed on the device, a one-rank all-reduce and broadcast") {
    std::string why = dist::Nccl::unavailable_reason();
    if (tdtest::skip_without_gpu()) {
        CHECK(!why.empty());  // no GPU: NCCL says it cannot be used, and why
        return;
    }
    if (cuda_is_standin()) return;  // TD_CUDA_STANDIN: "cuda" tensors in host memory, which NCCL cannot read
    if (!why.empty()) {
        MESSAGE("SKIPPED: NCCL test: " << why);
        return;
    }
    // The tensors on the GPU, one of them a transposed view.
    std::vector<Tensor> cpu = odd_tensors(), gpu;
    for (const Tensor& t : cpu) gpu.push_back(t.contiguous().to(Device::CUDA));
    Tensor base = Tensor::empty({6, 4}, DType::Float32, Device::CUDA);
    gpu[7] = base.transpose(0, 1);
    gpu[7].copy_(cpu[7].contiguous().to(Device::CUDA));

    std::vector<Tensor> mixed = {cpu[0], gpu[1]};
    CHECK(contains(error_of([&] { dist::plan_buckets(mixed, 64); }), "must share a device"));

    // A communicator of one rank needs no MPI: the id stays where it was made.
    dist::Nccl nccl(0, 1, [](void*, size_t) {});
    MESSAGE("NCCL " << nccl.version());
    std::vector<dist::Bucket> plan = dist::plan_buckets(gpu, 100);
    Tensor flat = Tensor::empty({dist::max_bucket_numel(plan)}, DType::Float32, Device::CUDA);
    for (const dist::Bucket& b : plan) {
        dist::pack(b, gpu, flat);
        CHECK(nccl.allreduce_sum(flat, b.numel, 30) == "");  // the sum over one rank: unchanged
        CHECK(nccl.broadcast(flat, b.numel, 0, 30) == "");
        for (const dist::BucketSlot& s : b.slots) gpu[s.tensor].fill_(-1.0f);
        dist::unpack(b, flat, gpu);
    }
    for (size_t i = 0; i < cpu.size(); ++i) CHECK_CLOSE(gpu[i].to(Device::CPU), cpu[i], 0.0f, 0.0f);
    CHECK(!gpu[7].is_contiguous());
}

// ---- 2 ranks under mpirun (tests/mpi/ranks.cpp) ----------------------------------------

namespace {

struct MpiRun {
    int code;  // the exit code of `timeout 60 mpirun ...` (124: it hung and was killed)
    std::string output;
};

// Runs $(BUILD)/test_mpi_ranks MODE on 2 ranks, one OpenMP thread each, through
// distributed/mpirun.sh, under `timeout 60` so that a hang fails the test instead of CI.
MpiRun mpirun_ranks(const std::string& mode, const std::string& timeout_s) {
    std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe");
    std::string exe = (self.parent_path() / "test_mpi_ranks").string();
    REQUIRE_MESSAGE(std::filesystem::exists(exe), exe << " is missing: `make " << exe << "` (make test builds it)");
    std::string out = tdtest::scratch("mpi_" + mode + ".txt");
    // detect_leaks=0: Open MPI keeps memory until exit, which LeakSanitizer would report
    // (build-sanitize/).
    std::string cmd = "ASAN_OPTIONS=detect_leaks=0 OMP_NUM_THREADS=1 TD_DIST_TIMEOUT=" + timeout_s +
                      " timeout 60 bash distributed/mpirun.sh -np 2 " + exe + " " + mode + " > " + out + " 2>&1";
    int status = std::system(cmd.c_str());
    std::ifstream f(out);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

// True (after one SKIPPED line for the whole file) when the MPI tests cannot run here.
bool skip_without_mpi() {
    static int answer = -1;
    if (answer < 0) {
        std::string why;
        if (!dist::mpi_built())
            why = "this build has no MPI: bash scripts/install-deps.sh --mpi, then make clean && make";
        else if (std::system("command -v mpirun > /dev/null 2>&1") != 0) why = "mpirun not found";
        answer = why.empty() ? 0 : 1;
        if (answer) {
            std::printf("SKIPPED: MPI tests (2 ranks under mpirun: equivalence, broadcast, failures) (%s)\n",
                        why.c_str());
            std::fflush(stdout);
        }
    }
    return answer == 1;
}

}  // namespace

TEST_CASE("distributed: 2 ranks under mpirun: mean, broadcast, and 2 x batch B = 1 x batch 2B after 5 AdamW steps") {
    if (skip_without_mpi()) return;
    MpiRun run = mpirun_ranks("checks", "30");
    INFO("mpirun output:\n" << run.output);
    CHECK(run.code == 0);
    CHECK(!contains(run.output, "FAILED"));
    for (int r : {0, 1}) {
        std::string rank = "rank " + std::to_string(r) + ": ";
        CHECK(contains(run.output, rank + "ok: allreduce_mean of 8 tensors"));
        CHECK(contains(run.output, rank + "ok: broadcast: every float tensor = rank 0's"));
        CHECK(contains(run.output, rank + "ok: ranks with different tensors get a td::Error"));
        CHECK(contains(run.output, rank + "ok: 5 steps on 2 ranks x batch 4 = 1 rank x batch 8"));
        CHECK(contains(run.output, rank + "ok: after training, this rank's weights are rank 0's, bit for bit"));
        CHECK(contains(run.output, rank + "all checks passed"));
    }
}

TEST_CASE("distributed: 2 ranks under mpirun: a rank that fails or stalls ends the job, it does not hang" *
          doctest::test_suite("long")) {
    if (skip_without_mpi()) return;
    SUBCASE("a rank that fails with an error aborts the job with its message") {
        MpiRun run = mpirun_ranks("fail-abort", "5");
        INFO("mpirun output:\n" << run.output);
        CHECK(run.code != 0);
        CHECK(run.code != 124);  // not killed by `timeout`: the job ended by itself
        CHECK(contains(run.output, "rank 1: rank 1 could not read its shard (a simulated failure)"));
    }
    SUBCASE("a rank that dies without a word: mpirun ends the job") {
        MpiRun run = mpirun_ranks("fail-crash", "5");
        INFO("mpirun output:\n" << run.output);
        CHECK(run.code != 0);
        CHECK(run.code != 124);
        CHECK(!contains(run.output, "the all-reduce completed"));
    }
    SUBCASE("a rank that stalls: the others' collective times out and says so") {
        MpiRun run = mpirun_ranks("fail-stall", "5");
        INFO("mpirun output:\n" << run.output);
        CHECK(run.code != 0);
        CHECK(run.code != 124);
        CHECK(contains(run.output,
                       "rank 0: all-reduce of bucket 0 did not complete within 5 s: another rank failed or stalled"));
    }
}

// ---- the trainer: `mpirun -np 2 diffuse train ddpm --distributed` -----------------------

namespace {

// The `diffuse` of this build (build/diffuse beside build/run_tests).
std::string diffuse_exe() {
    return (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "diffuse").string();
}

// `mpirun NP diffuse ARGS` (NP: "-np 2", the ranks of this program), one OpenMP thread per
// rank, TD_DIST_TIMEOUT=timeout_s, under `timeout 60` (124: it hung).
MpiRun mpirun_diffuse(const std::string& args, const std::string& timeout_s = "30", const std::string& np = "-np 2") {
    std::string exe = diffuse_exe();
    std::string out = tdtest::scratch("mpi_diffuse.txt");
    std::string cmd = "ASAN_OPTIONS=detect_leaks=0 OMP_NUM_THREADS=1 TD_DIST_TIMEOUT=" + timeout_s +
                      " timeout 60 bash distributed/mpirun.sh " + np + " " + exe + " " + args + " > " + out + " 2>&1";
    int status = std::system(cmd.c_str());
    std::ifstream f(out);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

// Every tensor of two safetensors files, compared element by element.
void check_same_tensors(const std::string& a, const std::string& b, float tol) {
    INFO(a << " vs " << b);
    std::map<std::string, Tensor> ta = nn::load_safetensors(a), tb = nn::load_safetensors(b);
    REQUIRE(ta.size() == tb.size());
    for (auto& [name, t] : ta) {
        INFO(name);
        REQUIRE(tb.count(name));
        CHECK_CLOSE(t, tb.at(name), tol, tol);
    }
}

int count(const std::string& text, const std::string& what) {
    int n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

std::vector<std::string> files_under(const std::string& dir) {
    std::vector<std::string> names;
    for (auto& e : std::filesystem::recursive_directory_iterator(dir))
        names.push_back(std::filesystem::relative(e.path(), dir).string());
    std::sort(names.begin(), names.end());
    return names;
}

// A tiny class-conditional DDPM on 8x8 bars; dropout 0 (each rank draws its own masks, so
// with dropout the runs agree only in distribution), a constant lr (the weights move).
const std::string kTinyRun =
    " --ch 8 --mults 1,2 --res-blocks 1 --attn-res 4 --groups 4 --T 50 --dropout 0"
    " --cond class --cond-mode add --lr-schedule constant --lr 0.002 --threads 1"
    " --sample-every 2 --ckpt-every 2 --final-samples 2 --final-steps 2";

}  // namespace

TEST_CASE(
    "distributed: diffuse train ddpm on 2 ranks x batch 4 = 1 process x batch 8, and its checkpoint resumes on 1" *
    doctest::test_suite("long")) {
    if (skip_without_mpi()) return;
    std::string data = tdtest::scratch("dist_bars8"), one = tdtest::scratch("dist_run1"),
                two = tdtest::scratch("dist_run2");
    std::filesystem::create_directories(data);
    tdtest::write_bars(data, "train", 64, 8);
    std::filesystem::remove_all(one);
    std::filesystem::remove_all(two);
    std::string common = "train ddpm --data " + data + kTinyRun;

    tdtest::CliRun r1 = tdtest::run_diffuse(common + " --steps 4 --batch 8 --out " + one);
    INFO("1 process:\n" << r1.output);
    REQUIRE(r1.code == 0);
    MpiRun r2 = mpirun_diffuse(common + " --steps 4 --batch 4 --out " + two + " --distributed");
    INFO("2 ranks:\n" << r2.output);
    REQUIRE(r2.code == 0);
    CHECK(contains(r2.output, "data parallel: 2 ranks x batch 4 = global batch 8"));

    // Same global batches, same t and eps, averaged gradients: the same weights after 4
    // AdamW steps, up to float rounding (a mean of 2 means of 4 is not summed in the order
    // of one mean of 8): 1e-5, absolute and relative.
    const float tol = 1e-5f;
    check_same_tensors(one + "/checkpoints/step-00000004.safetensors", two + "/checkpoints/step-00000004.safetensors",
                       tol);  // model, EMA and AdamW moments
    check_same_tensors(one + "/model.safetensors", two + "/model.safetensors", tol);

    // Rank 0 alone wrote: the run folder holds what the 1-process run's holds, and the
    // job printed one progress bar and one report.
    CHECK(files_under(one) == files_under(two));
    CHECK(count(r2.output, "done: 4 steps") == 1);
    CHECK(count(r2.output, "step 4/4") == 1);
    std::string config = tdtest::read_file(two + "/config.txt");
    CHECK(contains(config, "batch = 4"));
    CHECK(contains(config, "# distributed: 2 ranks x batch 4 = global batch 8"));

    // The 2-rank checkpoint resumes on 1 process with --batch 8 (= 2 x 4) and continues
    // the 1-process run's trajectory.
    tdtest::CliRun c1 = tdtest::run_diffuse("train ddpm --out " + one + " --resume --steps 6 --data " + data);
    INFO("1 process, resumed:\n" << c1.output);
    REQUIRE(c1.code == 0);
    tdtest::CliRun c2 = tdtest::run_diffuse("train ddpm --out " + two + " --resume --steps 6 --batch 8 --data " + data);
    INFO("2-rank run resumed on 1 process:\n" << c2.output);
    REQUIRE(c2.code == 0);
    CHECK(contains(c2.output, "resumed"));
    check_same_tensors(one + "/checkpoints/step-00000006.safetensors", two + "/checkpoints/step-00000006.safetensors",
                       tol);
    std::filesystem::remove_all(one);
    std::filesystem::remove_all(two);
}

TEST_CASE("distributed: diffuse train ddpm --distributed: a rank that fails ends the job with its message") {
    std::string data = tdtest::scratch("dist_bars8"), dir = tdtest::scratch("dist_run_fail");
    if (!dist::mpi_built()) {  // the flag says how to get MPI, as a td::Error (exit 1)
        tdtest::CliRun r =
            tdtest::run_diffuse("train ddpm --data " + data + " --out " + dir + " --steps 2 --distributed");
        INFO(r.output);
        CHECK(r.code == 1);
        CHECK(contains(r.output, "distributed training needs MPI, and this build has none"));
        return;
    }
    if (skip_without_mpi()) return;
    std::filesystem::create_directories(data);
    tdtest::write_bars(data, "train", 64, 8);
    std::filesystem::remove_all(dir);
    std::string args = "train ddpm --out " + dir + kTinyRun + " --steps 2 --batch 4 --distributed --data ";
    SUBCASE("rank 1 cannot read its data: rank 0 does not wait for it") {
        // two programs in one job (mpirun's MPMD form): rank 1 is given a data set that is not there
        MpiRun r =
            mpirun_diffuse(args + data + " : -np 1 " + diffuse_exe() + " " + args + "/nonexistent", "5", "-np 1");
        INFO(r.output);
        CHECK(r.code == 1);
        CHECK(contains(r.output, "rank 1: diffuse: error: load_dataset: '/nonexistent'"));
        CHECK(!std::filesystem::exists(dir + "/model.safetensors"));
    }
    SUBCASE("a usage error on rank 0 (the run folder) ends every rank, exit code 2") {
        std::filesystem::create_directories(dir);
        std::ofstream(dir + "/config.txt") << "# an earlier run\n";
        MpiRun r = mpirun_diffuse(args + data, "5");
        INFO(r.output);
        CHECK(r.code == 2);
        CHECK(contains(r.output, "rank 0: diffuse: " + dir + " already holds a run"));
        CHECK(!std::filesystem::exists(dir + "/checkpoints"));
    }
    std::filesystem::remove_all(dir);
}
