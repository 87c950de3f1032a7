
/*
 * Unit tests for the subscription field parsers (src/ngx_http_cast_form.c):
 * percent-decoding, trimming, repeats, the per-field limits (the same on
 * the form and the JSON path), UTF-8 and control characters, and the
 * out-of-memory paths.  Built against nginx's headers with
 * t/unit/support (one malloc() block per pool allocation).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_test_core.h"
#include "ngx_test_tap.h"


/* "ok" or the error; the fields as "name=value" lines otherwise */

static void
ngx_test_form(const char *body, size_t len, ngx_uint_t field,
    const char *want, const char *name)
{
    u_char                  *copy;
    ngx_int_t                rc;
    ngx_str_t                err, got;
    ngx_pool_t              *pool;
    ngx_http_cast_fields_t   f;

    pool = ngx_create_pool(1024, NULL);
    copy = malloc(len + 1);
    memcpy(copy, body, len);

    ngx_str_null(&err);
    rc = ngx_http_cast_form_parse(pool, copy, len, &f, &err);

    if (rc == NGX_OK) {
        got = f.value[field];

    } else if (rc == NGX_DECLINED) {
        got = err;

    } else {
        ngx_str_set(&got, "NGX_ERROR");
    }

    ngx_test_str(&got, want, name);

    free(copy);
    ngx_destroy_pool(pool);
}


static void
ngx_test_json(const char *body, ngx_uint_t field, const char *want,
    const char *name)
{
    json_t                  *root;
    ngx_int_t                rc;
    ngx_str_t                err, got;
    ngx_pool_t              *pool;
    json_error_t             error;
    ngx_http_cast_fields_t   f;

    pool = ngx_create_pool(1024, NULL);
    root = json_loads(body, 0, &error);

    if (root == NULL) {
        ngx_test_ok(0, "%s: the test's JSON does not parse: %s", name,
                    error.text);
        ngx_destroy_pool(pool);
        return;
    }

    ngx_str_null(&err);
    rc = ngx_http_cast_fields_from_json(pool, root, &f, &err);

    if (rc == NGX_OK) {
        got = f.value[field];

    } else if (rc == NGX_DECLINED) {
        got = err;

    } else {
        ngx_str_set(&got, "NGX_ERROR");
    }

    ngx_test_str(&got, want, name);

    json_decref(root);
    ngx_destroy_pool(pool);
}


#define ngx_test_form_s(body, field, want, name)                              \
    ngx_test_form(body, sizeof(body) - 1, field, want, name)


static void
ngx_test_decoding(void)
{
    ngx_test_form_s("hub.topic=a%20b+c%2fd%2F", NGX_HTTP_CAST_F_TOPIC,
                    "a b c/d/", "decoding: %XX (both cases) and +");
    ngx_test_form_s("hub.topic=%41%7e%7E", NGX_HTTP_CAST_F_TOPIC, "A~~",
                    "decoding: hex digits in both cases");
    ngx_test_form_s("hub%2Etopic=x", NGX_HTTP_CAST_F_TOPIC, "x",
                    "decoding: an encoded field name");
    ngx_test_form_s("hub.topic=+%20%09x%0D%0A+", NGX_HTTP_CAST_F_TOPIC, "x",
                    "decoding: trimmed after decoding");

    /* the "| 0x20" trick took 0x10-0x19 for the digits 0-9 */

    ngx_test_form_s("hub.topic=%\x10\x11", NGX_HTTP_CAST_F_TOPIC,
                    "malformed percent-encoding in \"hub.topic\"",
                    "decoding: %\\x10\\x11 is malformed");
    ngx_test_form_s("hub.topic=%1\x19", NGX_HTTP_CAST_F_TOPIC,
                    "malformed percent-encoding in \"hub.topic\"",
                    "decoding: %1\\x19 is malformed");
    ngx_test_form_s("hub.topic=%1G", NGX_HTTP_CAST_F_TOPIC,
                    "malformed percent-encoding in \"hub.topic\"",
                    "decoding: %1G is malformed");
    ngx_test_form_s("hub.topic=%g1", NGX_HTTP_CAST_F_TOPIC,
                    "malformed percent-encoding in \"hub.topic\"",
                    "decoding: %g1 is malformed");
    ngx_test_form_s("hub.topic=ab%4", NGX_HTTP_CAST_F_TOPIC,
                    "malformed percent-encoding in \"hub.topic\"",
                    "decoding: a short % at the end");
    ngx_test_form_s("hub.topic=%", NGX_HTTP_CAST_F_TOPIC,
                    "malformed percent-encoding in \"hub.topic\"",
                    "decoding: a lone %");
    ngx_test_form_s("hub.t%\x10\x11pic=x", NGX_HTTP_CAST_F_TOPIC,
                    "malformed percent-encoding in a form field name",
                    "decoding: a malformed field name");
    ngx_test_form_s("unknown=%zz&hub.topic=t", NGX_HTTP_CAST_F_TOPIC, "t",
                    "decoding: an unknown field's value is not looked at");
}


