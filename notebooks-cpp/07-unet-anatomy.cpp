// %% [markdown]
// # 07 The UNet's anatomy
//
// The UNet behind eps_theta opened up: one forward pass level by level, where its
// parameters are, and its timestep embedding.
// Notebooks 05 and 06 called eps_theta(x_t, t) as a black box: an image and a
// timestep in, an image-shaped noise estimate out. This notebook opens it. The network
// is DDPM's (Ho et al. 2020, appendix B), a UNet in the style of PixelCNN++: a path
// *down* that halves the resolution and widens the channels, a *middle* at the lowest
// resolution with self-attention, and a path *up* that undoes the halving, each up
// block fed the output of its mirror-image down block through a **skip connection**.
// The timestep enters every residual block.
//
// The engine's side: `diffusion/unet.h` (the picture in its header comment) and
// `diffusion/unet.cpp` (`UNet::UNet` builds it, `UNet::forward` runs it, `ResBlock`
// and `AttnBlock`); `nn/timestep_embedding.cpp` for the sinusoidal embedding. We look at
// the trained demo network of `runs/demo`, then count the parameters of DDPM's
// CIFAR-10 model with the same code.

// %%
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "autograd/trace.h"
#include "diffusion/data/dataset.h"
#include "diffusion/model_file.h"
#include "diffusion/unet.h"
#include "nn/timestep_embedding.h"
#include "notebooks-cpp/notebook.h"

using namespace td;
using namespace td::diffusion;

const char* NB = "07-unet-anatomy";

// A sub-module by its dotted name ("down.1.block.0"), found by walking Module::children():
// the UNet keeps its blocks private, but every module lists its children by name.
std::shared_ptr<nn::Module> find_module(const nn::Module& root, const std::string& path) {
    const nn::Module* m = &root;
    std::shared_ptr<nn::Module> found;
    size_t start = 0;
    while (start <= path.size()) {
        size_t dot = path.find('.', start);
        std::string part = path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
        found = nullptr;
        for (auto& [name, child] : m->children())
            if (name == part) found = child;
        check(found != nullptr, "find_module: no child '", part, "' on the way to '", path, "'");
        m = found.get();
        if (dot == std::string::npos) break;
        start = dot + 1;
    }
    return found;
}

// The block a parameter belongs to: "down.1.block.0", "down.1.downsample", "mid.attn_1",
// "temb", "conv_in", ... (its dotted name cut after the block's index).
std::string block_of(const std::string& name) {
    std::vector<std::string> parts;
    size_t start = 0, dot;
    while ((dot = name.find('.', start)) != std::string::npos) parts.push_back(name.substr(start, dot - start)), start = dot + 1;
    parts.push_back(name.substr(start));
    std::string head = parts[0];
    size_t keep = 1;                                                      // temb, conv_in, norm_out, conv_out
    if (head == "mid") keep = 2;                                          // mid.block_1
    if (head == "down" || head == "up") keep = (parts[2] == "block" || parts[2] == "attn") ? 4 : 3;
    std::string out = parts[0];
    for (size_t i = 1; i < keep; ++i) out += "." + parts[i];
    return out;
}

// Parameters per block, in the order the blocks first appear.
std::vector<std::pair<std::string, int64_t>> params_by_block(const nn::Module& m) {
    std::vector<std::pair<std::string, int64_t>> out;
    for (auto& [name, p] : m.named_parameters()) {
        std::string b = block_of(name);
        if (out.empty() || out.back().first != b) out.push_back({b, 0});
        out.back().second += p.numel();
    }
    return out;
}

