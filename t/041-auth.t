# Authorization (SPEC 6, reference fhircast-stu3.md 7): bearer tokens with
# FHIRcast scopes, bound to their topic.
#
# Keys and tokens are made at test time (t/lib/CastAuth.pm: openssl and
# core Perl) in a temporary directory: an RSA key "r1", a P-256 key "e1"
# (their JWK Set), an HS256 secret "h1" (a key file), and keys the hub
# does not know (an attacker's).  Blocks whose title starts with "[redis]"
# run the same hub in Redis mode on a private redis-server
# (TEST_NGINX_REDIS_PORT, 6441): the grant then travels in the Redis
# record and in the renew control message.  The "cast_auth request"
# blocks start a stub introspection service (Perl, 127.0.0.1,
# TEST_NGINX_INTROSPECT_PORT: the server port + 6) that nginx's
# auth_request asks.
#
# Covered: no token, not a bearer token, malformed, forged (unknown key,
# wrong algorithm, "none", changed payload), expired, not yet valid,
# wrong audience, wrong issuer, no "exp", wrong topic, no topic claim,
# scope-less, read-only (publish 403), the events granted (202 and the
# confirmation), SMART v1/v2 scope forms, the lease capped at the token's
# expiry (and the socket closed then), a socket's publishes limited to its
# topic and write scopes, topic A never receiving or publishing topic B's
# events, unsubscribe bound to the topic, a re-subscribe that changes the
# grant, key rotation by reload, the directive errors, and auth_request.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use CastAuth;
use CastRedis;
use IO::Socket::INET ();
use POSIX ();
use Time::HiRes qw(time sleep);

master_on();
no_shuffle();
repeat_each(1);
log_level('info');

$ENV{TEST_NGINX_REDIS_PORT} ||= 6441;
$ENV{TEST_NGINX_INTROSPECT_PORT} ||= CastTest::server_port() + 6;

our $Keys = CastAuth->new;
$Keys->rsa('r1')->ec('e1')->secret('h1');
$Keys->rsa('r9')->ec('e9')->secret('h9');           # unknown to the hub
$Keys->jwks('jwks.json', 'r1', 'e1');
$Keys->secret_file('h1.key', 'h1');
$ENV{TEST_NGINX_AUTH_DIR} = $Keys->dir;

our $Redis;

