// tests/test_device.cpp: everything above the kernels on a device other than the CPU.
//
// Most cases run on the host-memory stand-in for a GPU (tensor/cpu/cuda_standin.h): tensors
// tagged cuda, every device check and every .to() exercised on a machine without a GPU.
// The stand-in runs the CPU kernels, so a model trained on it must compute exactly what it
// computes on the CPU, bit for bit (with the same attention path on both: see
// rerun_with_fused_attention); any difference, or any "on different devices" error, is a
// tensor some code made on the wrong device. Each case switches the stand-in on for its
// own duration (class Standin below) and off again, so the other test files see the
// machine's real answer. On a machine with a real GPU the stand-in is refused and these
// cases skip; the last case compares the real GPU with the CPU instead (tolerance 1e-4).
// (TD_CUDA_STANDIN=1 build/run_tests -tc='*cuda*' runs the whole GPU suite on the stand-in.)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "diffusion/forward_process.h"
#include "diffusion/model_file.h"
#include "diffusion/trainer.h"
#include "diffusion/unet.h"
#include "nn/linear.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "tensor/device.h"
#include "tensor/nn_ops.h"
#include "tensor/npy.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

using namespace td;
using namespace td::diffusion;
using tdtest::check_message;
using tdtest::error_of;

namespace {

// The stand-in for one test case: on when built, off when destroyed (unless it was on
// already: TD_CUDA_STANDIN=1 for the whole test run). Declare it first in a case, so that
// every cuda tensor of the case is gone when it switches off.
class Standin {
public:
    Standin() : was_on_(cuda_is_standin()) { use_host_standin_for_cuda(); }
    ~Standin() {
        if (was_on_) return;
        std::string why = error_of(stop_host_standin_for_cuda);
        if (!why.empty()) FAIL_CHECK("the stand-in could not be switched off: " << why);
    }
    Standin(const Standin&) = delete;
    Standin& operator=(const Standin&) = delete;

private:
    bool was_on_;
};

// True, after one line saying so, on a machine with a real GPU: the stand-in is refused
// there (it must never hide a GPU), and the GPU cases at the end cover the same ground.
bool skip_with_real_gpu() {
    if (!cuda_available() || cuda_is_standin()) return false;
    static bool said = false;
    if (!said) std::printf("SKIPPED: stand-in tests (a real GPU is present: %s)\n", cuda_description().c_str());
    said = true;
    return true;
}

bool same_values(const Tensor& a, const Tensor& b) {
    return a.shape() == b.shape() && a.to(Device::CPU).to_vector() == b.to(Device::CPU).to_vector();
}

// A bit-for-bit comparison needs the same attention path on both devices: a cuda tensor
// takes the fused one by default, a CPU tensor the composed one (tensor/ops/attention.cpp),
// and the two sum in different orders. TD_ATTENTION=fused puts the CPU on the fused path
// too (the same CPU kernels the stand-in runs), but it is read once per process: so unless
// this run already has it, the case re-runs itself in a child process that does, and
// returns true (the child did the work; its output is shown if it failed).
bool rerun_with_fused_attention(const std::string& name_pattern) {
    const char* setting = std::getenv("TD_ATTENTION");
    if (setting != nullptr && std::string(setting) == "fused") return false;  // run here
    std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
    std::string out = tdtest::scratch("device_child_output.txt");
    int status = std::system(
        ("env TD_ATTENTION=fused TD_CUDA_STANDIN=0 " + exe + " '-tc=" + name_pattern + "' > " + out + " 2>&1").c_str());
    std::string text = tdtest::read_file(out);
    INFO("the child run (TD_ATTENTION=fused):\n" << text);
    CHECK((WIFEXITED(status) && WEXITSTATUS(status) == 0));
    CHECK(tdtest::contains(text, "1 passed, 0 failed"));
    return true;
}

}  // namespace

