# WebSocket channel against hostile or unlucky clients (issues 8 and 13):
# HTTP/2 upgrades, handshakes with a body, frames in the handshake's packet,
# a stored context larger than cast_send_queue, the socket message limit
# and its timer, and the closing handshake (lingering).
#
# Scenarios run in "--- init" (after nginx started) with raw sockets and
# CastTest::WS; the block's own request is GET /cast/status.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use IO::Socket::INET ();
use IO::Select ();
use Time::HiRes ();

# the HTTP/2 listener of TEST 1
$ENV{TEST_NGINX_H2_PORT} ||= server_port() + 5;

no_shuffle();
repeat_each(1);

our $HOLD;

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . <<'_EOC_');
    location /api/hub { cast_hub; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

# ---- helpers (package main; init code starts with "package main;") ----

# subscribe(topic, events) -> the /bind/<id> path (undef on failure)
sub subscribe {
    my ($topic, $events) = @_;
    my ($code, undef, $body) = http_request('POST', '/api/hub',
        "hub.mode=subscribe&hub.channel.type=websocket&hub.topic=$topic"
        . "&hub.events=$events&hub.lease_seconds=3600&subscriber.name=hostile",
        'Content-Type' => 'application/x-www-form-urlencoded');
    my ($path) = $body =~ m{"hub\.channel\.endpoint":"wss?://[^/"]+(/bind/[0-9a-f]{32})"};
    is($code, 202, "subscribe to $topic: 202");
    return $path;
}

sub status {
    my (undef, undef, $body) = http_request('GET', '/cast/status');
    return eval { json_decode($body) } || {};
}

# sends the bytes on a new connection, returns what came back until the
# server closed the connection or the timeout
sub exchange {
    my ($bytes, $timeout) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => server_port(),
                                  Proto => 'tcp', Timeout => 5) or die "connect: $!";
    binmode $s;
    CastTest::_write_all($s, $bytes);
    my $got = '';
    my $sel = IO::Select->new($s);
    my $deadline = Time::HiRes::time() + ($timeout || 3);
    while ((my $left = $deadline - Time::HiRes::time()) > 0) {
        last if !$sel->can_read($left);
        my $n = sysread($s, $got, 65536, length $got);
        last if !$n;
    }
    close $s;
    return $got;
}

# the status line and the frames after the header, as ws_decode_frames lines
sub split_response {
    my $got = shift;
    my ($head, $rest) = split /\r\n\r\n/, $got, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.1 (\d{3})};
    return ($status // 'none', [CastTest::ws_decode_frames($rest // '')], $head // '');
}

# ---- a minimal HTTP/2 client: one request per stream, no Huffman ----

sub h2_frame {
    my ($type, $flags, $stream, $payload) = @_;
    my $len = length $payload;
    return chr($len >> 16) . pack('nCCN', $len & 0xffff, $type, $flags, $stream) . $payload;
}

# HPACK "literal header field without indexing, new name", short strings
sub h2_header {
    my ($name, $value) = @_;
    die "h2_header: too long\n" if length($name) > 126 || length($value) > 126;
    return "\x00" . chr(length $name) . $name . chr(length $value) . $value;
}

