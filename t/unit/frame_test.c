
/*
 * Unit tests for the RFC 6455 frame codec (src/ngx_http_cast_frame.c).
 *
 * Self-contained, prints a TAP stream and a final "N passed, M failed" line;
 * exits non-zero on any failure.  Built with -I t/unit/shim outside nginx.
 *
 * Every parser vector is fed whole, one byte at a time, and split in two at
 * every point (at sampled points for vectors over 4 KiB); each input chunk
 * is a separate heap block so that sanitizers catch reads past it.
 */


#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>

#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_cast_frame.h"


#define NGX_HTTP_CAST_TEST_MAX      (1 << 18)
#define NGX_HTTP_CAST_TEST_LOG      8192
#define NGX_HTTP_CAST_TEST_ALL      4096

#define NGX_HTTP_CAST_TEST_MASKED   1
#define NGX_HTTP_CAST_TEST_PLAIN    0

#define NGX_HTTP_CAST_TEST_FIN      0x80


typedef struct {
    ngx_int_t     rc;           /* NGX_AGAIN: all consumed, or NGX_ERROR */
    ngx_uint_t    close_code;
    ngx_uint_t    events;
    size_t        frame_len;
    size_t        message_len;
    size_t        data_len;
    size_t        log_len;
    char          log[NGX_HTTP_CAST_TEST_LOG];
    u_char        data[NGX_HTTP_CAST_TEST_MAX];
} ngx_http_cast_test_result_t;


typedef struct {
    u_char       *data;
    size_t        len;
    uint64_t      max_message;
    ngx_uint_t    require_mask;
} ngx_http_cast_test_vec_t;


static ngx_uint_t   ngx_http_cast_test_n;
static ngx_uint_t   ngx_http_cast_test_failed;
static ngx_uint_t   ngx_http_cast_test_key_seed;
static char         ngx_http_cast_test_diag[512];

static u_char       ngx_http_cast_test_buf[NGX_HTTP_CAST_TEST_MAX];
static u_char       ngx_http_cast_test_payload[NGX_HTTP_CAST_TEST_MAX];

static ngx_http_cast_test_result_t  ngx_http_cast_test_ref;
static ngx_http_cast_test_result_t  ngx_http_cast_test_cur;


static void
ngx_http_cast_test_report(ngx_uint_t ok, const char *fmt, ...)
{
    va_list  args;

    ngx_http_cast_test_n++;

    if (!ok) {
        ngx_http_cast_test_failed++;
    }

    printf("%sok %lu - ", ok ? "" : "not ",
           (unsigned long) ngx_http_cast_test_n);

    va_start(args, fmt);
    vprintf(fmt, args);
    va_end(args);

    printf("\n");

    if (!ok && ngx_http_cast_test_diag[0]) {
        printf("# %s\n", ngx_http_cast_test_diag);
    }

    ngx_http_cast_test_diag[0] = '\0';
}


static void
ngx_http_cast_test_set_diag(const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    vsnprintf(ngx_http_cast_test_diag, sizeof(ngx_http_cast_test_diag),
              fmt, args);
    va_end(args);
}


static void
ngx_http_cast_test_log(ngx_http_cast_test_result_t *r, const char *fmt, ...)
{
    int      n;
    va_list  args;

    if (r->log_len >= NGX_HTTP_CAST_TEST_LOG - 1) {
        return;
    }

    va_start(args, fmt);
    n = vsnprintf(r->log + r->log_len, NGX_HTTP_CAST_TEST_LOG - r->log_len,
                  fmt, args);
    va_end(args);

    if (n > 0) {
        r->log_len += (size_t) n;

        if (r->log_len > NGX_HTTP_CAST_TEST_LOG - 1) {
            r->log_len = NGX_HTTP_CAST_TEST_LOG - 1;
        }
    }
}


/*
 * Writes a frame header with the first byte b0 as is (FIN, RSV, opcode),
 * the length in the given form (0: minimal, 7, 16 or 64 bits) and, when
 * masked, a masking key derived from a running seed; returns the header
 * length and the key in key[].
 */

static size_t
ngx_http_cast_test_header(u_char *out, ngx_uint_t b0, ngx_uint_t masked,
    ngx_uint_t form, uint64_t len, u_char *key)
{
    size_t      n;
    ngx_uint_t  i;

    if (form == 0) {
        form = (len <= 125) ? 7 : (len <= 0xffff) ? 16 : 64;
    }

    out[0] = (u_char) b0;
    n = 2;

    if (form == 7) {
        out[1] = (u_char) len;

    } else if (form == 16) {
        out[1] = 126;
        out[n++] = (u_char) (len >> 8);
        out[n++] = (u_char) len;

    } else {
        out[1] = 127;

        for (i = 0; i < 8; i++) {
            out[n++] = (u_char) (len >> (56 - 8 * i));
        }
    }

    if (masked) {
        out[1] |= 0x80;

        ngx_http_cast_test_key_seed++;

        for (i = 0; i < 4; i++) {
            key[i] = (u_char) (ngx_http_cast_test_key_seed * 131
                               + i * 71 + 0x5a);
            out[n++] = key[i];
        }
    }

    return n;
}


/* header + payload, masked independently of the codec */

static size_t
ngx_http_cast_test_frame(u_char *out, ngx_uint_t b0, ngx_uint_t masked,
    ngx_uint_t form, const u_char *payload, size_t len)
{
    size_t  i, n;
    u_char  key[4];

    n = ngx_http_cast_test_header(out, b0, masked, form, len, key);

    for (i = 0; i < len; i++) {
        out[n + i] = masked ? (u_char) (payload[i] ^ key[i % 4]) : payload[i];
    }

    return n + len;
}


static size_t
ngx_http_cast_test_str(u_char *out, ngx_uint_t b0, const char *s)
{
    return ngx_http_cast_test_frame(out, b0, NGX_HTTP_CAST_TEST_MASKED, 0,
                                    (const u_char *) s, strlen(s));
}


static void
ngx_http_cast_test_frame_done(ngx_http_cast_test_result_t *r,
    ngx_http_cast_ws_parser_t *p, ngx_http_cast_ws_event_t *ev)
{
    size_t  i;

    if (ev->type == NGX_HTTP_CAST_WS_EV_CONTROL) {
        ngx_http_cast_test_log(r, "C%lx:%lu:", (unsigned long) ev->opcode,
                               (unsigned long) ev->len);

        for (i = 0; i < ev->len; i++) {
            ngx_http_cast_test_log(r, "%02x", ev->data[i]);
        }

        ngx_http_cast_test_log(r, ";");
        return;
    }

    ngx_http_cast_test_log(r, "D%lx:%lu:%lu;", (unsigned long) ev->opcode,
                           (unsigned long) r->frame_len,
                           (unsigned long) ev->message_end);
    r->frame_len = 0;
}


/*
 * Feeds the vector in chunks: of "step" bytes if step > 0, else split in
 * two at "at" (0: whole).  Checks the per-event invariants; returns NGX_OK
 * or NGX_ERROR with a diagnostic.
 */

