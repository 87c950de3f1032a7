
/*
 * ngx_http_cast_module: what travels through Redis (see the header).
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast_wire.h"


static ngx_int_t ngx_http_cast_wire_number(u_char *p, size_t len,
    uint64_t *n);


ngx_int_t
ngx_http_cast_wire_stream_id(u_char *p, size_t len, uint64_t *ms,
    uint64_t *seq)
{
    u_char  *dash;

    dash = ngx_strlchr(p, p + len, '-');
    if (dash == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_cast_wire_number(p, dash - p, ms) != NGX_OK
        || ngx_http_cast_wire_number(dash + 1, p + len - dash - 1, seq)
           != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_cast_wire_split(u_char *p, size_t len, ngx_http_cast_wire_t *w)
{
    u_char  *sp;

    sp = ngx_strlchr(p, p + len, ' ');
    if (sp == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_cast_wire_stream_id(p, sp - p, &w->ms, &w->seq) != NGX_OK) {
        return NGX_ERROR;
    }

    w->text.data = sp + 1;
    w->text.len = p + len - (sp + 1);

    return NGX_OK;
}


ngx_int_t
ngx_http_cast_wire_event(ngx_str_t *text, ngx_http_cast_message_t *m)
{
    u_char    *p, *last, *colon;
    uint64_t   n;

    p = text->data;
    last = p + text->len;

    colon = ngx_strlchr(p, last, ':');
    if (colon == NULL
        || ngx_http_cast_wire_number(p, colon - p, &n) != NGX_OK
        || n > (uint64_t) (last - colon - 1))
    {
        return NGX_ERROR;
    }

    ngx_memzero(m, sizeof(ngx_http_cast_message_t));

    m->kind = NGX_HTTP_CAST_WIRE_EVENT;
    m->name.data = colon + 1;
    m->name.len = (size_t) n;
    m->json.data = m->name.data + n;
    m->json.len = last - m->json.data;

    return NGX_OK;
}


ngx_int_t
ngx_http_cast_wire_control(ngx_str_t *text, ngx_http_cast_message_t *m)
{
    u_char      *p, *last, *f[5];
    uint64_t     n;
    ngx_uint_t   i;

    p = text->data;
    last = p + text->len;

    ngx_memzero(m, sizeof(ngx_http_cast_message_t));

    if (last - p > 4 && ngx_strncmp(p, "end ", 4) == 0) {
        p += 4;

        f[0] = ngx_strlchr(p, last, ' ');
        if (f[0] == NULL || f[0] == p) {
            return NGX_ERROR;
        }

        m->kind = NGX_HTTP_CAST_WIRE_END;
        m->id.data = p;
        m->id.len = f[0] - p;
        m->reason.data = f[0] + 1;
        m->reason.len = last - m->reason.data;

        return NGX_OK;
    }

    if (last - p > 6 && ngx_strncmp(p, "renew ", 6) == 0) {
        p += 6;

        /* <id> <expires> <lease> <grant> <events> */

        for (i = 0; i < 4; i++) {
            f[i] = p;
            p = ngx_strlchr(p, last, ' ');

            if (p == NULL || p == f[i]) {
                return NGX_ERROR;
            }

            p++;
        }

        f[4] = p;

        /* cast_auth: "a<writable>" or "n" */

        if (f[3][0] != 'a' && !(f[3][0] == 'n' && f[4] - f[3] == 2)) {
            return NGX_ERROR;
        }

        m->auth = (f[3][0] == 'a');
        m->writable.data = f[3] + 1;
        m->writable.len = f[4] - f[3] - 2;

        m->kind = NGX_HTTP_CAST_WIRE_RENEW;
        m->id.data = f[0];
        m->id.len = f[1] - f[0] - 1;

        if (ngx_http_cast_wire_number(f[1], f[2] - f[1] - 1, &n) != NGX_OK
            || n > 0x7fffffffffffffffULL)
        {
            return NGX_ERROR;
        }

        m->expires = (int64_t) n;

        if (ngx_http_cast_wire_number(f[2], f[3] - f[2] - 1, &n) != NGX_OK
            || n > (uint64_t) NGX_MAX_INT32_VALUE)
        {
            return NGX_ERROR;
        }

        m->lease = (time_t) n;
        m->events.data = f[4];
        m->events.len = last - f[4];

        return NGX_OK;
    }

    return NGX_ERROR;
}


u_char *
ngx_http_cast_wire_format_event(u_char *buf, ngx_str_t *id, ngx_str_t *name,
    ngx_str_t *json)
{
    buf = ngx_cpymem(buf, id->data, id->len);
    *buf++ = ' ';
    buf = ngx_sprintf(buf, "%uz:", name->len);
    buf = ngx_cpymem(buf, name->data, name->len);

    return ngx_cpymem(buf, json->data, json->len);
}


/* decimal digits only, at most 19 of them (no overflow) */

static ngx_int_t
ngx_http_cast_wire_number(u_char *p, size_t len, uint64_t *n)
{
    size_t  i;

    if (len == 0 || len > 19) {
        return NGX_ERROR;
    }

    *n = 0;

    for (i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return NGX_ERROR;
        }

        *n = *n * 10 + (p[i] - '0');
    }

    return NGX_OK;
}
