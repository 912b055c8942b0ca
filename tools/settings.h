// tools/settings.h: a training command's settings, each declared once, in a table.
//
// A row holds a setting's flag (--name, also its config.txt key), default, --help line, the
// model file's metadata key, and how a value is read into the command's settings struct S
// and printed back. From the one table come the flags (declare_settings), the struct
// (read_settings) and config.txt (settings_text): a new setting is one new row. Most rows
// name the field that holds it (field, enum_field, auto_field); a setting with a rule of its
// own (one value into two fields) spells out both as lambdas.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "diffusion/data/dataset.h"
#include "tensor/device.h"
#include "tools/args.h"

namespace td::cli {

// A value as config.txt holds it: floats in their shortest exact form (0.001), so a
// resumed run reads back the very numbers it ran with.
std::string as_text(int64_t v);
std::string as_text(uint64_t v);
std::string as_text(bool v);
std::string as_text(float v);
std::string as_text(double v);
inline std::string as_text(const std::string& v) { return v; }
std::string as_text(const std::vector<int64_t>& v);  // "1,2,2"; "none" for {}

// The flag `name` read into a field of that type (a list: "1,2,2" or none). ArgError naming
// the flag for a bad value.
void read_value(const Args& args, const std::string& name, int64_t& v);
void read_value(const Args& args, const std::string& name, uint64_t& v);
void read_value(const Args& args, const std::string& name, bool& v);
void read_value(const Args& args, const std::string& name, float& v);
void read_value(const Args& args, const std::string& name, double& v);
void read_value(const Args& args, const std::string& name, std::string& v);
void read_value(const Args& args, const std::string& name, std::vector<int64_t>& v);

bool zero_or_one(const Args& args, const std::string& name);  // --mid-attn 1: ArgError for 2
// ArgError when the training set holds fewer images than a batch.
void check_batch_fits(int64_t batch, const diffusion::Dataset& train);

template <class S>
struct Setting {
    const char* name;
    const char* fallback;  // the default; nullptr: a switch (off unless given)
    const char* help;
    const char* metadata;  // the model file's key that keeps it ("" for a setting of the training only)
    std::function<void(S& s, const Args& args, const std::string& name)> read;  // empty: the command reads it
    std::function<std::string(const S& s)> print;                               // "" leaves the key out of config.txt
};

// A row for the field whose address `at(s)` returns: [](auto& s) { return &s.lr; }.
template <class S, class At>
Setting<S> field(const char* name, const char* fallback, const char* help, const char* metadata, At at) {
    auto read = [at](S& s, const Args& a, const std::string& n) { read_value(a, n, *at(s)); };
    return {name, fallback, help, metadata, read, [at](const S& s) { return as_text(*at(s)); }};
}

// A row whose value may be the word auto (`*is_auto(s)` says so): the field is left for
// the command to choose (`train ddpm`'s UNet size, once the input size is known).
template <class S, class At, class IsAuto>
Setting<S> auto_field(const char* name, const char* help, const char* metadata, At at, IsAuto is_auto) {
    auto read = [at, is_auto](S& s, const Args& a, const std::string& n) {
        *is_auto(s) = a.str(n) == "auto";
        if (!*is_auto(s)) read_value(a, n, *at(s));
    };
    return {name, "auto", help, metadata, read, [at](const S& s) { return as_text(*at(s)); }};
}

// The same for an enum, read and written by its library functions (parse_sampler and
// sampler_name, ...): ArgError naming the flag and the words for another word.
template <class S, class At, class Enum>
Setting<S> enum_field(const char* name, const char* fallback, const char* help, const char* metadata,
                      Enum (*parse)(const std::string&), std::string (*word)(Enum), At at) {
    auto read = [at, parse](S& s, const Args& a, const std::string& n) { *at(s) = a.choice(n, parse); };
    return {name, fallback, help, metadata, read, [at, word](const S& s) { return word(*at(s)); }};
}

// Rows every training command shares: --minutes into S's `minutes`; --device, recorded
// as resolved from auto. The command reads --device itself (device_option), so that a cuda
// run's config.txt is still read on a machine without a GPU.
template <class S>
Setting<S> minutes_setting() {
    return field<S>("minutes", "0", "stop after this many minutes of this invocation (0: no time limit)", "",
                    [](auto& s) { return &s.minutes; });
}

template <class S, class At>
Setting<S> device_setting(At at) {
    auto print = [at](const S& s) { return std::string(device_name(*at(s))); };
    return {"device", "auto", "where to train: cuda, cpu, or auto (cuda when a GPU is present)", "", nullptr, print};
}

// --device (cuda, cpu or auto) as a Device: ArgError for another word, td::Error (saying
// why) for cuda on a machine where no GPU can be used.
Device device_option(const Args& args);

// --data, --image-size, --channels into S's `data` and `data_options` (`train ddpm|ldm|vae`).
// config.txt has the last two for a folder only: a built-in data set has its own size.
template <class S>
std::vector<Setting<S>> image_data_settings() {
    auto for_folders = [](Setting<S> row) {
        auto print = row.print;
        row.print = [print](const S& s) { return diffusion::builtin_dataset(s.data).empty() ? print(s) : ""; };
        return row;
    };
    return {
        field<S>("data", "mnist",
                 "data set: mnist, fashion, cifar10, or a folder of IDX files / CIFAR batches / images", "data",
                 [](auto& s) { return &s.data; }),
        for_folders(field<S>("image-size", "32", "folders of images only: resize + center crop to this size", "",
                             [](auto& s) { return &s.data_options.image_size; })),
        for_folders(field<S>("channels", "3", "folders of images only: 1 (grey) or 3 (RGB)", "",
                             [](auto& s) { return &s.data_options.channels; })),
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

// config.txt: `command` and `comments` ("# ..." lines), then a `key = value` line per
// setting with the values the run resolved (the device auto picked, ...).
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
