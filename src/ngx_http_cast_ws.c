
/*
 * ngx_http_cast_module: the WebSocket channel (RFC 6455, SPEC 3).
 *
 * GET /bind/<id> is answered with 101; then the HTTP request is freed and
 * the connection belongs to the socket (an idle subscriber costs its
 * connection pool, this struct and its subscription, not a request).
 * Input goes through the frame parser of ngx_http_cast_frame.c; output is
 * a bounded queue of shared, reference-counted frames, written with one
 * writev() for all that are queued (c->send() frame by frame over TLS).
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#include <ngx_sha1.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_frame.h"
#include "ngx_http_cast_hub.h"
#include "ngx_http_cast_jwt.h"
#include "ngx_http_cast_reply.h"
#include "ngx_http_cast_request.h"
#include "ngx_http_cast_ws.h"

#if (NGX_HTTP_CAST_IO_URING)
#include <liburing.h>
#include <sys/eventfd.h>
#endif


#define NGX_HTTP_CAST_UPGRADE_REQUIRED  426

#define NGX_HTTP_CAST_WS_GUID   "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* how many reads one event may do before it yields to others */
#define NGX_HTTP_CAST_WS_READS  16

/* frames one writev() takes */
#define NGX_HTTP_CAST_WS_IOVS   64

/* ngx_http_cast_ws_enqueue() flags */
#define NGX_HTTP_CAST_WS_Q_CONTROL  0x01    /* a control frame */
#define NGX_HTTP_CAST_WS_Q_CLOSE    0x02    /* the Close frame */
#define NGX_HTTP_CAST_WS_Q_EXEMPT   0x04    /* not live traffic: the 101,
                                               greeting, replay */
#define NGX_HTTP_CAST_WS_Q_RAW      0x08    /* the 101: not a frame */
#define NGX_HTTP_CAST_WS_Q_LATEST   0x10    /* replaces its key's frame */


typedef struct ngx_http_cast_ws_s      ngx_http_cast_ws_t;
typedef struct ngx_http_cast_ws_out_s  ngx_http_cast_ws_out_t;

#if (NGX_HTTP_CAST_IO_URING)

/* SQEs one ring takes; also the sends in flight at most */
#define NGX_HTTP_CAST_WS_RING      1024
/* frames one io_uring send takes */
#define NGX_HTTP_CAST_WS_RING_IOVS  16

/*
 * SQEs one io_uring_enter() takes: the kernel sends them in one go, so a
 * bound leaves the CPU to others (the publisher's reply) between chunks
 */
#ifndef NGX_HTTP_CAST_WS_RING_SUBMIT
#define NGX_HTTP_CAST_WS_RING_SUBMIT  128
#endif

typedef struct ngx_http_cast_ws_sqe_s  ngx_http_cast_ws_sqe_t;

/*
 * One send in flight.  It holds its own references to the frames it
 * writes, and the socket forgets it when it goes (ws = NULL): the
 * completion then only releases the frames.
 */

struct ngx_http_cast_ws_sqe_s {
    ngx_http_cast_ws_sqe_t    *next;        /* free list */
    ngx_http_cast_ws_t        *ws;          /* NULL once it is gone */
    size_t                     size;
    ngx_uint_t                 nframes;
    struct msghdr              msg;
    struct iovec               iovs[NGX_HTTP_CAST_WS_RING_IOVS];
    ngx_http_cast_frame_t     *frames[NGX_HTTP_CAST_WS_RING_IOVS];
};

#endif

struct ngx_http_cast_ws_out_s {
    ngx_http_cast_ws_out_t    *next;
    ngx_http_cast_frame_t     *frame;
    unsigned                   exempt:1;    /* not counted by send_queue */
    unsigned                   raw:1;       /* the 101: never dropped */
    unsigned                   close:1;     /* the Close frame */
    unsigned                   latest:1;    /* may be replaced */
    unsigned                   flight:1;    /* in an io_uring send: it is
                                               started */
};


typedef struct {
    ngx_queue_t                queue;       /* in ws->publishing */
    ngx_http_cast_ws_t        *ws;          /* NULL once it is gone */
    ngx_pool_t                *pool;
    json_t                    *root;
    ngx_http_cast_event_t      ev;
} ngx_http_cast_ws_publish_t;


struct ngx_http_cast_ws_s {
    ngx_connection_t          *connection;
    ngx_http_request_t        *request;     /* until detached */
    ngx_http_cleanup_t        *cleanup;
    ngx_http_cast_sub_t       *sub;
    ngx_http_cast_hub_t       *hub;
    ngx_http_cast_loc_conf_t  *conf;
    ngx_queue_t                link;        /* in the worker's sockets */
    ngx_queue_t                publishing;  /* events the hub has yet */

    ngx_http_cast_ws_parser_t *parser;      /* mid-frame or mid-message
                                               only, ngx_alloc() */
    u_char                    *message;     /* reassembly, ngx_alloc() */
    size_t                     message_len;
    size_t                     message_size;

    ngx_http_cast_ws_out_t    *out;         /* queue head */
    ngx_http_cast_ws_out_t   **last_out;
    ngx_http_cast_ws_out_t    *free;        /* a link to reuse, or NULL */
    size_t                     queued;      /* bytes not yet sent */
    size_t                     exempt;      /* of queued: not live traffic */
    size_t                     sent;        /* of the head frame */

    u_char                    *pending;     /* came with the handshake */
    size_t                     pending_len;

    /*
     * Posted: the detach, then a deferred failure (overflow) or the close;
     * ngx_http_cast_ws_posted() tells which from the flags.
     */
    ngx_queue_t                posted;      /* in ngx_http_cast_ws_posted_q
                                               if in_posted */
    /*
     * One timer: the next ping and a client message's time, whichever
     * comes first; closing: the peer's time (linger).
     */
    ngx_event_t                timer_ev;
    ngx_msec_t                 ping_at;
    ngx_msec_t                 message_at;  /* if message_timer */
    ngx_msec_t                 last_seen;
    ngx_msec_t                 closing_start;
    ngx_msec_t                 progress;    /* closing: last byte moved */
    ngx_msec_t                 lingering_time;
    ngx_msec_t                 lingering_timeout;
    ngx_uint_t                 fail_code;
    const char                *fail_reason;
    ngx_uint_t                 replaced;    /* latest-value frames that a
                                               newer one replaced */

    unsigned                   closing:1;   /* close frame queued */
    unsigned                   close_sent:1;
    unsigned                   close_received:1;
    unsigned                   shut_wr:1;
    unsigned                   failed:1;
    unsigned                   in_posted:1;
    unsigned                   fail_pending:1;  /* posted: to fail */
    unsigned                   message_timer:1;
    unsigned                   drained:1;   /* the queue was empty once */
    unsigned                   done:1;      /* released from the hub */
    unsigned                   detached:1;  /* the request is freed */
    unsigned                   upgraded:1;  /* the 101 is sent */
    unsigned                   in_frame:1;  /* input stopped mid-frame */
    unsigned                   in_message:1;  /* mid fragmented message */
    unsigned                   auth:1;      /* made with a bearer token */

#if (NGX_HTTP_CAST_IO_URING)
    ngx_queue_t                batch;       /* in the fan-out's batch */
    ngx_http_cast_ws_sqe_t    *sqe;         /* a send in flight */
    unsigned                   in_batch:1;
#endif
};


/* this worker's sockets, for its exit */
static ngx_queue_t  ngx_http_cast_ws_sockets;

/* sockets with posted work, and the one event that runs it */
static ngx_queue_t  ngx_http_cast_ws_posted_q;
static ngx_event_t  ngx_http_cast_ws_posted_ev;


#if (NGX_HTTP_CAST_IO_URING)

/*
 * cast_io_uring: the sockets a fan-out gave frames to (their queues were
 * empty) are written, at the end of the fan-out (a posted event), with one
 * io_uring submission of sendmsg(MSG_DONTWAIT) SQEs, completed inline by
 * the kernel; a completion that comes later is read through an eventfd on
 * nginx's event loop.  A short write, EAGAIN or an error go on as in
 * ngx_http_cast_ws_flush(): the rest waits for the write event.
 */

static void ngx_http_cast_ws_batch_add(ngx_http_cast_ws_t *ws);
static void ngx_http_cast_ws_batch_handler(ngx_event_t *ev);
static void ngx_http_cast_ws_ring_handler(ngx_event_t *ev);
static void ngx_http_cast_ws_ring_reap(void);
static void ngx_http_cast_ws_ring_done(ngx_http_cast_ws_t *ws,
    ngx_int_t res, size_t size);
static void ngx_http_cast_ws_ring_exit(void);

static ngx_uint_t               ngx_http_cast_ws_ring_on;
static struct io_uring          ngx_http_cast_ws_ring;
static ngx_connection_t        *ngx_http_cast_ws_ring_conn;  /* eventfd */
static ngx_queue_t              ngx_http_cast_ws_batch_q;
static ngx_event_t              ngx_http_cast_ws_batch_ev;
static ngx_http_cast_ws_sqe_t  *ngx_http_cast_ws_sqes;     /* all */
static ngx_http_cast_ws_sqe_t  *ngx_http_cast_ws_sqe_free;

#endif

static void ngx_http_cast_ws_advance(ngx_http_cast_ws_t *ws, size_t n);


static ngx_int_t ngx_http_cast_ws_bound(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *ctx);
static void ngx_http_cast_ws_abandoned(ngx_http_cast_result_t *res);
static ngx_int_t ngx_http_cast_ws_start(ngx_http_request_t *r,
    ngx_http_cast_record_t *record, ngx_str_t *key);
static ngx_int_t ngx_http_cast_ws_send_frame(void *socket,
    ngx_http_cast_frame_t *frame, ngx_uint_t flags);
static void ngx_http_cast_ws_close(void *socket, ngx_uint_t code,
    const char *reason);
static void ngx_http_cast_ws_published(void *data,
    ngx_http_cast_result_t *res);
static ngx_int_t ngx_http_cast_ws_json_ping(ngx_http_cast_ws_t *ws);
static ngx_int_t ngx_http_cast_ws_send_json(ngx_http_cast_ws_t *ws,
    json_t *json);
static void ngx_http_cast_ws_mask_id(ngx_http_request_t *r);
static ngx_uint_t ngx_http_cast_ws_handshake(ngx_http_request_t *r,
    ngx_uint_t body, ngx_str_t *key, char **err);
static ngx_table_elt_t *ngx_http_cast_ws_header(ngx_http_request_t *r,
    const char *name, ngx_uint_t *count);
static ngx_int_t ngx_http_cast_ws_has_token(ngx_str_t *value,
    const char *token);
static void ngx_http_cast_ws_post(ngx_http_cast_ws_t *ws);
static void ngx_http_cast_ws_unpost(ngx_http_cast_ws_t *ws);
static void ngx_http_cast_ws_run_posted(ngx_event_t *ev);
static void ngx_http_cast_ws_posted(ngx_http_cast_ws_t *ws);
static void ngx_http_cast_ws_detach(ngx_http_cast_ws_t *ws);
static uint64_t ngx_http_cast_ws_max_message(ngx_http_cast_ws_t *ws);
static ngx_int_t ngx_http_cast_ws_feed(ngx_http_cast_ws_t *ws,
    ngx_http_cast_ws_parser_t *parser, u_char *p, size_t n);
