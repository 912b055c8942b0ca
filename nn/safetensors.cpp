// nn/safetensors.cpp: reading and writing .safetensors files (see safetensors.h).
//
// Reading trusts nothing it has not checked:
//   1. the 8-byte header length, against the file size;
//   2. the header, parsed as JSON by the small parser below;
//   3. each tensor entry: a known dtype, a shape whose size fits the file, data_offsets
//      that lie inside the data section, span exactly shape x dtype-size bytes, and tile
//      the section without overlaps or gaps.
// Only then is anything allocated and read.
#include "nn/safetensors.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <utility>
#include <vector>

#include "tensor/error.h"
#include "tensor/file_bytes.h"

namespace td::nn {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian and this code copies it as it is");

namespace {

// ---- a small JSON parser, enough for a safetensors header ----------------------------------
// RFC 8259: value = object | array | string | number | true | false | null. Numbers are
// kept as their text, so an offset such as 123456789012 is read back exactly (a double
// would round integers above 2^53).

struct Member;  // "key": value, defined below: a Json holds Members that hold Jsons

struct Json {
    enum class Kind { Null, Bool, Number, String, Array, Object };
    Kind kind = Kind::Null;
    bool boolean = false;
    std::string text;             // a String's decoded value, a Number's literal
    std::vector<Json> items;      // an Array's elements
    std::vector<Member> members;  // an Object's members, in file order
};

// (Not a std::pair<std::string, Json>: a pair may not hold the incomplete Json above;
// GCC lets it pass, clang with libstdc++ does not. A vector of a type completed later is fine.)
struct Member {
    std::string key;
    Json value;
};

const char* kind_name(Json::Kind k) {
    switch (k) {
        case Json::Kind::Null: return "null";
        case Json::Kind::Bool: return "a boolean";
        case Json::Kind::Number: return "a number";
        case Json::Kind::String: return "a string";
        case Json::Kind::Array: return "an array";
        case Json::Kind::Object: return "an object";
    }
    return "?";
}

class JsonParser {
public:
    JsonParser(const std::string& text, const std::string& path) : s_(text), path_(path) {}

    // The whole text is one value, then only whitespace (a header's padding spaces).
    Json parse_document() {
        Json v = parse_value(0);
        skip_space();
        if (pos_ < s_.size()) error("unexpected '", here(), "' after the end of the JSON value");
        return v;
    }

private:
    const std::string& s_;
    const std::string& path_;
    size_t pos_ = 0;
    // A header nests 3 levels deep; the limit stops a hostile "[[[[..." from exhausting the stack.
    static constexpr int kMaxDepth = 64;

