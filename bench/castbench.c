/*
 * castbench: a single-threaded epoll load generator for the Cast hub
 * (ngx_http_cast_module) and, for comparison, nchan.
 *
 *   cc -O2 -Wall -Wextra -Werror -o castbench castbench.c
 *
 * Modes
 *   --mode cast   N subscribers over T topics subscribe through the hub API
 *                 (POST /api/hub, hub.channel.type=websocket), open a
 *                 WebSocket to the returned hub.channel.endpoint and wait for
 *                 the 2 frames the hub sends on connect; events are published
 *                 with POST /api/hub/bench-<k> (HTTP keep-alive) or, with
 *                 --ws-publish, as text frames on a dedicated WebSocket.
 *   --mode nchan  subscribers are WebSockets on /sub/bench-<k>; events are
 *                 published with POST /pub/bench-<k>.
 *   --max-rate    no rate: K keep-alive connections publish back to back for
 *                 D seconds; reports accepted publishes/s.
 *
 * Latest-value (cast; --latest, --slow N): every subscription asks for
 * subscriber.latest_value=bench-event; the last N subscribers are slow: a
 * small receive buffer (--slow-rcvbuf) and a read of what is there only
 * --slow-hz times a second.  After every such read castbench notes how
 * many acknowledged events the slow socket has not got ("behind"); the
 * fast ones are held to every event, the slow ones to order, to staying
 * open and to ending on the last event.  --payload pads every event.
 *
 * Every event carries {"t":<CLOCK_MONOTONIC ns at send>,"seq":<n>}; the
 * latency of a delivery is (receive time - t), both taken in this process.
 *
 * With --pid PID[,PID...] (the hub's worker processes) castbench also reads
 * /proc/<pid>/stat (utime+stime) around the measured publishing phase and
 * /proc/<pid>/smaps_rollup before the first connection and after every
 * subscriber is connected and idle.
 *
 * Output: a human summary, then one JSON line (the only line starting '{').
 * Exit status: 0 ok, 1 anomaly (loss, errors, closed subscribers), 2 usage
 * or setup failure.
 */

#define _GNU_SOURCE

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>


/* ---------------------------------------------------------------- options */

enum { MODE_CAST, MODE_NCHAN };

static struct {
    const char  *host;
    int          port;
    int          subs;
    int          topics;
    double       rate;
    double       duration;
    double       warmup;
    int          mode;
    int          ws_publish;
    int          max_rate;
    int          conns;          /* publisher keep-alive connections */
    int          api_conns;      /* subscribe API connections (cast) */
    int          inflight;       /* WebSocket handshakes in flight */
    double       settle;
    double       hold;
    double       drain;
    double       setup_timeout;
    const char  *api_path;
    const char  *pub_prefix;
    const char  *sub_prefix;
    const char  *topic_prefix;
    const char  *label;
    pid_t        pids[16];
    int          npids;
    int          latest;         /* subscriber.latest_value=bench-event */
    int          slow;           /* the last <slow> subscribers are slow */
    double       slow_hz;
    double       slow_window;    /* ms awake at every slow tick */
    int          slow_rcvbuf;
    int          payload;        /* pad bytes in every event */
} opt = {
    .host = "127.0.0.1", .port = 8080, .subs = 100, .topics = 1,
    .rate = 50, .duration = 10, .warmup = 2, .mode = MODE_CAST,
    .conns = 0, .api_conns = 8, .inflight = 256, .settle = 1.0,
    .hold = 0, .drain = 5, .setup_timeout = 60,
    .api_path = "/api/hub", .pub_prefix = "/pub/", .sub_prefix = "/sub/",
    .topic_prefix = "bench-", .label = "",
    .slow_hz = 5, .slow_window = 10, .slow_rcvbuf = 4096,
};


/* ---------------------------------------------------------------- helpers */

#define NS 1000000000ULL

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * NS + (uint64_t) ts.tv_nsec;
}

static void
die(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fprintf(stderr, "castbench: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void *
xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (p == NULL) {
        die("out of memory");
    }
    return p;
}

typedef struct {
    char    *p;
    size_t   len;
    size_t   cap;
} buf_t;

static void
buf_reserve(buf_t *b, size_t extra)
{
    size_t cap;

    if (b->len + extra <= b->cap) {
        return;
    }
    cap = b->cap ? b->cap : 512;
    while (cap < b->len + extra) {
        cap *= 2;
    }
    b->p = xrealloc(b->p, cap);
    b->cap = cap;
}

static void
buf_append(buf_t *b, const void *data, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void
buf_consume(buf_t *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

static void
buf_free(buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* xorshift64*, seeded from getrandom(): masking keys and handshake keys */

static uint64_t rng_state;

static uint64_t
rng(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

/* ------------------------------------------------------- SHA-1 and base64 */

typedef struct {
    uint32_t  h[5];
    uint64_t  len;
    uint8_t   blk[64];
    size_t    n;
} sha1_t;

#define ROL(x, k) (((x) << (k)) | ((x) >> (32 - (k))))

static void
sha1_block(sha1_t *s, const uint8_t *p)
{
    uint32_t w[80], a, b, c, d, e, f, k, t;
    int      i;

    for (i = 0; i < 16; i++) {
        w[i] = (uint32_t) p[4 * i] << 24 | (uint32_t) p[4 * i + 1] << 16
               | (uint32_t) p[4 * i + 2] << 8 | p[4 * i + 3];
    }
    for (i = 16; i < 80; i++) {
        w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    }
    a = s->h[0]; b = s->h[1]; c = s->h[2]; d = s->h[3]; e = s->h[4];
    for (i = 0; i < 80; i++) {
        if (i < 20) {
            f = (b & c) | (~b & d); k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ c ^ d; k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC;
        } else {
            f = b ^ c ^ d; k = 0xCA62C1D6;
        }
        t = ROL(a, 5) + f + e + k + w[i];
        e = d; d = c; c = ROL(b, 30); b = a; a = t;
    }
    s->h[0] += a; s->h[1] += b; s->h[2] += c; s->h[3] += d; s->h[4] += e;
}

static void
sha1(const void *data, size_t n, uint8_t out[20])
{
    sha1_t          s = { { 0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476,
                            0xC3D2E1F0 }, 0, { 0 }, 0 };
    const uint8_t  *p = data;
    uint64_t        bits;
    int             i;

    s.len = n;
    while (n >= 64) {
        sha1_block(&s, p);
        p += 64;
        n -= 64;
    }
    memcpy(s.blk, p, n);
    s.blk[n++] = 0x80;
    if (n > 56) {
        memset(s.blk + n, 0, 64 - n);
        sha1_block(&s, s.blk);
        n = 0;
    }
    memset(s.blk + n, 0, 56 - n);
    bits = s.len * 8;
    for (i = 0; i < 8; i++) {
        s.blk[56 + i] = (uint8_t) (bits >> (56 - 8 * i));
    }
    sha1_block(&s, s.blk);
    for (i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t) (s.h[i] >> 24);
        out[4 * i + 1] = (uint8_t) (s.h[i] >> 16);
        out[4 * i + 2] = (uint8_t) (s.h[i] >> 8);
        out[4 * i + 3] = (uint8_t) s.h[i];
    }
}

static void
base64(const uint8_t *in, size_t n, char *out)
{
    static const char  tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t             i;
    uint32_t           v;

    for (i = 0; i + 2 < n; i += 3) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
        *out++ = tab[v >> 18]; *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63]; *out++ = tab[v & 63];
    }
    if (n - i == 1) {
        v = (uint32_t) in[i] << 16;
        *out++ = tab[v >> 18]; *out++ = tab[(v >> 12) & 63];
        *out++ = '='; *out++ = '=';
    } else if (n - i == 2) {
        v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
        *out++ = tab[v >> 18]; *out++ = tab[(v >> 12) & 63];
        *out++ = tab[(v >> 6) & 63]; *out++ = '=';
    }
    *out = '\0';
}

/* ------------------------------------------------------------- /proc reads */

/* worker CPU time in ms (utime+stime, clock ticks) summed over --pid */
static double
proc_cpu_ms(void)
{
    char    path[64], line[1024], *p;
    double  total = 0;
    long    hz = sysconf(_SC_CLK_TCK);
    int     i, f;
    FILE   *fp;
    unsigned long long  ut, st;

    for (i = 0; i < opt.npids; i++) {
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) opt.pids[i]);
        fp = fopen(path, "r");
        if (fp == NULL) {
            return -1;
        }
        if (fgets(line, sizeof(line), fp) == NULL) {
            fclose(fp);
            return -1;
        }
        fclose(fp);
        p = strrchr(line, ')');      /* comm may hold spaces */
        if (p == NULL) {
            return -1;
        }
        p += 2;
        /* fields from 3 (state); utime is 14, stime 15 */
        for (f = 3; f < 14 && p; f++) {
            p = strchr(p, ' ');
            if (p) {
                p++;
            }
        }
        if (p == NULL || sscanf(p, "%llu %llu", &ut, &st) != 2) {
            return -1;
        }
        total += (double) (ut + st) * 1000.0 / (double) hz;
    }
    return total;
}

/* on-CPU time in ns from /proc/<pid>/schedstat (finer than clock ticks) */
static double
proc_sched_ms(void)
{
    char                path[64];
    double              total = 0;
    int                 i;
    FILE               *fp;
    unsigned long long  ns;

    for (i = 0; i < opt.npids; i++) {
        snprintf(path, sizeof(path), "/proc/%d/schedstat", (int) opt.pids[i]);
        fp = fopen(path, "r");
        if (fp == NULL) {
            return -1;
        }
        if (fscanf(fp, "%llu", &ns) != 1) {
            fclose(fp);
            return -1;
        }
        fclose(fp);
        total += (double) ns / 1e6;
    }
    return total;
}

typedef struct {
    long  priv_kb;     /* Private_Dirty + Private_Clean */
    long  pss_kb;
    long  rss_kb;
} mem_t;

static int
proc_mem(mem_t *m)
{
    char   path[64], line[256];
    long   v;
    int    i;
    FILE  *fp;

    memset(m, 0, sizeof(*m));
    for (i = 0; i < opt.npids; i++) {
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup",
                 (int) opt.pids[i]);
        fp = fopen(path, "r");
        if (fp == NULL) {
            return -1;
        }
        while (fgets(line, sizeof(line), fp)) {
            if (sscanf(line, "Private_Dirty: %ld", &v) == 1
                || sscanf(line, "Private_Clean: %ld", &v) == 1)
            {
                m->priv_kb += v;
            } else if (sscanf(line, "Pss: %ld", &v) == 1) {
                m->pss_kb += v;
            } else if (sscanf(line, "Rss: %ld", &v) == 1) {
                m->rss_kb += v;
            }
        }
        fclose(fp);
    }
    return 0;
}


