
/*
 * ngx_http_cast_module: request/response between apps, what it means
 * (see ngx_http_cast_ask.h).  Pure functions over JSON values.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <math.h>
#include <stdlib.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_ask.h"
#include "ngx_http_cast_util.h"


#define NGX_HTTP_CAST_ASK_SUFFIX   "-request"


static ngx_int_t ngx_http_cast_ask_begin_get(ngx_http_cast_ask_t *ask,
    json_t *records, ngx_http_cast_collate_t *c);
static ngx_int_t ngx_http_cast_ask_begin_request(ngx_http_cast_ask_t *ask,
    json_t *records, ngx_http_cast_collate_t *c);
static ngx_int_t ngx_http_cast_ask_timeout(json_t *value, ngx_msec_t *ms);
static void ngx_http_cast_ask_data_type(ngx_http_cast_ask_t *ask);
static ngx_uint_t ngx_http_cast_ask_topic_ok(ngx_http_cast_ask_t *ask,
    ngx_str_t *topic);
static ngx_uint_t ngx_http_cast_ask_events_ok(ngx_str_t *events,
    ngx_str_t *event);
static ngx_uint_t ngx_http_cast_ask_actor_ok(json_t *filter,
    ngx_str_t *actors);
static ngx_uint_t ngx_http_cast_ask_actor_listed(ngx_str_t *actors,
    json_t *list, ngx_str_t *want);
static ngx_uint_t ngx_http_cast_ask_product_ok(ngx_str_t *want,
    json_t *rec, ngx_str_t *product);
static json_t *ngx_http_cast_ask_sorted(json_t *set);
static ngx_int_t ngx_http_cast_ask_get_str(json_t *obj, const char *key,
    ngx_str_t *s);
static ngx_int_t ngx_http_cast_ask_str(json_t *value, ngx_str_t *s);
static void ngx_http_cast_ask_trim(ngx_str_t *s);
static ngx_uint_t ngx_http_cast_ask_eq(ngx_str_t *a, ngx_str_t *b);
static ngx_uint_t ngx_http_cast_ask_caseeq(ngx_str_t *a, ngx_str_t *b);
static ngx_uint_t ngx_http_cast_ask_ends(ngx_str_t *s, const char *suffix);
static json_t *ngx_http_cast_ask_json(ngx_str_t *s);
static json_t *ngx_http_cast_ask_json_or_null(ngx_str_t *s);
static json_t *ngx_http_cast_ask_key(ngx_str_t *s);


ngx_int_t
ngx_http_cast_ask_parse(json_t *body, ngx_http_cast_ask_t *ask,
    const char **err)
{
    json_t     *event, *context, *value, *item;
    size_t      i;
    ngx_str_t   s;

    ngx_memzero(ask, sizeof(ngx_http_cast_ask_t));

    ask->kind = NGX_HTTP_CAST_ASK_REQUEST;
    ask->body = body;
    ask->timeout = NGX_HTTP_CAST_ASK_TIMEOUT;

    if (!json_is_object(body)) {
        *err = "the request body must be a JSON object";
        return NGX_DECLINED;
    }

    if (ngx_http_cast_ask_get_str(body, "subscriber.name", &ask->name)
        != NGX_OK
        || ask->name.len == 0)
    {
        *err = "missing \"subscriber.name\"";
        return NGX_DECLINED;
    }

    if (ask->name.len > NGX_HTTP_CAST_MAX_FIELD) {
        *err = "\"subscriber.name\" is too long";
        return NGX_DECLINED;
    }

    event = json_object_get(body, "event");

    if (!json_is_object(event)
        || ngx_http_cast_ask_get_str(event, "hub.event", &ask->event)
           != NGX_OK
        || ask->event.len > NGX_HTTP_CAST_MAX_EVENT_NAME
        || ask->event.len <= sizeof(NGX_HTTP_CAST_ASK_SUFFIX) - 1
        || !ngx_http_cast_ask_ends(&ask->event, NGX_HTTP_CAST_ASK_SUFFIX))
    {
        *err = "event.hub.event must be a *-request event name";
        return NGX_DECLINED;
    }

    if (ngx_http_cast_ask_get_str(body, "id", &ask->id) != NGX_OK
        || ask->id.len == 0)
    {
        *err = "missing \"id\" on the request body";
        return NGX_DECLINED;
    }

    if (ask->id.len > NGX_HTTP_CAST_ASK_MAX_ID) {
        *err = "the request \"id\" is longer than 256 bytes";
        return NGX_DECLINED;
    }

    value = json_object_get(event, "hub.topic");

    if (value && !json_is_null(value)) {
        if (ngx_http_cast_ask_str(value, &ask->topic) != NGX_OK) {
            *err = "event.hub.topic must be a string";
            return NGX_DECLINED;
        }

        if (ask->topic.len > NGX_HTTP_CAST_MAX_TOPIC) {
            *err = "event.hub.topic is too long";
            return NGX_DECLINED;
        }
    }

    context = json_object_get(event, "context");

    if (json_is_object(context)) {
        (void) ngx_http_cast_ask_get_str(context, "dataType",
                                         &ask->data_type);

        if (ask->data_type.len > NGX_HTTP_CAST_MAX_EVENT_NAME) {
            *err = "event.context.dataType is too long";
            return NGX_DECLINED;
        }

        value = json_object_get(context, "timeoutSeconds");

        if (value && ngx_http_cast_ask_timeout(value, &ask->timeout)
                     != NGX_OK)
        {
            *err = "event.context.timeoutSeconds must be a number";
            return NGX_DECLINED;
        }
    }

    ngx_str_set(&s, "idc-claude-request");

    if (ngx_http_cast_ask_caseeq(&ask->event, &s)
        && ask->timeout < NGX_HTTP_CAST_ASK_IDC_TIMEOUT)
    {
        ask->timeout = NGX_HTTP_CAST_ASK_IDC_TIMEOUT;
    }

    if (ask->data_type.len == 0) {
        ngx_http_cast_ask_data_type(ask);
    }

    value = json_object_get(body, "subscriber.actor");
    ask->actor = json_is_null(value) ? NULL : value;

    /* target.actor: a name, or a list of names; "*" or none: any */

    value = json_object_get(body, "target.actor");

    if (json_is_string(value)) {
        (void) ngx_http_cast_ask_str(value, &s);

        if (s.len && !(s.len == 1 && s.data[0] == '*')) {
            ask->target_actor = value;
        }

    } else if (json_is_array(value)) {
        ask->target_actor = value;

        json_array_foreach(value, i, item) {
            if (!json_is_string(item)) {
                *err = "target.actor must be a name or a list of names";
                return NGX_DECLINED;
            }

            (void) ngx_http_cast_ask_str(item, &s);

            if (s.len == 1 && s.data[0] == '*') {
                ask->target_actor = NULL;
            }
        }

        if (json_array_size(value) == 0) {
            ask->target_actor = NULL;
        }

    } else if (value && !json_is_null(value)) {
        *err = "target.actor must be a name or a list of names";
        return NGX_DECLINED;
    }

    value = json_object_get(body, "target.product.name");

    if (value && !json_is_null(value)) {
        if (ngx_http_cast_ask_str(value, &ask->target_product) != NGX_OK) {
            *err = "target.product.name must be a string";
            return NGX_DECLINED;
        }

        if (ask->target_product.len == 1
            && ask->target_product.data[0] == '*')
        {
            ask->target_product.len = 0;
        }
    }

    return NGX_OK;
}


