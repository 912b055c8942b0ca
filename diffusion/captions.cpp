// diffusion/captions.cpp: see captions.h.
#include "diffusion/captions.h"

#include <algorithm>
#include <cctype>

#include "diffusion/data/dataset.h"  // builtin_dataset
#include "tensor/error.h"

namespace td::diffusion {

namespace {

constexpr int64_t kPhrasings = 4;

const std::vector<std::string> kDigitWords = {"zero", "one", "two",   "three", "four",
                                              "five", "six", "seven", "eight", "nine"};
// Fashion-MNIST's labels (Zalando: T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal,
// Shirt, Sneaker, Bag, Ankle boot) as the nouns a caption uses.
const std::vector<std::string> kFashionNouns = {
    "t-shirt", "pair of trousers", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"};
// CIFAR-10's labels (diffusion/data/cifar.cpp).
const std::vector<std::string> kCifarNouns = {"airplane", "automobile", "bird",  "cat",  "deer",
                                              "dog",      "frog",       "horse", "ship", "truck"};

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return (char)std::tolower(c); });
    return s;
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

int64_t num_phrasings() { return kPhrasings; }

std::string with_article(const std::string& noun) {
    std::string w = lower(noun);
    // The sound decides, not the letter; these exceptions cover the common cases.
    bool vowel_sound = !w.empty() && std::string("aeiou").find(w[0]) != std::string::npos;
    for (const char* p : {"uni", "use", "usu", "one", "eu"})
        if (starts_with(w, p)) vowel_sound = false;  // "a unicorn", "a one-way street"
    for (const char* p : {"hour", "honest", "honor", "honour", "heir"})
        if (starts_with(w, p)) vowel_sound = true;  // "an hour"
    return (vowel_sound ? "an " : "a ") + noun;
}

std::string caption(const std::string& dataset, int64_t label, int64_t phrasing,
                    const std::vector<std::string>& class_names) {
    check(phrasing >= 0 && phrasing < kPhrasings, "caption: phrasing ", phrasing, " is not in [0, ", kPhrasings, ")");
    std::string d = builtin_dataset(dataset);  // "fashion-mnist" -> "fashion", ...
    if (d == "mnist") {
        check(label >= 0 && label < 10, "caption: mnist has labels 0..9, got ", label);
        const std::string& word = kDigitWords[label];
        switch (phrasing) {
            case 0: return "a handwritten " + word;
            case 1: return "the digit " + std::to_string(label);
            case 2: return "a drawing of the number " + word;
            default: return word;
        }
    }
    if (d == "fashion" || d == "cifar10") {
        check(label >= 0 && label < 10, "caption: ", d, " has labels 0..9, got ", label);
        std::string np = with_article(d == "fashion" ? kFashionNouns[label] : kCifarNouns[label]);
        switch (phrasing) {
            case 0: return np;
            case 1: return "a photo of " + np;
            case 2: return "a picture of " + np;
            default: return (d == "fashion" ? "a grayscale photo of " : "a small photo of ") + np;
        }
    }
    // Any other data set (a folder of images): its class names, or the label's number.
    check(label >= 0 && (class_names.empty() || label < (int64_t)class_names.size()), "caption: label ", label,
          " is out of range for ", dataset, " (", class_names.size(), " class names)");
    std::string np = class_names.empty() ? "class " + std::to_string(label) : with_article(lower(class_names[label]));
    switch (phrasing) {
        case 0: return "a picture of " + np;
        case 1: return "a photo of " + np;
        case 2: return np;
        default: return "an image of " + np;
    }
}

std::vector<std::string> all_builtin_captions() {
    std::vector<std::string> out;
    for (const char* d : {"mnist", "fashion", "cifar10", "other"})
        for (int64_t label = 0; label < 10; ++label)
            for (int64_t p = 0; p < kPhrasings; ++p) out.push_back(caption(d, label, p));
    return out;
}

}  // namespace td::diffusion
