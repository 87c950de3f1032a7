
/*
 * libFuzzer harness for request/response between apps (ask.c): the G2
 * request checked, its targets among listed records, the messages, the
 * responses collated, the replies.
 *
 * The input is parsed as JSON.  An object with a "body" member is a
 * scenario: "body" is the request, "records" the records a store lists
 * (else a fixed set), "answers" the messages sockets send; anything else
 * is the request, its own records and its own answer at once.  Checked
 * here, from the reference (1.8), independently of ask.c:
 *   - an accepted request has a subscriber.name, an id of 1 to 256
 *     bytes, a hub.event that ends in "-request" after at least one
 *     byte, and a timeout of 1 ms to 300 s; a refused one says why;
 *   - a request that can be sent has targets, no more than the records,
 *     each connected ("bound") and not named as the requester; one that
 *     cannot has an error and no targets to wait for;
 *   - each target's message carries context.id = the request id and the
 *     request's hub.event;
 *   - answers taken never pass the bound; the reply is an object whose
 *     "ok" is true exactly when it has no "error", and it serializes.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_ask.h"
#include "ngx_test_core.h"
#include "ngx_http_cast_fuzz.h"


static const char  ngx_http_cast_fuzz_records[] =
    "[{\"id\":\"r1\",\"topic\":\"U\",\"events\":\"*\",\"name\":\"REQ\","
    "\"product_name\":\"\",\"actors\":\"\",\"client_info\":\"\","
    "\"bound\":true},"
    "{\"id\":\"a1\",\"topic\":\"U\",\"events\":\"status-request, x\","
    "\"name\":\"A\",\"product_name\":\"P\",\"actors\":\"[\\\"ID\\\"]\","
    "\"client_info\":\"\",\"bound\":true},"
    "{\"id\":\"b1\",\"topic\":\"*\",\"events\":\"*\",\"name\":\"B\","
    "\"product_name\":\"\",\"actors\":\"ID, W\",\"client_info\":"
    "\"{\\\"productName\\\":\\\"q\\\"}\",\"bound\":true},"
    "{\"id\":\"c1\",\"topic\":\"V\",\"events\":\"*\",\"name\":\"C\","
    "\"product_name\":\"\",\"actors\":\"\",\"client_info\":\"\","
    "\"bound\":false}]";


static ngx_uint_t
ngx_http_cast_fuzz_ends(const char *s, size_t n, const char *suffix)
{
    size_t  k;

    k = strlen(suffix);

    return n > k && strncasecmp(s + n - k, suffix, k) == 0;
}


static void
ngx_http_cast_fuzz_answer(ngx_http_cast_ask_t *ask,
    ngx_http_cast_collate_t *c, json_t *answer)
{
    ngx_str_t   id, name, product;
    ngx_int_t   rc;

    ngx_str_set(&name, "A");
    ngx_str_set(&product, "SOCKET");

    rc = ngx_http_cast_ask_response(answer, &id);

    if (rc == NGX_OK) {
        ngx_http_cast_fuzz_check(id.len <= NGX_HTTP_CAST_ASK_MAX_ID);
    }

    rc = ngx_http_cast_ask_collect(ask, c, answer, &name, &product);

    ngx_http_cast_fuzz_check(rc != NGX_ERROR);
    ngx_http_cast_fuzz_check(c->answers <= c->max_answers);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char                     *text;
    size_t                    i, n;
    json_t                   *root, *body, *records, *answers, *own;
    json_t                   *target, *msg, *ctx, *reply, *v, *answer;
    ngx_int_t                 rc;
    const char               *err, *name;
    ngx_http_cast_ask_t       ask;
    ngx_http_cast_collate_t   c;

    static ngx_uint_t  init;

    if (!init) {
        ngx_test_core_init();
        init = 1;
    }

    root = json_loadb((const char *) data, size, JSON_DECODE_ANY, NULL);
    if (root == NULL) {
        return 0;
    }

    own = NULL;
    body = json_object_get(root, "body");

    if (body) {
        records = json_object_get(root, "records");
        answers = json_object_get(root, "answers");

    } else {
        body = root;
        records = json_object_get(root, "records");
        answers = NULL;
    }

    if (!json_is_array(records)) {
        own = json_loads(ngx_http_cast_fuzz_records, 0, NULL);
        records = own;
    }

    err = NULL;
    rc = ngx_http_cast_ask_parse(body, &ask, &err);

    if (rc != NGX_OK) {
        ngx_http_cast_fuzz_check(rc == NGX_DECLINED);
        ngx_http_cast_fuzz_check(err != NULL && err[0] != '\0');
        goto done;
    }

    ngx_http_cast_fuzz_check(ask.name.len > 0);
    ngx_http_cast_fuzz_check(ask.id.len > 0
                             && ask.id.len <= NGX_HTTP_CAST_ASK_MAX_ID);
    ngx_http_cast_fuzz_check(ngx_http_cast_fuzz_ends((char *) ask.event.data,
                                                     ask.event.len,
                                                     "-request"));
    ngx_http_cast_fuzz_check(ask.timeout >= 1
                             && ask.timeout
                                <= NGX_HTTP_CAST_ASK_MAX_TIMEOUT);

    rc = ngx_http_cast_ask_begin(&ask, records, &c);

    ngx_http_cast_fuzz_check(rc != NGX_ERROR);
    ngx_http_cast_fuzz_check(json_array_size(c.targets)
                             <= json_array_size(records));

    if (rc == NGX_DONE) {
        ngx_http_cast_fuzz_check(c.error != NULL);

    } else {
        ngx_http_cast_fuzz_check(rc == NGX_OK && c.error == NULL
                                 && json_array_size(c.targets) > 0);
    }

    json_array_foreach(c.targets, i, target) {
        ngx_http_cast_fuzz_check(json_is_true(json_object_get(target,
                                                              "bound")));

        name = json_string_value(json_object_get(target, "name"));
        ngx_http_cast_fuzz_check(name != NULL);

        msg = ngx_http_cast_ask_message(&ask, target, (u_char *)
                                        "00000000-0000-4000-8000-"
                                        "000000000000",
                                        (u_char *)
                                        "2026-12-05T10:00:00.000Z");
        ngx_http_cast_fuzz_check(msg != NULL);

        ctx = json_object_get(json_object_get(msg, "event"), "context");
        v = json_object_get(ctx, "id");

        ngx_http_cast_fuzz_check(json_is_string(v)
                                 && json_string_length(v) == ask.id.len
                                 && memcmp(json_string_value(v),
                                           ask.id.data, ask.id.len) == 0);

        v = json_object_get(json_object_get(msg, "event"), "hub.event");
        ngx_http_cast_fuzz_check(json_is_string(v)
                                 && json_string_length(v) == ask.event.len);

        json_decref(msg);

        if (i == 0) {
            ngx_http_cast_ask_unsent(&ask, &c, target);
        }
    }

    if (rc == NGX_OK) {
        n = 0;

        json_array_foreach(answers, i, answer) {
            ngx_http_cast_fuzz_answer(&ask, &c, answer);
            n++;
        }

        if (n == 0) {
            ngx_http_cast_fuzz_answer(&ask, &c, root);
            ngx_http_cast_fuzz_answer(&ask, &c, root);
        }
    }

    reply = ngx_http_cast_ask_reply(&ask, &c, size & 1);
    ngx_http_cast_fuzz_check(json_is_object(reply));

    v = json_object_get(reply, "ok");
    ngx_http_cast_fuzz_check(json_is_boolean(v));
    ngx_http_cast_fuzz_check(json_is_true(v)
                             == (json_object_get(reply, "error") == NULL));

    text = json_dumps(reply, JSON_COMPACT);
    ngx_http_cast_fuzz_check(text != NULL);
    free(text);

    ngx_http_cast_ask_free(&c);

done:

    json_decref(own);
    json_decref(root);

    return 0;
}
