
/*
 * ngx_http_cast_module: the fields of subscribe, unsubscribe and reset
 * requests, from an application/x-www-form-urlencoded body or from a JSON
 * object.  Pure functions over byte ranges: no I/O.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_text.h"


/*
 * The longest value of each field, in bytes as sent (after percent-
 * decoding, before trimming).  hub.topic and hub.events get the general
 * bound here and their own checks later (1024-byte topics, 256 names of
 * 256 bytes).
 */
#define NGX_HTTP_CAST_MAX_NAME         1024
#define NGX_HTTP_CAST_MAX_URL          4096
#define NGX_HTTP_CAST_MAX_INFO         4096


typedef struct {
    ngx_str_t                  name;
    ngx_http_cast_field_e      field;
    size_t                     max;
} ngx_http_cast_field_name_t;


static ngx_http_cast_field_name_t *ngx_http_cast_field_lookup(u_char *name,
    size_t len);
static ngx_int_t ngx_http_cast_field_value(ngx_pool_t *pool,
    ngx_http_cast_fields_t *f, ngx_http_cast_field_name_t *fn, u_char *value,
    size_t len, ngx_uint_t encoded, ngx_str_t *err);
static ngx_int_t ngx_http_cast_form_decode(u_char *src, size_t len,
    u_char *dst, size_t *out);
static ngx_int_t ngx_http_cast_hex(u_char c);
static ngx_int_t ngx_http_cast_form_error(ngx_pool_t *pool, ngx_str_t *err,
    const char *fmt, ...);
static void ngx_http_cast_trim(ngx_str_t *s);


static ngx_http_cast_field_name_t  ngx_http_cast_field_names[] = {
    { ngx_string("hub.mode"), NGX_HTTP_CAST_F_MODE,
      NGX_HTTP_CAST_MAX_NAME },
    { ngx_string("hub.channel.type"), NGX_HTTP_CAST_F_CHANNEL_TYPE,
      NGX_HTTP_CAST_MAX_NAME },
    { ngx_string("hub.topic"), NGX_HTTP_CAST_F_TOPIC,
      NGX_HTTP_CAST_MAX_FIELD },
    { ngx_string("hub.events"), NGX_HTTP_CAST_F_EVENTS,
      NGX_HTTP_CAST_MAX_FIELD },
    { ngx_string("hub.lease_seconds"), NGX_HTTP_CAST_F_LEASE,
      NGX_HTTP_CAST_MAX_NAME },
    { ngx_string("hub.lease"), NGX_HTTP_CAST_F_LEASE,
      NGX_HTTP_CAST_MAX_NAME },
    { ngx_string("hub.channel.endpoint"), NGX_HTTP_CAST_F_ENDPOINT,
      NGX_HTTP_CAST_MAX_URL },
    { ngx_string("hub.callback"), NGX_HTTP_CAST_F_CALLBACK,
      NGX_HTTP_CAST_MAX_URL },
    { ngx_string("subscriber.name"), NGX_HTTP_CAST_F_NAME,
      NGX_HTTP_CAST_MAX_NAME },
    { ngx_string("subscriber.product.name"), NGX_HTTP_CAST_F_PRODUCT_NAME,
      NGX_HTTP_CAST_MAX_NAME },
    { ngx_string("subscriber.product.version"),
      NGX_HTTP_CAST_F_PRODUCT_VERSION, NGX_HTTP_CAST_MAX_NAME },
    { ngx_string("subscriber.actors"), NGX_HTTP_CAST_F_ACTORS,
      NGX_HTTP_CAST_MAX_INFO },
    { ngx_string("subscriber.client_info"), NGX_HTTP_CAST_F_CLIENT_INFO,
      NGX_HTTP_CAST_MAX_INFO },
    { ngx_string("subscriber.latest_value"), NGX_HTTP_CAST_F_LATEST,
      NGX_HTTP_CAST_MAX_FIELD },
    { ngx_null_string, 0, 0 }
};


