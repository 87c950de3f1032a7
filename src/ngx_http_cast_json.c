
/*
 * ngx_http_cast_module: JSON parsing and event validation (SPEC 2.2).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_text.h"


static ngx_int_t ngx_http_cast_errorf(ngx_pool_t *pool, ngx_str_t *err,
    const char *fmt, ...);
static ngx_int_t ngx_http_cast_json_text(json_t *obj, const char *key,
    size_t max, ngx_str_t *out);
static ngx_int_t ngx_http_cast_event_splice(ngx_pool_t *pool, ngx_str_t *raw,
    json_t *root, ngx_uint_t id, ngx_uint_t ts, ngx_uint_t topic,
    ngx_str_t *out);
static ngx_uint_t ngx_http_cast_json_objects(json_t *array);
static u_char *ngx_http_cast_json_ws(u_char *p, u_char *end);
static u_char *ngx_http_cast_json_skip_string(u_char *p, u_char *end);
static u_char *ngx_http_cast_json_skip_value(u_char *p, u_char *end);
static u_char *ngx_http_cast_json_member(u_char *open, u_char *end,
    const char *key);


ngx_int_t
ngx_http_cast_json_parse(ngx_pool_t *pool, u_char *p, size_t len,
    json_t **out, ngx_str_t *err)
{
    json_t        *json;
    json_error_t   error;

    /* any value: "not an object" is reported by the callers, clearly */
    json = json_loadb((const char *) (p ? p : (u_char *) ""), len,
                      JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &error);

    if (json == NULL) {
        return ngx_http_cast_errorf(pool, err,
                                    "invalid JSON: %s at line %d, column %d",
                                    error.text, error.line, error.column);
    }

    *out = json;

    return NGX_OK;
}


/*
 * Checks a published object (parsed from "raw") and fills in "ev".  In the
 * cast dialect a missing "id" and "timestamp" are added; the path topic is
 * written into the event when the body has none.  "ev->json" is what
 * subscribers get: the publisher's bytes, with the added members if any.
 */