/*
 * context.timeoutSeconds: a number or a numeric string; none, zero or
 * less: the default; more than 300 s: 300 s
 */

static ngx_int_t
ngx_http_cast_ask_timeout(json_t *value, ngx_msec_t *ms)
{
    char    *end;
    double   d;

    if (json_is_null(value)) {
        return NGX_OK;
    }

    if (json_is_number(value)) {
        d = json_number_value(value);

    } else if (json_is_string(value)) {
        if (json_string_length(value) == 0
            || json_string_length(value) > 64)
        {
            return NGX_DECLINED;
        }

        d = strtod(json_string_value(value), &end);

        if (end == json_string_value(value) || *end != '\0') {
            return NGX_DECLINED;
        }

    } else {
        return NGX_DECLINED;
    }

    if (isnan(d) || d <= 0) {
        return NGX_OK;
    }

    if (d >= NGX_HTTP_CAST_ASK_MAX_TIMEOUT / 1000) {
        *ms = NGX_HTTP_CAST_ASK_MAX_TIMEOUT;
        return NGX_OK;
    }

    *ms = (ngx_msec_t) (d * 1000);

    if (*ms == 0) {
        *ms = 1;
    }

    return NGX_OK;
}


/*
 * The dataType a request without context.dataType has: its event's
 * name less "-request"; the image types in upper case (as G2 does).
 */

