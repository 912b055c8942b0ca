// tests/test_safetensors.cpp: .safetensors in and out (nn/safetensors.h): our own
// round trip, byte-for-byte agreement with the reference writer's layout, files written
// on the PyTorch side (tests/make_fixtures_nnio.py), loading into a Module by dotted
// names, and a catalogue of corrupt files that must each fail with a clear td::Error.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>

#include "nn/safetensors.h"
#include "tests/helpers.h"

using namespace td;

namespace {

const std::string kDir = "tests/fixtures_nnio/safetensors/";

std::string read_bytes(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    return ss.str();
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), (std::streamsize)bytes.size());
}

// A file image: 8-byte little-endian N, the header (padded to a multiple of 8 unless
// told not to), then the data bytes.
std::string file_image(std::string header, const std::string& data, bool pad = true) {
    if (pad) header += std::string((8 - header.size() % 8) % 8, ' ');
    uint64_t n = header.size();
    std::string out(8, '\0');
    std::memcpy(out.data(), &n, 8);
    return out + header + data;
}

std::string f32_bytes(const std::vector<float>& v) {
    return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

using tdtest::error_of;

using tdtest::contains;

// Exact equality of two tensors (shape, dtype, every value).
void check_same(const Tensor& a, const Tensor& b) {
    REQUIRE(a.defined());
    REQUIRE(b.defined());
    CHECK(a.shape() == b.shape());
    CHECK(a.dtype() == b.dtype());
    if (a.dtype() == DType::Int64 && b.dtype() == DType::Int64) CHECK(a.to_vector_i64() == b.to_vector_i64());
    else CHECK_CLOSE(a, b, 0.0f, 0.0f);
}

// Test modules that mirror the PyTorch module in make_fixtures_nnio.py:
//   Net: down = ModuleList([Block]), out = Linear(4, 2);  Block: conv1 = Conv2d(3, 4, 3), norm1 = GroupNorm(2, 4)
struct Leaf : nn::Module {  // zero-initialised parameters of the given names and shapes
    explicit Leaf(const std::vector<std::pair<std::string, Shape>>& params) {
        for (const auto& [n, s] : params) register_parameter(n, zeros(s));
    }
};
struct Block : nn::Module {
    Block() {
        register_module("conv1", std::make_shared<Leaf>(std::vector<std::pair<std::string, Shape>>{
                                     {"weight", {4, 3, 3, 3}}, {"bias", {4}}}));
        register_module("norm1", std::make_shared<Leaf>(
                                     std::vector<std::pair<std::string, Shape>>{{"weight", {4}}, {"bias", {4}}}));
    }
};
struct Net : nn::Module {
    Net() {
        auto down = std::make_shared<nn::ModuleList>();
        down->push_back(std::make_shared<Block>());
        register_module("down", down);
        register_module("out", std::make_shared<Leaf>(
                                   std::vector<std::pair<std::string, Shape>>{{"weight", {2, 4}}, {"bias", {2}}}));
    }
};
// A module with an int64 buffer as well, for our own round trip.
struct WithBuffer : nn::Module {
    WithBuffer() {
        Generator gen(7);
        register_parameter("weight", randn({3, 2}, gen));
        register_buffer("num_batches", Tensor::from_vector_i64({41}, {}));
    }
};

}  // namespace

TEST_CASE("safetensors: our writer and reader round-trip names, shapes, dtypes and values") {
    Generator gen(1);
    std::map<std::string, Tensor> tensors = {
        {"down.0.conv1.weight", randn({2, 3, 3, 3}, gen)},
        {"labels", Tensor::from_vector_i64({5, -3, 1LL << 40}, {3})},
        {"scalar", scalar_tensor(-2.5f)},
        {"empty", zeros({0, 5})},
        {"transposed", randn({3, 4}, gen).transpose(0, 1)},  // not contiguous: written in logical order
    };
    std::string path = tdtest::scratch("roundtrip.safetensors");
    nn::save_safetensors(path, tensors, {{"format", "pt"}, {"epoch", "3"}});
    CHECK_FALSE(std::filesystem::exists(path + ".tmp"));

    std::map<std::string, std::string> meta;
    std::map<std::string, Tensor> back = nn::load_safetensors(path, &meta);
    CHECK(meta == std::map<std::string, std::string>{{"format", "pt"}, {"epoch", "3"}});
    REQUIRE(back.size() == tensors.size());
    for (const auto& [name, t] : tensors) {
        INFO(name);
        REQUIRE(back.count(name));
        check_same(back.at(name), t.contiguous());
    }

    // The layout: N a multiple of 8, data right after, file size = 8 + N + data.
    std::string bytes = read_bytes(path);
    uint64_t n;
    std::memcpy(&n, bytes.data(), 8);
    CHECK(n % 8 == 0);
    CHECK(bytes.size() == 8 + n + 54 * 4 + 3 * 8 + 4 + 0 + 12 * 4);
}

