// tensor/tensor.cpp: storage, shape bookkeeping, element access and printing.
// The view methods (view, permute, narrow, ...) live in tensor/ops/views.cpp.
#include "tensor/tensor.h"

#include <iomanip>
#include <ostream>
#include <sstream>

#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td {

const char* dtype_name(DType t) { return t == DType::Float32 ? "float32" : "int64"; }
const char* device_name(Device d) { return d == Device::CPU ? "cpu" : "cuda"; }
size_t dtype_size(DType t) { return t == DType::Float32 ? 4 : 8; }

std::ostream& operator<<(std::ostream& os, const Shape& s) {
    os << "[";
    for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    return os << "]";
}

std::string shape_str(const Shape& s) {
    std::ostringstream os;
    os << s;
    return os.str();
}

int64_t numel_of(const Shape& s) {
    int64_t n = 1;
    for (int64_t d : s) n *= d;
    return n;
}

Shape contiguous_strides(const Shape& s) {
    Shape st(s.size());
    int64_t running = 1;
    for (int64_t i = (int64_t)s.size() - 1; i >= 0; --i) {
        st[i] = running;
        running *= s[i];
    }
    return st;
}

int64_t wrap_dim(int64_t dim, const Shape& shape, const char* op) {
    // A 0-d tensor accepts dim 0 / -1 like PyTorch does.
    int64_t rank = (int64_t)shape.size(), r = rank == 0 ? 1 : rank;
    check(dim >= -r && dim < r, op, ": dim ", dim, " is out of range for a tensor of shape ", shape);
    return dim < 0 ? dim + r : dim;
}

int64_t element_offset(const Tensor& t, const int64_t* index) {
    int64_t off = t.offset();
    for (int64_t d = 0; d < t.dim(); ++d) off += index[d] * t.strides()[d];
    return off;
}

// ---- Storage ---------------------------------------------------------------------------

Storage::Storage(Device dev, size_t n) : device(dev), nbytes(n) { data = backend_for(device).allocate(n); }

Storage::~Storage() { backend_for(device).deallocate(data); }

// ---- Tensor ------------------------------------------------------------------------------

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
    for (int64_t d : shape) check(d >= 0, "empty: negative size in shape ", shape);
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = std::make_shared<Storage>(device, (size_t)numel_of(shape) * dtype_size(dtype));
    impl->shape = shape;
    impl->strides = contiguous_strides(shape);
    impl->dtype = dtype;
    return Tensor(impl);
}

Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape) {
    check((int64_t)values.size() == numel_of(shape), "from_vector: ", values.size(), " values cannot fill shape ",
          shape);
    Tensor t = empty(shape);
    std::copy(values.begin(), values.end(), t.data_f32());
    return t;
}

Tensor Tensor::from_vector_i64(const std::vector<int64_t>& values, const Shape& shape) {
    check((int64_t)values.size() == numel_of(shape), "from_vector_i64: ", values.size(), " values cannot fill shape ",
          shape);
    Tensor t = empty(shape, DType::Int64);
    std::copy(values.begin(), values.end(), t.data_i64());
    return t;
}

void Tensor::check_defined(const char* what) const {
    check(impl_ != nullptr, what, ": the tensor is undefined (default-constructed)");
}

const Shape& Tensor::shape() const {
    check_defined("shape");
    return impl_->shape;
}
const Shape& Tensor::strides() const {
    check_defined("strides");
    return impl_->strides;
}
int64_t Tensor::offset() const {
    check_defined("offset");
    return impl_->offset;
}
int64_t Tensor::dim() const { return (int64_t)shape().size(); }
int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, shape(), "size")]; }
int64_t Tensor::numel() const { return numel_of(shape()); }
DType Tensor::dtype() const {
    check_defined("dtype");
    return impl_->dtype;
}
Device Tensor::device() const {
    check_defined("device");
    return impl_->storage->device;
}
bool Tensor::is_view() const {
    check_defined("is_view");
    return impl_->is_view;
}

