
/*
 * Unit tests for the event validator and the raw-text splicer
 * (src/ngx_http_cast_json.c): what is refused and why, what subscribers
 * get byte for byte, and the splicer's scanner on escaped keys.  json.c is
 * included so that its static scanner can be called.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_test_core.h"
#include "ngx_test_tap.h"

#include "ngx_http_cast_json.c"


#define NGX_TEST_CAST      NGX_HTTP_CAST_DIALECT_CAST
#define NGX_TEST_FHIRCAST  NGX_HTTP_CAST_DIALECT_FHIRCAST

/* in "want", a "#" stands for any byte (the random UUID of an added id) */
#define NGX_TEST_ANY       '#'


static ngx_uint_t
ngx_test_match(ngx_str_t *got, const char *want)
{
    size_t  i;

    if (got->len != strlen(want)) {
        return 0;
    }

    for (i = 0; i < got->len; i++) {
        if (want[i] != NGX_TEST_ANY && (u_char) want[i] != got->data[i]) {
            return 0;
        }
    }

    return 1;
}


/*
 * Validates "body" (with "path" as the path topic, NULL for none); "want"
 * is the error or, on success, the text subscribers get.
 */

static void
ngx_test_event(const char *body, const char *path, ngx_uint_t dialect,
    const char *want, const char *name)
{
    u_char                 *raw;
    json_t                 *root, *out;
    ngx_int_t               rc;
    ngx_str_t               err, text, topic, got;
    ngx_uint_t              ok;
    ngx_pool_t             *pool;
    json_error_t            error;
    ngx_http_cast_event_t   ev;

    pool = ngx_create_pool(1024, NULL);

    /* the body in a block of its own: ASan sees a read past its end */

    text.len = strlen(body);
    raw = malloc(text.len);
    memcpy(raw, body, text.len);
    text.data = raw;

    topic.data = (u_char *) path;
    topic.len = path ? strlen(path) : 0;

    if (ngx_http_cast_json_parse(pool, raw, text.len, &root, &err)
        != NGX_OK)
    {
        ngx_test_ok(0, "%s: the test's JSON does not parse: %.*s", name,
                    (int) err.len, err.data);
        goto done;
    }

    rc = ngx_http_cast_event_validate(pool, root, &text,
                                      path ? &topic : NULL, dialect, &ev,
                                      &err);

    if (rc == NGX_OK) {
        got = ev.json;

        /* what subscribers get is the tree the hub holds */

        out = json_loadb((char *) got.data, got.len, JSON_REJECT_DUPLICATES,
                         &error);
        ok = (out != NULL && json_equal(out, ev.root));

        if (out) {
            json_decref(out);
        }

        if (!ok) {
            ngx_test_ok(0, "%s: the delivered text is not the event", name);
        }

    } else if (rc == NGX_DECLINED) {
        got = err;

    } else {
        ngx_str_set(&got, "NGX_ERROR");
    }

    ok = ngx_test_match(&got, want);
    ngx_test_ok(ok, "%s", name);

    if (!ok) {
        printf("#   got:  \"%.*s\"\n#   want: \"%s\"\n", (int) got.len,
               got.data, want);
    }

    json_decref(root);

done:

    free(raw);
    ngx_destroy_pool(pool);
}


