
/*
 * ngx_http_cast_module: conferences as topic state (see the header).
 *
 * Both Cast generations are read here: G1 names the host "user", G2
 * "hostTopic"; G2's join names the topic "joinTopic" (or "topic"), its
 * lead "sceneLeaderTopic" (or "leadTopic"), its leave "leaveTopic".
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_conference.h"
#include "ngx_http_cast_text.h"


static const char *ngx_http_cast_conf_text(json_t *body, const char *name,
    const char *alias);
static ngx_int_t ngx_http_cast_conf_valid(const char *topic);
static ngx_int_t ngx_http_cast_conf_refuse(ngx_http_cast_conf_outcome_t *out,
    ngx_uint_t refused, ngx_uint_t status, const char *fmt, ...);
static json_t *ngx_http_cast_conf_member_of(json_t *conferences,
    const char *topic, const char **host);
static ngx_int_t ngx_http_cast_conf_has(json_t *conference,
    const char *topic);
static json_t *ngx_http_cast_conf_participants(json_t *conference);
static ngx_int_t ngx_http_cast_conf_change(json_t *registry,
    const char *host, json_t *conference, json_t *notify,
    const char *name, json_t *context, u_char *event_id, u_char *timestamp,
    ngx_http_cast_conf_outcome_t *out);
static json_t *ngx_http_cast_conf_context(json_t *conference);
static json_t *ngx_http_cast_conf_reply(json_t *registry, const char *host,
    const char *status);
static ngx_int_t ngx_http_cast_conf_create(json_t *registry, json_t *body,
    u_char *event_id, u_char *timestamp, ngx_http_cast_conf_outcome_t *out);
static ngx_int_t ngx_http_cast_conf_join(json_t *registry, json_t *body,
    u_char *event_id, u_char *timestamp, ngx_http_cast_conf_outcome_t *out);
static ngx_int_t ngx_http_cast_conf_lead(json_t *registry, json_t *body,
    u_char *event_id, u_char *timestamp, ngx_http_cast_conf_outcome_t *out);
static ngx_int_t ngx_http_cast_conf_announce(json_t *registry,
    const char *host, json_t *conference, json_t *context, const char *type,
    const char *status, u_char *event_id, u_char *timestamp,
    ngx_http_cast_conf_outcome_t *out);
static ngx_int_t ngx_http_cast_conf_user(json_t *context, json_t *body,
    const char *from, const char *to);
static json_t *ngx_http_cast_conf_find(json_t *registry, const char *host,
    ngx_http_cast_conf_outcome_t *out);
static ngx_int_t ngx_http_cast_conf_leave(json_t *registry, json_t *body,
    const char *topic, u_char *event_id, u_char *timestamp,
    ngx_http_cast_conf_outcome_t *out);
static ngx_int_t ngx_http_cast_conf_end(json_t *registry, const char *host,
    const char *reason, u_char *event_id, u_char *timestamp,
    ngx_http_cast_conf_outcome_t *out);


ngx_int_t
ngx_http_cast_conf_apply(json_t *registry, ngx_uint_t op, json_t *body,
    const char *reason, u_char *event_id, u_char *timestamp,
    ngx_http_cast_conf_outcome_t *out)
{
    const char  *host, *leave;

    json_decref(out->reply);
    json_decref(out->change);
    out->reply = NULL;
    out->change = NULL;
    out->refused = NGX_HTTP_CAST_DONE;
    out->status = 200;
    ngx_str_null(&out->reason);

    if (!json_is_object(body)) {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "the body must be a JSON object");
    }

    if (op == NGX_HTTP_CAST_CONF_CREATE) {
        return ngx_http_cast_conf_create(registry, body, event_id, timestamp,
                                         out);
    }

    host = ngx_http_cast_conf_text(body, "hostTopic", "user");

    if (host == NULL || *host == '\0') {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "hostTopic is required");
    }

    switch (op) {

    case NGX_HTTP_CAST_CONF_JOIN:
        return ngx_http_cast_conf_join(registry, body, event_id, timestamp,
                                       out);

    case NGX_HTTP_CAST_CONF_LEAD:
        return ngx_http_cast_conf_lead(registry, body, event_id, timestamp,
                                       out);

    case NGX_HTTP_CAST_CONF_LEAVE:
        leave = ngx_http_cast_conf_text(body, "leaveTopic", "topic");

        if (leave == NULL || *leave == '\0') {
            return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                             "leaveTopic is required");
        }

        if (ngx_strcmp(leave, host) != 0) {
            return ngx_http_cast_conf_leave(registry, body, leave, event_id,
                                            timestamp, out);
        }

        /* the host leaves: the conference ends */

        /* fall through */

    default: /* NGX_HTTP_CAST_CONF_END */
        return ngx_http_cast_conf_end(registry, host,
                                      reason ? reason : "host-ended",
                                      event_id, timestamp, out);
    }
}


