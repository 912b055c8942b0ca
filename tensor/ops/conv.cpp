// tensor/ops/conv.cpp: conv2d, conv_transpose2d, avg_pool2d, upsample_nearest2d.
//
// Each op checks its arguments (td::Error naming the op and the shapes), works out the
// geometry, calls the backend kernel (tensor/cpu/conv.cpp) and records its backward
// right here. Kernels take contiguous tensors, so inputs are made contiguous first.
//
// conv2d:  x (N, C, H, W), w (K, C/G, R, S), bias (K) -> y (N, K, OH, OW),
//     y[n, k, oh, ow] = bias[k] + sum_{c in k's group, r, s} w[k, c, r, s] x[n, c, oh*stride - pad + r, ow*stride - pad + s]
//     OH = (H + 2 pad - R) / stride + 1 (floor), OW likewise; x is zero outside [0, H) x [0, W).
//     Backward: dx = conv2d's input-gradient (GEMM W^T dy, then col2im), dw = sum_n dy cols^T,
//     db = sum of dy over (n, oh, ow): the kernel conv2d_backward computes all three.
//
// conv_transpose2d is conv2d run backwards: its forward IS conv2d's input-gradient, for
// the conv2d that maps its output shape back to its input shape with the same weight.
// So it needs no kernel of its own:
//     forward:  y  = conv2d_backward(dx only)   with dy := x
//     backward: dx = conv2d_forward(dy, w)                  (the adjoint of the adjoint)
//               dw = conv2d_backward(dw only)   with x := dy, dy := x
//               db = sum of dy over (n, oh, ow)
// PyTorch's weight layout (C_in, C_out/G, R, S) for it is exactly conv2d's (K, C/G, R, S)
// for that conv2d (whose K is our C_in), which is why PyTorch chose it.
#include "autograd/node.h"
#include "tensor/backend.h"
#include "tensor/error.h"
#include "tensor/nn_ops.h"
#include "tensor/ops.h"