our $Auth = <<'_EOC_';
        cast_auth jwt;
        cast_auth_jwks $TEST_NGINX_AUTH_DIR/jwks.json;
        cast_auth_secret $TEST_NGINX_AUTH_DIR/h1.key kid=h1;
        cast_auth_issuer https://auth.example;
        cast_auth_audience cast-hub;
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    my $redis = $block->name =~ /\[redis\]/;
    if ($redis && !$Redis) {
        $Redis = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->start;
    }
    if (!defined $block->http_config) {
        $block->set_value('http_config', $redis
            ? "    cast_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT};\n" : '');
    }
    if (!defined $block->config) {
        $block->set_value('config', <<_EOC_);
    location /api/hub {
        cast_hub;
$Auth    }
    location /open/api/hub { cast_hub; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_
    }
    $block->set_value('request', "GET /cast/status\n")
        if !defined $block->request && !defined $block->must_die;
    if (!defined $block->no_error_log && !defined $block->must_die) {
        $block->set_value('no_error_log',
                          "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

# ---- helpers (package main; init code starts with "package main;") ----

sub claims { CastAuth::claims(@_) }

# a token of key $kid for topic $topic with these scopes (and claims)
sub tok {
    my ($kid, $topic, $scope, %c) = @_;
    return $Keys->token($kid, claims(topic => $topic, scope => $scope, %c));
}

sub form {
    my %f = @_;
    my @p;
    for my $k (sort keys %f) {
        (my $v = $f{$k}) =~ s/([^A-Za-z0-9._~*-])/sprintf('%%%02X', ord $1)/ge;
        push @p, "$k=$v";
    }
    return join '&', @p;
}

sub bearer { defined $_[0] ? (Authorization => "Bearer $_[0]") : () }

# subscribe($token, $topic, $events, extra fields) -> {code, headers, json, path}
sub subscribe {
    my ($token, $topic, $events, %extra) = @_;
    my $base = delete $extra{-base} || '/api/hub';
    my @h = exists $extra{-auth} ? (Authorization => delete $extra{-auth})
                                 : bearer($token);
    my %f = ('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket',
             'hub.topic' => $topic, 'hub.events' => $events,
             'hub.lease_seconds' => 3600, 'subscriber.name' => 'auth', %extra);
    delete $f{$_} for grep { !defined $f{$_} } keys %f;
    my ($code, $h, $body) = http_request('POST', $base, form(%f),
        'Content-Type' => 'application/x-www-form-urlencoded', @h);
    my $j = eval { json_decode($body) } || {};
    my ($path) = ($j->{'hub.channel.endpoint'} || '')
                 =~ m{^wss?://[^/]+(/bind/[0-9a-f]{32})$};
    return { code => $code, headers => $h, json => $j, body => $body,
             path => $path, topic => $topic,
             endpoint => $j->{'hub.channel.endpoint'} };
}

sub event {
    my ($topic, $name, $id) = @_;
    return { id => $id || 'ev-' . int(rand(1e9)),
             timestamp => '2026-12-03T06:12:19.123Z',
             event => { 'hub.topic' => $topic, 'hub.event' => $name,
                        context => [ { key => 'patient',
                                       resource => { resourceType => 'Patient',
                                                     id => 'p1' } } ] } };
}

# publish($token, $topic, $name[, $id, path => ...]) -> (code, headers, body)
sub publish {
    my ($token, $topic, $name, $id, %o) = @_;
    my $path = $o{path} || '/api/hub';
    return http_request('POST', $path, json_encode(event($topic, $name, $id)),
                        'Content-Type' => 'application/json', bearer($token));
}

sub get_context {
    my ($token, $topic) = @_;
    return http_request('GET', "/api/hub/$topic", undef, bearer($token));
}

# connects and reads the greeting and the confirmation
sub connect_ws {
    my ($s) = @_;
    my $ws = CastTest::WS->connect($s->{path});
    my $hello = $ws->recv_json(3);
    my $conf = $ws->recv_json(3);
    return ($ws, $conf);
}

my $SyncN = 0;

# local mode: the text frames that arrive before the pong of a fresh ping
sub sync {
    my ($ws) = @_;
    my $tag = 'sync-' . ++$SyncN;
    $ws->send_ping($tag);
    my @got;
    while (1) {
        my ($op, $p) = $ws->recv_frame(3);
        if (!defined $op) { push @got, '<no pong>'; last }
        last if $op == 10 && $p eq $tag;
        next if $op == 9 || $op == 10;
        push @got, $op == 1 ? $p : $op == 8 ? 'close ' . unpack('n', $p)
                                            : "opcode $op";
    }
    return \@got;
}

# Redis mode too: the frames of the next $secs seconds (ids of events)
sub frames_for {
    my ($ws, $secs) = @_;
    my @got;
    my $deadline = time + $secs;
    while ((my $left = $deadline - time) > 0) {
        my ($op, $p) = $ws->recv_frame($left);
        last if !defined $op;
        next if $op == 9 || $op == 10;
        push @got, $op == 1 ? $p : $op == 8 ? 'close ' . unpack('n', $p)
                                            : "opcode $op";
    }
    return \@got;
}

sub ids {
    return join ',', map {
        my $j = eval { json_decode($_) };
        $j && $j->{error} ? "error:$j->{error}" : $j && defined $j->{id} ? $j->{id} : $_
    } @{ $_[0] };
}

sub www { $_[0]{'www-authenticate'} // '' }

sub flush_redis { $main::Redis->command('FLUSHALL') if $main::Redis }

# ---- the stub introspection service (loopback, a child process) ----
#
# "Authorization: Bearer token-A": active, topic A, reads and writes
# Patient-open, expires in 600 s; token-expired: expiry 10 s ago;
# token-notopic: active, no topic; anything else: 401.

our $StubPid;

sub start_introspection {
    my $port = $ENV{TEST_NGINX_INTROSPECT_PORT};
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $port, Listen => 16,
                                    ReuseAddr => 1, Proto => 'tcp')
        or die "introspection stub: cannot listen on 127.0.0.1:$port: $!\n";
    my $pid = fork;
    die "fork: $!\n" if !defined $pid;
    if ($pid == 0) {
        $SIG{TERM} = sub { POSIX::_exit(0) };
        while (my $c = $srv->accept) {
            my $req = '';
            while ($req !~ /\r\n\r\n/) {
                my $n = sysread($c, $req, 8192, length $req);
                last if !$n;
            }
            my ($token) = $req =~ /^X-Token:\s*Bearer\s+(\S+)/mi;
            $token //= '';
            my $now = time;
            my %h;
            my $status = '200 OK';
            if ($token eq 'token-A') {
                %h = ('X-Cast-Topic' => 'A', 'X-Cast-Subject' => 'user-A',
                      'X-Cast-Scope' => 'openid fhircast/Patient-open.read '
                                        . 'fhircast/Patient-open.write',
                      'X-Cast-Expires' => int($now) + 600);
            } elsif ($token eq 'token-expired') {
                %h = ('X-Cast-Topic' => 'A',
                      'X-Cast-Scope' => 'fhircast/*.*',
                      'X-Cast-Expires' => int($now) - 10);
            } elsif ($token eq 'token-notopic') {
                %h = ('X-Cast-Scope' => 'fhircast/*.*');
            } else {
                $status = '401 Unauthorized';
                %h = ('WWW-Authenticate' => 'Bearer error="invalid_token"');
            }
            my $resp = "HTTP/1.1 $status\r\nContent-Length: 0\r\n"
                       . "Connection: close\r\n";
            $resp .= "$_: $h{$_}\r\n" for sort keys %h;
            print $c "$resp\r\n";
            close $c;
        }
        POSIX::_exit(0);
    }
    close $srv;
    $StubPid = $pid;
    return $pid;
}

sub stop_introspection {
    my ($pid) = @_;
    kill 'TERM', $pid;
    waitpid $pid, 0;
    $StubPid = undef;
}

END { kill 'KILL', $StubPid if $StubPid }

run_tests();

__DATA__

=== TEST 1: off by default: a cast_hub without cast_auth takes requests without a token
--- init
package main;
my $s = subscribe(undef, 'open-1', 'patient-open', -base => '/open/api/hub');
is($s->{code}, 202, 'subscribe without a token where cast_auth is off');
ok(!exists $s->{json}{'hub.events'}, 'the 202 is the plain one');
my ($code) = publish(undef, 'open-1', 'patient-open', undef,
                     path => '/open/api/hub');
is($code, 200, 'publish without a token');



=== TEST 2: no token, another scheme, a malformed header: 401 (RFC 6750 3.1) or 400
--- init
package main;
my $s = subscribe(undef, 'A', 'patient-open');
is($s->{code}, 401, 'subscribe without a token: 401');
is(www($s->{headers}), 'Bearer realm="cast"', 'WWW-Authenticate without an error code');
like($s->{body}, qr/"error":"a bearer token is required"/, 'JSON error body');
$s = subscribe(undef, 'A', 'patient-open', -auth => 'Basic dTpw');
is($s->{code}, 401, 'Basic credentials: 401');
$s = subscribe(undef, 'A', 'patient-open', -auth => 'Bearer a b');
is($s->{code}, 400, '"Bearer a b": 400 invalid_request');
my ($code, $h) = publish(undef, 'A', 'patient-open');
is($code, 401, 'publish without a token: 401');
($code, $h) = get_context(undef, 'A');
is($code, 401, 'GET context without a token: 401');
($code) = http_request('GET', '/api/hub/.well-known/fhircast-configuration');
is($code, 200, 'discovery needs no token');
($code) = http_request('OPTIONS', '/api/hub');
is($code, 204, 'a preflight needs no token');



=== TEST 3: valid tokens of each algorithm (HS256 secret file, RS256 and ES256 from the JWK Set) subscribe and publish
--- init
package main;
for my $kid ('h1', 'r1', 'e1') {
    my $t = tok($kid, "T-$kid", 'fhircast/*.read fhircast/patient-open.write');
    my $s = subscribe($t, "T-$kid", 'patient-open');
    is($s->{code}, 202, "$kid: subscribe 202") or diag($s->{body});
    my ($ws, $conf) = connect_ws($s);
    is($conf->{'hub.events'}, 'patient-open', "$kid: confirmed");
    my ($code, undef, $body) = publish($t, "T-$kid", 'Patient-open', "id-$kid");
    is($code, 200, "$kid: publish 200") or diag($body);
    is(ids(sync($ws)), "id-$kid", "$kid: the event is delivered");
    ($code, undef, $body) = get_context($t, "T-$kid");
    is($code, 200, "$kid: GET context 200");
    like($body, qr/"patient"/, "$kid: the context");
}



=== TEST 4: forged tokens: unknown keys, a known kid signed by another key, alg none, HS256 with the RSA key as secret, a changed payload
--- init
package main;
my $scope = 'fhircast/*.*';
my @forged = (
    [ 'unknown HS256 key', $main::Keys->token('h9', claims(topic => 'A', scope => $scope)) ],
    [ 'unknown RSA key', $main::Keys->token('r9', claims(topic => 'A', scope => $scope)) ],
    [ 'unknown P-256 key', $main::Keys->token('e9', claims(topic => 'A', scope => $scope)) ],
    [ 'kid r1, signed by r9', $main::Keys->token('r1', claims(topic => 'A', scope => $scope), sign_with => 'r9') ],
    [ 'kid e1, signed by e9', $main::Keys->token('e1', claims(topic => 'A', scope => $scope), sign_with => 'e9') ],
    [ 'kid h1, signed by h9', $main::Keys->token('h1', claims(topic => 'A', scope => $scope), sign_with => 'h9') ],
    [ 'alg none', $main::Keys->token('h1', claims(topic => 'A', scope => $scope), alg => 'none') ],
    [ 'alg HS512', $main::Keys->token('h1', claims(topic => 'A', scope => $scope), header => { alg => 'HS512' }) ],
);
# HS256 keyed with the public RSA JWK text (the classic confusion)
$main::Keys->secret('confused', main::json_encode($main::Keys->jwk('r1')));
push @forged, [ 'HS256 keyed with the RSA public key',
                $main::Keys->token('r1', claims(topic => 'A', scope => $scope), sign_with => 'confused') ];
# a valid token whose payload is replaced (topic A -> B)
my $good = tok('r1', 'A', $scope);
my ($h, $p, $sig) = split /\./, $good;
my $other = CastAuth::b64url(main::json_encode(claims(topic => 'B', scope => $scope)));
push @forged, [ 'payload changed', "$h.$other.$sig" ];
push @forged, [ 'signature cut', "$h.$p." . substr($sig, 0, 20) ];
push @forged, [ 'not a JWT', 'abc.def' ];
push @forged, [ 'JWE-like, 5 parts', "$h.$p.$sig.x.y" ];
for my $f (@forged) {
    my ($name, $t) = @$f;
    my $s = subscribe($t, 'A', 'patient-open');
    is($s->{code}, 401, "$name: subscribe 401") or diag($s->{body});
    like(www($s->{headers}), qr/^Bearer realm="cast", error="invalid_token", error_description="[^"]+"$/,
         "$name: error=\"invalid_token\"");
    my ($code) = publish($t, 'A', 'patient-open');
    is($code, 401, "$name: publish 401");
}
is(subscribe($good, 'A', 'patient-open')->{code}, 202, 'the untouched token works');



=== TEST 5: expired, not yet valid, no exp, wrong audience, wrong issuer: 401; the clock skew allowed is 30 s
--- init
package main;
my $scope = 'fhircast/*.*';
my @bad = (
    [ 'expired 100 s ago', claims(topic => 'A', scope => $scope, exp => -100), qr/expired/ ],
    [ 'not valid for 300 s', claims(topic => 'A', scope => $scope, nbf => 300), qr/not valid yet/ ],
    [ 'no exp', claims(topic => 'A', scope => $scope, exp => undef), qr/no \\"exp\\"/ ],
    [ 'exp a string', { %{ claims(topic => 'A', scope => $scope) }, exp => 'tomorrow' }, qr/not a time/ ],
    [ 'wrong audience', claims(topic => 'A', scope => $scope, aud => 'other-hub'), qr/another audience/ ],
    [ 'no audience', claims(topic => 'A', scope => $scope, aud => undef), qr/another audience/ ],
    [ 'wrong issuer', claims(topic => 'A', scope => $scope, iss => 'https://evil.example'), qr/another issuer/ ],
);
for my $b (@bad) {
    my ($name, $c, $re) = @$b;
    my $t = $main::Keys->token('e1', $c);
    my $s = subscribe($t, 'A', 'patient-open');
    is($s->{code}, 401, "$name: subscribe 401");
    like($s->{body}, $re, "$name: the reason");
    my ($code) = publish($t, 'A', 'patient-open');
    is($code, 401, "$name: publish 401");
}
my $t = $main::Keys->token('e1', claims(topic => 'A', scope => $scope, nbf => 10));
is(subscribe($t, 'A', 'patient-open')->{code}, 202, 'nbf 10 s ahead: within the skew');
$t = $main::Keys->token('e1', claims(topic => 'A', scope => $scope, aud => ['x', 'cast-hub']));
is(subscribe($t, 'A', 'patient-open')->{code}, 202, 'aud an array holding ours');
$t = $main::Keys->token('e1', claims(topic => 'A', scope => $scope, exp => -10));
my ($code) = publish($t, 'A', 'patient-open');
is($code, 200, 'expired 10 s ago: within the skew, publish accepted');
is(subscribe($t, 'A', 'patient-open')->{code}, 401, '... but no lease can be granted past its expiry');



=== TEST 6: the topic binds: a token for A can neither subscribe to, publish on, read nor unsubscribe from B; no topic claim: 403
--- init
package main;
my $tA = tok('r1', 'A', 'fhircast/*.*');
my $tB = tok('r1', 'B', 'fhircast/*.*');
my $s = subscribe($tA, 'B', 'patient-open');
is($s->{code}, 403, 'subscribe to B with the token for A: 403');
like(www($s->{headers}), qr/error="insufficient_scope", error_description="the token is for another topic"/,
     'insufficient_scope, another topic');
my ($code, $h, $body) = publish($tA, 'B', 'patient-open');
is($code, 403, 'publish on B (topic in the body): 403');
($code) = http_request('POST', '/api/hub/B', json_encode(event('B', 'patient-open')),
                       'Content-Type' => 'application/json', bearer($tA));
is($code, 403, 'publish on B (POST {base}/B): 403');
($code) = get_context($tA, 'B');
is($code, 403, 'GET {base}/B: 403');
my $sb = subscribe($tB, 'B', 'patient-open');
is($sb->{code}, 202, 'B subscribes with its own token');
($code) = http_request('POST', '/api/hub', form('hub.mode' => 'unsubscribe',
        'hub.channel.type' => 'websocket', 'hub.topic' => 'A',
        'hub.channel.endpoint' => $sb->{endpoint}),
        'Content-Type' => 'application/x-www-form-urlencoded', bearer($tA));
is($code, 404, "B's endpoint with A's token and topic: not found");
($code) = http_request('POST', '/api/hub', form('hub.mode' => 'unsubscribe',
        'hub.channel.type' => 'websocket',
        'hub.channel.endpoint' => $sb->{endpoint}),
        'Content-Type' => 'application/x-www-form-urlencoded', bearer($tA));
is($code, 404, "B's endpoint with A's token and no topic: not found");
($code) = http_request('POST', '/api/hub', form('hub.mode' => 'unsubscribe',
        'hub.channel.type' => 'websocket', 'hub.topic' => 'B',
        'hub.channel.endpoint' => $sb->{endpoint}),
        'Content-Type' => 'application/x-www-form-urlencoded', bearer($tA));
is($code, 403, "B's endpoint with A's token and topic B: 403");
($code) = http_request('POST', '/api/hub', form('hub.mode' => 'unsubscribe',
        'hub.channel.type' => 'websocket', 'hub.topic' => 'B',
        'hub.channel.endpoint' => $sb->{endpoint}),
        'Content-Type' => 'application/x-www-form-urlencoded', bearer($tB));
is($code, 202, "B's own token unsubscribes it");
my $none = $main::Keys->token('h1', claims(scope => 'fhircast/*.*'));
$s = subscribe($none, 'A', 'patient-open');
is($s->{code}, 403, 'a token without a topic claim: 403');
like($s->{body}, qr/not bound to a topic/, 'the reason');
is(subscribe(tok('h1', '*', 'fhircast/*.*'), '*', '*')->{code}, 202,
   'topic "*" (cast monitoring) needs a token whose topic is "*"');
is(subscribe($tA, '*', '*')->{code}, 403, '... the token for A cannot');
open my $log, '<', $Test::Nginx::Util::ErrLogFile or die "error log: $!";
my $text = do { local $/; <$log> };
close $log;
like($text, qr/bearer token of sub "user-1", jti "jti-\d+" refused: the token is for another topic/,
     'a refusal is logged at info with the subject and id');
my @parts = map { (split /\./, $_)[1, 2] } $tA, $tB, $none;
is(scalar(grep { index($text, $_) >= 0 } @parts), 0,
   'no part of a token is logged');



=== TEST 7: scopes: none (403 everywhere), read only (publish 403 naming the scope), the events granted are those readable (202 and confirmation)
--- init
package main;
my $t = tok('e1', 'A', 'openid profile patient/*.read');
my $s = subscribe($t, 'A', 'patient-open');
is($s->{code}, 403, 'scope-less: subscribe 403');
like(www($s->{headers}), qr/error="insufficient_scope"/, 'insufficient_scope');
my ($code) = publish($t, 'A', 'patient-open');
is($code, 403, 'scope-less: publish 403');
($code) = get_context($t, 'A');
is($code, 403, 'scope-less: GET context 403');
$t = tok('e1', 'A', 'fhircast/Patient-open.read fhircast/ImagingStudy-open.read');
my $h;
($code, $h) = publish($t, 'A', 'Patient-open');
is($code, 403, 'read only: publish 403');
like(www($h), qr/error="insufficient_scope", error_description="the token may not publish this event", scope="fhircast\/patient-open.write"/,
     'the scope that would do');
($code) = get_context($t, 'A');
is($code, 200, 'read scope: GET context 200');
$s = subscribe($t, 'A', 'Patient-open,Patient-close,imagingstudy-open');
is($s->{code}, 202, 'subscribe to three, two readable: 202');
is($s->{json}{'hub.events'}, 'Patient-open,imagingstudy-open', 'the 202 names what was granted, as asked');
ok($s->{json}{'hub.lease_seconds'} > 3500, 'and the lease');
my ($ws, $conf) = connect_ws($s);
is($conf->{'hub.events'}, 'Patient-open,imagingstudy-open', 'the confirmation says the same');
my $w = tok('e1', 'A', 'fhircast/*.write');
publish($w, 'A', 'Patient-close', 'close-1');
publish($w, 'A', 'ImagingStudy-open', 'study-1');
is(ids(sync($ws)), 'study-1', 'the socket gets only the granted events');
$s = subscribe($t, 'A', 'Encounter-open');
is($s->{code}, 403, 'none readable: 403');
$s = subscribe($t, 'A', '*');
is($s->{json}{'hub.events'}, 'patient-open,imagingstudy-open', '"*" asked: the readable events by name');
$s = subscribe(tok('e1', 'A', 'fhircast/*.read'), 'A', '*');
is($s->{json}{'hub.events'}, '*', '"*" asked with fhircast/*.read: "*"');



=== TEST 8: SMART v1 and v2 scope forms: .read .write .* .rs .cud .c, reverse-domain names, case-insensitive event names
--- init
package main;
my @cases = (
    [ 'fhircast/Patient-open.rs', 'Patient-open', 202, 403 ],
    [ 'fhircast/Patient-open.cud', 'Patient-open', 403, 200 ],
    [ 'fhircast/Patient-open.c', 'Patient-open', 403, 200 ],
    [ 'fhircast/Patient-open.cruds', 'Patient-open', 202, 200 ],
    [ 'fhircast/Patient-open.*', 'PATIENT-OPEN', 202, 200 ],
    [ 'fhircast/*.read', 'Patient-open', 202, 403 ],
    [ 'fhircast/org.example.thing.write', 'org.example.thing', 403, 200 ],
    [ 'fhircast/Patient-open.sr', 'Patient-open', 403, 403 ],
    [ 'fhircast/Patient-open.admin', 'Patient-open', 403, 403 ],
    [ 'user/Patient-open.read', 'Patient-open', 403, 403 ],
);
for my $c (@cases) {
    my ($scope, $event, $sub, $pub) = @$c;
    my $t = tok('r1', 'S', $scope);
    is(subscribe($t, 'S', $event)->{code}, $sub, "$scope: subscribe $event");
    my ($code) = publish($t, 'S', $event);
    is($code, $pub, "$scope: publish $event");
}
my $t = $main::Keys->token('r1', claims(topic => 'S', scope => undef,
                                  scp => ['fhircast/Patient-open.read', 'openid']));
is(subscribe($t, 'S', 'patient-open')->{code}, 202, '"scp" as an array');



=== TEST 9: the lease never outlives the token: capped at exp, and the socket is closed when it ends
--- init
package main;
my $t = tok('h1', 'L', 'fhircast/*.read', exp => 60);
my $s = subscribe($t, 'L', 'patient-open', 'hub.lease_seconds' => 3600);
is($s->{code}, 202, 'subscribe');
my $lease = $s->{json}{'hub.lease_seconds'};
ok($lease >= 55 && $lease <= 60, "lease capped at the token's 60 s ($lease)");
my ($ws, $conf) = connect_ws($s);
is($conf->{'hub.lease_seconds'}, $lease, 'the confirmation says the same');
$t = tok('h1', 'L', 'fhircast/*.read', exp => 3);
$s = subscribe($t, 'L', 'patient-open');
ok($s->{json}{'hub.lease_seconds'} <= 3, 'a token ending in 3 s: lease of 3 s at most');
($ws, $conf) = connect_ws($s);
my $denial = $ws->recv_json(6);
is($denial && $denial->{'hub.reason'}, 'lease expired', 'the socket is denied when the token ends');
my ($op) = $ws->recv_frame(2);
is($op, 8, 'then closed');



=== TEST 10: over its socket, a subscription publishes only on its topic and only what its token may write
--- init
package main;
my $t = tok('e1', 'A', 'fhircast/*.read fhircast/Patient-open.write');
my $s = subscribe($t, 'A', 'Patient-open,Patient-close');
my ($ws) = connect_ws($s);
$ws->send_json(event('A', 'Patient-open', 'own-1'));
is(ids(sync($ws)), 'own-1', 'its own topic, a writable event: published and delivered');
$ws->send_json(event('A', 'Patient-close', 'close-1'));
my $got = ids(sync($ws));
like($got, qr/^error:403: the subscription's token may not publish this event$/,
     'a readable but not writable event: error frame, not published');
my $sb = subscribe(tok('e1', 'B', 'fhircast/*.read'), 'B', '*');
my ($wsb) = connect_ws($sb);
$ws->send_json(event('B', 'Patient-open', 'cross-1'));
like(ids(sync($ws)), qr/^error:403: the subscription's token is for another topic$/,
     'an event for topic B: error frame');
is(ids(sync($wsb)), '', 'and B got nothing');
ok(!$ws->is_closed, 'the socket stays open');
my $free = subscribe(undef, 'A', 'Patient-open', -base => '/open/api/hub');
my ($wsf) = connect_ws($free);
$wsf->send_json(event('B', 'Patient-open', 'free-1'));
is(ids(sync($wsb)), 'free-1', 'a subscription made without a token is not limited');



=== TEST 11: a token for topic A never receives nor publishes events of topic B
--- init
package main;
my $tA = tok('r1', 'A', 'fhircast/*.*');
my $tB = tok('r1', 'B', 'fhircast/*.*');
my ($wsa) = connect_ws(subscribe($tA, 'A', '*'));
my ($wsb) = connect_ws(subscribe($tB, 'B', '*'));
for my $i (1 .. 5) {
    publish($tB, 'B', 'Patient-open', "b$i");
    publish($tA, 'A', 'Patient-open', "a$i");
    publish($tA, 'B', 'Patient-open', "x$i");
}
is(ids(sync($wsa)), 'a1,a2,a3,a4,a5', "A's socket: A's events only");
is(ids(sync($wsb)), 'b1,b2,b3,b4,b5', "B's socket: B's events only, none published by A's token");



=== TEST 12: re-subscribe with a new token: the grant (events, write scopes, lease) is the new token's
--- init
package main;
my $t1 = tok('h1', 'R', 'fhircast/*.read fhircast/Patient-open.write');
my $s = subscribe($t1, 'R', 'Patient-open');
my ($ws) = connect_ws($s);
$ws->send_json(event('R', 'Patient-open', 'w1'));
is(ids(sync($ws)), 'w1', 'the first token may publish Patient-open');
my $t2 = tok('h1', 'R', 'fhircast/Patient-open.read fhircast/Patient-close.write', exp => 120);
my $r = subscribe($t2, 'R', 'Patient-open', 'hub.channel.endpoint' => $s->{endpoint});
is($r->{code}, 202, 're-subscribe with the second token');
ok($r->{json}{'hub.lease_seconds'} <= 120, 'the lease follows the second token');
my $conf = json_decode(sync($ws)->[0] // '{}');
ok($conf->{'hub.lease_seconds'} && $conf->{'hub.lease_seconds'} <= 120, 'the fresh confirmation says so');
$ws->send_json(event('R', 'Patient-open', 'w2'));
like(ids(sync($ws)), qr/^error:403/, 'Patient-open is no longer writable');
$ws->send_json(event('R', 'Patient-close', 'w3'));
is(ids(sync($ws)), '', 'Patient-close is (published; not subscribed, so not delivered here)');
my (undef, undef, $body) = get_context($t2, 'R');
is($body, '{}', 'the close cleared the context: it was published');



=== TEST 13: key rotation: a reload reads the keys again; a removed key no longer verifies, a new one does
--- config
    location /api/hub {
        cast_hub;
        cast_auth jwt;
        cast_auth_jwks $TEST_NGINX_AUTH_DIR/rotating.json;
        cast_auth_issuer https://auth.example;
        cast_auth_audience cast-hub;
    }
    location = /cast/status { cast_status; }
--- http_config eval
$main::Keys->jwks('rotating.json', 'r1', 'e1');
''
--- init
package main;
my $old = tok('r1', 'K', 'fhircast/*.*');
my $new_key;
is(subscribe($old, 'K', 'patient-open')->{code}, 202, 'r1 verifies before the rotation');
$main::Keys->rsa('r2');
my $new = tok('r2', 'K', 'fhircast/*.*');
is(subscribe($new, 'K', 'patient-open')->{code}, 401, 'r2 is not known yet');
$main::Keys->jwks('rotating.json', 'e1', 'r2');
open my $in, '<', $Test::Nginx::Util::PidFile or die "pid file: $!";
my $master = <$in>;
close $in;
chomp $master;
kill 'HUP', $master;
my $deadline = time + 10;
my ($o, $n);
while (time < $deadline) {
    $o = subscribe($old, 'K', 'patient-open')->{code};
    $n = subscribe($new, 'K', 'patient-open')->{code};
    last if $o == 401 && $n == 202;
    sleep 0.1;
}
is($o, 401, 'after the reload r1 is refused');
is($n, 202, 'and r2 verifies');
--- no_error_log
[alert]
[crit]
[emerg]



=== TEST 14: cast_auth jwt without keys, a weak RSA key, a short secret, cast_auth request without its variables: nginx -t fails
--- config
    location /api/hub { cast_hub; cast_auth jwt; }
--- must_die
--- error_log
"cast_auth jwt" needs keys



=== TEST 15: an RSA key of 1024 bits is refused
--- config eval
$main::Keys->rsa('weak', 1024);
$main::Keys->jwks('weak.json', 'weak');
"    location /api/hub { cast_hub; cast_auth jwt; cast_auth_jwks $main::Keys->{dir}/weak.json; }\n"
--- must_die
--- error_log
an RSA key has fewer than 2048 bits



=== TEST 16: an HS256 secret shorter than 32 bytes is refused
--- config eval
$main::Keys->write_file('short.key', "0123456789\n");
"    location /api/hub { cast_hub; cast_auth jwt; cast_auth_secret $main::Keys->{dir}/short.key; }\n"
--- must_die
--- error_log
an HS256 key is shorter than 32 bytes



=== TEST 17: cast_auth request needs topic= and scope=
--- config
    location /api/hub { cast_hub; cast_auth request scope=$http_x; }
--- must_die
--- error_log
"cast_auth request" needs topic= and scope=



=== TEST 18: a JWK Set with no usable key is refused
--- config eval
$main::Keys->write_file('none.json', '{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}');
"    location /api/hub { cast_hub; cast_auth jwt; cast_auth_jwks $main::Keys->{dir}/none.json; }\n"
--- must_die
--- error_log
no RS256, ES256 (P-256) or HS256 signing key



=== TEST 19: cast_auth request: nginx's auth_request asks an introspection service; topic and scopes come back in its headers
--- config
    location /api/hub {
        auth_request /introspect;
        auth_request_set $auth_topic $upstream_http_x_cast_topic;
        auth_request_set $auth_scope $upstream_http_x_cast_scope;
        auth_request_set $auth_expires $upstream_http_x_cast_expires;
        auth_request_set $auth_subject $upstream_http_x_cast_subject;
        cast_hub;
        cast_auth request topic=$auth_topic scope=$auth_scope
                          expires=$auth_expires subject=$auth_subject;
    }
    location = /introspect {
        internal;
        proxy_pass http://127.0.0.1:$TEST_NGINX_INTROSPECT_PORT/introspect;
        proxy_pass_request_body off;
        proxy_set_header Content-Length "";
        proxy_set_header X-Token $http_authorization;
    }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
--- init
package main;
my $stub = main::start_introspection();
my $s = subscribe('token-A', 'A', 'Patient-open,Patient-close');
is($s->{code}, 202, 'an active token for A: subscribe 202') or diag($s->{body});
is($s->{json}{'hub.events'}, 'Patient-open', 'granted: what its scopes read');
my $lease = $s->{json}{'hub.lease_seconds'};
ok($lease <= 600 && $lease >= 590, "the lease ends with the expiry it gave ($lease)");
my ($ws, $conf) = connect_ws($s);
is($conf->{'hub.events'}, 'Patient-open', 'confirmed');
my ($code) = publish('token-A', 'A', 'Patient-open', 'i1');
is($code, 200, 'publish with a write scope: 200');
is(ids(sync($ws)), 'i1', 'delivered');
($code) = publish('token-A', 'A', 'Patient-close');
is($code, 403, 'without the write scope: 403');
($code) = publish('token-A', 'B', 'Patient-open');
is($code, 403, 'another topic: 403');
$s = subscribe('token-A', 'B', 'Patient-open');
is($s->{code}, 403, 'subscribe to another topic: 403');
$s = subscribe('token-inactive', 'A', 'Patient-open');
is($s->{code}, 401, 'an inactive token: the service says 401, so does the hub');
like(www($s->{headers}), qr/Bearer/, "with the service's WWW-Authenticate");
$s = subscribe(undef, 'A', 'Patient-open');
is($s->{code}, 401, 'no token: 401');
$s = subscribe('token-expired', 'A', 'Patient-open');
is($s->{code}, 401, 'an expiry in the past: 401');
$s = subscribe('token-notopic', 'A', 'Patient-open');
is($s->{code}, 403, 'no topic from the service: 403');
main::stop_introspection($stub);



=== TEST 20: [redis] the grant is kept in the Redis record: events granted, socket publishes limited, topics apart
--- init
package main;
flush_redis();
sleep 0.3;
my $tA = tok('r1', 'A', 'fhircast/*.read fhircast/Patient-open.write');
my $tB = tok('e1', 'B', 'fhircast/*.*');
my $s = subscribe($tA, 'A', 'Patient-open,Patient-close,Encounter-open');
is($s->{code}, 202, 'subscribe');
is($s->{json}{'hub.events'}, 'Patient-open,Patient-close,Encounter-open', 'all readable');
my $rec = $main::Redis->command('HGETALL', 'cast:sub:{' . ($s->{path} =~ m{/bind/(\w+)})[0] . '}');
my %rec = @$rec;
is($rec{auth}, '1', 'the Redis record says it was made with a token');
is($rec{writable}, 'patient-open', 'and what it may publish');
my ($wsa, $conf) = connect_ws($s);
is($conf->{'hub.events'}, 'Patient-open,Patient-close,Encounter-open', 'confirmed');
my ($wsb) = connect_ws(subscribe($tB, 'B', '*'));
sleep 0.3;
$wsa->send_json(event('A', 'Patient-open', 'ra1'));
is(ids(frames_for($wsa, 1)), 'ra1', 'a writable event over the socket: delivered');
$wsa->send_json(event('A', 'Patient-close', 'ra2'));
like(ids(frames_for($wsa, 1)), qr/^error:403/, 'not writable: error frame');
$wsa->send_json(event('B', 'Patient-open', 'ra3'));
like(ids(frames_for($wsa, 1)), qr/^error:403/, 'another topic: error frame');
publish($tB, 'B', 'Patient-open', 'rb1');
publish($tA, 'B', 'Patient-open', 'rx1');
is(ids(frames_for($wsb, 1)), 'rb1', "B gets B's event only");
is(ids(frames_for($wsa, 0.5)), '', 'A gets nothing of B');
my $t2 = tok('r1', 'A', 'fhircast/*.read fhircast/Patient-close.write', exp => 300);
my $r = subscribe($t2, 'A', 'Patient-open,Patient-close', 'hub.channel.endpoint' => $s->{endpoint});
is($r->{code}, 202, 're-subscribe with another token');
my @f = @{ frames_for($wsa, 1) };
my $c2 = json_decode($f[0] // '{}');
ok($c2->{'hub.lease_seconds'} && $c2->{'hub.lease_seconds'} <= 300, 'the renewed lease follows it');
$wsa->send_json(event('A', 'Patient-close', 'ra4'));
is(ids(frames_for($wsa, 1)), 'ra4', 'now Patient-close is writable (renew control message)');
$wsa->send_json(event('A', 'Patient-open', 'ra5'));
like(ids(frames_for($wsa, 1)), qr/^error:403/, 'and Patient-open no longer');



=== TEST 21: [redis] the refusals are the same in Redis mode
--- init
package main;
my $tA = tok('h1', 'A', 'fhircast/Patient-open.read');
is(subscribe(undef, 'A', 'patient-open')->{code}, 401, 'no token');
is(subscribe(tok('h9', 'A', 'fhircast/*.*'), 'A', 'patient-open')->{code}, 401, 'forged');
is(subscribe(tok('h1', 'A', 'fhircast/*.*', exp => -100), 'A', 'patient-open')->{code}, 401, 'expired');
is(subscribe($tA, 'B', 'patient-open')->{code}, 403, 'wrong topic');
my ($code) = publish($tA, 'A', 'patient-open');
is($code, 403, 'read only: publish 403');
my $s = subscribe(tok('h1', 'A', 'fhircast/*.read', exp => 2), 'A', 'patient-open');
ok($s->{json}{'hub.lease_seconds'} <= 2, 'lease capped');
my ($ws) = connect_ws($s);
my $denial = $ws->recv_json(6);
is($denial && $denial->{'hub.reason'}, 'lease expired', 'the socket ends with the token');
