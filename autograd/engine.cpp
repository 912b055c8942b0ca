// autograd/engine.cpp: record() builds the graph during the forward pass;
// backward() walks it once in reverse topological order.
#include <unordered_map>
#include <unordered_set>

#include "autograd/node.h"
#include "tensor/error.h"
#include "tensor/ops.h"

namespace td {

static thread_local bool g_grad_mode = true;

bool grad_mode_enabled() { return g_grad_mode; }
NoGradGuard::NoGradGuard() : previous_(g_grad_mode) { g_grad_mode = false; }
NoGradGuard::~NoGradGuard() { g_grad_mode = previous_; }

// The storage of a graph edge (below): no data. A fresh one per edge, freed with the
// graph (one shared per device would outlive every graph, and a device's allocator
// would count it as still in use).
static std::shared_ptr<Storage> no_data(Device device) { return std::make_shared<Storage>(device, 0); }

// What the graph keeps of an op's input. The sweep needs, of an input made by another
// op, only its shape, device and grad_fn; its data is what the closure chose to save.
// Holding the whole tensor here would keep every intermediate of the forward pass alive
// until the backward reached it (a ResBlock's conv1 output, the sum before a norm, ...),
// whether or not any backward needs its values. So such an input becomes an edge: a
// tensor of the same shape and grad_fn whose storage holds no data. Leaves stay as they
// are: a parameter's .grad is filled through its own TensorImpl, and graph dumps name
// parameters and constants by that pointer.
static Tensor graph_edge(const Tensor& x) {
    if (!x.defined() || !x.impl()->grad_fn) return x;
    auto e = std::make_shared<TensorImpl>();
    e->storage = no_data(x.device());
    e->shape = x.shape();
    e->strides = x.strides();
    e->dtype = x.dtype();
    e->requires_grad = x.requires_grad();
    e->grad_fn = x.impl()->grad_fn;
    return Tensor(e);
}

Tensor record(const char* name, Tensor output, std::vector<Tensor> inputs, BackwardFn backward_fn) {
    if (!grad_mode_enabled()) return output;
    bool any = false;
    for (const Tensor& x : inputs) any = any || (x.defined() && x.requires_grad());
    if (!any) return output;
    auto node = std::make_shared<Node>();
    node->name = name;
    for (Tensor& x : inputs) x = graph_edge(x);
    node->inputs = std::move(inputs);
    node->backward = std::move(backward_fn);
    node->output_shape = output.shape();
    output.impl()->requires_grad = true;
    output.impl()->grad_fn = node;
    return output;
}

// Nodes reachable from `root`, ordered so that every node comes before the nodes of
// its inputs (reverse topological order): iterative post-order DFS, then reversed.
// Iterative rather than recursive so a graph thousands of ops deep cannot overflow
// the stack. The list holds shared_ptrs: freeing a node's inputs during the sweep
// would otherwise free the nodes further down that are still to be visited.
static std::vector<std::shared_ptr<Node>> reverse_topological_order(const std::shared_ptr<Node>& root) {
    std::vector<std::shared_ptr<Node>> post;
    std::unordered_set<Node*> seen{root.get()};
    std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};  // (node, next input to visit)
    while (!stack.empty()) {
        Node* node = stack.back().first.get();
        size_t next = stack.back().second++;
        if (next < node->inputs.size()) {
            const Tensor& in = node->inputs[next];
            std::shared_ptr<Node> child = in.defined() ? in.impl()->grad_fn : nullptr;
            if (child && seen.insert(child.get()).second) stack.push_back({child, 0});
        } else {
            post.push_back(stack.back().first);
            stack.pop_back();
        }
    }
    return {post.rbegin(), post.rend()};
}

// Gradients flowing into one node from several consumers add up. Out of place: the
// first gradient may be a tensor another input also holds (add's backward hands the
// same dL/dy to both of its inputs).
static void accumulate_pending(std::shared_ptr<TensorImpl>& slot, const Tensor& g) {
    slot = slot ? add(Tensor(slot), g).impl_ptr() : g.impl_ptr();
}