static void
ngx_test_fields(void)
{
    ngx_test_form_s("&&hub.mode=subscribe&&x&=y&hub.topic",
                    NGX_HTTP_CAST_F_MODE, "subscribe",
                    "fields: empty pairs and names skipped");
    ngx_test_form_s("hub.topic&hub.mode=a", NGX_HTTP_CAST_F_TOPIC, "",
                    "fields: a name without \"=\" is an empty value");

    /* the message of a repeat once overran its buffer by up to 18 bytes */

    ngx_test_form_s("hub.lease=1&hub.lease_seconds=2", NGX_HTTP_CAST_F_LEASE,
                    "\"hub.lease_seconds\" is given more than once "
                    "(hub.lease and hub.lease_seconds are one field)",
                    "fields: hub.lease, then hub.lease_seconds");
    ngx_test_form_s("hub.lease_seconds=1&hub.lease=2", NGX_HTTP_CAST_F_LEASE,
                    "\"hub.lease\" is given more than once "
                    "(hub.lease and hub.lease_seconds are one field)",
                    "fields: hub.lease_seconds, then hub.lease");
    ngx_test_form_s("subscriber.product.version=1&"
                    "subscriber.product.version=2",
                    NGX_HTTP_CAST_F_PRODUCT_VERSION,
                    "\"subscriber.product.version\" is given more than once",
                    "fields: the longest name repeated");

    ngx_test_json("{\"hub.lease\":1,\"hub.lease_seconds\":2}",
                  NGX_HTTP_CAST_F_LEASE,
                  "\"hub.lease_seconds\" is given more than once "
                  "(hub.lease and hub.lease_seconds are one field)",
                  "json: hub.lease and hub.lease_seconds");
    ngx_test_json("{\"hub.lease_seconds\":-9223372036854775808}",
                  NGX_HTTP_CAST_F_LEASE, "-9223372036854775808",
                  "json: the smallest integer lease, as text");
    ngx_test_json("{\"hub.topic\":7}", NGX_HTTP_CAST_F_TOPIC,
                  "\"hub.topic\" must be a string", "json: a number topic");
    ngx_test_json("{\"hub.topic\":\" t \",\"x\":[1]}", NGX_HTTP_CAST_F_TOPIC,
                  "t", "json: trimmed, unknown members ignored");
}


/* a body with one field of n bytes of "c" */

static void
ngx_test_limit(const char *field, ngx_uint_t index, size_t n, u_char c,
    ngx_uint_t json, const char *want)
{
    u_char  *body, *p;
    char     name[128];

    body = malloc(n + 64);
    p = (u_char *) stpcpy((char *) body, json ? "{\"" : "");
    p = (u_char *) stpcpy((char *) p, field);
    p = (u_char *) stpcpy((char *) p, json ? "\":\"" : "=");
    memset(p, c, n);
    p += n;
    p = (u_char *) stpcpy((char *) p, json ? "\"}" : "");

    snprintf(name, sizeof(name), "limits: %s of %zu bytes (%s)", field, n,
             json ? "JSON" : "form");

    if (json) {
        ngx_test_json((char *) body, index, want ? want : (char *) body + 0,
                      name);

    } else {
        ngx_test_form((char *) body, p - body, index, want, name);
    }

    free(body);
}


