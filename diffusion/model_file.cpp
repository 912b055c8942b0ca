// diffusion/model_file.cpp: see model_file.h.
#include "diffusion/model_file.h"

#include <sstream>

#include "nn/safetensors.h"
#include "tensor/error.h"

namespace td::diffusion {

namespace {

std::string join(const std::vector<int64_t>& v) {
    std::ostringstream o;
    for (size_t i = 0; i < v.size(); ++i) o << (i ? "," : "") << v[i];
    return o.str();
}

const std::string& need(const Metadata& m, const std::string& key, const std::string& path) {
    auto it = m.find(key);
    check(it != m.end(), path, ": metadata has no '", key,
          "' (not a diffusion model written by `diffuse train ddpm`?)");
    return it->second;
}

int64_t to_int(const Metadata& m, const std::string& key, const std::string& path) {
    const std::string& s = need(m, key, path);
    try {
        size_t used = 0;
        long long v = std::stoll(s, &used);
        if (used == s.size()) return v;
    } catch (const std::exception&) {
    }
    fail(path, ": metadata '", key, "' = '", s, "' is not an integer");
}

double to_double(const Metadata& m, const std::string& key, const std::string& path) {
    const std::string& s = need(m, key, path);
    try {
        size_t used = 0;
        double v = std::stod(s, &used);
        if (used == s.size()) return v;
    } catch (const std::exception&) {
    }
    fail(path, ": metadata '", key, "' = '", s, "' is not a number");
}

std::vector<int64_t> to_list(const Metadata& m, const std::string& key, const std::string& path) {
    std::vector<int64_t> out;
    std::stringstream ss(need(m, key, path));
    for (std::string item; std::getline(ss, item, ',');) {
        try {
            out.push_back(std::stoll(item));
        } catch (const std::exception&) {
            fail(path, ": metadata '", key, "' is not a comma-separated list of integers");
        }
    }
    return out;
}

}  // namespace

std::string prediction_name(Prediction p) { return p == Prediction::Eps ? "eps" : p == Prediction::X0 ? "x0" : "v"; }

Metadata to_metadata(const ModelInfo& info) {
    const UNetConfig& u = info.unet;
    return {{"model", "ddpm-unet"},
            {"unet.in_channels", std::to_string(u.in_channels)},
            {"unet.out_channels", std::to_string(u.out_channels)},
            {"unet.image_size", std::to_string(u.image_size)},
            {"unet.ch", std::to_string(u.ch)},
            {"unet.mults", join(u.mults)},
            {"unet.num_res_blocks", std::to_string(u.num_res_blocks)},
            {"unet.attn_res", join(u.attn_res)},
            {"unet.heads", std::to_string(u.heads)},
            {"unet.dropout", std::to_string(u.dropout)},
            {"unet.groups", std::to_string(u.groups)},
            {"unet.context_dim", std::to_string(u.context_dim)},
            {"schedule", info.schedule},
            {"T", std::to_string(info.T)},
            {"prediction", prediction_name(info.prediction)}};
}

ModelInfo model_info_from_metadata(const Metadata& m, const std::string& path) {
    ModelInfo info;
    UNetConfig& u = info.unet;
    u.in_channels = to_int(m, "unet.in_channels", path);
    u.out_channels = to_int(m, "unet.out_channels", path);
    u.image_size = to_int(m, "unet.image_size", path);
    u.ch = to_int(m, "unet.ch", path);
    u.mults = to_list(m, "unet.mults", path);
    u.num_res_blocks = to_int(m, "unet.num_res_blocks", path);
    u.attn_res = to_list(m, "unet.attn_res", path);
    u.heads = to_int(m, "unet.heads", path);
    u.dropout = (float)to_double(m, "unet.dropout", path);
    u.groups = to_int(m, "unet.groups", path);
    u.context_dim = to_int(m, "unet.context_dim", path);
    info.schedule = need(m, "schedule", path);
    info.T = to_int(m, "T", path);
    try {
        info.prediction = parse_prediction(need(m, "prediction", path));
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
    return {info, unet, Schedule::named(info.schedule, info.T)};
}

}  // namespace td::diffusion
