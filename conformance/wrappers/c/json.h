/*
 * A minimal JSON reader and writer for the C conformance client (C99, no dependencies).
 *
 * Reader: parses a whole document into a tree of jvals. Every value remembers its span in
 * the source text, so a sub-document (a network config, an optimizer spec) can be handed to
 * the engine exactly as the host wrote it, without re-serializing. Strings are decoded
 * (escapes, \u with surrogate pairs, to UTF-8) and NUL-terminated.
 *
 * Writer: a growable byte buffer with JSON string escaping and base64.
 */
#ifndef HEDDLE_CONFORMANCE_JSON_H
#define HEDDLE_CONFORMANCE_JSON_H

#include <stddef.h>
#include <stdint.h>

typedef enum jtype { J_NULL, J_FALSE, J_TRUE, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
  jtype type;
  /* [start, end) in the source text. */
  size_t start, end;
  /* J_NUM */
  double num;
  /* J_STR: decoded, NUL-terminated; len excludes the terminator. */
  char *str;
  size_t len;
  /* J_ARR / J_OBJ: n children (values); J_OBJ: keys[i] names kids[i]. */
  size_t n;
  struct jval *kids;
  char **keys;
} jval;

/*
 * Parses text[0..len) as one JSON document into *out. Returns 0 on success, else -1 with a
 * message (and the byte offset) in err.
 */
int json_parse(const char *text, size_t len, jval *out, char *err, size_t errcap);
void json_free(jval *v);

/* The member `key` of an object, or NULL (also when v is not an object). */
const jval *json_get(const jval *v, const char *key);
/* The member's string, or NULL when it is missing or not a string. */
const char *json_get_str(const jval *v, const char *key);
/* The member's number, or `dflt` when it is missing or not a number. */
double json_get_num(const jval *v, const char *key, double dflt);
/* A copy (malloc'd, NUL-terminated) of the source text of v. */
char *json_source(const char *text, const jval *v);

/* ---------------------------------------------------------------- writer */

typedef struct sbuf {
  char *p;
  size_t len, cap;
  int oom;
} sbuf;

void sb_init(sbuf *b);
void sb_free(sbuf *b);
void sb_putn(sbuf *b, const char *s, size_t n);
void sb_puts(sbuf *b, const char *s);
void sb_putc(sbuf *b, char c);
void sb_printf(sbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* A JSON string literal (quotes included) of s. */
void sb_json_str(sbuf *b, const char *s);
/* Standard base64 (with padding) of data, without quotes. */
void sb_base64(sbuf *b, const void *data, size_t n);

/*
 * Decodes standard base64 (padding optional, no whitespace) into a malloc'd buffer, 16-byte
 * aligned; *n gets the byte count. Returns NULL on bad input or out of memory.
 */
void *base64_decode(const char *s, size_t len, size_t *n);

#endif
