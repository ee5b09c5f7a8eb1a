# dydit: make builds the program, make test runs the CPU test suite, make bench compares the CPU
# training step with PyTorch.
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

BUILD = build
LIB_SRC = $(wildcard common/*.c kernels/cpu/*.c model/*.c optim/*.c data/*.c) $(filter-out train/main.c,$(wildcard train/*.c))
LIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/%.o)
TEST_SRC = $(wildcard tests/test_*.c tests/parity_*.c)
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
BENCH_SRC = $(wildcard bench/*.c)
BENCH_BIN = $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

all: dydit

dydit: $(BUILD)/train/main.o $(BUILD)/libdydit.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libdydit.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/tests/%: tests/%.c $(BUILD)/libdydit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libdydit.a $(LDLIBS)

$(BUILD)/bench/%: bench/%.c $(BUILD)/libdydit.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $< $(BUILD)/libdydit.a $(LDLIBS)

test: dydit $(TEST_BIN)
	PYTHON=$(PYTHON) tests/run.sh

bench: dydit $(BENCH_BIN)
	PYTHON=$(PYTHON) bench/cpu_train_step.sh

clean:
	rm -rf $(BUILD) dydit

.PHONY: all test bench clean
-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