static void
ngx_test_limits(void)
{
    u_char      *ok;
    ngx_uint_t   json;

    ok = malloc(4097);
    memset(ok, 'n', 4096);

    for (json = 0; json < 2; json++) {
        ok[1024] = '\0';
        ngx_test_limit("subscriber.name", NGX_HTTP_CAST_F_NAME, 1024, 'n',
                       json, (char *) ok);
        ngx_test_limit("subscriber.name", NGX_HTTP_CAST_F_NAME, 1025, 'n',
                       json, "\"subscriber.name\" is too long");
        ngx_test_limit("subscriber.name", NGX_HTTP_CAST_F_NAME, 1 << 20, 'n',
                       json, "\"subscriber.name\" is too long");
        ngx_test_limit("subscriber.product.name",
                       NGX_HTTP_CAST_F_PRODUCT_NAME, 1025, 'n', json,
                       "\"subscriber.product.name\" is too long");
        ngx_test_limit("subscriber.product.version",
                       NGX_HTTP_CAST_F_PRODUCT_VERSION, 1025, 'n', json,
                       "\"subscriber.product.version\" is too long");
        ngx_test_limit("hub.mode", NGX_HTTP_CAST_F_MODE, 1025, 'n', json,
                       "\"hub.mode\" is too long");

        ok[1024] = 'n';
        ok[4096] = '\0';
        ngx_test_limit("hub.callback", NGX_HTTP_CAST_F_CALLBACK, 4096, 'n',
                       json, (char *) ok);
        ngx_test_limit("hub.callback", NGX_HTTP_CAST_F_CALLBACK, 4097, 'n',
                       json, "\"hub.callback\" is too long");
        ngx_test_limit("subscriber.client_info", NGX_HTTP_CAST_F_CLIENT_INFO,
                       4097, 'n', json,
                       "\"subscriber.client_info\" is too long");
        ngx_test_limit("subscriber.actors", NGX_HTTP_CAST_F_ACTORS, 4097,
                       'n', json, "\"subscriber.actors\" is too long");
        ngx_test_limit("hub.channel.endpoint", NGX_HTTP_CAST_F_ENDPOINT,
                       4097, 'n', json,
                       "\"hub.channel.endpoint\" is too long");
        ngx_test_limit("hub.topic", NGX_HTTP_CAST_F_TOPIC, 65537, 't', json,
                       "\"hub.topic\" is too long");
        ngx_test_limit("hub.events", NGX_HTTP_CAST_F_EVENTS, 65537, 'e',
                       json, "\"hub.events\" is too long");
        ngx_test_limit("subscriber.latest_value", NGX_HTTP_CAST_F_LATEST,
                       65537, 'e', json,
                       "\"subscriber.latest_value\" is too long");
    }

    /* the limit counts decoded bytes: 1024 "%41" are 1024 bytes */

    {
        u_char  body[3200], *p;

        p = (u_char *) stpcpy((char *) body, "subscriber.name=");

        for (json = 0; json < 1024; json++) {
            p = (u_char *) stpcpy((char *) p, "%41");
        }

        memset(ok, 'A', 1024);
        ok[1024] = '\0';

        ngx_test_form((char *) body, p - body, NGX_HTTP_CAST_F_NAME,
                      (char *) ok, "limits: 1024 encoded bytes are 1024");

        p = (u_char *) stpcpy((char *) p, "+");
        ngx_test_form((char *) body, p - body, NGX_HTTP_CAST_F_NAME,
                      "\"subscriber.name\" is too long",
                      "limits: ... and one more is too many, trimmed or "
                      "not");
    }

    free(ok);
}


static void
ngx_test_text(void)
{
    ngx_test_form_s("subscriber.name=%FF", NGX_HTTP_CAST_F_NAME,
                    "subscriber.name is not valid UTF-8",
                    "text: a name that is not UTF-8");
    ngx_test_form_s("hub.topic=%E2%82", NGX_HTTP_CAST_F_TOPIC,
                    "hub.topic is not valid UTF-8",
                    "text: a topic that is not UTF-8 (%E2%82)");
    ngx_test_form_s("hub.events=a%FF", NGX_HTTP_CAST_F_EVENTS,
                    "hub.events is not valid UTF-8",
                    "text: hub.events that is not UTF-8");
    ngx_test_form_s("hub.callback=%C3%A9", NGX_HTTP_CAST_F_CALLBACK,
                    "\xc3\xa9", "text: UTF-8 is kept");
    ngx_test_form_s("subscriber.name=a%0Ab", NGX_HTTP_CAST_F_NAME,
                    "subscriber.name holds a control character",
                    "text: a newline inside a name");
    ngx_test_form_s("hub.topic=a%01b", NGX_HTTP_CAST_F_TOPIC,
                    "hub.topic holds a control character",
                    "text: a control character in a topic");
    ngx_test_form_s("hub.mode=a%7F", NGX_HTTP_CAST_F_MODE,
                    "hub.mode holds a control character",
                    "text: DEL in hub.mode");
    ngx_test_form_s("subscriber.name=a%09b", NGX_HTTP_CAST_F_NAME,
                    "subscriber.name holds a control character",
                    "text: a tab inside a name");
    ngx_test_form_s("hub.events=a%09,%09b", NGX_HTTP_CAST_F_EVENTS,
                    "a\t,\tb", "text: tabs between event names");
    ngx_test_json("{\"subscriber.name\":\"a\\u0001b\"}",
                  NGX_HTTP_CAST_F_NAME,
                  "subscriber.name holds a control character",
                  "text: JSON: a control character (escaped)");
    ngx_test_json("{\"subscriber.name\":\"\\n a \\r\"}",
                  NGX_HTTP_CAST_F_NAME, "a",
                  "text: JSON: line ends around a name are trimmed");
}


