
/*
 * ngx_http_cast_module: bearer tokens, a pure codec (see
 * ngx_http_cast_jwt.h).  Every input is hostile: sizes are bounded before
 * anything is decoded, and a malformed token, key or scope is refused
 * with a reason, never trusted in part.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/param_build.h>

#include "ngx_http_cast_jwt.h"


#define NGX_HTTP_CAST_JWT_MAX_KID    256
#define NGX_HTTP_CAST_JWT_MAX_CLAIM  1024
#define NGX_HTTP_CAST_JWT_MAX_EVENT  256

/* exp and nbf beyond this (year 5138) are not times */
#define NGX_HTTP_CAST_JWT_MAX_TIME   100000000000.0


static ngx_int_t ngx_http_cast_jwt_b64(ngx_pool_t *pool, u_char *p,
    size_t len, ngx_uint_t padded, ngx_str_t *out);
static json_t *ngx_http_cast_jwt_json(ngx_pool_t *pool, u_char *p,
    size_t len);
static ngx_int_t ngx_http_cast_jwt_dump(ngx_pool_t *pool, json_t *json,
    ngx_str_t *out);
static ngx_int_t ngx_http_cast_jwt_string(ngx_pool_t *pool, json_t *value,
    size_t max, ngx_str_t *out);
static ngx_int_t ngx_http_cast_jwt_time(json_t *value, time_t *t);
static ngx_int_t ngx_http_cast_jwt_audience(json_t *aud, ngx_str_t *want);
static ngx_int_t ngx_http_cast_jwt_scope_claims(ngx_pool_t *pool,
    json_t *claims, ngx_http_cast_scopes_t *scopes);
static ngx_int_t ngx_http_cast_jwk_json(ngx_pool_t *pool, json_t *jwk,
    ngx_http_cast_jwk_t *key, const char **err);
static EVP_PKEY *ngx_http_cast_jwk_rsa(ngx_str_t *n, ngx_str_t *e);
static EVP_PKEY *ngx_http_cast_jwk_ec(ngx_str_t *x, ngx_str_t *y);
static ngx_int_t ngx_http_cast_jwt_hs256(ngx_http_cast_jwt_t *jwt,
    ngx_http_cast_jwk_t *key);
static ngx_int_t ngx_http_cast_jwt_pkey(ngx_http_cast_jwt_t *jwt,
    ngx_http_cast_jwk_t *key);
static ngx_int_t ngx_http_cast_scope_mode(u_char *p, size_t len,
    ngx_uint_t *read, ngx_uint_t *write);
static ngx_int_t ngx_http_cast_jwt_str_eq(ngx_str_t *a, const char *s,
    size_t len);


/* ------------------------------------------------------------------ */
/* keys                                                                 */
/* ------------------------------------------------------------------ */


ngx_int_t
ngx_http_cast_jwks_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_jwk_t *keys, ngx_uint_t max, ngx_uint_t *n,
    ngx_uint_t *skipped, const char **err)
{
    json_t     *root, *list, *jwk;
    size_t      i, count;
    ngx_int_t   rc;

    root = ngx_http_cast_jwt_json(pool, p, len);
    if (root == NULL || !json_is_object(root)) {
        json_decref(root);
        *err = "not a JSON object (a JWK Set or a JWK)";
        return NGX_DECLINED;
    }

    list = json_object_get(root, "keys");

    if (list == NULL) {
        /* a single JWK */
        count = 1;

    } else if (json_is_array(list)) {
        count = json_array_size(list);

    } else {
        json_decref(root);
        *err = "\"keys\" is not an array";
        return NGX_DECLINED;
    }

    for (i = 0; i < count; i++) {
        jwk = list ? json_array_get(list, i) : root;

        if (!json_is_object(jwk)) {
            json_decref(root);
            *err = "a key is not a JSON object";
            return NGX_DECLINED;
        }

        if (*n == max) {
            json_decref(root);
            *err = "too many keys";
            return NGX_DECLINED;
        }

        rc = ngx_http_cast_jwk_json(pool, jwk, &keys[*n], err);

        if (rc == NGX_OK) {
            (*n)++;
            continue;
        }

        if (rc == NGX_DONE) {
            (*skipped)++;
            continue;
        }

        json_decref(root);
        return rc;
    }

    json_decref(root);

    return NGX_OK;
}


/*
 * NGX_OK: a key; NGX_DONE: a key of a kind not used here (skipped);
 * NGX_DECLINED: a malformed or weak key; NGX_ERROR: out of memory.
 */

