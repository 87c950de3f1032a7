# WebSocket channel: keep-alive pings (SPEC 3.2 item 4).
#
# Every cast_ping_interval the hub sends a ping; a peer that sends no
# frame at all (pong or other) for two intervals is closed with 1001.
# The interval is the cast_websocket location's.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use CastMode;
use Time::HiRes ();

no_shuffle();
repeat_each(1);

our $HOLD;

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    if ($cfg !~ /cast_websocket/) {
        $cfg .= <<'_EOC_';
    location /api/hub { cast_hub; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_
    }
    $block->set_value('config', $cfg);
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

# ---- helpers (package main; init code starts with "package main;") ----

sub connect_ready {
    my ($topic) = @_;
    my ($code, undef, $body) = http_request('POST', '/api/hub',
        "hub.mode=subscribe&hub.channel.type=websocket&hub.topic=$topic&hub.events=patient-open"
        . "&hub.lease_seconds=3600&subscriber.name=ping",
        'Content-Type' => 'application/x-www-form-urlencoded');
    my ($path) = $body =~ m{"hub\.channel\.endpoint":"wss?://[^/"]+(/bind/[0-9a-f]{32})"};
    is($code, 202, "subscribe $topic: 202");
    my $ws = $path && eval { CastTest::WS->connect($path) };
    ok($ws, "$topic: socket open") or diag($@);
    return undef if !$ws;
    for (1 .. 2) {
        my ($op) = $ws->recv_frame(3);
        is($op, 1, "$topic: hello frame");
    }
    return $ws;
}

sub status {
    my (undef, undef, $body) = http_request('GET', '/cast/status');
    return eval { json_decode($body) } || {};
}

# reads for $secs seconds; $on_ping->($ws, $payload) is called for pings;
# returns a list of [time since start, opcode, payload]
sub watch {
    my ($ws, $secs, $on_ping) = @_;
    my $t0 = Time::HiRes::time();
    my @seen;
    while ((my $left = $t0 + $secs - Time::HiRes::time()) > 0) {
        my ($op, $p) = $ws->recv_frame($left);
        last if !defined $op;
        push @seen, [Time::HiRes::time() - $t0, $op, $p];
        $on_ping->($ws, $p) if $op == 9 && $on_ping;
        last if $op == 8;
    }
    return @seen;
}

run_tests();

__DATA__

=== TEST 1: cast_ping_interval 1s: a ping about every second; a peer that answers them stays open
--- config
cast_ping_interval 1s;
--- init
package main;
my $ws = connect_ready('p1');
my $t0 = Time::HiRes::time();
my @seen = watch($ws, 4.6, sub { $_[0]->send_pong($_[1]) });
my @pings = grep { $_->[1] == 9 } @seen;
my @other = grep { $_->[1] != 9 } @seen;
ok(@pings >= 3 && @pings <= 5, 'about one ping per second: ' . scalar(@pings) . ' in 4.6 s');
is(scalar @other, 0, 'nothing but pings') or diag(join ', ', map { "opcode $_->[1]" } @other);
ok($pings[0] && $pings[0][0] > 0.5 && $pings[0][0] < 1.8, sprintf 'the first ping after ~1 s (%.2f)', $pings[0] ? $pings[0][0] : -1);
my @gaps = map { $pings[$_][0] - $pings[$_ - 1][0] } 1 .. $#pings;
ok(!grep({ $_ < 0.5 || $_ > 1.8 } @gaps), 'pings ~1 s apart: ' . join(' ', map { sprintf '%.2f', $_ } @gaps));
ok(!$ws->is_closed, 'still open after 4.6 s of answered pings');
$ws->send_ping('client');
my ($op, $p) = $ws->recv_frame(2);
($op, $p) = $ws->recv_frame(2) while defined $op && $op == 9;
is(defined $op ? "$op $p" : 'nothing', '10 client', 'and it answers a ping');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,
--- no_error_log
cast: client did not answer pings
[alert]
[crit]
[emerg]
signal
--- timeout: 10



=== TEST 2: a peer that sends nothing is closed with 1001 after two intervals; its subscription ends
--- config
cast_ping_interval 1s;
--- init
package main;
my $ws = connect_ready('p2');
my @seen = watch($ws, 6);                     # never answers
my $close = (grep { $_->[1] == 8 } @seen)[0];
ok($close, 'the hub sent a close frame');
is($close && length $close->[2] >= 2 ? unpack('n', $close->[2]) : undef, 1001, 'close code 1001');
ok($close && $close->[0] > 1.5 && $close->[0] < 3.5, sprintf 'after about 2 s (%.2f)', $close ? $close->[0] : -1);
ok(scalar(grep { $_->[1] == 9 } @seen) >= 1, 'pings came before');
my @more = $ws->recv_frame(3);
ok(!@more && $ws->{eof}, 'then the hub closes the TCP connection');
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log eval
[qr/cast: client did not answer pings, closing/,
 qr/cast: subscription [0-9a-f]{8}\.\.\. on topic "p2" ended/]
--- timeout: 10



=== TEST 3: any client frame counts as a sign of life: a client that sends its own pings (never pongs) stays open
--- config
cast_ping_interval 1s;
--- init
package main;
my $ws = connect_ready('p3');
my ($t0, $closed) = (Time::HiRes::time(), 0);
my $n = 0;
while (Time::HiRes::time() - $t0 < 4.5) {
    $ws->send_ping('mine-' . $n++);
    for my $f (watch($ws, 0.5)) {
        $closed = 1 if $f->[1] == 8;
    }
    last if $closed;
}
ok(!$closed && !$ws->is_closed, 'still open after 4.5 s without a pong');
# a text message counts too
for (1 .. 5) {
    $ws->send_text('{"type":"pong"}');
    $closed = 1 if grep { $_->[1] == 8 } watch($ws, 0.7);
}
ok(!$closed && !$ws->is_closed, 'still open after 3.5 s of app-level messages only');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,
--- no_error_log
cast: client did not answer pings
[alert]
[crit]
[emerg]
signal
--- timeout: 10



=== TEST 4: a peer that stops answering after a while is closed then (1001)
--- config
cast_ping_interval 1s;
--- init
package main;
my $ws = connect_ready('p4');
my @a = watch($ws, 2.5, sub { $_[0]->send_pong($_[1]) });
ok(!grep({ $_->[1] == 8 } @a), 'open while answering');
my $t0 = Time::HiRes::time();
my @b = watch($ws, 5);
my $close = (grep { $_->[1] == 8 } @b)[0];
is($close && length $close->[2] >= 2 ? unpack('n', $close->[2]) : undef, 1001, 'closed with 1001 once it went silent');
ok($close && $close->[0] < 3.5, sprintf 'within two intervals and a bit (%.2f)', $close ? $close->[0] : -1);
--- response_body_like: "connections":0,"subscriptions":0,
--- error_log
cast: client did not answer pings, closing
--- timeout: 10



=== TEST 5: the default interval is not short: no ping in the first 2 s
--- config
--- init
package main;
my $ws = connect_ready('p5');
my @seen = watch($ws, 2);
is(scalar @seen, 0, 'no frame at all in 2 s');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,



=== TEST 6: the interval comes from the cast_websocket location (1s there, 30s at the hub)
--- config
    location /api/hub { cast_hub; cast_ping_interval 30s; }
    location /bind/ { cast_websocket; cast_ping_interval 1s; }
    location = /cast/status { cast_status; }
--- init
package main;
my $ws = connect_ready('p6');
my @seen = watch($ws, 2.6, sub { $_[0]->send_pong($_[1]) });
ok(scalar(grep { $_->[1] == 9 } @seen) >= 2, 'pings every second');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,
--- timeout: 10



=== TEST 7: many silent sockets are all closed; answering ones all stay
--- config
cast_ping_interval 1s;
--- init
package main;
my @silent = map { connect_ready("p7s-$_") } 1 .. 5;
my @alive = map { connect_ready("p7a-$_") } 1 .. 5;
my $t0 = Time::HiRes::time();
my %closed;
while (Time::HiRes::time() - $t0 < 4) {
    for my $i (0 .. $#alive) {
        for my $f (watch($alive[$i], 0.05, sub { $_[0]->send_pong($_[1]) })) {
            $closed{"alive$i"} = 1 if $f->[1] == 8;
        }
    }
}
for my $i (0 .. $#silent) {
    my @f = watch($silent[$i], 0.5);
    my ($c) = grep { $_->[1] == 8 } @f;
    is($c && unpack('n', $c->[2]), 1001, "silent socket $i closed with 1001");
}
is(join(',', sort keys %closed), '', 'no answering socket was closed');
$main::HOLD = \@alive;
--- response_body_like: "connections":5,"subscriptions":5,
--- timeout: 10



=== TEST 8: the app-level heartbeat event (every 10 s) goes only to subscriptions that list "heartbeat"
--- config
--- init
package main;
my %sub;
for my $k (['hb', 'heartbeat'], ['HB', 'patient-open,HeartBeat'], ['none', 'patient-open']) {
    my ($code, undef, $body) = http_request('POST', '/api/hub',
        "hub.mode=subscribe&hub.channel.type=websocket&hub.topic=p8-$k->[0]&hub.events=$k->[1]"
        . "&hub.lease_seconds=3600",
        'Content-Type' => 'application/x-www-form-urlencoded');
    my ($path) = $body =~ m{(/bind/[0-9a-f]{32})};
    my $ws = eval { CastTest::WS->connect($path) };
    ok($ws, "p8-$k->[0]: socket open") or diag($@);
    next if !$ws;
    $ws->recv_frame(3) for 1 .. 2;
    $sub{$k->[0]} = $ws;
}
my %got;
my $t0 = Time::HiRes::time();
while (Time::HiRes::time() - $t0 < 11 && (!$got{hb} || !$got{HB})) {
    for my $k (sort keys %sub) {
        for my $f (watch($sub{$k}, 0.1, sub { $_[0]->send_pong($_[1]) })) {
            push @{ $got{$k} }, $f->[2] if $f->[1] == 1;
        }
    }
}
for my $k ('hb', 'HB') {
    my $e = eval { json_decode(($got{$k} || [])->[0] || '') } || {};
    is($e->{event}{'hub.event'}, 'heartbeat', "$k: a heartbeat event");
    is($e->{event}{'hub.topic'}, "p8-$k", "$k: on its topic");
    is_deeply($e->{event}{context}, [{ key => 'period', decimal => '10' }], "$k: context period 10");
    ok($e->{id} && $e->{timestamp}, "$k: with id and timestamp");
}
is_deeply($got{none} || [], [], 'a subscription without "heartbeat" gets none');
$main::HOLD = [values %sub];
--- response_body_like: "connections":3,"subscriptions":3,
--- timeout: 15



=== TEST 9: tcp_nodelay (on by default) is set on the socket's connection, as nginx does for keep-alive and upgraded proxy connections (seen in the debug log: Debian's nginx is built --with-debug)
--- config
--- init
package main;
my $ws = connect_ready('p9');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,
--- grep_error_log eval: qr/tcp_nodelay/
--- grep_error_log_out
tcp_nodelay



=== TEST 10: tcp_nodelay off in the socket's location: left alone
--- config
location /api/hub { cast_hub; }
location /bind/ { tcp_nodelay off; cast_websocket; }
location = /cast/status { cast_status; }
--- init
package main;
my $ws = connect_ready('p10');
$main::HOLD = $ws;
--- response_body_like: "connections":1,"subscriptions":1,
--- grep_error_log eval: qr/tcp_nodelay/
--- grep_error_log_out
