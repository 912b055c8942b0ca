// tensor/ops/misc.cpp: dropout and embedding.
#include "autograd/node.h"
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td {

// Inverted dropout (Srivastava et al. 2014): keep each element with probability 1 - p and
// scale it by 1 / (1 - p), so the expected value is unchanged and eval needs no rescale:
//     y = x * mask,  mask = (u > p) / (1 - p),  u ~ U[0, 1);    dx = dy * mask
// The backward draws the same u again instead of keeping the mask: the generator is
// counter-based (tensor/random.h), so a copy of its state from before the draw gives the
// same numbers. Nothing of the size of x is kept for the backward, not x, not the mask.
Tensor dropout_mask(const Shape& shape, Generator& gen, float p, Device device) {
    Tensor u = rand(shape, gen, 0.0f, 1.0f, device);
    Tensor keep = gt(u, full({}, p, device));  // 1 with probability 1 - p
    return mul(keep, 1.0f / (1.0f - p));
}

Tensor dropout(const Tensor& x, float p, bool training, Generator& gen) {
    check(p >= 0.0f && p < 1.0f, "dropout: p must be in [0, 1), got ", p);
    if (!training || p == 0.0f) return x;
    Generator at_draw = gen;                                                  // (seed, offset) of this mask
    Tensor y = mul(x.detach(), dropout_mask(x.shape(), gen, p, x.device()));  // not recorded: x.detach()
    return record("dropout", y, {x},
                  [at_draw, p, shape = x.shape(), d = x.device()](const Tensor& dy) -> std::vector<Tensor> {
                      Generator again = at_draw;
                      return {mul(dy, dropout_mask(shape, again, p, d))};
                  });
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
