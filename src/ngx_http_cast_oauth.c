
/*
 * ngx_http_cast_module: the token endpoints (see ngx_http_cast_oauth.h;
 * the rules are in README "Tokens").
 *
 *   POST /oauth/token      grant_type=client_credentials, or no grant
 *                          type and no code (G1): tokens for "USER-<n>"
 *                          (or the topic given), with "subscriber_name";
 *                          grant_type=authorization_code&code=... (G2):
 *                          the tokens of the code, once
 *   POST /oauth/authorize  client_product_name, user_name | id_token,
 *                          topic (G2): a code for that identity
 *
 * A code is itself a short-lived token signed with the key (typ "code",
 * 60 s), so that any worker of any host can check it; it is redeemed by
 * claiming its "jti" in the store (ngx_http_cast_hub_claim()): the first
 * claim wins everywhere.  "USER-<n>" numbers come from a counter of the
 * store (ngx_http_cast_hub_incr()): unique across workers and hosts in
 * Redis mode, per hub in local mode (one worker).
 *
 * These endpoints authenticate nobody: like the hubs they replace, they
 * give a token to whoever asks.  nginx's access control in front of them
 * (allow/deny, auth_basic, auth_request) decides who may ask.
 */


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_cast.h"
#include "ngx_http_cast_auth.h"
#include "ngx_http_cast_hub.h"
#include "ngx_http_cast_jwt.h"
#include "ngx_http_cast_oauth.h"
#include "ngx_http_cast_reply.h"
#include "ngx_http_cast_text.h"


/* a request body larger than this is refused (two tokens fit in it) */
#define NGX_HTTP_CAST_OAUTH_MAX_BODY   32768

/* a key file larger than this is refused */
#define NGX_HTTP_CAST_OAUTH_MAX_FILE   65536

/* a code is good this long (s), and its claim is held longer (s) */
#define NGX_HTTP_CAST_OAUTH_CODE_TTL   60
#define NGX_HTTP_CAST_OAUTH_CLAIM_KEEP 300

#define NGX_HTTP_CAST_OAUTH_MAX_NAME   256
#define NGX_HTTP_CAST_OAUTH_MAX_PRODUCT 64

#define NGX_HTTP_CAST_OAUTH_SCOPE                                            \
    "openid fhircast/*.read fhircast/*.write"

#define NGX_HTTP_CAST_OAUTH_SINGLE     "SINGLE-USER"
#define NGX_HTTP_CAST_OAUTH_COUNTER    "oauth:user"
#define NGX_HTTP_CAST_OAUTH_CLAIM      "oauth:code:"


typedef enum {
    NGX_HTTP_CAST_OAUTH_F_GRANT_TYPE = 0,
    NGX_HTTP_CAST_OAUTH_F_CODE,
    NGX_HTTP_CAST_OAUTH_F_PRODUCT,
    NGX_HTTP_CAST_OAUTH_F_USER_NAME,
    NGX_HTTP_CAST_OAUTH_F_ID_TOKEN,
    NGX_HTTP_CAST_OAUTH_F_TOPIC,
    NGX_HTTP_CAST_OAUTH_F_LAST
} ngx_http_cast_oauth_field_e;


/* what a request gets once the identity is known */
#define NGX_HTTP_CAST_OAUTH_ISSUE_CODE     0    /* authorize */
#define NGX_HTTP_CAST_OAUTH_ISSUE_G1       1    /* client_credentials */
#define NGX_HTTP_CAST_OAUTH_ISSUE_TOKENS   2    /* a code redeemed */


typedef struct {
    ngx_http_cast_form_field_t  f[NGX_HTTP_CAST_OAUTH_F_LAST];
    ngx_uint_t                  issue;
    ngx_str_t                   user_name;
    ngx_str_t                   topic;
    ngx_str_t                   jti;         /* of the code redeemed */
} ngx_http_cast_oauth_ctx_t;


static ngx_http_cast_form_field_t  ngx_http_cast_oauth_fields[] = {
    { ngx_string("grant_type"), 64, ngx_null_string, 0 },
    { ngx_string("code"), NGX_HTTP_CAST_JWT_MAX_LEN, ngx_null_string, 0 },
    { ngx_string("client_product_name"), NGX_HTTP_CAST_OAUTH_MAX_NAME,
      ngx_null_string, 0 },
    { ngx_string("user_name"), NGX_HTTP_CAST_OAUTH_MAX_NAME,
      ngx_null_string, 0 },
    { ngx_string("id_token"), NGX_HTTP_CAST_JWT_MAX_LEN, ngx_null_string,
      0 },
    { ngx_string("topic"), NGX_HTTP_CAST_MAX_TOPIC, ngx_null_string, 0 }
};


static ngx_str_t  ngx_http_cast_oauth_allow = ngx_string("POST, OPTIONS");


static void ngx_http_cast_oauth_key_cleanup(void *data);
static void ngx_http_cast_oauth_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_cast_oauth_request(ngx_http_request_t *r,
    ngx_str_t *body);