static ngx_int_t
ngx_http_cast_test_run(ngx_http_cast_test_vec_t *v, size_t at, size_t step,
    ngx_http_cast_test_result_t *r)
{
    u_char                     *chunk, *pos, *last, *before, byte;
    size_t                      off, n;
    ngx_int_t                   rc;
    ngx_http_cast_ws_event_t    ev;
    ngx_http_cast_ws_parser_t   p;

    ngx_http_cast_ws_parser_init(&p, v->max_message);
    p.require_mask = v->require_mask;

    r->rc = NGX_AGAIN;
    r->close_code = 0;
    r->events = 0;
    r->frame_len = 0;
    r->message_len = 0;
    r->data_len = 0;
    r->log_len = 0;
    r->log[0] = '\0';

    for (off = 0; off < v->len; off += n) {

        if (step) {
            n = v->len - off < step ? v->len - off : step;

        } else if (at && off < at) {
            n = at;

        } else {
            n = v->len - off;
        }

        chunk = malloc(n);
        if (chunk == NULL) {
            ngx_http_cast_test_set_diag("malloc() failed");
            return NGX_ERROR;
        }

        memcpy(chunk, v->data + off, n);

        pos = chunk;
        last = chunk + n;

        for ( ;; ) {
            before = pos;

            rc = ngx_http_cast_ws_parse(&p, &pos, last, &ev);

            if (rc == NGX_AGAIN) {
                if (pos != last) {
                    ngx_http_cast_test_set_diag("NGX_AGAIN with %ld bytes "
                                                "left at offset %lu",
                                                (long) (last - pos),
                                                (unsigned long) off);
                    free(chunk);
                    return NGX_ERROR;
                }

                break;
            }

            if (rc == NGX_ERROR) {
                free(chunk);

                if (p.error == NULL) {
                    ngx_http_cast_test_set_diag("no error text");
                    return NGX_ERROR;
                }

                r->rc = NGX_ERROR;
                r->close_code = p.close_code;
                ngx_http_cast_test_log(r, "E%lu;",
                                       (unsigned long) p.close_code);

                /* a failed parser stays failed */

                byte = 0x81;
                pos = &byte;
                rc = ngx_http_cast_ws_parse(&p, &pos, pos + 1, &ev);

                if (rc != NGX_ERROR) {
                    ngx_http_cast_test_set_diag("parser not sticky");
                    return NGX_ERROR;
                }

                return NGX_OK;
            }

            if (rc != NGX_OK) {
                ngx_http_cast_test_set_diag("bad return %ld", (long) rc);
                free(chunk);
                return NGX_ERROR;
            }

            r->events++;

            if (pos <= before || pos > last) {
                ngx_http_cast_test_set_diag("no progress or overrun");
                free(chunk);
                return NGX_ERROR;
            }

            if (ev.type == NGX_HTTP_CAST_WS_EV_DATA) {

                if (ev.data < chunk || ev.data + ev.len != pos) {
                    ngx_http_cast_test_set_diag("data chunk out of place");
                    free(chunk);
                    return NGX_ERROR;
                }

                if (ev.message_end && !ev.frame_end) {
                    ngx_http_cast_test_set_diag("message_end w/o frame_end");
                    free(chunk);
                    return NGX_ERROR;
                }

                memcpy(r->data + r->data_len, ev.data, ev.len);
                r->data_len += ev.len;
                r->frame_len += ev.len;
                r->message_len += ev.len;

                if (p.message_len != r->message_len) {
                    ngx_http_cast_test_set_diag("message_len %lu != %lu",
                                             (unsigned long) p.message_len,
                                             (unsigned long) r->message_len);
                    free(chunk);
                    return NGX_ERROR;
                }

                if (v->max_message && p.message_len > v->max_message) {
                    ngx_http_cast_test_set_diag("message over the limit");
                    free(chunk);
                    return NGX_ERROR;
                }

                if (ev.frame_end) {
                    ngx_http_cast_test_frame_done(r, &p, &ev);
                }

                if (ev.message_end) {
                    r->message_len = 0;
                }

            } else if (ev.type == NGX_HTTP_CAST_WS_EV_CONTROL) {

                if (ev.data != p.ctl
                    || ev.len > NGX_HTTP_CAST_WS_MAX_CONTROL
                    || !ev.frame_end || !ev.message_end)
                {
                    ngx_http_cast_test_set_diag("bad control event");
                    free(chunk);
                    return NGX_ERROR;
                }

                ngx_http_cast_test_frame_done(r, &p, &ev);

            } else {
                ngx_http_cast_test_set_diag("bad event type");
                free(chunk);
                return NGX_ERROR;
            }
        }

        free(chunk);
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_cast_test_same(ngx_http_cast_test_result_t *a,
    ngx_http_cast_test_result_t *b)
{
    if (a->rc != b->rc
        || a->close_code != b->close_code
        || strcmp(a->log, b->log) != 0)
    {
        return NGX_ERROR;
    }

    /* data delivered before an error depends on the split */

    if (a->rc != NGX_ERROR
        && (a->data_len != b->data_len
            || memcmp(a->data, b->data, a->data_len) != 0))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * Runs the vector with every split and checks the result against the
 * expected log (and data, if given); one TAP line.
 */

static void
ngx_http_cast_test_vector(const char *name, ngx_http_cast_test_vec_t *v,
    const char *log, const u_char *data, size_t data_len)
{
    size_t                        at;
    ngx_uint_t                    ok;
    ngx_http_cast_test_result_t  *ref, *cur;

    ref = &ngx_http_cast_test_ref;
    cur = &ngx_http_cast_test_cur;
    ok = 0;

    if (ngx_http_cast_test_run(v, 0, 0, ref) != NGX_OK) {
        goto done;
    }

    if (log && strcmp(ref->log, log) != 0) {
        ngx_http_cast_test_set_diag("log \"%.200s\", expected \"%.200s\"",
                                    ref->log, log);
        goto done;
    }

    if (data
        && (ref->data_len != data_len
            || memcmp(ref->data, data, data_len) != 0))
    {
        ngx_http_cast_test_set_diag("data mismatch (%lu bytes, expected "
                                    "%lu)", (unsigned long) ref->data_len,
                                    (unsigned long) data_len);
        goto done;
    }

    if (ngx_http_cast_test_run(v, 0, 1, cur) != NGX_OK) {
        goto done;
    }

    if (ngx_http_cast_test_same(ref, cur) != NGX_OK) {
        ngx_http_cast_test_set_diag("byte-by-byte: \"%.200s\"", cur->log);
        goto done;
    }

    for (at = 1; at < v->len; at++) {

        if (v->len > NGX_HTTP_CAST_TEST_ALL
            && at > 16 && v->len - at > 16 && at % 509 != 0)
        {
            continue;
        }

        if (ngx_http_cast_test_run(v, at, 0, cur) != NGX_OK) {
            goto done;
        }

        if (ngx_http_cast_test_same(ref, cur) != NGX_OK) {
            ngx_http_cast_test_set_diag("split at %lu: \"%.200s\"",
                                        (unsigned long) at, cur->log);
            goto done;
        }
    }

    ok = 1;

done:

    ngx_http_cast_test_report(ok, "%s", name);
}


static void
ngx_http_cast_test_stream(const char *name, u_char *buf, size_t len,
    uint64_t max, const char *log, const u_char *data, size_t data_len)
{
    ngx_http_cast_test_vec_t  v;

    v.data = buf;
    v.len = len;
    v.max_message = max;
    v.require_mask = 1;

    ngx_http_cast_test_vector(name, &v, log, data, data_len);
}


static void
ngx_http_cast_test_lengths(void)
{
    size_t       i, n, len;
    u_char      *b;
    ngx_uint_t   k, op, form;
    char         log[64];

    static size_t  lens[] = { 0, 1, 125, 126, 127, 65535, 65536, 70000 };

    b = ngx_http_cast_test_buf;

    for (k = 0; k < sizeof(lens) / sizeof(lens[0]); k++) {
        len = lens[k];

        for (op = NGX_HTTP_CAST_WS_TEXT; op <= NGX_HTTP_CAST_WS_BINARY; op++)
        {
            for (i = 0; i < len; i++) {
                ngx_http_cast_test_payload[i] = (op == NGX_HTTP_CAST_WS_TEXT)
                                                ? (u_char) ('a' + i % 26)
                                                : (u_char) (i * 7 + 3);
            }

            n = ngx_http_cast_test_frame(b, NGX_HTTP_CAST_TEST_FIN | op,
                                         NGX_HTTP_CAST_TEST_MASKED, 0,
                                         ngx_http_cast_test_payload, len);

            snprintf(log, sizeof(log), "D%lu:%lu:1;", (unsigned long) op,
                     (unsigned long) len);

            {
                char  name[96];

                snprintf(name, sizeof(name), "%s frame of %lu bytes "
                         "(header %lu), masked, all splits",
                         op == NGX_HTTP_CAST_WS_TEXT ? "text" : "binary",
                         (unsigned long) len, (unsigned long) (n - len - 4));

                ngx_http_cast_test_stream(name, b, n, 0, log,
                                          ngx_http_cast_test_payload, len);
            }
        }
    }

    /* non-minimal length encodings are accepted */

    for (form = 16; form <= 64; form += 48) {
        n = ngx_http_cast_test_frame(b, 0x82, NGX_HTTP_CAST_TEST_MASKED, form,
                                     (const u_char *) "hello", 5);

        ngx_http_cast_test_stream(form == 16
                                  ? "non-minimal 16-bit length accepted"
                                  : "non-minimal 64-bit length accepted",
                                  b, n, 0, "D2:5:1;",
                                  (const u_char *) "hello", 5);
    }

    n = ngx_http_cast_test_frame(b, 0x82, NGX_HTTP_CAST_TEST_MASKED, 64,
                                 (const u_char *) "", 0);

    ngx_http_cast_test_stream("zero length in 64-bit form accepted", b, n, 0,
                              "D2:0:1;", NULL, 0);
}


static void
ngx_http_cast_test_rfc_examples(void)
{
    ngx_http_cast_test_vec_t  v;

    /* RFC 6455 5.7 */

    static u_char  single[] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
    static u_char  masked[] = { 0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
                                0x9f, 0x4d, 0x51, 0x58 };
    static u_char  frag[] = { 0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02,
                              0x6c, 0x6f };
    static u_char  ping[] = { 0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };
    static u_char  pong[] = { 0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f,
                              0x9f, 0x4d, 0x51, 0x58 };
    static u_char  bin256[] = { 0x82, 0x7e, 0x01, 0x00 };

    v.max_message = 0;
    v.require_mask = 1;

    v.data = masked;
    v.len = sizeof(masked);
    ngx_http_cast_test_vector("RFC 6455 5.7 masked \"Hello\" unmasks", &v,
                              "D1:5:1;", (u_char *) "Hello", 5);

    v.data = pong;
    v.len = sizeof(pong);
    ngx_http_cast_test_vector("RFC 6455 5.7 masked pong \"Hello\"", &v,
                              "Ca:5:48656c6c6f;", NULL, 0);

    v.data = single;
    v.len = sizeof(single);
    ngx_http_cast_test_vector("unmasked frame with require_mask -> 1002",
                              &v, "E1002;", NULL, 0);

    v.require_mask = 0;

    ngx_http_cast_test_vector("RFC 6455 5.7 unmasked \"Hello\" (client side)",
                              &v, "D1:5:1;", (u_char *) "Hello", 5);

    v.data = frag;
    v.len = sizeof(frag);
    ngx_http_cast_test_vector("RFC 6455 5.7 fragmented \"Hel\" \"lo\"", &v,
                              "D1:3:0;D1:2:1;", (u_char *) "Hello", 5);

    v.data = ping;
    v.len = sizeof(ping);
    ngx_http_cast_test_vector("RFC 6455 5.7 unmasked ping", &v,
                              "C9:5:48656c6c6f;", NULL, 0);

    v.data = masked;
    v.len = sizeof(masked);
    ngx_http_cast_test_vector("masked frame accepted with require_mask 0",
                              &v, "D1:5:1;", (u_char *) "Hello", 5);

    v.data = bin256;
    v.len = sizeof(bin256);
    ngx_http_cast_test_vector("header only: no event, NGX_AGAIN", &v, "",
                              NULL, 0);
}


static void
ngx_http_cast_test_masking(void)
{
    size_t      i, n, hlen;
    u_char     *b, key[4];
    ngx_uint_t  ok;

    ngx_http_cast_ws_event_t   ev;
    ngx_http_cast_ws_parser_t  p;

    /* every byte value under a key with all-different bytes */

    for (i = 0; i < 256; i++) {
        ngx_http_cast_test_payload[i] = (u_char) i;
    }

    b = ngx_http_cast_test_buf;

    hlen = ngx_http_cast_test_header(b, 0x82, 1, 0, 256, key);
    key[0] = 0x00;
    key[1] = 0xff;
    key[2] = 0xa5;
    key[3] = 0x3c;
    memcpy(b + hlen - 4, key, 4);

    for (i = 0; i < 256; i++) {
        b[hlen + i] = (u_char) (i ^ key[i % 4]);
    }

    n = hlen + 256;

    ngx_http_cast_test_stream("unmasking of all byte values, all splits", b,
                              n, 0, "D2:256:1;", ngx_http_cast_test_payload,
                              256);

    /* unmasking is in place: the event points into the input */

    ngx_http_cast_ws_parser_init(&p, 0);

    {
        u_char  *pos;

        pos = b;
        ok = ngx_http_cast_ws_parse(&p, &pos, b + n, &ev) == NGX_OK
             && ev.data == b + hlen && ev.len == 256
             && memcmp(b + hlen, ngx_http_cast_test_payload, 256) == 0
             && pos == b + n;
    }

    ngx_http_cast_test_report(ok, "payload unmasked in place in the input");

    /* mask phase continues across chunks of odd sizes */

    hlen = ngx_http_cast_test_header(b, 0x82, 1, 0, 256, key);

    for (i = 0; i < 256; i++) {
        b[hlen + i] = (u_char) (i ^ key[i % 4]);
    }

    {
        u_char   *pos, *last;
        size_t    got, steps[] = { 3, 1, 5, 2, 7, 11, 13 };

        ngx_http_cast_ws_parser_init(&p, 0);

        pos = b;
        got = 0;
        ok = 1;

        for (i = 0; pos < b + hlen + 256; i++) {
            last = pos + steps[i % 7];

            if (last > b + hlen + 256) {
                last = b + hlen + 256;
            }

            while (ngx_http_cast_ws_parse(&p, &pos, last, &ev) == NGX_OK) {
                if (ev.len
                    && memcmp(ev.data, ngx_http_cast_test_payload + got,
                              ev.len) != 0)
                {
                    ok = 0;
                }

                got += ev.len;
            }
        }

        ok = ok && got == 256;
    }

    ngx_http_cast_test_report(ok, "mask phase kept across odd-sized chunks");
}


static void
ngx_http_cast_test_fragments(void)
{
    size_t  n;
    u_char *b;

    b = ngx_http_cast_test_buf;

    /* TEXT "Hel" (no FIN), PING "p", CONT "l", PONG "", CONT "lo" FIN */

    n = ngx_http_cast_test_str(b, 0x01, "Hel");
    n += ngx_http_cast_test_str(b + n, 0x89, "p");
    n += ngx_http_cast_test_str(b + n, 0x00, "l");
    n += ngx_http_cast_test_str(b + n, 0x8a, "");
    n += ngx_http_cast_test_str(b + n, 0x80, "lo");

    ngx_http_cast_test_stream("fragmented text with ping and pong between",
                              b, n, 0, "D1:3:0;C9:1:70;D1:1:0;Ca:0:;D1:2:1;",
                              (u_char *) "Helllo", 6);

    /* several messages back to back, zero-length fragments */

    n = ngx_http_cast_test_str(b, 0x81, "one");
    n += ngx_http_cast_test_str(b + n, 0x02, "");
    n += ngx_http_cast_test_str(b + n, 0x00, "\x01\x02");
    n += ngx_http_cast_test_str(b + n, 0x80, "");
    n += ngx_http_cast_test_str(b + n, 0x81, "");
    n += ngx_http_cast_test_str(b + n, 0x81, "two");

    ngx_http_cast_test_stream("messages back to back, zero-length frames",
                              b, n, 0,
                              "D1:3:1;D2:0:0;D2:2:0;D2:0:1;D1:0:1;D1:3:1;",
                              (u_char *) "one\x01\x02two", 8);

    /* close after a message: code 1000, reason "bye" */

    n = ngx_http_cast_test_str(b, 0x81, "x");
    n += ngx_http_cast_test_str(b + n, 0x88, "\x03\xe8" "bye");

    ngx_http_cast_test_stream("close 1000 \"bye\" delivered whole", b, n, 0,
                              "D1:1:1;C8:5:03e8627965;", NULL, 0);

    n = ngx_http_cast_test_str(b, 0x88, "");

    ngx_http_cast_test_stream("close without payload", b, n, 0, "C8:0:;",
                              NULL, 0);

    n = ngx_http_cast_test_str(b, 0x88,
                               "\x0f\xa0" "\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80");

    ngx_http_cast_test_stream("close 4000 with multibyte reason", b, n, 0,
                              "C8:12:0fa0c3a974c3a920f09f9880;", NULL, 0);

    /* control payload of exactly 125 bytes */

    memset(ngx_http_cast_test_payload, 'p', 125);

    n = ngx_http_cast_test_frame(b, 0x89, 1, 0, ngx_http_cast_test_payload,
                                 125);
    n += ngx_http_cast_test_str(b + n, 0x81, "after");

    ngx_http_cast_test_stream("ping with 125 bytes accepted", b, n, 0, NULL,
                              (u_char *) "after", 5);
}


static void
ngx_http_cast_test_error(const char *name, u_char *b, size_t n,
    uint64_t max, ngx_uint_t code)
{
    char  log[32];

    snprintf(log, sizeof(log), "E%lu;", (unsigned long) code);

    ngx_http_cast_test_stream(name, b, n, max, log, NULL, 0);
}


static void
ngx_http_cast_test_errors(void)
{
    size_t      n;
    u_char     *b, key[4];
    ngx_uint_t  i;
    char        name[80];

    static ngx_uint_t  bad_codes[] = { 0, 999, 1004, 1005, 1006, 1015, 1016,
                                       2999, 5000, 65535 };

    b = ngx_http_cast_test_buf;

    for (i = 0x10; i <= 0x40; i <<= 1) {
        n = ngx_http_cast_test_str(b, 0x81 | i, "x");
        snprintf(name, sizeof(name), "RSV bit 0x%02lx -> 1002",
                 (unsigned long) i);
        ngx_http_cast_test_error(name, b, n, 0, 1002);
    }

    for (i = 3; i <= 0xf; i++) {
        if (i >= 8 && i <= 0xa) {
            continue;
        }

        n = ngx_http_cast_test_str(b, 0x80 | i, "x");
        snprintf(name, sizeof(name), "reserved opcode 0x%lx -> 1002",
                 (unsigned long) i);
        ngx_http_cast_test_error(name, b, n, 0, 1002);
    }

    memset(ngx_http_cast_test_payload, 'p', 126);

    n = ngx_http_cast_test_frame(b, 0x89, 1, 0, ngx_http_cast_test_payload,
                                 126);
    ngx_http_cast_test_error("ping with 126 bytes -> 1002", b, n, 0, 1002);

    n = ngx_http_cast_test_frame(b, 0x88, 1, 64, ngx_http_cast_test_payload,
                                 200);
    ngx_http_cast_test_error("close with 64-bit length 200 -> 1002", b, n, 0,
                             1002);

    n = ngx_http_cast_test_str(b, 0x09, "p");
    ngx_http_cast_test_error("fragmented ping -> 1002", b, n, 0, 1002);

    n = ngx_http_cast_test_str(b, 0x81, "a");
    n += ngx_http_cast_test_str(b + n, 0x00, "b");
    ngx_http_cast_test_stream("continuation without a message -> 1002", b, n,
                              0, "D1:1:1;E1002;", NULL, 0);

    n = ngx_http_cast_test_str(b, 0x80, "b");
    ngx_http_cast_test_error("continuation as first frame -> 1002", b, n, 0,
                             1002);

    n = ngx_http_cast_test_str(b, 0x01, "a");
    n += ngx_http_cast_test_str(b + n, 0x81, "b");
    ngx_http_cast_test_stream("text while a message is in progress -> 1002",
                              b, n, 0, "D1:1:0;E1002;", NULL, 0);

    n = ngx_http_cast_test_str(b, 0x02, "a");
    n += ngx_http_cast_test_str(b + n, 0x82, "b");
    ngx_http_cast_test_stream("binary while a message is in progress -> 1002",
                              b, n, 0, "D2:1:0;E1002;", NULL, 0);

    /* 64-bit length with the most significant bit set */

    n = ngx_http_cast_test_header(b, 0x82, 1, 64, 0, key);
    b[2] = 0x80;
    ngx_http_cast_test_error("64-bit length with MSB set -> 1002", b, n, 0,
                             1002);

    /* UTF-8 */

    n = ngx_http_cast_test_str(b, 0x81, "ab\xc0\x80");
    ngx_http_cast_test_error("invalid UTF-8 (overlong) -> 1007", b, n, 0,
                             1007);

    n = ngx_http_cast_test_str(b, 0x81, "\xff");
    ngx_http_cast_test_error("invalid UTF-8 byte FF -> 1007", b, n, 0, 1007);

    n = ngx_http_cast_test_str(b, 0x01, "ok \xed");
    n += ngx_http_cast_test_str(b + n, 0x80, "\xa0\x80");
    ngx_http_cast_test_stream("surrogate split across two fragments -> 1007",
                              b, n, 0, "D1:4:0;E1007;", NULL, 0);

    n = ngx_http_cast_test_str(b, 0x01, "\xf0\x9f");
    n += ngx_http_cast_test_str(b + n, 0x89, "");
    n += ngx_http_cast_test_str(b + n, 0x80, "\x98\x41");
    ngx_http_cast_test_stream("invalid UTF-8 across fragments and ping "
                              "-> 1007", b, n, 0, "D1:2:0;C9:0:;E1007;",
                              NULL, 0);

    n = ngx_http_cast_test_str(b, 0x81, "abc\xf0\x9f\x98");
    ngx_http_cast_test_error("truncated UTF-8 at message end -> 1007", b, n,
                             0, 1007);

    n = ngx_http_cast_test_str(b, 0x01, "abc\xe2\x82");
    n += ngx_http_cast_test_str(b + n, 0x80, "");
    ngx_http_cast_test_stream("truncated UTF-8 ended by empty CONT -> 1007",
                              b, n, 0, "D1:5:0;E1007;", NULL, 0);

    n = ngx_http_cast_test_str(b, 0x82, "\xff\xfe\xc0\x80");
    ngx_http_cast_test_stream("binary is not UTF-8 checked", b, n, 0,
                              "D2:4:1;", (u_char *) "\xff\xfe\xc0\x80", 4);

    /* message size limit, detected from the header alone */

    n = ngx_http_cast_test_header(b, 0x82, 1, 0, 101, key);
    ngx_http_cast_test_error("101-byte frame, limit 100, header only "
                             "-> 1009", b, n, 100, 1009);

    n = ngx_http_cast_test_header(b, 0x82, 1, 64, 0x7fffffffffffffffULL,
                                  key);
    ngx_http_cast_test_error("2^63-1 byte frame, header only -> 1009", b, n,
                             1 << 20, 1009);

    n = ngx_http_cast_test_str(b, 0x01, "0123456789");
    n += ngx_http_cast_test_header(b + n, 0x00, 1, 0, 91, key);
    ngx_http_cast_test_stream("fragments over the limit -> 1009 at header",
                              b, n, 100, "D1:10:0;E1009;", NULL, 0);

    n = ngx_http_cast_test_str(b, 0x01, "0123456789");
    n += ngx_http_cast_test_str(b + n, 0x89, "ping does not count");
    memset(ngx_http_cast_test_payload, 'x', 90);
    n += ngx_http_cast_test_frame(b + n, 0x80, 1, 0,
                                  ngx_http_cast_test_payload, 90);
    ngx_http_cast_test_stream("message of exactly the limit accepted", b, n,
                              100, NULL, NULL, 0);

    n = ngx_http_cast_test_str(b, 0x81, "0123456789");
    n += ngx_http_cast_test_str(b + n, 0x81, "0123456789");
    ngx_http_cast_test_stream("limit applies per message", b, n, 10,
                              "D1:10:1;D1:10:1;", NULL, 0);

    /* close frames */

    n = ngx_http_cast_test_str(b, 0x88, "\x03");
    ngx_http_cast_test_error("close with 1-byte payload -> 1002", b, n, 0,
                             1002);

    for (i = 0; i < sizeof(bad_codes) / sizeof(bad_codes[0]); i++) {
        ngx_http_cast_test_payload[0] = (u_char) (bad_codes[i] >> 8);
        ngx_http_cast_test_payload[1] = (u_char) bad_codes[i];

        n = ngx_http_cast_test_frame(b, 0x88, 1, 0,
                                     ngx_http_cast_test_payload, 2);
        snprintf(name, sizeof(name), "close with code %lu -> 1002",
                 (unsigned long) bad_codes[i]);
        ngx_http_cast_test_error(name, b, n, 0, 1002);
    }

    n = ngx_http_cast_test_str(b, 0x88, "\x03\xe8" "ab\xed\xa0\x80");
    ngx_http_cast_test_error("close with invalid UTF-8 reason -> 1007", b, n,
                             0, 1007);

    n = ngx_http_cast_test_str(b, 0x88, "\x03\xe8" "ab\xe2\x82");
    ngx_http_cast_test_error("close with truncated UTF-8 reason -> 1007", b,
                             n, 0, 1007);

    /* the error stops the stream: nothing after it is reported */

    n = ngx_http_cast_test_str(b, 0x83, "x");
    n += ngx_http_cast_test_str(b + n, 0x81, "ignored");
    ngx_http_cast_test_error("nothing parsed after an error", b, n, 0, 1002);

    /* empty input */

    {
        u_char                     *pos;
        ngx_http_cast_ws_event_t    ev;
        ngx_http_cast_ws_parser_t   p;

        ngx_http_cast_ws_parser_init(&p, 0);
        pos = b;

        ngx_http_cast_test_report(
            ngx_http_cast_ws_parse(&p, &pos, b, &ev) == NGX_AGAIN
            && pos == b, "empty input -> NGX_AGAIN");
    }
}


static void
ngx_http_cast_test_multibyte(void)
{
    size_t      n, k, len;
    u_char     *b;
    ngx_uint_t  ok;
    char        log[64];

    ngx_http_cast_test_vec_t  v;

    /* "h", U+20AC, U+1D11E, U+00E9, U+1F600, U+10FFFF, U+D7FF, U+E000 */

    static const char  text[] = "h\xe2\x82\xac\xf0\x9d\x84\x9e\xc3\xa9"
                                "\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"
                                "\xed\x9f\xbf\xee\x80\x80";

    b = ngx_http_cast_test_buf;
    len = sizeof(text) - 1;

    n = ngx_http_cast_test_str(b, 0x81, text);
    snprintf(log, sizeof(log), "D1:%lu:1;", (unsigned long) len);
    ngx_http_cast_test_stream("valid multibyte text, every chunk split", b,
                              n, 0, log, (u_char *) text, len);

    /* the same text split into two fragments at every byte */

    ok = 1;
    v.max_message = 0;
    v.require_mask = 1;

    for (k = 0; k <= len; k++) {
        n = ngx_http_cast_test_frame(b, 0x01, 1, 0, (u_char *) text, k);
        n += ngx_http_cast_test_frame(b + n, 0x80, 1, 0,
                                      (u_char *) text + k, len - k);

        v.data = b;
        v.len = n;

        if (ngx_http_cast_test_run(&v, 0, 0, &ngx_http_cast_test_ref)
            != NGX_OK
            || ngx_http_cast_test_ref.rc != NGX_AGAIN
            || ngx_http_cast_test_ref.data_len != len
            || memcmp(ngx_http_cast_test_ref.data, text, len) != 0)
        {
            ngx_http_cast_test_set_diag("fragment split at %lu: %s",
                                        (unsigned long) k,
                                        ngx_http_cast_test_ref.log);
            ok = 0;
            break;
        }

        if (ngx_http_cast_test_run(&v, 0, 1, &ngx_http_cast_test_cur)
            != NGX_OK
            || ngx_http_cast_test_same(&ngx_http_cast_test_ref,
                                       &ngx_http_cast_test_cur)
               != NGX_OK)
        {
            ngx_http_cast_test_set_diag("byte-by-byte, fragment split at "
                                        "%lu", (unsigned long) k);
            ok = 0;
            break;
        }
    }

    ngx_http_cast_test_report(ok, "valid multibyte text split into two "
                              "fragments at every byte");

    /* one fragment per byte */

    n = 0;

    for (k = 0; k < len; k++) {
        n += ngx_http_cast_test_frame(b + n, (k == 0 ? 0x01 : 0x00)
                                             | (k == len - 1 ? 0x80 : 0),
                                      1, 0, (u_char *) text + k, 1);
    }

    ngx_http_cast_test_stream("valid multibyte text, one fragment per byte",
                              b, n, 0, NULL, (u_char *) text, len);
}


static ngx_int_t
ngx_http_cast_test_utf8_check(const char *s, size_t n, ngx_int_t rc,
    ngx_uint_t complete)
{
    size_t                i;
    ngx_int_t             r;
    ngx_http_cast_utf8_t  u;

    /* whole */

    ngx_http_cast_utf8_init(&u);

    if (ngx_http_cast_utf8_feed(&u, (u_char *) s, n) != rc) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK && ngx_http_cast_utf8_complete(&u) != complete) {
        return NGX_ERROR;
    }

    /* byte by byte */

    ngx_http_cast_utf8_init(&u);
    r = NGX_OK;

    for (i = 0; i < n && r == NGX_OK; i++) {
        r = ngx_http_cast_utf8_feed(&u, (u_char *) s + i, 1);
    }

    if (r != rc) {
        return NGX_ERROR;
    }

    if (rc == NGX_OK && ngx_http_cast_utf8_complete(&u) != complete) {
        return NGX_ERROR;
    }

    /* sticky */

    if (rc == NGX_ERROR
        && (ngx_http_cast_utf8_feed(&u, (u_char *) "a", 1) != NGX_ERROR
            || ngx_http_cast_utf8_complete(&u)))
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static void
ngx_http_cast_test_utf8(void)
{
    size_t      n;
    u_char      c;
    ngx_uint_t  i, ok;
    char        one[2];

    static struct {
        const char  *name;
        const char  *s;
        ngx_int_t    rc;
        ngx_uint_t   complete;
    } v[] = {
        { "empty", "", NGX_OK, 1 },
        { "ASCII", "Hello, world", NGX_OK, 1 },
        { "overlong C0 80", "\xc0\x80", NGX_ERROR, 0 },
        { "overlong C1 BF", "\xc1\xbf", NGX_ERROR, 0 },
        { "overlong E0 80 80", "\xe0\x80\x80", NGX_ERROR, 0 },
        { "overlong E0 9F BF", "\xe0\x9f\xbf", NGX_ERROR, 0 },
        { "overlong F0 8F BF BF", "\xf0\x8f\xbf\xbf", NGX_ERROR, 0 },
        { "surrogate ED A0 80", "\xed\xa0\x80", NGX_ERROR, 0 },
        { "surrogate ED BF BF", "\xed\xbf\xbf", NGX_ERROR, 0 },
        { "above U+10FFFF F4 90 80 80", "\xf4\x90\x80\x80", NGX_ERROR, 0 },
        { "stray continuation 80", "a\x80", NGX_ERROR, 0 },
        { "lead then ASCII C3 41", "\xc3\x41", NGX_ERROR, 0 },
        { "valid 2-byte C2 80", "\xc2\x80", NGX_OK, 1 },
        { "valid 2-byte DF BF", "\xdf\xbf", NGX_OK, 1 },
        { "valid 3-byte E0 A0 80", "\xe0\xa0\x80", NGX_OK, 1 },
        { "valid U+D7FF ED 9F BF", "\xed\x9f\xbf", NGX_OK, 1 },
        { "valid U+E000 EE 80 80", "\xee\x80\x80", NGX_OK, 1 },
        { "valid U+FFFF EF BF BF", "\xef\xbf\xbf", NGX_OK, 1 },
        { "valid 4-byte F0 9F 98 80", "\xf0\x9f\x98\x80", NGX_OK, 1 },
        { "valid U+10000 F0 90 80 80", "\xf0\x90\x80\x80", NGX_OK, 1 },
        { "valid U+10FFFF F4 8F BF BF", "\xf4\x8f\xbf\xbf", NGX_OK, 1 },
        { "incomplete C2", "\xc2", NGX_OK, 0 },
        { "incomplete E0 A0", "\xe0\xa0", NGX_OK, 0 },
        { "incomplete F0 9F 98", "\xf0\x9f\x98", NGX_OK, 0 },
        { "Markus Kuhn kosme", "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
          NGX_OK, 1 },
    };

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        ok = ngx_http_cast_test_utf8_check(v[i].s, strlen(v[i].s), v[i].rc,
                                           v[i].complete) == NGX_OK;
        ngx_http_cast_test_report(ok, "utf8: %s", v[i].name);
    }

    ok = 1;

    for (c = 0xf5; c != 0; c++) {
        one[0] = (char) c;
        one[1] = '\0';

        if (ngx_http_cast_test_utf8_check(one, 1, NGX_ERROR, 0) != NGX_OK) {
            ok = 0;
        }
    }

    ngx_http_cast_test_report(ok, "utf8: bytes F5..FF rejected");

    /* exhaustive 2- and 3-byte check against a code point decoder */

    ok = 1;

    for (i = 0; i < 0x1000000 && ok; i++) {
        u_char                s[3];
        ngx_int_t             rc, want;
        ngx_uint_t            cp;
        ngx_http_cast_utf8_t  u;

        s[0] = (u_char) (i >> 16);
        s[1] = (u_char) (i >> 8);
        s[2] = (u_char) i;

        if (s[0] < 0xc2 || s[0] > 0xef) {
            continue;
        }

        n = (s[0] < 0xe0) ? 2 : 3;

        if (n == 2 && s[2] != 0) {
            continue;
        }

        want = NGX_OK;

        if ((s[1] & 0xc0) != 0x80 || (n == 3 && (s[2] & 0xc0) != 0x80)) {
            want = NGX_ERROR;

        } else if (n == 3) {
            cp = ((ngx_uint_t) (s[0] & 0x0f) << 12)
                 | ((ngx_uint_t) (s[1] & 0x3f) << 6) | (s[2] & 0x3f);

            if (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)) {
                want = NGX_ERROR;
            }
        }

        ngx_http_cast_utf8_init(&u);
        rc = ngx_http_cast_utf8_feed(&u, s, n);

        if (rc != want || (rc == NGX_OK && !ngx_http_cast_utf8_complete(&u)))
        {
            ngx_http_cast_test_set_diag("%02x %02x %02x", s[0], s[1], s[2]);
            ok = 0;
        }
    }

    ngx_http_cast_test_report(ok, "utf8: all 2- and 3-byte sequences match "
                              "a code point decoder");
}


static void
ngx_http_cast_test_encoder(void)
{
    size_t      n, i;
    u_char      buf[NGX_HTTP_CAST_WS_MAX_CONTROL + 16], reason[300];
    ngx_uint_t  ok;

    ngx_http_cast_utf8_t  u;

    static struct {
        uint64_t  len;
        size_t    hlen;
        u_char    b[10];
    } v[] = {
        { 0, 2, { 0x81, 0x00 } },
        { 125, 2, { 0x81, 0x7d } },
        { 126, 4, { 0x81, 0x7e, 0x00, 0x7e } },
        { 65535, 4, { 0x81, 0x7e, 0xff, 0xff } },
        { 65536, 10, { 0x81, 0x7f, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00 } },
        { 0x0102030405060708ULL, 10,
          { 0x81, 0x7f, 1, 2, 3, 4, 5, 6, 7, 8 } },
    };

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        memset(buf, 0xee, sizeof(buf));

        n = ngx_http_cast_ws_frame_header(buf, NGX_HTTP_CAST_WS_TEXT, 1,
                                          v[i].len);

        ok = n == v[i].hlen && memcmp(buf, v[i].b, n) == 0
             && buf[n] == 0xee;

        ngx_http_cast_test_report(ok, "frame header for %llu bytes is %lu "
                                  "bytes", (unsigned long long) v[i].len,
                                  (unsigned long) v[i].hlen);
    }

    n = ngx_http_cast_ws_frame_header(buf, NGX_HTTP_CAST_WS_CONT, 0, 3);
    ngx_http_cast_test_report(n == 2 && buf[0] == 0x00 && buf[1] == 3,
                              "frame header without FIN");

    n = ngx_http_cast_ws_frame_header(buf, NGX_HTTP_CAST_WS_PONG, 1, 5);
    ngx_http_cast_test_report(n == 2 && buf[0] == 0x8a && buf[1] == 5,
                              "pong frame header");

    /* round trip through a client-side parser */

    {
        u_char                     *pos;
        ngx_http_cast_ws_event_t    ev;
        ngx_http_cast_ws_parser_t   p;

        n = ngx_http_cast_ws_frame_header(ngx_http_cast_test_buf,
                                          NGX_HTTP_CAST_WS_BINARY, 1, 70000);
        memset(ngx_http_cast_test_buf + n, 0x42, 70000);

        ngx_http_cast_ws_parser_init(&p, 0);
        p.require_mask = 0;
        pos = ngx_http_cast_test_buf;

        ok = ngx_http_cast_ws_parse(&p, &pos, pos + n + 70000, &ev) == NGX_OK
             && ev.type == NGX_HTTP_CAST_WS_EV_DATA
             && ev.opcode == NGX_HTTP_CAST_WS_BINARY
             && ev.len == 70000 && ev.message_end
             && p.payload_len == 70000;

        ngx_http_cast_test_report(ok, "encoded header parses back");
    }

    /* close payloads */

    n = ngx_http_cast_ws_close_payload(buf, 1000, (u_char *) "bye", 3);
    ngx_http_cast_test_report(n == 5 && memcmp(buf, "\x03\xe8" "bye", 5) == 0,
                              "close payload 1000 \"bye\"");

    n = ngx_http_cast_ws_close_payload(buf, 1001, NULL, 0);
    ngx_http_cast_test_report(n == 2 && buf[0] == 0x03 && buf[1] == 0xe9,
                              "close payload without reason");

    n = ngx_http_cast_ws_close_payload(buf, 0, (u_char *) "x", 1);
    ngx_http_cast_test_report(n == 0, "close payload without code is empty");

    memset(reason, 'r', sizeof(reason));
    memset(buf, 0xee, sizeof(buf));
    n = ngx_http_cast_ws_close_payload(buf, 1008, reason, sizeof(reason));
    ngx_http_cast_test_report(n == 125 && buf[125] == 0xee
                              && memcmp(buf + 2, reason, 123) == 0,
                              "close payload truncated at 125 bytes");

    n = ngx_http_cast_ws_close_payload(buf, 1008, reason, 123);
    ngx_http_cast_test_report(n == 125, "123-byte reason fits exactly");

    /* "ab" then 2-byte characters: the cut at 123 would split one */

    reason[0] = 'a';
    reason[1] = 'b';

    for (i = 2; i + 1 < sizeof(reason); i += 2) {
        reason[i] = 0xc3;
        reason[i + 1] = 0xa9;
    }

    n = ngx_http_cast_ws_close_payload(buf, 1008, reason, 201);
    ngx_http_cast_utf8_init(&u);

    ok = n == 124
         && ngx_http_cast_utf8_feed(&u, buf + 2, n - 2) == NGX_OK
         && ngx_http_cast_utf8_complete(&u);

    ngx_http_cast_test_report(ok, "close reason cut on a UTF-8 boundary");

    /* 4-byte characters */

    for (i = 0; i + 4 <= sizeof(reason); i += 4) {
        memcpy(reason + i, "\xf0\x9f\x98\x80", 4);
    }

    n = ngx_http_cast_ws_close_payload(buf, 1000, reason, 200);
    ngx_http_cast_utf8_init(&u);

    ok = n == 2 + 120
         && ngx_http_cast_utf8_feed(&u, buf + 2, n - 2) == NGX_OK
         && ngx_http_cast_utf8_complete(&u);

    ngx_http_cast_test_report(ok, "close reason with 4-byte characters cut "
                              "on a boundary");

    /* and the parser accepts what the encoder builds */

    n = ngx_http_cast_ws_close_payload(buf, 1008, reason, 200);
    i = ngx_http_cast_test_frame(ngx_http_cast_test_buf, 0x88, 1, 0, buf, n);
    ngx_http_cast_test_stream("encoded close payload parses as valid",
                              ngx_http_cast_test_buf, i, 0, NULL, NULL, 0);
}