static void ngx_http_cast_ws_request_cleanup(void *data);
static void ngx_http_cast_ws_read_handler(ngx_event_t *rev);
static void ngx_http_cast_ws_write_handler(ngx_event_t *wev);
static ngx_int_t ngx_http_cast_ws_input(ngx_http_cast_ws_t *ws, u_char *p,
    size_t n);
static ngx_int_t ngx_http_cast_ws_control(ngx_http_cast_ws_t *ws,
    ngx_http_cast_ws_event_t *ev);
static ngx_int_t ngx_http_cast_ws_append(ngx_http_cast_ws_t *ws, u_char *p,
    size_t n);
static void ngx_http_cast_ws_message(ngx_http_cast_ws_t *ws, u_char *p,
    size_t n);
static void ngx_http_cast_ws_send_error(ngx_http_cast_ws_t *ws,
    ngx_str_t *error, json_t *id);
static ngx_int_t ngx_http_cast_ws_allowed(ngx_http_cast_ws_t *ws,
    ngx_http_cast_event_t *ev, ngx_str_t *err);
static ngx_int_t ngx_http_cast_ws_enqueue(ngx_http_cast_ws_t *ws,
    ngx_http_cast_frame_t *frame, ngx_uint_t flags);
static ngx_int_t ngx_http_cast_ws_link(ngx_http_cast_ws_t *ws,
    ngx_http_cast_frame_t *frame, ngx_uint_t flags);
static void ngx_http_cast_ws_unlink(ngx_http_cast_ws_t *ws,
    ngx_http_cast_ws_out_t **prev);
static void ngx_http_cast_ws_free_link(ngx_http_cast_ws_t *ws,
    ngx_http_cast_ws_out_t *out);
static void ngx_http_cast_ws_trim(ngx_http_cast_ws_t *ws);
static ngx_int_t ngx_http_cast_ws_send_control(ngx_http_cast_ws_t *ws,
    ngx_uint_t opcode, u_char *data, size_t len);
static ngx_int_t ngx_http_cast_ws_flush(ngx_http_cast_ws_t *ws);
static void ngx_http_cast_ws_fail(ngx_http_cast_ws_t *ws, ngx_uint_t code,
    const char *reason);
static void ngx_http_cast_ws_set_closing(ngx_http_cast_ws_t *ws);
static void ngx_http_cast_ws_timer(ngx_event_t *ev);
static void ngx_http_cast_ws_timer_set(ngx_http_cast_ws_t *ws);
static void ngx_http_cast_ws_linger_handler(ngx_event_t *ev);
static void ngx_http_cast_ws_message_handler(ngx_event_t *ev);
static void ngx_http_cast_ws_ping_handler(ngx_event_t *ev);
static void ngx_http_cast_ws_finalize(ngx_http_cast_ws_t *ws);
static void ngx_http_cast_ws_release(ngx_http_cast_ws_t *ws);
static void ngx_http_cast_ws_close_now(ngx_http_cast_ws_t *ws);


ngx_int_t
ngx_http_cast_ws_handler(ngx_http_request_t *r)
{
    char                        *msg;
    u_char                      *p, *end;
    ngx_int_t                    rc;
    ngx_str_t                    id, *key;
    ngx_uint_t                   status, body;
    ngx_http_cast_hub_t         *hub;
    ngx_http_cast_wait_t        *w;
    ngx_http_cast_main_conf_t   *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cast_module);
    hub = cmcf->hub;

    if (hub == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r != r->main) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cast: websocket upgrade in a subrequest");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /* the discard counts Content-Length down: a body is noted first */

    body = (r->headers_in.content_length_n > 0 || r->headers_in.chunked);

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    ngx_http_cast_ws_mask_id(r);

    key = ngx_palloc(r->pool, sizeof(ngx_str_t));
    if (key == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    status = ngx_http_cast_ws_handshake(r, body, key, &msg);
    if (status) {
        return ngx_http_cast_send_error(r, status, "%s", msg);
    }

    /* the endpoint id is the last path segment */

    end = r->uri.data + r->uri.len;

    for (p = end; p > r->uri.data && p[-1] != '/'; p--) {
        /* void */
    }

    id.data = p;
    id.len = end - p;

    if (id.len != NGX_HTTP_CAST_ID_LEN) {
        return ngx_http_cast_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "unknown or expired endpoint");
    }

    /* the subscription may have been made on any worker or host */

    w = ngx_http_cast_wait(r, ngx_http_cast_ws_bound, key);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_cast_wait_abandon(w, ngx_http_cast_ws_abandoned);

    ngx_http_cast_hub_bind(hub, &id, ngx_http_cast_wait_done, w);

    return NGX_DONE;
}


/*
 * The client went while its bind was on its way: a record bound for no
 * socket would refuse every later bind (409), so it ends.
 */

static void
ngx_http_cast_ws_abandoned(ngx_http_cast_result_t *res)
{
    ngx_str_t                   none;
    ngx_http_cast_main_conf_t  *cmcf;

    if (res->rc != NGX_HTTP_CAST_DONE || res->record == NULL) {
        return;
    }

    cmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_cast_module);
    if (cmcf == NULL || cmcf->hub == NULL) {
        return;
    }

    ngx_str_null(&none);

    ngx_http_cast_hub_unsubscribe(cmcf->hub, &res->record->id, &none,
                                  "socket closed", NULL, NULL);
}


static ngx_int_t
ngx_http_cast_ws_bound(ngx_http_request_t *r, ngx_http_cast_result_t *res,
    void *ctx)
{
    ngx_str_t *key = ctx;

    switch (res->rc) {

    case NGX_HTTP_CAST_DONE:
        return ngx_http_cast_ws_start(r, res->record, key);

    case NGX_HTTP_CAST_NOT_FOUND:
        return ngx_http_cast_send_error(r, NGX_HTTP_NOT_FOUND,
                                        "unknown or expired endpoint");

    case NGX_HTTP_CAST_BOUND:
        return ngx_http_cast_send_error(r, NGX_HTTP_CONFLICT,
                                        "this endpoint already has a "
                                        "socket");

    default:
        return ngx_http_cast_send_failure(r, res->rc);
    }
}


/*
 * Endpoint ids are capabilities: the request line that every log line of
 * this request quotes shows only the first 8 characters of the id.
 */

static void
ngx_http_cast_ws_mask_id(ngx_http_request_t *r)
{
    u_char     *p, *last, *line;
    ngx_str_t   id;

    last = r->uri.data + r->uri.len;

    for (p = last; p > r->uri.data && p[-1] != '/'; p--) {
        /* void */
    }

    id.data = p;
    id.len = last - p;

    if (id.len <= 8 || r->request_line.len == 0) {
        return;
    }

    p = ngx_strlcasestrn(r->request_line.data,
                         r->request_line.data + r->request_line.len,
                         id.data, id.len - 1);
    if (p == NULL) {
        return;
    }

    line = ngx_pnalloc(r->pool, r->request_line.len);
    if (line == NULL) {
        return;
    }

    ngx_memcpy(line, r->request_line.data, r->request_line.len);
    ngx_memset(line + (p - r->request_line.data) + 8, '*', id.len - 8);

    r->request_line.data = line;
}


/*
 * RFC 6455 4.2.1: 0, or the status to refuse with (426 or 400); "body":
 * the request declared one
 */

static ngx_uint_t
ngx_http_cast_ws_handshake(ngx_http_request_t *r, ngx_uint_t body,
    ngx_str_t *key, char **err)
{
    u_char            decoded[32];
    ngx_str_t         dst;
    ngx_uint_t        n;
    ngx_table_elt_t  *h;

    if (r->method != NGX_HTTP_GET) {
        *err = "a websocket handshake is a GET";
        return NGX_HTTP_BAD_REQUEST;
    }

    if (r->http_version < NGX_HTTP_VERSION_11) {
        *err = "a websocket handshake needs HTTP/1.1";
        return NGX_HTTP_BAD_REQUEST;
    }

    /*
     * The socket takes over the TCP connection: on HTTP/2 (and HTTP/3)
     * that is shared by other streams.  RFC 8441 is not supported.
     */

    if (r->http_version != NGX_HTTP_VERSION_11
#if (NGX_HTTP_V2)
        || r->stream
#endif
       )
    {
        *err = "websocket over HTTP/2 or HTTP/3 is not supported, "
               "use HTTP/1.1";
        return NGX_HTTP_BAD_REQUEST;
    }

    /* what follows the handshake is frames, not a body */

    if (body) {
        *err = "a websocket handshake has no body";
        return NGX_HTTP_BAD_REQUEST;
    }

    h = ngx_http_cast_ws_header(r, "Sec-WebSocket-Version", &n);

    if (h == NULL || n != 1
        || h->value.len != 2 || ngx_strncmp(h->value.data, "13", 2) != 0)
    {
        h = ngx_list_push(&r->headers_out.headers);
        if (h == NULL) {
            *err = "out of memory";
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        h->hash = 1;
        ngx_str_set(&h->key, "Sec-WebSocket-Version");
        ngx_str_set(&h->value, "13");

        /* nginx has no reason phrase for 426 */
        ngx_str_set(&r->headers_out.status_line, "426 Upgrade Required");

        *err = "Sec-WebSocket-Version 13 is required";
        return NGX_HTTP_CAST_UPGRADE_REQUIRED;
    }

    h = ngx_http_cast_ws_header(r, "Upgrade", &n);

    if (h == NULL || !ngx_http_cast_ws_has_token(&h->value, "websocket")) {
        *err = "missing \"Upgrade: websocket\"";
        return NGX_HTTP_BAD_REQUEST;
    }

    /* nginx keeps no pointer to the Connection header: look it up */

    h = ngx_http_cast_ws_header(r, "Connection", &n);

    if (h == NULL || !ngx_http_cast_ws_has_token(&h->value, "upgrade")) {
        *err = "missing \"Connection: upgrade\"";
        return NGX_HTTP_BAD_REQUEST;
    }

    h = ngx_http_cast_ws_header(r, "Sec-WebSocket-Key", &n);
    dst.data = decoded;

    if (h == NULL || n != 1 || h->value.len != 24
        || ngx_decode_base64(&dst, &h->value) != NGX_OK || dst.len != 16)
    {
        *err = "Sec-WebSocket-Key must be 16 bytes in base64, given once";
        return NGX_HTTP_BAD_REQUEST;
    }

    *key = h->value;

    return 0;
}


static ngx_table_elt_t *
ngx_http_cast_ws_header(ngx_http_request_t *r, const char *name,
    ngx_uint_t *count)
{
    size_t            len;
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h, *found;

    len = ngx_strlen(name);
    found = NULL;
    *count = 0;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0)
        {
            found = &h[i];
            (*count)++;
        }
    }

    return found;
}


/* a comma separated token list holds "token" (case-insensitive) */