TEST_CASE("device: the stand-in plays cuda: its answers, .to() both ways, device checks, and off again") {
    if (skip_with_real_gpu()) return;
    const bool env_on = cuda_is_standin();  // TD_CUDA_STANDIN=1 for the whole run
    const int count_before = cuda_device_count();
    const std::string description_before = cuda_description();
    {
        Standin standin;
        use_host_standin_for_cuda();  // idempotent
        CHECK(cuda_available());
        CHECK(cuda_is_standin());
        CHECK(cuda_device_count() == 1);
        CHECK(cuda_description() == "host-memory stand-in for cuda (TD_CUDA_STANDIN): no GPU");
        CHECK(tdtest::contains(device_description(Device::CUDA), "stand-in"));
        CHECK(device_description(Device::CPU) == "cpu");
        CHECK(parse_device("cuda") == Device::CUDA);
        CHECK(parse_device("auto") == Device::CUDA);

        Generator g(1);
        Tensor x = randn({3, 4, 5}, g);
        Tensor xc = x.to(Device::CUDA);
        CHECK(xc.device() == Device::CUDA);
        CHECK(xc.to(Device::CPU).device() == Device::CPU);
        CHECK(xc.to(Device::CPU).to_vector() == x.to_vector());
        CHECK(xc.to(Device::CUDA).impl() == xc.impl());  // already there: no copy
        // strided sources, both ways: made contiguous on their own device first
        CHECK(x.transpose(0, 2).to(Device::CUDA).to(Device::CPU).to_vector() ==
              x.transpose(0, 2).contiguous().to_vector());
        CHECK(xc.transpose(0, 2).to(Device::CPU).to_vector() == x.transpose(0, 2).contiguous().to_vector());
        Tensor idx = Tensor::from_vector_i64({3, 1, 2}, {3});
        CHECK(idx.to(Device::CUDA).dtype() == DType::Int64);
        CHECK(idx.to(Device::CUDA).to(Device::CPU).to_vector_i64() == idx.to_vector_i64());

        // reading values: item() from any device; the rest asks for .to(Device::CPU) first
        CHECK(sum(xc).item() == sum(x).item());
        check_message(error_of([&] { xc.to_vector(); }), {"to_vector", "cuda", "copy it to cpu first"});
        // mixing devices: an error naming both, never a silent copy (a 0-d CPU scalar too)
        check_message(error_of([&] { add(xc, scalar_tensor(1.0f)); }), {"add", "different devices", "cuda", "cpu"});
        check_message(error_of([&] {
                          matmul(xc.reshape({12, 5}), x.reshape({5, 12}));
                      }),
                      {"matmul", "different devices"});
        check_message(error_of([&] { index_select(xc, 0, idx.narrow(0, 1, 2)); }), {"index_select", "cpu", "cuda"});

        // the copy is differentiable: the gradient goes back to the CPU leaf
        Tensor leaf = randn({3, 3}, g).requires_grad_();
        sum(mul(leaf.to(Device::CUDA), 2.0f)).backward();
        REQUIRE(leaf.grad().defined());
        CHECK(leaf.grad().device() == Device::CPU);
        CHECK(leaf.grad().to_vector() == full({3, 3}, 2.0f).to_vector());

        // switching off is refused while cuda memory is in use (it would dangle)
        if (!env_on) {
            check_message(error_of(stop_host_standin_for_cuda), {"stop_host_standin_for_cuda", "still in use"});
            CHECK(cuda_is_standin());
        }
    }
    if (!env_on) {  // off again: the machine's own answers
        CHECK_FALSE(cuda_is_standin());
        CHECK(cuda_device_count() == count_before);
        CHECK(cuda_description() == description_before);
        CHECK_THROWS_AS(Tensor::empty({2}, DType::Float32, Device::CUDA), Error);
        check_message(error_of([] { parse_device("cuda"); }), {"--device cuda", "TD_CUDA_STANDIN=1"});
    }
}