bool Tensor::is_contiguous() const {
    // Size-1 dims may have any stride: they are never stepped over.
    int64_t expected = 1;
    for (int64_t i = dim() - 1; i >= 0; --i) {
        if (impl_->shape[i] != 1 && impl_->strides[i] != expected) return false;
        expected *= impl_->shape[i];
    }
    return true;
}

float* Tensor::data_f32() const {
    check(dtype() == DType::Float32, "data_f32: tensor is ", dtype_name(dtype()), ", not float32");
    return static_cast<float*>(impl_->storage->data) + impl_->offset;
}

int64_t* Tensor::data_i64() const {
    check(dtype() == DType::Int64, "data_i64: tensor is ", dtype_name(dtype()), ", not int64");
    return static_cast<int64_t*>(impl_->storage->data) + impl_->offset;
}

std::vector<float> Tensor::to_vector() const {
    check(device() == Device::CPU, "to_vector: tensor is on ", device_name(device()), "; copy it to cpu first");
    Tensor c = detach().to(DType::Float32).contiguous();
    return std::vector<float>(c.data_f32(), c.data_f32() + c.numel());
}

std::vector<int64_t> Tensor::to_vector_i64() const {
    check(device() == Device::CPU, "to_vector_i64: tensor is on ", device_name(device()), "; copy it to cpu first");
    Tensor c = detach().to(DType::Int64).contiguous();
    return std::vector<int64_t>(c.data_i64(), c.data_i64() + c.numel());
}

float Tensor::item() const {
    check(numel() == 1, "item: tensor of shape ", shape(), " has ", numel(), " elements, not 1");
    return detach().to(Device::CPU).to_vector()[0];  // from any device: one value crosses to the host
}

float Tensor::at(std::initializer_list<int64_t> idx) const {
    check((int64_t)idx.size() == dim(), "at: ", idx.size(), " indices for a tensor of shape ", shape());
    check(device() == Device::CPU, "at: tensor is on ", device_name(device()));
    int64_t off = offset(), d = 0;
    for (int64_t i : idx) {
        check(i >= 0 && i < shape()[d], "at: index ", i, " out of range for dim ", d, " of shape ", shape());
        off += i * strides()[d++];
    }
    if (dtype() == DType::Int64) return (float)static_cast<int64_t*>(impl_->storage->data)[off];
    return static_cast<float*>(impl_->storage->data)[off];
}

// ---- autograd handles (the machinery is in autograd/) ------------------------------------

bool Tensor::requires_grad() const {
    check_defined("requires_grad");
    return impl_->requires_grad;
}

Tensor& Tensor::requires_grad_(bool on) {
    check_defined("requires_grad_");
    check(!on || dtype() == DType::Float32, "requires_grad_: only float32 tensors can require grad, this one is ",
          dtype_name(dtype()));
    check(!on || impl_->grad_fn == nullptr || impl_->requires_grad,
          "requires_grad_: tensor is the output of an op; call detach() first");
    impl_->requires_grad = on;
    return *this;
}

Tensor Tensor::grad() const {
    check_defined("grad");
    return impl_->grad ? Tensor(impl_->grad) : Tensor();
}

void Tensor::zero_grad() {
    check_defined("zero_grad");
    impl_->grad.reset();
}

std::shared_ptr<Node> Tensor::grad_fn() const {
    check_defined("grad_fn");
    return impl_->grad_fn;
}

Tensor Tensor::detach() const {
    check_defined("detach");
    auto impl = std::make_shared<TensorImpl>();
    impl->storage = impl_->storage;
    impl->shape = impl_->shape;
    impl->strides = impl_->strides;
    impl->offset = impl_->offset;
    impl->dtype = impl_->dtype;
    impl->is_view = true;
    return Tensor(impl);
}

void Tensor::backward(const Tensor& grad_output, bool retain_graph) const {
    td::backward(*this, grad_output, retain_graph);
}

// ---- in-place updates (not recorded) -------------------------------------------------------