# h2_request(sock, stream id, [name, value, ...]) -> (status, body)
my %H2_STATUS = (8 => 200, 9 => 204, 10 => 206, 11 => 304, 12 => 400, 13 => 404, 14 => 500);
sub h2_request {
    my ($s, $stream, $headers) = @_;
    my $block = '';
    for (my $i = 0; $i < @$headers; $i += 2) {
        $block .= h2_header($headers->[$i], $headers->[$i + 1]);
    }
    CastTest::_write_all($s, h2_frame(1, 0x5, $stream, $block));   # END_STREAM|END_HEADERS
    my ($buf, $status, $body) = ('', 'none', '');
    my $sel = IO::Select->new($s);
    my $deadline = Time::HiRes::time() + 5;
    while (1) {
        while (length($buf) >= 9) {
            my ($l1, $l2, $type, $flags, $sid) = unpack 'CnCCN', $buf;
            my $len = ($l1 << 16) | $l2;
            last if length($buf) < 9 + $len;
            my $p = substr($buf, 9, $len);
            substr($buf, 0, 9 + $len) = '';
            $sid &= 0x7fffffff;
            if ($type == 4 && !($flags & 1)) {                # SETTINGS: ack
                CastTest::_write_all($s, h2_frame(4, 1, 0, ''));
            } elsif ($type == 1 && $sid == $stream) {         # HEADERS
                my $b = ord $p;
                if ($b & 0x80) {
                    $status = $H2_STATUS{$b & 0x7f} // "index " . ($b & 0x7f);
                } elsif ((($b & 0xc0) == 0x40 ? $b & 0x3f : $b & 0x0f) == 8) {
                    $status = substr($p, 2, ord(substr $p, 1, 1) & 0x7f);
                }
                return ($status, $body) if $flags & 1;
            } elsif ($type == 0 && $sid == $stream) {         # DATA
                $body .= $p;
                return ($status, $body) if $flags & 1;
            } elsif ($type == 3 && $sid == $stream) {         # RST_STREAM
                return ("reset", $body);
            } elsif ($type == 7) {                            # GOAWAY
                return ("goaway", $body);
            }
        }
        my $left = $deadline - Time::HiRes::time();
        return ('timeout', $body) if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($s, $buf, 65536, length $buf);
        return ('eof', $body) if !$n;
    }
}

sub h2_connect {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $ENV{TEST_NGINX_H2_PORT},
                                  Proto => 'tcp', Timeout => 5) or die "connect h2: $!";
    binmode $s;
    CastTest::_write_all($s, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" . h2_frame(4, 0, 0, ''));
    return $s;
}

sub h2_upgrade_headers {
    my $path = shift;
    return [':method' => 'GET', ':scheme' => 'http', ':path' => $path,
            ':authority' => 'localhost', 'upgrade' => 'websocket',
            'connection' => 'Upgrade', 'sec-websocket-key' => $CastTest::DefaultKey,
            'sec-websocket-version' => '13'];
}

run_tests();

__DATA__

=== TEST 1: HTTP/2: an upgrade request on a stream is refused with 400 and the worker lives on (WebSocket over HTTP/2 is not supported)
--- http_config
    server {
        listen 127.0.0.1:$TEST_NGINX_H2_PORT http2;
        server_name h2;
        location /api/hub { cast_hub; }
        location /bind/ { cast_websocket; }
    }
--- config
--- init
package main;
my $path = subscribe('h2a', '*');
my $s = h2_connect();
my ($status, $body) = h2_request($s, 1, h2_upgrade_headers($path));
is($status, 400, 'HTTP/2 upgrade: 400');
like($body, qr/^\{"error":"websocket over HTTP\/2 or HTTP\/3 is not supported, use HTTP\/1\.1"\}/,
     'a JSON error that says why');
unlike($body, qr/\x88/, 'no WebSocket frame in the stream');
# the HTTP/2 connection goes on: a second stream on it
($status, $body) = h2_request($s, 3, h2_upgrade_headers($path));
is($status, 400, 'the same connection, a second stream: 400 again');
($status) = h2_request($s, 5, [':method' => 'GET', ':scheme' => 'http', ':path' => '/api/hub/h2a',
                                ':authority' => 'localhost']);
is($status, 200, 'and a plain request on it: 200');
close $s;
# the endpoint is still free for an HTTP/1.1 socket
my $ws = eval { CastTest::WS->connect($path) };
ok(!$@ && $ws, 'the subscription binds over HTTP/1.1 afterwards') or diag($@);
my $j = $ws && $ws->recv_json(3);
is($j && $j->{type}, 'connection.established', 'with its greeting');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,
--- error_log
cast: 400 websocket over HTTP/2 or HTTP/3 is not supported, use HTTP/1.1
--- no_error_log
[alert]
[crit]
[emerg]
signal
serving cast websocket