ngx_int_t
ngx_http_cast_event_validate(ngx_pool_t *pool, json_t *root, ngx_str_t *raw,
    ngx_str_t *path_topic, ngx_uint_t dialect, ngx_http_cast_event_t *ev,
    ngx_str_t *err)
{
    u_char      buf[NGX_HTTP_CAST_UUID_LEN + 1];
    json_t     *event, *value;
    ngx_int_t   rc;
    ngx_str_t   s;
    ngx_uint_t  changed, added_topic, added_id, added_ts, code;

    ngx_memzero(ev, sizeof(ngx_http_cast_event_t));
    changed = 0;
    added_topic = 0;
    added_id = 0;
    added_ts = 0;

    if (!json_is_object(root)) {
        return ngx_http_cast_errorf(pool, err,
                                    "the event must be a JSON object");
    }

    event = json_object_get(root, "event");

    if (event == NULL) {
        return ngx_http_cast_errorf(pool, err, "missing \"event\"");
    }

    if (!json_is_object(event)) {
        return ngx_http_cast_errorf(pool, err,
                                    "\"event\" must be a JSON object");
    }

    rc = ngx_http_cast_json_text(event, "hub.event",
                                 NGX_HTTP_CAST_MAX_EVENT_NAME, &ev->name);
    if (rc == NGX_DECLINED) {
        return ngx_http_cast_errorf(pool, err,
                                    "missing event[\"hub.event\"]");
    }

    if (rc == NGX_ERROR) {
        return ngx_http_cast_errorf(pool, err,
                                    "event[\"hub.event\"] must be a "
                                    "non-empty string of at most %d bytes",
                                    NGX_HTTP_CAST_MAX_EVENT_NAME);
    }

    /* a name is a token of the subscribers' comma lists (SPEC 4) */

    code = ngx_http_cast_text_event(ev->name.data, ev->name.len,
                                    NGX_HTTP_CAST_MAX_EVENT_NAME);
    if (code != NGX_HTTP_CAST_TEXT_OK) {
        return ngx_http_cast_errorf(pool, err, "event[\"hub.event\"] %s",
                                    ngx_http_cast_text_reason(code));
    }

    rc = ngx_http_cast_json_text(event, "hub.topic", NGX_HTTP_CAST_MAX_TOPIC,
                                 &ev->topic);
    if (rc == NGX_ERROR) {
        return ngx_http_cast_errorf(pool, err,
                                    "event[\"hub.topic\"] must be a "
                                    "non-empty string of at most %d bytes",
                                    NGX_HTTP_CAST_MAX_TOPIC);
    }

    if (path_topic && path_topic->len) {

        /* checked before it is quoted or made a JSON string */

        code = ngx_http_cast_text_topic(path_topic->data, path_topic->len,
                                        NGX_HTTP_CAST_MAX_TOPIC);

        if (code == NGX_HTTP_CAST_TEXT_TOO_LONG) {
            return ngx_http_cast_errorf(pool, err,
                                        "the topic in the path (hub.topic) "
                                        "must be at most %d bytes",
                                        NGX_HTTP_CAST_MAX_TOPIC);
        }

        if (code != NGX_HTTP_CAST_TEXT_OK) {
            return ngx_http_cast_errorf(pool, err,
                                        "the topic in the path %s",
                                        ngx_http_cast_text_reason(code));
        }

        if (rc == NGX_OK
            && (ev->topic.len != path_topic->len
                || ngx_strncmp(ev->topic.data, path_topic->data,
                               path_topic->len) != 0))
        {
            return ngx_http_cast_errorf(pool, err,
                                        "the topic in the path \"%V\" "
                                        "differs from event[\"hub.topic\"] "
                                        "\"%V\"", path_topic, &ev->topic);
        }

        if (rc == NGX_DECLINED) {
            value = ngx_http_cast_json_string(path_topic);
            if (value == NULL || json_object_set_new(event, "hub.topic", value))
            {
                return NGX_ERROR;
            }

            if (ngx_http_cast_json_text(event, "hub.topic",
                                        NGX_HTTP_CAST_MAX_TOPIC, &ev->topic)
                != NGX_OK)
            {
                return ngx_http_cast_errorf(pool, err,
                                            "the topic in the path "
                                            "(hub.topic) must be at most %d "
                                            "bytes",
                                            NGX_HTTP_CAST_MAX_TOPIC);
            }

            changed = 1;
            added_topic = 1;
        }

    } else if (rc == NGX_DECLINED) {
        return ngx_http_cast_errorf(pool, err,
                                    "missing event[\"hub.topic\"]");
    }

    code = ngx_http_cast_text_topic(ev->topic.data, ev->topic.len,
                                    NGX_HTTP_CAST_MAX_TOPIC);
    if (code != NGX_HTTP_CAST_TEXT_OK) {
        return ngx_http_cast_errorf(pool, err, "event[\"hub.topic\"] %s",
                                    ngx_http_cast_text_reason(code));
    }

    if (ev->topic.len == 1 && ev->topic.data[0] == '*') {
        return ngx_http_cast_errorf(pool, err,
                                    "events cannot be published to the "
                                    "topic \"*\"");
    }

    value = json_object_get(event, "context");
    if (value && json_is_null(value)) {
        value = NULL;
    }

    if (dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST) {

        if (value == NULL || !ngx_http_cast_json_objects(value)) {
            return ngx_http_cast_errorf(pool, err,
                                        "event[\"context\"] must be an array "
                                        "of objects");
        }

    } else if (value && !json_is_object(value)
               && !ngx_http_cast_json_objects(value))
    {
        return ngx_http_cast_errorf(pool, err,
                                    "event[\"context\"] must be an object "
                                    "or an array of objects");
    }

    ev->context = value;

    rc = ngx_http_cast_json_text(root, "id", NGX_HTTP_CAST_MAX_FIELD, &s);

    if (rc == NGX_ERROR) {
        return ngx_http_cast_errorf(pool, err,
                                    "\"id\" must be a non-empty string");
    }

    if (rc == NGX_DECLINED) {
        if (dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST) {
            return ngx_http_cast_errorf(pool, err, "missing \"id\"");
        }

        if (ngx_http_cast_new_uuid(buf) != NGX_OK) {
            return NGX_ERROR;
        }

        if (json_object_set_new(root, "id",
                                json_stringn((char *) buf,
                                             NGX_HTTP_CAST_UUID_LEN)))
        {
            return NGX_ERROR;
        }

        changed = 1;
        added_id = 1;
    }

    rc = ngx_http_cast_json_text(root, "timestamp", NGX_HTTP_CAST_MAX_FIELD,
                                 &s);

    if (rc == NGX_ERROR) {
        return ngx_http_cast_errorf(pool, err,
                                    "\"timestamp\" must be a non-empty "
                                    "string");
    }

    if (rc == NGX_DECLINED) {
        if (dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST) {
            return ngx_http_cast_errorf(pool, err, "missing \"timestamp\"");
        }

        ngx_http_cast_timestamp(buf);

        if (json_object_set_new(root, "timestamp",
                                json_stringn((char *) buf,
                                             NGX_HTTP_CAST_TIMESTAMP_LEN)))
        {
            return NGX_ERROR;
        }

        changed = 1;
        added_ts = 1;
    }

    ev->root = root;
    ev->dialect = dialect;

    ev->lowercase.data = ev->lower;
    ev->lowercase.len = ev->name.len;
    ngx_strlow(ev->lower, ev->name.data, ev->name.len);

    if (!changed) {
        /* forwarded unchanged: the publisher's own bytes */
        ev->json = *raw;
        return NGX_OK;
    }

    /* the added members go into the publisher's text; else serialize */

    if (ngx_http_cast_event_splice(pool, raw, root, added_id, added_ts,
                                   added_topic, &ev->json)
        == NGX_OK)
    {
        return NGX_OK;
    }

    return ngx_http_cast_json_dump(pool, root, &ev->json);
}


