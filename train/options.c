#include "train/options.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "common/util.h"
#include "data/json.h"

static Option *find_option(OptionSet *set, const char *name, size_t len) {
    for (int i = 0; i < set->count; i++) {
        const char *n = set->options[i].name;
        if (strlen(n) != len) continue;
        int same = 1; // '-' and '_' are interchangeable so config keys may use either
        for (size_t k = 0; k < len && same; k++) {
            char a = n[k] == '_' ? '-' : n[k], b = name[k] == '_' ? '-' : name[k];
            same = a == b;
        }
        if (same) return &set->options[i];
    }
    return NULL;
}

// "[0, 1)", "(0, 10]": the range as it reads in --help and in errors.
static const char *range_text(const OptionRange *r, char *buf, size_t size) {
    snprintf(buf, size, "%c%.10g, %.10g%c", r->min_excluded ? '(' : '[', r->min, r->max, r->max_excluded ? ')' : ']');
    return buf;
}

static int in_range(const OptionRange *r, double v) {
    int above_min = r->min_excluded ? v > r->min : v >= r->min;
    int below_max = r->max_excluded ? v < r->max : v <= r->max;
    return above_min && below_max;
}

static void require_in_range(const Option *o, double v, const char *where, const char *line) {
    char range[64];
    if (!in_range(&o->range, v))
        die("%s%s: --%s must be in %s, got %.10g", where, line, o->name, range_text(&o->range, range, sizeof(range)),
            v);
}

// A numeric option without a range is a mistake in a command's table, caught by any run of it.
static void require_ranges_declared(const OptionSet *set) {
    for (int i = 0; i < set->count; i++) {
        const Option *o = &set->options[i];
        if ((o->type == OPT_INT || o->type == OPT_FLOAT) && !o->range.declared)
            die("internal: option --%s of dydit %s declares no range", o->name, set->command);
    }
}

// where: the file, and its line when lineno > 0 ("FILE:LINE"), or a label such as "command line".
static void set_value(OptionSet *set, Option *o, const char *value, const char *where, int lineno) {
    char line[24] = "";
    if (lineno > 0) snprintf(line, sizeof(line), ":%d", lineno);
    switch (o->type) {
    case OPT_INT: {
        long v;
        if (parse_long(value, &v) || v < INT_MIN || v > INT_MAX)
            die("%s%s: --%s wants an integer in [%d, %d], got '%.80s'", where, line, o->name, INT_MIN, INT_MAX, value);
        require_in_range(o, (double)v, where, line);
        *(int *)o->target = (int)v;
        break;
    }
    case OPT_FLOAT: {
        double v;
        if (parse_double(value, &v) || !isfinite(v))
            die("%s%s: --%s wants a finite number, got '%.80s'", where, line, o->name, value);
        require_in_range(o, v, where, line);
        *(double *)o->target = v;
        break;
    }
    case OPT_STRING: // a value given twice (file, then command line) replaces the parser's own copy
        if (o->was_set) free(*(char **)o->target);
        *(const char **)o->target = xstrdup(value);
        break;
    case OPT_FLAG:
        if (!strcmp(value, "1") || !strcmp(value, "true") || !strcmp(value, "yes"))
            *(int *)o->target = 1;
        else if (!strcmp(value, "0") || !strcmp(value, "false") || !strcmp(value, "no"))
            *(int *)o->target = 0;
        else
            die("%s%s: --%s is a flag (true/false), got '%.80s'", where, line, o->name, value);
        break;
    }
    o->was_set = 1;
    (void)set;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1])) *--e = '\0';
    return s;
}

enum { CONFIG_MAX_BYTES = 1 << 20 };

