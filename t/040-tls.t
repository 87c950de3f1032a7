# TLS: the hub on "listen ... ssl" and behind a TLS-terminating proxy.
#
# A self-signed certificate for "localhost" / 127.0.0.1 is made at test
# time with openssl, in a temporary directory (never in t/servroot).  The
# clients are Perl's IO::Socket::SSL (Debian: libio-socket-ssl-perl) and
# verify the certificate and the name "localhost".
#
#   - the TLS server: HTTPS subscribe answers a wss:// endpoint; the
#     WebSocket handshake, the hello frames, delivery of small and large
#     events, an event published over the socket, ping/pong and the close
#     handshake all run over TLS;
#   - a TLS proxy in front of the plain server: with cast_public_url from
#     X-Forwarded-Proto/-Host, and with a fixed cast_public_url and a path
#     prefix, the endpoint is the proxy's wss:// URL, and the socket
#     opened there through the proxy gets the events.
#
# Ports: TEST_NGINX_SERVER_PORT (plain, the hub behind the proxy), + 3
# (the hub on TLS), + 4 (the TLS proxy).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT json_encode json_decode);
use File::Temp ();
use IO::Socket::SSL ();
use IO::Select ();
use POSIX qw(EAGAIN EINTR EWOULDBLOCK);
use Time::HiRes qw(time);

$ENV{TEST_NGINX_TLS_PORT} ||= server_port() + 3;
$ENV{TEST_NGINX_TLS_PROXY_PORT} ||= server_port() + 4;

our $Slow = $ENV{TEST_NGINX_USE_VALGRIND} ? 6 : 1;

# the certificate
our $CertDir = File::Temp::tempdir('cast-tls-XXXXXX', TMPDIR => 1,
                                   CLEANUP => 1);
{
    my $out = `openssl req -x509 -newkey rsa:2048 -nodes -days 2 \\
                   -subj /CN=localhost \\
                   -addext 'subjectAltName=DNS:localhost,IP:127.0.0.1' \\
                   -keyout '$CertDir/key.pem' -out '$CertDir/cert.pem' 2>&1`;
    die "openssl could not make a certificate: $out\n"
        if $? || !-s "$CertDir/cert.pem";
}
$ENV{TEST_NGINX_CERT_DIR} = $CertDir;

our $TlsServers = <<'_EOC_';
    map $http_upgrade $cast_connection_upgrade {
        default  upgrade;
        ''       close;
    }

    server {
        listen 127.0.0.1:$TEST_NGINX_TLS_PORT ssl;
        server_name localhost;
        ssl_certificate $TEST_NGINX_CERT_DIR/cert.pem;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/key.pem;

        location /api/hub { cast_hub; }
        location /bind/ { cast_websocket; }
    }

    # a TLS-terminating proxy in front of the plain server
    server {
        listen 127.0.0.1:$TEST_NGINX_TLS_PROXY_PORT ssl;
        server_name localhost;
        ssl_certificate $TEST_NGINX_CERT_DIR/cert.pem;
        ssl_certificate_key $TEST_NGINX_CERT_DIR/key.pem;

        location / {
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $cast_connection_upgrade;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_read_timeout 1h;
        }

        location /cast/ {
            proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/prefixed/;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $cast_connection_upgrade;
            proxy_read_timeout 1h;
        }
    }
_EOC_

# the plain server: the hub behind the proxy
our $Locations = <<'_EOC_';
    location /api/hub {
        cast_hub;
        cast_public_url $http_x_forwarded_proto://$http_x_forwarded_host;
    }
    location /bind/ { cast_websocket; }
    location /prefixed/api/hub {
        cast_hub;
        cast_public_url https://localhost:$TEST_NGINX_TLS_PROXY_PORT/cast;
    }
    location /prefixed/bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', $TlsServers)
        if !defined $block->http_config;
    $block->set_value('config', $Locations) if !defined $block->config;
    $block->set_value('request', "GET /cast/status\n")
        if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log',
                          "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

# ---- a TLS client (package main; init code starts with "package main;") --

sub tls_connect {
    my ($port) = @_;
    my $s = IO::Socket::SSL->new(
        PeerHost => '127.0.0.1', PeerPort => $port, Timeout => 5 * $Slow,
        SSL_hostname => 'localhost',
        SSL_verify_mode => IO::Socket::SSL::SSL_VERIFY_PEER(),
        SSL_ca_file => "$CertDir/cert.pem",
        SSL_verifycn_scheme => 'http', SSL_verifycn_name => 'localhost')
        or die "TLS connect to $port: $IO::Socket::SSL::SSL_ERROR\n";
    $s->blocking(0);
    return $s;
}

