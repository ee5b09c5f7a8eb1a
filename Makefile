# dydit: make quickstart installs what is missing, builds, and runs the main job on Fashion-MNIST
# (scripts/quickstart.sh); make builds the program, make test runs the CPU test suite, make bench
# compares the CPU training step with PyTorch, make bench-sample times the DyDiT dynamic sampler
# against the static one, make bench-gpu runs the GPU benchmarks (bench/gpu.sh), make test-cuda the
# GPU tests.
CC ?= gcc
PYTHON ?= /usr/bin/python3
OPT ?= -O3 -march=native
# SANITIZE=1 builds everything with AddressSanitizer and UndefinedBehaviorSanitizer into build-san
# (the program too: build-san/dydit) and `make test SANITIZE=1` runs the CPU suite against it. It
# leaves the CUDA backend out: the sanitized build checks the CPU code.
ifeq ($(SANITIZE),1)
OPT = -O1 -g -march=native
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
CUDA = 0
endif
CFLAGS += $(OPT) -std=gnu11 -fopenmp -Wall -Wextra -Wno-unused-parameter -I. -MMD -MP
# DEPS=PREFIX builds against the libraries scripts/offline_deps.sh unpacked into PREFIX (a machine
# that cannot install packages). The old-style run path also serves the libraries' own needs
# (OpenBLAS's libgfortran), so the programs run without LD_LIBRARY_PATH.
ifneq ($(DEPS),)
DEPS_LIB = $(DEPS)/usr/lib/x86_64-linux-gnu
CFLAGS += -I$(DEPS)/usr/include -I$(DEPS)/usr/include/x86_64-linux-gnu
LDLIBS += -L$(DEPS_LIB) -Wl,-rpath,$(DEPS_LIB):$(DEPS)/lib/x86_64-linux-gnu -Wl,--disable-new-dtags
BLAS_DIR ?= $(DEPS_LIB)/openblas-openmp
BLAS_INC ?= $(DEPS)/usr/include/x86_64-linux-gnu/openblas-openmp
endif
# The OpenMP build of OpenBLAS runs single-threaded when called inside our OpenMP regions instead of
# oversubscribing the cores; fall back to whichever libopenblas the linker finds.
# Its header and library are named explicitly, so the build does not depend on which BLAS the
# system's alternatives currently point at.
BLAS_DIR ?= $(firstword $(wildcard /usr/lib/x86_64-linux-gnu/openblas-openmp /usr/lib/*/openblas-openmp))
BLAS_INC ?= $(firstword $(wildcard /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/*/openblas-openmp))
ifneq ($(BLAS_INC),)
CFLAGS += -I$(BLAS_INC)
endif
ifneq ($(BLAS_DIR),)
BLAS_LIBS = -L$(BLAS_DIR) -Wl,-rpath,$(BLAS_DIR) -lopenblas
else
BLAS_LIBS = -lopenblas
endif
LDLIBS += $(BLAS_LIBS) -ljpeg -lpng -lz -lpthread -lm

# MPI, for data-parallel training under mpirun: the include and library flags come from OpenMPI's
# compiler wrapper, and a tiny program must compile and link with them. MPI=0 builds without it
# (one process only; make clean when switching); MPI_CFLAGS and MPI_LIBS can name another MPI's
# flags by hand.
HASH := \#
MPICC ?= mpicc
ifneq ($(MPI),0)
ifeq ($(origin MPI_CFLAGS),undefined)
MPI_CFLAGS := $(shell $(MPICC) -showme:compile 2>/dev/null)
MPI_LIBS := $(shell $(MPICC) -showme:link 2>/dev/null)
endif
MPI_FOUND := $(shell printf '$(HASH)include <mpi.h>\nint main(void) { MPI_Init(0, 0); return MPI_Finalize(); }\n' | \
	$(CC) $(MPI_CFLAGS) -x c - -o /dev/null $(MPI_LIBS) 2>/dev/null && echo yes)
endif
ifeq ($(MPI_FOUND),yes)
CFLAGS += -DDYDIT_MPI $(MPI_CFLAGS)
LDLIBS += $(MPI_LIBS)
endif