namespace {

// A loss that goes through most ops' backward passes, on `d`; the leaves' gradients on
// the CPU. Every gradient must come out on its leaf's device (autograd/engine.cpp checks).
std::vector<Tensor> composite_gradients(Device d, float& loss_value) {
    Generator g(7);
    auto leaf = [&](const Shape& s) { return randn(s, g).to(d).detach().requires_grad_(); };
    Tensor a = leaf({2, 3, 4, 4}), b = leaf({2, 3, 4, 4}), w = leaf({3, 3, 3, 3}), gamma = leaf({3});
    Tensor beta = leaf({3}), emb = leaf({5, 4}), logits = leaf({4, 5});
    Tensor labels = Tensor::from_vector_i64({0, 4, 2, 2}, {4}).to(d);
    Generator dropout_gen(3);
    Tensor h = conv2d(a, w, beta, 1, 1);                               // conv2d (+ bias)
    h = group_norm(h, 3, gamma, beta);                                 // group_norm
    h = dropout(h, 0.25f, /*training=*/true, dropout_gen);             // the mask on h's device
    h = upsample_nearest2d(avg_pool2d(h, 2), 2);                       // pools
    h = where(gt(a, b), h, pow(abs(b) + 1.0f, a * 0.1f));              // where, gt, pow (tensor exponent)
    Tensor s = softmax(h.reshape({2, 3, 16}), -1).slice(2, 1, 15, 2);  // softmax, slice
    Tensor m = max(h.reshape({6, 16}), 1).values;                      // max
    Tensor e = embedding(emb, labels);                                 // index_select
    Tensor ce = cross_entropy(logits + sum(layer_norm(e, {4}, Tensor(), Tensor()), {1}, true), labels);  // gather
    Tensor c = cat({s.reshape({-1}), m, var(a, {1}).reshape({-1})}, 0);                                  // cat, var
    Tensor loss = mean(c * c) + ce + sum(b.narrow(1, 0, 1)) * 0.01f;                                     // narrow
    loss.backward();  // the seed dL/dL = 1 made on the root's device
    loss_value = loss.item();
    std::vector<Tensor> grads;
    for (const Tensor& t : {a, b, w, gamma, beta, emb, logits}) {
        CHECK(t.grad().device() == d);
        grads.push_back(t.grad().to(Device::CPU));
    }
    return grads;
}

// A module with a child and a buffer, for Module::to.
struct Probe : nn::Module {
    std::shared_ptr<nn::Linear> fc;
    Tensor running;
    Probe() {
        fc = register_module("fc", std::make_shared<nn::Linear>(3, 2));
        running = register_buffer("running", full({2}, 0.5f));
    }
};

}  // namespace