    template <typename... Parts>
    [[noreturn]] void error(const Parts&... parts) const {
        fail(path_, ": invalid JSON in the safetensors header at byte ", pos_, ": ", parts...);
    }
    std::string here() const { return printable(s_.substr(pos_, 1)); }  // the byte at pos_, printable
    std::string found() const { return pos_ < s_.size() ? " but found '" + here() + "'" : " but the header ended"; }
    bool more() const { return pos_ < s_.size(); }
    bool is_digit() const { return more() && s_[pos_] >= '0' && s_[pos_] <= '9'; }
    void skip_space() {
        while (more() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
    }
    void expect(char c) {
        skip_space();
        if (!more() || s_[pos_] != c) error("expected '", c, "'", found());
        ++pos_;
    }
    bool consume_word(const char* word) {
        size_t n = std::strlen(word);
        if (s_.compare(pos_, n, word) != 0) return false;
        pos_ += n;
        return true;
    }

    Json parse_value(int depth) {
        if (depth > kMaxDepth) error("nested more than ", kMaxDepth, " levels deep");
        skip_space();
        if (!more()) error("expected a value but the header ended");
        Json v;
        char c = s_[pos_];
        if (c == '{') return parse_object(depth);
        if (c == '[') return parse_array(depth);
        if (c == '"') {
            v.kind = Json::Kind::String;
            v.text = parse_string();
        } else if (c == '-' || (c >= '0' && c <= '9')) {
            v.kind = Json::Kind::Number;
            v.text = parse_number();
        } else if (consume_word("true") || consume_word("false")) {
            v.kind = Json::Kind::Bool;
            v.boolean = c == 't';
        } else if (!consume_word("null")) {
            error("expected a value", found());
        }
        return v;
    }

    Json parse_object(int depth) {
        Json v;
        v.kind = Json::Kind::Object;
        ++pos_;  // '{'
        skip_space();
        if (more() && s_[pos_] == '}') return ++pos_, v;
        while (true) {
            skip_space();
            if (!more() || s_[pos_] != '"') error("expected a string key", found());
            std::string key = parse_string();
            expect(':');
            v.members.push_back(Member{std::move(key), parse_value(depth + 1)});
            skip_space();
            if (more() && s_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (more() && s_[pos_] == '}') return ++pos_, v;
            error("expected ',' or '}' in an object", found());
        }
    }

    Json parse_array(int depth) {
        Json v;
        v.kind = Json::Kind::Array;
        ++pos_;  // '['
        skip_space();
        if (more() && s_[pos_] == ']') return ++pos_, v;
        while (true) {
            v.items.push_back(parse_value(depth + 1));
            skip_space();
            if (more() && s_[pos_] == ',') {
                ++pos_;
                continue;
            }
            if (more() && s_[pos_] == ']') return ++pos_, v;
            error("expected ',' or ']' in an array", found());
        }
    }

    // A string with its escapes decoded to UTF-8: \" \\ \/ \b \f \n \r \t \uXXXX.
    std::string parse_string() {
        ++pos_;  // the opening quote
        std::string out;
        while (true) {
            if (!more()) error("unterminated string");
            unsigned char c = (unsigned char)s_[pos_++];
            if (c == '"') return out;
            if (c < 0x20) error("raw control character (code ", (int)c, ") inside a string");
            if (c != '\\') {
                out += (char)c;
                continue;
            }
            if (!more()) error("unterminated string");
            char e = s_[pos_++];
            switch (e) {
                case '"': out += '"'; break;
                case '\\': out += '\\'; break;
                case '/': out += '/'; break;
                case 'b': out += '\b'; break;
                case 'f': out += '\f'; break;
                case 'n': out += '\n'; break;
                case 'r': out += '\r'; break;
                case 't': out += '\t'; break;
                case 'u': append_utf8(out, parse_unicode_escape()); break;
                default: --pos_, error("unknown escape '\\", printable(std::string(1, e)), "'");
            }
        }
    }

    uint32_t hex4() {
        if (pos_ + 4 > s_.size()) error("truncated \\u escape");
        uint32_t v = 0;
        for (int i = 0; i < 4; ++i) {
            char h = s_[pos_];
            int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
            if (d < 0) error("bad hex digit '", here(), "' in a \\u escape");
            v = v * 16 + (uint32_t)d;
            ++pos_;
        }
        return v;
    }

    // \uXXXX, where a character beyond U+FFFF comes as a UTF-16 pair \uD8xx\uDCxx.
    uint32_t parse_unicode_escape() {
        uint32_t cp = hex4();
        if (cp >= 0xDC00 && cp <= 0xDFFF) error("unpaired UTF-16 low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (s_.compare(pos_, 2, "\\u") != 0) error("UTF-16 high surrogate without its low half");
            pos_ += 2;
            uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) error("UTF-16 high surrogate without its low half");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        return cp;
    }

    static void append_utf8(std::string& out, uint32_t cp) {
        if (cp < 0x80) {
            out += (char)cp;
        } else if (cp < 0x800) {
            out += (char)(0xC0 | (cp >> 6));
            out += (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += (char)(0xE0 | (cp >> 12));
            out += (char)(0x80 | ((cp >> 6) & 0x3F));
            out += (char)(0x80 | (cp & 0x3F));
        } else {
            out += (char)(0xF0 | (cp >> 18));
            out += (char)(0x80 | ((cp >> 12) & 0x3F));
            out += (char)(0x80 | ((cp >> 6) & 0x3F));
            out += (char)(0x80 | (cp & 0x3F));
        }
    }

    // -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?, returned as text.
    std::string parse_number() {
        size_t start = pos_;
        if (s_[pos_] == '-') ++pos_;
        if (more() && s_[pos_] == '0') ++pos_;
        else if (is_digit())
            while (is_digit()) ++pos_;
        else error("malformed number");
        if (more() && s_[pos_] == '.') {
            ++pos_;
            if (!is_digit()) error("malformed number: no digit after '.'");
            while (is_digit()) ++pos_;
        }
        if (more() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            ++pos_;
            if (more() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
            if (!is_digit()) error("malformed number: no digit in the exponent");
            while (is_digit()) ++pos_;
        }
        return s_.substr(start, pos_ - start);
    }
};

// ---- dtypes ------------------------------------------------------------------------------------

// Every dtype the format defines, with its element size; `supported` marks those we read.
struct DTypeInfo {
    const char* name;
    int64_t size;
    bool supported;
};
const DTypeInfo kDTypes[] = {
    {"BOOL", 1, false}, {"U8", 1, false},  {"I8", 1, false}, {"F8_E5M2", 1, false}, {"F8_E4M3", 1, false},
    {"I16", 2, false},  {"U16", 2, false}, {"F16", 2, true}, {"BF16", 2, true},     {"I32", 4, false},
    {"U32", 4, false},  {"F32", 4, true},  {"F64", 8, true}, {"I64", 8, true},      {"U64", 8, false},
};

// IEEE half precision (1 sign, 5 exponent, 10 mantissa bits, bias 15) to float32.
float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exponent = (h >> 10) & 0x1F;
    uint32_t mantissa = h & 0x3FF;
    if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
        float v = std::ldexp((float)mantissa, -24);
        return sign ? -v : v;
    }
    uint32_t bits = exponent == 0x1F ? sign | 0x7F800000u | (mantissa << 13)                     // inf or NaN
                                     : sign | ((exponent + 127 - 15) << 23) | (mantissa << 13);  // rebias
    return std::bit_cast<float>(bits);
}

// bfloat16 is the top half of a float32: put the 16 bits back on top.
float bfloat16_to_float(uint16_t b) { return std::bit_cast<float>((uint32_t)b << 16); }

// ---- the header's tensor entries ---------------------------------------------------------------

// At most 64 dimensions (NumPy's limit; PyTorch's is lower), and at most 2^40 elements
// even in an empty tensor (shape [0, 10^18] holds no data, yet its strides would overflow).
constexpr size_t kMaxDims = 64;
constexpr int64_t kMaxElements = int64_t(1) << 40;

struct Entry {
    std::string name;
    const DTypeInfo* dtype = nullptr;
    Shape shape;
    int64_t numel = 0;
    int64_t begin = 0, end = 0;  // data_offsets, relative to the data section
};

// A JSON number that must be a non-negative integer (a dimension, an offset).
int64_t as_size(const Json& v, const std::string& path, const std::string& what) {
    check(
        v.kind == Json::Kind::Number && !v.text.empty() && v.text.find_first_not_of("0123456789") == std::string::npos,
        path, ": ", what, " must be a non-negative integer, got ",
        v.kind == Json::Kind::Number ? printable(v.text) : kind_name(v.kind));
    check(v.text.size() <= 18, path, ": ", what, " = ", printable(v.text), " is too large");
    return std::stoll(v.text);
}

const Json* member(const Json& obj, const char* key) {
    for (const auto& [k, v] : obj.members)
        if (k == key) return &v;
    return nullptr;
}

Entry parse_entry(const std::string& name, const Json& v, const std::string& path, int64_t data_size) {
    std::string where = "tensor '" + printable(name) + "'";
    check(v.kind == Json::Kind::Object, path, ": ", where, " should be an object, got ", kind_name(v.kind));
    const Json* dtype = member(v, "dtype");
    const Json* shape = member(v, "shape");
    const Json* offsets = member(v, "data_offsets");
    check(dtype && shape && offsets, path, ": ", where, " needs \"dtype\", \"shape\" and \"data_offsets\"");
    Entry e;
    e.name = name;

    check(dtype->kind == Json::Kind::String, path, ": ", where, ": dtype should be a string, got ",
          kind_name(dtype->kind));
    for (const DTypeInfo& d : kDTypes)
        if (dtype->text == d.name) e.dtype = &d;
    check(e.dtype != nullptr, path, ": ", where, ": unknown dtype '", printable(dtype->text), "'");
    check(e.dtype->supported, path, ": ", where, ": dtype ", dtype->text,
          " is not supported (tinydiffusion reads F32, F64, F16, BF16 and I64)");

    check(offsets->kind == Json::Kind::Array && offsets->items.size() == 2, path, ": ", where,
          ": data_offsets should be an array [begin, end]");
    e.begin = as_size(offsets->items[0], path, where + ": data_offsets begin");
    e.end = as_size(offsets->items[1], path, where + ": data_offsets end");
    std::string range = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
    check(e.begin <= e.end, path, ": ", where, ": ", range, " end before they begin");
    check(e.end <= data_size, path, ": ", where, ": ", range, " run past the end of the data section (", data_size,
          " bytes): the file is truncated or the offsets are wrong");

    check(shape->kind == Json::Kind::Array, path, ": ", where, ": shape should be an array, got ",
          kind_name(shape->kind));
    check(shape->items.size() <= kMaxDims, path, ": ", where, ": shape has ", shape->items.size(),
          " dimensions (at most ", kMaxDims, ")");
    for (const Json& d : shape->items) e.shape.push_back(as_size(d, path, where + ": a dimension of shape"));
    // The element count, compared with the bytes the offsets span before each
    // multiplication, so that a hostile shape can neither overflow int64 nor make us
    // allocate more than the file holds. A 0 anywhere makes the tensor empty (span 0),
    // but the other dimensions still size its strides: their product is bounded too.
    int64_t span = e.end - e.begin;
    bool empty = std::find(e.shape.begin(), e.shape.end(), 0) != e.shape.end();
    int64_t nonzero = 1;  // the product of the non-zero dimensions
    for (int64_t d : e.shape) {
        if (d == 0) continue;
        check(nonzero <= kMaxElements / d, path, ": ", where, ": shape ", e.shape, " has over 2^40 elements");
        check(empty || nonzero <= span / e.dtype->size / d, path, ": ", where, ": shape ", e.shape, " of ",
              e.dtype->name, " is too large for its ", range, " (", span, " bytes)");
        nonzero *= d;
    }
    e.numel = empty ? 0 : nonzero;
    check(span == e.numel * e.dtype->size, path, ": ", where, ": shape ", e.shape, " of ", e.dtype->name, " needs ",
          e.numel * e.dtype->size, " bytes but ", range, " span ", span);
    return e;
}

// ---- the header as a whole ---------------------------------------------------------------------

struct Header {
    std::vector<Entry> entries;  // in the header's order
    std::map<std::string, std::string> metadata;
};

// The 8-byte header length N at the start of every file, checked against the file size.
int64_t header_length(const uint8_t* first8, int64_t file_size, const std::string& path) {
    check(file_size >= 8, path, ": truncated header: the file has ", file_size,
          " bytes, fewer than the 8-byte header length that starts a safetensors file");
    uint64_t n = 0;
    std::memcpy(&n, first8, 8);  // little-endian, as this machine (static_assert above)
    check(n <= (uint64_t)(file_size - 8), path, ": header length ", n, " is larger than the file (", file_size,
          " bytes): truncated, or not a safetensors file");
    check(n <= 100000000, path, ": header length ", n, " exceeds the 100 MB limit of the format");
    return (int64_t)n;
}

// Parses the JSON header and checks every entry against a data section of data_size
// bytes: each one on its own, then all together (sorted by offset, they must tile the
// data section exactly: no overlap, no gap, nothing after the last one).
Header parse_header(const std::string& text, int64_t data_size, const std::string& path) {
    Json root = JsonParser(text, path).parse_document();
    check(root.kind == Json::Kind::Object, path, ": the safetensors header should be a JSON object, got ",
          kind_name(root.kind));
    Header h;
    std::set<std::string> seen;  // (a set, not a scan of `entries`: a header may list a million names)
    for (const auto& [name, value] : root.members) {
        if (name == "__metadata__") {
            check(value.kind == Json::Kind::Object, path, ": __metadata__ should be an object of strings");
            for (const auto& [k, v] : value.members) {
                check(v.kind == Json::Kind::String, path, ": __metadata__ value of '", printable(k),
                      "' should be a string, got ", kind_name(v.kind));
                h.metadata[k] = v.text;
            }
            continue;
        }
        check(seen.insert(name).second, path, ": tensor '", printable(name), "' appears twice in the header");
        h.entries.push_back(parse_entry(name, value, path, data_size));
    }
    std::vector<const Entry*> by_offset;
    for (const Entry& e : h.entries) by_offset.push_back(&e);
    std::sort(by_offset.begin(), by_offset.end(),
              [](const Entry* a, const Entry* b) { return std::pair(a->begin, a->end) < std::pair(b->begin, b->end); });
    int64_t covered = 0;  // the data section [0, covered) belongs to the tensors seen so far
    std::string previous = "the start of the data section";
    for (const Entry* e : by_offset) {
        std::string name = printable(e->name);
        check(e->begin >= covered, path, ": tensor '", name, "' (data_offsets [", e->begin, ", ", e->end,
              "]) overlaps ", previous, " (which ends at ", covered, ")");
        check(e->begin == covered, path, ": tensor '", name, "' begins at ", e->begin, " but ", previous, " ends at ",
              covered, ": the format allows no gap between tensors");
        covered = e->end;
        previous = "tensor '" + name + "'";
    }
    check(covered == data_size, path, ": the data section has ", data_size, " bytes but the tensors end at ", covered,
          " (extra bytes after the last tensor)");
    return h;
}

// Makes entry e's tensor from its e.end - e.begin bytes, which fetch(dst, nbytes) copies
// to dst (from the file, or from memory): straight into the tensor when the bytes are
// already our layout (F32, I64), through a scratch buffer when they need converting.
Tensor make_tensor(const Entry& e, const std::function<void(char*, int64_t)>& fetch) {
    std::string dt = e.dtype->name;
    int64_t nbytes = e.end - e.begin;
    if (dt == "F32" || dt == "I64") {
        Tensor t = Tensor::empty(e.shape, dt == "F32" ? DType::Float32 : DType::Int64);
        if (nbytes > 0) fetch(static_cast<char*>(t.impl()->storage->data), nbytes);
        return t;
    }
    std::vector<char> raw(nbytes);
    if (nbytes > 0) fetch(raw.data(), nbytes);
    Tensor t = Tensor::empty(e.shape);
    float* out = t.data_f32();
    for (int64_t i = 0; i < e.numel; ++i) {
        if (dt == "F64") {
            double d;
            std::memcpy(&d, raw.data() + 8 * i, 8);
            out[i] = (float)d;
        } else {
            uint16_t h;
            std::memcpy(&h, raw.data() + 2 * i, 2);
            out[i] = dt == "F16" ? half_to_float(h) : bfloat16_to_float(h);
        }
    }
    return t;
}

}  // namespace

// A JSON string literal, escaped as serde_json (the reference writer's JSON library) does.
std::string json_quote(const std::string& s) {
    std::string out = "\"";
    for (unsigned char c : s) {
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                if (c < 0x20) {
                    char buf[8];
                    std::snprintf(buf, sizeof buf, "\\u%04x", c);
                    out += buf;
                } else {
                    out += (char)c;
                }
        }
    }
    return out + "\"";
}

// ---- reading -------------------------------------------------------------------------------------

std::map<std::string, Tensor> load_safetensors(const std::string& path, std::map<std::string, std::string>* metadata) {
    std::ifstream f(path, std::ios::binary);
    check(f.good(), path, ": cannot open file");
    f.seekg(0, std::ios::end);
    int64_t file_size = (int64_t)f.tellg();
    check(file_size >= 0, path, ": cannot read the file (is it a directory?)");
    f.seekg(0);

    // 1. N, the header length; 2. the header, every entry checked against the file size.
    uint8_t first8[8] = {};
    f.read(reinterpret_cast<char*>(first8), 8);
    int64_t n = header_length(first8, file_size, path);
    std::string text((size_t)n, '\0');
    f.read(text.data(), (std::streamsize)n);
    check(f.good(), path, ": read error in the header");
    int64_t data_start = 8 + n;
    Header h = parse_header(text, file_size - data_start, path);

    // 3. Only now the tensors, each read straight from the file.
    std::map<std::string, Tensor> out;
    for (const Entry& e : h.entries)
        out[e.name] = make_tensor(e, [&](char* dst, int64_t nbytes) {
            f.seekg(data_start + e.begin);
            f.read(dst, (std::streamsize)nbytes);
            check(f.good(), path, ": read error in tensor '", printable(e.name), "'");
        });
    if (metadata) *metadata = h.metadata;
    return out;
}

std::map<std::string, Tensor> load_safetensors_bytes(const uint8_t* data, size_t size, const std::string& name,
                                                     std::map<std::string, std::string>* metadata) {
    int64_t n = header_length(data, (int64_t)size, name);  // (reads the 8 bytes only when size >= 8)
    int64_t data_start = 8 + n;
    Header h =
        parse_header(std::string(reinterpret_cast<const char*>(data) + 8, (size_t)n), (int64_t)size - data_start, name);
    std::map<std::string, Tensor> out;
    for (const Entry& e : h.entries)
        out[e.name] = make_tensor(
            e, [&](char* dst, int64_t nbytes) { std::memcpy(dst, data + data_start + e.begin, (size_t)nbytes); });
    if (metadata) *metadata = h.metadata;
    return out;
}

// ---- writing -------------------------------------------------------------------------------------

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
    std::vector<std::pair<std::string, Tensor>> items;
    for (const auto& [name, t] : tensors) {
        check(name != "__metadata__", "save_safetensors ", path, ": '__metadata__' is reserved, not a tensor name");
        check(t.defined(), "save_safetensors ", path, ": tensor '", name, "' is undefined");
        items.emplace_back(name,
                           t.detach().to(Device::CPU).contiguous());  // written from host memory, whatever the device
    }
    // The reference writer's order: larger dtypes first (I64 before F32), then by name.
    // Keeping it makes our files byte-identical to safetensors.torch.save_file's.
    std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) {
        return a.second.dtype() == DType::Int64 && b.second.dtype() != DType::Int64;
    });

    // The header: compact JSON, "__metadata__" first, then the tensors in data order.
    std::string header = "{";
    if (!metadata.empty()) {
        header += "\"__metadata__\":{";
        for (const auto& [k, v] : metadata) header += json_quote(k) + ":" + json_quote(v) + ",";
        header.back() = '}';
        header += ",";
    }
    int64_t offset = 0;
    for (const auto& [name, t] : items) {
        int64_t nbytes = t.numel() * (int64_t)dtype_size(t.dtype());
        std::string shape = "[";
        for (int64_t d : t.shape()) shape += std::to_string(d) + ",";
        if (shape.size() > 1) shape.pop_back();
        header += json_quote(name) + ":{\"dtype\":\"" + (t.dtype() == DType::Int64 ? "I64" : "F32") +
                  "\",\"shape\":" + shape + "],\"data_offsets\":[" + std::to_string(offset) + "," +
                  std::to_string(offset + nbytes) + "]},";
        offset += nbytes;
    }
    if (header.size() > 1) header.pop_back();  // the last ','
    header += "}";
    header += std::string((8 - header.size() % 8) % 8, ' ');  // pad: the data starts 8-byte aligned

    std::string tmp = path + ".tmp";
    {
        std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
        check(f.good(), "save_safetensors ", path, ": cannot open ", tmp, " for writing");
        uint64_t n = header.size();
        f.write(reinterpret_cast<const char*>(&n), 8);
        f.write(header.data(), (std::streamsize)header.size());
        for (const auto& [name, t] : items)
            f.write(static_cast<const char*>(t.impl()->storage->data) + t.offset() * dtype_size(t.dtype()),
                    (std::streamsize)(t.numel() * dtype_size(t.dtype())));
        f.flush();
        check(f.good(), "save_safetensors ", path, ": write failed (disk full?)");
    }
    check(std::rename(tmp.c_str(), path.c_str()) == 0, "save_safetensors ", path, ": cannot rename ", tmp,
          " into place");
}

// ---- modules -------------------------------------------------------------------------------------

void save_module(const std::string& path, const Module& module, const std::map<std::string, std::string>& metadata) {
    std::map<std::string, std::string> meta = metadata;
    meta.emplace("format", "pt");  // kept if the caller set it
    save_safetensors(path, module.state_dict(), meta);
}

void load_module(const std::string& path, Module& module, bool strict) {
    std::map<std::string, Tensor> tensors = load_safetensors(path);
    // load_state_dict would convert an int64 tensor into a float parameter without a word;
    // from a file that is a sign of the wrong file (or a wrong name), so say so.
    std::string problems;
    for (const auto& [name, t] : module.state_dict()) {
        auto it = tensors.find(name);
        if (it != tensors.end() && it->second.dtype() != t.dtype())
            problems += "\n  dtype mismatch: " + name + " is " + dtype_name(t.dtype()) + " in the model, " +
                        dtype_name(it->second.dtype()) + " in the file";
    }
    check(problems.empty(), path, ": load_state_dict (", module.name(), "):", problems);
    try {
        module.load_state_dict(tensors, strict);
    } catch (const Error& e) {
        fail(path, ": ", e.what());
    }
}

}  // namespace td::nn