ngx_int_t
ngx_http_cast_form_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_fields_t *f, ngx_str_t *err)
{
    u_char                      *end, *pair, *eq, *amp, *name;
    size_t                       name_len;
    ngx_int_t                    rc;
    ngx_http_cast_field_name_t  *fn;

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

        fn = ngx_http_cast_field_lookup(name, name_len);
        if (fn == NULL) {
            continue;
        }

        rc = ngx_http_cast_field_value(pool, f, fn, eq < amp ? eq + 1 : amp,
                                       eq < amp ? amp - eq - 1 : 0, 1, err);
        if (rc != NGX_OK) {
            return rc;
        }
    }

    return NGX_OK;
}


/*
 * A form of the caller's fields: the same decoding and the same value
 * checks as above (UTF-8, no control characters, at most "max" bytes).
 */

ngx_int_t
ngx_http_cast_form_fields(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_form_field_t *fields, ngx_uint_t n, ngx_str_t *err)
{
    u_char                      *end, *pair, *eq, *amp, *name, *v, *dst;
    size_t                       name_len, vlen, dlen;
    ngx_uint_t                   i, rc;
    ngx_http_cast_form_field_t  *f;

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

        f = NULL;

        for (i = 0; i < n; i++) {
            if (fields[i].name.len == name_len
                && ngx_strncmp(fields[i].name.data, name, name_len) == 0)
            {
                f = &fields[i];
                break;
            }
        }

        if (f == NULL) {
            continue;
        }

        if (f->set) {
            return ngx_http_cast_form_error(pool, err,
                                            "\"%V\" is given more than once",
                                            &f->name);
        }

        f->set = 1;

        v = (eq < amp) ? eq + 1 : amp;
        vlen = (eq < amp) ? (size_t) (amp - eq - 1) : 0;

        /* a byte takes at most 3 as sent: no decoding of what is too long */

        if (vlen > 3 * f->max) {
            goto too_long;
        }

        dst = ngx_pnalloc(pool, vlen + 1);
        if (dst == NULL) {
            return NGX_ERROR;
        }

        if (ngx_http_cast_form_decode(v, vlen, dst, &dlen) != NGX_OK) {
            return ngx_http_cast_form_error(pool, err,
                                            "malformed percent-encoding in "
                                            "\"%V\"", &f->name);
        }

        if (dlen > f->max) {
            goto too_long;
        }

        f->value.data = dst;
        f->value.len = dlen;
        ngx_http_cast_trim(&f->value);

        rc = ngx_http_cast_text_field(f->value.data, f->value.len, f->max, 0);

        if (rc != NGX_HTTP_CAST_TEXT_OK) {
            return ngx_http_cast_form_error(pool, err, "%V %s", &f->name,
                                            ngx_http_cast_text_reason(rc));
        }
    }

    return NGX_OK;

too_long:

    return ngx_http_cast_form_error(pool, err, "\"%V\" is too long",
                                    &f->name);
}