static void
ngx_http_cast_ask_data_type(ngx_http_cast_ask_t *ask)
{
    size_t      len;
    ngx_str_t   base;
    ngx_uint_t  i;

    static ngx_str_t  upper[] = {
        ngx_string("pngthumbnail"), ngx_string("jpgthumbnail"),
        ngx_string("pngfullsize"), ngx_string("jpgfullsize")
    };

    len = ask->event.len - (sizeof(NGX_HTTP_CAST_ASK_SUFFIX) - 1);

    base.data = ask->event.data;
    base.len = len;

    for (i = 0; i < sizeof(upper) / sizeof(upper[0]); i++) {
        if (ngx_http_cast_ask_caseeq(&base, &upper[i])) {
            break;
        }
    }

    if (i == sizeof(upper) / sizeof(upper[0])) {
        ask->data_type = base;
        return;
    }

    for (i = 0; i < len; i++) {
        ask->type[i] = ngx_toupper(base.data[i]);
    }

    ask->data_type.data = ask->type;
    ask->data_type.len = len;
}


void
ngx_http_cast_ask_get(ngx_http_cast_ask_t *ask, ngx_str_t *id,
    ngx_str_t *name, ngx_str_t *data_type, ngx_str_t *topic, json_t *actor)
{
    ngx_memzero(ask, sizeof(ngx_http_cast_ask_t));

    ask->kind = NGX_HTTP_CAST_ASK_GET;
    ask->id = *id;
    ask->name = *name;
    ask->data_type = *data_type;
    ask->topic = *topic;
    ask->actor = actor;
    ngx_str_set(&ask->event, "get-request");
    ask->timeout = NGX_HTTP_CAST_ASK_GET_TIMEOUT;
}


ngx_int_t
ngx_http_cast_ask_begin(ngx_http_cast_ask_t *ask, json_t *records,
    ngx_http_cast_collate_t *c)
{
    ngx_memzero(c, sizeof(ngx_http_cast_collate_t));

    c->reply = json_object();
    c->targets = json_array();

    if (c->reply == NULL || c->targets == NULL || !json_is_array(records)) {
        return NGX_ERROR;
    }

    if (ask->kind == NGX_HTTP_CAST_ASK_GET) {
        return ngx_http_cast_ask_begin_get(ask, records, c);
    }

    return ngx_http_cast_ask_begin_request(ask, records, c);
}


/*
 * G1: the first subscription of that name (on that topic, if given),
 * a connected one first
 */

static ngx_int_t
ngx_http_cast_ask_begin_get(ngx_http_cast_ask_t *ask, json_t *records,
    ngx_http_cast_collate_t *c)
{
    int         rc;
    json_t     *rec, *first, *best, *match, *response;
    size_t      i;
    ngx_str_t   name, topic;

    first = NULL;
    best = NULL;

    json_array_foreach(records, i, rec) {
        if (ngx_http_cast_ask_get_str(rec, "name", &name) != NGX_OK
            || ngx_http_cast_ask_get_str(rec, "topic", &topic) != NGX_OK
            || !ngx_http_cast_ask_eq(&name, &ask->name)
            || (ask->topic.len && !ngx_http_cast_ask_eq(&topic, &ask->topic)))
        {
            continue;
        }

        if (json_is_true(json_object_get(rec, "bound"))) {
            best = rec;
            break;
        }

        if (first == NULL) {
            first = rec;
        }
    }

    match = best ? best : first;

    rc = json_object_set_new(c->reply, "subscriber",
                             ngx_http_cast_ask_json(&ask->name));
    rc |= json_object_set_new(c->reply, "dataType",
                              ngx_http_cast_ask_json_or_null(
                                                          &ask->data_type));
    rc |= json_object_set_new(c->reply, "exists", json_boolean(match));
    rc |= json_object_set_new(c->reply, "connected", json_boolean(best));
    rc |= json_object_set(c->reply, "topic",
                          match ? json_object_get(match, "topic")
                                : json_null());
    rc |= json_object_set(c->reply, "endpoint",
                          match ? json_object_get(match, "id")
                                : json_null());

    if (ask->topic.len) {
        rc |= json_object_set_new(c->reply, "requestedTopic",
                                  ngx_http_cast_ask_json(&ask->topic));
    }

    if (ask->actor) {
        rc |= json_object_set(c->reply, "actor", ask->actor);
    }

    if (rc != 0) {
        return NGX_ERROR;
    }

    c->max_answers = 1;

    if (best) {
        return json_array_append(c->targets, best) ? NGX_ERROR : NGX_OK;
    }

    if (match == NULL) {
        c->error = "subscriber-not-found";
        response = json_pack("{s:s}", "error", "Subscriber not found");

    } else {
        c->error = "subscriber-not-connected";
        response = json_pack("{s:s}", "error", "Subscriber not connected");
    }

    if (json_object_set_new(c->reply, "response", response) != 0) {
        return NGX_ERROR;
    }

    return NGX_DONE;
}


/*
 * G2: the requester's subscription, and every other one the request
 * targets by topic, events, target.actor and target.product.name
 */

