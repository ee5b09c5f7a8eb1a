// libFuzzer target: the config-file parser (`--config FILE`, train/options.c) over a set of
// options of every type named like dydit train's. A malformed file makes the parser die(); the
// handler checks that the message is one line and jumps back for the next input. Values it
// accepts must hold what the types promise (finite floats, 0/1 flags). The string values the
// parser hands out are freed here after each input, so libFuzzer's leak check stays on.
#include "tests/fuzz/memfile.h"

#include <math.h>
#include <setjmp.h>
#include <string.h>

#include "common/util.h"
#include "train/options.h"

static jmp_buf back;

static void on_die(const char *message) {
    if (!*message || strchr(message, '\n')) abort(); // one non-empty line
    longjmp(back, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int depth, steps, batch, dynamic, stage;
    static double lr, ema_decay, lambda;
    static const char *out, *data_dir, *init;
    depth = steps = batch = dynamic = stage = 0;
    lr = ema_decay = lambda = 0;
    out = data_dir = init = NULL;
    Option options[] = {
        {"depth", OPT_INT, &depth, "", NULL, 0},         {"steps", OPT_INT, &steps, "", NULL, 0},
        {"batch", OPT_INT, &batch, "", NULL, 0},         {"stage", OPT_INT, &stage, "", NULL, 0},
        {"dynamic", OPT_FLAG, &dynamic, "", NULL, 0},    {"lr", OPT_FLOAT, &lr, "", NULL, 0},
        {"ema-decay", OPT_FLOAT, &ema_decay, "", NULL, 0}, {"lambda", OPT_FLOAT, &lambda, "", NULL, 0},
        {"out", OPT_STRING, &out, "", NULL, 0},          {"data", OPT_STRING, &data_dir, "", NULL, 0},
        {"init", OPT_STRING, &init, "", NULL, 0},
    };
    OptionSet set = {"train", "", "", options, (int)(sizeof(options) / sizeof(options[0]))};
    char *argv[] = {"dydit", "--config", (char *)memfile_path(data, size), NULL};
    die_set_handler(on_die);
    if (!setjmp(back)) {
        options_parse(&set, 3, argv);
        if (!isfinite(lr) || !isfinite(ema_decay) || !isfinite(lambda) || (dynamic != 0 && dynamic != 1)) abort();
    }
    free((char *)out);
    free((char *)data_dir);
    free((char *)init);
    return 0;
}
