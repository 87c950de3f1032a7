
/*
 * ngx_http_cast_module: bearer-token authorization of the HTTP routes
 * (see ngx_http_cast_auth.h; the rules are in README "Authorization").
 *
 * Keys are read when the configuration is (so a reload reads them
 * again); tokens are checked by the pure codec ngx_http_cast_jwt.c.
 * Nothing about a token is logged but its subject and id.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_auth.h"
#include "ngx_http_cast_hub.h"
#include "ngx_http_cast_jwt.h"
#include "ngx_http_cast_reply.h"


/* a key file larger than this is refused */
#define NGX_HTTP_CAST_AUTH_MAX_FILE  (1024 * 1024)

/* keys one JWK Set file may hold */
#define NGX_HTTP_CAST_AUTH_MAX_KEYS  64

/* what a log line quotes of "sub" or "jti" */
#define NGX_HTTP_CAST_AUTH_MAX_WHO   64


static ngx_array_t *ngx_http_cast_auth_keys(ngx_conf_t *cf,
    ngx_http_cast_loc_conf_t *clcf);
static void ngx_http_cast_auth_keys_cleanup(void *data);
static ngx_int_t ngx_http_cast_auth_jwt(ngx_http_request_t *r,
    ngx_http_cast_loc_conf_t *clcf, ngx_str_t *token,
    ngx_http_cast_grant_t *grant, ngx_int_t *rc);
static ngx_int_t ngx_http_cast_auth_vars(ngx_http_request_t *r,
    ngx_http_cast_loc_conf_t *clcf, ngx_http_cast_grant_t *grant,
    ngx_int_t *rc);
static ngx_int_t ngx_http_cast_auth_deny(ngx_http_request_t *r,
    ngx_uint_t status, const char *error, ngx_str_t *scope,
    ngx_http_cast_grant_t *grant, const char *reason, ngx_int_t *rc);
static u_char *ngx_http_cast_auth_quote(u_char *p, u_char *last,
    ngx_str_t *s);


/* ------------------------------------------------------------------ */
/* configuration                                                        */
/* ------------------------------------------------------------------ */


/* cast_auth off | jwt | request topic=... scope=... [expires=...] ... */

char *
ngx_http_cast_auth_directive(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    ngx_str_t                          *value, v;
    ngx_uint_t                          i;
    ngx_http_complex_value_t          **cv;
    ngx_http_compile_complex_value_t    ccv;

    if (clcf->auth != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_strcmp(value[1].data, "off") == 0) {
        clcf->auth = NGX_HTTP_CAST_AUTH_OFF;

    } else if (ngx_strcmp(value[1].data, "jwt") == 0) {
        clcf->auth = NGX_HTTP_CAST_AUTH_JWT;

    } else if (ngx_strcmp(value[1].data, "request") == 0) {
        clcf->auth = NGX_HTTP_CAST_AUTH_REQUEST;

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": expected off, jwt or "
                           "request", &value[1]);
        return NGX_CONF_ERROR;
    }

    if (clcf->auth != NGX_HTTP_CAST_AUTH_REQUEST) {
        if (cf->args->nelts > 2) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"cast_auth %V\" takes no parameters",
                               &value[1]);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "topic=", 6) == 0) {
            cv = &clcf->auth_topic;
            v.data = value[i].data + 6;

        } else if (ngx_strncmp(value[i].data, "scope=", 6) == 0) {
            cv = &clcf->auth_scope;
            v.data = value[i].data + 6;

        } else if (ngx_strncmp(value[i].data, "expires=", 8) == 0) {
            cv = &clcf->auth_expires;
            v.data = value[i].data + 8;

        } else if (ngx_strncmp(value[i].data, "subject=", 8) == 0) {
            cv = &clcf->auth_subject;
            v.data = value[i].data + 8;

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[i]);
            return NGX_CONF_ERROR;
        }

        v.len = value[i].data + value[i].len - v.data;

        if (*cv != NULL || v.len == 0) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate or empty parameter \"%V\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        *cv = ngx_pcalloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (*cv == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &v;
        ccv.complex_value = *cv;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (clcf->auth_topic == NULL || clcf->auth_scope == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cast_auth request\" needs topic= and scope=, "
                           "e.g. topic=$auth_topic scope=$auth_scope");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* cast_auth_jwks file: the RS256, ES256 (and HS256 "oct") keys of a set */