/*
 * The publisher's text with "id" and "timestamp" inserted first in the
 * object, and "hub.topic" first in "event": one copy, no serialization.
 * NGX_DECLINED when the text is not in the simple shape this expects
 * (e.g. an escaped "event" key); the caller serializes then.
 */

static ngx_int_t
ngx_http_cast_event_splice(ngx_pool_t *pool, ngx_str_t *raw, json_t *root,
    ngx_uint_t id, ngx_uint_t ts, ngx_uint_t topic, ngx_str_t *out)
{
    u_char     *p, *end, *open, *event, *q;
    size_t      len;
    json_t     *value;
    ngx_str_t   topic_json;

    p = raw->data;
    end = raw->data + raw->len;

    open = ngx_http_cast_json_ws(p, end);
    if (open == end || *open != '{') {
        return NGX_DECLINED;
    }

    event = ngx_http_cast_json_member(open, end, "event");
    if (event == NULL || *event != '{') {
        return NGX_DECLINED;
    }

    ngx_str_null(&topic_json);

    if (topic) {
        value = json_object_get(json_object_get(root, "event"), "hub.topic");

        if (!json_is_string(value)) {
            return NGX_DECLINED;
        }

        /* quoted here: no 4 KB buffer for json_dumpb() per event */

        topic_json.data = ngx_pnalloc(pool,
                                      6 * json_string_length(value) + 2);
        if (topic_json.data == NULL) {
            return NGX_ERROR;
        }

        topic_json.len = ngx_http_cast_json_quote(topic_json.data,
                                       (u_char *) json_string_value(value),
                                       json_string_length(value))
                         - topic_json.data;
    }

    len = raw->len
          + (id ? sizeof("\"id\":\"\",") - 1 + NGX_HTTP_CAST_UUID_LEN : 0)
          + (ts ? sizeof("\"timestamp\":\"\",") - 1
                  + NGX_HTTP_CAST_TIMESTAMP_LEN : 0)
          + (topic ? sizeof("\"hub.topic\":,") - 1 + topic_json.len : 0);

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    q = ngx_cpymem(out->data, p, open + 1 - p);

    if (id) {
        value = json_object_get(root, "id");
        q = ngx_sprintf(q, "\"id\":\"%s\",", json_string_value(value));
    }

    if (ts) {
        value = json_object_get(root, "timestamp");
        q = ngx_sprintf(q, "\"timestamp\":\"%s\",",
                        json_string_value(value));
    }

    q = ngx_cpymem(q, open + 1, event + 1 - (open + 1));

    if (topic) {
        q = ngx_cpymem(q, "\"hub.topic\":", sizeof("\"hub.topic\":") - 1);
        q = ngx_cpymem(q, topic_json.data, topic_json.len);

        if (*ngx_http_cast_json_ws(event + 1, end) != '}') {
            *q++ = ',';
        }
    }

    q = ngx_cpymem(q, event + 1, end - (event + 1));

    out->len = q - out->data;

    return NGX_OK;
}


