
/*
 * Unit tests for the bearer-token codec (src/ngx_http_cast_jwt.c): the
 * compact form, HS256 / RS256 / ES256 signatures (keys and tokens are made
 * here with OpenSSL), JWK Sets, the claims rules (exp, nbf, iss, aud,
 * the topic claim, scope and scp), the FHIRcast scope forms, and the
 * out-of-memory paths.  Built against nginx's headers with t/unit/support.
 */


#include <ngx_config.h>
#include <ngx_core.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>

#include "ngx_http_cast_jwt.h"
#include "ngx_test_core.h"
#include "ngx_test_tap.h"


#define NOW  1796278339


static EVP_PKEY  *rsa_key, *rsa_other, *ec_key, *ec_other;
static u_char     secret[] = "0123456789abcdef0123456789abcdef";


static char *
b64url(const u_char *p, size_t len)
{
    static const char  tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    char              *out, *o;
    size_t             i;
    uint32_t           v;

    out = malloc(len * 4 / 3 + 4);
    o = out;

    for (i = 0; i + 2 < len; i += 3) {
        v = (p[i] << 16) | (p[i + 1] << 8) | p[i + 2];
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
        *o++ = tab[v & 63];
    }

    if (len - i == 1) {
        v = p[i] << 16;
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];

    } else if (len - i == 2) {
        v = (p[i] << 16) | (p[i + 1] << 8);
        *o++ = tab[v >> 18];
        *o++ = tab[(v >> 12) & 63];
        *o++ = tab[(v >> 6) & 63];
    }

    *o = '\0';

    return out;
}


/* a string's base64url, in one of 8 static buffers used in turn */

static char *
b64s(const char *s)
{
    char         *e;
    static char   ring[8][2048];
    static int    next;

    e = b64url((const u_char *) s, strlen(s));
    next = (next + 1) % 8;
    snprintf(ring[next], sizeof(ring[next]), "%s", e);
    free(e);

    return ring[next];
}


/* header.payload signed with alg by key (HS256: the secret) */

static char *
sign(const char *header, const char *payload, const char *alg, EVP_PKEY *key)
{
    u_char      sig[512], raw[64];
    char       *h, *p, *input, *s, *tok;
    size_t      len, n;
    EVP_MD_CTX *ctx;
    ECDSA_SIG  *es;
    const u_char  *q;
    const BIGNUM  *r, *ss;

    h = b64url((const u_char *) header, strlen(header));
    p = b64url((const u_char *) payload, strlen(payload));
    input = malloc(strlen(h) + strlen(p) + 2);
    sprintf(input, "%s.%s", h, p);

    len = sizeof(sig);

    if (strcmp(alg, "HS256") == 0) {
        EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, secret, 32,
                  (u_char *) input, strlen(input), sig, sizeof(sig), &len);

    } else {
        ctx = EVP_MD_CTX_new();
        EVP_DigestSignInit(ctx, NULL, EVP_sha256(), NULL, key);
        EVP_DigestSign(ctx, sig, &len, (u_char *) input, strlen(input));
        EVP_MD_CTX_free(ctx);

        if (strcmp(alg, "ES256") == 0) {
            q = sig;
            es = d2i_ECDSA_SIG(NULL, &q, len);
            ECDSA_SIG_get0(es, &r, &ss);
            BN_bn2binpad(r, raw, 32);
            BN_bn2binpad(ss, raw + 32, 32);
            ECDSA_SIG_free(es);
            memcpy(sig, raw, 64);
            len = 64;
        }
    }

    s = b64url(sig, len);
    n = strlen(input) + strlen(s) + 2;
    tok = malloc(n);
    snprintf(tok, n, "%s.%s", input, s);

    free(h);
    free(p);
    free(input);
    free(s);

    return tok;
}


static char *
jwk_rsa(EVP_PKEY *key, const char *kid)
{
    u_char   n[512];
    char    *bn, *out;
    int      len;
    BIGNUM  *num;

    num = NULL;
    EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &num);
    len = BN_bn2bin(num, n);
    BN_free(num);

    bn = b64url(n, len);
    out = malloc(strlen(bn) + 128);
    sprintf(out, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"AQAB\"}",
            kid, bn);
    free(bn);

    return out;
}


static char *
jwk_ec(EVP_PKEY *key, const char *kid, int flip)
{
    u_char   pt[65];
    char    *x, *y, *out;
    size_t   len;

    EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pt,
                                    sizeof(pt), &len);
    if (flip) {
        pt[64] ^= 1;        /* no longer a point of the curve */
    }

    x = b64url(pt + 1, 32);
    y = b64url(pt + 33, 32);
    out = malloc(256);
    sprintf(out, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\","
            "\"x\":\"%s\",\"y\":\"%s\"}", kid, x, y);
    free(x);
    free(y);

    return out;
}