TEST_CASE("safetensors: our bytes are the reference writer's bytes") {
    // The expected bytes are the test vectors of the reference implementation
    // (huggingface/safetensors, safetensors/src/tensor.rs: test_serialization,
    // test_serialization_forced_alignement, test_empty).
    std::vector<float> v = {0, 1, 2, 3, 4, 5};
    std::string path = tdtest::scratch("reference.safetensors");

    nn::save_safetensors(path, {{"attn.0", Tensor::from_vector(v, {1, 2, 3})}});
    CHECK(read_bytes(path) ==
          file_image("{\"attn.0\":{\"dtype\":\"F32\",\"shape\":[1,2,3],\"data_offsets\":[0,24]}}", f32_bytes(v)));
    CHECK(read_bytes(path).substr(0, 8) == std::string("\x40\0\0\0\0\0\0\0", 8));  // N = 64, no padding needed

    nn::save_safetensors(path, {{"attn0", Tensor::from_vector(v, {1, 1, 2, 3})}});
    std::string forced =
        file_image("{\"attn0\":{\"dtype\":\"F32\",\"shape\":[1,1,2,3],\"data_offsets\":[0,24]}}", f32_bytes(v));
    CHECK(read_bytes(path) == forced);
    CHECK(forced.substr(0, 8) == std::string("\x48\0\0\0\0\0\0\0", 8));  // N = 72: 7 spaces of padding

    nn::save_safetensors(path, {});
    CHECK(read_bytes(path) == std::string("\x08\0\0\0\0\0\0\0{}      ", 16));
    nn::save_safetensors(path, {}, {{"framework", "pt"}});
    CHECK(read_bytes(path) == std::string("\x28\0\0\0\0\0\0\0{\"__metadata__\":{\"framework\":\"pt\"}}     ", 48));

    // And the file the Python side wrote in the reference layout, from the same tensors.
    std::map<std::string, Tensor> ours;
    for (const char* name : {"b.weight", "a.bias", "a.steps", "scalar"})
        ours[name] = load_npy(kDir + "ours/" + name + ".npy");
    nn::save_safetensors(path, ours, {{"format", "pt"}});
    CHECK(read_bytes(path) == read_bytes(kDir + "ours.safetensors"));
}

TEST_CASE("safetensors: a file written on the PyTorch side loads with its names, dtypes and values") {
    std::map<std::string, std::string> meta;
    std::map<std::string, Tensor> t = nn::load_safetensors(kDir + "dtypes.safetensors", &meta);
    CHECK(meta["format"] == "pt");
    CHECK(meta["note"] == "tinydiffusion \"fixture\"");  // an escaped quote inside a JSON string
    std::vector<std::string> names = {"down.0.conv1.weight",
                                      "down.0.conv1.bias",
                                      "mid.attn.to_qkv.weight",
                                      "out.scale",
                                      "up.1.norm.weight",
                                      "time_embed.freqs",
                                      "labels",
                                      "step",
                                      "empty"};
    CHECK(t.size() == names.size());
    for (const std::string& name : names) {
        INFO(name);
        REQUIRE(t.count(name));
        // F16 / BF16 widen to float32 exactly; F64 narrows to float32 with the same rounding load_npy uses.
        check_same(t.at(name), load_npy(kDir + "dtypes/" + name + ".npy"));
    }
    CHECK(t.at("mid.attn.to_qkv.weight").dtype() == DType::Float32);  // was F16
    CHECK(t.at("up.1.norm.weight").dtype() == DType::Float32);        // was BF16
    CHECK(t.at("labels").dtype() == DType::Int64);
    CHECK(t.at("step").shape() == Shape{});
    CHECK(t.at("step").to_vector_i64() == std::vector<int64_t>{12345});
    CHECK(t.at("empty").shape() == Shape{0, 3});
    // out.scale holds 65504 (largest half) and two subnormals
    std::vector<float> scale = t.at("out.scale").to_vector();
    CHECK(scale[3] == 65504.0f);
    CHECK(scale[5] == std::ldexp(1.0f, -23));
}

