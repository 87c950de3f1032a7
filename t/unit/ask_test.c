
/*
 * Unit tests for request/response between apps, what it means
 * (src/ngx_http_cast_ask.c): the G2 body checked (every 400, the
 * timeout's bounds, the dataType), the targets among listed records
 * (topic, events, target.actor, target.product.name, the requester),
 * the message a target gets, which messages are responses, the answers
 * collated (duplicates, the answering socket's name, the bound on
 * answers) and both replies.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_ask.h"
#include "ngx_test_core.h"
#include "ngx_test_tap.h"


static json_t *
ngx_test_json(const char *text)
{
    json_t  *json;

    json = json_loads(text, JSON_DECODE_ANY, NULL);

    if (json == NULL) {
        printf("# bad test JSON: %s\n", text);
        exit(2);
    }

    return json;
}


/* a value as compact text (valid until the next call) */

static const char *
ngx_test_dump(json_t *json)
{
    char  *text;

    static char  buf[4096];

    text = json_dumps(json, JSON_COMPACT | JSON_ENCODE_ANY);
    snprintf(buf, sizeof(buf), "%s", text ? text : "(null)");
    free(text);

    return buf;
}


/* parses a G2 body; the body stays referenced by *body */

static ngx_int_t
ngx_test_parse(const char *text, ngx_http_cast_ask_t *ask, json_t **body,
    const char **err)
{
    *err = "";
    *body = ngx_test_json(text);

    return ngx_http_cast_ask_parse(*body, ask, err);
}


static void
ngx_test_refused(const char *text, const char *why, const char *name)
{
    json_t               *body;
    ngx_int_t             rc;
    const char           *err;
    ngx_http_cast_ask_t   ask;

    rc = ngx_test_parse(text, &ask, &body, &err);

    ngx_test_ok(rc == NGX_DECLINED && strstr(err, why) != NULL,
                "400 %s (%s)", name, err);

    json_decref(body);
}


static ngx_msec_t
ngx_test_timeout(const char *event, const char *value)
{
    char                  buf[512];
    json_t               *body;
    const char           *err;
    ngx_http_cast_ask_t   ask;

    snprintf(buf, sizeof(buf), "{\"subscriber.name\":\"R\",\"id\":\"x\","
             "\"event\":{\"hub.event\":\"%s\",\"context\":"
             "{\"timeoutSeconds\":%s}}}", event, value);

    if (ngx_test_parse(buf, &ask, &body, &err) != NGX_OK) {
        json_decref(body);
        return (ngx_msec_t) -1;
    }

    json_decref(body);

    return ask.timeout;
}


