// tensor/ops/misc.cpp: dropout and embedding.
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td {

// Inverted dropout (Srivastava et al. 2014): keep each element with probability 1 - p and
// scale it by 1 / (1 - p), so the expected value is unchanged and eval needs no rescale.
// The mask is a constant of the graph: dx = dy * mask.
Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
    check(p >= 0.0f && p < 1.0f, "dropout: p must be in [0, 1), got ", p);
    if (!training || p == 0.0f) return x;
    // the mask on x's device: 1 with probability 1 - p
    Tensor u = rand(x.shape(), gen, 0.0f, 1.0f, x.device());
    Tensor keep = gt(u, full({}, p, x.device()));
    return mul(x, mul(keep, 1.0f / (1.0f - p)));
}

// Embedding: row indices[i] of weight for every index; weight (num, dim) -> (*indices, dim).
// Its backward (index_select's) adds each row's gradient back to the row it came from.
Tensor embedding(const Tensor& weight, const Tensor& indices) {
    check(weight.defined() && weight.dim() == 2, "embedding: weight must be (num, dim)");
    check(indices.defined() && indices.dtype() == DType::Int64, "embedding: indices must be int64");
    Shape out_shape = indices.shape();
    out_shape.push_back(weight.size(1));
    return index_select(weight, 0, indices.reshape({indices.numel()})).reshape(out_shape);
}

}  // namespace td