static ngx_int_t
ngx_http_cast_ask_begin_request(ngx_http_cast_ask_t *ask, json_t *records,
    ngx_http_cast_collate_t *c)
{
    int          rc;
    json_t      *rec, *value, *expected, *key;
    size_t       i;
    ngx_str_t    name, topic, events, actors, product;
    ngx_uint_t   exists, connected, matched, bound, targets;
    const char  *k;

    c->missing = json_object();
    c->products = json_object();
    c->seen = json_object();

    if (c->missing == NULL || c->products == NULL || c->seen == NULL) {
        return NGX_ERROR;
    }

    exists = 0;
    connected = 0;
    matched = 0;
    targets = 0;

    json_array_foreach(records, i, rec) {
        if (ngx_http_cast_ask_get_str(rec, "name", &name) != NGX_OK
            || ngx_http_cast_ask_get_str(rec, "topic", &topic) != NGX_OK
            || ngx_http_cast_ask_get_str(rec, "events", &events) != NGX_OK
            || !ngx_http_cast_ask_topic_ok(ask, &topic))
        {
            continue;
        }

        bound = json_is_true(json_object_get(rec, "bound"));

        if (ngx_http_cast_ask_eq(&name, &ask->name)) {
            exists = 1;
            connected |= bound;
            continue;
        }

        /* nor the requester's other spellings (as echoes are kept) */

        if (ngx_http_cast_ask_caseeq(&name, &ask->name)) {
            continue;
        }

        if (ngx_http_cast_ask_get_str(rec, "actors", &actors) != NGX_OK) {
            ngx_str_null(&actors);
        }

        if (!ngx_http_cast_ask_events_ok(&events, &ask->event)
            || !ngx_http_cast_ask_actor_ok(ask->target_actor, &actors)
            || !ngx_http_cast_ask_product_ok(&ask->target_product, rec,
                                             &product))
        {
            continue;
        }

        matched = 1;

        if (!bound) {
            continue;
        }

        if (json_array_append(c->targets, rec) != 0) {
            return NGX_ERROR;
        }

        targets++;

        key = ngx_http_cast_ask_key(&name);
        if (key == NULL) {
            continue;
        }

        k = json_string_value(key);

        if (json_object_set_new(c->missing, k, json_true()) != 0
            || (json_object_get(c->products, k) == NULL
                && json_object_set_new(c->products, k,
                                       ngx_http_cast_ask_json_or_null(
                                                                  &product))
                   != 0))
        {
            json_decref(key);
            return NGX_ERROR;
        }

        json_decref(key);
    }

    expected = ngx_http_cast_ask_sorted(c->missing);
    if (expected == NULL) {
        return NGX_ERROR;
    }

    rc = json_object_set_new(c->reply, "ok", json_false());
    rc |= json_object_set_new(c->reply, "id",
                              ngx_http_cast_ask_json(&ask->id));
    rc |= json_object_set_new(c->reply, "subscriber.name",
                              ngx_http_cast_ask_json(&ask->name));
    rc |= json_object_set_new(c->reply, "dataType",
                              ngx_http_cast_ask_json_or_null(
                                                          &ask->data_type));
    rc |= json_object_set(c->reply, "subscriber.actor",
                          ask->actor ? ask->actor : json_null());
    value = json_object_get(ask->body, "target.actor");
    rc |= json_object_set(c->reply, "target.actor",
                          ask->target_actor ? value : json_null());
    rc |= json_object_set_new(c->reply, "exists", json_boolean(exists));
    rc |= json_object_set_new(c->reply, "connected", json_boolean(connected));
    rc |= json_object_set_new(c->reply, "topic",
                              ngx_http_cast_ask_json_or_null(&ask->topic));
    rc |= json_object_set_new(c->reply, "endpoint", json_null());
    rc |= json_object_set_new(c->reply, "targetExists",
                              json_boolean(matched));
    rc |= json_object_set_new(c->reply, "targetConnected",
                              json_boolean(targets));
    rc |= json_object_set_new(c->reply, "responses", json_array());
    rc |= json_object_set_new(c->reply, "expected", expected);
    rc |= json_object_set_new(c->reply, "missing", json_array());
    rc |= json_object_set_new(c->reply, "timedOut", json_false());

    if (ask->topic.len) {
        rc |= json_object_set_new(c->reply, "requestedTopic",
                                  ngx_http_cast_ask_json(&ask->topic));
    }

    if (ask->target_product.len) {
        rc |= json_object_set_new(c->reply, "target.product.name",
                                  ngx_http_cast_ask_json(
                                                     &ask->target_product));
    }

    if (rc != 0) {
        return NGX_ERROR;
    }

    if (!exists) {
        c->error = "requester-not-found";

    } else if (!connected) {
        c->error = "requester-not-connected";

    } else if (!matched) {
        c->error = "target-not-found";

    } else if (!targets) {
        c->error = "target-not-connected";

    } else if (json_object_size(c->missing) == 0) {
        /* the targets have no names: no answer could be told apart */
        c->error = "target-not-found";
    }

    if (c->error) {
        json_object_clear(c->missing);
        return NGX_DONE;
    }

    c->max_answers = ngx_min(targets + NGX_HTTP_CAST_ASK_EXTRA,
                             NGX_HTTP_CAST_ASK_MAX_ANSWERS);

    return NGX_OK;
}


