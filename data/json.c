#include "data/json.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

typedef struct {
    const char *text;
    size_t len, pos;
    char *err;
    int err_size;
} Parser;

static int json_fail_at(Parser *p, size_t pos, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int json_fail_at(Parser *p, size_t pos, const char *fmt, ...) {
    int n = snprintf(p->err, (size_t)p->err_size, "byte %zu: ", pos);
    if (n >= 0 && n < p->err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(p->err + n, (size_t)(p->err_size - n), fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void skip_space(Parser *p) {
    while (p->pos < p->len) {
        char c = p->text[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

static int at_end(const Parser *p) { return p->pos >= p->len; }

// Length of the UTF-8 sequence starting at s (at most n bytes available), or 0 when it is not a
// well-formed one. Overlong forms, UTF-16 surrogates and code points past U+10FFFF are rejected.
static size_t utf8_sequence(const unsigned char *s, size_t n) {
    unsigned c = s[0];
    if (c < 0x80) return 1;
    size_t len;
    unsigned cp, min;
    if ((c & 0xE0) == 0xC0)
        len = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        len = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        len = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (len > n) return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return len;
}

int json_utf8_valid(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_sequence(u + i, n - i);
        if (!k) return 0;
        i += k;
    }
    return 1;
}

typedef struct {
    char *data;
    size_t len, cap;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 32;
        while (cap < b->len + n + 1) cap *= 2;
        b->data = xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void buf_put_code_point(Buf *b, unsigned cp) {
    char o[4];
    size_t n;
    if (cp < 0x80)
        o[0] = (char)cp, n = 1;
    else if (cp < 0x800)
        o[0] = (char)(0xC0 | cp >> 6), o[1] = (char)(0x80 | (cp & 0x3F)), n = 2;
    else if (cp < 0x10000)
        o[0] = (char)(0xE0 | cp >> 12), o[1] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[2] = (char)(0x80 | (cp & 0x3F)),
        n = 3;
    else
        o[0] = (char)(0xF0 | cp >> 18), o[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
        o[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), o[3] = (char)(0x80 | (cp & 0x3F)), n = 4;
    buf_put(b, o, n);
}

// Four hex digits at p->pos; advances past them.
static int parse_hex4(Parser *p, unsigned *out) {
    if (p->len - p->pos < 4) return json_fail_at(p, p->pos, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p->text[p->pos + (size_t)i];
        int d = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (d < 0) return json_fail_at(p, p->pos + (size_t)i, "invalid hex digit in \\u escape");
        v = v * 16 + (unsigned)d;
    }
    p->pos += 4;
    *out = v;
    return 0;
}

// After the backslash of "\uXXXX": one code point, combining a surrogate pair into one.
static int parse_unicode_escape(Parser *p, Buf *b) {
    size_t start = p->pos - 2;
    unsigned hi;
    if (parse_hex4(p, &hi)) return -1;
    if (hi >= 0xDC00 && hi <= 0xDFFF) return json_fail_at(p, start, "unpaired low surrogate \\u%04X", hi);
    if (hi < 0xD800 || hi > 0xDBFF) {
        buf_put_code_point(b, hi);
        return 0;
    }
    if (p->len - p->pos < 2 || p->text[p->pos] != '\\' || p->text[p->pos + 1] != 'u')
        return json_fail_at(p, start, "high surrogate \\u%04X is not followed by a low surrogate", hi);
    p->pos += 2;
    unsigned lo;
    if (parse_hex4(p, &lo)) return -1;
    if (lo < 0xDC00 || lo > 0xDFFF) return json_fail_at(p, start, "high surrogate \\u%04X is followed by \\u%04X", hi, lo);
    buf_put_code_point(b, 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00));
    return 0;
}

// At the opening quote. The result is always NUL-terminated, even when empty.
static int parse_string(Parser *p, char **out, size_t *out_len) {
    size_t start = p->pos++;
    Buf b = {0};
    buf_put(&b, "", 0);
    for (;;) {
        if (at_end(p)) {
            free(b.data);
            return json_fail_at(p, start, "unterminated string");
        }
        unsigned char c = (unsigned char)p->text[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20) {
            free(b.data);
            return json_fail_at(p, p->pos, "control character 0x%02X inside a string (must be escaped)", c);
        }
        if (c == '\\') {
            if (p->len - p->pos < 2) {
                free(b.data);
                return json_fail_at(p, p->pos, "unterminated escape");
            }
            char e = p->text[p->pos + 1];
            const char *simple = NULL;
            switch (e) {
            case '"':
                simple = "\"";
                break;
            case '\\':
                simple = "\\";
                break;
            case '/':
                simple = "/";
                break;
            case 'b':
                simple = "\b";
                break;
            case 'f':
                simple = "\f";
                break;
            case 'n':
                simple = "\n";
                break;
            case 'r':
                simple = "\r";
                break;
            case 't':
                simple = "\t";
                break;
            case 'u':
                break;
            default:
                free(b.data);
                return json_fail_at(p, p->pos, "invalid escape '\\%c'", e);
            }
            p->pos += 2;
            if (simple) {
                buf_put(&b, simple, 1);
            } else if (parse_unicode_escape(p, &b)) {
                free(b.data);
                return -1;
            }
            continue;
        }
        size_t n = utf8_sequence((const unsigned char *)p->text + p->pos, p->len - p->pos);
        if (!n) {
            free(b.data);
            return json_fail_at(p, p->pos, "invalid UTF-8 in string");
        }
        buf_put(&b, p->text + p->pos, n);
        p->pos += n;
    }
    *out = b.data;
    *out_len = b.len;
    return 0;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

static int parse_number(Parser *p, JsonValue *v) {
    size_t start = p->pos, i = p->pos;
    const char *t = p->text;
    int negative = 0, integral = 1;
    if (i < p->len && t[i] == '-') negative = 1, i++;
    if (i >= p->len || !is_digit(t[i])) return json_fail_at(p, start, "invalid number");
    if (t[i] == '0') {
        i++;
        if (i < p->len && is_digit(t[i])) return json_fail_at(p, start, "number with a leading zero");
    } else {
        while (i < p->len && is_digit(t[i])) i++;
    }
    if (i < p->len && t[i] == '.') {
        integral = 0;
        i++;
        if (i >= p->len || !is_digit(t[i])) return json_fail_at(p, start, "invalid number: no digit after '.'");
        while (i < p->len && is_digit(t[i])) i++;
    }
    if (i < p->len && (t[i] == 'e' || t[i] == 'E')) {
        integral = 0;
        i++;
        if (i < p->len && (t[i] == '+' || t[i] == '-')) i++;
        if (i >= p->len || !is_digit(t[i])) return json_fail_at(p, start, "invalid number: no digit in exponent");
        while (i < p->len && is_digit(t[i])) i++;
    }
    p->pos = i;
    if (integral) {
        // Accumulate the magnitude unsigned so that INT64_MIN is representable.
        uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, m = 0;
        for (size_t k = start + (size_t)negative; k < i; k++) {
            uint64_t d = (uint64_t)(t[k] - '0');
            if (m > (limit - d) / 10)
                return json_fail_at(p, start, "integer %.*s does not fit in 64 bits", (int)(i - start), t + start);
            m = m * 10 + d;
        }
        v->type = JSON_INT;
        v->u.integer = negative ? (int64_t)(0 - m) : (int64_t)m;
        return 0;
    }
    // strtod needs a terminated copy; the grammar check above already fixed the syntax, and the
    // program never calls setlocale, so the decimal point is '.'.
    char small[64], *copy = (i - start < sizeof(small)) ? small : xmalloc(i - start + 1);
    memcpy(copy, t + start, i - start);
    copy[i - start] = '\0';
    double d = strtod(copy, NULL);
    if (copy != small) free(copy);
    if (!isfinite(d)) return json_fail_at(p, start, "number out of range");
    v->type = JSON_DOUBLE;
    v->u.number = d;
    return 0;
}

static void free_value(JsonValue *v) {
    switch (v->type) {
    case JSON_STRING:
        free(v->u.string.data);
        break;
    case JSON_ARRAY:
        for (int i = 0; i < v->u.array.count; i++) free_value(&v->u.array.items[i]);
        free(v->u.array.items);
        break;
    case JSON_OBJECT:
        for (int i = 0; i < v->u.object.count; i++) {
            free(v->u.object.members[i].key);
            free_value(&v->u.object.members[i].value);
        }
        free(v->u.object.members);
        break;
    default:
        break;
    }
    v->type = JSON_NULL;
}

static int compare_members(const void *a, const void *b) {
    const JsonMember *x = *(const JsonMember *const *)a, *y = *(const JsonMember *const *)b;
    size_t n = x->key_len < y->key_len ? x->key_len : y->key_len;
    int c = memcmp(x->key, y->key, n);
    if (c) return c;
    return (x->key_len > y->key_len) - (x->key_len < y->key_len);
}

// Sorting makes the check O(n log n): a 100 MB header may hold a million keys.
static int check_duplicate_keys(Parser *p, const JsonValue *obj) {
    int n = obj->u.object.count;
    if (n < 2) return 0;
    const JsonMember **sorted = xmalloc(sizeof(*sorted) * (size_t)n);
    for (int i = 0; i < n; i++) sorted[i] = &obj->u.object.members[i];
    qsort(sorted, (size_t)n, sizeof(*sorted), compare_members);
    int rc = 0;
    for (int i = 1; i < n; i++) {
        if (compare_members(&sorted[i - 1], &sorted[i]) == 0) {
            const JsonMember *later = sorted[i]->value.pos > sorted[i - 1]->value.pos ? sorted[i] : sorted[i - 1];
            rc = json_fail_at(p, later->value.pos, "duplicate key '%.80s'", later->key);
            break;
        }
    }
    free(sorted);
    return rc;
}

static int parse_value(Parser *p, JsonValue *v, int depth);

static int parse_array(Parser *p, JsonValue *v, int depth) {
    p->pos++;
    v->type = JSON_ARRAY;
    v->u.array.items = NULL;
    v->u.array.count = 0;
    int cap = 0;
    skip_space(p);
    if (!at_end(p) && p->text[p->pos] == ']') {
        p->pos++;
        return 0;
    }
    for (;;) {
        if (v->u.array.count == cap) {
            cap = cap ? 2 * cap : 4;
            v->u.array.items = xrealloc(v->u.array.items, sizeof(JsonValue) * (size_t)cap);
        }
        if (parse_value(p, &v->u.array.items[v->u.array.count], depth + 1)) break;
        v->u.array.count++;
        skip_space(p);
        if (at_end(p)) {
            json_fail_at(p, p->pos, "unexpected end of text inside an array");
            break;
        }
        char c = p->text[p->pos++];
        if (c == ']') return 0;
        if (c != ',') {
            json_fail_at(p, p->pos - 1, "expected ',' or ']' in array");
            break;
        }
    }
    free_value(v);
    return -1;
}

static int parse_object(Parser *p, JsonValue *v, int depth) {
    p->pos++;
    v->type = JSON_OBJECT;
    v->u.object.members = NULL;
    v->u.object.count = 0;
    int cap = 0;
    skip_space(p);
    if (!at_end(p) && p->text[p->pos] == '}') {
        p->pos++;
        return 0;
    }
    for (;;) {
        skip_space(p);
        if (at_end(p) || p->text[p->pos] != '"') {
            json_fail_at(p, p->pos, "expected a string key in object");
            break;
        }
        if (v->u.object.count == cap) {
            cap = cap ? 2 * cap : 4;
            v->u.object.members = xrealloc(v->u.object.members, sizeof(JsonMember) * (size_t)cap);
        }
        JsonMember *m = &v->u.object.members[v->u.object.count];
        if (parse_string(p, &m->key, &m->key_len)) break;
        skip_space(p);
        if (at_end(p) || p->text[p->pos] != ':') {
            free(m->key);
            json_fail_at(p, p->pos, "expected ':' after object key");
            break;
        }
        p->pos++;
        if (parse_value(p, &m->value, depth + 1)) {
            free(m->key);
            break;
        }
        v->u.object.count++;
        skip_space(p);
        if (at_end(p)) {
            json_fail_at(p, p->pos, "unexpected end of text inside an object");
            break;
        }
        char c = p->text[p->pos++];
        if (c == '}') {
            if (check_duplicate_keys(p, v)) break;
            return 0;
        }
        if (c != ',') {
            json_fail_at(p, p->pos - 1, "expected ',' or '}' in object");
            break;
        }
    }
    free_value(v);
    return -1;
}

static int parse_literal(Parser *p, const char *word) {
    size_t n = strlen(word);
    if (p->len - p->pos < n || memcmp(p->text + p->pos, word, n) != 0) return json_fail_at(p, p->pos, "invalid literal");
    p->pos += n;
    return 0;
}

static int parse_value(Parser *p, JsonValue *v, int depth) {
    skip_space(p);
    memset(v, 0, sizeof(*v));
    v->pos = p->pos;
    if (at_end(p)) return json_fail_at(p, p->pos, "unexpected end of text, expected a value");
    if (depth > JSON_MAX_DEPTH) return json_fail_at(p, p->pos, "nesting deeper than %d levels", JSON_MAX_DEPTH);
    char c = p->text[p->pos];
    switch (c) {
    case '{':
        return parse_object(p, v, depth);
    case '[':
        return parse_array(p, v, depth);
    case '"':
        v->type = JSON_STRING;
        return parse_string(p, &v->u.string.data, &v->u.string.len);
    case 't':
        v->type = JSON_BOOL, v->u.boolean = 1;
        return parse_literal(p, "true");
    case 'f':
        v->type = JSON_BOOL, v->u.boolean = 0;
        return parse_literal(p, "false");
    case 'n':
        v->type = JSON_NULL;
        return parse_literal(p, "null");
    default:
        if (c == '-' || is_digit(c)) return parse_number(p, v);
        return json_fail_at(p, p->pos, "unexpected character '%c', expected a value", (c >= 0x20 && c < 0x7F) ? c : '?');
    }
}

JsonValue *json_parse(const char *text, size_t len, char *err, int err_size) {
    Parser p = {.text = text, .len = len, .err = err, .err_size = err_size};
    JsonValue *root = xmalloc(sizeof(*root));
    if (parse_value(&p, root, 1)) {
        free(root);
        return NULL;
    }
    skip_space(&p);
    if (!at_end(&p)) {
        json_fail_at(&p, p.pos, "unexpected text after the JSON value");
        json_free(root);
        return NULL;
    }
    return root;
}

void json_free(JsonValue *root) {
    if (!root) return;
    free_value(root);
    free(root);
}

const JsonValue *json_get(const JsonValue *v, const char *key) {
    if (!v || v->type != JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (int i = 0; i < v->u.object.count; i++) {
        const JsonMember *m = &v->u.object.members[i];
        if (m->key_len == n && memcmp(m->key, key, n) == 0) return &m->value;
    }
    return NULL;
}

const char *json_type_name(JsonType type) {
    static const char *const names[] = {"null", "boolean", "integer", "number", "string", "array", "object"};
    return (unsigned)type < sizeof(names) / sizeof(names[0]) ? names[type] : "?";
}

char *json_quote(const char *s) {
    Buf b = {0};
    buf_put(&b, "\"", 1);
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        if (*c == '"' || *c == '\\') {
            esc[0] = '\\', esc[1] = (char)*c;
            buf_put(&b, esc, 2);
        } else if (*c < 0x20) {
            snprintf(esc, sizeof(esc), "\\u%04x", *c);
            buf_put(&b, esc, 6);
        } else {
            buf_put(&b, (const char *)c, 1);
        }
    }
    buf_put(&b, "\"", 1);
    return b.data;
}