/* every allocation made to fail in turn: a 500, never a 400 or a crash */

static void
ngx_test_oom(void)
{
    json_t                  *root;
    ngx_int_t                rc;
    ngx_str_t                err;
    ngx_uint_t               k, bad, json;
    ngx_pool_t              *pool;
    ngx_http_cast_fields_t   f;

    static char  body[] = "hub.mode=subscribe&hub.topic=t&hub.events=a&"
                          "hub.lease=1&hub.lease_seconds=2";
    static char  jbody[] = "{\"hub.mode\":\"subscribe\",\"hub.topic\":\"t\","
                           "\"hub.lease\":1,\"hub.lease_seconds\":2}";

    for (json = 0; json < 2; json++) {
        bad = 0;

        for (k = 1; k < 32; k++) {
            pool = ngx_create_pool(1024, NULL);
            ngx_str_null(&err);

            root = json ? json_loads(jbody, 0, NULL) : NULL;

            ngx_test_alloc_fail = k;

            if (json) {
                rc = ngx_http_cast_fields_from_json(pool, root, &f, &err);

            } else {
                rc = ngx_http_cast_form_parse(pool, (u_char *) body,
                                              sizeof(body) - 1, &f, &err);
            }

            if (ngx_test_alloc_fail == 0) {
                /* the k-th allocation failed: NGX_ERROR */
                bad += (rc != NGX_ERROR);

            } else {
                /* fewer than k: the repeat is refused */
                bad += (rc != NGX_DECLINED);
            }

            ngx_test_alloc_fail = 0;

            if (root) {
                json_decref(root);
            }

            ngx_destroy_pool(pool);
        }

        ngx_test_ok(bad == 0, "out of memory (%s): every failed allocation "
                    "gives NGX_ERROR (%lu wrong)", json ? "JSON" : "form",
                    (unsigned long) bad);
    }
}


/*
 * ngx_http_cast_form_fields(): a form of the caller's fields (the token
 * endpoints).  The result as "name=value;" for each set field, or the
 * error, or NGX_ERROR.
 */

static void
ngx_test_own(const char *query, const char *body, const char *want,
    const char *name)
{
    u_char                      *copy, out[4096], *o;
    ngx_int_t                    rc;
    ngx_str_t                    err, got;
    ngx_uint_t                   i;
    ngx_pool_t                  *pool;
    ngx_http_cast_form_field_t   f[3];

    pool = ngx_create_pool(1024, NULL);
    ngx_memzero(f, sizeof(f));
    ngx_str_set(&f[0].name, "grant_type");
    f[0].max = 64;
    ngx_str_set(&f[1].name, "code");
    f[1].max = 16;
    ngx_str_set(&f[2].name, "user_name");
    f[2].max = 8;

    ngx_str_null(&err);
    rc = NGX_OK;

    if (query) {
        copy = (u_char *) strdup(query);
        rc = ngx_http_cast_form_fields(pool, copy, strlen(query), f, 3, &err);
        free(copy);
    }

    if (rc == NGX_OK && body) {
        copy = (u_char *) strdup(body);
        rc = ngx_http_cast_form_fields(pool, copy, strlen(body), f, 3, &err);
        free(copy);
    }

    if (rc == NGX_OK) {
        o = out;

        for (i = 0; i < 3; i++) {
            if (f[i].set) {
                o = ngx_sprintf(o, "%V=%V;", &f[i].name, &f[i].value);
            }
        }

        got.data = out;
        got.len = o - out;

    } else if (rc == NGX_DECLINED) {
        got = err;

    } else {
        ngx_str_set(&got, "NGX_ERROR");
    }

    ngx_test_str(&got, want, name);

    ngx_destroy_pool(pool);
}


