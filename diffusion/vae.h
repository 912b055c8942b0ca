// diffusion/vae.h: the autoencoder of latent diffusion (Rombach et al. 2022, sec. 3.1 and
// appendix G), the "KL" variant: a VAE (Kingma & Welling 2014) whose encoder maps an image
// to a diagonal Gaussian q(z | x) = N(mu, sigma^2) over a latent f times smaller per side,
// and whose decoder maps a latent back to an image. LDM then runs diffusion on z.
//
//   x (B, C, H, W) --encoder--> (B, 2 z, H/f, W/f) --quant_conv (1x1)--> mu, log sigma^2
//   z = mu + sigma * eps                                    (the reparameterisation)
//   z (B, z, H/f, W/f) --post_quant_conv (1x1)--> --decoder--> x_hat (B, C, H, W)
//
// So f = 2^(len(mults) - 1): mults 1,2,2 gives f = 4, 28x28 -> 7x7 and 32x32 -> 8x8.
// There are no skip connections (unlike the UNet): everything the decoder gets goes
// through the latent, which is the point.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "diffusion/metadata.h"
#include "diffusion/unet.h"
#include "nn/conv.h"
#include "nn/norm.h"

namespace td::diffusion {

struct VAEConfig {
    int64_t in_channels = 1;                 // image channels (1 for MNIST, 3 for CIFAR-10)
    int64_t image_size = 28;                 // H = W of the images
    int64_t ch = 32;                         // base width
    std::vector<int64_t> mults = {1, 2, 2};  // width of level i = ch * mults[i]; len - 1 downsamples
    int64_t num_res_blocks = 1;              // per level in the encoder (the decoder has one more)
    int64_t z_channels = 4;                  // latent channels (LDM: 3 for f = 4, 4 for f = 8)
    int64_t groups = 8;                      // GroupNorm groups; must divide every width
    bool mid_attn = true;                    // self-attention between the mid ResBlocks
    uint64_t seed = 0;                       // initial weights

    int64_t factor() const;       // f = 2^(len(mults) - 1): how many times smaller the latent is per side
    int64_t latent_size() const;  // image_size / f
    // Throws td::Error naming the bad field (groups that do not divide a width, an image
    // size that f does not divide, ...).
    void validate() const;
    std::string describe() const;  // "ch 32, mults 1,2,2 (f = 4), 1 res block, 4 latent channels, ..."
};

// "model" = "vae", "vae.ch" = "32", "vae.mults" = "1,2,2", ... (a model.safetensors' metadata)
Metadata to_metadata(const VAEConfig& config);
// Throws td::Error naming `path` and the missing or malformed key (or what validate() says).
VAEConfig vae_config_from_metadata(const Metadata& meta, const std::string& path);

// The encoder: x (B, C, H, W) -> (B, 2 z, H / f, W / f), the moments before quant_conv.
//   encoder: conv_in (C -> ch); per level i, num_res_blocks ResBlocks of ch * mults[i]
//            channels, then (all but the last level) a stride-2 3x3 conv halving H, W;
//            mid: ResBlock, self-attention, ResBlock; GroupNorm, SiLU, 3x3 conv to 2 z
//   decoder: conv_in (z -> the widest width); mid as above; per level, from the lowest
//            resolution up, num_res_blocks + 1 ResBlocks, then (all but level 0) a nearest
//            x2 upsample and a 3x3 conv; GroupNorm, SiLU, 3x3 conv to C
class Encoder : public nn::Module {
public:
    Encoder(const VAEConfig& config, Generator& init);
    Tensor forward(const Tensor& x);
    std::string name() const override { return "Encoder"; }