static ngx_int_t ngx_http_cast_oauth_token(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx);
static ngx_int_t ngx_http_cast_oauth_redeem(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx);
static ngx_int_t ngx_http_cast_oauth_claimed(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *data);
static ngx_int_t ngx_http_cast_oauth_identity(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx);
static ngx_int_t ngx_http_cast_oauth_counted(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *data);
static ngx_int_t ngx_http_cast_oauth_issue(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx);
static ngx_int_t ngx_http_cast_oauth_tokens(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx);
static ngx_int_t ngx_http_cast_oauth_code(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx);
static json_t *ngx_http_cast_oauth_claims(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx, const char *typ, time_t ttl,
    ngx_str_t *subscriber, ngx_str_t *jti);
static ngx_int_t ngx_http_cast_oauth_verify(ngx_http_request_t *r,
    ngx_str_t *token, const char *typ, ngx_uint_t expiry, json_t **claims,
    const char **err);
static ngx_int_t ngx_http_cast_oauth_claim_str(ngx_pool_t *pool,
    json_t *claims, const char *name, size_t max, ngx_str_t *out);
static ngx_int_t ngx_http_cast_oauth_subscriber(ngx_http_request_t *r,
    ngx_str_t *product, ngx_str_t *out);
static ngx_int_t ngx_http_cast_oauth_send(ngx_http_request_t *r,
    json_t *body);
static ngx_int_t ngx_http_cast_oauth_send_status(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body);
static ngx_int_t ngx_http_cast_oauth_error(ngx_http_request_t *r,
    ngx_uint_t status, const char *error, const char *fmt, ...);
static ngx_int_t ngx_http_cast_oauth_failure(ngx_http_request_t *r,
    ngx_uint_t rc);


/* ------------------------------------------------------------------ */
/* configuration                                                        */
/* ------------------------------------------------------------------ */


ngx_http_cast_oauth_conf_t *
ngx_http_cast_oauth_create_conf(ngx_conf_t *cf)
{
    ngx_http_cast_oauth_conf_t  *oc;

    oc = ngx_pcalloc(cf->pool, sizeof(ngx_http_cast_oauth_conf_t));
    if (oc == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     oc->mode = NGX_HTTP_CAST_OAUTH_OFF;
     *     oc->key = NULL;
     *     oc->issuer = { 0, NULL };
     */

    oc->single_user = NGX_CONF_UNSET;
    oc->ttl = NGX_CONF_UNSET;

    return oc;
}


char *
ngx_http_cast_oauth_merge_conf(ngx_conf_t *cf,
    ngx_http_cast_oauth_conf_t *prev, ngx_http_cast_oauth_conf_t *conf)
{
    if (conf->key == NULL) {
        conf->key = prev->key;
    }

    ngx_conf_merge_value(conf->single_user, prev->single_user, 0);
    ngx_conf_merge_sec_value(conf->ttl, prev->ttl, 3600);
    ngx_conf_merge_str_value(conf->issuer, prev->issuer, "cast-hub");

    if (conf->mode != NGX_HTTP_CAST_OAUTH_OFF && conf->key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"cast_oauth\" needs a signing key: "
                           "\"cast_oauth_key <file>\" (there is no "
                           "default key)");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* cast_oauth token | authorize | off */

char *
ngx_http_cast_oauth_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf, ngx_uint_t *on)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    ngx_str_t                   *value;
    ngx_http_cast_oauth_conf_t  *oc;

    oc = clcf->oauth;
    value = cf->args->elts;

    if (oc->mode != NGX_HTTP_CAST_OAUTH_OFF) {
        return "is duplicate";
    }

    if (ngx_strcmp(value[1].data, "token") == 0) {
        oc->mode = NGX_HTTP_CAST_OAUTH_TOKEN;

    } else if (ngx_strcmp(value[1].data, "authorize") == 0) {
        oc->mode = NGX_HTTP_CAST_OAUTH_AUTHORIZE;

    } else if (ngx_strcmp(value[1].data, "off") != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid value \"%V\": expected token, "
                           "authorize or off", &value[1]);
        return NGX_CONF_ERROR;
    }

    *on = (oc->mode != NGX_HTTP_CAST_OAUTH_OFF);

    return NGX_CONF_OK;
}


/* cast_oauth_key <file> [kid=<id>]: the HS256 secret, read now */

char *
ngx_http_cast_oauth_key_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    const char                  *err;
    ngx_int_t                    rc;
    ngx_str_t                   *value, text, kid;
    ngx_pool_cleanup_t          *cln;
    ngx_http_cast_jwk_t         *key;
    ngx_http_cast_oauth_conf_t  *oc;

    oc = clcf->oauth;

    if (oc->key) {
        return "is duplicate";
    }

    value = cf->args->elts;

    /* as cast_auth_secret reads it: a final line break is not the key */

    if (ngx_http_cast_auth_secret_file(cf, NGX_HTTP_CAST_OAUTH_MAX_FILE,
                                       &text, &kid)
        != NGX_OK)
    {
        return NGX_CONF_ERROR;
    }

    key = ngx_pcalloc(cf->pool, sizeof(ngx_http_cast_jwk_t));
    if (key == NULL) {
        return NGX_CONF_ERROR;
    }

    rc = ngx_http_cast_jwk_secret(cf->pool, text.data, text.len,
                                  kid.len ? &kid : NULL, key, &err);

    ngx_explicit_memzero(text.data, text.len);

    if (rc != NGX_OK) {
        if (rc == NGX_DECLINED) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid key \"%V\": %s", &value[1], err);
        }

        return NGX_CONF_ERROR;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_http_cast_jwk_free(key);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_cast_oauth_key_cleanup;
    cln->data = key;

    oc->key = key;

    return NGX_CONF_OK;
}


