
/*
 * ngx_http_cast_module: the HTTP routes of conferences
 * (src/ngx_http_cast_conf_routes.c).
 */


#ifndef _NGX_HTTP_CAST_CONF_ROUTES_H_INCLUDED_
#define _NGX_HTTP_CAST_CONF_ROUTES_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


#define NGX_HTTP_CAST_CONF_ROUTE_CONFERENCE  0   /* .../conference */
#define NGX_HTTP_CAST_CONF_ROUTE_JOIN        1   /* .../conference/join */
#define NGX_HTTP_CAST_CONF_ROUTE_LEAD        2   /* .../conference/lead */
#define NGX_HTTP_CAST_CONF_ROUTE_LEAVE       3   /* .../conference/leave */
#define NGX_HTTP_CAST_CONF_ROUTE_TOPICS      4   /* {base}/conference-topics */
#define NGX_HTTP_CAST_CONF_ROUTE_G1_TOPICS   5   /* cast_topics */


/*
 * A conference route: "route" as the caller found it in the URI.  A
 * NGX_DONE return means the hub holds the request.
 */
ngx_int_t ngx_http_cast_conf_routes_handler(ngx_http_request_t *r,
    ngx_uint_t route);

/* the route of "rest", what follows ".../conference" (NGX_DECLINED: none) */
ngx_int_t ngx_http_cast_conf_route(ngx_str_t *rest, ngx_uint_t *route);


#endif /* _NGX_HTTP_CAST_CONF_ROUTES_H_INCLUDED_ */
