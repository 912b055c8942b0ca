// diffusion/vae.cpp: the KL autoencoder's config, encoder, decoder, the reparameterisation,
// its loss and its file (see vae.h for the map).
#include "diffusion/vae.h"

#include <sstream>

#include "nn/safetensors.h"
#include "tensor/choice.h"
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td::diffusion {

namespace {

// Blocks without a time step (temb_dim 0) and without dropout, as in LDM's autoencoder.
std::shared_ptr<ResBlock> res_block(int64_t in, int64_t out, const VAEConfig& c, Generator& init) {
    return std::make_shared<ResBlock>(in, out, /*temb_dim=*/0, c.groups, /*dropout=*/0.0f, nullptr, init);
}

std::shared_ptr<AttnBlock> attn_block(int64_t width, const VAEConfig& c, Generator& init) {
    return std::make_shared<AttnBlock>(width, /*heads=*/1, c.groups, /*context_dim=*/0, init);
}

}  // namespace

// ---------------------------------------------------------------------------------
// VAEConfig

int64_t VAEConfig::factor() const { return mults.empty() ? 1 : (int64_t)1 << (mults.size() - 1); }

int64_t VAEConfig::latent_size() const { return image_size / factor(); }

void VAEConfig::validate() const {
    check(in_channels > 0, "VAE config: in_channels must be > 0, got ", in_channels);
    check(image_size > 0, "VAE config: image_size must be > 0, got ", image_size);
    check(ch > 0, "VAE config: ch must be > 0, got ", ch);
    check(num_res_blocks > 0, "VAE config: num_res_blocks must be > 0, got ", num_res_blocks);
    check(z_channels > 0, "VAE config: z_channels must be > 0, got ", z_channels);
    check(groups > 0, "VAE config: groups must be > 0, got ", groups);
    check(!mults.empty() && mults.size() <= 6, "VAE config: mults needs 1 to 6 levels, got ", mults.size());
    for (size_t i = 0; i < mults.size(); ++i) {
        check(mults[i] > 0, "VAE config: mults must be > 0, got ", join_ints(mults));
        int64_t width = ch * mults[i];
        check(width % groups == 0, "VAE config: GroupNorm groups ", groups, " do not divide level ", i, "'s width ",
              width, " (ch ", ch, " x mult ", mults[i], ")");
    }
    check(image_size % factor() == 0, "VAE config: image size ", image_size, " is not divisible by f = ", factor(),
          " (", mults.size(), " mults halve it ", mults.size() - 1, " times); use fewer mults");
}

std::string VAEConfig::describe() const {
    std::ostringstream o;
    o << "ch " << ch << ", mults " << join_ints(mults) << " (f = " << factor() << ", " << image_size << "x"
      << image_size << " -> " << latent_size() << "x" << latent_size() << "), " << num_res_blocks << " res block(s), "
      << z_channels << " latent channels, " << groups << " groups, mid attention " << (mid_attn ? "on" : "off");
    return o.str();
}

Metadata to_metadata(const VAEConfig& c) {
    return {{"model", "vae"},
            {"vae.in_channels", std::to_string(c.in_channels)},
            {"vae.image_size", std::to_string(c.image_size)},
            {"vae.ch", std::to_string(c.ch)},
            {"vae.mults", join_ints(c.mults)},
            {"vae.num_res_blocks", std::to_string(c.num_res_blocks)},
            {"vae.z_channels", std::to_string(c.z_channels)},
            {"vae.groups", std::to_string(c.groups)},
            {"vae.mid_attn", c.mid_attn ? "1" : "0"},
            {"vae.seed", std::to_string(c.seed)}};
}

VAEConfig vae_config_from_metadata(const Metadata& m, const std::string& path) {
    const std::string& model = meta_need(m, "model", path);
    check(model == "vae", path, ": metadata says model '", model, "', not a VAE (`diffuse train vae` writes 'vae')");
    VAEConfig c;
    c.in_channels = meta_int(m, "vae.in_channels", path);
    c.image_size = meta_int(m, "vae.image_size", path);
    c.ch = meta_int(m, "vae.ch", path);
    c.mults = meta_list(m, "vae.mults", path);
    c.num_res_blocks = meta_int(m, "vae.num_res_blocks", path);
    c.z_channels = meta_int(m, "vae.z_channels", path);
    c.groups = meta_int(m, "vae.groups", path);
    int64_t attn = meta_int(m, "vae.mid_attn", path);
    check(attn == 0 || attn == 1, path, ": metadata 'vae.mid_attn' must be 0 or 1, got ", attn);
    c.mid_attn = attn == 1;
    c.seed = (uint64_t)meta_int(m, "vae.seed", path);
    try {
        c.validate();
    } catch (const Error& e) {
        fail(path, ": ", e.what());
    }
    return c;
}

// ---------------------------------------------------------------------------------
// Encoder

Encoder::Encoder(const VAEConfig& c, Generator& init) {
    conv_in = register_module("conv_in", std::make_shared<nn::Conv2d>(c.in_channels, c.ch, 3, 1, 1, 1, true, init));
    int64_t width = c.ch;
    auto down_c = register_module("down", std::make_shared<nn::ModuleList>());
    for (size_t i = 0; i < c.mults.size(); ++i) {
        auto lvl = down_c->push_back(std::make_shared<nn::ModuleDict>());
        auto blocks = lvl->add("block", std::make_shared<nn::ModuleList>());
        Level L;
        for (int64_t j = 0; j < c.num_res_blocks; ++j) {
            L.blocks.push_back(blocks->push_back(res_block(width, c.ch * c.mults[i], c, init)));
            width = c.ch * c.mults[i];
        }
        if (i + 1 < c.mults.size()) {  // stride-2 3x3 conv: H -> H / 2
            auto ds = lvl->add("downsample", std::make_shared<nn::ModuleDict>());
            L.downsample = ds->add("conv", std::make_shared<nn::Conv2d>(width, width, 3, 2, 1, 1, true, init));
        }
        down.push_back(L);
    }
    auto mid = register_module("mid", std::make_shared<nn::ModuleDict>());
    mid_block_1 = mid->add("block_1", res_block(width, width, c, init));
    if (c.mid_attn) mid_attn_1 = mid->add("attn_1", attn_block(width, c, init));
    mid_block_2 = mid->add("block_2", res_block(width, width, c, init));
    norm_out = register_module("norm_out", std::make_shared<nn::GroupNorm>(c.groups, width));
    // 2 z outputs: the mean and the log-variance of each latent element
    conv_out =
        register_module("conv_out", std::make_shared<nn::Conv2d>(width, 2 * c.z_channels, 3, 1, 1, 1, true, init));
}

Tensor Encoder::forward(const Tensor& x) {
    Tensor h = conv_in->forward(x);  // (B, ch, H, W)
    for (Level& L : down) {
        for (auto& block : L.blocks) h = block->forward(h);
        if (L.downsample) h = L.downsample->forward(h);  // (B, width, H / 2, W / 2)
    }
    h = mid_block_1->forward(h);                 // (B, width, H / f, W / f)
    if (mid_attn_1) h = mid_attn_1->forward(h);  // every latent position sees every other
    h = mid_block_2->forward(h);
    return conv_out->forward(norm_out->forward_silu(h));  // (B, 2 z, H / f, W / f)
}

// ---------------------------------------------------------------------------------
// Decoder

Decoder::Decoder(const VAEConfig& c, Generator& init) {
    int64_t width = c.ch * c.mults.back();  // the lowest resolution's width
    conv_in = register_module("conv_in", std::make_shared<nn::Conv2d>(c.z_channels, width, 3, 1, 1, 1, true, init));
    auto mid = register_module("mid", std::make_shared<nn::ModuleDict>());
    mid_block_1 = mid->add("block_1", res_block(width, width, c, init));
    if (c.mid_attn) mid_attn_1 = mid->add("attn_1", attn_block(width, c, init));
    mid_block_2 = mid->add("block_2", res_block(width, width, c, init));

    // Built from the lowest resolution up, stored by level index so the names match
    // LDM's (decoder.up.0 is the full-resolution level, run last).
    auto up_c = register_module("up", std::make_shared<nn::ModuleList>());
    up.resize(c.mults.size());
    std::vector<std::shared_ptr<nn::ModuleDict>> levels(c.mults.size());
    for (int64_t i = (int64_t)c.mults.size() - 1; i >= 0; --i) {
        levels[i] = std::make_shared<nn::ModuleDict>();
        auto blocks = levels[i]->add("block", std::make_shared<nn::ModuleList>());
        for (int64_t j = 0; j <= c.num_res_blocks; ++j) {  // one more block than the encoder, as LDM
            up[i].blocks.push_back(blocks->push_back(res_block(width, c.ch * c.mults[i], c, init)));
            width = c.ch * c.mults[i];
        }
        if (i > 0) {  // nearest x2, then a 3x3 conv to smooth the blocky copy
            auto us = levels[i]->add("upsample", std::make_shared<nn::ModuleDict>());
            up[i].upsample = us->add("conv", std::make_shared<nn::Conv2d>(width, width, 3, 1, 1, 1, true, init));
        }
    }
    for (auto& lvl : levels) up_c->push_back(lvl);  // up.0 first
    norm_out = register_module("norm_out", std::make_shared<nn::GroupNorm>(c.groups, width));
    conv_out = register_module("conv_out", std::make_shared<nn::Conv2d>(width, c.in_channels, 3, 1, 1, 1, true, init));
}

Tensor Decoder::forward(const Tensor& z) {
    Tensor h = conv_in->forward(z);  // (B, widest, h, w)
    h = mid_block_1->forward(h);
    if (mid_attn_1) h = mid_attn_1->forward(h);
    h = mid_block_2->forward(h);
    for (int64_t i = (int64_t)up.size() - 1; i >= 0; --i) {
        for (auto& block : up[i].blocks) h = block->forward(h);
        if (up[i].upsample) h = up[i].upsample->forward(upsample_nearest2d(h, 2));  // (B, width, 2 h, 2 w)
    }
    return conv_out->forward(norm_out->forward_silu(h));  // (B, C, H, W), unbounded (no tanh, as LDM)
}

// ---------------------------------------------------------------------------------
// VAE

VAE::VAE(const VAEConfig& config) : config_(config) {
    config_.validate();
    const VAEConfig& c = config_;
    Generator init(c.seed);
    // Registered in LDM's order: encoder, decoder, quant_conv, post_quant_conv.
    encoder = register_module("encoder", std::make_shared<Encoder>(c, init));
    decoder = register_module("decoder", std::make_shared<Decoder>(c, init));
    quant_conv = register_module(
        "quant_conv", std::make_shared<nn::Conv2d>(2 * c.z_channels, 2 * c.z_channels, 1, 1, 0, 1, true, init));
    post_quant_conv = register_module("post_quant_conv",
                                      std::make_shared<nn::Conv2d>(c.z_channels, c.z_channels, 1, 1, 0, 1, true, init));
}

VAE::Posterior VAE::from_moments(const Tensor& moments) {
    check(moments.dim() == 4 && moments.size(1) % 2 == 0, "VAE::from_moments: moments must be (B, 2 z, h, w), got ",
          moments.shape());
    int64_t z = moments.size(1) / 2;
    Tensor mu = moments.narrow(1, 0, z);                            // (B, z, h, w)
    Tensor logvar = clamp(moments.narrow(1, z, z), -30.0f, 20.0f);  // (B, z, h, w), see vae.h
    return {mu, logvar};
}

VAE::Posterior VAE::encode(const Tensor& x) {
    const VAEConfig& c = config_;
    check(x.dim() == 4 && x.size(1) == c.in_channels && x.size(2) == c.image_size && x.size(3) == c.image_size,
          "VAE::encode: input ", x.shape(), " does not match the model (", c.in_channels, " channels, ", c.image_size,
          "x", c.image_size, ")");
    return from_moments(quant_conv->forward(encoder->forward(x)));
}

Tensor VAE::decode(const Tensor& z) {
    const VAEConfig& c = config_;
    int64_t s = c.latent_size();
    check(z.dim() == 4 && z.size(1) == c.z_channels && z.size(2) == s && z.size(3) == s, "VAE::decode: latent ",
          z.shape(), " does not match the model (", c.z_channels, " channels, ", s, "x", s, ")");
    return decoder->forward(post_quant_conv->forward(z));
}

// BEGIN HIDE vae-loss
// STUB: // Kingma & Welling eq. 10: z from mu, logvar and eps (the assignment vae-loss)
// Kingma & Welling eq. 10: z = mu + sigma * eps, sigma = exp(logvar / 2)
// END HIDE vae-loss
Tensor VAE::reparameterise(const Tensor& mu, const Tensor& logvar, const Tensor& eps) {
    check(mu.shape() == logvar.shape() && mu.shape() == eps.shape(), "VAE::reparameterise: mu ", mu.shape(),
          ", logvar ", logvar.shape(), " and eps ", eps.shape(), " must have one shape");
    // BEGIN SOLUTION vae-loss: z, a sample of N(mu, exp(logvar)) through which gradients reach mu and logvar
    // STUB: fail("VAE::reparameterise: not implemented yet (assignment vae-loss)");
    Tensor sigma = exp(logvar * 0.5f);
    return mu + sigma * eps;
    // END SOLUTION vae-loss
}

// ---------------------------------------------------------------------------------
// The loss

// BEGIN HIDE vae-loss
// STUB: // KL(N(mu, sigma^2) || N(0, I)) in closed form, summed per image, mean over the batch
// KL(N(mu, sigma^2) || N(0, I)) = 0.5 * sum(mu^2 + sigma^2 - 1 - log sigma^2), summed per image, mean over the batch
// END HIDE vae-loss
Tensor kl_to_standard_normal(const Tensor& mu, const Tensor& logvar) {
    check(mu.shape() == logvar.shape() && mu.dim() >= 1, "kl_to_standard_normal: mu ", mu.shape(), " and logvar ",
          logvar.shape(), " must have one shape (B, ...)");
    // BEGIN SOLUTION vae-loss: the KL of each latent element, summed per image, averaged over the batch
    // STUB: fail("kl_to_standard_normal: not implemented yet (assignment vae-loss)");
    Tensor kl = (mu * mu + exp(logvar) - 1.0f - logvar) * 0.5f;  // (B, ...): one term per latent element
    return sum(kl) * (1.0f / (float)mu.size(0));
    // END SOLUTION vae-loss
}

const Choice<Recon> kRecons[] = {{"l1", Recon::L1}, {"l2", Recon::L2}};

Recon parse_recon(const std::string& name) { return parse_choice(name, kRecons, "recon"); }
std::string recon_name(Recon r) { return choice_name(r, kRecons); }

VaeLoss vae_loss(const Tensor& x, const Tensor& x_hat, const VAE::Posterior& posterior, float beta, Recon recon) {
    check(x.shape() == x_hat.shape() && x.dim() >= 1, "vae_loss: x ", x.shape(), " and x_hat ", x_hat.shape(),
          " must have one shape (B, C, H, W)");
    float per_image = 1.0f / (float)x.size(0);
    Tensor diff = x - x_hat;  // (B, C, H, W)
    Tensor r =
        recon == Recon::L1 ? sum(abs(diff)) * per_image : sum(diff * diff) * per_image;  // sum over pixels, mean over B
    Tensor kl = kl_to_standard_normal(posterior.mu, posterior.logvar);
    return {r + kl * beta, r, kl};
}

// ---------------------------------------------------------------------------------
// The file

LoadedVAE load_vae(const std::string& path) {
    Metadata meta;
    std::map<std::string, Tensor> tensors = nn::load_safetensors(path, &meta);
    VAEConfig config = vae_config_from_metadata(meta, path);
    auto vae = std::make_shared<VAE>(config);
    try {
        vae->load_state_dict(tensors);
    } catch (const Error& e) {
        fail(path, ": the weights do not fit the VAE its metadata describes: ", e.what());
    }
    vae->eval();
    auto data = meta.find("data");
    return {config, vae, data == meta.end() ? "" : data->second, meta};
}

}  // namespace td::diffusion
