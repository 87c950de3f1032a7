
/*
 * libFuzzer harness for the event validator, the raw-text splicer and its
 * JSON scanner (json.c), differential against jansson.
 *
 * Input: byte 0: bit 0 the dialect (1: fhircast), bit 1 a path topic,
 * bits 2-7 an allocation to fail (0: none); with a path topic, byte 1 is
 * its length and the topic's bytes follow; the rest is the request body.
 *
 * Checked for every body jansson accepts as an object:
 *  - acceptance agrees with a reference written here from SPEC 2.2 and 4;
 *  - what subscribers get (ev.json) parses, duplicates refused, to the
 *    same tree as jansson's own modification of the body (ev.root), and
 *    that tree is the body plus only the members the hub adds;
 *  - with nothing added, ev.json is the publisher's bytes;
 *  - the scanner: each top-level value it locates is exactly the text of
 *    that member's value;
 *  - content sharing's rewrite of "event" and the id finder (see
 *    ngx_http_cast_fuzz_rewrite()).
 * json.c is included, so that its static scanner can be called.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_test_core.h"
#include "ngx_http_cast_fuzz.h"

#include "ngx_http_cast_json.c"


#define NGX_HTTP_CAST_FUZZ_KEYS  16


/* a topic: 1..1024 bytes of UTF-8, no control character, no "/" */

static ngx_uint_t
ngx_http_cast_fuzz_topic_ok(const u_char *s, size_t n)
{
    return n >= 1 && n <= 1024
           && !ngx_http_cast_fuzz_controls(s, n, 0)
           && ngx_http_cast_fuzz_utf8(s, n)
           && !ngx_http_cast_fuzz_has(s, n, '/');
}


/* an event name: one trimmed item of a comma list, 1..256 bytes */

static ngx_uint_t
ngx_http_cast_fuzz_event_ok(const u_char *s, size_t n)
{
    return n >= 1 && n <= 256
           && !ngx_http_cast_fuzz_controls(s, n, 0)
           && ngx_http_cast_fuzz_utf8(s, n)
           && !ngx_http_cast_fuzz_has(s, n, ',')
           && s[0] != ' ' && s[n - 1] != ' ';
}


static ngx_uint_t
ngx_http_cast_fuzz_context_ok(json_t *context, ngx_uint_t dialect)
{
    size_t   i;
    json_t  *item;

    if (context == NULL || json_is_null(context)) {
        return dialect == NGX_HTTP_CAST_DIALECT_CAST;
    }

    if (json_is_object(context)) {
        return dialect == NGX_HTTP_CAST_DIALECT_CAST;
    }

    if (!json_is_array(context)) {
        return 0;
    }

    json_array_foreach(context, i, item) {
        if (!json_is_object(item)) {
            return 0;
        }
    }

    return 1;
}


/* "id" and "timestamp": absent (cast only) or a non-empty string */

static ngx_uint_t
ngx_http_cast_fuzz_member_ok(json_t *root, const char *key,
    ngx_uint_t dialect)
{
    json_t  *v;

    v = json_object_get(root, key);

    if (v == NULL) {
        return dialect == NGX_HTTP_CAST_DIALECT_CAST;
    }

    return json_is_string(v) && json_string_length(v) >= 1
           && json_string_length(v) <= NGX_HTTP_CAST_MAX_FIELD;
}


static ngx_uint_t
ngx_http_cast_fuzz_reference(json_t *root, ngx_str_t *path,
    ngx_uint_t dialect)
{
    json_t      *event, *name, *topic;
    const char  *t;
    size_t       tlen;

    event = json_object_get(root, "event");
    if (!json_is_object(event)) {
        return 0;
    }

    name = json_object_get(event, "hub.event");
    if (!json_is_string(name)
        || !ngx_http_cast_fuzz_event_ok((u_char *) json_string_value(name),
                                        json_string_length(name)))
    {
        return 0;
    }

    topic = json_object_get(event, "hub.topic");

    if (topic) {
        if (!json_is_string(topic)) {
            return 0;
        }

        t = json_string_value(topic);
        tlen = json_string_length(topic);

        if (path && path->len
            && (path->len != tlen || memcmp(path->data, t, tlen) != 0))
        {
            return 0;
        }

    } else if (path && path->len) {
        t = (const char *) path->data;
        tlen = path->len;

    } else {
        return 0;
    }

    if (!ngx_http_cast_fuzz_topic_ok((u_char *) t, tlen)
        || (tlen == 1 && t[0] == '*'))
    {
        return 0;
    }

    return ngx_http_cast_fuzz_context_ok(json_object_get(event, "context"),
                                         dialect)
           && ngx_http_cast_fuzz_member_ok(root, "id", dialect)
           && ngx_http_cast_fuzz_member_ok(root, "timestamp", dialect);
}


