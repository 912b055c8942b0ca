// nn/optim.cpp: SGD, Adam, AdamW and gradient clipping (see optim.h).
//
// Each update is written as torch.optim writes it (PyTorch 1.13, the single-tensor
// path), in place on the parameter under NoGradGuard: the optimizer's arithmetic is not
// part of the graph. SGD is one tensor op per term of the paper's equation; Adam and
// AdamW compute the step's scalars here and run the per-element update as one fused
// backend kernel (Backend::adam_update), with the same terms in the same order.
#include "nn/optim.h"

#include <cmath>
#include <set>
#include <sstream>

#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::nn {

// ---- the base: parameters, zero_grad, state for checkpoints -------------------------------

static NamedTensors numbered(const std::vector<Tensor>& params) {
    NamedTensors out;
    for (size_t i = 0; i < params.size(); ++i) out.emplace_back(std::to_string(i), params[i]);
    return out;
}

Optimizer::Optimizer(NamedTensors params, float lr) : params_(std::move(params)), state_(params_.size()), lr_(lr) {
    for (const auto& [n, p] : params_) {
        check(p.defined(), "optimizer: parameter '", n, "' is undefined");
        check(p.dtype() == DType::Float32, "optimizer: parameter '", n, "' is ", dtype_name(p.dtype()),
              ", not float32");
    }
}

Optimizer::Optimizer(const std::vector<Tensor>& params, float lr) : Optimizer(numbered(params), lr) {}

void Optimizer::zero_grad() {
    for (auto& [_, p] : params_) p.zero_grad();
}

// A copy in host memory, whatever device t is on: what a file is written from.
static Tensor host_copy(const Tensor& t) {
    Tensor c = t.detach();
    return c.device() == Device::CPU ? c.clone() : c.to(Device::CPU);
}

std::map<std::string, Tensor> Optimizer::state_dict() const {
    std::map<std::string, Tensor> out;
    for (size_t i = 0; i < params_.size(); ++i) {
        const ParamState& s = state_[i];
        if (s.step == 0) continue;  // never stepped: no state yet
        std::string prefix = "state." + params_[i].first + ".";
        out[prefix + "step"] = Tensor::from_vector_i64({s.step}, {});
        for (const auto& [b, t] : s.buffers) out[prefix + b] = host_copy(t);
    }
    return out;
}

void Optimizer::load_state_dict(const std::map<std::string, Tensor>& state) {
    std::vector<ParamState> loaded(params_.size());
    std::set<std::string> used;
    std::ostringstream problems;
    for (size_t i = 0; i < params_.size(); ++i) {
        const auto& [name, p] = params_[i];
        std::string prefix = "state." + name + ".";
        auto step_it = state.find(prefix + "step");
        std::vector<std::string> present, missing;
        for (const std::string& b : buffer_names()) (state.count(prefix + b) ? present : missing).push_back(b);
        if (step_it == state.end() && present.empty()) continue;  // this parameter had not stepped yet
        if (step_it == state.end() || !missing.empty()) {
            problems << "\n  incomplete state for '" << name << "': missing";
            if (step_it == state.end()) problems << " step";
            for (const std::string& b : missing) problems << " " << b;
        }
        if (step_it != state.end()) {
            used.insert(step_it->first);
            const Tensor& t = step_it->second;
            // Ours is int64; PyTorch keeps a float32 0-d tensor. Either is fine.
            double v = t.numel() == 1 ? (t.dtype() == DType::Int64 ? (double)t.to_vector_i64()[0] : t.item()) : -1.0;
            if (!(v >= 1.0 && v == std::floor(v)))
                problems << "\n  bad step for '" << name << "': expected one integer >= 1";
            else loaded[i].step = (int64_t)v;
        }
        for (const std::string& b : present) {
            const Tensor& t = state.at(prefix + b);
            used.insert(prefix + b);
            if (t.shape() != p.shape())
                problems << "\n  shape mismatch: " << prefix << b << " is " << shape_str(t.shape())
                         << ", the parameter is " << shape_str(p.shape());
            else loaded[i].buffers[b] = t.detach().to(DType::Float32).to(p.device()).clone();  // beside the parameter
        }
    }
    for (const auto& [k, t] : state)
        if (!used.count(k)) problems << "\n  unexpected: " << k << " " << shape_str(t.shape());
    check(problems.str().empty(), "load_state_dict (", name(), "):", problems.str());
    state_ = std::move(loaded);
}

