// nn/module.cpp: registration, dotted names, train/eval, state dicts.
#include "nn/module.h"

#include <sstream>

#include "autograd/node.h"
#include "tensor/error.h"

namespace td::nn {

Tensor Module::register_parameter(const std::string& name, Tensor t) {
    check(t.defined(), this->name(), ": parameter '", name, "' is undefined");
    for (auto& [n, _] : params_) check(n != name, this->name(), ": parameter '", name, "' registered twice");
    t.requires_grad_(true);
    params_.emplace_back(name, t);
    return t;
}

Tensor Module::register_buffer(const std::string& name, Tensor t) {
    check(t.defined(), this->name(), ": buffer '", name, "' is undefined");
    buffers_.emplace_back(name, t);
    return t;
}

void Module::collect(const std::string& prefix, bool params, NamedTensors& out) const {
    for (const auto& [n, t] : params ? params_ : buffers_) out.emplace_back(prefix + n, t);
    for (const auto& [n, child] : children_) child->collect(prefix + n + ".", params, out);
}

NamedTensors Module::named_parameters() const {
    NamedTensors out;
    collect("", true, out);
    return out;
}

NamedTensors Module::named_buffers() const {
    NamedTensors out;
    collect("", false, out);
    return out;
}

std::vector<Tensor> Module::parameters() const {
    std::vector<Tensor> out;
    for (auto& [_, t] : named_parameters()) out.push_back(t);
    return out;
}

int64_t Module::num_parameters() const {
    int64_t n = 0;
    for (auto& [_, t] : named_parameters()) n += t.numel();
    return n;
}

void Module::train(bool on) {
    training_ = on;
    for (auto& [_, child] : children_) child->train(on);
}

void Module::zero_grad() {
    for (auto& [_, t] : named_parameters()) t.zero_grad();
}

// In place, handle by handle: the TensorImpl each member holds gets the moved copy's
// storage and layout, so no member needs to be reassigned. (A tensor registered twice,
// as a tied weight is, moves once: the second time it is already there.)
Module& Module::to(Device device) {
    NamedTensors all = named_parameters(), buffers = named_buffers();
    all.insert(all.end(), buffers.begin(), buffers.end());
    for (auto& [n, t] : all) {
        if (t.device() == device) continue;
        check(t.grad_fn() == nullptr, name(), "::to: '", n, "' is the output of an op, not a leaf tensor");
        Tensor moved = t.detach().to(device);  // a contiguous copy with its own storage
        TensorImpl* impl = t.impl();
        impl->storage = moved.impl()->storage;
        impl->strides = moved.strides();
        impl->offset = 0;
        impl->is_view = false;
        impl->grad.reset();  // a gradient of the old storage's values, on the old device
    }
    return *this;
}

Device Module::device() const {
    for (const NamedTensors& group : {named_parameters(), named_buffers()})
        if (!group.empty()) return group.front().second.device();
    return Device::CPU;
}

std::map<std::string, Tensor> Module::state_dict() const {
    std::map<std::string, Tensor> out;
    for (auto& [n, t] : named_parameters()) out[n] = t;
    for (auto& [n, t] : named_buffers()) out[n] = t;
    return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state, bool strict) {
    std::map<std::string, Tensor> mine = state_dict();
    std::ostringstream problems;
    for (const auto& [n, t] : mine) {
        auto it = state.find(n);
        if (it == state.end()) {
            if (strict) problems << "\n  missing: " << n << " " << shape_str(t.shape());
        } else if (it->second.shape() != t.shape()) {
            problems << "\n  shape mismatch: " << n << " is " << shape_str(t.shape()) << " in the model, "
                     << shape_str(it->second.shape()) << " in the state dict";
        } else if (it->second.dtype() != t.dtype()) {
            // Refused, not converted: int64 where a weight should be is a broken or foreign
            // file, and rounding floats into an int64 buffer would lose data silently.
            problems << "\n  dtype mismatch: " << n << " is " << dtype_name(t.dtype()) << " in the model, "
                     << dtype_name(it->second.dtype()) << " in the state dict";
        }
    }
    if (strict)
        for (const auto& [n, t] : state)
            if (!mine.count(n)) problems << "\n  unexpected: " << n << " " << shape_str(t.shape());
    check(problems.str().empty(), "load_state_dict (", name(), "):", problems.str());
    NoGradGuard no_grad;
    for (auto& [n, t] : mine) {
        auto it = state.find(n);
        if (it != state.end()) t.copy_(it->second.to(t.device()));  // a file's CPU tensor onto the GPU, if there
    }
}

void Module::summary_into(std::string& out, const std::string& prefix, int depth) const {
    std::string indent(2 * depth, ' ');
    out += indent + (prefix.empty() ? "" : prefix + ": ") + name();
    for (auto& [n, t] : params_) out += " " + n + shape_str(t.shape());
    out += "\n";
    for (const auto& [n, child] : children_) child->summary_into(out, n, depth + 1);
}

std::string Module::summary() const {
    std::string out;
    summary_into(out, "", 0);
    out += "parameters: " + std::to_string(num_parameters()) + "\n";
    return out;
}

Tensor Sequential::forward(const Tensor& x) {
    Tensor h = x;
    for (auto& layer : layers_) h = layer->forward(h);
    return h;
}

void ModuleDict::check_new_key(const std::string& key) const {
    for (const auto& [n, child] : children()) check(n != key, "ModuleDict: '", key, "' added twice");
}

}  // namespace td::nn
