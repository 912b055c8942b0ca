// tensor/ops/index.cpp: index_select and gather, reading x at integer positions.
// Backward adds dy back at the positions read (index_add / scatter_add), so an index
// used twice receives the sum of both gradients.
#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td {

// Every index in range, read on the host (an index on the GPU is copied back first: one
// small synchronising copy, the price of an error message instead of a wild read).
static void check_index_range(const Tensor& index, int64_t limit, const char* op, const Shape& x_shape, int64_t dim) {
    for (int64_t v : index.to(Device::CPU).to_vector_i64())
        check(v >= 0 && v < limit, op, ": index ", v, " is out of range for dim ", dim, " (size ", limit, ") of shape ",
              x_shape);
}

static void check_same_device(const Tensor& x, const Tensor& index, const char* op) {
    check(index.device() == x.device(), op, ": index is on ", device_name(index.device()), " but x is on ",
          device_name(x.device()));
}

// y = x.index_select(dim, index): y[.., i, ..] = x[.., index[i], ..]
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
    check(x.defined() && x.dtype() == DType::Float32, "index_select: expected a float32 tensor");
    check(index.defined() && index.dtype() == DType::Int64 && index.dim() == 1,
          "index_select: index must be a 1-D int64 tensor, got ",
          index.defined() ? dtype_name(index.dtype()) : "undefined", " of shape ",
          index.defined() ? shape_str(index.shape()) : "[]");
    check(x.dim() > 0, "index_select: cannot index a 0-d tensor");
    check_same_device(x, index, "index_select");
    int64_t d = wrap_dim(dim, x.shape(), "index_select");
    check_index_range(index, x.size(d), "index_select", x.shape(), d);
    Shape out_shape = x.shape();
    out_shape[d] = index.numel();
    Tensor y = Tensor::empty(out_shape, DType::Float32, x.device());
    Tensor idx = index.contiguous();
    backend_for(x.device()).index_select(x.detach().contiguous(), d, idx, y);
    return record("index_select", y, {x, index}, [d, idx, xs = x.shape()](const Tensor& dy) -> std::vector<Tensor> {
        Tensor dx = zeros(xs, DType::Float32, dy.device());  // accumulated into, on dy's device
        backend_for(dx.device()).index_add(dx, d, idx, dy.contiguous());
        return {dx, Tensor()};
    });
}

// y = x.gather(dim, index): y[i, j, k] = x[index[i, j, k], j, k] for dim 0, and so on
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
    check(x.defined() && x.dtype() == DType::Float32, "gather: expected a float32 tensor");
    check(index.defined() && index.dtype() == DType::Int64, "gather: index must be an int64 tensor");
    check(index.dim() == x.dim(), "gather: index of shape ", index.shape(), " must have as many dims as x of shape ",
          x.shape());
    check(x.dim() > 0, "gather: cannot gather from a 0-d tensor");
    check_same_device(x, index, "gather");
    int64_t d = wrap_dim(dim, x.shape(), "gather");
    for (int64_t k = 0; k < x.dim(); ++k)
        check(k == d || index.size(k) <= x.size(k), "gather: index shape ", index.shape(), " exceeds x's shape ",
              x.shape(), " at dim ", k);
    check_index_range(index, x.size(d), "gather", x.shape(), d);
    Tensor y = Tensor::empty(index.shape(), DType::Float32, x.device());
    Tensor idx = index.contiguous();
    Tensor xc = x.detach().contiguous();
    backend_for(x.device()).gather(xc, d, idx, y);
    return record("gather", y, {x, index}, [d, idx, xs = x.shape()](const Tensor& dy) -> std::vector<Tensor> {
        Tensor dx = zeros(xs, DType::Float32, dy.device());  // accumulated into, on dy's device
        backend_for(dx.device()).scatter_add(dx, d, idx, dy.contiguous());
        return {dx, Tensor()};
    });
}

}  // namespace td