/* decode + verify against keys: "ok" or the error text */

static const char *
check(const char *token, ngx_http_cast_jwk_t *keys, ngx_uint_t n)
{
    ngx_int_t             rc;
    ngx_pool_t           *pool;
    const char           *err;
    ngx_http_cast_jwt_t   jwt;

    pool = ngx_create_pool(1024, NULL);

    rc = ngx_http_cast_jwt_decode(pool, (u_char *) token, strlen(token), &jwt,
                                  &err);
    if (rc == NGX_OK) {
        rc = ngx_http_cast_jwt_verify(&jwt, keys, n);
        err = (rc == NGX_OK) ? "ok" : (rc == NGX_DECLINED) ? "bad signature"
                                                           : "error";
        ngx_http_cast_jwt_free(&jwt);

    } else if (rc == NGX_ERROR) {
        err = "NGX_ERROR";
    }

    ngx_destroy_pool(pool);

    return err;
}


static void
is(const char *got, const char *want, const char *name)
{
    ngx_uint_t  ok;

    ok = (strcmp(got, want) == 0);
    ngx_test_ok(ok, "%s", name);

    if (!ok) {
        printf("#   got:  \"%s\"\n#   want: \"%s\"\n", got, want);
    }
}


/* claims of an HS256 token under the default rules */

static const char *
claims(const char *payload, ngx_http_cast_grant_t *grant, ngx_pool_t *pool)
{
    char                       *tok;
    ngx_int_t                   rc;
    const char                 *err;
    ngx_http_cast_jwt_t         jwt;
    ngx_http_cast_jwt_rules_t   rules;

    tok = sign("{\"alg\":\"HS256\"}", payload, "HS256", NULL);

    if (ngx_http_cast_jwt_decode(pool, (u_char *) tok, strlen(tok), &jwt,
                                 &err)
        != NGX_OK)
    {
        free(tok);
        return err;
    }

    ngx_str_set(&rules.issuer, "https://auth.example");
    ngx_str_set(&rules.audience, "cast-hub");
    ngx_str_set(&rules.topic_claim, "hub.topic");
    rules.leeway = 30;
    rules.now = NOW;

    rc = ngx_http_cast_jwt_claims(pool, &jwt, &rules, grant, &err);
    ngx_http_cast_jwt_free(&jwt);
    free(tok);

    return rc == NGX_OK ? "ok" : rc == NGX_ERROR ? "NGX_ERROR" : err;
}


