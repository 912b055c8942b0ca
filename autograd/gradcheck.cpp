// autograd/gradcheck.cpp: analytic gradients (backward) vs central differences.
#include "autograd/gradcheck.h"

#include <cmath>
#include <sstream>

#include "autograd/node.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "tensor/random.h"

namespace td {

// L = sum(f(x) * w), accumulated in double so the difference of two nearby L values
// keeps its digits.
static double weighted_sum(const Tensor& y, const std::vector<float>& w) {
    std::vector<float> v = y.to_vector();
    double s = 0.0;
    for (size_t i = 0; i < v.size(); ++i) s += (double)v[i] * w[i];
    return s;
}

GradcheckResult gradcheck(const TensorFn& f, const std::vector<Tensor>& inputs, const GradcheckOptions& opt) {
    for (const Tensor& x : inputs)
        check(!x.requires_grad() || (x.dtype() == DType::Float32 && x.device() == Device::CPU),
              "gradcheck: inputs that require grad must be float32 on cpu");

    // 1. analytic: one backward pass with dL/dy = w
    for (const Tensor& x : inputs)
        if (x.requires_grad()) const_cast<Tensor&>(x).zero_grad();
    Tensor y = f(inputs);
    Generator gen(opt.seed);
    Tensor w = randn(y.shape(), gen);
    std::vector<float> wv = w.to_vector();
    y.backward(w);

    GradcheckResult result;
    for (size_t k = 0; k < inputs.size(); ++k) {
        const Tensor& x = inputs[k];
        if (!x.requires_grad()) continue;
        Tensor analytic = x.grad();
        std::vector<float> a = analytic.defined() ? analytic.to_vector() : std::vector<float>(x.numel(), 0.0f);

        // 2. numeric: perturb one element at a time, in place, through a detached view
        Tensor xc = x.detach();
        check(xc.is_contiguous(), "gradcheck: input ", k, " must be contiguous");
        float* p = xc.data_f32();
        NoGradGuard no_grad;
        for (int64_t i = 0; i < x.numel(); ++i) {
            float saved = p[i];
            p[i] = saved + opt.h;
            double plus = weighted_sum(f(inputs), wv);
            p[i] = saved - opt.h;
            double minus = weighted_sum(f(inputs), wv);
            p[i] = saved;
            double numeric = (plus - minus) / (2.0 * opt.h);
            double err = std::fabs(a[i] - numeric);
            result.max_abs_error = std::max(result.max_abs_error, err);
            if (result.ok && err > opt.atol + opt.rtol * std::fabs(numeric)) {
                std::ostringstream os;
                os << "gradcheck: input " << k << " (shape " << shape_str(x.shape()) << "), element " << i
                   << ": analytic " << a[i] << " vs numeric " << numeric;
                result.ok = false;
                result.message = os.str();
            }
        }
    }
    return result;
}

}  // namespace td
