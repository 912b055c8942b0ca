// tools/trace.cpp: `diffuse trace train|sample --run runs/NAME [--step N] [--graph [FILE.dot]]`:
// one step of a run, every tensor in it.
//
// The library marks the tensors worth seeing with td::trace(name, tensor, equation)
// (autograd/trace.h): the trainer's x_0, t, eps, x_t, loss; each UNet block's output;
// the sampler's x_t, eps_theta, x_0_pred, x_prev. Here a td::Trace records them for
// exactly one step, written out three ways: a line per tensor on the terminal (name,
// shape, mean, std, min, max, equation; then each parameter's gradient norm),
// DIR/trace.safetensors (every tensor by name, + "grad.<param>", for numpy / torch) and
// DIR/index.html (the image-shaped tensors as pictures; graph.dot with --graph).
// The run itself is left as it was: the step is replayed on a trainer rebuilt from
// config.txt and a checkpoint, then thrown away.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <sstream>

#include "autograd/graph_dot.h"
#include "autograd/node.h"
#include "autograd/trace.h"
#include "diffusion/data/dataset.h"
#include "diffusion/data/image_io.h"
#include "diffusion/model_file.h"
#include "diffusion/sampler.h"
#include "diffusion/trainer.h"
#include "nn/safetensors.h"
#include "tensor/error.h"
#include "tensor/ops.h"
#include "tools/args.h"
#include "tools/ddpm_settings.h"
#include "tools/html_page.h"
#include "tools/progress.h"      // fmt
#include "tools/training_run.h"  // write_text_file

