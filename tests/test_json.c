// tests/test_json.c: the strict JSON parser behind safetensors headers: values, escapes, and every
// kind of malformed input. Usage: test_json WORKDIR
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/json.h"
#include "tests/check.h"
#include "tests/workdir.h"

static char err[512];

/* ---------------------------------------------------------------------------------------------
 * JSON
 * ------------------------------------------------------------------------------------------- */

static JsonValue *parse(const char *text) { return json_parse(text, strlen(text), err, sizeof(err)); }

static void test_json_values(void) {
    const char *text =
        " {\"i\": -42, \"big\": 9223372036854775807, \"small\": -9223372036854775808, \"d\": -2.5e3,"
        " \"s\": \"x\\u00e9\\ud83d\\ude00\\n\\\"\\\\\\/\", \"a\": [true, false, null, {}], \"o\": {\"k\": []}} ";
    JsonValue *v = parse(text);
    check(v && v->type == JSON_OBJECT && v->u.object.count == 7, "json_parse_object", "%s", v ? "" : err);
    if (!v) return;
    const JsonValue *i = json_get(v, "i"), *big = json_get(v, "big"), *small = json_get(v, "small"),
                    *d = json_get(v, "d");
    check_true(i && i->type == JSON_INT && i->u.integer == -42, "json_int");
    check_true(big && big->type == JSON_INT && big->u.integer == INT64_MAX && small && small->type == JSON_INT &&
                   small->u.integer == INT64_MIN,
               "json_int64_limits");
    check_true(d && d->type == JSON_DOUBLE && d->u.number == -2500.0, "json_double");
    const JsonValue *s = json_get(v, "s");
    const char want[] = "x\xc3\xa9\xf0\x9f\x98\x80\n\"\\/";
    check_true(s && s->type == JSON_STRING && s->u.string.len == sizeof(want) - 1 &&
                   memcmp(s->u.string.data, want, sizeof(want)) == 0,
               "json_string_escapes_and_surrogate_pair");
    const JsonValue *a = json_get(v, "a");
    check_true(a && a->type == JSON_ARRAY && a->u.array.count == 4 && a->u.array.items[0].type == JSON_BOOL &&
                   a->u.array.items[0].u.boolean && !a->u.array.items[1].u.boolean &&
                   a->u.array.items[2].type == JSON_NULL && a->u.array.items[3].type == JSON_OBJECT,
               "json_array_literals");
    const JsonValue *o = json_get(v, "o");
    check_true(o && json_get(o, "k") && json_get(o, "k")->type == JSON_ARRAY && !json_get(v, "missing"), "json_get");
    json_free(v);

    v = parse("\"a\\u0000b\"");
    check_true(v && v->type == JSON_STRING && v->u.string.len == 3 && v->u.string.data[1] == '\0', "json_embedded_nul");
    json_free(v);

    const char *raw = "tab\t quote\" backslash\\ ctrl\x01 utf8 \xc3\xa9";
    char *quoted = json_quote(raw);
    v = parse(quoted);
    check(v && v->type == JSON_STRING && strcmp(v->u.string.data, raw) == 0, "json_quote_round_trip", "%s", quoted);
    json_free(v);
    free(quoted);
}

static void expect_json_error(const char *name, const char *text, size_t len, const char *words) {
    JsonValue *v = json_parse(text, len, err, sizeof(err));
    check(!v && contains(err, words) && contains(err, "byte "), name, "%s", v ? "parsed" : err);
    json_free(v);
}

static void test_json_errors(void) {
#define BAD(name, text, words) expect_json_error(name, text, sizeof(text) - 1, words)
    BAD("json_err_trailing_comma", "{\"a\":1,}", "expected a string key");
    BAD("json_err_missing_colon", "{\"a\" 1}", "':'");
    BAD("json_err_unterminated_string", "{\"a", "unterminated");
    BAD("json_err_lone_high_surrogate", "\"\\ud800\"", "surrogate");
    BAD("json_err_lone_low_surrogate", "\"\\udc00\"", "surrogate");
    BAD("json_err_bad_escape", "\"\\x41\"", "invalid escape");
    BAD("json_err_bad_hex", "\"\\u12g4\"", "hex");
    BAD("json_err_leading_zero", "01", "leading zero");
    BAD("json_err_int_overflow", "9223372036854775808", "64 bits");
    BAD("json_err_double_overflow", "1e999", "out of range");
    BAD("json_err_bad_fraction", "1.", "after '.'");
    BAD("json_err_trailing_text", "{} x", "after the JSON value");
    BAD("json_err_duplicate_key", "{\"a\":1,\"b\":2,\"a\":3}", "duplicate key 'a'");
    BAD("json_err_control_char", "\"a\nb\"", "control character");
    BAD("json_err_invalid_utf8", "\"\xff\"", "UTF-8");
    BAD("json_err_overlong_utf8", "\"\xc0\xaf\"", "UTF-8");
    BAD("json_err_bad_literal", "[tru]", "literal");
    BAD("json_err_empty", "", "end of text");
    BAD("json_err_unclosed_array", "[1, 2", "end of text");
#undef BAD
    char deep[200];
    memset(deep, '[', sizeof(deep));
    expect_json_error("json_err_depth_limit", deep, sizeof(deep), "nesting");
    // Depth JSON_MAX_DEPTH itself is fine.
    char ok[2 * JSON_MAX_DEPTH];
    memset(ok, '[', JSON_MAX_DEPTH);
    memset(ok + JSON_MAX_DEPTH, ']', JSON_MAX_DEPTH);
    JsonValue *v = json_parse(ok, sizeof(ok), err, sizeof(err));
    check(v != NULL, "json_depth_at_limit", "%s", v ? "" : err);
    json_free(v);
}

/* ---------------------------------------------------------------------------------------------
 * safetensors round trip
 * ------------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORKDIR\n", argv[0]);
        return 2;
    }
    workdir_init(argv[1], "json");
    test_json_values();
    test_json_errors();
    return check_exit();
}
