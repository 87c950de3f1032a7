
/*
 * libFuzzer harness for what travels through Redis (wire.c): stream ids,
 * "<stream id> <text>", events "<n>:<name><json>", control messages and
 * the event formatter.
 *
 * Every input is used twice:
 *
 *   1. as a payload off a channel: split, then the event parser and the
 *      control parser on its text.  Each result is compared with a
 *      reference written here from the grammar in wire.h, independently
 *      of wire.c (the same payloads accepted, the same values, the same
 *      offsets), and every field must lie inside the input.  The input is
 *      a heap block of its own length, so that ASan sees any read past it.
 *
 *   2. as arbitrary bytes for the writers: bytes 0-1 give the name's
 *      length, the name and the JSON follow, and a stream id is derived
 *      from a hash of the input.  The event is formatted into a block of
 *      exactly the size wire.h promises, then split and parsed: the same
 *      stream id, name and JSON must come back.  The same bytes go into
 *      "renew" and "end" control texts (as renew.lua and cast_end() in
 *      prelude.lua write them), which must be read back as written.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast_wire.h"
#include "ngx_test_core.h"
#include "ngx_http_cast_fuzz.h"


#define NGX_HTTP_CAST_FUZZ_E19   10000000000000000000ULL


/* reference: 1 to 19 ASCII digits (strtoull on a copy) */

static ngx_int_t
ngx_http_cast_fuzz_number(const u_char *s, size_t n, uint64_t *v)
{
    char    copy[20];
    size_t  i;

    if (n < 1 || n > 19) {
        return NGX_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (!isdigit(s[i])) {
            return NGX_ERROR;
        }

        copy[i] = (char) s[i];
    }

    copy[n] = '\0';
    *v = strtoull(copy, NULL, 10);

    return NGX_OK;
}


/* reference: the offset of the first c in s[from, n), or n */

static size_t
ngx_http_cast_fuzz_find(const u_char *s, size_t from, size_t n, u_char c)
{
    while (from < n && s[from] != c) {
        from++;
    }

    return from;
}


typedef struct {
    ngx_int_t     rc;
    uint64_t      ms;
    uint64_t      seq;
    size_t        text;         /* offset of the text */
} ngx_http_cast_fuzz_split_t;


static void
ngx_http_cast_fuzz_ref_split(const u_char *s, size_t n,
    ngx_http_cast_fuzz_split_t *r)
{
    size_t  sp, dash;

    r->rc = NGX_ERROR;

    sp = ngx_http_cast_fuzz_find(s, 0, n, ' ');
    if (sp == n) {
        return;
    }

    dash = ngx_http_cast_fuzz_find(s, 0, sp, '-');
    if (dash == sp) {
        return;
    }

    if (ngx_http_cast_fuzz_number(s, dash, &r->ms) != NGX_OK
        || ngx_http_cast_fuzz_number(s + dash + 1, sp - dash - 1, &r->seq)
           != NGX_OK)
    {
        return;
    }

    r->text = sp + 1;
    r->rc = NGX_OK;
}


typedef struct {
    ngx_int_t     rc;
    ngx_uint_t    kind;
    size_t        f[4][2];      /* offset, length: name, json / id, ... */
    uint64_t      expires;
    uint64_t      lease;
} ngx_http_cast_fuzz_msg_t;


static void
ngx_http_cast_fuzz_ref_event(const u_char *s, size_t n,
    ngx_http_cast_fuzz_msg_t *r)
{
    size_t    colon;
    uint64_t  len;

    r->rc = NGX_ERROR;

    colon = ngx_http_cast_fuzz_find(s, 0, n, ':');
    if (colon == n || ngx_http_cast_fuzz_number(s, colon, &len) != NGX_OK
        || len > n - colon - 1)
    {
        return;
    }

    r->rc = NGX_OK;
    r->kind = NGX_HTTP_CAST_WIRE_EVENT;
    r->f[0][0] = colon + 1;
    r->f[0][1] = len;
    r->f[1][0] = colon + 1 + len;
    r->f[1][1] = n - (colon + 1 + len);
}