TEST_CASE("device: every factory and backward pass makes its tensors on the input's device") {
    if (skip_with_real_gpu()) return;
    Standin standin;
    const Device C = Device::CUDA;
    Tensor x = Tensor::from_vector({1, -2, 3, -4, 5, -6}, {2, 3});
    Tensor xc = x.to(C);
    auto same = [&](const char* what, const Tensor& on_cuda, const Tensor& on_cpu) {
        INFO(what);
        CHECK(on_cuda.device() == C);
        CHECK(on_cuda.dtype() == on_cpu.dtype());
        CHECK(same_values(on_cuda, on_cpu));
    };
    same("zeros", zeros({2, 3}, DType::Float32, C), zeros({2, 3}));
    same("zeros int64", zeros({4}, DType::Int64, C), zeros({4}, DType::Int64));
    same("ones", ones({2, 3}, C), ones({2, 3}));
    same("full", full({3}, 7.5f, C), full({3}, 7.5f));
    same("scalar_tensor", scalar_tensor(2.5f, C), scalar_tensor(2.5f));
    same("zeros_like", zeros_like(xc), zeros_like(x));
    same("ones_like", ones_like(xc), ones_like(x));
    same("arange", arange(0.0f, 2.0f, 0.25f, C), arange(0.0f, 2.0f, 0.25f));
    same("arange_i64", arange_i64(5, C), arange_i64(5));
    same("linspace", linspace(-1.0f, 1.0f, 7, C), linspace(-1.0f, 1.0f, 7));

    // the backward passes: the same gradients bit for bit, each on its leaf's device
    float loss_cpu = 0, loss_cuda = 0;
    std::vector<Tensor> g_cpu = composite_gradients(Device::CPU, loss_cpu);
    std::vector<Tensor> g_cuda = composite_gradients(C, loss_cuda);
    CHECK(loss_cuda == loss_cpu);
    REQUIRE(g_cuda.size() == g_cpu.size());
    for (size_t i = 0; i < g_cpu.size(); ++i) {
        INFO("gradient of leaf " << i);
        CHECK(g_cuda[i].to_vector() == g_cpu[i].to_vector());
    }

    // Module::to: in place (the same handles), parameters keep requires_grad, grads dropped
    Probe p;
    Tensor weight = p.fc->weight;  // a handle held outside the module, as an optimizer would
    sum(p.fc->forward(ones({1, 3}))).backward();
    REQUIRE(weight.grad().defined());
    std::vector<float> w_before = weight.to_vector();
    CHECK(&p.to(C) == &p);
    CHECK(p.device() == C);
    for (auto& [name, t] : p.state_dict()) {
        INFO(name);
        CHECK(t.device() == C);
    }
    CHECK(weight.device() == C);  // the outside handle moved too
    CHECK(weight.requires_grad());
    CHECK_FALSE(weight.grad().defined());
    CHECK(weight.to(Device::CPU).to_vector() == w_before);
    CHECK(p.running.device() == C);
    Tensor y = p.fc->forward(ones({1, 3}, C));  // runs on cuda, trains the same parameters
    sum(y).backward();
    CHECK(weight.grad().device() == C);

    // saving copies to the CPU first; loading puts the file's values on each tensor's device
    std::string file = tdtest::scratch("device_probe.safetensors");
    nn::save_module(file, p);
    Probe q;
    q.to(C);
    nn::load_module(file, q);
    CHECK(q.fc->weight.device() == C);
    CHECK(same_values(q.fc->weight, p.fc->weight));
    CHECK(same_values(q.running, p.running));
    std::string npy = tdtest::scratch("device_probe.npy");
    save_npy(npy, xc);
    CHECK(load_npy(npy).to_vector() == x.to_vector());
    Probe back;
    back.load_state_dict(q.state_dict());  // cuda values into a CPU module
    CHECK(back.fc->weight.device() == Device::CPU);
    CHECK(same_values(back.fc->weight, p.fc->weight));
}

