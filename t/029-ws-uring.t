# WebSocket channel through io_uring (cast_io_uring on).
#
# The sockets a fan-out gives frames to are written with one io_uring
# submission at the end of the fan-out.  These tests check that the ring is
# really used (the worker's notice and its io_uring descriptor), that every
# subscriber still gets every event byte for byte and in order, that short
# writes and EAGAIN go on from the right offset (a listener with a 16 kB
# send buffer, clients with a 4 kB receive buffer), that sockets which go
# away in the middle of fan-outs do not disturb the others, and that the
# send queue bound still holds.
#
# Local mode only (one worker): the fan-out path is the same in Redis mode.
# Skipped only when the kernel refuses io_uring (io_uring_setup(2) fails,
# as in many containers): the module then writes with writev(), which
# t/020-028 test.

use Test::Nginx::Socket;
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode ka_open ka_post);
use IO::Socket::INET ();
use POSIX ();
use Socket qw(SOL_SOCKET SO_RCVBUF SO_LINGER pack_sockaddr_in inet_aton);
use Time::HiRes ();

BEGIN {
    # io_uring_setup(2) (x86_64: 425, aarch64 and others: 425 as well)
    my $params = "\0" x 120;
    my $fd = syscall(425, 4, $params);
    if ($fd < 0) {
        plan(skip_all => "the kernel refuses io_uring here "
                         . "(io_uring_setup: $!)");
    } else {
        POSIX::close($fd);
    }
}

plan('no_plan');
no_shuffle();
repeat_each(1);
worker_connections(1024);

$ENV{TEST_NGINX_URING_PORT} ||= server_port() + 6;

our $HOLD;

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . <<'_EOC_');
    location /api/hub { cast_hub; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_
    my $http = defined $block->http_config ? $block->http_config : '';
    $block->set_value('http_config', "    cast_io_uring on;\n" . $http);
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n"
                                          . "writes with writev()\n");
    }
});

# ---- helpers (package main; init code starts with "package main;") ----

# a client socket with a small receive buffer (set before connect)
sub small_connect {
    my ($host, $port, $timeout) = @_;
    my $s = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!";
    setsockopt($s, SOL_SOCKET, SO_RCVBUF, pack('i', 4096)) or die "rcvbuf: $!";
    $s->connect(pack_sockaddr_in($port, inet_aton($host))) or die "connect: $!";
    binmode $s;
    $s->autoflush(1);
    return $s;
}

# a subscription and its socket, hello frames read; $url: another
# listener; $small: a small receive buffer
sub subscribe_ws {
    my ($topic, $url, $small) = @_;
    my ($code, undef, $body) = http_request('POST', '/api/hub',
        "hub.mode=subscribe&hub.channel.type=websocket&hub.topic=$topic"
        . "&hub.events=*&hub.lease_seconds=3600&subscriber.name=uring",
        'Content-Type' => 'application/x-www-form-urlencoded');
    my ($path) = $body =~ m{"hub\.channel\.endpoint":"wss?://[^/"]+(/bind/[0-9a-f]{32})"};
    return undef if $code != 202 || !$path;
    no warnings 'redefine';
    local *CastTest::_connect = \&small_connect if $small;
    my $ws = eval { CastTest::WS->connect(($url || '') . $path) };
    return undef if !$ws;
    my $h = $ws->recv_json(5);
    my $c = $ws->recv_json(5);
    return undef if !$c || ($c->{'hub.mode'} || '') ne 'subscribe';
    return $ws;
}

sub status {
    my (undef, undef, $body) = http_request('GET', '/cast/status');
    return eval { json_decode($body) } || {};
}

sub event {
    my ($topic, $i, $size) = @_;
    return sprintf '{"id":"u-%05d","timestamp":"2024-01-01T00:00:00.000Z","event":{"hub.topic":"%s","hub.event":"annotation-update","context":{"pad":"%s"}}}',
                   $i, $topic, chr(ord('a') + $i % 26) x $size;
}

