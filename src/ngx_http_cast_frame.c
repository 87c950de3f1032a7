
/*
 * RFC 6455 WebSocket frame codec for ngx_http_cast_module.
 *
 * Decisions beyond the RFC text:
 *  - non-minimal payload length encodings (e.g. 5 sent as 126 + 0x0005)
 *    are accepted: RFC 6455 5.2 requires the minimal form from senders only;
 *  - masked frames are accepted when require_mask is 0 (client side);
 *  - max_message 0 disables the message size limit;
 *  - after NGX_ERROR the parser stays failed: later calls return NGX_ERROR.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_cast_frame.h"


/* parser states */
#define NGX_HTTP_CAST_WS_ST_START    0
#define NGX_HTTP_CAST_WS_ST_LEN      1
#define NGX_HTTP_CAST_WS_ST_EXTLEN   2
#define NGX_HTTP_CAST_WS_ST_MASK     3
#define NGX_HTTP_CAST_WS_ST_PAYLOAD  4
#define NGX_HTTP_CAST_WS_ST_ERROR    5


#define ngx_http_cast_ws_is_control(op)  ((op) & 0x8)


static ngx_int_t ngx_http_cast_ws_fail(ngx_http_cast_ws_parser_t *p,
    ngx_uint_t code, const char *error);
static ngx_int_t ngx_http_cast_ws_parse_header(ngx_http_cast_ws_parser_t *p,
    u_char **pos, u_char *last);
static ngx_int_t ngx_http_cast_ws_header_byte(ngx_http_cast_ws_parser_t *p,
    u_char ch);
static const char *ngx_http_cast_ws_opcode_check(
    ngx_http_cast_ws_parser_t *p);
static ngx_int_t ngx_http_cast_ws_length_done(ngx_http_cast_ws_parser_t *p);
static void ngx_http_cast_ws_unmask(ngx_http_cast_ws_parser_t *p, u_char *d,
    size_t n);
static ngx_int_t ngx_http_cast_ws_data_event(ngx_http_cast_ws_parser_t *p,
    u_char *data, size_t len, ngx_http_cast_ws_event_t *ev);
static ngx_uint_t ngx_http_cast_ws_close_check(ngx_http_cast_ws_parser_t *p,
    const char **error);
static ngx_int_t ngx_http_cast_ws_control_event(
    ngx_http_cast_ws_parser_t *p, ngx_http_cast_ws_event_t *ev);


/*
 * Returns 1 if the close code may appear in a close frame on the wire
 * (RFC 6455 7.4 and the IANA registry), 0 otherwise.
 */

ngx_int_t
ngx_http_cast_ws_close_code_valid(ngx_uint_t code)
{
    if (code >= 1000 && code <= 1003) {
        return 1;
    }

    /* 1004 reserved, 1005 and 1006 must not be sent */

    if (code >= 1007 && code <= 1014) {
        return 1;
    }

    /* 1015 must not be sent, 1016-2999 reserved */

    if (code >= 3000 && code <= 4999) {
        return 1;
    }

    return 0;
}


void
ngx_http_cast_ws_parser_init(ngx_http_cast_ws_parser_t *p,
    uint64_t max_message)
{
    ngx_memzero(p, sizeof(ngx_http_cast_ws_parser_t));

    p->max_message = max_message;
    p->require_mask = 1;
    p->state = NGX_HTTP_CAST_WS_ST_START;

    ngx_http_cast_utf8_init(&p->utf8);
}


ngx_int_t
ngx_http_cast_ws_parser_idle(ngx_http_cast_ws_parser_t *p)
{
    return p->state == NGX_HTTP_CAST_WS_ST_START && !p->in_message;
}


static ngx_int_t
ngx_http_cast_ws_fail(ngx_http_cast_ws_parser_t *p, ngx_uint_t code,
    const char *error)
{
    p->state = NGX_HTTP_CAST_WS_ST_ERROR;
    p->close_code = code;
    p->error = error;

    return NGX_ERROR;
}


