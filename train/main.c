// train/main.c: the dydit program: dispatches to a subcommand.
#include <stdio.h>
#include <string.h>

#include "train/commands.h"

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} Command;

static const Command commands[] = {
    {"train", cmd_train, "train a DiT on latents (in memory, a shard, or generated)"},
    {"forward", cmd_forward, "one forward pass on tensors from a safetensors file (parity, debugging)"},
    {"grad", cmd_grad, "one training loss and every gradient on given tensors (parity, debugging)"},
    {"convert", cmd_convert, "normalise a weights file: names, dtype, config metadata"},
    {"flops", cmd_flops, "parameters and GMACs of a configuration"},
};
enum { COMMAND_COUNT = sizeof(commands) / sizeof(commands[0]) };

static void usage(FILE *out) {
    fprintf(out, "dydit: train and sample Diffusion Transformers and Dynamic DiTs\n\nusage: dydit COMMAND [options]\n\n"
                 "commands:\n");
    for (int i = 0; i < COMMAND_COUNT; i++) fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out, "\n'dydit COMMAND --help' lists a command's options.\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage(stdout);
        return argc < 2 ? 1 : 0;
    }
    for (int i = 0; i < COMMAND_COUNT; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "error: unknown command '%s' (see dydit --help)\n", argv[1]);
    return 1;
}