static ngx_int_t
ngx_http_cast_jwk_json(ngx_pool_t *pool, json_t *jwk,
    ngx_http_cast_jwk_t *key, const char **err)
{
    json_t      *kty, *use, *alg, *kid;
    ngx_str_t    type, a, b, name;
    ngx_uint_t   want;

    ngx_memzero(key, sizeof(ngx_http_cast_jwk_t));

    kty = json_object_get(jwk, "kty");
    if (!json_is_string(kty)) {
        *err = "a key has no \"kty\"";
        return NGX_DECLINED;
    }

    type.data = (u_char *) json_string_value(kty);
    type.len = json_string_length(kty);

    if (ngx_http_cast_jwt_str_eq(&type, "RSA", 3)) {
        want = NGX_HTTP_CAST_JWT_RS256;
        ngx_str_set(&name, "RS256");

    } else if (ngx_http_cast_jwt_str_eq(&type, "EC", 2)) {
        want = NGX_HTTP_CAST_JWT_ES256;
        ngx_str_set(&name, "ES256");

    } else if (ngx_http_cast_jwt_str_eq(&type, "oct", 3)) {
        want = NGX_HTTP_CAST_JWT_HS256;
        ngx_str_set(&name, "HS256");

    } else {
        return NGX_DONE;
    }

    use = json_object_get(jwk, "use");
    if (use && !(json_is_string(use)
                 && json_string_length(use) == 3
                 && ngx_strncmp(json_string_value(use), "sig", 3) == 0))
    {
        return NGX_DONE;
    }

    alg = json_object_get(jwk, "alg");
    if (alg && !(json_is_string(alg)
                 && json_string_length(alg) == name.len
                 && ngx_strncmp(json_string_value(alg), name.data, name.len)
                    == 0))
    {
        return NGX_DONE;
    }

    kid = json_object_get(jwk, "kid");
    if (kid) {
        if (ngx_http_cast_jwt_string(pool, kid, NGX_HTTP_CAST_JWT_MAX_KID,
                                     &key->kid)
            != NGX_OK)
        {
            *err = "a key's \"kid\" is not a string of at most 256 bytes";
            return NGX_DECLINED;
        }
    }

    key->alg = want;

    switch (want) {

    case NGX_HTTP_CAST_JWT_HS256:
        if (!json_is_string(json_object_get(jwk, "k"))
            || ngx_http_cast_jwt_b64(pool,
                      (u_char *) json_string_value(json_object_get(jwk, "k")),
                      json_string_length(json_object_get(jwk, "k")), 1,
                      &key->secret)
               != NGX_OK)
        {
            *err = "an \"oct\" key has no valid \"k\"";
            return NGX_DECLINED;
        }

        if (key->secret.len < NGX_HTTP_CAST_JWT_MIN_SECRET) {
            *err = "an HS256 key is shorter than 32 bytes";
            return NGX_DECLINED;
        }

        return NGX_OK;

    case NGX_HTTP_CAST_JWT_RS256:
        if (!json_is_string(json_object_get(jwk, "n"))
            || !json_is_string(json_object_get(jwk, "e"))
            || ngx_http_cast_jwt_b64(pool,
                      (u_char *) json_string_value(json_object_get(jwk, "n")),
                      json_string_length(json_object_get(jwk, "n")), 1, &a)
               != NGX_OK
            || ngx_http_cast_jwt_b64(pool,
                      (u_char *) json_string_value(json_object_get(jwk, "e")),
                      json_string_length(json_object_get(jwk, "e")), 1, &b)
               != NGX_OK
            || a.len == 0 || b.len == 0 || a.len > 2048 || b.len > 16)
        {
            *err = "an RSA key has no valid \"n\" and \"e\"";
            return NGX_DECLINED;
        }

        key->pkey = ngx_http_cast_jwk_rsa(&a, &b);
        if (key->pkey == NULL) {
            *err = "an RSA key is invalid";
            return NGX_DECLINED;
        }

        if (EVP_PKEY_get_bits(key->pkey) < NGX_HTTP_CAST_JWT_MIN_RSA) {
            ngx_http_cast_jwk_free(key);
            *err = "an RSA key has fewer than 2048 bits";
            return NGX_DECLINED;
        }

        return NGX_OK;

    default: /* NGX_HTTP_CAST_JWT_ES256 */
        if (!json_is_string(json_object_get(jwk, "crv"))
            || json_string_length(json_object_get(jwk, "crv")) != 5
            || ngx_strncmp(json_string_value(json_object_get(jwk, "crv")),
                           "P-256", 5) != 0)
        {
            /* other curves are other algorithms */
            return NGX_DONE;
        }

        if (!json_is_string(json_object_get(jwk, "x"))
            || !json_is_string(json_object_get(jwk, "y"))
            || ngx_http_cast_jwt_b64(pool,
                      (u_char *) json_string_value(json_object_get(jwk, "x")),
                      json_string_length(json_object_get(jwk, "x")), 1, &a)
               != NGX_OK
            || ngx_http_cast_jwt_b64(pool,
                      (u_char *) json_string_value(json_object_get(jwk, "y")),
                      json_string_length(json_object_get(jwk, "y")), 1, &b)
               != NGX_OK
            || a.len != 32 || b.len != 32)
        {
            *err = "a P-256 key has no valid \"x\" and \"y\"";
            return NGX_DECLINED;
        }

        key->pkey = ngx_http_cast_jwk_ec(&a, &b);
        if (key->pkey == NULL) {
            *err = "a P-256 key is invalid (not a point of the curve)";
            return NGX_DECLINED;
        }

        return NGX_OK;
    }
}


