// data/json.h: a small strict JSON (RFC 8259) parser into a tree, and string quoting for writers.
// Used for safetensors headers and small state files, so it favours clear errors over speed:
// strings must be valid UTF-8, duplicate object keys are rejected, integers that do not fit in
// int64 are rejected rather than rounded, nesting is limited to JSON_MAX_DEPTH.
#pragma once
#include <stddef.h>
#include <stdint.h>

enum { JSON_MAX_DEPTH = 64 };

typedef enum { JSON_NULL, JSON_BOOL, JSON_INT, JSON_DOUBLE, JSON_STRING, JSON_ARRAY, JSON_OBJECT } JsonType;

typedef struct JsonValue JsonValue;
typedef struct JsonMember JsonMember;

struct JsonValue {
    JsonType type;
    size_t pos; // byte offset of the value in the parsed text, for error messages
    union {
        int boolean;
        int64_t integer; // a number written without fraction or exponent
        double number;   // any other number
        struct {
            char *data; // UTF-8, NUL-terminated; may also contain NULs from \u0000
            size_t len;
        } string;
        struct {
            JsonValue *items;
            int count;
        } array;
        struct {
            JsonMember *members; // in the order of the text
            int count;
        } object;
    } u;
};

struct JsonMember {
    char *key; // NUL-terminated
    size_t key_len;
    JsonValue value;
};

// Parses text[0, len) as exactly one JSON value with optional surrounding whitespace. Returns the
// root (free with json_free), or NULL with "byte N: problem" written into err.
JsonValue *json_parse(const char *text, size_t len, char *err, int err_size);
void json_free(JsonValue *root);

// The member value of an object, or NULL when v is not an object or has no such key.
const JsonValue *json_get(const JsonValue *v, const char *key);
// "object", "string", ... for messages.
const char *json_type_name(JsonType type);

// 1 when s[0, n) is well-formed UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
int json_utf8_valid(const char *s, size_t n);
// Returns a freshly allocated JSON string literal for the NUL-terminated UTF-8 string s,
// quotes included, with '"', '\\' and control characters escaped.
char *json_quote(const char *s);
