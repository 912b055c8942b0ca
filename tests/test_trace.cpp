// tests/test_trace.cpp: stepping through the engine: td::Trace records a training step's
// and a sampling step's tensors in order, graph_to_dot writes the autograd graph, and
// `diffuse trace train|sample` on a tiny run prints the table and writes its files.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <tuple>

#include <sys/wait.h>

#include "autograd/graph_dot.h"
#include "autograd/trace.h"
#include "diffusion/sampler.h"
#include "diffusion/trainer.h"
#include "nn/linear.h"
#include "nn/safetensors.h"
#include "tests/helpers.h"
#include "tests/synthetic_data.h"

using namespace td;
using namespace td::diffusion;

namespace {

Dataset bars(int n, int size) { return tdtest::bars_dataset(n, size); }
ModelInfo tiny_model() { return tdtest::tiny_ddpm(20); }

std::vector<std::string> names_of(const std::vector<TraceEntry>& entries) {
    std::vector<std::string> out;
    for (const TraceEntry& e : entries) out.push_back(e.name);
    return out;
}

// Position of `name` in `names`, or -1.
int64_t index_of(const std::vector<std::string>& names, const std::string& name) {
    auto it = std::find(names.begin(), names.end(), name);
    return it == names.end() ? -1 : (int64_t)(it - names.begin());
}

}  // namespace

TEST_CASE("a Trace records one training step's tensors, in order, with their equations") {
    CHECK_FALSE(tracing());
    Dataset d = bars(16, 8);
    TrainOptions to;
    to.batch_size = 4;
    DdpmTrainer trainer(tiny_model(), to, d);
    std::vector<TraceEntry> entries;
    {
        Trace tr;
        CHECK(tracing());
        trainer.step();
        entries = std::move(tr.entries);
    }
    CHECK_FALSE(tracing());
    std::vector<std::string> n = names_of(entries);
    INFO("recorded: " << [&] {
        std::string s;
        for (auto& x : n) s += x + " ";
        return s;
    }());
    // Algorithm 1's tensors in the order it makes them, and the UNet's inside the step
    std::vector<std::string> algo = {"x_0", "t", "eps", "x_t", "model_output", "target", "loss"};
    for (size_t i = 0; i < algo.size(); ++i) {
        REQUIRE(index_of(n, algo[i]) >= 0);
        if (i > 0) CHECK(index_of(n, algo[i - 1]) < index_of(n, algo[i]));
    }
    for (const char* u :
         {"unet.temb", "unet.conv_in", "unet.down.0.block.0", "unet.down.1.attn.0", "unet.mid", "unet.out"})
        CHECK(index_of(n, u) >= 0);
    CHECK(index_of(n, "unet.conv_in") < index_of(n, "unet.mid"));
    CHECK(index_of(n, "unet.mid") < index_of(n, "unet.out"));
    const TraceEntry& xt = entries[index_of(n, "x_t")];
    CHECK(tdtest::contains(xt.equation, "DDPM eq. 4"));
    CHECK(xt.value.shape() == Shape{4, 1, 8, 8});
    CHECK_FALSE(xt.value.requires_grad());  // a detached snapshot, not part of the graph
    CHECK(tdtest::contains(entries[index_of(n, "loss")].equation, "eq. 14"));
    CHECK(entries[index_of(n, "unet.out")].value.shape() == Shape{4, 1, 8, 8});

    // outside a Trace nothing is recorded, and a nested Trace takes over, then hands back
    Trace outer;
    trace("a", ones({1}));
    {
        Trace inner;
        trace("b", ones({1}), "eq. b");
        CHECK(inner.entries.size() == 1);
        CHECK(inner.entries[0].equation == "eq. b");
    }
    trace("c", ones({1}));
    CHECK(names_of(outer.entries) == std::vector<std::string>{"a", "c"});
}

TEST_CASE("a Trace around DDIM sampling records x_t, eps_theta, x_0_pred, x_prev per step") {
    ModelInfo info = tiny_model();
    UNet net(info.unet);
    net.eval();
    Schedule s = Schedule::named("linear", info.T);
    SamplerOptions o;
    o.steps = 2;
    Generator g(0);
    Trace tr;
    sample(
        s, [&](const Tensor& x, const Tensor& t) { return net.forward(x, t); }, randn({2, 1, 8, 8}, g), o, g);
    std::vector<std::string> steps;
    for (const TraceEntry& e : tr.entries)
        if (e.name.rfind("unet.", 0) != 0) steps.push_back(e.name);
    CHECK(steps ==
          std::vector<std::string>{"x_t", "eps_theta", "x_0_pred", "x_prev", "x_t", "eps_theta", "x_0_pred", "x_prev"});
    CHECK(tdtest::contains(tr.entries.back().equation, "DDIM eq. 12"));
}

