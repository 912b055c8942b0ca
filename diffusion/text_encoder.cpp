// diffusion/text_encoder.cpp: the small trainable text encoder (see text_encoder.h).
#include "diffusion/text_encoder.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "tensor/error.h"
#include "tensor/ops.h"

namespace td::diffusion {

// ---------------------------------------------------------------------------------
// The tokenizer: words -> ids over a fixed vocabulary

std::vector<std::string> SmallTextEncoder::split_words(const std::string& text) {
    std::vector<std::string> words;
    std::string w;
    for (unsigned char c : text) {
        if (std::isalnum(c)) {
            w += (char)std::tolower(c);
        } else if (!w.empty()) {  // spaces and punctuation end a word
            words.push_back(w);
            w.clear();
        }
    }
    if (!w.empty()) words.push_back(w);
    return words;
}

const std::vector<std::string>& SmallTextEncoder::vocabulary() {
    // Built once from the captions, sorted: the ids depend on the set of words only, not
    // on the order captions.cpp lists them in. (A new caption word changes the ids and
    // the size of token_embedding: a model trained before will not load. Say so in a
    // release note.)
    static const std::vector<std::string> vocab = [] {
        std::set<std::string> words;
        for (const std::string& c : all_builtin_captions())
            for (const std::string& w : split_words(c)) words.insert(w);
        std::vector<std::string> v = {"<pad>", "<bos>", "<eos>", "<unk>"};
        v.insert(v.end(), words.begin(), words.end());
        return v;
    }();
    return vocab;
}

int64_t SmallTextEncoder::token_id(const std::string& word) {
    static const std::map<std::string, int64_t> ids = [] {
        std::map<std::string, int64_t> m;
        const std::vector<std::string>& v = vocabulary();
        for (size_t i = 4; i < v.size(); ++i) m[v[i]] = (int64_t)i;  // not the specials: "<pad>" is no word
        return m;
    }();
    auto it = ids.find(word);
    return it == ids.end() ? kUnk : it->second;
}

int64_t SmallTextEncoder::longest_builtin_caption_tokens() {
    size_t most = 0;
    for (const std::string& c : all_builtin_captions()) most = std::max(most, split_words(c).size());
    return (int64_t)most + 2;
}

Tensor SmallTextEncoder::tokenize(const std::vector<std::string>& prompts) const {
    int64_t B = (int64_t)prompts.size(), L = max_tokens_;
    std::vector<int64_t> ids(B * L, kPad);  // (B, L), row-major
    for (int64_t b = 0; b < B; ++b) {
        std::vector<std::string> words = split_words(prompts[b]);
        int64_t n = std::min<int64_t>((int64_t)words.size(), L - 2);  // truncation keeps <bos> and <eos>
        int64_t* row = ids.data() + b * L;
        row[0] = kBos;
        for (int64_t i = 0; i < n; ++i) row[1 + i] = token_id(words[i]);
        row[1 + n] = kEos;
    }
    return Tensor::from_vector_i64(ids, {B, L});
}

// ---------------------------------------------------------------------------------
// The network

TextBlock::TextBlock(int64_t dim, int64_t heads, Generator& init) {
    norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(dim));
    attn = register_module("attn", std::make_shared<nn::Attention>(dim, heads, dim / heads, 0, init));
    norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(dim));
    mlp = register_module("mlp", std::make_shared<nn::FeedForward>(dim, 4, false, init));
}

Tensor TextBlock::forward(const Tensor& h_in, const Tensor& key_mask) {
    Tensor h = h_in + attn->forward(norm1->forward(h_in), Tensor(), key_mask);  // tokens look at the real tokens
    return h + mlp->forward(norm2->forward(h));                                 // (B, L, dim)
}

SmallTextEncoder::SmallTextEncoder(int64_t dim, int64_t n_layers, int64_t heads, int64_t max_tokens, Generator& init)
    : dim_(dim), max_tokens_(max_tokens) {
    check(dim > 0 && heads > 0 && dim % heads == 0 && n_layers >= 0 && max_tokens >= 2,
          "SmallTextEncoder: needs dim > 0 divisible by heads, layers >= 0, max_tokens >= 2 (got dim ", dim, ", heads ",
          heads, ", layers ", n_layers, ", max_tokens ", max_tokens, ")");
    int64_t V = (int64_t)vocabulary().size();
    token_embedding = register_module("token_embedding", std::make_shared<nn::Embedding>(V, dim, init));
    position_embedding = register_module("position_embedding", std::make_shared<nn::Embedding>(max_tokens, dim, init));
    auto list = register_module("layers", std::make_shared<nn::ModuleList>());
    for (int64_t k = 0; k < n_layers; ++k)
        layers.push_back(list->push_back(std::make_shared<TextBlock>(dim, heads, init)));
    final_layer_norm = register_module("final_layer_norm", std::make_shared<nn::LayerNorm>(dim));
}

Tensor SmallTextEncoder::key_mask(const Tensor& tokens) const {
    std::vector<int64_t> ids = tokens.to(Device::CPU).to_vector_i64();
    std::vector<float> m(ids.size());
    for (size_t i = 0; i < ids.size(); ++i) m[i] = ids[i] == kPad ? 0.0f : 1.0f;
    return Tensor::from_vector(m, tokens.shape()).to(tokens.device());
}

Tensor SmallTextEncoder::encode(const Tensor& tokens) {
    check(tokens.defined() && tokens.dim() == 2 && tokens.dtype() == DType::Int64 && tokens.size(1) >= 1 &&
              tokens.size(1) <= max_tokens_,
          "SmallTextEncoder: tokens must be (B, L) int64 with 1 <= L <= max_tokens = ", max_tokens_, ", got ",
          tokens.defined() ? shape_str(tokens.shape()) : "none");
    int64_t V = token_embedding->weight.size(0), L = tokens.size(1);
    for (int64_t id : tokens.to(Device::CPU).to_vector_i64())
        check(id >= 0 && id < V, "SmallTextEncoder: token id ", id, " is outside the vocabulary [0, ", V, ")");
    Tensor mask = key_mask(tokens);  // (B, L)
    Tensor h =
        token_embedding->forward(tokens) + position_embedding->forward(arange_i64(L, tokens.device()));  // (B, L, dim)
    for (auto& layer : layers) h = layer->forward(h, mask);
    return final_layer_norm->forward(h);  // (B, L, dim)
}

Tensor SmallTextEncoder::pool(const Tensor& tokens, const Tensor& features) const {
    int64_t B = tokens.size(0), L = tokens.size(1), D = features.size(2);
    check(features.dim() == 3 && features.size(0) == B && features.size(1) == L, "SmallTextEncoder::pool: features ",
          features.shape(), " do not match tokens ", tokens.shape());
    // Row b's <eos> (the first one), or its last token when truncation by a caller left none.
    std::vector<int64_t> ids = tokens.to(Device::CPU).to_vector_i64(), rows(B);
    for (int64_t b = 0; b < B; ++b) {
        int64_t at = L - 1;
        for (int64_t i = 0; i < L; ++i)
            if (ids[b * L + i] == kEos) {
                at = i;
                break;
            }
        rows[b] = b * L + at;  // its row in the (B L, D) view
    }
    Tensor at = Tensor::from_vector_i64(rows, {B}).to(features.device());
    return index_select(features.reshape({B * L, D}), 0, at);  // (B, D)
}

}  // namespace td::diffusion
