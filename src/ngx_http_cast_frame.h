
/*
 * RFC 6455 WebSocket frame codec for ngx_http_cast_module.
 *
 * Plain C without nginx I/O: the parser works on caller-owned buffers, never
 * allocates, and accepts the byte stream split at any point.
 */


#ifndef _NGX_HTTP_CAST_FRAME_H_INCLUDED_
#define _NGX_HTTP_CAST_FRAME_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast_text.h"


typedef enum {
    NGX_HTTP_CAST_WS_CONT = 0x0,
    NGX_HTTP_CAST_WS_TEXT = 0x1,
    NGX_HTTP_CAST_WS_BINARY = 0x2,
    NGX_HTTP_CAST_WS_CLOSE = 0x8,
    NGX_HTTP_CAST_WS_PING = 0x9,
    NGX_HTTP_CAST_WS_PONG = 0xa
} ngx_http_cast_ws_opcode_e;


/* close codes used by the hub */
#define NGX_HTTP_CAST_WS_NORMAL          1000
#define NGX_HTTP_CAST_WS_GOING_AWAY      1001
#define NGX_HTTP_CAST_WS_PROTOCOL_ERROR  1002
#define NGX_HTTP_CAST_WS_INVALID_DATA    1007
#define NGX_HTTP_CAST_WS_POLICY          1008
#define NGX_HTTP_CAST_WS_TOO_BIG         1009

/* control frame payload limit (RFC 6455, 5.5) */
#define NGX_HTTP_CAST_WS_MAX_CONTROL     125

/* largest frame header produced by ngx_http_cast_ws_frame_header() */
#define NGX_HTTP_CAST_WS_MAX_HEADER      10

/* event types */
#define NGX_HTTP_CAST_WS_EV_DATA         1
#define NGX_HTTP_CAST_WS_EV_CONTROL      2


typedef struct {
    /* public: filled in by the parser */
    ngx_uint_t            opcode;       /* of the current frame */
    ngx_uint_t            fin;
    uint64_t              payload_len;  /* of the current frame */
    uint64_t              message_len;  /* bytes of the current data message
                                           delivered so far */
    ngx_uint_t            close_code;   /* on NGX_ERROR: the code to close
                                           with */
    const char           *error;        /* on NGX_ERROR: static reason text */

    /* configuration */
    uint64_t              max_message;  /* limit for a reassembled data
                                           message (1009); 0: no limit */
    ngx_uint_t            require_mask; /* 1 on the server side (default) */

    /* private */
    ngx_uint_t            state;
    ngx_uint_t            masked;
    ngx_uint_t            hdr_need;     /* extended length bytes to read */
    ngx_uint_t            mask_pos;     /* key index: header, then payload */
    ngx_uint_t            in_message;
    ngx_uint_t            message_opcode;
    ngx_uint_t            ctl_len;
    uint64_t              remaining;    /* payload bytes left in the frame */
    ngx_http_cast_utf8_t  utf8;
    u_char                mask[4];
    u_char                ctl[NGX_HTTP_CAST_WS_MAX_CONTROL];
} ngx_http_cast_ws_parser_t;


typedef struct {
    ngx_uint_t            type;         /* NGX_HTTP_CAST_WS_EV_DATA or
                                           NGX_HTTP_CAST_WS_EV_CONTROL */
    ngx_uint_t            opcode;       /* message opcode (TEXT/BINARY) or
                                           control opcode */
    u_char               *data;         /* unmasked payload chunk: into the
                                           input for data, into p->ctl for
                                           control frames */
    size_t                len;
    ngx_uint_t            frame_end;    /* last chunk of this frame */
    ngx_uint_t            message_end;  /* last chunk of the whole
                                           (reassembled) message */
} ngx_http_cast_ws_event_t;


/* 1 if the close code may be sent on the wire, 0 if not */
ngx_int_t ngx_http_cast_ws_close_code_valid(ngx_uint_t code);

/* require_mask is set to 1; max_message 0 means no limit */
void ngx_http_cast_ws_parser_init(ngx_http_cast_ws_parser_t *p,
    uint64_t max_message);

/*
 * 1: between frames and outside a fragmented message, not failed: the
 * parser is as parser_init() left it (nothing of it need be kept).
 */
ngx_int_t ngx_http_cast_ws_parser_idle(ngx_http_cast_ws_parser_t *p);

/*
 * Feeds bytes [*pos, last).  Consumes header bytes internally; unmasks
 * payload bytes IN PLACE and reports them as chunks:
 *   NGX_AGAIN  - all input consumed, need more bytes;
 *   NGX_OK     - an event is ready in *ev; *pos is advanced past what was
 *                consumed; call again with the rest;
 *   NGX_ERROR  - protocol violation: p->close_code and p->error are set;
 *                the parser stays failed.
 *
 * Data frames: each chunk is an event pointing into the input; a frame of
 * zero length gives one event of len 0.  frame_end marks the frame's last
 * chunk, message_end the last chunk of a FIN frame.  Text is validated as
 * UTF-8 across chunks and fragments before the chunk is reported.
 *
 * Control frames are buffered in p->ctl and reported as ONE event with
 * frame_end = message_end = 1; ev->data is valid until the next call.
 * A close frame reported this way has a valid code and UTF-8 reason.
 */
ngx_int_t ngx_http_cast_ws_parse(ngx_http_cast_ws_parser_t *p, u_char **pos,
    u_char *last, ngx_http_cast_ws_event_t *ev);

/*
 * Writes a server frame header (unmasked) for a payload of len bytes into
 * buf (NGX_HTTP_CAST_WS_MAX_HEADER bytes at least); returns its length.
 */
size_t ngx_http_cast_ws_frame_header(u_char *buf, ngx_uint_t opcode,
    ngx_uint_t fin, uint64_t len);
/*
 * Builds a close frame payload into buf (NGX_HTTP_CAST_WS_MAX_CONTROL bytes
 * at least): the 2-byte code and the reason, cut on a UTF-8 character
 * boundary to fit 125 bytes; code 0 gives an empty payload.  Returns the
 * payload length.
 */
size_t ngx_http_cast_ws_close_payload(u_char *buf, ngx_uint_t code,
    u_char *reason, size_t reason_len);


/*
 * A frame's bytes, built once and shared (reference-counted) by every
 * subscriber queue that sends it.
 */

typedef struct {
    ngx_uint_t                 refs;
    size_t                     len;
    u_char                    *data;        /* header + payload */

    /*
     * An event's frame: its lowercase name, then its topic (key.data
     * points to the name, name_len bytes, the topic follows); a
     * latest-value socket replaces a queued frame of the same key.
     * Empty for other frames.
     */
    ngx_str_t                  key;
    size_t                     name_len;
} ngx_http_cast_frame_t;


ngx_http_cast_frame_t *ngx_http_cast_frame_create(ngx_uint_t opcode,
    u_char *data, size_t len);
/* the same, with a key (name, topic) kept in the frame's block */
ngx_http_cast_frame_t *ngx_http_cast_frame_create_keyed(ngx_uint_t opcode,
    u_char *data, size_t len, ngx_str_t *name, ngx_str_t *topic);
/* the same key: the same event name on the same topic */
ngx_int_t ngx_http_cast_frame_same_key(ngx_http_cast_frame_t *a,
    ngx_http_cast_frame_t *b);
void ngx_http_cast_frame_release(ngx_http_cast_frame_t *frame);


#endif /* _NGX_HTTP_CAST_FRAME_H_INCLUDED_ */