void
ngx_http_cast_conf_outcome_free(ngx_http_cast_conf_outcome_t *out)
{
    json_decref(out->reply);
    json_decref(out->change);
    out->reply = NULL;
    out->change = NULL;
}


json_t *
ngx_http_cast_conf_list(json_t *registry)
{
    json_t      *list, *conferences, *conference, *item;
    const char  *host;

    list = json_array();
    if (list == NULL) {
        return NULL;
    }

    conferences = json_object_get(registry, "conferences");

    json_object_foreach(conferences, host, conference) {
        item = json_deep_copy(conference);

        if (item == NULL
            || json_object_del(item, "rev") < -1
            || json_object_set_new(item, "user", json_string(host)) != 0
            || json_array_append_new(list, item) != 0)
        {
            json_decref(list);
            return NULL;
        }
    }

    return list;
}


json_t *
ngx_http_cast_conf_all_topics(json_t *registry)
{
    size_t       i;
    json_t      *all, *conference, *topics, *topic;
    const char  *host;

    all = json_array();
    if (all == NULL) {
        return NULL;
    }

    json_object_foreach(json_object_get(registry, "conferences"), host,
                        conference)
    {
        topics = ngx_http_cast_conf_participants(conference);
        if (topics == NULL) {
            json_decref(all);
            return NULL;
        }

        json_array_foreach(topics, i, topic) {
            if (json_is_string(topic)
                && !ngx_http_cast_conf_has(all, json_string_value(topic))
                && json_array_append(all, topic) != 0)
            {
                json_decref(topics);
                json_decref(all);
                return NULL;
            }
        }

        json_decref(topics);
    }

    return all;
}