TEST_CASE("safetensors: F16 and BF16 special values convert exactly") {
    // F16 bits: 1.0, -0, smallest subnormal 2^-24, +inf, -inf, NaN; BF16 bits: 1.0, -2.0, -inf
    std::vector<uint16_t> half = {0x3C00, 0x8000, 0x0001, 0x7C00, 0xFC00, 0x7E00};
    std::vector<uint16_t> bf = {0x3F80, 0xC000, 0xFF80};
    std::string data(reinterpret_cast<const char*>(half.data()), 12);
    data += std::string(reinterpret_cast<const char*>(bf.data()), 6);
    std::string path = tdtest::scratch("special.safetensors");
    write_bytes(path, file_image("{\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[0,12]},"
                                 "\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[12,18]}}",
                                 data));
    auto t = nn::load_safetensors(path);
    std::vector<float> h = t.at("h").to_vector(), b = t.at("b").to_vector();
    CHECK(h[0] == 1.0f);
    CHECK((h[1] == 0.0f && std::signbit(h[1])));
    CHECK(h[2] == std::ldexp(1.0f, -24));
    CHECK(h[3] == INFINITY);
    CHECK(h[4] == -INFINITY);
    CHECK(std::isnan(h[5]));
    CHECK(b == std::vector<float>{1.0f, -2.0f, -INFINITY});
}

TEST_CASE("safetensors: names with escapes and non-ASCII characters survive both ways") {
    std::string odd = "quote\" back\\slash\nnewline\x01 caf\xC3\xA9 \xF0\x9F\x98\x80";
    std::string path = tdtest::scratch("names.safetensors");
    nn::save_safetensors(path, {{odd, ones({1})}});
    CHECK(nn::load_safetensors(path).count(odd) == 1);
    // \uXXXX escapes as other writers produce them, a surrogate pair included
    write_bytes(path, file_image("{\"caf\\u00e9 \\ud83d\\ude00 \\/\\t\":{\"dtype\":\"F32\",\"shape\":[],"
                                 "\"data_offsets\":[0,4]}}",
                                 f32_bytes({1.0f})));
    CHECK(nn::load_safetensors(path).count("caf\xC3\xA9 \xF0\x9F\x98\x80 /\t") == 1);
}

TEST_CASE("safetensors: load_module fills a Module by PyTorch's dotted names") {
    Net net;
    nn::load_module(kDir + "module.safetensors", net);
    std::vector<std::string> names = {"down.0.conv1.weight", "down.0.conv1.bias", "down.0.norm1.weight",
                                      "down.0.norm1.bias",   "out.weight",        "out.bias"};
    auto state = net.state_dict();
    CHECK(state.size() == names.size());
    for (const std::string& name : names) {
        INFO(name);
        REQUIRE(state.count(name));
        check_same(state.at(name), load_npy(kDir + "module/" + name + ".npy"));
        CHECK(state.at(name).requires_grad());  // still the module's own parameter
    }

    // save_module -> load_module into a fresh model: the same values, "format": "pt" in the metadata.
    std::string path = tdtest::scratch("net.safetensors");
    nn::save_module(path, net);
    std::map<std::string, std::string> meta;
    nn::load_safetensors(path, &meta);
    CHECK(meta["format"] == "pt");
    CHECK(read_bytes(path) == read_bytes(kDir + "module.safetensors"));  // the reference layout, byte for byte
    Net copy;
    nn::load_module(path, copy);
    for (const auto& [name, t] : copy.state_dict()) check_same(t.detach(), state.at(name).detach());

    // An int64 buffer goes through too.
    WithBuffer wb, wb2;
    {
        NoGradGuard ng;
        wb2.state_dict().at("weight").fill_(0.0f);
        wb2.state_dict().at("num_batches").data_i64()[0] = 0;
    }
    std::string buffer_path = tdtest::scratch("with_buffer.safetensors");
    nn::save_module(buffer_path, wb);
    nn::load_module(buffer_path, wb2);
    check_same(wb2.state_dict().at("num_batches"), wb.state_dict().at("num_batches"));
    check_same(wb2.state_dict().at("weight").detach(), wb.state_dict().at("weight").detach());
}