static ngx_int_t
ngx_http_cast_ws_has_token(ngx_str_t *value, const char *token)
{
    u_char  *p, *end, *start, *last;
    size_t   len;

    len = ngx_strlen(token);
    end = value->data + value->len;

    for (p = value->data; p < end; p = last + 1) {

        last = ngx_strlchr(p, end, ',');
        if (last == NULL) {
            last = end;
        }

        start = p;

        while (start < last && (*start == ' ' || *start == '\t')) {
            start++;
        }

        p = last;

        while (p > start && (p[-1] == ' ' || p[-1] == '\t')) {
            p--;
        }

        if ((size_t) (p - start) == len
            && ngx_strncasecmp(start, (u_char *) token, len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


static ngx_int_t
ngx_http_cast_ws_start(ngx_http_request_t *r, ngx_http_cast_record_t *record,
    ngx_str_t *key)
{
    u_char                      hash[20], accept[28], *p;
    ngx_str_t                   src, dst;
    ngx_sha1_t                  sha1;
    ngx_connection_t           *c;
    ngx_http_cast_ws_t         *ws;
    ngx_http_cleanup_t         *cln;
    ngx_http_cast_frame_t      *frame;
    ngx_http_core_loc_conf_t   *core;
    ngx_http_cast_main_conf_t  *cmcf;

    static u_char  response[] =
        "HTTP/1.1 101 Switching Protocols" CRLF
        "Upgrade: websocket" CRLF
        "Connection: upgrade" CRLF
        "Sec-WebSocket-Accept: ";

    c = r->connection;
    core = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    /*
     * tcp_nodelay, as nginx sets it on keep-alive and upgraded proxy
     * connections: without it a frame written after a ping/pong exchange
     * waits for the client's delayed ACK (Nagle), some 40 ms.
     */

    if (core->tcp_nodelay && ngx_tcp_nodelay(c) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln = ngx_http_cleanup_add(r, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ws = ngx_calloc(sizeof(ngx_http_cast_ws_t), c->log);
    if (ws == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ws->connection = c;
    ws->request = r;
    ws->cleanup = cln;
    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cast_module);
    ws->hub = cmcf->hub;
    ngx_queue_init(&ws->publishing);
    ws->conf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);
    ws->last_out = &ws->out;
    ws->last_seen = ngx_current_msec;

    /* a Close is followed the way nginx lingers on close */
    ws->lingering_time = core->lingering_time;
    ws->lingering_timeout = core->lingering_timeout;

    /* frames that came in the handshake's packet are kept for later */

    if (r->header_in->pos < r->header_in->last) {
        ws->pending_len = r->header_in->last - r->header_in->pos;
        ws->pending = ngx_alloc(ws->pending_len, c->log);

        if (ws->pending == NULL) {
            ngx_free(ws);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_memcpy(ws->pending, r->header_in->pos, ws->pending_len);
    }

    /*
     * The 101 is written by the socket itself, first in its queue: no
     * output filter stands between it and the frames that follow.
     */

    ngx_sha1_init(&sha1);
    ngx_sha1_update(&sha1, key->data, key->len);
    ngx_sha1_update(&sha1, NGX_HTTP_CAST_WS_GUID,
                    sizeof(NGX_HTTP_CAST_WS_GUID) - 1);
    ngx_sha1_final(hash, &sha1);

    src.data = hash;
    src.len = sizeof(hash);
    dst.data = accept;
    ngx_encode_base64(&dst, &src);

    frame = ngx_http_cast_frame_create(0, NULL,
                                   sizeof(response) - 1 + dst.len + 4);
    if (frame == NULL) {
        goto nomem;
    }

    /* a raw buffer: no frame header */
    frame->len = sizeof(response) - 1 + dst.len + 4;
    p = ngx_cpymem(frame->data, response, sizeof(response) - 1);
    p = ngx_cpymem(p, dst.data, dst.len);
    *p++ = CR; *p++ = LF; *p++ = CR; *p = LF;

    if (ngx_http_cast_ws_link(ws, frame, NGX_HTTP_CAST_WS_Q_RAW
                                         |NGX_HTTP_CAST_WS_Q_EXEMPT)
        != NGX_OK)
    {
        ngx_http_cast_frame_release(frame);
        goto nomem;
    }

    ngx_http_cast_frame_release(frame);

    r->header_in->pos = r->header_in->last;

    r->headers_out.status = NGX_HTTP_SWITCHING_PROTOCOLS;
    r->keepalive = 0;

    /*
     * The request is held until ngx_http_cast_ws_detach() frees it, from
     * its own event, once the handler that called us has returned.
     */

    cln->handler = ngx_http_cast_ws_request_cleanup;
    cln->data = ws;

    r->main->count++;
    r->read_event_handler = ngx_http_request_empty_handler;
    r->write_event_handler = ngx_http_request_empty_handler;

    if (c->read->timer_set) {
        ngx_del_timer(c->read);
    }

    if (c->write->timer_set) {
        ngx_del_timer(c->write);
    }

    ngx_http_cast_ws_post(ws);

    if (ngx_http_cast_ws_sockets.next == NULL) {
        ngx_queue_init(&ngx_http_cast_ws_sockets);
    }

    ngx_queue_insert_tail(&ngx_http_cast_ws_sockets, &ws->link);

    ws->timer_ev.handler = ngx_http_cast_ws_timer;
    ws->timer_ev.data = ws;
    ws->timer_ev.log = c->log;
    ws->timer_ev.cancelable = 1;

    /* sockets that connect together must not all ping together */
    ws->ping_at = ngx_current_msec + ws->conf->ping_interval / 2
                  + (ngx_msec_t) ngx_random()
                    % (ws->conf->ping_interval / 2 + 1);

    ngx_http_cast_ws_timer_set(ws);

    /*
     * The hub sends the greeting, the confirmation and the replay (SPEC
     * 3.2), marked as not live: cast_send_queue, the bound for live
     * traffic, does not apply to what a client gets before it could read.
     */

    ws->auth = record->auth ? 1 : 0;

    ws->sub = ngx_http_cast_hub_attach(ws->hub, record, ws, c->log,
                                       ngx_http_cast_ws_send_frame,
                                       ngx_http_cast_ws_close,
                                       ws->conf->ack_timeout);
    if (ws->sub == NULL) {
        goto failed;
    }

    return NGX_DONE;

failed:

    /* end it from an event of its own, after the detach sent the 101 */

    if (!ws->failed && !ws->closing && !ws->done) {
        ws->failed = 1;
        ws->fail_code = NGX_HTTP_CAST_WS_GOING_AWAY;
        ws->fail_reason = "internal error";
        ws->fail_pending = 1;
        ngx_http_cast_ws_post(ws);
    }

    return NGX_DONE;

nomem:

    if (ws->out) {
        ngx_http_cast_frame_release(ws->out->frame);
        ngx_free(ws->out);
    }

    if (ws->pending) {
        ngx_free(ws->pending);
    }

    ngx_free(ws);

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}


/*
 * The request is over (logged as 101 and freed); the connection is the
 * socket's, like a keepalive connection is the http connection's.
 */

/*
 * Work a socket does from a posted event of its own: the detach, then a
 * deferred failure or the close.  The sockets that have some wait in one
 * queue behind one posted event (a socket does not carry an event of
 * its own for this).
 */

static void
ngx_http_cast_ws_post(ngx_http_cast_ws_t *ws)
{
    if (ws->in_posted) {
        return;
    }

    if (ngx_http_cast_ws_posted_q.next == NULL) {
        ngx_queue_init(&ngx_http_cast_ws_posted_q);
    }

    ws->in_posted = 1;
    ngx_queue_insert_tail(&ngx_http_cast_ws_posted_q, &ws->posted);

    if (!ngx_http_cast_ws_posted_ev.posted) {
        ngx_http_cast_ws_posted_ev.handler = ngx_http_cast_ws_run_posted;
        ngx_http_cast_ws_posted_ev.log = ngx_cycle->log;
        ngx_post_event(&ngx_http_cast_ws_posted_ev, &ngx_posted_events);
    }
}


static void
ngx_http_cast_ws_unpost(ngx_http_cast_ws_t *ws)
{
    if (ws->in_posted) {
        ws->in_posted = 0;
        ngx_queue_remove(&ws->posted);
    }
}


/* what is posted while this runs runs too, as ngx_posted_events does */

static void
ngx_http_cast_ws_run_posted(ngx_event_t *ev)
{
    ngx_queue_t         *q;
    ngx_http_cast_ws_t  *ws;

    while (!ngx_queue_empty(&ngx_http_cast_ws_posted_q)) {
        q = ngx_queue_head(&ngx_http_cast_ws_posted_q);
        ws = ngx_queue_data(q, ngx_http_cast_ws_t, posted);

        ngx_queue_remove(q);
        ws->in_posted = 0;

        ngx_http_cast_ws_posted(ws);
    }
}


static void
ngx_http_cast_ws_posted(ngx_http_cast_ws_t *ws)
{
    if (!ws->detached) {
        ngx_http_cast_ws_detach(ws);

    } else if (ws->done) {
        ngx_http_cast_ws_close_now(ws);

    } else if (ws->fail_pending) {
        /* a failure that could not close from where it happened */
        ws->fail_pending = 0;
        ngx_http_cast_ws_fail(ws, ws->fail_code, ws->fail_reason);
    }
}


static void
ngx_http_cast_ws_detach(ngx_http_cast_ws_t *ws)
{
    u_char                 *p;
    ngx_int_t               rc;
    ngx_buf_t              *b;
    ngx_chain_t            *cl, *ln;
    ngx_connection_t       *c;
    ngx_http_log_ctx_t     *ctx;
    ngx_http_request_t     *r;
    ngx_http_connection_t  *hc;

    c = ws->connection;
    r = ws->request;
    hc = r->http_connection;

    ws->cleanup->handler = NULL;
    ws->request = NULL;
    ws->detached = 1;

    ngx_http_free_request(r, 0);

    /* ngx_http_free_request() marks the connection, which lives on */
    c->destroyed = 0;
    c->data = ws;

    ctx = c->log->data;
    ctx->request = NULL;
    ctx->current_request = NULL;
    c->log->action = "serving cast websocket";

    /*
     * The header buffers are not needed any more (what followed the
     * handshake was copied): c->buffer, and the large ones a long header
     * took (large_client_header_buffers), freed as ngx_http_set_keepalive()
     * frees them.
     */

    b = c->buffer;

    if (b && b->start && ngx_pfree(c->pool, b->start) == NGX_OK) {
        b->start = NULL;
        b->pos = NULL;
        b->last = NULL;
        b->end = NULL;
    }

    for (cl = hc->free; cl; /* void */) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
        ngx_free_chain(c->pool, ln);
    }

    hc->free = NULL;

    for (cl = hc->busy; cl; /* void */) {
        ln = cl;
        cl = cl->next;
        ngx_pfree(c->pool, ln->buf->start);
        ngx_free_chain(c->pool, ln);
    }

    hc->busy = NULL;
    hc->nbusy = 0;

    c->read->handler = ngx_http_cast_ws_read_handler;
    c->write->handler = ngx_http_cast_ws_write_handler;

    /* lets a graceful shutdown close the socket (with Close 1001) */
    c->idle = 1;

    if (ws->done) {
        ngx_http_cast_ws_post(ws);
        return;
    }

    /* the 101 is on its way before anything the client sent is read */

    if (ngx_http_cast_ws_flush(ws) == NGX_ERROR) {
        ngx_http_cast_ws_finalize(ws);
        return;
    }

    if (ws->done) {
        return;
    }

    if (ws->pending) {
        p = ws->pending;
        ws->pending = NULL;

        rc = ngx_http_cast_ws_input(ws, p, ws->pending_len);
        ngx_free(p);

        if (rc != NGX_OK) {
            return;
        }
    }

    /* a failure posted before the detach (the same event) */

    if (ws->fail_pending) {
        ngx_http_cast_ws_post(ws);
    }

    ngx_post_event(c->read, &ngx_posted_events);
    ngx_post_event(c->write, &ngx_posted_events);
}


/* the request ended before the detach (shutdown, error): all goes */

static void
ngx_http_cast_ws_request_cleanup(void *data)
{
    ngx_http_cast_ws_t *ws = data;

    ngx_http_cast_ws_unpost(ws);

    if (!ws->done) {
        ws->done = 1;
        ngx_http_cast_ws_release(ws);
    }

    ngx_queue_remove(&ws->link);
    ngx_free(ws);
}


static void
ngx_http_cast_ws_read_handler(ngx_event_t *rev)
{
    u_char               buf[4096];
    ssize_t              n;
    ngx_uint_t           i;
    ngx_connection_t    *c;
    ngx_http_cast_ws_t  *ws;

    c = rev->data;
    ws = c->data;

    if (ws->done) {
        return;
    }

    if (c->close) {
        /*
         * Graceful shutdown or reload: Close 1001 from the release, and
         * the connection goes now: the worker may exit before any posted
         * event runs.
         */
        ngx_http_cast_ws_close_now(ws);
        return;
    }

    for (i = 0; i < NGX_HTTP_CAST_WS_READS; i++) {

        n = c->recv(c, buf, sizeof(buf));

        if (n == NGX_AGAIN) {
            if (ngx_handle_read_event(rev, 0) != NGX_OK) {
                ngx_http_cast_ws_finalize(ws);
            }

            return;
        }

        if (n == 0 || n == NGX_ERROR) {
            if (ws->closing) {
                ngx_log_debug0(NGX_LOG_DEBUG_HTTP, c->log, 0,
                               "cast ws: client closed while closing");

            } else {
                ngx_log_error(NGX_LOG_INFO, c->log, 0,
                              "cast: client closed the socket without a "
                              "close frame");
            }

            c->error = 1;
            ngx_http_cast_ws_finalize(ws);
            return;
        }

        ws->last_seen = ngx_current_msec;
        ws->progress = ws->last_seen;

        if (ngx_http_cast_ws_input(ws, buf, n) != NGX_OK) {
            return;
        }
    }

    /* more may be waiting: let other connections run first */
    ngx_post_event(rev, &ngx_posted_events);
}


static void
ngx_http_cast_ws_write_handler(ngx_event_t *wev)
{
    ngx_connection_t    *c;
    ngx_http_cast_ws_t  *ws;

    c = wev->data;
    ws = c->data;

    if (ws->done) {
        return;
    }

    if (ngx_http_cast_ws_flush(ws) == NGX_ERROR) {
        ngx_http_cast_ws_finalize(ws);
    }
}


/* NGX_OK: go on reading; otherwise the socket is closing or gone */

static uint64_t
ngx_http_cast_ws_max_message(ngx_http_cast_ws_t *ws)
{
    return ngx_min(ws->conf->max_message_size, ws->conf->ws_max_message);
}


/*
 * Between frames a parser is as new: an idle socket keeps none.  One is
 * made when a read ends within a frame or a fragmented message (or the
 * parser failed), and kept until a ping finds it idle (a busy client
 * does not make one per read).
 */

static ngx_int_t
ngx_http_cast_ws_input(ngx_http_cast_ws_t *ws, u_char *p, size_t n)
{
    ngx_int_t                   rc;
    ngx_http_cast_ws_parser_t   fresh, *parser;

    parser = ws->parser;

    if (parser == NULL) {
        parser = &fresh;
        ngx_http_cast_ws_parser_init(parser,
                                     ngx_http_cast_ws_max_message(ws));
    }

    rc = ngx_http_cast_ws_feed(ws, parser, p, n);

    if (ws->done) {
        return rc;
    }

    if (parser != &fresh) {
        /* kept while the client is busy; the ping timer frees it idle */
        return rc;
    }

    if (ngx_http_cast_ws_parser_idle(parser)) {
        return rc;
    }

    ws->parser = ngx_alloc(sizeof(ngx_http_cast_ws_parser_t),
                           ws->connection->log);

    if (ws->parser == NULL) {
        if (rc == NGX_OK) {
            ngx_http_cast_ws_fail(ws, NGX_HTTP_CAST_WS_GOING_AWAY,
                                  "out of memory");
        }

        return NGX_ERROR;
    }

    ngx_memcpy(ws->parser, parser, sizeof(ngx_http_cast_ws_parser_t));

    return rc;
}


static ngx_int_t
ngx_http_cast_ws_feed(ngx_http_cast_ws_t *ws,
    ngx_http_cast_ws_parser_t *parser, u_char *p, size_t n)
{
    u_char                    *last;
    ngx_int_t                  rc;
    ngx_http_cast_ws_event_t   ev;

    last = p + n;

    while (p < last) {

        rc = ngx_http_cast_ws_parse(parser, &p, last, &ev);

        if (rc == NGX_AGAIN) {
            /* all of it is consumed: a frame has begun */
            ws->in_frame = 1;
            break;
        }

        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                          "cast: client sent an invalid frame: %s, "
                          "closing with %ui", parser->error,
                          parser->close_code);
            ngx_http_cast_ws_fail(ws, parser->close_code, parser->error);
            return NGX_ERROR;
        }

        if (ev.type == NGX_HTTP_CAST_WS_EV_CONTROL) {
            ws->in_frame = 0;

            if (ngx_http_cast_ws_control(ws, &ev) != NGX_OK) {
                return NGX_ERROR;
            }

            continue;
        }

        ws->in_frame = !ev.frame_end;
        ws->in_message = !ev.message_end;

        if (ws->closing) {
            continue;
        }

        if (ngx_http_cast_ws_append(ws, ev.data, ev.len) != NGX_OK) {
            ngx_http_cast_ws_fail(ws, NGX_HTTP_CAST_WS_GOING_AWAY,
                                  "out of memory");
            return NGX_ERROR;
        }

        if (!ev.message_end) {
            continue;
        }

        if (ev.opcode == NGX_HTTP_CAST_WS_TEXT) {
            ngx_http_cast_ws_message(ws, ws->message, ws->message_len);

        } else {
            ngx_str_t  err = ngx_string("binary messages are not "
                                        "supported");

            ngx_http_cast_ws_send_error(ws, &err, NULL);
        }

        /* client messages are rare: no buffer is kept between them */

        if (ws->message) {
            ngx_free(ws->message);
            ws->message = NULL;
        }

        ws->message_len = 0;
        ws->message_size = 0;

        if (ws->done || ws->failed) {
            return NGX_ERROR;
        }
    }

    /* a message has cast_ws_message_timeout from its first byte */

    if ((ws->in_frame || ws->in_message) && !ws->closing) {
        if (!ws->message_timer) {
            ws->message_timer = 1;
            ws->message_at = ngx_current_msec + ws->conf->ws_message_timeout;
            ngx_http_cast_ws_timer_set(ws);
        }

    } else {
        /* the timer, if set for it, finds nothing due and is set again */
        ws->message_timer = 0;
    }

    if (ngx_http_cast_ws_flush(ws) == NGX_ERROR) {
        ngx_http_cast_ws_finalize(ws);
        return NGX_ERROR;
    }

    return ws->done ? NGX_ERROR : NGX_OK;
}


static ngx_int_t
ngx_http_cast_ws_control(ngx_http_cast_ws_t *ws, ngx_http_cast_ws_event_t *ev)
{
    ngx_uint_t  code;

    switch (ev->opcode) {

    case NGX_HTTP_CAST_WS_PING:
        if (ws->closing) {
            return NGX_OK;
        }

        return ngx_http_cast_ws_send_control(ws, NGX_HTTP_CAST_WS_PONG,
                                             ev->data, ev->len);

    case NGX_HTTP_CAST_WS_PONG:
        return NGX_OK;

    default: /* NGX_HTTP_CAST_WS_CLOSE */

        code = ev->len >= 2 ? (ev->data[0] << 8 | ev->data[1]) : 0;

        ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                      "cast: client closed the socket with %ui", code);

        ws->close_received = 1;

        if (!ws->closing) {
            /* echo the code, then close when it is sent */
            if (ngx_http_cast_ws_send_control(ws, NGX_HTTP_CAST_WS_CLOSE,
                                              ev->data,
                                              ev->len >= 2 ? 2 : 0)
                != NGX_OK)
            {
                ngx_http_cast_ws_finalize(ws);
                return NGX_ERROR;
            }

            ngx_http_cast_ws_set_closing(ws);
        }

        /* the connection goes once the Close is sent, or in lingering time */

        if (ngx_http_cast_ws_flush(ws) == NGX_ERROR) {
            ngx_http_cast_ws_finalize(ws);
        }

        return NGX_ERROR;
    }
}


static ngx_int_t
ngx_http_cast_ws_append(ngx_http_cast_ws_t *ws, u_char *p, size_t n)
{
    u_char    *m;
    size_t     size;
    uint64_t   max;

    if (n == 0) {
        return NGX_OK;
    }

    if (ws->message_len + n > ws->message_size) {
        size = ngx_max(ws->message_size * 2, 1024);

        /* never more than the message limit the parser enforces */
        max = ngx_http_cast_ws_max_message(ws);

        if (max && size > max) {
            size = (size_t) max;
        }

        size = ngx_max(size, ws->message_len + n);

        m = ngx_alloc(size, ws->connection->log);
        if (m == NULL) {
            return NGX_ERROR;
        }

        if (ws->message) {
            ngx_memcpy(m, ws->message, ws->message_len);
            ngx_free(ws->message);
        }

        ws->message = m;
        ws->message_size = size;
    }

    ngx_memcpy(ws->message + ws->message_len, p, n);
    ws->message_len += n;

    return NGX_OK;
}


/*
 * A text message (SPEC 3.3): a response to a request between apps goes
 * to that request; another event is published as POST {base} would; an
 * ack {"id","status"} is recorded; anything else is ignored.
 */

static void
ngx_http_cast_ws_message(ngx_http_cast_ws_t *ws, u_char *p, size_t n)
{
    json_t                      *root, *status, *id;
    ngx_int_t                    rc, code;
    ngx_str_t                    err, body;
    ngx_log_t                   *log;
    ngx_pool_t                  *pool;
    ngx_http_cast_ws_publish_t  *pub;

    log = ws->connection->log;

    pool = ngx_create_pool(1024, log);
    if (pool == NULL) {
        return;
    }

    rc = ngx_http_cast_json_parse(pool, p, n, &root, &err);

    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_INFO, log, 0, "cast: client sent %V", &err);
            ngx_http_cast_ws_send_error(ws, &err, NULL);
        }

        ngx_destroy_pool(pool);
        return;
    }

    if (json_is_object(root) && json_object_get(root, "event")
        && ngx_http_cast_request_answer(ws->hub, ws->sub, root, log)
           == NGX_OK)
    {
        /* "*-response": routed to its request, not published */

    } else if (json_is_object(root) && json_object_get(root, "event")) {

        /* the message buffer is reused: the event keeps its own bytes */

        body.len = n;
        body.data = ngx_pnalloc(pool, n);

        if (body.data == NULL) {
            json_decref(root);
            ngx_destroy_pool(pool);
            return;
        }

        ngx_memcpy(body.data, p, n);

        pub = ngx_pcalloc(pool, sizeof(ngx_http_cast_ws_publish_t));

        rc = (pub == NULL) ? NGX_ERROR
             : ngx_http_cast_event_validate(pool, root, &body, NULL,
                                            ws->sub
                                            ? ws->sub->record.dialect
                                            : ws->conf->dialect,
                                            &pub->ev, &err);
        if (rc == NGX_OK && ngx_http_cast_ws_allowed(ws, &pub->ev, &err)
                            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_INFO, log, 0,
                          "cast: client sent an event it may not: %V", &err);
            ngx_http_cast_ws_send_error(ws, &err,
                                        json_object_get(root, "id"));

        } else if (rc == NGX_DECLINED) {
            ngx_log_error(NGX_LOG_INFO, log, 0,
                          "cast: client sent an invalid event: %V", &err);
            ngx_http_cast_ws_send_error(ws, &err,
                                        json_object_get(root, "id"));

        } else if (rc == NGX_OK) {
            /* the pool and the JSON stay until the hub answers */
            pub->ev.max_context = ws->conf->max_context;

            /* unless configured here: as the subscription's dialect */
            pub->ev.content_sharing =
                (ws->conf->content_sharing != NGX_CONF_UNSET)
                ? ws->conf->content_sharing
                : (pub->ev.dialect == NGX_HTTP_CAST_DIALECT_FHIRCAST);
            pub->ws = ws;
            pub->pool = pool;
            pub->root = root;
            ngx_queue_insert_tail(&ws->publishing, &pub->queue);

            ngx_http_cast_hub_publish(ws->hub, &pub->ev,
                                      ngx_http_cast_ws_published, pub);
            return;
        }

    } else if (json_is_object(root)
               && json_is_string(id = json_object_get(root, "id"))
               && (status = json_object_get(root, "status")) != NULL
               && (json_is_integer(status) || json_is_string(status)))
    {
        /* "status": 409 or "409" (reference 2.6) */

        code = json_is_integer(status)
               ? (json_integer_value(status) >= 0
                  && json_integer_value(status) < 1000
                  ? (ngx_int_t) json_integer_value(status) : NGX_ERROR)
               : ngx_atoi((u_char *) json_string_value(status),
                          json_string_length(status));

        body.data = (u_char *) json_string_value(id);
        body.len = json_string_length(id);

        ngx_http_cast_hub_ack(ws->hub, ws->sub, &body,
                              code == NGX_ERROR ? 0 : (ngx_uint_t) code);

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, log, 0,
                       "cast ws: ack %i received", code);

    } else {
        ngx_log_debug0(NGX_LOG_DEBUG_HTTP, log, 0,
                       "cast ws: message ignored");
    }

    json_decref(root);
    ngx_destroy_pool(pool);
}