ngx_int_t
ngx_http_cast_jwk_secret(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_str_t *kid, ngx_http_cast_jwk_t *key, const char **err)
{
    ngx_memzero(key, sizeof(ngx_http_cast_jwk_t));

    if (len < NGX_HTTP_CAST_JWT_MIN_SECRET) {
        *err = "an HS256 key is shorter than 32 bytes";
        return NGX_DECLINED;
    }

    key->secret.data = ngx_pnalloc(pool, len);
    if (key->secret.data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(key->secret.data, p, len);
    key->secret.len = len;
    key->alg = NGX_HTTP_CAST_JWT_HS256;

    if (kid) {
        key->kid = *kid;
    }

    return NGX_OK;
}


void
ngx_http_cast_jwk_free(ngx_http_cast_jwk_t *key)
{
    if (key->pkey) {
        EVP_PKEY_free(key->pkey);
        key->pkey = NULL;
    }

    if (key->secret.len) {
        OPENSSL_cleanse(key->secret.data, key->secret.len);
        key->secret.len = 0;
    }
}


static EVP_PKEY *
ngx_http_cast_jwk_rsa(ngx_str_t *n, ngx_str_t *e)
{
    BIGNUM          *bn, *be;
    EVP_PKEY        *pkey;
    OSSL_PARAM      *params;
    EVP_PKEY_CTX    *ctx;
    OSSL_PARAM_BLD  *bld;

    pkey = NULL;
    params = NULL;
    ctx = NULL;

    bn = BN_bin2bn(n->data, (int) n->len, NULL);
    be = BN_bin2bn(e->data, (int) e->len, NULL);
    bld = OSSL_PARAM_BLD_new();

    if (bn == NULL || be == NULL || bld == NULL
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn)
        || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
    {
        goto done;
    }

    params = OSSL_PARAM_BLD_to_param(bld);
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);

    if (params == NULL || ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    {
        pkey = NULL;
    }

done:

    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    ERR_clear_error();

    return pkey;
}


static EVP_PKEY *
ngx_http_cast_jwk_ec(ngx_str_t *x, ngx_str_t *y)
{
    u_char         point[65];
    EVP_PKEY      *pkey;
    OSSL_PARAM     params[3];
    EVP_PKEY_CTX  *ctx;

    /* an uncompressed point: 0x04 x y; the import checks it is on P-256 */

    point[0] = 0x04;
    ngx_memcpy(point + 1, x->data, 32);
    ngx_memcpy(point + 33, y->data, 32);

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
                                                 (char *) "prime256v1", 0);
    params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
                                                  point, sizeof(point));
    params[2] = OSSL_PARAM_construct_end();

    pkey = NULL;

    ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);

    if (ctx == NULL
        || EVP_PKEY_fromdata_init(ctx) <= 0
        || EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
    {
        pkey = NULL;
    }

    EVP_PKEY_CTX_free(ctx);
    ERR_clear_error();

    return pkey;
}


/* ------------------------------------------------------------------ */
/* tokens                                                               */
/* ------------------------------------------------------------------ */