// ---- SGD ------------------------------------------------------------------------------------

SGD::SGD(NamedTensors params, SGDOptions options) : Optimizer(std::move(params), options.lr), opt_(options) {
    check(opt_.lr >= 0 && opt_.momentum >= 0 && opt_.weight_decay >= 0, "SGD: lr ", opt_.lr, ", momentum ",
          opt_.momentum, " and weight_decay ", opt_.weight_decay, " must be >= 0");
    check(!opt_.nesterov || (opt_.momentum > 0 && opt_.dampening == 0), "SGD: nesterov needs momentum > 0 and ",
          "dampening 0 (got momentum ", opt_.momentum, ", dampening ", opt_.dampening, ")");
}
SGD::SGD(const std::vector<Tensor>& params, SGDOptions options) : SGD(numbered(params), options) {}

std::vector<std::string> SGD::buffer_names() const {
    if (opt_.momentum == 0) return {};
    return {"momentum_buffer"};
}

void SGD::step() {
    NoGradGuard no_grad;
    const float mu = opt_.momentum, lambda = opt_.weight_decay;
    for (size_t i = 0; i < params_.size(); ++i) {
        Tensor& theta = params_[i].second;
        Tensor g = theta.grad();
        if (!g.defined()) continue;
        ParamState& s = state_[i];
        s.step += 1;
        // L2 weight decay: g_t = grad + lambda theta_{t-1}
        if (lambda != 0) g = g + theta * lambda;
        if (mu != 0) {
            auto it = s.buffers.find("momentum_buffer");
            if (it == s.buffers.end()) {
                // the first step starts the buffer at the gradient itself: b_1 = g_1
                it = s.buffers.emplace("momentum_buffer", g.clone()).first;
            } else {
                // momentum: b_t = mu b_{t-1} + (1 - dampening) g_t
                it->second.mul_(mu).add_(g, 1.0f - opt_.dampening);
            }
            const Tensor& b = it->second;
            // Nesterov looks ahead along the buffer: g_t <- g_t + mu b_t; plain momentum steps along b_t
            g = opt_.nesterov ? g + b * mu : b;
        }
        // theta_t = theta_{t-1} - lr g_t
        theta.add_(g, -lr_);
    }
}

// ---- Adam and AdamW -------------------------------------------------------------------------

Adam::Adam(NamedTensors params, AdamOptions options, bool decoupled)
    : Optimizer(std::move(params), options.lr), opt_(options), decoupled_weight_decay_(decoupled) {
    check(opt_.lr >= 0 && opt_.eps >= 0 && opt_.weight_decay >= 0, name(), ": lr ", opt_.lr, ", eps ", opt_.eps,
          " and weight_decay ", opt_.weight_decay, " must be >= 0");
    check(opt_.beta1 >= 0 && opt_.beta1 < 1 && opt_.beta2 >= 0 && opt_.beta2 < 1, name(), ": betas (", opt_.beta1, ", ",
          opt_.beta2, ") must lie in [0, 1)");
}
Adam::Adam(NamedTensors params, AdamOptions options) : Adam(std::move(params), options, false) {}
Adam::Adam(const std::vector<Tensor>& params, AdamOptions options) : Adam(numbered(params), options, false) {}

static AdamOptions as_adam(const AdamWOptions& o) { return {o.lr, o.beta1, o.beta2, o.eps, o.weight_decay}; }
AdamW::AdamW(NamedTensors params, AdamWOptions options) : Adam(std::move(params), as_adam(options), true) {}
AdamW::AdamW(const std::vector<Tensor>& params, AdamWOptions options)
    : Adam(numbered(params), as_adam(options), true) {}

