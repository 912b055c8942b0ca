// %% [markdown]
// # 09 Conditioning and classifier-free guidance
//
// An unconditional DDPM draws *a* digit. To ask for a particular one, the network gets
// the request as an extra input, eps_theta(x_t, t, y), and is trained on pairs (image,
// label). That alone gives a model that usually obeys; classifier-free guidance (Ho &
// Salimans 2022) makes it obey firmly, at the price of variety, with no extra network:
// the same model, trained to also work without its label, is run twice per step and the
// two predictions are extrapolated.
//
// This notebook opens the class-conditional latent DDPM `runs/mnist-ldm-class`
// (`configs/mnist-ldm-class.cfg`: a UNet on the 7 x 7 x 4 latents of the autoencoder of
// notebook 08) and looks at: how the label enters the UNet; how much the label changes
// the prediction, step by step; the guidance formula in its two conventions; and a
// guidance sweep, with numbers from the MNIST classifier `runs/mnist-clf`.
//
// The engine's side: `diffusion/unet.h` (`UNet::condition`, `null_condition`, the
// `cond_mode` switch), `diffusion/guidance.h` (`cfg_combine`, `guided_denoiser`),
// `diffusion/model_file.h` (`LoadedModel::denoiser`, `decode`), `diffusion/sampler.h`
// (`sample`). `diffuse sample --run runs/mnist-ldm-class --sweep` draws the same kind of
// sweep from the command line (`tools/sample.cpp`).

// %%
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "diffusion/classifier.h"
#include "diffusion/data/dataset.h"
#include "diffusion/forward_process.h"
#include "diffusion/guidance.h"
#include "diffusion/latent.h"
#include "diffusion/model_file.h"
#include "diffusion/sampler.h"
#include "nn/safetensors.h"
#include "notebooks-cpp/notebook.h"

using namespace td;
using namespace td::diffusion;

const char* NB = "09-conditioning-guidance";

// y = (n) int64 labels, every one equal to c.
Tensor labels_of(int64_t c, int64_t n) { return Tensor::from_vector_i64(std::vector<int64_t>(n, c), {n}); }

// The Euclidean norm of a tensor, over all its elements.
double norm(const Tensor& x) { return std::sqrt(sum(x * x).item()); }

// cos(angle) between two vectors of any shape.
double cosine(const Tensor& a, const Tensor& b) { return sum(a * b).item() / (norm(a) * norm(b)); }