static void
ngx_test_names(void)
{
    ngx_test_event("{\"event\":{\"hub.event\":\"patient-open\\nNOT JSON\","
                   "\"hub.topic\":\"T\"}}", NULL, NGX_TEST_CAST,
                   "event[\"hub.event\"] holds a control character",
                   "hub.event: a newline (issue 8, F2)");
    ngx_test_event("{\"event\":{\"hub.event\":\"a\\u007f\","
                   "\"hub.topic\":\"T\"}}", NULL, NGX_TEST_CAST,
                   "event[\"hub.event\"] holds a control character",
                   "hub.event: DEL");
    ngx_test_event("{\"event\":{\"hub.event\":\"a\\tb\","
                   "\"hub.topic\":\"T\"}}", NULL, NGX_TEST_FHIRCAST,
                   "event[\"hub.event\"] holds a control character",
                   "hub.event: a tab (fhircast)");
    ngx_test_event("{\"event\":{\"hub.event\":\"a,b\",\"hub.topic\":\"T\"}}",
                   NULL, NGX_TEST_CAST,
                   "event[\"hub.event\"] holds a comma (an event name is "
                   "one item of a hub.events list)",
                   "hub.event: a comma");
    ngx_test_event("{\"event\":{\"hub.event\":\" a\",\"hub.topic\":\"T\"}}",
                   NULL, NGX_TEST_CAST,
                   "event[\"hub.event\"] begins or ends with a space",
                   "hub.event: a leading space");
    ngx_test_event("{\"id\":\"1\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"patient open\",\"hub.topic\":\"T\","
                   "\"context\":[]}}", NULL, NGX_TEST_CAST,
                   "{\"id\":\"1\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"patient open\",\"hub.topic\":\"T\","
                   "\"context\":[]}}",
                   "hub.event: an inner space is kept, bytes unchanged");
}


/* a message quoting a long topic is cut at 512 bytes, never in a character */

static void
ngx_test_long_topic(void)
{
    u_char                 *p, body[1024];
    json_t                 *root;
    ngx_str_t               raw, err, path;
    ngx_uint_t              i;
    ngx_pool_t             *pool;
    ngx_http_cast_event_t   ev;

    pool = ngx_create_pool(1024, NULL);

    p = (u_char *) stpcpy((char *) body,
                          "{\"event\":{\"hub.event\":\"x\",\"hub.topic\":\"");

    for (i = 0; i < 300; i++) {
        p = (u_char *) stpcpy((char *) p, "\xc3\xa9");
    }

    p = (u_char *) stpcpy((char *) p, "\"}}");

    raw.data = body;
    raw.len = p - body;
    ngx_str_set(&path, "x");
    ngx_str_null(&err);

    root = json_loadb((char *) raw.data, raw.len, 0, NULL);

    ngx_test_ok(root != NULL
                && ngx_http_cast_event_validate(pool, root, &raw, &path,
                                                NGX_TEST_CAST, &ev, &err)
                   == NGX_DECLINED
                && err.len >= 500 && err.len <= 512
                && ngx_http_cast_utf8_valid(err.data, err.len)
                && ngx_strncmp(err.data, "the topic in the path \"x\" "
                               "differs", 32) == 0,
                "a message quoting a 600-byte topic is cut to valid UTF-8 "
                "(%zu bytes)", err.len);

    if (root) {
        json_decref(root);
    }

    ngx_destroy_pool(pool);
}


static void
ngx_test_topics(void)
{
    ngx_test_event("{\"event\":{\"hub.event\":\"x\",\"context\":[]}}",
                   "\xe2\x82", NGX_TEST_CAST,
                   "the topic in the path is not valid UTF-8",
                   "path topic: %E2%82 is a 400, not a 500 (issue 13.7)");
    ngx_test_event("{\"event\":{\"hub.event\":\"x\",\"hub.topic\":\"T\"}}",
                   "\xff", NGX_TEST_CAST,
                   "the topic in the path is not valid UTF-8",
                   "path topic: checked before it is compared and quoted");
    ngx_test_event("{\"event\":{\"hub.event\":\"x\"}}", "a\x01",
                   NGX_TEST_CAST,
                   "the topic in the path holds a control character",
                   "path topic: a control character");
    ngx_test_event("{\"event\":{\"hub.event\":\"x\",\"hub.topic\":\"a/b\"}}",
                   NULL, NGX_TEST_CAST,
                   "event[\"hub.topic\"] holds a \"/\" (a topic must fit "
                   "one path segment, {base}/{topic})",
                   "body topic: a slash");
    ngx_test_event("{\"event\":{\"hub.event\":\"x\","
                   "\"hub.topic\":\"a\\u0001\"}}",
                   NULL, NGX_TEST_CAST,
                   "event[\"hub.topic\"] holds a control character",
                   "body topic: a control character");
    ngx_test_long_topic();
    ngx_test_event("{\"id\":\"i\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"x\",\"hub.topic\":\"J\\u00fcrgen\"}}",
                   "J\xc3\xbcrgen", NGX_TEST_CAST,
                   "{\"id\":\"i\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"x\",\"hub.topic\":\"J\\u00fcrgen\"}}",
                   "path and body topic agree (escaped in the body)");
}