static void
ngx_test_own_fields(void)
{
    ngx_int_t                    rc;
    ngx_str_t                    err;
    ngx_uint_t                   i, errors, oks;
    ngx_pool_t                  *pool;
    ngx_http_cast_form_field_t   f[1];

    ngx_test_own(NULL, "grant_type=client_credentials&client_id=x&code=",
                 "grant_type=client_credentials;code=;",
                 "own: the named fields, others skipped, an empty value set");
    ngx_test_own(NULL, "", "", "own: an empty form");
    ngx_test_own(NULL, "&&code&&", "code=;", "own: a name without \"=\"");
    ngx_test_own(NULL, "user_name=%20a+b%2B%26%3D%20", "user_name=a b+&=;",
                 "own: percent-decoded, \"+\" a space, trimmed");
    ngx_test_own(NULL, "us%65r_name=x", "user_name=x;",
                 "own: a percent-encoded name");
    ngx_test_own(NULL, "code=1&code=1",
                 "\"code\" is given more than once", "own: a repeat");
    ngx_test_own("code=1", "grant_type=x&code=2",
                 "\"code\" is given more than once",
                 "own: in the query string and the body");
    ngx_test_own("code=1", "grant_type=x", "grant_type=x;code=1;",
                 "own: the query string and the body merged");
    ngx_test_own(NULL, "code=%zz", "malformed percent-encoding in \"code\"",
                 "own: a bad escape");
    ngx_test_own(NULL, "code=%4", "malformed percent-encoding in \"code\"",
                 "own: a short escape");
    ngx_test_own(NULL, "co%dz=1", "malformed percent-encoding in a form field "
                 "name", "own: a bad escape in a name");
    ngx_test_own(NULL, "user_name=12345678", "user_name=12345678;",
                 "own: at the limit");
    ngx_test_own(NULL, "user_name=123456789", "\"user_name\" is too long",
                 "own: one byte over");
    ngx_test_own(NULL, "user_name=%31%32%33%34%35%36%37%38",
                 "user_name=12345678;", "own: the limit is in decoded bytes");
    ngx_test_own(NULL, "user_name=%31%32%33%34%35%36%37%38%39",
                 "\"user_name\" is too long", "own: decoded, one over");
    ngx_test_own(NULL, "user_name=a%00b",
                 "user_name holds a control character", "own: a NUL");
    ngx_test_own(NULL, "user_name=%ff", "user_name is not valid UTF-8",
                 "own: not UTF-8");
    ngx_test_own(NULL, "user_name=%C3%A9t%C3%A9",
                 "user_name=\xc3\xa9t\xc3\xa9;",
                 "own: UTF-8");

    /* every allocation failing in turn */

    errors = 0;
    oks = 0;

    for (i = 1; i < 8; i++) {
        pool = ngx_create_pool(1024, NULL);
        ngx_memzero(f, sizeof(f));
        ngx_str_set(&f[0].name, "code");
        f[0].max = 16;

        ngx_test_alloc_fail = i;
        rc = ngx_http_cast_form_fields(pool, (u_char *) "a=1&code=2&b=3", 14,
                                       f, 1, &err);
        ngx_test_alloc_fail = 0;

        if (rc == NGX_ERROR) {
            errors++;

        } else if (rc == NGX_OK && f[0].set && f[0].value.len == 1
                   && f[0].value.data[0] == '2')
        {
            oks++;
        }

        ngx_destroy_pool(pool);
    }

    ngx_test_ok(errors == 4 && oks == 3,
                "own: allocation failures are NGX_ERROR (%lu), else the "
                "field (%lu)", (unsigned long) errors, (unsigned long) oks);
}


int
main(void)
{
    ngx_test_core_init();

    ngx_test_decoding();
    ngx_test_fields();
    ngx_test_limits();
    ngx_test_text();
    ngx_test_oom();
    ngx_test_own_fields();

    return ngx_test_done();
}