ngx_int_t
ngx_http_cast_conf_name(json_t *list, json_t *names)
{
    size_t       i, j, k;
    json_t      *item, *topics, *topic, *record, *name, *who;
    const char  *t;

    json_array_foreach(list, i, item) {
        topics = ngx_http_cast_conf_participants(item);
        who = json_array();

        if (topics == NULL || who == NULL) {
            json_decref(topics);
            json_decref(who);
            return NGX_ERROR;
        }

        json_array_foreach(topics, j, topic) {
            t = json_string_value(topic);

            json_array_foreach(json_object_get(names, t ? t : ""), k,
                               record)
            {
                name = json_object_get(record, "name");

                /* the topic's own records, not those of "*" */

                if (!json_is_string(name) || json_string_length(name) == 0
                    || !json_equal(json_object_get(record, "topic"), topic)
                    || ngx_http_cast_conf_has(who, json_string_value(name)))
                {
                    continue;
                }

                if (json_array_append(who, name) != 0) {
                    json_decref(topics);
                    json_decref(who);
                    return NGX_ERROR;
                }
            }
        }

        json_decref(topics);

        if (json_object_set_new(item, "participants", who) != 0) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_uint_t
ngx_http_cast_conf_topics(json_t *conference, ngx_str_t *out,
    ngx_uint_t max)
{
    size_t       i;
    json_t      *value, *topics;
    ngx_uint_t   n;

    n = 0;
    value = json_object_get(conference, "hostTopic");

    if (json_is_string(value) && n < max) {
        out[n].data = (u_char *) json_string_value(value);
        out[n].len = json_string_length(value);
        n++;
    }

    topics = json_object_get(conference, "topics");

    json_array_foreach(topics, i, value) {
        if (json_is_string(value) && n < max) {
            out[n].data = (u_char *) json_string_value(value);
            out[n].len = json_string_length(value);
            n++;
        }
    }

    return n;
}


static ngx_int_t
ngx_http_cast_conf_create(json_t *registry, json_t *body, u_char *event_id,
    u_char *timestamp, ngx_http_cast_conf_outcome_t *out)
{
    size_t       i;
    json_t      *conferences, *topics, *given, *value, *conference, *notify;
    json_t      *old, *context;
    const char  *host, *title, *leader, *name, *other, *topic;

    host = ngx_http_cast_conf_text(body, "hostTopic", "user");

    if (host == NULL || *host == '\0') {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "hostTopic is required");
    }

    if (ngx_http_cast_conf_valid(host) != NGX_OK) {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "hostTopic is not a valid topic");
    }

    title = ngx_http_cast_conf_text(body, "title", NULL);

    if (title == NULL || *title == '\0') {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "title is required");
    }

    if (ngx_strlen(title) > NGX_HTTP_CAST_MAX_TOPIC) {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "title is longer than 1024 bytes");
    }

    given = json_object_get(body, "topics");

    if (given && !json_is_array(given)) {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "topics must be an array of "
                                         "topics");
    }

    conferences = json_object_get(registry, "conferences");

    if (json_object_get(conferences, host) == NULL) {
        if (json_object_size(conferences) >= NGX_HTTP_CAST_CONF_MAX) {
            return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_FULL, 503,
                                             "%d conferences are kept, the "
                                             "most there can be",
                                             NGX_HTTP_CAST_CONF_MAX);
        }

        if (ngx_http_cast_conf_member_of(conferences, host, &other)) {
            return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_CONFLICT, 409,
                                             "topic \"%s\" is in the "
                                             "conference of \"%s\"", host,
                                             other);
        }
    }

    /* attendees: de-duplicated, without "*" and the host */

    topics = json_array();
    if (topics == NULL) {
        return NGX_ERROR;
    }

    json_array_foreach(given, i, value) {
        if (!json_is_string(value)) {
            json_decref(topics);
            return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                             "topics must be an array of "
                                             "topics");
        }

        topic = json_string_value(value);

        if (ngx_strcmp(topic, "*") == 0 || ngx_strcmp(topic, host) == 0
            || ngx_http_cast_conf_has(topics, topic))
        {
            continue;
        }

        if (ngx_http_cast_conf_valid(topic) != NGX_OK) {
            json_decref(topics);
            return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                             "topics[%d] is not a valid "
                                             "topic", (int) i);
        }

        old = ngx_http_cast_conf_member_of(conferences, topic, &other);

        if (old && ngx_strcmp(other, host) != 0) {
            json_decref(topics);
            return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_CONFLICT, 409,
                                             "topic \"%s\" is in the "
                                             "conference of \"%s\"", topic,
                                             other);
        }

        if (json_array_size(topics) == NGX_HTTP_CAST_CONF_MAX_TOPICS) {
            json_decref(topics);
            return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                             "more than %d topics",
                                             NGX_HTTP_CAST_CONF_MAX_TOPICS);
        }

        if (json_array_append(topics, value) != 0) {
            json_decref(topics);
            return NGX_ERROR;
        }
    }

    leader = ngx_http_cast_conf_text(body, "sceneLeaderTopic", NULL);

    if (leader == NULL || *leader == '\0') {
        leader = host;

    } else if (ngx_strcmp(leader, host) != 0
               && !ngx_http_cast_conf_has(topics, leader))
    {
        json_decref(topics);
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "sceneLeaderTopic is not a "
                                         "participant");
    }

    conference = json_pack("{s:s,s:s,s:s,s:o}", "hostTopic", host,
                           "title", title, "sceneLeaderTopic", leader,
                           "topics", topics);
    if (conference == NULL) {
        return NGX_ERROR;
    }

    name = ngx_http_cast_conf_text(body, "hostUserName", NULL);

    if (name && *name
        && json_object_set(conference, "hostUserName",
                           json_object_get(body, "hostUserName")) != 0)
    {
        json_decref(conference);
        return NGX_ERROR;
    }

    /* every participant hears of it; those of a conference it replaces */

    notify = ngx_http_cast_conf_participants(conference);
    old = json_object_get(conferences, host);

    json_array_foreach(json_object_get(old, "topics"), i, value) {
        if (json_is_string(value)
            && !ngx_http_cast_conf_has(notify, json_string_value(value)))
        {
            (void) json_array_append(notify, value);
        }
    }

    context = ngx_http_cast_conf_context(conference);

    if (ngx_http_cast_conf_change(registry, host, conference, notify,
                                  "conference-start", context, event_id,
                                  timestamp, out)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->status = 201;
    out->reply = ngx_http_cast_conf_reply(registry, host, "created");

    return out->reply ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_cast_conf_join(json_t *registry, json_t *body, u_char *event_id,
    u_char *timestamp, ngx_http_cast_conf_outcome_t *out)
{
    json_t      *conferences, *conference, *context;
    const char  *host, *topic, *other;

    host = ngx_http_cast_conf_text(body, "hostTopic", "user");
    topic = ngx_http_cast_conf_text(body, "joinTopic", "topic");

    if (topic == NULL || *topic == '\0') {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "joinTopic is required");
    }

    conferences = json_object_get(registry, "conferences");

    conference = ngx_http_cast_conf_find(registry, host, out);
    if (conference == NULL) {
        return NGX_ABORT;
    }

    if (ngx_strcmp(topic, host) == 0) {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "joinTopic is the host's topic");
    }

    if (ngx_strcmp(topic, "*") == 0
        || ngx_http_cast_conf_valid(topic) != NGX_OK)
    {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "joinTopic is not a valid topic");
    }

    conference = json_deep_copy(conference);
    if (conference == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_cast_conf_has(json_object_get(conference, "topics"),
                               topic))
    {
        /* joined already: answered, nothing changes */
        json_decref(conference);
        out->reply = ngx_http_cast_conf_reply(registry, host, "joined");
        return out->reply ? NGX_DECLINED : NGX_ERROR;
    }

    if (ngx_http_cast_conf_member_of(conferences, topic, &other)) {
        json_decref(conference);
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_CONFLICT, 409,
                                         "topic \"%s\" is in the "
                                         "conference of \"%s\"", topic,
                                         other);
    }

    if (json_array_size(json_object_get(conference, "topics"))
        >= NGX_HTTP_CAST_CONF_MAX_TOPICS)
    {
        json_decref(conference);
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "the conference has %d topics, "
                                         "the most it can have",
                                         NGX_HTTP_CAST_CONF_MAX_TOPICS);
    }

    if (json_array_append_new(json_object_get(conference, "topics"),
                              json_string(topic))
        != 0)
    {
        json_decref(conference);
        return NGX_ERROR;
    }

    context = ngx_http_cast_conf_context(conference);

    if (context == NULL
        || json_object_set_new(context, "joinedTopic", json_string(topic))
        || ngx_http_cast_conf_user(context, body, "joinUserName",
                                   "joinedUserName") != NGX_OK)
    {
        json_decref(context);
        json_decref(conference);
        return NGX_ERROR;
    }

    return ngx_http_cast_conf_announce(registry, host, conference, context,
                                       "conference-start", "joined",
                                       event_id, timestamp, out);
}


