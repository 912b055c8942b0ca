// autograd/graph_dot.cpp: see graph_dot.h.
#include "autograd/graph_dot.h"

#include <cstdio>
#include <sstream>
#include <unordered_map>

#include "autograd/node.h"

namespace td {

namespace {

// A dot string literal: quotes and backslashes escaped, a newline as dot's line break (backslash n).
std::string quoted(const std::string& s) {
    std::string out = "\"";
    for (char c : s) {
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        if (c == '"' || c == '\\') out += '\\';
        out += c;
    }
    return out + "\"";
}

// Collects the text as the walk discovers things: declarations first, edges after,
// both in discovery order, so the output does not depend on pointer values.
class DotWriter {
public:
    DotWriter(const std::map<const TensorImpl*, std::string>& names) : names_(names) {}

    // The id of an op node, declaring it the first time; `fresh` says whether it was new.
    std::string op(const Node* node, bool is_root, bool* fresh) {
        auto [it, inserted] = ids_.try_emplace(node, next_id());
        *fresh = inserted;
        if (inserted) {
            ++counts.ops;
            decls_ << "  " << it->second << " [shape=box, style=\"filled" << (is_root ? ",bold" : "")
                   << "\", fillcolor=\"#dbe8f6\", label=" << quoted(node->name + "\n" + shape_str(node->output_shape))
                   << "];\n";
        }
        return it->second;
    }

    // The id of a leaf (a tensor no recorded op produced), declaring it the first time.
    std::string leaf(const Tensor& t) {
        auto [it, inserted] = ids_.try_emplace(t.impl(), next_id());
        if (!inserted) return it->second;
        std::string shape = shape_str(t.shape());
        auto named = names_.find(t.impl());
        if (t.requires_grad()) {
            ++counts.params;
            std::string label = (named != names_.end() ? named->second : std::string("leaf")) + "\n" + shape;
            decls_ << "  " << it->second
                   << " [shape=ellipse, style=filled, fillcolor=\"#fdf1c7\", label=" << quoted(label) << "];\n";
        } else {  // an input the gradient does not flow into: data, t, a target, a mask
            ++counts.constants;
            std::string label = (named != names_.end() ? named->second : std::string("const")) +
                                (t.dtype() == DType::Int64 ? " int64" : "") + "\n" + shape;
            decls_ << "  " << it->second
                   << " [shape=ellipse, style=dashed, color=gray40, fontcolor=gray30, label=" << quoted(label)
                   << "];\n";
        }
        return it->second;
    }

    void edge(const std::string& from, const std::string& to) {
        ++counts.edges;
        edges_ << "  " << from << " -> " << to << ";\n";
    }

    std::string text(const std::string& root_name) const {
        std::ostringstream os;
        os << "// autograd graph of " << root_name << ": " << counts.ops << " ops, " << counts.params << " parameters, "
           << counts.constants << " constants, " << counts.edges << " edges\n"
           << "// render: dot -Tsvg graph.dot > graph.svg\n"
           << "digraph autograd {\n"
           << "  rankdir=TB;\n"
           << "  node [fontname=\"Helvetica\", fontsize=9, height=0.25, margin=\"0.06,0.03\"];\n"
           << "  edge [arrowsize=0.5, color=gray30];\n"
           << decls_.str() << edges_.str() << "}\n";
        return os.str();
    }

    GraphCounts counts;

private:
    std::string next_id() {  // (snprintf, not "n" + to_string: GCC 12 warns falsely on that)
        char buf[32];
        std::snprintf(buf, sizeof buf, "n%zu", ids_.size());
        return buf;
    }
    const std::map<const TensorImpl*, std::string>& names_;
    std::unordered_map<const void*, std::string> ids_;  // Node* or TensorImpl* -> "n7"
    std::ostringstream decls_, edges_;
};

}  // namespace

std::string graph_to_dot(const Tensor& root, const std::map<const TensorImpl*, std::string>& leaf_names,
                         GraphCounts* counts) {
    DotWriter w(leaf_names);
    std::string root_name = "an undefined tensor";
    if (root.defined() && !root.grad_fn()) {  // a leaf alone: one ellipse
        w.leaf(root);
        root_name = "a leaf";
    } else if (root.defined()) {
        const Node* top = root.grad_fn().get();
        root_name = top->name + " " + shape_str(top->output_shape);
        bool fresh = false;
        w.op(top, /*is_root=*/true, &fresh);
        // Depth-first, the same walk as autograd/engine.cpp: (node, next input to visit).
        std::vector<std::pair<const Node*, size_t>> stack{{top, 0}};
        while (!stack.empty()) {
            const Node* node = stack.back().first;
            size_t next = stack.back().second++;
            if (next >= node->inputs.size()) {
                stack.pop_back();
                continue;
            }
            const Tensor& in = node->inputs[next];
            if (!in.defined()) continue;  // an optional input left out (a conv without bias)
            std::string to = w.op(node, false, &fresh);
            if (const Node* child = in.grad_fn().get()) {
                std::string from = w.op(child, false, &fresh);
                w.edge(from, to);
                if (fresh) stack.push_back({child, 0});
            } else {
                w.edge(w.leaf(in), to);
            }
        }
    }
    if (counts) *counts = w.counts;
    return w.text(root_name);
}

std::map<const TensorImpl*, std::string> leaf_names_of(const std::vector<std::pair<std::string, Tensor>>& named) {
    std::map<const TensorImpl*, std::string> out;
    for (const auto& [name, t] : named)
        if (t.defined()) out[t.impl()] = name;
    return out;
}

}  // namespace td