static void
test_parse(void)
{
    json_t               *body;
    ngx_int_t             rc;
    const char           *err;
    ngx_http_cast_ask_t   ask;

    rc = ngx_test_parse("{\"subscriber.name\":\" REQ \",\"id\":\" r1 \","
                        "\"subscriber.actor\":[\"ID\"],"
                        "\"target.actor\":\"WORKLIST_CLIENT\","
                        "\"target.product.name\":\"WKLST\","
                        "\"event\":{\"hub.event\":\"Status-Request\","
                        "\"hub.topic\":\"USER-1\",\"context\":"
                        "{\"dataType\":\"STATUS\"}}}", &ask, &body, &err);

    ngx_test_ok(rc == NGX_OK, "a full request parses");
    ngx_test_str(&ask.name, "REQ", "subscriber.name, trimmed");
    ngx_test_str(&ask.id, "r1", "id, trimmed");
    ngx_test_str(&ask.event, "Status-Request", "hub.event as sent");
    ngx_test_str(&ask.topic, "USER-1", "hub.topic");
    ngx_test_str(&ask.data_type, "STATUS", "context.dataType");
    ngx_test_str(&ask.target_product, "WKLST", "target.product.name");
    ngx_test_ok(json_is_array(ask.actor), "subscriber.actor kept as given");
    ngx_test_ok(json_is_string(ask.target_actor), "target.actor");
    ngx_test_ok(ask.timeout == NGX_HTTP_CAST_ASK_TIMEOUT, "default 2 s");
    ngx_test_ok(ask.kind == NGX_HTTP_CAST_ASK_REQUEST, "kind G2");
    json_decref(body);

    rc = ngx_test_parse("{\"subscriber.name\":\"R\",\"id\":\"x\","
                        "\"target.actor\":[\"A\",\"*\"],"
                        "\"target.product.name\":\"*\","
                        "\"event\":{\"hub.event\":\"status-request\","
                        "\"context\":[1]}}", &ask, &body, &err);
    ngx_test_ok(rc == NGX_OK && ask.target_actor == NULL,
                "target.actor with \"*\": any");
    ngx_test_ok(ask.target_product.len == 0,
                "target.product.name \"*\": any");
    ngx_test_str(&ask.data_type, "status", "dataType from the event");
    ngx_test_ok(ask.topic.len == 0, "no hub.topic: every topic");
    json_decref(body);

    rc = ngx_test_parse("{\"subscriber.name\":\"R\",\"id\":\"x\","
                        "\"target.actor\":\"*\",\"event\":{\"hub.event\":"
                        "\"jpgFullSize-request\"}}", &ask, &body, &err);
    ngx_test_ok(rc == NGX_OK && ask.target_actor == NULL,
                "target.actor \"*\": any");
    ngx_test_str(&ask.data_type, "JPGFULLSIZE", "image types upper-cased");
    json_decref(body);

    /* every refusal */

    ngx_test_refused("[]", "JSON object", "not an object");
    ngx_test_refused("{\"id\":\"x\",\"event\":{\"hub.event\":\"a-request\"}}",
                     "subscriber.name", "no subscriber.name");
    ngx_test_refused("{\"subscriber.name\":1,\"id\":\"x\",\"event\":"
                     "{\"hub.event\":\"a-request\"}}",
                     "subscriber.name", "subscriber.name a number");
    ngx_test_refused("{\"subscriber.name\":\"R\",\"id\":\"x\"}",
                     "-request", "no event");
    ngx_test_refused("{\"subscriber.name\":\"R\",\"id\":\"x\",\"event\":"
                     "{\"hub.event\":\"a-update\"}}", "-request",
                     "not a request");
    ngx_test_refused("{\"subscriber.name\":\"R\",\"id\":\"x\",\"event\":"
                     "{\"hub.event\":\"-request\"}}", "-request",
                     "\"-request\" alone");
    ngx_test_refused("{\"subscriber.name\":\"R\",\"event\":"
                     "{\"hub.event\":\"a-request\"}}", "\"id\"", "no id");
    ngx_test_refused("{\"subscriber.name\":\"R\",\"id\":\" \",\"event\":"
                     "{\"hub.event\":\"a-request\"}}", "\"id\"",
                     "a blank id");
    ngx_test_refused("{\"subscriber.name\":\"R\",\"id\":\"x\",\"event\":"
                     "{\"hub.event\":\"a-request\",\"hub.topic\":1}}",
                     "hub.topic", "hub.topic a number");
    ngx_test_refused("{\"subscriber.name\":\"R\",\"id\":\"x\",\"event\":"
                     "{\"hub.event\":\"a-request\",\"context\":"
                     "{\"timeoutSeconds\":true}}}", "timeoutSeconds",
                     "timeoutSeconds true");
    ngx_test_refused("{\"subscriber.name\":\"R\",\"id\":\"x\",\"event\":"
                     "{\"hub.event\":\"a-request\",\"context\":"
                     "{\"timeoutSeconds\":\"1x\"}}}", "timeoutSeconds",
                     "timeoutSeconds \"1x\"");
    ngx_test_refused("{\"subscriber.name\":\"R\",\"id\":\"x\","
                     "\"target.actor\":{},\"event\":"
                     "{\"hub.event\":\"a-request\"}}", "target.actor",
                     "target.actor an object");
    ngx_test_refused("{\"subscriber.name\":\"R\",\"id\":\"x\","
                     "\"target.product.name\":[],\"event\":"
                     "{\"hub.event\":\"a-request\"}}", "target.product",
                     "target.product.name a list");

    /* the timeout's bounds */

    ngx_test_ok(ngx_test_timeout("a-request", "1") == 1000, "1 s");
    ngx_test_ok(ngx_test_timeout("a-request", "\"0.25\"") == 250,
                "\"0.25\": 250 ms");
    ngx_test_ok(ngx_test_timeout("a-request", "0") == 2000, "0: default");
    ngx_test_ok(ngx_test_timeout("a-request", "-5") == 2000, "-5: default");
    ngx_test_ok(ngx_test_timeout("a-request", "null") == 2000,
                "null: default");
    ngx_test_ok(ngx_test_timeout("a-request", "300") == 300000, "300 s");
    ngx_test_ok(ngx_test_timeout("a-request", "301") == 300000,
                "301: 300 s");
    ngx_test_ok(ngx_test_timeout("a-request", "1e300") == 300000,
                "1e300: 300 s");
    ngx_test_ok(ngx_test_timeout("a-request", "\"1e999\"") == 300000,
                "\"1e999\" (inf): 300 s");
    ngx_test_ok(ngx_test_timeout("a-request", "\"nan\"") == 2000,
                "\"nan\": default");
    ngx_test_ok(ngx_test_timeout("a-request", "0.0000001") == 1,
                "a tiny timeout: 1 ms");
    ngx_test_ok(ngx_test_timeout("idc-claude-request", "5") == 180000,
                "idc-claude-request: 180 s at least");
    ngx_test_ok(ngx_test_timeout("IDC-Claude-Request", "250") == 250000,
                "idc-claude-request: more if asked");

}