/* ------------------------------------------------------------ connections */

enum { K_API, K_WS, K_PUB };
enum { S_CONNECTING, S_IDLE, S_BUSY, S_HANDSHAKE, S_OPEN, S_CLOSING,
       S_CLOSED };
enum { REQ_NONE, REQ_SUBSCRIBE, REQ_PUBLISH };

typedef struct conn {
    int       fd;
    int       kind;
    int       state;
    int       idx;            /* subscriber index (K_WS), request slot */
    int       topic;          /* subscriber topic; -1: the ws publisher */
    int       want_out;
    buf_t     rb;
    buf_t     wb;
    size_t    woff;
    /* WebSocket */
    char      accept[32];
    int       hello;          /* frames seen before ready (cast: 2) */
    int       ready;
    buf_t     msg;            /* fragmented message being reassembled */
    uint64_t  rx;
    uint64_t  last_seq;
    int       have_seq;
    /* HTTP */
    int       req;
    int       req_sub;        /* REQ_SUBSCRIBE: subscriber index */
    int       req_topic;
    uint64_t  req_seq;
    uint64_t  req_t;
    int       close_after;
    int       slow;           /* read only on the slow ticks */
    int       awake;          /* slow: reading now */
    uint64_t  rx0;            /* slow: rx when it woke */
} conn_t;

enum { SUB_PENDING, SUB_ENDPOINT, SUB_FAILED, SUB_STARTED };

typedef struct {
    char     path[160];
    int      topic;
    int      state;
    conn_t  *c;
} sub_t;

static int        ep;
static sub_t     *subs;            /* opt.subs (+1 for the ws publisher) */
static int        nsubs_total;
static conn_t   **api;
static conn_t   **pubs;
static conn_t    *wspub;

/* counters */
static struct {
    int       sub_api_sent, sub_api_ok, sub_api_err;
    int       ws_started, ws_inflight, ws_ready, ws_failed;
    int       ws_closed_unexpected;
    int       next_api;          /* next subscriber index to subscribe */
    int       next_ws;           /* next subscriber index to connect */
    int       endpoints;         /* subscribers with an endpoint */
    uint64_t  pub_sent, pub_ok, pub_err, pub_lost, pub_late;
    uint64_t  pub_ok_measured;   /* 2xx received while measuring */
    uint64_t  pub_err_frames;
    uint64_t  rx_total, rx_measured, rx_warmup, rx_other, rx_dup_or_reorder;
    uint64_t  rx_after_close, rx_stale;
    uint64_t  pings, closes_rx;
    uint64_t  pings_measured;    /* pings received while measuring */
    int       last_close_code;
    char      first_error[256];
    /* --slow: the slow subscribers */
    uint64_t  slow_rx, slow_gaps, slow_reorder, slow_ticks;
    int       slow_closed;
    uint64_t  max_acked_seq;     /* the highest acknowledged publish + 1 */
} st;

/* --slow: after every slow read, how many acknowledged events it lacks */
static uint32_t   *behind;
static size_t      nbehind, capbehind;
static uint32_t   *per_read;         /* events a slow read got */
static size_t      nper_read, capper_read;
static uint64_t    slow_next;        /* next slow tick */
static int         slow_awake;
static uint64_t    slow_wake_end;
static uint64_t    slow_final_behind = UINT64_MAX;
static long        mem_meas0 = -1, mem_meas1 = -1, mem_meas_max = -1;
static uint64_t    mem_next;

static uint64_t   *topic_pubs;      /* acknowledged publishes per topic */
static int        *topic_ready;     /* ready subscribers per topic */
static uint64_t    expected_warm, expected_meas;
static uint64_t    measure_first_seq = UINT64_MAX;
static uint64_t    measure_end_seq = UINT64_MAX;

/* latencies of measured deliveries, microseconds */
static uint32_t   *lat;
static size_t      nlat, caplat;
static uint64_t    lat_max_ns;
static uint64_t    lat_max_at;        /* when the slowest delivery came */
static uint64_t    first_ping_at;     /* when the hub's first ping came */
/* the same, to the kernel's receive timestamp of the socket data
 * (SO_TIMESTAMPNS): excludes the generator's own delay in reading */
static uint32_t   *klat;
static size_t      nklat, capklat;
static uint64_t    klat_max_ns;
static uint64_t    rx_ktime;          /* last read's kernel time, mono ns */
static int64_t     real_minus_mono;   /* CLOCK_REALTIME - CLOCK_MONOTONIC */
static uint64_t    t_start;
/* publish round trip (HTTP request -> response), microseconds */
static uint32_t   *rtt;
static size_t      nrtt, caprtt;

enum { P_SETUP, P_SETTLE, P_HOLD, P_WARMUP, P_MEASURE, P_DRAIN, P_CLOSE,
       P_DONE };
static int         phase;
static uint64_t    phase_t0;
static uint64_t    t_pub0;           /* scheduling origin */
static uint64_t    pub_next;         /* next publish seq */
static uint64_t    t_meas0, t_meas1;
static volatile sig_atomic_t  interrupted;

static void
note_error(const char *fmt, ...)
{
    va_list ap;

    if (st.first_error[0]) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(st.first_error, sizeof(st.first_error), fmt, ap);
    va_end(ap);
}

static void
push_u32(uint32_t **a, size_t *n, size_t *cap, uint32_t v)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 65536;
        *a = xrealloc(*a, *cap * sizeof(uint32_t));
    }
    (*a)[(*n)++] = v;
}

static void
ep_set(conn_t *c, int out)
{
    struct epoll_event ev;

    if (c->want_out == out) {
        return;
    }
    c->want_out = out;
    ev.events = (c->slow && c->ready && !c->awake ? 0 : EPOLLIN)
                | (out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
}

static int  open_rcvbuf;     /* SO_RCVBUF of the next socket, 0: default */

static conn_t *
conn_open(int kind)
{
    struct sockaddr_in  sa;
    struct epoll_event  ev;
    conn_t             *c;
    int                 fd, one = 1;

    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        die("socket: %s", strerror(errno));
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (kind == K_WS && open_rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &open_rcvbuf,
                   sizeof(open_rcvbuf));
    }
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t) opt.port);
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) {
        die("bad --host %s (an IPv4 address)", opt.host);
    }
    if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0
        && errno != EINPROGRESS)
    {
        die("connect %s:%d: %s", opt.host, opt.port, strerror(errno));
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL) {
        die("out of memory");
    }
    c->fd = fd;
    c->kind = kind;
    c->state = S_CONNECTING;
    c->want_out = 1;
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
    return c;
}

static void
conn_close(conn_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
        c->fd = -1;
    }
    c->state = S_CLOSED;
    buf_free(&c->rb);
    buf_free(&c->wb);
    buf_free(&c->msg);
    c->woff = 0;
}

/* returns -1 when the connection failed */
static int
conn_flush(conn_t *c)
{
    ssize_t n;

    if (c->state == S_CONNECTING || c->fd < 0) {
        return 0;
    }
    while (c->woff < c->wb.len) {
        n = write(c->fd, c->wb.p + c->woff, c->wb.len - c->woff);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) {
                break;
            }
            return -1;
        }
        c->woff += (size_t) n;
    }
    if (c->woff == c->wb.len) {
        c->wb.len = 0;
        c->woff = 0;
        ep_set(c, 0);
    } else {
        ep_set(c, 1);
    }
    return 0;
}

static void
conn_send(conn_t *c, const void *data, size_t n)
{
    buf_append(&c->wb, data, n);
}

/* a masked client frame */
static void
ws_send(conn_t *c, int opcode, const void *data, size_t n)
{
    uint8_t         h[14], key[4];
    const uint8_t  *p = data;
    size_t          hl = 0, i;
    uint64_t        r = rng();
    char           *out;

    h[hl++] = (uint8_t) (0x80 | opcode);
    if (n < 126) {
        h[hl++] = (uint8_t) (0x80 | n);
    } else if (n < 65536) {
        h[hl++] = 0x80 | 126;
        h[hl++] = (uint8_t) (n >> 8);
        h[hl++] = (uint8_t) n;
    } else {
        h[hl++] = 0x80 | 127;
        for (i = 0; i < 8; i++) {
            h[hl++] = (uint8_t) ((uint64_t) n >> (56 - 8 * i));
        }
    }
    memcpy(key, &r, 4);
    memcpy(h + hl, key, 4);
    hl += 4;
    buf_reserve(&c->wb, hl + n);
    buf_append(&c->wb, h, hl);
    out = c->wb.p + c->wb.len;
    for (i = 0; i < n; i++) {
        out[i] = (char) (p[i] ^ key[i & 3]);
    }
    c->wb.len += n;
}


/* ------------------------------------------------------------ HTTP parser */

typedef struct {
    int          status;
    size_t       hlen;          /* header bytes incl. the blank line */
    size_t       total;         /* header + body bytes */
    const char  *body;          /* body (de-chunked into dbody if chunked) */
    size_t       blen;
    int          close;
    char         accept[64];
} http_resp_t;

static buf_t dbody;

static int
hdr_is(const char *line, size_t n, const char *name)
{
    size_t k = strlen(name);

    return n > k && line[k] == ':' && strncasecmp(line, name, k) == 0;
}

static void
hdr_value(const char *line, size_t n, const char *name, char *out,
    size_t outsz)
{
    const char  *v = line + strlen(name) + 1, *e = line + n;
    size_t       k;

    while (v < e && (*v == ' ' || *v == '\t')) {
        v++;
    }
    while (e > v && (e[-1] == ' ' || e[-1] == '\t')) {
        e--;
    }
    k = (size_t) (e - v) < outsz - 1 ? (size_t) (e - v) : outsz - 1;
    memcpy(out, v, k);
    out[k] = '\0';
}