static void
ngx_http_cast_fuzz_ref_control(const u_char *s, size_t n,
    ngx_http_cast_fuzz_msg_t *r)
{
    size_t      at, sp[3];
    ngx_uint_t  i;

    r->rc = NGX_ERROR;

    if (n >= 4 && memcmp(s, "end ", 4) == 0) {
        sp[0] = ngx_http_cast_fuzz_find(s, 4, n, ' ');

        if (sp[0] == n || sp[0] == 4) {
            return;
        }

        r->rc = NGX_OK;
        r->kind = NGX_HTTP_CAST_WIRE_END;
        r->f[0][0] = 4;
        r->f[0][1] = sp[0] - 4;
        r->f[1][0] = sp[0] + 1;
        r->f[1][1] = n - sp[0] - 1;
        return;
    }

    if (n < 6 || memcmp(s, "renew ", 6) != 0) {
        return;
    }

    /* three non-empty fields, each ended by a space; the rest: events */

    at = 6;

    for (i = 0; i < 3; i++) {
        sp[i] = ngx_http_cast_fuzz_find(s, at, n, ' ');

        if (sp[i] == n || sp[i] == at) {
            return;
        }

        r->f[i][0] = at;
        r->f[i][1] = sp[i] - at;
        at = sp[i] + 1;
    }

    if (ngx_http_cast_fuzz_number(s + r->f[1][0], r->f[1][1], &r->expires)
        != NGX_OK
        || r->expires > (uint64_t) INT64_MAX
        || ngx_http_cast_fuzz_number(s + r->f[2][0], r->f[2][1], &r->lease)
           != NGX_OK
        || r->lease > (uint64_t) INT32_MAX)
    {
        return;
    }

    r->rc = NGX_OK;
    r->kind = NGX_HTTP_CAST_WIRE_RENEW;
    r->f[3][0] = at;
    r->f[3][1] = n - at;
}


/* s lies inside [p, p + n] */

static ngx_uint_t
ngx_http_cast_fuzz_inside(ngx_str_t *s, const u_char *p, size_t n)
{
    return s->data >= p && s->data <= p + n
           && s->len <= (size_t) (p + n - s->data);
}


static void
ngx_http_cast_fuzz_field(ngx_str_t *s, const u_char *base, size_t n,
    size_t *f)
{
    ngx_http_cast_fuzz_check(ngx_http_cast_fuzz_inside(s, base, n));
    ngx_http_cast_fuzz_check((size_t) (s->data - base) == f[0]);
    ngx_http_cast_fuzz_check(s->len == f[1]);
}


/* 1: a payload off a channel */