static void
ngx_http_cast_oauth_key_cleanup(void *data)
{
    ngx_http_cast_jwk_free(data);
}


char *
ngx_http_cast_oauth_single_user_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    return ngx_conf_set_flag_slot(cf, cmd, clcf->oauth);
}


/* cast_oauth_token_ttl: 1s to 1d */

char *
ngx_http_cast_oauth_ttl_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    time_t                       t;
    ngx_str_t                   *value;
    ngx_http_cast_oauth_conf_t  *oc;

    oc = clcf->oauth;

    if (oc->ttl != NGX_CONF_UNSET) {
        return "is duplicate";
    }

    value = cf->args->elts;

    t = ngx_parse_time(&value[1], 1);

    if (t == (time_t) NGX_ERROR || t < 1 || t > 86400) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"cast_oauth_token_ttl\" \"%V\": a time "
                           "from 1s to 1d", &value[1]);
        return NGX_CONF_ERROR;
    }

    oc->ttl = t;

    return NGX_CONF_OK;
}


char *
ngx_http_cast_oauth_issuer_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_cast_loc_conf_t *clcf = conf;

    ngx_str_t                   *value;
    ngx_http_cast_oauth_conf_t  *oc;

    oc = clcf->oauth;

    if (oc->issuer.data) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (ngx_http_cast_text_field(value[1].data, value[1].len,
                                 NGX_HTTP_CAST_OAUTH_MAX_NAME, 0)
        != NGX_HTTP_CAST_TEXT_OK
        || value[1].len == 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid \"cast_oauth_issuer\" \"%V\": 1 to 256 "
                           "bytes of UTF-8 without control characters",
                           &value[1]);
        return NGX_CONF_ERROR;
    }

    oc->issuer = value[1];

    return NGX_CONF_OK;
}


/* ------------------------------------------------------------------ */
/* requests                                                             */
/* ------------------------------------------------------------------ */


