// %% [markdown]
// # 01 Tensors, views and broadcasting
//
// What a `td::Tensor` is: a flat block of floats plus a small recipe for reading it
// (shape, strides, offset), and what follows from that recipe. Every number tinydiffusion
// touches (a pixel, a weight, a gradient, the noise eps) lives in one. Once the recipe
// is clear, three things that puzzle everyone at first become simple: why `transpose`
// costs nothing, why `view` sometimes refuses where `reshape` quietly copies, and which
// shapes may be added.
//
// Read along: `tensor/tensor.h` (the Tensor itself), `tensor/ops/views.cpp` (every view
// op, each a few lines), `broadcast_shapes` in `tensor/ops/elementwise.cpp`.
//
// Run it yourself: `make notebooks NB=01` renders this page;
// `build/notebooks/01-tensors/notebook` runs the program alone.

// %%
#include <cstdio>
#include <iostream>

#include "diffusion/data/dataset.h"
#include "notebooks-cpp/notebook.h"

using namespace td;

const char* NB = "01-tensors";

// One line: the recipe that says where each element of t lives.
void layout(const char* name, const Tensor& t) {
    std::printf("%-9s shape %-16s strides %-16s offset %-5lld contiguous: %s\n", name, shape_str(t.shape()).c_str(),
                shape_str(t.strides()).c_str(), (long long)t.offset(), t.is_contiguous() ? "yes" : "no");
}

// Whether two tensors read the same block of memory.
bool same_storage(const Tensor& a, const Tensor& b) { return a.impl()->storage == b.impl()->storage; }

// The block of memory itself, every float of it, in memory order.
void print_storage(const char* name, const Tensor& t) {
    const Storage& s = *t.impl()->storage;
    const float* p = static_cast<const float*>(s.data);
    size_t n = s.nbytes / sizeof(float);
    std::printf("storage of %s (%zu floats):", name, n);
    for (size_t i = 0; i < n; ++i) std::printf(" %g", p[i]);
    std::printf("\n");
}

// %% [markdown]
// ## Shape, strides, storage
//
// `arange(0, 6)` allocates six floats; `reshape({2, 3})` reads them as 2 rows of 3. The
// element at row i, column j lives at
//
// `storage[offset + i * strides[0] + j * strides[1]]`
//
// A freshly made tensor is *contiguous* (row-major): the last index steps through memory
// one float at a time (stride 1) and the index before it jumps a whole row (stride 3).