static void
ngx_http_cast_fuzz_parse(const u_char *p, size_t n)
{
    u_char                      *text;
    size_t                       tn;
    ngx_int_t                    rc;
    ngx_http_cast_wire_t         w;
    ngx_http_cast_message_t      m;
    ngx_http_cast_fuzz_msg_t     ref;
    ngx_http_cast_fuzz_split_t   rs;

    ngx_http_cast_fuzz_ref_split(p, n, &rs);

    rc = ngx_http_cast_wire_split((u_char *) p, n, &w);
    ngx_http_cast_fuzz_check(rc == rs.rc);

    if (rc == NGX_OK) {
        ngx_http_cast_fuzz_check(w.ms == rs.ms && w.seq == rs.seq);
        ngx_http_cast_fuzz_check(w.text.data == p + rs.text);
        ngx_http_cast_fuzz_check(w.text.len == n - rs.text);

        /* the stream id alone, as the catch-up reads it */

        ngx_http_cast_fuzz_check(
            ngx_http_cast_wire_stream_id((u_char *) p, rs.text - 1, &rs.ms,
                                         &rs.seq)
            == NGX_OK);
        ngx_http_cast_fuzz_check(w.ms == rs.ms && w.seq == rs.seq);

        text = w.text.data;
        tn = w.text.len;

    } else {
        /* the whole input as a text */
        text = (u_char *) p;
        tn = n;
    }

    /* the event parser */

    ngx_memzero(&ref, sizeof(ngx_http_cast_fuzz_msg_t));
    ngx_http_cast_fuzz_ref_event(text, tn, &ref);

    w.text.data = text;
    w.text.len = tn;

    rc = ngx_http_cast_wire_event(&w.text, &m);
    ngx_http_cast_fuzz_check(rc == ref.rc);

    if (rc == NGX_OK) {
        ngx_http_cast_fuzz_check(m.kind == NGX_HTTP_CAST_WIRE_EVENT);
        ngx_http_cast_fuzz_field(&m.name, text, tn, ref.f[0]);
        ngx_http_cast_fuzz_field(&m.json, text, tn, ref.f[1]);
        ngx_http_cast_fuzz_check(m.id.len == 0 && m.events.len == 0
                                 && m.reason.len == 0);
    }

    /* the control parser */

    ngx_memzero(&ref, sizeof(ngx_http_cast_fuzz_msg_t));
    ngx_http_cast_fuzz_ref_control(text, tn, &ref);

    rc = ngx_http_cast_wire_control(&w.text, &m);
    ngx_http_cast_fuzz_check(rc == ref.rc);

    if (rc != NGX_OK) {
        return;
    }

    ngx_http_cast_fuzz_check(m.kind == ref.kind);
    ngx_http_cast_fuzz_check(m.name.len == 0 && m.json.len == 0);
    ngx_http_cast_fuzz_field(&m.id, text, tn, ref.f[0]);

    /* an id never holds the separator */
    ngx_http_cast_fuzz_check(m.id.len > 0
                             && !ngx_http_cast_fuzz_has(m.id.data, m.id.len,
                                                        ' '));

    if (m.kind == NGX_HTTP_CAST_WIRE_END) {
        ngx_http_cast_fuzz_field(&m.reason, text, tn, ref.f[1]);
        ngx_http_cast_fuzz_check(m.events.len == 0 && m.expires == 0
                                 && m.lease == 0);

    } else {
        ngx_http_cast_fuzz_field(&m.events, text, tn, ref.f[3]);
        ngx_http_cast_fuzz_check(m.expires >= 0
                                 && (uint64_t) m.expires == ref.expires);
        ngx_http_cast_fuzz_check(m.lease >= 0
                                 && (uint64_t) m.lease == ref.lease);
        ngx_http_cast_fuzz_check(m.reason.len == 0);
    }
}


static uint64_t
ngx_http_cast_fuzz_hash(const u_char *p, size_t n, uint64_t h)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        h = (h ^ p[i]) * 0x100000001b3ULL;
    }

    return h;
}


/* 2: format -> split -> event; control texts as the scripts write them */

