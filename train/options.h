// train/options.h: declarative command-line options shared by every command.
//
// A command lists its options once (name, type, target, help); the parser then handles
// `--name value`, `--name=value`, flags, `--help`, and `--config FILE` (plain `key = value`
// lines, `#` comments, keys spelled like the options without the dashes). Values on the command
// line override the config file wherever they appear. The effective values can be printed and
// serialised so every run records what it ran with.
#pragma once
#include <limits.h>
#include <stdio.h>

typedef enum { OPT_INT, OPT_FLOAT, OPT_STRING, OPT_FLAG } OptionType;

// The values a numeric option accepts: from min to max, each bound included unless its flag
// excludes it. Every OPT_INT and OPT_FLOAT option declares one; the parser refuses a value
// outside it with one line naming the option, and --help prints it.
typedef struct {
    double min, max;
    unsigned char min_excluded, max_excluded;
    unsigned char declared;
} OptionRange;

#define RANGE(lo, hi)                                                                                                  \
    { (lo), (hi), 0, 0, 1 } // [lo, hi]
#define RANGE_ABOVE(lo, hi)                                                                                            \
    { (lo), (hi), 1, 0, 1 } // (lo, hi]
#define RANGE_BELOW(lo, hi)                                                                                            \
    { (lo), (hi), 0, 1, 1 } // [lo, hi)
#define NO_RANGE                                                                                                       \
    { 0, 0, 0, 0, 0 } // strings and flags

// Bounds shared by several commands: counts stay far from int overflow in the products they
// enter, seeds may be any non-negative int, and a guidance scale beyond 100 only amplifies
// the difference of two predictions into values no sampler step survives.
#define COUNT_MAX 1e9
#define BATCH_MAX 1048576
#define THREADS_MAX 1024
#define SEED_RANGE RANGE(0, INT_MAX)
#define GUIDANCE_RANGE RANGE(0, 100)

typedef struct {
    const char *name; // long name without dashes: "lr"
    OptionType type;
    void *target; // int*, double*, const char**, int* (flag: 0/1)
    const char *help;
    const char *default_text; // shown in --help instead of the target's value, when set
    int was_set;              // filled by the parser: 1 when the file or the command line gave a value
    OptionRange range;        // OPT_INT and OPT_FLOAT only
} Option;

typedef struct {
    const char *command; // "train"
    const char *summary; // one line
    const char *usage;   // "dydit train [options]"
    Option *options;
    int count;
} OptionSet;

// Parses argv (argv[0] is the command name). Exits 0 after printing help for --help; exits 1 with
// a one-line error for unknown options, missing values, malformed numbers and numbers out of range.
void options_parse(OptionSet *set, int argc, char **argv);
// Whether the named option received a value.
int options_was_set(const OptionSet *set, const char *name);
// "name = value" lines of every option with a value (config-file syntax), to a stream.
void options_print(const OptionSet *set, FILE *out, const char *prefix);
// The effective options as one JSON object string (caller frees).
char *options_to_json(const OptionSet *set);
// Dies with one line when a string option's value is not UTF-8. Commands that store their options
// or paths as JSON (checkpoints, weights metadata, shard indexes, reports) call it before any work:
// JSON holds only UTF-8, and a value refused at the end would waste the run.
void options_require_utf8(const OptionSet *set);