// The whole file, NUL-terminated, read and closed before any line is parsed (so that a parse error
// leaves no file open); a read error, a NUL byte or more than CONFIG_MAX_BYTES is refused.
static char *read_config_file(const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open config file %s: %s", path, strerror(errno));
    size_t n = 0, cap = 4096;
    char *text = xmalloc(cap);
    for (size_t got; (got = fread(text + n, 1, cap - n, f)) > 0;) {
        n += got;
        if (n > CONFIG_MAX_BYTES) break;
        if (n == cap) text = xrealloc(text, cap *= 2); // room for the terminating NUL
    }
    int failed = ferror(f), saved = errno;
    fclose(f);
    if (failed) {
        free(text);
        die("cannot read config file %s: %s", path, strerror(saved));
    }
    if (n > CONFIG_MAX_BYTES) {
        free(text);
        die("%s: larger than %d bytes (not a config file?)", path, CONFIG_MAX_BYTES);
    }
    text[n] = '\0';
    const char *nul = memchr(text, '\0', n);
    if (nul) {
        int lineno = 1;
        for (const char *c = text; c < nul; c++) lineno += *c == '\n';
        free(text);
        die("%s:%d: contains a NUL byte (not a text file?)", path, lineno);
    }
    return text;
}

// The text of the file being parsed; kept here (not on the stack) so that a die() handler that
// jumps away leaves nothing unreachable, and freed by the next load.
static char *config_text;

static void load_config_file(OptionSet *set, const char *path) {
    free(config_text);
    config_text = NULL;
    config_text = read_config_file(path);
    char *next = config_text;
    for (int lineno = 1; next; lineno++) {
        char *line = next, *end = strchr(line, '\n');
        next = end ? end + 1 : NULL;
        if (end) *end = '\0';
        char *hash = strchr(line, '#');
        if (hash) *hash = '\0';
        char *s = trim(line);
        if (!*s) continue;
        char *eq = strchr(s, '=');
        if (!eq) die("%s:%d: expected 'key = value'", path, lineno);
        *eq = '\0';
        char *key = trim(s), *value = trim(eq + 1);
        if (!strcmp(key, "config")) die("%s:%d: config files cannot include other config files", path, lineno);
        Option *o = find_option(set, key, strlen(key));
        if (!o) die("%s:%d: unknown key '%s' for dydit %s", path, lineno, key, set->command);
        set_value(set, o, value, path, lineno);
    }
    free(config_text);
    config_text = NULL;
}

static void print_help(const OptionSet *set) {
    printf("%s\n\nusage: %s\n\noptions:\n", set->summary, set->usage);
    for (int i = 0; i < set->count; i++) {
        const Option *o = &set->options[i];
        char left[64], def[128] = "", range[80] = "";
        const char *arg = o->type == OPT_INT ? " N" : o->type == OPT_FLOAT ? " X" : o->type == OPT_STRING ? " S" : "";
        snprintf(left, sizeof(left), "--%s%s", o->name, arg);
        if (o->default_text)
            snprintf(def, sizeof(def), " (default %s)", o->default_text);
        else if (o->type == OPT_INT)
            snprintf(def, sizeof(def), " (default %d)", *(int *)o->target);
        else if (o->type == OPT_FLOAT)
            snprintf(def, sizeof(def), " (default %g)", *(double *)o->target);
        else if (o->type == OPT_STRING && *(const char **)o->target)
            snprintf(def, sizeof(def), " (default %s)", *(const char **)o->target);
        if (o->range.declared) {
            char bounds[64];
            snprintf(range, sizeof(range), ", in %s", range_text(&o->range, bounds, sizeof(bounds)));
        }
        printf("  %-26s %s%s%s\n", left, o->help, range, def);
    }
    printf("  %-26s %s\n  %-26s %s\n", "--config FILE", "read 'key = value' lines first; the command line wins",
           "--help", "show this help");
}