/* 1: complete, 0: need more, -1: malformed */
static int
http_parse(const char *p, size_t n, http_resp_t *r, int no_body)
{
    const char  *end, *line, *nl, *q;
    char         val[64];
    long long    clen = -1;
    int          chunked = 0;
    size_t       pos, sz;
    char        *ep2;

    memset(r, 0, sizeof(*r));
    end = memmem(p, n, "\r\n\r\n", 4);
    if (end == NULL) {
        return n > 65536 ? -1 : 0;
    }
    r->hlen = (size_t) (end - p) + 4;
    if (n < 12 || strncmp(p, "HTTP/1.", 7) != 0) {
        return -1;
    }
    r->status = atoi(p + 9);
    line = memchr(p, '\n', r->hlen) + 1;
    while (line < end) {
        nl = memchr(line, '\r', (size_t) (end + 2 - line));
        if (nl == NULL) {
            break;
        }
        sz = (size_t) (nl - line);
        if (hdr_is(line, sz, "content-length")) {
            hdr_value(line, sz, "content-length", val, sizeof(val));
            clen = atoll(val);
        } else if (hdr_is(line, sz, "transfer-encoding")) {
            hdr_value(line, sz, "transfer-encoding", val, sizeof(val));
            chunked = strcasestr(val, "chunked") != NULL;
        } else if (hdr_is(line, sz, "connection")) {
            hdr_value(line, sz, "connection", val, sizeof(val));
            r->close = strcasestr(val, "close") != NULL;
        } else if (hdr_is(line, sz, "sec-websocket-accept")) {
            hdr_value(line, sz, "sec-websocket-accept", r->accept,
                      sizeof(r->accept));
        }
        line = nl + 2;
    }
    if (no_body || r->status == 204 || r->status == 304
        || r->status / 100 == 1)
    {
        r->total = r->hlen;
        return 1;
    }
    if (chunked) {
        dbody.len = 0;
        pos = r->hlen;
        for (;;) {
            q = memmem(p + pos, n - pos, "\r\n", 2);
            if (q == NULL) {
                return 0;
            }
            sz = strtoul(p + pos, &ep2, 16);
            pos = (size_t) (q - p) + 2;
            if (sz == 0) {
                /* no trailers expected: the final CRLF */
                if (n - pos < 2) {
                    return 0;
                }
                pos += 2;
                break;
            }
            if (n - pos < sz + 2) {
                return 0;
            }
            buf_append(&dbody, p + pos, sz);
            pos += sz + 2;
        }
        r->body = dbody.p;
        r->blen = dbody.len;
        r->total = pos;
        return 1;
    }
    if (clen < 0) {
        if (r->status / 100 == 2 && !r->close) {
            clen = 0;
        } else {
            return -1;           /* read-until-close bodies: not supported */
        }
    }
    if (n - r->hlen < (size_t) clen) {
        return 0;
    }
    r->body = p + r->hlen;
    r->blen = (size_t) clen;
    r->total = r->hlen + (size_t) clen;
    return 1;
}


/* ---------------------------------------------------------- the requests */

static const char *
topic_name(int k, char *out, size_t n)
{
    if (k < 0) {
        snprintf(out, n, "%spub", opt.topic_prefix);
    } else {
        snprintf(out, n, "%s%d", opt.topic_prefix, k);
    }
    return out;
}

static void
api_subscribe(conn_t *c, int i)
{
    char  body[512], req[1024], tn[64];
    int   bl, rl;

    bl = snprintf(body, sizeof(body),
                  "hub.mode=subscribe&hub.channel.type=websocket"
                  "&hub.topic=%s&hub.events=bench-event%s",
                  topic_name(subs[i].topic, tn, sizeof(tn)),
                  opt.latest ? "&subscriber.latest_value=bench-event" : "");
    rl = snprintf(req, sizeof(req),
                  "POST %s HTTP/1.1\r\nHost: %s:%d\r\n"
                  "Content-Type: application/x-www-form-urlencoded\r\n"
                  "Content-Length: %d\r\n\r\n%s",
                  opt.api_path, opt.host, opt.port, bl, body);
    conn_send(c, req, (size_t) rl);
    c->state = S_BUSY;
    c->req = REQ_SUBSCRIBE;
    c->req_sub = i;
    c->req_t = now_ns();
    st.sub_api_sent++;
}

#define MAX_PAYLOAD  65536

static int
event_body(char *out, size_t n, int topic, uint64_t seq, uint64_t t,
    int with_topic)
{
    static char  pad[MAX_PAYLOAD + 1];
    char         tn[64];

    if (opt.payload > 0 && pad[0] == '\0') {
        memset(pad, 'x', (size_t) opt.payload);
    }
    if (with_topic) {
        return snprintf(out, n,
                        "{\"event\":{\"hub.topic\":\"%s\","
                        "\"hub.event\":\"bench-event\",\"context\":"
                        "{\"t\":%" PRIu64 ",\"seq\":%" PRIu64
                        ",\"pad\":\"%s\"}}}",
                        topic_name(topic, tn, sizeof(tn)), t, seq, pad);
    }
    return snprintf(out, n,
                    "{\"event\":{\"hub.event\":\"bench-event\",\"context\":"
                    "{\"t\":%" PRIu64 ",\"seq\":%" PRIu64
                    ",\"pad\":\"%s\"}}}", t, seq, pad);
}

static void
http_publish(conn_t *c, uint64_t seq, int topic)
{
    static char  body[MAX_PAYLOAD + 512], req[MAX_PAYLOAD + 1024];
    char         tn[64];
    int       bl, rl;
    uint64_t  t = now_ns();

    bl = event_body(body, sizeof(body), topic, seq, t, 0);
    /* cast: POST {base}/{topic}; nchan: POST /pub/{topic} */
    rl = snprintf(req, sizeof(req),
                  "POST %s%s%s HTTP/1.1\r\nHost: %s:%d\r\n"
                  "Content-Type: application/json\r\n"
                  "Content-Length: %d\r\n\r\n%s",
                  opt.mode == MODE_CAST ? opt.api_path : opt.pub_prefix,
                  opt.mode == MODE_CAST ? "/" : "",
                  topic_name(topic, tn, sizeof(tn)), opt.host, opt.port,
                  bl, body);
    conn_send(c, req, (size_t) rl);
    c->state = S_BUSY;
    c->req = REQ_PUBLISH;
    c->req_seq = seq;
    c->req_topic = topic;
    c->req_t = t;
    st.pub_sent++;
    if (conn_flush(c) < 0) {
        /* reported by the read side (EOF / error) */
        c->close_after = 1;
    }
}

static void
ws_publish(uint64_t seq, int topic)
{
    static char  body[MAX_PAYLOAD + 512];
    int       bl;
    uint64_t  t = now_ns();

    bl = event_body(body, sizeof(body), topic, seq, t, 1);
    ws_send(wspub, 0x1, body, (size_t) bl);
    st.pub_sent++;
    /* no per-event reply over the socket: count it as acknowledged unless
     * an error frame comes back */
    st.pub_ok++;
    if (phase == P_MEASURE) {
        st.pub_ok_measured++;
    }
    topic_pubs[topic]++;
    if (seq >= measure_first_seq) {
        expected_meas += (uint64_t) topic_ready[topic];
    } else {
        expected_warm += (uint64_t) topic_ready[topic];
    }
    (void) conn_flush(wspub);
}

/* --slow: the last opt.slow subscribers (not the ws publisher) */
static int
slow_sub(int i)
{
    return i < opt.subs && i >= opt.subs - opt.slow;
}

static void
ws_start(int i)
{
    conn_t   *c;
    uint8_t   raw[16], dig[20];
    char      key[32], cat[96], req[512];
    uint64_t  a = rng(), b = rng();
    int       rl;

    memcpy(raw, &a, 8);
    memcpy(raw + 8, &b, 8);
    base64(raw, 16, key);
    snprintf(cat, sizeof(cat), "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    open_rcvbuf = slow_sub(i) ? opt.slow_rcvbuf : 0;
    c = conn_open(K_WS);
    open_rcvbuf = 0;
    c->slow = slow_sub(i);
    {
        int one = 1;

        setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
    }
    sha1(cat, strlen(cat), dig);
    base64(dig, 20, c->accept);
    c->idx = i;
    c->topic = subs[i].topic;
    subs[i].c = c;
    subs[i].state = SUB_STARTED;
    rl = snprintf(req, sizeof(req),
                  "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
                  subs[i].path, opt.host, opt.port, key);
    conn_send(c, req, (size_t) rl);
    st.ws_started++;
    st.ws_inflight++;
}

static void
ws_became_ready(conn_t *c)
{
    c->ready = 1;
    st.ws_inflight--;
    if (c->slow) {
        /* read on the slow ticks only: no EPOLLIN from now on */
        struct epoll_event ev;

        st.ws_ready++;
        ev.events = c->want_out ? EPOLLOUT : 0;
        ev.data.ptr = c;
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
            die("epoll_ctl: %s", strerror(errno));
        }
    } else if (c->topic >= 0) {
        st.ws_ready++;
        topic_ready[c->topic]++;
    } else {
        wspub = c;
    }
}

static void
ws_failed(conn_t *c, const char *why)
{
    if (!c->ready && c->state != S_CLOSED) {
        st.ws_inflight--;
        st.ws_failed++;
        note_error("websocket %s: %s", subs[c->idx].path, why);
    }
    conn_close(c);
}


/* -------------------------------------------------------- frame handling */

static const char *
json_num(const char *p, size_t n, const char *key, uint64_t *v)
{
    const char *q = memmem(p, n, key, strlen(key)), *e = p + n;

    if (q == NULL) {
        return NULL;
    }
    q += strlen(key);
    while (q < e && (*q == ' ' || *q == ':' || *q == '\t')) {
        q++;
    }
    if (q >= e || !isdigit((unsigned char) *q)) {
        return NULL;
    }
    *v = 0;
    while (q < e && isdigit((unsigned char) *q)) {
        *v = *v * 10 + (uint64_t) (*q - '0');
        q++;
    }
    return q;
}

static void
on_text(conn_t *c, const char *p, size_t n, uint64_t trecv)
{
    uint64_t t, seq, d;

    if (!c->ready) {
        /* cast: connection.established, then the confirmation */
        c->hello++;
        if (c->hello >= 2) {
            ws_became_ready(c);
        }
        return;
    }
    if (json_num(p, n, "\"seq\"", &seq) == NULL
        || json_num(p, n, "\"t\"", &t) == NULL)
    {
        if (c == wspub && memmem(p, n, "\"error\"", 7)) {
            st.pub_err_frames++;
            note_error("error frame on the publisher socket: %.*s",
                       (int) (n > 160 ? 160 : n), p);
        } else {
            st.rx_other++;
        }
        return;
    }
    if (c->topic < 0) {
        st.rx_other++;           /* the publisher socket is on bench-pub */
        return;
    }
    if (t < t_start) {
        st.rx_stale++;           /* an event of an earlier run (replayed) */
        return;
    }
    if (c->slow) {
        c->rx++;
        st.slow_rx++;
        if (c->have_seq && seq <= c->last_seq) {
            st.slow_reorder++;
        } else if (c->have_seq && seq > c->last_seq + 1) {
            st.slow_gaps += seq - c->last_seq - 1;
        }
        if (!c->have_seq || seq > c->last_seq) {
            c->last_seq = seq;
        }
        c->have_seq = 1;
        return;
    }
    c->rx++;
    st.rx_total++;
    if (c->have_seq && seq <= c->last_seq) {
        st.rx_dup_or_reorder++;
    }
    c->have_seq = 1;
    if (seq > c->last_seq) {
        c->last_seq = seq;
    }
    if (seq >= measure_first_seq && seq < measure_end_seq) {
        st.rx_measured++;
        d = trecv > t ? trecv - t : 0;
        if (d > lat_max_ns) {
            lat_max_ns = d;
            lat_max_at = trecv;
        }
        push_u32(&lat, &nlat, &caplat,
                 (uint32_t) (d / 1000 > UINT32_MAX ? UINT32_MAX : d / 1000));
        if (rx_ktime) {
            d = rx_ktime > t ? rx_ktime - t : 0;
            if (d > klat_max_ns) {
                klat_max_ns = d;
            }
            push_u32(&klat, &nklat, &capklat,
                     (uint32_t) (d / 1000 > UINT32_MAX ? UINT32_MAX
                                                       : d / 1000));
        }
    } else {
        st.rx_warmup++;
    }
}