ngx_int_t
ngx_http_cast_jwt_decode(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_jwt_t *jwt, const char **err)
{
    u_char     *dot1, *dot2, *end;
    json_t     *header, *alg, *kid;
    ngx_str_t   text, name;
    ngx_int_t   rc;

    ngx_memzero(jwt, sizeof(ngx_http_cast_jwt_t));

    if (len == 0) {
        *err = "the token is empty";
        return NGX_DECLINED;
    }

    if (len > NGX_HTTP_CAST_JWT_MAX_LEN) {
        *err = "the token is longer than 16384 bytes";
        return NGX_DECLINED;
    }

    end = p + len;

    dot1 = ngx_strlchr(p, end, '.');
    dot2 = dot1 ? ngx_strlchr(dot1 + 1, end, '.') : NULL;

    if (dot2 == NULL || ngx_strlchr(dot2 + 1, end, '.') != NULL
        || dot1 == p || dot2 == dot1 + 1 || dot2 + 1 == end)
    {
        *err = "the token is not a signed JWT (header.payload.signature)";
        return NGX_DECLINED;
    }

    /* the header */

    rc = ngx_http_cast_jwt_b64(pool, p, dot1 - p, 0, &text);

    if (rc != NGX_OK) {
        *err = "the token's header is not base64url";
        return rc;
    }

    header = ngx_http_cast_jwt_json(pool, text.data, text.len);
    if (header == NULL || !json_is_object(header)) {
        json_decref(header);
        *err = "the token's header is not a JSON object";
        return NGX_DECLINED;
    }

    rc = NGX_DECLINED;

    alg = json_object_get(header, "alg");

    if (!json_is_string(alg)) {
        *err = "the token's header has no \"alg\"";
        goto header_done;
    }

    name.data = (u_char *) json_string_value(alg);
    name.len = json_string_length(alg);

    if (ngx_http_cast_jwt_str_eq(&name, "HS256", 5)) {
        jwt->alg = NGX_HTTP_CAST_JWT_HS256;

    } else if (ngx_http_cast_jwt_str_eq(&name, "RS256", 5)) {
        jwt->alg = NGX_HTTP_CAST_JWT_RS256;

    } else if (ngx_http_cast_jwt_str_eq(&name, "ES256", 5)) {
        jwt->alg = NGX_HTTP_CAST_JWT_ES256;

    } else {
        *err = "the token's \"alg\" is not HS256, RS256 or ES256";
        goto header_done;
    }

    if (json_object_get(header, "crit") != NULL) {
        *err = "the token's header has \"crit\" extensions";
        goto header_done;
    }

    kid = json_object_get(header, "kid");

    if (kid) {
        rc = ngx_http_cast_jwt_string(pool, kid, NGX_HTTP_CAST_JWT_MAX_KID,
                                      &jwt->kid);
        if (rc != NGX_OK) {
            *err = "the token's \"kid\" is not a string of at most 256 "
                   "bytes";
            goto header_done;
        }
    }

    rc = NGX_OK;

header_done:

    json_decref(header);

    if (rc != NGX_OK) {
        return rc;
    }

    /* the signature */

    rc = ngx_http_cast_jwt_b64(pool, dot2 + 1, end - dot2 - 1, 0,
                               &jwt->signature);
    if (rc != NGX_OK) {
        *err = "the token's signature is not base64url";
        return rc;
    }

    /* the claims */

    rc = ngx_http_cast_jwt_b64(pool, dot1 + 1, dot2 - dot1 - 1, 0, &text);

    if (rc != NGX_OK) {
        *err = "the token's payload is not base64url";
        return rc;
    }

    jwt->claims = ngx_http_cast_jwt_json(pool, text.data, text.len);

    if (jwt->claims == NULL || !json_is_object(jwt->claims)) {
        json_decref(jwt->claims);
        jwt->claims = NULL;
        *err = "the token's payload is not a JSON object";
        return NGX_DECLINED;
    }

    jwt->input.data = p;
    jwt->input.len = dot2 - p;

    return NGX_OK;
}


void
ngx_http_cast_jwt_free(ngx_http_cast_jwt_t *jwt)
{
    if (jwt->claims) {
        json_decref(jwt->claims);
        jwt->claims = NULL;
    }
}


ngx_int_t
ngx_http_cast_jwt_verify(ngx_http_cast_jwt_t *jwt, ngx_http_cast_jwk_t *keys,
    ngx_uint_t n)
{
    ngx_int_t             rc;
    ngx_uint_t            i;
    ngx_http_cast_jwk_t  *key;

    for (i = 0; i < n; i++) {
        key = &keys[i];

        if (key->alg != jwt->alg) {
            continue;
        }

        /* a key without an id is tried for any token of its algorithm */

        if (jwt->kid.len && key->kid.len
            && (jwt->kid.len != key->kid.len
                || ngx_memcmp(jwt->kid.data, key->kid.data, key->kid.len)
                   != 0))
        {
            continue;
        }

        rc = (key->alg == NGX_HTTP_CAST_JWT_HS256)
             ? ngx_http_cast_jwt_hs256(jwt, key)
             : ngx_http_cast_jwt_pkey(jwt, key);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return NGX_DECLINED;
}


static ngx_int_t
ngx_http_cast_jwt_hs256(ngx_http_cast_jwt_t *jwt, ngx_http_cast_jwk_t *key)
{
    u_char  mac[EVP_MAX_MD_SIZE];
    size_t  len;

    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key->secret.data,
                  key->secret.len, jwt->input.data, jwt->input.len, mac,
                  sizeof(mac), &len)
        == NULL)
    {
        ERR_clear_error();
        return NGX_ERROR;
    }

    if (len != 32 || jwt->signature.len != 32
        || CRYPTO_memcmp(mac, jwt->signature.data, 32) != 0)
    {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/*
 * Signing (the token endpoints, src/ngx_http_cast_oauth.c): the JSON is
 * serialized by jansson into the pool, the MAC is OpenSSL's.
 */

ngx_int_t
ngx_http_cast_jwt_sign(ngx_pool_t *pool, ngx_http_cast_jwk_t *key,
    json_t *claims, ngx_str_t *token)
{
    u_char     mac[EVP_MAX_MD_SIZE], *p, *start;
    size_t     len, maclen;
    json_t    *header, *kid;
    ngx_int_t  rc;
    ngx_str_t  h, c, src, dst;

    if (key->alg != NGX_HTTP_CAST_JWT_HS256
        || key->secret.len < NGX_HTTP_CAST_JWT_MIN_SECRET
        || !json_is_object(claims))
    {
        return NGX_DECLINED;
    }

    header = json_pack("{s:s,s:s}", "alg", "HS256", "typ", "JWT");
    if (header == NULL) {
        return NGX_ERROR;
    }

    if (key->kid.len) {
        kid = json_stringn((char *) key->kid.data, key->kid.len);

        if (kid == NULL) {
            /* not UTF-8 (or out of memory): no header can name it */
            json_decref(header);
            return NGX_DECLINED;
        }

        if (json_object_set_new(header, "kid", kid) != 0) {
            json_decref(header);
            return NGX_ERROR;
        }
    }

    rc = ngx_http_cast_jwt_dump(pool, header, &h);
    json_decref(header);

    if (rc != NGX_OK) {
        return rc;
    }

    rc = ngx_http_cast_jwt_dump(pool, claims, &c);
    if (rc != NGX_OK) {
        return rc;
    }

    len = ngx_base64_encoded_length(h.len) + 1
          + ngx_base64_encoded_length(c.len) + 1
          + ngx_base64_encoded_length(32);

    if (len > NGX_HTTP_CAST_JWT_MAX_LEN) {
        return NGX_DECLINED;
    }

    start = ngx_pnalloc(pool, len);
    if (start == NULL) {
        return NGX_ERROR;
    }

    p = start;

    dst.data = p;
    ngx_encode_base64url(&dst, &h);
    p += dst.len;
    *p++ = '.';

    dst.data = p;
    ngx_encode_base64url(&dst, &c);
    p += dst.len;

    if (EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, key->secret.data,
                  key->secret.len, start, p - start, mac, sizeof(mac),
                  &maclen)
        == NULL || maclen != 32)
    {
        ERR_clear_error();
        return NGX_ERROR;
    }

    *p++ = '.';

    src.data = mac;
    src.len = 32;
    dst.data = p;
    ngx_encode_base64url(&dst, &src);
    p += dst.len;

    OPENSSL_cleanse(mac, sizeof(mac));

    token->data = start;
    token->len = p - start;

    return NGX_OK;
}