json_t *
ngx_http_cast_ask_message(ngx_http_cast_ask_t *ask, json_t *target,
    u_char *uuid, u_char *ts)
{
    int         rc;
    json_t     *msg, *event, *context, *orig, *value;
    ngx_str_t   topic;

    msg = json_object();
    event = json_object();

    if (msg == NULL || event == NULL) {
        json_decref(msg);
        json_decref(event);
        return NULL;
    }

    rc = json_object_set_new(msg, "timestamp",
                             json_stringn((char *) ts,
                                          NGX_HTTP_CAST_TIMESTAMP_LEN));
    rc |= json_object_set_new(msg, "id",
                              json_stringn((char *) uuid,
                                           NGX_HTTP_CAST_UUID_LEN));
    if (ask->kind == NGX_HTTP_CAST_ASK_GET) {
        context = json_object();
        rc |= json_object_set_new(context, "requestId",
                                  ngx_http_cast_ask_json(&ask->id));

    } else {
        /* the requester's context, with its id and dataType */

        orig = json_object_get(json_object_get(ask->body, "event"),
                               "context");
        context = json_is_object(orig) ? json_copy(orig) : json_object();
        rc |= json_object_set_new(context, "id",
                                  ngx_http_cast_ask_json(&ask->id));
    }

    if (ask->data_type.len) {
        rc |= json_object_set_new(context, "dataType",
                                  ngx_http_cast_ask_json(&ask->data_type));
    }

    /* G2 may ask every topic: the target's own then */

    if (ask->kind == NGX_HTTP_CAST_ASK_GET || ask->topic.len == 0
        || (ask->topic.len == 1 && ask->topic.data[0] == '*'))
    {
        if (ngx_http_cast_ask_get_str(target, "topic", &topic) != NGX_OK) {
            ngx_str_null(&topic);
        }

    } else {
        topic = ask->topic;
    }

    rc |= json_object_set_new(event, "hub.topic",
                              ngx_http_cast_ask_json(&topic));
    rc |= json_object_set_new(event, "hub.event",
                              ngx_http_cast_ask_json(&ask->event));
    rc |= json_object_set_new(event, "context", context);
    rc |= json_object_set_new(msg, "event", event);

    if (ask->kind == NGX_HTTP_CAST_ASK_GET) {
        if (ask->actor) {
            rc |= json_object_set(msg, "actor", ask->actor);
        }

    } else {
        rc |= json_object_set_new(msg, "subscriber.name",
                                  ngx_http_cast_ask_json(&ask->name));

        value = json_object_get(ask->body, "subscriber.product.name");

        if (json_is_string(value)) {
            rc |= json_object_set(msg, "subscriber.product.name", value);
        }

        if (ask->actor) {
            rc |= json_object_set(msg, "subscriber.actor", ask->actor);
        }

        if (ask->target_actor) {
            rc |= json_object_set(msg, "target.actor", ask->target_actor);
        }
    }

    if (rc != 0) {
        json_decref(msg);
        return NULL;
    }

    return msg;
}


ngx_uint_t
ngx_http_cast_ask_asked(ngx_http_cast_collate_t *c, ngx_str_t *id)
{
    json_t     *target;
    size_t      i;
    ngx_str_t   have;

    json_array_foreach(c->targets, i, target) {
        if (ngx_http_cast_ask_get_str(target, "id", &have) == NGX_OK
            && ngx_http_cast_ask_eq(&have, id))
        {
            return 1;
        }
    }

    return 0;
}


void
ngx_http_cast_ask_unsent(ngx_http_cast_ask_t *ask,
    ngx_http_cast_collate_t *c, json_t *target)
{
    json_t     *key;
    ngx_str_t   name;

    if (ask->kind == NGX_HTTP_CAST_ASK_GET || c->missing == NULL
        || ngx_http_cast_ask_get_str(target, "name", &name) != NGX_OK
        || (key = ngx_http_cast_ask_key(&name)) == NULL)
    {
        return;
    }

    (void) json_object_del(c->missing, json_string_value(key));
    json_decref(key);

    if (json_object_size(c->missing) == 0) {
        c->complete = 1;
    }
}