ngx_int_t
ngx_http_cast_oauth_handler(ngx_http_request_t *r)
{
    ngx_int_t                   rc;
    ngx_http_cast_main_conf_t  *cmcf;

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cast_module);

    if (cmcf->hub == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (r->method == NGX_HTTP_OPTIONS) {
        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_cast_send_preflight(r, &ngx_http_cast_oauth_allow);
    }

    if (r->method != NGX_HTTP_POST) {
        (void) ngx_http_discard_request_body(r);

        if (ngx_http_cast_add_header(r, "Allow", &ngx_http_cast_oauth_allow)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_cast_oauth_error(r, NGX_HTTP_NOT_ALLOWED,
                                         "invalid_request",
                                         "method %V is not allowed here "
                                         "(POST)", &r->method_name);
    }

    if (r->headers_in.content_length_n > NGX_HTTP_CAST_OAUTH_MAX_BODY) {
        (void) ngx_http_discard_request_body(r);

        return ngx_http_cast_oauth_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                         "invalid_request",
                                         "the request body exceeds %d "
                                         "bytes", NGX_HTTP_CAST_OAUTH_MAX_BODY);
    }

    rc = ngx_http_read_client_request_body(r,
                                           ngx_http_cast_oauth_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_cast_oauth_body_handler(ngx_http_request_t *r)
{
    ngx_int_t  rc;
    ngx_str_t  body;

    rc = ngx_http_cast_read_body(r, NGX_HTTP_CAST_OAUTH_MAX_BODY, &body);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_cast_oauth_error(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE,
                                       "invalid_request",
                                       "the request body exceeds %d bytes",
                                       NGX_HTTP_CAST_OAUTH_MAX_BODY);

    } else if (rc == NGX_OK) {
        rc = ngx_http_cast_oauth_request(r, &body);
    }

    /* NGX_DONE: a hub operation holds the request and finalizes it */

    ngx_http_finalize_request(r, rc);
}


/*
 * The body in one piece, from memory buffers or the temp file;
 * NGX_DECLINED when it is larger than NGX_HTTP_CAST_OAUTH_MAX_BODY (a
 * chunked body has no Content-Length to refuse it early).
 */

/* the form (query string and body, as G1 and G2 merge them) */

static ngx_int_t
ngx_http_cast_oauth_request(ngx_http_request_t *r, ngx_str_t *body)
{
    u_char                      *p, *end;
    ngx_int_t                    rc;
    ngx_str_t                    err, type;
    ngx_http_cast_oauth_ctx_t   *ctx;
    ngx_http_cast_loc_conf_t    *clcf;

    if (r->headers_in.content_type) {
        type = r->headers_in.content_type->value;

        p = type.data;
        end = type.data + type.len;

        while (p < end && *p != ';' && *p != ' ' && *p != '\t') {
            p++;
        }

        type.len = p - type.data;

        if (type.len != sizeof("application/x-www-form-urlencoded") - 1
            || ngx_strncasecmp(type.data,
                               (u_char *) "application/x-www-form-urlencoded",
                               type.len)
               != 0)
        {
            return ngx_http_cast_oauth_error(r,
                                         NGX_HTTP_UNSUPPORTED_MEDIA_TYPE,
                                         "invalid_request",
                                         "the request is a form: "
                                         "Content-Type: "
                                         "application/x-www-form-urlencoded");
        }
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_cast_oauth_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_memcpy(ctx->f, ngx_http_cast_oauth_fields, sizeof(ctx->f));

    ngx_str_null(&err);

    rc = ngx_http_cast_form_fields(r->pool, r->args.data, r->args.len,
                                   ctx->f, NGX_HTTP_CAST_OAUTH_F_LAST, &err);

    if (rc == NGX_OK) {
        rc = ngx_http_cast_form_fields(r->pool, body->data, body->len,
                                       ctx->f, NGX_HTTP_CAST_OAUTH_F_LAST,
                                       &err);
    }

    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_cast_oauth_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request", "%V", &err);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    if (clcf->oauth->mode == NGX_HTTP_CAST_OAUTH_AUTHORIZE) {
        ctx->issue = NGX_HTTP_CAST_OAUTH_ISSUE_CODE;
        return ngx_http_cast_oauth_identity(r, ctx);
    }

    return ngx_http_cast_oauth_token(r, ctx);
}


/* POST /oauth/token: which grant */

static ngx_int_t
ngx_http_cast_oauth_token(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx)
{
    ngx_str_t  *grant, *code;

    static ngx_str_t  authorization_code = ngx_string("authorization_code");
    static ngx_str_t  client_credentials = ngx_string("client_credentials");

    grant = &ctx->f[NGX_HTTP_CAST_OAUTH_F_GRANT_TYPE].value;
    code = &ctx->f[NGX_HTTP_CAST_OAUTH_F_CODE].value;

    if ((grant->len == authorization_code.len
         && ngx_strncmp(grant->data, authorization_code.data,
                        grant->len) == 0)
        || (grant->len == 0 && ctx->f[NGX_HTTP_CAST_OAUTH_F_CODE].set))
    {
        if (code->len == 0) {
            return ngx_http_cast_oauth_error(r, NGX_HTTP_BAD_REQUEST,
                                             "invalid_request",
                                             "missing \"code\" (POST "
                                             "/oauth/authorize gives one)");
        }

        ctx->issue = NGX_HTTP_CAST_OAUTH_ISSUE_TOKENS;
        return ngx_http_cast_oauth_redeem(r, ctx);
    }

    if (grant->len == 0
        || (grant->len == client_credentials.len
            && ngx_strncmp(grant->data, client_credentials.data,
                           grant->len) == 0))
    {
        ctx->issue = NGX_HTTP_CAST_OAUTH_ISSUE_G1;
        return ngx_http_cast_oauth_identity(r, ctx);
    }

    return ngx_http_cast_oauth_error(r, NGX_HTTP_BAD_REQUEST,
                                     "unsupported_grant_type",
                                     "grant_type \"%V\" is not supported: "
                                     "authorization_code or "
                                     "client_credentials", grant);
}


/*
 * A code: checked here (any worker, any host can), then claimed in the
 * store; only the first claim gets the tokens.
 */

static ngx_int_t
ngx_http_cast_oauth_redeem(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx)
{
    u_char                      *p;
    double                       left;
    json_t                      *claims;
    ngx_int_t                    rc;
    ngx_str_t                    key;
    ngx_msec_t                   ttl;
    const char                  *err;
    ngx_http_cast_wait_t        *w;
    ngx_http_cast_main_conf_t   *cmcf;

    rc = ngx_http_cast_oauth_verify(r,
                                    &ctx->f[NGX_HTTP_CAST_OAUTH_F_CODE].value,
                                    "code", 1, &claims, &err);
    if (rc == NGX_ERROR) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK) {
        return ngx_http_cast_oauth_error(r, NGX_HTTP_UNAUTHORIZED,
                                         "invalid_grant",
                                         "the code is not valid: %s", err);
    }

    rc = ngx_http_cast_oauth_claim_str(r->pool, claims, "jti",
                                       NGX_HTTP_CAST_ID_LEN, &ctx->jti);

    if (rc == NGX_OK) {
        rc = ngx_http_cast_oauth_claim_str(r->pool, claims, "user_name",
                                           NGX_HTTP_CAST_OAUTH_MAX_NAME,
                                           &ctx->user_name);
    }

    if (rc == NGX_OK) {
        rc = ngx_http_cast_oauth_claim_str(r->pool, claims, "topic",
                                           NGX_HTTP_CAST_MAX_TOPIC,
                                           &ctx->topic);
    }

    if (rc == NGX_ERROR) {
        json_decref(claims);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_OK || ctx->jti.len != NGX_HTTP_CAST_ID_LEN
        || ngx_http_cast_text_topic(ctx->topic.data, ctx->topic.len,
                                    NGX_HTTP_CAST_MAX_TOPIC)
           != NGX_HTTP_CAST_TEXT_OK
        || (ctx->topic.len == 1 && ctx->topic.data[0] == '*'))
    {
        rc = NGX_DECLINED;
        err = "its claims are not those of a code";
        goto done;
    }

    /*
     * The claim is held past the code's end, with room for clock skew;
     * no code of ours lives longer than NGX_HTTP_CAST_OAUTH_CODE_TTL.
     */

    left = json_number_value(json_object_get(claims, "exp"))
           - (double) ngx_time();

    if (left > NGX_HTTP_CAST_OAUTH_CODE_TTL + NGX_HTTP_CAST_OAUTH_CLAIM_KEEP)
    {
        rc = NGX_DECLINED;
        err = "it lives longer than a code does";
        goto done;
    }

    ttl = (ngx_msec_t) ((left + NGX_HTTP_CAST_OAUTH_CLAIM_KEEP) * 1000);

    rc = NGX_OK;

done:

    json_decref(claims);

    if (rc != NGX_OK) {
        return ngx_http_cast_oauth_error(r, NGX_HTTP_UNAUTHORIZED,
                                         "invalid_grant",
                                         "the code is not valid: %s", err);
    }

    key.len = sizeof(NGX_HTTP_CAST_OAUTH_CLAIM) - 1 + ctx->jti.len;
    key.data = ngx_pnalloc(r->pool, key.len);
    if (key.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_cpymem(key.data, NGX_HTTP_CAST_OAUTH_CLAIM,
                   sizeof(NGX_HTTP_CAST_OAUTH_CLAIM) - 1);
    ngx_memcpy(p, ctx->jti.data, ctx->jti.len);

    w = ngx_http_cast_wait(r, ngx_http_cast_oauth_claimed, ctx);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cast_module);

    ngx_http_cast_hub_claim(cmcf->hub, &key, ttl, ngx_http_cast_wait_done, w);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_cast_oauth_claimed(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *data)
{
    ngx_http_cast_oauth_ctx_t *ctx = data;

    if (res->rc == NGX_HTTP_CAST_CLAIMED) {
        return ngx_http_cast_oauth_error(r, NGX_HTTP_UNAUTHORIZED,
                                         "invalid_grant",
                                         "the code was used already "
                                         "(code %*s...)", (size_t) 8,
                                         ctx->jti.data);
    }

    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_oauth_failure(r, res->rc);
    }

    return ngx_http_cast_oauth_tokens(r, ctx);
}


