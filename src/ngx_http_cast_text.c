
/*
 * ngx_http_cast_module: checks on the text clients send (topics, event
 * names, hub.events lists, subscription fields) and the incremental UTF-8
 * validator shared with the frame codec.  Pure functions over bytes.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include "ngx_http_cast_text.h"


/* UTF-8 validator states (RFC 3629 section 4 grammar) */
#define NGX_HTTP_CAST_UTF8_ACCEPT    0   /* on a character boundary */
#define NGX_HTTP_CAST_UTF8_REJECT    1   /* invalid, sticky */
#define NGX_HTTP_CAST_UTF8_TAIL1     2   /* one more 80-BF */
#define NGX_HTTP_CAST_UTF8_TAIL2     3   /* two more 80-BF */
#define NGX_HTTP_CAST_UTF8_TAIL3     4   /* three more 80-BF */
#define NGX_HTTP_CAST_UTF8_E0        5   /* after E0: A0-BF, then TAIL1 */
#define NGX_HTTP_CAST_UTF8_ED        6   /* after ED: 80-9F, then TAIL1 */
#define NGX_HTTP_CAST_UTF8_F0        7   /* after F0: 90-BF, then TAIL2 */
#define NGX_HTTP_CAST_UTF8_F4        8   /* after F4: 80-8F, then TAIL2 */



#define ngx_http_cast_text_is_control(c)  ((c) < 0x20 || (c) == 0x7f)
#define ngx_http_cast_text_is_blank(c)    ((c) == ' ' || (c) == '\t')


static ngx_uint_t ngx_http_cast_utf8_step(ngx_uint_t state, u_char c);
static ngx_int_t ngx_http_cast_text_item(ngx_http_cast_text_list_t *list,
    u_char *start, u_char *last, const char **err);
static ngx_uint_t ngx_http_cast_text_same(u_char *a, u_char *b, size_t n);


void
ngx_http_cast_utf8_init(ngx_http_cast_utf8_t *u)
{
    u->state = NGX_HTTP_CAST_UTF8_ACCEPT;
}


static ngx_uint_t
ngx_http_cast_utf8_step(ngx_uint_t state, u_char c)
{
    switch (state) {

    case NGX_HTTP_CAST_UTF8_ACCEPT:

        if (c < 0x80) {
            return NGX_HTTP_CAST_UTF8_ACCEPT;
        }

        if (c < 0xc2) {
            /* 80-BF: stray continuation; C0, C1: overlong */
            return NGX_HTTP_CAST_UTF8_REJECT;
        }

        if (c < 0xe0) {
            return NGX_HTTP_CAST_UTF8_TAIL1;
        }

        if (c == 0xe0) {
            return NGX_HTTP_CAST_UTF8_E0;
        }

        if (c == 0xed) {
            return NGX_HTTP_CAST_UTF8_ED;
        }

        if (c < 0xf0) {
            return NGX_HTTP_CAST_UTF8_TAIL2;
        }

        if (c == 0xf0) {
            return NGX_HTTP_CAST_UTF8_F0;
        }

        if (c < 0xf4) {
            return NGX_HTTP_CAST_UTF8_TAIL3;
        }

        if (c == 0xf4) {
            return NGX_HTTP_CAST_UTF8_F4;
        }

        /* F5-FF: beyond U+10FFFF or never valid */
        return NGX_HTTP_CAST_UTF8_REJECT;

    case NGX_HTTP_CAST_UTF8_TAIL1:
    case NGX_HTTP_CAST_UTF8_TAIL2:
    case NGX_HTTP_CAST_UTF8_TAIL3:

        if (c < 0x80 || c > 0xbf) {
            return NGX_HTTP_CAST_UTF8_REJECT;
        }

        /* TAIL3 -> TAIL2 -> TAIL1 -> ACCEPT */
        return (state == NGX_HTTP_CAST_UTF8_TAIL1)
               ? NGX_HTTP_CAST_UTF8_ACCEPT : state - 1;

    case NGX_HTTP_CAST_UTF8_E0:
        /* A0-BF: no overlong 3-byte forms */
        return (c >= 0xa0 && c <= 0xbf)
               ? NGX_HTTP_CAST_UTF8_TAIL1 : NGX_HTTP_CAST_UTF8_REJECT;

    case NGX_HTTP_CAST_UTF8_ED:
        /* 80-9F: no surrogates U+D800-DFFF */
        return (c >= 0x80 && c <= 0x9f)
               ? NGX_HTTP_CAST_UTF8_TAIL1 : NGX_HTTP_CAST_UTF8_REJECT;

    case NGX_HTTP_CAST_UTF8_F0:
        /* 90-BF: no overlong 4-byte forms */
        return (c >= 0x90 && c <= 0xbf)
               ? NGX_HTTP_CAST_UTF8_TAIL2 : NGX_HTTP_CAST_UTF8_REJECT;

    case NGX_HTTP_CAST_UTF8_F4:
        /* 80-8F: nothing above U+10FFFF */
        return (c >= 0x80 && c <= 0x8f)
               ? NGX_HTTP_CAST_UTF8_TAIL2 : NGX_HTTP_CAST_UTF8_REJECT;

    default:
        return NGX_HTTP_CAST_UTF8_REJECT;
    }
}