/* parse server frames in c->rb; returns -1 when the connection is done */
static int
ws_frames(conn_t *c, uint64_t trecv)
{
    const uint8_t  *p;
    size_t          avail, hl, off = 0;
    uint64_t        len;
    int             fin, op, masked, i, code;
    uint8_t         mk[4];
    char           *pl;

    for (;;) {
        p = (const uint8_t *) c->rb.p + off;
        avail = c->rb.len - off;
        if (avail < 2) {
            break;
        }
        fin = p[0] & 0x80;
        op = p[0] & 0x0f;
        masked = p[1] & 0x80;
        len = p[1] & 0x7f;
        hl = 2;
        if (len == 126) {
            if (avail < 4) {
                break;
            }
            len = (uint64_t) p[2] << 8 | p[3];
            hl = 4;
        } else if (len == 127) {
            if (avail < 10) {
                break;
            }
            len = 0;
            for (i = 0; i < 8; i++) {
                len = len << 8 | p[2 + i];
            }
            hl = 10;
        }
        if (masked) {
            if (avail < hl + 4) {
                break;
            }
            memcpy(mk, p + hl, 4);
            hl += 4;
        }
        if (len > (64u << 20)) {
            note_error("websocket frame of %" PRIu64 " bytes", len);
            return -1;
        }
        if (avail < hl + len) {
            break;
        }
        pl = (char *) c->rb.p + off + hl;
        if (masked) {
            for (i = 0; (uint64_t) i < len; i++) {
                pl[i] ^= (char) mk[i & 3];
            }
        }
        off += hl + (size_t) len;

        switch (op) {
        case 0x0:                               /* continuation */
        case 0x1:
        case 0x2:
            if (op != 0 && c->msg.len == 0 && fin) {
                if (op == 0x1) {
                    on_text(c, pl, (size_t) len, trecv);
                }
                break;
            }
            buf_append(&c->msg, pl, (size_t) len);
            if (fin) {
                on_text(c, c->msg.p, c->msg.len, trecv);
                c->msg.len = 0;
            }
            break;
        case 0x8:                               /* close */
            code = len >= 2 ? ((uint8_t) pl[0] << 8 | (uint8_t) pl[1]) : 1005;
            st.closes_rx++;
            st.last_close_code = code;
            if (c->slow && phase < P_CLOSE) {
                st.slow_closed++;
            }
            if (phase < P_CLOSE) {
                note_error("hub closed a socket: %d %.*s", code,
                           (int) (len > 2 ? len - 2 : 0), pl + 2);
            }
            if (c->state != S_CLOSING) {
                ws_send(c, 0x8, pl, len >= 2 ? 2 : 0);
                (void) conn_flush(c);
            }
            return -1;
        case 0x9:                               /* ping */
            st.pings++;
            if (phase == P_MEASURE) {
                st.pings_measured++;
            }
            if (first_ping_at == 0) {
                first_ping_at = trecv;
            }
            ws_send(c, 0xA, pl, (size_t) len);
            if (conn_flush(c) < 0) {
                return -1;
            }
            break;
        case 0xA:
            break;
        default:
            note_error("unknown opcode %d from the server", op);
            return -1;
        }
    }
    buf_consume(&c->rb, off);
    return 0;
}


/* -------------------------------------------------------- event handlers */

static void publish_due(uint64_t now);

static void
api_next(conn_t *c)
{
    if (c->close_after) {
        /* the server ended keep-alive: reconnect this slot */
        int slot = c->idx;

        conn_close(c);
        free(c);
        api[slot] = conn_open(K_API);
        api[slot]->idx = slot;
        return;
    }
    c->state = S_IDLE;
    if (phase == P_SETUP && st.next_api < nsubs_total) {
        api_subscribe(c, st.next_api++);
        (void) conn_flush(c);
    }
}

static void
on_api_response(conn_t *c, http_resp_t *r)
{
    const char  *q, *e;
    int          i = c->req_sub;
    size_t       k;

    c->req = REQ_NONE;
    if (r->close) {
        c->close_after = 1;
    }
    if (r->status != 202) {
        subs[i].state = SUB_FAILED;
        st.sub_api_err++;
        note_error("subscribe: HTTP %d %.*s", r->status,
                   (int) (r->blen > 160 ? 160 : r->blen), r->body);
        return;
    }
    q = r->body ? memmem(r->body, r->blen, "/bind/", 6) : NULL;
    e = q ? memchr(q, '"', r->blen - (size_t) (q - r->body)) : NULL;
    if (q == NULL || e == NULL) {
        /* any ws:// URL path: take what follows host:port */
        q = r->body ? memmem(r->body, r->blen, "ws://", 5) : NULL;
        if (q) {
            q = memchr(q + 5, '/', r->blen - (size_t) (q + 5 - r->body));
        }
        e = q ? memchr(q, '"', r->blen - (size_t) (q - r->body)) : NULL;
    }
    if (q == NULL || e == NULL) {
        subs[i].state = SUB_FAILED;
        st.sub_api_err++;
        note_error("subscribe: no endpoint in %.*s",
                   (int) (r->blen > 160 ? 160 : r->blen), r->body);
        return;
    }
    k = (size_t) (e - q);
    if (k >= sizeof(subs[i].path)) {
        k = sizeof(subs[i].path) - 1;
    }
    memcpy(subs[i].path, q, k);
    subs[i].path[k] = '\0';
    subs[i].state = SUB_ENDPOINT;
    st.sub_api_ok++;
    st.endpoints++;
}

static void
on_pub_response(conn_t *c, http_resp_t *r, uint64_t now)
{
    if (r->close) {
        c->close_after = 1;
    }
    c->req = REQ_NONE;
    push_u32(&rtt, &nrtt, &caprtt,
             (uint32_t) ((now - c->req_t) / 1000 > UINT32_MAX
                         ? UINT32_MAX : (now - c->req_t) / 1000));
    if (r->status / 100 == 2) {
        st.pub_ok++;
        if (c->req_seq + 1 > st.max_acked_seq) {
            st.max_acked_seq = c->req_seq + 1;
        }
        if (phase == P_MEASURE) {
            st.pub_ok_measured++;
        }
        topic_pubs[c->req_topic]++;
        if (c->req_seq >= measure_first_seq) {
            expected_meas += (uint64_t) topic_ready[c->req_topic];
        } else {
            expected_warm += (uint64_t) topic_ready[c->req_topic];
        }
    } else {
        st.pub_err++;
        note_error("publish: HTTP %d %.*s", r->status,
                   (int) (r->blen > 160 ? 160 : r->blen), r->body);
    }
}

static void
pub_conn_next(conn_t *c, uint64_t now)
{
    int slot = c->idx;

    if (c->close_after || c->state == S_CLOSED) {
        conn_close(c);
        free(c);
        pubs[slot] = conn_open(K_PUB);
        pubs[slot]->idx = slot;
        return;
    }
    c->state = S_IDLE;
    if (opt.max_rate && (phase == P_WARMUP || phase == P_MEASURE)) {
        if (phase == P_MEASURE && measure_first_seq == UINT64_MAX) {
            measure_first_seq = pub_next;
        }
        http_publish(c, pub_next, (int) (pub_next % (uint64_t) opt.topics));
        pub_next++;
    } else {
        publish_due(now);
    }
}

static void
on_readable(conn_t *c)
{
    char             tmp[65536];
    ssize_t          n;
    uint64_t         t;
    http_resp_t      r;
    int              rc, eof = 0;
    struct iovec     iov;
    struct msghdr    mh;
    struct cmsghdr  *cm;
    struct timespec  kts;
    union {
        char            buf[CMSG_SPACE(sizeof(struct timespec)) * 2];
        struct cmsghdr  align;
    } cbuf;

    rx_ktime = 0;
    for (;;) {
        if (c->kind == K_WS) {
            iov.iov_base = tmp;
            iov.iov_len = sizeof(tmp);
            memset(&mh, 0, sizeof(mh));
            mh.msg_iov = &iov;
            mh.msg_iovlen = 1;
            mh.msg_control = cbuf.buf;
            mh.msg_controllen = sizeof(cbuf.buf);
            n = recvmsg(c->fd, &mh, 0);
            if (n > 0) {
                for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
                    if (cm->cmsg_level == SOL_SOCKET
                        && cm->cmsg_type == SCM_TIMESTAMPNS)
                    {
                        memcpy(&kts, CMSG_DATA(cm), sizeof(kts));
                        rx_ktime = (uint64_t) ((int64_t) kts.tv_sec
                                               * (int64_t) NS + kts.tv_nsec
                                               - real_minus_mono);
                    }
                }
            }
        } else {
            n = read(c->fd, tmp, sizeof(tmp));
        }
        if (n > 0) {
            buf_append(&c->rb, tmp, (size_t) n);
            if ((size_t) n < sizeof(tmp)) {
                break;
            }
            continue;
        }
        if (n == 0) {
            eof = 1;
            break;
        }
        if (errno == EAGAIN || errno == EINTR) {
            break;
        }
        eof = 1;
        break;
    }
    t = now_ns();

    if (c->kind == K_WS) {
        if (c->state == S_HANDSHAKE || c->state == S_CONNECTING) {
            rc = http_parse(c->rb.p, c->rb.len, &r, 1);
            if (rc == 0 && !eof) {
                return;
            }
            if (rc <= 0) {
                ws_failed(c, "bad handshake response");
                return;
            }
            if (r.status != 101) {
                char why[64];

                snprintf(why, sizeof(why), "handshake HTTP %d", r.status);
                ws_failed(c, why);
                return;
            }
            if (strcmp(r.accept, c->accept) != 0) {
                ws_failed(c, "wrong Sec-WebSocket-Accept");
                return;
            }
            buf_consume(&c->rb, r.hlen);
            c->state = S_OPEN;
            if (opt.mode == MODE_NCHAN) {
                ws_became_ready(c);
            }
        }
        if (ws_frames(c, t) < 0) {
            eof = 1;
        }
        if (eof) {
            if (c->state == S_OPEN && phase < P_CLOSE) {
                if (c->ready) {
                    st.ws_closed_unexpected++;
                    if (c->topic >= 0 && !c->slow) {
                        topic_ready[c->topic]--;
                    }
                    note_error("subscriber %d (%s) closed by the hub",
                               c->idx, subs[c->idx].path);
                } else {
                    ws_failed(c, "closed before ready");
                    return;
                }
            }
            conn_close(c);
        }
        return;
    }

    /* HTTP keep-alive connections: one request in flight at most */
    while (c->rb.len > 0) {
        rc = http_parse(c->rb.p, c->rb.len, &r, 0);
        if (rc == 0) {
            break;
        }
        if (rc < 0) {
            note_error("malformed HTTP response");
            eof = 1;
            break;
        }
        if (c->req == REQ_SUBSCRIBE) {
            on_api_response(c, &r);
        } else if (c->req == REQ_PUBLISH) {
            on_pub_response(c, &r, t);
        }
        buf_consume(&c->rb, r.total);
        if (c->kind == K_API) {
            api_next(c);
        } else {
            pub_conn_next(c, t);
        }
        return;   /* c may have been replaced */
    }
    if (eof) {
        if (c->req == REQ_PUBLISH) {
            st.pub_lost++;
            note_error("publish connection closed with a request in flight");
        } else if (c->req == REQ_SUBSCRIBE) {
            subs[c->req_sub].state = SUB_FAILED;
            st.sub_api_err++;
            note_error("subscribe connection closed with a request in "
                       "flight");
        }
        c->req = REQ_NONE;
        c->close_after = 1;
        if (phase >= P_CLOSE) {
            conn_close(c);
            return;
        }
        if (c->kind == K_API) {
            api_next(c);
        } else {
            pub_conn_next(c, t);
        }
    }
}

