// tools/settings.h: a training command's settings, each declared once, in a table.
//
// A row holds a setting's flag (--name, also its config.txt key), default, --help line, the
// model file's metadata key it ends up in, how a value is read into the command's settings
// struct S and how it is printed back. From the one table come the flags (declare_settings),
// the settings struct (read_settings) and config.txt (settings_text), so a new setting is one
// new row: its flag, --config key, --help line and config.txt line cannot drift apart.
// `train ddpm|ldm` (tools/ddpm_settings.h), `train vae`, `train classifier` and `train toy` keep one each.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "diffusion/data/dataset.h"
#include "tools/args.h"

namespace td::cli {

// A value as config.txt holds it: floats in their shortest exact form (0.001, not
// 0.001000), so a resumed run reads back the very numbers it ran with.
std::string as_text(int64_t v);
std::string as_text(bool v);
std::string as_text(float v);
std::string as_text(double v);

// A setting that is 0 or 1 (--mid-attn 1): ArgError naming the flag for another number.
bool zero_or_one(const Args& args, const std::string& name);

// --batch against the training set: ArgError when the set holds fewer images than a batch.
void check_batch_fits(int64_t batch, const diffusion::Dataset& train);

template <class S>
struct Setting {
    const char* name;
    const char* fallback;  // the default; nullptr: a switch (off unless given)
    const char* help;
    const char* metadata;  // the model file's key that keeps it ("" for a setting of the training only)
    void (*read)(S& s, const Args& args, const std::string& name);  // nullptr: the command reads it
    std::string (*print)(const S& s);                               // "" leaves the key out of config.txt
};

// The rows of the training images, the same for every command that trains on them (`train
// ddpm|ldm`, `train vae`): --data, --image-size, --channels, read into S's `data` and
// `data_options` (diffusion/data/dataset.h).
template <class S>
std::vector<Setting<S>> image_data_settings() {
    using A = const Args&;
    using N = const std::string&;
    return {
        {"data", "mnist", "data set: mnist, fashion, cifar10, or a folder of IDX files / CIFAR batches / images",
         "data", [](S& s, A a, N n) { s.data = a.str(n); }, [](const S& s) { return s.data; }},
        {"image-size", "32", "folders of images only: resize + center crop to this size", "",
         [](S& s, A a, N n) { s.data_options.image_size = a.integer(n); },
         [](const S& s) { return as_text(s.data_options.image_size); }},
        {"channels", "3", "folders of images only: 1 (grey) or 3 (RGB)", "",
         [](S& s, A a, N n) { s.data_options.channels = a.integer(n); },
         [](const S& s) { return as_text(s.data_options.channels); }},
    };
}

// A table of shared rows (`first`) and a command's own (`rest`), in that order.
template <class S>
std::vector<Setting<S>> joined(std::vector<Setting<S>> first, const std::vector<Setting<S>>& rest) {
    first.insert(first.end(), rest.begin(), rest.end());
    return first;
}

// Declares every setting of the table on `args`, in its order (--help's).
template <class S>
void declare_settings(Args& args, const std::vector<Setting<S>>& table) {
    for (const Setting<S>& d : table) {
        if (d.fallback) args.option(d.name, d.fallback, d.help);
        else args.flag(d.name, d.help);
    }
}

// The settings as the declared options say (ArgError for a value that is not a number, ...).
template <class S>
S read_settings(const Args& args, const std::vector<Setting<S>>& table) {
    S s;
    for (const Setting<S>& d : table)
        if (d.read) d.read(s, args, d.name);
    return s;
}

// config.txt: `command` in a comment (and `comments`, lines of "# ..."), then a `key = value`
// line per setting, in the table's order, with the values the run resolved (the device auto
// picked, ...): a valid --config file.
template <class S>
std::string settings_text(const std::string& command, const S& s, const std::vector<Setting<S>>& table,
                          const std::string& comments = "") {
    std::string out = "# diffuse " + command + ": the settings of this run (a valid --config file)\n" + comments;
    for (const Setting<S>& d : table) {
        std::string value = d.print(s);
        if (!value.empty()) out += std::string(d.name) + " = " + value + "\n";
    }
    return out;
}

}  // namespace td::cli