/* the tree the hub may deliver: the body plus id, timestamp, hub.topic */

static void
ngx_http_cast_fuzz_additions(json_t *orig, json_t *root, ngx_str_t *path,
    ngx_uint_t dialect)
{
    json_t      *value, *event, *oevent;
    const char  *key;

    json_object_foreach(orig, key, value) {
        if (strcmp(key, "event") != 0) {
            ngx_http_cast_fuzz_check(json_equal(value,
                                                json_object_get(root, key)));
        }
    }

    json_object_foreach(root, key, value) {
        if (json_object_get(orig, key)) {
            continue;
        }

        ngx_http_cast_fuzz_check(dialect == NGX_HTTP_CAST_DIALECT_CAST);
        ngx_http_cast_fuzz_check(strcmp(key, "id") == 0
                                 || strcmp(key, "timestamp") == 0);
        ngx_http_cast_fuzz_check(json_is_string(value));
    }

    oevent = json_object_get(orig, "event");
    event = json_object_get(root, "event");

    json_object_foreach(oevent, key, value) {
        ngx_http_cast_fuzz_check(json_equal(value,
                                            json_object_get(event, key)));
    }

    json_object_foreach(event, key, value) {
        if (json_object_get(oevent, key)) {
            continue;
        }

        ngx_http_cast_fuzz_check(strcmp(key, "hub.topic") == 0);
        ngx_http_cast_fuzz_check(path && path->len);
        ngx_http_cast_fuzz_check(json_string_length(value) == path->len
                                 && memcmp(json_string_value(value),
                                           path->data, path->len) == 0);
    }
}


/* every top-level value the scanner finds is that member's value */

static void
ngx_http_cast_fuzz_scanner(u_char *p, size_t n, json_t *root)
{
    u_char        *open, *end, *value, *last;
    json_t        *parsed;
    ngx_uint_t     i;
    const char    *key;
    json_error_t   error;
    json_t        *member;

    end = p + n;
    open = ngx_http_cast_json_ws(p, end);

    ngx_http_cast_fuzz_check(open < end && *open == '{');

    i = 0;

    json_object_foreach(root, key, member) {

        if (i++ == NGX_HTTP_CAST_FUZZ_KEYS) {
            break;
        }

        value = ngx_http_cast_json_member(open, end, key);
        if (value == NULL) {
            /* an escaped key, or after one: the caller serializes */
            continue;
        }

        ngx_http_cast_fuzz_check(value < end);

        last = ngx_http_cast_json_skip_value(value, end);
        ngx_http_cast_fuzz_check(last > value && last <= end);

        parsed = json_loadb((char *) value, last - value,
                            JSON_DECODE_ANY, &error);
        ngx_http_cast_fuzz_check(parsed != NULL);
        ngx_http_cast_fuzz_check(json_equal(parsed, member));
        json_decref(parsed);
    }
}


/*
 * Content sharing's rewrite of "event" (json_event_rewrite): when it
 * writes, the text parses, duplicates refused, to the body with the two
 * version members of "event" replaced by the one inserted; it declines
 * only for a body that has no "event" object.  json_event_id: what it
 * finds is what jansson reads.
 */