ngx_int_t
ngx_http_cast_fields_from_json(ngx_pool_t *pool, json_t *obj,
    ngx_http_cast_fields_t *f, ngx_str_t *err)
{
    u_char                      *v, buf[NGX_INT64_LEN];
    size_t                       len;
    json_t                      *value;
    ngx_int_t                    rc;
    const char                  *key;
    ngx_http_cast_field_name_t  *fn;

    ngx_memzero(f, sizeof(ngx_http_cast_fields_t));

    json_object_foreach(obj, key, value) {

        fn = ngx_http_cast_field_lookup((u_char *) key, ngx_strlen(key));
        if (fn == NULL) {
            continue;
        }

        if (json_is_string(value)) {
            v = (u_char *) json_string_value(value);
            len = json_string_length(value);

        } else if (json_is_integer(value)
                   && fn->field == NGX_HTTP_CAST_F_LEASE)
        {
            v = buf;
            len = ngx_sprintf(buf, "%L", (int64_t) json_integer_value(value))
                  - buf;

        } else {
            return ngx_http_cast_form_error(pool, err,
                                            "\"%V\" must be a string",
                                            &fn->name);
        }

        /* JSON values are not percent-encoded: the same checks apply */

        rc = ngx_http_cast_field_value(pool, f, fn, v, len, 0, err);
        if (rc != NGX_OK) {
            return rc;
        }
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


static ngx_http_cast_field_name_t *
ngx_http_cast_field_lookup(u_char *name, size_t len)
{
    ngx_http_cast_field_name_t  *fn;

    for (fn = ngx_http_cast_field_names; fn->name.len; fn++) {
        if (fn->name.len == len && ngx_strncmp(fn->name.data, name, len) == 0)
        {
            return fn;
        }
    }

    return NULL;
}


/*
 * Records one field: its length, at most fn->max bytes as sent (decoded,
 * untrimmed), then the trimmed value: UTF-8 without control characters
 * (tabs allowed between the names of hub.events).  "encoded": form data,
 * percent-decoded here.
 */

static ngx_int_t
ngx_http_cast_field_value(ngx_pool_t *pool, ngx_http_cast_fields_t *f,
    ngx_http_cast_field_name_t *fn, u_char *value, size_t len,
    ngx_uint_t encoded, ngx_str_t *err)
{
    u_char      *dst;
    size_t       n;
    ngx_str_t   *v;
    ngx_uint_t   rc;

    if (f->set[fn->field]) {
        return ngx_http_cast_form_error(pool, err,
                                  "\"%V\" is given more than once%s",
                                  &fn->name,
                                  fn->field == NGX_HTTP_CAST_F_LEASE
                                  ? " (hub.lease and hub.lease_seconds are "
                                    "one field)" : "");
    }

    f->set[fn->field] = 1;

    /* a byte takes at most 3 as sent: no decoding of what is too long */

    if (len > (encoded ? 3 : 1) * fn->max) {
        goto too_long;
    }

    dst = ngx_pnalloc(pool, len + 1);
    if (dst == NULL) {
        return NGX_ERROR;
    }

    if (!encoded) {
        ngx_memcpy(dst, value, len);
        n = len;

    } else if (ngx_http_cast_form_decode(value, len, dst, &n) != NGX_OK) {
        return ngx_http_cast_form_error(pool, err,
                                        "malformed percent-encoding in "
                                        "\"%V\"", &fn->name);
    }

    if (n > fn->max) {
        goto too_long;
    }

    v = &f->value[fn->field];
    v->data = dst;
    v->len = n;
    ngx_http_cast_trim(v);

    rc = ngx_http_cast_text_field(v->data, v->len, fn->max,
                                  fn->field == NGX_HTTP_CAST_F_EVENTS
                                  ? NGX_HTTP_CAST_TEXT_TABS : 0);

    if (rc != NGX_HTTP_CAST_TEXT_OK) {
        return ngx_http_cast_form_error(pool, err, "%V %s", &fn->name,
                                        ngx_http_cast_text_reason(rc));
    }

    return NGX_OK;

too_long:

    return ngx_http_cast_form_error(pool, err, "\"%V\" is too long",
                                    &fn->name);
}


/* "+" is a space, "%XX" a byte; a stray or short "%" is an error */

static ngx_int_t
ngx_http_cast_form_decode(u_char *src, size_t len, u_char *dst, size_t *out)
{
    u_char     *end, *d, c;
    ngx_int_t   hi, lo;

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

        hi = ngx_http_cast_hex(src[0]);
        lo = ngx_http_cast_hex(src[1]);

        if (hi == NGX_ERROR || lo == NGX_ERROR) {
            return NGX_ERROR;
        }

        *d++ = (u_char) ((hi << 4) | lo);
        src += 2;
    }

    *out = d - dst;

    return NGX_OK;
}


static ngx_int_t
ngx_http_cast_hex(u_char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }

    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }

    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }

    return NGX_ERROR;
}


/* NGX_DECLINED with the message in err; NGX_ERROR when out of memory */

static ngx_int_t
ngx_http_cast_form_error(ngx_pool_t *pool, ngx_str_t *err,
    const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = ngx_pnalloc(pool, 256);
    if (p == NULL) {
        return NGX_ERROR;
    }

    va_start(args, fmt);
    err->len = ngx_vslprintf(p, p + 256, fmt, args) - p;
    va_end(args);

    err->data = p;

    return NGX_DECLINED;
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