int main() {
    // %% [markdown]
    // ## The model and how the label gets in
    //
    // `load_model` reads the UNet, its process (schedule, T, what it predicts) and, for a
    // latent model, the frozen autoencoder stored in the same file under
    // `first_stage_model.*`. The UNet's `cond` and `cond_mode` say how it is conditioned.

    // %%
    NoGradGuard no_grad;  // sampling and measuring only: no autograd graph anywhere
    LoadedModel m = load_model("runs/mnist-ldm-class/model.safetensors");
    UNet& unet = *m.unet;
    const UNetConfig& u = m.info.unet;
    std::printf("UNet: %s\n", u.describe().c_str());
    std::printf("%lld parameters; cond = %s, cond_mode = %s, %lld classes; latent scale factor %.4f\n",
                (long long)unet.num_parameters(), conditioning_name(u.cond).c_str(), cond_mode_name(u.cond_mode).c_str(), (long long)u.num_classes,
                m.info.scale_factor);
    Tensor table = unet.state_dict().at("label_emb.weight");  // (num_classes + 1, width): one row per label
    std::printf("label_emb.weight: %s (rows 0..%lld: the digits; row %lld: the null label)\n",
                shape_str(table.shape()).c_str(), (long long)u.num_classes - 1, (long long)u.num_classes);
    UNet::Cond c3 = unet.condition(labels_of(3, 1));
    std::printf("condition(y = 3): emb %s, context %s, concat %s\n",
                c3.emb.defined() ? shape_str(c3.emb.shape()).c_str() : "-",
                c3.context.defined() ? shape_str(c3.context.shape()).c_str() : "-",
                c3.concat.defined() ? shape_str(c3.concat.shape()).c_str() : "-");

    // %% [markdown]
    // The label is an integer y in 0..9. `UNet::condition` turns it into what the network
    // can use, through `label_emb`, an embedding table with one learned vector per label
    // (`nn::Embedding`, row y of the table). Where that vector goes is `cond_mode`:
    //
    // - **add** (what `configs/mnist-ldm-class.cfg` trains; LDM's "adm", the class
    //   conditioning of Dhariwal & Nichol's ADM): the row has the width of the time
    //   embedding and is added to it, `temb = MLP(sinusoidal(t)) + label_emb[y]`
    //   (`UNet::forward`). Every ResBlock already receives temb (projected and added to its
    //   feature maps), so every block now also hears the label, at no extra cost.
    // - **crossattn**: the row becomes a one-token context for cross-attention,
    //   softmax(Q K^T / sqrt(d)) V with K, V from the label (LDM sec. 3.3). With a single
    //   key the softmax is 1, so each attention block adds a learned per-class shift: the
    //   same information as add mode, entering only at the attention resolution.
    // - **concat**: the vector as constant extra input channels.
    //
    // The lines above say which mode this run was trained with. `make notebooks` makes
    // `runs/mnist-ldm-class` with `configs/mnist-ldm-class.cfg` (add mode) when it is
    // missing; a run trained with `--cond-mode crossattn` behaves the same in everything
    // below, since all of it goes through `UNet::condition` and `guided_denoiser`.
    //
    // The last row of the table is the **null label**, index num_classes. It is the
    // "no condition" input that classifier-free guidance needs: in training, each label is
    // replaced by it with probability `p-uncond` = 0.1 (`diffuse train ldm`), so the same
    // network also learns the unconditional eps_theta(x_t, t, empty).
    // `UNet::null_condition(B)` returns B of them. What the rows look like:

    // %%
    {
        const int64_t K = u.num_classes;
        Tensor null_row = table.narrow(0, K, 1);
        std::printf("%6s %8s %22s\n", "label", "|row|", "cos(row, null row)");
        double off_diagonal = 0;
        for (int64_t c = 0; c <= K; ++c) {
            Tensor row = table.narrow(0, c, 1);
            const std::string name = c == K ? "null" : std::to_string(c);
            std::printf("%6s %8.3f %22.3f\n", name.c_str(), norm(row), cosine(row, null_row));
            for (int64_t d = 0; d < K && c < K; ++d)
                if (d != c) off_diagonal += cosine(row, table.narrow(0, d, 1)) / (double)(K * (K - 1));
        }
        std::printf("mean cos between two different digits' rows: %.3f\n", off_diagonal);
    }

    // %% [markdown]
    // The digits' rows point in clearly different directions (their mutual cosines are far
    // from 1), so the network can tell every label apart. The null row is simply one more
    // learned vector; nothing forces it to be zero or to sit "between" the classes.
    //
    // ## How much does the label matter, at each step?
    //
    // Take real digits' latents z_0 (scaled, as the model was trained on them), noise them
    // to x_t with DDPM eq. 4, and ask the network for eps_theta(x_t, t, y) with the true
    // label and with the null label. The relative difference of the two predictions says
    // how much the label changes what the model does at that noise level:

    // %%
    {
        Dataset test = load_dataset("mnist", "test");
        const int64_t n = 100;
        Tensor x0 = encode_latents(*m.vae, test.images.narrow(0, 0, n)) * (float)m.info.scale_factor;  // (n, 4, 7, 7)
        Tensor y = test.labels.narrow(0, 0, n).contiguous();
        Generator gen(0);
        Tensor eps = randn(x0.shape(), gen);
        UNet::Cond cond = unet.condition(y), empty = unet.condition(unet.null_condition(n));
        std::printf("%6s %12s %26s %26s\n", "t", "SNR(t)", "|eps_c - eps_u| / |eps_u|", "|x0_c - x0_u| / |x_0|");
        for (int64_t t : {50, 200, 400, 600, 800, 950}) {
            Tensor tt = Tensor::from_vector_i64(std::vector<int64_t>(n, t), {n});
            Tensor x_t = q_sample(m.schedule, x0, tt, eps);  // DDPM eq. 4
            Tensor eps_c = unet.forward(x_t, tt, cond), eps_u = unet.forward(x_t, tt, empty);
            double ab = m.schedule.alpha_bar[t];
            // x0_hat = (x_t - sqrt(1 - alpha_bar) eps_hat) / sqrt(alpha_bar), so the two x_0
            // predictions differ by sqrt((1 - alpha_bar) / alpha_bar) (eps_c - eps_u)
            double d_x0 = std::sqrt((1 - ab) / ab) * norm(eps_c - eps_u);
            std::printf("%6lld %12.4g %26.3f %26.3f\n", (long long)t, ab / (1 - ab), norm(eps_c - eps_u) / norm(eps_u),
                        d_x0 / norm(x0));
        }
    }

    // %% [markdown]
    // Measured in eps, the label seems to matter most at *low* noise (a few percent of
    // the prediction) and hardly at all at high noise. That is the wrong unit. At high
    // noise x_t is almost all noise, so eps is easy to predict from x_t alone and both
    // predictions are nearly x_t itself; but the sampler acts through the x_0 the
    // prediction implies, x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t),
    // which multiplies any change of eps by sqrt((1 - alpha_bar_t) / alpha_bar_t) = 1 /
    // sqrt(SNR). In that unit (the last column) the picture flips: at t = 50 the label moves
    // the predicted image by about 1% (the image already shows its digit), at t = 950 by
    // more than the size of the image itself: there the label *is* most of the prediction.
    // The class is decided in the first, noisy steps of sampling, and that is where
    // guidance acts.
    //
    // ## Classifier-free guidance
    //
    // Bayes' rule says the conditional score is the unconditional one plus the gradient of
    // a classifier: grad log p(x | y) = grad log p(x) + grad log p(y | x). Classifier
    // guidance (Dhariwal & Nichol) trains that classifier on noisy images and scales its
    // gradient. Ho & Salimans noticed the difference eps(x_t, y) - eps(x_t, empty) already
    // is such a direction (up to a factor -sqrt(1 - alpha_bar_t)), with no classifier,
    // and extrapolate along it. The paper writes (Ho & Salimans 2022, eq. 6)
    //
    // `eps_tilde = (1 + w') eps(x_t, c) - w' eps(x_t, empty)`,
    //
    // and the LDM / Stable Diffusion code, and this engine (`cfg_combine` in
    // `diffusion/guidance.cpp`), write the same thing as
    //
    // `eps_tilde = eps(x_t, empty) + w (eps(x_t, c) - eps(x_t, empty))`, with w = 1 + w'.
    //
    // So our w = 0 is the unconditional model, w = 1 the plain conditional model (the
    // paper's w' = 0), and w > 1 pushes past it, *away* from the unconditional prediction:
    // mind the minus sign in front of eps(x_t, empty), the one a hasty implementation gets
    // wrong. The two forms, checked numerically:

    // %%
    {
        Generator gen(1);
        Tensor x_t = randn(m.noise_shape(4), gen);
        Tensor tt = Tensor::from_vector_i64({500, 500, 500, 500}, {4});
        Tensor eps_c = unet.forward(x_t, tt, unet.condition(labels_of(7, 4)));
        Tensor eps_u = unet.forward(x_t, tt, unet.condition(unet.null_condition(4)));
        for (float w : {0.0f, 1.0f, 3.0f, 7.0f}) {
            float w_paper = w - 1.0f;
            Tensor ours = cfg_combine(eps_u, eps_c, w);
            Tensor paper = eps_c * (1.0f + w_paper) - eps_u * w_paper;
            std::printf("w = %.0f (paper's w' = %+.0f): max |ours - paper| = %.2e; |eps_tilde| / |eps_c| = %.3f\n", w,
                        w_paper, max(abs(ours - paper)).item(), norm(ours) / norm(eps_c));
        }
    }

    // %% [markdown]
    // Identical up to float rounding. The growing norm (several percent at w = 7, at this
    // t) is the first hint of what large w does: eps_tilde is an extrapolation, beyond
    // anything the network predicted in training, and the sampler steps along it. The
    // cost of guidance is two network calls per step; `guided_denoiser` runs them as one
    // forward on a batch of 2B (x_t twice; the labels, then the null labels) and splits
    // the result, and skips the second half when w is exactly 0 or 1.
    //
    // ## A guidance sweep
    //
    // Rows: w = 0, 1, 3, 7. Columns: the digits 0 to 9. **Every one of the 40 images starts
    // from the same x_T** and follows DDIM-50 (deterministic, eta = 0), so the only
    // differences are the label and w. Latent samples are decoded once at the end,
    // x = D(z_0 / scale) (`LoadedModel::decode`), and x_0 is not clipped during sampling
    // (a latent code is not bounded by [-1, 1]).

    // %%
    SamplerOptions options;
    options.sampler = Sampler::Ddim;
    options.steps = 50;
    options.eta = 0.0;
    options.clip_x0 = false;  // latents: never clip (README, "Latent diffusion")
    options.prediction = m.info.prediction;
    const std::vector<float> sweep = {0.0f, 1.0f, 3.0f, 7.0f};
    {
        const int64_t K = u.num_classes;
        Generator noise_gen(7);
        Tensor one_x_T = randn(m.noise_shape(1), noise_gen);
        Tensor x_T = one_x_T.expand(m.noise_shape(K)).contiguous();  // the same noise, K times
        Tensor y = arange_i64(K);                                      // labels 0, 1, ..., K - 1
        std::vector<Tensor> rows;
        for (float w : sweep) {
            Generator gen(0);  // (DDIM with eta = 0 draws nothing; the sampler still wants one)
            Tensor z_0 = sample(m.schedule, m.denoiser(y, w), x_T, options, gen);
            rows.push_back(m.decode(z_0));
        }
        nb::show_grid(NB, "guidance-sweep.png", clamp(cat(rows, 0), -1.0f, 1.0f), K,
                      "Rows: w = 0, 1, 3, 7. Columns: labels 0 to 9. All 40 start from the same x_T (DDIM-50, eta 0).",
                      2);
        std::printf("w = 0: the %lld images differ by at most %.2e (the label is never looked at)\n", (long long)K,
                    max(abs(rows[0] - rows[0].narrow(0, 0, 1))).item());
    }

    // %% [markdown]
    // The first row is one image ten times (the printed difference is exactly 0): at w = 0
    // only the null label is used, so the label cannot matter, and from one x_T the
    // deterministic sampler always lands on the same unconditional sample. At w = 1 the
    // label pulls the same noise towards the digit asked for, but not always all the way:
    // where the unconditional sample's shape is strong, some columns keep it. At w = 3 the
    // request wins (with the 2,400-step model of `configs/mnist-ldm-class.cfg`, every
    // column), and at w = 7 the digits turn bolder and heavier, strokes thicken or fade:
    // the familiar look of too much guidance.
    //
    // ## What w buys, and what it costs, in numbers
    //
    // For each w, 6 samples of each digit (fresh noise, the same noise for every w),
    // judged by the MNIST classifier of `runs/mnist-clf` (98.75% accurate on held-out
    // digits, with an 11th "not a digit" output): the share it classifies as the digit
    // asked for, the share it is more than 90% sure of ("recognisable"), and a measure of
    // variety: the standard deviation of each pixel across the 6 samples of one digit,
    // averaged over pixels and digits (the same number for 6 real digits of each class
    // is printed first, for scale).

    // %%
    {
        auto judge = load_classifier("runs/mnist-clf/classifier.safetensors");
        const int64_t K = u.num_classes, per_class = 6, n = K * per_class;
        std::vector<int64_t> asked(n);
        for (int64_t i = 0; i < n; ++i) asked[i] = i / per_class;  // 0 x 6, 1 x 6, ...
        Tensor y = Tensor::from_vector_i64(asked, {n});

        // Classifies images (n, 1, 28, 28) in [-1, 1], asked to be `asked`; measures their variety.
        auto report = [&](const std::string& what, const Tensor& images) {
            Tensor logits, feats;
            classify(*judge, images, logits, feats);
            Tensor p = softmax(logits, 1).narrow(1, 0, K).contiguous();  // the digits' share of the probability
            MaxResult best = max(p, 1);
            std::vector<int64_t> got = best.indices.to_vector_i64();
            std::vector<float> prob = best.values.to_vector();
            int64_t right = 0, sure = 0;
            for (int64_t i = 0; i < n; ++i) right += got[i] == asked[i], sure += prob[i] > 0.9f;
            double variety = 0;
            for (int64_t c = 0; c < K; ++c)  // per-pixel std over the class's samples, mean over pixels
                variety += mean(sqrt(var(images.narrow(0, c * per_class, per_class), {0}))).item() / (double)K;
            std::printf("%-22s %14.0f%% %14.0f%% %12.3f\n", what.c_str(), 100.0 * right / n, 100.0 * sure / n, variety);
        };

        std::printf("%-22s %15s %15s %12s\n", "", "as requested", "recognisable", "variety");
        {  // per_class real held-out digits of each class, in the same order
            Dataset test = load_dataset("mnist", "test");
            std::vector<int64_t> labels = test.labels.to_vector_i64(), idx;
            for (int64_t c = 0; c < K; ++c)
                for (int64_t i = 0, found = 0; found < per_class; ++i)
                    if (labels[i] == c) idx.push_back(i), ++found;
            report("real digits", index_select(test.images, 0, Tensor::from_vector_i64(idx, {n})));
        }
        Generator noise_gen(11);
        Tensor x_T = randn(m.noise_shape(n), noise_gen);  // one x_T per sample, the same for every w
        for (float w : sweep) {
            Generator gen(0);
            Tensor images = clamp(m.decode(sample(m.schedule, m.denoiser(y, w), x_T, options, gen)), -1.0f, 1.0f);
            char what[32];
            std::snprintf(what, sizeof what, "w = %.0f", w);
            report(what, images);
        }
    }

    // %% [markdown]
    // At w = 0 "as requested" is chance (10%): the unconditional model draws whatever
    // digit it likes. The label alone (w = 1) gets only part of the requests right; with
    // guidance (w = 3) nearly all of them (the README measures 97.5% on 1,000 samples of the
    // 2,400-step model), and the classifier is much surer of what it sees. Past that, w = 7
    // buys little and starts to cost: fewer images are recognisable than at w = 3.
    //
    // The price is variety. The pixel std within a digit's samples falls steadily as w
    // grows: the samples crowd towards one typical way of writing each digit, the mode of
    // p(x | y) sharpened (guidance samples roughly from p(x | y) p(y | x)^(w - 1)). Real
    // digits give a scale. With the 2,400-step model of the config, w = 1 is about as
    // varied as real handwriting, w = 0 more so (part of that "variety" is messiness:
    // stray strokes and blobs), and from w = 3 on the samples are cleaner *and* more
    // alike than real digits are. That is the trade-off Ho & Salimans plot as FID against
    // Inception score: a little guidance improves both, more trades diversity for
    // fidelity. `diffuse sample` uses w = 3 by default, and the README's numbers use it.
    //
    // (With only 60 images per row, each share is uncertain by several points;
    // `bash bench/run_quality.sh` measures 1,000.)
    //
    // To try: the same sweep at w = 1.5 and 2; a different `noise_gen` seed for the grid
    // (the w = 0 row is then a different unconditional digit); or `diffuse sample --run
    // runs/mnist-ldm-class --class 7 --guidance 15 --n 16 --out sevens.png` to see where
    // too much guidance leads.
    return 0;
}