static void
ngx_http_cast_fuzz_rewrite(u_char *body, size_t size, json_t *root)
{
    u_char      *out, *end;
    json_t      *want, *event, *got, *value;
    ngx_str_t    raw, insert, drop[2], id, name;

    raw.data = body;
    raw.len = size;

    ngx_str_set(&insert, "\"context.versionId\":\"V\"");
    ngx_str_set(&drop[0], "context.versionId");
    ngx_str_set(&drop[1], "context.priorVersionId");

    out = malloc(size + insert.len + 1);
    if (out == NULL) {
        abort();
    }

    end = ngx_http_cast_json_event_rewrite(&raw, drop, 2, &insert, out);
    event = json_object_get(root, "event");

    if (end == NULL) {
        free(out);
        return;
    }

    ngx_http_cast_fuzz_check(json_is_object(event));
    ngx_http_cast_fuzz_check((size_t) (end - out) <= size + insert.len + 1);

    want = json_deep_copy(root);
    if (want == NULL) {
        abort();
    }

    event = json_object_get(want, "event");
    (void) json_object_del(event, "context.versionId");
    (void) json_object_del(event, "context.priorVersionId");

    if (json_object_set_new(event, "context.versionId", json_string("V"))) {
        abort();
    }

    got = json_loadb((char *) out, end - out, JSON_REJECT_DUPLICATES, NULL);
    ngx_http_cast_fuzz_check(got != NULL);
    ngx_http_cast_fuzz_check(json_equal(got, want));

    json_decref(got);
    json_decref(want);
    free(out);

    if (ngx_http_cast_json_event_id(&raw, &id, &name) == NGX_OK) {
        value = json_object_get(root, "id");
        ngx_http_cast_fuzz_check(json_is_string(value)
                                 && json_string_length(value) == id.len
                                 && memcmp(json_string_value(value), id.data,
                                           id.len) == 0);

        value = json_object_get(json_object_get(root, "event"), "hub.event");
        ngx_http_cast_fuzz_check(json_is_string(value)
                                 && json_string_length(value) == name.len
                                 && memcmp(json_string_value(value),
                                           name.data, name.len) == 0);
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u_char                 *body, *topic;
    json_t                 *root, *orig, *out;
    size_t                  tlen;
    ngx_int_t               rc;
    ngx_str_t               raw, err, path, *pathp;
    ngx_uint_t              dialect, fail, want, failed;
    ngx_pool_t             *pool;
    json_error_t            error;
    ngx_http_cast_event_t   ev;

    static ngx_uint_t  init;

    if (!init) {
        ngx_test_core_init();
        init = 1;
    }

    if (size < 1) {
        return 0;
    }

    dialect = (data[0] & 1) ? NGX_HTTP_CAST_DIALECT_FHIRCAST
                            : NGX_HTTP_CAST_DIALECT_CAST;
    fail = data[0] >> 2;
    pathp = NULL;
    topic = NULL;
    tlen = 0;

    if (data[0] & 2) {
        if (size < 2 || (size_t) data[1] > size - 2) {
            return 0;
        }

        tlen = data[1];
        topic = malloc(tlen ? tlen : 1);
        if (topic == NULL) {
            abort();
        }

        memcpy(topic, data + 2, tlen);
        data += 2 + tlen;
        size -= 2 + tlen;

        path.data = topic;
        path.len = tlen;
        pathp = &path;

    } else {
        data++;
        size--;
    }

    body = malloc(size ? size : 1);
    if (body == NULL) {
        abort();
    }

    memcpy(body, data, size);

    pool = ngx_create_pool(1024, NULL);
    if (pool == NULL) {
        abort();
    }

    rc = ngx_http_cast_json_parse(pool, body, size, &root, &err);

    if (rc != NGX_OK) {
        ngx_http_cast_fuzz_check(rc == NGX_DECLINED && err.len > 0);
        goto done;
    }

    if (!json_is_object(root)) {
        json_decref(root);
        goto done;
    }

    ngx_http_cast_fuzz_scanner(body, size, root);
    ngx_http_cast_fuzz_rewrite(body, size, root);

    orig = json_deep_copy(root);
    if (orig == NULL) {
        abort();
    }

    want = ngx_http_cast_fuzz_reference(orig, pathp, dialect);

    raw.data = body;
    raw.len = size;

    ngx_test_alloc_fail = fail;
    rc = ngx_http_cast_event_validate(pool, root, &raw, pathp, dialect, &ev,
                                      &err);
    failed = (fail && ngx_test_alloc_fail == 0);
    ngx_test_alloc_fail = 0;

    if (rc == NGX_ERROR) {
        /* a 500: only when the server is out of memory */
        ngx_http_cast_fuzz_check(failed);
        goto free;
    }

    if (rc == NGX_DECLINED) {
        /* the message goes into a JSON error body */
        ngx_http_cast_fuzz_check(err.len > 0);
        ngx_http_cast_fuzz_check(ngx_http_cast_fuzz_utf8(err.data, err.len));
        ngx_http_cast_fuzz_check(!want);
        goto free;
    }

    ngx_http_cast_fuzz_check(rc == NGX_OK);
    ngx_http_cast_fuzz_check(want);
    ngx_http_cast_fuzz_check(ev.root == root);

    ngx_http_cast_fuzz_additions(orig, root, pathp, dialect);

    out = json_loadb((char *) ev.json.data, ev.json.len,
                     JSON_REJECT_DUPLICATES, &error);
    ngx_http_cast_fuzz_check(out != NULL);
    ngx_http_cast_fuzz_check(json_equal(out, root));
    json_decref(out);

    if (json_equal(orig, root)) {
        ngx_http_cast_fuzz_check(ev.json.len == size
                                 && memcmp(ev.json.data, body, size) == 0);
    }

    ngx_http_cast_fuzz_check(ngx_http_cast_fuzz_topic_ok(ev.topic.data,
                                                         ev.topic.len));
    ngx_http_cast_fuzz_check(ngx_http_cast_fuzz_event_ok(ev.name.data,
                                                         ev.name.len));
    ngx_http_cast_fuzz_check(ev.lowercase.len == ev.name.len);

free:

    json_decref(orig);
    json_decref(root);

done:

    ngx_destroy_pool(pool);
    free(body);
    free(topic);

    return 0;
}