static void
ngx_test_contexts(void)
{
    static const char  *bad[] = {
        "[1,\"x\",null]", "[{},[]]", "\"patient\"", "42", "true", "[[]]"
    };

    ngx_uint_t  i;
    char        body[256], name[256];

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(body, sizeof(body), "{\"event\":{\"hub.event\":\"x\","
                 "\"hub.topic\":\"T\",\"context\":%s}}", bad[i]);
        snprintf(name, sizeof(name), "cast context %s is refused", bad[i]);

        ngx_test_event(body, NULL, NGX_TEST_CAST,
                       "event[\"context\"] must be an object or an array "
                       "of objects", name);

        snprintf(body, sizeof(body), "{\"id\":\"1\",\"timestamp\":\"t\","
                 "\"event\":{\"hub.event\":\"x\",\"hub.topic\":\"T\","
                 "\"context\":%s}}", bad[i]);
        snprintf(name, sizeof(name), "fhircast context %s is refused",
                 bad[i]);

        ngx_test_event(body, NULL, NGX_TEST_FHIRCAST,
                       "event[\"context\"] must be an array of objects",
                       name);
    }

    ngx_test_event("{\"id\":\"1\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"x\",\"hub.topic\":\"T\","
                   "\"context\":{\"a\":1}}}", NULL, NGX_TEST_FHIRCAST,
                   "event[\"context\"] must be an array of objects",
                   "fhircast context: an object is refused");
    ngx_test_event("{\"id\":\"1\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"x\",\"hub.topic\":\"T\","
                   "\"context\":null}}", NULL, NGX_TEST_CAST,
                   "{\"id\":\"1\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"x\",\"hub.topic\":\"T\","
                   "\"context\":null}}",
                   "cast context: null is no context");
    ngx_test_event("{\"id\":\"1\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"x\",\"hub.topic\":\"T\","
                   "\"context\":[{},{\"key\":\"patient\"}]}}", NULL,
                   NGX_TEST_FHIRCAST,
                   "{\"id\":\"1\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"x\",\"hub.topic\":\"T\","
                   "\"context\":[{},{\"key\":\"patient\"}]}}",
                   "fhircast context: an array of objects");
}


