// diffusion/text_encoder.h: tau_theta(y), the text encoder of latent diffusion (Rombach et
// al. 2022, sec. 3.3): a prompt y becomes a sequence of vectors (B, L, dim) that the
// UNet's cross-attention attends to (K, V = W_K tau(y), W_V tau(y)).
//
// TextEncoder is the interface the UNet uses (diffusion/unet.h), so that a pretrained
// encoder (CLIP's text transformer, as Stable Diffusion uses) could be plugged in:
// tokenize() turns strings into ids, encode() ids into vectors, pool() gives one vector
// per prompt for the modes that need a single vector (add, concat).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "diffusion/captions.h"
#include "nn/attention.h"
#include "nn/feedforward.h"
#include "nn/layers.h"
#include "nn/norm.h"

namespace td::diffusion {

class TextEncoder : public nn::Module {
public:
    // prompts -> token ids (B, max_tokens()) int64, on the CPU (like data: move them to the model's device)
    virtual Tensor tokenize(const std::vector<std::string>& prompts) const = 0;
    // tokens (B, L) int64, L <= max_tokens() -> features (B, L, dim())
    virtual Tensor encode(const Tensor& tokens) = 0;
    // tokens (B, L) and their features (B, L, dim) -> one vector per prompt (B, dim)
    virtual Tensor pool(const Tensor& tokens, const Tensor& features) const = 0;
    virtual int64_t dim() const = 0;
    virtual int64_t max_tokens() const = 0;
};

// One pre-LN Transformer encoder block (Vaswani et al. 2017, with the LayerNorm moved in
// front of each sub-layer as GPT-2 and CLIP do: it trains without warm-up tricks).
class TextBlock : public nn::Module {
public:
    TextBlock(int64_t dim, int64_t heads, Generator& init);
    // h: (B, L, dim), key_mask: (B, L) float 1 real / 0 padding -> (B, L, dim)
    Tensor forward(const Tensor& h, const Tensor& key_mask);
    std::string name() const override { return "TextBlock"; }

    std::shared_ptr<nn::LayerNorm> norm1, norm2;
    std::shared_ptr<nn::Attention> attn;
    std::shared_ptr<nn::FeedForward> mlp;  // mlp.net.0.0 (Linear), GELU, mlp.net.2 (Linear)
};

// SmallTextEncoder is the one trained here, jointly with the UNet (as LDM's own
// BERT-like encoder for its text-to-image model was), on the built-in captions
// (diffusion/captions.h):
//
//   tokenize   lower-case; a word is a run of letters and digits, everything else
//              separates ("T-shirt" -> "t", "shirt"); ids from a fixed vocabulary:
//              <pad> 0, <bos> 1, <eos> 2, <unk> 3, then every word of the built-in
//              captions in alphabetical order; unknown words -> <unk>;
//              [<bos>, w_1 .. w_n, <eos>, <pad> ...] of length max_tokens, the words cut
//              to the first max_tokens - 2. The empty prompt "" is [<bos>, <eos>, <pad> ...]:
//              the "no condition" of classifier-free guidance.
//   encode     h = token_embedding(ids) + position_embedding(0 .. L-1)      (B, L, dim)
//              layers.k: h = h + attn(norm1(h)),  h = h + mlp(norm2(h))     pre-LN blocks
//                        attn: self-attention in which <pad> keys are masked out
//                        (nn::masked_attention), mlp: Linear, GELU, Linear (4 dim)
//              final_layer_norm(h)
//              Padding positions still get outputs (their queries see the real tokens),
//              and the UNet attends to all L positions, as Stable Diffusion does with
//              CLIP's padded 77; only inside the encoder is padding masked.
//   pool       the feature at the <eos> position, as CLIP does: since attention here is
//              bidirectional, that position has seen the whole prompt.
class SmallTextEncoder : public TextEncoder {
public:
    static constexpr int64_t kPad = 0, kBos = 1, kEos = 2, kUnk = 3;

    SmallTextEncoder(int64_t dim, int64_t layers, int64_t heads, int64_t max_tokens,
                     Generator& init = nn::init_generator());

    Tensor tokenize(const std::vector<std::string>& prompts) const override;
    Tensor encode(const Tensor& tokens) override;
    Tensor pool(const Tensor& tokens, const Tensor& features) const override;
    int64_t dim() const override { return dim_; }
    int64_t max_tokens() const override { return max_tokens_; }
    std::string name() const override { return "SmallTextEncoder"; }

    // The fixed vocabulary: id i is vocabulary()[i] ("<pad>", "<bos>", "<eos>", "<unk>", ...).
    static const std::vector<std::string>& vocabulary();
    // "A T-shirt!" -> {"a", "t", "shirt"}
    static std::vector<std::string> split_words(const std::string& text);
    // One word's id, kUnk when the vocabulary does not have it.
    static int64_t token_id(const std::string& word);
    // Tokens a caption needs (its words + <bos> + <eos>): max_tokens must hold the longest
    // built-in caption, or truncation would cut off its class word.
    static int64_t longest_builtin_caption_tokens();

    std::shared_ptr<nn::Embedding> token_embedding, position_embedding;
    std::vector<std::shared_ptr<TextBlock>> layers;
    std::shared_ptr<nn::LayerNorm> final_layer_norm;

private:
    // (B, L) ids -> (B, L) float, 1 where the token is not <pad>
    Tensor key_mask(const Tensor& tokens) const;
    int64_t dim_, max_tokens_;
};

}  // namespace td::diffusion