TEST_CASE("safetensors: ModuleList and ModuleDict nest names as PyTorch's containers do") {
    auto leaf = [] { return std::make_shared<Leaf>(std::vector<std::pair<std::string, Shape>>{{"weight", {2}}}); };
    nn::ModuleDict level;
    auto blocks = level.add("block", std::make_shared<nn::ModuleList>());
    blocks->push_back(leaf());
    blocks->push_back(leaf());
    level.add("downsample", std::make_shared<nn::ModuleDict>())->add("conv", leaf());
    std::vector<std::string> names;
    for (auto& [n, p] : level.named_parameters()) names.push_back(n);
    CHECK(names == std::vector<std::string>{"block.0.weight", "block.1.weight", "downsample.conv.weight"});
    CHECK(blocks->size() == 2);
    CHECK(tdtest::contains(tdtest::error_of([&] { level.add("block", leaf()); }), "'block' added twice"));
}

TEST_CASE("safetensors: load_module reports mismatches with the file name and leaves the module unchanged") {
    // The PyTorch file has 6 tensors; a file without out.bias and with an extra tensor:
    std::map<std::string, Tensor> tensors = nn::load_safetensors(kDir + "module.safetensors");
    tensors.erase("out.bias");
    tensors["extra.weight"] = ones({2});
    std::string path = tdtest::scratch("partial.safetensors");
    nn::save_safetensors(path, tensors);

    Net net;
    std::string msg = error_of([&] { nn::load_module(path, net); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "missing: out.bias"));
    CHECK(contains(msg, "unexpected: extra.weight"));
    for (const auto& [_, t] : net.state_dict()) CHECK(t.to_vector() == std::vector<float>(t.numel(), 0.0f));

    // Not strict: what matches is loaded, the rest is left alone.
    nn::load_module(path, net, /*strict=*/false);
    check_same(net.state_dict().at("out.weight").detach(), load_npy(kDir + "module/out.weight.npy"));
    CHECK(net.state_dict().at("out.bias").to_vector() == std::vector<float>{0.0f, 0.0f});

    // A shape mismatch fails even when not strict.
    tensors["out.bias"] = ones({3});
    nn::save_safetensors(path, tensors);
    msg = error_of([&] { nn::load_module(path, net, false); });
    CHECK(contains(msg, path));
    CHECK(contains(msg, "shape mismatch: out.bias"));
}

