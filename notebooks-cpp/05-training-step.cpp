// read after: 14
// %% [markdown]
// # 05 One training step of L_simple
//
// DDPM's Algorithm 1 run line by line on one real minibatch, every tensor printed, then
// checked against the engine's trainer.
// Notebook 04 built x_t from x_0 in one jump (DDPM eq. 4). Training a DDPM is nothing
// more than asking a network to undo that jump: given x_t and t, say which noise eps was
// added. DDPM's Algorithm 1, in full:
//
// ```
// 1: repeat
// 2:   x_0 ~ q(x_0)                         a training image
// 3:   t ~ Uniform({1, ..., T})
// 4:   eps ~ N(0, I)
// 5:   gradient step on  grad_theta || eps - eps_theta(sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, t) ||^2
// 6: until converged
// ```
//
// Line 5 is the loss of DDPM eq. 14, L_simple, which the paper obtains from the
// variational bound by dropping its per-t weights (sec. 3.4). Here every line runs on
// its own, on a real minibatch and the demo's small UNet, and every tensor in between
// is printed: shape, mean, std. At the end the engine's `DdpmTrainer::step()`
// (`diffusion/trainer.cpp`), which does all of it in one call, is run from the same
// seeds and must give the very same loss.

// %%
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "autograd/trace.h"
#include "diffusion/data/batches.h"
#include "diffusion/data/dataset.h"
#include "diffusion/forward_process.h"
#include "diffusion/trainer.h"
#include "diffusion/unet.h"
#include "nn/ema.h"
#include "nn/optim.h"
#include "notebooks-cpp/notebook.h"

using namespace td;
using namespace td::diffusion;

const char* NB = "05-training-step";

// The L2 norm of a tensor: sqrt(sum_i g_i^2).
double l2(const Tensor& g) {
    double sq = 0;
    for (float v : g.to_vector()) sq += (double)v * v;
    return std::sqrt(sq);
}

// The group a parameter belongs to in the tables below: where it sits in the UNet
// ("temb", "conv_in", "down.1", "mid", "up.2", "conv_out", ...).
std::string group_of(const std::string& name) {
    size_t a = name.find('.');
    std::string head = name.substr(0, a);
    if (head == "down" || head == "up") return name.substr(0, name.find('.', a + 1));
    return head;
}

// Per group: sqrt(sum of squared gradient entries), in the order the groups first appear.
std::vector<std::pair<std::string, double>> grad_norms_by_group(const UNet& unet) {
    std::vector<std::pair<std::string, double>> out;
    std::map<std::string, size_t> where;
    for (auto& [name, p] : unet.named_parameters()) {
        std::string g = group_of(name);
        if (!where.count(g)) where[g] = out.size(), out.push_back({g, 0.0});
        double n = p.grad().defined() ? l2(p.grad()) : 0.0;
        out[where[g]].second += n * n;
    }
    for (auto& [g, sq] : out) sq = std::sqrt(sq);
    return out;
}

