
/*
 * ngx_http_cast_module: HTTP replies of the edges, and requests that
 * wait for the hub (src/ngx_http_cast_reply.c).
 */


#ifndef _NGX_HTTP_CAST_REPLY_H_INCLUDED_
#define _NGX_HTTP_CAST_REPLY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"


typedef struct ngx_http_cast_wait_s  ngx_http_cast_wait_t;

/* builds the reply of a hub operation; returns what finalize takes */
typedef ngx_int_t (*ngx_http_cast_reply_pt)(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx);


/* what undoes an operation whose request was gone when it completed */
typedef void (*ngx_http_cast_abandon_pt)(ngx_http_cast_result_t *res);


ngx_http_cast_wait_t *ngx_http_cast_wait(ngx_http_request_t *r,
    ngx_http_cast_reply_pt reply, void *ctx);
void ngx_http_cast_wait_abandon(ngx_http_cast_wait_t *w,
    ngx_http_cast_abandon_pt abandon);
void ngx_http_cast_wait_done(void *data, ngx_http_cast_result_t *res);

ngx_int_t ngx_http_cast_send_json(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);
ngx_int_t ngx_http_cast_send_json_new(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body);
ngx_int_t ngx_http_cast_send_json_text(ngx_http_request_t *r,
    ngx_uint_t status, ngx_str_t *text);
ngx_int_t ngx_http_cast_send_published(ngx_http_request_t *r);
ngx_int_t ngx_http_cast_send_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *fmt, ...);
ngx_int_t ngx_http_cast_send_failure(ngx_http_request_t *r, ngx_uint_t rc);
ngx_int_t ngx_http_cast_send_refused(ngx_http_request_t *r, ngx_uint_t rc,
    ngx_str_t *reason);
ngx_int_t ngx_http_cast_add_cors(ngx_http_request_t *r);
ngx_int_t ngx_http_cast_send_preflight(ngx_http_request_t *r,
    ngx_str_t *allow);

/*
 * A request body in one piece (memory or temp file); NGX_DECLINED when
 * it is larger than "max" (cast_max_message_size: then answered with 413
 * by ngx_http_cast_send_too_large()).
 */
ngx_int_t ngx_http_cast_read_body(ngx_http_request_t *r, size_t max,
    ngx_str_t *body);
ngx_int_t ngx_http_cast_send_too_large(ngx_http_request_t *r);
ngx_int_t ngx_http_cast_add_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value);


#endif /* _NGX_HTTP_CAST_REPLY_H_INCLUDED_ */