/* the records of one topic, as a store lists them */

#define REC(id, topic, events, name, product, actors, info, bound)           \
    "{\"id\":\"" id "\",\"topic\":\"" topic "\",\"events\":\"" events "\","  \
    "\"name\":\"" name "\",\"product_name\":\"" product "\",\"actors\":"     \
    "\"" actors "\",\"client_info\":\"" info "\",\"bound\":" bound "}"


static const char *
ngx_test_names(json_t *targets)
{
    size_t   i;
    json_t  *t;

    static char  buf[1024];

    buf[0] = '\0';

    json_array_foreach(targets, i, t) {
        if (i) {
            strcat(buf, ",");
        }

        strcat(buf, json_string_value(json_object_get(t, "name")));
    }

    return buf;
}


static ngx_int_t
ngx_test_begin(const char *body, const char *records,
    ngx_http_cast_ask_t *ask, json_t **b, ngx_http_cast_collate_t *c)
{
    json_t      *recs;
    ngx_int_t    rc;
    const char  *err;

    if (ngx_test_parse(body, ask, b, &err) != NGX_OK) {
        printf("# bad test request: %s\n", err);
        exit(2);
    }

    recs = ngx_test_json(records);
    rc = ngx_http_cast_ask_begin(ask, recs, c);
    json_decref(recs);

    return rc;
}


static const char *
ngx_test_reply_str(ngx_http_cast_collate_t *c, const char *key)
{
    json_t  *v;

    v = json_object_get(c->reply, key);

    return json_is_string(v) ? json_string_value(v)
           : json_is_true(v) ? "true"
           : json_is_false(v) ? "false"
           : json_is_null(v) ? "null" : "?";
}


