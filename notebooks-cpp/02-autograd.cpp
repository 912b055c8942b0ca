// %% [markdown]
// # 02 Autograd: the chain rule by hand, then by the engine
//
// Gradients by the chain rule, for a network small enough for pencil and paper: by hand,
// then by the engine's `backward()`, then a look at the graph the engine records.
//
// Training a diffusion model means nudging every parameter theta against dL/dtheta, the
// rate at which the loss L changes when theta changes. A UNet has hundreds of thousands of
// parameters and each step needs all of their gradients; reverse-mode automatic
// differentiation gets them all in one backward sweep, costing a small multiple (about
// two) of the forward pass. It is nothing but the chain rule, applied mechanically and
// backwards.
//
// This notebook does it twice on a tiny network: first by hand, in plain floats, one
// line per step of the chain rule; then with the engine's `backward()`, and the two must
// agree. Then we look at what the engine recorded to get there, and at the three rules
// that surprise people (gradients add up, a graph is used once, and `NoGradGuard`).
//
// Read along: `autograd/node.h` (the graph), `autograd/engine.cpp` (`record` and
// `backward`), and any op in `tensor/ops/`, whose backward sits right beside its forward.

// %%
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <map>
#include <string>

#include "autograd/graph_dot.h"
#include "notebooks-cpp/notebook.h"

using namespace td;

const char* NB = "02-autograd";

// %% [markdown]
// The network of this notebook, in plain floats: its 13 parameters, and a forward pass
// that keeps every intermediate value. (The cell after it holds helpers that print.)

// %%
// The network: 2 inputs -> 3 tanh units -> 1 output, 13 parameters.
struct Params {
    float W1[3][2], b1[3], w2[3], b2;
};

// Everything the forward pass computes; the backward pass needs z and h again.
struct Forward {
    float z[3], h[3], y, L;
};

// z = W1 x + b1,  h = tanh(z),  y = w2 . h + b2,  L = (y - target)^2
Forward forward(const Params& p, const float x[2], float target) {
    Forward f;
    f.y = p.b2;
    for (int j = 0; j < 3; ++j) {
        f.z[j] = p.W1[j][0] * x[0] + p.W1[j][1] * x[1] + p.b1[j];
        f.h[j] = std::tanh(f.z[j]);
        f.y += p.w2[j] * f.h[j];
    }
    f.L = (f.y - target) * (f.y - target);
    return f;
}

// %%
// Prints a function of the engine's own source, from the line that contains `first`
// to the line "}" that closes it: the code as it is today, not a copy that could age.
void show_source(const std::string& file, const std::string& first, int max_lines = 20) {
    std::ifstream in(file);
    std::string line;
    bool on = false;
    int n = 0;
    while (std::getline(in, line) && n < max_lines) {
        if (!on && line.find(first) != std::string::npos) on = true;
        if (!on) continue;
        std::printf("%s:  %s\n", file.c_str(), line.c_str());
        ++n;
        if (line == "}" || line.find("; });") != std::string::npos) break;
    }
    if (!on) std::printf("(%s: no line holds \"%s\")\n", file.c_str(), first.c_str());
}

// The graph behind t as an indented tree: one line per op (its name and output shape),
// leaves at the bottom, named when `names` knows them.
void print_graph(const Tensor& t, const std::map<const TensorImpl*, std::string>& names, int depth = 0) {
    std::string indent(2 * depth, ' ');
    if (!t.grad_fn()) {
        auto it = names.find(t.impl());
        std::string name = it != names.end() ? it->second : t.requires_grad() ? "leaf" : "const";
        std::printf("%s%s %s%s\n", indent.c_str(), name.c_str(), shape_str(t.shape()).c_str(),
                    t.requires_grad() ? "  (leaf, requires grad)" : "  (constant)");
        return;
    }
    std::printf("%s%s -> %s\n", indent.c_str(), t.grad_fn()->name.c_str(), shape_str(t.shape()).c_str());
    for (const Tensor& in : t.grad_fn()->inputs)
        if (in.defined()) print_graph(in, names, depth + 1);
}