static void
ngx_test_splices(void)
{
    ngx_test_event(" {\"event\" : {\"hub.event\":\"x\"} , \"z\":[\"}\"] } ",
                   "T", NGX_TEST_CAST,
                   " {\"id\":\"########-####-4###-####-############\","
                   "\"timestamp\":\"2026-12-03T06:12:19.123Z\","
                   "\"event\" : {\"hub.topic\":\"T\",\"hub.event\":\"x\"} ,"
                   " \"z\":[\"}\"] } ",
                   "splice: id, timestamp, path topic into the publisher's "
                   "text");
    ngx_test_event("{\"id\":\"i\",\"timestamp\":\"t\",\"a\\\"\":{\"event\":"
                   "1},\"event\":{\"hub.event\":\"x\"\n}\n}",
                   "T", NGX_TEST_CAST,
                   "{\"id\":\"i\",\"timestamp\":\"t\",\"a\\\"\":{\"event\":"
                   "1},\"event\":{\"hub.topic\":\"T\",\"hub.event\":\"x\"\n}"
                   "\n}",
                   "splice: a nested \"event\" and an escaped quote are "
                   "skipped");
    ngx_test_event("{\"id\":\"i\",\"timestamp\":\"t\",\"\\u0065vent\":{"
                   "\"hub.event\":\"x\"}}",
                   "T", NGX_TEST_CAST,
                   "{\"id\":\"i\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"x\",\"hub.topic\":\"T\"}}",
                   "splice: an escaped \"event\" key: serialized instead");
    ngx_test_event("{\"id\":\"i\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"x\"}}",
                   "a\"b\\c\xc3\xa9", NGX_TEST_CAST,
                   "{\"id\":\"i\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.topic\":\"a\\\"b\\\\c\xc3\xa9\","
                   "\"hub.event\":\"x\"}}",
                   "splice: a path topic with a quote, a backslash and "
                   "UTF-8 is quoted as a JSON string");
    ngx_test_event("{\"id\":\"i\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"x\",\"hub.topic\":\"T\"}}",
                   "T", NGX_TEST_CAST,
                   "{\"id\":\"i\",\"timestamp\":\"t\",\"event\":{"
                   "\"hub.event\":\"x\",\"hub.topic\":\"T\"}}",
                   "splice: nothing added, the publisher's bytes");
}


/* the key a scanner lookup finds, as the text of its value */

static void
ngx_test_scan(const char *text, const char *key, const char *want,
    const char *name)
{
    u_char     *p, *end, *v;
    ngx_str_t   got;

    p = malloc(strlen(text));
    memcpy(p, text, strlen(text));
    end = p + strlen(text);

    v = ngx_http_cast_json_member(p, end, key);

    if (v == NULL) {
        ngx_str_set(&got, "(none)");

    } else {
        got.data = v;
        got.len = ngx_http_cast_json_skip_value(v, end) - v;
    }

    ngx_test_str(&got, want, name);

    free(p);
}


static void
ngx_test_scanner(void)
{
    ngx_test_scan("{\"a\":1,\"b\":[{\"a\":2}],\"c\":\"x\"}", "c", "\"x\"",
                  "scanner: a member after nested values");
    ngx_test_scan("{\"a\" :\t-1.5e3 ,\"b\":true}", "a", "-1.5e3",
                  "scanner: a number, with whitespace around");

    /* found by json_fuzz: raw key bytes were taken for the key's value */

    ngx_test_scan("{\"\\\"}n\":1,\"\\\\\":2}", "\\", "(none)",
                  "scanner: the raw key \\\" is not the key \\");
    ngx_test_scan("{\"\\\\\\\\n\":1,\"\\\\n\":2}", "\\\\n", "(none)",
                  "scanner: the raw key \\\\\\\\n is not the key \\\\n");
    ngx_test_scan("{\"ev\\u0065nt\":1,\"event\":2}", "event", "2",
                  "scanner: an escaped key is passed over");
}


/* content sharing's rewrite of "event": members dropped, others put first */

static void
ngx_test_rewrite1(const char *text, const char *insert, const char *want,
    const char *name)
{
    u_char     *out, *end;
    ngx_str_t   raw, ins, got, drop[2];

    raw.len = strlen(text);
    raw.data = malloc(raw.len + 1);
    memcpy(raw.data, text, raw.len);

    ins.data = (u_char *) insert;
    ins.len = strlen(insert);

    ngx_str_set(&drop[0], "context.versionId");
    ngx_str_set(&drop[1], "context.priorVersionId");

    out = malloc(raw.len + ins.len + 1);
    end = ngx_http_cast_json_event_rewrite(&raw, drop, 2, &ins, out);

    if (end == NULL) {
        ngx_str_set(&got, "(declined)");

    } else {
        got.data = out;
        got.len = end - out;
    }

    ngx_test_str(&got, want, name);

    free(out);
    free(raw.data);
}


