// nn/ema.cpp: the exponential moving average of ema.h.
#include "nn/ema.h"

#include <algorithm>
#include <sstream>

#include "autograd/node.h"
#include "nn/safetensors.h"
#include "tensor/backend.h"
#include "tensor/error.h"

namespace td::nn {

static NamedTensors copies(const NamedTensors& tensors) {
    NamedTensors out;
    for (const auto& [n, t] : tensors) out.emplace_back(n, t.detach().clone());
    return out;
}

EMA::EMA(const Module& model, float decay, bool warmup)
    : decay_(decay),
      warmup_(warmup),
      shadow_params_(copies(model.named_parameters())),
      shadow_buffers_(copies(model.named_buffers())) {
    check(decay >= 0 && decay <= 1, "EMA: decay ", decay, " must lie in [0, 1]");
}

float EMA::decay_at(int64_t t) const {
    check(t >= 1, "EMA::decay_at: update t = ", t, " (updates count from 1)");
    if (!warmup_) return decay_;
    // decay_t = min(decay, (1 + t) / (10 + t))
    return std::min(decay_, (float)((1.0 + (double)t) / (10.0 + (double)t)));
}

// The model passed to update() / copy_to() must be the one the EMA was built from.
void EMA::check_same_model(const NamedTensors& mine, const NamedTensors& theirs, const char* what) const {
    bool same = mine.size() == theirs.size();
    for (size_t i = 0; same && i < mine.size(); ++i)
        same = mine[i].first == theirs[i].first && mine[i].second.shape() == theirs[i].second.shape();
    check(same, "EMA: the model's ", what, " (", theirs.size(), ") differ in names or shapes from the ", mine.size(),
          " the EMA was built from");
}

void EMA::update(const Module& model) {
    NamedTensors params = model.named_parameters(), buffers = model.named_buffers();
    check_same_model(shadow_params_, params, "parameters");
    check_same_model(shadow_buffers_, buffers, "buffers");
    NoGradGuard no_grad;
    const float d = decay_at(num_updates_ + 1);
    for (size_t i = 0; i < params.size(); ++i) {
        const Tensor& shadow = shadow_params_[i].second;
        Tensor theta = params[i].second.detach();
        check(theta.device() == shadow.device() && theta.dtype() == DType::Float32, "EMA: parameter '", params[i].first,
              "' is ", dtype_name(theta.dtype()), " on ", device_name(theta.device()), "; the average is float32 on ",
              device_name(shadow.device()));
        // shadow_t = decay_t shadow_{t-1} + (1 - decay_t) theta_t, one fused pass (Backend::ema_update)
        backend_for(shadow.device()).ema_update(shadow, theta.contiguous(), d);
    }
    for (size_t i = 0; i < buffers.size(); ++i) shadow_buffers_[i].second.copy_(buffers[i].second);
    ++num_updates_;
}

void EMA::copy_to(Module& model) const {
    NamedTensors params = model.named_parameters(), buffers = model.named_buffers();
    check_same_model(shadow_params_, params, "parameters");
    check_same_model(shadow_buffers_, buffers, "buffers");
    NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); ++i) params[i].second.copy_(shadow_params_[i].second);
    for (size_t i = 0; i < buffers.size(); ++i) buffers[i].second.copy_(shadow_buffers_[i].second);
}

// A copy in host memory, whatever device t is on: what a file is written from.
static Tensor host_copy(const Tensor& t) { return t.device() == Device::CPU ? t.clone() : t.to(Device::CPU); }

std::map<std::string, Tensor> EMA::state_dict() const {
    std::map<std::string, Tensor> out;
    for (const auto& [n, t] : shadow_params_) out[n] = host_copy(t);
    for (const auto& [n, t] : shadow_buffers_) out[n] = host_copy(t);
    return out;
}

void EMA::load_state_dict(const std::map<std::string, Tensor>& state, int64_t num_updates) {
    check(num_updates >= 0, "EMA::load_state_dict: num_updates = ", num_updates, " must be >= 0");
    std::map<std::string, Tensor> mine;  // handles to the shadow tensors, by name
    for (const NamedTensors* group : {&shadow_params_, &shadow_buffers_})
        for (const auto& [n, t] : *group) mine[n] = t;
    std::ostringstream problems;
    for (const auto& [n, t] : mine) {
        auto it = state.find(n);
        if (it == state.end()) problems << "\n  missing: " << n << " " << shape_str(t.shape());
        else if (it->second.shape() != t.shape())
            problems << "\n  shape mismatch: " << n << " is " << shape_str(t.shape()) << " in the EMA, "
                     << shape_str(it->second.shape()) << " in the state dict";
    }
    for (const auto& [n, t] : state)
        if (!mine.count(n)) problems << "\n  unexpected: " << n << " " << shape_str(t.shape());
    check(problems.str().empty(), "EMA::load_state_dict:", problems.str());
    NoGradGuard no_grad;
    for (auto& [n, t] : mine) t.copy_(state.at(n).detach().to(t.dtype()).to(t.device()));
    num_updates_ = num_updates;
}

void EMA::save(const std::string& path) const {
    std::ostringstream decay;
    decay.precision(9);
    decay << decay_;
    save_safetensors(path, state_dict(),
                     {{"format", "pt"}, {"ema_num_updates", std::to_string(num_updates_)}, {"ema_decay", decay.str()}});
}

void EMA::load(const std::string& path) {
    std::map<std::string, std::string> meta;
    std::map<std::string, Tensor> state = load_safetensors(path, &meta);
    auto it = meta.find("ema_num_updates");
    check(it != meta.end(), path, ": no \"ema_num_updates\" in the metadata: not written by EMA::save");
    const std::string& text = it->second;
    check(!text.empty() && text.size() <= 18 && text.find_first_not_of("0123456789") == std::string::npos, path,
          ": ema_num_updates = '", text, "' is not a count");
    try {
        load_state_dict(state, std::stoll(text));
    } catch (const Error& e) {
        fail(path, ": ", e.what());
    }
}

}  // namespace td::nn
