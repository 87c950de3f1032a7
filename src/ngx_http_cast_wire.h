
/*
 * ngx_http_cast_module: what travels through Redis (pure functions over
 * bytes, unit-tested and fuzzed).
 *
 *   an event:     "<stream id> <name length>:<name><json>"
 *   control:      "<stream id> end <subscription id> <reason>"
 *                 "<stream id> renew <subscription id> <expires ms>
 *                  <lease s> <grant> <events>"  (grant, cast_auth:
 *                  "a<writable events>" for a record made with a
 *                  bearer token, "n" otherwise; no space in it)
 *   a stream id:  "<ms>-<seq>"
 *
 * Lengths are given, never found by a separator inside the content: a
 * newline or a colon in an event name cannot split a message.
 */


#ifndef _NGX_HTTP_CAST_WIRE_H_INCLUDED_
#define _NGX_HTTP_CAST_WIRE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


#define NGX_HTTP_CAST_WIRE_EVENT   1
#define NGX_HTTP_CAST_WIRE_END     2
#define NGX_HTTP_CAST_WIRE_RENEW   3


typedef struct {
    uint64_t                   ms;          /* the stream id */
    uint64_t                   seq;
    ngx_str_t                  text;        /* what follows the id */
} ngx_http_cast_wire_t;


typedef struct {
    ngx_uint_t                 kind;        /* NGX_HTTP_CAST_WIRE_* */
    ngx_str_t                  name;        /* event: lowercase name */
    ngx_str_t                  json;        /* event */
    ngx_str_t                  id;          /* end, renew */
    ngx_str_t                  reason;      /* end */
    int64_t                    expires;     /* renew, ms */
    time_t                     lease;       /* renew, s */
    ngx_str_t                  events;      /* renew */
    ngx_uint_t                 auth;        /* renew: made with a token */
    ngx_str_t                  writable;    /* renew: what it may publish */
} ngx_http_cast_message_t;


/* "<ms>-<seq>" */
ngx_int_t ngx_http_cast_wire_stream_id(u_char *p, size_t len, uint64_t *ms,
    uint64_t *seq);

/* "<stream id> <text>" */
ngx_int_t ngx_http_cast_wire_split(u_char *p, size_t len,
    ngx_http_cast_wire_t *w);

/* the text of an event ("<n>:<name><json>") */
ngx_int_t ngx_http_cast_wire_event(ngx_str_t *text,
    ngx_http_cast_message_t *m);

/* the text of a control message */
ngx_int_t ngx_http_cast_wire_control(ngx_str_t *text,
    ngx_http_cast_message_t *m);

/*
 * "<id> <n>:<name><json>" into buf (its size: len bytes at least
 * id->len + name->len + json->len + NGX_INT_T_LEN + 2); returns the end
 */
u_char *ngx_http_cast_wire_format_event(u_char *buf, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *json);


#endif /* _NGX_HTTP_CAST_WIRE_H_INCLUDED_ */
