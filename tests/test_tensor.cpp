// tests/test_tensor.cpp: the tensor's own machinery: layout, views sharing storage,
// factories, the generator, printing, npy files. (Ops against PyTorch: test_ops_torch.cpp.)
#include <cstdio>
#include <fstream>

#include <omp.h>

#include "tests/helpers.h"

using namespace td;

TEST_CASE("a new tensor is contiguous with row-major strides") {
    Tensor t = zeros({2, 3, 4});
    CHECK(t.shape() == Shape{2, 3, 4});
    CHECK(t.strides() == Shape{12, 4, 1});
    CHECK(t.numel() == 24);
    CHECK(t.is_contiguous());
    CHECK_FALSE(t.is_view());
    CHECK(t.dtype() == DType::Float32);
    CHECK(t.device() == Device::CPU);
}

TEST_CASE("views share storage and copy nothing") {
    Tensor t = arange(0, 24).reshape({2, 3, 4});
    Tensor tt = t.transpose(0, 2);  // (4, 3, 2)
    CHECK(tt.shape() == Shape{4, 3, 2});
    CHECK(tt.strides() == Shape{1, 4, 12});
    CHECK_FALSE(tt.is_contiguous());
    CHECK(tt.is_view());
    CHECK(tt.impl()->storage == t.impl()->storage);
    CHECK(tt.at({3, 2, 1}) == t.at({1, 2, 3}));

    Tensor n = t.narrow(1, 1, 2);  // rows 1..2 of every matrix
    CHECK(n.offset() == 4);
    CHECK(n.at({1, 0, 0}) == 16.0f);
    Tensor s = t.slice(2, 0, 4, 2);  // every other column
    CHECK(s.shape() == Shape{2, 3, 2});
    CHECK(s.at({0, 1, 1}) == 6.0f);

    Tensor e = arange(0, 3).reshape({3, 1}).expand({3, 5});
    CHECK(e.strides() == Shape{1, 0});
    CHECK(e.at({2, 4}) == 2.0f);

    // writing through a view changes the original
    {
        NoGradGuard ng;
        n.fill_(-1.0f);
    }
    CHECK(t.at({0, 1, 0}) == -1.0f);
    CHECK(t.at({0, 0, 0}) == 0.0f);
}

