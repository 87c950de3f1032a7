# WebSocket channel: client frames and protocol errors (SPEC 3.3, RFC 6455).
#
# Each block runs its scenario in "--- init" (after nginx started) with
# CastTest::WS and Test::More asserts, then GETs /cast/status to check the
# state it left behind (the socket and its subscription are gone after a
# protocol error) and the error log for the hub's log line.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use CastMode;
use Time::HiRes ();

no_shuffle();
repeat_each(1);

our $HOLD;   # sockets that must stay open until the block's request

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

sub form {
    my %f = @_;
    my @p;
    for my $k (sort keys %f) {
        (my $v = $f{$k}) =~ s/([^A-Za-z0-9._~*-])/sprintf('%%%02X', ord $1)/ge;
        push @p, "$k=$v";
    }
    return join '&', @p;
}

sub subscribe {
    my ($topic, $events, %extra) = @_;
    my ($code, undef, $body) = http_request('POST', '/api/hub',
        form('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket',
             'hub.topic' => $topic, 'hub.events' => $events,
             'hub.lease_seconds' => 3600, 'subscriber.name' => 'frames', %extra),
        'Content-Type' => 'application/x-www-form-urlencoded');
    my $j = eval { json_decode($body) } || {};
    my ($path) = ($j->{'hub.channel.endpoint'} || '') =~ m{^wss?://[^/]+(/bind/[0-9a-f]{32})$};
    is($code, 202, "subscribe $topic: 202") or diag($body);
    return { topic => $topic, path => $path || '/bind/none', endpoint => $j->{'hub.channel.endpoint'} };
}

# connects and reads the hello frames; returns the socket
sub connect_ready {
    my ($s) = @_;
    my $ws = eval { CastTest::WS->connect($s->{path}) };
    if (!$ws) {
        fail("connect to $s->{topic}: $@");
        return undef;
    }
    my $hello = $ws->recv_json(3);
    is($hello && $hello->{type}, 'connection.established', "$s->{topic}: connection.established");
    my $conf = $ws->recv_json(3);
    is($conf && $conf->{'hub.mode'}, 'subscribe', "$s->{topic}: confirmation");
    return $ws;
}

sub publish {
    my ($topic, $json) = @_;
    my ($code, undef, $body) = http_request('POST', "/api/hub/$topic", $json,
                                            'Content-Type' => 'application/json');
    return $code;
}

sub status {
    my (undef, undef, $body) = http_request('GET', '/cast/status');
    return eval { json_decode($body) } || {};
}

# the next frame that is not a ping/pong must be a Close with $code, then
# the hub closes the TCP connection
sub expect_close {
    my ($ws, $code, $desc, $reason) = @_;
    my @other;
    my ($got, $why);
    while (1) {
        my ($op, $p) = $ws->recv_frame(3);
        if (!defined $op) {
            $got = $ws->{eof} ? 'EOF without a close frame' : 'timeout';
            last;
        }
        next if $op == 9 || $op == 10;
        if ($op == 8) {
            $got = length $p >= 2 ? unpack('n', $p) : 'close without a code';
            $why = length $p > 2 ? substr($p, 2) : '';
            last;
        }
        push @other, "opcode $op: $p";
    }
    is($got, $code, "$desc: close $code");
    is(join("\n", @other), '', "$desc: no other frame before the close");
    like($why, $reason, "$desc: close reason") if defined $reason && defined $why;
    my @more = $ws->recv_frame(3);
    ok(!@more && $ws->{eof}, "$desc: then the hub closes the TCP connection");
}

# the next frame is a text frame; returns its JSON
sub expect_json {
    my ($ws, $desc) = @_;
    my ($op, $p) = $ws->recv_frame(3);
    is($op, 1, "$desc: a text frame") or diag(defined $op ? "opcode $op: $p" : 'nothing');
    return (defined $op && $op == 1) ? (eval { json_decode($p) } || { raw => $p }) : {};
}

# nothing arrives for a while, then a ping is answered: the socket is open
# and the hub sent no reply to what came before
sub expect_silence_then_pong {
    my ($ws, $desc) = @_;
    my @f = $ws->recv_frame(0.5);
    ok(!@f, "$desc: no reply") or diag("got opcode $f[0]: $f[1]");
    $ws->send_ping("alive?");
    my ($op, $p) = $ws->recv_frame(3);
    is(defined $op ? "$op $p" : 'nothing', '10 alive?', "$desc: the socket is still open");
}

sub wait_status {
    my ($key, $want) = @_;
    my $st;
    for (1 .. 40) {
        $st = status();
        last if defined $st->{$key} && $st->{$key} == $want;
        Time::HiRes::sleep(0.05);
    }
    is($st->{$key}, $want, "/cast/status $key = $want");
}

# one protocol error case: fresh subscription, bytes, expected close code
sub bad_case {
    my ($topic, $bytes, $code, $desc, $reason) = @_;
    my $s = subscribe($topic, 'patient-open');
    my $ws = connect_ready($s) or return;
    $ws->send_raw($bytes);
    expect_close($ws, $code, $desc, $reason);
}

run_tests();

__DATA__

=== TEST 1: ping -> pong with the same payload (empty, text, 125 bytes of binary); an unsolicited pong is ignored
--- config
--- init
package main;
my $ws = connect_ready(subscribe('f1', 'patient-open'));
for my $payload ('', 'hello', join('', map { chr } 0 .. 124)) {
    $ws->send_ping($payload);
    my ($op, $p) = $ws->recv_frame(3);
    is($op, 10, 'pong (' . length($payload) . ' bytes)');
    ok(defined $p && $p eq $payload, 'pong carries the ping payload');
}
$ws->send_pong('unsolicited');
expect_silence_then_pong($ws, 'unsolicited pong');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,



=== TEST 2: close 1000 -> the hub echoes 1000 and closes; the subscription ends
--- config
--- init
package main;
my $ws = connect_ready(subscribe('f2', 'patient-open'));
$ws->send_raw(ws_close(1000, 'bye'));
expect_close($ws, 1000, 'close 1000');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log eval
[qr/cast: client closed the socket with 1000\b/,
 qr/cast: subscription [0-9a-f]{8}\.\.\. on topic "f2" ended/]



=== TEST 3: close with other valid codes (1001, 1003, 1011, 3000, 4999) -> the code is echoed
--- config
--- init
package main;
for my $code (1001, 1003, 1011, 3000, 4999) {
    my $ws = connect_ready(subscribe("f3-$code", 'patient-open'));
    $ws->send_raw(ws_close($code, 'reason text'));
    expect_close($ws, $code, "close $code");
}
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client closed the socket with 1001
cast: client closed the socket with 4999



=== TEST 4: close without a payload -> a close without a code, then TCP close
--- config
--- init
package main;
my $ws = connect_ready(subscribe('f4', 'patient-open'));
$ws->send_raw(ws_frame('close', ''));
expect_close($ws, 'close without a code', 'empty close');
--- response_body_like: "connections":0,"subscriptions":0,



=== TEST 5: close with an invalid code (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535) -> 1002
--- config
--- init
package main;
for my $code (0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535) {
    bad_case("f5-$code", ws_close($code), 1002, "close code $code");
}
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client sent an invalid frame: invalid close code, closing with 1002



=== TEST 6: close with a 1-byte payload -> 1002
--- config
--- init
package main;
bad_case('f6', ws_frame('close', "\x03"), 1002, '1-byte close');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log eval
qr/cast: client sent an invalid frame: .*, closing with 1002/



=== TEST 7: close reason that is not UTF-8 -> 1007
--- config
--- init
package main;
bad_case('f7', ws_close(1000, "\xff\xfe"), 1007, 'close reason \xff\xfe');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log eval
qr/cast: client sent an invalid frame: .*, closing with 1007/



=== TEST 8: an unmasked client frame -> 1002 (text, ping, close)
--- config
--- init
package main;
bad_case('f8-text', ws_text('{"type":"pong"}', mask => 0), 1002, 'unmasked text');
bad_case('f8-ping', ws_ping('x', mask => 0), 1002, 'unmasked ping');
bad_case('f8-close', ws_close(1000, '', mask => 0), 1002, 'unmasked close');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client sent an invalid frame: unmasked client frame, closing with 1002
cast: subscription



=== TEST 9: RSV1, RSV2, RSV3 set without an extension -> 1002
--- config
--- init
package main;
for my $rsv (4, 2, 1) {
    bad_case("f9-$rsv", ws_text('{}', rsv => $rsv), 1002, "rsv bits $rsv");
}
bad_case('f9-ping', ws_ping('x', rsv => 4), 1002, 'rsv1 on a ping');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client sent an invalid frame: reserved bits set, closing with 1002



=== TEST 10: reserved opcodes 3-7 and 0xb-0xf -> 1002
--- config
--- init
package main;
for my $op (3 .. 7, 11 .. 15) {
    bad_case("f10-$op", ws_frame($op, 'x'), 1002, "opcode $op");
}
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client sent an invalid frame: reserved opcode, closing with 1002



=== TEST 11: a control frame with a 126-byte payload -> 1002 (ping, pong, close); 125 bytes is fine
--- config
--- init
package main;
bad_case('f11-ping', ws_ping('p' x 126), 1002, 'ping of 126 bytes');
bad_case('f11-pong', ws_pong('p' x 126), 1002, 'pong of 126 bytes');
bad_case('f11-close', ws_close(1000, 'r' x 124), 1002, 'close of 126 bytes');
my $ws = connect_ready(subscribe('f11-ok', 'patient-open'));
$ws->send_ping('p' x 125);
my ($op, $p) = $ws->recv_frame(3);
is($op, 10, 'ping of 125 bytes: pong');
$ws->send_raw(ws_close(1000, 'r' x 123));
expect_close($ws, 1000, 'close of 125 bytes');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client sent an invalid frame: control frame too long, closing with 1002



=== TEST 12: a fragmented control frame -> 1002 (ping, close)
--- config
--- init
package main;
bad_case('f12-ping', ws_ping('x', fin => 0), 1002, 'fragmented ping');
bad_case('f12-close', ws_close(1000, '', fin => 0), 1002, 'fragmented close');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client sent an invalid frame: fragmented control frame, closing with 1002



=== TEST 13: a continuation frame without a started message -> 1002
--- config
--- init
package main;
bad_case('f13', ws_frame('cont', '{}'), 1002, 'lone continuation');
bad_case('f13b', ws_frame('cont', '{', fin => 0), 1002, 'lone unfinished continuation');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client sent an invalid frame: continuation frame outside a message, closing with 1002



=== TEST 14: a new data frame while a fragmented message is open -> 1002
--- config
--- init
package main;
bad_case('f14-text', ws_text('{"a":', fin => 0) . ws_text('1}'), 1002, 'text inside a fragmented message');
bad_case('f14-bin', ws_text('{"a":', fin => 0) . ws_binary('1}'), 1002, 'binary inside a fragmented message');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client sent an invalid frame: data frame inside a fragmented message, closing with 1002



=== TEST 15: a text message that is not UTF-8 -> 1007 (bad byte, overlong, surrogate, above U+10FFFF, truncated)
--- config
--- init
package main;
my %bad = (
    'ff' => "{\"a\":\"\xff\"}",
    'overlong' => "{\"a\":\"\xc0\xaf\"}",
    'surrogate' => "{\"a\":\"\xed\xa0\x80\"}",
    'above-max' => "{\"a\":\"\xf4\x90\x80\x80\"}",
    'truncated-end' => "{\"a\":1}\xe2\x82",
    'lone-continuation' => "\x80",
);
for my $k (sort keys %bad) {
    bad_case("f15-$k", ws_text($bad{$k}), 1007, "invalid UTF-8 ($k)");
}
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log eval
qr/cast: client sent an invalid frame: .*UTF-8.*, closing with 1007/



=== TEST 16: invalid UTF-8 split across fragments -> 1007; valid UTF-8 split across fragments is reassembled
--- config
--- init
package main;
# E2 82 | 41: a 3-byte sequence broken by the next fragment
bad_case('f16-bad', ws_text("{\"a\":\"\xe2\x82", fin => 0) . ws_frame('cont', "A\"}"), 1007,
         'invalid UTF-8 across fragments');
# the message ends in the middle of a sequence
bad_case('f16-end', ws_text("{\"a\":1}", fin => 0) . ws_frame('cont', "\xe2\x82"), 1007,
         'truncated UTF-8 at the end of the last fragment');
# E2 | 82 AC: the euro sign split across three fragments, then published
my $s = subscribe('f16-ok', 'patient-open');
my $ws = connect_ready($s);
my $msg = '{"id":"f16-euro","timestamp":"2024-01-01T00:00:00.000Z","event":{"hub.topic":"f16-ok","hub.event":"patient-open","context":[{"key":"note","value":"' . "\xe2\x82\xac" . '"}]}}';
my $cut = index($msg, "\xe2") + 1;
$ws->send_raw(ws_text(substr($msg, 0, $cut), fin => 0)
              . ws_frame('cont', substr($msg, $cut, 1), fin => 0)
              . ws_frame('cont', substr($msg, $cut + 1)));
my ($op, $p) = $ws->recv_frame(3);
is($op, 1, 'the reassembled event is delivered');
ok(defined $p && $p eq $msg, 'byte for byte, euro sign included') or diag($p);
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,
--- error_log eval
qr/cast: client sent an invalid frame: .*UTF-8.*, closing with 1007/



=== TEST 17: cast_max_message_size 1k: a 1025-byte message -> 1009 (one frame, fragments, a huge announced length); 1024 bytes is fine
--- config
cast_max_message_size 1k;
--- init
package main;
my $pad = sub { my $n = shift; my $m = '{"pad":"' . ('x' x ($n - 10)) . '"}'; die if length $m != $n; $m };
bad_case('f17-one', ws_text($pad->(1025)), 1009, 'one frame of 1025 bytes');
my $big = $pad->(1025);
bad_case('f17-frag', ws_text(substr($big, 0, 400), fin => 0) . ws_frame('cont', substr($big, 400, 400), fin => 0)
                    . ws_frame('cont', substr($big, 800)), 1009, 'three fragments, 1025 bytes');
# the header announces 2^40 bytes; the hub must not wait for (or buffer) them
bad_case('f17-huge', "\x81\xff" . pack('NN', 256, 0) . "abcd" . "xxxx", 1009, 'announced length 2^40');
my $ws = connect_ready(subscribe('f17-ok', 'patient-open'));
$ws->send_raw(ws_text($pad->(1024)));
expect_silence_then_pong($ws, '1024-byte JSON message');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,
--- error_log
cast: client sent an invalid frame: message too big, closing with 1009



=== TEST 18: a 64-bit length with the most significant bit set -> 1002
--- config
--- init
package main;
bad_case('f18', "\x81\xff\x80\0\0\0\0\0\0\x02" . "abcd" . "xx", 1002, 'length MSB set');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log eval
qr/cast: client sent an invalid frame: .*, closing with 1002/



=== TEST 19: a fragmented message with pings in between: pongs come at once, the message is reassembled
--- config
--- init
package main;
my $s = subscribe('f19', 'patient-open');
my $ws = connect_ready($s);
my $msg = '{"id":"f19-1","timestamp":"2024-01-01T00:00:00.000Z","event":{"hub.topic":"f19","hub.event":"patient-open","context":[]}}';
$ws->send_raw(ws_text(substr($msg, 0, 10), fin => 0) . ws_ping('between-1'));
my ($op, $p) = $ws->recv_frame(3);
is(defined $op ? "$op $p" : 'nothing', '10 between-1', 'pong while the message is open');
$ws->send_raw(ws_frame('cont', substr($msg, 10, 30), fin => 0) . ws_ping('between-2')
              . ws_frame('cont', '', fin => 0) . ws_frame('cont', substr($msg, 40)));
($op, $p) = $ws->recv_frame(3);
is(defined $op ? "$op $p" : 'nothing', '10 between-2', 'second pong');
($op, $p) = $ws->recv_frame(3);
is($op, 1, 'then the reassembled event');
is($p, $msg, 'byte for byte');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,"topics":1,"events_in":1,"events_out":1,



=== TEST 20: a frame delivered one byte at a time (a 16-bit length event, a ping, a close; the close publishes subscription-removed: 2 events in)
--- config
--- init
package main;
my $s = subscribe('f20', 'patient-open');
my $ws = connect_ready($s);
my $msg = '{"id":"f20-1","timestamp":"2024-01-01T00:00:00.000Z","event":{"hub.topic":"f20","hub.event":"patient-open","context":[{"key":"x","value":"' . ('y' x 100) . '"}]}}';
for my $b (split //, ws_text($msg) . ws_ping('slow')) {
    $ws->send_raw($b);
    Time::HiRes::sleep(0.003);
}
my ($op, $p) = $ws->recv_frame(3);
is($op, 1, 'the event arrives');
is($p, $msg, 'byte for byte');
($op, $p) = $ws->recv_frame(3);
is(defined $op ? "$op $p" : 'nothing', '10 slow', 'the ping is answered');
for my $b (split //, ws_close(1000, 'slowly')) {
    $ws->send_raw($b);
    Time::HiRes::sleep(0.003);
}
expect_close($ws, 1000, 'byte-by-byte close');
--- response_body_like: "connections":0,"subscriptions":0,"topics":1,"events_in":2,"events_out":1,



=== TEST 21: a truncated frame then EOF: no crash, the subscription ends
--- config
--- init
package main;
for my $case (['header', "\x81"], ['mask', "\x81\xfe\x00\xc8\x01"], ['payload', substr(ws_text('z' x 200), 0, 20)]) {
    my $s = subscribe("f21-$case->[0]", 'patient-open');
    my $ws = connect_ready($s);
    $ws->send_raw($case->[1]);
    Time::HiRes::sleep(0.1);
    shutdown($ws->{sock}, 1);     # EOF after a partial frame
    my @f = $ws->recv_frame(3);
    ok(!@f || $f[0] == 8, "EOF inside the $case->[0]: the hub closes too");
    $ws->close;
}
wait_status('subscriptions', 0);
wait_status('connections', 0);
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client closed the socket without a close frame
cast: subscription



=== TEST 22: a binary message -> an error frame, the socket stays open
--- config
--- init
package main;
my $ws = connect_ready(subscribe('f22', 'patient-open'));
$ws->send_raw(ws_binary("\x00\x01\x02"));
my $e = expect_json($ws, 'binary');
is_deeply($e, { error => 'binary messages are not supported', id => undef }, 'the error frame');
$ws->send_raw(ws_binary('ab', fin => 0) . ws_frame('cont', 'cd'));
$e = expect_json($ws, 'fragmented binary');
is($e->{error}, 'binary messages are not supported', 'fragmented binary: same error');
expect_silence_then_pong($ws, 'after binary');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,



=== TEST 23: a text message that is not JSON -> {"error":"invalid JSON: ...","id":null}, the socket stays open
--- config
--- init
package main;
my $ws = connect_ready(subscribe('f23', 'patient-open'));
for my $text ('hello', '{"a":', '', '{"a":1}}') {
    $ws->send_text($text);
    my $e = expect_json($ws, "text '$text'");
    like($e->{error}, qr/^invalid JSON: /, "'$text': invalid JSON error");
    ok(exists $e->{id} && !defined $e->{id}, "'$text': id null");
    is(scalar(keys %$e), 2, "'$text': error and id only");
}
expect_silence_then_pong($ws, 'after the errors');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,



=== TEST 24: {"type":"pong"}, {"hub.channel.endpoint":...}, other objects and arrays are ignored (no reply)
--- config
--- init
package main;
my $s = subscribe('f24', 'patient-open');
my $ws = connect_ready($s);
$ws->send_text('{"type":"pong"}');
$ws->send_text(json_encode({ 'hub.channel.endpoint' => $s->{endpoint} }));
$ws->send_text('{"hello":"world","n":[1,2,3]}');
$ws->send_text('[1,2,3]');
$ws->send_text('{}');
expect_silence_then_pong($ws, 'ignored messages');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,"topics":\d+,"events_in":0,"events_out":0,



=== TEST 25: JSON texts that are not objects or arrays ("str", 42, null, true) are JSON too: ignored, no error
--- config
--- init
package main;
my $ws = connect_ready(subscribe('f25', 'patient-open'));
for my $text ('"str"', '42', 'null', 'true') {
    $ws->send_text($text);
    my @f = $ws->recv_frame(0.3);
    ok(!@f, "JSON text $text: no reply") or diag("got: $f[1]");
}
expect_silence_then_pong($ws, 'after scalars');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,



=== TEST 26: an invalid event over the socket -> an error frame with its id, the socket stays open and can publish
--- config
--- init
package main;
my $ws = connect_ready(subscribe('f26', 'patient-open'));
$ws->send_text('{"id":"bad-1","event":{"hub.topic":"f26","hub.event":""}}');
my $e = expect_json($ws, 'empty hub.event');
is($e->{id}, 'bad-1', 'the error carries the event id');
like($e->{error}, qr/hub\.event/, 'the error names hub.event');
$ws->send_text('{"event":"not an object"}');
$e = expect_json($ws, 'event not an object');
ok(exists $e->{id} && !defined $e->{id}, 'no id -> null');
like($e->{error}, qr/event/, 'the error names event');
$ws->send_text('{"id":"bad-3","event":{"hub.event":"patient-open","context":[]}}');
$e = expect_json($ws, 'event without a topic');
is($e->{id}, 'bad-3', 'no topic: error with the id');
my $ok = '{"id":"good-1","timestamp":"2024-01-01T00:00:00.000Z","event":{"hub.topic":"f26","hub.event":"patient-open","context":[]}}';
$ws->send_text($ok);
my ($op, $p) = $ws->recv_frame(3);
is($p, $ok, 'a valid event afterwards is published and delivered');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,"topics":1,"events_in":1,"events_out":1,
--- error_log
cast: client sent an invalid event



=== TEST 27: acks {"id","status"} are counted, not answered
--- config
--- init
package main;
my $ws = connect_ready(subscribe('f27', 'patient-open'));
$ws->send_text('{"id":"ev-1","status":200}');
$ws->send_text('{"id":"ev-2","status":"202"}');
expect_silence_then_pong($ws, 'acks');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,.*"acks":2,



=== TEST 28: frames after a protocol error are not processed (an event behind an unmasked frame is not published)
--- config
--- init
package main;
my $s1 = subscribe('f28', 'patient-open');
my $watch = connect_ready($s1);
my $ev = '{"id":"f28-1","timestamp":"2024-01-01T00:00:00.000Z","event":{"hub.topic":"f28","hub.event":"patient-open","context":[]}}';
bad_case('f28-bad', ws_text('{}', mask => 0) . ws_text($ev), 1002, 'unmasked then an event');
my @f = $watch->recv_frame(0.5);
ok(!@f, 'the event behind the bad frame was not published');
$main::HOLD = $watch;
--- response_body_like: "connections":1,"subscriptions":1,"topics":\d+,"events_in":0,"events_out":0,



=== TEST 29: an event over the socket with a control character, comma or "/" in its names -> an error frame, nothing published
--- config
--- init
package main;
my $s1 = subscribe('f29', '*');
my $watch = connect_ready($s1);
my $ws = connect_ready(subscribe('f29', 'patient-open'));
my %bad = (
    'bad-nl'    => ['"patient-open\nNOT JSON"', '"f29"', qr/^event\["hub\.event"\] holds a control character$/],
    'bad-del'   => ['"a\u007f"', '"f29"', qr/^event\["hub\.event"\] holds a control character$/],
    'bad-comma' => ['"a,b"', '"f29"', qr/^event\["hub\.event"\] holds a comma/],
    'bad-slash' => ['"patient-open"', '"f29/x"', qr/^event\["hub\.topic"\] holds a "\/"/],
    'bad-ctx'   => ['"patient-open"', '"f29"', qr/^event\["context"\] must be an object or an array of objects$/, '[1]'],
);
for my $id (sort keys %bad) {
    my ($name, $topic, $re, $ctx) = @{$bad{$id}};
    $ws->send_text(qq({"id":"$id","event":{"hub.topic":$topic,"hub.event":$name,"context":) . ($ctx // '[]') . '}}');
    my $e = expect_json($ws, $id);
    is($e->{id}, $id, "$id: the error carries the event id");
    like($e->{error} // '', $re, "$id: the reason");
}
my @f = $watch->recv_frame(0.5);
ok(!@f, 'nothing reached the "*" subscriber') or diag("got: $f[1]");
$main::HOLD = [$watch, $ws];
--- response_body_like: "connections":2,"subscriptions":2,"topics":1,"events_in":0,"events_out":0,
--- error_log
cast: client sent an invalid event
