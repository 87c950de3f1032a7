
/*
 * ngx_http_cast_module: small tools every layer uses: random bytes from
 * the kernel, UUIDs, timestamps.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <sys/random.h>

#include "ngx_http_cast_util.h"


/*
 * Bytes from the kernel's CSPRNG, read 4 KB at a time: one getrandom()
 * per 256 ids instead of one per id.  The pool is per process (workers
 * fill it after the fork), and a byte is never handed out twice.
 */

ngx_int_t
ngx_http_cast_random(u_char *buf, size_t len)
{
    size_t          n;
    ssize_t         got;

    static u_char   pool[4096];
    static size_t   pos, filled;

    while (len) {

        if (pos == filled) {
            got = getrandom(pool, sizeof(pool), 0);

            if (got <= 0) {
                if (got == -1 && ngx_errno == NGX_EINTR) {
                    continue;
                }

                ngx_log_error(NGX_LOG_ALERT, ngx_cycle->log, ngx_errno,
                              "cast: getrandom() failed");
                return NGX_ERROR;
            }

            pos = 0;
            filled = got;
        }

        n = ngx_min(len, filled - pos);

        ngx_memcpy(buf, pool + pos, n);
        ngx_explicit_memzero(pool + pos, n);

        pos += n;
        buf += n;
        len -= n;
    }

    return NGX_OK;
}


/* formats 16 random bytes as a version 4 UUID */

void
ngx_http_cast_uuid(u_char *out, u_char *r)
{
    r[6] = (r[6] & 0x0f) | 0x40;
    r[8] = (r[8] & 0x3f) | 0x80;

    out = ngx_hex_dump(out, r, 4);
    *out++ = '-';
    out = ngx_hex_dump(out, r + 4, 2);
    *out++ = '-';
    out = ngx_hex_dump(out, r + 6, 2);
    *out++ = '-';
    out = ngx_hex_dump(out, r + 8, 2);
    *out++ = '-';
    (void) ngx_hex_dump(out, r + 10, 6);
}


ngx_int_t
ngx_http_cast_new_uuid(u_char *out)
{
    u_char  r[16];

    if (ngx_http_cast_random(r, sizeof(r)) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_http_cast_uuid(out, r);

    return NGX_OK;
}


/*
 * UTC, ISO 8601 with milliseconds: 2026-12-03T06:12:19.123Z; the date
 * and time up to the second are formatted once a second.
 */

void
ngx_http_cast_timestamp(u_char *out)
{
    ngx_tm_t     tm;
    ngx_uint_t   ms;
    ngx_time_t  *tp;

    static time_t  sec = -1;
    static u_char  date[sizeof("2026-12-03T06:12:19.") - 1];

    tp = ngx_timeofday();

    if (tp->sec != sec) {
        ngx_gmtime(tp->sec, &tm);

        (void) ngx_sprintf(date, "%4d-%02d-%02dT%02d:%02d:%02d.",
                           tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                           tm.ngx_tm_hour, tm.ngx_tm_min, tm.ngx_tm_sec);
        sec = tp->sec;
    }

    out = ngx_cpymem(out, date, sizeof(date));

    ms = tp->msec;
    *out++ = (u_char) ('0' + ms / 100);
    *out++ = (u_char) ('0' + ms / 10 % 10);
    *out++ = (u_char) ('0' + ms % 10);
    *out = 'Z';
}