static void
test_decode(void)
{
    ngx_http_cast_jwk_t  key;
    ngx_str_t            kid;
    ngx_pool_t          *pool;
    const char          *err;
    char                 *good, buf[256];

    pool = ngx_create_pool(1024, NULL);
    ngx_str_set(&kid, "h1");
    ngx_http_cast_jwk_secret(pool, secret, 32, &kid, &key, &err);

    is(check("", &key, 1), "the token is empty", "empty");
    is(check("abc", &key, 1),
       "the token is not a signed JWT (header.payload.signature)", "no dot");
    is(check("a.b", &key, 1),
       "the token is not a signed JWT (header.payload.signature)",
       "one dot");
    is(check("a.b.c.d.e", &key, 1),
       "the token is not a signed JWT (header.payload.signature)",
       "five parts (JWE)");
    is(check(".b.c", &key, 1),
       "the token is not a signed JWT (header.payload.signature)",
       "empty header");
    is(check("a.b.", &key, 1),
       "the token is not a signed JWT (header.payload.signature)",
       "empty signature");
    is(check("e30=.e30.c2ln", &key, 1), "the token's header is not base64url",
       "padding refused");
    is(check("e3+.e30.c2ln", &key, 1), "the token's header is not base64url",
       "+ refused");
    is(check("bm90IGpzb24.e30.c2ln", &key, 1),
       "the token's header is not a JSON object", "header not JSON");
    is(check("W10.e30.c2ln", &key, 1),
       "the token's header is not a JSON object", "header an array");

    snprintf(buf, sizeof(buf), "%s.e30.c2ln", b64s("{\"alg\":\"none\"}"));
    is(check(buf, &key, 1), "the token's \"alg\" is not HS256, RS256 or ES256",
       "alg none");
    snprintf(buf, sizeof(buf), "%s.e30.c2ln", b64s("{\"alg\":\"hs256\"}"));
    is(check(buf, &key, 1), "the token's \"alg\" is not HS256, RS256 or ES256",
       "alg names are case-sensitive");
    snprintf(buf, sizeof(buf), "%s.e30.c2ln", b64s("{\"typ\":\"JWT\"}"));
    is(check(buf, &key, 1), "the token's header has no \"alg\"", "no alg");
    snprintf(buf, sizeof(buf), "%s.e30.c2ln",
             b64s("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}"));
    is(check(buf, &key, 1), "the token's header has \"crit\" extensions",
       "crit");
    snprintf(buf, sizeof(buf), "%s.e30.c2ln",
             b64s("{\"alg\":\"HS256\",\"alg\":\"none\"}"));
    is(check(buf, &key, 1), "the token's header is not a JSON object",
       "duplicate keys refused");
    snprintf(buf, sizeof(buf), "%s.e30.c2ln",
             b64s("{\"alg\":\"HS256\",\"kid\":7}"));
    is(check(buf, &key, 1),
       "the token's \"kid\" is not a string of at most 256 bytes",
       "kid a number");
    snprintf(buf, sizeof(buf), "%s.%s.c2ln", b64s("{\"alg\":\"HS256\"}"),
             b64s("[1]"));
    is(check(buf, &key, 1), "the token's payload is not a JSON object",
       "payload an array");
    snprintf(buf, sizeof(buf), "%s.e30.c2l!", b64s("{\"alg\":\"HS256\"}"));
    is(check(buf, &key, 1), "the token's signature is not base64url",
       "signature not base64url");

    good = sign("{\"alg\":\"HS256\",\"kid\":\"h1\"}", "{\"a\":1}", "HS256",
                NULL);
    is(check(good, &key, 1), "ok", "HS256 verifies");
    is(check(good, &key, 0), "bad signature", "no key: refused");
    good[strlen(good) - 10] = (good[strlen(good) - 10] == 'A') ? 'B' : 'A';
    is(check(good, &key, 1), "bad signature", "HS256, a changed signature");
    free(good);

    good = sign("{\"alg\":\"HS256\",\"kid\":\"other\"}", "{\"a\":1}", "HS256",
                NULL);
    is(check(good, &key, 1), "bad signature", "HS256, another kid");
    free(good);

    good = sign("{\"alg\":\"HS256\"}", "{\"a\":1}", "HS256", NULL);
    is(check(good, &key, 1), "ok", "HS256, no kid: keys of the alg tried");
    free(good);

    ngx_memset(buf, 'a', sizeof(buf));
    is(check("x", &key, 1), "the token is not a signed JWT "
       "(header.payload.signature)", "one byte");

    {
        char  *big = malloc(NGX_HTTP_CAST_JWT_MAX_LEN + 2);

        ngx_memset(big, 'a', NGX_HTTP_CAST_JWT_MAX_LEN + 1);
        big[NGX_HTTP_CAST_JWT_MAX_LEN + 1] = '\0';
        is(check(big, &key, 1), "the token is longer than 16384 bytes",
           "too long");
        free(big);
    }

    ngx_http_cast_jwk_free(&key);
    ngx_destroy_pool(pool);
}


static void
test_keys(void)
{
    char                 *tok, *jwks, *a, *b, *c;
    ngx_int_t             rc;
    ngx_uint_t            n, skipped, i;
    ngx_pool_t           *pool;
    const char           *err;
    ngx_http_cast_jwk_t   keys[8];

    pool = ngx_create_pool(1024, NULL);

    a = jwk_rsa(rsa_key, "r1");
    b = jwk_ec(ec_key, "e1", 0);
    jwks = malloc(strlen(a) + strlen(b) + 512);
    sprintf(jwks, "{\"keys\":[%s,%s,"
            "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"},"
            "{\"kty\":\"RSA\",\"use\":\"enc\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
            "{\"kty\":\"RSA\",\"alg\":\"PS256\",\"n\":\"AQAB\",\"e\":\"AQAB\"},"
            "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"AA\",\"y\":\"AA\"},"
            "{\"kty\":\"oct\",\"kid\":\"h1\",\"k\":\"%s\"}]}", a, b,
            c = b64url(secret, 32));
    free(c);

    n = 0;
    skipped = 0;
    rc = ngx_http_cast_jwks_parse(pool, (u_char *) jwks, strlen(jwks), keys,
                                  8, &n, &skipped, &err);
    ngx_test_ok(rc == NGX_OK && n == 3 && skipped == 4,
                "JWK Set: 3 keys, 4 skipped (OKP, enc, PS256, P-384)");

    tok = sign("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{}", "RS256", rsa_key);
    is(check(tok, keys, n), "ok", "RS256 verifies");
    tok[strlen(tok) - 10] = (tok[strlen(tok) - 10] == 'A') ? 'B' : 'A';
    is(check(tok, keys, n), "bad signature", "RS256, a changed signature");
    free(tok);

    tok = sign("{\"alg\":\"RS256\",\"kid\":\"r1\"}", "{}", "RS256",
               rsa_other);
    is(check(tok, keys, n), "bad signature", "RS256 by another key");
    free(tok);

    tok = sign("{\"alg\":\"ES256\",\"kid\":\"e1\"}", "{}", "ES256", ec_key);
    is(check(tok, keys, n), "ok", "ES256 verifies");
    free(tok);

    tok = sign("{\"alg\":\"ES256\",\"kid\":\"e1\"}", "{}", "ES256",
               ec_other);
    is(check(tok, keys, n), "bad signature", "ES256 by another key");
    free(tok);

    /* an RS256 header on an ES256 key id: no RS256 key is "e1" */
    tok = sign("{\"alg\":\"RS256\",\"kid\":\"e1\"}", "{}", "RS256", rsa_key);
    is(check(tok, keys, n), "bad signature", "RS256 token naming the EC key");
    free(tok);

    /* HS256 keyed with the RSA JWK text: the key is not HS256 */
    tok = sign("{\"alg\":\"HS256\",\"kid\":\"r1\"}", "{}", "HS256", NULL);
    is(check(tok, keys, 2), "bad signature",
       "HS256 naming an RSA key id: no such HS256 key");
    free(tok);

    {
        char  short_sig[256];

        snprintf(short_sig, sizeof(short_sig), "%s.e30.%s",
                 b64s("{\"alg\":\"ES256\"}"), b64s("short"));
        is(check(short_sig, keys, n), "bad signature",
           "ES256 signature of 5 bytes");
    }

    for (i = 0; i < n; i++) {
        ngx_http_cast_jwk_free(&keys[i]);
    }

    /* bad sets */

