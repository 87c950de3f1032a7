# The token endpoints (issue 9, reference cast-seed-protocol.md 1.7; README
# "Tokens"), in local mode and in Redis mode (two workers sharing one
# Redis, t/lib/CastMode.pm):
#   G1  POST /oauth/token, client_credentials or no grant type: USER-<n>
#       (one counter for every worker), the topic given, subscriber_name;
#   G2  POST /oauth/authorize + POST /oauth/token with the code: the
#       identity of user_name or of an id_token this hub issued, the code
#       redeemed once, by whichever worker, also when raced;
#   the tokens: HS256 (checked here with core Perl's HMAC), the claims,
#   accepted by a "cast_auth jwt" hub with the same key (subscribe, a
#   socket, publish), a changed one or one of another hub refused;
#   single-user mode, CORS, hostile requests (4xx, logged at info), and
#   the configuration errors (no key, an empty or short key file).
#
# The keys are made at test time (t/lib/CastAuth.pm) in a temporary
# directory: k1 (this hub's), k2 (another hub's).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode cast_mode);
use CastMode;
use CastAuth;
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(decode_base64);
use IO::Socket::INET ();
use IO::Select ();
use Time::HiRes qw(time sleep);

no_shuffle();
repeat_each(1);
log_level('info');

our $Keys = CastAuth->new;
$Keys->secret('k1')->secret('k2');
$Keys->secret_file('k1.key', 'k1');
$Keys->secret_file('k2.key', 'k2');
$Keys->write_file('short.key', ('x' x 31) . "\n");
$Keys->write_file('empty.key', '');
$ENV{TEST_NGINX_OAUTH_DIR} = $Keys->dir;

our $Locations = <<'_EOC_';
    location = /oauth/token {
        cast_oauth token;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/k1.key;
    }
    location = /oauth/authorize {
        cast_oauth authorize;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/k1.key;
    }
    location = /su/oauth/token {
        cast_oauth token;
        cast_oauth_single_user on;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/k1.key;
    }
    location = /su/oauth/authorize {
        cast_oauth authorize;
        cast_oauth_single_user on;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/k1.key;
    }
    location = /short/oauth/token {
        cast_oauth token;
        cast_oauth_token_ttl 2m;
        cast_oauth_issuer other-hub;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/k1.key;
    }
    location = /cors/oauth/token {
        cast_oauth token;
        cast_cors_origin https://viewer.example;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/k1.key;
    }
    location = /other/oauth/token {
        cast_oauth token;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/k2.key;
    }
    location = /other/oauth/authorize {
        cast_oauth authorize;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/k2.key;
    }
    location /api/hub {
        cast_hub;
        cast_auth jwt;
        cast_auth_secret $TEST_NGINX_OAUTH_DIR/k1.key;
        cast_auth_issuer cast-hub;
        cast_auth_audience cast-hub;
    }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    return if defined $block->must_die;
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . $Locations)
        if !defined $block->own_config;
    $block->set_value('request', "GET /cast/status\n")
        if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log',
                          "[error]\n[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

# ---- helpers (package main; init code starts with "package main;") ----

sub form {
    my @f = @_;
    my @p;
    while (@f) {
        my ($k, $v) = splice @f, 0, 2;
        $v =~ s/([^A-Za-z0-9._~*-])/sprintf('%%%02X', ord $1)/ge;
        push @p, "$k=$v";
    }
    return join '&', @p;
}

