// tensor/ops/join.cpp: cat, stack, split, chunk.
//
// cat copies each input into its slot of the output (a narrow view of it); its
// backward hands each input the narrow slice of dy at that slot. split and chunk
// are narrow views, so their backward is narrow's.
#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td {

Tensor cat(const std::vector<Tensor>& xs, int64_t dim) {
    check(!xs.empty(), "cat: no tensors given");
    const Tensor& first = xs[0];
    check(first.dim() > 0, "cat: cannot concatenate 0-d tensors; unsqueeze them or use stack");
    int64_t d = wrap_dim(dim, first.shape(), "cat");
    Shape out_shape = first.shape();
    out_shape[d] = 0;
    for (size_t i = 0; i < xs.size(); ++i) {
        const Tensor& x = xs[i];
        check(x.defined(), "cat: tensor ", i, " is undefined");
        check(x.dtype() == first.dtype() && x.device() == first.device(), "cat: tensor ", i, " is ",
              dtype_name(x.dtype()), " on ", device_name(x.device()), ", tensor 0 is ", dtype_name(first.dtype()),
              " on ", device_name(first.device()));
        bool same = x.dim() == first.dim();
        for (int64_t k = 0; same && k < x.dim(); ++k) same = k == d || x.size(k) == first.size(k);
        check(same, "cat: tensor ", i, " has shape ", x.shape(), ", which does not match tensor 0's ", first.shape(),
              " outside dim ", dim);
        out_shape[d] += x.size(d);
    }
    Tensor y = Tensor::empty(out_shape, first.dtype(), first.device());
    Shape sizes;
    int64_t at = 0;
    for (const Tensor& x : xs) {
        backend_for(y.device()).copy(x, y.detach().narrow(d, at, x.size(d)));
        sizes.push_back(x.size(d));
        at += x.size(d);
    }
    return record("cat", y, xs, [d, sizes](const Tensor& dy) -> std::vector<Tensor> {
        std::vector<Tensor> grads;
        int64_t start = 0;
        for (int64_t n : sizes) {
            grads.push_back(dy.narrow(d, start, n).contiguous());
            start += n;
        }
        return grads;
    });
}

Tensor stack(const std::vector<Tensor>& xs, int64_t dim) {
    check(!xs.empty(), "stack: no tensors given");
    for (size_t i = 0; i < xs.size(); ++i)
        check(xs[i].defined() && xs[i].shape() == xs[0].shape(), "stack: tensor ", i, " has shape ",
              xs[i].defined() ? shape_str(xs[i].shape()) : "undefined", ", tensor 0 has ", xs[0].shape());
    check(dim >= -(xs[0].dim() + 1) && dim <= xs[0].dim(), "stack: dim ", dim, " out of range for shape ",
          xs[0].shape());
    std::vector<Tensor> un;
    for (const Tensor& x : xs) un.push_back(x.unsqueeze(dim));
    return cat(un, dim);
}

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
    check(x.dim() > 0, "split: cannot split a 0-d tensor");
    int64_t d = wrap_dim(dim, x.shape(), "split");
    check(split_size > 0, "split: split_size must be positive, got ", split_size);
    std::vector<Tensor> parts;
    for (int64_t start = 0; start < x.size(d); start += split_size)
        parts.push_back(x.narrow(d, start, std::min(split_size, x.size(d) - start)));
    return parts;
}

// Like PyTorch: pieces of ceil(n / chunks), so fewer than `chunks` may come back.
std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
    check(chunks > 0, "chunk: chunks must be positive, got ", chunks);
    check(x.dim() > 0, "chunk: cannot chunk a 0-d tensor");
    int64_t d = wrap_dim(dim, x.shape(), "chunk");
    int64_t size = std::max<int64_t>(1, (x.size(d) + chunks - 1) / chunks);
    return split(x, size, d);
}

}  // namespace td
