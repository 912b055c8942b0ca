// autograd/node.h: the graph that define-by-run autograd builds as ops run.
//
// Every differentiable op, after computing its output y from inputs (x0, x1, ...),
// calls record(). If grad mode is on and some input requires grad, record() hangs a
// Node on y: the op's name, its inputs, and a closure that maps dL/dy to
// (dL/dx0, dL/dx1, ...). That closure is written by hand next to the op's forward
// (micrograd's idea: each op states its local derivative where it is created).
// backward() (autograd/engine.cpp) walks these nodes from the loss back to the leaves.
//
// Rule for closures: capture inputs as they are, but capture the op's *output* only
// through y.detach(); capturing y itself would make y -> node -> closure -> y, a cycle
// that never frees.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace td {

// Maps dL/d(output) to one gradient per input; an undefined Tensor where an input
// needs none (it does not require grad, or is an index).
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
    std::string name;            // "mul", "matmul", ... (shows in errors and graph dumps)
    std::vector<Tensor> inputs;  // the op's inputs, in the order backward returns grads; one made by
                                 // another op is kept as an edge: shape and grad_fn, no data (engine.cpp)
    BackwardFn backward;         // cleared after backward() unless retain_graph
    Shape output_shape;          // to check what flows in and out
};

// Attaches a Node to `output` when grad mode is on and some input requires grad.
// Returns `output` so an op can end with `return record(...)`.
Tensor record(const char* name, Tensor output, std::vector<Tensor> inputs, BackwardFn backward);

// Grad mode: on by default; NoGradGuard turns it off for its scope (evaluation,
// optimizer updates, and inside backward closures themselves).
bool grad_mode_enabled();
class NoGradGuard {
public:
    NoGradGuard();
    ~NoGradGuard();
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool previous_;
};

// Reverse-mode sweep from `root` (see engine.cpp). grad_root defaults to 1 for a
// one-element root; anything else needs an explicit grad of root's shape.
void backward(const Tensor& root, const Tensor& grad_root = Tensor(), bool retain_graph = false);

}  // namespace td