    struct Level {  // one resolution: its ResBlocks, then the stride-2 conv (null on the last level)
        std::vector<std::shared_ptr<ResBlock>> blocks;
        std::shared_ptr<nn::Conv2d> downsample;
    };
    std::shared_ptr<nn::Conv2d> conv_in, conv_out;
    std::vector<Level> down;  // down[i]: resolution H / 2^i
    std::shared_ptr<ResBlock> mid_block_1, mid_block_2;
    std::shared_ptr<AttnBlock> mid_attn_1;  // null without mid_attn
    std::shared_ptr<nn::GroupNorm> norm_out;
};

// The decoder: z (B, z, H / f, W / f) (after post_quant_conv) -> (B, C, H, W).
class Decoder : public nn::Module {
public:
    Decoder(const VAEConfig& config, Generator& init);
    Tensor forward(const Tensor& z);
    std::string name() const override { return "Decoder"; }

    struct Level {  // one resolution: its ResBlocks, then nearest x2 + this conv (null on level 0)
        std::vector<std::shared_ptr<ResBlock>> blocks;
        std::shared_ptr<nn::Conv2d> upsample;
    };
    std::shared_ptr<nn::Conv2d> conv_in, conv_out;
    std::shared_ptr<ResBlock> mid_block_1, mid_block_2;
    std::shared_ptr<AttnBlock> mid_attn_1;
    std::vector<Level> up;  // up[i]: resolution H / 2^i; run from the last to up[0]
    std::shared_ptr<nn::GroupNorm> norm_out;
};

// Parameter names are those of CompVis' AutoencoderKL (ldm/models/autoencoder.py and
// ldm/modules/diffusionmodules/model.py): encoder.conv_in, encoder.down.0.block.0.conv1,
// encoder.down.0.downsample.conv, encoder.mid.block_1, encoder.mid.attn_1,
// encoder.norm_out, encoder.conv_out, quant_conv, post_quant_conv, decoder.conv_in,
// decoder.mid.block_2, decoder.up.0.block.0.nin_shortcut, decoder.up.1.upsample.conv,
// decoder.norm_out, decoder.conv_out. Where ours differs from theirs (a released
// checkpoint's names mostly load, but it would not compute the same function):
//   - attention: ours is the UNet's AttnBlock (nn::Attention: norm, attn.to_q / to_k /
//     to_v without bias, attn.to_out with bias, one head); theirs has 1x1 convs q, k, v,
//     proj_out, all with bias. The same computation up to those biases and the layout.
//   - GroupNorm eps 1e-5 (PyTorch's default, our nn::GroupNorm) vs their 1e-6, and a
//     configurable number of groups (theirs: always 32, too many for 32-channel layers).
//   - the downsample conv pads 1 on every side; theirs pads (0, 1, 0, 1) (see unet.h).
//   - init: each ResBlock's conv2 starts at zero (the block starts as the identity,
//     diffusion/unet.h); theirs uses PyTorch's default init everywhere.
//   - no attention inside the levels (their attn_resolutions; the released KL configs
//     leave it empty), mid attention can be switched off (mid_attn), no dropout.
//   - one latent width: their quant_conv maps 2 z_channels -> 2 embed_dim and
//     post_quant_conv embed_dim -> z_channels; the released configs set embed_dim =
//     z_channels, and so do we (both 1x1 convs keep their width).
class VAE : public nn::Module {
public:
    explicit VAE(const VAEConfig& config);  // validates the config (td::Error)

    // q(z | x) = N(mu, diag(sigma^2)), LDM's DiagonalGaussianDistribution. Both (B, z, h, w).
    // The network predicts log sigma^2 ("logvar") rather than sigma: any real number is a
    // valid log-variance, so no positivity constraint is needed.
    struct Posterior {
        Tensor mu;      // the mean, also the mode: what a deterministic encoding uses
        Tensor logvar;  // log sigma^2, clamped to [-30, 20] (see from_moments)
    };
    // moments (B, 2 z, h, w) -> mu = the first z channels, logvar = the last z, clamped to
    // [-30, 20] as LDM's DiagonalGaussianDistribution does: sigma = exp(logvar / 2) then
    // stays within [3e-7, 2.2e4], so neither exp(logvar) in the KL nor sigma * eps in z
    // overflows float32 or collapses to exactly 0 when an untrained or diverging encoder
    // outputs a huge value. Inside the range the clamp is the identity (gradient 1);
    // outside, the gradient to logvar is 0, as in PyTorch's clamp.
    static Posterior from_moments(const Tensor& moments);