# reads $n events from a socket (pings answered): (\@payloads, problem)
sub read_events {
    my ($ws, $n, $timeout) = @_;
    my @got;
    while (@got < $n) {
        my ($op, $p) = $ws->recv_frame($timeout);
        return (\@got, 'only ' . scalar(@got) . " events, then "
                       . ($ws->{eof} ? 'EOF' : 'nothing')) if !defined $op;
        if ($op == 9) { $ws->send_pong($p); next }
        next if $op == 10;
        return (\@got, "opcode $op") if $op != 1;
        next if $p =~ /"hub.event":"subscription-removed"/;
        push @got, $p;
    }
    return (\@got, '');
}

# the first difference between the payloads read and the published ones
sub first_diff {
    my ($got, $want) = @_;
    for my $i (0 .. $#$want) {
        return "event $i missing" if !defined $got->[$i];
        next if $got->[$i] eq $want->[$i];
        my ($id) = $got->[$i] =~ /"id":"([^"]+)"/;
        return "event $i: got " . ($id // '?') . ', ' . length($got->[$i])
               . ' bytes, expected ' . length($want->[$i]);
    }
    return '';
}

# the pid of the (only) worker
sub worker_pid {
    my $st = status();
    return $st->{workers} && $st->{workers}[0] ? $st->{workers}[0]{pid} : 0;
}

run_tests();

__DATA__

