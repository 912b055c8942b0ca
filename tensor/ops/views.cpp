// tensor/ops/views.cpp: ops that change how storage is read, not what it holds.
//
// Each view builds a new (shape, strides, offset) over the *same* storage. Their
// backward passes only move gradients around: reshape them back, permute them back,
// sum them over expanded dims, or place them into a zero tensor at the sliced spot.
#include <algorithm>

#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/device.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td {

// A tensor reading x's storage through a new layout.
static Tensor make_view(const Tensor& x, Shape shape, Shape strides, int64_t offset) {
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = x.impl()->storage;
    impl->shape = std::move(shape);
    impl->strides = std::move(strides);
    impl->offset = offset;
    impl->dtype = x.dtype();
    impl->is_view = true;
    return Tensor(impl);
}

// Replaces one -1 in `shape` by whatever makes numel match.
static Shape infer_shape(Shape shape, int64_t numel, const Shape& from, const char* op) {
    int64_t known = 1, unknown = -1;
    for (size_t i = 0; i < shape.size(); ++i) {
        if (shape[i] == -1) {
            check(unknown < 0, op, ": more than one -1 in shape ", shape);
            unknown = (int64_t)i;
        } else {
            check(shape[i] >= 0, op, ": negative size in shape ", shape);
            known *= shape[i];
        }
    }
    if (unknown >= 0) {
        check(known != 0 && numel % known == 0, op, ": cannot infer -1 in ", shape, " for ", numel,
              " elements (from shape ", from, ")");
        shape[unknown] = numel / known;
    }
    check(numel_of(shape) == numel, op, ": shape ", shape, " has ", numel_of(shape), " elements, the tensor of shape ",
          from, " has ", numel);
    return shape;
}

// Strides that read x's elements in row-major order under `shape`, if the memory layout
// allows it (PyTorch's rule): x's dims fall into chunks that are contiguous in memory,
// and each new dim must lie within one chunk. Returns false when a copy is needed.
static bool view_strides(const Tensor& x, const Shape& shape, Shape& out) {
    Shape old_shape = x.dim() == 0 ? Shape{1} : x.shape();
    Shape old_strides = x.dim() == 0 ? Shape{1} : x.strides();
    out.assign(shape.size(), 1);
    if (x.numel() == 0) {
        out = contiguous_strides(shape);
        return true;
    }
    int64_t view_d = (int64_t)shape.size() - 1;
    int64_t chunk_base = old_strides.back(), tensor_numel = 1, view_numel = 1;
    for (int64_t d = (int64_t)old_shape.size() - 1; d >= 0; --d) {
        tensor_numel *= old_shape[d];
        bool chunk_ends = d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base);
        if (!chunk_ends) continue;
        while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
            out[view_d] = view_numel * chunk_base;
            view_numel *= shape[view_d];
            --view_d;
        }
        if (view_numel != tensor_numel) return false;
        if (d > 0) {
            chunk_base = old_strides[d - 1];
            tensor_numel = 1;
            view_numel = 1;
        }
    }
    return view_d == -1;
}

// y = x seen with another shape;  dx = dy reshaped back
Tensor Tensor::view(const Shape& new_shape) const {
    check_defined("view");
    Shape shape = infer_shape(new_shape, numel(), this->shape(), "view");
    Shape strides;
    check(view_strides(*this, shape, strides), "view: shape ", shape, " is incompatible with the layout",
          " of a tensor of shape ", this->shape(), " and strides ", this->strides(), "; use reshape() (which copies)");
    Tensor y = make_view(*this, shape, strides, offset());
    return record("view", y, {*this},
                  [xs = this->shape()](const Tensor& dy) -> std::vector<Tensor> { return {dy.reshape(xs)}; });
}

Tensor Tensor::reshape(const Shape& new_shape) const {
    check_defined("reshape");
    Shape shape = infer_shape(new_shape, numel(), this->shape(), "reshape");
    Shape strides;
    if (view_strides(*this, shape, strides)) return view(shape);
    return contiguous().view(shape);
}

// y[i_p0, i_p1, ...] = x[i_0, i_1, ...];  dx = dy permuted by the inverse permutation
Tensor Tensor::permute(const Shape& dims) const {
    check_defined("permute");
    check((int64_t)dims.size() == dim(), "permute: ", dims.size(), " dims given for a tensor of shape ", shape());
    Shape shape(dims.size()), strides(dims.size()), inverse(dims.size());
    std::vector<bool> used(dims.size(), false);
    for (size_t i = 0; i < dims.size(); ++i) {
        int64_t d = wrap_dim(dims[i], this->shape(), "permute");
        check(!used[d], "permute: dim ", dims[i], " repeated in ", dims);
        used[d] = true;
        shape[i] = this->shape()[d];
        strides[i] = this->strides()[d];
        inverse[d] = (int64_t)i;
    }
    Tensor y = make_view(*this, shape, strides, offset());
    return record("permute", y, {*this},
                  [inverse](const Tensor& dy) -> std::vector<Tensor> { return {dy.permute(inverse)}; });
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
    check_defined("transpose");
    Shape dims(dim());
    for (int64_t i = 0; i < dim(); ++i) dims[i] = i;
    std::swap(dims[wrap_dim(d0, shape(), "transpose")], dims[wrap_dim(d1, shape(), "transpose")]);
    return permute(dims);
}