static void
on_event(conn_t *c, uint32_t events)
{
    int        err = 0;
    socklen_t  el = sizeof(err);

    if (c->state == S_CLOSED) {
        return;
    }
    if (c->state == S_CONNECTING && (events & (EPOLLOUT | EPOLLERR))) {
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            if (c->kind == K_WS) {
                ws_failed(c, strerror(err));
                return;
            }
            die("connect %s:%d: %s", opt.host, opt.port, strerror(err));
        }
        c->state = c->kind == K_WS ? S_HANDSHAKE : S_IDLE;
        if (c->kind == K_API) {
            api_next(c);
        } else if (c->kind == K_PUB) {
            pub_conn_next(c, now_ns());
            return;
        }
    }
    if (events & EPOLLOUT) {
        if (conn_flush(c) < 0) {
            events |= EPOLLIN;      /* the read reports EOF/error */
        }
    }
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        on_readable(c);
    }
}


/* ---------------------------------------------------------- publishing */

static conn_t *
idle_pub(void)
{
    int i;

    for (i = 0; i < opt.conns; i++) {
        if (pubs[i]->state == S_IDLE) {
            return pubs[i];
        }
    }
    return NULL;
}

/* fixed-rate mode: send every publish whose time has come */
static void
publish_due(uint64_t now)
{
    conn_t    *c;
    uint64_t   due;

    if (opt.max_rate || (phase != P_WARMUP && phase != P_MEASURE)) {
        return;
    }
    for (;;) {
        due = t_pub0 + (uint64_t) ((double) pub_next * 1e9 / opt.rate);
        if (due > now) {
            return;
        }
        if (phase == P_MEASURE && measure_first_seq == UINT64_MAX) {
            measure_first_seq = pub_next;
        }
        if (opt.ws_publish) {
            if (wspub == NULL || wspub->state != S_OPEN) {
                note_error("no publisher socket");
                st.pub_lost++;
                pub_next++;
                continue;
            }
            ws_publish(pub_next, (int) (pub_next % (uint64_t) opt.topics));
        } else {
            c = idle_pub();
            if (c == NULL) {
                return;                /* sent when a connection frees */
            }
            http_publish(c, pub_next, (int) (pub_next % (uint64_t) opt.topics));
        }
        if (now - due > 5000000) {
            st.pub_late++;             /* sent > 5 ms after its slot */
        }
        pub_next++;
        now = now_ns();
    }
}


/* ---------------------------------------------------------- reporting */

static int
cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

    return x < y ? -1 : x > y;
}

static double
pct_ms(uint32_t *a, size_t n, double p)
{
    size_t i;

    if (n == 0) {
        return -1;
    }
    i = (size_t) (p / 100.0 * (double) (n - 1) + 0.5);
    return a[i] / 1000.0;
}

/* --slow: a slow socket reads (EPOLLIN) only while it is awake */
static void
slow_ep(conn_t *c)
{
    struct epoll_event ev;

    ev.events = (c->awake ? EPOLLIN : 0) | (c->want_out ? EPOLLOUT : 0);
    ev.data.ptr = c;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        die("epoll_ctl: %s", strerror(errno));
    }
}

/* how many acknowledged events a slow socket has not got */
static uint64_t
slow_lack(conn_t *c)
{
    uint64_t  have = c->have_seq ? c->last_seq + 1 : 0;

    return st.max_acked_seq > have ? st.max_acked_seq - have : 0;
}

/*
 * --slow-hz times a second every slow socket wakes for --slow-window ms:
 * it reads what the kernel held and what the hub sends meanwhile (the
 * event loop goes on for the others); then castbench notes how many
 * acknowledged events it still lacks ("behind") and how many it got.
 */
static void
slow_tick(uint64_t now)
{
    int       i;
    conn_t   *c;
    uint64_t  most = 0;

    if (opt.slow == 0) {
        return;
    }
    if (!slow_awake && now >= slow_next) {
        slow_awake = 1;
        slow_wake_end = now + (uint64_t) (opt.slow_window * 1e6);
        for (i = 0; i < opt.subs; i++) {
            c = subs[i].c;
            if (slow_sub(i) && c && c->state == S_OPEN && c->ready) {
                c->awake = 1;
                c->rx0 = c->rx;
                slow_ep(c);
            }
        }
        return;
    }
    if (!slow_awake || now < slow_wake_end) {
        return;
    }
    slow_awake = 0;
    for (i = 0; i < opt.subs; i++) {
        c = subs[i].c;
        if (!slow_sub(i) || c == NULL || !c->awake) {
            continue;
        }
        c->awake = 0;
        if (c->state != S_OPEN) {
            continue;
        }
        slow_ep(c);
        push_u32(&per_read, &nper_read, &capper_read,
                 (uint32_t) (c->rx - c->rx0));
        if (slow_lack(c) > most) {
            most = slow_lack(c);
        }
    }
    st.slow_ticks++;
    push_u32(&behind, &nbehind, &capbehind, (uint32_t) most);
    slow_next += (uint64_t) (1e9 / opt.slow_hz);
    if (slow_next < now) {
        slow_next = now;
    }
}

/*
 * --slow, at the end (nothing published any more): the slow sockets read
 * until each has the last event, 2 s at most; returns the most one lacks
 */
static uint64_t
slow_final(void)
{
    int            i;
    conn_t        *c;
    uint64_t       most, end = now_ns() + 2 * NS;
    struct pollfd  pfd;

    for ( ;; ) {
        most = 0;
        for (i = 0; i < opt.subs; i++) {
            c = subs[i].c;
            if (!slow_sub(i) || c == NULL || c->state != S_OPEN
                || !c->ready)
            {
                continue;
            }
            pfd.fd = c->fd;
            pfd.events = POLLIN;
            pfd.revents = 0;
            if (poll(&pfd, 1, 10) > 0) {
                on_readable(c);
            }
            if (c->state == S_OPEN && slow_lack(c) > most) {
                most = slow_lack(c);
            }
        }
        if (most == 0 || now_ns() > end) {
            return most;
        }
    }
}


/* the worker's private memory while publishing, once a second */
static void
mem_tick(uint64_t now, int force)
{
    mem_t  m;

    if (opt.npids == 0 || (!force && now < mem_next)) {
        return;
    }
    mem_next = now + NS;
    if (proc_mem(&m) != 0) {
        return;
    }
    if (mem_meas0 < 0) {
        mem_meas0 = m.priv_kb;
    }
    mem_meas1 = m.priv_kb;
    if (m.priv_kb > mem_meas_max) {
        mem_meas_max = m.priv_kb;
    }
}

static void
usage(void)
{
    fprintf(stderr,
"usage: castbench [options]\n"
"  --mode cast|nchan     hub API (cast) or nchan /pub + /sub      [cast]\n"
"  --host A --port P     IPv4 address and port          [127.0.0.1 8080]\n"
"  --subs N              WebSocket subscribers                       [100]\n"
"  --topics T            topics bench-0..bench-<T-1>                   [1]\n"
"  --rate R              events/s (fixed rate, round robin over topics) [50]\n"
"  --duration D          measured publishing seconds (0: no publishing) [10]\n"
"  --warmup S            publishing seconds before measuring            [2]\n"
"  --ws-publish          cast: publish as text frames on a WebSocket\n"
"  --max-rate            publish back to back over --conns connections\n"
"  --conns K             publisher keep-alive connections  [4; max-rate 16]\n"
"  --api-conns K         subscribe API connections (cast)             [8]\n"
"  --inflight K          WebSocket handshakes in flight              [256]\n"
"  --settle S            idle seconds after connecting, before memory  [1]\n"
"  --hold S              extra idle seconds (after the memory sample)  [0]\n"
"  --drain S             max seconds to wait for late deliveries       [5]\n"
"  --setup-timeout S     max seconds to connect all subscribers       [60]\n"
"  --pid P[,P..]         hub worker pids: CPU and memory from /proc\n"
"  --label NAME          copied into the JSON line\n"
"  --latest              cast: subscriber.latest_value=bench-event\n"
"  --slow N              the last N subscribers read --slow-hz times/s  [0]\n"
"  --slow-hz H           reads per second of a slow subscriber          [5]\n"
"  --slow-window MS      how long a slow subscriber reads each time   [10]\n"
"  --slow-rcvbuf B       SO_RCVBUF of a slow subscriber              [4096]\n"
"  --payload B           pad bytes in every event (<= 65536)            [0]\n"
"  --api-path /api/hub  --pub-prefix /pub/  --sub-prefix /sub/\n");
    exit(2);
}

