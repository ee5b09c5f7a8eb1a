// train/main.c: the dydit program: dispatches to a subcommand.
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"
#include "train/commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command commands[] = {
    {"encode", cmd_encode, "images (folders of JPEG/PNG, Fashion-MNIST) -> latent shards"},
    {"decode", cmd_decode, "latents -> images through the SD VAE decoder"},
    {"sample", cmd_sample, "DDPM / DDIM sampling with guidance; a DyDiT really skips work; PNG grid, npz"},
    {"train", cmd_train, "train a DiT on latents (in memory, a shard, or generated)"},
    {"forward", cmd_forward, "one forward pass on tensors from a safetensors file (parity, debugging)"},
    {"grad", cmd_grad, "one training loss and every gradient on given tensors (parity, debugging)"},
    {"convert", cmd_convert, "normalise a weights file: names, dtype, config metadata"},
    {"flops", cmd_flops, "parameters and GMACs of a configuration"},
    {"calibrate", cmd_calibrate, "shift a DyDiT's router biases so that sampling realises its FLOPs target"},
    {"plot", cmd_plot, "curves of training logs (loss, FLOPs ratio, ...) as a PNG"},
    {"evaluate", cmd_evaluate, "FMNIST-FD: train the small Fashion-MNIST classifier, score samples against real images"},
};
enum { COMMAND_COUNT = sizeof(commands) / sizeof(commands[0]) };

static void usage(FILE *out) {
    fprintf(out, "dydit: train and sample Diffusion Transformers and Dynamic DiTs\n\nusage: dydit COMMAND [options]\n\n"
                 "commands:\n");
    for (int i = 0; i < COMMAND_COUNT; i++) fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'dydit COMMAND --help' lists a command's options.\n");
}

// OpenMP threads that spin at barriers make a run 15-30x slower as soon as another process shares
// the cores (measured: 35.7 s instead of 2.5 s for a small training run), and sleeping costs
// nothing measurable here. libgomp reads OMP_WAIT_POLICY once, when it loads, so unless the user
// chose a policy the program re-executes itself with passive waiting.
static void prefer_passive_waiting(char **argv) {
    if (getenv("OMP_WAIT_POLICY")) return;
    setenv("OMP_WAIT_POLICY", "passive", 1);
    execv("/proc/self/exe", argv); // returns only on failure: then run with the default policy
}

// What a command prints to stdout (results, JSON reports, a log without --log) is output too: a
// write the system refused (a full disk, a closed pipe) must not end in status 0.
static int check_stdout(int status) {
    if (fflush(stdout) || ferror(stdout)) die("stdout: cannot write: %s", strerror(errno ? errno : EIO));
    return status;
}

int main(int argc, char **argv) {
    prefer_passive_waiting(argv);
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 1 : 0;
    }
    for (int i = 0; i < COMMAND_COUNT; i++)
        if (!strcmp(argv[1], commands[i].name)) return check_stdout(commands[i].run(argc - 1, argv + 1));
    fprintf(stderr, "error: unknown command '%s' (see dydit --help)\n", argv[1]);
    return 1;
}