ngx_int_t
ngx_http_cast_ask_response(json_t *root, ngx_str_t *id)
{
    json_t      *event, *context, *value;
    ngx_str_t    name, get;
    const char  *first, *second;

    ngx_str_null(id);

    event = json_object_get(root, "event");

    if (ngx_http_cast_ask_get_str(event, "hub.event", &name) != NGX_OK) {
        return NGX_DECLINED;
    }

    ngx_str_set(&get, "get-response");

    if (ngx_http_cast_ask_caseeq(&name, &get)) {
        /* G1 */
        first = "requestId";
        second = "id";

    } else if (name.len > sizeof("-response") - 1
               && ngx_http_cast_ask_ends(&name, "-response"))
    {
        first = "id";
        second = "requestId";

    } else {
        return NGX_DECLINED;
    }

    context = json_object_get(event, "context");

    value = json_object_get(context, first);

    if (!json_is_string(value)) {
        value = json_object_get(context, second);
    }

    if (json_is_string(value)
        && json_string_length(value) <= NGX_HTTP_CAST_ASK_MAX_ID)
    {
        id->data = (u_char *) json_string_value(value);
        id->len = json_string_length(value);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_cast_ask_collect(ngx_http_cast_ask_t *ask,
    ngx_http_cast_collate_t *c, json_t *root, ngx_str_t *name,
    ngx_str_t *product)
{
    int         rc;
    json_t     *entry, *actor, *prod, *data, *key;
    ngx_str_t   id, who, p;

    if (c->answers >= c->max_answers) {
        return NGX_DECLINED;
    }

    if (ask->kind == NGX_HTTP_CAST_ASK_GET) {
        /* G1: the whole envelope of the first answer */

        if (json_object_set(c->reply, "response", root) != 0) {
            return NGX_ERROR;
        }

        c->answers++;
        c->complete = 1;

        return NGX_OK;
    }

    /* G2: an envelope once */

    if (ngx_http_cast_ask_get_str(root, "id", &id) != NGX_OK) {
        ngx_str_null(&id);
    }

    key = ngx_http_cast_ask_key(&id);

    if (key) {
        if (json_object_get(c->seen, json_string_value(key))) {
            json_decref(key);
            return NGX_DECLINED;
        }

        rc = json_object_set_new(c->seen, json_string_value(key),
                                 json_true());
        json_decref(key);

        if (rc != 0) {
            return NGX_ERROR;
        }
    }

    /* who answered: as it says, else its subscription */

    if (ngx_http_cast_ask_get_str(root, "subscriber.name", &who) != NGX_OK
        || who.len == 0)
    {
        who = *name;
    }

    actor = json_object_get(root, "actor");

    if (actor == NULL || json_is_null(actor)) {
        actor = json_object_get(root, "subscriber.actor");
    }

    if (actor == NULL || json_is_null(actor)) {
        actor = ask->actor ? ask->actor : json_null();
    }

    key = ngx_http_cast_ask_key(&who);

    prod = key ? json_object_get(c->products, json_string_value(key))
               : NULL;

    if (!json_is_string(prod)) {
        prod = json_object_get(root, "subscriber.product.name");
    }

    if (!json_is_string(prod)) {
        prod = NULL;
    }

    data = json_object_get(json_object_get(json_object_get(root, "event"),
                                           "context"),
                           "data");

    entry = json_object();
    if (entry == NULL) {
        json_decref(key);
        return NGX_ERROR;
    }

    p = *product;

    rc = json_object_set_new(entry, "id",
                             ngx_http_cast_ask_json_or_null(&id));
    rc |= json_object_set_new(entry, "subscriber",
                              ngx_http_cast_ask_json_or_null(&who));
    rc |= json_object_set(entry, "actor", actor);
    rc |= json_object_set_new(entry, "productName",
                              prod ? json_incref(prod)
                                   : ngx_http_cast_ask_json_or_null(&p));
    rc |= json_object_set(entry, "data", data ? data : json_null());

    if (rc != 0) {
        json_decref(entry);
        json_decref(key);
        return NGX_ERROR;
    }

    if (json_array_append_new(json_object_get(c->reply, "responses"), entry)
        != 0)
    {
        json_decref(key);
        return NGX_ERROR;
    }

    c->answers++;

    if (key) {
        (void) json_object_del(c->missing, json_string_value(key));
        json_decref(key);
    }

    if (json_object_size(c->missing) == 0) {
        c->complete = 1;
    }

    return NGX_OK;
}


json_t *
ngx_http_cast_ask_reply(ngx_http_cast_ask_t *ask, ngx_http_cast_collate_t *c,
    ngx_uint_t timed_out)
{
    json_t      *missing, *response;
    const char  *error;

    if (ask->kind == NGX_HTTP_CAST_ASK_GET) {
        if (json_object_get(c->reply, "response") == NULL) {
            response = json_pack("{s:s}", "error",
                                 c->error ? "Could not send the request"
                                          : "Timeout waiting for response");

            if (json_object_set_new(c->reply, "response", response) != 0) {
                return NULL;
            }
        }

        return c->reply;
    }

    error = c->error ? c->error : (timed_out ? "timeout" : NULL);

    missing = ngx_http_cast_ask_sorted(c->missing);

    if (missing == NULL
        || json_object_set_new(c->reply, "missing", missing) != 0
        || json_object_set_new(c->reply, "timedOut",
                               json_boolean(timed_out)) != 0
        || json_object_set_new(c->reply, "ok", json_boolean(error == NULL))
           != 0
        || (error
            && json_object_set_new(c->reply, "error", json_string(error))
               != 0))
    {
        return NULL;
    }

    if (error == NULL) {
        (void) json_object_del(c->reply, "error");
    }

    return c->reply;
}


void
ngx_http_cast_ask_free(ngx_http_cast_collate_t *c)
{
    json_decref(c->reply);
    json_decref(c->targets);
    json_decref(c->missing);
    json_decref(c->products);
    json_decref(c->seen);

    ngx_memzero(c, sizeof(ngx_http_cast_collate_t));
}


/* a record's topic against the request's: equal, "*" on either side */

static ngx_uint_t
ngx_http_cast_ask_topic_ok(ngx_http_cast_ask_t *ask, ngx_str_t *topic)
{
    if (ask->topic.len == 0
        || (ask->topic.len == 1 && ask->topic.data[0] == '*')
        || (topic->len == 1 && topic->data[0] == '*'))
    {
        return 1;
    }

    return ngx_http_cast_ask_eq(topic, &ask->topic);
}


/*
 * A subscription's events list takes the event: one of its names (the
 * list split on commas, blanks trimmed, compared case-insensitively),
 * or "*" (as the hub matches events).
 */

static ngx_uint_t
ngx_http_cast_ask_events_ok(ngx_str_t *events, ngx_str_t *event)
{
    u_char     *p, *last, *comma;
    ngx_str_t   name;

    p = events->data;
    last = p + events->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');

        name.data = p;
        name.len = (comma ? comma : last) - p;
        ngx_http_cast_ask_trim(&name);

        if ((name.len == 1 && name.data[0] == '*')
            || ngx_http_cast_ask_caseeq(&name, event))
        {
            return 1;
        }

        if (comma == NULL) {
            break;
        }

        p = comma + 1;
    }

    return 0;
}


/*
 * target.actor (a name or a list of names) against a subscription's
 * actors: a JSON list of names as the clients send it, a JSON string,
 * or a bare comma list
 */

static ngx_uint_t
ngx_http_cast_ask_actor_ok(json_t *filter, ngx_str_t *actors)
{
    json_t      *list, *item;
    size_t       i;
    ngx_str_t    want;
    ngx_uint_t   ok;

    if (filter == NULL) {
        return 1;
    }

    if (actors->len == 0) {
        return 0;
    }

    list = json_loadb((char *) actors->data, actors->len,
                      JSON_DECODE_ANY, NULL);
    ok = 0;

    if (json_is_string(filter)) {
        (void) ngx_http_cast_ask_str(filter, &want);
        ok = ngx_http_cast_ask_actor_listed(actors, list, &want);

    } else {
        json_array_foreach(filter, i, item) {
            (void) ngx_http_cast_ask_str(item, &want);

            if (ngx_http_cast_ask_actor_listed(actors, list, &want)) {
                ok = 1;
                break;
            }
        }
    }

    json_decref(list);

    return ok;
}


static ngx_uint_t
ngx_http_cast_ask_actor_listed(ngx_str_t *actors, json_t *list,
    ngx_str_t *want)
{
    u_char     *p, *last, *comma;
    json_t     *item;
    size_t      i;
    ngx_str_t   name;

    if (json_is_array(list)) {
        json_array_foreach(list, i, item) {
            if (ngx_http_cast_ask_str(item, &name) == NGX_OK
                && ngx_http_cast_ask_eq(&name, want))
            {
                return 1;
            }
        }

        return 0;
    }

    if (json_is_string(list)) {
        (void) ngx_http_cast_ask_str(list, &name);
        return ngx_http_cast_ask_eq(&name, want);
    }

    p = actors->data;
    last = p + actors->len;

    while (p < last) {
        comma = ngx_strlchr(p, last, ',');

        name.data = p;
        name.len = (comma ? comma : last) - p;
        ngx_http_cast_ask_trim(&name);

        if (ngx_http_cast_ask_eq(&name, want)) {
            return 1;
        }

        if (comma == NULL) {
            break;
        }

        p = comma + 1;
    }

    return 0;
}


/*
 * target.product.name against the subscription's product name (its
 * subscriber.product.name, else the productName of its client_info),
 * case-insensitively; *product: that name
 */

static ngx_uint_t
ngx_http_cast_ask_product_ok(ngx_str_t *want, json_t *rec,
    ngx_str_t *product)
{
    json_t      *info;
    ngx_str_t    text, name;
    ngx_uint_t   ok;

    if (ngx_http_cast_ask_get_str(rec, "product_name", product) != NGX_OK) {
        ngx_str_null(product);
    }

    if (want->len == 0) {
        return 1;
    }

    if (product->len) {
        return ngx_http_cast_ask_caseeq(product, want);
    }

    if (ngx_http_cast_ask_get_str(rec, "client_info", &text) != NGX_OK
        || text.len == 0)
    {
        return 0;
    }

    info = json_loadb((char *) text.data, text.len, 0, NULL);

    ok = ngx_http_cast_ask_get_str(info, "productName", &name) == NGX_OK
         && ngx_http_cast_ask_caseeq(&name, want);

    json_decref(info);

    return ok;
}


/* the names of a set (an object's keys), sorted */

static json_t *
ngx_http_cast_ask_sorted(json_t *set)
{
    size_t       i, n;
    json_t      *out, *value, *item;
    const char  *key;

    out = json_array();
    if (out == NULL) {
        return NULL;
    }

    if (set == NULL) {
        return out;
    }

    json_object_foreach(set, key, value) {
        n = json_array_size(out);

        for (i = 0; i < n; i++) {
            item = json_array_get(out, i);

            if (strcmp(key, json_string_value(item)) < 0) {
                break;
            }
        }

        if (json_array_insert_new(out, i, json_string(key)) != 0) {
            json_decref(out);
            return NULL;
        }
    }

    return out;
}


/* a string member, trimmed of blanks; NGX_DECLINED if not a string */

static ngx_int_t
ngx_http_cast_ask_get_str(json_t *obj, const char *key, ngx_str_t *s)
{
    return ngx_http_cast_ask_str(json_object_get(obj, key), s);
}


static ngx_int_t
ngx_http_cast_ask_str(json_t *value, ngx_str_t *s)
{
    if (!json_is_string(value)) {
        return NGX_DECLINED;
    }

    s->data = (u_char *) json_string_value(value);
    s->len = json_string_length(value);

    ngx_http_cast_ask_trim(s);

    return NGX_OK;
}


static void
ngx_http_cast_ask_trim(ngx_str_t *s)
{
    while (s->len && (s->data[0] == ' ' || s->data[0] == '\t')) {
        s->data++;
        s->len--;
    }

    while (s->len
           && (s->data[s->len - 1] == ' ' || s->data[s->len - 1] == '\t'))
    {
        s->len--;
    }
}


static ngx_uint_t
ngx_http_cast_ask_eq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len && ngx_memcmp(a->data, b->data, a->len) == 0;
}


static ngx_uint_t
ngx_http_cast_ask_caseeq(ngx_str_t *a, ngx_str_t *b)
{
    return a->len == b->len
           && ngx_strncasecmp(a->data, b->data, a->len) == 0;
}


static ngx_uint_t
ngx_http_cast_ask_ends(ngx_str_t *s, const char *suffix)
{
    size_t  len;

    len = ngx_strlen(suffix);

    return s->len >= len
           && ngx_strncasecmp(s->data + s->len - len, (u_char *) suffix, len)
              == 0;
}


static json_t *
ngx_http_cast_ask_json(ngx_str_t *s)
{
    return json_stringn(s->len ? (char *) s->data : "", s->len);
}


static json_t *
ngx_http_cast_ask_json_or_null(ngx_str_t *s)
{
    return s->len ? json_stringn((char *) s->data, s->len) : json_null();
}


/* a name as a key of a set: NULL when empty or with a NUL in it */

static json_t *
ngx_http_cast_ask_key(ngx_str_t *s)
{
    if (s->len == 0 || ngx_strlchr(s->data, s->data + s->len, '\0')) {
        return NULL;
    }

    return json_stringn((char *) s->data, s->len);
}