# appends what can be read within $timeout to $$buf: 1 read, 0 timeout,
# undef EOF
sub tls_fill {
    my ($s, $buf, $timeout) = @_;
    my $deadline = time + $timeout;
    while (1) {
        my $n = sysread($s, my $chunk, 65536);
        if ($n) {
            $$buf .= $chunk;
            return 1;
        }
        return undef if defined $n;     # EOF
        return undef if $! != EAGAIN && $! != EWOULDBLOCK && $! != EINTR
                        && !$IO::Socket::SSL::SSL_ERROR;
        my $left = $deadline - time;
        return 0 if $left <= 0;
        # TLS may want to write (a key update) as well as read
        IO::Select->new($s)->can_read($left > 0.05 ? 0.05 : $left);
    }
}

sub tls_write {
    my ($s, $data) = @_;
    my $off = 0;
    my $deadline = time + 10 * $Slow;
    while ($off < length $data) {
        my $w = syswrite($s, $data, length($data) - $off, $off);
        if (!defined $w) {
            return 0 if time > $deadline;
            IO::Select->new($s)->can_write(0.05);
            next;
        }
        $off += $w;
    }
    return 1;
}

# an HTTPS request on a fresh connection: ($code, \%headers, $body)
sub https_request {
    my ($port, $method, $path, $body, @h) = @_;
    my $s = tls_connect($port);
    my $req = "$method $path HTTP/1.1\r\nHost: localhost:$port\r\n"
              . "Connection: close\r\n";
    while (@h) {
        my ($k, $v) = splice @h, 0, 2;
        $req .= "$k: $v\r\n";
    }
    $body = '' if !defined $body;
    $req .= 'Content-Length: ' . length($body) . "\r\n\r\n$body";
    tls_write($s, $req) or die "https_request: write failed\n";
    my $resp = '';
    my $deadline = time + 10 * $Slow;
    while (time < $deadline) {
        my $r = tls_fill($s, \$resp, $deadline - time);
        last if !defined $r;
    }
    close $s;
    my ($head, $rest) = split /\r\n\r\n/, $resp, 2;
    my ($code, $headers) = CastTest::_parse_head($head // '');
    return ($code // 0, $headers, $rest // '');
}

sub subscribe_tls {
    my ($port, $prefix, $topic, $events) = @_;
    my ($code, undef, $body) = https_request($port, 'POST', "$prefix/api/hub",
        "hub.mode=subscribe&hub.channel.type=websocket&hub.topic=$topic"
        . "&hub.events=$events&subscriber.name=tls",
        'Content-Type' => 'application/x-www-form-urlencoded');
    is($code, 202, "subscribe $topic over TLS: 202") or diag($body);
    my $j = eval { json_decode($body) } || {};
    return { topic => $topic, events => $events,
             endpoint => $j->{'hub.channel.endpoint'} // '' };
}

sub publish_tls {
    my ($port, $prefix, $topic, $event) = @_;
    my ($code, undef, $body) = https_request($port, 'POST',
        "$prefix/api/hub/$topic", json_encode($event),
        'Content-Type' => 'application/json');
    return ($code, $body);
}

sub event {
    my ($name, $id, %o) = @_;
    return { id => $id, timestamp => '2026-01-01T00:00:00.000Z',
             event => { 'hub.event' => $name,
                        context => [{ key => 'patient',
                                      resource => { resourceType => 'Patient',
                                                    id => $o{patient} // 'p1',
                                                    %{ $o{extra} || {} } } }] } };
}

# the WebSocket client of CastTest over a TLS socket
package CastTLS::WS;

our @ISA = ('CastTest::WS');

sub connect_url {
    my ($class, $url) = @_;
    my ($host, $port, $path) = $url =~ m{^wss://([^/:]+):(\d+)(/.*)$}
        or die "not a wss:// URL with a port: $url\n";
    my $sock = main::tls_connect($port);
    my $key = MIME::Base64::encode_base64(
        join('', map { chr int rand 256 } 1 .. 16), '');
    main::tls_write($sock, CastTest::ws_handshake($path,
        Host => "$host:$port", 'Sec-WebSocket-Key' => $key))
        or die "WebSocket handshake: write failed\n";
    my $self = bless { sock => $sock, buf => '', closed => 0, eof => 0 },
                     $class;
    my $deadline = Time::HiRes::time() + 5 * $main::Slow;
    while ($self->{buf} !~ /\r\n\r\n/) {
        my $left = $deadline - Time::HiRes::time();
        die "WebSocket handshake: no complete answer\n"
            if $left <= 0 || !$self->_fill($left);
    }
    my ($head, $rest) = split /\r\n\r\n/, $self->{buf}, 2;
    $self->{buf} = $rest // '';
    my ($code, $headers) = CastTest::_parse_head($head);
    die "WebSocket handshake failed: status " . ($code // 'none') . "\n"
        if ($code // 0) != 101;
    die "WebSocket handshake: bad Sec-WebSocket-Accept\n"
        if ($headers->{'sec-websocket-accept'} // '')
           ne CastTest::ws_accept_key($key);
    $self->{status} = $code;
    $self->{headers} = $headers;
    return $self;
}

sub _fill {
    my ($self, $timeout) = @_;
    return 0 if $self->{eof};
    my $r = main::tls_fill($self->{sock}, \$self->{buf}, $timeout);
    if (!defined $r) {
        $self->{eof} = 1;
        return 0;
    }
    return $r;
}

sub send_raw {
    my ($self, $bytes) = @_;
    return main::tls_write($self->{sock}, $bytes);
}

sub DESTROY {
    my $self = shift;
    return if !$self->{sock} || ${^GLOBAL_PHASE} eq 'DESTRUCT';
    $self->{sock}->close(SSL_no_shutdown => 1);
}

package main;

# connects to the endpoint and checks the hello frames (cast dialect)
sub connect_ready {
    my ($s) = @_;
    my $ws = eval { CastTLS::WS->connect_url($s->{endpoint}) };
    if (!$ws) {
        fail("connect $s->{endpoint}: $@");
        return;
    }
    my $hello = $ws->recv_json(3 * $Slow);
    is($hello && $hello->{type}, 'connection.established',
       "$s->{topic}: connection.established over TLS");
    my $conf = $ws->recv_json(3 * $Slow);
    is($conf && $conf->{'hub.mode'}, 'subscribe',
       "$s->{topic}: then the confirmation");
    return $ws;
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: HTTPS subscribe answers a wss:// endpoint; handshake, delivery and unsubscribe over TLS
--- init
package main;
my $p = $ENV{TEST_NGINX_TLS_PORT};
my $s = subscribe_tls($p, '', 'tls1', 'patient-open');
like($s->{endpoint}, qr{^wss://localhost:$p/bind/[0-9a-f]{32}$},
     'the endpoint is wss:// with the Host of the TLS request');
my $ws = connect_ready($s) or return;
my ($code, $body) = publish_tls($p, '', 'tls1', event('patient-open', 'tls1-a'));
is("$code $body", '200 {"status":"received"}', 'publish over HTTPS: 200');
my $e = $ws->recv_json(3 * $main::Slow);
is($e && $e->{id}, 'tls1-a', 'the event arrives over TLS');
is($e && $e->{event}{'hub.topic'}, 'tls1', '... with its topic');
($code) = https_request($p, 'POST', '/api/hub',
    "hub.mode=unsubscribe&hub.channel.type=websocket&hub.topic=tls1"
    . "&hub.channel.endpoint=$s->{endpoint}",
    'Content-Type' => 'application/x-www-form-urlencoded');
is($code, 202, 'unsubscribe over HTTPS: 202');
my $d = $ws->recv_json(3 * $main::Slow);
is($d && $d->{'hub.mode'}, 'denied', 'the denial arrives over TLS');
my ($op, $payload) = $ws->recv_frame(3 * $main::Slow);
is($op, 8, 'then a Close frame');
is(defined $payload && length $payload >= 2 ? unpack('n', $payload) : undef,
   1000, 'Close 1000');
my @more = $ws->recv_frame(3 * $main::Slow);
ok(!@more && $ws->{eof}, 'the hub closes the connection (TLS shut down)');
--- response_body_like: "connections":0,"subscriptions":0,



=== TEST 2: large events (1 MB, many TLS records) arrive whole and in order; the socket publishes over TLS
--- http_config eval: $main::TlsServers . "    client_max_body_size 4m;\n"
--- init
package main;
my $p = $ENV{TEST_NGINX_TLS_PORT};
my $a = subscribe_tls($p, '', 'tls2', 'patient-open');
my $b = subscribe_tls($p, '', 'tls2', 'patient-open');
my $wa = connect_ready($a) or return;
my $wb = connect_ready($b) or return;
my @sizes = (1024 * 1024, 100, 300 * 1024);
for my $i (0 .. $#sizes) {
    my ($code) = publish_tls($p, '', 'tls2',
        event('patient-open', "big-$i", extra => { pad => 'x' x $sizes[$i] }));
    is($code, 200, "publish $sizes[$i] bytes of padding: 200");
}
for my $w ([a => $wa], [b => $wb]) {
    for my $i (0 .. $#sizes) {
        my $e = $w->[1]->recv_json(10 * $main::Slow);
        is($e && $e->{id}, "big-$i", "$w->[0]: event $i in order");
        is(length($e ? $e->{event}{context}[0]{resource}{pad} : ''),
           $sizes[$i], "$w->[0]: event $i whole ($sizes[$i] bytes)");
    }
}
# an event published as a WebSocket message over TLS
my $msg = json_encode({ %{ event('patient-open', 'from-socket') },
                        event => { %{ event('patient-open', 'x')->{event} },
                                   'hub.topic' => 'tls2' } });
ok($wb->send_text($msg), 'b publishes over its socket');
for my $w ([a => $wa], [b => $wb]) {
    my $e = $w->[1]->recv_json(5 * $main::Slow);
    is($e && $e->{id}, 'from-socket', "$w->[0]: gets the socket's event");
}
$main::HOLD = [$wa, $wb];
--- response_body_like: "connections":2,"subscriptions":2,



=== TEST 3: ping/pong and the close handshake over TLS
--- init
package main;
my $p = $ENV{TEST_NGINX_TLS_PORT};
my $s = subscribe_tls($p, '', 'tls3', 'patient-open');
my $ws = connect_ready($s) or return;
$ws->send_ping('over-tls');
my ($op, $payload) = $ws->recv_frame(3 * $main::Slow);
is("$op $payload", '10 over-tls', 'Pong with the Ping payload');
$ws->send_raw(CastTest::ws_close(1000, 'bye'));
($op, $payload) = $ws->recv_frame(3 * $main::Slow);
is($op, 8, 'the hub answers the Close');
is(defined $payload && length $payload >= 2 ? unpack('n', $payload) : undef,
   1000, 'with 1000');
my @more = $ws->recv_frame(3 * $main::Slow);
ok(!@more && $ws->{eof}, 'and closes the connection');
--- response_body_like: "connections":0,"subscriptions":0,



=== TEST 4: behind a TLS proxy, cast_public_url from X-Forwarded-Proto/Host: the proxy's wss:// endpoint works
--- init
package main;
my $pp = $ENV{TEST_NGINX_TLS_PROXY_PORT};
my $s = subscribe_tls($pp, '', 'tls4', 'patient-open');
like($s->{endpoint}, qr{^wss://localhost:$pp/bind/[0-9a-f]{32}$},
     'the endpoint is the proxy\'s wss:// URL');
my $ws = connect_ready($s) or return;
my ($code) = publish_tls($pp, '', 'tls4', event('patient-open', 'tls4-a'));
is($code, 200, 'publish through the proxy: 200');
my $e = $ws->recv_json(3 * $main::Slow);
is($e && $e->{id}, 'tls4-a', 'the event arrives through the proxy');
# the same subscription's socket counts on the hub behind the proxy
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,



=== TEST 5: behind a TLS proxy under a path prefix, a fixed cast_public_url: wss://host/prefix/bind/<id> works
--- init
package main;
my $pp = $ENV{TEST_NGINX_TLS_PROXY_PORT};
my $s = subscribe_tls($pp, '/cast', 'tls5', 'patient-open');
like($s->{endpoint}, qr{^wss://localhost:$pp/cast/bind/[0-9a-f]{32}$},
     'the endpoint carries the public prefix');
my $ws = connect_ready($s) or return;
my ($code) = publish_tls($pp, '/cast', 'tls5', event('patient-open', 'tls5-a'));
is($code, 200, 'publish through the prefix: 200');
my $e = $ws->recv_json(3 * $main::Slow);
is($e && $e->{id}, 'tls5-a', 'the event arrives');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,
