
/*
 * libFuzzer harness for the subscription field parsers (form.c): the
 * application/x-www-form-urlencoded body and the JSON object path; on the
 * form path also ngx_http_cast_form_fields() (the token endpoints' own
 * fields), the body given in two calls (a query string, then a body).
 *
 * Input: byte 0 chooses the path (bit 0: JSON) and an allocation to fail
 * (bits 1-7, 0: none); the rest is the request body.  Every result is
 * compared with a reference written here from SPEC 2.1 and the README's
 * field limits, independently of form.c: the same bodies must be accepted,
 * with the same values.  An error must carry a message that a JSON body
 * can hold.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_test_core.h"
#include "ngx_http_cast_fuzz.h"


typedef struct {
    const char    *name;
    ngx_uint_t     field;
    size_t         max;
} ngx_http_cast_fuzz_field_t;


/* README "Limits": the longest value of each field, in decoded bytes */

static ngx_http_cast_fuzz_field_t  ngx_http_cast_fuzz_fields[] = {
    { "hub.mode", NGX_HTTP_CAST_F_MODE, 1024 },
    { "hub.channel.type", NGX_HTTP_CAST_F_CHANNEL_TYPE, 1024 },
    { "hub.topic", NGX_HTTP_CAST_F_TOPIC, 65536 },
    { "hub.events", NGX_HTTP_CAST_F_EVENTS, 65536 },
    { "hub.lease_seconds", NGX_HTTP_CAST_F_LEASE, 1024 },
    { "hub.lease", NGX_HTTP_CAST_F_LEASE, 1024 },
    { "hub.channel.endpoint", NGX_HTTP_CAST_F_ENDPOINT, 4096 },
    { "hub.callback", NGX_HTTP_CAST_F_CALLBACK, 4096 },
    { "subscriber.name", NGX_HTTP_CAST_F_NAME, 1024 },
    { "subscriber.product.name", NGX_HTTP_CAST_F_PRODUCT_NAME, 1024 },
    { "subscriber.product.version", NGX_HTTP_CAST_F_PRODUCT_VERSION, 1024 },
    { "subscriber.actors", NGX_HTTP_CAST_F_ACTORS, 4096 },
    { "subscriber.client_info", NGX_HTTP_CAST_F_CLIENT_INFO, 4096 },
    { "subscriber.latest_value", NGX_HTTP_CAST_F_LATEST, 65536 },
    { NULL, 0, 0 }
};


typedef struct {
    u_char        *value[NGX_HTTP_CAST_F_LAST];
    size_t         len[NGX_HTTP_CAST_F_LAST];
    ngx_uint_t     set[NGX_HTTP_CAST_F_LAST];
} ngx_http_cast_fuzz_ref_t;


static int
ngx_http_cast_fuzz_hex(u_char c)
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

    return -1;
}


/* strict: "%" must be followed by two hex digits; "+" is a space */

static ngx_int_t
ngx_http_cast_fuzz_decode(const u_char *s, size_t n, u_char *out,
    size_t *len)
{
    int     hi, lo;
    size_t  i, k;

    for (i = 0, k = 0; i < n; i++) {

        if (s[i] == '+') {
            out[k++] = ' ';

        } else if (s[i] != '%') {
            out[k++] = s[i];

        } else {
            if (n - i < 3) {
                return NGX_ERROR;
            }

            hi = ngx_http_cast_fuzz_hex(s[i + 1]);
            lo = ngx_http_cast_fuzz_hex(s[i + 2]);

            if (hi < 0 || lo < 0) {
                return NGX_ERROR;
            }

            out[k++] = (u_char) (hi * 16 + lo);
            i += 2;
        }
    }

    *len = k;

    return NGX_OK;
}


static ngx_http_cast_fuzz_field_t *
ngx_http_cast_fuzz_lookup(const u_char *name, size_t len)
{
    ngx_http_cast_fuzz_field_t  *f;

    for (f = ngx_http_cast_fuzz_fields; f->name; f++) {
        if (strlen(f->name) == len && memcmp(f->name, name, len) == 0) {
            return f;
        }
    }

    return NULL;
}


static ngx_uint_t
ngx_http_cast_fuzz_space(u_char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}


/* the value rules shared by both paths; NGX_DECLINED: refused */