static ngx_int_t
ngx_http_cast_jwt_pkey(ngx_http_cast_jwt_t *jwt, ngx_http_cast_jwk_t *key)
{
    int            ok;
    u_char         der[80], *p;
    size_t         len;
    BIGNUM        *r, *s;
    ECDSA_SIG     *sig;
    EVP_MD_CTX    *ctx;
    const u_char  *signature;

    signature = jwt->signature.data;
    len = jwt->signature.len;

    if (key->alg == NGX_HTTP_CAST_JWT_ES256) {

        /* JWS has R and S side by side (RFC 7518 3.4); OpenSSL wants DER */

        if (len != 64) {
            return NGX_DECLINED;
        }

        sig = ECDSA_SIG_new();
        r = BN_bin2bn(signature, 32, NULL);
        s = BN_bin2bn(signature + 32, 32, NULL);

        if (sig == NULL || r == NULL || s == NULL
            || !ECDSA_SIG_set0(sig, r, s))
        {
            ECDSA_SIG_free(sig);
            BN_free(r);
            BN_free(s);
            ERR_clear_error();
            return NGX_ERROR;
        }

        /* r and s belong to sig now; two 33-byte integers fit in der */

        if (i2d_ECDSA_SIG(sig, NULL) > (int) sizeof(der)) {
            ECDSA_SIG_free(sig);
            return NGX_DECLINED;
        }

        p = der;
        ok = i2d_ECDSA_SIG(sig, &p);
        ECDSA_SIG_free(sig);

        if (ok <= 0) {
            ERR_clear_error();
            return NGX_ERROR;
        }

        signature = der;
        len = (size_t) ok;
    }

    ctx = EVP_MD_CTX_new();
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    if (EVP_DigestVerifyInit(ctx, NULL, EVP_sha256(), NULL, key->pkey) != 1) {
        EVP_MD_CTX_free(ctx);
        ERR_clear_error();
        return NGX_ERROR;
    }

    ok = EVP_DigestVerify(ctx, signature, len, jwt->input.data,
                          jwt->input.len);

    EVP_MD_CTX_free(ctx);
    ERR_clear_error();

    return (ok == 1) ? NGX_OK : NGX_DECLINED;
}