// %%
int main() {
    Tensor x = arange(0, 6).reshape({2, 3});
    std::cout << x << "\n";
    layout("x", x);
    print_storage("x", x);

// %% [markdown]
// Nothing magic is going on: the formula, done by hand on the raw storage, finds the same
// element as `x.at({1, 2})`.

// %%
    const float* base = static_cast<const float*>(x.impl()->storage->data);
    int64_t i = 1, j = 2;
    int64_t where = x.offset() + i * x.strides()[0] + j * x.strides()[1];
    std::printf("x.at({1, 2}) = %g\n", x.at({1, 2}));
    std::printf("storage[%lld + %lld*%lld + %lld*%lld] = storage[%lld] = %g\n", (long long)x.offset(), (long long)i,
                (long long)x.strides()[0], (long long)j, (long long)x.strides()[1], (long long)where, base[where]);

// %% [markdown]
// ## A view is a new recipe over the same storage
//
// `transpose(0, 1)` swaps two entries of the shape *and* of the strides. It allocates
// nothing and moves nothing: reading `xt` row by row now walks the storage with steps of
// 3 inside a row and 1 between rows. The result is no longer contiguous (its rows are
// not consecutive in memory), but it is a perfectly good tensor.

// %%
    Tensor xt = x.transpose(0, 1);
    std::cout << xt << "\n";
    layout("x", x);
    layout("xt", xt);
    std::printf("x and xt share their storage: %s\n", same_storage(x, xt) ? "yes" : "no");

// %% [markdown]
// The proof that nothing was copied: write through one tensor and read through the other.
// `fill_` writes into a tensor's elements in place, wherever its recipe says they are.
// Row 2 of `xt` is column 2 of `x`:

// %%
    xt.narrow(0, 2, 1).fill_(-1.0f);
    std::cout << "x, after writing -1 into row 2 of xt:\n" << x << "\n";
    print_storage("x", x);

// %% [markdown]
// ## Slices move the offset and stretch the strides
//
// `narrow(dim, start, length)` keeps a range of one dimension: it only adds
// `start * stride` to the offset. `slice(dim, start, end, step)` also multiplies that
// dimension's stride by `step`. Both are views.

// %%
    Tensor row1 = x.narrow(0, 1, 1);         // row 1 only
    Tensor even = x.slice(1, 0, 3, 2);       // columns 0 and 2
    layout("row1", row1);
    layout("even", even);
    std::cout << "row1 = " << row1 << "\neven = " << even << "\n";

// %% [markdown]
// The same recipes on real data. The MNIST training set is one tensor of shape
// (8000, 1, 28, 28); image k starts k * 784 floats into its storage, so picking an image is
// a `narrow` (an offset), mirroring it across the diagonal a `transpose` of its last two
// dimensions, and keeping every other pixel a `slice` with step 2. None of the three
// copies a pixel: they are different ways of reading the data set's own memory.

// %%
    diffusion::Dataset mnist = diffusion::load_dataset("mnist", "train");
    layout("images", mnist.images);
    Tensor digit = mnist.images.narrow(0, 7, 1).squeeze(0);           // (1, 28, 28): image 7
    Tensor mirrored = digit.transpose(1, 2);                          // rows <-> columns
    Tensor coarse = digit.slice(1, 0, 28, 2).slice(2, 0, 28, 2);      // (1, 14, 14)
    layout("digit", digit);
    layout("mirrored", mirrored);
    layout("coarse", coarse);
    bool shared = same_storage(digit, mnist.images) && same_storage(mirrored, mnist.images) &&
                  same_storage(coarse, mnist.images);
    std::printf("all three share the data set's storage: %s\n", shared ? "yes" : "no");
    nb::show_grid(NB, "digit-views.png", stack({digit, mirrored}, 0), 2,
                  "image 7 of the training set (a narrow), and the same pixels read through transpose(1, 2)", 4);
    nb::show_image(NB, "digit-coarse.png", coarse, "the same image through slice(.., step 2) twice: 14 x 14", 8);

// %% [markdown]
// ## When a copy happens: reshape, view and contiguous
//
// `reshape` keeps the elements in row-major order and changes only how they are grouped.
// On a contiguous tensor that is a new set of strides over the same storage. On `xt` it
// is not: `xt`'s row-major order is 0, 3, 1, 4, 2, 5 in storage positions, which no
// single stride can step through. Then `view` (which never copies) refuses with an error,
// and `reshape` (which copies when it must) returns a tensor with storage of its own.
// `contiguous()` is the explicit version: a row-major copy when the layout needs one,
// the very same tensor when it does not.

// %%
    Tensor flat = x.reshape({6});
    Tensor xt_flat = xt.reshape({6});
    std::printf("x.reshape({6}) shares x's storage:   %s\n", same_storage(flat, x) ? "yes" : "no");
    std::printf("xt.reshape({6}) shares x's storage:  %s\n", same_storage(xt_flat, x) ? "yes" : "no");
    try {
        xt.view({6});
    } catch (const Error& e) {
        std::printf("xt.view({6}) throws td::Error: %s\n", e.what());
    }
    Tensor xtc = xt.contiguous();
    layout("xt", xt);
    layout("xtc", xtc);
    print_storage("xtc", xtc);
    std::printf("x.contiguous() is x itself (same storage): %s\n", same_storage(x.contiguous(), x) ? "yes" : "no");

// %% [markdown]
// Why care? Most kernels in `tensor/cpu/` are fastest (and simplest) on contiguous
// memory, so ops such as `conv2d`, `group_norm` and `softmax` call `contiguous()` on
// their inputs: free when the input already is, one copy when it is a transposed or
// sliced view. A copy you did not expect shows up as time in a profile, never as a
// wrong number.
//
// ## A stride of 0: expand
//
// The strangest stride is 0: moving along such a dimension does not move in memory at
// all. `expand` uses it to repeat a size-1 dimension without copying; 3 floats act as a
// 4 x 3 table.

// %%
    Tensor row = arange(0, 3).reshape({1, 3});
    Tensor rows = row.expand({4, 3});
    layout("row", row);
    layout("rows", rows);
    std::cout << rows << "\n";
    print_storage("rows", rows);

// %% [markdown]
// ## Broadcasting
//
// Elementwise ops (`+ - * /`, `where`, ...) accept operands of different shapes when the
// shapes *broadcast*; the rule is NumPy's and PyTorch's, written in `broadcast_shapes`:
//
// 1. Line the shapes up at the right; pad the shorter one with 1s on the left.
// 2. In each dimension the two sizes must be equal, or one of them must be 1.
// 3. A size-1 dimension is stretched to the other size: an `expand`, stride 0.
//
// Worked example, a column of 4 plus a row of 3:
//
// | | dim 0 | dim 1 |
// | --- | --- | --- |
// | `col` (4, 1) | 4 | 1 |
// | `r` (3), padded to (1, 3) | 1 | 3 |
// | `col + r` | 4 | 3 |

// %%
    Tensor col = arange(0, 4).reshape({4, 1}) * 10.0f;
    Tensor r = arange(0, 3);
    std::printf("broadcast_shapes(%s, %s) = %s\n", shape_str(col.shape()).c_str(), shape_str(r.shape()).c_str(),
                shape_str(broadcast_shapes(col.shape(), r.shape(), "add")).c_str());
    std::cout << col + r << "\n";

// %% [markdown]
// Each entry is `col[i] + r[j]`: an addition table, computed without materialising either
// operand at 4 x 3. A diffusion model broadcasts everywhere. Two examples from the engine:
// a convolution adds its bias, one number per channel, to every pixel of a feature map;
// and the forward process of notebook 04 multiplies each image in a batch by its own
// sqrt(alpha_bar_t), one number per image.

// %%
    Generator gen(0);
    Tensor features = randn({8, 16, 28, 28}, gen);   // (N, C, H, W)
    Tensor bias = randn({16, 1, 1}, gen);            // (C, 1, 1): one per channel
    Tensor coef = rand({8, 1, 1, 1}, gen);           // (N, 1, 1, 1): one per image
    std::printf("features + bias: %s + %s -> %s\n", shape_str(features.shape()).c_str(),
                shape_str(bias.shape()).c_str(), shape_str((features + bias).shape()).c_str());
    std::printf("coef * features: %s * %s -> %s\n", shape_str(coef.shape()).c_str(),
                shape_str(features.shape()).c_str(), shape_str((coef * features).shape()).c_str());

// %% [markdown]
// ## Shapes that cannot broadcast
//
// (2, 3) plus (2): lined up at the right, 3 meets 2, and neither is 1. The engine does not
// guess what you meant; it throws a `td::Error` that names the op, both shapes and the
// dimension where they disagree. (Every error in the engine is a `td::Error` with such a
// message, never an abort: catch it, print it, fix the shape.)

// %%
    Tensor a = ones({2, 3});
    Tensor b = arange(0, 2);
    try {
        Tensor bad = a + b;
    } catch (const Error& e) {
        std::printf("td::Error: %s\n", e.what());
    }
    // What was probably meant: one number per row, so b as a column (2, 1).
    std::cout << "a + b.unsqueeze(1) = " << a + b.unsqueeze(1) << "\n";

// %% [markdown]
// ## Looking ahead: broadcasting has a backward too
//
// In `col + r` every element of `r` was used 4 times, once per row. When gradients flow
// back (notebook 02), each use contributes, so the gradient of `r` is the gradient of the
// result *summed* over the dimensions broadcasting stretched. That sum is `sum_to` in
// `tensor/ops.h`, and every elementwise op's backward ends with it:

// %%
    Tensor grad_out = ones({4, 3});                  // d(loss)/d(col + r), say all ones
    std::cout << "sum_to(grad, r's shape [3]):      " << sum_to(grad_out, r.shape()) << "\n";
    std::cout << "sum_to(grad, col's shape [4, 1]): " << sum_to(grad_out, col.shape()) << "\n";
    return 0;
}

// %% [markdown]
// Each entry of `r` collected 4 ones and each entry of `col` 3 ones: the number of
// times it was used. Next, notebook 02 builds that backward machinery from scratch: the
// chain rule by hand, then the engine's `backward()`.
