
/*
 * ngx_http_cast_module: the HTTP routes that ask other apps
 * (src/ngx_http_cast_query.c): GET {base}/cast-get and
 * POST {base}/request.
 */


#ifndef _NGX_HTTP_CAST_QUERY_H_INCLUDED_
#define _NGX_HTTP_CAST_QUERY_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


/* NGX_DECLINED: not one of these routes (nor their preflight) */
ngx_int_t ngx_http_cast_query_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CAST_QUERY_H_INCLUDED_ */
