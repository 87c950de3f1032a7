
/*
 * ngx_http_cast_module: the WebSocket channel (src/ngx_http_cast_ws.c).
 */


#ifndef _NGX_HTTP_CAST_WS_H_INCLUDED_
#define _NGX_HTTP_CAST_WS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_int_t ngx_http_cast_ws_handler(ngx_http_request_t *r);
/*
 * worker start: with cast_io_uring on, the fan-out's writes go through
 * io_uring when the kernel allows it (otherwise writev(), logged once)
 */
ngx_int_t ngx_http_cast_ws_init_process(ngx_cycle_t *cycle,
    ngx_flag_t io_uring);
/* worker exit: every socket is closed now, with 1001 */
void ngx_http_cast_ws_shutdown_all(void);


#endif /* _NGX_HTTP_CAST_WS_H_INCLUDED_ */
