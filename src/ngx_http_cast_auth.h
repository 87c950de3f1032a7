
/*
 * ngx_http_cast_module: bearer-token authorization of the HTTP routes
 * (src/ngx_http_cast_auth.c).
 *
 * An edge helper: the HTTP routes ask it what a request's token grants
 * (cast_auth jwt: the module checks the JWT itself; cast_auth request:
 * nginx's auth_request, or any earlier phase, set variables) and whether
 * that covers a topic and an event.  A refusal is answered here (401
 * with WWW-Authenticate, RFC 6750, or 403), and the caller returns *rc.
 */


#ifndef _NGX_HTTP_CAST_AUTH_H_INCLUDED_
#define _NGX_HTTP_CAST_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_hub.h"
#include "ngx_http_cast_jwt.h"


/* directive handlers (the command table is in ngx_http_cast_module.c) */
char *ngx_http_cast_auth_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_cast_auth_jwks_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_cast_auth_secret_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/* a key file in one piece (nginx -t fails: unreadable, empty, > max) */
ngx_int_t ngx_http_cast_auth_read_file(ngx_conf_t *cf, ngx_str_t *name,
    size_t max, ngx_str_t *out);
/* a directive's "file [kid=name]": the secret (no final line break) */
ngx_int_t ngx_http_cast_auth_secret_file(ngx_conf_t *cf, size_t max,
    ngx_str_t *text, ngx_str_t *kid);

/*
 * The request's grant: NGX_OK with *grant (NULL where cast_auth is off);
 * NGX_DONE when the request was refused (the caller returns *rc);
 * NGX_ERROR.
 */
ngx_int_t ngx_http_cast_auth_token(ngx_http_request_t *r,
    ngx_http_cast_grant_t **grant, ngx_int_t *rc);

/* the token is for this topic (403 if not) */
ngx_int_t ngx_http_cast_auth_topic(ngx_http_request_t *r,
    ngx_http_cast_grant_t *grant, ngx_str_t *topic, ngx_int_t *rc);

/* a scope gives "mode" for this lowercase event (403 if not) */
ngx_int_t ngx_http_cast_auth_event(ngx_http_request_t *r,
    ngx_http_cast_grant_t *grant, ngx_str_t *event, ngx_uint_t mode,
    ngx_int_t *rc);

/* a scope gives "mode" for some event (403 if not) */
ngx_int_t ngx_http_cast_auth_any(ngx_http_request_t *r,
    ngx_http_cast_grant_t *grant, ngx_uint_t mode, ngx_int_t *rc);

/*
 * A subscription: of the events asked for, those the token may read
 * (*granted, as asked; 403 when none), what it may publish
 * (*writable), and the lease capped at the token's expiry.
 */
ngx_int_t ngx_http_cast_auth_subscribe(ngx_http_request_t *r,
    ngx_http_cast_grant_t *grant, ngx_http_cast_events_t *events,
    ngx_str_t *granted, ngx_str_t *writable, time_t *lease, ngx_int_t *rc);

/* the token's subject and id, printable, for a log line */
u_char *ngx_http_cast_auth_who(u_char *buf, size_t size,
    ngx_http_cast_grant_t *grant);


#endif /* _NGX_HTTP_CAST_AUTH_H_INCLUDED_ */