TEST_CASE("safetensors: every malformed file is a td::Error naming the file and the problem") {
    // A valid file to cut and corrupt: one F32 tensor of 2 values.
    const std::string ok_header = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    const std::string ok = file_image(ok_header, f32_bytes({1.0f, 2.0f}));
    auto entry = [](const std::string& name, const std::string& dtype, const std::string& shape, int b, int e) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" +
               std::to_string(b) + "," + std::to_string(e) + "]}";
    };
    const std::string four = f32_bytes({1.0f}), eight = f32_bytes({1.0f, 2.0f}), twelve = f32_bytes({1, 2, 3});
    std::string deep = std::string(100, '[') + std::string(100, ']');
    std::string huge_n = file_image("{}", "");  // N = 255 in a 16-byte file
    huge_n[0] = '\xff';

    struct Case {
        const char* what;
        std::string bytes;
        const char* expected;  // a phrase the message must contain
    };
    std::vector<Case> cases = {
        {"empty file", "", "truncated header"},
        {"shorter than the header length", std::string("\x10\0\0\0", 4), "truncated header"},
        {"truncated in the header", ok.substr(0, 8 + 20), "larger than the file"},
        {"header length larger than the file", huge_n, "larger than the file"},
        {"truncated in the data", ok.substr(0, ok.size() - 3), "run past the end of the data section"},
        {"extra bytes after the data", ok + "xx", "extra bytes after the last tensor"},
        {"bad JSON: missing brace", file_image("{" + entry("w", "F32", "[2]", 0, 8), eight), "invalid JSON"},
        {"bad JSON: misspelt literal", file_image("{\"w\":tru}", ""), "invalid JSON"},
        {"bad JSON: single quotes", file_image("{'w':1}", ""), "expected a string key"},
        {"bad JSON: trailing text", file_image("{} x", "", false), "after the end of the JSON value"},
        {"bad JSON: trailing comma", file_image("{\"a\":1,}", ""), "expected a string key"},
        {"bad JSON: unknown escape", file_image("{\"a\\q\":1}", ""), "unknown escape"},
        {"bad JSON: raw newline in a string", file_image("{\"a\nb\":1}", ""), "raw control character"},
        {"bad JSON: lone surrogate", file_image("{\"\\udc00\":1}", ""), "surrogate"},
        {"bad JSON: nested too deep", file_image(deep, ""), "nested more than"},
        {"header not an object", file_image("[1,2]", ""), "should be a JSON object"},
        {"entry not an object", file_image("{\"w\":3}", ""), "tensor 'w' should be an object"},
        {"missing field", file_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", four), "needs \"dtype\""},
        {"unknown dtype", file_image("{" + entry("w", "F33", "[2]", 0, 8) + "}", eight), "unknown dtype 'F33'"},
        {"unsupported dtype", file_image("{" + entry("w", "I32", "[2]", 0, 8) + "}", eight), "not supported"},
        {"offsets out of range", file_image("{" + entry("w", "F32", "[100]", 0, 400) + "}", eight),
         "run past the end of the data section"},
        {"offsets reversed", file_image("{" + entry("w", "F32", "[1]", 8, 4) + "}", eight), "end before they begin"},
        {"offsets overlapping",
         file_image("{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}", twelve),
         "'b' (data_offsets [4, 12]) overlaps tensor 'a'"},
        {"gap between tensors",
         file_image("{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 8, 12) + "}", twelve),
         "no gap"},
        {"shape smaller than the offsets", file_image("{" + entry("w", "F32", "[3]", 0, 16) + "}", eight + eight),
         "needs 12 bytes but data_offsets [0, 16] span 16"},
        {"shape larger than the offsets", file_image("{" + entry("w", "F32", "[2,3]", 0, 8) + "}", eight),
         "is too large for its data_offsets [0, 8]"},
        {"shape too large (would overflow)",
         file_image("{" + entry("w", "F32", "[4294967296,4294967296,4294967296]", 0, 8) + "}", eight), "too large"},
        {"negative dimension", file_image("{" + entry("w", "F32", "[-1]", 0, 4) + "}", four),
         "must be a non-negative integer, got -1"},
        {"fractional offset", file_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.0]}}", four),
         "must be a non-negative integer, got 4.0"},
        {"huge offset",
         file_image("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,99999999999999999999]}}", four),
         "is too large"},
        {"duplicate name",
         file_image("{" + entry("w", "F32", "[1]", 0, 4) + "," + entry("w", "F32", "[1]", 0, 4) + "}", four),
         "appears twice"},
        {"metadata not strings", file_image("{\"__metadata__\":{\"epoch\":3}}", ""),
         "value of 'epoch' should be a string"},
    };
    for (size_t i = 0; i < cases.size(); ++i) {
        const Case& c = cases[i];
        std::string path = tdtest::scratch("corrupt_" + std::to_string(i) + ".safetensors");
        write_bytes(path, c.bytes);
        std::string msg = error_of([&] { nn::load_safetensors(path); });
        INFO(c.what, ": ", msg);
        CHECK(contains(msg, path));
        CHECK(contains(msg, c.expected));
    }
    // The valid file itself loads.
    std::string path = tdtest::scratch("valid.safetensors");
    write_bytes(path, ok);
    CHECK(nn::load_safetensors(path).at("w").to_vector() == std::vector<float>{1.0f, 2.0f});
    // A missing file.
    std::string missing = tdtest::scratch("no_such_file.safetensors");
    std::filesystem::remove(missing);
    CHECK(contains(error_of([&] { nn::load_safetensors(missing); }), missing + ": cannot open"));
    // A directory.
    std::string dir = std::filesystem::path(missing).parent_path().string();
    CHECK(contains(error_of([&] { nn::load_safetensors(dir); }), dir + ":"));
}

TEST_CASE("safetensors: save refuses what it cannot write, naming the file") {
    std::string path = tdtest::scratch("refused.safetensors");
    CHECK(contains(error_of([&] { nn::save_safetensors(path, {{"__metadata__", ones({1})}}); }), "reserved"));
    CHECK(contains(error_of([&] { nn::save_safetensors(path, {{"w", Tensor()}}); }), "'w' is undefined"));
    std::string no_dir = tdtest::scratch("no_such_dir") + "/x.safetensors";
    std::filesystem::remove_all(tdtest::scratch("no_such_dir"));
    CHECK(contains(error_of([&] { nn::save_safetensors(no_dir, {{"w", ones({1})}}); }), no_dir));
}