static void
test_targets(void)
{
    json_t                   *body, *msg, *ctx;
    const char               *text;
    ngx_int_t                 rc;
    ngx_http_cast_ask_t       ask;
    ngx_http_cast_collate_t   c;

    static const char  *records =
        "[" REC("r1", "U", "*", "REQ", "OHIF", "", "", "true") ","
        REC("w1", "U", "status-requests, Status-Request ,x", "WKLST-1",
            "WKLST", "[\\\"WORKLIST_CLIENT\\\",\\\"WATCHER\\\"]", "",
            "true") ","
        REC("v1", "U", "patient-open", "VIEW-1", "OHIF", "VIEWER", "",
            "true") ","
        REC("s1", "*", "*", "STAR-1", "", "\\\"WORKLIST_CLIENT\\\"",
            "{\\\"productName\\\":\\\"wklst\\\"}", "true") ","
        REC("o1", "U", "*", "req", "", "WORKLIST_CLIENT", "", "true") ","
        REC("u1", "U", "*", "OFF-1", "", "A, WORKLIST_CLIENT", "",
            "false") ","
        REC("x1", "V", "*", "ELSE-1", "", "WORKLIST_CLIENT", "", "true")
        "]";

    rc = ngx_test_begin("{\"subscriber.name\":\"REQ\",\"id\":\"q1\","
                        "\"target.actor\":\"WORKLIST_CLIENT\","
                        "\"event\":{\"hub.event\":\"status-request\","
                        "\"hub.topic\":\"U\",\"context\":{\"k\":1}}}",
                        records, &ask, &body, &c);

    ngx_test_ok(rc == NGX_OK, "targets found");
    ngx_test_ok(strcmp(ngx_test_names(c.targets), "WKLST-1,STAR-1") == 0,
                "by events (token-wise), actors (a list, a JSON string), "
                "topic \"*\"; not the requester's other spelling, not the "
                "unbound one, not another topic (%s)",
                ngx_test_names(c.targets));
    ngx_test_ok(strcmp(ngx_test_dump(json_object_get(c.reply, "expected")),
                       "[\"STAR-1\",\"WKLST-1\"]") == 0,
                "expected: sorted names");
    ngx_test_ok(strcmp(ngx_test_reply_str(&c, "targetExists"), "true") == 0
                && strcmp(ngx_test_reply_str(&c, "exists"), "true") == 0
                && strcmp(ngx_test_reply_str(&c, "connected"), "true") == 0,
                "exists, connected, targetExists");

    /* the message */

    msg = ngx_http_cast_ask_message(&ask, json_array_get(c.targets, 1),
                                    (u_char *) "00000000-0000-4000-8000-"
                                    "000000000000",
                                    (u_char *) "2026-12-05T10:00:00.000Z");
    ctx = json_object_get(json_object_get(msg, "event"), "context");
    ngx_test_ok(strcmp(json_string_value(json_object_get(ctx, "id")), "q1")
                == 0, "context.id: the request id");
    ngx_test_ok(json_integer_value(json_object_get(ctx, "k")) == 1,
                "the requester's context");
    ngx_test_ok(strcmp(json_string_value(json_object_get(ctx, "dataType")),
                       "status") == 0, "context.dataType");
    ngx_test_ok(strcmp(json_string_value(json_object_get(
                           json_object_get(msg, "event"), "hub.topic")),
                       "U") == 0, "the request's topic, for a \"*\" one too");
    ngx_test_ok(json_object_get(json_object_get(json_object_get(body,
                                                "event"), "context"), "id")
                == NULL, "the body's context is not changed");
    text = ngx_test_dump(msg);
    ngx_test_ok(strstr(text, "\"subscriber.name\":\"REQ\"") != NULL
                && strstr(text, "\"target.actor\":\"WORKLIST_CLIENT\"")
                   != NULL
                && strstr(text, "\"id\":\"00000000-") != NULL,
                "subscriber.name, target.actor, its own id: %s", text);
    json_decref(msg);

    ngx_http_cast_ask_free(&c);
    json_decref(body);

    /* the product filter: product name, else client_info's productName */

    rc = ngx_test_begin("{\"subscriber.name\":\"REQ\",\"id\":\"q2\","
                        "\"target.product.name\":\"WKLST\","
                        "\"event\":{\"hub.event\":\"status-request\"}}",
                        records, &ask, &body, &c);
    ngx_test_ok(rc == NGX_OK
                && strcmp(ngx_test_names(c.targets), "WKLST-1,STAR-1") == 0,
                "target.product.name (%s)", ngx_test_names(c.targets));
    ngx_http_cast_ask_free(&c);
    json_decref(body);

    /* no topic: every topic */

    rc = ngx_test_begin("{\"subscriber.name\":\"REQ\",\"id\":\"q3\","
                        "\"event\":{\"hub.event\":\"x-request\"}}",
                        records, &ask, &body, &c);
    ngx_test_ok(rc == NGX_OK
                && strcmp(ngx_test_names(c.targets), "STAR-1,ELSE-1") == 0,
                "no topic: every topic (%s)", ngx_test_names(c.targets));
    ngx_test_ok(strcmp(ngx_test_reply_str(&c, "topic"), "null") == 0,
                "topic null");
    ngx_http_cast_ask_free(&c);
    json_decref(body);

    /* the outcomes that send nothing */

    rc = ngx_test_begin("{\"subscriber.name\":\"NOBODY\",\"id\":\"q\","
                        "\"event\":{\"hub.event\":\"status-request\","
                        "\"hub.topic\":\"U\"}}", records, &ask, &body, &c);
    ngx_test_ok(rc == NGX_DONE && strcmp(c.error, "requester-not-found") == 0,
                "requester-not-found");
    ngx_test_ok(strcmp(ngx_test_dump(json_object_get(c.reply, "expected")),
                       "[\"REQ\",\"STAR-1\",\"WKLST-1\",\"req\"]") == 0,
                "expected: the targets all the same (REQ among them)");
    ngx_test_ok(json_array_size(json_object_get(ngx_http_cast_ask_reply(&ask,
                                                    &c, 0), "missing")) == 0,
                "missing empty");
    ngx_test_ok(strcmp(ngx_test_reply_str(&c, "error"),
                       "requester-not-found") == 0
                && strcmp(ngx_test_reply_str(&c, "ok"), "false") == 0,
                "reply: error, ok false");
    ngx_http_cast_ask_free(&c);
    json_decref(body);

    rc = ngx_test_begin("{\"subscriber.name\":\"OFF-1\",\"id\":\"q\","
                        "\"event\":{\"hub.event\":\"status-request\","
                        "\"hub.topic\":\"U\"}}", records, &ask, &body, &c);
    ngx_test_ok(rc == NGX_DONE
                && strcmp(c.error, "requester-not-connected") == 0,
                "requester-not-connected");
    ngx_http_cast_ask_free(&c);
    json_decref(body);

    rc = ngx_test_begin("{\"subscriber.name\":\"REQ\",\"id\":\"q\","
                        "\"target.actor\":\"NOBODY\","
                        "\"event\":{\"hub.event\":\"status-request\","
                        "\"hub.topic\":\"U\"}}", records, &ask, &body, &c);
    ngx_test_ok(rc == NGX_DONE && strcmp(c.error, "target-not-found") == 0,
                "target-not-found");
    ngx_http_cast_ask_free(&c);
    json_decref(body);

    rc = ngx_test_begin("{\"subscriber.name\":\"REQ\",\"id\":\"q\","
                        "\"target.actor\":\"A\","
                        "\"event\":{\"hub.event\":\"status-request\","
                        "\"hub.topic\":\"U\"}}", records, &ask, &body, &c);
    ngx_test_ok(rc == NGX_DONE
                && strcmp(c.error, "target-not-connected") == 0
                && strcmp(ngx_test_reply_str(&c, "targetExists"), "true")
                   == 0,
                "target-not-connected (a bare comma list of actors)");
    ngx_http_cast_ask_free(&c);
    json_decref(body);

    rc = ngx_test_begin("{\"subscriber.name\":\"REQ\",\"id\":\"q\","
                        "\"event\":{\"hub.event\":\"status-request\"}}",
                        "[" REC("r1", "U", "*", "REQ", "", "", "", "true")
                        "," REC("n1", "U", "*", " ", "", "", "", "true")
                        "]", &ask, &body, &c);
    ngx_test_ok(rc == NGX_DONE && strcmp(c.error, "target-not-found") == 0,
                "targets without names: target-not-found");
    ngx_http_cast_ask_free(&c);
    json_decref(body);
}


