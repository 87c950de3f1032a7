
/*
 * Minimal stand-in for nginx's <ngx_core.h>: the status codes (with nginx's
 * values), ngx_str_t and the memory macros used by the frame codec and
 * the text checks.
 */


#ifndef _NGX_CORE_H_INCLUDED_
#define _NGX_CORE_H_INCLUDED_


#include <ngx_config.h>


#define NGX_OK                 0
#define NGX_ERROR             -1
#define NGX_AGAIN             -2
#define NGX_DONE              -4
#define NGX_DECLINED          -5


typedef struct {
    size_t      len;
    u_char     *data;
} ngx_str_t;


#define ngx_memzero(buf, n)       (void) memset(buf, 0, n)
#define ngx_memcpy(dst, src, n)   (void) memcpy(dst, src, n)
#define ngx_cpymem(dst, src, n)   (((u_char *) memcpy(dst, src, n)) + (n))
#define ngx_memcmp(s1, s2, n)    memcmp(s1, s2, n)

/* the shared frame objects: plain malloc outside nginx */
#define ngx_cycle                 NULL
#define ngx_alloc(size, log)      malloc(size)
#define ngx_free                  free


#endif /* _NGX_CORE_H_INCLUDED_ */
