
/*
 * libFuzzer harness for the RFC 6455 frame codec.
 *
 * Input: byte 0 seeds the chunking, byte 1 selects the configuration
 * (require_mask, max_message), the rest is the byte stream.  The stream is
 * parsed whole and again in chunks (each a separate heap block, so that
 * ASan catches any read past a chunk); both runs must agree, and every
 * event is checked against the API invariants.  Text messages are checked
 * with a UTF-8 decoder written independently of the codec's validator.
 */


#include <stdio.h>
#include <stdlib.h>

#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_cast_frame.h"
#include "ngx_http_cast_fuzz.h"


typedef struct {
    u_char      *out;         /* transcript of the run */
    size_t       out_len;
    size_t       mark;        /* transcript length at the last frame end */
    u_char      *msg;         /* current data message, reassembled */
    size_t       msg_len;
    size_t       frame_len;
    ngx_int_t    rc;
    ngx_uint_t   close_code;
    uint64_t     max;
} ngx_http_cast_fuzz_run_t;


static uint64_t  ngx_http_cast_fuzz_limits[] = {
    0, 1, 2, 16, 125, 126, 1000, 65536
};

static size_t  ngx_http_cast_fuzz_chunks[] = {
    1, 2, 3, 7, 16, 64, 256, 4096
};


static void
ngx_http_cast_fuzz_put(ngx_http_cast_fuzz_run_t *r, u_char *p, size_t n)
{
    memcpy(r->out + r->out_len, p, n);
    r->out_len += n;
}


static void
ngx_http_cast_fuzz_record(ngx_http_cast_fuzz_run_t *r, u_char tag,
    ngx_uint_t opcode, ngx_uint_t flag, uint64_t len)
{
    u_char  rec[11];
    size_t  i;

    rec[0] = tag;
    rec[1] = (u_char) opcode;
    rec[2] = (u_char) flag;

    for (i = 0; i < 8; i++) {
        rec[3 + i] = (u_char) (len >> (8 * i));
    }

    ngx_http_cast_fuzz_put(r, rec, sizeof(rec));
}


static void
ngx_http_cast_fuzz_event(ngx_http_cast_fuzz_run_t *r,
    ngx_http_cast_ws_parser_t *p, ngx_http_cast_ws_event_t *ev,
    u_char *chunk, u_char *pos, u_char *last)
{
    ngx_uint_t  code;

    if (ev->type == NGX_HTTP_CAST_WS_EV_CONTROL) {
        ngx_http_cast_fuzz_check(ev->data == p->ctl);
        ngx_http_cast_fuzz_check(ev->len <= NGX_HTTP_CAST_WS_MAX_CONTROL);
        ngx_http_cast_fuzz_check(ev->frame_end && ev->message_end);
        ngx_http_cast_fuzz_check(ev->opcode == NGX_HTTP_CAST_WS_CLOSE
                                 || ev->opcode == NGX_HTTP_CAST_WS_PING
                                 || ev->opcode == NGX_HTTP_CAST_WS_PONG);
        ngx_http_cast_fuzz_check(ev->len == p->payload_len);

        if (ev->opcode == NGX_HTTP_CAST_WS_CLOSE && ev->len) {
            ngx_http_cast_fuzz_check(ev->len >= 2);

            code = ((ngx_uint_t) ev->data[0] << 8) | ev->data[1];

            ngx_http_cast_fuzz_check(
                ngx_http_cast_ws_close_code_valid(code));
            ngx_http_cast_fuzz_check(
                ngx_http_cast_fuzz_utf8(ev->data + 2, ev->len - 2));
        }

        ngx_http_cast_fuzz_record(r, 'C', ev->opcode, 1, ev->len);
        ngx_http_cast_fuzz_put(r, ev->data, ev->len);
        r->mark = r->out_len;

        return;
    }

    ngx_http_cast_fuzz_check(ev->type == NGX_HTTP_CAST_WS_EV_DATA);
    ngx_http_cast_fuzz_check(ev->opcode == NGX_HTTP_CAST_WS_TEXT
                             || ev->opcode == NGX_HTTP_CAST_WS_BINARY);
    ngx_http_cast_fuzz_check(ev->data >= chunk && ev->data <= last);
    ngx_http_cast_fuzz_check(ev->len <= (size_t) (last - ev->data));
    ngx_http_cast_fuzz_check(ev->data + ev->len == pos);
    ngx_http_cast_fuzz_check(!ev->message_end || ev->frame_end);

    memcpy(r->msg + r->msg_len, ev->data, ev->len);
    r->msg_len += ev->len;
    r->frame_len += ev->len;

    ngx_http_cast_fuzz_check(p->message_len == r->msg_len);
    ngx_http_cast_fuzz_check(r->max == 0 || p->message_len <= r->max);
    ngx_http_cast_fuzz_check(r->frame_len <= p->payload_len);

    ngx_http_cast_fuzz_put(r, ev->data, ev->len);

    if (ev->frame_end) {
        ngx_http_cast_fuzz_check(r->frame_len == p->payload_len);

        ngx_http_cast_fuzz_record(r, 'D', ev->opcode, ev->message_end,
                                  r->frame_len);
        r->mark = r->out_len;
        r->frame_len = 0;
    }

    if (ev->message_end) {
        if (ev->opcode == NGX_HTTP_CAST_WS_TEXT) {
            ngx_http_cast_fuzz_check(
                ngx_http_cast_fuzz_utf8(r->msg, r->msg_len));
        }

        r->msg_len = 0;
    }
}