static void
ngx_http_cast_test_close_codes(void)
{
    ngx_uint_t  code, ok, want;

    ok = 1;

    for (code = 0; code < 70000; code++) {
        want = (code >= 1000 && code <= 1003)
               || (code >= 1007 && code <= 1014)
               || (code >= 3000 && code <= 4999);

        if ((ngx_uint_t) ngx_http_cast_ws_close_code_valid(code) != want) {
            ngx_http_cast_test_set_diag("code %lu", (unsigned long) code);
            ok = 0;
            break;
        }
    }

    ngx_http_cast_test_report(ok, "close_code_valid over 0..69999");
}


/* keyed frames: a latest-value socket replaces a frame of the same key */

static void
ngx_http_cast_test_keys(void)
{
    ngx_str_t               a = { 12, (u_char *) "scene-update" };
    ngx_str_t               b = { 11, (u_char *) "scene-updat" };
    ngx_str_t               t1 = { 7, (u_char *) "topic-1" };
    ngx_str_t               t2 = { 8, (u_char *) "etopic-1" };
    ngx_str_t               t3 = { 7, (u_char *) "topic-2" };
    ngx_http_cast_frame_t  *f[6];
    ngx_uint_t              i;

    f[0] = ngx_http_cast_frame_create_keyed(1, (u_char *) "x", 1, &a, &t1);
    f[1] = ngx_http_cast_frame_create_keyed(1, (u_char *) "yy", 2, &a, &t1);
    f[2] = ngx_http_cast_frame_create_keyed(1, (u_char *) "x", 1, &b, &t2);
    f[3] = ngx_http_cast_frame_create_keyed(1, (u_char *) "x", 1, &a, &t3);
    f[4] = ngx_http_cast_frame_create(1, (u_char *) "x", 1);
    f[5] = ngx_http_cast_frame_create(1, (u_char *) "x", 1);

    ngx_http_cast_test_report(f[1]->len == 4 && f[1]->data[2] == 'y'
                              && f[1]->key.len == a.len + t1.len
                              && f[1]->name_len == a.len,
                              "keyed frame: payload and key kept apart");
    ngx_http_cast_test_report(ngx_http_cast_frame_same_key(f[0], f[1]),
                              "same name, same topic: same key");
    ngx_http_cast_test_report(!ngx_http_cast_frame_same_key(f[0], f[2]),
                              "\"scene-update\" + \"topic-1\" is not "
                              "\"scene-updat\" + \"etopic-1\"");
    ngx_http_cast_test_report(!ngx_http_cast_frame_same_key(f[0], f[3]),
                              "another topic: another key");
    ngx_http_cast_test_report(!ngx_http_cast_frame_same_key(f[4], f[5])
                              && !ngx_http_cast_frame_same_key(f[4], f[0])
                              && f[4]->key.len == 0,
                              "frames without a key never match");

    for (i = 0; i < 6; i++) {
        ngx_http_cast_frame_release(f[i]);
    }
}


