
/*
 * ngx_http_cast_module: a topic's state, and how an event changes it.
 *
 * Written once, run by both stores.  The state is a JSON object:
 *   "context"  the last non-empty "context" (Cast GET shape), until an
 *              event whose name holds "close";
 *   "opens"    the open contexts, oldest first, one per anchor (type and
 *              resource id): {"type", "id", "version", "name", "text"},
 *              "text" the event as subscribers got it, the current one
 *              marked "current": true.
 */


#ifndef _NGX_HTTP_CAST_STATE_H_INCLUDED_
#define _NGX_HTTP_CAST_STATE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast.h"


/*
 * NGX_OK: changed, NGX_DECLINED: unchanged, NGX_ABORT: refused (an open
 * context larger than ev->max_context), NGX_ERROR: no memory
 */
ngx_int_t ngx_http_cast_state_apply(json_t *state,
    ngx_http_cast_event_t *ev);

/* GET {base}/{topic} in a dialect's shape: a new reference */
json_t *ngx_http_cast_state_context(json_t *state, ngx_uint_t dialect);

/* an open context to replay: its lowercase name and its text (borrowed) */
typedef struct {
    ngx_str_t                  name;
    ngx_str_t                  text;
} ngx_http_cast_replay_t;

/* the latest open context per anchor type, oldest first */
ngx_uint_t ngx_http_cast_state_replay(json_t *state,
    ngx_http_cast_replay_t *replay, ngx_uint_t max);


#endif /* _NGX_HTTP_CAST_STATE_H_INCLUDED_ */