TEST_CASE("graph_to_dot: one box per op, ellipses for leaves, edges input -> op, deterministic") {
    auto build = [] {
        Tensor w = Tensor::from_vector({1, 2, 3}, {3}).requires_grad_();
        Tensor x = Tensor::from_vector({4, 5, 6}, {3});
        Tensor y = mul(x, w);          // mul(const, w)
        Tensor loss = sum(mul(y, y));  // the same input twice: two edges
        return std::make_tuple(w, x, loss);
    };
    auto [w, x, loss] = build();
    GraphCounts c;
    std::string dot = graph_to_dot(loss, {{w.impl(), "w"}, {x.impl(), "x"}}, &c);
    INFO(dot);
    CHECK(c.ops == 3);  // sum, mul(y, y), mul(x, w)
    CHECK(c.params == 1);
    CHECK(c.constants == 1);
    CHECK(c.edges == 5);  // mul -> sum, y -> mul twice, x -> mul, w -> mul
    CHECK(tdtest::contains(dot, "digraph autograd {"));
    CHECK(tdtest::contains(dot, "n0 [shape=box, style=\"filled,bold\", fillcolor=\"#dbe8f6\", label=\"sum\\n[]\"]"));
    CHECK(tdtest::contains(dot, "n1 [shape=box, style=\"filled\", fillcolor=\"#dbe8f6\", label=\"mul\\n[3]\"]"));
    CHECK(tdtest::contains(dot, "n2 [shape=box, style=\"filled\", fillcolor=\"#dbe8f6\", label=\"mul\\n[3]\"]"));
    CHECK(tdtest::contains(dot, "label=\"x\\n[3]\""));
    CHECK(tdtest::contains(dot, "style=dashed"));  // x needs no gradient
    CHECK(tdtest::contains(dot, "fillcolor=\"#fdf1c7\", label=\"w\\n[3]\""));
    // depth first: y's inputs are walked when y is first reached, before y's second use
    CHECK(tdtest::contains(dot, "  n1 -> n0;\n  n2 -> n1;\n  n3 -> n2;\n  n4 -> n2;\n  n2 -> n1;\n}\n"));
    // the same computation again (other pointers) gives the same text
    auto [w2, x2, loss2] = build();
    CHECK(graph_to_dot(loss2, {{w2.impl(), "w"}, {x2.impl(), "x"}}) == dot);
    // a leaf alone is one ellipse; unnamed leaves say what they are
    std::string leaf = graph_to_dot(w);
    CHECK(tdtest::contains(leaf, "label=\"leaf\\n[3]\""));
    CHECK(tdtest::contains(leaf, "0 ops, 1 parameters"));
    // the names of a module's parameters
    nn::Linear lin(2, 3);
    auto names = leaf_names_of(lin.named_parameters());
    CHECK(names.size() == 2);
    Tensor out = sum(lin.forward(Tensor::from_vector({1, 2}, {1, 2})));
    CHECK(tdtest::contains(graph_to_dot(out, names), "label=\"weight\\n[3, 2]\""));
}

// ---- the CLI --------------------------------------------------------------------------------

namespace {

using Run = tdtest::CliRun;
Run diffuse(const std::string& args) { return tdtest::run_diffuse(args); }

std::string slurp(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), {});
}

// The first line of `text` that starts with `start`.
std::string line_of(const std::string& text, const std::string& start) {
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);)
        if (line.rfind(start, 0) == 0) return line;
    return "";
}

// The loss metrics.csv holds for `step`.
double metrics_loss(const std::string& run, int step) {
    std::ifstream in(run + "/metrics.csv");
    std::string line;
    std::getline(in, line);
    while (std::getline(in, line))
        if (std::atoi(line.c_str()) == step)
            return std::atof(line.substr(line.find(',', line.find(',') + 1) + 1).c_str());
    return -1;
}

}  // namespace