static ngx_int_t
ngx_http_cast_conf_lead(json_t *registry, json_t *body, u_char *event_id,
    u_char *timestamp, ngx_http_cast_conf_outcome_t *out)
{
    json_t      *conference, *context;
    const char  *host, *leader;

    host = ngx_http_cast_conf_text(body, "hostTopic", "user");
    leader = ngx_http_cast_conf_text(body, "sceneLeaderTopic", "leadTopic");

    if (leader == NULL || *leader == '\0') {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "sceneLeaderTopic is required");
    }

    conference = ngx_http_cast_conf_find(registry, host, out);
    if (conference == NULL) {
        return NGX_ABORT;
    }

    if (ngx_strcmp(leader, host) != 0
        && !ngx_http_cast_conf_has(json_object_get(conference, "topics"),
                                   leader))
    {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_INVALID, 400,
                                         "sceneLeaderTopic is not a "
                                         "participant");
    }

    conference = json_deep_copy(conference);

    if (conference == NULL
        || json_object_set_new(conference, "sceneLeaderTopic",
                               json_string(leader)) != 0)
    {
        json_decref(conference);
        return NGX_ERROR;
    }

    context = ngx_http_cast_conf_context(conference);

    if (context == NULL
        || ngx_http_cast_conf_user(context, body, "leaderUserName",
                                   "leaderUserName") != NGX_OK)
    {
        json_decref(context);
        json_decref(conference);
        return NGX_ERROR;
    }

    return ngx_http_cast_conf_announce(registry, host, conference, context,
                                       "conference-lead", "updated",
                                       event_id, timestamp, out);
}


