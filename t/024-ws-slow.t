# WebSocket channel: slow consumers (SPEC 3.4, 6).
#
# A subscriber that does not read lets its bounded queue (cast_send_queue)
# overflow: the hub closes it with 1008 and ends its subscription; the
# other subscribers of the topic keep receiving every event, in order.
# The kernel buffers (client receive + server send) absorb several MB on
# loopback before the hub's own queue grows, so the publisher keeps
# publishing until the slow socket is gone (with an upper bound).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode ka_open ka_post);
use CastMode;
use IO::Socket::INET ();
use Time::HiRes ();
use POSIX ();

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

sub subscribe_ws {
    my ($topic, $events) = @_;
    my ($code, undef, $body) = http_request('POST', '/api/hub',
        "hub.mode=subscribe&hub.channel.type=websocket&hub.topic=$topic&hub.events=$events"
        . "&hub.lease_seconds=3600&subscriber.name=slow",
        'Content-Type' => 'application/x-www-form-urlencoded');
    my ($path) = $body =~ m{"hub\.channel\.endpoint":"wss?://[^/"]+(/bind/[0-9a-f]{32})"};
    is($code, 202, "subscribe $topic: 202");
    my $ws = $path && eval { CastTest::WS->connect($path) };
    ok($ws, "$topic: socket open") or diag($@);
    return undef if !$ws;
    my $h = $ws->recv_json(3);
    my $c = $ws->recv_json(3);
    is($c && $c->{'hub.mode'}, 'subscribe', "$topic: hello frames");
    return $ws;
}

sub status {
    my (undef, undef, $body) = http_request('GET', '/cast/status');
    return eval { json_decode($body) } || {};
}

sub big_event {
    my ($topic, $i, $size) = @_;
    return sprintf '{"id":"big-%05d","timestamp":"2024-01-01T00:00:00.000Z","event":{"hub.topic":"%s","hub.event":"annotation-update","context":{"pad":"%s"}}}',
                   $i, $topic, 'x' x $size;
}

# RSS (kB) of the nginx processes (the pid file's process and its children)
sub nginx_rss {
    no warnings 'once';
    my $pidfile = $Test::Nginx::Util::PidFile;
    open my $fh, '<', $pidfile or return 0;
    my $pid = <$fh>;
    close $fh;
    chomp $pid;
    my @pids = ($pid);
    for my $st (glob '/proc/[0-9]*/stat') {
        open my $s, '<', $st or next;
        my $line = <$s>;
        close $s;
        push @pids, $1 if defined $line && $line =~ /^(\d+) \(.*\) \S (\d+)/ && $2 == $pid;
    }
    my $kb = 0;
    for my $p (@pids) {
        open my $s, '<', "/proc/$p/status" or next;
        while (<$s>) { $kb += $1 if /^VmRSS:\s+(\d+)/ }
        close $s;
    }
    return $kb;
}