void options_parse(OptionSet *set, int argc, char **argv) {
    require_ranges_declared(set);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            print_help(set);
            exit(0);
        }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc) die("--config needs a file name");
            load_config_file(set, argv[i + 1]);
        } else if (starts_with(argv[i], "--config=")) {
            load_config_file(set, argv[i] + 9);
        }
    }
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!starts_with(arg, "--")) die("unexpected argument '%s' (see dydit %s --help)", arg, set->command);
        const char *name = arg + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 6 && !strncmp(name, "config", 6)) {
            if (!eq) i++;
            continue;
        }
        Option *o = find_option(set, name, len);
        if (!o) die("unknown option --%.*s (see dydit %s --help)", (int)len, name, set->command);
        const char *value;
        if (eq)
            value = eq + 1;
        else if (o->type == OPT_FLAG)
            value = "1";
        else if (i + 1 < argc)
            value = argv[++i];
        else
            die("--%s needs a value", o->name);
        set_value(set, o, value, "command line", 0);
    }
}

int options_was_set(const OptionSet *set, const char *name) {
    for (int i = 0; i < set->count; i++)
        if (!strcmp(set->options[i].name, name)) return set->options[i].was_set;
    die("internal: no option '%s'", name);
}

// Value of o as text, or NULL for an unset string.
static const char *value_text(const Option *o, char *buf, size_t size) {
    switch (o->type) {
    case OPT_INT:
        snprintf(buf, size, "%d", *(int *)o->target);
        return buf;
    case OPT_FLOAT:
        snprintf(buf, size, "%.9g", *(double *)o->target);
        return buf;
    case OPT_FLAG:
        return *(int *)o->target ? "true" : "false";
    case OPT_STRING:
        return *(const char **)o->target;
    }
    return NULL;
}

void options_print(const OptionSet *set, FILE *out, const char *prefix) {
    char buf[64];
    for (int i = 0; i < set->count; i++) {
        const char *v = value_text(&set->options[i], buf, sizeof(buf));
        if (v) fprintf(out, "%s%s = %s\n", prefix, set->options[i].name, v);
    }
}

char *options_to_json(const OptionSet *set) {
    size_t cap = 256, len = 0;
    char *s = xmalloc(cap), buf[64];
    len += (size_t)snprintf(s, cap, "{");
    for (int i = 0; i < set->count; i++) {
        const Option *o = &set->options[i];
        const char *v = value_text(o, buf, sizeof(buf));
        if (!v) continue;
        int quoted = o->type == OPT_STRING;
        size_t need = strlen(o->name) + 2 * strlen(v) + 16;
        while (len + need >= cap) s = xrealloc(s, cap *= 2);
        len += (size_t)snprintf(s + len, cap - len, "%s\"%s\":%s", len > 1 ? "," : "", o->name, quoted ? "\"" : "");
        for (const char *p = v; *p; p++) {
            if (quoted && (*p == '"' || *p == '\\')) s[len++] = '\\';
            if ((unsigned char)*p < 0x20) continue; // control characters are dropped from option values
            s[len++] = *p;
        }
        len += (size_t)snprintf(s + len, cap - len, "%s", quoted ? "\"" : "");
    }
    while (len + 2 >= cap) s = xrealloc(s, cap *= 2);
    snprintf(s + len, cap - len, "}");
    return s;
}

void options_require_utf8(const OptionSet *set) {
    for (int i = 0; i < set->count; i++) {
        const Option *o = &set->options[i];
        const char *v = o->type == OPT_STRING ? *(const char **)o->target : NULL;
        if (!v || json_utf8_valid(v, strlen(v))) continue;
        size_t n = strlen(v);
        char *shown = xmalloc(4 * n + 1), *p = shown; // the bytes that are not printable ASCII as \xNN
        for (const unsigned char *c = (const unsigned char *)v; *c; c++)
            p += *c >= 0x20 && *c < 0x7f ? sprintf(p, "%c", *c) : sprintf(p, "\\x%02x", *c);
        die("--%s '%s' is not UTF-8; the command stores its options as JSON, which holds only UTF-8: rename it",
            o->name, shown);
    }
}