/* chunk == 0: the whole stream in one block */

static void
ngx_http_cast_fuzz_run(ngx_http_cast_fuzz_run_t *r, const u_char *in,
    size_t n, ngx_uint_t require_mask, uint32_t seed, size_t chunk)
{
    u_char                     *buf, *pos, *last, *before;
    size_t                      off, len;
    ngx_int_t                   rc;
    ngx_http_cast_ws_event_t    ev;
    ngx_http_cast_ws_parser_t   p;

    ngx_http_cast_ws_parser_init(&p, r->max);
    p.require_mask = require_mask;

    r->rc = NGX_AGAIN;

    for (off = 0; /* void */; off += len) {

        if (chunk == 0) {
            len = n;

        } else {
            /* xorshift32 */
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;

            /* some empty chunks, mostly 1..chunk bytes */
            len = (seed % 16 == 0) ? 0 : 1 + (seed >> 4) % chunk;

            if (len > n - off) {
                len = n - off;
            }
        }

        /* malloc(0) may return NULL: keep one byte, past "last" */

        buf = malloc(len ? len : 1);
        ngx_http_cast_fuzz_check(buf != NULL);

        if (len) {
            memcpy(buf, in + off, len);
        }

        pos = buf;
        last = buf + len;

        for ( ;; ) {
            before = pos;

            rc = ngx_http_cast_ws_parse(&p, &pos, last, &ev);

            ngx_http_cast_fuzz_check(pos >= before && pos <= last);

            if (rc == NGX_AGAIN) {
                ngx_http_cast_fuzz_check(pos == last);
                break;
            }

            if (rc == NGX_ERROR) {
                ngx_http_cast_fuzz_check(p.error != NULL);
                ngx_http_cast_fuzz_check(
                    p.close_code == NGX_HTTP_CAST_WS_PROTOCOL_ERROR
                    || p.close_code == NGX_HTTP_CAST_WS_INVALID_DATA
                    || p.close_code == NGX_HTTP_CAST_WS_TOO_BIG);
                ngx_http_cast_fuzz_check(
                    p.close_code != NGX_HTTP_CAST_WS_TOO_BIG || r->max);

                /* sticky */
                before = pos;
                ngx_http_cast_fuzz_check(
                    ngx_http_cast_ws_parse(&p, &pos, last, &ev)
                    == NGX_ERROR);
                ngx_http_cast_fuzz_check(pos == before);

                free(buf);

                r->rc = NGX_ERROR;
                r->close_code = p.close_code;
                r->out_len = r->mark;
                ngx_http_cast_fuzz_record(r, 'E', 0, 0, p.close_code);

                return;
            }

            ngx_http_cast_fuzz_check(rc == NGX_OK);
            ngx_http_cast_fuzz_check(pos > before);

            ngx_http_cast_fuzz_event(r, &p, &ev, buf, pos, last);
        }

        free(buf);

        if (off + len == n) {
            break;
        }
    }

    /* everything consumed without error */

    ngx_http_cast_fuzz_record(r, 'A', p.in_message, 0, p.message_len);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                     n, cap;
    uint32_t                   seed;
    ngx_uint_t                 require_mask;
    const u_char              *in;
    ngx_http_cast_fuzz_run_t   a, b;

    if (size < 2) {
        return 0;
    }

    seed = 0x9e3779b9u ^ ((uint32_t) data[0] * 0x01000193u);
    require_mask = (data[1] & 1) ? 0 : 1;

    in = data + 2;
    n = size - 2;

    /* transcript: data plus an 11-byte record per frame (2+ bytes each) */
    cap = 8 * n + 64;

    memset(&a, 0, sizeof(a));
    a.max = ngx_http_cast_fuzz_limits[(data[1] >> 1) & 7];
    a.out = malloc(cap);
    a.msg = malloc(n + 1);

    b = a;
    b.out = malloc(cap);
    b.msg = malloc(n + 1);

    ngx_http_cast_fuzz_check(a.out && a.msg && b.out && b.msg);

    ngx_http_cast_fuzz_run(&a, in, n, require_mask, seed, 0);
    ngx_http_cast_fuzz_run(&b, in, n, require_mask, seed,
                           ngx_http_cast_fuzz_chunks[data[0] & 7]);

    /* the split must not change what is reported */

    ngx_http_cast_fuzz_check(a.rc == b.rc);
    ngx_http_cast_fuzz_check(a.close_code == b.close_code);
    ngx_http_cast_fuzz_check(a.out_len == b.out_len);
    ngx_http_cast_fuzz_check(memcmp(a.out, b.out, a.out_len) == 0);

    free(a.out);
    free(a.msg);
    free(b.out);
    free(b.msg);

    return 0;
}