ngx_int_t
ngx_http_cast_ws_parse(ngx_http_cast_ws_parser_t *p, u_char **pos,
    u_char *last, ngx_http_cast_ws_event_t *ev)
{
    u_char     *b;
    size_t      n;
    ngx_int_t   rc;

    ngx_memzero(ev, sizeof(ngx_http_cast_ws_event_t));

    for ( ;; ) {

        switch (p->state) {

        case NGX_HTTP_CAST_WS_ST_ERROR:
            return NGX_ERROR;

        case NGX_HTTP_CAST_WS_ST_PAYLOAD:

            b = *pos;

            if (b >= last) {
                return NGX_AGAIN;
            }

            n = (size_t) (last - b);

            if ((uint64_t) n > p->remaining) {
                n = (size_t) p->remaining;
            }

            if (p->masked) {
                ngx_http_cast_ws_unmask(p, b, n);
            }

            p->remaining -= n;
            *pos = b + n;

            if (ngx_http_cast_ws_is_control(p->opcode)) {
                ngx_memcpy(p->ctl + p->ctl_len, b, n);
                p->ctl_len += n;

                if (p->remaining) {
                    return NGX_AGAIN;
                }

                return ngx_http_cast_ws_control_event(p, ev);
            }

            return ngx_http_cast_ws_data_event(p, b, n, ev);

        default:

            rc = ngx_http_cast_ws_parse_header(p, pos, last);

            if (rc != NGX_OK) {
                return rc;
            }

            /* a complete frame header */

            p->remaining = p->payload_len;
            p->mask_pos = 0;
            p->ctl_len = 0;

            if (p->payload_len) {
                p->state = NGX_HTTP_CAST_WS_ST_PAYLOAD;
                continue;
            }

            if (ngx_http_cast_ws_is_control(p->opcode)) {
                return ngx_http_cast_ws_control_event(p, ev);
            }

            return ngx_http_cast_ws_data_event(p, *pos, 0, ev);
        }
    }
}


/*
 * Consumes header bytes; returns NGX_OK once the header is complete with
 * *pos past its last byte, NGX_AGAIN with all input consumed, or NGX_ERROR.
 */

static ngx_int_t
ngx_http_cast_ws_parse_header(ngx_http_cast_ws_parser_t *p, u_char **pos,
    u_char *last)
{
    u_char     *b;
    ngx_int_t   rc;

    for (b = *pos; b < last; /* void */ ) {

        rc = ngx_http_cast_ws_header_byte(p, *b++);

        if (rc != NGX_AGAIN) {
            *pos = b;
            return rc;
        }
    }

    *pos = b;

    return NGX_AGAIN;
}


static ngx_int_t
ngx_http_cast_ws_header_byte(ngx_http_cast_ws_parser_t *p, u_char ch)
{
    ngx_uint_t   len;
    const char  *error;

    switch (p->state) {

    case NGX_HTTP_CAST_WS_ST_START:

        if (ch & 0x70) {
            return ngx_http_cast_ws_fail(p, NGX_HTTP_CAST_WS_PROTOCOL_ERROR,
                                         "reserved bits set");
        }

        p->fin = (ch & 0x80) ? 1 : 0;
        p->opcode = ch & 0x0f;

        error = ngx_http_cast_ws_opcode_check(p);

        if (error) {
            return ngx_http_cast_ws_fail(p, NGX_HTTP_CAST_WS_PROTOCOL_ERROR,
                                         error);
        }

        p->state = NGX_HTTP_CAST_WS_ST_LEN;

        return NGX_AGAIN;

    case NGX_HTTP_CAST_WS_ST_LEN:

        p->masked = (ch & 0x80) ? 1 : 0;

        if (!p->masked && p->require_mask) {
            return ngx_http_cast_ws_fail(p, NGX_HTTP_CAST_WS_PROTOCOL_ERROR,
                                         "unmasked client frame");
        }

        len = ch & 0x7f;

        if (ngx_http_cast_ws_is_control(p->opcode)
            && len > NGX_HTTP_CAST_WS_MAX_CONTROL)
        {
            return ngx_http_cast_ws_fail(p, NGX_HTTP_CAST_WS_PROTOCOL_ERROR,
                                         "control frame too long");
        }

        p->payload_len = 0;

        if (len == 126) {
            p->hdr_need = 2;
            p->state = NGX_HTTP_CAST_WS_ST_EXTLEN;
            return NGX_AGAIN;
        }

        if (len == 127) {
            p->hdr_need = 8;
            p->state = NGX_HTTP_CAST_WS_ST_EXTLEN;
            return NGX_AGAIN;
        }

        p->payload_len = len;

        return ngx_http_cast_ws_length_done(p);

    case NGX_HTTP_CAST_WS_ST_EXTLEN:

        if (p->hdr_need == 8 && (ch & 0x80)) {
            return ngx_http_cast_ws_fail(p, NGX_HTTP_CAST_WS_PROTOCOL_ERROR,
                                         "payload length with the most "
                                         "significant bit set");
        }

        p->payload_len = (p->payload_len << 8) | ch;

        if (--p->hdr_need) {
            return NGX_AGAIN;
        }

        return ngx_http_cast_ws_length_done(p);

    case NGX_HTTP_CAST_WS_ST_MASK:

        p->mask[p->mask_pos++] = ch;

        if (p->mask_pos < 4) {
            return NGX_AGAIN;
        }

        return NGX_OK;

    default:
        return ngx_http_cast_ws_fail(p, NGX_HTTP_CAST_WS_PROTOCOL_ERROR,
                                     "internal parser state");
    }
}


