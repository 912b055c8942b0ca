// diffusion/nonfinite.cpp: see nonfinite.h.
#include "diffusion/nonfinite.h"

#include <cmath>
#include <vector>

#include "autograd/node.h"
#include "autograd/trace.h"

namespace td::diffusion {

namespace {

bool all_finite(const Tensor& x) {
    for (float v : x.to(Device::CPU).to_vector())
        if (!std::isfinite(v)) return false;
    return true;
}

}  // namespace

std::string first_nonfinite_weight(const nn::Module& model) {
    for (auto& [name, p] : model.named_parameters())
        if (!all_finite(p)) return "the weight " + name;
    return "";
}

std::string first_nonfinite_traced(const std::function<void()>& forward, Generator& dropout) {
    uint64_t seed = dropout.seed(), offset = dropout.offset();
    Trace tr;
    {
        NoGradGuard no_grad;
        forward();
    }
    dropout.set_state(seed, offset);
    for (const TraceEntry& e : tr.entries)
        if (!all_finite(e.value)) return e.name + (e.equation.empty() ? "" : " (" + e.equation + ")");
    return "no traced tensor (the loss itself)";
}

std::string first_nonfinite_gradient(const nn::Module& model) {
    auto named = model.named_parameters();
    std::vector<std::string> bad;
    for (auto it = named.rbegin(); it != named.rend(); ++it)
        if (it->second.grad().defined() && !all_finite(it->second.grad())) bad.push_back(it->first);
    if (bad.empty()) return "none (the norm overflowed)";
    return "the gradient of " + bad[0] + (bad.size() > 1 ? " (and " + std::to_string(bad.size() - 1) + " more)" : "");
}

}  // namespace td::diffusion