/*
 * parser_idle: true only between frames outside a fragmented message
 * (a socket then keeps no parser, and parses on with a fresh one)
 */

static void
ngx_http_cast_test_idle(void)
{
    u_char                     b[64], key[4] = { 1, 2, 3, 4 };
    u_char                    *pos;
    size_t                     n, m;
    ngx_int_t                  ok, rc;
    ngx_http_cast_ws_event_t   ev;
    ngx_http_cast_ws_parser_t  p, q;

    ngx_http_cast_ws_parser_init(&p, 0);
    ngx_http_cast_test_report(ngx_http_cast_ws_parser_idle(&p),
                              "idle: a new parser is idle");

    /* a text frame "ab", split after its first header byte */

    n = ngx_http_cast_test_header(b, 0x81, 1, 0, 2, key);
    b[n] = 'a' ^ key[0];
    b[n + 1] = 'b' ^ key[1];
    n += 2;

    pos = b;
    rc = ngx_http_cast_ws_parse(&p, &pos, b + 1, &ev);
    ngx_http_cast_test_report(rc == NGX_AGAIN
                              && !ngx_http_cast_ws_parser_idle(&p),
                              "idle: not within a frame header");

    rc = ngx_http_cast_ws_parse(&p, &pos, b + n, &ev);
    ngx_http_cast_test_report(rc == NGX_OK && ev.message_end
                              && ngx_http_cast_ws_parser_idle(&p),
                              "idle: after a whole unfragmented message");

    /* a fragment (FIN 0): mid-message is not idle, even between frames */

    m = ngx_http_cast_test_header(b, 0x01, 1, 0, 1, key);
    b[m] = 'x' ^ key[0];
    m++;

    pos = b;
    rc = ngx_http_cast_ws_parse(&p, &pos, b + m, &ev);
    ngx_http_cast_test_report(rc == NGX_OK && !ev.message_end
                              && !ngx_http_cast_ws_parser_idle(&p),
                              "idle: not within a fragmented message");

    /* its continuation (FIN 1) ends it: idle again */

    m = ngx_http_cast_test_header(b, 0x80, 1, 0, 1, key);
    b[m] = 'y' ^ key[0];
    m++;

    pos = b;
    rc = ngx_http_cast_ws_parse(&p, &pos, b + m, &ev);
    ok = rc == NGX_OK && ev.message_end && ngx_http_cast_ws_parser_idle(&p);
    ngx_http_cast_test_report(ok, "idle: after the last fragment");

    /*
     * an idle parser and a fresh one parse the same frame alike (each its
     * own copy: unmasking is in place)
     */

    ngx_http_cast_ws_parser_init(&q, 0);

    n = ngx_http_cast_test_header(b, 0x81, 1, 0, 2, key);
    b[n] = 'a' ^ key[0];
    b[n + 1] = 'b' ^ key[1];
    n += 2;
    memcpy(b + 32, b, n);

    pos = b;
    rc = ngx_http_cast_ws_parse(&p, &pos, b + n, &ev);
    ok = rc == NGX_OK && ev.len == 2 && ev.data[0] == 'a'
         && ev.data[1] == 'b' && ev.message_end;
    pos = b + 32;
    ok = ok && ngx_http_cast_ws_parse(&q, &pos, b + 32 + n, &ev) == NGX_OK
         && ev.len == 2 && ev.data[0] == 'a' && ev.data[1] == 'b'
         && ev.message_end;
    ngx_http_cast_test_report(ok, "idle: parses on like a new parser");

    /* a failed parser is not idle (it stays failed) */

    b[0] = 0x83;    /* a reserved opcode */
    pos = b;
    rc = ngx_http_cast_ws_parse(&p, &pos, b + 2, &ev);
    ngx_http_cast_test_report(rc == NGX_ERROR
                              && !ngx_http_cast_ws_parser_idle(&p),
                              "idle: not once failed");
}


int
main(void)
{
    ngx_http_cast_test_lengths();
    ngx_http_cast_test_rfc_examples();
    ngx_http_cast_test_masking();
    ngx_http_cast_test_fragments();
    ngx_http_cast_test_errors();
    ngx_http_cast_test_multibyte();
    ngx_http_cast_test_utf8();
    ngx_http_cast_test_encoder();
    ngx_http_cast_test_close_codes();
    ngx_http_cast_test_keys();
    ngx_http_cast_test_idle();

    printf("1..%lu\n", (unsigned long) ngx_http_cast_test_n);
    printf("%lu passed, %lu failed\n",
           (unsigned long) (ngx_http_cast_test_n - ngx_http_cast_test_failed),
           (unsigned long) ngx_http_cast_test_failed);

    return ngx_http_cast_test_failed ? 1 : 0;
}