#define BAD(text, want, name)                                                 \
    n = 0; skipped = 0; err = "ok";                                           \
    rc = ngx_http_cast_jwks_parse(pool, (u_char *) text, strlen(text), keys,  \
                                  8, &n, &skipped, &err);                    \
    is(rc == NGX_OK ? "ok" : err, want, name);                                \
    for (i = 0; i < n; i++) { ngx_http_cast_jwk_free(&keys[i]); }

    BAD("not json", "not a JSON object (a JWK Set or a JWK)", "not JSON");
    BAD("{\"keys\":{}}", "\"keys\" is not an array", "keys an object");
    BAD("{\"keys\":[1]}", "a key is not a JSON object", "a key a number");
    BAD("{\"keys\":[{}]}", "a key has no \"kty\"", "no kty");
    BAD("{\"kty\":\"oct\",\"k\":\"c2hvcnQ\"}",
        "an HS256 key is shorter than 32 bytes", "short oct key");
    BAD("{\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}",
        "an RSA key has fewer than 2048 bits", "tiny RSA key");
    BAD("{\"kty\":\"RSA\",\"n\":\"A+B\",\"e\":\"AQAB\"}",
        "an RSA key has no valid \"n\" and \"e\"", "n not base64url");
    BAD("{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AQAB\",\"y\":\"AQAB\"}",
        "a P-256 key has no valid \"x\" and \"y\"", "short x, y");

    c = jwk_ec(ec_key, "bad", 1);
    BAD(c, "a P-256 key is invalid (not a point of the curve)",
        "a point off the curve");
    free(c);

    c = jwk_ec(ec_key, "x", 0);
    n = 0;
    rc = ngx_http_cast_jwks_parse(pool, (u_char *) c, strlen(c), keys, 0, &n,
                                  &skipped, &err);
    is(rc == NGX_OK ? "ok" : err, "too many keys", "more keys than room");
    free(c);

    BAD("{\"kty\":\"oct\",\"k\":"
        "\"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=\"}",
        "ok", "a padded k is accepted in a JWK");

    rc = ngx_http_cast_jwk_secret(pool, secret, 31, NULL, keys, &err);
    is(rc == NGX_OK ? "ok" : err, "an HS256 key is shorter than 32 bytes",
       "a 31-byte secret");

    free(a);
    free(b);
    free(jwks);
    ngx_destroy_pool(pool);
}