// A leaf's .grad is its own memory, so an optimizer may scale it in place and repeated
// backward() calls accumulate into it. The first gradient is taken as it is when nothing
// else can see it (its only handle is the one backward() holds, it owns its storage),
// and cloned otherwise (add's backward hands the same tensor to both inputs).
static void accumulate_leaf(TensorImpl* leaf, const Tensor& g) {
    bool private_tensor = g.impl_ptr().use_count() == 1 && g.impl()->storage.use_count() == 1 && !g.is_view() &&
                          g.is_contiguous() && g.offset() == 0;
    if (!leaf->grad) leaf->grad = private_tensor ? g.impl_ptr() : g.clone().impl_ptr();
    else Tensor(leaf->grad).add_(g);
}

void backward(const Tensor& root, const Tensor& grad_root, bool retain_graph) {
    check(root.defined(), "backward: called on an undefined tensor");
    check(root.requires_grad(), "backward: the tensor does not require grad (no op on its path had an input ",
          "with requires_grad, or it was computed under NoGradGuard)");
    Tensor seed = grad_root;
    if (!seed.defined()) {
        check(root.numel() == 1, "backward: root of shape ", root.shape(),
              " is not a scalar; pass grad_output of the same shape");
        seed = ones(root.shape(), root.device());  // dL/dL = 1, where the root lives
    }
    check(seed.shape() == root.shape(), "backward: grad_output shape ", seed.shape(),
          " does not match the root's shape ", root.shape());
    check(seed.device() == root.device(), "backward: grad_output is on ", device_name(seed.device()), ", the root on ",
          device_name(root.device()));

    NoGradGuard no_grad;  // backward closures compute with plain (unrecorded) ops
    std::shared_ptr<Node> root_node = root.impl()->grad_fn;
    if (!root_node) {  // backward on a leaf: its gradient is the seed itself
        accumulate_leaf(root.impl(), seed);
        return;
    }
    std::unordered_map<Node*, std::shared_ptr<TensorImpl>> pending;  // dL/d(node's output)
    pending[root_node.get()] = seed.impl_ptr();

    for (const std::shared_ptr<Node>& node : reverse_topological_order(root_node)) {
        auto it = pending.find(node.get());
        if (it == pending.end()) continue;  // no gradient reached this node
        Tensor grad_out(it->second);
        pending.erase(it);
        check(bool(node->backward), "backward: the graph through '", node->name,
              "' was already freed; call backward(grad, /*retain_graph=*/true) the first time");
        std::vector<Tensor> grads = node->backward(grad_out);
        check(grads.size() == node->inputs.size(), "backward of '", node->name, "' returned ", grads.size(),
              " gradients for ", node->inputs.size(), " inputs");
        for (size_t i = 0; i < grads.size(); ++i) {
            const Tensor& in = node->inputs[i];
            if (!in.defined() || !in.requires_grad() || !grads[i].defined()) continue;
            check(grads[i].shape() == in.shape(), "backward of '", node->name, "': gradient for input ", i,
                  " has shape ", grads[i].shape(), " but the input has shape ", in.shape());
            // A gradient lives where its input lives: a backward that made it elsewhere (a
            // zeros() on the CPU for a GPU input) is a bug in that op, named here.
            check(grads[i].device() == in.device(), "backward of '", node->name, "': gradient for input ", i, " is on ",
                  device_name(grads[i].device()), " but the input is on ", device_name(in.device()));
            Node* parent = in.impl()->grad_fn.get();
            if (parent) accumulate_pending(pending[parent], grads[i]);
            else accumulate_leaf(in.impl(), grads[i]);  // a leaf: into .grad
        }
        if (!retain_graph) {  // free what the closure saved; the tensors' memory goes with it
            node->backward = nullptr;
            node->inputs.clear();
        }
    }
}

}  // namespace td