namespace {

// One training step of the tiny test UNet on `device`: forward, L_simple, backward, AdamW.
// Its output layer starts random rather than zero (a fresh UNet's conv_out is zero, which
// would leave every other gradient exactly 0), so the step reaches every parameter. Adam's
// eps is 1e-3 rather than 1e-8: its update g / (|g| + eps) is then smooth in g, so
// rounding differences in a gradient near zero cannot flip an update by a whole lr (which
// would defeat a tolerance on the GPU); on the stand-in nothing differs at all.
struct StepResult {
    float loss = 0;
    nn::NamedTensors grads, params;  // on the CPU, after backward and after the step
};

StepResult unet_training_step(Device device) {
    UNetConfig c = tdtest::tiny_ddpm(50).unet;
    c.in_channels = 1;
    UNet net(c);  // the same seed: the same initial weights wherever it runs
    Generator g(11);
    {
        NoGradGuard no_grad;
        for (auto& [name, p] : net.named_parameters())
            if (name.rfind("conv_out.", 0) == 0) p.copy_(randn(p.shape(), g) * 0.05f);
    }
    net.to(device);  // before the optimizer
    nn::AdamWOptions ao;
    ao.eps = 1e-3f;
    nn::AdamW opt(net.named_parameters(), ao);
    Schedule s = Schedule::named("linear", 50);
    s.to(device);
    Tensor x0 = rand({4, 1, 8, 8}, g, -1.0f, 1.0f).to(device);
    Tensor eps = randn({4, 1, 8, 8}, g).to(device);
    Tensor t = Tensor::from_vector_i64({0, 7, 23, 49}, {4}).to(device);
    Tensor loss = l_simple(net.forward(q_sample(s, x0, t, eps), t), eps);  // DDPM eq. 14
    opt.zero_grad();
    loss.backward();
    StepResult r;
    r.loss = loss.item();
    for (auto& [name, p] : net.named_parameters()) {
        REQUIRE(p.grad().defined());
        CHECK(p.grad().device() == device);
        r.grads.emplace_back(name, p.grad().to(Device::CPU));
    }
    opt.step();
    for (auto& [name, p] : net.named_parameters()) {
        CHECK(p.device() == device);
        r.params.emplace_back(name, p.detach().to(Device::CPU));
    }
    return r;
}

}  // namespace

TEST_CASE("device: a UNet training step on the stand-in gives the CPU loss and parameters bit for bit") {
    if (skip_with_real_gpu()) return;
    if (rerun_with_fused_attention("*UNet training step on the stand-in*")) return;
    StepResult cpu = unet_training_step(Device::CPU);
    Standin standin;
    StepResult cuda = unet_training_step(Device::CUDA);
    CHECK(cuda.loss == cpu.loss);  // the same kernels ran (the CPU's): exactly the same numbers
    REQUIRE(cuda.params.size() == cpu.params.size());
    for (size_t i = 0; i < cpu.params.size(); ++i) {
        INFO(cpu.params[i].first);
        CHECK(cuda.grads[i].second.to_vector() == cpu.grads[i].second.to_vector());
        CHECK(cuda.params[i].second.to_vector() == cpu.params[i].second.to_vector());
    }
}

namespace {

ModelInfo tiny_class_model() {
    ModelInfo info = tdtest::tiny_ddpm(50);
    info.unet.cond = Conditioning::Class;
    info.unet.num_classes = 2;
    return info;
}

TrainOptions tiny_options(Device device) {
    TrainOptions to;
    to.batch_size = 8;
    to.total_steps = 6;
    to.p_uncond = 0.5f;
    to.device = device;
    return to;
}

// Samples of a trainer's EMA model: DDIM with eta 1 (noise every step) and guidance w = 3,
// so the condition, the null condition and the sampler's noise all take part. On the CPU.
Tensor guided_samples(const DdpmTrainer& trainer) {
    LoadedModel m = trainer.sampling_model();
    Device d = m.device();
    Generator g(5);
    Tensor x_T = randn(m.noise_shape(2), g).to(d);
    SamplerOptions o;
    o.steps = 4;
    o.eta = 1.0;
    Tensor y = Tensor::from_vector_i64({0, 1}, {2}).to(d);
    return sample(m.schedule, m.denoiser(y, 3.0f), x_T, o, g).to(Device::CPU);
}

}  // namespace