// The engine's gradient beside the hand-made one, and their largest difference.
void compare(const char* name, const Tensor& engine, const float* by_hand, int n) {
    std::vector<float> e = engine.to_vector();
    double worst = 0;
    std::printf("%-4s engine: ", name);
    for (int k = 0; k < n; ++k) std::printf(" %+.6f", e[k]);
    std::printf("\n     by hand:");
    for (int k = 0; k < n; ++k) {
        std::printf(" %+.6f", by_hand[k]);
        worst = std::max(worst, (double)std::fabs(e[k] - by_hand[k]));
    }
    std::printf("\n     largest difference %.1e\n", worst);
}

// %% [markdown]
// ## The network, in plain floats
//
// `forward` above computes, for one input x = (x_0, x_1) and a target:
//
// - `z = W1 x + b1` (3 numbers), `h = tanh(z)`,
// - `y = w2 . h + b2` (one number), `L = (y - target)^2`.
//
// The parameters are fixed numbers, so anyone can redo the arithmetic.

// %%
int main() {
    Params p = {{{0.1f, -0.3f}, {0.8f, 0.2f}, {-0.5f, 0.4f}}, {0.0f, 0.1f, -0.2f}, {0.7f, -0.6f, 0.3f}, 0.05f};
    const float x[2] = {0.5f, -1.0f}, target = 0.25f;
    Forward f = forward(p, x, target);
    std::printf("z = (%+.6f, %+.6f, %+.6f)\n", f.z[0], f.z[1], f.z[2]);
    std::printf("h = (%+.6f, %+.6f, %+.6f)\n", f.h[0], f.h[1], f.h[2]);
    std::printf("y = %+.6f   target = %.2f   L = %.6f\n", f.y, target, f.L);

// %% [markdown]
// ## Backward, by hand
//
// Walk the forward pass in reverse. At each step, the gradient that has arrived (dL with
// respect to that step's output) is multiplied by the step's *local* derivative:
//
// 1. `L = (y - target)^2` gives `dL/dy = 2 (y - target)`.
// 2. `y = sum_j w2_j h_j + b2` gives `dL/dw2_j = dL/dy * h_j`, `dL/db2 = dL/dy`, and
//    `dL/dh_j = dL/dy * w2_j`.
// 3. `h = tanh(z)` gives `dL/dz_j = dL/dh_j * (1 - h_j^2)`, since tanh' = 1 - tanh^2:
//    the backward reuses h, which the forward computed. That is why training keeps the
//    activations in memory.
// 4. `z = W1 x + b1` gives `dL/dW1_jk = dL/dz_j * x_k` and `dL/db1_j = dL/dz_j`.

// %%
    float dy = 2 * (f.y - target);                                      // step 1
    float dw2[3], dh[3], dz[3], dW1[3][2], db1[3], db2 = dy;
    for (int j = 0; j < 3; ++j) {
        dw2[j] = dy * f.h[j];                                           // step 2
        dh[j] = dy * p.w2[j];
        dz[j] = dh[j] * (1 - f.h[j] * f.h[j]);                          // step 3
        dW1[j][0] = dz[j] * x[0];                                       // step 4
        dW1[j][1] = dz[j] * x[1];
        db1[j] = dz[j];
    }
    std::printf("dL/dy  = %+.6f\n", dy);
    std::printf("dL/dw2 = (%+.6f, %+.6f, %+.6f)   dL/db2 = %+.6f\n", dw2[0], dw2[1], dw2[2], db2);
    std::printf("dL/dW1 = ((%+.6f, %+.6f), (%+.6f, %+.6f), (%+.6f, %+.6f))\n", dW1[0][0], dW1[0][1], dW1[1][0],
                dW1[1][1], dW1[2][0], dW1[2][1]);
    std::printf("dL/db1 = (%+.6f, %+.6f, %+.6f)\n", db1[0], db1[1], db1[2]);

// %% [markdown]
// A quick sanity check of one of them, without any calculus: nudge `W1[1][0]` up and down
// by a small h, run the forward again, and take the slope of the loss,
// `(L(w + h) - L(w - h)) / (2h)`. It should match `dL/dW1[1][0]` to a few digits (notebook 03
// turns this into a systematic check).

// %%
    const float h = 1e-3f;
    Params up = p, down = p;
    up.W1[1][0] += h;
    down.W1[1][0] -= h;
    double slope = (forward(up, x, target).L - forward(down, x, target).L) / (2.0 * h);
    std::printf("finite difference: %+.6f   chain rule: %+.6f\n", slope, dW1[1][0]);

// %% [markdown]
// ## The same network in the engine
//
// Now the same numbers as tensors. The parameters are *leaves* marked
// `requires_grad_()`; the input and the target are plain tensors. The code is the
// forward pass only: the engine works out the backward by itself. Following `nn::Linear`,
// x is a row (1, 2) and a layer computes `x W^T + b`.

// %%
    Tensor X = Tensor::from_vector({x[0], x[1]}, {1, 2});
    Tensor W1 = Tensor::from_vector({p.W1[0][0], p.W1[0][1], p.W1[1][0], p.W1[1][1], p.W1[2][0], p.W1[2][1]}, {3, 2})
                    .requires_grad_();
    Tensor b1 = Tensor::from_vector({p.b1[0], p.b1[1], p.b1[2]}, {3}).requires_grad_();
    Tensor w2 = Tensor::from_vector({p.w2[0], p.w2[1], p.w2[2]}, {1, 3}).requires_grad_();
    Tensor b2 = Tensor::from_vector({p.b2}, {1}).requires_grad_();

    Tensor z = matmul(X, W1.transpose(0, 1)) + b1;      // (1, 3)
    Tensor hid = tanh(z);
    Tensor y = matmul(hid, w2.transpose(0, 1)) + b2;    // (1, 1)
    Tensor L = sum(pow(y - target, 2.0f));              // a 0-d tensor
    std::cout << "L = " << L << "\n";

// %% [markdown]
// The loss prints `grad_fn=sum`: the engine remembers that `L` came out of a `sum`. Each
// op, as it ran, called `record()` (`autograd/engine.cpp`): when grad mode is on and some
// input requires grad, it hangs a `Node` on the output holding the op's name, its inputs,
// and a *backward closure* that maps dL/d(output) to dL/d(each input). Following `grad_fn`
// from `L` down to the leaves gives the whole graph:

// %%
    std::map<const TensorImpl*, std::string> names =
        leaf_names_of({{"W1", W1}, {"b1", b1}, {"w2", w2}, {"b2", b2}, {"x", X}});
    print_graph(L, names);

// %% [markdown]
// Read it bottom up and it is the forward pass: the transpose of W1 (recorded as
// `permute`, the general op of which a transpose is one case), `matmul` with x, `add` of
// b1, `tanh`, and so on. `y - target` shows up as `add_scalar` (adding -0.25), and
// `pow(., 2)` as `pow_scalar`. `autograd/graph_dot.h` writes the same graph for Graphviz
// (`diffuse trace --graph` does this for a whole UNet); when `dot` is installed, here it
// is as a picture, drawn top to bottom as the forward ran:

// %%
    std::string dot_path = nb::out_dir(NB) + "/graph.dot";
    std::ofstream(dot_path) << graph_to_dot(L, names);
    std::string png = "graph.png";
    std::string cmd = "dot -Tpng -Gdpi=110 '" + dot_path + "' -o '" + nb::out_dir(NB) + "/" + png + "' 2>/dev/null";
    if (std::system(cmd.c_str()) == 0)
        nb::announce_image(png, "the autograd graph of L: boxes are ops (name, output shape), ellipses leaves");
    else
        std::printf("(Graphviz's dot is not installed: the graph is in %s)\n", dot_path.c_str());

// %% [markdown]
// Every closure is written by hand, right beside its op's forward. Here are two of them,
// printed from the engine's source files as they are today. `mul`'s closure applies the
// product rule, and `sum_to` (notebook 01) folds a broadcast gradient back to each input's
// shape. `tanh` shares a generic closure; its local derivative is one line of the CPU
// kernels:

// %%
    show_source("tensor/ops/elementwise.cpp", "Tensor mul(const Tensor& a, const Tensor& b) {");
    std::printf("\n");
    show_source("tensor/cpu/elementwise.cpp", "case UnaryOp::Tanh: return map_binary", 2);

// %% [markdown]
// ## backward()
//
// `L.backward()` seeds dL/dL = 1 and visits the nodes in reverse topological order, so that
// a node runs only after every op that consumed its output has handed its gradient in. Each
// closure's results go either to the node that produced that input (to be summed with the
// gradients from its other consumers) or, for a leaf, into its `.grad()`. The engine's
// numbers against the hand-made ones:

// %%
    L.backward();
    compare("W1", W1.grad(), &dW1[0][0], 6);
    compare("b1", b1.grad(), db1, 3);
    compare("w2", w2.grad(), dw2, 3);
    compare("b2", b2.grad(), &db2, 1);

// %% [markdown]
// They agree to float32 rounding. Note `b1`: it was added to a (1, 3) row as a (3)
// vector, so `add`'s closure summed the gradient back to shape (3) with `sum_to`. Here
// the sum has a single term, but with a batch of 64 inputs it would add up 64 of them.
//
// ## Rule 1: a tensor used twice gets the sum of both gradients
//
// In `f = a * a + a`, `a` feeds three inputs (both sides of the `mul` and one side of
// the `add`). The chain rule says each use contributes, so f'(a) = 2a + 1 = 7 at a = 3.
// The engine adds the gradients from all consumers before it moves on (in `backward()`,
// and into `.grad` for a leaf):

// %%
    Tensor a = Tensor::from_vector({3.0f}, {1}).requires_grad_();
    Tensor fa = a * a + a;
    fa.backward();
    std::printf("f(3) = %g, df/da = %g (2a + 1 = 7)\n", fa.item(), a.grad().item());

// %% [markdown]
// The same rule makes `.grad` *accumulate* across calls: run another backward through
// `a` and its gradient grows. That is why training loops call `zero_grad()` before each
// step (and why gradient accumulation over several small batches works for free).
//
// ## Rule 2: a graph is used once
//
// As `backward()` passes a node, it frees the node's closure and the tensors it saved
// (activations are most of the memory a training step needs). A second `backward()`
// through the same graph cannot work, and the engine says so instead of giving wrong
// numbers:

// %%
    Tensor g = a * a;
    g.backward();
    std::printf("after one more backward through a*a, a.grad() = %g (7 + 6)\n", a.grad().item());
    try {
        g.backward();
    } catch (const Error& e) {
        std::printf("td::Error: %s\n", e.what());
    }

// %% [markdown]
// ## Rule 3: no gradient needed, no graph
//
// Sampling from a trained model, evaluating it, and the optimizer's own update need no
// gradients. Inside a `NoGradGuard` scope, `record()` does nothing: no nodes, no saved
// tensors, and the result is a plain tensor.

// %%
    {
        NoGradGuard no_grad;
        Tensor q = W1 * 2.0f;
        std::printf("under NoGradGuard: requires_grad %s, grad_fn %s\n", q.requires_grad() ? "yes" : "no",
                    q.grad_fn() ? q.grad_fn()->name.c_str() : "none");
    }
    Tensor q = W1 * 2.0f;
    std::printf("outside it:        requires_grad %s, grad_fn %s\n", q.requires_grad() ? "yes" : "no",
                q.grad_fn() ? q.grad_fn()->name.c_str() : "none");
    return 0;
}

// %% [markdown]
// ## What's next
//
// The engine's gradients are only as right as the closures written by hand in
// `tensor/ops/`. Notebook 03 writes one such closure for a whole layer, `Linear`, and
// then tests it the way every op in the engine is tested: against finite differences,
// with `autograd/gradcheck.h`.
