// %% [markdown]
// # 03 A layer by hand: Linear, its backward, and a gradient check
//
// A layer's backward written by hand as loops, made into an engine op with `record()`,
// and checked against finite differences with `gradcheck`, bugs included.
//
// Notebook 02 trusted the engine's backward closures. This one writes one for a whole
// layer, `Linear` (y = x W^T + b, the layer of every MLP and of the UNet's timestep
// embedding), then checks it the way every op in tinydiffusion is checked. With bugs
// planted on purpose, we see what the check says when a backward is wrong.
//
// Read along: `nn/linear.cpp` (the module: one `matmul` and one `+`),
// `autograd/gradcheck.h` (the check), `autograd/node.h` (`record`, which turns our loops
// into an op the engine can differentiate through).

// %%
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <vector>

#include "nn/linear.h"
#include "notebooks-cpp/notebook.h"

using namespace td;

const char* NB = "03-layer-gradcheck";

// %% [markdown]
// ## The layer as loops
//
// The forward is the definition of the layer, one multiply-add at a time. The three
// functions after it are its backward, one per input; where each formula comes from is
// derived further down ("The backward, derived"), so skip them on a first read.

// %%
// Linear, forward: y[n][o] = sum_i x[n][i] W[o][i] + b[o], i.e. y = x W^T + b.
// x: (N, I), W: (O, I), b: (O) -> y: (N, O), each a row-major array of floats.
std::vector<float> linear_forward(const float* x, const float* W, const float* b, int N, int I, int O) {
    std::vector<float> y(N * O);
    for (int n = 0; n < N; ++n)
        for (int o = 0; o < O; ++o) {
            float s = b[o];
            for (int i = 0; i < I; ++i) s += x[n * I + i] * W[o * I + i];
            y[n * O + o] = s;
        }
    return y;
}

// dL/dx[n][i] = sum_o dy[n][o] W[o][i]   (dx = dy W: x[n][i] was used by every output o)
std::vector<float> linear_dx(const float* dy, const float* W, int N, int I, int O) {
    std::vector<float> dx(N * I, 0.0f);
    for (int n = 0; n < N; ++n)
        for (int i = 0; i < I; ++i)
            for (int o = 0; o < O; ++o) dx[n * I + i] += dy[n * O + o] * W[o * I + i];
    return dx;
}

// dL/dW[o][i] = sum_n dy[n][o] x[n][i]   (dW = dy^T x: W[o][i] was used by every sample n)
std::vector<float> linear_dW(const float* dy, const float* x, int N, int I, int O) {
    std::vector<float> dW(O * I, 0.0f);
    for (int o = 0; o < O; ++o)
        for (int i = 0; i < I; ++i)
            for (int n = 0; n < N; ++n) dW[o * I + i] += dy[n * O + o] * x[n * I + i];
    return dW;
}

// dL/db[o] = sum_n dy[n][o]   (b was broadcast over the batch: every sample used it)
std::vector<float> linear_db(const float* dy, int N, int O) {
    std::vector<float> db(O, 0.0f);
    for (int n = 0; n < N; ++n)
        for (int o = 0; o < O; ++o) db[o] += dy[n * O + o];
    return db;
}

// %% [markdown]
// Those loops, turned into an op the engine can differentiate through: the forward
// computes y, then `record()` hangs the backward closure on it, exactly as every op in
// `tensor/ops/` does (notebook 02). The `bug` switch plants mistakes for later.

// %%
// Mistakes to plant in my_linear's backward, to see how each one shows.
enum class Bug { None, BiasFromFirstSampleOnly, WeightGradTransposed };