static void
test_claims(void)
{
    char                    p[1024];
    ngx_pool_t             *pool;
    ngx_http_cast_grant_t   g;

    pool = ngx_create_pool(1024, NULL);

#define BASE  "\"iss\":\"https://auth.example\",\"aud\":\"cast-hub\""

    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d,\"hub.topic\":\"T1\","
             "\"sub\":\"u1\",\"jti\":\"j1\",\"scope\":\"openid "
             "fhircast/Patient-open.read fhircast/*.write\"}", NOW + 100);
    is(claims(p, &g, pool), "ok", "valid claims");
    ngx_test_str(&g.topic, "T1", "the topic claim");
    ngx_test_str(&g.subject, "u1", "sub");
    ngx_test_str(&g.id, "j1", "jti");
    ngx_test_ok(g.expires == NOW + 100, "exp");
    ngx_test_ok(g.scopes.n == 2, "two fhircast scopes, openid ignored");

    snprintf(p, sizeof(p), "{" BASE "}");
    is(claims(p, &g, pool), "the token has no \"exp\"", "no exp");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":\"soon\"}");
    is(claims(p, &g, pool), "the token's \"exp\" is not a time",
       "exp a string");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":-5}");
    is(claims(p, &g, pool), "the token's \"exp\" is not a time", "exp < 0");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":1e300}");
    is(claims(p, &g, pool), "the token's \"exp\" is not a time", "exp huge");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d}", NOW - 30);
    is(claims(p, &g, pool), "the token expired", "exp = now - leeway");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d}", NOW - 29);
    is(claims(p, &g, pool), "ok", "exp within the leeway");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d.5}", NOW + 10);
    is(claims(p, &g, pool), "ok", "exp with a fraction");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d,\"nbf\":%d}", NOW + 100,
             NOW + 31);
    is(claims(p, &g, pool), "the token is not valid yet", "nbf ahead");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d,\"nbf\":%d}", NOW + 100,
             NOW + 30);
    is(claims(p, &g, pool), "ok", "nbf within the leeway");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d,\"nbf\":null}", NOW + 100);
    is(claims(p, &g, pool), "the token's \"nbf\" is not a time", "nbf null");
    snprintf(p, sizeof(p), "{\"aud\":\"cast-hub\",\"exp\":%d}", NOW + 100);
    is(claims(p, &g, pool), "the token is from another issuer", "no iss");
    snprintf(p, sizeof(p), "{\"iss\":\"https://auth.example/\","
             "\"aud\":\"cast-hub\",\"exp\":%d}", NOW + 100);
    is(claims(p, &g, pool), "the token is from another issuer",
       "iss compared exactly");
    snprintf(p, sizeof(p), "{\"iss\":\"https://auth.example\","
             "\"aud\":[\"a\",\"cast-hub\"],\"exp\":%d}", NOW + 100);
    is(claims(p, &g, pool), "ok", "aud array");
    snprintf(p, sizeof(p), "{\"iss\":\"https://auth.example\","
             "\"aud\":[\"a\",1],\"exp\":%d}", NOW + 100);
    is(claims(p, &g, pool), "the token is for another audience",
       "aud array without ours");
    snprintf(p, sizeof(p), "{\"iss\":\"https://auth.example\","
             "\"exp\":%d}", NOW + 100);
    is(claims(p, &g, pool), "the token is for another audience", "no aud");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d,\"hub.topic\":5}",
             NOW + 100);
    is(claims(p, &g, pool),
       "the token's topic claim is not a string of 1 to 1024 bytes",
       "topic a number");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d,\"hub.topic\":\"\"}",
             NOW + 100);
    is(claims(p, &g, pool),
       "the token's topic claim is not a string of 1 to 1024 bytes",
       "topic empty");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d}", NOW + 100);
    is(claims(p, &g, pool), "ok", "no topic claim: valid, topic empty");
    ngx_test_ok(g.topic.len == 0 && g.scopes.n == 0, "no topic, no scope");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d,\"scp\":[\"fhircast/"
             "a.read\",\"fhircast/b.write\"]}", NOW + 100);
    is(claims(p, &g, pool), "ok", "scp array");
    ngx_test_ok(g.scopes.n == 2 && g.scopes.scope[1].write, "scp read");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d,\"scp\":[1]}", NOW + 100);
    is(claims(p, &g, pool), "the token's scopes are not a string or an array "
       "of strings, or hold more than 256 fhircast scopes", "scp [1]");
    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d,\"sub\":7}", NOW + 100);
    is(claims(p, &g, pool), "ok", "sub not a string: not kept");
    ngx_test_ok(g.subject.len == 0, "no subject");

    ngx_destroy_pool(pool);
}


