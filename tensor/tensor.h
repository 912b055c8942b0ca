// tensor/tensor.h: the N-d tensor at the bottom of the engine.
//
// A Tensor is a *view*: (shape, strides, offset) laid over a shared, flat Storage.
// Element (i0, i1, ..., ik) lives at storage[offset + i0*strides[0] + ... + ik*strides[k]].
// Views (transpose, narrow, expand, ...) make a new (shape, strides, offset) over the
// same storage and copy nothing; contiguous() copies only when the layout needs it.
//
// Copying a Tensor object copies a handle (like torch.Tensor in Python): both handles
// see the same data and the same autograd state.
//
// Dtypes: float32 for values, int64 for indices (argmax, index_select, gather).
// Devices: every Storage carries a device tag and every op asks backend_for(device)
// for its kernels (tensor/backend.h); the CPU backend lives in tensor/cpu/.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <iosfwd>
#include <memory>
#include <string>
#include <vector>

namespace td {

using Shape = std::vector<int64_t>;

enum class DType { Float32, Int64 };
enum class Device { CPU, CUDA };

const char* dtype_name(DType t);
const char* device_name(Device d);
size_t dtype_size(DType t);
std::string shape_str(const Shape& s);  // "[2, 3, 4]"
int64_t numel_of(const Shape& s);
Shape contiguous_strides(const Shape& s);  // row-major: last dim has stride 1

// A flat block of bytes on one device. Freed by the backend that allocated it.
struct Storage {
    Device device = Device::CPU;
    void* data = nullptr;
    size_t nbytes = 0;
    Storage(Device device, size_t nbytes);
    ~Storage();
    Storage(const Storage&) = delete;
    Storage& operator=(const Storage&) = delete;
};

struct Node;  // autograd/node.h: the op that produced a tensor
class Tensor;

struct TensorImpl {
    std::shared_ptr<Storage> storage;
    Shape shape;
    Shape strides;  // in elements, not bytes
    int64_t offset = 0;
    DType dtype = DType::Float32;
    bool is_view = false;  // shares storage with the tensor it was made from

    // autograd state (see autograd/node.h)
    bool requires_grad = false;
    std::shared_ptr<TensorImpl> grad;  // d(loss)/d(this), accumulated by backward()
    std::shared_ptr<Node> grad_fn;     // the op that produced this tensor; null for leaves
};

class Tensor {
public:
    Tensor() = default;  // an undefined tensor (defined() == false)
    explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

    // A new, uninitialised, contiguous tensor.
    static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::CPU);
    // A new tensor holding a copy of `values`, shaped `shape` (numel must match).
    static Tensor from_vector(const std::vector<float>& values, const Shape& shape);
    static Tensor from_vector_i64(const std::vector<int64_t>& values, const Shape& shape);

    bool defined() const { return impl_ != nullptr; }
    const Shape& shape() const;
    const Shape& strides() const;
    int64_t offset() const;
    int64_t dim() const;
    int64_t size(int64_t d) const;  // negative d counts from the end
    int64_t numel() const;
    DType dtype() const;
    Device device() const;
    bool is_contiguous() const;
    bool is_view() const;

    // Raw pointers to element (0, ..., 0). Throw if the dtype does not match.
    float* data_f32() const;
    int64_t* data_i64() const;

    // Reading values (CPU tensors; copies through contiguous()). item() reads from any
    // device (the one value is copied to the host, like PyTorch's .item()); the others
    // need .to(Device::CPU) first, so a loop over a GPU tensor's values is never silent.
    float item() const;                                  // exactly one element
    float at(std::initializer_list<int64_t> idx) const;  // bounds-checked single element
    std::vector<float> to_vector() const;
    std::vector<int64_t> to_vector_i64() const;

    // Views: no copy; each records its backward (tensor/ops/views.cpp).
    Tensor view(const Shape& shape) const;     // needs a compatible layout
    Tensor reshape(const Shape& shape) const;  // view if possible, else copy
    Tensor permute(const Shape& dims) const;
    Tensor transpose(int64_t d0, int64_t d1) const;
    Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
    Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
    Tensor expand(const Shape& shape) const;
    Tensor squeeze(int64_t dim) const;
    Tensor unsqueeze(int64_t dim) const;
    Tensor contiguous() const;
    Tensor clone() const;  // a copy with its own storage (differentiable)
    Tensor to(DType dtype) const;
    Tensor to(Device device) const;  // a copy on `device` (differentiable: the gradient moves back)

    // autograd
    bool requires_grad() const;
    Tensor& requires_grad_(bool on = true);
    Tensor grad() const;    // undefined until backward() reached this leaf
    void zero_grad();       // drops .grad
    Tensor detach() const;  // same data, cut from the graph
    std::shared_ptr<Node> grad_fn() const;
    void backward(const Tensor& grad_output = Tensor(), bool retain_graph = false) const;

    // In-place, not recorded by autograd (for optimizers, initialisers, kernels of
    // backward passes). Refuse tensors that require grad while grad mode is on.
    Tensor& copy_(const Tensor& src);
    Tensor& fill_(float value);
    Tensor& add_(const Tensor& other, float alpha = 1.0f);  // this += alpha * other
    Tensor& mul_(float value);

    TensorImpl* impl() const { return impl_.get(); }
    const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

private:
    std::shared_ptr<TensorImpl> impl_;
    void check_defined(const char* what) const;
};

// Printing: shape, dtype, device, then values (long dims elided like PyTorch).
std::ostream& operator<<(std::ostream& os, const Tensor& t);
std::string to_string(const Tensor& t);

// Normalises a possibly negative dim against a shape's rank; throws naming `op` and
// the shape if out of range.
int64_t wrap_dim(int64_t dim, const Shape& shape, const char* op);

// Rarely needed by users: the element offset of a multi-index (no bounds check).
int64_t element_offset(const Tensor& t, const int64_t* index);

}  // namespace td