char *
ngx_http_cast_auth_jwks_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    const char           *err;
    ngx_str_t            *value, text;
    ngx_uint_t            i, n, skipped;
    ngx_array_t          *keys;
    ngx_http_cast_jwk_t   parsed[NGX_HTTP_CAST_AUTH_MAX_KEYS], *key;

    value = cf->args->elts;

    if (ngx_http_cast_auth_read_file(cf, &value[1],
                                     NGX_HTTP_CAST_AUTH_MAX_FILE, &text)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    keys = ngx_http_cast_auth_keys(cf, clcf);
    if (keys == NULL) {
        return NGX_CONF_ERROR;
    }

    n = 0;
    skipped = 0;

    if (ngx_http_cast_jwks_parse(cf->pool, text.data, text.len, parsed,
                                 NGX_HTTP_CAST_AUTH_MAX_KEYS, &n, &skipped,
                                 &err)
        != NGX_OK)
    {
        for (i = 0; i < n; i++) {
            ngx_http_cast_jwk_free(&parsed[i]);
        }

        ngx_explicit_memzero(text.data, text.len);
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid JWK Set \"%V\": %s",
                           &value[1], err);
        return NGX_CONF_ERROR;
    }

    ngx_explicit_memzero(text.data, text.len);

    for (i = 0; i < n; i++) {
        key = ngx_array_push(keys);
        if (key == NULL) {
            for ( /* void */ ; i < n; i++) {
                ngx_http_cast_jwk_free(&parsed[i]);
            }

            return NGX_CONF_ERROR;
        }

        *key = parsed[i];
    }

    if (n == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "no RS256, ES256 (P-256) or HS256 signing key in "
                           "\"%V\" (%ui other keys)", &value[1], skipped);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* cast_auth_secret file [kid=name]: an HS256 secret, the file's bytes */

char *
ngx_http_cast_auth_secret_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    const char           *err;
    ngx_int_t             rc;
    ngx_str_t            *value, text, kid;
    ngx_array_t          *keys;
    ngx_http_cast_jwk_t  *key;

    value = cf->args->elts;

    if (ngx_http_cast_auth_secret_file(cf, NGX_HTTP_CAST_AUTH_MAX_FILE, &text,
                                       &kid)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    keys = ngx_http_cast_auth_keys(cf, clcf);
    if (keys == NULL) {
        return NGX_CONF_ERROR;
    }

    key = ngx_array_push(keys);
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    rc = ngx_http_cast_jwk_secret(cf->pool, text.data, text.len,
                                  kid.len ? &kid : NULL, key, &err);

    ngx_explicit_memzero(text.data, text.len);

    if (rc != NGX_OK) {
        keys->nelts--;

        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid key \"%V\": %s",
                               &value[1], err);
        }

        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* the location's own key list, released with the configuration */

static ngx_array_t *
ngx_http_cast_auth_keys(ngx_conf_t *cf, ngx_http_cast_loc_conf_t *clcf)
{
    ngx_pool_cleanup_t  *cln;

    if (clcf->auth_keys) {
        return clcf->auth_keys;
    }

    clcf->auth_keys = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_cast_jwk_t));
    if (clcf->auth_keys == NULL) {
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NULL;
    }

    cln->handler = ngx_http_cast_auth_keys_cleanup;
    cln->data = clcf->auth_keys;

    return clcf->auth_keys;
}


static void
ngx_http_cast_auth_keys_cleanup(void *data)
{
    ngx_array_t *keys = data;

    ngx_uint_t            i;
    ngx_http_cast_jwk_t  *key;

    key = keys->elts;

    for (i = 0; i < keys->nelts; i++) {
        ngx_http_cast_jwk_free(&key[i]);
    }
}


/*
 * "file [kid=name]" of a directive: the secret in the file, without the
 * final line break "openssl rand -hex 32 > file" leaves, and the kid.
 */

ngx_int_t
ngx_http_cast_auth_secret_file(ngx_conf_t *cf, size_t max, ngx_str_t *text,
    ngx_str_t *kid)
{
    ngx_str_t  *value;

    value = cf->args->elts;

    ngx_str_null(kid);

    if (cf->args->nelts == 3) {
        if (ngx_strncmp(value[2].data, "kid=", 4) != 0
            || value[2].len == 4)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\"", &value[2]);
            return NGX_ERROR;
        }

        kid->data = value[2].data + 4;
        kid->len = value[2].len - 4;
    }

    if (ngx_http_cast_auth_read_file(cf, &value[1], max, text) != NGX_OK) {
        return NGX_ERROR;
    }

    while (text->len
           && (text->data[text->len - 1] == '\n'
               || text->data[text->len - 1] == '\r'))
    {
        text->len--;
    }

    return NGX_OK;
}