ngx_int_t
ngx_http_cast_jwt_claims(ngx_pool_t *pool, ngx_http_cast_jwt_t *jwt,
    ngx_http_cast_jwt_rules_t *rules, ngx_http_cast_grant_t *grant,
    const char **err)
{
    json_t     *claims, *value;
    time_t      t;
    ngx_int_t   rc;

    ngx_memzero(grant, sizeof(ngx_http_cast_grant_t));

    claims = jwt->claims;

    /* a bearer token without an expiry would outlive every lease */

    value = json_object_get(claims, "exp");

    if (value == NULL) {
        *err = "the token has no \"exp\"";
        return NGX_DECLINED;
    }

    if (ngx_http_cast_jwt_time(value, &t) != NGX_OK) {
        *err = "the token's \"exp\" is not a time";
        return NGX_DECLINED;
    }

    if (rules->now >= t + rules->leeway) {
        *err = "the token expired";
        return NGX_DECLINED;
    }

    grant->expires = t;

    value = json_object_get(claims, "nbf");

    if (value) {
        if (ngx_http_cast_jwt_time(value, &t) != NGX_OK) {
            *err = "the token's \"nbf\" is not a time";
            return NGX_DECLINED;
        }

        if (rules->now + rules->leeway < t) {
            *err = "the token is not valid yet";
            return NGX_DECLINED;
        }
    }

    if (rules->issuer.len) {
        value = json_object_get(claims, "iss");

        if (!json_is_string(value)
            || json_string_length(value) != rules->issuer.len
            || ngx_memcmp(json_string_value(value), rules->issuer.data,
                          rules->issuer.len) != 0)
        {
            *err = "the token is from another issuer";
            return NGX_DECLINED;
        }
    }

    if (rules->audience.len
        && ngx_http_cast_jwt_audience(json_object_get(claims, "aud"),
                                      &rules->audience)
           != NGX_OK)
    {
        *err = "the token is for another audience";
        return NGX_DECLINED;
    }

    /* the topic claim's name comes from the configuration: NUL-ended */

    value = json_object_get(claims, (char *) rules->topic_claim.data);

    if (value) {
        rc = ngx_http_cast_jwt_string(pool, value, NGX_HTTP_CAST_JWT_MAX_CLAIM,
                                      &grant->topic);
        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc != NGX_OK || grant->topic.len == 0) {
            *err = "the token's topic claim is not a string of 1 to 1024 "
                   "bytes";
            return NGX_DECLINED;
        }
    }

    /* "sub" and "jti" are only logged: kept when they are short strings */

    (void) ngx_http_cast_jwt_string(pool, json_object_get(claims, "sub"),
                                    NGX_HTTP_CAST_JWT_MAX_KID,
                                    &grant->subject);
    (void) ngx_http_cast_jwt_string(pool, json_object_get(claims, "jti"),
                                    NGX_HTTP_CAST_JWT_MAX_KID, &grant->id);

    rc = ngx_http_cast_jwt_scope_claims(pool, claims, &grant->scopes);

    if (rc == NGX_DECLINED) {
        *err = "the token's scopes are not a string or an array of strings, "
               "or hold more than 256 fhircast scopes";
    }

    return rc;
}


/* "scope" (RFC 8693, RFC 9068: a string), else "scp" (string or array) */

static ngx_int_t
ngx_http_cast_jwt_scope_claims(ngx_pool_t *pool, json_t *claims,
    ngx_http_cast_scopes_t *scopes)
{
    u_char  *p, *buf;
    json_t  *value, *item;
    size_t   i, size;

    value = json_object_get(claims, "scope");
    if (value == NULL) {
        value = json_object_get(claims, "scp");
    }

    if (value == NULL) {
        return NGX_OK;
    }

    if (json_is_string(value)) {
        return ngx_http_cast_scopes_parse(pool,
                                          (u_char *) json_string_value(value),
                                          json_string_length(value), scopes);
    }

    if (!json_is_array(value)) {
        return NGX_DECLINED;
    }

    size = 0;

    json_array_foreach(value, i, item) {
        if (!json_is_string(item)) {
            return NGX_DECLINED;
        }

        size += json_string_length(item) + 1;
    }

    buf = ngx_pnalloc(pool, size + 1);
    if (buf == NULL) {
        return NGX_ERROR;
    }

    p = buf;

    json_array_foreach(value, i, item) {
        p = ngx_cpymem(p, json_string_value(item), json_string_length(item));
        *p++ = ' ';
    }

    return ngx_http_cast_scopes_parse(pool, buf, p - buf, scopes);
}