# post($path, $body, headers) -> {code, json, headers, body}
sub post {
    my ($path, $body, @h) = @_;
    my %seen = map { lc($_) => 1 } @h[grep { !($_ % 2) } 0 .. $#h];
    unshift @h, 'Content-Type' => 'application/x-www-form-urlencoded'
        if !$seen{'content-type'};
    my ($code, $h, $b) = http_request('POST', $path, $body, @h);
    my $j = eval { json_decode($b) };
    return { code => $code, json => $j || {}, headers => $h, body => $b };
}

sub b64url_decode {
    my $s = shift;
    $s =~ tr{-_}{+/};
    $s .= '=' x ((4 - length($s) % 4) % 4);
    return decode_base64($s);
}

sub b64url { CastAuth::b64url($_[0]) }

# [header, claims] of a compact JWS
sub jwt {
    my ($t) = @_;
    my ($h, $p) = split /\./, $t // '';
    return [ eval { json_decode(b64url_decode($h)) } || {},
             eval { json_decode(b64url_decode($p)) } || {} ];
}

# signed by key $kid (HMAC-SHA256 of "header.payload")?
sub signed_by {
    my ($t, $kid) = @_;
    my ($h, $p, $s) = split /\./, $t // '', 3;
    return 0 if !defined $s;
    return b64url(hmac_sha256("$h.$p", $Keys->{keys}{$kid}{secret})) eq $s;
}

# a token of our own making, signed by $kid, without a kid header (times
# are whole seconds)
sub make {
    my ($kid, %c) = @_;
    $c{$_} = int $c{$_} for grep { defined $c{$_} } qw(exp iat nbf);
    return $Keys->token($kid, \%c, no_kid => 1);
}

sub g1 {
    my (%f) = @_;
    return post('/oauth/token', form(grant_type => 'client_credentials',
                                     client_product_name => 'OHIF', %f));
}

sub authorize {
    my ($path, @f) = @_;
    return post($path || '/oauth/authorize', form(@f));
}

sub redeem {
    my ($code, $path) = @_;
    return post($path || '/oauth/token',
                form(grant_type => 'authorization_code', code => $code,
                     client_id => 'x', client_product_name => 'JS'));
}

sub bearer { (Authorization => "Bearer $_[0]") }

sub subscribe {
    my ($token, $topic, $events) = @_;
    my $r = post('/api/hub', form('hub.mode' => 'subscribe',
                                  'hub.channel.type' => 'websocket',
                                  'hub.topic' => $topic,
                                  'hub.events' => $events || 'patient-open',
                                  'subscriber.name' => 'app'),
                 defined $token ? bearer($token) : ());
    ($r->{path}) = ($r->{json}{'hub.channel.endpoint'} || '')
                   =~ m{^wss?://[^/]+(/bind/[0-9a-f]{32})$};
    return $r;
}

sub event {
    my ($topic, $name) = @_;
    return json_encode({ id => 'ev-' . int(rand(1e9)),
                         timestamp => '2026-12-05T10:00:00.000Z',
                         event => { 'hub.topic' => $topic,
                                    'hub.event' => $name,
                                    context => [ { key => 'patient',
                                        resource => { resourceType => 'Patient',
                                                      id => 'p1' } } ] } });
}

# the error log from a byte offset on
sub log_size { -s $Test::Nginx::Util::ErrLogFile || 0 }

sub log_since {
    my ($off) = @_;
    open my $in, '<', $Test::Nginx::Util::ErrLogFile or return '';
    seek $in, $off, 0;
    local $/;
    my $s = <$in>;
    close $in;
    return $s // '';
}

# worker pids of log lines that match
sub pids {
    my ($text, $re) = @_;
    my %p;
    for (split /\n/, $text) {
        $p{$1} = 1 if /\] (\d+)#\d+: .*$re/;
    }
    return sort keys %p;
}

sub npids { my @p = pids(@_); return scalar @p }

# $n requests at once on $n connections: their status codes
sub race {
    my ($path, $body, $n) = @_;
    my @s;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                      PeerPort => CastTest::server_port(),
                                      Proto => 'tcp', Timeout => 5)
            or die "connect: $!";
        push @s, $s;
    }
    my $req = "POST $path HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
              . "Content-Type: application/x-www-form-urlencoded\r\n"
              . 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    syswrite($_, $req) for @s;
    my @codes;
    for my $s (@s) {
        my ($resp, $deadline) = ('', time + 10);
        my $sel = IO::Select->new($s);
        while (time < $deadline && $sel->can_read($deadline - time)) {
            my $r = sysread($s, my $buf, 65536);
            last if !$r;
            $resp .= $buf;
        }
        close $s;
        push @codes, $resp =~ m{^HTTP/1\.1 (\d{3})} ? $1 : 'none';
    }
    return @codes;
}

run_tests();

__DATA__

