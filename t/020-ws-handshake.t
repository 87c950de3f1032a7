# WebSocket channel: the opening handshake of GET /bind/<id> (SPEC 3.1).
#
# Every block subscribes in "--- init" and builds its raw request with the
# endpoint it got.  Test::Base runs the "eval" filters of all blocks before
# any nginx starts, so "--- raw_request eval" returns a reference to the
# array @main::RAW, which "--- init" (run after nginx started, before the
# request is sent) fills; both runners read the array only when sending.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use CastMode;

no_shuffle();
repeat_each(1);

our @RAW;         # the packets of the block's raw request (set by init)
our $HOLD;        # a socket kept open across a block's request
our $SUB;         # the block's subscription: {code, endpoint, id, path}

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . <<'_EOC_');
    location /api/hub { cast_hub; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

sub form {
    my %f = @_;
    my @p;
    for my $k (sort keys %f) {
        (my $v = $f{$k}) =~ s/([^A-Za-z0-9._~*-])/sprintf('%%%02X', ord $1)/ge;
        push @p, "$k=$v";
    }
    return join '&', @p;
}

# subscribe(topic, events, extra fields...) -> {code, endpoint, id, path}
sub subscribe {
    my ($topic, $events, %extra) = @_;
    my ($code, undef, $body) = http_request('POST', '/api/hub',
        form('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket',
             'hub.topic' => $topic, 'hub.events' => $events,
             'hub.lease_seconds' => 3600, 'subscriber.name' => 'ws-test', %extra),
        'Content-Type' => 'application/x-www-form-urlencoded');
    my $r = { code => $code, body => $body };
    my $j = eval { json_decode($body) } || {};
    $r->{endpoint} = $j->{'hub.channel.endpoint'};
    if (defined $r->{endpoint} && $r->{endpoint} =~ m{^wss?://[^/]+(/bind/([0-9a-f]{32}))$}) {
        ($r->{path}, $r->{id}) = ($1, $2);
    }
    is($code, 202, "subscribe to $topic answers 202")
        or diag("subscribe body: $body");
    ok(defined $r->{id}, "the endpoint is ws://<host>/bind/<32 hex>")
        or diag("endpoint: " . (defined $r->{endpoint} ? $r->{endpoint} : 'none'));
    $r->{path} = '/bind/00000000000000000000000000000000' if !defined $r->{path};
    $r->{id} = '00000000000000000000000000000000' if !defined $r->{id};
    return $r;
}

sub status {
    my ($code, undef, $body) = http_request('GET', '/cast/status');
    return eval { json_decode($body) } || {};
}

# replaces the variable parts of the hub's frames so that the body of a
# 101 response can be compared literally: the hub's own frames
# (connection.established with its timestamp -> <ts>, hub.mode frames) are
# re-encoded with sorted keys, the block's endpoint id becomes <id>; other
# frames (events) are left byte for byte
sub norm_frames {
    my $raw = shift;
    my @out;
    for my $l (CastTest::ws_decode_frames($raw)) {
        if ($l =~ /^text (\{.*\})$/s) {
            my $j = eval { json_decode($1) };
            if ($j && ($j->{type} || '') eq 'connection.established') {
                $j->{timestamp} = '<ts>' if exists $j->{timestamp};
                $l = 'text ' . json_encode($j);
            } elsif ($j && exists $j->{'hub.mode'}) {
                # the confirmation carries the lease left, in whole seconds:
                # 3599 when a second boundary passed since the subscribe
                $j->{'hub.lease_seconds'} = 3600
                    if defined $j->{'hub.lease_seconds'} && $j->{'hub.lease_seconds'} == 3599;
                $l = 'text ' . json_encode($j);
            }
        }
        $l =~ s/\Q$SUB->{id}\E/<id>/g if $SUB && $SUB->{id};
        push @out, $l;
    }
    return join '', map { "$_\n" } @out;
}

sub prep {
    my ($topic, $events, $raw_sub) = @_;
    undef $HOLD;
    $SUB = subscribe($topic, $events);
    @RAW = eval { $raw_sub->($SUB) };
    if ($@ || !@RAW) {
        fail("block setup: $@");
        # something that cannot pass the block's checks
        @RAW = ("GET /setup-failed HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    }
}

run_tests();

__DATA__

=== TEST 1: a correct handshake (RFC 6455 sample key): 101, the accept key, no Content-Length, the hello frames
--- config
--- init
package main;
prep('t1', 'patient-open', sub { ws_handshake($_[0]{path}) . ws_close(1000) });
--- raw_request eval
\@main::RAW
--- error_code: 101
--- response_headers
Upgrade: websocket
Connection: upgrade
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
!Content-Length
!Transfer-Encoding
!Sec-WebSocket-Extensions
--- raw_response_headers_like: ^HTTP/1\.1 101 Switching Protocols\r\n
--- response_body_filters eval
\&main::norm_frames
--- response_body
text {"endpoint":"<id>","timestamp":"<ts>","type":"connection.established"}
text {"hub.events":"patient-open","hub.lease_seconds":3600,"hub.mode":"subscribe","hub.topic":"t1"}
close 1000
--- error_log eval
qr/cast: socket bound to subscription [0-9a-f]{8}\.\.\. /



=== TEST 2: the 101's first frames are byte-exact JSON: connection.established first, then the confirmation
--- config
--- init
package main;
prep('t2', 'Patient-open,patient-close', sub { ws_handshake($_[0]{path}) . ws_close(1000) });
--- raw_request eval
\@main::RAW
--- error_code: 101
--- response_body_filters eval
\&CastTest::ws_body_filter
--- response_body_like eval
qr/\Atext \{"type":"connection\.established","endpoint":"[0-9a-f]{32}","timestamp":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"\}
text \{"hub\.mode":"subscribe","hub\.topic":"t2","hub\.events":"Patient-open,patient-close","hub\.lease_seconds":(?:3600|3599)\}
close 1000
\z/



=== TEST 3: the endpoint id is never logged in full at info level
--- config
--- init
package main;
prep('t3', 'patient-open', sub { ws_handshake($_[0]{path}) . ws_close(1000) });
--- raw_request eval
\@main::RAW
--- error_code: 101
--- response_body_filters eval
\&main::norm_frames
--- response_body
text {"endpoint":"<id>","timestamp":"<ts>","type":"connection.established"}
text {"hub.events":"patient-open","hub.lease_seconds":3600,"hub.mode":"subscribe","hub.topic":"t3"}
close 1000
--- no_error_log eval
[qr/\[(?:info|notice|warn|error)\].*[0-9a-f]{32}/, '[alert]', '[crit]', '[emerg]', 'signal']



=== TEST 4: fhircast dialect: the confirmation only (no connection.established)
--- config
cast_dialect fhircast;
--- init
package main;
prep('t4', 'Patient-open', sub { ws_handshake($_[0]{path}) . ws_close(1000) });
--- raw_request eval
\@main::RAW
--- error_code: 101
--- response_body_filters eval
\&main::norm_frames
--- response_body
text {"hub.events":"Patient-open","hub.lease_seconds":3600,"hub.mode":"subscribe","hub.topic":"t4"}
close 1000



=== TEST 5: "Connection" is a token list, "Upgrade" is case-insensitive
--- config
--- init
package main;
prep('t5', 'patient-open', sub {
    ws_handshake($_[0]{path}, Connection => 'keep-alive, Upgrade', Upgrade => 'WebSocket')
    . ws_close(1000) });
--- raw_request eval
\@main::RAW
--- error_code: 101
--- response_headers
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
--- response_body_filters eval
\&main::norm_frames
--- response_body
text {"endpoint":"<id>","timestamp":"<ts>","type":"connection.established"}
text {"hub.events":"patient-open","hub.lease_seconds":3600,"hub.mode":"subscribe","hub.topic":"t5"}
close 1000



=== TEST 6: another key gives its own accept value
--- config
--- init
package main;
prep('t6', 'patient-open', sub {
    ws_handshake($_[0]{path}, 'Sec-WebSocket-Key' => 'AAECAwQFBgcICQoLDA0ODw==') . ws_close(1000) });
--- raw_request eval
\@main::RAW
--- error_code: 101
--- response_headers eval
"Sec-WebSocket-Accept: " . CastTest::ws_accept_key('AAECAwQFBgcICQoLDA0ODw==')
--- response_body_filters eval
\&main::norm_frames
--- response_body
text {"endpoint":"<id>","timestamp":"<ts>","type":"connection.established"}
text {"hub.events":"patient-open","hub.lease_seconds":3600,"hub.mode":"subscribe","hub.topic":"t6"}
close 1000



=== TEST 7: frames in the handshake's packet are processed: ping, an event, close
--- cast_local_only: the socket's own event comes back through Redis in Redis mode, a race with the Close it sent right after it (the event is published either way)
--- config
--- init
package main;
prep('t7', 'patient-open', sub {
    ws_handshake($_[0]{path})
    . ws_ping('in-the-same-packet')
    . ws_text('{"id":"ev-7","timestamp":"2024-01-01T00:00:00.000Z","event":{"hub.topic":"t7","hub.event":"patient-open","context":[]}}')
    . ws_close(1000, 'bye') });
--- raw_request eval
\@main::RAW
--- error_code: 101
--- response_body_filters eval
\&main::norm_frames
--- response_body
text {"endpoint":"<id>","timestamp":"<ts>","type":"connection.established"}
text {"hub.events":"patient-open","hub.lease_seconds":3600,"hub.mode":"subscribe","hub.topic":"t7"}
pong in-the-same-packet
text {"id":"ev-7","timestamp":"2024-01-01T00:00:00.000Z","event":{"hub.topic":"t7","hub.event":"patient-open","context":[]}}
close 1000
--- error_log
cast: client closed the socket with 1000



=== TEST 8: the handshake split in two packets, a frame split across them
--- config
--- init
package main;
prep('t8', 'patient-open', sub {
    my $all = ws_handshake($_[0]{path}) . ws_ping('split') . ws_close(1000);
    my $cut = index($all, "\r\n\r\n") + 5;     # one byte of the ping frame
    (substr($all, 0, 20), substr($all, 20, $cut - 20), substr($all, $cut)) });
--- raw_request eval
\@main::RAW
--- raw_request_middle_delay: 0.1
--- error_code: 101
--- response_body_filters eval
\&main::norm_frames
--- response_body
text {"endpoint":"<id>","timestamp":"<ts>","type":"connection.established"}
text {"hub.events":"patient-open","hub.lease_seconds":3600,"hub.mode":"subscribe","hub.topic":"t8"}
pong split
close 1000



=== TEST 9: Sec-WebSocket-Version 8 -> 426 with "Sec-WebSocket-Version: 13"
--- config
--- init
package main;
prep('t9', 'patient-open', sub {
    ws_handshake($_[0]{path}, 'Sec-WebSocket-Version' => '8', Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 426
--- response_headers
Sec-WebSocket-Version: 13
!Sec-WebSocket-Accept
!Upgrade
--- raw_response_headers_like: ^HTTP/1\.1 426 
--- response_body_like: "error"



=== TEST 10: no Sec-WebSocket-Version -> 426
--- config
--- init
package main;
prep('t10', 'patient-open', sub {
    ws_handshake($_[0]{path}, 'Sec-WebSocket-Version' => undef, Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 426
--- response_headers
Sec-WebSocket-Version: 13
!Sec-WebSocket-Accept



=== TEST 11: Sec-WebSocket-Version given twice (13, 13) -> 426
--- config
--- init
package main;
prep('t11', 'patient-open', sub {
    my $r = ws_handshake($_[0]{path}, Connection => 'Upgrade, close');
    $r =~ s/\r\n\r\n\z/\r\nSec-WebSocket-Version: 13\r\n\r\n/;
    $r });
--- raw_request eval
\@main::RAW
--- error_code: 426
--- response_headers
Sec-WebSocket-Version: 13



=== TEST 12: POST instead of GET -> 400
--- config
--- init
package main;
prep('t12', 'patient-open', sub {
    my $r = ws_handshake($_[0]{path}, Connection => 'Upgrade, close');
    $r =~ s/^GET /POST /;
    $r });
--- raw_request eval
\@main::RAW
--- error_code: 400
--- response_headers
!Sec-WebSocket-Accept
--- response_body_like: "error"



=== TEST 13: HTTP/1.0 -> 400
--- config
--- init
package main;
prep('t13', 'patient-open', sub {
    my $r = ws_handshake($_[0]{path});
    $r =~ s{ HTTP/1\.1\r\n}{ HTTP/1.0\r\n};
    $r });
--- raw_request eval
\@main::RAW
--- error_code: 400
--- response_headers
!Sec-WebSocket-Accept



=== TEST 14: no Upgrade header -> 400
--- config
--- init
package main;
prep('t14', 'patient-open', sub {
    ws_handshake($_[0]{path}, Upgrade => undef, Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 400
--- response_headers
!Sec-WebSocket-Accept



=== TEST 15: "Upgrade: h2c" -> 400
--- config
--- init
package main;
prep('t15', 'patient-open', sub {
    ws_handshake($_[0]{path}, Upgrade => 'h2c', Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 400



=== TEST 16: Connection without the "upgrade" token -> 400
--- config
--- init
package main;
prep('t16', 'patient-open', sub {
    ws_handshake($_[0]{path}, Connection => 'close') });
--- raw_request eval
\@main::RAW
--- error_code: 400
--- response_headers
!Sec-WebSocket-Accept



=== TEST 17: "Connection: upgraded" is not the token "upgrade" -> 400
--- config
--- init
package main;
prep('t17', 'patient-open', sub {
    ws_handshake($_[0]{path}, Connection => 'upgraded, close') });
--- raw_request eval
\@main::RAW
--- error_code: 400



=== TEST 18: no Sec-WebSocket-Key -> 400
--- config
--- init
package main;
prep('t18', 'patient-open', sub {
    ws_handshake($_[0]{path}, 'Sec-WebSocket-Key' => undef, Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 400
--- response_headers
!Sec-WebSocket-Accept



=== TEST 19: a key that is not base64 -> 400
--- config
--- init
package main;
prep('t19', 'patient-open', sub {
    ws_handshake($_[0]{path}, 'Sec-WebSocket-Key' => 'not a base64 key!!!!!!!!', Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 400



=== TEST 20: a key of 15 bytes -> 400
--- config
--- init
package main;
prep('t20', 'patient-open', sub {
    ws_handshake($_[0]{path}, 'Sec-WebSocket-Key' => 'AAECAwQFBgcICQoLDA0O', Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 400



=== TEST 21: a key of 17 bytes -> 400
--- config
--- init
package main;
prep('t21', 'patient-open', sub {
    ws_handshake($_[0]{path}, 'Sec-WebSocket-Key' => 'AAECAwQFBgcICQoLDA0ODxA=', Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 400



=== TEST 22: Sec-WebSocket-Key given twice -> 400
--- config
--- init
package main;
prep('t22', 'patient-open', sub {
    my $r = ws_handshake($_[0]{path}, Connection => 'Upgrade, close');
    $r =~ s/\r\n\r\n\z/\r\nSec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw==\r\n\r\n/;
    $r });
--- raw_request eval
\@main::RAW
--- error_code: 400



=== TEST 23: a well-formed but unknown id -> 404
--- config
--- init
package main;
prep('t23', 'patient-open', sub {
    (my $p = $_[0]{path}) =~ s{/bind/.*}{'/bind/' . ('0123456789abcdef' x 2)}e;
    ws_handshake($p, Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 404
--- response_headers
!Sec-WebSocket-Accept
--- response_body_like: "error"



=== TEST 24: the id in upper case is another (unknown) id -> 404
--- config
--- init
package main;
prep('t24', 'patient-open', sub {
    ws_handshake(uc($_[0]{path}) =~ s{^/BIND/}{/bind/}r, Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 404



=== TEST 25: a truncated id -> 404
--- config
--- init
package main;
prep('t25', 'patient-open', sub {
    ws_handshake(substr($_[0]{path}, 0, -1), Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 404



=== TEST 26: an unsubscribed endpoint -> 404
--- config
--- init
package main;
prep('t26', 'patient-open', sub {
    my $s = shift;
    my ($code) = http_request('POST', '/api/hub',
        form('hub.mode' => 'unsubscribe', 'hub.channel.type' => 'websocket',
                   'hub.topic' => 't26', 'hub.channel.endpoint' => $s->{endpoint}),
        'Content-Type' => 'application/x-www-form-urlencoded');
    is($code, 202, 'unsubscribe answers 202');
    ws_handshake($s->{path}, Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 404



=== TEST 27: a subscription whose socket never came expires after cast_bind_timeout -> 404
--- config
cast_bind_timeout 1s;
--- init
package main;
prep('t27', 'patient-open', sub {
    Time::HiRes::sleep(2.2);
    is(status()->{subscriptions}, 0, 'the unbound subscription expired');
    ws_handshake($_[0]{path}, Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 404



=== TEST 28: a bound socket keeps its subscription past cast_bind_timeout
--- config
cast_bind_timeout 1s;
--- init
package main;
prep('t28', 'patient-open', sub {
    my $ws = CastTest::WS->connect($_[0]{path});
    Time::HiRes::sleep(2.2);
    is(status()->{subscriptions}, 1, 'the bound subscription is still there');
    $main::HOLD = $ws;
    ws_handshake($_[0]{path}, Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 409



=== TEST 29: a second socket on an endpoint that has a live one -> 409, the first one keeps working
--- config
--- init
package main;
prep('t29', 'patient-open', sub {
    $main::HOLD = CastTest::WS->connect($_[0]{path});
    ws_handshake($_[0]{path}, Connection => 'Upgrade, close') });
--- raw_request eval
\@main::RAW
--- error_code: 409
--- response_headers
!Sec-WebSocket-Accept
--- response_body_like: "error"



=== TEST 30: the first socket still works after a 409 (checked through GET /cast/status)
--- config
--- init
package main;
prep('t30', 'patient-open', sub {
    my $s = shift;
    my $ws = CastTest::WS->connect($s->{path});
    my $hello = $ws->recv_json(2);
    my $conf = $ws->recv_json(2);
    is($conf && $conf->{'hub.mode'}, 'subscribe', 'first socket: confirmation');
    my $second = eval { CastTest::WS->connect($s->{path}); 1 } ? 'connected' : $@;
    like($second, qr/status 409/, 'second socket: 409');
    my ($code) = http_request('POST', '/api/hub/t30',
        '{"event":{"hub.event":"patient-open","context":[]}}',
        'Content-Type' => 'application/json');
    is($code, 200, 'publish answers 200');
    my $ev = $ws->recv_json(2);
    is($ev && $ev->{event}{'hub.event'}, 'patient-open', 'first socket still receives events');
    $ws->send_ping('still-there');
    my ($op, $payload) = $ws->recv_frame(2);
    is("$op $payload", '10 still-there', 'first socket answers a ping');
    $main::HOLD = $ws;
    "GET /cast/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" });
--- raw_request eval
\@main::RAW
--- response_body_like: "connections":1\b.*"subscriptions":1\b



=== TEST 31: a topic and events with a quote, a backslash and UTF-8 come back as JSON strings in the confirmation (written without jansson)
--- config
--- init
package main;
prep("t31 q\"u\\o \xc3\xa9", "patient-open,x\"y\\z", sub { ws_handshake($_[0]{path}) . ws_close(1000) });
--- raw_request eval
\@main::RAW
--- error_code: 101
--- response_body_filters eval
\&CastTest::ws_body_filter
--- response_body_like eval
qr/\Atext \{"type":"connection\.established","endpoint":"[0-9a-f]{32}","timestamp":"[^"]+"\}
text \{"hub\.mode":"subscribe","hub\.topic":"t31 q\\"u\\\\o \xc3\xa9","hub\.events":"patient-open,x\\"y\\\\z","hub\.lease_seconds":(?:3600|3599)\}
close 1000
\z/



=== TEST 32: a handshake longer than client_header_buffer_size (large header buffers, freed once it is a socket), frames in the same packet: ping, close
--- config
client_header_buffer_size 1k;
large_client_header_buffers 4 8k;
--- init
package main;
prep('t32', 'patient-open', sub {
    ws_handshake($_[0]{path}, 'X-Long' => 'a' x 3000, 'X-Longer' => 'b' x 5000)
    . ws_ping('after-a-long-header')
    . ws_close(1000, 'bye') });
--- raw_request eval
\@main::RAW
--- error_code: 101
--- response_body_filters eval
\&main::norm_frames
--- response_body
text {"endpoint":"<id>","timestamp":"<ts>","type":"connection.established"}
text {"hub.events":"patient-open","hub.lease_seconds":3600,"hub.mode":"subscribe","hub.topic":"t32"}
pong after-a-long-header
close 1000
--- error_log
cast: client closed the socket with 1000



=== TEST 33: a socket whose handshake took large header buffers receives events and answers pings afterwards
--- config
client_header_buffer_size 1k;
large_client_header_buffers 4 8k;
--- init
package main;
prep('t33', 'patient-open', sub {
    my $s = shift;
    my $ws = CastTest::WS->connect($s->{path}, 'X-Long' => 'c' x 6000);
    my $hello = $ws->recv_json(2);
    my $conf = $ws->recv_json(2);
    is($conf && $conf->{'hub.mode'}, 'subscribe', 'long header: confirmation');
    my ($code) = http_request('POST', '/api/hub/t33',
        '{"event":{"hub.event":"patient-open","context":[]}}',
        'Content-Type' => 'application/json');
    is($code, 200, 'publish answers 200');
    my $ev = $ws->recv_json(2);
    is($ev && $ev->{event}{'hub.event'}, 'patient-open', 'long header: the event arrives');
    $ws->send_ping('x' x 100);
    my ($op, $payload) = $ws->recv_frame(2);
    is("$op $payload", '10 ' . ('x' x 100), 'long header: a ping is answered');
    $main::HOLD = $ws;
    "GET /cast/status HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n" });
--- raw_request eval
\@main::RAW
--- response_body_like: "connections":1\b.*"subscriptions":1\b