static void
test_scopes(void)
{
    char                    big[8192], *p;
    ngx_str_t               ev, list;
    ngx_uint_t              i;
    ngx_pool_t             *pool;
    ngx_http_cast_scopes_t  s;

    pool = ngx_create_pool(1024, NULL);

#define SCOPES(text)                                                          \
    ngx_http_cast_scopes_parse(pool, (u_char *) text, strlen(text), &s)

#define ALLOW(name, mode)                                                     \
    (ev.data = (u_char *) name, ev.len = strlen(name),                        \
     ngx_http_cast_scopes_allow(&s, &ev, mode))

    SCOPES("fhircast/Patient-open.read fhircast/ImagingStudy-open.write "
           "fhircast/Encounter-open.rs fhircast/Encounter-close.cud "
           "fhircast/org.example.x.* fhircast/bad fhircast/.read "
           "fhircast/y. fhircast/z.sr fhircast/z.rr fhircast/a,b.write "
           "launch fhircast/ok.c");
    ngx_test_ok(s.n == 6, "six valid fhircast scopes of twelve (%lu)",
                (unsigned long) s.n);
    ngx_test_ok(ALLOW("patient-open", NGX_HTTP_CAST_SCOPE_READ)
                && !ALLOW("patient-open", NGX_HTTP_CAST_SCOPE_WRITE),
                ".read reads, lowercase");
    ngx_test_ok(!ALLOW("imagingstudy-open", NGX_HTTP_CAST_SCOPE_READ)
                && ALLOW("imagingstudy-open", NGX_HTTP_CAST_SCOPE_WRITE),
                ".write writes");
    ngx_test_ok(ALLOW("encounter-open", NGX_HTTP_CAST_SCOPE_READ)
                && !ALLOW("encounter-open", NGX_HTTP_CAST_SCOPE_WRITE),
                "v2 .rs reads");
    ngx_test_ok(!ALLOW("encounter-close", NGX_HTTP_CAST_SCOPE_READ)
                && ALLOW("encounter-close", NGX_HTTP_CAST_SCOPE_WRITE),
                "v2 .cud writes");
    ngx_test_ok(ALLOW("org.example.x", NGX_HTTP_CAST_SCOPE_READ)
                && ALLOW("org.example.x", NGX_HTTP_CAST_SCOPE_WRITE),
                "reverse-domain name, .*");
    ngx_test_ok(ALLOW("ok", NGX_HTTP_CAST_SCOPE_WRITE), "v2 .c writes");
    ngx_test_ok(!ALLOW("z", NGX_HTTP_CAST_SCOPE_READ),
                ".sr (wrong order) and .rr ignored");
    ngx_test_ok(!ALLOW("a,b", NGX_HTTP_CAST_SCOPE_WRITE),
                "a name with a comma ignored");
    ngx_test_ok(!ALLOW("*", NGX_HTTP_CAST_SCOPE_READ),
                "\"*\" asked: only a \"*\" scope gives it");

    ngx_http_cast_scopes_writable(pool, &s, &list);
    ngx_test_str(&list, "imagingstudy-open,encounter-close,org.example.x,ok",
                 "writable list");
    ev.data = (u_char *) "ok";
    ev.len = 2;
    ngx_test_ok(ngx_http_cast_scopes_listed(&list, &ev), "listed: last");
    ev.data = (u_char *) "o";
    ev.len = 1;
    ngx_test_ok(!ngx_http_cast_scopes_listed(&list, &ev),
                "listed: no prefix match");
    ngx_test_ok(ngx_http_cast_scopes_any(&s, NGX_HTTP_CAST_SCOPE_READ),
                "any read");

    SCOPES("fhircast/*.read fhircast/a.write fhircast/A.write");
    ngx_test_ok(ALLOW("anything", NGX_HTTP_CAST_SCOPE_READ)
                && ALLOW("*", NGX_HTTP_CAST_SCOPE_READ), "*.read");
    ngx_http_cast_scopes_writable(pool, &s, &list);
    ngx_test_str(&list, "a", "writable once each");

    SCOPES("fhircast/x.read fhircast/*.*");
    ngx_http_cast_scopes_writable(pool, &s, &list);
    ngx_test_str(&list, "*", "*.* writes everything");
    ev.data = (u_char *) "whatever";
    ev.len = 8;
    ngx_test_ok(ngx_http_cast_scopes_listed(&list, &ev), "listed in \"*\"");

    SCOPES("openid profile");
    ngx_test_ok(s.n == 0 && !ngx_http_cast_scopes_any(&s,
                                                 NGX_HTTP_CAST_SCOPE_READ),
                "no fhircast scope");
    ngx_http_cast_scopes_writable(pool, &s, &list);
    ngx_test_ok(list.len == 0, "nothing writable");

    p = big;

    for (i = 0; i < 257; i++) {
        p += sprintf(p, "fhircast/e%lu.read ", (unsigned long) i);
    }

    ngx_test_ok(SCOPES(big) == NGX_DECLINED, "257 fhircast scopes refused");

    ngx_destroy_pool(pool);
}


/* signing (the token endpoints): checked against sign() above */