// The loops above as an op of the engine: the forward computes y, and record() hangs on
// it the backward closure, exactly as the ops in tensor/ops/ do (autograd/node.h). The
// closure keeps what the backward needs: x and W (contiguous copies), and the sizes.
Tensor my_linear(const Tensor& x, const Tensor& W, const Tensor& b, Bug bug = Bug::None) {
    check(x.dim() == 2 && W.dim() == 2 && b.dim() == 1 && x.size(1) == W.size(1) && b.size(0) == W.size(0),
          "my_linear: shapes x ", shape_str(x.shape()), ", W ", shape_str(W.shape()), ", b ", shape_str(b.shape()),
          " do not fit y = x W^T + b");
    int N = (int)x.size(0), I = (int)x.size(1), O = (int)W.size(0);
    Tensor xc = x.detach().contiguous(), Wc = W.detach().contiguous(), bc = b.detach().contiguous();
    Tensor y = Tensor::from_vector(linear_forward(xc.data_f32(), Wc.data_f32(), bc.data_f32(), N, I, O), {N, O});
    return record("my_linear", y, {x, W, b}, [xc, Wc, N, I, O, bug](const Tensor& dy_in) -> std::vector<Tensor> {
        Tensor dy = dy_in.contiguous();
        const float* g = dy.data_f32();
        Tensor dx = Tensor::from_vector(linear_dx(g, Wc.data_f32(), N, I, O), {N, I});
        Shape dW_shape = bug == Bug::WeightGradTransposed ? Shape{I, O} : Shape{O, I};
        Tensor dW = Tensor::from_vector(linear_dW(g, xc.data_f32(), N, I, O), dW_shape);
        int rows_for_db = bug == Bug::BiasFromFirstSampleOnly ? 1 : N;
        Tensor db = Tensor::from_vector(linear_db(g, rows_for_db, O), {O});
        return {dx, dW, db};
    });
}

// %%
// The largest |a - b| over two tensors of the same shape.
double max_diff(const Tensor& a, const Tensor& b) {
    std::vector<float> u = a.to_vector(), v = b.to_vector();
    double worst = 0;
    for (size_t k = 0; k < u.size(); ++k) worst = std::max(worst, (double)std::fabs(u[k] - v[k]));
    return worst;
}

// L = sum(tanh(x W^T + b) * w): a layer with curvature, for the study of the step h.
Tensor tanh_layer_loss(const Tensor& x, const Tensor& W, const Tensor& b, const Tensor& w) {
    return sum(tanh(matmul(x, W.transpose(0, 1)) + b) * w);
}

// (L(W[0][0] + h) - L(W[0][0] - h)) / 2h, nudging W[0][0] in place as gradcheck does.
double central_difference_W00(const Tensor& x, const Tensor& W, const Tensor& b, const Tensor& w, float h) {
    NoGradGuard no_grad;
    float* w00 = W.detach().data_f32();
    float saved = *w00;
    *w00 = saved + h;
    double plus = tanh_layer_loss(x, W, b, w).item();
    *w00 = saved - h;
    double minus = tanh_layer_loss(x, W, b, w).item();
    *w00 = saved;
    return (plus - minus) / (2.0 * h);
}

void print_result(const char* what, const GradcheckResult& r) {
    std::printf("%-36s %s  (largest |analytic - numeric| %.2e)\n", what, r.ok ? "ok  " : "FAIL", r.max_abs_error);
    if (!r.ok) std::printf("    %s\n", r.message.c_str());
}

// %% [markdown]
// ## Loops against the module
//
// A batch of N = 4 inputs with I = 3 features each goes through `nn::Linear(3, 2)`: a
// weight W of shape (2, 3) and a bias b of shape (2), initialised as PyTorch does
// (uniform in plus or minus 1/sqrt(3)). `linear_forward` above is the definition, one
// multiply-add at a time; the module computes the same thing with a `matmul` and a
// broadcast `+`.