/*
 * Checks the opcode of a new frame against the message state; returns the
 * error text, or NULL.  A TEXT or BINARY frame starts a message here.
 */

static const char *
ngx_http_cast_ws_opcode_check(ngx_http_cast_ws_parser_t *p)
{
    switch (p->opcode) {

    case NGX_HTTP_CAST_WS_CONT:

        if (!p->in_message) {
            return "continuation frame outside a message";
        }

        return NULL;

    case NGX_HTTP_CAST_WS_TEXT:
    case NGX_HTTP_CAST_WS_BINARY:

        if (p->in_message) {
            return "data frame inside a fragmented message";
        }

        p->in_message = 1;
        p->message_opcode = p->opcode;
        p->message_len = 0;
        ngx_http_cast_utf8_init(&p->utf8);

        return NULL;

    case NGX_HTTP_CAST_WS_CLOSE:
    case NGX_HTTP_CAST_WS_PING:
    case NGX_HTTP_CAST_WS_PONG:

        if (!p->fin) {
            return "fragmented control frame";
        }

        return NULL;

    default:
        return "reserved opcode";
    }
}


/*
 * The payload length is known: enforce the message limit before any
 * payload is read, then go on with the masking key if any.
 */

static ngx_int_t
ngx_http_cast_ws_length_done(ngx_http_cast_ws_parser_t *p)
{
    if (!ngx_http_cast_ws_is_control(p->opcode)
        && p->max_message
        && (p->message_len > p->max_message
            || p->payload_len > p->max_message - p->message_len))
    {
        return ngx_http_cast_ws_fail(p, NGX_HTTP_CAST_WS_TOO_BIG,
                                     "message too big");
    }

    if (p->masked) {
        p->mask_pos = 0;
        p->state = NGX_HTTP_CAST_WS_ST_MASK;
        return NGX_AGAIN;
    }

    return NGX_OK;
}


static void
ngx_http_cast_ws_unmask(ngx_http_cast_ws_parser_t *p, u_char *d, size_t n)
{
    u_char      *last;
    ngx_uint_t   i;

    i = p->mask_pos;

    for (last = d + n; d < last; d++) {
        *d ^= p->mask[i];
        i = (i + 1) & 3;
    }

    p->mask_pos = i;
}


static ngx_int_t
ngx_http_cast_ws_data_event(ngx_http_cast_ws_parser_t *p, u_char *data,
    size_t len, ngx_http_cast_ws_event_t *ev)
{
    ngx_uint_t  frame_end, message_end;

    frame_end = (p->remaining == 0);
    message_end = frame_end && p->fin;

    if (p->message_opcode == NGX_HTTP_CAST_WS_TEXT) {

        if (ngx_http_cast_utf8_feed(&p->utf8, data, len) != NGX_OK) {
            return ngx_http_cast_ws_fail(p, NGX_HTTP_CAST_WS_INVALID_DATA,
                                         "invalid UTF-8 in text message");
        }

        if (message_end && !ngx_http_cast_utf8_complete(&p->utf8)) {
            return ngx_http_cast_ws_fail(p, NGX_HTTP_CAST_WS_INVALID_DATA,
                                         "truncated UTF-8 at the end "
                                         "of text message");
        }
    }

    p->message_len += len;

    if (frame_end) {
        p->state = NGX_HTTP_CAST_WS_ST_START;

        if (message_end) {
            p->in_message = 0;
        }
    }

    ev->type = NGX_HTTP_CAST_WS_EV_DATA;
    ev->opcode = p->message_opcode;
    ev->data = data;
    ev->len = len;
    ev->frame_end = frame_end;
    ev->message_end = message_end;

    return NGX_OK;
}


/*
 * Validates a complete close frame payload: returns 0, or the close code to
 * fail with and the error text.
 */

static ngx_uint_t
ngx_http_cast_ws_close_check(ngx_http_cast_ws_parser_t *p, const char **error)
{
    ngx_uint_t            code;
    ngx_http_cast_utf8_t  u;

    if (p->ctl_len == 0) {
        return 0;
    }

    if (p->ctl_len == 1) {
        *error = "close frame with 1-byte payload";
        return NGX_HTTP_CAST_WS_PROTOCOL_ERROR;
    }

    code = ((ngx_uint_t) p->ctl[0] << 8) | p->ctl[1];

    if (!ngx_http_cast_ws_close_code_valid(code)) {
        *error = "invalid close code";
        return NGX_HTTP_CAST_WS_PROTOCOL_ERROR;
    }

    ngx_http_cast_utf8_init(&u);

    if (ngx_http_cast_utf8_feed(&u, p->ctl + 2, p->ctl_len - 2) != NGX_OK
        || !ngx_http_cast_utf8_complete(&u))
    {
        *error = "invalid UTF-8 in close reason";
        return NGX_HTTP_CAST_WS_INVALID_DATA;
    }

    return 0;
}


