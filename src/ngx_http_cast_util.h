
/*
 * ngx_http_cast_module: random ids, UUIDs, timestamps, event release.
 */


#ifndef _NGX_HTTP_CAST_UTIL_H_INCLUDED_
#define _NGX_HTTP_CAST_UTIL_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>


#define NGX_HTTP_CAST_UUID_LEN          36
#define NGX_HTTP_CAST_TIMESTAMP_LEN     24


ngx_int_t ngx_http_cast_random(u_char *buf, size_t len);
void ngx_http_cast_uuid(u_char *out, u_char *random16);
ngx_int_t ngx_http_cast_new_uuid(u_char *out);
void ngx_http_cast_timestamp(u_char *out);


/* an event of ours goes away: neither its timer nor its posting remains */

static ngx_inline void
ngx_http_cast_event_cancel(ngx_event_t *ev)
{
    if (ev->timer_set) {
        ngx_del_timer(ev);
    }

    if (ev->posted) {
        ngx_delete_posted_event(ev);
    }
}


#endif /* _NGX_HTTP_CAST_UTIL_H_INCLUDED_ */