# The CUDA backend (kernels/cuda: ops_cuda) is built whenever nvcc is found and a program linking
# cuBLASLt, cuBLAS and the CUDA runtime compiles; no GPU is needed to build it. CUDA=0 builds without
# it. Kernels are compiled for one named architecture (sm_90: H100/H200), never a guessed one.
CUDA_HOME ?= /usr/local/cuda
NVCC ?= $(CUDA_HOME)/bin/nvcc
CUDA_ARCH ?= sm_90
CUDA_CFLAGS = -I$(CUDA_HOME)/include
CUDA_RT_LIBS = -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcublasLt -lcublas -lcudart -lstdc++
NVCCFLAGS ?= -O3 -std=c++17 -arch=$(CUDA_ARCH) -I. -Xcompiler -fPIC,-Wall --expt-relaxed-constexpr -MMD -MP
# EMULATED=1 builds the CUDA backend, unchanged, for the emulated device of kernels/cuda/emu (the
# host compiler, fibers for the threads, cuBLAS(Lt) and NCCL on the CPU) into build-emu, with the
# program as build-emu/dydit (--device cuda-emulated); make test-cuda-emulated runs the GPU tests
# on it. No GPU and no CUDA installation are needed.
EMU_DIR = kernels/cuda/emu
ifeq ($(EMULATED),1)
CUDA_FOUND := yes
CUDA_CFLAGS = -I$(EMU_DIR)/include
CUDA_RT_LIBS = -lstdc++
CFLAGS += -DDYDIT_CUDA_EMULATED
else ifneq ($(CUDA),0)
CUDA_FOUND := $(shell [ -x $(NVCC) ] && printf '$(HASH)include <cublasLt.h>\nint main(void) { cublasLtHandle_t h; return (int)cublasLtCreate(&h); }\n' | \
	$(CC) $(CUDA_CFLAGS) -x c - -o /dev/null $(CUDA_RT_LIBS) 2>/dev/null && echo yes)
endif
ifeq ($(CUDA_FOUND),yes)
CFLAGS += -DDYDIT_CUDA $(CUDA_CFLAGS)
LDLIBS += $(CUDA_RT_LIBS)
endif

# NCCL, the GPU communicator (train/dist_nccl.c): built when the CUDA backend is, a program against
# $(CUDA_HOME)/include/nccl.h linking -lnccl compiles, and MPI is there to bootstrap it.
# build/tests/cuda_nccl checks it on GPUs (make test-cuda).
# The emulated device's NCCL is MPI underneath (kernels/cuda/emu/nccl.cc).
CUDA_LIBS = -L$(CUDA_HOME)/lib64 -lnccl -lcudart
NCCL_LIBS = -lnccl
ifeq ($(MPI_FOUND)$(CUDA_FOUND)$(EMULATED),yesyes1)
NCCL_FOUND := yes
NCCL_LIBS =
else ifeq ($(MPI_FOUND)$(CUDA_FOUND),yesyes)
NCCL_FOUND := $(shell printf '$(HASH)include <nccl.h>\nint main(void) { int v; return ncclGetVersion(&v); }\n' | \
	$(CC) $(CUDA_CFLAGS) -x c - -o /dev/null $(CUDA_LIBS) 2>/dev/null && echo yes)
endif