static ngx_int_t
ngx_http_cast_ws_control_event(ngx_http_cast_ws_parser_t *p,
    ngx_http_cast_ws_event_t *ev)
{
    ngx_uint_t   code;
    const char  *error;

    if (p->opcode == NGX_HTTP_CAST_WS_CLOSE) {
        code = ngx_http_cast_ws_close_check(p, &error);

        if (code) {
            return ngx_http_cast_ws_fail(p, code, error);
        }
    }

    p->state = NGX_HTTP_CAST_WS_ST_START;

    ev->type = NGX_HTTP_CAST_WS_EV_CONTROL;
    ev->opcode = p->opcode;
    ev->data = p->ctl;
    ev->len = p->ctl_len;
    ev->frame_end = 1;
    ev->message_end = 1;

    return NGX_OK;
}


size_t
ngx_http_cast_ws_frame_header(u_char *buf, ngx_uint_t opcode, ngx_uint_t fin,
    uint64_t len)
{
    ngx_uint_t  i;

    buf[0] = (u_char) ((fin ? 0x80 : 0x00) | (opcode & 0x0f));

    if (len <= 125) {
        buf[1] = (u_char) len;
        return 2;
    }

    if (len <= 0xffff) {
        buf[1] = 126;
        buf[2] = (u_char) (len >> 8);
        buf[3] = (u_char) len;
        return 4;
    }

    buf[1] = 127;

    for (i = 0; i < 8; i++) {
        buf[2 + i] = (u_char) (len >> (56 - 8 * i));
    }

    return 10;
}


/*
 * buf must hold NGX_HTTP_CAST_WS_MAX_CONTROL bytes.  The reason is cut to
 * fit 123 bytes, on a UTF-8 character boundary so that the peer does not
 * fail the connection with 1007.  Code 0 means "no status code": the
 * payload is empty.
 */

size_t
ngx_http_cast_ws_close_payload(u_char *buf, ngx_uint_t code, u_char *reason,
    size_t reason_len)
{
    size_t  max;

    if (code == 0) {
        return 0;
    }

    buf[0] = (u_char) (code >> 8);
    buf[1] = (u_char) code;

    if (reason == NULL) {
        return 2;
    }

    max = NGX_HTTP_CAST_WS_MAX_CONTROL - 2;

    if (reason_len > max) {
        reason_len = max;

        /* do not split a multibyte character */

        while (reason_len && (reason[reason_len] & 0xc0) == 0x80) {
            reason_len--;
        }
    }

    ngx_memcpy(buf + 2, reason, reason_len);

    return 2 + reason_len;
}


/*
 * A frame built once and shared by every queue it is in: one allocation
 * (the struct, the frame header, the payload), freed with its last
 * reference.  opcode 0 with data NULL: a raw buffer of len bytes.
 */

ngx_http_cast_frame_t *
ngx_http_cast_frame_create(ngx_uint_t opcode, u_char *data, size_t len)
{
    return ngx_http_cast_frame_create_keyed(opcode, data, len, NULL, NULL);
}


ngx_http_cast_frame_t *
ngx_http_cast_frame_create_keyed(ngx_uint_t opcode, u_char *data,
    size_t len, ngx_str_t *name, ngx_str_t *topic)
{
    u_char                  header[NGX_HTTP_CAST_WS_MAX_HEADER];
    size_t                  hlen, klen;
    ngx_http_cast_frame_t  *frame;

    hlen = opcode ? ngx_http_cast_ws_frame_header(header, opcode, 1, len) : 0;
    klen = name ? name->len + topic->len : 0;

    frame = ngx_alloc(sizeof(ngx_http_cast_frame_t) + hlen + len + klen,
                      ngx_cycle->log);
    if (frame == NULL) {
        return NULL;
    }

    frame->refs = 1;
    frame->len = hlen + len;
    frame->data = (u_char *) &frame[1];

    ngx_memcpy(frame->data, header, hlen);

    if (data) {
        ngx_memcpy(frame->data + hlen, data, len);
    }

    frame->key.len = klen;
    frame->key.data = frame->data + frame->len;
    frame->name_len = 0;

    if (name) {
        frame->name_len = name->len;
        ngx_memcpy(ngx_cpymem(frame->key.data, name->data, name->len),
                   topic->data, topic->len);
    }

    return frame;
}


ngx_int_t
ngx_http_cast_frame_same_key(ngx_http_cast_frame_t *a,
    ngx_http_cast_frame_t *b)
{
    return a->key.len
           && a->key.len == b->key.len
           && a->name_len == b->name_len
           && ngx_memcmp(a->key.data, b->key.data, a->key.len) == 0;
}


void
ngx_http_cast_frame_release(ngx_http_cast_frame_t *frame)
{
    if (--frame->refs == 0) {
        ngx_free(frame);
    }
}