static double
argd(int *i, int argc, char **argv)
{
    char *e;
    double v;

    if (*i + 1 >= argc) {
        usage();
    }
    v = strtod(argv[++*i], &e);
    if (*e) {
        die("%s: not a number: %s", argv[*i - 1], argv[*i]);
    }
    return v;
}

static void
on_signal(int sig)
{
    (void) sig;
    interrupted = 1;
}

int
main(int argc, char **argv)
{
    struct epoll_event  evs[512];
    struct rlimit       rl;
    struct rusage       ru;
    uint64_t            now, s;
    double              cpu0 = -1, cpu1 = -1, sch0 = -1, sch1 = -1;
    double              cpu_s0 = -1, cpu_s1 = -1;
    double              meas_s, gen_cpu, lat50, lat99, latmax, lat999;
    double              klat50, klat99, klatmax;
    double              rtt50, rtt99, mem_per_priv = -1, mem_per_pss = -1;
    double              cpu_us_per_delivery = -1, cpu_us_per_publish = -1;
    double              sch_us_per_delivery = -1, cpu_ms = -1, sch_ms = -1;
    mem_t               m0, m1;
    int                 have_mem = 0, i, n, timeout, anomaly = 0;
    uint64_t            expected, received, missing = 0, extra = 0;
    int                 subs_short = 0;
    long                fd_limit;
    char               *tok, *save;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (!strcmp(a, "--host") && i + 1 < argc) {
            opt.host = argv[++i];
        } else if (!strcmp(a, "--port")) {
            opt.port = (int) argd(&i, argc, argv);
        } else if (!strcmp(a, "--subs")) {
            opt.subs = (int) argd(&i, argc, argv);
        } else if (!strcmp(a, "--topics")) {
            opt.topics = (int) argd(&i, argc, argv);
        } else if (!strcmp(a, "--rate")) {
            opt.rate = argd(&i, argc, argv);
        } else if (!strcmp(a, "--duration")) {
            opt.duration = argd(&i, argc, argv);
        } else if (!strcmp(a, "--warmup")) {
            opt.warmup = argd(&i, argc, argv);
        } else if (!strcmp(a, "--mode") && i + 1 < argc) {
            i++;
            if (!strcmp(argv[i], "cast")) {
                opt.mode = MODE_CAST;
            } else if (!strcmp(argv[i], "nchan")) {
                opt.mode = MODE_NCHAN;
            } else {
                usage();
            }
        } else if (!strcmp(a, "--latest")) {
            opt.latest = 1;
        } else if (!strcmp(a, "--slow")) {
            opt.slow = (int) argd(&i, argc, argv);
        } else if (!strcmp(a, "--slow-hz")) {
            opt.slow_hz = argd(&i, argc, argv);
        } else if (!strcmp(a, "--slow-window")) {
            opt.slow_window = argd(&i, argc, argv);
        } else if (!strcmp(a, "--slow-rcvbuf")) {
            opt.slow_rcvbuf = (int) argd(&i, argc, argv);
        } else if (!strcmp(a, "--payload")) {
            opt.payload = (int) argd(&i, argc, argv);
        } else if (!strcmp(a, "--ws-publish")) {
            opt.ws_publish = 1;
        } else if (!strcmp(a, "--max-rate")) {
            opt.max_rate = 1;
        } else if (!strcmp(a, "--conns")) {
            opt.conns = (int) argd(&i, argc, argv);
        } else if (!strcmp(a, "--api-conns")) {
            opt.api_conns = (int) argd(&i, argc, argv);
        } else if (!strcmp(a, "--inflight")) {
            opt.inflight = (int) argd(&i, argc, argv);
        } else if (!strcmp(a, "--settle")) {
            opt.settle = argd(&i, argc, argv);
        } else if (!strcmp(a, "--hold")) {
            opt.hold = argd(&i, argc, argv);
        } else if (!strcmp(a, "--drain")) {
            opt.drain = argd(&i, argc, argv);
        } else if (!strcmp(a, "--setup-timeout")) {
            opt.setup_timeout = argd(&i, argc, argv);
        } else if (!strcmp(a, "--api-path") && i + 1 < argc) {
            opt.api_path = argv[++i];
        } else if (!strcmp(a, "--pub-prefix") && i + 1 < argc) {
            opt.pub_prefix = argv[++i];
        } else if (!strcmp(a, "--sub-prefix") && i + 1 < argc) {
            opt.sub_prefix = argv[++i];
        } else if (!strcmp(a, "--label") && i + 1 < argc) {
            opt.label = argv[++i];
        } else if (!strcmp(a, "--pid") && i + 1 < argc) {
            for (tok = strtok_r(argv[++i], ",", &save); tok;
                 tok = strtok_r(NULL, ",", &save))
            {
                if (opt.npids == 16) {
                    die("at most 16 pids");
                }
                opt.pids[opt.npids++] = (pid_t) atoi(tok);
            }
        } else {
            usage();
        }
    }
    if (opt.topics < 1 || opt.subs < 0 || opt.port <= 0
        || (!opt.max_rate && opt.duration > 0 && opt.rate <= 0)
        || opt.inflight < 1 || opt.api_conns < 1)
    {
        usage();
    }
    if (opt.slow < 0 || opt.slow > opt.subs || opt.slow_hz <= 0
        || opt.payload < 0 || opt.payload > MAX_PAYLOAD)
    {
        usage();
    }
    if (opt.ws_publish && (opt.mode != MODE_CAST || opt.max_rate)) {
        die("--ws-publish is for --mode cast at a fixed rate");
    }
    if (opt.max_rate) {
        opt.subs = 0;
    }
    if (opt.conns <= 0) {
        opt.conns = opt.max_rate ? 16 : 4;
    }
    if (!opt.max_rate && (opt.ws_publish || opt.duration <= 0)) {
        opt.conns = 0;
    }

    /* file descriptors: raise the soft limit to the hard one */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    fd_limit = (long) rl.rlim_cur;
    if ((long) opt.subs + opt.conns + opt.api_conns + 64 > fd_limit) {
        die("%d subscribers need more descriptors than RLIMIT_NOFILE %ld",
            opt.subs, fd_limit);
    }

    {
        struct timespec  a, b, m;

        /* the offset between the clocks, read between two realtime reads */
        clock_gettime(CLOCK_REALTIME, &a);
        clock_gettime(CLOCK_MONOTONIC, &m);
        clock_gettime(CLOCK_REALTIME, &b);
        real_minus_mono = ((int64_t) a.tv_sec * (int64_t) NS + a.tv_nsec
                           + (int64_t) b.tv_sec * (int64_t) NS + b.tv_nsec) / 2
                          - ((int64_t) m.tv_sec * (int64_t) NS + m.tv_nsec);
    }
    t_start = now_ns();
    if (getrandom(&rng_state, sizeof(rng_state), 0) != sizeof(rng_state)
        || rng_state == 0)
    {
        rng_state = now_ns() | 1;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        die("epoll_create1: %s", strerror(errno));
    }

    nsubs_total = opt.subs + (opt.ws_publish ? 1 : 0);
    subs = calloc((size_t) nsubs_total + 1, sizeof(sub_t));
    topic_pubs = calloc((size_t) opt.topics, sizeof(uint64_t));
    topic_ready = calloc((size_t) opt.topics, sizeof(int));
    if (subs == NULL || topic_pubs == NULL || topic_ready == NULL) {
        die("out of memory");
    }
    for (i = 0; i < opt.subs; i++) {
        subs[i].topic = i % opt.topics;
    }
    if (opt.ws_publish) {
        subs[opt.subs].topic = -1;     /* bench-pub */
    }

    if (opt.npids > 0) {
        have_mem = proc_mem(&m0) == 0;
        if (!have_mem) {
            fprintf(stderr, "castbench: cannot read /proc/%d/smaps_rollup\n",
                    (int) opt.pids[0]);
        }
        cpu_s0 = proc_sched_ms();
    }

    /* start */
    phase = P_SETUP;
    phase_t0 = now_ns();
    if (opt.mode == MODE_CAST) {
        api = calloc((size_t) opt.api_conns, sizeof(conn_t *));
        for (i = 0; i < opt.api_conns && i < nsubs_total; i++) {
            api[i] = conn_open(K_API);
            api[i]->idx = i;
        }
        if (nsubs_total == 0) {
            opt.api_conns = 0;
        } else if (opt.api_conns > nsubs_total) {
            opt.api_conns = nsubs_total;
        }
    } else {
        for (i = 0; i < nsubs_total; i++) {
            snprintf(subs[i].path, sizeof(subs[i].path), "%s%s%d",
                     opt.sub_prefix, opt.topic_prefix, subs[i].topic);
            subs[i].state = SUB_ENDPOINT;
        }
        st.endpoints = nsubs_total;
        opt.api_conns = 0;
    }
    pubs = calloc((size_t) opt.conns + 1, sizeof(conn_t *));
    for (i = 0; i < opt.conns; i++) {
        pubs[i] = conn_open(K_PUB);
        pubs[i]->idx = i;
    }

    for (;;) {
        now = now_ns();

        /* timeouts */
        timeout = 100;
        if ((phase == P_WARMUP || phase == P_MEASURE) && !opt.max_rate) {
            s = t_pub0 + (uint64_t) ((double) pub_next * 1e9 / opt.rate);
            timeout = s > now ? (int) ((s - now + 999999) / 1000000) : 0;
            if (timeout > 100) {
                timeout = 100;
            }
        }
        if (opt.slow && phase >= P_WARMUP && phase <= P_DRAIN) {
            s = slow_awake ? slow_wake_end : slow_next;
            s = s > now ? (s - now + 999999) / 1000000 : 0;
            if ((int) s < timeout) {
                timeout = (int) s;
            }
        }
        n = epoll_wait(ep, evs, 512, timeout);
        if (n < 0 && errno != EINTR) {
            die("epoll_wait: %s", strerror(errno));
        }
        for (i = 0; i < n; i++) {
            on_event(evs[i].data.ptr, evs[i].events);
        }
        now = now_ns();
        if (phase >= P_WARMUP && phase <= P_DRAIN) {
            slow_tick(now);
        }
        if (phase == P_MEASURE) {
            mem_tick(now, 0);
        }

        if (interrupted && phase < P_CLOSE) {
            fprintf(stderr, "castbench: interrupted\n");
            anomaly = 1;
            phase = P_CLOSE;
            phase_t0 = now;
            for (i = 0; i < nsubs_total; i++) {
                if (subs[i].c && subs[i].c->state == S_OPEN) {
                    subs[i].c->state = S_CLOSING;
                    ws_send(subs[i].c, 0x8, "\x03\xe8", 2);
                    (void) conn_flush(subs[i].c);
                }
            }
        }

        switch (phase) {
        case P_SETUP:
            /* in subscriber order; those whose API call failed are
             * skipped */
            while (st.next_ws < nsubs_total
                   && subs[st.next_ws].state != SUB_PENDING)
            {
                if (subs[st.next_ws].state == SUB_FAILED) {
                    st.next_ws++;
                    continue;
                }
                if (st.ws_inflight >= opt.inflight) {
                    break;
                }
                ws_start(st.next_ws++);
            }
            {
                int api_done = opt.mode != MODE_CAST
                    || st.sub_api_ok + st.sub_api_err >= nsubs_total;
                int ws_done = api_done && st.ws_inflight == 0
                    && st.next_ws >= nsubs_total;
                int pubs_up = 1;

                for (i = 0; i < opt.conns; i++) {
                    if (pubs[i]->state == S_CONNECTING) {
                        pubs_up = 0;
                    }
                }
                if ((ws_done && pubs_up)
                    || now - phase_t0 > (uint64_t) (opt.setup_timeout * 1e9))
                {
                    if (!ws_done) {
                        fprintf(stderr, "castbench: SETUP TIMEOUT: %d of %d "
                                "subscribers ready after %.0f s\n",
                                st.ws_ready, opt.subs, opt.setup_timeout);
                        anomaly = 1;
                    }
                    if (opt.npids > 0) {
                        cpu_s1 = proc_sched_ms();
                    }
                    /* the subscribe connections are not needed any more
                     * (and would count in the memory per subscriber) */
                    for (i = 0; i < opt.api_conns; i++) {
                        if (api[i]->req == REQ_NONE) {
                            conn_close(api[i]);
                        }
                    }
                    fprintf(stderr, "castbench: %d/%d subscribers ready in "
                            "%.2f s\n", st.ws_ready, opt.subs,
                            (double) (now - phase_t0) / 1e9);
                    phase = P_SETTLE;
                    phase_t0 = now;
                }
            }
            break;

        case P_SETTLE:
            if (now - phase_t0 >= (uint64_t) (opt.settle * 1e9)) {
                if (have_mem && proc_mem(&m1) == 0 && st.ws_ready > 0) {
                    mem_per_priv = (double) (m1.priv_kb - m0.priv_kb) * 1024.0
                                   / st.ws_ready;
                    mem_per_pss = (double) (m1.pss_kb - m0.pss_kb) * 1024.0
                                  / st.ws_ready;
                }
                phase = P_HOLD;
                phase_t0 = now;
            }
            break;

        case P_HOLD:
            if (now - phase_t0 >= (uint64_t) (opt.hold * 1e9)) {
                if (opt.duration <= 0) {
                    phase = P_DRAIN;
                } else {
                    phase = opt.warmup > 0 ? P_WARMUP : P_MEASURE;
                    if (phase == P_MEASURE) {
                        cpu0 = proc_cpu_ms();
                        sch0 = proc_sched_ms();
                        t_meas0 = now;
                    }
                    t_pub0 = now;
                    slow_next = now + (uint64_t) (1e9 / opt.slow_hz);
                    if (opt.max_rate) {
                        for (i = 0; i < opt.conns; i++) {
                            if (pubs[i]->state == S_IDLE) {
                                pub_conn_next(pubs[i], now);
                            }
                        }
                    }
                }
                phase_t0 = now;
            }
            publish_due(now);
            break;

        case P_WARMUP:
            if (now - phase_t0 >= (uint64_t) (opt.warmup * 1e9)) {
                phase = P_MEASURE;
                phase_t0 = now;
                t_meas0 = now;
                mem_tick(now, 1);
                if (opt.npids > 0) {
                    cpu0 = proc_cpu_ms();
                    sch0 = proc_sched_ms();
                }
            }
            publish_due(now);
            break;

        case P_MEASURE:
            publish_due(now);
            if (now - phase_t0 >= (uint64_t) (opt.duration * 1e9)) {
                t_meas1 = now;
                measure_end_seq = pub_next;
                if (measure_first_seq == UINT64_MAX) {
                    measure_first_seq = pub_next;
                }
                phase = P_DRAIN;
                phase_t0 = now;
            }
            break;

        case P_DRAIN: {
            int busy = 0;

            for (i = 0; i < opt.conns; i++) {
                if (pubs[i]->req != REQ_NONE) {
                    busy = 1;
                }
            }
            if (wspub && wspub->woff < wspub->wb.len) {
                busy = 1;
            }
            expected = expected_warm + expected_meas;
            if ((!busy && st.rx_total >= expected)
                || now - phase_t0 >= (uint64_t) (opt.drain * 1e9))
            {
                if (opt.npids > 0 && opt.duration > 0) {
                    cpu1 = proc_cpu_ms();
                    sch1 = proc_sched_ms();
                }
                if (opt.slow) {
                    /* the slow ones read until they have the last event
                     * (2 s at most) */
                    mem_tick(now, 1);
                    slow_final_behind = slow_final();
                    now = now_ns();
                }
                phase = P_CLOSE;
                phase_t0 = now;
                for (i = 0; i < nsubs_total; i++) {
                    conn_t *c = subs[i].c;

                    if (c && c->state == S_OPEN) {
                        c->state = S_CLOSING;
                        ws_send(c, 0x8, "\x03\xe8", 2);
                        (void) conn_flush(c);
                    }
                }
            }
            break;
        }

        case P_CLOSE: {
            int open = 0;

            for (i = 0; i < nsubs_total; i++) {
                if (subs[i].c && subs[i].c->state != S_CLOSED) {
                    open++;
                }
            }
            if (open == 0 || now - phase_t0 >= 3 * NS) {
                phase = P_DONE;
            }
            break;
        }
        }
        if (phase == P_DONE) {
            break;
        }
    }

    for (i = 0; i < nsubs_total; i++) {
        if (subs[i].c && subs[i].c->state != S_CLOSED) {
            conn_close(subs[i].c);
        }
    }
    for (i = 0; i < opt.conns; i++) {
        conn_close(pubs[i]);
    }
    for (i = 0; i < opt.api_conns; i++) {
        if (api[i]) {
            conn_close(api[i]);
        }
    }
    (void) close(ep);

    /* ----- figures */
    meas_s = t_meas1 > t_meas0 ? (double) (t_meas1 - t_meas0) / 1e9 : 0;
    qsort(lat, nlat, sizeof(uint32_t), cmp_u32);
    qsort(rtt, nrtt, sizeof(uint32_t), cmp_u32);
    qsort(klat, nklat, sizeof(uint32_t), cmp_u32);
    klat50 = pct_ms(klat, nklat, 50);
    klat99 = pct_ms(klat, nklat, 99);
    klatmax = nklat ? (double) klat_max_ns / 1e6 : -1;
    lat50 = pct_ms(lat, nlat, 50);
    lat99 = pct_ms(lat, nlat, 99);
    lat999 = pct_ms(lat, nlat, 99.9);
    latmax = nlat ? (double) lat_max_ns / 1e6 : -1;
    rtt50 = pct_ms(rtt, nrtt, 50);
    rtt99 = pct_ms(rtt, nrtt, 99);
    getrusage(RUSAGE_SELF, &ru);
    gen_cpu = (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6
              + (double) ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;

    expected = expected_warm + expected_meas;
    received = st.rx_total;
    /* per-subscriber accounting: every subscriber should have received
     * every acknowledged publish of its topic */
    for (i = 0; i < opt.subs; i++) {
        conn_t    *c = subs[i].c;
        uint64_t   want = topic_pubs[subs[i].topic];
        uint64_t   got = c ? c->rx : 0;

        if (c == NULL || !c->ready || c->slow) {
            continue;
        }
        if (got < want) {
            missing += want - got;
            subs_short++;
        } else if (got > want) {
            extra += got - want;
        }
    }
    if (cpu0 >= 0 && cpu1 >= 0) {
        /* utime+stime (clock ticks); schedstat (ns) as a cross-check */
        cpu_ms = cpu1 - cpu0;
        sch_ms = sch0 >= 0 && sch1 >= 0 ? sch1 - sch0 : -1;
        if (st.rx_measured > 0) {
            cpu_us_per_delivery = cpu_ms * 1000.0 / (double) st.rx_measured;
            if (sch_ms >= 0) {
                sch_us_per_delivery = sch_ms * 1000.0
                                      / (double) st.rx_measured;
            }
        }
        if (st.pub_ok_measured > 0) {
            cpu_us_per_publish = cpu_ms * 1000.0
                                 / (double) st.pub_ok_measured;
        }
    }

    if (opt.slow && (st.slow_closed || st.slow_reorder
                     || slow_final_behind != 0))
    {
        anomaly = 1;
    }
    qsort(behind, nbehind, sizeof(uint32_t), cmp_u32);
    qsort(per_read, nper_read, sizeof(uint32_t), cmp_u32);

    if (missing || st.ws_failed || st.ws_closed_unexpected || st.pub_err
        || st.pub_lost || st.pub_err_frames || st.sub_api_err
        || (opt.subs > 0 && st.ws_ready < opt.subs))
    {
        anomaly = 1;
    }

    /* ----- human summary */
    printf("== castbench %s%s%s %s:%d %s\n",
           opt.mode == MODE_CAST ? "cast" : "nchan",
           opt.ws_publish ? " (ws-publish)" : "",
           opt.max_rate ? " (max-rate)" : "", opt.host, opt.port, opt.label);
    printf("subscribers   %d/%d ready over %d topic(s)%s\n", st.ws_ready,
           opt.subs, opt.topics,
           st.ws_failed ? " -- SOME FAILED TO CONNECT" : "");
    if (opt.mode == MODE_CAST && nsubs_total) {
        printf("subscribe API %d ok, %d errors\n", st.sub_api_ok,
               st.sub_api_err);
    }
    if (opt.duration > 0) {
        printf("publishes     %" PRIu64 " sent, %" PRIu64 " acknowledged, "
               "%" PRIu64 " errors, %" PRIu64 " lost in flight%s\n",
               st.pub_sent, st.pub_ok, st.pub_err + st.pub_err_frames,
               st.pub_lost,
               opt.ws_publish ? " (ws: no per-event reply; acknowledged = "
                                "sent - error frames)" : "");
        if (opt.max_rate) {
            printf("max rate      %.0f accepted publishes/s over %d "
                   "connections (%.1f s)\n",
                   meas_s > 0 ? (double) st.pub_ok_measured / meas_s : 0,
                   opt.conns, meas_s);
        }
        if (nrtt) {
            printf("publish RTT   p50 %.3f ms, p99 %.3f ms\n", rtt50, rtt99);
        }
        if (opt.subs > 0) {
            printf("deliveries    %" PRIu64 " expected, %" PRIu64
                   " received (measured %" PRIu64 ", %.0f/s)\n",
                   expected, received, st.rx_measured,
                   meas_s > 0 ? (double) st.rx_measured / meas_s : 0);
            if (missing || expected > received) {
                printf("!!! LOSS: %" PRIu64 " deliveries missing on %d "
                       "subscriber(s) !!!\n",
                       missing ? missing : expected - received, subs_short);
            }
            if (extra) {
                printf("!!! %" PRIu64 " deliveries more than published !!!\n",
                       extra);
            }
            printf("latency       p50 %.3f ms, p99 %.3f ms, p99.9 %.3f ms, "
                   "max %.3f ms (send -> read by castbench)\n",
                   lat50, lat99, lat999, latmax);
            if (nlat) {
                printf("slowest       at +%.2f s of the measured phase%s",
                       (double) (lat_max_at - t_meas0) / 1e9,
                       first_ping_at ? "" : "\n");
                if (first_ping_at) {
                    printf("; the hub's first ping came at %+.2f s; "
                           "%" PRIu64 " pings while measuring\n",
                           (double) ((int64_t) first_ping_at
                                     - (int64_t) t_meas0) / 1e9,
                           st.pings_measured);
                }
            }
            printf("latency (rx)  p50 %.3f ms, p99 %.3f ms, max %.3f ms "
                   "(send -> kernel receive timestamp, %zu samples)\n",
                   klat50, klat99, klatmax, nklat);
        }
        if (st.pub_late) {
            printf("note          %" PRIu64 " publishes sent > 5 ms after "
                   "their slot (generator or hub saturated)\n", st.pub_late);
        }
    }
    if (cpu_s0 >= 0 && cpu_s1 >= 0 && st.ws_ready > 0) {
        printf("setup         %.1f us of worker CPU per subscriber "
               "(subscribe + handshake)\n",
               (cpu_s1 - cpu_s0) * 1000.0 / st.ws_ready);
    }
    if (mem_per_priv >= 0) {
        printf("memory        %.0f B private (%.0f B Pss) per idle "
               "subscriber; worker private %ld -> %ld KB\n",
               mem_per_priv, mem_per_pss, m0.priv_kb, m1.priv_kb);
    }
    if (cpu_us_per_delivery >= 0) {
        printf("worker CPU    %.2f us per delivery (schedstat %.2f), "
               "%.1f us per publish; %.0f ms in %.1f s\n",
               cpu_us_per_delivery, sch_us_per_delivery, cpu_us_per_publish,
               cpu_ms, meas_s);
    } else if (cpu_us_per_publish >= 0) {
        printf("worker CPU    %.1f us per publish; %.0f ms in %.1f s\n",
               cpu_us_per_publish, cpu_ms, meas_s);
    }
    printf("generator CPU %.2f s\n", gen_cpu);
    if (st.ws_closed_unexpected) {
        printf("!!! %d subscriber socket(s) closed by the hub during the run "
               "!!!\n", st.ws_closed_unexpected);
    }
    if (st.ws_failed) {
        printf("!!! %d WebSocket connection(s) failed !!!\n", st.ws_failed);
    }
    if (st.rx_stale) {
        printf("note          %" PRIu64 " frames of an earlier run ignored "
               "(replayed by the hub)\n", st.rx_stale);
    }
    if (st.rx_other) {
        printf("note          %" PRIu64 " other frames received\n",
               st.rx_other);
    }
    if (st.rx_dup_or_reorder) {
        printf("note          %" PRIu64 " deliveries out of order or "
               "repeated\n", st.rx_dup_or_reorder);
    }
    if (opt.slow) {
        printf("slow          %d subscriber(s) reading %.0f times/s: %"
               PRIu64 " events received, %" PRIu64 " skipped (replaced), %"
               PRIu64 " out of order, %d closed; behind after a read: "
               "p50 %u, p99 %u, max %u events (%zu reads); at the end %"
               PRIu64 "\n", opt.slow, opt.slow_hz, st.slow_rx, st.slow_gaps,
               st.slow_reorder, st.slow_closed,
               nbehind ? behind[nbehind / 2] : 0,
               nbehind ? behind[(nbehind * 99) / 100] : 0,
               nbehind ? behind[nbehind - 1] : 0, nbehind,
               slow_final_behind);
        printf("slow reads    events per read: p50 %u, max %u\n",
               nper_read ? per_read[nper_read / 2] : 0,
               nper_read ? per_read[nper_read - 1] : 0);
        printf("memory        worker private %ld KB when measuring began, "
               "%ld KB at the end, %ld KB at most\n",
               mem_meas0, mem_meas1, mem_meas_max);
    }
    if (st.first_error[0]) {
        printf("first error   %s\n", st.first_error);
    }

    /* ----- JSON line */
    printf("{\"label\":\"%s\",\"mode\":\"%s\",\"ws_publish\":%d,"
           "\"max_rate\":%d,\"port\":%d,\"subs\":%d,\"topics\":%d,"
           "\"rate\":%g,\"duration\":%g,\"warmup\":%g,\"conns\":%d,"
           "\"subs_ready\":%d,\"ws_failed\":%d,\"ws_closed\":%d,"
           "\"sub_api_errors\":%d,\"setup_cpu_ms\":%.1f,"
           "\"pub_sent\":%" PRIu64 ",\"pub_ok\":%" PRIu64 ","
           "\"pub_errors\":%" PRIu64 ",\"pub_lost\":%" PRIu64 ","
           "\"pub_late\":%" PRIu64 ",\"measured_s\":%.3f,"
           "\"measured_publishes\":%" PRIu64 ",\"publishes_per_s\":%.1f,"
           "\"expected\":%" PRIu64 ",\"received\":%" PRIu64 ","
           "\"missing\":%" PRIu64 ",\"extra\":%" PRIu64 ","
           "\"subs_with_loss\":%d,\"measured_deliveries\":%" PRIu64 ","
           "\"deliveries_per_s\":%.1f,\"lat_p50_ms\":%.3f,"
           "\"lat_p99_ms\":%.3f,\"lat_p999_ms\":%.3f,\"lat_max_ms\":%.3f,"
           "\"klat_p50_ms\":%.3f,\"klat_p99_ms\":%.3f,"
           "\"klat_max_ms\":%.3f,\"stale_frames\":%" PRIu64 ","
           "\"pub_rtt_p50_ms\":%.3f,\"pub_rtt_p99_ms\":%.3f,"
           "\"worker_cpu_us_per_delivery\":%.3f,"
           "\"worker_cpu_us_per_publish\":%.3f,"
           "\"worker_cpu_ms\":%.1f,\"worker_sched_ms\":%.1f,"
           "\"worker_sched_us_per_delivery\":%.3f,"
           "\"mem_priv_bytes_per_sub\":%.0f,\"mem_pss_bytes_per_sub\":%.0f,"
           "\"mem_priv_kb_before\":%ld,\"mem_priv_kb_after\":%ld,"
           "\"other_frames\":%" PRIu64 ",\"reordered\":%" PRIu64 ","
           "\"pings\":%" PRIu64 ",\"pings_measured\":%" PRIu64 ","
           "\"lat_max_at_s\":%.2f,"
           "\"first_ping_at_s\":%.2f,\"generator_cpu_s\":%.2f,"
           "\"payload\":%d,\"slow\":%d,\"slow_hz\":%g,"
           "\"slow_rx\":%" PRIu64 ",\"slow_skipped\":%" PRIu64 ","
           "\"slow_reordered\":%" PRIu64 ",\"slow_closed\":%d,"
           "\"slow_reads\":%zu,\"slow_behind_p50\":%d,"
           "\"slow_behind_p99\":%d,\"slow_behind_max\":%d,"
           "\"slow_behind_end\":%d,\"slow_per_read_p50\":%d,"
           "\"slow_per_read_max\":%d,\"mem_priv_kb_measure_begin\":%ld,"
           "\"mem_priv_kb_measure_end\":%ld,"
           "\"mem_priv_kb_measure_max\":%ld,"
           "\"anomaly\":%d}\n",
           opt.label, opt.mode == MODE_CAST ? "cast" : "nchan",
           opt.ws_publish, opt.max_rate, opt.port, opt.subs, opt.topics,
           opt.rate, opt.duration, opt.warmup, opt.conns,
           st.ws_ready, st.ws_failed, st.ws_closed_unexpected,
           st.sub_api_err,
           cpu_s0 >= 0 && cpu_s1 >= 0 ? cpu_s1 - cpu_s0 : -1.0,
           st.pub_sent, st.pub_ok, st.pub_err + st.pub_err_frames,
           st.pub_lost, st.pub_late, meas_s,
           measure_first_seq != UINT64_MAX && measure_end_seq != UINT64_MAX
               ? measure_end_seq - measure_first_seq : 0,
           meas_s > 0 ? (double) st.pub_ok_measured / meas_s : 0,
           expected, received, missing ? missing
                                       : (expected > received
                                          ? expected - received : 0),
           extra, subs_short, st.rx_measured,
           meas_s > 0 ? (double) st.rx_measured / meas_s : 0,
           lat50, lat99, lat999, latmax, klat50, klat99, klatmax,
           st.rx_stale, rtt50, rtt99,
           cpu_us_per_delivery, cpu_us_per_publish, cpu_ms, sch_ms,
           sch_us_per_delivery,
           mem_per_priv, mem_per_pss,
           have_mem ? m0.priv_kb : -1L, have_mem && mem_per_priv >= 0
                                        ? m1.priv_kb : -1L,
           st.rx_other, st.rx_dup_or_reorder, st.pings, st.pings_measured,
           nlat ? (double) (lat_max_at - t_meas0) / 1e9 : -1.0,
           first_ping_at ? (double) ((int64_t) first_ping_at
                                     - (int64_t) t_meas0) / 1e9 : -1.0,
           gen_cpu, opt.payload, opt.slow, opt.slow_hz, st.slow_rx,
           st.slow_gaps, st.slow_reorder, st.slow_closed, nbehind,
           opt.slow && nbehind ? (int) behind[nbehind / 2] : -1,
           opt.slow && nbehind ? (int) behind[(nbehind * 99) / 100] : -1,
           opt.slow && nbehind ? (int) behind[nbehind - 1] : -1,
           opt.slow && slow_final_behind != UINT64_MAX
               ? (int) slow_final_behind : -1,
           nper_read ? (int) per_read[nper_read / 2] : -1,
           nper_read ? (int) per_read[nper_read - 1] : -1,
           mem_meas0, mem_meas1, mem_meas_max, anomaly);

    return anomaly ? 1 : 0;
}