static ngx_int_t
ngx_http_cast_fuzz_value(ngx_http_cast_fuzz_ref_t *ref,
    ngx_http_cast_fuzz_field_t *f, u_char *v, size_t len)
{
    if (ref->set[f->field]) {
        return NGX_DECLINED;
    }

    ref->set[f->field] = 1;

    if (len > f->max) {
        return NGX_DECLINED;
    }

    while (len && ngx_http_cast_fuzz_space(v[0])) {
        v++;
        len--;
    }

    while (len && ngx_http_cast_fuzz_space(v[len - 1])) {
        len--;
    }

    if (ngx_http_cast_fuzz_controls(v, len,
                                    f->field == NGX_HTTP_CAST_F_EVENTS))
    {
        return NGX_DECLINED;
    }

    if (!ngx_http_cast_fuzz_utf8(v, len)) {
        return NGX_DECLINED;
    }

    ref->value[f->field] = v;
    ref->len[f->field] = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_cast_fuzz_ref_form(const u_char *p, size_t n, u_char *scratch,
    ngx_http_cast_fuzz_ref_t *ref)
{
    size_t                       i, start, eq, len;
    u_char                      *name, *value;
    ngx_http_cast_fuzz_field_t  *f;

    for (start = 0; start <= n; start = i + 1) {

        for (i = start; i < n && p[i] != '&'; i++) {
            /* void */
        }

        if (i == start) {
            continue;
        }

        for (eq = start; eq < i && p[eq] != '='; eq++) {
            /* void */
        }

        name = scratch;

        if (ngx_http_cast_fuzz_decode(p + start, eq - start, name, &len)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        f = ngx_http_cast_fuzz_lookup(name, len);
        if (f == NULL) {
            continue;
        }

        value = scratch + (eq - start);

        if (eq < i) {
            if (ngx_http_cast_fuzz_decode(p + eq + 1, i - eq - 1, value,
                                          &len)
                != NGX_OK)
            {
                /* a decoding error is refused, after a repeat is */
                return NGX_DECLINED;
            }

        } else {
            len = 0;
        }

        if (ngx_http_cast_fuzz_value(ref, f, value, len) != NGX_OK) {
            return NGX_DECLINED;
        }

        scratch = value + len;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_cast_fuzz_ref_json(json_t *obj, ngx_http_cast_fuzz_ref_t *ref,
    u_char *scratch)
{
    int                          n;
    size_t                       len;
    json_t                      *value;
    const char                  *key;
    ngx_http_cast_fuzz_field_t  *f;

    json_object_foreach(obj, key, value) {

        f = ngx_http_cast_fuzz_lookup((u_char *) key, strlen(key));
        if (f == NULL) {
            continue;
        }

        if (json_is_string(value)) {
            len = json_string_length(value);
            memcpy(scratch, json_string_value(value), len);

        } else if (json_is_integer(value)
                   && f->field == NGX_HTTP_CAST_F_LEASE)
        {
            n = snprintf((char *) scratch, 32, "%lld",
                         (long long) json_integer_value(value));
            len = n;

        } else {
            return NGX_DECLINED;
        }

        if (ngx_http_cast_fuzz_value(ref, f, scratch, len) != NGX_OK) {
            return NGX_DECLINED;
        }

        scratch += len;
    }

    return NGX_OK;
}


static void
ngx_http_cast_fuzz_compare(ngx_int_t rc, ngx_int_t ref_rc,
    ngx_http_cast_fields_t *f, ngx_http_cast_fuzz_ref_t *ref, ngx_str_t *err)
{
    ngx_uint_t  i;

    if (rc == NGX_ERROR) {
        /* out of memory: only where an allocation was made to fail */
        ngx_http_cast_fuzz_check(ngx_test_alloc_fail == 0);
        return;
    }

    if (rc == NGX_DECLINED) {
        /* the message goes into a JSON error body */
        ngx_http_cast_fuzz_check(err->len > 0 && err->data != NULL);
        ngx_http_cast_fuzz_check(ngx_http_cast_fuzz_utf8(err->data,
                                                         err->len));
    }

    ngx_http_cast_fuzz_check(rc == ref_rc);

    if (rc != NGX_OK) {
        return;
    }

    for (i = 0; i < NGX_HTTP_CAST_F_LAST; i++) {
        ngx_http_cast_fuzz_check(f->set[i] == ref->set[i]);
        ngx_http_cast_fuzz_check(f->value[i].len == ref->len[i]);

        if (ref->len[i]) {
            ngx_http_cast_fuzz_check(memcmp(f->value[i].data, ref->value[i],
                                            ref->len[i])
                                     == 0);
        }
    }
}


/* the token endpoints' fields (src/ngx_http_cast_oauth.c), one short */

static ngx_http_cast_form_field_t  ngx_http_cast_fuzz_own[] = {
    { ngx_string("grant_type"), 64, ngx_null_string, 0 },
    { ngx_string("code"), 16384, ngx_null_string, 0 },
    { ngx_string("client_product_name"), 256, ngx_null_string, 0 },
    { ngx_string("user_name"), 256, ngx_null_string, 0 },
    { ngx_string("id_token"), 16384, ngx_null_string, 0 },
    { ngx_string("topic"), 1024, ngx_null_string, 0 },
    { ngx_string("t"), 4, ngx_null_string, 0 }
};

#define NGX_HTTP_CAST_FUZZ_OWN                                               \
    (sizeof(ngx_http_cast_fuzz_own) / sizeof(ngx_http_cast_form_field_t))


typedef struct {
    u_char        *value[NGX_HTTP_CAST_FUZZ_OWN];
    size_t         len[NGX_HTTP_CAST_FUZZ_OWN];
    ngx_uint_t     set[NGX_HTTP_CAST_FUZZ_OWN];
} ngx_http_cast_fuzz_own_ref_t;


/* the reference: the same rules, no tabs, the table above */

static ngx_int_t
ngx_http_cast_fuzz_ref_own(const u_char *p, size_t n, u_char *scratch,
    ngx_http_cast_fuzz_own_ref_t *ref)
{
    size_t   i, k, start, eq, len;
    u_char  *name, *v;

    for (start = 0; start < n; start = i + 1) {

        for (i = start; i < n && p[i] != '&'; i++) {
            /* void */
        }

        if (i == start) {
            continue;
        }

        for (eq = start; eq < i && p[eq] != '='; eq++) {
            /* void */
        }

        name = scratch;

        if (ngx_http_cast_fuzz_decode(p + start, eq - start, name, &len)
            != NGX_OK)
        {
            return NGX_DECLINED;
        }

        for (k = 0; k < NGX_HTTP_CAST_FUZZ_OWN; k++) {
            if (ngx_http_cast_fuzz_own[k].name.len == len
                && memcmp(ngx_http_cast_fuzz_own[k].name.data, name, len)
                   == 0)
            {
                break;
            }
        }

        if (k == NGX_HTTP_CAST_FUZZ_OWN) {
            continue;
        }

        if (ref->set[k]) {
            return NGX_DECLINED;
        }

        ref->set[k] = 1;

        v = scratch + (eq - start);

        if (eq < i) {
            if (ngx_http_cast_fuzz_decode(p + eq + 1, i - eq - 1, v, &len)
                != NGX_OK)
            {
                return NGX_DECLINED;
            }

        } else {
            len = 0;
        }

        if (len > ngx_http_cast_fuzz_own[k].max) {
            return NGX_DECLINED;
        }

        while (len && ngx_http_cast_fuzz_space(v[0])) {
            v++;
            len--;
        }

        while (len && ngx_http_cast_fuzz_space(v[len - 1])) {
            len--;
        }

        if (ngx_http_cast_fuzz_controls(v, len, 0)
            || !ngx_http_cast_fuzz_utf8(v, len))
        {
            return NGX_DECLINED;
        }

        ref->value[k] = v;
        ref->len[k] = len;

        scratch = v + len;
    }

    return NGX_OK;
}


/* the body in two calls (split at "cut"), against the reference */

static void
ngx_http_cast_fuzz_own_fields(ngx_pool_t *pool, u_char *body, size_t size,
    size_t cut, u_char *scratch, ngx_uint_t fail)
{
    ngx_int_t                     rc, ref_rc;
    ngx_str_t                     err;
    ngx_uint_t                    k;
    ngx_http_cast_form_field_t    f[NGX_HTTP_CAST_FUZZ_OWN];
    ngx_http_cast_fuzz_own_ref_t  ref;

    ngx_memcpy(f, ngx_http_cast_fuzz_own, sizeof(f));
    ngx_memzero(&ref, sizeof(ngx_http_cast_fuzz_own_ref_t));
    ngx_str_null(&err);

    ref_rc = ngx_http_cast_fuzz_ref_own(body, cut, scratch, &ref);

    if (ref_rc == NGX_OK) {
        ref_rc = ngx_http_cast_fuzz_ref_own(body + cut, size - cut,
                                            scratch + 2 * cut + 32, &ref);
    }

    ngx_test_alloc_fail = fail;

    rc = ngx_http_cast_form_fields(pool, body, cut, f, NGX_HTTP_CAST_FUZZ_OWN,
                                   &err);
    if (rc == NGX_OK) {
        rc = ngx_http_cast_form_fields(pool, body + cut, size - cut, f,
                                       NGX_HTTP_CAST_FUZZ_OWN, &err);
    }

    ngx_test_alloc_fail = 0;

    if (rc == NGX_ERROR) {
        ngx_http_cast_fuzz_check(fail != 0);
        return;
    }

    if (rc == NGX_DECLINED) {
        ngx_http_cast_fuzz_check(err.len > 0 && err.data != NULL);
        ngx_http_cast_fuzz_check(ngx_http_cast_fuzz_utf8(err.data, err.len));
    }

    ngx_http_cast_fuzz_check(rc == ref_rc);

    if (rc != NGX_OK) {
        return;
    }

    for (k = 0; k < NGX_HTTP_CAST_FUZZ_OWN; k++) {
        ngx_http_cast_fuzz_check(f[k].set == ref.set[k]);
        ngx_http_cast_fuzz_check(f[k].value.len == ref.len[k]);

        if (ref.len[k]) {
            ngx_http_cast_fuzz_check(memcmp(f[k].value.data, ref.value[k],
                                            ref.len[k])
                                     == 0);
        }
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                    *body, *scratch;
    json_t                    *root;
    ngx_int_t                  rc, ref_rc;
    ngx_str_t                  err;
    ngx_uint_t                 json, fail;
    ngx_pool_t                *pool;
    json_error_t               error;
    ngx_http_cast_fields_t     f;
    ngx_http_cast_fuzz_ref_t   ref;

    static ngx_uint_t  init;

    if (!init) {
        ngx_test_core_init();
        init = 1;
    }

    if (size < 1) {
        return 0;
    }

    json = data[0] & 1;
    fail = data[0] >> 1;
    data++;
    size--;

    /* the body is its own heap block: ASan sees a read past its end */

    body = malloc(size ? size : 1);
    scratch = malloc(4 * size + 128);
    if (body == NULL || scratch == NULL) {
        abort();
    }

    memcpy(body, data, size);

    pool = ngx_create_pool(1024, NULL);
    if (pool == NULL) {
        abort();
    }

    ngx_memzero(&ref, sizeof(ngx_http_cast_fuzz_ref_t));
    ngx_str_null(&err);

    if (!json) {
        ref_rc = ngx_http_cast_fuzz_ref_form(body, size, scratch, &ref);

        ngx_test_alloc_fail = fail;
        rc = ngx_http_cast_form_parse(pool, body, size, &f, &err);
        ngx_http_cast_fuzz_compare(rc, ref_rc, &f, &ref, &err);
        ngx_test_alloc_fail = 0;

        ngx_http_cast_fuzz_own_fields(pool, body, size, size / 2, scratch,
                                      fail);

    } else {
        root = json_loadb((char *) body, size, JSON_REJECT_DUPLICATES,
                          &error);

        if (root && json_is_object(root)) {
            ref_rc = ngx_http_cast_fuzz_ref_json(root, &ref, scratch);

            ngx_test_alloc_fail = fail;
            rc = ngx_http_cast_fields_from_json(pool, root, &f, &err);
            ngx_http_cast_fuzz_compare(rc, ref_rc, &f, &ref, &err);
            ngx_test_alloc_fail = 0;
        }

        if (root) {
            json_decref(root);
        }
    }

    ngx_destroy_pool(pool);
    free(scratch);
    free(body);

    return 0;
}