static json_t *
ngx_test_answer(const char *id, const char *name, const char *rid)
{
    char  buf[512];

    snprintf(buf, sizeof(buf), "{%s%s%s\"subscriber.name\":\"%s\","
             "\"event\":{\"hub.event\":\"status-response\",\"context\":"
             "{\"id\":\"%s\",\"data\":{\"n\":1}}}}",
             id ? "\"id\":\"" : "", id ? id : "", id ? "\"," : "", name,
             rid);

    return ngx_test_json(buf);
}


static void
test_collect(void)
{
    json_t                   *body, *a, *reply, *r0;
    ngx_str_t                 id, name, product, none;
    ngx_int_t                 rc;
    ngx_uint_t                i;
    ngx_http_cast_ask_t       ask;
    ngx_http_cast_collate_t   c;

    /* which messages are responses, and their ids */

    a = ngx_test_json("{\"event\":{\"hub.event\":\"Get-Response\","
                      "\"context\":{\"requestId\":\"g1\",\"id\":\"no\"}}}");
    rc = ngx_http_cast_ask_response(a, &id);
    ngx_test_ok(rc == NGX_OK, "get-response (any case): a response");
    ngx_test_str(&id, "g1", "get-response: context.requestId first");
    json_decref(a);

    a = ngx_test_json("{\"event\":{\"hub.event\":\"status-response\","
                      "\"context\":{\"requestId\":\"no\",\"id\":\"s1\"}}}");
    rc = ngx_http_cast_ask_response(a, &id);
    ngx_test_str(&id, "s1", "*-response: context.id first");
    json_decref(a);

    a = ngx_test_json("{\"event\":{\"hub.event\":\"status-response\","
                      "\"context\":{\"requestId\":\"r9\"}}}");
    rc = ngx_http_cast_ask_response(a, &id);
    ngx_test_str(&id, "r9", "*-response: else context.requestId");
    json_decref(a);

    a = ngx_test_json("{\"event\":{\"hub.event\":\"status-response\","
                      "\"context\":[]}}");
    rc = ngx_http_cast_ask_response(a, &id);
    ngx_test_ok(rc == NGX_OK && id.len == 0, "a response without an id");
    json_decref(a);

    a = ngx_test_json("{\"event\":{\"hub.event\":\"-response\"}}");
    ngx_test_ok(ngx_http_cast_ask_response(a, &id) == NGX_DECLINED,
                "\"-response\" alone: not a response");
    json_decref(a);

    a = ngx_test_json("{\"event\":{\"hub.event\":\"patient-open\"}}");
    ngx_test_ok(ngx_http_cast_ask_response(a, &id) == NGX_DECLINED,
                "an event: not a response");
    json_decref(a);

    /* G2: two targets */

    rc = ngx_test_begin("{\"subscriber.name\":\"REQ\",\"id\":\"q\","
                        "\"subscriber.actor\":\"ID\","
                        "\"event\":{\"hub.event\":\"status-request\"}}",
                        "[" REC("r1", "U", "*", "REQ", "", "", "", "true")
                        "," REC("a1", "U", "*", "A", "PA", "", "", "true")
                        "," REC("a2", "U", "*", "A", "PA2", "", "", "true")
                        "," REC("b1", "U", "*", "B", "", "", "", "true")
                        "]", &ask, &body, &c);
    ngx_test_ok(rc == NGX_OK && json_array_size(c.targets) == 3,
                "three sockets, two names");
    ngx_test_ok(c.max_answers == 3 + NGX_HTTP_CAST_ASK_EXTRA,
                "answers bounded");

    ngx_str_set(&id, "a2");
    ngx_test_ok(ngx_http_cast_ask_asked(&c, &id), "a2 was asked");
    ngx_str_set(&id, "r1");
    ngx_test_ok(!ngx_http_cast_ask_asked(&c, &id),
                "the requester's socket was not");

    ngx_str_set(&name, "A");
    ngx_str_set(&product, "SOCKET-PRODUCT");
    ngx_str_null(&none);

    a = ngx_test_answer("e1", "A", "q");
    rc = ngx_http_cast_ask_collect(&ask, &c, a, &name, &product);
    ngx_test_ok(rc == NGX_OK && !c.complete, "A answered, B not yet");
    rc = ngx_http_cast_ask_collect(&ask, &c, a, &name, &product);
    ngx_test_ok(rc == NGX_DECLINED, "the same envelope again: ignored");
    json_decref(a);

    reply = ngx_http_cast_ask_reply(&ask, &c, 1);
    ngx_test_ok(strcmp(ngx_test_reply_str(&c, "error"), "timeout") == 0
                && strcmp(ngx_test_reply_str(&c, "timedOut"), "true") == 0
                && strcmp(ngx_test_reply_str(&c, "ok"), "false") == 0,
                "timed out now: error timeout, timedOut, not ok");
    ngx_test_ok(strcmp(ngx_test_dump(json_object_get(reply, "missing")),
                       "[\"B\"]") == 0, "missing B");

    r0 = json_array_get(json_object_get(reply, "responses"), 0);
    ngx_test_ok(strcmp(json_string_value(json_object_get(r0, "productName")),
                       "PA") == 0, "productName: the target's (first)");
    ngx_test_ok(strcmp(json_string_value(json_object_get(r0, "actor")),
                       "ID") == 0, "actor: the requester's, if none said");
    ngx_test_ok(strcmp(json_string_value(json_object_get(r0, "id")), "e1")
                == 0, "id: the envelope's");
    ngx_test_ok(json_integer_value(json_object_get(json_object_get(r0,
                                   "data"), "n")) == 1, "data");

    /* B answers without an id and a name: its socket's name */

    a = ngx_test_json("{\"actor\":\"BB\",\"event\":{\"hub.event\":"
                      "\"status-response\",\"context\":{\"id\":\"q\"}}}");
    ngx_str_set(&name, "B");
    rc = ngx_http_cast_ask_collect(&ask, &c, a, &name, &product);
    ngx_test_ok(rc == NGX_OK && c.complete, "B answered: complete");
    rc = ngx_http_cast_ask_collect(&ask, &c, a, &name, &product);
    ngx_test_ok(rc == NGX_OK, "no envelope id: not told apart, taken");
    json_decref(a);

    reply = ngx_http_cast_ask_reply(&ask, &c, 0);
    r0 = json_array_get(json_object_get(reply, "responses"), 1);
    ngx_test_ok(strcmp(json_string_value(json_object_get(r0, "subscriber")),
                       "B") == 0, "subscriber: the socket's");
    ngx_test_ok(strcmp(json_string_value(json_object_get(r0, "productName")),
                       "SOCKET-PRODUCT") == 0,
                "productName: the socket's, when the target had none");
    ngx_test_ok(json_is_null(json_object_get(r0, "id")), "id null");
    ngx_test_ok(strcmp(json_string_value(json_object_get(r0, "actor")),
                       "BB") == 0, "actor: the answer's");
    ngx_test_ok(strcmp(ngx_test_reply_str(&c, "ok"), "true") == 0
                && json_object_get(reply, "error") == NULL
                && json_array_size(json_object_get(reply, "missing")) == 0,
                "complete: ok, no error, none missing");

    /* at most max_answers */

    for (i = 0; i < 40; i++) {
        char  eid[16];

        snprintf(eid, sizeof(eid), "x%u", (unsigned) i);
        a = ngx_test_answer(eid, "Z", "q");
        (void) ngx_http_cast_ask_collect(&ask, &c, a, &none, &none);
        json_decref(a);
    }

    ngx_test_ok(c.answers == c.max_answers
                && json_array_size(json_object_get(c.reply, "responses"))
                   == c.max_answers,
                "answers stop at the bound (%u)", (unsigned) c.answers);

    ngx_http_cast_ask_free(&c);
    json_decref(body);

    /* a target the message did not reach is not awaited */

    rc = ngx_test_begin("{\"subscriber.name\":\"REQ\",\"id\":\"q\","
                        "\"event\":{\"hub.event\":\"status-request\"}}",
                        "[" REC("r1", "U", "*", "REQ", "", "", "", "true")
                        "," REC("a1", "U", "*", "A", "", "", "", "true")
                        "]", &ask, &body, &c);
    ngx_http_cast_ask_unsent(&ask, &c, json_array_get(c.targets, 0));
    ngx_test_ok(c.complete, "unsent: nothing left to wait for");
    ngx_http_cast_ask_free(&c);
    json_decref(body);
}