static void
test_sign(void)
{
    char                   *want, *payload, big[20000];
    json_t                 *c, *bad;
    ngx_int_t               rc;
    u_char                 *p1, *p2, *p3, *q;
    ngx_str_t               tok, tok2, kid;
    ngx_uint_t              i, errors, oks, good;
    ngx_pool_t             *pool;
    const char             *err;
    ngx_http_cast_jwk_t     key, other, named, rsa;
    ngx_http_cast_jwt_t     jwt;
    ngx_http_cast_grant_t   g;
    ngx_http_cast_jwt_rules_t  rules;

    pool = ngx_create_pool(1024, NULL);

    ngx_http_cast_jwk_secret(pool, secret, 32, NULL, &key, &err);
    ngx_http_cast_jwk_secret(pool,
                             (u_char *) "another secret, 32 bytes long!!!",
                             32, NULL, &other, &err);
    ngx_str_set(&kid, "k1");
    ngx_http_cast_jwk_secret(pool, secret, 32, &kid, &named, &err);

    c = json_pack("{s:s,s:s,s:i,s:i,s:s,s:s,s:s,s:s}",
                  "iss", "https://auth.example", "aud", "cast-hub",
                  "iat", NOW, "exp", NOW + 100, "jti", "j1", "typ", "access",
                  "hub.topic", "USER-1",
                  "scope", "openid fhircast/*.read fhircast/*.write");

    rc = ngx_http_cast_jwt_sign(pool, &key, c, &tok);
    ngx_test_ok(rc == NGX_OK, "sign: NGX_OK");

    /* the same bytes as an independent HMAC over the same JSON text */

    payload = json_dumps(c, JSON_COMPACT);
    want = sign("{\"alg\":\"HS256\",\"typ\":\"JWT\"}", payload, "HS256",
                NULL);
    ngx_test_ok(rc == NGX_OK && tok.len == strlen(want)
                && memcmp(tok.data, want, tok.len) == 0,
                "sign: the header, the compact claims, the HMAC-SHA256 as "
                "computed independently");
    free(want);
    free(payload);

    /* it verifies, and its claims are what was signed */

    ngx_test_ok(ngx_http_cast_jwt_decode(pool, tok.data, tok.len, &jwt, &err)
                == NGX_OK, "sign: the token decodes");
    ngx_test_ok(jwt.alg == NGX_HTTP_CAST_JWT_HS256 && jwt.kid.len == 0,
                "sign: alg HS256, no kid");
    ngx_test_ok(ngx_http_cast_jwt_verify(&jwt, &key, 1) == NGX_OK,
                "sign: verifies with the key");
    ngx_test_ok(ngx_http_cast_jwt_verify(&jwt, &other, 1) == NGX_DECLINED,
                "sign: not with another key");
    ngx_test_ok(json_equal(jwt.claims, c), "sign: the claims round-trip");

    ngx_str_set(&rules.issuer, "https://auth.example");
    ngx_str_set(&rules.audience, "cast-hub");
    ngx_str_set(&rules.topic_claim, "hub.topic");
    rules.leeway = 0;
    rules.now = NOW;

    rc = ngx_http_cast_jwt_claims(pool, &jwt, &rules, &g, &err);
    ngx_test_ok(rc == NGX_OK && g.topic.len == 6
                && ngx_strncmp(g.topic.data, "USER-1", 6) == 0
                && g.expires == NOW + 100
                && ngx_http_cast_scopes_any(&g.scopes,
                                            NGX_HTTP_CAST_SCOPE_READ)
                && ngx_http_cast_scopes_any(&g.scopes,
                                            NGX_HTTP_CAST_SCOPE_WRITE),
                "sign: the claims grant the topic and the scopes");
    ngx_http_cast_jwt_free(&jwt);

    /* a byte of the signature changed, or another token's payload */

    want = strndup((char *) tok.data, tok.len);
    want[tok.len - 10] = (want[tok.len - 10] == 'A') ? 'B' : 'A';
    is(check(want, &key, 1), "bad signature",
       "sign: a changed signature byte is refused");
    free(want);

    bad = json_pack("{s:s,s:i}", "hub.topic", "USER-2", "exp", NOW + 100);
    rc = ngx_http_cast_jwt_sign(pool, &key, bad, &tok2);
    json_decref(bad);
    want = malloc(tok.len + tok2.len + 1);
    p1 = memchr(tok.data, '.', tok.len);
    p2 = memchr(tok2.data, '.', tok2.len);
    p3 = memchr(p2 + 1, '.', tok2.data + tok2.len - p2 - 1);
    q = memchr(p1 + 1, '.', tok.data + tok.len - p1 - 1);
    snprintf(want, tok.len + tok2.len + 1, "%.*s%.*s%.*s",
             (int) (p1 - tok.data), tok.data, (int) (p3 - p2), p2,
             (int) (tok.data + tok.len - q), q);
    is(rc == NGX_OK ? check(want, &key, 1) : "no token", "bad signature",
       "sign: another token's payload under this signature is refused");
    free(want);

    /* the key's id is in the header */

    rc = ngx_http_cast_jwt_sign(pool, &named, c, &tok);
    ngx_test_ok(rc == NGX_OK
                && ngx_http_cast_jwt_decode(pool, tok.data, tok.len, &jwt,
                                            &err) == NGX_OK
                && jwt.kid.len == 2 && ngx_strncmp(jwt.kid.data, "k1", 2) == 0
                && ngx_http_cast_jwt_verify(&jwt, &named, 1) == NGX_OK,
                "sign: the kid in the header, and it verifies");
    if (rc == NGX_OK) {
        ngx_http_cast_jwt_free(&jwt);
    }

    /* refusals */

    ngx_memzero(&rsa, sizeof(ngx_http_cast_jwk_t));
    rsa.alg = NGX_HTTP_CAST_JWT_RS256;
    ngx_test_ok(ngx_http_cast_jwt_sign(pool, &rsa, c, &tok) == NGX_DECLINED,
                "sign: not with an RS256 key");

    rsa = key;
    rsa.secret.len = 31;
    ngx_test_ok(ngx_http_cast_jwt_sign(pool, &rsa, c, &tok) == NGX_DECLINED,
                "sign: not with a secret of 31 bytes");

    rsa = key;
    rsa.kid.data = (u_char *) "\xff\xfe";
    rsa.kid.len = 2;
    ngx_test_ok(ngx_http_cast_jwt_sign(pool, &rsa, c, &tok) == NGX_DECLINED,
                "sign: not with a kid that is not UTF-8");

    bad = json_array();
    ngx_test_ok(ngx_http_cast_jwt_sign(pool, &key, bad, &tok) == NGX_DECLINED,
                "sign: claims that are not an object are refused");
    json_decref(bad);

    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    bad = json_pack("{s:s}", "big", big);
    ngx_test_ok(ngx_http_cast_jwt_sign(pool, &key, bad, &tok) == NGX_DECLINED,
                "sign: a token longer than 16384 bytes is refused");
    json_decref(bad);

    /* every allocation failing in turn */

    errors = 0;
    oks = 0;
    good = 1;

    for (i = 1; i < 12; i++) {
        ngx_test_alloc_fail = i;
        rc = ngx_http_cast_jwt_sign(pool, &key, c, &tok);
        ngx_test_alloc_fail = 0;

        if (rc == NGX_ERROR) {
            errors++;

        } else if (rc == NGX_OK) {
            oks++;
            want = strndup((char *) tok.data, tok.len);
            good &= (strcmp(check(want, &key, 1), "ok") == 0);
            free(want);
        }
    }

    ngx_test_ok(errors == 3 && oks == 8 && good,
                "sign: allocation failures are NGX_ERROR (%lu), else a good "
                "token (%lu)", (unsigned long) errors, (unsigned long) oks);

    json_decref(c);
    ngx_destroy_pool(pool);
}


