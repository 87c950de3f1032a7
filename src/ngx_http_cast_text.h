
/*
 * ngx_http_cast_module: checks on the text clients send (topics, event
 * names, hub.events lists, subscription fields) and the incremental UTF-8
 * validator that the frame codec shares.
 *
 * Pure functions over bytes: no I/O, no allocation, nothing from nginx but
 * its basic types, so they build outside nginx (t/unit, fuzz).
 */


#ifndef _NGX_HTTP_CAST_TEXT_H_INCLUDED_
#define _NGX_HTTP_CAST_TEXT_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>


/* what is wrong with a text; ngx_http_cast_text_reason() words it */
#define NGX_HTTP_CAST_TEXT_OK          0
#define NGX_HTTP_CAST_TEXT_EMPTY       1
#define NGX_HTTP_CAST_TEXT_TOO_LONG    2
#define NGX_HTTP_CAST_TEXT_CONTROL     3
#define NGX_HTTP_CAST_TEXT_NOT_UTF8    4
#define NGX_HTTP_CAST_TEXT_SLASH       5
#define NGX_HTTP_CAST_TEXT_COMMA       6
#define NGX_HTTP_CAST_TEXT_BLANK       7

/* ngx_http_cast_text_field() flags */
#define NGX_HTTP_CAST_TEXT_TABS        1    /* horizontal tabs allowed */


typedef struct {
    /* incremental UTF-8 validator state (DFA), carried across chunks */
    ngx_uint_t  state;
} ngx_http_cast_utf8_t;


/* a hub.events list, split into names (pointers into the list) */

typedef struct {
    /* set by the caller */
    ngx_str_t                 *names;     /* room for "max" names */
    ngx_uint_t                 max;       /* distinct names allowed */
    size_t                     max_name;  /* bytes per name */
    ngx_uint_t                 allow_all; /* "*" allowed (cast dialect) */

    /* set by ngx_http_cast_text_events() */
    ngx_uint_t                 n;         /* distinct names, first spelling */
    ngx_uint_t                 all;       /* "*" is one of them */
    size_t                     size;      /* bytes of the n names */
} ngx_http_cast_text_list_t;


void ngx_http_cast_utf8_init(ngx_http_cast_utf8_t *u);
/*
 * Returns NGX_OK (valid so far) or NGX_ERROR (invalid, sticky);
 * ngx_http_cast_utf8_complete() tells whether the input so far ends on a
 * character boundary.  Strict RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF.
 */
ngx_int_t ngx_http_cast_utf8_feed(ngx_http_cast_utf8_t *u, u_char *p,
    size_t n);
ngx_uint_t ngx_http_cast_utf8_complete(ngx_http_cast_utf8_t *u);

/* 1 if [p, p + n) is complete, valid UTF-8 */
ngx_uint_t ngx_http_cast_utf8_valid(u_char *p, size_t n);

/*
 * The length of [p, p + n) without a character cut short at its end, as
 * a bounded formatter leaves UTF-8 text it truncates.
 */
size_t ngx_http_cast_utf8_trim(u_char *p, size_t n);

/*
 * The checks below return NGX_HTTP_CAST_TEXT_OK or the first problem, in
 * the order of the NGX_HTTP_CAST_TEXT_* codes (a text that is both too
 * long and not UTF-8 is "too long").  A control character is a byte
 * below 0x20 or 0x7f.
 */

/* a subscription field: at most max bytes, UTF-8, no control characters */
ngx_uint_t ngx_http_cast_text_field(u_char *p, size_t n, size_t max,
    ngx_uint_t flags);

/*
 * A topic: 1 to max bytes of UTF-8 without control characters and
 * without "/" (a topic is the one path segment of {base}/{topic}).
 */
ngx_uint_t ngx_http_cast_text_topic(u_char *p, size_t n, size_t max);

/*
 * An event name (SPEC 4): one item of a hub.events list, so 1 to max
 * bytes of UTF-8 without control characters, without "," and without a
 * space or tab at either end.
 */
ngx_uint_t ngx_http_cast_text_event(u_char *p, size_t n, size_t max);

/*
 * Splits a hub.events list: items are trimmed of spaces and tabs, empty
 * ones skipped, duplicates collapsed case-insensitively (ASCII; the first
 * spelling is kept).  Every item must pass ngx_http_cast_text_event().
 * Returns NGX_OK, or NGX_DECLINED with *err set to a static message.
 */
ngx_int_t ngx_http_cast_text_events(u_char *p, size_t n,
    ngx_http_cast_text_list_t *list, const char **err);

/* "is not valid UTF-8", ... for a NGX_HTTP_CAST_TEXT_* code */
const char *ngx_http_cast_text_reason(ngx_uint_t code);


#endif /* _NGX_HTTP_CAST_TEXT_H_INCLUDED_ */
