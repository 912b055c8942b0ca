// tools/train_classifier.cpp: `diffuse train classifier`, the CNN of
// diffusion/classifier.h trained on MNIST, Fashion-MNIST, CIFAR-10 or a folder, with
// AdamW, a warmup + cosine learning rate and held-out accuracy after every epoch.
// The run folder gets the weights (classifier.safetensors, with the configuration in
// its metadata), the held-out set's features (reference_features.npy, for the
// classifier FID of `diffuse eval`), metrics.csv, loss.png and index.html.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "autograd/node.h"
#include "diffusion/classifier.h"
#include "diffusion/data/batches.h"
#include "diffusion/data/dataset.h"
#include "nn/lr_schedule.h"
#include "nn/optim.h"
#include "nn/safetensors.h"
#include "td.h"
#include "tools/args.h"
#include "tools/plot.h"
#include "tools/progress.h"

namespace td::cli {

namespace {

// Share of `data` the model labels correctly.
double accuracy(diffusion::Classifier& model, const diffusion::Dataset& data) {
    Tensor logits, feats;
    diffusion::classify(model, data.images, logits, feats);
    Tensor pred = argmax(logits, 1);
    std::vector<int64_t> p = pred.to_vector_i64(), y = data.labels.to_vector_i64();
    int64_t right = 0;
    for (size_t i = 0; i < p.size(); ++i) right += p[i] == y[i];
    return (double)right / (double)p.size();
}

// Augmentation: moves each image by a random (dy, dx) in [-m, m]^2 pixels, filling
// with the background value -1 (black). A digit or garment moved by two pixels is still
// the same class, and the model stops memorising exact pixel positions: on the 8,000
// MNIST digits this is worth about half a point of held-out accuracy.
Tensor random_shift(const Tensor& x, int64_t m, Generator& gen) {
    int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
    std::vector<int64_t> shifts = randint(2 * m + 1, {N, 2}, gen).to_vector_i64();
    Tensor xc = x.contiguous();
    Tensor y = full(x.shape(), -1.0f);
    const float* src = xc.data_f32();
    float* dst = y.data_f32();
    for (int64_t n = 0; n < N; ++n) {
        int64_t dy = shifts[2 * n] - m, dx = shifts[2 * n + 1] - m;
        for (int64_t c = 0; c < C; ++c)
            for (int64_t i = std::max<int64_t>(0, dy); i < std::min(H, H + dy); ++i)
                for (int64_t j = std::max<int64_t>(0, dx); j < std::min(W, W + dx); ++j)
                    dst[((n * C + c) * H + i) * W + j] = src[((n * C + c) * H + i - dy) * W + j - dx];
    }
    return y;
}

}  // namespace

int train_classifier(int argc, char** argv, int first) {
    Args args("diffuse train classifier --data mnist|fashion|cifar10|DIR --out runs/NAME [options]",
              "Trains the small CNN that `diffuse eval` uses to judge samples, and reports its\n"
              "held-out accuracy after every epoch.");
    args.option("data", "mnist", "data set: mnist, fashion, cifar10, or a folder (see --data-dir)");
    args.option("data-dir", "", "where the data set's files are (default data/<name>/)");
    args.option("out", "", "run folder (required)");
    args.option("epochs", "0", "epochs to train (0: 20 for mnist, 8 for fashion, 20 otherwise)");
    args.option("minutes", "0", "stop after this many minutes, whatever --epochs says (0: no limit)");
    args.option("batch", "128", "batch size");
    args.option("lr", "0.002", "peak learning rate (AdamW, warmup then cosine)");
    args.option("width", "32", "channels of the first conv (then 2x and 4x)");
    args.option("shift", "2", "augmentation: random shifts of up to this many pixels (0: none)");
    args.option("seed", "0", "random seed (weights and batch order)");
    if (!args.parse(argc, argv, first)) { std::printf("%s", args.help().c_str()); return 0; }
    std::string out = args.str("out"), name = args.str("data");
    if (out.empty()) throw ArgError("--out is required (e.g. --out runs/mnist-classifier)");
    int64_t shift = args.integer("shift");
    int64_t epochs = args.integer("epochs"), batch = args.integer("batch"), width = args.integer("width");
    double minutes = args.number("minutes");
    float lr = (float)args.number("lr");
    uint64_t seed = (uint64_t)args.integer("seed");
    if (epochs < 0 || batch < 1 || width < 8 || width % 4 != 0 || !(lr > 0) || minutes < 0)
        throw ArgError("need --epochs >= 0, --batch >= 1, --width >= 8 and a multiple of 4, --lr > 0, --minutes >= 0");
    if (shift < 0) throw ArgError("--shift must be >= 0");
    if (epochs == 0) epochs = name == "mnist" ? 20 : name.rfind("fashion", 0) == 0 ? 8 : 20;

    diffusion::DataOptions dopt;
    dopt.data_dir = args.str("data-dir");
    diffusion::Dataset train = diffusion::load_dataset(name, "train", dopt);
    diffusion::Dataset test = diffusion::load_dataset(name, "test", dopt);
    std::printf("data: %s, %lld train / %lld held-out images of shape %s, %lld classes\n", train.name.c_str(),
                (long long)train.size(), (long long)test.size(),
                shape_str(Shape(train.images.shape().begin() + 1, train.images.shape().end())).c_str(),
                (long long)train.num_classes);

    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    check(!ec, out, ": cannot create the run folder (", ec.message(), ")");

    diffusion::ClassifierConfig cfg;
    cfg.in_channels = train.images.size(1);
    cfg.image_size = train.images.size(2);
    cfg.num_classes = train.num_classes;
    cfg.width = width;
    Generator gen(seed);
    diffusion::Classifier model(cfg, gen);
    std::printf("model: %lld parameters\n", (long long)model.num_parameters());

    diffusion::BatchOptions bopt;
    bopt.batch_size = batch;
    bopt.seed = seed;
    bopt.hflip = cfg.in_channels == 3;  // flipping digits or clothes changes what they are; CIFAR's objects not
    diffusion::BatchIterator batches(train, bopt);
    int64_t steps_per_epoch = batches.batches_per_epoch(), total = epochs * steps_per_epoch;
    nn::AdamWOptions aopt;
    aopt.lr = lr;
    aopt.weight_decay = 1e-4f;
    nn::AdamW opt(model.named_parameters(), aopt);
    int64_t warmup = std::min<int64_t>(100, total / 10);
    Generator aug_gen(seed + 1);

    std::ofstream csv(out + "/metrics.csv");
    check(csv.good(), out, "/metrics.csv: cannot open for writing");
    csv << "step,epoch,loss,lr,held_out_accuracy\n";
    std::vector<float> xs, losses, acc_x, accs;
    Progress progress(total, minutes * 60.0);
    double test_acc = 0.0;
    int64_t step = 0;
    bool stopped_early = false;
    for (int64_t epoch = 0; epoch < epochs && !stopped_early; ++epoch) {
        double epoch_loss = 0.0;
        int64_t epoch_steps = 0;
        for (int64_t i = 0; i < steps_per_epoch; ++i) {
            diffusion::Batch b = batches.next();
            opt.set_lr(nn::cosine_lr(step + 1, lr, warmup, total));  // t counts from 1
            Tensor x = shift > 0 ? random_shift(b.x, shift, aug_gen) : b.x;
            Tensor loss = cross_entropy(model.forward(x), b.y);
            opt.zero_grad();
            loss.backward();
            opt.step();
            ++step;
            float l = loss.item();
            check(std::isfinite(l), "train classifier: loss became ", l, " at step ", step, "; lower --lr");
            epoch_loss += l;
            ++epoch_steps;
            xs.push_back((float)step);
            losses.push_back(l);
            csv << step << "," << epoch + 1 << "," << l << "," << opt.lr() << ",\n";
            char fields[80];
            std::snprintf(fields, sizeof fields, "epoch %lld  loss %.4f", (long long)epoch + 1, l);
            progress.report(step, fields, 20);
            if (progress.out_of_time()) { stopped_early = true; break; }
        }
        test_acc = accuracy(model, test);
        acc_x.push_back((float)step);
        accs.push_back((float)test_acc);
        csv << step << "," << epoch + 1 << ",,," << test_acc << "\n";
        csv.flush();
        progress.done();
        std::printf("epoch %lld: mean loss %.4f, held-out accuracy %.2f%% (%s)\n", (long long)epoch + 1,
                    epoch_loss / std::max<int64_t>(epoch_steps, 1), 100.0 * test_acc,
                    fmt_seconds(progress.elapsed()).c_str());
    }
    if (stopped_early) std::printf("stopped by --minutes %.1f after %lld steps\n", minutes, (long long)step);

    // weights, with what `diffuse eval` needs to rebuild the model
    std::map<std::string, std::string> meta = {
        {"model", "classifier"},
        {"data", name},
        {"in_channels", std::to_string(cfg.in_channels)},
        {"image_size", std::to_string(cfg.image_size)},
        {"num_classes", std::to_string(cfg.num_classes)},
        {"width", std::to_string(cfg.width)},
        {"held_out_accuracy", std::to_string(test_acc)},
        {"steps", std::to_string(step)}};
    nn::save_module(out + "/classifier.safetensors", model, meta);
    Tensor logits, feats;
    diffusion::classify(model, test.images, logits, feats);
    save_npy(out + "/reference_features.npy", feats);

    plot::line_plot(out + "/loss.png", {{xs, losses, 0x1f77b4}}, /*log_y=*/true);
    std::ofstream html(out + "/index.html");
    html << "<!doctype html><meta charset=utf-8><title>tinydiffusion: classifier " << name << "</title>\n"
         << "<h1>Classifier on " << name << "</h1>\n<p>" << model.num_parameters() << " parameters, " << step
         << " steps of AdamW (peak lr " << lr << ", batch " << batch << "), " << fmt_seconds(progress.elapsed())
         << ". Held-out accuracy: <b>" << 100.0 * test_acc << "%</b> on " << test.size() << " images.</p>\n"
         << "<h2>Training loss (log scale)</h2><img src=loss.png>\n<h2>Held-out accuracy per epoch</h2><ul>\n";
    for (size_t i = 0; i < accs.size(); ++i) html << "<li>epoch " << i + 1 << ": " << 100.0 * accs[i] << "%</li>\n";
    html << "</ul><p>Files: classifier.safetensors, reference_features.npy (penultimate features of the held-out "
         << "set, for <code>diffuse eval</code>), <a href=metrics.csv>metrics.csv</a>.</p>\n";
    std::printf("held-out accuracy %.2f%%; wrote %s/{classifier.safetensors,reference_features.npy,metrics.csv,"
                "loss.png,index.html}\n", 100.0 * test_acc, out.c_str());
    return 0;
}

}  // namespace td::cli
