// diffusion/model_file.cpp: see model_file.h.
#include "diffusion/model_file.h"

#include <sstream>

#include "autograd/node.h"
#include "diffusion/guidance.h"
#include "nn/safetensors.h"
#include "tensor/error.h"
#include "version.h"

namespace td::diffusion {

Metadata to_metadata(const ModelInfo& info) {
    const UNetConfig& u = info.unet;
    Metadata m = {{"model", "ddpm-unet"},
                  {"tinydiffusion.version", kVersion},  // which engine wrote it (ignored when loading)
                  {"unet.in_channels", std::to_string(u.in_channels)},
                  {"unet.out_channels", std::to_string(u.out_channels)},
                  {"unet.image_size", std::to_string(u.image_size)},
                  {"unet.ch", std::to_string(u.ch)},
                  {"unet.mults", join_ints(u.mults)},
                  {"unet.num_res_blocks", std::to_string(u.num_res_blocks)},
                  {"unet.attn_res", join_ints(u.attn_res)},
                  {"unet.heads", std::to_string(u.heads)},
                  {"unet.dropout", std::to_string(u.dropout)},
                  {"unet.groups", std::to_string(u.groups)},
                  {"unet.context_dim", std::to_string(u.context_dim)},
                  {"schedule", beta_schedule_name(info.schedule)},
                  {"T", std::to_string(info.T)},
                  {"prediction", prediction_name(info.prediction)}};
    if (!info.data.empty()) m["data"] = info.data;
    if (info.latent()) {
        std::ostringstream sf;
        sf.precision(17);  // exactly the double the run measured
        sf << info.scale_factor;
        m["ldm.scale_factor"] = sf.str();
        for (auto& [k, v] : to_metadata(info.vae))
            if (k != "model") m[k] = v;
    }
    // Conditioning: written only for a conditional UNet, so an unconditional model's file
    // stays what it was (and files without these keys load as cond none).
    if (u.cond != Conditioning::None) {
        m["unet.cond"] = conditioning_name(u.cond);
        m["unet.cond_mode"] = cond_mode_name(u.cond_mode);
        if (u.cond == Conditioning::Class) m["unet.num_classes"] = std::to_string(u.num_classes);
        if (u.cond_mode == CondMode::Concat) m["unet.concat_channels"] = std::to_string(u.concat_channels);
        if (u.cond == Conditioning::Text) {
            m["unet.text_dim"] = std::to_string(u.text_dim);
            m["unet.text_layers"] = std::to_string(u.text_layers);
            m["unet.text_heads"] = std::to_string(u.text_heads);
            m["unet.max_tokens"] = std::to_string(u.max_tokens);
        }
    }
    return m;
}

ModelInfo model_info_from_metadata(const Metadata& m, const std::string& path) {
    ModelInfo info;
    UNetConfig& u = info.unet;
    u.in_channels = meta_int(m, "unet.in_channels", path);
    u.out_channels = meta_int(m, "unet.out_channels", path);
    u.image_size = meta_int(m, "unet.image_size", path);
    u.ch = meta_int(m, "unet.ch", path);
    u.mults = meta_list(m, "unet.mults", path);
    u.num_res_blocks = meta_int(m, "unet.num_res_blocks", path);
    u.attn_res = meta_list(m, "unet.attn_res", path);
    u.heads = meta_int(m, "unet.heads", path);
    u.dropout = (float)meta_double(m, "unet.dropout", path);
    u.groups = meta_int(m, "unet.groups", path);
    u.context_dim = meta_int(m, "unet.context_dim", path);
    u.num_classes = meta_int_or(m, "unet.num_classes", u.num_classes, path);
    u.concat_channels = meta_int_or(m, "unet.concat_channels", u.concat_channels, path);
    u.text_dim = meta_int_or(m, "unet.text_dim", u.text_dim, path);
    u.text_layers = meta_int_or(m, "unet.text_layers", u.text_layers, path);
    u.text_heads = meta_int_or(m, "unet.text_heads", u.text_heads, path);
    u.max_tokens = meta_int_or(m, "unet.max_tokens", u.max_tokens, path);
    info.data = meta_or(m, "data", "");
    if (m.count("ldm.scale_factor")) {
        info.scale_factor = meta_double(m, "ldm.scale_factor", path);
        check(info.scale_factor > 0, path, ": metadata 'ldm.scale_factor' must be > 0");
        Metadata vm = m;
        vm["model"] = "vae";  // the autoencoder's keys, read as its own file would be
        info.vae = vae_config_from_metadata(vm, path);
    }
    info.T = meta_int(m, "T", path);
    try {
        u.cond = parse_conditioning(meta_or(m, "unet.cond", "none"));
        u.cond_mode = parse_cond_mode(meta_or(m, "unet.cond_mode", cond_mode_name(u.cond_mode)));
        info.schedule = parse_beta_schedule(meta_need(m, "schedule", path));
        info.prediction = parse_prediction(meta_need(m, "prediction", path));
        u.validate();
        make_betas(info.schedule, info.T);
    } catch (const Error& e) {
        fail(path, ": ", e.what());
    }
    return info;
}

LoadedModel load_model(const std::string& path, bool use_ema) {
    Metadata meta;
    std::map<std::string, Tensor> tensors = nn::load_safetensors(path, &meta);
    ModelInfo info = model_info_from_metadata(meta, path);
    auto unet = std::make_shared<UNet>(info.unet);
    // A latent model's autoencoder rides along under "first_stage_model."
    const std::string fs = "first_stage_model.";
    std::map<std::string, Tensor> first_stage;
    for (auto it = tensors.begin(); it != tensors.end();) {
        if (it->first.rfind(fs, 0) == 0) {
            first_stage[it->first.substr(fs.size())] = it->second;
            it = tensors.erase(it);
        } else {
            ++it;
        }
    }
    std::shared_ptr<VAE> vae;
    if (info.latent()) {
        check(!first_stage.empty(), path, ": a latent model without its autoencoder (no first_stage_model.* tensors)");
        vae = std::make_shared<VAE>(info.vae);
        try {
            vae->load_state_dict(first_stage);
        } catch (const Error& e) {
            fail(path, ": the autoencoder's weights do not fit its metadata: ", e.what());
        }
        vae->eval();
    }
    // A checkpoint holds several state dicts side by side under prefixes.
    bool is_checkpoint = meta.count("checkpoint") > 0;
    std::map<std::string, Tensor> state;
    if (is_checkpoint) {
        std::string prefix = use_ema ? "ema." : "model.";
        for (auto& [name, t] : tensors)
            if (name.rfind(prefix, 0) == 0) state[name.substr(prefix.size())] = t;
    } else {
        state = std::move(tensors);
    }
    try {
        unet->load_state_dict(state);
    } catch (const Error& e) {
        fail(path, ": the weights do not fit the UNet its metadata describes: ", e.what());
    }
    unet->eval();
    return {info, unet, Schedule::named(info.schedule, info.T), vae, nullptr};
}

LoadedModel& LoadedModel::to(Device device) {
    unet->to(device);
    if (vae) vae->to(device);
    if (guide) guide->to(device);
    schedule.to(device);
    return *this;
}

Shape LoadedModel::noise_shape(int64_t n) const {
    const UNetConfig& u = unet->config();
    return {n, u.in_channels, u.image_size, u.image_size};
}

Tensor LoadedModel::decode(const Tensor& x) const {
    if (!vae) return x;
    NoGradGuard no_grad;
    return vae->decode(x * (float)(1.0 / info.scale_factor));  // undo the unit-variance scaling, then D(z)
}

Denoiser LoadedModel::denoiser(const Tensor& y, float w) const {
    if (y.defined()) return guided_denoiser(*unet, y, w);
    check(info.unet.cond == Conditioning::None,
          "sampling a conditional model needs a condition (or its null_condition)");
    if (guide) return autoguided_denoiser(unet, guide, w);
    std::shared_ptr<UNet> net = unet;
    return [net](const Tensor& x_t, const Tensor& t) { return net->forward(x_t, t); };
}

void LoadedModel::load_guide(const std::string& path) {
    check(!info.latent() && info.unet.cond == Conditioning::None, path,
          ": autoguidance is for unconditional pixel models");
    LoadedModel g = load_model(path);
    check(to_metadata(g.info) == to_metadata(info), path,
          ": the guide is not the same UNet as the model (its metadata differ)");
    g.unet->to(device());
    guide = g.unet;
}

}  // namespace td::diffusion