int main() {
    // %% [markdown]
    // ## The model, the optimizer, the data
    //
    // The UNet is the demo's (`configs/mnist-demo.cfg`: ch 16, mults 1,2,2, one ResBlock per
    // level, attention at 7x7, about 0.28M parameters; notebook 07 takes it apart). Its
    // weights come from a generator seeded with `config.seed`, so every UNet built from
    // this config starts identical. The optimizer is AdamW (`nn/optim.h`) with the demo's
    // learning rate 2e-3 and no weight decay; minibatches come from `BatchIterator`
    // (`diffusion/data/batches.h`), which shuffles with its own seeded generator.
    // A minibatch of 16 keeps the printout short (the demo trains with 64).

    // %%
    Dataset train = load_dataset("mnist", "train");
    ModelInfo info;  // linear schedule, T = 1000, predicts eps
    info.unet.ch = 16, info.unet.mults = {1, 2, 2}, info.unet.num_res_blocks = 1, info.unet.attn_res = {7};
    info.unet.groups = 4, info.unet.dropout = 0.0f, info.unet.seed = 0;
    TrainOptions opt;
    opt.batch_size = 16, opt.lr = 2e-3f, opt.lr_schedule = nn::LrKind::Constant, opt.grad_clip = 1.0f, opt.seed = 0;

    UNet unet(info.unet);
    Schedule schedule = Schedule::named(info.schedule, info.T);
    nn::AdamW adam(unet.named_parameters(), {.lr = opt.lr, .weight_decay = 0.0f});
    nn::EMA ema(unet, opt.ema_decay);
    BatchIterator batches(train, {.batch_size = opt.batch_size, .seed = opt.seed});
    Generator noise(opt.seed + 1);  // t and eps: the trainer's noise generator has this seed too
    std::printf("UNet: %s, %lld parameters\n", info.unet.describe().c_str(), (long long)unet.num_parameters());
    std::printf("schedule: %s, T = %lld; AdamW lr %g; grad clip %g; batch %lld\n", beta_schedule_name(info.schedule).c_str(),
                (long long)info.T, opt.lr, opt.grad_clip, (long long)opt.batch_size);

    // %% [markdown]
    // ## Lines 2-4: draw x_0, t and eps
    //
    // x_0 is a minibatch of real digits in [-1, 1] (`pixels.h`: x = pixel / 127.5 - 1),
    // so mostly -1 (black background). t is one timestep *per image*, uniform over
    // 0..999 (the paper's 1..T, 0-based in code). eps is standard normal noise shaped
    // like x_0.

    // %%
    Batch b = batches.next();
    Tensor x0 = b.x;                                   // line 2: x_0 ~ q(x_0),  (B, 1, 28, 28)
    int64_t B = x0.size(0);
    Tensor t = randint(schedule.T, {B}, noise);        // line 3: t ~ U{0, ..., T-1},  (B) int64
    Tensor eps = randn(x0.shape(), noise);             // line 4: eps ~ N(0, I),  (B, 1, 28, 28)
    nb::describe("x_0", x0);
    nb::describe("eps", eps);
    std::printf("t = ");
    for (int64_t v : t.to_vector_i64()) std::printf("%lld ", (long long)v);
    std::printf("\n");

    // %% [markdown]
    // ## Line 5, first half: x_t by eq. 4
    //
    // `x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps` for each image with its own
    // t: `q_sample` gathers sqrt(alpha_bar) at the B timesteps into a (B, 1, 1, 1) tensor
    // (`Schedule::at`) that broadcasts over each image. The second row below shows the
    // result: images with small t still look like digits, the others like noise.

    // %%
    Tensor x_t = q_sample(schedule, x0, t, eps);       // eq. 4,  (B, 1, 28, 28)
    nb::describe("x_t", x_t);
    nb::show_grid(NB, "x0-xt.png", cat({x0.narrow(0, 0, 8), x_t.narrow(0, 0, 8)}, 0), 8,
                  "Top: x_0, the first 8 images of the minibatch. Bottom: their x_t (eq. 4), t as printed above.", 3);

    // %% [markdown]
    // ## Line 5, the network: eps_theta(x_t, t)
    //
    // One forward pass of the UNet (`UNet::forward`, `diffusion/unet.cpp`) on the whole
    // minibatch: x_t and the B timesteps in, a tensor shaped like x_t out, its guess of eps.

    // %%
    Tensor eps_theta = unet.forward(x_t, t);           // eps_theta(x_t, t),  (B, 1, 28, 28)
    nb::describe("eps_theta", eps_theta);

    // %% [markdown]
    // Exactly zero. That is on purpose: like DDPM's code, the engine initialises the
    // UNet's last convolution (`conv_out`) to zero, and the last convolution of every
    // ResBlock (`conv2`) too (`diffusion/unet.cpp`). Each ResBlock then starts as the
    // identity (out = shortcut(x) + 0), so the deep network starts shallow, and the first
    // prediction is the safe guess eps_theta = 0, the mean of eps.

    // %% [markdown]
    // ## Line 5, the loss: L_simple, eq. 14
    //
    // `L_simple = || eps - eps_theta ||^2`, averaged over every element of the minibatch
    // (`l_simple` in `diffusion/forward_process.cpp`; the mean rather than the sum only
    // rescales the gradient, which Adam's normalisation cancels anyway). A network that outputs 0, as ours does now, scores
    // exactly mean(eps^2), about E[eps^2] = 1.

    // %%
    Tensor loss = l_simple(eps_theta, eps);            // eq. 14: mean over B*C*H*W of (eps - eps_theta)^2,  0-d
    Tensor by_hand = mean((eps - eps_theta) * (eps - eps_theta));
    std::printf("L_simple       = %.6f\n", loss.item());
    std::printf("by hand        = %.6f   (mean((eps - eps_theta)^2))\n", by_hand.item());
    std::printf("mean(eps^2)    = %.6f   (the loss of a network that says 0)\n", mean(eps * eps).item());

    // %% [markdown]
    // ## Backward: the gradient of every parameter
    //
    // `loss.backward()` walks the graph recorded during the forward pass (notebook 02) and
    // leaves d L / d theta in each parameter's `.grad()`. Below, the gradient norm of each
    // part of the UNet, from the input side (temb, conv_in, down) through the middle to
    // the output side (up, norm_out, conv_out).

    // %%
    adam.zero_grad();                                   // drop the previous step's gradients
    loss.backward();                                    // d L_simple / d theta for every theta
    auto norms_step1 = grad_norms_by_group(unet);
    for (auto& [g, n] : norms_step1) std::printf("  %-10s |grad| = %.5f\n", g.c_str(), n);
    std::vector<std::string> nonzero;
    for (auto& [name, p] : unet.named_parameters())
        if (l2(p.grad()) != 0.0) nonzero.push_back(name);
    std::printf("%zu of %zu parameter tensors have a non-zero gradient:", nonzero.size(),
                unet.named_parameters().size());
    for (const std::string& name : nonzero) std::printf(" %s", name.c_str());
    std::printf("\n");

    // %% [markdown]
    // Only conv_out learns on the first step. Every other parameter reaches the loss
    // through conv_out's weights, which are zero, so by the chain rule its gradient is
    // zero too (d L / d h = W_out^T d L / d out = 0). conv_out itself has a gradient: it
    // is d L / d W_out = (d L / d out) times its input, and its input is not zero. The
    // zeros will thaw from the output backwards, one layer of zero-initialised weights
    // per step: you will see it in the table after the next step.

    // %% [markdown]
    // ## Clip, step, average
    //
    // The demo clips the global gradient norm `||g|| = sqrt(sum over all parameters of
    // |g|^2)` to 1 (`nn::clip_grad_norm`: if ||g|| > 1, every gradient is multiplied by
    // 1 / ||g||), as DDPM did. Then AdamW (Loshchilov & Hutter 2019, Algorithm 2) updates
    // each weight: m = beta1 m + (1 - beta1) g, v = beta2 v + (1 - beta2) g^2,
    // theta -= lr m_hat / (sqrt(v_hat) + eps), with the bias corrections m_hat = m / (1 -
    // beta1^k), v_hat = v / (1 - beta2^k). On the very first step m_hat = g and v_hat = g^2,
    // so every weight with a non-zero gradient moves by lr * g / |g| = +-lr, whatever the
    // size of its gradient: the numbers below show it for conv_out's 144 weights. Last, the EMA of the weights
    // (`nn/ema.h`: shadow = decay shadow + (1 - decay) theta) that sampling will use.

    // %%
    std::vector<Tensor> params = unet.parameters();
    float grad_norm = nn::clip_grad_norm(params, opt.grad_clip);   // ||g|| before clipping; g *= min(1, 1 / ||g||)
    std::printf("global gradient norm %.5f (clipped to %g: every gradient scaled by %.4f)\n", grad_norm, opt.grad_clip,
                std::min(1.0f, opt.grad_clip / grad_norm));
    Tensor w = unet.state_dict().at("conv_out.weight");  // (1, 16, 3, 3), zero so far; a handle, it sees the update
    Tensor w_before = w.detach().clone();
    adam.step();                                    // theta -= lr m_hat / (sqrt(v_hat) + eps)
    ema.update(unet);                               // shadow = decay_k shadow + (1 - decay_k) theta
    Tensor change = abs(w - w_before);
    std::printf("conv_out.weight: |change| min %.6f, max %.6f (lr = %g)\n", -max(-change).item(), max(change).item(),
                opt.lr);

    // %% [markdown]
    // ## The same minibatch again: the loss falls
    //
    // A sanity check every training loop deserves: repeat Algorithm 1's step on one fixed
    // minibatch (same x_0, t, eps). If the forward, the backward and the optimizer are
    // right, the network memorises this one batch and the loss goes down fast. (A real run
    // never does this: it draws a new x_0, t and eps every step.) The table shows the
    // gradient norms of the first three steps: the zeros thaw from the output backwards.

    // %%
    std::vector<float> steps, losses;
    float loss0 = loss.item();
    steps.push_back(0), losses.push_back(loss0);
    std::vector<std::pair<std::string, double>> norms_step2, norms_step3;
    std::printf("step  1: L_simple = %.4f\n", loss0);
    for (int k = 1; k <= 30; ++k) {
        Tensor l = l_simple(unet.forward(q_sample(schedule, x0, t, eps), t), eps);  // eq. 14 on the same batch
        adam.zero_grad();
        l.backward();
        if (k == 1) norms_step2 = grad_norms_by_group(unet);
        if (k == 2) norms_step3 = grad_norms_by_group(unet);
        nn::clip_grad_norm(params, opt.grad_clip);
        adam.step();
        steps.push_back((float)k), losses.push_back(l.item());
        if (k <= 2 || k % 10 == 0) std::printf("step %2d: L_simple = %.4f\n", k + 1, l.item());
    }
    std::printf("\n%-10s %12s %12s %12s\n", "group", "|grad| 1st", "|grad| 2nd", "|grad| 3rd");
    for (size_t i = 0; i < norms_step3.size(); ++i)
        std::printf("%-10s %12.5f %12.5f %12.5f\n", norms_step3[i].first.c_str(), norms_step1[i].second,
                    norms_step2[i].second, norms_step3[i].second);
    nb::show_plot(NB, "loss-same-batch.png", {{steps, losses}},
                  "L_simple on one fixed minibatch against the step (0..30), linear y axis: it falls as the "
                  "network memorises the batch.");

    // %% [markdown]
    // The loss falls from 1.01 towards a few hundredths: the loop, the backward and the
    // optimizer work together. In the table, the second step already has gradients in
    // every group but one: the skip paths (each ResBlock's shortcut, the skip concatenations)
    // carry the signal around the still-zero `conv2`s, and the conv2s themselves now get
    // a gradient. The time embedding (temb) waits one step longer: it enters only through
    // each ResBlock's `temb_proj`, which sits *behind* conv2, so it first learns on the
    // third step, once the conv2s have moved away from zero.

    // %% [markdown]
    // ## The engine's trainer does the same in one call
    //
    // `DdpmTrainer::step()` is Algorithm 1 with everything above inside it: `BatchIterator`
    // for x_0, a `Generator` seeded `seed + 1` for t then eps, `q_sample`, `UNet::forward`,
    // `l_simple`, `backward`, `clip_grad_norm`, AdamW and the EMA. Built from the same
    // config and seeds it must reproduce our first step exactly, not approximately.
    // While it runs, a `td::Trace` (`autograd/trace.h`, what `diffuse trace train` uses)
    // records the tensors the trainer and the UNet mark as worth seeing.

    // %%
    DdpmTrainer trainer(info, opt, train);
    StepStats s;
    std::vector<TraceEntry> recorded;
    {
        Trace tr;                                       // records every trace() call on this thread
        s = trainer.step();
        recorded = tr.entries;
    }
    std::printf("our first step:     loss %.7f, grad norm %.7f\n", loss0, grad_norm);
    std::printf("DdpmTrainer::step:  loss %.7f, grad norm %.7f   (%s)\n", s.loss, s.grad_norm,
                s.loss == loss0 && s.grad_norm == grad_norm ? "bit for bit the same" : "DIFFERENT");
    std::printf("\nwhat the trace recorded (%zu tensors), in order (the UNet's down and up blocks left out: notebook 07):\n",
                recorded.size());
    for (const TraceEntry& e : recorded)
        if (e.name.rfind("unet.down", 0) != 0 && e.name.rfind("unet.up", 0) != 0)  // the UNet's blocks: notebook 07
            nb::describe(e.name, e.value);
    return 0;
}

// %% [markdown]
// That is one step. The demo repeats it 8,500 times with minibatches of 32 (about ten
// minutes on two cores; it predicts v rather than eps and draws t logit-normally, `docs/recipes.md` says why), with a warm-up and cosine decay of the learning rate
// (`nn/lr_schedule.h`), and samples with the EMA weights. Notebook 06 takes such a
// trained network and runs the process backwards.