TEST_CASE("device: DdpmTrainer on the stand-in matches the CPU bit for bit (losses, checkpoints, samples)" *
          doctest::test_suite("long")) {
    if (skip_with_real_gpu()) return;
    if (rerun_with_fused_attention("*DdpmTrainer on the stand-in*")) return;
    Dataset d = tdtest::bars_dataset(24, 8);
    std::vector<float> straight;
    Tensor samples_cpu;
    {
        DdpmTrainer a(tiny_class_model(), tiny_options(Device::CPU), d);
        for (int i = 0; i < 5; ++i) straight.push_back(a.step().loss);
        samples_cpu = guided_samples(a);
    }
    Standin standin;
    std::string ckpt = tdtest::scratch("device_trainer.safetensors");
    {
        DdpmTrainer b(tiny_class_model(), tiny_options(Device::CUDA), d);
        CHECK(b.model().device() == Device::CUDA);
        for (int i = 0; i < 3; ++i) {
            INFO("step " << i + 1);
            CHECK(b.step().loss == straight[i]);
        }
        b.save_checkpoint(ckpt);  // from cuda memory to a file
        for (int i = 3; i < 5; ++i) CHECK(b.step().loss == straight[i]);
        CHECK(same_values(guided_samples(b), samples_cpu));
    }
    for (Device dev : {Device::CPU, Device::CUDA}) {  // the file resumes on either device
        INFO("resumed on " << device_name(dev));
        DdpmTrainer c(tiny_class_model(), tiny_options(dev), d);
        c.load_checkpoint(ckpt);
        for (int i = 3; i < 5; ++i) CHECK(c.step().loss == straight[i]);
    }
}

// ---- the command line, on the stand-in through TD_CUDA_STANDIN=1 -------------------------------

namespace {

// run_diffuse (tests/helpers.h) with `env` (e.g. "TD_CUDA_STANDIN=1") in the child's
// environment only: this process must keep its own answer.
tdtest::CliRun run_diffuse_with(const std::string& env, const std::string& args) {
    std::string exe = (std::filesystem::read_symlink("/proc/self/exe").parent_path() / "diffuse").string();
    std::string out = tdtest::scratch("diffuse_device_output.txt");
    int status = std::system(("env " + env + " " + exe + " " + args + " > " + out + " 2>&1").c_str());
    std::ifstream f(out);
    std::string text((std::istreambuf_iterator<char>(f)), {});
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, text};
}

// The loss column of a run's metrics.csv.
std::vector<std::string> losses(const std::string& run) {
    std::vector<std::string> out;
    std::istringstream in(tdtest::read_file(run + "/metrics.csv"));
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
        std::istringstream row(line);
        std::string step, epoch, loss;
        std::getline(row, step, ',');
        std::getline(row, epoch, ',');
        std::getline(row, loss, ',');
        out.push_back(loss);
    }
    return out;
}

}  // namespace

