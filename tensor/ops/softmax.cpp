// tensor/ops/softmax.cpp: softmax and log_softmax along any dim (the kernel works on the
// last dim; another dim is moved there by a transpose view and moved back after).
#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td {

static Tensor softmax_impl(const Tensor& x, int64_t dim, bool log, const char* name) {
    check(x.defined() && x.dtype() == DType::Float32, name, ": expected a float32 tensor");
    check(x.dim() >= 1, name, ": needs at least 1 dim, got a 0-d tensor");
    int64_t d = wrap_dim(dim, x.shape(), name);
    if (d != x.dim() - 1) return softmax_impl(x.transpose(d, -1), -1, log, name).transpose(d, -1);
    Tensor y = Tensor::empty(x.shape(), DType::Float32, x.device());
    backend_for(x.device()).softmax_forward(x.detach().contiguous(), y, log);
    // backward needs only the output: y saved (detached, see autograd/node.h)
    return record(name, y, {x}, [yd = y.detach(), log](const Tensor& dy) -> std::vector<Tensor> {
        Tensor dx = Tensor::empty(yd.shape(), DType::Float32, yd.device());
        backend_for(yd.device()).softmax_backward(yd, dy.contiguous(), dx, log);
        return {dx};
    });
}

// softmax(x)_i = exp(x_i) / sum_j exp(x_j)
Tensor softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, false, "softmax"); }
// log_softmax(x)_i = x_i - log sum_j exp(x_j), computed without forming softmax (stable)
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_impl(x, dim, true, "log_softmax"); }

}  // namespace td