/*
 * cast_auth: a socket whose subscription was made with a bearer token
 * publishes on its own topic only, and only the events the token may
 * write (kept in its record); its lease ended with the token.
 */

static ngx_int_t
ngx_http_cast_ws_allowed(ngx_http_cast_ws_t *ws, ngx_http_cast_event_t *ev,
    ngx_str_t *err)
{
    ngx_http_cast_record_t  *record;

    if (!ws->auth) {
        return NGX_OK;
    }

    if (ws->sub == NULL) {
        ngx_str_set(err, "403: the subscription has ended");
        return NGX_DECLINED;
    }

    record = &ws->sub->record;

    if (!record->auth) {
        /* renewed where cast_auth is off */
        return NGX_OK;
    }

    if (record->topic.len != ev->topic.len
        || ngx_memcmp(record->topic.data, ev->topic.data, ev->topic.len) != 0)
    {
        ngx_str_set(err, "403: the subscription's token is for another "
                         "topic");
        return NGX_DECLINED;
    }

    if (!ngx_http_cast_scopes_listed(&record->writable, &ev->lowercase)) {
        ngx_str_set(err, "403: the subscription's token may not publish "
                         "this event");
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* the hub's answer to an event sent on the socket: errors go back */

static void
ngx_http_cast_ws_published(void *data, ngx_http_cast_result_t *res)
{
    ngx_http_cast_ws_publish_t *pub = data;

    ngx_str_t            err;
    ngx_http_cast_ws_t  *ws;

    ws = pub->ws;

    if (ws) {
        ngx_queue_remove(&pub->queue);

        if (res->rc != NGX_HTTP_CAST_DONE) {
            if (res->rc == NGX_HTTP_CAST_FULL) {
                ngx_str_set(&err, "the hub holds as many topics as it may "
                                  "(cast_max_topics)");

            } else if (res->reason.len) {
                /* refused by the topic's state: why, as over HTTP */
                err = res->reason;

            } else if (res->rc == NGX_HTTP_CAST_TOO_LARGE) {
                ngx_str_set(&err, "the context exceeds "
                                  "cast_max_context_size");

            } else if (res->rc == NGX_HTTP_CAST_UNAVAILABLE) {
                ngx_str_set(&err, "the hub's Redis is unreachable, the "
                                  "event was not published");

            } else {
                ngx_str_set(&err, "the event was not published");
            }

            ngx_http_cast_ws_send_error(ws, &err,
                                        json_object_get(pub->root, "id"));
        }
    }

    json_decref(pub->root);
    ngx_destroy_pool(pub->pool);
}


static void
ngx_http_cast_ws_send_error(ngx_http_cast_ws_t *ws, ngx_str_t *error,
    json_t *id)
{
    json_t  *obj;

    obj = json_object();
    if (obj == NULL) {
        return;
    }

    if (json_object_set_new(obj, "error", ngx_http_cast_json_string(error))
        == 0
        && json_object_set_new(obj, "id",
                               id ? json_incref(id) : json_null()) == 0)
    {
        (void) ngx_http_cast_ws_send_json(ws, obj);
    }

    json_decref(obj);
}


static ngx_int_t
ngx_http_cast_ws_send_json(ngx_http_cast_ws_t *ws, json_t *json)
{
    size_t                  len;
    ngx_int_t               rc;
    ngx_http_cast_frame_t  *frame;

    len = json_dumpb(json, NULL, 0, JSON_COMPACT);
    if (len == 0) {
        return NGX_ERROR;
    }

    frame = ngx_http_cast_frame_create(NGX_HTTP_CAST_WS_TEXT, NULL, len);
    if (frame == NULL) {
        return NGX_ERROR;
    }

    if (json_dumpb(json, (char *) frame->data + frame->len - len, len,
                   JSON_COMPACT) != len)
    {
        ngx_http_cast_frame_release(frame);
        return NGX_ERROR;
    }

    rc = ngx_http_cast_ws_enqueue(ws, frame, 0);
    ngx_http_cast_frame_release(frame);

    return rc;
}


/* called by the hub: one frame of its, shared with other sockets */

static ngx_int_t
ngx_http_cast_ws_send_frame(void *socket, ngx_http_cast_frame_t *frame,
    ngx_uint_t flags)
{
    if (!(flags & NGX_HTTP_CAST_SEND_LIVE)) {
        return ngx_http_cast_ws_enqueue(socket, frame,
                                        NGX_HTTP_CAST_WS_Q_EXEMPT);
    }

    return ngx_http_cast_ws_enqueue(socket, frame,
                                    (flags & NGX_HTTP_CAST_SEND_LATEST)
                                    && frame->key.len
                                    ? NGX_HTTP_CAST_WS_Q_LATEST : 0);
}


static ngx_int_t
ngx_http_cast_ws_send_control(ngx_http_cast_ws_t *ws, ngx_uint_t opcode,
    u_char *data, size_t len)
{
    ngx_int_t               rc;
    ngx_http_cast_frame_t  *frame;

    frame = ngx_http_cast_frame_create(opcode, data, len);
    if (frame == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_cast_ws_enqueue(ws, frame,
                                  opcode == NGX_HTTP_CAST_WS_CLOSE
                                  ? NGX_HTTP_CAST_WS_Q_CONTROL
                                    |NGX_HTTP_CAST_WS_Q_CLOSE
                                  : NGX_HTTP_CAST_WS_Q_CONTROL);
    ngx_http_cast_frame_release(frame);

    return rc;
}


/*
 * Queues a frame.  Live traffic beyond cast_send_queue ends the subscriber
 * (1008) later, from a posted event: the caller may be walking a topic's
 * subscriptions.
 *
 * A latest-value frame on a socket that cannot take more (its last write
 * did not go through whole: the peer does not keep up) first drops the
 * queued latest-value frames of its key (event and topic) that are not
 * started, then goes last like any frame: what the socket sends stays in
 * publication order, a slow reader skips the stale states, and the frames
 * of a key never pile up (one queued, at most one more on the wire).  A
 * socket that can write only waits for its posted write (events that came
 * in one turn of the event loop): it keeps every frame.
 */

static ngx_int_t
ngx_http_cast_ws_enqueue(ngx_http_cast_ws_t *ws, ngx_http_cast_frame_t *frame,
    ngx_uint_t flags)
{
    ngx_http_cast_ws_out_t  *out, **prev;

    if (ws->closing || ws->failed || ws->done) {
        return NGX_DECLINED;
    }

    if ((flags & NGX_HTTP_CAST_WS_Q_LATEST)
        && ws->detached && !ws->connection->write->ready)
    {
        prev = &ws->out;

        while (*prev) {
            out = *prev;

            if (out->latest && !out->flight
                && !(out == ws->out && ws->sent)
                && ngx_http_cast_frame_same_key(out->frame, frame))
            {
                ngx_http_cast_ws_unlink(ws, prev);
                ws->replaced++;

                ngx_log_debug1(NGX_LOG_DEBUG_HTTP, ws->connection->log, 0,
                               "cast ws: a latest-value frame replaced, "
                               "%ui on this socket", ws->replaced);
                continue;
            }

            prev = &out->next;
        }
    }

    /*
     * Pongs count too: a client that floods pings and never reads must not
     * make the hub buffer without bound.  The Close frame, and what a
     * socket gets before it could read (the 101, greeting and replay), go
     * beyond the limit.
     */

    if (!(flags & (NGX_HTTP_CAST_WS_Q_EXEMPT|NGX_HTTP_CAST_WS_Q_CLOSE))
        && ws->queued - ws->exempt + frame->len > ws->conf->send_queue)
    {
        ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                      "cast: subscriber does not read, %uz bytes queued, "
                      "closing with 1008", ws->queued);

        ws->failed = 1;
        ws->fail_code = NGX_HTTP_CAST_WS_POLICY;
        ws->fail_reason = "send queue overflow";
        ws->fail_pending = 1;
        ngx_http_cast_ws_post(ws);

        return NGX_ERROR;
    }

    return ngx_http_cast_ws_link(ws, frame, flags);
}


/* appends a frame to the queue, unconditionally */

static ngx_int_t
ngx_http_cast_ws_link(ngx_http_cast_ws_t *ws, ngx_http_cast_frame_t *frame,
    ngx_uint_t flags)
{
    ngx_connection_t        *c;
    ngx_http_cast_ws_out_t  *out;

    out = ws->free;

    if (out) {
        ws->free = out->next;

    } else {
        out = ngx_alloc(sizeof(ngx_http_cast_ws_out_t), ws->connection->log);
        if (out == NULL) {
            return NGX_ERROR;
        }
    }

    out->next = NULL;
    out->frame = frame;
    out->exempt = (flags & NGX_HTTP_CAST_WS_Q_EXEMPT) ? 1 : 0;
    out->raw = (flags & NGX_HTTP_CAST_WS_Q_RAW) ? 1 : 0;
    out->close = (flags & NGX_HTTP_CAST_WS_Q_CLOSE) ? 1 : 0;
    out->latest = (flags & NGX_HTTP_CAST_WS_Q_LATEST) ? 1 : 0;
    out->flight = 0;
    frame->refs++;

    *ws->last_out = out;
    ws->last_out = &out->next;
    ws->queued += frame->len;

    if (out->exempt) {
        ws->exempt += frame->len;
    }

    c = ws->connection;

    /* before the detach the connection's handlers are the request's */

#if (NGX_HTTP_CAST_IO_URING)
    if (ngx_http_cast_ws_ring_on && ws->detached) {
        ngx_http_cast_ws_batch_add(ws);
        return NGX_OK;
    }
#endif

    if (ws->detached && !c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }

    return NGX_OK;
}


/* drops the link *prev points to; never the head once it is started */

static void
ngx_http_cast_ws_unlink(ngx_http_cast_ws_t *ws, ngx_http_cast_ws_out_t **prev)
{
    ngx_http_cast_ws_out_t  *out;

    out = *prev;
    *prev = out->next;

    if (ws->last_out == &out->next) {
        ws->last_out = prev;
    }

    ws->queued -= out->frame->len;

    if (out->exempt) {
        ws->exempt -= out->frame->len;
    }

    ngx_http_cast_frame_release(out->frame);

    ngx_http_cast_ws_free_link(ws, out);
}


/* links are reused; ngx_http_cast_ws_trim() gives back what is spare */

static void
ngx_http_cast_ws_free_link(ngx_http_cast_ws_t *ws,
    ngx_http_cast_ws_out_t *out)
{
    out->next = ws->free;
    ws->free = out;
}


/*
 * An idle socket keeps one spare link and no parser: called when the
 * queue first drains (the 101, greeting and confirmation took three
 * links) and at every ping; a busy socket reuses what it has in between.
 */

static void
ngx_http_cast_ws_trim(ngx_http_cast_ws_t *ws)
{
    ngx_http_cast_ws_out_t  *out;

    if (ws->parser && ngx_http_cast_ws_parser_idle(ws->parser)) {
        ngx_free(ws->parser);
        ws->parser = NULL;
    }

    if (ws->out) {
        return;
    }

    while (ws->free && ws->free->next) {
        out = ws->free->next;
        ws->free->next = out->next;
        ngx_free(out);
    }
}


/*
 * NGX_OK: all sent; NGX_AGAIN: waiting for the socket; NGX_DONE: the Close
 * is sent (the socket is finalized when the peer's Close came, otherwise it
 * lingers); NGX_ERROR
 */

static ngx_int_t
ngx_http_cast_ws_flush(ngx_http_cast_ws_t *ws)
{
    u_char                  *p;
    size_t                   left;
    ssize_t                  n;
    ngx_uint_t               plain;
    ngx_event_t             *wev;
    ngx_iovec_t              vec;
    ngx_connection_t        *c;
    ngx_http_cast_frame_t   *frame;
    ngx_http_cast_ws_out_t  *out;
    struct iovec             iovs[NGX_HTTP_CAST_WS_IOVS];

    c = ws->connection;
    wev = c->write;

    if (c->error) {
        return NGX_ERROR;
    }

    if (!ws->detached) {
        /* the detach flushes */
        return NGX_AGAIN;
    }

#if (NGX_HTTP_CAST_IO_URING)
    if (ws->sqe) {
        /* its completion goes on */
        return NGX_AGAIN;
    }
#endif

    /*
     * A plain connection gets every queued frame (the 101 and the hub's
     * first frames, or a burst of events) in one writev(); TLS writes
     * frame by frame through c->send().
     */

    plain = 1;

#if (NGX_SSL)
    if (c->ssl) {
        plain = 0;
    }
#endif

    vec.iovs = iovs;
    vec.nalloc = NGX_HTTP_CAST_WS_IOVS;

    while (ws->out) {

        if (plain) {
            vec.count = 0;
            vec.size = 0;

            for (out = ws->out;
                 out && vec.count < NGX_HTTP_CAST_WS_IOVS;
                 out = out->next)
            {
                p = out->frame->data;
                left = out->frame->len;

                if (out == ws->out) {
                    p += ws->sent;
                    left -= ws->sent;
                }

                iovs[vec.count].iov_base = p;
                iovs[vec.count].iov_len = left;
                vec.count++;
                vec.size += left;
            }

            n = ngx_writev(c, &vec);

        } else {
            frame = ws->out->frame;
            n = c->send(c, frame->data + ws->sent, frame->len - ws->sent);
        }

        if (n == NGX_ERROR) {
            c->error = 1;
            return NGX_ERROR;
        }

        if (n == NGX_AGAIN) {
            wev->ready = 0;
            goto again;
        }

        c->sent += n;
        ws->progress = ngx_current_msec;

        if (plain && (size_t) n < vec.size) {
            wev->ready = 0;
        }

        ngx_http_cast_ws_advance(ws, n);

        if (!wev->ready) {
            goto again;
        }
    }

    if (ws->close_sent) {

        if (ws->close_received) {
            ngx_http_cast_ws_finalize(ws);
            return NGX_DONE;
        }

        if (!ws->shut_wr) {
            /*
             * Like nginx's lingering close: nothing more is written, what
             * the peer sends is read (its Close ends the wait) for a
             * bounded time, so that its unread bytes do not make the
             * kernel reset the connection before it read our Close.
             */

            ws->shut_wr = 1;

            if (ngx_shutdown_socket(c->fd, NGX_WRITE_SHUTDOWN) == -1) {
                ngx_connection_error(c, ngx_socket_errno,
                                     ngx_shutdown_socket_n " failed");
                return NGX_ERROR;
            }
        }

        return NGX_DONE;
    }

    if (ngx_handle_write_event(wev, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;

again:

    if (ngx_handle_write_event(wev, 0) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_AGAIN;
}


/* n bytes are sent: the frames sent are done with, the next one started */

static void
ngx_http_cast_ws_advance(ngx_http_cast_ws_t *ws, size_t n)
{
    size_t                   left;
    ngx_http_cast_frame_t   *frame;
    ngx_http_cast_ws_out_t  *out;

    while (n > 0 && ws->out) {
        out = ws->out;
        frame = out->frame;
        left = ngx_min(n, frame->len - ws->sent);

        n -= left;
        ws->sent += left;
        ws->queued -= left;

        if (out->exempt) {
            ws->exempt -= left;
        }

        if (ws->sent < frame->len) {
            break;
        }

        if (out->raw) {
            ws->upgraded = 1;
        }

        if (out->close) {
            ws->close_sent = 1;
        }

        ws->sent = 0;
        ws->out = out->next;

        ngx_http_cast_ws_free_link(ws, out);

        if (ws->out == NULL) {
            ws->last_out = &ws->out;

            if (!ws->drained) {
                ws->drained = 1;
                ngx_http_cast_ws_trim(ws);
            }
        }

        ngx_http_cast_frame_release(frame);
    }
}


/*
 * Closes with a code: the frames not started are dropped, the one on the
 * wire (and the 101) are finished, then the Close is sent and the peer has
 * lingering_timeout to read it (lingering_time in all); the subscription
 * ends now.
 */

static void
ngx_http_cast_ws_fail(ngx_http_cast_ws_t *ws, ngx_uint_t code,
    const char *reason)
{
    u_char                   payload[NGX_HTTP_CAST_WS_MAX_CONTROL];
    size_t                   len;
    ngx_http_cast_sub_t     *sub;
    ngx_http_cast_frame_t   *frame;
    ngx_http_cast_ws_out_t  *out, **prev;

    sub = ws->sub;

    if (sub) {
        ws->sub = NULL;
        ngx_http_cast_hub_detach(sub, reason);
    }

    ws->failed = 1;

    if (ws->closing) {
        /* a Close is on its way already */

        if (ws->close_sent) {
            ngx_http_cast_ws_finalize(ws);

        } else if (ngx_http_cast_ws_flush(ws) == NGX_ERROR) {
            ngx_http_cast_ws_finalize(ws);
        }

        return;
    }

    prev = &ws->out;

    while (*prev) {
        out = *prev;

        if (out->raw || out->flight || (out == ws->out && ws->sent)) {
            prev = &out->next;
            continue;
        }

        ngx_http_cast_ws_unlink(ws, prev);
    }

    len = ngx_http_cast_ws_close_payload(payload, code, (u_char *) reason,
                                         ngx_strlen(reason));

    frame = ngx_http_cast_frame_create(NGX_HTTP_CAST_WS_CLOSE, payload, len);

    if (frame == NULL
        || ngx_http_cast_ws_link(ws, frame, NGX_HTTP_CAST_WS_Q_CONTROL
                                            |NGX_HTTP_CAST_WS_Q_CLOSE)
           != NGX_OK)
    {
        if (frame) {
            ngx_http_cast_frame_release(frame);
        }

        ngx_http_cast_ws_finalize(ws);
        return;
    }

    ngx_http_cast_frame_release(frame);

    ngx_http_cast_ws_set_closing(ws);

    if (ngx_http_cast_ws_flush(ws) == NGX_ERROR) {
        ngx_http_cast_ws_finalize(ws);
    }
}


/* a Close is queued: no pings, no message timer, a bounded wait */

static void
ngx_http_cast_ws_set_closing(ngx_http_cast_ws_t *ws)
{
    if (!ws->closing) {
        /* the timer was for pings and a message, it is the linger's now */
        ngx_http_cast_event_cancel(&ws->timer_ev);
    }

    ws->closing = 1;
    ws->message_timer = 0;
    ws->closing_start = ngx_current_msec;
    ws->progress = ws->closing_start;

    if (!ws->timer_ev.timer_set) {
        ngx_add_timer(&ws->timer_ev, ngx_min(ws->lingering_timeout,
                                             ws->lingering_time));
    }
}


static void
ngx_http_cast_ws_timer(ngx_event_t *ev)
{
    ngx_http_cast_ws_t *ws = ev->data;

    if (ws->closing) {
        ngx_http_cast_ws_linger_handler(ev);
        return;
    }

    if (ws->message_timer
        && (ngx_msec_int_t) (ngx_current_msec - ws->message_at) >= 0)
    {
        ws->message_timer = 0;
        ngx_http_cast_ws_message_handler(ev);
        return;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - ws->ping_at) >= 0) {
        ngx_http_cast_ws_ping_handler(ev);
    }

    /* a socket that fails or closes has no pings any more */

    if (!ws->done && !ws->closing && !ws->failed) {
        ngx_http_cast_ws_timer_set(ws);
    }
}


/* live: the timer goes off for the next ping or the message's time */

static void
ngx_http_cast_ws_timer_set(ngx_http_cast_ws_t *ws)
{
    ngx_msec_t      at;
    ngx_msec_int_t  left;

    at = ws->ping_at;

    if (ws->message_timer && (ngx_msec_int_t) (ws->message_at - at) < 0) {
        at = ws->message_at;
    }

    left = (ngx_msec_int_t) (at - ngx_current_msec);

    ngx_add_timer(&ws->timer_ev, (ngx_msec_t) ngx_max(left, 1));
}


/*
 * Closing: the peer must read our Close (and send its own) with no pause
 * longer than lingering_timeout, and within lingering_time in all.
 */

static void
ngx_http_cast_ws_linger_handler(ngx_event_t *ev)
{
    ngx_msec_t           now, elapsed, idle;
    ngx_http_cast_ws_t  *ws;

    ws = ev->data;

    now = ngx_current_msec;
    elapsed = now - ws->closing_start;
    idle = now - ws->progress;

    if (elapsed >= ws->lingering_time || idle >= ws->lingering_timeout) {
        ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                      "cast: %s after %M ms, closing the connection",
                      ws->close_sent ? "no close frame from the client"
                                     : "the client did not read its close "
                                       "frame",
                      elapsed);

        ngx_http_cast_ws_finalize(ws);
        return;
    }

    ngx_add_timer(ev, ngx_min(ws->lingering_timeout - idle,
                              ws->lingering_time - elapsed));
}


/* a client message, begun, did not end within cast_ws_message_timeout */

static void
ngx_http_cast_ws_message_handler(ngx_event_t *ev)
{
    ngx_http_cast_ws_t  *ws;

    ws = ev->data;

    ngx_log_error(NGX_LOG_INFO, ws->connection->log, 0,
                  "cast: client message not complete after %M ms, "
                  "closing with 1008", ws->conf->ws_message_timeout);

    ngx_http_cast_ws_fail(ws, NGX_HTTP_CAST_WS_POLICY, "message timeout");
}


/*
 * Every ping interval: a ping frame, or Close 1001 for a peer that sent
 * nothing (pong or other) for two intervals.
 */

static void
ngx_http_cast_ws_ping_handler(ngx_event_t *ev)
{
    ngx_connection_t    *c;
    ngx_http_cast_ws_t  *ws;

    ws = ev->data;
    c = ws->connection;

    if (ngx_current_msec - ws->last_seen >= 2 * ws->conf->ping_interval) {
        ngx_log_error(NGX_LOG_INFO, c->log, 0,
                      "cast: client did not answer pings, closing");
        ngx_http_cast_ws_fail(ws, NGX_HTTP_CAST_WS_GOING_AWAY,
                              "ping timeout");
        return;
    }

    ngx_http_cast_ws_trim(ws);

    if (ngx_http_cast_ws_send_control(ws, NGX_HTTP_CAST_WS_PING, NULL, 0)
        == NGX_ERROR
        || (ws->conf->json_ping && ngx_http_cast_ws_json_ping(ws) != NGX_OK))
    {
        if (!ws->failed) {
            ngx_http_cast_ws_finalize(ws);
        }

        /* an overflow: the posted failure closes with 1008 */
        return;
    }

    ws->ping_at = ngx_current_msec + ws->conf->ping_interval;
}


/* cast_json_ping: G1's {"type":"ping","timestamp"} with each ping */

static ngx_int_t
ngx_http_cast_ws_json_ping(ngx_http_cast_ws_t *ws)
{
    u_char     ts[NGX_HTTP_CAST_TIMESTAMP_LEN];
    json_t    *ping;
    ngx_int_t  rc;

    ngx_http_cast_timestamp(ts);

    ping = json_pack("{s:s,s:s%}", "type", "ping",
                     "timestamp", (char *) ts, sizeof(ts));
    if (ping == NULL) {
        return NGX_ERROR;
    }

    rc = ngx_http_cast_ws_send_json(ws, ping);
    json_decref(ping);

    return rc;
}


/* called by the hub: the denial was queued; Close follows the queue */

static void
ngx_http_cast_ws_close(void *socket, ngx_uint_t code, const char *reason)
{
    ngx_http_cast_ws_t *ws = socket;

    u_char  payload[NGX_HTTP_CAST_WS_MAX_CONTROL];
    size_t  len;

    ws->sub = NULL;

    /* failed: the posted failure closes it */

    if (ws->closing || ws->done || ws->failed) {
        return;
    }

    len = ngx_http_cast_ws_close_payload(payload, code, (u_char *) reason,
                                         ngx_strlen(reason));

    if (ngx_http_cast_ws_send_control(ws, NGX_HTTP_CAST_WS_CLOSE, payload,
                                      len)
        != NGX_OK)
    {
        /* called from another request: end this one from its own event */
        ws->failed = 1;
        ws->fail_code = code;
        ws->fail_reason = reason;
        ws->fail_pending = 1;
        ngx_http_cast_ws_post(ws);
        return;
    }

    ngx_http_cast_ws_set_closing(ws);
}


/* worker exit: every socket still open, or closing, is closed now */

void
ngx_http_cast_ws_shutdown_all(void)
{
    ngx_queue_t         *q;
    ngx_http_cast_ws_t  *ws;

    /* the queue is made with the first socket */

    while (ngx_http_cast_ws_sockets.next
           && !ngx_queue_empty(&ngx_http_cast_ws_sockets))
    {
        q = ngx_queue_head(&ngx_http_cast_ws_sockets);
        ws = ngx_queue_data(q, ngx_http_cast_ws_t, link);

        ngx_http_cast_ws_close_now(ws);
    }

#if (NGX_HTTP_CAST_IO_URING)
    /* the ring goes after the sockets, also when none ever came */
    ngx_http_cast_ws_ring_exit();
#endif
}


/*
 * Ends the socket: it leaves the hub now, its memory and connection go
 * from a posted event, so that callers up the stack may still look at it.
 */

static void
ngx_http_cast_ws_finalize(ngx_http_cast_ws_t *ws)
{
    if (ws->done) {
        return;
    }

    ws->done = 1;

    ngx_http_cast_ws_release(ws);

    if (ws->detached) {
        ngx_http_cast_ws_post(ws);
    }

    /* before the detach, ngx_http_cast_ws_detach() posts it */
}


/* worker exit, or the posted close: the connection is closed right now */

static void
ngx_http_cast_ws_close_now(ngx_http_cast_ws_t *ws)
{
    ngx_connection_t    *c;
    ngx_http_request_t  *r;

    if (!ws->done) {
        ws->done = 1;
        ngx_http_cast_ws_release(ws);
    }

    ngx_http_cast_ws_unpost(ws);

    if (!ws->detached) {
        /* the request cleanup frees ws */
        r = ws->request;
        c = r->connection;

        ngx_http_finalize_request(r, NGX_HTTP_CLOSE);
        ngx_http_run_posted_requests(c);
        return;
    }

    c = ws->connection;

#if (NGX_HTTP_CAST_IO_URING)
    if (ws->sqe) {
        /* the kernel has its own reference to the socket and frames */
        ws->sqe->ws = NULL;
        ws->sqe = NULL;
    }

    if (ws->in_batch) {
        ngx_queue_remove(&ws->batch);
        ws->in_batch = 0;
    }
#endif

    ngx_queue_remove(&ws->link);
    ngx_free(ws);

    ngx_http_close_connection(c);
}


/*
 * The socket goes away for any reason (close, error, timeout, worker
 * shutdown): a last Close 1001 when none was sent, the subscription ends,
 * the queue and timers are released.
 */

static void
ngx_http_cast_ws_release(ngx_http_cast_ws_t *ws)
{
    u_char                   frame[2 + NGX_HTTP_CAST_WS_MAX_CONTROL];
    size_t                   len;
    ngx_queue_t                 *q;
    ngx_connection_t            *c;
    ngx_http_cast_sub_t         *sub;
    ngx_http_cast_ws_out_t      *out;
    ngx_http_cast_ws_publish_t  *pub;

    c = ws->connection;

    if (ws->detached && ws->upgraded && !ws->close_sent && ws->sent == 0
        && !c->error
#if (NGX_HTTP_CAST_IO_URING)
        && ws->sqe == NULL
#endif
       )
    {
        len = ngx_http_cast_ws_close_payload(frame + 2,
                                             NGX_HTTP_CAST_WS_GOING_AWAY,
                                             (u_char *) "going away",
                                             sizeof("going away") - 1);
        frame[0] = 0x80 | NGX_HTTP_CAST_WS_CLOSE;
        frame[1] = (u_char) len;

        (void) c->send(c, frame, len + 2);
    }

    sub = ws->sub;

    if (sub) {
        ws->sub = NULL;
        /*
         * A worker that exits (reload, shutdown) leaves the subscription
         * for the client to bind again, here or on another worker.
         */

        ngx_http_cast_hub_detach(sub, (ngx_exiting || ngx_quit
                                       || ngx_terminate)
                                      ? NULL : "socket closed");
    }

    /* events on their way to the hub: their answers find no socket */

    while (!ngx_queue_empty(&ws->publishing)) {
        q = ngx_queue_head(&ws->publishing);
        ngx_queue_remove(q);
        pub = ngx_queue_data(q, ngx_http_cast_ws_publish_t, queue);
        pub->ws = NULL;
    }

    while (ws->out) {
        out = ws->out;
        ws->out = out->next;
        ngx_http_cast_frame_release(out->frame);
        ngx_free(out);
    }

    ws->last_out = &ws->out;
    ws->queued = 0;
    ws->exempt = 0;

    while (ws->free) {
        out = ws->free;
        ws->free = out->next;
        ngx_free(out);
    }

    if (ws->message) {
        ngx_free(ws->message);
        ws->message = NULL;
    }

    if (ws->pending) {
        ngx_free(ws->pending);
        ws->pending = NULL;
    }

    if (ws->parser) {
        ngx_free(ws->parser);
        ws->parser = NULL;
    }

    /* the posted work stays: it may be the detach, or the close to come */

    ngx_http_cast_event_cancel(&ws->timer_ev);

    if (ws->detached) {
        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }
    }

    /* the link goes with the memory: worker exit closes what is left */
}


ngx_int_t
ngx_http_cast_ws_init_process(ngx_cycle_t *cycle, ngx_flag_t io_uring)
{
#if (NGX_HTTP_CAST_IO_URING)
    int                  rc, efd;
    ngx_uint_t           i;
    ngx_connection_t    *c;
    struct io_uring_probe  *probe;

    if (!io_uring) {
        return NGX_OK;
    }

    ngx_queue_init(&ngx_http_cast_ws_batch_q);

    rc = io_uring_queue_init(NGX_HTTP_CAST_WS_RING, &ngx_http_cast_ws_ring, 0);

    if (rc < 0) {
        /* containers often forbid it (EPERM, ENOSYS) */
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, -rc,
                      "cast_io_uring: io_uring_queue_init() failed, "
                      "WebSocket frames are written with writev()");
        return NGX_OK;
    }

    probe = io_uring_get_probe_ring(&ngx_http_cast_ws_ring);

    if (probe == NULL
        || !io_uring_opcode_supported(probe, IORING_OP_SENDMSG))
    {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                      "cast_io_uring: the kernel has no io_uring sendmsg, "
                      "WebSocket frames are written with writev()");
        if (probe) {
            io_uring_free_probe(probe);
        }

        io_uring_queue_exit(&ngx_http_cast_ws_ring);
        return NGX_OK;
    }

    io_uring_free_probe(probe);

    efd = eventfd(0, EFD_NONBLOCK|EFD_CLOEXEC);

    if (efd == -1) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, ngx_errno,
                      "cast_io_uring: eventfd() failed, "
                      "WebSocket frames are written with writev()");
        io_uring_queue_exit(&ngx_http_cast_ws_ring);
        return NGX_OK;
    }

    /* only the completions that did not come inline wake the loop */

    rc = io_uring_register_eventfd_async(&ngx_http_cast_ws_ring, efd);

    if (rc < 0) {
        ngx_log_error(NGX_LOG_NOTICE, cycle->log, -rc,
                      "cast_io_uring: io_uring_register_eventfd_async() "
                      "failed, WebSocket frames are written with writev()");
        (void) close(efd);
        io_uring_queue_exit(&ngx_http_cast_ws_ring);
        return NGX_OK;
    }

    c = ngx_get_connection(efd, cycle->log);
    if (c == NULL) {
        (void) close(efd);
        io_uring_queue_exit(&ngx_http_cast_ws_ring);
        return NGX_ERROR;
    }

    c->read->handler = ngx_http_cast_ws_ring_handler;
    c->read->log = cycle->log;
    c->write->log = cycle->log;
    c->data = NULL;

    if (ngx_add_event(c->read, NGX_READ_EVENT, NGX_CLEAR_EVENT) != NGX_OK) {
        ngx_close_connection(c);
        io_uring_queue_exit(&ngx_http_cast_ws_ring);
        return NGX_ERROR;
    }

    ngx_http_cast_ws_sqes = ngx_alloc(NGX_HTTP_CAST_WS_RING
                                      * sizeof(ngx_http_cast_ws_sqe_t),
                                      cycle->log);
    if (ngx_http_cast_ws_sqes == NULL) {
        ngx_close_connection(c);
        io_uring_queue_exit(&ngx_http_cast_ws_ring);
        return NGX_ERROR;
    }

    ngx_http_cast_ws_sqe_free = NULL;

    for (i = NGX_HTTP_CAST_WS_RING; i > 0; i--) {
        ngx_http_cast_ws_sqes[i - 1].next = ngx_http_cast_ws_sqe_free;
        ngx_http_cast_ws_sqe_free = &ngx_http_cast_ws_sqes[i - 1];
    }

    ngx_http_cast_ws_batch_ev.handler = ngx_http_cast_ws_batch_handler;
    ngx_http_cast_ws_batch_ev.log = cycle->log;
    ngx_http_cast_ws_batch_ev.data = NULL;

    ngx_http_cast_ws_ring_conn = c;
    ngx_http_cast_ws_ring_on = 1;

    ngx_log_error(NGX_LOG_NOTICE, cycle->log, 0,
                  "cast_io_uring: WebSocket fan-out through io_uring");