/*
 * A key file in one piece, read at configuration time: nginx -t fails on
 * one that cannot be read, is empty or is larger than "max" bytes.
 */

ngx_int_t
ngx_http_cast_auth_read_file(ngx_conf_t *cf, ngx_str_t *name, size_t max,
    ngx_str_t *out)
{
    off_t            size;
    ssize_t          n;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = *name;
    file.log = cf->log;

    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%s\" failed", name->data);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_fd_info_n " \"%s\" failed", name->data);
        goto failed;
    }

    size = ngx_file_size(&fi);

    if (size <= 0 || size > (off_t) max) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "key file \"%s\" is empty or larger than %uzk",
                           name->data, max / 1024);
        goto failed;
    }

    out->data = ngx_pnalloc(cf->pool, (size_t) size);
    if (out->data == NULL) {
        goto failed;
    }

    n = ngx_read_file(&file, out->data, (size_t) size, 0);

    if (n != size) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "could not read \"%s\"", name->data);
        goto failed;
    }

    out->len = (size_t) size;

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", name->data);
    }

    return NGX_OK;

failed:

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%s\" failed", name->data);
    }

    return NGX_ERROR;
}


/* ------------------------------------------------------------------ */
/* requests                                                             */
/* ------------------------------------------------------------------ */


ngx_int_t
ngx_http_cast_auth_token(ngx_http_request_t *r, ngx_http_cast_grant_t **grant,
    ngx_int_t *rc)
{
    u_char                    *p, *end;
    ngx_str_t                  token;
    ngx_table_elt_t           *h;
    ngx_http_cast_grant_t     *g;
    ngx_http_cast_loc_conf_t  *clcf;

    *grant = NULL;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    if (clcf->auth == NGX_HTTP_CAST_AUTH_OFF) {
        return NGX_OK;
    }

    g = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_grant_t));
    if (g == NULL) {
        return NGX_ERROR;
    }

    if (clcf->auth == NGX_HTTP_CAST_AUTH_REQUEST) {
        if (ngx_http_cast_auth_vars(r, clcf, g, rc) != NGX_OK) {
            return NGX_DONE;
        }

        *grant = g;
        return NGX_OK;
    }

    /* RFC 6750 2.1: Authorization: Bearer <b64token> */

    h = r->headers_in.authorization;

    if (h == NULL) {
        return ngx_http_cast_auth_deny(r, NGX_HTTP_UNAUTHORIZED, NULL, NULL,
                                       NULL, "a bearer token is required",
                                       rc);
    }

    p = h->value.data;
    end = p + h->value.len;

    if (h->value.len < sizeof("Bearer ") - 1
        || ngx_strncasecmp(p, (u_char *) "Bearer ", sizeof("Bearer ") - 1)
           != 0)
    {
        return ngx_http_cast_auth_deny(r, NGX_HTTP_UNAUTHORIZED, NULL, NULL,
                                       NULL, "a bearer token is required "
                                       "(Authorization: Bearer ...)", rc);
    }

    p += sizeof("Bearer ") - 1;

    while (p < end && *p == ' ') {
        p++;
    }

    while (end > p && (end[-1] == ' ' || end[-1] == '\t')) {
        end--;
    }

    token.data = p;
    token.len = end - p;

    for ( /* void */ ; p < end; p++) {
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')
              || (*p >= '0' && *p <= '9') || *p == '-' || *p == '.'
              || *p == '_' || *p == '~' || *p == '+' || *p == '/'
              || *p == '='))
        {
            break;
        }
    }

    if (token.len == 0 || p != end) {
        return ngx_http_cast_auth_deny(r, NGX_HTTP_BAD_REQUEST,
                                       "invalid_request", NULL, NULL,
                                       "the Authorization header is not "
                                       "\"Bearer <token>\"", rc);
    }

    if (ngx_http_cast_auth_jwt(r, clcf, &token, g, rc) != NGX_OK) {
        return NGX_DONE;
    }

    *grant = g;

    return NGX_OK;
}


