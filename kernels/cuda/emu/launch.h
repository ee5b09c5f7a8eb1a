// kernels/cuda/emu/launch.h: kernel launches on the emulated device. kernels/cuda/emu/rewrite.pl
// turns `kernel<<<grid, block, shared, stream>>>(args)` into
//     emu::launch("kernel", address, emu::config(grid, block, shared, stream),
//                 [](auto... a) { kernel(a...); }, args)
// so that the arguments are evaluated once, by the host, and every thread calls the kernel with its
// own copies of them, as on a GPU. The
// launch is checked like an H100 checks it (block and grid sizes, shared memory against the
// kernel's limit); a refused launch runs nothing and leaves its error for cudaGetLastError.
#pragma once
#include <stddef.h>

#include <tuple>
#include <type_traits>
#include <utility>

namespace emu {

struct LaunchConfig {
    dim3 grid, block;
    size_t shared; // dynamic shared memory, bytes
    cudaStream_t stream;
};

static inline LaunchConfig config(dim3 grid, dim3 block, size_t shared = 0, cudaStream_t stream = 0) {
    return LaunchConfig{grid, block, shared, stream};
}

typedef void (*ThreadBody)(const void *closure);

// Runs the grid: every block in turn, every thread of a block calling body(closure). kernel is the
// kernel's address for its attributes (NULL for a template deduced from the arguments).
void run_grid(const char *name, const void *kernel, const LaunchConfig &cfg, ThreadBody body, const void *closure,
              size_t closure_bytes);

// The arguments are kept as their decayed types (arrays as pointers), as a kernel call passes them.
template <class Call, class... Args>
static void launch(const char *name, const void *kernel, const LaunchConfig &cfg, Call call, Args &&...args) {
    struct Closure {
        Call call;
        std::tuple<std::decay_t<Args>...> args;
    } closure{call, std::tuple<std::decay_t<Args>...>(std::forward<Args>(args)...)};
    ThreadBody body = [](const void *c) {
        const Closure *k = static_cast<const Closure *>(c);
        std::apply(k->call, k->args);
    };
    run_grid(name, kernel, cfg, body, &closure, sizeof closure);
}

} // namespace emu

// The dynamic shared memory of the running block (what `extern __shared__` arrays name).
extern "C" char emu_dynamic_shared[];