#else
    (void) cycle;
    (void) io_uring;
#endif

    return NGX_OK;
}


#if (NGX_HTTP_CAST_IO_URING)

/* a socket got a frame: it is written at the end of the fan-out */

static void
ngx_http_cast_ws_batch_add(ngx_http_cast_ws_t *ws)
{
    ngx_connection_t  *c;

    c = ws->connection;

    if (ws->in_batch || ws->sqe) {
        /* the batch, or the completion, writes this frame too */
        return;
    }

#if (NGX_SSL)
    if (c->ssl) {
        goto write_event;
    }
#endif

    if (!c->write->ready || c->write->posted) {
        /* the write event writes it */
        goto write_event;
    }

    ngx_queue_insert_tail(&ngx_http_cast_ws_batch_q, &ws->batch);
    ws->in_batch = 1;

    if (!ngx_http_cast_ws_batch_ev.posted) {
        ngx_post_event(&ngx_http_cast_ws_batch_ev, &ngx_posted_events);
    }

    return;

write_event:

    if (!c->write->posted) {
        ngx_post_event(c->write, &ngx_posted_events);
    }
}


/* the end of a fan-out: one submission for every socket in the batch */

static void
ngx_http_cast_ws_batch_handler(ngx_event_t *ev)
{
    size_t                   left;
    ngx_uint_t               queued;
    ngx_queue_t             *q;
    ngx_connection_t        *c;
    struct io_uring_sqe     *sqe;
    ngx_http_cast_ws_t      *ws;
    ngx_http_cast_ws_sqe_t  *s;
    ngx_http_cast_ws_out_t  *out;

    queued = 0;

    while (!ngx_queue_empty(&ngx_http_cast_ws_batch_q)) {
        q = ngx_queue_head(&ngx_http_cast_ws_batch_q);
        ngx_queue_remove(q);
        ws = ngx_queue_data(q, ngx_http_cast_ws_t, batch);
        ws->in_batch = 0;

        c = ws->connection;

        if (ws->done || ws->out == NULL || ws->sqe || c->error) {
            continue;
        }

        if (ngx_http_cast_ws_sqe_free == NULL
            || io_uring_sq_space_left(&ngx_http_cast_ws_ring) == 0)
        {
            /* the ring is full: what is submitted makes room */

            if (queued) {
                (void) io_uring_submit(&ngx_http_cast_ws_ring);
                queued = 0;
            }

            ngx_http_cast_ws_ring_reap();

            if (ngx_http_cast_ws_sqe_free == NULL
                || io_uring_sq_space_left(&ngx_http_cast_ws_ring) == 0)
            {
                if (!c->write->posted) {
                    ngx_post_event(c->write, &ngx_posted_events);
                }

                continue;
            }
        }

        s = ngx_http_cast_ws_sqe_free;
        ngx_http_cast_ws_sqe_free = s->next;

        s->ws = ws;
        s->size = 0;
        s->nframes = 0;

        for (out = ws->out;
             out && s->nframes < NGX_HTTP_CAST_WS_RING_IOVS;
             out = out->next)
        {
            left = out->frame->len;
            s->iovs[s->nframes].iov_base = out->frame->data;

            if (out == ws->out) {
                s->iovs[s->nframes].iov_base = out->frame->data + ws->sent;
                left -= ws->sent;
            }

            s->iovs[s->nframes].iov_len = left;
            s->frames[s->nframes] = out->frame;
            out->frame->refs++;
            out->flight = 1;
            s->nframes++;
            s->size += left;
        }

        ngx_memzero(&s->msg, sizeof(struct msghdr));
        s->msg.msg_iov = s->iovs;
        s->msg.msg_iovlen = s->nframes;

        sqe = io_uring_get_sqe(&ngx_http_cast_ws_ring);

        /* MSG_DONTWAIT: EAGAIN comes back rather than a wait in the ring */
        io_uring_prep_sendmsg(sqe, c->fd, &s->msg,
                              MSG_DONTWAIT|MSG_NOSIGNAL);
        io_uring_sqe_set_data(sqe, s);

        ws->sqe = s;
        queued++;

        if (queued == NGX_HTTP_CAST_WS_RING_SUBMIT) {
            (void) io_uring_submit(&ngx_http_cast_ws_ring);
            queued = 0;

            ngx_http_cast_ws_ring_reap();
        }
    }

    if (queued) {
        (void) io_uring_submit(&ngx_http_cast_ws_ring);
    }

    ngx_http_cast_ws_ring_reap();
}


