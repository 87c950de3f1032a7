
/*
 * ngx_http_cast_module: the fields of subscribe, unsubscribe and reset
 * requests, from an application/x-www-form-urlencoded body or from a JSON
 * object.  Pure functions over byte ranges: no I/O.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"


typedef struct {
    ngx_str_t                  name;
    ngx_http_cast_field_e      field;
} ngx_http_cast_field_name_t;


static ngx_int_t ngx_http_cast_field_lookup(u_char *name, size_t len);
static ngx_int_t ngx_http_cast_form_decode(u_char *src, size_t len,
    u_char *dst, size_t *out);
static ngx_int_t ngx_http_cast_field_store(ngx_pool_t *pool,
    ngx_http_cast_fields_t *f, ngx_int_t field, u_char *name, size_t name_len,
    u_char *value, size_t len, ngx_str_t *err);
static void ngx_http_cast_trim(ngx_str_t *s);


static ngx_http_cast_field_name_t  ngx_http_cast_field_names[] = {
    { ngx_string("hub.mode"), NGX_HTTP_CAST_F_MODE },
    { ngx_string("hub.channel.type"), NGX_HTTP_CAST_F_CHANNEL_TYPE },
    { ngx_string("hub.topic"), NGX_HTTP_CAST_F_TOPIC },
    { ngx_string("hub.events"), NGX_HTTP_CAST_F_EVENTS },
    { ngx_string("hub.lease_seconds"), NGX_HTTP_CAST_F_LEASE },
    { ngx_string("hub.lease"), NGX_HTTP_CAST_F_LEASE },
    { ngx_string("hub.channel.endpoint"), NGX_HTTP_CAST_F_ENDPOINT },
    { ngx_string("hub.callback"), NGX_HTTP_CAST_F_CALLBACK },
    { ngx_string("subscriber.name"), NGX_HTTP_CAST_F_NAME },
    { ngx_string("subscriber.product.name"), NGX_HTTP_CAST_F_PRODUCT_NAME },
    { ngx_string("subscriber.product.version"),
      NGX_HTTP_CAST_F_PRODUCT_VERSION },
    { ngx_string("subscriber.actors"), NGX_HTTP_CAST_F_ACTORS },
    { ngx_string("subscriber.client_info"), NGX_HTTP_CAST_F_CLIENT_INFO },
    { ngx_null_string, 0 }
};


ngx_int_t
ngx_http_cast_form_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_fields_t *f, ngx_str_t *err)
{
    u_char     *end, *pair, *eq, *amp, *name;
    size_t      name_len;
    ngx_int_t   field;

    ngx_memzero(f, sizeof(ngx_http_cast_fields_t));

    end = p + len;

    for (pair = p; pair < end; pair = amp + 1) {

        amp = ngx_strlchr(pair, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        if (amp == pair) {
            continue;
        }

        eq = ngx_strlchr(pair, amp, '=');
        if (eq == NULL) {
            eq = amp;
        }

        /* field names are plain ASCII; decode them into the pool */

        name = ngx_pnalloc(pool, eq - pair + 1);
        if (name == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_cast_form_decode(pair, eq - pair, name, &name_len)
            != NGX_OK)
        {
            ngx_str_set(err, "malformed percent-encoding in a form field "
                             "name");
            return NGX_DECLINED;
        }

        field = ngx_http_cast_field_lookup(name, name_len);
        if (field == NGX_DECLINED) {
            continue;
        }

        if (ngx_http_cast_field_store(pool, f, field, name, name_len,
                                      eq < amp ? eq + 1 : amp,
                                      eq < amp ? amp - eq - 1 : 0, err)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_cast_fields_from_json(ngx_pool_t *pool, json_t *obj,
    ngx_http_cast_fields_t *f, ngx_str_t *err)
{
    u_char      *v, buf[NGX_INT64_LEN];
    size_t       len;
    json_t      *value;
    ngx_int_t    field;
    const char  *key;

    ngx_memzero(f, sizeof(ngx_http_cast_fields_t));

    json_object_foreach(obj, key, value) {

        field = ngx_http_cast_field_lookup((u_char *) key, ngx_strlen(key));
        if (field == NGX_DECLINED) {
            continue;
        }

        if (json_is_string(value)) {
            v = (u_char *) json_string_value(value);
            len = json_string_length(value);

        } else if (json_is_integer(value) && field == NGX_HTTP_CAST_F_LEASE) {
            v = buf;
            len = ngx_sprintf(buf, "%L", (int64_t) json_integer_value(value))
                  - buf;

        } else {
            err->data = ngx_pnalloc(pool, ngx_strlen(key) + 32);
            if (err->data == NULL) {
                return NGX_ERROR;
            }

            err->len = ngx_sprintf(err->data, "\"%s\" must be a string", key)
                       - err->data;
            return NGX_DECLINED;
        }

        /* JSON values are not percent-encoded: store them as they are */

        if (ngx_http_cast_field_store(pool, f, field, (u_char *) key,
                                      ngx_strlen(key), NULL, 0, err)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        f->value[field].data = ngx_pnalloc(pool, len);
        if (f->value[field].data == NULL && len) {
            return NGX_ERROR;
        }

        ngx_memcpy(f->value[field].data, v, len);
        f->value[field].len = len;
        ngx_http_cast_trim(&f->value[field]);
    }

    return NGX_OK;
}


const char *
ngx_http_cast_field_name(ngx_uint_t field)
{
    ngx_http_cast_field_name_t  *fn;

    for (fn = ngx_http_cast_field_names; fn->name.len; fn++) {
        if (fn->field == field) {
            return (const char *) fn->name.data;
        }
    }

    return "a field";
}


static ngx_int_t
ngx_http_cast_field_lookup(u_char *name, size_t len)
{
    ngx_http_cast_field_name_t  *fn;

    for (fn = ngx_http_cast_field_names; fn->name.len; fn++) {
        if (fn->name.len == len && ngx_strncmp(fn->name.data, name, len) == 0)
        {
            return fn->field;
        }
    }

    return NGX_DECLINED;
}


/*
 * Records one field; "value" is percent-encoded form data, or NULL when
 * the caller stores the value itself.
 */

static ngx_int_t
ngx_http_cast_field_store(ngx_pool_t *pool, ngx_http_cast_fields_t *f,
    ngx_int_t field, u_char *name, size_t name_len, u_char *value, size_t len,
    ngx_str_t *err)
{
    u_char  *dst;
    size_t   n;

    if (f->set[field]) {
        err->data = ngx_pnalloc(pool, name_len + 64);
        if (err->data == NULL) {
            ngx_str_set(err, "a field is given more than once");
            return NGX_DECLINED;
        }

        err->len = ngx_sprintf(err->data, "\"%*s\" is given more than once%s",
                               name_len, name,
                               field == NGX_HTTP_CAST_F_LEASE
                               ? " (hub.lease and hub.lease_seconds are one "
                                 "field)" : "")
                   - err->data;
        return NGX_DECLINED;
    }

    f->set[field] = 1;

    if (value == NULL) {
        return NGX_OK;
    }

    if (len > NGX_HTTP_CAST_MAX_FIELD) {
        err->data = ngx_pnalloc(pool, name_len + 64);
        if (err->data == NULL) {
            ngx_str_set(err, "a field is too long");
            return NGX_DECLINED;
        }

        err->len = ngx_sprintf(err->data, "\"%*s\" is too long",
                               name_len, name)
                   - err->data;
        return NGX_DECLINED;
    }

    dst = ngx_pnalloc(pool, len + 1);
    if (dst == NULL) {
        ngx_str_set(err, "out of memory");
        return NGX_DECLINED;
    }

    if (ngx_http_cast_form_decode(value, len, dst, &n) != NGX_OK) {
        err->data = ngx_pnalloc(pool, name_len + 64);
        if (err->data == NULL) {
            ngx_str_set(err, "malformed percent-encoding");
            return NGX_DECLINED;
        }

        err->len = ngx_sprintf(err->data,
                               "malformed percent-encoding in \"%*s\"",
                               name_len, name)
                   - err->data;
        return NGX_DECLINED;
    }

    f->value[field].data = dst;
    f->value[field].len = n;
    ngx_http_cast_trim(&f->value[field]);

    return NGX_OK;
}


/* "+" is a space, "%XX" a byte; a stray or short "%" is an error */

static ngx_int_t
ngx_http_cast_form_decode(u_char *src, size_t len, u_char *dst, size_t *out)
{
    u_char  *end, *d, c, hi, lo;

    end = src + len;
    d = dst;

    while (src < end) {
        c = *src++;

        if (c == '+') {
            *d++ = ' ';
            continue;
        }

        if (c != '%') {
            *d++ = c;
            continue;
        }

        if (end - src < 2) {
            return NGX_ERROR;
        }

        hi = src[0] | 0x20;
        lo = src[1] | 0x20;

        if (!((hi >= '0' && hi <= '9') || (hi >= 'a' && hi <= 'f'))
            || !((lo >= '0' && lo <= '9') || (lo >= 'a' && lo <= 'f')))
        {
            return NGX_ERROR;
        }

        hi = (hi >= 'a') ? hi - 'a' + 10 : hi - '0';
        lo = (lo >= 'a') ? lo - 'a' + 10 : lo - '0';

        *d++ = (u_char) ((hi << 4) | lo);
        src += 2;
    }

    *out = d - dst;

    return NGX_OK;
}


static void
ngx_http_cast_trim(ngx_str_t *s)
{
    while (s->len && (s->data[0] == ' ' || s->data[0] == '\t'
                      || s->data[0] == '\r' || s->data[0] == '\n'))
    {
        s->data++;
        s->len--;
    }

    while (s->len && (s->data[s->len - 1] == ' '
                      || s->data[s->len - 1] == '\t'
                      || s->data[s->len - 1] == '\r'
                      || s->data[s->len - 1] == '\n'))
    {
        s->len--;
    }
}