static void check_inplace(const Tensor& t, const char* op) {
    check(!(grad_mode_enabled() && t.requires_grad()), op, ": in-place update of a tensor that requires grad; ",
          "wrap it in NoGradGuard (as optimizers do)");
}

Tensor& Tensor::copy_(const Tensor& src) {
    check_inplace(*this, "copy_");
    check(src.device() == device(), "copy_: source on ", device_name(src.device()), ", destination on ",
          device_name(device()));
    Tensor s = src.shape() == shape() ? src : src.detach().expand(shape());
    backend_for(device()).copy(s, *this);
    return *this;
}

Tensor& Tensor::fill_(float value) {
    check_inplace(*this, "fill_");
    backend_for(device()).fill(*this, value);
    return *this;
}

Tensor& Tensor::add_(const Tensor& other, float alpha) {
    check_inplace(*this, "add_");
    check(dtype() == DType::Float32 && other.dtype() == DType::Float32, "add_: needs float32 tensors");
    check(is_contiguous(), "add_: destination of shape ", shape(), " must be contiguous");
    Tensor o = other.detach();
    if (o.shape() != shape()) {
        check(broadcast_shapes(o.shape(), shape(), "add_") == shape(), "add_: cannot add shape ", o.shape(), " into ",
              shape());
        o = o.expand(shape());
    }
    Backend& be = backend_for(device());
    if (alpha != 1.0f) {
        Tensor scaled = Tensor::empty(shape(), DType::Float32, device());
        be.unary(UnaryOp::MulScalar, o, scaled, alpha, 0.0f);
        o = scaled;
    }
    be.binary(BinaryOp::Add, *this, o, *this);
    return *this;
}

Tensor& Tensor::mul_(float value) {
    check_inplace(*this, "mul_");
    check(is_contiguous(), "mul_: tensor of shape ", shape(), " must be contiguous");
    backend_for(device()).unary(UnaryOp::MulScalar, *this, *this, value, 0.0f);
    return *this;
}

// ---- printing --------------------------------------------------------------------------------

static void print_values(std::ostream& os, const std::vector<float>& v, const Shape& shape, bool is_int, size_t d,
                         int64_t base, int indent) {
    const int64_t edge = 3;  // like PyTorch: first and last 3 along a long dim
    int64_t n = shape[d];
    int64_t inner = 1;
    for (size_t k = d + 1; k < shape.size(); ++k) inner *= shape[k];
    os << "[";
    for (int64_t i = 0; i < n; ++i) {
        if (n > 2 * edge && i == edge) {
            os << (d + 1 == shape.size() ? "..., " : "...,\n" + std::string(indent + 1, ' '));
            i = n - edge;
        }
        if (d + 1 == shape.size()) {
            float x = v[base + i];
            if (is_int) os << (int64_t)x;
            else os << std::setw(9) << std::setprecision(4) << x;
        } else {
            print_values(os, v, shape, is_int, d + 1, base + i * inner, indent + 1);
        }
        if (i + 1 < n) os << (d + 1 == shape.size() ? ", " : ",\n" + std::string(indent + 1, ' '));
    }
    os << "]";
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
    if (!t.defined()) return os << "tensor(undefined)";
    os << "tensor(shape=" << shape_str(t.shape()) << ", dtype=" << dtype_name(t.dtype())
       << ", device=" << device_name(t.device());
    if (t.requires_grad()) os << ", requires_grad";
    if (t.grad_fn()) os << ", grad_fn=" << t.grad_fn()->name;
    os << ")\n";
    if (t.device() != Device::CPU) return os << "(values on " << device_name(t.device()) << ")";
    std::vector<float> v = t.to_vector();
    if (t.dim() == 0) return os << v[0];
    return print_values(os, v, t.shape(), t.dtype() == DType::Int64, 0, 0, 0), os;
}

std::string to_string(const Tensor& t) {
    std::ostringstream os;
    os << t;
    return os.str();
}

}  // namespace td