/* the eventfd: completions that came later */

static void
ngx_http_cast_ws_ring_handler(ngx_event_t *ev)
{
    uint64_t           n;
    ngx_connection_t  *c;

    c = ev->data;

    while (read(c->fd, &n, sizeof(uint64_t)) > 0) {
        /* void */
    }

    ngx_http_cast_ws_ring_reap();
}


static void
ngx_http_cast_ws_ring_reap(void)
{
    size_t                   size;
    ngx_int_t                res;
    ngx_uint_t               i;
    struct io_uring_cqe     *cqe;
    ngx_http_cast_ws_t      *ws;
    ngx_http_cast_ws_sqe_t  *s;

    while (io_uring_peek_cqe(&ngx_http_cast_ws_ring, &cqe) == 0) {
        s = io_uring_cqe_get_data(cqe);
        res = cqe->res;
        io_uring_cqe_seen(&ngx_http_cast_ws_ring, cqe);

        if (s == NULL) {
            continue;
        }

        for (i = 0; i < s->nframes; i++) {
            ngx_http_cast_frame_release(s->frames[i]);
        }

        ws = s->ws;
        size = s->size;

        s->next = ngx_http_cast_ws_sqe_free;
        ngx_http_cast_ws_sqe_free = s;

        if (ws == NULL) {
            /* the socket is gone */
            continue;
        }

        ws->sqe = NULL;

        ngx_http_cast_ws_ring_done(ws, res, size);
    }
}