static ngx_int_t
ngx_http_cast_auth_jwt(ngx_http_request_t *r, ngx_http_cast_loc_conf_t *clcf,
    ngx_str_t *token, ngx_http_cast_grant_t *grant, ngx_int_t *rc)
{
    ngx_int_t                   n;
    const char                 *err;
    ngx_http_cast_jwt_t         jwt;
    ngx_http_cast_jwt_rules_t   rules;

    if (ngx_http_cast_jwt_decode(r->pool, token->data, token->len, &jwt,
                                 &err)
        != NGX_OK)
    {
        ngx_http_cast_auth_deny(r, NGX_HTTP_UNAUTHORIZED, "invalid_token",
                                NULL, NULL, err, rc);
        return NGX_DONE;
    }

    /* the signature first: nothing of a forged token is looked at */

    n = ngx_http_cast_jwt_verify(&jwt, clcf->auth_keys->elts,
                                 clcf->auth_keys->nelts);

    if (n != NGX_OK) {
        ngx_http_cast_jwt_free(&jwt);

        if (n == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "cast: the token's signature could not be "
                          "checked (OpenSSL failed)");
            *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DONE;
        }

        ngx_http_cast_auth_deny(r, NGX_HTTP_UNAUTHORIZED, "invalid_token",
                                NULL, NULL, "the token's signature does not "
                                "verify with any configured key", rc);
        return NGX_DONE;
    }

    rules.issuer = clcf->auth_issuer;
    rules.audience = clcf->auth_audience;
    rules.topic_claim = clcf->auth_topic_claim;
    rules.leeway = clcf->auth_leeway;
    rules.now = ngx_time();

    n = ngx_http_cast_jwt_claims(r->pool, &jwt, &rules, grant, &err);

    ngx_http_cast_jwt_free(&jwt);

    if (n == NGX_ERROR) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    if (n != NGX_OK) {
        ngx_http_cast_auth_deny(r, NGX_HTTP_UNAUTHORIZED, "invalid_token",
                                NULL, NULL, err, rc);
        return NGX_DONE;
    }

    ngx_log_debug0(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                   "cast auth: token accepted");

    return NGX_OK;
}


/* cast_auth request: what an earlier phase (auth_request) found */