// %%
int main() {
    const int N = 4, I = 3, O = 2;
    Generator gen(0);
    nn::Linear lin(I, O, /*bias=*/true, gen);
    Tensor x = randn({N, I}, gen).requires_grad_();
    nb::describe("x", x);
    nb::describe("W = lin.weight", lin.weight);
    nb::describe("b = lin.bias", lin.bias);

    Tensor y = lin(x);
    std::vector<float> y_loops =
        linear_forward(x.data_f32(), lin.weight.data_f32(), lin.bias.data_f32(), N, I, O);
    std::cout << "y = lin(x): " << y << "\n";
    std::printf("largest |loops - module| = %.1e\n", max_diff(Tensor::from_vector(y_loops, {N, O}), y));

// %% [markdown]
// ## The backward, derived
//
// Whatever comes after the layer, all the backward receives is dy = dL/dy, one number per
// output, shape (N, O). Every input of the layer reaches L only through the outputs it
// took part in, so its gradient is a sum over those outputs of dy times the local slope:
//
// - `x[n][i]` appears in `y[n][o]` for every o, with slope `W[o][i]`:
//   `dL/dx[n][i] = sum_o dy[n][o] W[o][i]`, i.e. dx = dy W.
// - `W[o][i]` appears in `y[n][o]` for every sample n, with slope `x[n][i]`:
//   `dL/dW[o][i] = sum_n dy[n][o] x[n][i]`, i.e. dW = dy^T x.
// - `b[o]` appears in `y[n][o]` for every n, with slope 1: `dL/db[o] = sum_n dy[n][o]`.
//
// The pattern to remember: *the index a variable does not carry is summed over*. W has no
// n, so its gradient sums over the batch; b was broadcast over the batch (notebook 01),
// so its gradient is `sum_to` over the batch. And a check that costs nothing: each
// gradient has its variable's shape.
//
// To compare with the engine we need a loss with a known dy. `L = sum(y * G)` for a fixed
// random G has dL/dy = G exactly, so the loops get `dy = G`:

// %%
    Tensor G = randn({N, O}, gen);
    Tensor L = sum(lin(x) * G);
    L.backward();
    const float* dy = G.data_f32();
    Tensor dx = Tensor::from_vector(linear_dx(dy, lin.weight.data_f32(), N, I, O), {N, I});
    Tensor dW = Tensor::from_vector(linear_dW(dy, x.data_f32(), N, I, O), {O, I});
    Tensor db = Tensor::from_vector(linear_db(dy, N, O), {O});
    std::printf("dx: largest |loops - engine| = %.1e\n", max_diff(dx, x.grad()));
    std::printf("dW: largest |loops - engine| = %.1e\n", max_diff(dW, lin.weight.grad()));
    std::printf("db: largest |loops - engine| = %.1e\n", max_diff(db, lin.bias.grad()));
    std::cout << "dW = " << dW << "\n";

// %% [markdown]
// ## A gradient check
//
// Agreeing with the engine proves nothing if both are wrong in the same way. The
// independent witness is the definition of a derivative. `gradcheck(f, inputs)` builds
// `L = sum(f(inputs) * w)` with a fixed random w, gets every dL/d(input) from `backward()`,
// then nudges each input element by plus and minus h and compares with the central
// difference `(L(+h) - L(-h)) / 2h`. It passes when every element satisfies
// `|analytic - numeric| <= atol + rtol * |numeric|` (defaults h = 1e-2, atol = 1e-3,
// rtol = 1e-2: float32 forward passes cannot resolve much finer, see the end).
//
// First on the engine's own ops, written the way `nn::Linear::forward` computes the
// layer; then on `my_linear`, our loops turned into an op by `record()` (top of this file).

// %%
    Tensor x1 = randn({N, I}, gen).requires_grad_();
    Tensor W1 = randn({O, I}, gen).requires_grad_();
    Tensor b1 = randn({O}, gen).requires_grad_();
    GradcheckResult engine = gradcheck(
        [](const std::vector<Tensor>& in) { return matmul(in[0], in[1].transpose(0, 1)) + in[2]; }, {x1, W1, b1});
    print_result("engine: x W^T + b", engine);
    GradcheckResult ours =
        gradcheck([](const std::vector<Tensor>& in) { return my_linear(in[0], in[1], in[2]); }, {x1, W1, b1});
    print_result("my_linear (our loops)", ours);

// %% [markdown]
// ## What a wrong backward looks like
//
// Now a classic mistake: the bias gradient taken from the first sample only, as if b had
// been used once rather than once per sample. (`Bug::BiasFromFirstSampleOnly` in
// `my_linear`: `linear_db` gets 1 row instead of N.)

// %%
    GradcheckResult buggy = gradcheck(
        [](const std::vector<Tensor>& in) { return my_linear(in[0], in[1], in[2], Bug::BiasFromFirstSampleOnly); },
        {x1, W1, b1});
    print_result("my_linear, bias from sample 0 only", buggy);

// %% [markdown]
// Reading the message: *input 2* is the third tensor in the list, b, and *element 0* is
// b[0]; the analytic value (our backward) and the numeric one (finite differences) are
// far apart, not a rounding error away. The inputs 0 and 1 (x and W) passed: the bug is
// in db and nowhere else. That is the point of checking every input separately.
//
// The same bug on a batch of one sample is invisible: with N = 1, "the first sample" is
// the whole batch. Tests of a backward need batches (and channels, and groups) bigger
// than one, or they test less than they seem to.

// %%
    Tensor x_one = randn({1, I}, gen).requires_grad_();
    GradcheckResult one = gradcheck(
        [](const std::vector<Tensor>& in) { return my_linear(in[0], in[1], in[2], Bug::BiasFromFirstSampleOnly); },
        {x_one, W1, b1});
    print_result("the same bug, batch of 1", one);

// %% [markdown]
// A second kind of mistake never reaches a comparison of values: a gradient of the wrong
// *shape*, here dW computed as (I, O), the transpose of W's shape. `backward()` checks
// the shape of every gradient a closure returns and stops with a `td::Error` naming the op
// and the input:

// %%
    try {
        Tensor bad = sum(my_linear(x1, W1, b1, Bug::WeightGradTransposed));
        bad.backward();
    } catch (const Error& e) {
        std::printf("td::Error: %s\n", e.what());
    }

// %% [markdown]
// ## Why h = 1e-2, and not smaller
//
// Calculus says: the smaller h, the better the difference quotient. Float32 says
// otherwise. The central difference has two errors. Its *truncation* error is about
// h^2 f'''/6, which shrinks with h. Its *rounding* error comes from subtracting two
// nearly equal losses, each carrying a relative error of about 6e-8 (float32 epsilon);
// divided by 2h, that error grows like 1/h. Their sum is smallest in between. Here is the
// error of the central difference for dL/dW[0][0] of `tanh(x W^T + b)` (tanh gives the
// curvature that a linear layer alone lacks) against the exact backward, over h from
// 10^-0.5 down to 10^-6:

// %%
    Tensor W2 = W1.detach().clone().requires_grad_();
    Tensor w = randn({N, O}, gen);
    tanh_layer_loss(x1.detach(), W2, b1.detach(), w).backward();
    double analytic = W2.grad().to_vector()[0];
    std::vector<float> minus_log_h, log_err;
    for (int k = 0; k <= 22; ++k) {
        double e = -0.5 - 0.25 * k;  // log10 h
        double numeric = central_difference_W00(x1.detach(), W2, b1.detach(), w, (float)std::pow(10.0, e));
        double err = std::fabs(numeric - analytic);
        minus_log_h.push_back((float)-e);
        log_err.push_back((float)std::log10(std::max(err, 1e-12)));
        if (k % 2 == 0)
            std::printf("h = 1e%+.1f   numeric %+.7f   analytic %+.7f   error %.1e\n", e, numeric, analytic, err);
    }
    char caption[256];
    std::snprintf(caption, sizeof caption,
                  "log10 |numeric - analytic| (up, from %.1f to %.1f) against h (across, from 10^-0.5 on the left "
                  "down to 10^-6 on the right): truncation error on the left, float32 rounding on the right",
                  *std::min_element(log_err.begin(), log_err.end()), *std::max_element(log_err.begin(), log_err.end()));
    nb::show_plot(NB, "h-sweep.png", {{minus_log_h, log_err, 0x1f77b4}}, caption);

// %% [markdown]
// The error falls like h^2 while truncation dominates (ten times smaller for every half
// decade of h), bottoms out between about h = 1e-2 and 1e-3, then climbs again, roughly
// like 1/h and noisily, as rounding takes over: at h = 1e-6 the "derivative" is mostly
// noise. So gradcheck uses h = 1e-2 and a tolerance of about 1e-3, enough to catch the
// bugs above (errors of order 1) and loose enough not to flag float32's own rounding.
// (In double precision the same sweep bottoms out near h = 1e-5 with errors around
// 1e-10; this is why PyTorch's gradcheck wants float64 inputs.)
//
// ## The same check, on a harder layer
//
// Nothing above was special to Linear: `gradcheck` takes any function of tensors. Here it
// is on the engine's GroupNorm (`tensor/ops/norm.cpp`), the normalisation inside every
// UNet block, whose backward (`group_norm_backward` in `tensor/cpu/norm.cpp`) is longer
// than Linear's because every output depends on every input of its group through the
// group's mean and variance. Writing that backward yourself is a course assignment:
// `make assignment NAME=groupnorm-backward`, graded by checks like this one.

// %%
    Tensor xg = randn({2, 4, 3, 3}, gen).requires_grad_();
    Tensor gamma = rand({4}, gen, 0.5f, 1.5f).requires_grad_();
    Tensor beta = randn({4}, gen).requires_grad_();
    GradcheckResult gn = gradcheck(
        [](const std::vector<Tensor>& in) { return group_norm(in[0], 2, in[1], in[2]); }, {xg, gamma, beta});
    print_result("engine: group_norm, 2 groups", gn);
    return 0;
}

// %% [markdown]
// ## What's next
//
// We now have tensors (01), gradients (02) and a way to trust them (03): everything a
// training step needs. Notebook 04 leaves the engine's internals for diffusion itself, the
// forward process that turns a digit into noise.
