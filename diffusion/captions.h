// diffusion/captions.h: built-in captions made from class labels, the "text" of a
// text-conditional model trained here.
//
// No pretrained text model (CLIP) can be fetched on this machine, and MNIST, Fashion-MNIST
// and CIFAR-10 come with labels, not captions. So a caption is made from the label with one
// of a few phrasings, drawn at random per training example, and the text encoder
// (diffusion/text_encoder.h) learns that "a handwritten seven", "the digit 7" and "seven"
// mean the same thing:
//
//   mnist    "a handwritten seven", "the digit 7", "a drawing of the number seven", "seven"
//   fashion  "an ankle boot", "a photo of an ankle boot", "a picture of an ankle boot",
//            "a grayscale photo of an ankle boot"
//   cifar10  "an airplane", "a photo of an airplane", "a picture of an airplane",
//            "a small photo of an airplane"
//   other    "a picture of a cat", "a photo of a cat", "a cat", "an image of a cat" from the
//            data set's class names (lower-cased), or "class 3" when none are given
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace td::diffusion {

// How many phrasings every data set has: phrasing is in [0, num_phrasings()).
int64_t num_phrasings();

// Data set names as load_dataset's (diffusion/data/dataset.h): "mnist", "fashion" (also
// "fashion-mnist"), "cifar10" (also "cifar-10").
// The caption of `label` in `dataset` with phrasing number `phrasing` (0 is the plainest
// for the three built-in data sets). class_names: used for other data sets only.
// Throws td::Error for a label or phrasing out of range.
std::string caption(const std::string& dataset, int64_t label, int64_t phrasing,
                    const std::vector<std::string>& class_names = {});

// "a" or "an" + noun: "an ankle boot", "a truck", "a unicorn", "an hour".
std::string with_article(const std::string& noun);

// Every caption the three built-in data sets (and the "class N" fallback, N = 0..9) can
// produce: what the text encoder's vocabulary is built from.
std::vector<std::string> all_builtin_captions();

}  // namespace td::diffusion
