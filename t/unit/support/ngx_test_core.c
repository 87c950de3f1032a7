
/*
 * The few nginx core functions that the module's pure files call, for
 * builds outside nginx against nginx's real headers (t/unit, fuzz).
 *
 * ngx_vslprintf() follows nginx 1.22's grammar and output for the
 * conversions listed below and stops the process on any other, so that a
 * format the module starts to use is not silently mis-rendered here.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <stdio.h>
#include <stdlib.h>

#include "ngx_test_core.h"


ngx_uint_t  ngx_test_alloc_fail;
ngx_uint_t  ngx_test_allocs;
ngx_uint_t  ngx_test_log_lines;

static ngx_time_t   ngx_test_time;
static ngx_log_t    ngx_test_log;
static ngx_cycle_t  ngx_test_cycle;

volatile ngx_time_t   *ngx_cached_time = &ngx_test_time;
volatile ngx_cycle_t  *ngx_cycle = &ngx_test_cycle;


static void *ngx_test_alloc(ngx_pool_t *pool, size_t size);
static u_char *ngx_test_num(u_char *buf, u_char *last, uint64_t ui64,
    u_char zero, ngx_uint_t hex, ngx_uint_t width);


void
ngx_test_core_init(void)
{
    ngx_test_time.sec = 1796278339;     /* 2026-12-03T06:12:19Z */
    ngx_test_time.msec = 123;

    ngx_test_log.log_level = NGX_LOG_DEBUG;
    ngx_test_cycle.log = &ngx_test_log;
}


/* pools: every allocation is its own malloc() block, listed in "large" */