/*
 * join and lead: the changed copy of a conference goes into the registry,
 * the event with its context to its participants; the answer carries it.
 * The references to conference and context are taken.
 */

static ngx_int_t
ngx_http_cast_conf_announce(json_t *registry, const char *host,
    json_t *conference, json_t *context, const char *type,
    const char *status, u_char *event_id, u_char *timestamp,
    ngx_http_cast_conf_outcome_t *out)
{
    if (ngx_http_cast_conf_change(registry, host, conference,
                                  ngx_http_cast_conf_participants(conference),
                                  type, context, event_id, timestamp, out)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->reply = ngx_http_cast_conf_reply(registry, host, status);

    return out->reply ? NGX_OK : NGX_ERROR;
}


/* the user's name the body gives, if any, goes into the context as "to" */

static ngx_int_t
ngx_http_cast_conf_user(json_t *context, json_t *body, const char *from,
    const char *to)
{
    const char  *name;

    name = ngx_http_cast_conf_text(body, from, NULL);

    if (name == NULL || *name == '\0') {
        return NGX_OK;
    }

    return json_object_set(context, to, json_object_get(body, from)) == 0
           ? NGX_OK : NGX_ERROR;
}


/* the conference of a host topic; NULL: refused, not found */

static json_t *
ngx_http_cast_conf_find(json_t *registry, const char *host,
    ngx_http_cast_conf_outcome_t *out)
{
    json_t  *conference;

    conference = json_object_get(json_object_get(registry, "conferences"),
                                 host);

    if (conference == NULL) {
        (void) ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_NOT_FOUND, 404,
                                         "Conference not found");
    }

    return conference;
}