namespace td::cli {

namespace fs = std::filesystem;
using namespace td::diffusion;

namespace {

// ---- numbers of one tensor ------------------------------------------------------------

struct Stats {
    double mean = 0, std = 0, min = 0, max = 0;
};

// Over all elements, in double; std is the population one (divides by n, as numpy's default).
Stats stats_of(const Tensor& t) {
    std::vector<float> v = t.to(DType::Float32).to_vector();
    Stats s;
    if (v.empty()) return s;
    s.min = s.max = v[0];
    double sum = 0;
    for (float x : v) {
        sum += x;
        s.min = std::min<double>(s.min, x);
        s.max = std::max<double>(s.max, x);
    }
    s.mean = sum / (double)v.size();
    double sq = 0;
    for (float x : v) sq += (x - s.mean) * (x - s.mean);
    s.std = std::sqrt(sq / (double)v.size());
    return s;
}

double norm_of(const Tensor& t) {
    double sq = 0;
    for (float x : t.to_vector()) sq += (double)x * x;
    return std::sqrt(sq);
}

std::string num(double v) { return fmt("%10.4g", v); }

std::string pad(const std::string& s, size_t width) {
    return s.size() >= width ? s : s + std::string(width - s.size(), ' ');
}

// ---- what one traced step leaves ------------------------------------------------------

struct Grad {
    std::string name;  // the parameter's dotted name
    Tensor value;
    double norm;
};

struct StepRecord {
    std::vector<TraceEntry> entries;  // in recording order
    std::vector<Grad> grads;          // train only
    Metadata meta;                    // what the step was (goes into trace.safetensors)
};

// Names must be unique in a .safetensors file; a name recorded twice gets "#2", "#3".
void make_names_unique(std::vector<TraceEntry>& entries) {
    std::map<std::string, int> seen;
    for (TraceEntry& e : entries) {
        int n = ++seen[e.name];
        if (n > 1) e.name += '#' + std::to_string(n);
    }
}

void print_table(const std::vector<TraceEntry>& entries) {
    size_t w = 12;
    for (const TraceEntry& e : entries) w = std::max(w, e.name.size());
    for (const TraceEntry& e : entries) {
        Stats s = stats_of(e.value);
        std::string line = "  " + pad(e.name, w) + " " + pad(shape_str(e.value.shape()), 17) + " mean " + num(s.mean) +
                           "  std " + num(s.std) + "  min " + num(s.min) + "  max " + num(s.max);
        if (!e.equation.empty()) line += "   " + e.equation;
        std::printf("%s\n", line.c_str());
    }
}

void print_grads(const std::vector<Grad>& grads) {
    size_t w = 12;
    for (const Grad& g : grads) w = std::max(w, g.name.size());
    for (const Grad& g : grads)
        std::printf("  grad %s %s norm %.4g\n", pad(g.name, w).c_str(), pad(shape_str(g.value.shape()), 17).c_str(),
                    g.norm);
}

// ---- files ------------------------------------------------------------------------------

void write_trace_file(const std::string& path, const StepRecord& r) {
    std::map<std::string, Tensor> all;
    Metadata meta = r.meta;
    std::string order;
    for (const TraceEntry& e : r.entries) {
        all[e.name] = e.value.contiguous();
        order += (order.empty() ? "" : "\n") + e.name;
        if (!e.equation.empty()) meta["equation." + e.name] = e.equation;
    }
    meta["order"] = order;  // the file's own order is by name; this is the step's
    for (const Grad& g : r.grads) all["grad." + g.name] = g.value.contiguous();
    nn::save_safetensors(path, all, meta);
}

std::string file_safe(const std::string& name) {
    std::string out = name;
    for (char& c : out)
        if (!std::isalnum((unsigned char)c) && c != '.' && c != '-' && c != '_') c = '_';
    return out;
}

// Image-shaped: (N, C, H, H) with H >= 4. Everything else (t, the loss, temb) is numbers only.
bool is_image(const Tensor& t) { return t.dim() == 4 && t.size(2) == t.size(3) && t.size(2) >= 4; }

// Writes the picture of one image-shaped entry; returns what it shows.
//   1 or 3 channels: the first 8 samples, pixel values [-1, 1] -> [0, 255] (clipped), the
//     data's own convention, so x_0, x_0_pred and x_prev look like what they are.
//   otherwise (feature maps): sample 0's first 8 channels, each stretched to its own
//     min..max, since a feature map's scale says nothing about brightness.
std::string write_entry_png(const std::string& path, const Tensor& v) {
    int64_t N = v.size(0), C = v.size(1), H = v.size(2);
    int64_t scale = std::clamp<int64_t>(64 / H, 1, 8);
    if (C == 1 || C == 3) {
        int64_t k = std::min<int64_t>(N, 8);
        write_png_grid(path, v.slice(0, 0, k).contiguous(), k, scale);
        return "the first " + std::to_string(k) + " samples; pixel values [-1, 1] shown black to white (clipped)";
    }
    int64_t k = std::min<int64_t>(C, 8);
    std::vector<float> sample0 = v.slice(0, 0, 1).contiguous().to_vector();  // (C, H, H) row-major
    std::vector<float> px((size_t)(k * H * H));
    for (int64_t c = 0; c < k; ++c) {
        auto first = sample0.begin() + c * H * H, last = first + H * H;
        auto [lo, hi] = std::minmax_element(first, last);
        float range = *hi - *lo > 0 ? *hi - *lo : 1.0f;
        for (int64_t i = 0; i < H * H; ++i) px[(size_t)(c * H * H + i)] = 2.0f * (first[i] - *lo) / range - 1.0f;
    }
    write_png_grid(path, Tensor::from_vector(px, {k, 1, H, H}), k, scale);
    return "sample 0, channels 0-" + std::to_string(k - 1) + " of " + std::to_string(C) +
           ", each stretched to its own min..max";
}

void write_html(const std::string& dir, const std::string& title, const std::string& intro, const StepRecord& r,
                const std::string& graph_file) {
    HtmlPage page(title,
                  "body{max-width:72em}code,.num{font-family:monospace;background:none}"
                  "table{border-collapse:collapse}td,th{padding:2px 8px;text-align:left;vertical-align:top}"
                  "tr:nth-child(even){background:#f4f4f4}.eq{color:#555}");
    page.p(intro);
    std::ostringstream h;
    h << "<p>Every tensor is also in <a href=trace.safetensors>trace.safetensors</a> under its name "
         "(<code>safetensors.numpy.load_file</code>).</p>\n";
    h << "<h2>Tensors, in the order the step made them</h2>\n";
    for (const TraceEntry& e : r.entries) {
        Stats s = stats_of(e.value);
        h << "<h3><code>" << escape_html(e.name) << "</code> <span class=num>" << shape_str(e.value.shape())
          << "</span></h3>\n";
        if (!e.equation.empty()) h << "<p class=eq>" << escape_html(e.equation) << "</p>\n";
        h << "<p class=num>mean " << num(s.mean) << " &nbsp; std " << num(s.std) << " &nbsp; min " << num(s.min)
          << " &nbsp; max " << num(s.max) << "</p>\n";
        if (is_image(e.value)) {
            std::string png = "img/" + file_safe(e.name) + ".png";
            std::string what = write_entry_png(dir + "/" + png, e.value);
            h << "<p><img src=\"" << png << "\" alt=\"" << escape_html(e.name) << "\"><br><small>" << escape_html(what)
              << "</small></p>\n";
        }
    }
    if (!r.grads.empty()) {
        h << "<h2>Gradients</h2>\n<p>" << escape_html(r.meta.at("grads"))
          << "</p>\n<table><tr><th>parameter<th>shape<th>norm\n";
        for (const Grad& g : r.grads)
            h << "<tr><td><code>" << escape_html(g.name) << "</code><td class=num>" << shape_str(g.value.shape())
              << "<td class=num>" << num(g.norm) << "\n";
        h << "</table>\n";
    }
    if (!graph_file.empty())
        h << "<h2>Autograd graph</h2><p>Written to <code>" << escape_html(graph_file)
          << "</code>; render it with <code>dot -Tsvg graph.dot &gt; graph.svg</code>.</p>\n";
    page.html(h.str()).write(dir + "/index.html");
}

// Writes dot text made by graph_to_dot (autograd/graph_dot.h) and says what is in it.
void save_graph(const std::string& path, const std::string& text, const GraphCounts& c, const std::string& what) {
    if (fs::path(path).has_parent_path()) fs::create_directories(fs::path(path).parent_path());
    write_text_file(path, text);
    std::printf(
        "graph of %s: %lld ops, %lld parameters, %lld constants, %lld edges -> %s\n"
        "  render: dot -Tsvg %s > graph.svg\n",
        what.c_str(), (long long)c.ops, (long long)c.params, (long long)c.constants, (long long)c.edges, path.c_str(),
        path.c_str());
}

// Everything a step leaves, on disk; then where it went.
void write_outputs(const std::string& dir, const std::string& title, const std::string& intro, StepRecord& r,
                   const std::string& graph_file) {
    std::error_code ec;
    fs::create_directories(dir + "/img", ec);  // (img/: the pictures of index.html)
    check(!ec, dir, ": cannot create the folder (", ec.message(), ")");
    write_trace_file(dir + "/trace.safetensors", r);
    write_html(dir, title, intro, r, graph_file);
    std::printf("wrote %s/trace.safetensors (%zu tensors%s) and %s/index.html\n", dir.c_str(), r.entries.size(),
                r.grads.empty() ? "" : (" + " + std::to_string(r.grads.size()) + " gradients").c_str(), dir.c_str());
}

// ---- the command line -----------------------------------------------------------------

// --out and --graph, the same for both: `what` is "train" or "sample", `graph_of` what the graph shows.
void declare_outputs(Args& args, const std::string& what, const std::string& graph_of) {
    args.option("out", "", "where to write (default: RUN/trace-" + what + "-stepN)");
    args.optional_value("graph",
                        "write the autograd graph of " + graph_of + " as Graphviz dot (bare --graph: DIR/graph.dot)");
}

// --out, or RUN/trace-WHAT-stepN (trace-WHAT-stepN here for a model given by --ckpt alone).
std::string out_dir(const Args& args, const std::string& run, const std::string& what, int64_t step) {
    if (!args.str("out").empty()) return args.str("out");
    return (run.empty() ? "" : run + "/") + "trace-" + what + "-step" + std::to_string(step);
}

std::string graph_path(const Args& args, const std::string& dir) {
    if (!args.given("graph")) return "";
    return args.str("graph").empty() ? dir + "/graph.dot" : args.str("graph");
}

// ---- trace train ----------------------------------------------------------------------

// The run as `diffuse train ddpm` built it, from its config.txt (the settings of
// kDdpmSettings, tools/ddpm_settings.h), and its training set. A bad value is a bad file:
// td::Error naming it.
DdpmSettings read_run(const std::string& run, Dataset& data) {
    std::string file = run + "/config.txt";
    check(fs::exists(file), file, ": not found (is ", run, " a run folder of `diffuse train ddpm`?)");
    Args c("", "");
    declare_settings(c, kDdpmSettings);  // the same keys and defaults as `diffuse train ddpm`
    c.apply_config(file);
    try {
        DdpmSettings set = ddpm_settings(c);
        data = resolve_data(set, c);
        return set;
    } catch (const ArgError& e) {
        fail(file, ": ", e.what());
    }
}

int trace_train(int argc, char** argv, int first) {
    Args args("diffuse trace train --run runs/NAME [--step N] [--out DIR] [--graph [FILE.dot]]",
              "Replays one training step of a run (Algorithm 1 of DDPM) and shows every tensor it makes:\n"
              "name, shape, mean, std, min, max and the equation it comes from; then the gradient of\n"
              "every parameter. The trainer is rebuilt from the run's config.txt and the latest\n"
              "checkpoint before step N (steps in between are replayed untraced). Writes\n"
              "trace.safetensors and index.html into --out; the run itself is not touched.");
    args.option("run", "", "the run folder of `diffuse train ddpm` (required)");
    args.option("step", "0", "the training step to trace, 1-based (0: the one after the latest checkpoint)");
    declare_outputs(args, "train", "the step");
    args.option("threads", "0", "OpenMP threads (0: all cores)");
    if (!args.parse_or_help(argc, argv, first)) return 0;
    std::string run = args.str("run");
    if (run.empty()) throw ArgError("--run is required (e.g. --run runs/mnist)");
    int64_t step = args.integer("step");
    if (step < 0) throw ArgError("--step must be >= 1 (or 0: the step after the latest checkpoint)");
    apply_threads(args);

    Dataset data;
    DdpmSettings rs = read_run(run, data);
    auto ckpts = list_checkpoints(run);
    if (step == 0) step = (ckpts.empty() ? 0 : ckpts.back().first) + 1;
    DdpmTrainer trainer(rs.info, rs.train, data, rs.first_stage);
    // the state before step N is the one after N-1 steps: the latest checkpoint at or
    // before N-1, else the fresh trainer (the same seed gives the same start)
    std::string from = "the initial weights (seed " + std::to_string(rs.train.seed) + ")";
    for (auto it = ckpts.rbegin(); it != ckpts.rend(); ++it)
        if (it->first <= step - 1) {
            trainer.load_checkpoint(it->second);
            from = it->second;
            break;
        }
    int64_t replay = step - 1 - trainer.steps_done();
    std::printf("trace train: %s, step %lld, from %s%s\n", run.c_str(), (long long)step, from.c_str(),
                replay > 0 ? (", replaying " + std::to_string(replay) + " steps untraced first").c_str() : "");
    std::printf("model: UNet %s; %s schedule, T = %lld; batch %lld\n", rs.info.unet.describe().c_str(),
                beta_schedule_name(rs.info.schedule).c_str(), (long long)rs.info.T, (long long)rs.train.batch_size);
    while (trainer.steps_done() < step - 1) trainer.step();

    std::string dir = out_dir(args, run, "train", step);
    std::string graph_file = graph_path(args, dir);
    // The graph is read off the step's own loss, before backward frees it.
    std::string graph_text;
    GraphCounts graph_counts;
    auto before_backward = [&](const Tensor& loss) {
        if (!graph_file.empty())
            graph_text = graph_to_dot(loss, leaf_names_of(trainer.model().named_parameters()), &graph_counts);
    };

    StepRecord r;
    StepStats st;
    {
        Trace tr;
        st = trainer.step(before_backward);
        r.entries = std::move(tr.entries);
    }
    make_names_unique(r.entries);
    // After step(), each parameter's .grad is this step's gradient (zero_grad runs at the
    // start of a step), already scaled by clipping; the optimizer and EMA do not touch it.
    double clipped = 0;
    for (auto& [name, p] : trainer.model().named_parameters()) {
        Tensor g = p.grad();
        if (!g.defined()) continue;
        r.grads.push_back({name, g.detach().clone(), norm_of(g)});
        clipped += r.grads.back().norm * r.grads.back().norm;
    }
    clipped = std::sqrt(clipped);
    float clip = rs.train.grad_clip;
    double factor = clip > 0 ? std::min(1.0, clip / (st.grad_norm + 1e-6)) : 1.0;
    std::string gline =
        fmt("Gradients after clipping (--clip %g): total norm %.4g before, %.4g after (scaled by %.4g%s).", clip,
            st.grad_norm, clipped, factor, factor < 1 ? "" : ": no clipping this step");
    r.meta = {{"kind", "train"},
              {"run", run},
              {"step", std::to_string(step)},
              {"from", from},
              {"loss", std::to_string(st.loss)},
              {"grad_norm_before_clip", std::to_string(st.grad_norm)},
              {"clip_factor", std::to_string(factor)},
              {"grads", gline}};

    std::printf("tensors of step %lld, in the order they were recorded:\n", (long long)step);
    print_table(r.entries);
    std::printf("loss %.6g, lr %.3g", st.loss, st.lr);
    double logged = read_metrics(run + "/metrics.csv").at_step(step, "loss");
    if (std::isfinite(logged)) std::printf(" (metrics.csv has %.6g for this step)", logged);
    std::printf("\n%s\n", gline.c_str());
    print_grads(r.grads);

    std::string title = "trace train: step " + std::to_string(step) + " of " + run;
    std::string ts;  // the t of the samples the pictures show
    for (const TraceEntry& e : r.entries)
        if (e.name == "t")
            for (float v : e.value.slice(0, 0, std::min<int64_t>(8, e.value.numel())).to_vector())
                ts += (ts.empty() ? "" : ", ") + std::to_string((int64_t)v);
    std::string intro = "One training step (DDPM Algorithm 1), replayed from " + from + ". UNet " +
                        rs.info.unet.describe() + ", " + beta_schedule_name(rs.info.schedule) +
                        " schedule, T = " + std::to_string(rs.info.T) + ", batch " +
                        std::to_string(rs.train.batch_size) + ". Loss " + std::to_string(st.loss) +
                        ". The pictures show the first 8 samples of the batch; their t (0-based): " + ts + ".";
    write_outputs(dir, title, intro, r, graph_file);
    if (!graph_file.empty()) save_graph(graph_file, graph_text, graph_counts, "the loss of this step");
    return 0;
}

// ---- trace sample ---------------------------------------------------------------------

struct StopSampling {};  // thrown from the step callback once the traced step is done

int trace_sample(int argc, char** argv, int first) {
    Args args(
        "diffuse trace sample --run runs/NAME [--step N] [--sampler ddpm|ddim] [--steps K] [--n 4] [--graph "
        "[FILE.dot]]",
        "Runs the sampler on a few images up to its N-th step (1-based: step 1 denoises x_T) and\n"
        "shows every tensor of that step: x_t, the UNet's internals, eps_theta, the predicted x_0\n"
        "(DDIM) or the noise z (DDPM), and x_prev, each with shape, mean, std, min, max and its\n"
        "equation. Writes trace.safetensors and index.html into --out.");
    declare_sampling_options(
        args);  // --run --ckpt --raw --sampler --spacing --steps --eta --variance --no-clip --threads
    args.option("step", "1", "the sampling step to trace, 1..K (K = --steps)");
    args.option("n", "4", "images in the batch");
    args.option("seed", "0", "seed of x_T and the sampler's noise (as `diffuse sample`)");
    declare_outputs(args, "sample", "the step's model call");
    if (!args.parse_or_help(argc, argv, first)) return 0;
    std::string run = args.str("run");
    int64_t step = args.integer("step"), n = args.integer("n");
    if (n < 1) throw ArgError("need --n >= 1");
    if (step < 1 || step > args.integer("steps"))
        throw ArgError("--step must be in 1..--steps (" + args.str("steps") + "), got " + std::to_string(step));
    SamplingSetup setup = setup_sampling(args);
    LoadedModel& m = setup.model;
    const SamplerOptions& o = setup.options;
    const std::string& path = setup.weights;
    std::vector<int64_t> ts = sampling_timesteps(o, m.info.T);  // descending
    int64_t t = ts[step - 1], t_prev = step < (int64_t)ts.size() ? ts[step] : -1;
    std::printf("trace sample: %s, %s with %lld steps (%s spacing)%s; step %lld: t = %lld -> %s\n", path.c_str(),
                sampler_name(o.sampler).c_str(), (long long)o.steps, spacing_name(sampler_spacing(o)).c_str(),
                o.sampler == Sampler::Ddim ? (", eta " + fmt("%g", o.eta)).c_str() : "", (long long)step, (long long)t,
                t_prev >= 0 ? ("t = " + std::to_string(t_prev)).c_str() : "x_0");

    // x_T as `diffuse sample --seed S` draws it, so the traced images are the ones it shows
    const UNetConfig& u = m.unet->config();
    Generator gen((uint64_t)args.integer("seed"));
    Tensor x_T = randn({n, u.in_channels, u.image_size, u.image_size}, gen);
    // a conditional model is traced unconditionally (its null condition, no guidance)
    Tensor y = u.cond != Conditioning::None ? m.unet->null_condition(n) : Tensor();
    // The Trace lives from the end of step N-1 to the end of step N: the sampler's trace
    // points and the UNet's within that step land in it, nothing else.
    StepRecord r;
    std::optional<Trace> tr;
    if (step == 1) tr.emplace();
    UNet& net = *m.unet;
    Denoiser model = m.denoiser(y, 1.0f);
    try {
        sample(m.schedule, model, x_T, o, gen, [&](int64_t i, int64_t, const Tensor&) {
            if (i == step - 1) tr.emplace();
            if (i == step) {
                r.entries = std::move(tr->entries);
                tr.reset();
                throw StopSampling{};  // the steps after N are of no interest
            }
        });
    } catch (const StopSampling&) {}
    make_names_unique(r.entries);
    r.meta = {{"kind", "sample"},
              {"weights", path},
              {"sampler", sampler_name(o.sampler)},
              {"steps", std::to_string(o.steps)},
              {"spacing", spacing_name(sampler_spacing(o))},
              {"step", std::to_string(step)},
              {"t", std::to_string(t)},
              {"t_prev", std::to_string(t_prev)}};

    std::printf("tensors of sampling step %lld, in the order they were recorded:\n", (long long)step);
    print_table(r.entries);
    std::string dir = out_dir(args, run, "sample", step);
    std::string graph_file = graph_path(args, dir);
    std::string title =
        "trace sample: step " + std::to_string(step) + " of " + sampler_name(o.sampler) + "-" + std::to_string(o.steps);
    std::string intro = "Sampling step " + std::to_string(step) + " of " + std::to_string(o.steps) + " (" +
                        sampler_name(o.sampler) + "), t = " + std::to_string(t) + " -> " +
                        (t_prev >= 0 ? "t = " + std::to_string(t_prev) : "x_0") + ", " + std::to_string(n) +
                        " images, weights " + path + ".";
    write_outputs(dir, title, intro, r, graph_file);
    if (!graph_file.empty()) {
        // Sampling runs without a graph (NoGradGuard); the model call of this step is made
        // again with grad mode on, on the traced x_t: the network's graph, parameters as leaves.
        Tensor x_t;
        for (const TraceEntry& e : r.entries)
            if (e.name == "x_t") x_t = e.value;
        check(x_t.defined(), "trace sample: the step recorded no 'x_t' (diffusion/sampler.cpp's trace points)");
        Tensor tt = Tensor::from_vector_i64(std::vector<int64_t>(n, t), {n});
        Tensor out = net.forward(x_t, tt, y.defined() ? net.condition(y) : UNet::Cond{});
        std::map<const TensorImpl*, std::string> names = leaf_names_of(net.named_parameters());
        names[x_t.impl()] = "x_t";
        GraphCounts counts;
        std::string text = graph_to_dot(out, names, &counts);
        save_graph(graph_file, text, counts, "the model call eps_theta(x_t, t) of this step");
    }
    return 0;
}

}  // namespace

int trace(int argc, char** argv, int first) {
    std::string what = first < argc ? argv[first] : "";
    if (what.empty() || what == "--help" || what == "-h") {
        std::printf(
            "usage: diffuse trace train|sample --run runs/NAME [--step N] [--graph [FILE.dot]] [options]\n"
            "  train: one training step, every tensor and gradient; sample: one sampling step.\n"
            "  `diffuse trace train --help` for options.\n");
        return what.empty() ? 2 : 0;
    }
    if (what == "train") return trace_train(argc, argv, first + 1);
    if (what == "sample") return trace_sample(argc, argv, first + 1);
    throw ArgError("unknown trace '" + what + "' (expected train or sample)");
}

}  // namespace td::cli