# compares two id lists; on failure shows where they part
sub same_seq {
    my ($got, $want, $desc) = @_;
    my $i = 0;
    $i++ while $i < @$got && $i < @$want && $got->[$i] eq $want->[$i];
    my $ok = ok($i == @$got && $i == @$want, $desc);
    diag(sprintf 'differ at %d: got %s, expected %s (%d vs %d ids)', $i,
         $got->[$i] // 'end', $want->[$i] // 'end', scalar @$got, scalar @$want) if !$ok;
    return $ok;
}

# the id of the next event on a socket that reads as it goes (pings answered)
sub next_id {
    my ($ws) = @_;
    while (1) {
        my ($op, $p) = $ws->recv_frame(5);
        return 'missing' if !defined $op;
        if ($op == 9) { $ws->send_pong($p); next }
        next if $op == 10;
        # a "*" subscriber also hears that a slow one was removed
        next if $op == 1 && $p =~ /"hub.event":"subscription-removed"/;
        return $op == 1 && $p =~ /"id":"(big-\d+)"/ ? $1 : "opcode $op";
    }
}

# reads what a socket has: ([event ids], final: "close <code>" | "eof" | "timeout")
sub drain {
    my ($ws, $timeout) = @_;
    my @ids;
    while (1) {
        my ($op, $p) = $ws->recv_frame($timeout);
        return (\@ids, $ws->{eof} ? 'eof' : 'timeout') if !defined $op;
        if ($op == 8) {
            my @more = $ws->recv_frame(3);
            return (\@ids, 'close ' . (length $p >= 2 ? unpack('n', $p) : '') . (@more ? ' +more' : ''));
        }
        next if $op != 1 || $p =~ /"hub.event":"subscription-removed"/;
        push @ids, $p =~ /"id":"(big-\d+)"/ ? $1 : 'other';
    }
}

run_tests();

__DATA__

=== TEST 1: a subscriber that never reads is closed with 1008 and unsubscribed; the other subscriber gets every event
--- config
cast_send_queue 64k;
--- init
package main;
my $slow = subscribe_ws('slow1', 'annotation-update');
my $fast = subscribe_ws('slow1', 'annotation-update');
my $c = ka_open();
my (@published, @bad_codes, @fast_ids);
my $closed_at;
for my $i (1 .. 4000) {                      # at most 4000 x 8 kB = 32 MB
    my $code = ka_post($c, '/api/hub', big_event('slow1', $i, 8192));
    push @bad_codes, $code if $code ne '200';
    push @published, sprintf 'big-%05d', $i;
    # the fast subscriber reads as it goes
    push @fast_ids, next_id($fast);
    if (!defined $closed_at && $i % 25 == 0 && status()->{subscriptions} == 1) {
        $closed_at = $i;
    }
    last if defined $closed_at && $i >= $closed_at + 50;
}
ok(defined $closed_at, 'the slow subscription ended' . (defined $closed_at ? " (after ~$closed_at events)" : ' (not within 32 MB)'));
is(join(',', @bad_codes), '', 'every publish answered 200');
same_seq(\@fast_ids, \@published, 'the fast subscriber got every event, in order');
my ($ids, $final) = drain($slow, 5);
my $n = @$ids;
same_seq($ids, [@published[0 .. $n - 1]], "the slow socket got a gap-free prefix ($n events)");
ok($n < @published, 'and not everything');
is($final, 'close 1008', 'then Close 1008, after the frame that was half sent');
is(status()->{subscriptions}, 1, 'one subscription left');
$main::HOLD = $fast;
--- response_body_like: "connections":1,"subscriptions":1,
--- error_log eval
[qr/cast: subscriber does not read, \d+ bytes queued, closing with 1008/,
 qr/cast: subscription [0-9a-f]{8}\.\.\. on topic "slow1" ended: send queue overflow/]
--- timeout: 20



=== TEST 2: the queue bound holds per socket: 3 slow and 3 fast subscribers, small events
--- config
cast_send_queue 64k;
--- init
package main;
my @slow = map { subscribe_ws('slow2', '*') } 1 .. 3;
my @fast = map { subscribe_ws('slow2', '*') } 1 .. 3;
my $c = ka_open();
my (@published, %fast_ids, @bad_codes);
my $gone_at;
for my $i (1 .. 8000) {                      # at most 8000 x 4 kB = 32 MB
    my $code = ka_post($c, '/api/hub', big_event('slow2', $i, 4096));
    push @bad_codes, $code if $code ne '200';
    push @published, sprintf 'big-%05d', $i;
    for my $k (0 .. $#fast) {
        push @{ $fast_ids{$k} }, next_id($fast[$k]);
    }
    if (!defined $gone_at && $i % 50 == 0 && status()->{subscriptions} == 3) {
        $gone_at = $i;
    }
    last if defined $gone_at && $i >= $gone_at + 20;
}
ok(defined $gone_at, 'the three slow subscriptions ended');
is(join(',', @bad_codes), '', 'every publish answered 200');
for my $k (0 .. $#fast) {
    same_seq($fast_ids{$k}, \@published, "fast subscriber $k: every event in order");
}
for my $k (0 .. $#slow) {
    my ($ids, $final) = drain($slow[$k], 5);
    is($final, 'close 1008', "slow subscriber $k: Close 1008");
}
$main::HOLD = \@fast;
--- response_body_like: "connections":3,"subscriptions":3,
--- error_log
closing with 1008
--- timeout: 20



=== TEST 3: a subscriber that falls behind less than cast_send_queue and then reads gets everything and stays open
--- config
cast_send_queue 256k;
--- init
package main;
my $lazy = subscribe_ws('slow3', '*');
my $c = ka_open();
my (@published, @codes);
for my $i (1 .. 20) {                        # 20 x 4 kB, well under the bound
    push @codes, ka_post($c, '/api/hub', big_event('slow3', $i, 4096));
    push @published, sprintf 'big-%05d', $i;
}
is(join(',', grep { $_ ne '200' } @codes), '', 'every publish answered 200');
Time::HiRes::sleep(0.5);
my ($ids, $final) = drain($lazy, 1);
same_seq($ids, \@published, 'every event, in order');
is($final, 'timeout', 'the socket is still open');
$main::HOLD = $lazy;
--- response_body_like: "connections":1,"subscriptions":1,"topics":\d+,"events_in":20,"events_out":20,
--- no_error_log
closing with 1008
[alert]
[crit]
[emerg]
signal



=== TEST 4: a client that floods pings and never reads cannot make the hub buffer pongs without bound
--- config
cast_send_queue 64k;
--- init
package main;
my $flood = subscribe_ws('slow4', 'patient-open');
my $ok = subscribe_ws('slow4', 'patient-open');
my $rss0 = nginx_rss();
my $chunk = ws_ping('p' x 125) x 512;        # 512 pings, 67 kB
my $limit = 64 * 1024 * 1024;                # stop after 64 MB of pings
my ($sent, $off, $stall) = (0, 0, Time::HiRes::time());
local $SIG{PIPE} = 'IGNORE';
$flood->{sock}->blocking(0);
while ($sent < $limit) {
    my $w = syswrite($flood->{sock}, $chunk, length($chunk) - $off, $off);
    if (defined $w && $w > 0) {
        ($sent, $off, $stall) = ($sent + $w, ($off + $w) % length($chunk), Time::HiRes::time());
        next;
    }
    last if !defined $w && $! != POSIX::EAGAIN() && $! != POSIX::EINTR();   # closed by the hub
    last if Time::HiRes::time() - $stall > 2;                               # the hub stopped reading
    Time::HiRes::sleep(0.01);
}
my $grown = nginx_rss() - $rss0;
ok($sent < $limit, sprintf('the hub stopped taking pings it cannot answer (it took %.1f MB)', $sent / 1048576));
ok($grown < 16 * 1024, "nginx did not grow by more than 16 MB (grew $grown kB)");
my ($code) = CastTest::http_request('POST', '/api/hub/slow4', '{"event":{"hub.event":"patient-open","context":[]}}',
                                    'Content-Type' => 'application/json');
is($code, 200, 'publish');
my $e = $ok->recv_json(5);
is($e && $e->{event}{'hub.event'}, 'patient-open', 'the other subscriber is unaffected');
undef $flood;
$main::HOLD = $ok;
--- response_body_like: "connections":\d+,"subscriptions":\d+,
--- timeout: 20
