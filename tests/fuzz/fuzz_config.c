// libFuzzer target: the config-file parser (`--config FILE`, train/options.c) over a set of
// options of every type named like dydit train's. A malformed file makes the parser die(); the
// handler checks that the message is one line and jumps back for the next input. Values it
// accepts must hold what the types and ranges promise (numbers within their ranges, 0/1 flags). The string values the
// parser hands out are freed here after each input, so libFuzzer's leak check stays on.
#include "tests/fuzz/memfile.h"

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
        {"depth", OPT_INT, &depth, "", NULL, 0, RANGE(1, 1024)},
        {"steps", OPT_INT, &steps, "", NULL, 0, RANGE(1, INT_MAX)},
        {"batch", OPT_INT, &batch, "", NULL, 0, RANGE(1, BATCH_MAX)},
        {"stage", OPT_INT, &stage, "", NULL, 0, RANGE(1, 2)},
        {"dynamic", OPT_FLAG, &dynamic, "", NULL, 0, NO_RANGE},
        {"lr", OPT_FLOAT, &lr, "", NULL, 0, RANGE(0, 1)},
        {"ema-decay", OPT_FLOAT, &ema_decay, "", NULL, 0, RANGE(0, 1)},
        {"lambda", OPT_FLOAT, &lambda, "", NULL, 0, RANGE_ABOVE(0, 1)},
        {"out", OPT_STRING, &out, "", NULL, 0, NO_RANGE},
        {"data", OPT_STRING, &data_dir, "", NULL, 0, NO_RANGE},
        {"init", OPT_STRING, &init, "", NULL, 0, NO_RANGE},
    };
    OptionSet set = {"train", "", "", options, (int)(sizeof(options) / sizeof(options[0]))};
    char *argv[] = {"dydit", "--config", (char *)memfile_path(data, size), NULL};
    die_set_handler(on_die);
    if (!setjmp(back)) {
        options_parse(&set, 3, argv);
        if (!(lr >= 0 && lr <= 1) || !(ema_decay >= 0 && ema_decay <= 1) || !(lambda >= 0 && lambda <= 1) ||
            (dynamic != 0 && dynamic != 1))
            abort();
    }
    free((char *)out);
    free((char *)data_dir);
    free((char *)init);
    return 0;
}