/* the length of "s" as a JSON string, quotes included */

size_t
ngx_http_cast_json_quoted_len(u_char *s, size_t len)
{
    size_t   n;
    u_char  *end;

    n = len + 2;

    for (end = s + len; s < end; s++) {
        if (*s == '"' || *s == '\\') {
            n++;

        } else if (*s < 0x20 || *s == 0x7f) {
            n += 5;
        }
    }

    return n;
}


/*
 * "s" as a JSON string, quotes included, at "dst" (at most 6 * len + 2
 * bytes; ngx_http_cast_json_quoted_len() exactly); UTF-8 is copied.
 */

u_char *
ngx_http_cast_json_quote(u_char *dst, u_char *s, size_t len)
{
    u_char  c, *end;

    static u_char  hex[] = "0123456789abcdef";

    end = s + len;

    *dst++ = '"';

    while (s < end) {
        c = *s++;

        if (c == '"' || c == '\\') {
            *dst++ = '\\';
            *dst++ = c;
            continue;
        }

        if (c < 0x20 || c == 0x7f) {
            *dst++ = '\\';
            *dst++ = 'u';
            *dst++ = '0';
            *dst++ = '0';
            *dst++ = hex[c >> 4];
            *dst++ = hex[c & 0xf];
            continue;
        }

        *dst++ = c;
    }

    *dst++ = '"';

    return dst;
}


/* 1 for an array whose items are all objects (none at all included) */

static ngx_uint_t
ngx_http_cast_json_objects(json_t *array)
{
    size_t   i;
    json_t  *item;

    if (!json_is_array(array)) {
        return 0;
    }

    json_array_foreach(array, i, item) {
        if (!json_is_object(item)) {
            return 0;
        }
    }

    return 1;
}


static u_char *
ngx_http_cast_json_ws(u_char *p, u_char *end)
{
    while (p < end
           && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
    {
        p++;
    }

    return p;
}


/* past a string that starts at p; the text is valid JSON already */

static u_char *
ngx_http_cast_json_skip_string(u_char *p, u_char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            p++;
            continue;
        }

        if (*p == '"') {
            return p + 1;
        }
    }

    return end;
}