ngx_pool_t *
ngx_create_pool(size_t size, ngx_log_t *log)
{
    ngx_pool_t  *pool;

    pool = calloc(1, sizeof(ngx_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->log = log;

    return pool;
}


void
ngx_destroy_pool(ngx_pool_t *pool)
{
    ngx_pool_large_t  *l, *next;

    for (l = pool->large; l; l = next) {
        next = l->next;
        free(l->alloc);
        free(l);
    }

    free(pool);
}


static void *
ngx_test_alloc(ngx_pool_t *pool, size_t size)
{
    ngx_pool_large_t  *l;

    ngx_test_allocs++;

    if (ngx_test_alloc_fail && --ngx_test_alloc_fail == 0) {
        return NULL;
    }

    l = malloc(sizeof(ngx_pool_large_t));
    if (l == NULL) {
        return NULL;
    }

    /* malloc(0) may give NULL; nginx's pools never do */

    l->alloc = malloc(size ? size : 1);
    if (l->alloc == NULL) {
        free(l);
        return NULL;
    }

    l->next = pool->large;
    pool->large = l;

    return l->alloc;
}


void *
ngx_palloc(ngx_pool_t *pool, size_t size)
{
    return ngx_test_alloc(pool, size);
}


void *
ngx_pnalloc(ngx_pool_t *pool, size_t size)
{
    return ngx_test_alloc(pool, size);
}


void *
ngx_pcalloc(ngx_pool_t *pool, size_t size)
{
    void  *p;

    p = ngx_test_alloc(pool, size);
    if (p) {
        memset(p, 0, size);
    }

    return p;
}


ngx_int_t
ngx_pfree(ngx_pool_t *pool, void *p)
{
    ngx_pool_large_t  *l;

    for (l = pool->large; l; l = l->next) {
        if (p == l->alloc) {
            free(l->alloc);
            l->alloc = NULL;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


void
ngx_strlow(u_char *dst, u_char *src, size_t n)
{
    while (n) {
        *dst = ngx_tolower(*src);
        dst++;
        src++;
        n--;
    }
}


ngx_int_t
ngx_strncasecmp(u_char *s1, u_char *s2, size_t n)
{
    ngx_uint_t  c1, c2;

    /* ngx_tolower() evaluates its argument more than once */

    while (n) {
        c1 = (ngx_uint_t) *s1++;
        c2 = (ngx_uint_t) *s2++;

        c1 = ngx_tolower(c1);
        c2 = ngx_tolower(c2);

        if (c1 == c2) {
            if (c1) {
                n--;
                continue;
            }

            return 0;
        }

        return c1 - c2;
    }

    return 0;
}


/* as nginx's: n is the length of s2 minus 1 */

u_char *
ngx_strlcasestrn(u_char *s1, u_char *last, u_char *s2, size_t n)
{
    ngx_uint_t  c1, c2;

    c2 = (ngx_uint_t) *s2++;
    c2 = (c2 >= 'A' && c2 <= 'Z') ? (c2 | 0x20) : c2;
    last -= n;

    do {
        do {
            if (s1 >= last) {
                return NULL;
            }

            c1 = (ngx_uint_t) *s1++;
            c1 = (c1 >= 'A' && c1 <= 'Z') ? (c1 | 0x20) : c1;

        } while (c1 != c2);

    } while (ngx_strncasecmp(s1, s2, n) != 0);

    return --s1;
}


/* the heap, with the same failure injection as the pools */

void *
ngx_alloc(size_t size, ngx_log_t *log)
{
    ngx_test_allocs++;

    if (ngx_test_alloc_fail && --ngx_test_alloc_fail == 0) {
        return NULL;
    }

    return malloc(size ? size : 1);
}


u_char *
ngx_hex_dump(u_char *dst, u_char *src, size_t len)
{
    static u_char  hex[] = "0123456789abcdef";

    while (len--) {
        *dst++ = hex[*src >> 4];
        *dst++ = hex[*src++ & 0xf];
    }

    return dst;
}


void
ngx_explicit_memzero(void *buf, size_t n)
{
    volatile u_char  *p;

    for (p = buf; n; n--) {
        *p++ = 0;
    }
}


/*
 * nginx's ngx_decode_base64url(): the alphabet A-Z a-z 0-9 - _, decoding
 * stops at "=", a length of 4n + 1 characters is an error
 */

ngx_int_t
ngx_decode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    u_char      *d, c;
    size_t       len, i;
    uint32_t     acc;
    ngx_uint_t   bits;

    for (len = 0; len < src->len; len++) {
        if (src->data[len] == '=') {
            break;
        }

        c = src->data[len];

        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
        {
            return NGX_ERROR;
        }
    }

    if (len % 4 == 1) {
        return NGX_ERROR;
    }

    d = dst->data;
    acc = 0;
    bits = 0;

    for (i = 0; i < len; i++) {
        c = src->data[i];

        acc = (acc << 6)
              | (uint32_t) ((c >= 'A' && c <= 'Z') ? c - 'A'
                            : (c >= 'a' && c <= 'z') ? c - 'a' + 26
                            : (c >= '0' && c <= '9') ? c - '0' + 52
                            : (c == '-') ? 62 : 63);
        bits += 6;

        if (bits >= 8) {
            bits -= 8;
            *d++ = (u_char) (acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }

    dst->len = d - dst->data;

    return NGX_OK;
}


/* nginx's ngx_encode_base64url(): no padding; dst has room */

void
ngx_encode_base64url(ngx_str_t *dst, ngx_str_t *src)
{
    u_char   *d, *s;
    size_t    len;

    static u_char  tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    s = src->data;
    len = src->len;
    d = dst->data;

    while (len > 2) {
        *d++ = tab[(s[0] >> 2) & 0x3f];
        *d++ = tab[((s[0] & 3) << 4) | (s[1] >> 4)];
        *d++ = tab[((s[1] & 0x0f) << 2) | (s[2] >> 6)];
        *d++ = tab[s[2] & 0x3f];

        s += 3;
        len -= 3;
    }

    if (len) {
        *d++ = tab[(s[0] >> 2) & 0x3f];

        if (len == 1) {
            *d++ = tab[(s[0] & 3) << 4];

        } else {
            *d++ = tab[((s[0] & 3) << 4) | (s[1] >> 4)];
            *d++ = tab[(s[1] & 0x0f) << 2];
        }
    }

    dst->len = d - dst->data;
}


/* nginx's ngx_gmtime(): the full year and a month 1..12 */

void
ngx_gmtime(time_t t, ngx_tm_t *tp)
{
    struct tm  tm;

    (void) gmtime_r(&t, &tm);

    *tp = tm;
    tp->ngx_tm_year = tm.tm_year + 1900;
    tp->ngx_tm_mon = tm.tm_mon + 1;
}


void
ngx_log_error_core(ngx_uint_t level, ngx_log_t *log, ngx_err_t err,
    const char *fmt, ...)
{
    u_char   line[2048], *p;
    va_list  args;

    va_start(args, fmt);
    p = ngx_vslprintf(line, line + sizeof(line) - 1, fmt, args);
    va_end(args);

    *p = '\0';
    ngx_test_log_lines++;

    if (getenv("NGX_TEST_LOG")) {
        fprintf(stderr, "log[%lu]: %s\n", (unsigned long) level, line);
    }
}


u_char * ngx_cdecl
ngx_sprintf(u_char *buf, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, (void *) -1, fmt, args);
    va_end(args);

    return p;
}


u_char * ngx_cdecl
ngx_snprintf(u_char *buf, size_t max, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + max, fmt, args);
    va_end(args);

    return p;
}


u_char * ngx_cdecl
ngx_slprintf(u_char *buf, u_char *last, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, last, fmt, args);
    va_end(args);

    return p;
}


/* %[0][width][u][m][x|X][*](V|s|O|T|M|z|i|d|l|D|L|p|c|Z|N|%) */

u_char *
ngx_vslprintf(u_char *buf, u_char *last, const char *fmt, va_list args)
{
    u_char       *p, zero;
    size_t        len, slen;
    int64_t       i64;
    uint64_t      ui64;
    ngx_msec_t    ms;
    ngx_str_t    *v;
    ngx_uint_t    width, sign, hex, max_width;

    while (*fmt && buf < last) {

        if (*fmt != '%') {
            *buf++ = *fmt++;
            continue;
        }

        i64 = 0;
        ui64 = 0;

        zero = (u_char) ((*++fmt == '0') ? '0' : ' ');
        width = 0;
        sign = 1;
        hex = 0;
        max_width = 0;
        slen = (size_t) -1;

        while (*fmt >= '0' && *fmt <= '9') {
            width = width * 10 + (*fmt++ - '0');
        }

        for ( ;; ) {
            switch (*fmt) {

            case 'u':
                sign = 0;
                fmt++;
                continue;

            case 'm':
                max_width = 1;
                fmt++;
                continue;

            case 'X':
                hex = 2;
                sign = 0;
                fmt++;
                continue;

            case 'x':
                hex = 1;
                sign = 0;
                fmt++;
                continue;

            case '*':
                slen = va_arg(args, size_t);
                fmt++;
                continue;

            default:
                break;
            }

            break;
        }

        switch (*fmt) {

        case 'V':
        case 's':
            if (*fmt == 'V') {
                v = va_arg(args, ngx_str_t *);
                p = v->data;
                len = v->len;

            } else {
                p = va_arg(args, u_char *);
                len = slen;
            }

            if (hex) {
                fprintf(stderr, "ngx_test_core: %%x%c is not supported\n",
                        *fmt);
                abort();
            }

            if (len == (size_t) -1) {
                while (*p && buf < last) {
                    *buf++ = *p++;
                }

            } else {
                len = ngx_min((size_t) (last - buf), len);
                buf = ngx_cpymem(buf, p, len);
            }

            fmt++;
            continue;

        case 'O':
            i64 = (int64_t) va_arg(args, off_t);
            sign = 1;
            break;

        case 'T':
            i64 = (int64_t) va_arg(args, time_t);
            sign = 1;
            break;

        case 'M':
            ms = (ngx_msec_t) va_arg(args, ngx_msec_t);
            if ((ngx_msec_int_t) ms == -1) {
                sign = 1;
                i64 = -1;

            } else {
                sign = 0;
                ui64 = (uint64_t) ms;
            }

            break;

        case 'z':
            if (sign) {
                i64 = (int64_t) va_arg(args, ssize_t);

            } else {
                ui64 = (uint64_t) va_arg(args, size_t);
            }

            break;

        case 'i':
            if (sign) {
                i64 = (int64_t) va_arg(args, ngx_int_t);

            } else {
                ui64 = (uint64_t) va_arg(args, ngx_uint_t);
            }

            if (max_width) {
                width = NGX_INT_T_LEN;
            }

            break;

        case 'd':
            if (sign) {
                i64 = (int64_t) va_arg(args, int);

            } else {
                ui64 = (uint64_t) va_arg(args, u_int);
            }

            break;

        case 'l':
            if (sign) {
                i64 = (int64_t) va_arg(args, long);

            } else {
                ui64 = (uint64_t) va_arg(args, u_long);
            }

            break;

        case 'D':
            if (sign) {
                i64 = (int64_t) va_arg(args, int32_t);

            } else {
                ui64 = (uint64_t) va_arg(args, uint32_t);
            }

            break;

        case 'L':
            if (sign) {
                i64 = va_arg(args, int64_t);

            } else {
                ui64 = va_arg(args, uint64_t);
            }

            break;

        case 'p':
            ui64 = (uintptr_t) va_arg(args, void *);
            hex = 2;
            sign = 0;
            zero = '0';
            width = 2 * sizeof(void *);
            break;

        case 'c':
            *buf++ = (u_char) (va_arg(args, int) & 0xff);
            fmt++;
            continue;

        case 'Z':
            *buf++ = '\0';
            fmt++;
            continue;

        case 'N':
            *buf++ = LF;
            fmt++;
            continue;

        case '%':
            *buf++ = '%';
            fmt++;
            continue;

        default:
            fprintf(stderr, "ngx_test_core: conversion %%%c is not "
                    "supported\n", *fmt);
            abort();
        }

        if (sign) {
            if (i64 < 0) {
                *buf++ = '-';
                ui64 = (uint64_t) 0 - (uint64_t) i64;

            } else {
                ui64 = (uint64_t) i64;
            }
        }

        buf = ngx_test_num(buf, last, ui64, zero, hex, width);

        fmt++;
    }

    return buf;
}


static u_char *
ngx_test_num(u_char *buf, u_char *last, uint64_t ui64, u_char zero,
    ngx_uint_t hex, ngx_uint_t width)
{
    u_char         *p, temp[NGX_INT64_LEN + 1];
    size_t          len;

    static u_char   lower[] = "0123456789abcdef";
    static u_char   upper[] = "0123456789ABCDEF";

    p = temp + NGX_INT64_LEN;

    if (hex == 0) {
        do {
            *--p = (u_char) (ui64 % 10 + '0');
        } while (ui64 /= 10);

    } else {
        do {
            *--p = (hex == 1 ? lower : upper)[ui64 & 0xf];
        } while (ui64 >>= 4);
    }

    len = (temp + NGX_INT64_LEN) - p;

    while (len++ < width && buf < last) {
        *buf++ = zero;
    }

    len = (temp + NGX_INT64_LEN) - p;

    if (buf + len > last) {
        len = last - buf;
    }

    return ngx_cpymem(buf, p, len);
}