// y = x[..., start:end:step, ...] along dim;  dx = zeros with dy placed at that slice
Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
    check_defined("slice");
    check(dim() > 0, "slice: cannot slice a 0-d tensor");
    d = wrap_dim(d, shape(), "slice");
    check(step > 0, "slice: step must be positive, got ", step);
    int64_t n = shape()[d];
    // Python's slicing rules: negative indices count from the end, then clamp to [0, n].
    if (start < 0) start += n;
    if (end < 0) end += n;
    start = std::clamp<int64_t>(start, 0, n);
    end = std::clamp<int64_t>(end, start, n);
    Shape sh = shape(), st = strides();
    sh[d] = (end - start + step - 1) / step;
    st[d] = strides()[d] * step;
    Tensor y = make_view(*this, sh, st, offset() + start * strides()[d]);
    return record("slice", y, {*this}, [xs = shape(), d, start, end, step](const Tensor& dy) -> std::vector<Tensor> {
        Tensor dx = zeros(xs, DType::Float32, dy.device());
        dx.slice(d, start, end, step).copy_(dy);
        return {dx};
    });
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
    check_defined("narrow");
    int64_t w = wrap_dim(d, shape(), "narrow");
    check(start >= 0 && length >= 0 && start + length <= size(w), "narrow: [", start, ", ", start + length,
          ") is out of range for dim ", d, " of shape ", shape());
    return slice(w, start, start + length, 1);
}

// y = x repeated along size-1 dims (stride 0, no copy);  dx = dy summed over them
Tensor Tensor::expand(const Shape& new_shape) const {
    check_defined("expand");
    check((int64_t)new_shape.size() >= dim(), "expand: shape ", new_shape, " has fewer dims than ", shape());
    size_t lead = new_shape.size() - dim();
    Shape sh(new_shape.size()), st(new_shape.size());
    for (size_t i = 0; i < new_shape.size(); ++i) {
        if (i < lead) {
            check(new_shape[i] >= 0, "expand: new leading dim ", i, " cannot be ", new_shape[i]);
            sh[i] = new_shape[i];
            st[i] = 0;
            continue;
        }
        int64_t have = shape()[i - lead], want = new_shape[i] == -1 ? have : new_shape[i];
        check(have == want || have == 1, "expand: cannot expand shape ", shape(), " to ", new_shape, " (dim ", i, ": ",
              have, " to ", want, ")");
        sh[i] = want;
        st[i] = have == want ? strides()[i - lead] : 0;
    }
    if (sh == shape()) return *this;
    Tensor y = make_view(*this, sh, st, offset());
    return record("expand", y, {*this},
                  [xs = shape()](const Tensor& dy) -> std::vector<Tensor> { return {sum_to(dy, xs)}; });
}

Tensor Tensor::squeeze(int64_t d) const {
    check_defined("squeeze");
    if (dim() == 0) return *this;
    d = wrap_dim(d, shape(), "squeeze");
    if (shape()[d] != 1) return *this;  // like PyTorch: squeezing a non-1 dim does nothing
    Shape sh = shape();
    sh.erase(sh.begin() + d);
    return view(sh);
}

Tensor Tensor::unsqueeze(int64_t d) const {
    check_defined("unsqueeze");
    check(d >= -(dim() + 1) && d <= dim(), "unsqueeze: dim ", d, " out of range for shape ", shape());
    if (d < 0) d += dim() + 1;
    Shape sh = shape();
    sh.insert(sh.begin() + d, 1);
    return view(sh);
}

// A copy in row-major order when the layout is anything else;  dx = dy
Tensor Tensor::contiguous() const {
    check_defined("contiguous");
    if (is_contiguous()) return *this;
    return clone();
}

Tensor Tensor::clone() const {
    check_defined("clone");
    Tensor y = Tensor::empty(shape(), dtype(), device());
    backend_for(device()).copy(*this, y);
    return record("clone", y, {*this}, [](const Tensor& dy) -> std::vector<Tensor> { return {dy}; });
}

// Moving between devices. The copy is an op like any other: its backward moves the
// gradient back to where the input lives, so a loss computed on the GPU still trains
// parameters that started on the CPU.
Tensor Tensor::to(Device d) const {
    check_defined("to");
    if (d == device()) return *this;
    Tensor y = Tensor::empty(shape(), dtype(), d);
    copy_between_devices(*this, y);
    Device from = device();
    if (dtype() != DType::Float32) return y;  // int64 tensors carry no gradient
    return record("to_device", y, {*this}, [from](const Tensor& dy) -> std::vector<Tensor> { return {dy.to(from)}; });
}

// Converting dtype; int64 results are not differentiable, so nothing is recorded.
Tensor Tensor::to(DType t) const {
    check_defined("to");
    if (t == dtype()) return *this;
    Tensor y = Tensor::empty(shape(), t, device());
    backend_for(device()).copy(*this, y);
    return y;
}

}  // namespace td