ngx_int_t
ngx_http_cast_utf8_feed(ngx_http_cast_utf8_t *u, u_char *p, size_t n)
{
    u_char      *last;
    ngx_uint_t   state;

    state = u->state;
    last = p + n;

    while (p < last) {

        if (state == NGX_HTTP_CAST_UTF8_ACCEPT) {

            /* ASCII fast path */

            while (p < last && *p < 0x80) {
                p++;
            }

            if (p == last) {
                break;
            }
        }

        state = ngx_http_cast_utf8_step(state, *p++);

        if (state == NGX_HTTP_CAST_UTF8_REJECT) {
            break;
        }
    }

    u->state = state;

    return (state == NGX_HTTP_CAST_UTF8_REJECT) ? NGX_ERROR : NGX_OK;
}


ngx_uint_t
ngx_http_cast_utf8_complete(ngx_http_cast_utf8_t *u)
{
    return u->state == NGX_HTTP_CAST_UTF8_ACCEPT;
}



ngx_uint_t
ngx_http_cast_utf8_valid(u_char *p, size_t n)
{
    ngx_http_cast_utf8_t  u;

    ngx_http_cast_utf8_init(&u);

    return ngx_http_cast_utf8_feed(&u, p, n) == NGX_OK
           && ngx_http_cast_utf8_complete(&u);
}


size_t
ngx_http_cast_utf8_trim(u_char *p, size_t n)
{
    u_char  c;
    size_t  i, need;

    for (i = 1; i <= 4 && i <= n; i++) {
        c = p[n - i];

        if ((c & 0xc0) == 0x80) {
            /* a continuation byte: its lead is further back */
            continue;
        }

        if (c < 0x80) {
            return n;
        }

        need = (c >= 0xf0) ? 4 : (c >= 0xe0) ? 3 : 2;

        return (need > i) ? n - i : n;
    }

    return n;
}


ngx_uint_t
ngx_http_cast_text_field(u_char *p, size_t n, size_t max, ngx_uint_t flags)
{
    size_t  i;

    if (n > max) {
        return NGX_HTTP_CAST_TEXT_TOO_LONG;
    }

    for (i = 0; i < n; i++) {
        if (ngx_http_cast_text_is_control(p[i])
            && !(p[i] == '\t' && (flags & NGX_HTTP_CAST_TEXT_TABS)))
        {
            return NGX_HTTP_CAST_TEXT_CONTROL;
        }
    }

    if (!ngx_http_cast_utf8_valid(p, n)) {
        return NGX_HTTP_CAST_TEXT_NOT_UTF8;
    }

    return NGX_HTTP_CAST_TEXT_OK;
}


ngx_uint_t
ngx_http_cast_text_topic(u_char *p, size_t n, size_t max)
{
    size_t      i;
    ngx_uint_t  rc;

    if (n == 0) {
        return NGX_HTTP_CAST_TEXT_EMPTY;
    }

    rc = ngx_http_cast_text_field(p, n, max, 0);
    if (rc != NGX_HTTP_CAST_TEXT_OK) {
        return rc;
    }

    for (i = 0; i < n; i++) {
        if (p[i] == '/') {
            return NGX_HTTP_CAST_TEXT_SLASH;
        }
    }

    return NGX_HTTP_CAST_TEXT_OK;
}


ngx_uint_t
ngx_http_cast_text_event(u_char *p, size_t n, size_t max)
{
    size_t      i;
    ngx_uint_t  rc;

    if (n == 0) {
        return NGX_HTTP_CAST_TEXT_EMPTY;
    }

    rc = ngx_http_cast_text_field(p, n, max, 0);
    if (rc != NGX_HTTP_CAST_TEXT_OK) {
        return rc;
    }

    for (i = 0; i < n; i++) {
        if (p[i] == ',') {
            return NGX_HTTP_CAST_TEXT_COMMA;
        }
    }

    if (p[0] == ' ' || p[n - 1] == ' ') {
        return NGX_HTTP_CAST_TEXT_BLANK;
    }

    return NGX_HTTP_CAST_TEXT_OK;
}