=== TEST 2: a handshake that declares a body is refused with 400 (Content-Length, chunked, a body announced and not sent)
--- config
--- init
package main;
my $path = subscribe('body2', '*');
my $hs = ws_handshake($path);
$hs =~ s/\r\n\r\n\z/\r\n/;
my (undef, undef, $head) = split_response(my $got = exchange($hs . "Content-Length: 5\r\n\r\nhello"));
like($got, qr{^HTTP/1\.1 400 .*\r\n\r\n\{"error":"a websocket handshake has no body"\}\z}s,
     'Content-Length: 5 with the body: 400, a JSON error, nothing after it');
my ($st) = split_response(exchange($hs . "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"));
is($st, 400, 'Transfer-Encoding: chunked: 400');
($st) = split_response(exchange($hs . "Content-Length: 100\r\n\r\n" . ws_ping('x'), 3));
is($st, 400, 'Content-Length: 100 with 7 bytes sent: 400 (the bytes are not frames)');
# the endpoint was never bound by the refused handshakes
my $ws = eval { CastTest::WS->connect($path) };
ok(!$@ && $ws, 'the endpoint binds afterwards') or diag($@);
$main::HOLD = $ws;
$hs = ws_handshake(subscribe('body2', '*'));
$hs =~ s/\r\n\r\n\z/\r\n/;
($st) = split_response(exchange($hs . "Content-Length: 0\r\n\r\n" . ws_close(1000)));
is($st, 101, 'Content-Length: 0 is no body: 101');
--- response_body_like: "connections":1,"subscriptions":1,
--- error_log
cast: 400 a websocket handshake has no body