TEST_CASE("contiguous copies only when needed; view refuses what needs a copy") {
    Tensor t = arange(0, 6).reshape({2, 3});
    CHECK(t.contiguous().impl() == t.impl());
    Tensor tt = t.transpose(0, 1);
    Tensor c = tt.contiguous();
    CHECK(c.is_contiguous());
    CHECK(c.impl()->storage != t.impl()->storage);
    CHECK(c.to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
    CHECK_THROWS_AS(tt.view({6}), Error);
    CHECK(tt.reshape({6}).to_vector() == std::vector<float>{0, 3, 1, 4, 2, 5});
    // splitting a dim of a transposed tensor is a legal view (PyTorch's chunk rule)
    Tensor big = arange(0, 24).reshape({4, 6}).transpose(0, 1);  // (6, 4)
    Tensor v = big.view({2, 3, 4});
    CHECK(v.impl()->storage == big.impl()->storage);
    CHECK(v.at({1, 2, 3}) == big.at({5, 3}));
    CHECK(t.view({-1}).shape() == Shape{6});
    CHECK(t.view({3, -1}).shape() == Shape{3, 2});
}

TEST_CASE("squeeze, unsqueeze and 0-d tensors") {
    Tensor t = ones({2, 1, 3});
    CHECK(t.squeeze(1).shape() == Shape{2, 3});
    CHECK(t.squeeze(0).shape() == Shape{2, 1, 3});  // not size 1: unchanged
    CHECK(t.unsqueeze(0).shape() == Shape{1, 2, 1, 3});
    CHECK(t.unsqueeze(-1).shape() == Shape{2, 1, 3, 1});
    Tensor s = scalar_tensor(2.5f);
    CHECK(s.dim() == 0);
    CHECK(s.numel() == 1);
    CHECK(s.item() == 2.5f);
    CHECK(sum(ones({3, 4})).dim() == 0);
    CHECK((s * ones({2})).to_vector() == std::vector<float>{2.5f, 2.5f});
}

TEST_CASE("factories") {
    CHECK(arange(0, 5).to_vector() == std::vector<float>{0, 1, 2, 3, 4});
    CHECK(arange(1, 2, 0.25f).to_vector() == std::vector<float>{1, 1.25f, 1.5f, 1.75f});
    CHECK(arange_i64(3).to_vector_i64() == std::vector<int64_t>{0, 1, 2});
    std::vector<float> l = linspace(-1, 1, 5).to_vector();
    CHECK(l == std::vector<float>{-1, -0.5f, 0, 0.5f, 1});
    CHECK(linspace(0, 1, 1).to_vector() == std::vector<float>{0});
    CHECK(full({2}, 7).to_vector() == std::vector<float>{7, 7});
    CHECK(zeros({2}, DType::Int64).dtype() == DType::Int64);
    CHECK_THROWS_AS(arange(0, 5, -1), Error);
    CHECK_THROWS_AS(zeros({2, -1}), Error);
}

TEST_CASE("Philox generator: known answer, reproducible, independent of thread count") {
    // Known-answer test from the Random123 distribution (kat_vectors): philox4x32_10
    // with counter = key = 0 gives 6627e8d5 e169c58d bc57ac4c 9b00dbd8.
    auto r = philox4x32({0, 0, 0, 0}, {0, 0});
    CHECK(r[0] == 0x6627e8d5u);
    CHECK(r[1] == 0xe169c58du);
    CHECK(r[2] == 0xbc57ac4cu);
    CHECK(r[3] == 0x9b00dbd8u);
    // ... and with all-ones counter and key: 408f276d 41c83b0e a20bc7c6 6d5451fd
    auto r2 = philox4x32({0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu}, {0xffffffffu, 0xffffffffu});
    CHECK(r2[0] == 0x408f276du);
    CHECK(r2[3] == 0x6d5451fdu);

    Generator g1(42), g2(42);
    Tensor a = randn({1000}, g1), b = randn({1000}, g2);
    CHECK(a.to_vector() == b.to_vector());
    CHECK(randn({10}, g1).to_vector() != a.narrow(0, 0, 10).to_vector());  // the stream moves on

    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    Generator g3(7);
    std::vector<float> one_thread = randn({200000}, g3).to_vector();
    omp_set_num_threads(std::max(2, saved));
    Generator g4(7);
    std::vector<float> many = randn({200000}, g4).to_vector();
    omp_set_num_threads(saved);
    CHECK(one_thread == many);

    // moments of 200k normals and uniforms
    Tensor n = Tensor::from_vector(many, {200000});
    CHECK(std::fabs(mean(n).item()) < 0.01f);
    CHECK(std::fabs(var(n).item() - 1.0f) < 0.01f);
    Generator g5(3);
    Tensor u = rand({100000}, g5, 2.0f, 4.0f);
    CHECK(max(u).item() < 4.0f);
    CHECK(-max(-u).item() >= 2.0f);
    CHECK(std::fabs(mean(u).item() - 3.0f) < 0.01f);
    Tensor ri = randint(5, {1000}, g5);
    for (int64_t v : ri.to_vector_i64()) CHECK((v >= 0 && v < 5));
}

TEST_CASE("printing shows shape, dtype and values") {
    std::string s = to_string(arange(0, 6).reshape({2, 3}));
    CHECK(s.find("shape=[2, 3]") != std::string::npos);
    CHECK(s.find("float32") != std::string::npos);
    CHECK(s.find("5") != std::string::npos);
    std::string big = to_string(arange(0, 100));
    CHECK(big.find("...") != std::string::npos);  // long dims are elided
    Tensor w = ones({2}).requires_grad_();
    CHECK(to_string(w * 2.0f).find("grad_fn=mul_scalar") != std::string::npos);
    CHECK(to_string(arange_i64(3)).find("int64") != std::string::npos);
}

TEST_CASE("element access is bounds-checked") {
    Tensor t = zeros({2, 3});
    CHECK_THROWS_WITH_AS(t.at({2, 0}), doctest::Contains("out of range"), Error);
    CHECK_THROWS_AS(t.at({0}), Error);
    CHECK_THROWS_AS(t.item(), Error);
    CHECK_THROWS_AS(t.size(2), Error);
    CHECK_THROWS_AS(Tensor().shape(), Error);
    CHECK_THROWS_AS(t.data_i64(), Error);
}

TEST_CASE("npy: round trip and clear errors on bad files") {
    std::string path = tdtest::scratch("test_roundtrip.npy");
    Tensor t = arange(0, 12).reshape({3, 4}).transpose(0, 1);
    save_npy(path, t);
    Tensor back = load_npy(path);
    CHECK(back.shape() == Shape{4, 3});
    CHECK(back.to_vector() == t.to_vector());
    save_npy(path, arange_i64(5));
    CHECK(load_npy(path).to_vector_i64() == std::vector<int64_t>{0, 1, 2, 3, 4});
    save_npy(path, scalar_tensor(3.0f));
    CHECK(load_npy(path).dim() == 0);

    CHECK_THROWS_WITH_AS(load_npy(tdtest::scratch("does_not_exist.npy")), doctest::Contains("cannot open"), Error);
    auto write = [](const std::string& p, const std::string& bytes) {
        std::ofstream f(p, std::ios::binary);
        f << bytes;
    };
    write(tdtest::scratch("bad.npy"), "hello world, not numpy");
    CHECK_THROWS_WITH_AS(load_npy(tdtest::scratch("bad.npy")), doctest::Contains("bad magic"), Error);
    // a valid header claiming 10^12 elements in a tiny file: refused before allocating
    std::string h = "{'descr': '<f4', 'fortran_order': False, 'shape': (1000000, 1000000), }";
    h += std::string(64 - (10 + h.size() + 1) % 64, ' ') + "\n";
    std::string pre = std::string("\x93NUMPY\x01\x00", 8) + char(h.size() & 0xff) + char(h.size() >> 8);
    write(tdtest::scratch("huge.npy"), pre + h + "abcd");
    CHECK_THROWS_WITH_AS(load_npy(tdtest::scratch("huge.npy")), doctest::Contains("huge.npy"), Error);
    // truncated data
    save_npy(path, ones({100}));
    std::ifstream in(path, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), {});
    write(tdtest::scratch("trunc.npy"), all.substr(0, all.size() - 10));
    CHECK_THROWS_WITH_AS(load_npy(tdtest::scratch("trunc.npy")), doctest::Contains("truncated"), Error);
    std::remove(tdtest::scratch("bad.npy").c_str());
    std::remove(tdtest::scratch("huge.npy").c_str());
    std::remove(tdtest::scratch("trunc.npy").c_str());
    std::remove(path.c_str());
}