/*
 * Who the tokens or the code are for (G2's order): the claims of an
 * id_token this hub issued (expired or not), else "user_name", else
 * "USER-<n>" from the store's counter; "topic" overrides the topic
 * (the identity otherwise); single-user mode makes both "SINGLE-USER".
 */

static ngx_int_t
ngx_http_cast_oauth_identity(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx)
{
    json_t                      *claims;
    ngx_int_t                    rc;
    ngx_str_t                   *id_token, counter;
    const char                  *err;
    ngx_http_cast_wait_t        *w;
    ngx_http_cast_loc_conf_t    *clcf;
    ngx_http_cast_main_conf_t   *cmcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    if (clcf->oauth->single_user) {
        ngx_str_set(&ctx->user_name, NGX_HTTP_CAST_OAUTH_SINGLE);
        ngx_str_set(&ctx->topic, NGX_HTTP_CAST_OAUTH_SINGLE);
        return ngx_http_cast_oauth_issue(r, ctx);
    }

    id_token = &ctx->f[NGX_HTTP_CAST_OAUTH_F_ID_TOKEN].value;

    if (id_token->len) {
        rc = ngx_http_cast_oauth_verify(r, id_token, "id", 0, &claims, &err);

        if (rc == NGX_ERROR) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (rc == NGX_OK) {
            rc = ngx_http_cast_oauth_claim_str(r->pool, claims, "user_name",
                                               NGX_HTTP_CAST_OAUTH_MAX_NAME,
                                               &ctx->user_name);
            if (rc == NGX_OK) {
                rc = ngx_http_cast_oauth_claim_str(r->pool, claims, "topic",
                                                   NGX_HTTP_CAST_MAX_TOPIC,
                                                   &ctx->topic);
            }

            json_decref(claims);

            if (rc == NGX_ERROR) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            err = "its claims are not those of an id_token";
        }

        if (rc != NGX_OK) {
            return ngx_http_cast_oauth_error(r, NGX_HTTP_UNAUTHORIZED,
                                             "invalid_token",
                                             "the id_token is not valid: %s",
                                             err);
        }

    } else if (ctx->f[NGX_HTTP_CAST_OAUTH_F_USER_NAME].value.len) {
        ctx->user_name = ctx->f[NGX_HTTP_CAST_OAUTH_F_USER_NAME].value;
    }

    if (ctx->f[NGX_HTTP_CAST_OAUTH_F_TOPIC].value.len) {
        ctx->topic = ctx->f[NGX_HTTP_CAST_OAUTH_F_TOPIC].value;
    }

    if (ctx->user_name.len) {
        return ngx_http_cast_oauth_issue(r, ctx);
    }

    /* USER-<n>: one counter for every worker and host (Redis: INCR) */

    w = ngx_http_cast_wait(r, ngx_http_cast_oauth_counted, ctx);
    if (w == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cmcf = ngx_http_get_module_main_conf(r, ngx_http_cast_module);

    ngx_str_set(&counter, NGX_HTTP_CAST_OAUTH_COUNTER);

    ngx_http_cast_hub_incr(cmcf->hub, &counter, ngx_http_cast_wait_done, w);

    return NGX_DONE;
}


static ngx_int_t
ngx_http_cast_oauth_counted(ngx_http_request_t *r,
    ngx_http_cast_result_t *res, void *data)
{
    ngx_http_cast_oauth_ctx_t *ctx = data;

    u_char  *p;

    if (res->rc != NGX_HTTP_CAST_DONE) {
        return ngx_http_cast_oauth_failure(r, res->rc);
    }

    p = ngx_pnalloc(r->pool, sizeof("USER-") - 1 + NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->user_name.data = p;
    ctx->user_name.len = ngx_sprintf(p, "USER-%uL", res->value) - p;

    return ngx_http_cast_oauth_issue(r, ctx);
}


/* the identity is known: the topic checked, then the code or the tokens */

static ngx_int_t
ngx_http_cast_oauth_issue(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx)
{
    ngx_uint_t  rc;

    if (ctx->topic.len == 0) {
        ctx->topic = ctx->user_name;
    }

    rc = ngx_http_cast_text_topic(ctx->topic.data, ctx->topic.len,
                                  NGX_HTTP_CAST_MAX_TOPIC);

    if (rc != NGX_HTTP_CAST_TEXT_OK) {
        return ngx_http_cast_oauth_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request",
                                         "the topic (\"topic\", else the "
                                         "user name) %s",
                                         ngx_http_cast_text_reason(rc));
    }

    /* a token for "*" would be a token for every topic */

    if (ctx->topic.len == 1 && ctx->topic.data[0] == '*') {
        return ngx_http_cast_oauth_error(r, NGX_HTTP_BAD_REQUEST,
                                         "invalid_request",
                                         "the topic \"*\" is not a topic a "
                                         "token can be for");
    }

    if (ctx->issue == NGX_HTTP_CAST_OAUTH_ISSUE_CODE) {
        return ngx_http_cast_oauth_code(r, ctx);
    }

    return ngx_http_cast_oauth_tokens(r, ctx);
}


/* 200 {"token_type":"Bearer", ..., "access_token", "id_token"} */

static ngx_int_t
ngx_http_cast_oauth_tokens(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx)
{
    json_t                      *body, *access, *id;
    ngx_int_t                    rc;
    ngx_str_t                    subscriber, at, it, jti, *sub;
    ngx_http_cast_loc_conf_t    *clcf;
    ngx_http_cast_oauth_conf_t  *oc;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);
    oc = clcf->oauth;

    sub = NULL;

    if (ctx->issue == NGX_HTTP_CAST_OAUTH_ISSUE_G1) {
        if (ngx_http_cast_oauth_subscriber(r,
                               &ctx->f[NGX_HTTP_CAST_OAUTH_F_PRODUCT].value,
                               &subscriber)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        sub = &subscriber;
    }

    access = ngx_http_cast_oauth_claims(r, ctx, "access", oc->ttl, sub, &jti);
    id = ngx_http_cast_oauth_claims(r, ctx, "id", oc->ttl, sub, NULL);

    rc = NGX_ERROR;

    if (access && id
        && ngx_http_cast_jwt_sign(r->pool, oc->key, access, &at) == NGX_OK
        && ngx_http_cast_jwt_sign(r->pool, oc->key, id, &it) == NGX_OK)
    {
        rc = NGX_OK;
    }

    json_decref(access);
    json_decref(id);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cast: oauth: the tokens could not be signed");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = json_pack("{s:s,s:I,s:s,s:s%,s:s%,s:s%,s:s%}",
                     "token_type", "Bearer",
                     "expires_in", (json_int_t) oc->ttl,
                     "scope", NGX_HTTP_CAST_OAUTH_SCOPE,
                     "topic", ctx->topic.data, ctx->topic.len,
                     "id_token", it.data, it.len,
                     "access_token", at.data, at.len,
                     "user_name", ctx->user_name.data, ctx->user_name.len);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (sub
        && json_object_set_new(body, "subscriber_name",
                               json_stringn((char *) sub->data, sub->len))
           != 0)
    {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "cast: oauth: tokens for \"%V\" on topic \"%V\" issued "
                  "(%s, jti %*s...)", &ctx->user_name, &ctx->topic,
                  sub ? "client_credentials" : "authorization_code",
                  (size_t) 8, jti.data);

    return ngx_http_cast_oauth_send(r, body);
}


