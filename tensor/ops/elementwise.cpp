// tensor/ops/elementwise.cpp: elementwise ops with broadcasting, forward and backward.
//
// Broadcasting (NumPy's rule): align shapes at the right; each pair of sizes must be
// equal or one of them 1; the output takes the larger. An input is "expanded" to the
// output's shape as a view with stride 0 along broadcast dims, so kernels never need
// to know about broadcasting. In backward, the gradient of an expanded input is the
// sum over the dims it was expanded along: sum_to(grad, input_shape).
#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td {

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
    size_t n = std::max(a.size(), b.size());
    Shape out(n);
    for (size_t i = 0; i < n; ++i) {
        int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
        int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
        check(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b, " cannot broadcast (dim ", i, ": ", da,
              " vs ", db, ")");
        out[i] = da == 1 ? db : da;
    }
    return out;
}

Tensor sum_to(const Tensor& g, const Shape& shape) {
    if (g.shape() == shape) return g;
    size_t lead = g.dim() - shape.size();  // dims broadcasting prepended
    Shape dims;
    for (size_t i = 0; i < (size_t)g.dim(); ++i)
        if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) dims.push_back((int64_t)i);
    Tensor s = sum(g, dims, /*keepdim=*/true);
    return s.reshape(shape);
}

static void check_float(const Tensor& t, const char* op) {
    check(t.defined(), op, ": undefined tensor");
    check(t.dtype() == DType::Float32, op, ": expected a float32 tensor, got ", dtype_name(t.dtype()), " of shape ",
          t.shape());
}

static void check_same_device(const Tensor& a, const Tensor& b, const char* op) {
    check(a.device() == b.device(), op, ": tensors on different devices (", device_name(a.device()), " and ",
          device_name(b.device()), ")");
}

// Runs a binary kernel on broadcast inputs into a fresh output.
static Tensor binary_forward(BinaryOp kind, const Tensor& a, const Tensor& b, const char* op) {
    check_float(a, op);
    check_float(b, op);
    check_same_device(a, b, op);
    Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
    Tensor out = Tensor::empty(shape, DType::Float32, a.device());
    backend_for(a.device()).binary(kind, a.detach().expand(shape), b.detach().expand(shape), out);
    return out;
}

static Tensor unary_forward(UnaryOp kind, const Tensor& x, float p0, float p1, const char* op) {
    check_float(x, op);
    Tensor out = Tensor::empty(x.shape(), DType::Float32, x.device());
    backend_for(x.device()).unary(kind, x, out, p0, p1);
    return out;
}

// dx = dy * f'(x), computed by the backend's unary_backward kernel.
static Tensor unary_grad(UnaryOp kind, const Tensor& x, const Tensor& dy, float p0, float p1) {
    Tensor dx = Tensor::empty(x.shape(), DType::Float32, x.device());
    backend_for(x.device()).unary_backward(kind, x, dy, dx, p0, p1);
    return dx;
}

// A unary op: forward through the kernel; backward through the derivative kernel.
static Tensor unary_op(UnaryOp kind, const Tensor& x, float p0, float p1, const char* name) {
    Tensor y = unary_forward(kind, x, p0, p1, name);
    return record(name, y, {x}, [x, kind, p0, p1](const Tensor& dy) -> std::vector<Tensor> {
        return {unary_grad(kind, x.detach(), dy, p0, p1)};
    });
}

// ---- binary ops: y = a (op) b -------------------------------------------------------------

// y = a + b;  da = dy, db = dy  (each summed back to its own shape)
Tensor add(const Tensor& a, const Tensor& b) {
    Tensor y = binary_forward(BinaryOp::Add, a, b, "add");
    return record("add", y, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& dy) -> std::vector<Tensor> {
        return {sum_to(dy, sa), sum_to(dy, sb)};
    });
}

// y = a - b;  da = dy, db = -dy
Tensor sub(const Tensor& a, const Tensor& b) {
    Tensor y = binary_forward(BinaryOp::Sub, a, b, "sub");
    return record("sub", y, {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& dy) -> std::vector<Tensor> {
        return {sum_to(dy, sa), sum_to(neg(dy), sb)};
    });
}

// y = a * b;  da = dy * b, db = dy * a
// Each factor is saved only when the other one needs a gradient: x * mask keeps the mask,
// not x.
Tensor mul(const Tensor& a, const Tensor& b) {
    Tensor y = binary_forward(BinaryOp::Mul, a, b, "mul");
    bool need_da = a.requires_grad(), need_db = b.requires_grad();
    Tensor a_saved = need_db ? a.detach() : Tensor(), b_saved = need_da ? b.detach() : Tensor();
    return record("mul", y, {a, b},
                  [a_saved, b_saved, sa = a.shape(), sb = b.shape()](const Tensor& dy) -> std::vector<Tensor> {
                      Tensor da, db;
                      if (b_saved.defined()) da = sum_to(mul(dy, b_saved), sa);
                      if (a_saved.defined()) db = sum_to(mul(dy, a_saved), sb);
                      return {da, db};
                  });
}

// y = a / b;  da = dy / b, db = -dy * a / b^2 = -dy * y / b
Tensor div(const Tensor& a, const Tensor& b) {
    Tensor y = binary_forward(BinaryOp::Div, a, b, "div");
    return record("div", y, {a, b}, [a, b, y = y.detach()](const Tensor& dy) -> std::vector<Tensor> {
        Tensor da, db;
        if (a.requires_grad()) da = sum_to(div(dy, b.detach()), a.shape());
        if (b.requires_grad()) db = sum_to(neg(div(mul(dy, y), b.detach())), b.shape());
        return {da, db};
    });
}