TEST_CASE("device: diffuse train ddpm and sample with --device cuda on the stand-in, and without a GPU" *
          doctest::test_suite("long")) {
    std::string data = tdtest::scratch("bars16_device"), cpu_run = tdtest::scratch("run_device_cpu"),
                cuda_run = tdtest::scratch("run_device_cuda");
    std::filesystem::create_directories(data);
    tdtest::write_bars(data, "train", 32, 16);
    std::string train =
        "train ddpm --data " + data + " --ch 8 --mults 1,2 --res-blocks 1 --attn-res 8 --groups 4" +
        " --T 50 --batch 8 --cond class --steps 3 --final-samples 4 --final-steps 2 --threads 1 --overwrite";
    // TD_ATTENTION=fused: the CPU runs take the attention path the stand-in takes (see
    // rerun_with_fused_attention), so the two runs match exactly
    const std::string standin = "TD_CUDA_STANDIN=1 TD_ATTENTION=fused", cpu = "TD_CUDA_STANDIN=0 TD_ATTENTION=fused";
    if (!skip_with_real_gpu()) {
        tdtest::CliRun c = run_diffuse_with(standin, train + " --out " + cuda_run + " --device cuda");
        INFO(c.output);
        REQUIRE(c.code == 0);
        CHECK(tdtest::contains(c.output, "device: cuda (host-memory stand-in for cuda (TD_CUDA_STANDIN): no GPU)"));
        CHECK(tdtest::contains(tdtest::read_file(cuda_run + "/config.txt"), "device = cuda\n"));
        for (const char* f : {"model.safetensors", "checkpoints/step-00000003.safetensors", "samples.png",
                              "guidance.png", "denoise.png", "forward.png", "index.html"})
            CHECK(std::filesystem::exists(cuda_run + "/" + f));
        // the same run on the CPU: the same losses, to the last printed digit
        tdtest::CliRun p = run_diffuse_with(cpu, train + " --out " + cpu_run + " --device cpu");
        INFO(p.output);
        REQUIRE(p.code == 0);
        CHECK(tdtest::contains(p.output, "device: cpu\n"));
        CHECK(tdtest::contains(tdtest::read_file(cpu_run + "/config.txt"), "device = cpu\n"));
        CHECK(losses(cuda_run).size() == 3);
        CHECK(losses(cuda_run) == losses(cpu_run));

        // sampling on the stand-in: the CPU's images exactly
        std::string npy_cuda = tdtest::scratch("device_samples_cuda.npy"),
                    npy_cpu = tdtest::scratch("device_samples_cpu.npy");
        std::string sample = "sample --run " + cuda_run + " --n 4 --steps 3 --eta 1 --class all --threads 1 --out ";
        tdtest::CliRun s = run_diffuse_with(standin, sample + npy_cuda + " --device cuda");
        INFO(s.output);
        REQUIRE(s.code == 0);
        CHECK(tdtest::contains(s.output, "device: cuda (host-memory stand-in"));
        REQUIRE(run_diffuse_with(cpu, sample + npy_cpu + " --device cpu").code == 0);
        Tensor a = load_npy(npy_cuda), b = load_npy(npy_cpu);
        CHECK(a.shape() == Shape{4, 1, 16, 16});
        CHECK(a.to_vector() == b.to_vector());
    }
    // --device cuda where no GPU can be used (and no stand-in): exit 1 saying why
    if (!cuda_available()) {
        tdtest::CliRun e = run_diffuse_with("TD_CUDA_STANDIN=0",
                                            train + " --out " + tdtest::scratch("run_device_none") + " --device cuda");
        CHECK(e.code == 1);
        check_message(e.output, {"--device cuda", "TD_CUDA_STANDIN=1"});
        tdtest::CliRun s =
            run_diffuse_with("TD_CUDA_STANDIN=0", "sample --run " + cpu_run + " --out x.png --device cuda");
        CHECK(s.code == 1);
        check_message(s.output, {"--device cuda"});
    }
    tdtest::CliRun bad =
        run_diffuse_with("TD_CUDA_STANDIN=0", train + " --out " + tdtest::scratch("run_device_bad") + " --device gpu");
    CHECK(bad.code == 2);
    check_message(bad.output, {"--device must be cuda, cpu or auto", "gpu"});
}

// ---- the real GPU ----------------------------------------------------------------------------------

TEST_CASE("cuda: a UNet training step on the GPU gives the CPU's loss and parameters (1e-4)") {
    if (tdtest::skip_without_gpu()) return;
    if (cuda_is_standin()) return;  // TD_CUDA_STANDIN=1 for the whole run: no GPU here (the stand-in cases cover it)
    StepResult cpu = unet_training_step(Device::CPU);
    StepResult gpu = unet_training_step(Device::CUDA);
    // FP32 on both sides (TD_CUDA_TF32 unset): only the order of the sums differs.
    CHECK(std::fabs(gpu.loss - cpu.loss) <= 1e-4f * std::fabs(cpu.loss));
    REQUIRE(gpu.params.size() == cpu.params.size());
    for (size_t i = 0; i < cpu.params.size(); ++i) {
        INFO(cpu.params[i].first);
        float scale = max(abs(cpu.grads[i].second)).item();  // a gradient's error scales with its largest element
        CHECK_CLOSE(gpu.grads[i].second, cpu.grads[i].second, 1e-4f * scale + 1e-8f, 1e-3f);
        CHECK_CLOSE(gpu.params[i].second, cpu.params[i].second, 1e-5f, 1e-4f);
    }
}