/* 200 {"user_name", "code", "expires_in"} */

static ngx_int_t
ngx_http_cast_oauth_code(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx)
{
    json_t                      *claims, *body;
    ngx_int_t                    rc;
    ngx_str_t                    code, jti;
    ngx_http_cast_loc_conf_t    *clcf;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);

    claims = ngx_http_cast_oauth_claims(r, ctx, "code",
                                        NGX_HTTP_CAST_OAUTH_CODE_TTL, NULL,
                                        &jti);
    if (claims == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    rc = ngx_http_cast_jwt_sign(r->pool, clcf->oauth->key, claims, &code);
    json_decref(claims);

    if (rc != NGX_OK) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "cast: oauth: the code could not be signed");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    body = json_pack("{s:s%,s:s%,s:i}",
                     "user_name", ctx->user_name.data, ctx->user_name.len,
                     "code", code.data, code.len,
                     "expires_in", NGX_HTTP_CAST_OAUTH_CODE_TTL);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "cast: oauth: a code for \"%V\" on topic \"%V\" issued "
                  "(jti %*s...)", &ctx->user_name, &ctx->topic, (size_t) 8,
                  jti.data);

    return ngx_http_cast_oauth_send(r, body);
}


/*
 * The claims of a token ("access", "id") or a code.  An access token
 * carries the FHIRcast scopes and "hub.topic" (cast_auth's default topic
 * claim) as well as "topic" (what the Cast clients read); an id_token
 * and a code carry neither, so neither is a bearer token for cast_auth.
 */

