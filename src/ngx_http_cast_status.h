
/*
 * ngx_http_cast_module: cast_status (src/ngx_http_cast_status.c).
 */


#ifndef _NGX_HTTP_CAST_STATUS_H_INCLUDED_
#define _NGX_HTTP_CAST_STATUS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_cast_status_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CAST_STATUS_H_INCLUDED_ */
