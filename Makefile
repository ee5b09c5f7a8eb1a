# dydit: make quickstart installs what is missing, builds, and runs the main job on Fashion-MNIST
# (scripts/quickstart.sh); make builds the program, make test runs the CPU test suite, make bench compares the CPU
# training step with PyTorch, make bench-sample times the DyDiT dynamic sampler against the static one.
CC ?= gcc
PYTHON ?= /usr/bin/python3
OPT ?= -O3 -march=native
CFLAGS += $(OPT) -std=gnu11 -fopenmp -Wall -Wextra -Wno-unused-parameter -I. -MMD -MP
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
ifneq ($(CUDA),0)
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
CUDA_LIBS = -L$(CUDA_HOME)/lib64 -lnccl -lcudart
ifeq ($(MPI_FOUND)$(CUDA_FOUND),yesyes)
NCCL_FOUND := $(shell printf '$(HASH)include <nccl.h>\nint main(void) { int v; return ncclGetVersion(&v); }\n' | \
	$(CC) $(CUDA_CFLAGS) -x c - -o /dev/null $(CUDA_LIBS) 2>/dev/null && echo yes)
endif

BUILD = build
LIB_SRC = $(wildcard common/*.c kernels/cpu/*.c model/*.c optim/*.c data/*.c eval/*.c) \
	$(filter-out train/main.c train/dist_mpi.c train/dist_nccl.c,$(wildcard train/*.c))
ifeq ($(MPI_FOUND),yes)
LIB_SRC += train/dist_mpi.c
endif
ifeq ($(CUDA_FOUND),yes)
LIB_SRC += $(wildcard kernels/cuda/*.c)
CUDA_SRC = $(wildcard kernels/cuda/*.cu)
endif
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o) $(CUDA_SRC:%.cu=$(BUILD)/%.o)
TEST_SRC = $(wildcard tests/test_*.c tests/parity_*.c)
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC = $(wildcard bench/*.c)
BENCH_BIN = $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

NCCL_BIN =
ifeq ($(NCCL_FOUND),yes)
NCCL_BIN = $(BUILD)/tests/cuda_nccl
endif

all: dydit $(NCCL_BIN)

dydit: $(BUILD)/train/main.o $(BUILD)/libdydit.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libdydit.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/%.o: %.cu
	@mkdir -p $(dir $@)
	$(NVCC) $(NVCCFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(BUILD)/libdydit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libdydit.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libdydit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libdydit.a $(LDLIBS)

# The communicator over NCCL is host code; the check program's kernels make nvcc target CUDA_ARCH.
$(BUILD)/train/dist_nccl.o: train/dist_nccl.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(CUDA_CFLAGS) -c -o $@ $<

$(BUILD)/tests/cuda_nccl: tests/cuda_nccl.cu $(BUILD)/train/dist_nccl.o $(BUILD)/libdydit.a
	@mkdir -p $(dir $@)
	$(NVCC) -arch=$(CUDA_ARCH) -I. -o $@ $(filter %.cu %.o %.a,$^) $(MPI_LIBS) $(CUDA_LIBS) -Xlinker -rpath=$(CUDA_HOME)/lib64 -lpthread -lm

# A copy of the communicator built without MPI: the tests start it under mpirun to check the
# one-line refusal of a build that cannot join the job.
$(BUILD)/tests/dist_probe_nompi: tests/dist_probe.c train/dist.c common/util.c
	@mkdir -p $(dir $@)
	$(CC) $(filter-out -DDYDIT_MPI $(MPI_CFLAGS),$(CFLAGS)) -o $@ $(filter %.c,$^)

test: dydit $(TEST_BIN) $(BUILD)/tests/dist_probe_nompi
	PYTHON=$(PYTHON) tests/run.sh

# Needs GPUs and MPI: every GPU of this machine in one NCCL communicator (as root:
# MPIRUN="mpirun --allow-run-as-root").
MPIRUN ?= mpirun
test-cuda: $(BUILD)/tests/cuda_nccl
	$(MPIRUN) -np $$(nvidia-smi -L | wc -l) $(BUILD)/tests/cuda_nccl

bench: dydit $(BENCH_BIN)
	PYTHON=$(PYTHON) bench/cpu_train_step.sh

clean:
	rm -rf $(BUILD) dydit

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

.PHONY: all test test-cuda bench bench-sample clean quickstart
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
