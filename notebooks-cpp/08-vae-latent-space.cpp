// %% [markdown]
// # 08 The autoencoder and its latent space
//
// Latent diffusion (Rombach et al. 2022) does not diffuse pixels. It first trains an
// autoencoder, an encoder E that squeezes an image x into a small code z = E(x) and a
// decoder D that turns z back into x, freezes it, and then trains the DDPM of notebooks
// 04-07 on the codes. For our MNIST run the code is 7 x 7 x 4 = 196 numbers per 784-pixel
// digit, and the README measures what that buys: the same UNet trains about 9 times
// faster per image on latents, and the class-conditional latent model reaches real-digit
// quality where the pixel model did not.
//
// This notebook opens the trained autoencoder `runs/mnist-vae` and looks at what it
// learned: reconstructions and their PSNR; the posterior q(z | x) and the
// reparameterisation z = mu + sigma * eps; the KL term in closed form; walking between
// two digits in latent space and, for contrast, in pixel space; decoding samples of the
// prior N(0, I), and why they look worse than what the latent DDPM makes; and the latent
// scale factor, our version of Stable Diffusion's 0.18215.
//
// The engine's side: `diffusion/vae.h` (the VAE, `encode`, `decode`, `reparameterise`,
// `kl_to_standard_normal`), `diffusion/vae_trainer.h` (`reconstruct`, `mean_psnr`),
// `diffusion/latent.h` (`encode_latents`, `latent_scale_factor`).

// %%
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/classifier.h"
#include "diffusion/data/dataset.h"
#include "diffusion/latent.h"
#include "diffusion/model_file.h"
#include "diffusion/vae.h"
#include "diffusion/vae_trainer.h"
#include "nn/safetensors.h"
#include "notebooks-cpp/notebook.h"

using namespace td;
using namespace td::diffusion;

const char* NB = "08-vae-latent-space";

// Per image of x (N, 1, 28, 28) in [-1, 1]: the classifier's most likely digit and its
// probability (softmax over all outputs, the reject class included, so junk scores low),
// and its penultimate features (for the classifier FID).
struct Verdict {
    std::vector<int64_t> digit;
    std::vector<float> prob;
    Tensor features;  // (N, 128)
};
Verdict judge(Classifier& clf, const Tensor& x) {
    Tensor logits, feats;
    classify(clf, x, logits, feats);
    Tensor p = softmax(logits, 1).narrow(1, 0, clf.cfg.num_classes).contiguous();  // (N, 10): the digits' share
    MaxResult best = max(p, 1);
    return {best.indices.to_vector_i64(), best.values.to_vector(), feats};
}

// The share of an image's ink that is grey: pixels between 20% and 80% brightness among
// all pixels above 20%. Handwriting is mostly full strokes with grey edges; a double
// exposure of two digits is mostly grey.
double grey_share(const Tensor& image) {
    int64_t ink = 0, grey = 0;
    for (float v : image.to_vector()) {
        float p = (v + 1.0f) * 0.5f;  // [-1, 1] -> [0, 1]
        ink += p > 0.2f;
        grey += p > 0.2f && p < 0.8f;
    }
    return ink ? (double)grey / (double)ink : 0.0;
}

// D(z) for many codes, in batches (the decoder's activations for 1,000 digits at once
// would take hundreds of MB), clamped to [-1, 1] as a PNG shows them.
Tensor decode_all(VAE& vae, const Tensor& z) {
    std::vector<Tensor> parts;
    for (int64_t i = 0; i < z.size(0); i += 250)
        parts.push_back(vae.decode(z.slice(0, i, std::min(z.size(0), i + 250))));
    return clamp(cat(parts, 0), -1.0f, 1.0f);
}

// Share of images the classifier is more than 90% sure of: "recognisable" in the README.
double share_recognisable(const Verdict& v) {
    int64_t n = 0;
    for (float p : v.prob) n += p > 0.9f;
    return (double)n / (double)v.prob.size();
}

