/* A minimal JSON reader and writer (see json.h). */
#define _POSIX_C_SOURCE 200809L
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- reader */

typedef struct parser {
  const char *s;
  size_t len, pos;
  int depth;
  char *err;
  size_t errcap;
} parser;

enum { MAX_DEPTH = 512 };

static int fail(parser *p, const char *what) {
  if (p->err && p->errcap) snprintf(p->err, p->errcap, "JSON: %s at byte %zu", what, p->pos);
  return -1;
}

static void skip_ws(parser *p) {
  while (p->pos < p->len) {
    char c = p->s[p->pos];
    if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
    p->pos++;
  }
}

static int hex4(parser *p, unsigned *out) {
  unsigned v = 0;
  int i;
  if (p->pos + 4 > p->len) return fail(p, "short \\u escape");
  for (i = 0; i < 4; i++) {
    char c = p->s[p->pos++];
    v <<= 4;
    if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
    else return fail(p, "bad \\u escape");
  }
  *out = v;
  return 0;
}

static size_t put_utf8(char *o, unsigned cp) {
  if (cp < 0x80) {
    o[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    o[0] = (char)(0xc0 | (cp >> 6));
    o[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  if (cp < 0x10000) {
    o[0] = (char)(0xe0 | (cp >> 12));
    o[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
    o[2] = (char)(0x80 | (cp & 0x3f));
    return 3;
  }
  o[0] = (char)(0xf0 | (cp >> 18));
  o[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
  o[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
  o[3] = (char)(0x80 | (cp & 0x3f));
  return 4;
}

/* At the opening quote; decodes into a malloc'd string. */
static int parse_string(parser *p, char **out, size_t *outlen) {
  size_t start = ++p->pos, end = start, n = 0;
  char *buf, *o;
  int escapes = 0;
  /* Find the closing quote first: the decoded string is never longer than the source. */
  while (end < p->len && p->s[end] != '"') {
    if (p->s[end] == '\\') {
      escapes = 1;
      end++;
    } else if ((unsigned char)p->s[end] < 0x20) {
      p->pos = end;
      return fail(p, "control character in a string");
    }
    end++;
  }
  if (end >= p->len) return fail(p, "unterminated string");
  buf = malloc(end - start + 1);
  if (!buf) return fail(p, "out of memory");
  if (!escapes) {
    memcpy(buf, p->s + start, end - start);
    n = end - start;
    p->pos = end + 1;
  } else {
    o = buf;
    while (p->pos < end) {
      char c = p->s[p->pos++];
      if (c != '\\') {
        *o++ = c;
        continue;
      }
      c = p->s[p->pos++];
      switch (c) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '/': *o++ = '/'; break;
        case 'b': *o++ = '\b'; break;
        case 'f': *o++ = '\f'; break;
        case 'n': *o++ = '\n'; break;
        case 'r': *o++ = '\r'; break;
        case 't': *o++ = '\t'; break;
        case 'u': {
          unsigned cp, lo;
          if (hex4(p, &cp) != 0) {
            free(buf);
            return -1;
          }
          if (cp >= 0xd800 && cp < 0xdc00 && p->pos + 6 <= end && p->s[p->pos] == '\\' && p->s[p->pos + 1] == 'u') {
            size_t save = p->pos;
            p->pos += 2;
            if (hex4(p, &lo) != 0) {
              free(buf);
              return -1;
            }
            if (lo >= 0xdc00 && lo < 0xe000) cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            else p->pos = save;
          }
          o += put_utf8(o, cp);
          break;
        }
        default:
          free(buf);
          return fail(p, "bad escape");
      }
    }
    n = (size_t)(o - buf);
    p->pos = end + 1;
  }
  buf[n] = 0;
  *out = buf;
  *outlen = n;
  return 0;
}

static int parse_value(parser *p, jval *v);

static int push(parser *p, jval **kids, char ***keys, size_t *n, size_t *cap, int with_keys) {
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 4;
    jval *k = realloc(*kids, nc * sizeof **kids);
    if (!k) return fail(p, "out of memory");
    *kids = k;
    if (with_keys) {
      char **ks = realloc(*keys, nc * sizeof **keys);
      if (!ks) return fail(p, "out of memory");
      *keys = ks;
    }
    *cap = nc;
  }
  memset(&(*kids)[*n], 0, sizeof **kids);
  if (with_keys) (*keys)[*n] = NULL;
  (*n)++;
  return 0;
}

static int parse_container(parser *p, jval *v, int obj) {
  size_t cap = 0;
  char close = obj ? '}' : ']';
  if (++p->depth > MAX_DEPTH) return fail(p, "nesting too deep");
  p->pos++;
  skip_ws(p);
  if (p->pos < p->len && p->s[p->pos] == close) {
    p->pos++;
    p->depth--;
    return 0;
  }
  for (;;) {
    skip_ws(p);
    if (push(p, &v->kids, &v->keys, &v->n, &cap, obj) != 0) return -1;
    if (obj) {
      size_t kl;
      if (p->pos >= p->len || p->s[p->pos] != '"') return fail(p, "expected a member name");
      if (parse_string(p, &v->keys[v->n - 1], &kl) != 0) return -1;
      skip_ws(p);
      if (p->pos >= p->len || p->s[p->pos] != ':') return fail(p, "expected ':'");
      p->pos++;
      skip_ws(p);
    }
    if (parse_value(p, &v->kids[v->n - 1]) != 0) return -1;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == ',') {
      p->pos++;
      continue;
    }
    if (p->pos < p->len && p->s[p->pos] == close) {
      p->pos++;
      p->depth--;
      return 0;
    }
    return fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static int parse_number(parser *p, jval *v) {
  size_t i = p->pos;
  char tmp[64], *endp;
  if (i < p->len && p->s[i] == '-') i++;
  if (i >= p->len || p->s[i] < '0' || p->s[i] > '9') return fail(p, "bad number");
  while (i < p->len && ((p->s[i] >= '0' && p->s[i] <= '9') || p->s[i] == '.' || p->s[i] == 'e' || p->s[i] == 'E' || p->s[i] == '+' || p->s[i] == '-')) i++;
  if (i - p->pos >= sizeof tmp) return fail(p, "number too long");
  memcpy(tmp, p->s + p->pos, i - p->pos);
  tmp[i - p->pos] = 0;
  v->num = strtod(tmp, &endp);
  if (*endp) return fail(p, "bad number");
  p->pos = i;
  return 0;
}

static int parse_value(parser *p, jval *v) {
  char c;
  memset(v, 0, sizeof *v);
  skip_ws(p);
  if (p->pos >= p->len) return fail(p, "unexpected end of input");
  v->start = p->pos;
  c = p->s[p->pos];
  int r;
  if (c == '{') v->type = J_OBJ, r = parse_container(p, v, 1);
  else if (c == '[') v->type = J_ARR, r = parse_container(p, v, 0);
  else if (c == '"') v->type = J_STR, r = parse_string(p, &v->str, &v->len);
  else if (c == '-' || (c >= '0' && c <= '9')) v->type = J_NUM, r = parse_number(p, v);
  else if (p->len - p->pos >= 4 && !memcmp(p->s + p->pos, "true", 4)) v->type = J_TRUE, p->pos += 4, r = 0;
  else if (p->len - p->pos >= 5 && !memcmp(p->s + p->pos, "false", 5)) v->type = J_FALSE, p->pos += 5, r = 0;
  else if (p->len - p->pos >= 4 && !memcmp(p->s + p->pos, "null", 4)) v->type = J_NULL, p->pos += 4, r = 0;
  else r = fail(p, "unexpected character");
  v->end = p->pos;
  return r;
}

int json_parse(const char *text, size_t len, jval *out, char *err, size_t errcap) {
  parser p = {text, len, 0, 0, err, errcap};
  if (parse_value(&p, out) != 0) {
    json_free(out);
    return -1;
  }
  skip_ws(&p);
  if (p.pos != len) {
    json_free(out);
    return fail(&p, "trailing characters");
  }
  return 0;
}

void json_free(jval *v) {
  size_t i;
  if (!v) return;
  for (i = 0; i < v->n; i++) {
    if (v->kids) json_free(&v->kids[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->kids);
  free(v->keys);
  free(v->str);
  memset(v, 0, sizeof *v);
}

const jval *json_get(const jval *v, const char *key) {
  size_t i;
  if (!v || v->type != J_OBJ) return NULL;
  for (i = 0; i < v->n; i++)
    if (v->keys[i] && !strcmp(v->keys[i], key)) return &v->kids[i];
  return NULL;
}

const char *json_get_str(const jval *v, const char *key) {
  const jval *m = json_get(v, key);
  return m && m->type == J_STR ? m->str : NULL;
}

double json_get_num(const jval *v, const char *key, double dflt) {
  const jval *m = json_get(v, key);
  return m && m->type == J_NUM ? m->num : dflt;
}

char *json_source(const char *text, const jval *v) {
  size_t n = v->end - v->start;
  char *s = malloc(n + 1);
  if (!s) return NULL;
  memcpy(s, text + v->start, n);
  s[n] = 0;
  return s;
}

/* ---------------------------------------------------------------- writer */

void sb_init(sbuf *b) { memset(b, 0, sizeof *b); }

void sb_free(sbuf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static int sb_reserve(sbuf *b, size_t extra) {
  if (b->oom) return -1;
  if (b->len + extra + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 4096;
    char *np;
    while (nc < b->len + extra + 1) nc *= 2;
    np = realloc(b->p, nc);
    if (!np) {
      b->oom = 1;
      return -1;
    }
    b->p = np;
    b->cap = nc;
  }
  return 0;
}

void sb_putn(sbuf *b, const char *s, size_t n) {
  if (sb_reserve(b, n) != 0) return;
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = 0;
}

void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

void sb_putc(sbuf *b, char c) { sb_putn(b, &c, 1); }

void sb_printf(sbuf *b, const char *fmt, ...) {
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0 || sb_reserve(b, (size_t)n) != 0) return;
  va_start(ap, fmt);
  vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
}

void sb_json_str(sbuf *b, const char *s) {
  sb_putc(b, '"');
  for (; s && *s; s++) {
    unsigned char c = (unsigned char)*s;
    if (c == '"') sb_puts(b, "\\\"");
    else if (c == '\\') sb_puts(b, "\\\\");
    else if (c == '\n') sb_puts(b, "\\n");
    else if (c == '\r') sb_puts(b, "\\r");
    else if (c == '\t') sb_puts(b, "\\t");
    else if (c < 0x20) sb_printf(b, "\\u%04x", c);
    else sb_putc(b, (char)c);
  }
  sb_putc(b, '"');
}

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void sb_base64(sbuf *b, const void *data, size_t n) {
  const unsigned char *d = data;
  size_t i;
  char *o;
  if (sb_reserve(b, (n + 2) / 3 * 4) != 0) return;
  o = b->p + b->len;
  for (i = 0; i + 2 < n; i += 3) {
    unsigned v = (unsigned)d[i] << 16 | (unsigned)d[i + 1] << 8 | d[i + 2];
    *o++ = B64[v >> 18];
    *o++ = B64[(v >> 12) & 63];
    *o++ = B64[(v >> 6) & 63];
    *o++ = B64[v & 63];
  }
  if (i < n) {
    unsigned v = (unsigned)d[i] << 16 | (i + 1 < n ? (unsigned)d[i + 1] << 8 : 0);
    *o++ = B64[v >> 18];
    *o++ = B64[(v >> 12) & 63];
    *o++ = i + 1 < n ? B64[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  b->len = (size_t)(o - b->p);
  b->p[b->len] = 0;
}

static int b64val(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

void *base64_decode(const char *s, size_t len, size_t *n) {
  unsigned char *out;
  size_t i, o = 0;
  unsigned acc = 0;
  int bits = 0;
  while (len > 0 && s[len - 1] == '=') len--;
  if (len % 4 == 1) return NULL;
  /* 16-byte aligned (and never zero-sized) so tensor data can be viewed as floats in place. */
  {
    size_t cap = len / 4 * 3 + 3;
    cap = (cap + 15) & ~(size_t)15;
    void *mem = NULL;
    if (posix_memalign(&mem, 16, cap ? cap : 16) != 0) return NULL;
    out = mem;
  }
  for (i = 0; i < len; i++) {
    int v = b64val(s[i]);
    if (v < 0) {
      free(out);
      return NULL;
    }
    acc = (acc << 6) | (unsigned)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  *n = o;
  return out;
}