ngx_int_t
ngx_http_cast_text_events(u_char *p, size_t n,
    ngx_http_cast_text_list_t *list, const char **err)
{
    u_char  *end, *last;

    list->n = 0;
    list->all = 0;
    list->size = 0;

    end = p + n;

    for ( ;; ) {

        for (last = p; last < end && *last != ','; last++) {
            /* void */
        }

        if (ngx_http_cast_text_item(list, p, last, err) != NGX_OK) {
            return NGX_DECLINED;
        }

        if (last == end) {
            break;
        }

        p = last + 1;
    }

    if (list->n == 0) {
        *err = "hub.events is empty";
        return NGX_DECLINED;
    }

    return NGX_OK;
}


const char *
ngx_http_cast_text_reason(ngx_uint_t code)
{
    switch (code) {

    case NGX_HTTP_CAST_TEXT_OK:
        return "is valid";

    case NGX_HTTP_CAST_TEXT_EMPTY:
        return "is empty";

    case NGX_HTTP_CAST_TEXT_TOO_LONG:
        return "is too long";

    case NGX_HTTP_CAST_TEXT_CONTROL:
        return "holds a control character";

    case NGX_HTTP_CAST_TEXT_NOT_UTF8:
        return "is not valid UTF-8";

    case NGX_HTTP_CAST_TEXT_SLASH:
        return "holds a \"/\" (a topic must fit one path segment, "
               "{base}/{topic})";

    case NGX_HTTP_CAST_TEXT_COMMA:
        return "holds a comma (an event name is one item of a hub.events "
               "list)";

    case NGX_HTTP_CAST_TEXT_BLANK:
        return "begins or ends with a space";

    default:
        return "is invalid";
    }
}


/* one item of a hub.events list, [start, last) untrimmed */

static ngx_int_t
ngx_http_cast_text_item(ngx_http_cast_text_list_t *list, u_char *start,
    u_char *last, const char **err)
{
    size_t      len;
    ngx_uint_t  i;

    while (start < last && ngx_http_cast_text_is_blank(*start)) {
        start++;
    }

    len = last - start;

    while (len && ngx_http_cast_text_is_blank(start[len - 1])) {
        len--;
    }

    if (len == 0) {
        return NGX_OK;
    }

    switch (ngx_http_cast_text_event(start, len, list->max_name)) {

    case NGX_HTTP_CAST_TEXT_OK:
        break;

    case NGX_HTTP_CAST_TEXT_TOO_LONG:
        *err = "an event name in hub.events is too long";
        return NGX_DECLINED;

    case NGX_HTTP_CAST_TEXT_CONTROL:
        *err = "hub.events holds a control character";
        return NGX_DECLINED;

    default:
        /* a trimmed item of a comma list: only UTF-8 can be wrong */
        *err = "hub.events is not valid UTF-8";
        return NGX_DECLINED;
    }

    if (len == 1 && *start == '*') {
        if (!list->allow_all) {
            *err = "\"*\" in hub.events is not allowed by FHIRcast "
                   "(cast_dialect fhircast)";
            return NGX_DECLINED;
        }

        list->all = 1;
    }

    for (i = 0; i < list->n; i++) {
        if (list->names[i].len == len
            && ngx_http_cast_text_same(list->names[i].data, start, len))
        {
            return NGX_OK;
        }
    }

    if (list->n == list->max) {
        *err = "hub.events lists too many events";
        return NGX_DECLINED;
    }

    list->names[list->n].data = start;
    list->names[list->n].len = len;
    list->size += len;
    list->n++;

    return NGX_OK;
}


/* ASCII case-insensitive equality, as event names are matched */

static ngx_uint_t
ngx_http_cast_text_same(u_char *a, u_char *b, size_t n)
{
    u_char  c1, c2;

    while (n--) {
        c1 = *a++;
        c2 = *b++;

        c1 = (c1 >= 'A' && c1 <= 'Z') ? (c1 | 0x20) : c1;
        c2 = (c2 >= 'A' && c2 <= 'Z') ? (c2 | 0x20) : c2;

        if (c1 != c2) {
            return 0;
        }
    }

    return 1;
}
