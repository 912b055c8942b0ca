// tensor/ops/reduce.cpp: sum, mean, var, max, argmax over chosen dims.
//
// Every reduction is done the same way: move the reduced dims to the end (a permute
// view), make that contiguous, and let the kernel reduce each innermost block.
#include <algorithm>
#include <cmath>

#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td {

// The reduction plan for `dims` of x: which dims are kept, and the permutation that
// puts reduced dims last.
struct ReducePlan {
    std::vector<bool> reduced;  // per dim of x
    Shape permutation;          // kept dims, then reduced dims
    Shape kept_shape;           // output shape without keepdim
    Shape keepdim_shape;        // output shape with reduced dims as 1
    int64_t inner = 1;          // number of elements reduced into each output
};

static ReducePlan plan_reduction(const Tensor& x, const Shape& dims, const char* op) {
    ReducePlan p;
    int64_t rank = x.dim();
    p.reduced.assign(rank, dims.empty());
    for (int64_t d : dims) {
        int64_t w = wrap_dim(d, x.shape(), op);
        if (rank == 0) continue;  // a 0-d tensor: dim 0 names its single element
        check(!p.reduced[w], op, ": dim ", d, " given twice for shape ", x.shape());
        p.reduced[w] = true;
    }
    for (int64_t d = 0; d < rank; ++d)
        if (!p.reduced[d]) {
            p.permutation.push_back(d);
            p.kept_shape.push_back(x.size(d));
        }
    for (int64_t d = 0; d < rank; ++d)
        if (p.reduced[d]) {
            p.permutation.push_back(d);
            p.inner *= x.size(d);
        }
    for (int64_t d = 0; d < rank; ++d) p.keepdim_shape.push_back(p.reduced[d] ? 1 : x.size(d));
    return p;
}

// out[o] = reduce over the reduced dims; out shaped keepdim_shape.
static Tensor reduce_forward(ReduceOp kind, const Tensor& x, const ReducePlan& p, const Tensor& argmax) {
    Tensor xp = x.detach().permute(p.permutation).contiguous();
    Tensor out = Tensor::empty(p.keepdim_shape, DType::Float32, x.device());
    backend_for(x.device()).reduce_inner(kind, xp, p.inner, out, argmax);
    return out;
}

static void check_float_input(const Tensor& x, const char* op) {
    check(x.defined() && x.dtype() == DType::Float32, op, ": expected a float32 tensor");
}

// y = sum_i x_i;  dx = dy broadcast back over the reduced dims
Tensor sum(const Tensor& x, const Shape& dims, bool keepdim) {
    check_float_input(x, "sum");
    ReducePlan p = plan_reduction(x, dims, "sum");
    Tensor y = reduce_forward(ReduceOp::Sum, x, p, Tensor());
    if (!keepdim) y = y.detach().reshape(p.kept_shape);
    return record("sum", y, {x}, [p, xs = x.shape()](const Tensor& dy) -> std::vector<Tensor> {
        return {dy.reshape(p.keepdim_shape).expand(xs).contiguous()};
    });
}

// y = sum(x) / n;  dx = dy / n
Tensor mean(const Tensor& x, const Shape& dims, bool keepdim) {
    check_float_input(x, "mean");
    ReducePlan p = plan_reduction(x, dims, "mean");
    check(p.inner > 0, "mean: reducing over an empty dim of shape ", x.shape());
    return mul(sum(x, dims, keepdim), 1.0f / (float)p.inner);
}

// var = sum((x - mean)^2) / (n - correction); composed from differentiable ops, so its
// backward, 2 (x - mean) / (n - correction) * dy, comes from the chain rule.
Tensor var(const Tensor& x, const Shape& dims, bool keepdim, int64_t correction) {
    check_float_input(x, "var");
    ReducePlan p = plan_reduction(x, dims, "var");
    check(p.inner - correction > 0, "var: ", p.inner, " elements with correction ", correction,
          " leave no degrees of freedom (shape ", x.shape(), ")");
    Tensor centered = sub(x, mean(x, dims, /*keepdim=*/true));
    return mul(sum(mul(centered, centered), dims, keepdim), 1.0f / (float)(p.inner - correction));
}

// values = max along dim; dx = dy at the position of the max, 0 elsewhere
MaxResult max(const Tensor& x, int64_t dim, bool keepdim) {
    check_float_input(x, "max");
    int64_t d = wrap_dim(dim, x.shape(), "max");
    ReducePlan p = plan_reduction(x, {d}, "max");
    check(p.inner > 0, "max: dim ", dim, " of shape ", x.shape(), " is empty");
    Tensor indices = Tensor::empty(p.keepdim_shape, DType::Int64, x.device());
    Tensor values = reduce_forward(ReduceOp::Max, x, p, indices);
    Tensor idx_keep = indices;
    if (!keepdim) {
        values = values.detach().reshape(p.kept_shape);
        indices = indices.reshape(p.kept_shape);
    }
    values = record("max", values, {x}, [p, d, idx_keep, xs = x.shape()](const Tensor& dy) -> std::vector<Tensor> {
        Tensor dx = zeros(xs, DType::Float32, dy.device());
        backend_for(dx.device()).scatter_add(dx, d, idx_keep, dy.reshape(p.keepdim_shape).contiguous());
        return {dx};
    });
    return {values, indices};
}

Tensor max(const Tensor& x) {
    check_float_input(x, "max");
    check(x.numel() > 0, "max: empty tensor of shape ", x.shape());
    return max(x.reshape({x.numel()}), 0, false).values;
}

Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
    NoGradGuard no_grad;
    return max(x, dim, keepdim).indices;
}

}  // namespace td
