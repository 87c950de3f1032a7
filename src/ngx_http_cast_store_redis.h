
/*
 * ngx_http_cast_module: the Redis store (src/ngx_http_cast_store.h).
 */


#ifndef _NGX_HTTP_CAST_STORE_REDIS_H_INCLUDED_
#define _NGX_HTTP_CAST_STORE_REDIS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast_store.h"


ngx_http_cast_store_t *ngx_http_cast_store_redis_create(ngx_cycle_t *cycle,
    ngx_http_cast_redis_conf_t *conf, ngx_http_cast_main_conf_t *cmcf);


#endif /* _NGX_HTTP_CAST_STORE_REDIS_H_INCLUDED_ */
