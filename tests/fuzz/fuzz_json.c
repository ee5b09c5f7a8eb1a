// libFuzzer target: the JSON parser (safetensors headers, index.json, state.json), and quoting
// every string it returns back into JSON that parses to the same string.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/json.h"

static void walk(const JsonValue *v) {
    if (v->type == JSON_STRING && strlen(v->u.string.data) == v->u.string.len) {
        char *q = json_quote(v->u.string.data), err[256];
        JsonValue *back = json_parse(q, strlen(q), err, sizeof(err));
        if (!back || back->type != JSON_STRING || strcmp(back->u.string.data, v->u.string.data)) abort();
        json_free(back);
        free(q);
    } else if (v->type == JSON_ARRAY) {
        for (int i = 0; i < v->u.array.count; i++) walk(&v->u.array.items[i]);
    } else if (v->type == JSON_OBJECT) {
        for (int i = 0; i < v->u.object.count; i++) walk(&v->u.object.members[i].value);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char err[256];
    JsonValue *v = json_parse((const char *)data, size, err, sizeof(err));
    if (v) {
        walk(v);
        json_free(v);
    }
    return 0;
}
