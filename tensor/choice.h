// tensor/choice.h: an enum read from a word (a flag's value, a model file's metadata) and
// written back as one, from a single table of {word, value} pairs per enum:
//
//   const Choice<Sampler> kSamplers[] = {{"ddpm", Sampler::Ddpm}, {"ddim", Sampler::Ddim}};
//   Sampler parse_sampler(const std::string& w) { return parse_choice(w, kSamplers, "sampler"); }
//   std::string sampler_name(Sampler s) { return choice_name(s, kSamplers); }
//
// A word outside the table is td::Error "unknown sampler 'euler' (ddpm, ddim)": the word and
// every choice, to which the CLI adds the flag. A value may have a second word further down
// (the variance's "fixedlarge" beside "beta"): it is read, but only the first is written and listed.
#pragma once
#include <cstddef>
#include <string>

#include "tensor/error.h"

namespace td {

template <class Enum>
struct Choice {
    const char* word;
    Enum value;
};

// The first word of `value` in the table.
template <class Enum, size_t N>
std::string choice_name(Enum value, const Choice<Enum> (&choices)[N]) {
    for (const Choice<Enum>& c : choices)
        if (c.value == value) return c.word;
    fail("choice_name: the value ", (int)value, " has no word in its table");
}

// The value of `word`; td::Error naming `what` and listing the choices for any other word.
template <class Enum, size_t N>
Enum parse_choice(const std::string& word, const Choice<Enum> (&choices)[N], const char* what) {
    for (const Choice<Enum>& c : choices)
        if (word == c.word) return c.value;
    std::string list;
    for (const Choice<Enum>& c : choices)
        if (choice_name(c.value, choices) == c.word) list += (list.empty() ? "" : ", ") + std::string(c.word);
    fail("unknown ", what, " '", word, "' (", list, ")");
}

}  // namespace td