static void
test_get(void)
{
    json_t                   *recs, *msg, *a, *actor;
    ngx_str_t                 id, name, dt, topic, none;
    ngx_int_t                 rc;
    ngx_http_cast_ask_t       ask;
    ngx_http_cast_collate_t   c;

    static const char  *records =
        "[" REC("a1", "T1", "*", "OHIF", "", "", "", "false") ","
        REC("a2", "T2", "*", "OHIF", "", "", "", "true") ","
        REC("a3", "T3", "*", "OHIF", "", "", "", "true") "]";

    ngx_str_set(&id, "req-uuid");
    ngx_str_set(&name, "OHIF");
    ngx_str_set(&dt, "SCENEVIEW");
    ngx_str_null(&topic);
    ngx_str_null(&none);
    actor = json_string("ID");

    ngx_http_cast_ask_get(&ask, &id, &name, &dt, &topic, actor);
    ngx_test_ok(ask.timeout == 5000, "G1: 5 s");

    recs = ngx_test_json(records);
    rc = ngx_http_cast_ask_begin(&ask, recs, &c);
    ngx_test_ok(rc == NGX_OK && json_array_size(c.targets) == 1
                && strcmp(json_string_value(json_object_get(
                              json_array_get(c.targets, 0), "id")), "a2")
                   == 0,
                "the first connected one of that name");
    ngx_test_ok(strcmp(ngx_test_reply_str(&c, "endpoint"), "a2") == 0
                && strcmp(ngx_test_reply_str(&c, "topic"), "T2") == 0,
                "endpoint, topic: its");

    msg = ngx_http_cast_ask_message(&ask, json_array_get(c.targets, 0),
                                    (u_char *) "00000000-0000-4000-8000-"
                                    "000000000000",
                                    (u_char *) "2026-12-05T10:00:00.000Z");
    ngx_test_ok(strcmp(json_string_value(json_object_get(json_object_get(
                       json_object_get(msg, "event"), "context"),
                       "requestId")), "req-uuid") == 0,
                "context.requestId");
    ngx_test_ok(strcmp(json_string_value(json_object_get(json_object_get(msg,
                       "event"), "hub.event")), "get-request") == 0,
                "get-request");
    ngx_test_ok(strcmp(json_string_value(json_object_get(msg, "actor")),
                       "ID") == 0, "actor");
    json_decref(msg);

    a = ngx_test_json("{\"id\":\"o\",\"event\":{\"hub.event\":"
                      "\"get-response\",\"context\":{\"requestId\":"
                      "\"req-uuid\",\"data\":[1]}}}");
    rc = ngx_http_cast_ask_collect(&ask, &c, a, &none, &none);
    ngx_test_ok(rc == NGX_OK && c.complete, "the answer completes");
    ngx_test_ok(json_object_get(ngx_http_cast_ask_reply(&ask, &c, 0),
                                "response") == a,
                "response: the whole envelope");
    rc = ngx_http_cast_ask_collect(&ask, &c, a, &none, &none);
    ngx_test_ok(rc == NGX_DECLINED, "a second answer: ignored");
    json_decref(a);
    ngx_http_cast_ask_free(&c);

    /* timed out */

    rc = ngx_http_cast_ask_begin(&ask, recs, &c);
    a = json_object_get(json_object_get(ngx_http_cast_ask_reply(&ask, &c, 1),
                                        "response"), "error");
    ngx_test_ok(strcmp(json_string_value(a),
                       "Timeout waiting for response") == 0,
                "timed out: the G1 error");
    ngx_http_cast_ask_free(&c);

    /* on a topic: its one only (not connected) */

    ngx_str_set(&topic, "T1");
    ngx_http_cast_ask_get(&ask, &id, &name, &dt, &topic, NULL);
    rc = ngx_http_cast_ask_begin(&ask, recs, &c);
    ngx_test_ok(rc == NGX_DONE
                && strcmp(ngx_test_reply_str(&c, "connected"), "false") == 0
                && strcmp(ngx_test_reply_str(&c, "exists"), "true") == 0
                && strcmp(ngx_test_reply_str(&c, "requestedTopic"), "T1")
                   == 0,
                "topic T1: exists, not connected");
    ngx_test_ok(json_object_get(c.reply, "actor") == NULL, "no actor");
    ngx_http_cast_ask_free(&c);

    ngx_str_set(&name, "ohif");
    ngx_str_null(&topic);
    ngx_http_cast_ask_get(&ask, &id, &name, &dt, &topic, NULL);
    rc = ngx_http_cast_ask_begin(&ask, recs, &c);
    ngx_test_ok(rc == NGX_DONE
                && strcmp(ngx_test_reply_str(&c, "exists"), "false") == 0,
                "names are matched exactly (as G1 does)");
    ngx_http_cast_ask_free(&c);

    json_decref(recs);
    json_decref(actor);
}


int
main(void)
{
    ngx_test_core_init();

    test_parse();
    test_targets();
    test_collect();
    test_get();

    return ngx_test_done();
}
