
/*
 * ngx_http_cast_module: request/response between apps, the hub core's
 * part (src/ngx_http_cast_request.c): the requests this worker's HTTP
 * clients wait on, the messages to their targets wherever a target's
 * socket is, and the answers routed back to the waiting worker.
 *
 * What a request means (its targets, messages, reply) is in
 * src/ngx_http_cast_ask.c.  A request completes through its callback,
 * at once when no target can be asked, else when every target answered
 * or at its timeout: res->json is the reply (borrowed).  res->rc:
 *   NGX_HTTP_CAST_DONE         the reply
 *   NGX_HTTP_CAST_BOUND        a request with this id is waiting here
 *   NGX_HTTP_CAST_FULL         this worker waits on as many requests as
 *                              it may (cast_max_requests)
 *   NGX_HTTP_CAST_UNAVAILABLE  the store is out of reach
 *   NGX_HTTP_CAST_FAILED       internal error
 */


#ifndef _NGX_HTTP_CAST_REQUEST_H_INCLUDED_
#define _NGX_HTTP_CAST_REQUEST_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_ask.h"
#include "ngx_http_cast_hub.h"


typedef struct ngx_http_cast_request_s  ngx_http_cast_request_t;


/* worker start (after the hub), worker exit (before the hub goes) */
ngx_int_t ngx_http_cast_request_init(ngx_cycle_t *cycle,
    ngx_http_cast_hub_t *hub, ngx_uint_t max);
void ngx_http_cast_request_exit(void);

/*
 * Starts a request; *ask (and what it borrows) must stay until done or
 * cancel.  Returns the request while it waits, NULL when done was
 * called already.
 */
ngx_http_cast_request_t *ngx_http_cast_request_start(
    ngx_http_cast_hub_t *hub, ngx_http_cast_ask_t *ask,
    ngx_http_cast_done_pt done, void *data);

/* the client went: done is not called, everything is released */
void ngx_http_cast_request_cancel(ngx_http_cast_request_t *rq);

/*
 * A message with an "event" from a socket (sub NULL: not bound):
 * NGX_DECLINED unless it is a response ("*-response"), which goes to
 * its request, here or on the worker that waits for it (never to the
 * topic's subscribers); NGX_OK then.
 */
ngx_int_t ngx_http_cast_request_answer(ngx_http_cast_hub_t *hub,
    ngx_http_cast_sub_t *sub, json_t *root, ngx_log_t *log);


#endif /* _NGX_HTTP_CAST_REQUEST_H_INCLUDED_ */
