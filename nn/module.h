// nn/module.h: the base of every layer and model.
//
// A Module owns named parameters (tensors that train), named buffers (tensors that are
// saved but not trained) and named child modules. Names compose with dots exactly as in
// PyTorch, so `down.0.conv1.weight` here is `down.0.conv1.weight` in a PyTorch state dict,
// and weights move between the two through .safetensors files (nn/safetensors.h).
//
// A layer registers what it owns in its constructor and keeps the returned handles as
// members: a Tensor is a handle, so the member and the registry see the same storage,
// and load_state_dict() copies values *into* it without breaking that link.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace td::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

class Module {
public:
    virtual ~Module() = default;

    // All parameters / buffers of this module and its children, depth first, in
    // registration order, with dotted names.
    NamedTensors named_parameters() const;
    NamedTensors named_buffers() const;
    std::vector<Tensor> parameters() const;
    const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }
    int64_t num_parameters() const;

    // train() / eval(): switches dropout (and anything else mode-dependent) in every child.
    void train(bool on = true);
    void eval() { train(false); }
    bool is_training() const { return training_; }

    void zero_grad();  // drops the .grad of every parameter

    // Moves every parameter and buffer of this module and its children to `device`, in
    // place: the same Tensor handles get new storage there, so the layers' members and
    // anything else holding them keep working; requires_grad stays, any .grad is dropped.
    // Build optimizers and EMAs after to(), as in PyTorch: their state is made on the
    // parameters' device when they are built. Returns *this.
    Module& to(Device device);
    // Where the module lives: its first parameter's (or buffer's) device; the CPU for a
    // module with neither. to() keeps them all on one device.
    Device device() const;

    // Parameters and buffers by dotted name (an ordered map: stable file layout).
    std::map<std::string, Tensor> state_dict() const;
    // Copies values into this module's tensors, onto each one's device (a state dict from
    // a file is on the CPU). strict: every name must match both ways; any missing,
    // unexpected or mis-shaped entry throws td::Error listing them (and nothing is modified).
    void load_state_dict(const std::map<std::string, Tensor>& state, bool strict = true);

    // A readable tree: each child on its own line with its parameters' shapes.
    std::string summary() const;
    virtual std::string name() const { return "Module"; }

protected:
    // Registration, called from constructors. A parameter is marked requires_grad.
    Tensor register_parameter(const std::string& name, Tensor t);
    Tensor register_buffer(const std::string& name, Tensor t);
    template <typename M>
    std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> m) {
        children_.emplace_back(name, m);
        return m;
    }

private:
    NamedTensors params_, buffers_;
    std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
    bool training_ = true;
    void collect(const std::string& prefix, bool params, NamedTensors& out) const;
    void summary_into(std::string& out, const std::string& prefix, int depth) const;
};

// A module with one tensor in and one out, so it can be chained in a Sequential.
class UnaryModule : public Module {
public:
    virtual Tensor forward(const Tensor& x) = 0;
    Tensor operator()(const Tensor& x) { return forward(x); }
};

// Children named "0", "1", ... applied in order (PyTorch's nn.Sequential).
class Sequential : public UnaryModule {
public:
    Sequential() = default;
    template <typename M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        layers_.push_back(m);
        return register_module(std::to_string(layers_.size() - 1), m);
    }
    Tensor forward(const Tensor& x) override;
    size_t size() const { return layers_.size(); }
    std::string name() const override { return "Sequential"; }

private:
    std::vector<std::shared_ptr<UnaryModule>> layers_;
};

// Children named "0", "1", ... that the owner calls itself (PyTorch's nn.ModuleList):
// for blocks whose forward takes more than one tensor, which a Sequential cannot chain.
class ModuleList : public Module {
public:
    template <typename M>
    std::shared_ptr<M> push_back(std::shared_ptr<M> m) {
        return register_module(std::to_string(size_++), m);
    }
    size_t size() const { return size_; }
    std::string name() const override { return "ModuleList"; }

private:
    size_t size_ = 0;
};

// Children under names the owner picks, in the order added (PyTorch's nn.ModuleDict): the
// nesting that gives a state dict its names (mid.block_1, down.0.downsample.conv) while
// the owner keeps typed handles to the children and calls them itself.
class ModuleDict : public Module {
public:
    template <typename M>
    std::shared_ptr<M> add(const std::string& key, std::shared_ptr<M> m) {
        check_new_key(key);
        return register_module(key, m);
    }
    std::string name() const override { return "ModuleDict"; }

private:
    void check_new_key(const std::string& key) const;  // td::Error for a key already there
};

}  // namespace td::nn