=== TEST 3: an invalid frame in the handshake's packet: the 101 comes first, then the Close
--- config
--- init
package main;
my @cases = (
    ['an unmasked ping',        ws_ping('x', mask => 0),                         'close 1002 unmasked client frame'],
    ['RSV bits',                ws_text('x', rsv => 4),                          'close 1002 reserved bits set'],
    ['a 2^63 length',           "\x81\xff\x80" . ("\x00" x 7) . "abcd",          qr/^close 100[29] /],
    ['an HTTP request after it', "GET /api/hub/t3 HTTP/1.1\r\nHost: x\r\n\r\n",  qr/^close 1002 /],
    ['invalid UTF-8',           ws_text("\xff\xfe"),                             'close 1007 invalid UTF-8 in text message'],
);
for my $c (@cases) {
    my ($name, $bytes, $want) = @$c;
    my $path = subscribe("t3", '*');
    my ($st, $frames, $head) = split_response(exchange(ws_handshake($path) . $bytes));
    is($st, 101, "$name: the 101 first");
    like($head, qr/\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=/, "$name: a complete 101");
    my @close = grep { /^close/ } @$frames;
    is(scalar @close, 1, "$name: one Close");
    ref $want ? like($close[0] // '', $want, "$name: $close[0]")
              : is($close[0], $want, "$name: $want");
    is($frames->[-1], $close[0], "$name: the Close is the last frame");
}
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client sent an invalid frame: unmasked client frame, closing with 1002



=== TEST 4: a stored context larger than cast_send_queue: new sockets get the 101, greeting and replay, then live events
--- config
cast_send_queue 64k;
--- init
package main;
my $pad = 'p' x 300000;
my ($code) = http_request('POST', '/api/hub/big4',
    '{"event":{"hub.event":"patient-open","context":[{"key":"patient","resource":{"resourceType":"Patient","id":"p1","pad":"' . $pad . '"}}]}}',
    'Content-Type' => 'application/json');
is($code, 200, 'a 300 kB context, published');
my @ws;
for my $n (1, 2) {
    my $path = subscribe('big4', '*');
    my $ws = eval { CastTest::WS->connect($path) };
    ok(!$@ && $ws, "socket $n: 101") or diag($@);
    next if !$ws;
    my $h = $ws->recv_json(5);
    is($h && $h->{type}, 'connection.established', "socket $n: connection.established");
    my $c = $ws->recv_json(5);
    is($c && $c->{'hub.mode'}, 'subscribe', "socket $n: the confirmation");
    my $r = $ws->recv_json(5);
    is($r && length($r->{event}{context}[0]{resource}{pad} // ''), 300000, "socket $n: the replay, whole");
    push @ws, $ws;
}
($code) = http_request('POST', '/api/hub/big4', '{"event":{"hub.event":"patient-close","context":[]}}',
                       'Content-Type' => 'application/json');
is($code, 200, 'a live event');
for my $n (0 .. $#ws) {
    my $e = $ws[$n]->recv_json(5);
    is($e && $e->{event}{'hub.event'}, 'patient-close', 'socket ' . ($n + 1) . ': the live event');
}
$main::HOLD = \@ws;
--- response_body_like: "connections":2,"subscriptions":2,
--- no_error_log
closing with 1008
[alert]
[crit]
[emerg]
signal



=== TEST 5: cast_ws_max_message_size bounds a socket's messages below cast_max_message_size: 1009 past it
--- config
cast_ws_max_message_size 1k;
--- init
package main;
my $path = subscribe('max5', '*');
my $ws = CastTest::WS->connect($path);
$ws->recv_json(3) for 1 .. 2;
$ws->send_text('y' x 1024);
my $e = $ws->recv_json(3);
like($e && $e->{error}, qr/./, '1024 bytes: read (and answered: not JSON)');
# in fragments that add up to 1025
$ws->send_raw(ws_text('z' x 1000, fin => 0) . ws_frame('cont', 'z' x 25));
my ($op, $p);
do { ($op, $p) = $ws->recv_frame(3) } while (defined $op && $op != 8);
is($op, 8, 'fragments over 1024 bytes: Close');
is(defined $p ? unpack('n', $p) : 0, 1009, 'code 1009');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
message too big, closing with 1009



=== TEST 6: a message that stalls or trickles is closed with 1008 after cast_ws_message_timeout
--- config
cast_ws_message_timeout 1s;
--- init
package main;
# half a frame, then nothing
my $path = subscribe('slow6', '*');
my $ws = CastTest::WS->connect($path);
$ws->recv_json(3) for 1 .. 2;
my $t0 = Time::HiRes::time();
my $frame = ws_text('{"id":"x","status":200}' . (' ' x 200));
$ws->send_raw(substr($frame, 0, 100));
my ($op, $p);
do { ($op, $p) = $ws->recv_frame(5) } while (defined $op && $op != 8);
my $dt = Time::HiRes::time() - $t0;
is($op, 8, 'half a frame: Close');
is(defined $p ? unpack('n', $p) . ' ' . substr($p, 2) : '', '1008 message timeout', '1008 message timeout');
ok($dt >= 0.9 && $dt < 3, sprintf('after the timeout (%.1f s)', $dt));

# one byte every 0.2 s: the timer counts from the first byte
$path = subscribe('slow6', '*');
$ws = CastTest::WS->connect($path);
$ws->recv_json(3) for 1 .. 2;
$t0 = Time::HiRes::time();
$ws->{sock}->blocking(0);
my $closed;
for my $i (0 .. length($frame) - 1) {
    local $SIG{PIPE} = 'IGNORE';
    syswrite($ws->{sock}, substr($frame, $i, 1));
    Time::HiRes::sleep(0.2);
    if ($ws->is_closed) { $closed = Time::HiRes::time() - $t0; last }
    last if Time::HiRes::time() - $t0 > 5;
}
ok(defined $closed && $closed < 3, 'a trickled frame: closed' . (defined $closed ? sprintf(' after %.1f s', $closed) : ''));

# a fragmented message with a ping between the fragments, in time: no close
$path = subscribe('slow6', '*');
$ws = CastTest::WS->connect($path);
$ws->recv_json(3) for 1 .. 2;
$ws->send_raw(ws_text('nope', fin => 0));
Time::HiRes::sleep(0.3);
$ws->send_raw(ws_ping('p'));
Time::HiRes::sleep(0.3);
$ws->send_raw(ws_frame('cont', '!'));
my $pong;
my $err;
while (my ($o, $pl) = $ws->recv_frame(2)) {
    $pong = $pl if $o == 10;
    if ($o == 1) { $err = $pl; last }
}
is($pong, 'p', 'the ping between fragments is answered');
like($err // '', qr/"error"/, 'the message is read (an error reply: not JSON)');
ok(!$ws->is_closed, 'the socket stays open');
Time::HiRes::sleep(1.2);
ok(!$ws->is_closed, 'no timer left behind');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,
--- error_log
client message not complete after 1000 ms, closing with 1008



=== TEST 7: the hub's Close: the client reads it and then EOF; the connection waits for the client's Close, lingering_timeout at most
--- config
lingering_timeout 1s;
--- init
package main;
# the client answers: the connection ends at its Close
my $path = subscribe('bye7', '*');
my ($id) = $path =~ m{([0-9a-f]{32})$};
my $ws = CastTest::WS->connect($path);
$ws->recv_json(3) for 1 .. 2;
my ($code) = http_request('POST', '/api/hub',
    "hub.mode=unsubscribe&hub.topic=bye7&hub.channel.endpoint=$id",
    'Content-Type' => 'application/x-www-form-urlencoded');
is($code, 202, 'unsubscribe');
my $d = $ws->recv_json(3);
is($d && $d->{'hub.mode'}, 'denied', 'the denial');
my ($op, $p) = $ws->recv_frame(3);
is($op, 8, 'Close');
is(defined $p ? unpack('n', $p) : 0, 1000, 'code 1000');
my @more = $ws->recv_frame(2);
ok(!@more && $ws->{eof}, 'then EOF: nothing is written after the Close');
is(status()->{connections}, 0, 'the socket is not counted any more');
$ws->send_raw(ws_close(1000));
Time::HiRes::sleep(0.3);

# the client does not answer: the connection ends after lingering_timeout
$path = subscribe('bye7', '*');
($id) = $path =~ m{([0-9a-f]{32})$};
$ws = CastTest::WS->connect($path);
$ws->recv_json(3) for 1 .. 2;
http_request('POST', '/api/hub', "hub.mode=unsubscribe&hub.topic=bye7&hub.channel.endpoint=$id",
             'Content-Type' => 'application/x-www-form-urlencoded');
$ws->recv_json(3);
($op) = $ws->recv_frame(3);
is($op, 8, 'second socket: Close');
Time::HiRes::sleep(1.8);
$main::HOLD = $ws;
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log eval
[qr/cast: client closed the socket with 1000/,
 qr/cast: no close frame from the client after \d+ ms, closing the connection/]



=== TEST 8: by default a socket message is limited to 1 MB (cast_max_message_size is 16 MB): 1009 past it
--- config
--- init
package main;
my $path = subscribe('max8', '*');
my $ws = CastTest::WS->connect($path);
$ws->recv_json(3) for 1 .. 2;
$ws->send_text('{"id":"a","status":' . (' ' x (1048576 - 22)) . '1}');
my ($op, $p) = $ws->recv_frame(3);
ok(!defined $op, '1 MB: read (an ack, no answer)');
$ws->send_raw(ws_text('[' . (' ' x 1048575), fin => 0) . ws_frame('cont', ']'));
do { ($op, $p) = $ws->recv_frame(5) } while (defined $op && $op != 8);
is($op, 8, '1 MB + 1 byte: Close');
is(defined $p ? unpack('n', $p) : 0, 1009, 'code 1009');
--- response_body_like: "connections":0,"subscriptions":0,"topics":\d+,"events_in":0,"events_out":0,.*"acks":1,
--- error_log
message too big, closing with 1009