/* every allocation failing in turn: NGX_ERROR or done, never a crash */

static void
test_oom(void)
{
    char                   p[512], *tok;
    ngx_int_t              rc;
    ngx_uint_t             i, errors, oks;
    ngx_pool_t            *pool;
    const char            *err;
    ngx_http_cast_jwt_t    jwt;
    ngx_http_cast_grant_t  g;
    ngx_http_cast_jwt_rules_t  rules;

    snprintf(p, sizeof(p), "{" BASE ",\"exp\":%d,\"hub.topic\":\"T\","
             "\"sub\":\"u\",\"jti\":\"j\",\"scp\":[\"fhircast/a.read\","
             "\"fhircast/b.write\"]}", NOW + 100);
    tok = sign("{\"alg\":\"HS256\",\"kid\":\"k\"}", p, "HS256", NULL);

    ngx_str_set(&rules.issuer, "https://auth.example");
    ngx_str_set(&rules.audience, "cast-hub");
    ngx_str_set(&rules.topic_claim, "hub.topic");
    rules.leeway = 30;
    rules.now = NOW;

    errors = 0;
    oks = 0;

    for (i = 1; i < 40; i++) {
        pool = ngx_create_pool(1024, NULL);
        ngx_test_alloc_fail = i;

        rc = ngx_http_cast_jwt_decode(pool, (u_char *) tok, strlen(tok), &jwt,
                                      &err);
        if (rc == NGX_OK) {
            rc = ngx_http_cast_jwt_claims(pool, &jwt, &rules, &g, &err);
            ngx_http_cast_jwt_free(&jwt);
        }

        ngx_test_alloc_fail = 0;

        if (rc == NGX_OK) {
            oks++;

        } else if (rc == NGX_ERROR) {
            errors++;
        }

        ngx_destroy_pool(pool);
    }

    ngx_test_ok(errors > 3 && oks > 0 && errors + oks == 39,
                "allocation failures: NGX_ERROR (%lu), or done (%lu), never "
                "a wrong answer", (unsigned long) errors,
                (unsigned long) oks);

    free(tok);
}


int
main(void)
{
    ngx_test_core_init();

    rsa_key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    rsa_other = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t) 2048);
    ec_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    ec_other = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");

    if (rsa_key == NULL || rsa_other == NULL || ec_key == NULL
        || ec_other == NULL)
    {
        printf("not ok 1 - OpenSSL could not make keys\n");
        return 1;
    }

    test_decode();
    test_keys();
    test_claims();
    test_scopes();
    test_sign();
    test_oom();

    EVP_PKEY_free(rsa_key);
    EVP_PKEY_free(rsa_other);
    EVP_PKEY_free(ec_key);
    EVP_PKEY_free(ec_other);

    return ngx_test_done();
}