// The equations are written out here, term by term; the arithmetic itself runs as one
// fused pass per parameter in the backend (Backend::adam_update: tensor/cpu/optim.cpp,
// cuda/optim.cu), which reads theta, g, m and v once and writes theta, m and v once,
// where one tensor op per term would make about ten passes over memory.
void Adam::step() {
    NoGradGuard no_grad;
    const float beta1 = opt_.beta1, beta2 = opt_.beta2, lambda = opt_.weight_decay;
    for (size_t i = 0; i < params_.size(); ++i) {
        const std::string& pname = params_[i].first;
        Tensor& theta = params_[i].second;
        Tensor g = theta.grad();
        if (!g.defined()) continue;
        check(theta.is_contiguous(), name(), ": parameter '", pname, "' is not contiguous; the update is in place");
        check(g.device() == theta.device(), name(), ": the gradient of '", pname, "' is on ", device_name(g.device()),
              ", the parameter on ", device_name(theta.device()));
        g = g.contiguous();  // a no-op for the usual contiguous gradient
        ParamState& s = state_[i];
        if (s.step == 0) {  // m_0 = 0, v_0 = 0, beside the parameter (zeros_like: on its device)
            s.buffers["exp_avg"] = zeros_like(theta);
            s.buffers["exp_avg_sq"] = zeros_like(theta);
        }
        Tensor& m = s.buffers.at("exp_avg");
        Tensor& v = s.buffers.at("exp_avg_sq");
        check(m.device() == theta.device() && v.device() == theta.device(), name(), ": the state of '", pname,
              "' is on ", device_name(m.device()), ", the parameter on ", device_name(theta.device()));
        const int64_t t = ++s.step;

        Backend::AdamStep a;
        a.lr = lr_;
        a.beta1 = beta1;
        a.beta2 = beta2;
        a.eps = opt_.eps;
        a.weight_decay = lambda;
        // AdamW (Loshchilov & Hutter, Alg. 2 line 12): theta <- theta - lr lambda theta, apart from the gradient;
        // Adam with L2 regularisation: g_t = grad + lambda theta_{t-1}
        a.decoupled = decoupled_weight_decay_;
        // Adam (Kingma & Ba, Alg. 1): m_t = beta1 m_{t-1} + (1 - beta1) g_t
        //                             v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
        // bias corrections 1 - beta^t (in double, as PyTorch computes them in Python floats)
        const double bias_correction1 = 1.0 - std::pow((double)beta1, (double)t);
        const double bias_correction2 = 1.0 - std::pow((double)beta2, (double)t);
        // theta_t = theta_{t-1} - lr m_hat_t / (sqrt(v_hat_t) + eps), m_hat = m / (1 - beta1^t), v_hat = v / (1 - beta2^t),
        // arranged as PyTorch does: step_size = lr / (1 - beta1^t), denom = sqrt(v_t) / sqrt(1 - beta2^t) + eps
        a.step_size = (float)(lr_ / bias_correction1);
        a.bias_correction2_sqrt = (float)std::sqrt(bias_correction2);
        backend_for(theta.device()).adam_update(theta, g, m, v, a);
    }
}

// ---- gradient clipping -----------------------------------------------------------------------

float clip_grad_norm(const std::vector<Tensor>& params, float max_norm) {
    NoGradGuard no_grad;
    std::vector<Tensor> grads;
    double sum_of_squares = 0.0;
    for (const Tensor& p : params) {
        Tensor g = p.defined() ? p.grad() : Tensor();
        if (!g.defined()) continue;
        grads.push_back(g);
        sum_of_squares += (double)sum(g * g).item();  // ||g_p||^2
    }
    // total = sqrt(sum_p ||g_p||^2), the norm of all gradients as one vector
    double total = std::sqrt(sum_of_squares);
    // coef = max_norm / (total + 1e-6), applied only when it shrinks (PyTorch clamps it at 1)
    double coef = (double)max_norm / (total + 1e-6);
    if (!(coef >= 1.0))  // also true for a NaN coefficient, which PyTorch applies too
        for (Tensor& g : grads) g.mul_((float)coef);
    return (float)total;
}

}  // namespace td::nn