static ngx_int_t
ngx_http_cast_auth_vars(ngx_http_request_t *r, ngx_http_cast_loc_conf_t *clcf,
    ngx_http_cast_grant_t *grant, ngx_int_t *rc)
{
    time_t     t;
    ngx_str_t  v;
    ngx_int_t  n;

    if (ngx_http_complex_value(r, clcf->auth_topic, &grant->topic)
        != NGX_OK
        || ngx_http_complex_value(r, clcf->auth_scope, &v) != NGX_OK)
    {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    n = ngx_http_cast_scopes_parse(r->pool, v.data, v.len, &grant->scopes);

    if (n == NGX_ERROR) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    if (n != NGX_OK) {
        return ngx_http_cast_auth_deny(r, NGX_HTTP_UNAUTHORIZED,
                                       "invalid_token", NULL, NULL,
                                       "the token holds more than 256 "
                                       "fhircast scopes", rc);
    }

    if (clcf->auth_subject
        && ngx_http_complex_value(r, clcf->auth_subject, &grant->subject)
           != NGX_OK)
    {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    if (clcf->auth_expires) {
        if (ngx_http_complex_value(r, clcf->auth_expires, &v) != NGX_OK) {
            *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
            return NGX_DONE;
        }

        if (v.len) {
            t = ngx_atotm(v.data, v.len);

            if (t == NGX_ERROR) {
                return ngx_http_cast_auth_deny(r, NGX_HTTP_UNAUTHORIZED,
                                               "invalid_token", NULL, NULL,
                                               "the token's expiry is not "
                                               "a time", rc);
            }

            if (t <= ngx_time()) {
                return ngx_http_cast_auth_deny(r, NGX_HTTP_UNAUTHORIZED,
                                               "invalid_token", NULL, NULL,
                                               "the token expired", rc);
            }

            grant->expires = t;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_cast_auth_topic(ngx_http_request_t *r, ngx_http_cast_grant_t *grant,
    ngx_str_t *topic, ngx_int_t *rc)
{
    if (grant == NULL) {
        return NGX_OK;
    }

    if (grant->topic.len == 0) {
        return ngx_http_cast_auth_deny(r, NGX_HTTP_FORBIDDEN,
                                       "insufficient_scope", NULL, grant,
                                       "the token is not bound to a topic",
                                       rc);
    }

    if (grant->topic.len != topic->len
        || ngx_memcmp(grant->topic.data, topic->data, topic->len) != 0)
    {
        return ngx_http_cast_auth_deny(r, NGX_HTTP_FORBIDDEN,
                                       "insufficient_scope", NULL, grant,
                                       "the token is for another topic", rc);
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_cast_auth_event(ngx_http_request_t *r, ngx_http_cast_grant_t *grant,
    ngx_str_t *event, ngx_uint_t mode, ngx_int_t *rc)
{
    u_char     *p;
    ngx_str_t   scope;

    if (grant == NULL
        || ngx_http_cast_scopes_allow(&grant->scopes, event, mode))
    {
        return NGX_OK;
    }

    /* the scope that would do: fhircast/<event>.write */

    scope.len = sizeof("fhircast/.write") - 1 + event->len;
    scope.data = ngx_pnalloc(r->pool, scope.len);
    if (scope.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(scope.data, "fhircast/", sizeof("fhircast/") - 1);
    p = ngx_cpymem(p, event->data, event->len);
    p = ngx_cpymem(p, mode == NGX_HTTP_CAST_SCOPE_WRITE ? ".write" : ".read",
                   mode == NGX_HTTP_CAST_SCOPE_WRITE ? 6 : 5);
    scope.len = p - scope.data;

    return ngx_http_cast_auth_deny(r, NGX_HTTP_FORBIDDEN,
                                   "insufficient_scope", &scope, grant,
                                   mode == NGX_HTTP_CAST_SCOPE_WRITE
                                   ? "the token may not publish this event"
                                   : "the token may not read this event",
                                   rc);
}


ngx_int_t
ngx_http_cast_auth_any(ngx_http_request_t *r, ngx_http_cast_grant_t *grant,
    ngx_uint_t mode, ngx_int_t *rc)
{
    ngx_str_t  scope;

    if (grant == NULL || ngx_http_cast_scopes_any(&grant->scopes, mode)) {
        return NGX_OK;
    }

    if (mode == NGX_HTTP_CAST_SCOPE_WRITE) {
        ngx_str_set(&scope, "fhircast/*.write");

    } else {
        ngx_str_set(&scope, "fhircast/*.read");
    }

    return ngx_http_cast_auth_deny(r, NGX_HTTP_FORBIDDEN,
                                   "insufficient_scope", &scope, grant,
                                   "the token has no fhircast scope for "
                                   "this", rc);
}


ngx_int_t
ngx_http_cast_auth_subscribe(ngx_http_request_t *r,
    ngx_http_cast_grant_t *grant, ngx_http_cast_events_t *events,
    ngx_str_t *granted, ngx_str_t *writable, time_t *lease, ngx_int_t *rc)
{
    u_char                 *p, *q, *end, *item;
    size_t                  size;
    time_t                  left;
    ngx_str_t               scope, star;
    ngx_uint_t              i;
    ngx_http_cast_scope_t  *s;

    if (grant == NULL) {
        return NGX_OK;
    }

    /* the token's end is the lease's end (FHIRcast: lease <= expiry) */

    if (grant->expires) {
        left = grant->expires - ngx_time();

        if (left < 1) {
            return ngx_http_cast_auth_deny(r, NGX_HTTP_UNAUTHORIZED,
                                           "invalid_token", NULL, NULL,
                                           "the token expired", rc);
        }

        if (*lease > left) {
            *lease = left;
        }
    }

    /* room for the names asked for, or for every readable scope's */

    size = events->text.len + 1;

    for (i = 0; i < grant->scopes.n; i++) {
        size += grant->scopes.scope[i].event.len + 1;
    }

    p = ngx_pnalloc(r->pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    granted->data = p;

    ngx_str_set(&star, "*");

    if (events->all && ngx_http_cast_scopes_allow(&grant->scopes, &star,
                                                  NGX_HTTP_CAST_SCOPE_READ))
    {
        *p++ = '*';

    } else if (events->all) {

        /* "*" asked for: the events the token may read, by name */

        for (i = 0; i < grant->scopes.n; i++) {
            s = &grant->scopes.scope[i];

            if (!s->read) {
                continue;
            }

            if (p != granted->data) {
                *p++ = ',';
            }

            p = ngx_cpymem(p, s->event.data, s->event.len);
        }

    } else {

        /* the names as asked for (events->text), in the order asked */

        item = events->text.data;
        end = events->text.data + events->text.len;

        for (i = 0; i < events->n; i++) {
            q = ngx_strlchr(item, end, ',');
            if (q == NULL) {
                q = end;
            }

            if (ngx_http_cast_scopes_allow(&grant->scopes, &events->names[i],
                                           NGX_HTTP_CAST_SCOPE_READ))
            {
                if (p != granted->data) {
                    *p++ = ',';
                }

                p = ngx_cpymem(p, item, q - item);
            }

            item = q + 1;
        }
    }

    granted->len = p - granted->data;

    if (granted->len == 0) {
        ngx_str_set(&scope, "fhircast/*.read");

        return ngx_http_cast_auth_deny(r, NGX_HTTP_FORBIDDEN,
                                       "insufficient_scope", &scope, grant,
                                       "the token may read none of the "
                                       "events asked for", rc);
    }

    if (ngx_http_cast_scopes_writable(r->pool, &grant->scopes, writable)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * 401 (or 400) with WWW-Authenticate, or 403 (insufficient_scope); the
 * JSON error body and the info log line are those of every refusal.
 */

static ngx_int_t
ngx_http_cast_auth_deny(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, ngx_str_t *scope, ngx_http_cast_grant_t *grant,
    const char *reason, ngx_int_t *rc)
{
    u_char     *p, *last, who[2 * NGX_HTTP_CAST_AUTH_MAX_WHO + 32];
    size_t      len;
    ngx_str_t   v, text;

    len = sizeof("Bearer realm=\"cast\", error=\"\", error_description=\"\", "
                 "scope=\"\"") - 1 + ngx_strlen(reason)
          + (error ? ngx_strlen(error) : 0) + (scope ? scope->len : 0);

    v.data = ngx_pnalloc(r->pool, len);
    if (v.data == NULL) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    last = v.data + len;

    p = ngx_cpymem(v.data, "Bearer realm=\"cast\"",
                   sizeof("Bearer realm=\"cast\"") - 1);

    /* RFC 6750 3.1: no error code when no token was sent */

    if (error) {
        p = ngx_slprintf(p, last, ", error=\"%s\"", error);

        text.data = (u_char *) reason;
        text.len = ngx_strlen(reason);

        p = ngx_cpymem(p, ", error_description=\"",
                       sizeof(", error_description=\"") - 1);
        p = ngx_http_cast_auth_quote(p, last, &text);
        *p++ = '"';

        if (scope) {
            p = ngx_cpymem(p, ", scope=\"", sizeof(", scope=\"") - 1);
            p = ngx_http_cast_auth_quote(p, last, scope);
            *p++ = '"';
        }
    }

    v.len = p - v.data;

    if (status != NGX_HTTP_BAD_REQUEST
        && ngx_http_cast_add_header(r, "WWW-Authenticate", &v) != NGX_OK)
    {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NGX_DONE;
    }

    if (grant) {
        p = ngx_http_cast_auth_who(who, sizeof(who), grant);

        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "cast: bearer token of %*s refused: %s",
                      (size_t) (p - who), who, reason);
    }

    *rc = ngx_http_cast_send_error(r, status, "%s", reason);

    return NGX_DONE;
}


/* sub "...", jti "..." with anything unprintable as "?" */

u_char *
ngx_http_cast_auth_who(u_char *buf, size_t size,
    ngx_http_cast_grant_t *grant)
{
    u_char     *p, *last;
    ngx_str_t   s;

    p = buf;
    last = buf + size;

    s = grant->subject;
    if (s.len > NGX_HTTP_CAST_AUTH_MAX_WHO) {
        s.len = NGX_HTTP_CAST_AUTH_MAX_WHO;
    }

    p = ngx_slprintf(p, last, "sub \"");
    p = ngx_http_cast_auth_quote(p, last - 16, &s);

    s = grant->id;
    if (s.len > NGX_HTTP_CAST_AUTH_MAX_WHO) {
        s.len = NGX_HTTP_CAST_AUTH_MAX_WHO;
    }

    p = ngx_slprintf(p, last, "\", jti \"");
    p = ngx_http_cast_auth_quote(p, last - 1, &s);
    p = ngx_slprintf(p, last, "\"");

    return p;
}


/* printable ASCII but '"' and '\', the rest as '?' (a header, a log) */

static u_char *
ngx_http_cast_auth_quote(u_char *p, u_char *last, ngx_str_t *s)
{
    size_t  i;

    for (i = 0; i < s->len && p < last; i++) {
        *p++ = (s->data[i] < 0x20 || s->data[i] >= 0x7f
                || s->data[i] == '"' || s->data[i] == '\\')
               ? '?' : s->data[i];
    }

    return p;
}