static json_t *
ngx_http_cast_oauth_claims(ngx_http_request_t *r,
    ngx_http_cast_oauth_ctx_t *ctx, const char *typ, time_t ttl,
    ngx_str_t *subscriber, ngx_str_t *jti)
{
    u_char                      *id, rnd[NGX_HTTP_CAST_ID_LEN / 2];
    json_t                      *c;
    time_t                       now;
    ngx_http_cast_loc_conf_t    *clcf;
    ngx_http_cast_oauth_conf_t  *oc;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);
    oc = clcf->oauth;

    id = ngx_pnalloc(r->pool, NGX_HTTP_CAST_ID_LEN);
    if (id == NULL || ngx_http_cast_random(rnd, sizeof(rnd)) != NGX_OK) {
        return NULL;
    }

    ngx_hex_dump(id, rnd, sizeof(rnd));

    if (jti) {
        jti->data = id;
        jti->len = NGX_HTTP_CAST_ID_LEN;
    }

    now = ngx_time();

    c = json_pack("{s:s%,s:s%,s:s%,s:I,s:I,s:I,s:s%,s:s,s:s%,s:s%}",
                  "iss", oc->issuer.data, oc->issuer.len,
                  "aud", oc->issuer.data, oc->issuer.len,
                  "sub", ctx->user_name.data, ctx->user_name.len,
                  "iat", (json_int_t) now,
                  "nbf", (json_int_t) now,
                  "exp", (json_int_t) (now + ttl),
                  "jti", id, (size_t) NGX_HTTP_CAST_ID_LEN,
                  "typ", typ,
                  "topic", ctx->topic.data, ctx->topic.len,
                  "user_name", ctx->user_name.data, ctx->user_name.len);
    if (c == NULL) {
        return NULL;
    }

    if (subscriber
        && json_object_set_new(c, "subscriber_name",
                               json_stringn((char *) subscriber->data,
                                            subscriber->len))
           != 0)
    {
        json_decref(c);
        return NULL;
    }

    if (typ[0] == 'a'
        && (json_object_set_new(c, "hub.topic",
                                json_stringn((char *) ctx->topic.data,
                                             ctx->topic.len))
            != 0
            || json_object_set_new(c, "scope",
                                   json_string(NGX_HTTP_CAST_OAUTH_SCOPE))
               != 0))
    {
        json_decref(c);
        return NULL;
    }

    return c;
}


/*
 * A token this hub signed, of this "typ", from this issuer; "expiry":
 * its "exp" must be ahead (an id_token may have expired: G2 takes it so).
 * NGX_OK with *claims (the caller releases them); NGX_DECLINED with
 * *err.
 */

static ngx_int_t
ngx_http_cast_oauth_verify(ngx_http_request_t *r, ngx_str_t *token,
    const char *typ, ngx_uint_t expiry, json_t **claims, const char **err)
{
    json_t                      *c, *v;
    ngx_int_t                    rc;
    ngx_http_cast_jwt_t          jwt;
    ngx_http_cast_loc_conf_t    *clcf;
    ngx_http_cast_oauth_conf_t  *oc;

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_cast_module);
    oc = clcf->oauth;

    rc = ngx_http_cast_jwt_decode(r->pool, token->data, token->len, &jwt,
                                  err);
    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_cast_jwt_verify(&jwt, oc->key, 1);

    if (rc != NGX_OK) {
        ngx_http_cast_jwt_free(&jwt);

        if (rc == NGX_ERROR) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "cast: oauth: a signature could not be checked "
                          "(OpenSSL failed)");
            return NGX_ERROR;
        }

        *err = "its signature is not this hub's";
        return NGX_DECLINED;
    }

    c = jwt.claims;

    v = json_object_get(c, "typ");

    if (!json_is_string(v) || json_string_length(v) != ngx_strlen(typ)
        || ngx_strcmp(json_string_value(v), typ) != 0)
    {
        *err = "it is another kind of token";
        goto declined;
    }

    v = json_object_get(c, "iss");

    if (!json_is_string(v) || json_string_length(v) != oc->issuer.len
        || ngx_memcmp(json_string_value(v), oc->issuer.data, oc->issuer.len)
           != 0)
    {
        *err = "it is from another issuer";
        goto declined;
    }

    v = json_object_get(c, "exp");

    if (!json_is_number(v)) {
        *err = "it has no \"exp\"";
        goto declined;
    }

    if (expiry && json_number_value(v) <= (double) ngx_time()) {
        *err = "it expired";
        goto declined;
    }

    *claims = c;

    return NGX_OK;