static ngx_int_t
ngx_http_cast_jwt_audience(json_t *aud, ngx_str_t *want)
{
    json_t  *item;
    size_t   i;

    if (json_is_string(aud)) {
        return (json_string_length(aud) == want->len
                && ngx_memcmp(json_string_value(aud), want->data, want->len)
                   == 0)
               ? NGX_OK : NGX_DECLINED;
    }

    if (!json_is_array(aud)) {
        return NGX_DECLINED;
    }

    json_array_foreach(aud, i, item) {
        if (json_is_string(item)
            && json_string_length(item) == want->len
            && ngx_memcmp(json_string_value(item), want->data, want->len)
               == 0)
        {
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}


/* NumericDate: seconds since the epoch, possibly with a fraction */

static ngx_int_t
ngx_http_cast_jwt_time(json_t *value, time_t *t)
{
    double  d;

    if (!json_is_number(value)) {
        return NGX_DECLINED;
    }

    d = json_number_value(value);

    if (!(d >= 0 && d < NGX_HTTP_CAST_JWT_MAX_TIME)) {
        return NGX_DECLINED;
    }

    *t = (time_t) d;

    return NGX_OK;
}


/* ------------------------------------------------------------------ */
/* scopes                                                               */
/* ------------------------------------------------------------------ */


ngx_int_t
ngx_http_cast_scopes_parse(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_http_cast_scopes_t *scopes)
{
    u_char                 *end, *tok, *dot, *q, *q2;
    size_t                  n;
    ngx_uint_t              read, write, count;
    ngx_http_cast_scope_t  *s;

    static u_char  prefix[] = "fhircast/";

    scopes->scope = NULL;
    scopes->n = 0;

    end = p + len;

    /* first count, then fill */

    count = 0;

    for (q = p; q < end; q++) {
        if (*q == ' ') {
            continue;
        }

        tok = q;

        while (q < end && *q != ' ') {
            q++;
        }

        if ((size_t) (q - tok) > sizeof(prefix) - 1
            && ngx_strncmp(tok, prefix, sizeof(prefix) - 1) == 0)
        {
            count++;
        }
    }

    if (count == 0) {
        return NGX_OK;
    }

    if (count > NGX_HTTP_CAST_JWT_MAX_SCOPES) {
        return NGX_DECLINED;
    }

    s = ngx_palloc(pool, count * sizeof(ngx_http_cast_scope_t));
    if (s == NULL) {
        return NGX_ERROR;
    }

    scopes->scope = s;

    for (q = p; q < end; q++) {
        if (*q == ' ') {
            continue;
        }

        tok = q;

        while (q < end && *q != ' ') {
            q++;
        }

        n = q - tok;

        if (n <= sizeof(prefix) - 1
            || ngx_strncmp(tok, prefix, sizeof(prefix) - 1) != 0)
        {
            continue;
        }

        tok += sizeof(prefix) - 1;
        n -= sizeof(prefix) - 1;

        /* "<event>.<mode>": event names may hold dots (org.example.x) */

        for (dot = tok + n; dot > tok && dot[-1] != '.'; dot--) {
            /* void */
        }

        if (dot <= tok + 1 || dot == tok + n
            || (size_t) (dot - 1 - tok) > NGX_HTTP_CAST_JWT_MAX_EVENT)
        {
            continue;
        }

        if (ngx_http_cast_scope_mode(dot, tok + n - dot, &read, &write)
            != NGX_OK)
        {
            continue;
        }

        /* a name that no event can have (hub.event is a list item) */

        for (q2 = tok; q2 < dot - 1; q2++) {
            if (*q2 < 0x21 || *q2 == 0x7f || *q2 == ',') {
                break;
            }
        }

        if (q2 < dot - 1) {
            continue;
        }

        s->event.len = dot - 1 - tok;
        s->event.data = ngx_pnalloc(pool, s->event.len);
        if (s->event.data == NULL) {
            return NGX_ERROR;
        }

        ngx_strlow(s->event.data, tok, s->event.len);
        s->read = read;
        s->write = write;

        s++;
        scopes->n++;
    }

    return NGX_OK;
}


/*
 * SMART v1: read, write, "*"; SMART v2: the letters of "cruds" in that
 * order, each once ("rs" reads; "c", "u" or "d" write).
 */

static ngx_int_t
ngx_http_cast_scope_mode(u_char *p, size_t len, ngx_uint_t *read,
    ngx_uint_t *write)
{
    size_t       i, k;
    ngx_uint_t   seen;

    static u_char  order[] = "cruds";

    *read = 0;
    *write = 0;

    if (len == 4 && ngx_strncmp(p, "read", 4) == 0) {
        *read = 1;
        return NGX_OK;
    }

    if (len == 5 && ngx_strncmp(p, "write", 5) == 0) {
        *write = 1;
        return NGX_OK;
    }

    if (len == 1 && p[0] == '*') {
        *read = 1;
        *write = 1;
        return NGX_OK;
    }

    if (len == 0 || len > 5) {
        return NGX_DECLINED;
    }

    k = 0;
    seen = 0;

    for (i = 0; i < len; i++) {
        while (k < 5 && order[k] != p[i]) {
            k++;
        }

        if (k == 5) {
            return NGX_DECLINED;
        }

        seen |= 1 << k;
        k++;
    }

    *read = (seen & 0x02) ? 1 : 0;
    *write = (seen & (0x01 | 0x04 | 0x08)) ? 1 : 0;

    return (*read || *write) ? NGX_OK : NGX_DECLINED;
}


ngx_uint_t
ngx_http_cast_scopes_allow(ngx_http_cast_scopes_t *scopes, ngx_str_t *event,
    ngx_uint_t mode)
{
    ngx_uint_t              i;
    ngx_http_cast_scope_t  *s;

    for (i = 0; i < scopes->n; i++) {
        s = &scopes->scope[i];

        if (!((mode == NGX_HTTP_CAST_SCOPE_READ && s->read)
              || (mode == NGX_HTTP_CAST_SCOPE_WRITE && s->write)))
        {
            continue;
        }

        if (s->event.len == 1 && s->event.data[0] == '*') {
            return 1;
        }

        if (s->event.len == event->len
            && ngx_memcmp(s->event.data, event->data, event->len) == 0)
        {
            return 1;
        }
    }

    return 0;
}


ngx_uint_t
ngx_http_cast_scopes_any(ngx_http_cast_scopes_t *scopes, ngx_uint_t mode)
{
    ngx_uint_t  i;

    for (i = 0; i < scopes->n; i++) {
        if ((mode == NGX_HTTP_CAST_SCOPE_READ && scopes->scope[i].read)
            || (mode == NGX_HTTP_CAST_SCOPE_WRITE && scopes->scope[i].write))
        {
            return 1;
        }
    }

    return 0;
}


ngx_int_t
ngx_http_cast_scopes_writable(ngx_pool_t *pool,
    ngx_http_cast_scopes_t *scopes, ngx_str_t *list)
{
    u_char                 *p;
    size_t                  size;
    ngx_uint_t              i, k;
    ngx_http_cast_scope_t  *s, *t;

    size = 0;

    for (i = 0; i < scopes->n; i++) {
        s = &scopes->scope[i];

        if (!s->write) {
            continue;
        }

        if (s->event.len == 1 && s->event.data[0] == '*') {
            ngx_str_set(list, "*");
            return NGX_OK;
        }

        size += s->event.len + 1;
    }

    list->len = 0;
    list->data = (u_char *) "";

    if (size == 0) {
        return NGX_OK;
    }

    p = ngx_pnalloc(pool, size);
    if (p == NULL) {
        return NGX_ERROR;
    }

    list->data = p;

    for (i = 0; i < scopes->n; i++) {
        s = &scopes->scope[i];

        if (!s->write) {
            continue;
        }

        /* once each */

        for (k = 0; k < i; k++) {
            t = &scopes->scope[k];

            if (t->write && t->event.len == s->event.len
                && ngx_memcmp(t->event.data, s->event.data, s->event.len)
                   == 0)
            {
                break;
            }
        }

        if (k < i) {
            continue;
        }

        if (p != list->data) {
            *p++ = ',';
        }

        p = ngx_cpymem(p, s->event.data, s->event.len);
    }

    list->len = p - list->data;

    return NGX_OK;
}


ngx_uint_t
ngx_http_cast_scopes_listed(ngx_str_t *list, ngx_str_t *event)
{
    u_char  *p, *end, *item;

    if (list->len == 1 && list->data[0] == '*') {
        return 1;
    }

    p = list->data;
    end = list->data + list->len;

    while (p < end) {
        item = p;

        while (p < end && *p != ',') {
            p++;
        }

        if ((size_t) (p - item) == event->len
            && ngx_memcmp(item, event->data, event->len) == 0)
        {
            return 1;
        }

        p++;
    }

    return 0;
}


/* ------------------------------------------------------------------ */
/* helpers                                                              */
/* ------------------------------------------------------------------ */


/*
 * base64url without padding (JWS); "padded": trailing "=" tolerated
 * (some JWK Sets have it)
 */

static ngx_int_t
ngx_http_cast_jwt_b64(ngx_pool_t *pool, u_char *p, size_t len,
    ngx_uint_t padded, ngx_str_t *out)
{
    size_t     i;
    ngx_str_t  src;

    if (padded) {
        while (len && p[len - 1] == '=') {
            len--;
        }
    }

    for (i = 0; i < len; i++) {
        if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z')
              || (p[i] >= '0' && p[i] <= '9') || p[i] == '-' || p[i] == '_'))
        {
            return NGX_DECLINED;
        }
    }

    src.data = p;
    src.len = len;

    out->data = ngx_pnalloc(pool, ngx_base64_decoded_length(len) + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    if (ngx_decode_base64url(out, &src) != NGX_OK) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


/* compact JSON text in the pool */

static ngx_int_t
ngx_http_cast_jwt_dump(ngx_pool_t *pool, json_t *json, ngx_str_t *out)
{
    size_t  n;

    n = json_dumpb(json, NULL, 0, JSON_COMPACT);
    if (n == 0) {
        return NGX_ERROR;
    }

    out->data = ngx_pnalloc(pool, n);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    if (json_dumpb(json, (char *) out->data, n, JSON_COMPACT) != n) {
        return NGX_ERROR;
    }

    out->len = n;

    return NGX_OK;
}


/* JSON text, duplicate keys refused (which of two would a verifier see?) */

static json_t *
ngx_http_cast_jwt_json(ngx_pool_t *pool, u_char *p, size_t len)
{
    return json_loadb((char *) p, len, JSON_REJECT_DUPLICATES, NULL);
}


/* a JSON string of at most "max" bytes, copied to the pool */

static ngx_int_t
ngx_http_cast_jwt_string(ngx_pool_t *pool, json_t *value, size_t max,
    ngx_str_t *out)
{
    size_t  len;

    if (!json_is_string(value)) {
        return NGX_DECLINED;
    }

    len = json_string_length(value);

    if (len > max) {
        return NGX_DECLINED;
    }

    out->data = ngx_pnalloc(pool, len + 1);
    if (out->data == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(out->data, json_string_value(value), len);
    out->data[len] = '\0';
    out->len = len;

    return NGX_OK;
}


static ngx_int_t
ngx_http_cast_jwt_str_eq(ngx_str_t *a, const char *s, size_t len)
{
    return a->len == len && ngx_strncmp(a->data, s, len) == 0;
}
