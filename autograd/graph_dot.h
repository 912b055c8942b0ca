// autograd/graph_dot.h: the autograd graph behind a tensor, as Graphviz dot text.
//
// The graph autograd records while the forward runs (autograd/node.h) is normally seen
// only by backward(). graph_to_dot() writes it out so it can be looked at:
//
//   Tensor loss = l_simple(model.forward(x_t, t), eps);
//   std::ofstream("graph.dot") << graph_to_dot(loss, leaf_names_of(model.named_parameters()));
//   // then: dot -Tsvg graph.dot > graph.svg
//
//   boxes      one per op (Node): its name and output shape, e.g. "conv2d\n[4, 8, 28, 28]"
//   ellipses   leaves: parameters (named when leaf_names has them; else "leaf") and
//              inputs that need no gradient (dashed, "const": x_t, t, the target, ...)
//   edges      input -> op, so the picture reads top to bottom as the forward ran
//
// Call it before backward(): backward frees each node's inputs as it goes (unless
// retain_graph), and a freed graph ends at the root.
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tensor/tensor.h"

namespace td {

struct GraphCounts {
    int64_t ops = 0;        // boxes (autograd nodes)
    int64_t params = 0;     // leaves that require grad
    int64_t constants = 0;  // leaves that do not
    int64_t edges = 0;
};

// Deterministic: nodes get ids n0, n1, ... in the order a depth-first walk from the
// root discovers them (inputs in the order the op lists them), so the same forward
// gives the same text. Iterative, like backward(): a deep graph cannot overflow the stack.
std::string graph_to_dot(const Tensor& root, const std::map<const TensorImpl*, std::string>& leaf_names = {},
                         GraphCounts* counts = nullptr);

// The map graph_to_dot wants, from a module's named_parameters() ("down.0.conv1.weight", ...);
// the type is nn::NamedTensors, spelled out so autograd/ does not depend on nn/.
std::map<const TensorImpl*, std::string> leaf_names_of(const std::vector<std::pair<std::string, Tensor>>& named);

}  // namespace td