TEST_CASE("diffuse trace train|sample on a tiny run: the table, trace.safetensors, index.html, graph.dot") {
    std::string data = tdtest::scratch("trace_bars8"), run = tdtest::scratch("trace_run");
    std::filesystem::create_directories(data);
    std::filesystem::remove_all(run);
    tdtest::write_bars(data, "train", 16, 8);
    Run t = diffuse("train ddpm --data " + data + " --out " + run +
                    " --ch 8 --mults 1,2 --res-blocks 1 --attn-res 4 --groups 4 --T 20 --batch 4 --steps 3"
                    " --ckpt-every 2 --sample-every 1000 --final-samples 2 --final-steps 2 --threads 1");
    INFO(t.output);
    REQUIRE(t.code == 0);
    std::string metrics_before = slurp(run + "/metrics.csv");

    // step 3, from the checkpoint of step 2: the replay is the run's own step
    Run tr = diffuse("trace train --run " + run + " --step 3 --graph --threads 1");
    INFO(tr.output);
    REQUIRE(tr.code == 0);
    CHECK(tdtest::contains(tr.output, "step-00000002.safetensors"));
    CHECK(tdtest::contains(tr.output, "DDPM eq. 4: x_t = sqrt(alpha_bar_t) x_0"));
    CHECK(tdtest::contains(line_of(tr.output, "  x_t "), "[4, 1, 8, 8]"));
    CHECK(tdtest::contains(tr.output, "unet.down.1.attn.0"));
    CHECK(tdtest::contains(tr.output, "Gradients after clipping (--clip 1)"));
    CHECK(tdtest::contains(tr.output, "grad conv_in.weight"));
    CHECK(tdtest::contains(tr.output, "metrics.csv has"));
    std::string dir = run + "/trace-train-step3";
    std::map<std::string, std::string> meta;
    auto file = nn::load_safetensors(dir + "/trace.safetensors", &meta);
    for (const char* name : {"x_0", "t", "eps", "x_t", "model_output", "loss", "unet.mid", "grad.conv_in.weight"})
        CHECK_MESSAGE(file.count(name), name);
    CHECK(file.at("x_t").shape() == Shape{4, 1, 8, 8});
    CHECK(file.at("loss").item() == doctest::Approx(metrics_loss(run, 3)).epsilon(1e-5));  // the same step
    CHECK(meta.at("kind") == "train");
    CHECK(tdtest::contains(meta.at("order"), "x_0\nt\neps\nx_t\n"));  // the step's order, one name a line
    CHECK(tdtest::contains(meta.at("equation.x_t"), "DDPM eq. 4"));
    std::string html = slurp(dir + "/index.html");
    CHECK(tdtest::contains(html, "img/x_t.png"));
    CHECK(tdtest::contains(html, "img/unet.conv_in.png"));
    CHECK(std::filesystem::exists(dir + "/img/x_t.png"));
    CHECK(std::filesystem::exists(dir + "/img/unet.conv_in.png"));
    std::string dot = slurp(dir + "/graph.dot");
    CHECK(tdtest::contains(dot, "label=\"conv_in.weight\\n[8, 1, 3, 3]\""));
    CHECK(tdtest::contains(dot, "label=\"const\\n[4, 1, 8, 8]\""));  // x_t or the target: data, no gradient
    CHECK(tdtest::contains(dot, "conv2d"));
    // the run itself is untouched
    CHECK(slurp(run + "/metrics.csv") == metrics_before);
    CHECK_FALSE(std::filesystem::exists(run + "/checkpoints/step-00000004.safetensors"));

    // sampling step 2 of DDIM-3, graph to an explicit path
    std::string gfile = tdtest::scratch("trace_sample_graph.dot");
    std::filesystem::remove(gfile);
    Run ts = diffuse("trace sample --run " + run + " --steps 3 --step 2 --n 2 --graph " + gfile + " --out " +
                     tdtest::scratch("trace_sample"));
    INFO(ts.output);
    REQUIRE(ts.code == 0);
    CHECK(tdtest::contains(ts.output, "step 2: t = 12 -> t = 6"));  // DDIM-3 of T = 20, trailing: t = 19, 12, 6
    CHECK(tdtest::contains(ts.output, "DDIM eq. 12"));
    auto sfile = nn::load_safetensors(tdtest::scratch("trace_sample/trace.safetensors"));
    for (const char* name : {"x_t", "eps_theta", "x_0_pred", "x_prev", "unet.out"})
        CHECK_MESSAGE(sfile.count(name), name);
    CHECK(sfile.at("x_prev").shape() == Shape{2, 1, 8, 8});
    CHECK(std::filesystem::exists(tdtest::scratch("trace_sample/index.html")));
    REQUIRE(std::filesystem::exists(gfile));

    // Graphviz renders both graphs, when it is installed
    if (std::system("command -v dot > /dev/null 2>&1") == 0) {
        for (const std::string& g : {dir + "/graph.dot", gfile}) {
            std::string svg = g + ".svg";
            CHECK(std::system(("dot -Tsvg " + g + " > " + svg + " 2>/dev/null").c_str()) == 0);
            CHECK(tdtest::contains(slurp(svg), "<svg"));
        }
    } else {
        MESSAGE("Graphviz `dot` is not installed: the graphs were not rendered (apt-get install graphviz)");
    }

    // usage errors exit 2, a missing run 1 naming the file
    CHECK(diffuse("trace").code == 2);
    CHECK(diffuse("trace --help").code == 0);
    CHECK(diffuse("trace train --help").code == 0);
    Run e1 = diffuse("trace frobnicate");
    CHECK(e1.code == 2);
    CHECK(tdtest::contains(e1.output, "expected train or sample"));
    Run e2 = diffuse("trace train");
    CHECK(e2.code == 2);
    CHECK(tdtest::contains(e2.output, "--run is required"));
    Run e3 = diffuse("trace sample --run " + run + " --steps 3 --step 4");
    CHECK(e3.code == 2);
    CHECK(tdtest::contains(e3.output, "--step must be in 1..--steps (3)"));
    Run e4 = diffuse("trace train --run " + run + " --no-such-flag");
    CHECK(e4.code == 2);
    Run e5 = diffuse("trace train --run " + tdtest::scratch("no_such_run"));
    CHECK(e5.code == 1);
    CHECK(tdtest::contains(e5.output, "no_such_run/config.txt"));
    std::filesystem::remove_all(run);
    std::filesystem::remove_all(tdtest::scratch("trace_sample"));
}