static void
ngx_http_cast_fuzz_round_trip(const u_char *data, size_t size)
{
    u_char                   *buf, *end;
    size_t                    nl, cap, len;
    uint64_t                  h, ms, seq, expires, lease;
    ngx_str_t                 id, name, json, text;
    ngx_http_cast_wire_t      w;
    ngx_http_cast_message_t   m;
    char                      sid[48], cid[24];

    if (size < 2) {
        return;
    }

    nl = ((size_t) data[0] << 8 | data[1]) % (size - 2 + 1);

    name.data = (u_char *) data + 2;
    name.len = nl;
    json.data = (u_char *) data + 2 + nl;
    json.len = size - 2 - nl;

    h = ngx_http_cast_fuzz_hash(data, size, 0xcbf29ce484222325ULL);

    /* every length of number the parser takes, 1 to 19 digits */

    ms = h % NGX_HTTP_CAST_FUZZ_E19;
    seq = (h >> 7) % NGX_HTTP_CAST_FUZZ_E19;

    if (data[1] & 1) {
        ms %= 10000000000000ULL;        /* a 13-digit time in ms */
        seq %= 1000;
    }

    id.data = (u_char *) sid;
    id.len = snprintf(sid, sizeof(sid), "%llu-%llu", (unsigned long long) ms,
                      (unsigned long long) seq);

    /* exactly the size wire.h promises */

    cap = id.len + name.len + json.len + NGX_INT_T_LEN + 2;
    buf = malloc(cap);
    if (buf == NULL) {
        abort();
    }

    end = ngx_http_cast_wire_format_event(buf, &id, &name, &json);
    ngx_http_cast_fuzz_check(end > buf && end <= buf + cap);

    len = end - buf;

    ngx_http_cast_fuzz_check(ngx_http_cast_wire_split(buf, len, &w) == NGX_OK);
    ngx_http_cast_fuzz_check(w.ms == ms && w.seq == seq);
    ngx_http_cast_fuzz_check(ngx_http_cast_wire_event(&w.text, &m) == NGX_OK);
    ngx_http_cast_fuzz_check(m.name.len == name.len
                             && m.json.len == json.len);
    ngx_http_cast_fuzz_check(name.len == 0
                             || memcmp(m.name.data, name.data, name.len)
                                == 0);
    ngx_http_cast_fuzz_check(json.len == 0
                             || memcmp(m.json.data, json.data, json.len)
                                == 0);
    ngx_http_cast_fuzz_check(m.json.data + m.json.len == end);

    /* and the reference reads it alike */

    ngx_http_cast_fuzz_parse(buf, len);

    free(buf);

    /* "renew <id> <expires> <lease> <events>", "end <id> <reason>" */

    snprintf(cid, sizeof(cid), "%016llx", (unsigned long long) h);
    expires = h >> 1;                           /* up to INT64_MAX */
    lease = (h >> 3) & 0x7fffffff;              /* up to INT32_MAX */

    cap = sizeof("renew    ") + 16 + 2 * NGX_INT64_LEN + size;
    buf = malloc(cap);
    if (buf == NULL) {
        abort();
    }

    len = snprintf((char *) buf, cap, "renew %s %llu %llu ", cid,
                   (unsigned long long) expires, (unsigned long long) lease);
    ngx_memcpy(buf + len, data, size);
    len += size;

    text.data = buf;
    text.len = len;

    ngx_http_cast_fuzz_check(ngx_http_cast_wire_control(&text, &m) == NGX_OK);
    ngx_http_cast_fuzz_check(m.kind == NGX_HTTP_CAST_WIRE_RENEW);
    ngx_http_cast_fuzz_check(m.id.len == 16
                             && memcmp(m.id.data, cid, 16) == 0);
    ngx_http_cast_fuzz_check((uint64_t) m.expires == expires
                             && (uint64_t) m.lease == lease);
    ngx_http_cast_fuzz_check(m.events.len == size
                             && memcmp(m.events.data, data, size) == 0);

    len = snprintf((char *) buf, cap, "end %s ", cid);
    ngx_memcpy(buf + len, data, size);
    len += size;

    text.len = len;

    ngx_http_cast_fuzz_check(ngx_http_cast_wire_control(&text, &m) == NGX_OK);
    ngx_http_cast_fuzz_check(m.kind == NGX_HTTP_CAST_WIRE_END);
    ngx_http_cast_fuzz_check(m.id.len == 16
                             && memcmp(m.id.data, cid, 16) == 0);
    ngx_http_cast_fuzz_check(m.reason.len == size
                             && memcmp(m.reason.data, data, size) == 0);

    free(buf);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char  *p;

    /* a heap block of the input's own length: ASan sees a read past it */

    p = malloc(size ? size : 1);
    if (p == NULL) {
        abort();
    }

    if (size) {
        memcpy(p, data, size);
    }

    ngx_http_cast_fuzz_parse(p, size);
    ngx_http_cast_fuzz_round_trip(p, size);

    free(p);

    return 0;
}