int main() {
    // %% [markdown]
    // ## The demo's UNet
    //
    // `configs/mnist-demo.cfg` builds the smallest UNet that still draws digits: base
    // width ch = 16, three levels with widths ch x mults = 16, 32, 32 at 28x28, 14x14 and
    // 7x7, one ResBlock per level on the way down (two on the way up: one more, for the
    // extra skip the downsampling leaves), self-attention at 7x7, GroupNorm with 4 groups.
    // `load_model` rebuilds it from the metadata of `runs/demo/model.safetensors` and
    // loads the trained weights. `Module::summary()` lists every layer with its
    // parameters' shapes; here its first lines:

    // %%
    LoadedModel m = load_model("runs/demo/model.safetensors");
    UNet& unet = *m.unet;
    std::printf("%s\n%lld parameters\n\n", unet.config().describe().c_str(), (long long)unet.num_parameters());
    std::string summary = unet.summary();
    size_t cut = 0;
    for (int line = 0; line < 14 && cut != std::string::npos; ++line) cut = summary.find('\n', cut + 1);
    std::printf("%s\n...\n", summary.substr(0, cut).c_str());

    // %% [markdown]
    // ## One forward pass, level by level
    //
    // `UNet::forward` marks the output of every block with `td::trace(name, tensor)`
    // (`autograd/trace.h`); a `td::Trace` alive on this thread records them, which is all
    // `diffuse trace` does. One real digit at t = 500 goes in. The skips are a stack:
    // `conv_in` and every down block push their output, every up block pops one and
    // concatenates it to its input along the channels, so the up path meets the down
    // path's outputs in reverse order. The table pairs them up (what each up block's
    // input is made of: h from below, the skip from the down path). At 7x7 a block and
    // the attention after it are traced as one entry, named `attn`.

    // %%
    Dataset test = load_dataset("mnist", "test");
    Tensor x = test.images.narrow(0, 0, 1).contiguous();                 // (1, 1, 28, 28)
    Tensor t = Tensor::from_vector_i64({500}, {1});
    Generator gen(0);
    Tensor x_t = q_sample(m.schedule, x, t, randn(x.shape(), gen));       // eq. 4, notebook 04
    std::vector<TraceEntry> entries;
    {
        NoGradGuard no_grad;
        Trace tr;
        unet.forward(x_t, t);
        entries = tr.entries;
    }
    std::vector<const TraceEntry*> skips;   // the stack: conv_in, then each down block's output
    const TraceEntry* below = nullptr;      // the up path's running h
    for (const TraceEntry& e : entries) {
        std::string shape = shape_str(e.value.shape());
        bool down = e.name == "unet.conv_in" || e.name.rfind("unet.down.", 0) == 0;
        // an up block (a ResBlock, + attention at 7x7, traced as one): cat(h, skip) -> out
        bool up_block = e.name.rfind("unet.up.", 0) == 0 && e.name.find("upsample") == std::string::npos;
        if (up_block) {
            const TraceEntry* skip = skips.back();
            skips.pop_back();
            std::printf("%-26s %-16s <- cat(h %s, skip %s of %s)\n", e.name.c_str(), shape.c_str(),
                        shape_str(below->value.shape()).c_str(), shape_str(skip->value.shape()).c_str(),
                        skip->name.c_str());
        } else {
            std::printf("%-26s %-16s %s\n", e.name.c_str(), shape.c_str(),
                        down ? "(pushed as a skip)" : e.equation.empty() ? "" : ("(" + e.equation + ")").c_str());
        }
        if (down) skips.push_back(&e);
        if (e.name == "unet.mid" || e.name.rfind("unet.up.", 0) == 0) below = &e;
    }
    std::printf("skips left on the stack: %zu\n", skips.size());

    // %% [markdown]
    // Read it top to bottom. `conv_in` lifts the 1-channel image to ch = 16 channels at
    // 28x28. The down path keeps the resolution within a level and halves it between
    // levels with a stride-2 convolution (`downsample`): 28 -> 14 -> 7, the width growing
    // 16 -> 32. The middle works at 7x7. The up path mirrors it: at each level one more
    // block than on the way down, each taking `cat(h, skip)`, and a nearest-neighbour x2
    // plus a 3x3 convolution (`upsample`) between levels. The stack ends empty: every skip
    // pushed is consumed exactly once, which is why the up path has num_res_blocks + 1
    // blocks per level. Note where the names come from: up.2 is the 7x7 level, run
    // first; the names follow the DDPM code, where level i has resolution 28 / 2^i in
    // both paths. Attention blocks (`attn`) keep the shape: at 7x7 they treat the 49
    // pixels as a sequence of 49 tokens of 32 features, (B, C, H, W) -> (B, HW, C), and let
    // every pixel look at every other (`AttnBlock::forward`): that is how a 28x28 digit's
    // far-apart strokes get coordinated.

    // %% [markdown]
    // ## Where the parameters are
    //
    // Parameters per block (the same dotted names as the state dict, so the same as in
    // the PyTorch port of DDPM's code).

    // %%
    auto blocks = params_by_block(unet);
    int64_t total = unet.num_parameters();
    std::printf("%-22s %10s %7s\n", "block", "params", "share");
    for (auto& [name, n] : blocks) std::printf("%-22s %10lld %6.1f%%\n", name.c_str(), (long long)n, 100.0 * n / total);
    std::printf("%-22s %10lld\n", "total", (long long)total);

    // %% [markdown]
    // A 3x3 convolution from C_in to C_out channels has 9 C_in C_out + C_out parameters, so
    // the blocks at the widest levels dominate, and the up path, whose blocks take the
    // concatenated (wider) input and are one more per level, holds more than the down path.
    // Attention at width C costs 4 C^2 + C (Q, K, V, and the output projection) plus its
    // GroupNorm, cheap next to a ResBlock's two 3x3 convolutions (about 18 C^2).

    // %% [markdown]
    // ## DDPM's CIFAR-10 model, counted with the same code
    //
    // DDPM appendix B: ch = 128, mults 1,2,2,2 (32, 16, 8, 4 pixels), two ResBlocks per
    // level, attention at 16x16, dropout 0.1, 35.7M parameters. The same `UNetConfig`
    // builds it (we only count its parameters, no forward pass).

    // %%
    UNetConfig cifar;
    cifar.in_channels = 3, cifar.image_size = 32, cifar.ch = 128, cifar.mults = {1, 2, 2, 2};
    cifar.num_res_blocks = 2, cifar.attn_res = {16}, cifar.heads = 1, cifar.dropout = 0.1f, cifar.groups = 32;
    UNet big(cifar);
    int64_t big_total = big.num_parameters();
    std::printf("%s\n", cifar.describe().c_str());
    std::printf("ours: %lld parameters (%.2fM); DDPM paper: 35.7M; %.0f times the demo's UNet\n", (long long)big_total,
                big_total / 1e6, (double)big_total / (double)total);
    std::map<std::string, int64_t> by_part;  // temb, conv_in, down.0 ... up.3, mid, norm_out, conv_out
    std::vector<std::string> order;
    for (auto& [name, p] : big.named_parameters()) {
        std::string b = block_of(name);
        std::string part = b.rfind("down.", 0) == 0 || b.rfind("up.", 0) == 0 ? b.substr(0, b.find('.', b.find('.') + 1)) : b.substr(0, b.find('.'));
        if (!by_part.count(part)) order.push_back(part);
        by_part[part] += p.numel();
    }
    int64_t width_256 = 0;  // levels 1-3 (16, 8, 4 pixels) and the middle: 256 channels
    for (const std::string& part : order) {
        std::printf("  %-9s %10lld  %5.1f%%\n", part.c_str(), (long long)by_part[part], 100.0 * by_part[part] / big_total);
        if (part == "mid" || (part.find('.') != std::string::npos && part.back() != '0')) width_256 += by_part[part];
    }
    std::printf("in the 256-channel levels (1, 2, 3 and mid): %.1f%%\n", 100.0 * width_256 / big_total);
    int64_t attn_blocks = 0;
    for (auto& [name, p] : big.named_parameters())
        if (name.find("to_q.weight") != std::string::npos) ++attn_blocks;
    std::printf("attention blocks: %lld; DDPM's q, k, v are 1x1 convolutions with a bias each, ours are bias-free "
                "Linear layers: %lld x 3 x 256 = %lld parameters fewer\n",
                (long long)attn_blocks, (long long)attn_blocks, (long long)(attn_blocks * 3 * 256));
    std::printf("ours + those biases: %lld\n", (long long)(big_total + attn_blocks * 3 * 256));

    // %% [markdown]
    // Our count matches the paper's 35.7M. The released model, counted exactly (a PyTorch
    // transcription of DDPM's code, with its 1x1-convolution attention, gives 35,746,307),
    // has only the q, k, v biases more that our attention leaves out: ours plus those
    // 4,608 is that number exactly, so every other layer has the original's shape. Almost
    // all of it sits at the levels 256 channels wide, where a 3x3 convolution costs
    // 9 x 256 x 256 = 590k parameters.

    // %% [markdown]
    // ## The timestep embedding
    //
    // The network must know t: eps_theta at t = 50 (remove a faint grain) and at t = 900
    // (find a digit in noise) are very different jobs. DDPM gives t to every ResBlock as a
    // vector, built in two stages.
    //
    // **Sinusoids** (`nn::timestep_embedding`, the Transformer's position encoding,
    // Vaswani et al. 2017 sec. 3.5): with half = ch / 2 frequencies
    // `freq_i = exp(-ln(10000) i / (half - 1))`, i = 0..half-1,
    // `emb(t) = [sin(t freq_0), ..., sin(t freq_{half-1}), cos(t freq_0), ..., cos(t freq_{half-1})]`.
    // The first frequency is 1 radian per step (it distinguishes t from t + 1), the last
    // 1/10000 (it changes slowly across all 1000 steps), so near timesteps get similar
    // vectors and far ones different vectors. The picture: t = 0..319 left to right, each t
    // a column 3 pixels wide, one band 8 pixels tall per dimension (the demo's ch = 16: 8
    // sines above 8 cosines), white = +1, black = -1. Every t gets whole pixels on purpose:
    // the fastest sine turns 1 radian per step, and drawn at one pixel per two steps (or
    // scaled down by a browser) it aliases into stripes that are not in the embedding.

    // %%
    const int64_t ch = unet.config().ch;
    std::vector<float> ts;
    for (int64_t k = 0; k < 320; ++k) ts.push_back((float)k);
    const int64_t n_t = (int64_t)ts.size(), band = 8, width = 3;  // each dimension 8 pixels tall, each t 3 wide
    Tensor emb_all = nn::timestep_embedding(Tensor::from_vector(ts, {n_t}), ch);      // (320, ch)
    Tensor cells = emb_all.transpose(0, 1).unsqueeze(1).unsqueeze(3);                 // (ch, 1, 320, 1)
    Tensor picture = cells.expand({ch, band, n_t, width}).reshape({1, ch * band, n_t * width});  // nearest neighbour
    nb::show_image(NB, "timestep-embedding.png", picture,
                   "The sinusoidal embedding, ch = 16: one band per dimension (8 sines, then 8 cosines, fastest "
                   "frequency at the top of each half), t = 0..319 left to right, 3 pixels per t. White +1, black -1.", 1);
    Tensor probe = nn::timestep_embedding(Tensor::from_vector({500, 499, 490, 400, 100, 0}, {6}), ch);  // (6, ch)
    auto cosine = [&](int64_t i, int64_t j) {
        Tensor a = probe.narrow(0, i, 1), b = probe.narrow(0, j, 1);
        return sum(a * b).item() / std::sqrt(sum(a * a).item() * sum(b * b).item());
    };
    const char* names[] = {"500", "499", "490", "400", "100", "0"};
    for (int64_t j = 1; j < 6; ++j) std::printf("cosine similarity of emb(500) and emb(%s) = %+.3f\n", names[j], cosine(0, j));

    // %% [markdown]
    // Near timesteps get near vectors (500 and 499: 0.94) and distant ones unrelated
    // vectors (500 and 0: about 0). In between the similarity does not fall steadily (490 is
    // less like 500 than 400 is): the fast sinusoids wrap around many times over 1000
    // steps, and only the slow ones order t globally. With 16 dimensions that is a coarse
    // code; the MLP that follows learns what to make of it.
    //
    // **An MLP** then turns the fixed sinusoids into features the network can use:
    // `temb = dense.1(SiLU(dense.0(emb)))`, ch -> 4 ch -> 4 ch (16 -> 64 -> 64 here), trained
    // with everything else. Its output goes into every ResBlock. Inside a block
    // (`ResBlock::forward`):
    //
    // ```
    // h   = conv1(SiLU(norm1(x)))                       (B, C_out, H, W)
    // h   = h + temb_proj(SiLU(temb))[:, :, None, None]  a (B, C_out) vector, one number per channel,
    //                                                    the same at every pixel
    // h   = conv2(dropout(SiLU(norm2(h))))
    // out = shortcut(x) + h                              shortcut: x, or a 1x1 conv when the width changes
    // ```
    //
    // So t acts as a per-channel shift of the features between the block's two
    // convolutions, and each block learns its own `temb_proj` to choose which channels t
    // turns up or down. We take one block of the trained network, `down.1.block.0`
    // (16 -> 32 channels at 14x14), and feed it the same input at t = 100 and t = 700.

    // %%
    auto block = std::dynamic_pointer_cast<ResBlock>(find_module(unet, "down.1.block.0"));
    const TraceEntry* block_input = nullptr;  // what this block saw in the forward pass above
    for (const TraceEntry& e : entries)
        if (e.name == "unet.down.0.downsample.0") block_input = &e;
    Tensor h_in = cat({block_input->value, block_input->value}, 0);                    // (2, 16, 14, 14), twice
    Tensor two_t = Tensor::from_vector_i64({100, 700}, {2});
    NoGradGuard no_grad;
    Tensor emb = nn::timestep_embedding(two_t.to(DType::Float32), ch);                 // (2, 16) sinusoids
    auto dense0 = std::dynamic_pointer_cast<nn::Linear>(find_module(unet, "temb.dense.0"));
    auto dense1 = std::dynamic_pointer_cast<nn::Linear>(find_module(unet, "temb.dense.1"));
    Tensor temb = dense1->forward(silu(dense0->forward(emb)));                         // (2, 64): the MLP
    Tensor shift = block->temb_proj->forward(silu(temb));                              // (2, 32): per channel
    nb::describe("emb (sinusoid)", emb);
    nb::describe("temb (MLP)", temb);
    nb::describe("temb_proj", shift);
    std::vector<float> sv = shift.to_vector();
    std::printf("channel shift, first 6 of 32:  t = 100: ");
    for (int c = 0; c < 6; ++c) std::printf("%+.3f ", sv[c]);
    std::printf("\n                                t = 700: ");
    for (int c = 0; c < 6; ++c) std::printf("%+.3f ", sv[32 + c]);
    Tensor out = block->forward(h_in, temb);                                            // (2, 32, 14, 14)
    Tensor d = out.narrow(0, 0, 1) - out.narrow(0, 1, 1);
    std::printf("\nblock output, same x, t = 100 vs 700: RMS difference %.4f (RMS of the output %.4f)\n",
                std::sqrt(mean(d * d).item()), std::sqrt(mean(out * out).item()));
    return 0;
}

// %% [markdown]
// The same input features, two timesteps: each of the 32 channels is shifted by a
// different amount for t = 100 than for t = 700, and after norm2, SiLU and conv2 that
// changes the block's output everywhere. Every one of the UNet's ResBlocks (3 down,
// 2 middle, 6 up in the demo) gets such a shift from its own `temb_proj`: that is the
// whole mechanism by which one network serves all 1000 noise levels. A class-
// conditional UNet built with `cond_mode add` adds its label's embedding to temb
// before this point (`UNet::forward`), and so reaches every block the same way.