namespace td {

// A float32 tensor of rank 4; `what` says which argument and its expected layout.
static void check_4d(const Tensor& t, const char* op, const char* what) {
    check(t.defined(), op, ": ", what, " is undefined");
    check(t.dtype() == DType::Float32, op, ": expected a float32 ", what, ", got ", dtype_name(t.dtype()), " of shape ",
          t.shape());
    check(t.dim() == 4, op, ": ", what, " of shape ", t.shape(), " is not 4-D");
}

static void check_bias(const Tensor& bias, int64_t K, const Tensor& x, const char* op) {
    if (!bias.defined()) return;
    check(bias.dtype() == DType::Float32 && bias.shape() == Shape{K}, op, ": bias of shape ", bias.shape(), " (",
          dtype_name(bias.dtype()), ") should be float32 [", K, "]");
    check(bias.device() == x.device(), op, ": bias and input on different devices");
}

static Tensor empty_like_shape(const Shape& s, Device d) { return Tensor::empty(s, DType::Float32, d); }

// ---- conv2d -------------------------------------------------------------------------------

// Checks conv2d's arguments and returns its geometry.
static Conv2dShape conv2d_shape(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride, int64_t padding,
                                int64_t groups) {
    const char* op = "conv2d";
    check_4d(x, op, "input (N, C, H, W)");
    check_4d(w, op, "weight (K, C / groups, R, S)");
    check(x.device() == w.device(), op, ": input and weight on different devices");
    check(stride >= 1 && padding >= 0 && groups >= 1, op, ": needs stride >= 1, padding >= 0, groups >= 1, got ",
          stride, ", ", padding, ", ", groups);
    Conv2dShape g{};
    g.N = x.size(0), g.C = x.size(1), g.H = x.size(2), g.W = x.size(3);
    g.K = w.size(0), g.R = w.size(2), g.S = w.size(3);
    g.stride = stride, g.pad = padding, g.groups = groups;
    check(w.numel() > 0 && g.C > 0, op, ": empty weight ", w.shape(), " or input ", x.shape());
    check(g.C % groups == 0 && g.K % groups == 0, op, ": groups = ", groups, " must divide the input channels (", g.C,
          ", input ", x.shape(), ") and the output channels (", g.K, ", weight ", w.shape(), ")");
    check(w.size(1) * groups == g.C, op, ": input ", x.shape(), " has ", g.C, " channels but weight ", w.shape(),
          " expects ", w.size(1), " x ", groups, " groups = ", w.size(1) * groups);
    check(g.H + 2 * padding >= g.R && g.W + 2 * padding >= g.S, op, ": kernel ", g.R, "x", g.S,
          " is larger than the padded input ", g.H + 2 * padding, "x", g.W + 2 * padding, " (input ", x.shape(),
          ", weight ", w.shape(), ", padding ", padding, ")");
    check_bias(bias, g.K, x, op);
    g.OH = (g.H + 2 * padding - g.R) / stride + 1;
    g.OW = (g.W + 2 * padding - g.S) / stride + 1;
    return g;
}

Tensor conv2d(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride, int64_t padding, int64_t groups) {
    Conv2dShape g = conv2d_shape(x, w, bias, stride, padding, groups);
    Tensor xc = x.detach().contiguous();  // (N, C, H, W), kept for dw
    Tensor wc = w.detach().contiguous();  // (K, C/G, R, S), kept for dx
    Tensor bc = bias.defined() ? bias.detach().contiguous() : Tensor();
    Tensor y = empty_like_shape({g.N, g.K, g.OH, g.OW}, x.device());
    backend_for(x.device()).conv2d_forward(xc, wc, bc, y, g);

    bool need_dx = x.requires_grad(), need_dw = w.requires_grad();
    bool need_db = bias.defined() && bias.requires_grad();
    return record("conv2d", y, {x, w, bias},
                  [xc, wc, g, need_dx, need_dw, need_db](const Tensor& dy) -> std::vector<Tensor> {
                      Device d = xc.device();
                      Tensor dx = need_dx ? empty_like_shape(xc.shape(), d) : Tensor();  // (N, C, H, W)
                      Tensor dw = need_dw ? empty_like_shape(wc.shape(), d) : Tensor();  // (K, C/G, R, S)
                      Tensor db = need_db ? empty_like_shape({g.K}, d) : Tensor();       // (K)
                      backend_for(d).conv2d_backward(xc, wc, dy.contiguous(), dx, dw, db, g);
                      return {dx, dw, db};
                  });
}

// ---- conv_transpose2d ---------------------------------------------------------------------

Tensor conv_transpose2d(const Tensor& x, const Tensor& w, const Tensor& bias, int64_t stride, int64_t padding,
                        int64_t output_padding, int64_t groups) {
    const char* op = "conv_transpose2d";
    check_4d(x, op, "input (N, C_in, H, W)");
    check_4d(w, op, "weight (C_in, C_out / groups, R, S)");
    check(x.device() == w.device(), op, ": input and weight on different devices");
    check(stride >= 1 && padding >= 0 && groups >= 1, op, ": needs stride >= 1, padding >= 0, groups >= 1, got ",
          stride, ", ", padding, ", ", groups);
    check(output_padding >= 0 && output_padding < stride, op, ": output_padding ", output_padding,
          " must be in [0, stride = ", stride, ")");
    int64_t N = x.size(0), Cin = x.size(1), H = x.size(2), W = x.size(3);
    int64_t Cout = w.size(1) * groups, R = w.size(2), S = w.size(3);
    check(w.numel() > 0 && Cin > 0, op, ": empty weight ", w.shape(), " or input ", x.shape());
    check(w.size(0) == Cin, op, ": input ", x.shape(), " has ", Cin, " channels but weight ", w.shape(), " has ",
          w.size(0), " (its layout is (C_in, C_out / groups, R, S))");
    check(Cin % groups == 0, op, ": groups = ", groups, " does not divide the ", Cin, " input channels (input ",
          x.shape(), ")");
    int64_t OH = (H - 1) * stride - 2 * padding + R + output_padding;
    int64_t OW = (W - 1) * stride - 2 * padding + S + output_padding;
    check(OH >= 1 && OW >= 1, op, ": output would be ", OH, "x", OW, " (input ", x.shape(), ", weight ", w.shape(),
          ", stride ", stride, ", padding ", padding, ")");
    check_bias(bias, Cout, x, op);

    // The geometry of the conv2d that conv_transpose2d is the adjoint of: it maps our
    // output y (N, C_out, OH, OW) to our input's shape (N, C_in, H, W) with weight w.
    // (Its output size (OH + 2 pad - R) / stride + 1 is exactly H because output_padding < stride.)
    Conv2dShape g{N, Cout, OH, OW, /*K=*/Cin, R, S, stride, padding, groups, /*OH=*/H, /*OW=*/W};

    Tensor xc = x.detach().contiguous();  // (N, C_in, H, W): plays conv2d's dy
    Tensor wc = w.detach().contiguous();  // (C_in, C_out/G, R, S): conv2d's (K, C/G, R, S)
    Tensor y = empty_like_shape({N, Cout, OH, OW}, x.device());
    Backend& be = backend_for(x.device());
    be.conv2d_backward(Tensor(), wc, xc, /*dx=*/y, Tensor(), Tensor(), g);  // y = conv2d's input-gradient
    if (bias.defined()) y.add_(bias.detach().reshape({1, Cout, 1, 1}));     // + bias[c], broadcast over (n, h, w)

    bool need_dx = x.requires_grad(), need_dw = w.requires_grad();
    bool need_db = bias.defined() && bias.requires_grad();
    return record("conv_transpose2d", y, {x, w, bias},
                  [xc, wc, g, need_dx, need_dw, need_db](const Tensor& dy) -> std::vector<Tensor> {
                      Device d = xc.device();
                      Backend& be = backend_for(d);
                      Tensor dyc = dy.contiguous();  // (N, C_out, OH, OW): plays conv2d's x
                      Tensor dx, dw, db;
                      if (need_dx) {  // dx (N, C_in, H, W) = conv2d(dy, w), no bias
                          dx = empty_like_shape(xc.shape(), d);
                          be.conv2d_forward(dyc, wc, Tensor(), dx, g);
                      }
                      if (need_dw) {  // dw (C_in, C_out/G, R, S): conv2d's weight-gradient with x := dy, dy := x
                          dw = empty_like_shape(wc.shape(), d);
                          be.conv2d_backward(dyc, wc, xc, Tensor(), dw, Tensor(), g);
                      }
                      if (need_db) db = sum(dyc, {0, 2, 3});  // (C_out)
                      return {dx, dw, db};
                  });
}

// ---- avg_pool2d ---------------------------------------------------------------------------

// y[n, c, i, j] = mean of x[n, c, i k : (i+1) k, j k : (j+1) k];  dx = dy / k^2 spread over each window
Tensor avg_pool2d(const Tensor& x, int64_t k) {
    const char* op = "avg_pool2d";
    check_4d(x, op, "input (N, C, H, W)");
    check(k >= 1, op, ": kernel size k = ", k, " must be >= 1");
    check(x.size(2) % k == 0 && x.size(3) % k == 0, op, ": input ", x.shape(), " has H x W = ", x.size(2), " x ",
          x.size(3), ", not divisible by k = ", k);
    Tensor y = empty_like_shape({x.size(0), x.size(1), x.size(2) / k, x.size(3) / k}, x.device());
    backend_for(x.device()).avg_pool2d(x.detach().contiguous(), k, y);
    return record("avg_pool2d", y, {x},
                  [k, shape = x.shape(), d = x.device()](const Tensor& dy) -> std::vector<Tensor> {
                      Tensor dx = empty_like_shape(shape, d);
                      backend_for(d).avg_pool2d_backward(dy.contiguous(), k, dx);
                      return {dx};
                  });
}

// ---- upsample_nearest2d -------------------------------------------------------------------

// y[n, c, i, j] = x[n, c, i / s, j / s];  dx = sum of dy over each s x s block
Tensor upsample_nearest2d(const Tensor& x, int64_t s) {
    const char* op = "upsample_nearest2d";
    check_4d(x, op, "input (N, C, H, W)");
    check(s >= 1, op, ": scale s = ", s, " must be >= 1 (input ", x.shape(), ")");
    Tensor y = empty_like_shape({x.size(0), x.size(1), x.size(2) * s, x.size(3) * s}, x.device());
    backend_for(x.device()).upsample_nearest2d(x.detach().contiguous(), s, y);
    return record("upsample_nearest2d", y, {x},
                  [s, shape = x.shape(), d = x.device()](const Tensor& dy) -> std::vector<Tensor> {
                      Tensor dx = empty_like_shape(shape, d);
                      backend_for(d).upsample_nearest2d_backward(dy.contiguous(), s, dx);
                      return {dx};
                  });
}

}  // namespace td