static u_char *
ngx_http_cast_json_skip_value(u_char *p, u_char *end)
{
    ngx_uint_t  depth;

    if (*p == '"') {
        return ngx_http_cast_json_skip_string(p, end);
    }

    if (*p != '{' && *p != '[') {
        while (p < end && *p != ',' && *p != '}' && *p != ']'
               && *p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
        {
            p++;
        }

        return p;
    }

    depth = 0;

    while (p < end) {
        switch (*p) {

        case '"':
            p = ngx_http_cast_json_skip_string(p, end);
            continue;

        case '{':
        case '[':
            depth++;
            break;

        case '}':
        case ']':
            if (--depth == 0) {
                return p + 1;
            }

            break;
        }

        p++;
    }

    return end;
}


/* where the value of a top-level member with an unescaped key begins */

static u_char *
ngx_http_cast_json_member(u_char *open, u_char *end, const char *key)
{
    u_char  *p, *k;
    size_t   len, klen;

    len = ngx_strlen(key);
    p = open + 1;

    for ( ;; ) {
        p = ngx_http_cast_json_ws(p, end);

        if (p == end || *p != '"') {
            return NULL;
        }

        k = p + 1;
        p = ngx_http_cast_json_skip_string(p, end);

        if (p == end) {
            return NULL;
        }

        /* the raw key without its quotes; an escaped one never matches */
        klen = p - 1 - k;

        p = ngx_http_cast_json_ws(p, end);

        if (p == end || *p != ':') {
            return NULL;
        }

        p = ngx_http_cast_json_ws(p + 1, end);

        if (p == end) {
            return NULL;
        }

        if (klen == len && ngx_strncmp(k, key, len) == 0
            && ngx_strlchr(k, k + klen, '\\') == NULL)
        {
            return p;
        }

        p = ngx_http_cast_json_ws(ngx_http_cast_json_skip_value(p, end), end);

        if (p == end || *p != ',') {
            return NULL;
        }

        p++;
    }
}


/* NGX_OK: a string of 1..max bytes; NGX_DECLINED: absent; else NGX_ERROR */

static ngx_int_t
ngx_http_cast_json_text(json_t *obj, const char *key, size_t max,
    ngx_str_t *out)
{
    json_t  *value;

    value = json_object_get(obj, key);
    if (value == NULL) {
        return NGX_DECLINED;
    }

    if (!json_is_string(value)
        || json_string_length(value) == 0
        || json_string_length(value) > max)
    {
        return NGX_ERROR;
    }

    out->data = (u_char *) json_string_value(value);
    out->len = json_string_length(value);

    return NGX_OK;
}


/*
 * An event's text with members of its "event" object replaced (content
 * sharing: "context.versionId" and "context.priorVersionId"): the members
 * named in "drop" go, "insert" (member text "\"k\":v,...", no trailing
 * comma; may be empty) comes first in "event", every other byte stays.
 * "raw" is a valid JSON object; "out" has room for raw->len + insert->len
 * + 1 bytes.  Returns the end of what was written, or NULL when the text
 * is not in the simple shape this expects (no "event" object under an
 * unescaped key, or an escaped key in "event", which could name a member
 * to drop): the caller serializes then.
 */

u_char *
ngx_http_cast_json_event_rewrite(ngx_str_t *raw, ngx_str_t *drop,
    ngx_uint_t ndrop, ngx_str_t *insert, u_char *out)
{
    u_char      *p, *end, *open, *event, *member, *k, *q;
    size_t       klen;
    ngx_uint_t   i, first, skip;

    p = raw->data;
    end = raw->data + raw->len;

    open = ngx_http_cast_json_ws(p, end);
    if (open == end || *open != '{') {
        return NULL;
    }

    event = ngx_http_cast_json_member(open, end, "event");
    if (event == NULL || *event != '{') {
        return NULL;
    }

    q = ngx_cpymem(out, p, event + 1 - p);
    q = ngx_cpymem(q, insert->data, insert->len);
    first = (insert->len == 0);

    p = ngx_http_cast_json_ws(event + 1, end);

    if (p < end && *p == '}') {
        return ngx_cpymem(q, p, end - p);
    }

    for ( ;; ) {
        if (p == end || *p != '"') {
            return NULL;
        }

        member = p;
        k = p + 1;
        p = ngx_http_cast_json_skip_string(p, end);

        if (p == end) {
            return NULL;
        }

        klen = p - 1 - k;

        if (ngx_strlchr(k, k + klen, '\\') != NULL) {
            return NULL;
        }

        p = ngx_http_cast_json_ws(p, end);

        if (p == end || *p != ':') {
            return NULL;
        }

        p = ngx_http_cast_json_ws(p + 1, end);

        if (p == end) {
            return NULL;
        }

        p = ngx_http_cast_json_skip_value(p, end);

        skip = 0;

        for (i = 0; i < ndrop; i++) {
            if (drop[i].len == klen
                && ngx_strncmp(drop[i].data, k, klen) == 0)
            {
                skip = 1;
                break;
            }
        }

        if (!skip) {
            if (!first) {
                *q++ = ',';
            }

            q = ngx_cpymem(q, member, p - member);
            first = 0;
        }

        p = ngx_http_cast_json_ws(p, end);

        if (p == end) {
            return NULL;
        }

        if (*p == '}') {
            return ngx_cpymem(q, p, end - p);
        }

        if (*p != ',') {
            return NULL;
        }

        p = ngx_http_cast_json_ws(p + 1, end);
    }
}


/*
 * The top-level "id" and event["hub.event"] of an event's text, as they
 * are between their quotes.  NGX_DECLINED when either is missing, not a
 * plain string, or escaped (the caller parses the text then).
 */

ngx_int_t
ngx_http_cast_json_event_id(ngx_str_t *raw, ngx_str_t *id, ngx_str_t *name)
{
    u_char  *p, *end, *open, *event, *v;

    p = raw->data;
    end = raw->data + raw->len;

    open = ngx_http_cast_json_ws(p, end);
    if (open == end || *open != '{') {
        return NGX_DECLINED;
    }

    v = ngx_http_cast_json_member(open, end, "id");
    if (v == NULL || *v != '"') {
        return NGX_DECLINED;
    }

    p = ngx_http_cast_json_skip_string(v, end);
    if (p == end) {
        return NGX_DECLINED;
    }

    id->data = v + 1;
    id->len = p - 1 - id->data;

    event = ngx_http_cast_json_member(open, end, "event");
    if (event == NULL || *event != '{') {
        return NGX_DECLINED;
    }

    v = ngx_http_cast_json_member(event, end, "hub.event");
    if (v == NULL || *v != '"') {
        return NGX_DECLINED;
    }

    p = ngx_http_cast_json_skip_string(v, end);
    if (p == end) {
        return NGX_DECLINED;
    }

    name->data = v + 1;
    name->len = p - 1 - name->data;

    if (ngx_strlchr(id->data, id->data + id->len, '\\') != NULL
        || ngx_strlchr(name->data, name->data + name->len, '\\') != NULL)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* one pass for the usual small object, two for a large one */

ngx_int_t
ngx_http_cast_json_dump(ngx_pool_t *pool, json_t *json, ngx_str_t *out)
{
    size_t   len, size;
    u_char  *buf;

    size = 4096;

    for ( ;; ) {
        buf = ngx_pnalloc(pool, size);
        if (buf == NULL) {
            return NGX_ERROR;
        }

        len = json_dumpb(json, (char *) buf, size,
                         JSON_COMPACT | JSON_ENCODE_ANY);
        if (len == 0) {
            return NGX_ERROR;
        }

        if (len <= size) {
            out->data = buf;
            out->len = len;
            return NGX_OK;
        }

        ngx_pfree(pool, buf);
        size = len;
    }
}


json_t *
ngx_http_cast_json_string(ngx_str_t *s)
{
    return json_stringn((const char *) s->data, s->len);
}


/* "truthy" in the G1 sense: a non-empty object, array or string */

ngx_int_t
ngx_http_cast_json_nonempty(json_t *json)
{
    if (json == NULL) {
        return 0;
    }

    switch (json_typeof(json)) {

    case JSON_OBJECT:
        return json_object_size(json) != 0;

    case JSON_ARRAY:
        return json_array_size(json) != 0;

    case JSON_STRING:
        return json_string_length(json) != 0;

    case JSON_NULL:
    case JSON_FALSE:
        return 0;

    default:
        return 1;
    }
}


static ngx_int_t
ngx_http_cast_errorf(ngx_pool_t *pool, ngx_str_t *err, const char *fmt, ...)
{
    u_char   *p;
    va_list   args;

    p = ngx_pnalloc(pool, 512);
    if (p == NULL) {
        return NGX_ERROR;
    }

    va_start(args, fmt);
    err->len = ngx_vslprintf(p, p + 512, fmt, args) - p;
    va_end(args);

    /* a long quoted topic is cut short: not inside a character */
    err->len = ngx_http_cast_utf8_trim(p, err->len);
    err->data = p;

    return NGX_DECLINED;
}