// y = a^b;  da = dy * b * a^(b-1), db = dy * y * log(a)
Tensor pow(const Tensor& a, const Tensor& b) {
    Tensor y = binary_forward(BinaryOp::Pow, a, b, "pow");
    return record("pow", y, {a, b}, [a, b, y = y.detach()](const Tensor& dy) -> std::vector<Tensor> {
        Tensor da, db;
        if (a.requires_grad())
            da = sum_to(mul(dy, mul(b.detach(), pow(a.detach(), sub(b.detach(), ones({}, dy.device()))))), a.shape());
        if (b.requires_grad()) db = sum_to(mul(dy, mul(y, log(a.detach()))), b.shape());
        return {da, db};
    });
}

Tensor gt(const Tensor& a, const Tensor& b) { return binary_forward(BinaryOp::Gt, a, b, "gt"); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_forward(BinaryOp::Lt, a, b, "lt"); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary_forward(BinaryOp::Eq, a, b, "eq"); }

// y = cond ? a : b;  da = cond ? dy : 0, db = cond ? 0 : dy
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
    check_float(a, "where");
    check_float(b, "where");
    check(cond.defined(), "where: undefined condition");
    check_same_device(cond, a, "where");
    check_same_device(a, b, "where");
    Tensor c = cond.dtype() == DType::Float32 ? cond.detach() : cond.to(DType::Float32);
    Shape shape = broadcast_shapes(broadcast_shapes(c.shape(), a.shape(), "where"), b.shape(), "where");
    Tensor y = Tensor::empty(shape, DType::Float32, a.device());
    backend_for(a.device()).where(c.expand(shape), a.detach().expand(shape), b.detach().expand(shape), y);
    return record(
        "where", y, {cond, a, b}, [c, sa = a.shape(), sb = b.shape()](const Tensor& dy) -> std::vector<Tensor> {
            Tensor zero = zeros({}, DType::Float32, dy.device());  // on dy's device, like everything a backward makes
            return {Tensor(), sum_to(where(c, dy, zero), sa), sum_to(where(c, zero, dy), sb)};
        });
}

// ---- ops with a scalar -----------------------------------------------------------------------

Tensor add(const Tensor& a, float b) { return unary_op(UnaryOp::AddScalar, a, b, 0.0f, "add_scalar"); }
Tensor mul(const Tensor& a, float b) { return unary_op(UnaryOp::MulScalar, a, b, 0.0f, "mul_scalar"); }
Tensor pow(const Tensor& a, float exponent) { return unary_op(UnaryOp::PowScalar, a, exponent, 0.0f, "pow_scalar"); }

// ---- unary ops: the formula and derivative of each are in tensor/cpu/elementwise.cpp ---------

Tensor neg(const Tensor& x) { return unary_op(UnaryOp::Neg, x, 0, 0, "neg"); }
Tensor exp(const Tensor& x) { return unary_op(UnaryOp::Exp, x, 0, 0, "exp"); }
Tensor log(const Tensor& x) { return unary_op(UnaryOp::Log, x, 0, 0, "log"); }
Tensor sqrt(const Tensor& x) { return unary_op(UnaryOp::Sqrt, x, 0, 0, "sqrt"); }
Tensor abs(const Tensor& x) { return unary_op(UnaryOp::Abs, x, 0, 0, "abs"); }
Tensor tanh(const Tensor& x) { return unary_op(UnaryOp::Tanh, x, 0, 0, "tanh"); }
Tensor sigmoid(const Tensor& x) { return unary_op(UnaryOp::Sigmoid, x, 0, 0, "sigmoid"); }
Tensor relu(const Tensor& x) { return unary_op(UnaryOp::Relu, x, 0, 0, "relu"); }
Tensor silu(const Tensor& x) { return unary_op(UnaryOp::Silu, x, 0, 0, "silu"); }
Tensor gelu(const Tensor& x) { return unary_op(UnaryOp::Gelu, x, 0, 0, "gelu"); }
// y = log(1 + e^(beta x)) / beta (x above the threshold);  dx = dy * sigmoid(beta x)
Tensor softplus(const Tensor& x, float beta, float threshold) {
    check(beta > 0.0f, "softplus: beta must be > 0, got ", beta);
    return unary_op(UnaryOp::Softplus, x, beta, threshold, "softplus");
}
Tensor clamp(const Tensor& x, float lo, float hi) {
    check(lo <= hi, "clamp: lower bound ", lo, " is above upper bound ", hi);
    return unary_op(UnaryOp::Clamp, x, lo, hi, "clamp");
}

// ---- operators ---------------------------------------------------------------------------------

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& x) { return neg(x); }
Tensor operator+(const Tensor& a, float b) { return add(a, b); }
Tensor operator-(const Tensor& a, float b) { return add(a, -b); }
Tensor operator*(const Tensor& a, float b) { return mul(a, b); }
Tensor operator/(const Tensor& a, float b) { return mul(a, 1.0f / b); }
Tensor operator+(float a, const Tensor& b) { return add(b, a); }
Tensor operator-(float a, const Tensor& b) { return add(neg(b), a); }
Tensor operator*(float a, const Tensor& b) { return mul(b, a); }

}  // namespace td