=== TEST 1: the worker writes through io_uring; 200 subscribers each get 50 events byte for byte, in order
--- init
package main;
my @ws;
my $bad = 0;
for my $i (1 .. 200) {
    my $ws = subscribe_ws('ur1');
    $ws ? push @ws, $ws : $bad++;
}
is($bad, 0, '200 sockets open');
my $pid = worker_pid();
my @rings = grep { (readlink($_) // '') eq 'anon_inode:[io_uring]' }
            glob "/proc/$pid/fd/*";
ok($pid && @rings >= 1, "the worker ($pid) has an io_uring descriptor");
my $c = ka_open();
my (@want, @codes);
for my $i (1 .. 50) {
    push @want, event('ur1', $i, 100 + $i * 7);
    push @codes, ka_post($c, '/api/hub', $want[-1]);
}
is(join(',', grep { $_ ne '200' } @codes), '', 'every publish answered 200');
my @problems;
for my $k (0 .. $#ws) {
    my ($got, $why) = read_events($ws[$k], 50, 10);
    my $d = $why || first_diff($got, \@want);
    push @problems, "socket $k: $d" if $d;
}
is(join("\n", @problems[0 .. ($#problems > 4 ? 4 : $#problems)]), '',
   'every socket got every event, byte for byte, in order');
$main::HOLD = \@ws;
--- response_body_like: "connections":200,"subscriptions":200,
--- error_log
cast_io_uring: WebSocket fan-out through io_uring
--- timeout: 60



=== TEST 2: short writes and EAGAIN: 32 kB events to sockets behind a 16 kB send buffer that read late get every byte, in order
--- http_config
    cast_send_queue 16m;
    server {
        listen 127.0.0.1:$TEST_NGINX_URING_PORT sndbuf=16k;
        location /bind/ { cast_websocket; }
    }
--- init
package main;
my $url = "ws://127.0.0.1:$ENV{TEST_NGINX_URING_PORT}";
my @slow = map { subscribe_ws('ur2', $url, 1) } 1 .. 3;
my @fast = map { subscribe_ws('ur2', $url, 1) } 1 .. 2;
is(scalar(grep { $_ } @slow, @fast), 5, '5 sockets open');
my $c = ka_open();
my (@want, @codes, %fast_got);
for my $i (1 .. 100) {                       # 100 x 32 kB = 3.2 MB
    push @want, event('ur2', $i, 32768);
    push @codes, ka_post($c, '/api/hub', $want[-1]);
    for my $k (0 .. $#fast) {                # the fast ones read as they go
        my ($got, $why) = read_events($fast[$k], 1, 10);
        push @{ $fast_got{$k} }, $why ? "($why)" : $got->[0];
    }
}
is(join(',', grep { $_ ne '200' } @codes), '', 'every publish answered 200');
for my $k (0 .. $#fast) {
    is(first_diff($fast_got{$k}, \@want), '', "fast socket $k: every event, byte for byte");
}
my $st = status();
is($st->{subscriptions}, 5, 'the slow sockets are still subscribed');
for my $k (0 .. $#slow) {
    my ($got, $why) = read_events($slow[$k], 100, 10);
    is($why || first_diff($got, \@want), '', "slow socket $k: every event, byte for byte, in order");
}
$main::HOLD = [@slow, @fast];
--- response_body_like: "connections":5,"subscriptions":5,
--- timeout: 90



=== TEST 3: sockets that go away (reset) in the middle of fan-outs: the others get every event
--- init
package main;
my @ws;
for my $i (1 .. 100) {
    my $ws = subscribe_ws('ur3');
    push @ws, $ws if $ws;
}
is(scalar @ws, 100, '100 sockets open');
my $c = ka_open();
my (@want, @codes);
for my $i (1 .. 60) {
    push @want, event('ur3', $i, 8192);
    push @codes, ka_post($c, '/api/hub', $want[-1]);
    if ($i == 20 || $i == 40) {
        # every other socket still open is reset (SO_LINGER 0)
        for my $k (grep { $_ % 2 == 0 && $ws[$_] } 0 .. $#ws) {
            setsockopt($ws[$k]{sock}, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
            CORE::close($ws[$k]{sock});
            $ws[$k]{sock} = undef;
            $ws[$k] = undef;
            last if $i == 20 && $k >= 50;
        }
    }
}
is(join(',', grep { $_ ne '200' } @codes), '', 'every publish answered 200');
my @left = grep { $_ } @ws;
my @problems;
for my $k (0 .. $#left) {
    my ($got, $why) = read_events($left[$k], 60, 10);
    my $d = $why || first_diff($got, \@want);
    push @problems, "socket $k: $d" if $d;
}
is(join("\n", @problems[0 .. ($#problems > 4 ? 4 : $#problems)]), '',
   scalar(@left) . ' sockets left got every event, byte for byte, in order');
my $n = 0;
for (1 .. 50) {
    $n = status()->{connections};
    last if $n == @left;
    Time::HiRes::sleep(0.1);
}
is($n, scalar @left, 'the reset sockets are closed');
$main::HOLD = \@left;
--- response_body_like: "connections":50,"subscriptions":50,
--- timeout: 60



=== TEST 4: a subscriber that never reads is still closed with 1008 at cast_send_queue; the other gets every event
--- http_config
    cast_send_queue 64k;
    server {
        listen 127.0.0.1:$TEST_NGINX_URING_PORT sndbuf=16k;
        location /bind/ { cast_websocket; }
    }
--- init
package main;
my $url = "ws://127.0.0.1:$ENV{TEST_NGINX_URING_PORT}";
my $slow = subscribe_ws('ur4', $url, 1);
my $fast = subscribe_ws('ur4', $url, 1);
ok($slow && $fast, '2 sockets open');
my $c = ka_open();
my (@want, @fast_got, @codes);
my $closed_at;
for my $i (1 .. 400) {                       # at most 400 x 8 kB
    push @want, event('ur4', $i, 8192);
    push @codes, ka_post($c, '/api/hub', $want[-1]);
    my ($got, $why) = read_events($fast, 1, 10);
    push @fast_got, $why ? "($why)" : $got->[0];
    if (!defined $closed_at && $i % 10 == 0 && status()->{subscriptions} == 1) {
        $closed_at = $i;
    }
    last if defined $closed_at && $i >= $closed_at + 20;
}
ok(defined $closed_at, 'the slow subscription ended' . (defined $closed_at ? " (after ~$closed_at events)" : ''));
is(join(',', grep { $_ ne '200' } @codes), '', 'every publish answered 200');
is(first_diff(\@fast_got, \@want), '', 'the fast subscriber got every event, byte for byte');
my @slow_got;
my $final = 'timeout';
while (1) {
    my ($op, $p) = $slow->recv_frame(5);
    last if !defined $op;
    if ($op == 8) { $final = 'close ' . unpack('n', $p); last }
    push @slow_got, $p if $op == 1 && $p !~ /subscription-removed/;
}
ok(@slow_got > 0 && @slow_got < @want, 'the slow socket got a part (' . scalar(@slow_got) . ' events)');
is(first_diff(\@slow_got, [@want[0 .. $#slow_got]]), '', 'a gap-free prefix, byte for byte');
is($final, 'close 1008', 'then Close 1008');
$main::HOLD = $fast;
--- response_body_like: "connections":1,"subscriptions":1,
--- error_log
closing with 1008
--- timeout: 60