static void
ngx_test_rewrites(void)
{
    ngx_test_rewrite1("{\"id\":\"i\",\"event\":{\"hub.event\":\"x\"}}",
                      "\"context.versionId\":\"v\"",
                      "{\"id\":\"i\",\"event\":{\"context.versionId\":"
                      "\"v\",\"hub.event\":\"x\"}}",
                      "rewrite: a member first in event");
    ngx_test_rewrite1("{ \"event\" : { } }", "\"a\":1",
                      "{ \"event\" : {\"a\":1} }",
                      "rewrite: into an empty event");
    ngx_test_rewrite1("{\"event\":{\"context.versionId\":\"old\","
                      "\"hub.event\":\"x-update\",\"context.priorVersionId\""
                      ":{\"o\":[1,\"}\"]},\"context\":[]},\"z\":1}",
                      "\"context.versionId\":\"new\","
                      "\"context.priorVersionId\":\"old\"",
                      "{\"event\":{\"context.versionId\":\"new\","
                      "\"context.priorVersionId\":\"old\",\"hub.event\":"
                      "\"x-update\",\"context\":[]},\"z\":1}",
                      "rewrite: the publisher's versions replaced, any value");
    ngx_test_rewrite1("{\"event\":{\"context.versionId\":\"old\"}}",
                      "",
                      "{\"event\":{}}",
                      "rewrite: dropped, nothing inserted");
    ngx_test_rewrite1("{\"a\":{\"event\":{}},\"event\":{\"b\" : [ 1 ,2 ] ,"
                      " \"c\":\"\\\"\"}}", "\"v\":0",
                      "{\"a\":{\"event\":{}},\"event\":{\"v\":0,"
                      "\"b\" : [ 1 ,2 ],\"c\":\"\\\"\"}}",
                      "rewrite: a nested event passed over; members kept "
                      "as written");
    ngx_test_rewrite1("{\"event\":{\"context\\u002eversionId\":1}}",
                      "\"v\":0", "(declined)",
                      "rewrite: an escaped key in event: declined");
    ngx_test_rewrite1("{\"ev\\u0065nt\":{}}", "\"v\":0", "(declined)",
                      "rewrite: an escaped event key: declined");
    ngx_test_rewrite1("{\"event\":[]}", "\"v\":0", "(declined)",
                      "rewrite: event not an object: declined");
}


static void
ngx_test_event_id1(const char *text, const char *want, const char *name)
{
    u_char      buf[256];
    ngx_str_t   raw, id, ev, got;

    raw.data = (u_char *) text;
    raw.len = strlen(text);

    if (ngx_http_cast_json_event_id(&raw, &id, &ev) != NGX_OK) {
        ngx_str_set(&got, "(declined)");

    } else {
        got.data = buf;
        got.len = ngx_snprintf(buf, sizeof(buf), "%V %V", &id, &ev) - buf;
    }

    ngx_test_str(&got, want, name);
}


static void
ngx_test_event_ids(void)
{
    ngx_test_event_id1("{\"event\":{\"a\":{\"hub.event\":\"no\"},"
                       "\"hub.event\":\"Patient-open\"},\"x\":{\"id\":1},"
                       "\"id\":\"e1\"}",
                       "e1 Patient-open", "event id: top-level id, hub.event");
    ngx_test_event_id1("{\"id\":\"e\\\"1\",\"event\":{\"hub.event\":"
                       "\"x\"}}", "(declined)", "event id: escaped: declined");
    ngx_test_event_id1("{\"id\":1,\"event\":{\"hub.event\":\"x\"}}",
                       "(declined)", "event id: not a string: declined");
    ngx_test_event_id1("{\"id\":\"e\",\"event\":{}}", "(declined)",
                       "event id: no hub.event: declined");
}


int
main(void)
{
    ngx_test_core_init();

    ngx_test_names();
    ngx_test_topics();
    ngx_test_contexts();
    ngx_test_splices();
    ngx_test_scanner();
    ngx_test_rewrites();
    ngx_test_event_ids();

    return ngx_test_done();
}