// x of (N, C, H, W) -> the images with the given indices, in that order.
Tensor pick(const Tensor& x, const std::vector<int64_t>& idx) {
    return index_select(x, 0, Tensor::from_vector_i64(idx, {(int64_t)idx.size()}));
}

int main() {
    // %% [markdown]
    // ## The autoencoder, and 16 held-out digits through it
    //
    // `load_vae` reads the weights and rebuilds the network from the metadata stored in
    // the same file (`configs/mnist-vae.cfg` made it: 400 steps of Adam, about 1.5 minutes
    // on 2 cores). The encoder halves the resolution twice (mults 1,2,2, so f = 4:
    // 28 x 28 -> 7 x 7); there are no skip connections, so everything the decoder knows
    // about the digit passes through the latent.

    // %%
    LoadedVAE loaded = load_vae("runs/mnist-vae/model.safetensors");
    VAE& vae = *loaded.vae;
    std::printf("VAE: %s\n", loaded.config.describe().c_str());
    std::printf("parameters: %lld; trained %s steps on %s; held-out PSNR recorded in the file: %s dB\n",
                (long long)vae.num_parameters(), loaded.meta["steps"].c_str(), loaded.data.c_str(),
                loaded.meta["held_out_psnr"].c_str());

    Dataset test = load_dataset("mnist", "test");
    std::vector<int64_t> labels = test.labels.to_vector_i64();
    // the first two held-out examples of each digit, in the order 0, 0, 1, 1, ..., 9, 9
    std::vector<int64_t> idx;
    for (int64_t d = 0; d < 10; ++d)
        for (int64_t i = 0, found = 0; i < test.size() && found < 2; ++i)
            if (labels[i] == d) idx.push_back(i), ++found;
    Tensor x = pick(test.images, idx);  // (20, 1, 28, 28) in [-1, 1]
    nb::describe("x", x);

    // %% [markdown]
    // ## The posterior q(z | x) = N(mu, sigma^2)
    //
    // The encoder does not output a code but a distribution over codes, a diagonal
    // Gaussian per image (Kingma & Welling 2014; LDM's "KL" autoencoder): for every one of
    // the 4 x 7 x 7 latent elements a mean mu and a log-variance log sigma^2 (`logvar`:
    // any real number is a valid log-variance, so the network needs no positivity
    // constraint). `VAE::encode` returns both (`VAE::Posterior`).

    // %%
    // Inference only: no autograd graph, except in the one cell below that asks for gradients.
    std::optional<NoGradGuard> no_grad;
    no_grad.emplace();
    VAE::Posterior post = vae.encode(x);
    Tensor sigma = exp(post.logvar * 0.5f);
    nb::describe("mu", post.mu);
    nb::describe("logvar", post.logvar);
    nb::describe("sigma", sigma);
    std::printf("%lld numbers per image instead of %lld pixels (%.0fx fewer)\n",
                (long long)(post.mu.numel() / x.size(0)), (long long)(x.numel() / x.size(0)),
                (double)x.numel() / (double)post.mu.numel());
    std::printf("mean sigma / std of mu over the batch: %.4f\n", mean(sigma).item() / std::sqrt(var(post.mu).item()));

    // %% [markdown]
    // mu spreads over about +-5 with a standard deviation of 1.5; sigma averages under 0.1,
    // about a twentieth of that spread. The encoder is nearly deterministic, and that is
    // what LDM's tiny KL weight (beta = 1e-6, below) asks for: an autoencoder first, with
    // just enough of a Gaussian around each code to keep the latent space smooth. So a
    // "deterministic encoding" uses the mean, the posterior's mode: `encode_latents`
    // (`diffusion/latent.h`) caches mu for the LDM's training set, and `reconstruct`
    // (`diffusion/vae_trainer.h`) decodes mu.
    //
    // ## Reconstructions, and their PSNR
    //
    // Originals (top row of each pair) and D(mu) under them:

    // %%
    Tensor x_hat = vae.decode(post.mu);
    std::vector<Tensor> rows;
    for (int64_t r = 0; r < 2; ++r) {  // two rows of 10 originals, each followed by its reconstructions
        rows.push_back(x.slice(0, 10 * r, 10 * r + 10));
        rows.push_back(x_hat.slice(0, 10 * r, 10 * r + 10));
    }
    nb::show_grid(NB, "reconstructions.png", clamp(cat(rows, 0), -1.0f, 1.0f), 10,
                  "Rows 1 and 3: held-out digits. Rows 2 and 4: their reconstructions D(mu), mu the posterior mean.",
                  2);
    // 1,000 held-out digits: their codes (encode_latents: mu, in batches) and D(mu)
    Tensor held = test.images.narrow(0, 0, 1000);
    Tensor z_held = encode_latents(vae, held);  // (1000, 4, 7, 7)
    Tensor held_hat = decode_all(vae, z_held);
    std::printf("PSNR of these 20: %.2f dB; of the first %lld held-out digits: %.2f dB\n", mean_psnr(x, x_hat),
                (long long)held.size(0), mean_psnr(held, held_hat));
    std::printf("mean |x - x_hat| per pixel: %.4f, in [-1, 1] units\n", mean(abs(held - held_hat)).item());

    // %% [markdown]
    // PSNR = 10 log10(1 / MSE) with pixels in [0, 1] (`mean_psnr`, averaged over images):
    // about 25 dB is an RMS error of 5-6% of the pixel range, which is what the pictures
    // show: the right digit with the right shape, strokes slightly softened. The number
    // matches the one the trainer recorded in the file over its own 1,000 held-out digits.
    // A sharper autoencoder costs more steps (`configs/mnist-vae.cfg`: 800 steps give
    // 27.6 dB); LDM adds a perceptual and an adversarial loss for photographs, which 28 x 28
    // digits do not need.
    //
    // ## The reparameterisation: z = mu + sigma * eps
    //
    // Training needs a *sample* z ~ q(z | x) and gradients through it to the encoder. A
    // sample drawn "by the distribution" has no derivative with respect to its mean and
    // variance. Kingma & Welling's trick (their eq. 10, the estimator the VAE is trained
    // with; LDM's `DiagonalGaussianDistribution.sample`) draws the randomness first,
    // eps ~ N(0, I), and then computes z = mu + sigma * eps, sigma = exp(logvar / 2): a
    // plain differentiable function of (mu, logvar), with dz/dmu = 1 and
    // dz/dlogvar = sigma * eps / 2. `VAE::reparameterise` is exactly that line. Below, its
    // gradients by autograd next to those formulas, on three latent elements:

    // %%
    no_grad.reset();  // grad mode on, for this demonstration
    {
        Generator gen(0);
        Tensor mu = Tensor::from_vector({0.5f, -1.0f, 2.0f}, {3}).requires_grad_();
        Tensor logvar = Tensor::from_vector({-4.0f, -6.0f, 0.0f}, {3}).requires_grad_();
        Tensor eps = randn({3}, gen);
        Tensor z = VAE::reparameterise(mu, logvar, eps);
        sum(z).backward();
        std::vector<float> e = eps.to_vector(), lv = logvar.detach().to_vector(), zz = z.detach().to_vector();
        std::vector<float> gmu = mu.grad().to_vector(), glv = logvar.grad().to_vector();
        std::printf("%8s %8s %8s %9s | %8s | %14s %20s\n", "mu", "logvar", "eps", "z", "dz/dmu", "dz/dlogvar",
                    "sigma * eps / 2");
        for (int i = 0; i < 3; ++i)
            std::printf("%8.3f %8.3f %8.3f %9.4f | %8.3f | %14.6f %20.6f\n", mu.detach().to_vector()[i], lv[i], e[i],
                        zz[i], gmu[i], glv[i], std::exp(lv[i] / 2) * e[i] / 2);
    }
    no_grad.emplace();
    // eight samples z ~ q(z | x) for the first digit, each decoded
    {
        Generator gen(1);
        Tensor mu0 = post.mu.narrow(0, 0, 1).expand({8, 4, 7, 7}).contiguous();
        Tensor lv0 = post.logvar.narrow(0, 0, 1).expand({8, 4, 7, 7}).contiguous();
        Tensor z = VAE::reparameterise(mu0, lv0, randn({8, 4, 7, 7}, gen));
        Tensor dec = vae.decode(z);
        nb::show_grid(NB, "posterior-samples.png", clamp(dec, -1.0f, 1.0f), 8,
                      "Eight draws z = mu + sigma * eps from q(z | x) of one held-out 0, decoded.", 2);
        std::printf("spread of the 8 decodings (std over the draws, mean over pixels): %.4f\n",
                    mean(sqrt(var(dec, {0}))).item());
    }

    // %% [markdown]
    // The gradients match the formulas, and the eight draws decode to the same digit: with
    // sigma this small the noise moves each decoded pixel by half a percent of its range.
    // It still matters in training, where it teaches the decoder that the neighbourhood of
    // each code decodes to the same digit, which is part of why the latent space is smooth
    // enough to diffuse in.
    //
    // ## The KL term in closed form
    //
    // The VAE's loss is the negative evidence lower bound: reconstruction +
    // beta KL(q(z | x) || N(0, I)). For two Gaussians the KL has a closed form (Kingma &
    // Welling, appendix B), per latent element
    // `KL = 0.5 (mu^2 + sigma^2 - 1 - log sigma^2)`, summed over the elements of an image
    // and averaged over the batch as LDM does (`kl_to_standard_normal`). The formula,
    // computed by hand here, against the engine's function:

    // %%
    {
        Tensor per_element = (post.mu * post.mu + exp(post.logvar) - 1.0f - post.logvar) * 0.5f;  // (B, 4, 7, 7)
        Tensor per_image = sum(per_element, {1, 2, 3});                                           // (B)
        std::printf("KL by hand: %.3f nats per image; kl_to_standard_normal: %.3f\n", mean(per_image).item(),
                    kl_to_standard_normal(post.mu, post.logvar).item());
        Tensor from_mu = sum(post.mu * post.mu * 0.5f, {1, 2, 3});
        Tensor from_sigma = sum((exp(post.logvar) - 1.0f - post.logvar) * 0.5f, {1, 2, 3});
        std::printf("  of which 0.5 mu^2: %.3f, and 0.5 (sigma^2 - 1 - log sigma^2): %.3f\n", mean(from_mu).item(),
                    mean(from_sigma).item());
        std::printf("beta * KL = %.2e, against an L1 reconstruction term of %.1f per image\n",
                    1e-6 * kl_to_standard_normal(post.mu, post.logvar).item(),
                    sum(abs(x - x_hat)).item() / (double)x.size(0));
    }

    // %% [markdown]
    // A KL of hundreds of nats per image: the posterior is nowhere near N(0, I), and about
    // two thirds of that is the sigma term (a tiny sigma costs each of the 196 elements
    // about -0.5 log sigma^2 - 0.5), the rest mu's distance from 0. At beta = 1e-6 that
    // term weighs almost nothing against the reconstruction error, and LDM wants it that
    // way: the KL is a gentle leash that keeps the codes from drifting to huge values, not
    // a force that makes them Gaussian. The price shows below, when we sample the prior.
    //
    // ## Walking between two digits: latent space vs pixel space
    //
    // Take two held-out digits x_0 and x_1 (a 2 and a 9 here) and their codes z_0, z_1.
    // Decode the straight line between the codes, D((1 - a) z_0 + a z_1), a = 0 .. 1; and,
    // for contrast, the straight line between the images themselves, (1 - a) x_0 + a x_1.
    // The classifier of `runs/mnist-clf` (98.75% on held-out digits, with an 11th "not a
    // digit" output) says what it sees along each path.

    // %%
    auto judge_model = load_classifier("runs/mnist-clf/classifier.safetensors");
    {
        const int64_t steps = 9, from = 4, to = 18;  // the first held-out 2 and the second 9
        Tensor x0 = x.narrow(0, from, 1), x1 = x.narrow(0, to, 1);
        Tensor z0 = post.mu.narrow(0, from, 1), z1 = post.mu.narrow(0, to, 1);
        std::vector<Tensor> lat, pix;
        for (int64_t i = 0; i < steps; ++i) {
            float a = (float)i / (float)(steps - 1);
            lat.push_back(z0 * (1.0f - a) + z1 * a);
            pix.push_back(x0 * (1.0f - a) + x1 * a);
        }
        Tensor latent_path = decode_all(vae, cat(lat, 0)), pixel_path = cat(pix, 0);
        nb::show_grid(NB, "interpolation.png", cat({latent_path, pixel_path}, 0), steps,
                      "a = 0, 1/8, ..., 1 from left to right. Top: D((1 - a) z_0 + a z_1), the straight line between "
                      "the codes, decoded. Bottom: (1 - a) x_0 + a x_1, the straight line between the images.",
                      3);
        Verdict vl = judge(*judge_model, latent_path), vp = judge(*judge_model, pixel_path);
        std::printf("%6s | %-27s | %-27s\n", "", "latent path", "pixel path");
        std::printf("%6s | %-16s %10s | %-16s %10s\n", "a", "classifier says", "grey ink", "classifier says",
                    "grey ink");
        for (int64_t i = 0; i < steps; ++i) {
            char said_l[32], said_p[32];
            std::snprintf(said_l, sizeof said_l, "%lld (p = %.2f)", (long long)vl.digit[i], vl.prob[i]);
            std::snprintf(said_p, sizeof said_p, "%lld (p = %.2f)", (long long)vp.digit[i], vp.prob[i]);
            double grey_l = grey_share(latent_path.narrow(0, i, 1)), grey_p = grey_share(pixel_path.narrow(0, i, 1));
            std::printf("%6.3f | %-16s %9.0f%% | %-16s %9.0f%%\n", (double)i / (steps - 1), said_l, 100 * grey_l,
                        said_p, 100 * grey_p);
        }
    }

    // %% [markdown]
    // The pixel path is a double exposure: two half-bright digits on top of each other.
    // "Grey ink" measures it: the share of the inked pixels that are neither background
    // nor full stroke jumps from about 40% at the ends (a digit's anti-aliased edges) to
    // about 90% in the middle, and the classifier, asked to name the overlay of a 2 and a
    // 9, calls it an 8 (two loops). The latent path is not a cross-fade: each image is
    // drawn with strokes of full ink (its grey share stays near the endpoints'), and the
    // shape itself bends from one digit into the other, passing through something the
    // classifier confidently calls a 3, a plausible digit on the way from a 2 to a 9.
    // (Its ends are the reconstructions D(z_0), D(z_1), slightly softer than the
    // originals.) This is what "the latent space is smooth" means in practice, and why a
    // diffusion model can work there: small steps in z are small, plausible changes of the
    // image. Nothing guarantees the middle is a clean digit, though: nothing trained the
    // codes between a 2 and a 9 to mean anything in particular.
    //
    // ## Sampling the prior: decoding z ~ N(0, I)
    //
    // A VAE is a generative model on paper: draw z from the prior N(0, I) and decode it.
    // Here that goes wrong, and the numbers say why. The prior describes what the codes
    // *should* look like; the **aggregate posterior** q(z) = E_x[q(z | x)], the codes the
    // encoder actually produces for real digits, is what the decoder was trained on. With
    // beta = 1e-6 nothing pulled q(z) towards N(0, I):

    // %%
    const Tensor& z_real = z_held;  // (1000, 4, 7, 7): mu of the first 1,000 held-out digits
    {
        std::printf("aggregate posterior, per latent channel (over %lld held-out digits and 7 x 7 positions):\n",
                    (long long)z_real.size(0));
        for (int64_t c = 0; c < z_real.size(1); ++c) {
            Tensor zc = z_real.narrow(1, c, 1);
            std::printf("  channel %lld: mean %+.3f  std %.3f  min %+.2f  max %+.2f\n", (long long)c, mean(zc).item(),
                        std::sqrt(var(zc).item()), -max(neg(zc)).item(), max(zc).item());
        }
        // neighbouring positions: correlation of z[c, i, j] with z[c, i, j + 1] over all digits
        Tensor left = z_real.narrow(3, 0, 6).contiguous(), right = z_real.narrow(3, 1, 6).contiguous();
        Tensor l0 = left - mean(left), r0 = right - mean(right);
        double corr = mean(l0 * r0).item() / std::sqrt(mean(l0 * l0).item() * mean(r0 * r0).item());
        std::printf("correlation between horizontally neighbouring latent positions: %.3f (the prior says 0)\n", corr);
    }

    // %%
    {
        const int64_t n = 500;
        Generator gen(2);
        Tensor z_prior = randn({n, 4, 7, 7}, gen);
        // the same number of codes from a Gaussian that at least has the right mean and std
        // per channel and position (still independent elements, so no correlations)
        Tensor mu_agg = mean(z_real, {0}, true), std_agg = sqrt(var(z_real, {0}, true));
        Tensor z_fit = mu_agg + std_agg * randn({n, 4, 7, 7}, gen);
        Tensor dec_prior = decode_all(vae, z_prior), dec_fit = decode_all(vae, z_fit);
        nb::show_grid(NB, "prior-samples.png", cat({dec_prior.narrow(0, 0, 10), dec_fit.narrow(0, 0, 10)}, 0), 10,
                      "Top: D(z), z ~ N(0, I), the VAE's prior. Bottom: D(z), z from a Gaussian with the per-element "
                      "mean and std of the real codes.",
                      2);
        // the classifier's penultimate features of the held-out set (written by train classifier)
        Tensor reference = load_npy("runs/mnist-clf/reference_features.npy");
        auto row = [&](const char* what, const Tensor& images) {
            Verdict v = judge(*judge_model, images);
            std::printf("%-50s %12.1f%% %14.1f\n", what, 100 * share_recognisable(v),
                        frechet_distance(v.features, reference));
        };
        std::printf("%-50s %13s %14s\n", "500 images each", "recognisable", "classifier FID");
        row("real held-out digits", held.narrow(0, 0, n));
        row("their reconstructions D(mu)", held_hat.narrow(0, 0, n));
        row("D(z), z ~ N(0, I), the prior", dec_prior);
        row("D(z), z ~ N(mean, std of the real codes), independent", dec_fit);
    }

    // %% [markdown]
    // Decoded prior samples are almost empty: N(0, I) puts the codes where real digits
    // never are (channel 0 of a real code averages +1.6, channel 1 -1.2), and the decoder
    // has never been asked what such codes mean. Matching each element's mean and standard
    // deviation gets the amount of ink right, and the classifier is sure of a fair share of
    // those images, but look at them: blots, not handwriting, and the classifier FID
    // (the Fréchet distance between its features of these images and of real ones,
    // `diffusion/classifier.h`) stays far from the real digits'. What is missing are the
    // correlations: neighbouring positions of a real code correlate at about 0.75 (a
    // stroke spans several of them), and an independent Gaussian knows nothing of that. The
    // distribution of real codes is a complicated, structured thing, and that is the
    // division of labour of latent diffusion: the autoencoder makes the space small and
    // smooth, the DDPM learns the distribution q(z) in it (and samples from it), and the
    // decoder only has to render. The class-conditional latent DDPM of notebook 09
    // produces digits the same classifier calls recognisable as often as real ones
    // (README: 96.2%).
    //
    // ## The latent scale factor, and Stable Diffusion's 0.18215
    //
    // The DDPM's forward process (DDPM eq. 4) mixes x_0 with unit-variance noise,
    // x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps, and its schedule was designed
    // for data of about unit scale (pixels in [-1, 1]). An autoencoder's codes have
    // whatever scale it happened to learn. LDM's fix for its KL autoencoders (the
    // `scale_factor` of their configs): divide the codes by their standard deviation,
    // measured once on training data, and diffuse scale * z. `latent_scale_factor`
    // (`diffusion/latent.h`) is 1 / std over every element of the training latents;
    // Stable Diffusion's 0.18215 is the same number for its own autoencoder (its latents
    // have a std of about 5.5), measured once and frozen into the config. Ours, from the
    // training latents `train ldm` cached beside the autoencoder:

    // %%
    {
        LatentCache cache = load_latent_cache("runs/mnist-vae/latents/mnist-train.safetensors");
        double scale = latent_scale_factor(cache.latents);
        std::printf("training latents %s: std %.4f -> scale factor 1 / std = %.5f\n",
                    shape_str(cache.latents.shape()).c_str(), 1.0 / scale, scale);
        std::printf("the 1,000 held-out latents give %.5f\n", latent_scale_factor(z_real));
        ModelInfo ldm = load_model("runs/mnist-ldm-class/model.safetensors").info;
        std::printf("runs/mnist-ldm-class was trained with scale_factor = %.5f (its metadata)\n", ldm.scale_factor);
        nb::describe("scale * z", cache.latents * (float)scale);

        // What an unscaled code would do to the schedule: SNR(t) = alpha_bar_t var(x_0) / (1 - alpha_bar_t)
        // depends on the data's variance, so the noise level at every t shifts.
        Schedule s = Schedule::named("linear", 1000);
        double v = 1.0 / (scale * scale);
        std::printf("\n%6s %14s %20s %26s\n", "t", "SNR, std 1", "SNR, our raw codes", "SNR, SD's raw codes (5.49)");
        for (int64_t t : {99, 299, 499, 699, 999}) {
            double snr1 = s.alpha_bar[t] / (1.0 - s.alpha_bar[t]);
            std::printf("%6lld %14.4g %20.4g %26.4g\n", (long long)t, snr1, snr1 * v, snr1 * 5.49 * 5.49);
        }
    }

    // %% [markdown]
    // Our codes have a std of about 1.5, so the factor is about 0.65 and `train ldm`
    // stores it in the model file (`ldm.scale_factor`); sampling divides by it before
    // decoding, x = D(z_0 / scale) (`LoadedModel::decode`). Without it, the signal-to-noise
    // ratio at every step would be var(z) times what the schedule intends: 2.4 times for
    // our codes, 30 times for Stable Diffusion's. At SD's scale the whole process shifts
    // towards clean images: at t = 699 an SNR of 0.2 where the schedule means 0.007, so
    // most steps would be spent on images that are still easy to see, and x_T would keep
    // 30 times the trace of x_0 the schedule allows, while the sampler starts from pure
    // N(0, I) noise: training and sampling would disagree about where the process ends.
    // Measuring the std once and dividing is the cheapest fix there is.
    //
    // To try: the interpolation between other pairs of digits (change `from` and `to`: the
    // 20 examples are in the order 0, 0, 1, 1, ..., 9, 9); decode codes scaled by 0.5 or 2
    // and see which directions of z the decoder cares about; train an autoencoder with
    // `--beta 1e-2` (`diffuse train vae`) and watch the KL fall, the prior samples improve
    // and the reconstructions blur.
    return 0;
}