/* a send completed: as in ngx_http_cast_ws_flush() after its writev() */

static void
ngx_http_cast_ws_ring_done(ngx_http_cast_ws_t *ws, ngx_int_t res,
    size_t size)
{
    ngx_event_t             *wev;
    ngx_connection_t        *c;
    ngx_http_cast_ws_out_t  *out;

    c = ws->connection;
    wev = c->write;

    if (ws->done) {
        return;
    }

    for (out = ws->out; out && out->flight; out = out->next) {
        out->flight = 0;
    }

    if (res == -NGX_EAGAIN) {
        wev->ready = 0;

        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_cast_ws_finalize(ws);
        }

        return;
    }

    if (res < 0) {
        c->error = 1;
        ngx_connection_error(c, -res, "io_uring sendmsg() failed");
        ngx_http_cast_ws_finalize(ws);
        return;
    }

    c->sent += res;
    ws->progress = ngx_current_msec;

    ngx_http_cast_ws_advance(ws, res);

    if ((size_t) res < size) {
        wev->ready = 0;

        if (ngx_handle_write_event(wev, 0) != NGX_OK) {
            ngx_http_cast_ws_finalize(ws);
        }

        return;
    }

    /* what came meanwhile, the Close's end */

    if (ngx_http_cast_ws_flush(ws) == NGX_ERROR) {
        ngx_http_cast_ws_finalize(ws);
    }
}


/* worker exit, after the sockets: the sends in flight are waited for */

static void
ngx_http_cast_ws_ring_exit(void)
{
    ngx_uint_t               i;
    struct io_uring_cqe     *cqe;
    ngx_http_cast_ws_sqe_t  *s;

    if (!ngx_http_cast_ws_ring_on) {
        return;
    }

    ngx_http_cast_ws_ring_on = 0;

    ngx_http_cast_event_cancel(&ngx_http_cast_ws_batch_ev);

    /* the sockets are closed: no send waits long */

    for ( ;; ) {
        ngx_http_cast_ws_ring_reap();

        for (i = 0, s = ngx_http_cast_ws_sqe_free; s; s = s->next) {
            i++;
        }

        if (i == NGX_HTTP_CAST_WS_RING) {
            break;
        }

        if (io_uring_wait_cqe(&ngx_http_cast_ws_ring, &cqe) < 0) {
            break;
        }
    }

    ngx_close_connection(ngx_http_cast_ws_ring_conn);
    ngx_http_cast_ws_ring_conn = NULL;

    io_uring_queue_exit(&ngx_http_cast_ws_ring);

    ngx_free(ngx_http_cast_ws_sqes);
    ngx_http_cast_ws_sqes = NULL;
}

#endif