ifeq ($(SANITIZE),1)
BUILD = build-san
DYDIT = $(BUILD)/dydit
else ifeq ($(EMULATED),1)
BUILD = build-emu
DYDIT = $(BUILD)/dydit
else
BUILD = build
DYDIT = dydit
endif
LIB_SRC = $(wildcard common/*.c kernels/*.c kernels/cpu/*.c kernels/guarded/*.c model/*.c optim/*.c data/*.c eval/*.c) \
	$(filter-out train/main.c train/dist_mpi.c train/dist_nccl.c,$(wildcard train/*.c))
ifeq ($(MPI_FOUND),yes)
LIB_SRC += train/dist_mpi.c
endif
ifeq ($(CUDA_FOUND),yes)
LIB_SRC += $(wildcard kernels/cuda/*.c)
CUDA_SRC = $(wildcard kernels/cuda/*.cu)
endif
# Training sums device gradients over NCCL when it is there (train/device_collectives.c).
ifeq ($(NCCL_FOUND),yes)
CFLAGS += -DDYDIT_NCCL
LDLIBS += $(NCCL_LIBS)
LIB_SRC += train/dist_nccl.c
endif
# The emulated device: its runtime (C++) joins the library; the kernel sources are compiled by the
# host compiler from copies in which rewrite.pl turned launches and dynamic shared arrays into C++
# (build-emu/emu-src), with ThreadSanitizer's instrumentation feeding the access checks of
# kernels/cuda/emu/check.cc (not its runtime: nothing links libtsan).
ifeq ($(EMULATED),1)
EMU_SRC = $(wildcard $(EMU_DIR)/*.cc)
EMU_CXXFLAGS = $(OPT) -std=c++17 -fopenmp -Wall -Wextra -Wno-unused-parameter -I. -MMD -MP $(filter -I% -D%,$(CFLAGS))
EMU_CUFLAGS = -I$(BUILD)/emu-src $(EMU_CXXFLAGS) -x c++ -include $(EMU_DIR)/include/cuda_runtime.h -D__CUDACC__ \
	-ffp-contract=off -fsanitize=thread
EMU_CUH = $(patsubst %,$(BUILD)/emu-src/%,$(wildcard kernels/cuda/*.cuh))
endif
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o) $(CUDA_SRC:%.cu=$(BUILD)/%.o) $(EMU_SRC:%.cc=$(BUILD)/%.o)
# Every object depends on the build's configuration (compilers, flags, the libraries found): when a
# package install adds MPI or CUDA, or OPT changes, the next make rebuilds everything instead of
# linking objects compiled without them.
BUILD_CONFIG = $(BUILD)/build-config
BUILD_CONFIG_TEXT = $(CC) $(CFLAGS) $(LDLIBS) $(NVCC) $(NVCCFLAGS) mpi=$(MPI_FOUND) cuda=$(CUDA_FOUND) nccl=$(NCCL_FOUND)
$(shell mkdir -p $(BUILD) && printf '%s\n' '$(BUILD_CONFIG_TEXT)' | cmp -s - $(BUILD_CONFIG) || \
	printf '%s\n' '$(BUILD_CONFIG_TEXT)' >$(BUILD_CONFIG))
TEST_SRC = $(wildcard tests/test_*.c tests/parity_*.c)
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# The GPU tests (tests/cuda/*.c, CPU twin against ops_cuda): built by make test too whenever the CUDA
# backend is, so a build machine without a GPU still compiles them; only make test-cuda runs them.
CUDA_TEST_BIN =
ifeq ($(CUDA_FOUND),yes)
CUDA_TEST_BIN = $(patsubst tests/cuda/%.c,$(BUILD)/tests/cuda/%,$(wildcard tests/cuda/*.c))
endif
# bench/gpu_*.c drive the CUDA backend: built only with it (make bench-gpu).
BENCH_SRC = $(filter-out bench/gpu_%.c,$(wildcard bench/*.c))
BENCH_BIN = $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)
GPU_BENCH_SRC = $(wildcard bench/gpu_*.c)
GPU_BENCH_BIN = $(GPU_BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

# make test compiles the GPU benchmarks too whenever the CUDA backend is built (it runs none of them).
GPU_BENCH_BUILT =
ifeq ($(CUDA_FOUND),yes)
GPU_BENCH_BUILT = $(GPU_BENCH_BIN)
endif

NCCL_BIN =
ifeq ($(NCCL_FOUND),yes)
NCCL_BIN = $(BUILD)/tests/cuda_nccl
endif

all: $(DYDIT) $(NCCL_BIN)

$(DYDIT): $(BUILD)/train/main.o $(BUILD)/libdydit.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libdydit.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c $(BUILD_CONFIG)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

ifneq ($(EMULATED),1)
$(BUILD)/%.o: %.cu $(BUILD_CONFIG)
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c -o $@ $<
else
$(BUILD)/emu-src/%: % $(EMU_DIR)/rewrite.pl
	@mkdir -p $(dir $@)
	perl $(EMU_DIR)/rewrite.pl $< >$@

$(BUILD)/%.o: $(BUILD)/emu-src/%.cu $(EMU_CUH) $(BUILD_CONFIG)
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CUFLAGS) -c -o $@ $<

.SECONDARY: $(CUDA_SRC:%=$(BUILD)/emu-src/%) $(EMU_CUH)

# The emulated build's kernel compiler and program linker (tests/cuda_mutants.sh rebuilds single
# kernel files with them).
emu-commands:
	@echo '$(CXX) $(EMU_CUFLAGS)'
	@echo '$(CC) $(CFLAGS)'
	@echo '$(LDLIBS)'

$(BUILD)/%.o: %.cc $(BUILD_CONFIG)
	@mkdir -p $(dir $@)
	$(CXX) $(EMU_CXXFLAGS) -c -o $@ $<
endif

# Also builds the GPU tests: build/tests/cuda/NAME from tests/cuda/NAME.c.
$(BUILD)/tests/%: tests/%.c $(BUILD)/libdydit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libdydit.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libdydit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libdydit.a $(LDLIBS)

# The communicator over NCCL is host code; the check program's kernels make nvcc target CUDA_ARCH.
$(BUILD)/train/dist_nccl.o: train/dist_nccl.c $(BUILD_CONFIG)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CUDA_CFLAGS) -c -o $@ $<

ifneq ($(EMULATED),1)
$(BUILD)/tests/cuda_nccl: tests/cuda_nccl.cu $(BUILD)/train/dist_nccl.o $(BUILD)/libdydit.a
	@mkdir -p $(dir $@)
	$(NVCC) -arch=$(CUDA_ARCH) -I. -o $@ $(filter %.cu %.o %.a,$^) $(MPI_LIBS) $(CUDA_LIBS) -Xlinker -rpath=$(CUDA_HOME)/lib64 -lpthread -lm
else
$(BUILD)/tests/cuda_nccl: $(BUILD)/tests/cuda_nccl.o $(BUILD)/libdydit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# The emulated device's own test (tests/emu: CUDA sources for the emulation only).
$(BUILD)/tests/emu/%: $(BUILD)/tests/emu/%.o $(BUILD)/libdydit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
endif

# A copy of the communicator built without MPI: the tests start it under mpirun to check the
# one-line refusal of a build that cannot join the job.
$(BUILD)/tests/dist_probe_nompi: tests/dist_probe.c train/dist.c common/util.c $(BUILD_CONFIG)
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -DDYDIT_MPI $(MPI_CFLAGS),$(CFLAGS)) -o $@ $(filter %.c,$^)

# make test first installs what the suite needs (the main job's packages, MPI for the multi-process
# tests, Debian's Python with PyTorch, numpy and PIL for the references; checked with dpkg -s), then
# builds and runs it in a second make, which sees what was just installed (a program built before
# MPI was there is rebuilt: see BUILD_CONFIG).
TEST_PACKAGES = $(QUICKSTART_PACKAGES) libopenmpi-dev openmpi-bin python3 python3-numpy python3-torch python3-pil
test:
	scripts/ensure_packages.sh $(TEST_PACKAGES)
	$(MAKE) test-installed

test-installed: $(DYDIT) $(TEST_BIN) $(BUILD)/tests/dist_probe_nompi $(CUDA_TEST_BIN) $(GPU_BENCH_BUILT) emulated-build
	PYTHON=$(PYTHON) BUILD=$(BUILD) DYDIT=$(DYDIT) tests/run.sh

# make test-sanitize: the command-line, corpus and image tests against the ASan+UBSan build
# (build-san/dydit), which CI runs on every change; SANITIZE_TESTS names other tests (tests/run.sh's
# TESTS), test programs among them are built too.
SANITIZE_TESTS ?= cli corrupt encode images
test-sanitize:
	$(MAKE) SANITIZE=1 build-san/dydit $(patsubst %,build-san/tests/%,$(filter test_% parity_%,$(SANITIZE_TESTS)))
	PYTHON=$(PYTHON) BUILD=build-san DYDIT=build-san/dydit TESTS="$(SANITIZE_TESTS)" tests/run.sh

# The GPU suite (tests/cuda/run.sh): every CUDA op and a whole DyDiT training step, sampling loop
# and VAE against the CPU backend, then every GPU of this machine in one NCCL communicator. Needs a
# GPU, and MPI for the NCCL check (as root: MPIRUN="mpirun --allow-run-as-root").
MPIRUN ?= mpirun
test-cuda: dydit $(CUDA_TEST_BIN) $(NCCL_BIN)
	@[ "$(CUDA_FOUND)" = yes ] || { echo "error: the CUDA backend was not built (nvcc or cuBLASLt not found, or CUDA=0)" >&2; exit 1; }
	MPIRUN="$(MPIRUN)" PYTHON=$(PYTHON) tests/cuda/run.sh

# The GPU suite on the emulated device (EMULATED=1 above): the same programs and scripts, built into
# build-emu, on the CPU (about 70 s of CPU time). make test runs it too (tests/cuda_emulated.sh,
# tests/cuda_mutants.sh).
EMU_PROGRAMS = build-emu/dydit $(patsubst tests/cuda/%.c,build-emu/tests/cuda/%,$(wildcard tests/cuda/*.c))
ifeq ($(MPI_FOUND),yes)
EMU_PROGRAMS += build-emu/tests/cuda_nccl
endif
# (SANITIZE is the CPU build's: the emulated one always goes to build-emu.)
emulated-build:
	$(MAKE) EMULATED=1 SANITIZE= $(EMU_PROGRAMS) build-emu/tests/emu/test_emu_device

test-cuda-emulated: emulated-build
	EMULATED=1 MPIRUN="$(MPIRUN)" PYTHON=$(PYTHON) tests/cuda/run.sh

bench: dydit $(BENCH_BIN)
	PYTHON=$(PYTHON) bench/cpu_train_step.sh

clean:
	rm -rf $(BUILD) dydit

# libFuzzer targets (tests/fuzz) of the file parsers, built with clang and ASan/UBSan into
# build-fuzz; make fuzz-run FUZZ_SECONDS=N runs each for N seconds from seeds made of valid files.
FUZZ_CC ?= clang
FUZZ_BUILD = build-fuzz
FUZZ_FLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 -I.
FUZZ_LIB_SRC = common/util.c train/options.c data/json.c data/safetensors.c data/shard.c data/idx.c data/image.c
FUZZ_TARGETS = $(patsubst tests/fuzz/fuzz_%.c,$(FUZZ_BUILD)/fuzz_%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_SECONDS ?= 20

fuzz: $(FUZZ_TARGETS)

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/memfile.h $(FUZZ_LIB_SRC)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_LIB_SRC) -ljpeg -lpng -lz -lm

fuzz-run: fuzz dydit
	PYTHON=$(PYTHON) tests/fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

# The packages the main job needs at build and run time (the first part of .ci/run's list; python is
# only needed by the tests). The build runs in a second make, so that it sees freshly installed headers.
QUICKSTART_PACKAGES = build-essential libopenblas-openmp-dev libjpeg62-turbo-dev libpng-dev zlib1g-dev \
	dataset-fashion-mnist
quickstart:
	scripts/ensure_packages.sh $(QUICKSTART_PACKAGES)
	$(MAKE) -j$$(nproc) dydit
	scripts/quickstart.sh

bench-sample: dydit $(BENCH_BIN)
	bench/sample_speed.sh

# Needs a GPU: bf16 GEMM peak, DiT/DyDiT training steps, sampling and the VAE against PyTorch on
# the same GPU, raw output into bench/results/ (QUICK=1: fewer steps).
ifeq ($(CUDA_FOUND),yes)
bench-gpu: $(GPU_BENCH_BIN)
	bench/gpu.sh
else
bench-gpu:
	@echo "error: the GPU benchmarks need the CUDA backend (nvcc and cuBLASLt were not found)" >&2; exit 1
endif

.PHONY: all test test-installed test-sanitize test-cuda emulated-build test-cuda-emulated emu-commands bench \
	bench-sample bench-gpu clean fuzz fuzz-run quickstart
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