declined:

    ngx_http_cast_jwt_free(&jwt);

    return NGX_DECLINED;
}


/* a string claim of 1 to max bytes without control characters, copied */

static ngx_int_t
ngx_http_cast_oauth_claim_str(ngx_pool_t *pool, json_t *claims,
    const char *name, size_t max, ngx_str_t *out)
{
    size_t   len;
    json_t  *v;

    v = json_object_get(claims, name);

    if (!json_is_string(v)) {
        return NGX_DECLINED;
    }

    len = json_string_length(v);

    if (len == 0
        || ngx_http_cast_text_field((u_char *) json_string_value(v), len,
                                    max, 0)
           != NGX_HTTP_CAST_TEXT_OK)
    {
        return NGX_DECLINED;
    }

    out->data = ngx_pnalloc(pool, len);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, json_string_value(v), len);
    out->len = len;

    return NGX_OK;
}


/* G1: "<client_product_name as [A-Za-z0-9-]>-<6 of A-Z 0-9>" */

static ngx_int_t
ngx_http_cast_oauth_subscriber(ngx_http_request_t *r, ngx_str_t *product,
    ngx_str_t *out)
{
    u_char      *p, rnd[32];
    size_t       i, n;
    ngx_uint_t   k;

    static u_char  alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

    p = ngx_pnalloc(r->pool, NGX_HTTP_CAST_OAUTH_MAX_PRODUCT + 7);
    if (p == NULL) {
        return NGX_ERROR;
    }

    out->data = p;
    n = 0;

    for (i = 0; i < product->len && n < NGX_HTTP_CAST_OAUTH_MAX_PRODUCT; i++)
    {
        if ((product->data[i] >= 'A' && product->data[i] <= 'Z')
            || (product->data[i] >= 'a' && product->data[i] <= 'z')
            || (product->data[i] >= '0' && product->data[i] <= '9')
            || product->data[i] == '-')
        {
            p[n++] = product->data[i];
        }
    }

    if (n == 0) {
        n = ngx_cpymem(p, "CLIENT", 6) - p;
    }

    p[n++] = '-';

    /* unbiased: bytes past the last multiple of 36 are skipped */

    if (ngx_http_cast_random(rnd, sizeof(rnd)) != NGX_OK) {
        return NGX_ERROR;
    }

    for (i = 0, k = 0; k < 6; i++) {
        if (i == sizeof(rnd)) {
            if (ngx_http_cast_random(rnd, sizeof(rnd)) != NGX_OK) {
                return NGX_ERROR;
            }

            i = 0;
        }

        if (rnd[i] < 252) {
            p[n++] = alphabet[rnd[i] % 36];
            k++;
        }
    }

    out->len = n;

    return NGX_OK;
}


/* a token response is not cached (RFC 6749 5.1); the body is released */

static ngx_int_t
ngx_http_cast_oauth_send_status(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    ngx_str_t  v;

    ngx_str_set(&v, "no-store");

    if (ngx_http_cast_add_header(r, "Cache-Control", &v) != NGX_OK) {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_str_set(&v, "no-cache");

    if (ngx_http_cast_add_header(r, "Pragma", &v) != NGX_OK) {
        json_decref(body);
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_send_json_new(r, status, body);
}


static ngx_int_t
ngx_http_cast_oauth_send(ngx_http_request_t *r, json_t *body)
{
    return ngx_http_cast_oauth_send_status(r, NGX_HTTP_OK, body);
}


/*
 * {"error":"<OAuth error code>","error_description":"..."} (RFC 6749
 * 5.2): the module's {"error": ...} shape with the OAuth code in it; a
 * log line at info, like every client error.
 */

static ngx_int_t
ngx_http_cast_oauth_error(ngx_http_request_t *r, ngx_uint_t status,
    const char *error, const char *fmt, ...)
{
    u_char    msg[512], *last;
    json_t   *body, *desc;
    va_list   args;

    va_start(args, fmt);
    last = ngx_vslprintf(msg, msg + sizeof(msg), fmt, args);
    va_end(args);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "cast: oauth: %ui %s: %*s", status, error,
                  (size_t) (last - msg), msg);

    /* the message may quote client bytes: invalid UTF-8 is cut off */

    desc = json_stringn((char *) msg,
                        ngx_http_cast_utf8_trim(msg, last - msg));

    body = json_pack("{s:s,s:o*}", "error", error, "error_description",
                     desc);
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_cast_oauth_send_status(r, status, body);
}


/* the store failed: 503 (try again) or 500 */

static ngx_int_t
ngx_http_cast_oauth_failure(ngx_http_request_t *r, ngx_uint_t rc)
{
    ngx_str_t  retry;

    if (rc == NGX_HTTP_CAST_UNAVAILABLE || rc == NGX_HTTP_CAST_FULL) {
        ngx_str_set(&retry, "1");

        if (ngx_http_cast_add_header(r, "Retry-After", &retry) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_cast_oauth_error(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "temporarily_unavailable",
                                         rc == NGX_HTTP_CAST_FULL
                                         ? "too many codes are being "
                                           "redeemed, try again"
                                         : "the hub's Redis is "
                                           "unreachable, try again");
    }

    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}