=== TEST 1: G1 client_credentials: 200, the reply the OHIF fork reads, USER-<n>, subscriber_name, HS256 tokens with the claims
--- config
--- init
package main;
my $r = g1(client_id => 'ohif', client_secret => 's');
is($r->{code}, 200, 'client_credentials: 200');
is($r->{headers}{'content-type'}, 'application/json', 'JSON');
is($r->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store (RFC 6749 5.1)');
my $j = $r->{json};
is_deeply([sort keys %$j], [sort qw(token_type expires_in scope topic id_token
    access_token user_name subscriber_name)], 'the keys of the G1 reply');
is($j->{token_type}, 'Bearer', 'token_type Bearer');
is($j->{expires_in}, 3600, 'expires_in 3600 (the default cast_oauth_token_ttl)');
is($j->{scope}, 'openid fhircast/*.read fhircast/*.write', 'scope: FHIRcast SMART scopes');
like($j->{topic}, qr/^USER-[1-9][0-9]*$/, 'topic USER-<n>');
is($j->{user_name}, $j->{topic}, 'user_name is the topic');
like($j->{subscriber_name}, qr/^OHIF-[A-Z0-9]{6}$/, 'subscriber_name <product>-<6 of A-Z0-9>');
for my $t (qw(access_token id_token)) {
    ok(signed_by($j->{$t}, 'k1'), "$t: HS256 by the configured key");
    ok(!signed_by($j->{$t}, 'k2'), "$t: not by another key");
    is_deeply(jwt($j->{$t})->[0], { alg => 'HS256', typ => 'JWT' }, "$t: header");
}
my $a = jwt($j->{access_token})->[1];
my $i = jwt($j->{id_token})->[1];
is($a->{typ}, 'access', 'access: typ access');
is($i->{typ}, 'id', 'id: typ id');
for my $c ($a, $i) {
    is($c->{iss}, 'cast-hub', "$c->{typ}: iss");
    is($c->{aud}, 'cast-hub', "$c->{typ}: aud (the issuer)");
    is($c->{sub}, $j->{user_name}, "$c->{typ}: sub");
    is($c->{user_name}, $j->{user_name}, "$c->{typ}: user_name");
    is($c->{topic}, $j->{topic}, "$c->{typ}: topic");
    is($c->{subscriber_name}, $j->{subscriber_name}, "$c->{typ}: subscriber_name");
    ok(abs($c->{iat} - time) < 60, "$c->{typ}: iat is now");
    is($c->{nbf}, $c->{iat}, "$c->{typ}: nbf = iat");
    is($c->{exp} - $c->{iat}, 3600, "$c->{typ}: exp = iat + 3600");
    like($c->{jti}, qr/^[0-9a-f]{32}$/, "$c->{typ}: jti, 128 random bits");
}
isnt($a->{jti}, $i->{jti}, 'two tokens, two jti');
is($a->{'hub.topic'}, $j->{topic}, 'access: hub.topic (cast_auth\'s topic claim)');
is($a->{scope}, $j->{scope}, 'access: scope');
ok(!exists $i->{'hub.topic'} && !exists $i->{scope}, 'id: no hub.topic, no scope (not a bearer token)');
# the test-client: no grant type, the product and topic in the query string
my $t = post('/oauth/token?client_product_name=TEST-CLIENT&topic=T1', '');
is($t->{code}, 200, 'no grant type, query string only: 200');
is($t->{json}{topic}, 'T1', 'a given topic is echoed');
like($t->{json}{user_name}, qr/^USER-\d+$/, '... the user is still USER-<n>');
like($t->{json}{subscriber_name}, qr/^TEST-CLIENT-[A-Z0-9]{6}$/, 'TEST-CLIENT-xxxxxx');
is(jwt($t->{json}{access_token})->[1]{'hub.topic'}, 'T1', 'the token is for T1');
is(post('/oauth/token', form(client_product_name => 'My App! (é)'))->{json}{subscriber_name} =~ /^MyApp-[A-Z0-9]{6}$/ ? 1 : 0,
   1, 'the product sanitized to [A-Za-z0-9-]');
like(post('/oauth/token', '')->{json}{subscriber_name}, qr/^CLIENT-[A-Z0-9]{6}$/,
     'no product: CLIENT-xxxxxx');
--- response_body_like: "topics":0



=== TEST 2: G1: USER-<n> is one counter for every worker: 24 requests at once get 24 consecutive numbers
--- config
--- init
package main;
my $off = log_size();
my @codes = race('/oauth/token', form(client_product_name => 'OHIF'), 24);
is(scalar(grep { $_ eq '200' } @codes), 24, '24 x 200') or diag("@codes");
my $log = log_since($off);
my @n = sort { $a <=> $b } ($log =~ /oauth: tokens for "USER-(\d+)"/g);
is(scalar @n, 24, '24 users issued');
is_deeply(\@n, [$n[0] .. $n[0] + 23], 'consecutive numbers, none twice');
my @p = pids($log, qr/oauth: tokens for "USER-/);
if (cast_mode() eq 'redis') {
    # the kernel spreads the connections; retry until both workers served
    for (1 .. 10) {
        last if @p > 1;
        $off = log_size();
        race('/oauth/token', form(client_product_name => 'OHIF'), 24);
        my $more = log_since($off);
        $log .= $more;
        @p = pids($log, qr/oauth: tokens for "USER-/);
    }
    cmp_ok(scalar @p, '>=', 2, 'redis mode: issued by both workers');
    my @all = sort { $a <=> $b } ($log =~ /oauth: tokens for "USER-(\d+)"/g);
    my %seen;
    is(scalar(grep { $seen{$_}++ } @all), 0, 'redis mode: no number twice, across workers');
} else {
    is(scalar @p, 1, 'local mode: one worker');
}
--- response_body_like: "topics":0



=== TEST 3: G2: authorize with user_name, then the code for the tokens; the code twice is invalid_grant
--- config
--- init
package main;
my $r = authorize(undef, client_product_name => 'JS', user_name => 'alice');
is($r->{code}, 200, 'authorize: 200');
is_deeply([sort keys %{ $r->{json} }], [qw(code expires_in user_name)], 'user_name, code, expires_in');
is($r->{json}{user_name}, 'alice', 'user_name as given');
is($r->{json}{expires_in}, 60, 'expires_in 60');
my $code = $r->{json}{code};
ok(signed_by($code, 'k1'), 'the code is signed by the hub (any host can check it)');
my $cc = jwt($code)->[1];
is($cc->{typ}, 'code', 'typ code');
is($cc->{exp} - $cc->{iat}, 60, 'good for 60 s');
ok(!exists $cc->{scope} && !exists $cc->{'hub.topic'}, 'no scope, no hub.topic: not a bearer token');
my $t = redeem($code);
is($t->{code}, 200, 'token with the code: 200');
is($t->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store');
is($t->{json}{token_type}, 'Bearer', 'token_type');
is($t->{json}{topic}, 'alice', 'topic: the user name');
is($t->{json}{user_name}, 'alice', 'user_name');
ok(!exists $t->{json}{subscriber_name}, 'no subscriber_name in G2');
is(jwt($t->{json}{access_token})->[1]{'hub.topic'}, 'alice', 'the access token is for alice');
ok(signed_by($t->{json}{id_token}, 'k1'), 'the id_token is signed');
my $again = redeem($code);
is($again->{code}, 401, 'the same code again: 401');
is($again->{json}{error}, 'invalid_grant', 'invalid_grant');
like($again->{json}{error_description}, qr/used already/, 'the code was used');
# without grant_type, a code is still a G2 redemption (as G2 does)
my $c2 = authorize(undef, user_name => 'bob', topic => 'room-7')->{json};
is($c2->{user_name}, 'bob', 'authorize with a topic: user bob');
my $t2 = post('/oauth/token', form(code => $c2->{code}));
is($t2->{code}, 200, 'a code without grant_type: 200');
is($t2->{json}{topic}, 'room-7', 'the topic given at authorize');
is($t2->{json}{user_name}, 'bob', 'the user');
# no user: USER-<n>
my $c3 = authorize(undef, client_product_name => 'JS')->{json};
like($c3->{user_name}, qr/^USER-\d+$/, 'authorize without a user: USER-<n>');
is(redeem($c3->{code})->{json}{topic}, $c3->{user_name}, '... whose topic it is');
--- error_log
cast: oauth: 401 invalid_grant: the code was used already
--- response_body_like: "topics":0



=== TEST 4: G2: an id_token this hub issued gives the same identity (expired too, as G2); others are invalid_token
--- config
--- init
package main;
my $t = redeem(authorize(undef, user_name => 'carol', topic => 'T-carol')->{json}{code})->{json};
my $r = authorize(undef, id_token => $t->{id_token}, user_name => 'mallory');
is($r->{code}, 200, 'authorize with the id_token: 200');
is($r->{json}{user_name}, 'carol', 'the id_token\'s user, not user_name');
is(redeem($r->{json}{code})->{json}{topic}, 'T-carol', 'and its topic');
my $old = make('k1', iss => 'cast-hub', aud => 'cast-hub', typ => 'id',
               user_name => 'dave', topic => 'T-dave', exp => time - 86400,
               iat => time - 90000, jti => 'x' x 32);
$r = authorize(undef, id_token => $old);
is($r->{code}, 200, 'an expired id_token of this hub: 200 (G2 takes it)');
is($r->{json}{user_name}, 'dave', '... its user');
my @bad = (
    [ $t->{access_token}, 'an access token', qr/another kind of token/ ],
    [ make('k2', iss => 'cast-hub', typ => 'id', user_name => 'e', topic => 'e', exp => time + 60),
      'signed by another key', qr/signature is not this hub's/ ],
    [ make('k1', iss => 'other-hub', typ => 'id', user_name => 'e', topic => 'e', exp => time + 60),
      'another issuer', qr/another issuer/ ],
    [ make('k1', iss => 'cast-hub', typ => 'id', topic => 'e', exp => time + 60),
      'no user_name claim', qr/not those of an id_token/ ],
    [ make('k1', iss => 'cast-hub', typ => 'id', user_name => 'e', topic => 'e'),
      'no exp', qr/no "exp"/ ],
    [ 'not.a.token', 'garbage', qr/not base64url|not a JSON/ ],
);
(my $changed = $t->{id_token}) =~ s/\.([^.]{10})/.${1}x/;
push @bad, [ $changed, 'a changed id_token', qr/./ ];
for my $b (@bad) {
    my $x = authorize(undef, id_token => $b->[0]);
    is($x->{code}, 401, "id_token $b->[1]: 401");
    is($x->{json}{error}, 'invalid_token', "$b->[1]: invalid_token");
    like($x->{json}{error_description}, $b->[2], "$b->[1]: why");
}
# an id_token with client_credentials gives that identity too
is(g1(id_token => $t->{id_token})->{json}{topic}, 'T-carol', 'client_credentials with the id_token: its topic');
--- error_log
cast: oauth: 401 invalid_token: the id_token is not valid
--- response_body_like: "topics":0



=== TEST 5: the token endpoint's errors: unsupported_grant_type, invalid_request, invalid_grant; codes not of this hub, expired, or not codes
--- config
--- init
package main;
my $r = post('/oauth/token', form(grant_type => 'password', username => 'u'));
is($r->{code}, 400, 'grant_type password: 400');
is_deeply([sort keys %{ $r->{json} }], [qw(error error_description)], '{"error", "error_description"}');
is($r->{json}{error}, 'unsupported_grant_type', 'unsupported_grant_type');
for my $body (form(grant_type => 'authorization_code'),
              form(grant_type => 'authorization_code', code => ''),
              form(code => ''))
{
    $r = post('/oauth/token', $body);
    is($r->{code}, 400, "$body: 400");
    is($r->{json}{error}, 'invalid_request', "$body: invalid_request");
    like($r->{json}{error_description}, qr/missing "code"/, "$body: missing code");
}
my $other = authorize('/other/oauth/authorize', user_name => 'eve')->{json}{code};
ok(signed_by($other, 'k2'), 'a code of the other hub');
my $t = redeem(authorize(undef, user_name => 'frank')->{json}{code})->{json};
my $now = time;
my @bad = (
    [ 'garbage', 'an unknown code' ],
    [ $other, 'another hub\'s code' ],
    [ $t->{id_token}, 'an id_token' ],
    [ $t->{access_token}, 'an access token' ],
    [ make('k1', iss => 'cast-hub', aud => 'cast-hub', typ => 'code', jti => 'a' x 32,
           user_name => 'g', topic => 'g', iat => $now - 120, exp => $now - 60),
      'an expired code' ],
    [ make('k1', iss => 'cast-hub', typ => 'code', jti => 'short', user_name => 'g',
           topic => 'g', exp => $now + 60), 'a code with a bad jti' ],
    [ make('k1', iss => 'cast-hub', typ => 'code', jti => 'b' x 32, user_name => 'g',
           topic => 'x/y', exp => $now + 60), 'a code with a bad topic' ],
);
for my $b (@bad) {
    $r = redeem($b->[0]);
    is($r->{code}, 401, "$b->[1]: 401");
    is($r->{json}{error}, 'invalid_grant', "$b->[1]: invalid_grant");
}
is(redeem($other, '/other/oauth/token')->{code}, 200, 'the other hub takes its own code');
--- error_log
cast: oauth: 400 unsupported_grant_type
cast: oauth: 400 invalid_request: missing "code"
cast: oauth: 401 invalid_grant: the code is not valid
--- response_body_like: "topics":0



=== TEST 6: one code, one redemption across workers: redeemed once, then refused by every worker; raced, exactly one wins
--- config
--- init
package main;
my $off = log_size();
my $code = authorize(undef, user_name => 'ann')->{json}{code};
is(redeem($code)->{code}, 200, 'redeemed: 200');
my @codes;
my $log = '';
for my $round (1 .. 10) {
    push @codes, race('/oauth/token', form(grant_type => 'authorization_code', code => $code), 8);
    $log = log_since($off);
    last if cast_mode() ne 'redis'
            || npids($log, qr/oauth: 401 invalid_grant: the code was used/) > 1;
}
is(scalar(grep { $_ ne '401' } @codes), 0, scalar(@codes) . ' more tries: all 401') or diag("@codes");
my @issued = pids($log, qr/oauth: tokens for "ann"/);
my @refused = pids($log, qr/oauth: 401 invalid_grant: the code was used/);
is(scalar @issued, 1, 'issued once');
if (cast_mode() eq 'redis') {
    cmp_ok(scalar @refused, '>=', 2, 'redis mode: refused by both workers (' . join(',', @refused) . ')');
    ok(scalar(grep { $_ ne $issued[0] } @refused), 'redis mode: refused by a worker other than the one that redeemed it');
}
# races: 12 codes, each sent 8 times at once
my ($wins, $losses, $other) = (0, 0, 0);
$off = log_size();
for my $i (1 .. 12) {
    my $c = authorize(undef, user_name => "racer$i")->{json}{code};
    for (race('/oauth/token', form(grant_type => 'authorization_code', code => $c), 8)) {
        $_ eq '200' ? $wins++ : $_ eq '401' ? $losses++ : $other++;
    }
}
is($wins, 12, 'each of 12 codes redeemed exactly once');
is($losses, 84, 'the 84 others: 401');
is($other, 0, 'nothing else');
$log = log_since($off);
my %per;
$per{$_}++ for $log =~ /oauth: tokens for "(racer\d+)"/g;
is(scalar(grep { $_ != 1 } values %per) + (12 - keys %per), 0, 'one set of tokens per code');
if (cast_mode() eq 'redis') {
    cmp_ok(npids($log, qr/oauth: (tokens for "racer|401 invalid_grant)/), '>=', 2,
           'redis mode: both workers took part in the races');
}
--- response_body_like: "topics":0



=== TEST 7: the tokens work on a "cast_auth jwt" hub with the same key: subscribe, a socket, publish; changed, other hub's, id and code tokens refused
--- config
--- init
package main;
my $g1 = g1()->{json};
my $s = subscribe($g1->{access_token}, $g1->{topic}, 'patient-open');
is($s->{code}, 202, 'subscribe with the G1 access token: 202') or diag($s->{body});
is(subscribe($g1->{access_token}, 'someone-else')->{code}, 403, 'another topic: 403');
my $ws = CastTest::WS->connect($s->{path});
my $hello = $ws->recv_json(3);
is($hello->{type}, 'connection.established', 'the socket binds');
$ws->recv_json(3);
my ($code) = http_request('POST', '/api/hub', event($g1->{topic}, 'patient-open'),
                          'Content-Type' => 'application/json', bearer($g1->{access_token}));
is($code, 200, 'publish with the token: 200');
my $got;
for (1 .. 5) { $got = $ws->recv_json(3); last if $got && $got->{event} }
is($got && $got->{event}{'hub.topic'}, $g1->{topic}, 'the socket gets the event');
($code) = http_request('POST', '/api/hub', event('someone-else', 'patient-open'),
                       'Content-Type' => 'application/json', bearer($g1->{access_token}));
is($code, 403, 'publish on another topic: 403');
$ws->close;
# G2 tokens too
my $t = redeem(authorize(undef, user_name => 'gina')->{json}{code})->{json};
is(subscribe($t->{access_token}, 'gina')->{code}, 202, 'subscribe with the G2 access token: 202');
# refused
my ($h, $p, $sig) = split /\./, $g1->{access_token};
my $claims = jwt($g1->{access_token})->[1];
$claims->{'hub.topic'} = 'someone-else';
my $forged = "$h." . b64url(json_encode($claims)) . ".$sig";
is(subscribe($forged, 'someone-else')->{code}, 401, 'a changed payload: 401');
# a character in the middle of the signature (the last one holds padding
# bits that decoding ignores)
(my $flipped = $g1->{access_token}) =~ s/(.)(.{9})$/($1 eq 'A' ? 'B' : 'A') . $2/e;
is(subscribe($flipped, $g1->{topic})->{code}, 401, 'a changed signature: 401');
my $o = post('/other/oauth/token', form(client_product_name => 'X'))->{json};
is(subscribe($o->{access_token}, $o->{topic})->{code}, 401, 'another hub\'s token: 401');
is(subscribe($g1->{id_token}, $g1->{topic})->{code}, 403, 'the id_token as a bearer token: 403');
my $c = authorize(undef, user_name => 'hal')->{json}{code};
is(subscribe($c, 'hal')->{code}, 403, 'a code as a bearer token: 403');
is(subscribe(undef, $g1->{topic})->{code}, 401, 'no token: 401');
my $short = post('/short/oauth/token', '')->{json};
is($short->{expires_in}, 120, 'cast_oauth_token_ttl 2m: expires_in 120');
my $sc = jwt($short->{access_token})->[1];
is($sc->{exp} - $sc->{iat}, 120, '... and exp');
is($sc->{iss}, 'other-hub', 'cast_oauth_issuer: iss');
is($sc->{aud}, 'other-hub', '... and aud');
is(subscribe($short->{access_token}, $short->{topic})->{code}, 401,
   'a hub that wants another issuer refuses it');
--- error_log
the token is from another issuer
--- response_body_like: "connections":0



=== TEST 8: single-user mode: every token and code is for SINGLE-USER
--- config
--- init
package main;
my $r = post('/su/oauth/token', form(client_product_name => 'OHIF', topic => 'T9'));
is($r->{code}, 200, 'client_credentials: 200');
is($r->{json}{topic}, 'SINGLE-USER', 'topic SINGLE-USER, whatever was asked');
is($r->{json}{user_name}, 'SINGLE-USER', 'user_name SINGLE-USER');
like($r->{json}{subscriber_name}, qr/^OHIF-[A-Z0-9]{6}$/, 'subscriber_name as usual');
is(jwt($r->{json}{access_token})->[1]{'hub.topic'}, 'SINGLE-USER', 'the token is for SINGLE-USER');
my $a = post('/su/oauth/authorize', form(user_name => 'bob', topic => 'x'));
is($a->{json}{user_name}, 'SINGLE-USER', 'authorize: SINGLE-USER');
my $t = redeem($a->{json}{code});
is($t->{json}{topic}, 'SINGLE-USER', 'its tokens: SINGLE-USER');
is(subscribe($t->{json}{access_token}, 'SINGLE-USER')->{code}, 202, 'they subscribe to SINGLE-USER');
--- response_body_like: "topics":1



=== TEST 9: hostile requests: methods, media type, size, malformed, repeated, too long, bad topics: a clear 4xx logged at info
--- config
--- init
package main;
for my $m (qw(GET HEAD PUT DELETE PATCH)) {
    my ($code, $h, $b) = http_request($m, '/oauth/token', $m eq 'GET' || $m eq 'HEAD' ? undef : '');
    is($code, 405, "$m: 405");
    is($h->{allow}, 'POST, OPTIONS', "$m: Allow");
}
my ($code, $h) = http_request('OPTIONS', '/oauth/authorize');
is($code, 204, 'OPTIONS: 204');
is($h->{allow}, 'POST, OPTIONS', 'OPTIONS: Allow');
ok(!exists $h->{'access-control-allow-origin'}, 'no CORS headers unless configured');
my $r = post('/oauth/token', '{"grant_type":"client_credentials"}', 'Content-Type' => 'application/json');
is($r->{code}, 415, 'JSON: 415');
is($r->{json}{error}, 'invalid_request', '... invalid_request');
$r = post('/oauth/token', 'x' x 40000);
is($r->{code}, 413, 'a body of 40000 bytes: 413');
my ($c2, undef, $b2) = http_request('POST', '/oauth/token',
    "9c40\r\n" . ('a' x 40000) . "\r\n0\r\n\r\n",
    'Transfer-Encoding' => 'chunked', 'Content-Type' => 'application/x-www-form-urlencoded');
is($c2, 413, 'a chunked body of 40000 bytes: 413');
my @bad = (
    [ 'grant_type=%zz', 'malformed percent-encoding in "grant_type"' ],
    [ 'co%g0de=1', 'malformed percent-encoding in a form field name' ],
    [ 'code=1&code=1', '"code" is given more than once' ],
    [ 'user_name=' . ('u' x 257), '"user_name" is too long' ],
    [ 'user_name=a%00b', 'user_name holds a control character' ],
    [ 'user_name=%ff%fe', 'user_name is not valid UTF-8' ],
    [ 'topic=*', 'the topic "*" is not a topic a token can be for' ],
    [ 'topic=a/b', 'the topic ("topic", else the user name) holds a "/"' ],
    [ 'user_name=a/b', 'the topic ("topic", else the user name) holds a "/"' ],
    [ 'topic=' . ('t' x 1025), '"topic" is too long' ],
);
for my $b (@bad) {
    for my $path ('/oauth/token', '/oauth/authorize') {
        $r = post($path, $b->[0]);
        is($r->{code}, 400, "$path " . substr($b->[0], 0, 20) . ": 400");
        is($r->{json}{error}, 'invalid_request', '... invalid_request');
        like($r->{json}{error_description}, qr/^\Q$b->[1]\E/, "... $b->[1]");
    }
}
$r = post('/oauth/token?code=1', form(code => 2));
is($r->{code}, 400, 'a field in the query string and the body: 400');
like($r->{json}{error_description}, qr/given more than once/, '... given more than once');
is(post('/oauth/authorize', form(user_name => 'ok', client_id => 'a', client_id => 'b'))->{code},
   200, 'fields it does not read may repeat');
# CORS where configured
($code, $h) = http_request('OPTIONS', '/cors/oauth/token', undef,
                           Origin => 'https://viewer.example',
                           'Access-Control-Request-Method' => 'POST');
is($code, 204, 'CORS preflight: 204');
is($h->{'access-control-allow-origin'}, 'https://viewer.example', 'Access-Control-Allow-Origin');
is($h->{'access-control-allow-methods'}, 'POST, OPTIONS', 'Access-Control-Allow-Methods');
$r = post('/cors/oauth/token', '');
is($r->{headers}{'access-control-allow-origin'}, 'https://viewer.example', 'the token reply has it too');
$r = post('/cors/oauth/token', 'grant_type=x');
is($r->{headers}{'access-control-allow-origin'}, 'https://viewer.example', 'and an error');
--- error_log eval
[qr/\[info\].*cast: oauth: 405 invalid_request: method GET/,
 qr/\[info\].*cast: oauth: 413 invalid_request/,
 qr/\[info\].*cast: oauth: 415 invalid_request/,
 qr/\[info\].*cast: oauth: 400 invalid_request: "code" is given more than once/]
--- response_body_like: "topics":0



=== TEST 10: nothing is served unless a location enables it
--- own_config: yes
--- config
    location /oauth/ { cast_oauth off; return 404; }
    location = /cast/status { cast_status; }
    cast_oauth_key $TEST_NGINX_OAUTH_DIR/k1.key;
--- request
POST /oauth/token
grant_type=client_credentials
--- error_code: 404
--- response_body_unlike: access_token



=== TEST 11: cast_oauth without a key: nginx -t fails (there is no default key)
--- config
    location = /oauth/token { cast_oauth token; }
--- must_die
--- error_log
"cast_oauth" needs a signing key: "cast_oauth_key <file>" (there is no default key)



=== TEST 12: cast_oauth_key: an empty file
--- config
    location = /oauth/token {
        cast_oauth token;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/empty.key;
    }
--- must_die
--- error_log eval
qr/key file ".*empty\.key" is empty or larger than 64k/



=== TEST 13: cast_oauth_key: 31 bytes
--- config
    location = /oauth/token {
        cast_oauth token;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/short.key;
    }
--- must_die
--- error_log eval
qr/invalid key ".*short\.key": an HS256 key is shorter than 32 bytes/



=== TEST 14: cast_oauth_key: no such file
--- config
    location = /oauth/token {
        cast_oauth token;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/none.key;
    }
--- must_die
--- error_log eval
qr/open\(\) ".*none\.key" failed/



=== TEST 15: cast_oauth with an unknown value
--- config
    location = /oauth/token { cast_oauth tokens; }
--- must_die
--- error_log
invalid value "tokens": expected token, authorize or off



=== TEST 16: cast_oauth where the location serves the hub
--- config
    location /api/hub { cast_hub; cast_oauth token; }
--- must_die
--- error_log
"cast_oauth" directive is duplicate: a location serves one cast role



=== TEST 17: cast_oauth_token_ttl out of range
--- config
    location = /oauth/token {
        cast_oauth token;
        cast_oauth_token_ttl 2d;
        cast_oauth_key $TEST_NGINX_OAUTH_DIR/k1.key;
    }
--- must_die
--- error_log
invalid "cast_oauth_token_ttl" "2d": a time from 1s to 1d



=== TEST 18: the key and the single-user mode are inherited from the server level
--- own_config: yes
--- config
    cast_oauth_key $TEST_NGINX_OAUTH_DIR/k1.key;
    cast_oauth_single_user on;
    location = /oauth/token { cast_oauth token; }
    location = /cast/status { cast_status; }
--- request
POST /oauth/token
client_product_name=X
--- error_code: 200
--- response_body_like: "topic":"SINGLE-USER"
