
/*
 * ngx_http_cast_module: the token endpoints (src/ngx_http_cast_oauth.c).
 *
 * An edge: POST /oauth/token (G1 client_credentials, G2
 * authorization_code) and POST /oauth/authorize (G2) where a location
 * says "cast_oauth token" or "cast_oauth authorize".  Tokens are HS256
 * JWTs signed with the key of "cast_oauth_key" (ngx_http_cast_jwt.c);
 * user numbers and the one-time codes go through the hub core, so they
 * hold across every worker and host.  See README "Tokens".
 */


#ifndef _NGX_HTTP_CAST_OAUTH_H_INCLUDED_
#define _NGX_HTTP_CAST_OAUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_jwt.h"


#define NGX_HTTP_CAST_OAUTH_OFF        0
#define NGX_HTTP_CAST_OAUTH_TOKEN      1
#define NGX_HTTP_CAST_OAUTH_AUTHORIZE  2


struct ngx_http_cast_oauth_conf_s {
    ngx_uint_t                 mode;        /* this location's, not
                                               inherited */
    ngx_http_cast_jwk_t       *key;         /* cast_oauth_key */
    ngx_flag_t                 single_user; /* cast_oauth_single_user */
    time_t                     ttl;         /* cast_oauth_token_ttl */
    ngx_str_t                  issuer;      /* cast_oauth_issuer */
};


/* configuration (the command table is in ngx_http_cast_module.c) */
ngx_http_cast_oauth_conf_t *ngx_http_cast_oauth_create_conf(ngx_conf_t *cf);
char *ngx_http_cast_oauth_merge_conf(ngx_conf_t *cf,
    ngx_http_cast_oauth_conf_t *prev, ngx_http_cast_oauth_conf_t *conf);

/* "cast_oauth token | authorize | off": *on tells whether it serves */
char *ngx_http_cast_oauth_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf, ngx_uint_t *on);
char *ngx_http_cast_oauth_key_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_cast_oauth_single_user_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_cast_oauth_ttl_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_cast_oauth_issuer_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);

/* the content handler of a cast_oauth location */
ngx_int_t ngx_http_cast_oauth_handler(ngx_http_request_t *r);


#endif /* _NGX_HTTP_CAST_OAUTH_H_INCLUDED_ */