    // x (B, C, H, W) in [-1, 1] -> q(z | x): quant_conv(encoder(x)) split into mu, logvar.
    Posterior encode(const Tensor& x);
    // z (B, z_channels, h, w) -> x_hat (B, C, H, W): decoder(post_quant_conv(z)).
    Tensor decode(const Tensor& z);

    // Kingma & Welling eq. 10 (LDM: DiagonalGaussianDistribution.sample): z = mu + sigma * eps,
    // sigma = exp(logvar / 2), eps ~ N(0, I) drawn by the caller. z is a differentiable
    // function of (mu, logvar): dz/dmu = 1, dz/dlogvar = sigma * eps / 2.
    static Tensor reparameterise(const Tensor& mu, const Tensor& logvar, const Tensor& eps);

    const VAEConfig& config() const { return config_; }
    std::string name() const override { return "VAE"; }

    std::shared_ptr<Encoder> encoder;
    std::shared_ptr<Decoder> decoder;
    std::shared_ptr<nn::Conv2d> quant_conv;       // 1x1, 2 z -> 2 z
    std::shared_ptr<nn::Conv2d> post_quant_conv;  // 1x1, z -> z

private:
    VAEConfig config_;
};

// KL(N(mu, sigma^2) || N(0, I)) in closed form (Kingma & Welling appendix B):
//   KL = 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2)
// summed over the latent elements of each image (C, h, w), then the mean over the batch
// (LDM: posteriors.kl() sums over [1, 2, 3], the loss divides by the batch size).
// mu, logvar: (B, ...) -> a 0-d tensor.
Tensor kl_to_standard_normal(const Tensor& mu, const Tensor& logvar);

// The reconstruction term: L1 (LDM's choice) or L2. Words: "l1", "l2".
enum class Recon { L1, L2 };
Recon parse_recon(const std::string& name);  // td::Error listing the words
std::string recon_name(Recon r);

struct VaeLoss {
    Tensor total;  // recon + beta * kl, 0-d, differentiable
    Tensor recon;  // the reconstruction term, 0-d
    Tensor kl;     // kl_to_standard_normal(mu, logvar), 0-d
};
// The VAE's loss, the negative ELBO up to constants: recon + beta * KL(q(z | x) || N(0, I)).
//   Recon::L1: sum over pixels of |x - x_hat|, mean over the batch   (LDM's choice)
//   Recon::L2: sum over pixels of (x - x_hat)^2, mean over the batch
// Both sums over the pixels, mean over the batch, as LDM's LPIPSWithDiscriminator
// (sum(nll) / B, sum(kl) / B), so our beta is their kl_weight: 1e-6 in the released
// KL-f4 / f8 configs (with pixels in [-1, 1], as ours). x, x_hat: (B, C, H, W). LDM adds a
// perceptual (LPIPS) and a patch-GAN loss to get sharp 256x256 photographs; for 28x28
// digits we do without them. Throws td::Error for mismatched shapes.
VaeLoss vae_loss(const Tensor& x, const Tensor& x_hat, const VAE::Posterior& posterior, float beta, Recon recon);

struct LoadedVAE {
    VAEConfig config;
    std::shared_ptr<VAE> vae;  // in eval mode
    std::string data;          // the data set it was trained on ("mnist", ...), "" if not recorded
    Metadata meta;             // the file's whole metadata (held_out_psnr, steps, ...)
};
// Loads the model.safetensors of `diffuse train vae`: the config from its metadata, the
// weights under their plain names. Errors name the file (not a VAE, missing keys,
// weights that do not fit the config).
LoadedVAE load_vae(const std::string& path);

}  // namespace td::diffusion