static ngx_int_t
ngx_http_cast_conf_leave(json_t *registry, json_t *body, const char *topic,
    u_char *event_id, u_char *timestamp, ngx_http_cast_conf_outcome_t *out)
{
    size_t       i;
    json_t      *conference, *context, *topics, *value, *notify;
    const char  *host, *leader;

    host = ngx_http_cast_conf_text(body, "hostTopic", "user");

    conference = ngx_http_cast_conf_find(registry, host, out);
    if (conference == NULL) {
        return NGX_ABORT;
    }

    if (!ngx_http_cast_conf_has(json_object_get(conference, "topics"),
                                topic))
    {
        return ngx_http_cast_conf_refuse(out, NGX_HTTP_CAST_NOT_FOUND, 404,
                                         "topic \"%s\" is not in the "
                                         "conference", topic);
    }

    conference = json_deep_copy(conference);
    if (conference == NULL) {
        return NGX_ERROR;
    }

    /* the leaver hears it too */

    notify = ngx_http_cast_conf_participants(conference);
    topics = json_object_get(conference, "topics");

    json_array_foreach(topics, i, value) {
        if (ngx_strcmp(json_string_value(value), topic) == 0) {
            (void) json_array_remove(topics, i);
            break;
        }
    }

    leader = json_string_value(json_object_get(conference,
                                               "sceneLeaderTopic"));

    if (leader && ngx_strcmp(leader, topic) == 0
        && json_object_set_new(conference, "sceneLeaderTopic",
                               json_string(host)) != 0)
    {
        json_decref(notify);
        json_decref(conference);
        return NGX_ERROR;
    }

    context = ngx_http_cast_conf_context(conference);

    if (context == NULL
        || json_object_set_new(context, "reason",
                               json_string(json_array_size(topics)
                                           ? "attendee-left" : "empty"))
        || json_object_set_new(context, "leaveTopic", json_string(topic)))
    {
        json_decref(context);
        json_decref(notify);
        json_decref(conference);
        return NGX_ERROR;
    }

    if (json_array_size(topics) == 0) {
        /* nobody is left: the conference is over */
        json_decref(conference);
        conference = NULL;
    }

    if (ngx_http_cast_conf_change(registry, host, conference, notify,
                                  "conference-end", context, event_id,
                                  timestamp, out)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->reply = json_pack("{s:s,s:i,s:i}", "status", "left",
                           "removed", conference ? 0 : 1,
                           "updated", conference ? 1 : 0);

    return out->reply ? NGX_OK : NGX_ERROR;
}


static ngx_int_t
ngx_http_cast_conf_end(json_t *registry, const char *host,
    const char *reason, u_char *event_id, u_char *timestamp,
    ngx_http_cast_conf_outcome_t *out)
{
    json_t  *conference, *context, *notify;

    conference = json_object_get(json_object_get(registry, "conferences"),
                                 host);

    if (conference == NULL) {
        /* as both Cast hubs answer it */
        out->reply = json_pack("{s:s,s:i,s:i}", "status", "ended",
                               "removed", 0, "updated", 0);
        return out->reply ? NGX_DECLINED : NGX_ERROR;
    }

    notify = ngx_http_cast_conf_participants(conference);
    context = ngx_http_cast_conf_context(conference);

    if (notify == NULL || context == NULL
        || json_object_set_new(context, "reason", json_string(reason)) != 0)
    {
        json_decref(notify);
        json_decref(context);
        return NGX_ERROR;
    }

    if (ngx_http_cast_conf_change(registry, host, NULL, notify,
                                  "conference-end", context, event_id,
                                  timestamp, out)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    out->reply = json_pack("{s:s,s:i,s:i}", "status", "ended",
                           "removed", 1, "updated", 0);

    return out->reply ? NGX_OK : NGX_ERROR;
}


/*
 * The registry takes "conference" (NULL: it ends) under a new revision;
 * out->change says so to the workers, with the event for "notify".  The
 * references to conference, notify and context are taken.
 */

static ngx_int_t
ngx_http_cast_conf_change(json_t *registry, const char *host,
    json_t *conference, json_t *notify, const char *name, json_t *context,
    u_char *event_id, u_char *timestamp, ngx_http_cast_conf_outcome_t *out)
{
    json_t      *conferences, *event;
    json_int_t   rev;

    conferences = json_object_get(registry, "conferences");

    if (conferences == NULL) {
        conferences = json_object();

        if (conferences == NULL
            || json_object_set_new(registry, "conferences", conferences))
        {
            goto failed;
        }
    }

    if (notify == NULL || context == NULL) {
        goto failed;
    }

    rev = json_integer_value(json_object_get(registry, "rev")) + 1;

    if (json_object_set_new(registry, "rev", json_integer(rev)) != 0) {
        goto failed;
    }

    if (conference) {
        if (json_object_set_new(conference, "rev", json_integer(rev)) != 0
            || json_object_set(conferences, host, conference) != 0)
        {
            goto failed;
        }

    } else {
        (void) json_object_del(conferences, host);
    }

    event = json_pack("{s:s%,s:s%,s:{s:s,s:s,s:o}}",
                      "timestamp", (char *) timestamp,
                      (size_t) NGX_HTTP_CAST_TIMESTAMP_LEN,
                      "id", (char *) event_id,
                      (size_t) NGX_HTTP_CAST_UUID_LEN,
                      "event", "hub.topic", host, "hub.event", name,
                      "context", context);
    context = NULL;

    if (event == NULL) {
        goto failed;
    }

    out->change = json_pack("{s:I,s:s,s:o,s:o,s:o}", "rev", rev,
                            "host", host,
                            "conference", conference ? conference
                                                     : json_null(),
                            "notify", notify, "event", event);

    return out->change ? NGX_OK : NGX_ERROR;

failed:

    json_decref(conference);
    json_decref(notify);
    json_decref(context);

    return NGX_ERROR;
}


/* {"status", "conference"}: as the registry has it, for clients */

static json_t *
ngx_http_cast_conf_reply(json_t *registry, const char *host,
    const char *status)
{
    json_t  *conference;

    conference = json_deep_copy(json_object_get(json_object_get(registry,
                                                         "conferences"),
                                                host));
    if (conference == NULL) {
        return NULL;
    }

    (void) json_object_del(conference, "rev");

    return json_pack("{s:s,s:o}", "status", status,
                     "conference", conference);
}


/* what a conference-* event says of its conference */

static json_t *
ngx_http_cast_conf_context(json_t *conference)
{
    json_t  *context, *value;

    context = json_pack("{s:O,s:O,s:O,s:O,s:o}",
                        "title", json_object_get(conference, "title"),
                        "hostTopic", json_object_get(conference,
                                                     "hostTopic"),
                        "sceneLeaderTopic",
                        json_object_get(conference, "sceneLeaderTopic"),
                        "topics", json_object_get(conference, "topics"),
                        "participants",
                        ngx_http_cast_conf_participants(conference));

    value = json_object_get(conference, "hostUserName");

    if (context && value && json_object_set(context, "hostUserName", value)) {
        json_decref(context);
        return NULL;
    }

    return context;
}


/* the host, then the attendees: a new array */

static json_t *
ngx_http_cast_conf_participants(json_t *conference)
{
    json_t  *list;

    list = json_array();

    if (list == NULL
        || json_array_append(list, json_object_get(conference, "hostTopic"))
        || json_array_extend(list, json_object_get(conference, "topics")))
    {
        json_decref(list);
        return NULL;
    }

    return list;
}


/* the conference a topic is in (as host or attendee), and its host */

static json_t *
ngx_http_cast_conf_member_of(json_t *conferences, const char *topic,
    const char **host)
{
    json_t  *conference;

    json_object_foreach(conferences, *host, conference) {
        if (ngx_strcmp(*host, topic) == 0
            || ngx_http_cast_conf_has(json_object_get(conference, "topics"),
                                      topic))
        {
            return conference;
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_cast_conf_has(json_t *topics, const char *topic)
{
    size_t   i;
    json_t  *value;

    json_array_foreach(topics, i, value) {
        if (json_is_string(value)
            && ngx_strcmp(json_string_value(value), topic) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static const char *
ngx_http_cast_conf_text(json_t *body, const char *name, const char *alias)
{
    json_t  *value;

    value = json_object_get(body, name);

    if (value == NULL && alias) {
        value = json_object_get(body, alias);
    }

    return json_is_string(value) ? json_string_value(value) : NULL;
}


/* a client's topic: one path segment of UTF-8, no control character */

static ngx_int_t
ngx_http_cast_conf_valid(const char *topic)
{
    return ngx_http_cast_text_topic((u_char *) topic, ngx_strlen(topic),
                                    NGX_HTTP_CAST_MAX_TOPIC)
           == NGX_HTTP_CAST_TEXT_OK ? NGX_OK : NGX_DECLINED;
}


static ngx_int_t
ngx_http_cast_conf_refuse(ngx_http_cast_conf_outcome_t *out,
    ngx_uint_t refused, ngx_uint_t status, const char *fmt, ...)
{
    va_list  args;

    va_start(args, fmt);
    out->reason.len = vsnprintf((char *) out->buf, sizeof(out->buf), fmt,
                                args);
    va_end(args);

    out->reason.data = out->buf;
    out->reason.len = ngx_min(out->reason.len, sizeof(out->buf) - 1);
    out->refused = refused;
    out->status = status;

    return NGX_ABORT;
}
