# WebSocket channel: latest-value events (cast_latest_value,
# subscriber.latest_value).
#
# A subscription that wants "scene-update" latest-value keeps at most one
# such frame queued: a newer one replaces the queued one that is not
# started (the old one is dropped, the new one goes last).  A subscriber
# that does not read stays connected within a small cast_send_queue and,
# when it reads, gets an ordered sequence with gaps that ends with the
# last event; the events that are not latest-value are never dropped.
# Fast subscribers (empty queues) get every event.
#
# The slow client's receive buffer is set small before it connects, so
# that the kernel does not absorb the whole run before the hub's queue
# has to hold anything.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode ka_open ka_post);
use CastMode;
use IO::Socket::INET ();
use Socket qw(SOL_SOCKET SO_RCVBUF pack_sockaddr_in inet_aton);
use Time::HiRes ();

no_shuffle();
repeat_each(1);

our $HOLD;

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    $cfg .= "    location /api/hub { cast_hub; }\n"
        if $cfg !~ m{location /api/hub};
    $block->set_value('config', $cfg . <<'_EOC_');
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n");
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

# subscribes and opens the socket; $more: extra form fields; $small: a
# small receive buffer
sub subscribe_ws {
    my ($topic, $more, $small) = @_;
    my ($code, undef, $body) = http_request('POST', '/api/hub',
        "hub.mode=subscribe&hub.channel.type=websocket&hub.topic=$topic"
        . "&hub.events=scene-update,annotation-update&hub.lease_seconds=3600"
        . "&subscriber.name=t$more",
        'Content-Type' => 'application/x-www-form-urlencoded');
    my ($path) = $body =~ m{"hub\.channel\.endpoint":"wss?://[^/"]+(/bind/[0-9a-f]{32})"};
    is($code, 202, "subscribe $topic$more: 202");
    no warnings 'redefine';
    local *CastTest::_connect = \&small_connect if $small;
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

sub event {
    my ($topic, $name, $id, $size) = @_;
    return sprintf '{"id":"%s","timestamp":"2024-01-01T00:00:00.000Z","event":{"hub.topic":"%s","hub.event":"%s","context":{"pad":"%s"}}}',
                   $id, $topic, $name, 'x' x $size;
}

# publishes 300 scene-updates (32 kB) with an annotation-update (small)
# after every 25th but the last; the last event is scene 300.  Each fast
# socket reads as it goes.  -> [published ids], [[ids of each fast]], codes
sub publish_run {
    my ($topic, @fast) = @_;
    my $c = ka_open();
    my (@published, @bad, @got);
    for my $i (1 .. 300) {
        my @ev = (['scene-update', sprintf('s-%05d', $i), 32768]);
        push @ev, ['annotation-update', sprintf('a-%05d', $i), 64]
            if $i % 25 == 0 && $i < 300;
        for my $e (@ev) {
            my $code = ka_post($c, '/api/hub', event($topic, @$e));
            push @bad, $code if $code ne '200';
            push @published, $e->[1];
            for my $k (0 .. $#fast) {
                push @{ $got[$k] }, next_id($fast[$k], 5);
            }
        }
    }
    return (\@published, \@got, \@bad);
}

# the id of the next event (pings answered)
sub next_id {
    my ($ws, $timeout) = @_;
    while (1) {
        my ($op, $p) = $ws->recv_frame($timeout);
        return 'missing' if !defined $op;
        if ($op == 9) { $ws->send_pong($p); next }
        next if $op == 10;
        next if $op == 1 && $p =~ /"hub.event":"subscription-removed"/;
        return $op == 1 && $p =~ /"id":"([sa]-\d+)"/ ? $1 : "opcode $op";
    }
}

# reads what a socket has: ([ids], "close <code>" | "eof" | "timeout")
sub drain {
    my ($ws, $timeout) = @_;
    my @ids;
    while (1) {
        my ($op, $p) = $ws->recv_frame($timeout);
        return (\@ids, $ws->{eof} ? 'eof' : 'timeout') if !defined $op;
        return (\@ids, 'close ' . (length $p >= 2 ? unpack('n', $p) : ''))
            if $op == 8;
        if ($op == 9) { $ws->send_pong($p); next }
        next if $op != 1 || $p =~ /"hub.event":"subscription-removed"/;
        push @ids, $p =~ /"id":"([sa]-\d+)"/ ? $1 : 'other';
    }
}

sub same_seq {
    my ($got, $want, $desc) = @_;
    my $i = 0;
    $i++ while $i < @$got && $i < @$want && $got->[$i] eq $want->[$i];
    my $ok = ok($i == @$got && $i == @$want, $desc);
    diag(sprintf 'differ at %d: got %s, expected %s (%d vs %d ids)', $i,
         $got->[$i] // 'end', $want->[$i] // 'end', scalar @$got, scalar @$want) if !$ok;
    return $ok;
}

# $got is in $want's order (a subsequence) and holds every id of @$keep
sub ordered_subsequence {
    my ($got, $want, $desc) = @_;
    my %pos;
    @pos{@$want} = 0 .. $#$want;
    my ($last, $bad) = (-1, undef);
    for my $id (@$got) {
        my $p = $pos{$id};
        if (!defined $p || $p <= $last) { $bad = $id; last }
        $last = $p;
    }
    ok(!defined $bad, $desc) or diag("out of order or unknown: $bad");
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

run_tests();

__DATA__

=== TEST 1: subscriber.latest_value: fast subscribers get all 300 in order; one that does not read stays open, then gets an ordered sequence with gaps ending on the last event, every annotation included
--- config
cast_send_queue 128k;
--- init
package main;
my @fast = map { subscribe_ws('lv1', '&subscriber.latest_value=Scene-Update') } 1 .. 2;
my $slow = subscribe_ws('lv1', '&subscriber.latest_value=scene-update', 1);
my $rss0 = nginx_rss();
my ($published, $got, $bad) = publish_run('lv1', @fast);
is(join(',', @$bad), '', 'every publish answered 200');
for my $k (0 .. $#fast) {
    same_seq($got->[$k], $published, "fast subscriber $k: every event, in order");
}
Time::HiRes::sleep(0.5);
my $grown = nginx_rss() - $rss0;
is(status()->{subscriptions}, 3, 'the slow subscription is still there');
my ($ids, $final) = drain($slow, 2);
my @scenes = grep { /^s-/ } @$ids;
my @annotations = grep { /^a-/ } @$ids;
ordered_subsequence($ids, $published, 'the slow socket: in publication order');
is(join(',', @annotations), join(',', grep { /^a-/ } @$published),
   'the slow socket: every annotation-update');
ok(@scenes < 300, 'the slow socket: scene-updates with gaps (' . scalar(@scenes) . ' of 300)');
is($ids->[-1], 's-00300', 'the slow socket: ends with the last event');
is($final, 'timeout', 'the slow socket is still open');
SKIP: {
    skip 'under valgrind the RSS is valgrind\'s', 1 if $ENV{TEST_NGINX_USE_VALGRIND};
    ok($grown < 4 * 1024, "nginx grew by less than 4 MB with 9.4 MB published (grew $grown kB)");
}
$main::HOLD = [$slow, @fast];
--- response_body_like: "connections":3,"subscriptions":3,
--- no_error_log
closing with 1008
[alert]
[crit]
[emerg]
signal
--- timeout: 60



=== TEST 2: cast_latest_value is the default; "subscriber.latest_value=" opts out (that slow subscriber is closed with 1008, the other stays)
--- config
cast_send_queue 128k;
cast_latest_value off;
location /api/hub { cast_hub; cast_latest_value scene-update Cursor-Move; }
--- init
package main;
my @fast = (subscribe_ws('lv2', ''));
my $latest = subscribe_ws('lv2', '', 1);
my $plain = subscribe_ws('lv2', '&subscriber.latest_value=', 1);
my ($published, $got, $bad) = publish_run('lv2', @fast);
is(join(',', @$bad), '', 'every publish answered 200');
same_seq($got->[0], $published, 'the fast subscriber: every event, in order');
Time::HiRes::sleep(0.5);
my ($ids, $final) = drain($latest, 2);
is($ids->[-1], 's-00300', 'by default: ends with the last event');
is($final, 'timeout', 'by default: still open');
($ids, $final) = drain($plain, 2);
SKIP: {
    # slowed down, the close outlives its lingering time before it is read
    skip 'under valgrind the 1008 is not read in time', 1 if $ENV{TEST_NGINX_USE_VALGRIND};
    is($final, 'close 1008', 'opted out: closed with 1008');
}
same_seq($ids, [@$published[0 .. $#$ids]], 'opted out: a gap-free prefix');
$main::HOLD = [$latest, @fast];
--- response_body_like: "connections":2,"subscriptions":2,
--- error_log
closing with 1008
--- timeout: 60



=== TEST 3: subscriber.latest_value is checked: "*", a control character and a too long name are refused with 400
--- init
package main;
for my $v ('*', 'scene-update,x%01y', 'a' x 300) {
    my ($code, undef, $body) = http_request('POST', '/api/hub',
        "hub.mode=subscribe&hub.channel.type=websocket&hub.topic=lv3"
        . "&hub.events=scene-update&subscriber.latest_value=$v",
        'Content-Type' => 'application/x-www-form-urlencoded');
    is($code, 400, 'refused: ' . substr($v, 0, 20));
    like($body, qr/subscriber\.latest_value/, 'the reason names the field');
}
--- response_body_like: "subscriptions":0,



=== TEST 4: cast_latest_value refuses "*"
--- config
location /api/hub { cast_hub; cast_latest_value scene-update "*"; }
--- must_die
--- error_log
invalid event name "*" in "cast_latest_value"
--- no_error_log
[alert]



=== TEST 5: the key is the event and its topic: a slow "*" subscriber ends with the last scene-update of each topic
--- config
cast_send_queue 128k;
--- init
package main;
my $fast = subscribe_ws('*', '&subscriber.latest_value=scene-update');
my $slow = subscribe_ws('*', '&subscriber.latest_value=scene-update', 1);
my $c = ka_open();
my (@published, @bad, @got);
for my $i (1 .. 300) {
    my $topic = $i % 2 ? 'lw-a' : 'lw-b';
    my $code = ka_post($c, '/api/hub', event($topic, 'scene-update', sprintf('s-%05d', $i), 32768));
    push @bad, $code if $code ne '200';
    push @published, sprintf 's-%05d', $i;
    push @got, next_id($fast, 5);
}
is(join(',', @bad), '', 'every publish answered 200');
same_seq(\@got, \@published, 'the fast "*" subscriber: every event, in order');
Time::HiRes::sleep(0.5);
my ($ids, $final) = drain($slow, 2);
ordered_subsequence($ids, \@published, 'the slow one: in publication order');
ok(@$ids < 300, 'the slow one: with gaps (' . scalar(@$ids) . ' of 300)');
is(join(',', @$ids[-2, -1]), 's-00299,s-00300', 'the slow one ends with the last event of each topic');
is($final, 'timeout', 'the slow one is still open');
$main::HOLD = [$slow, $fast];
--- response_body_like: "connections":2,"subscriptions":2,
--- no_error_log
closing with 1008
[alert]
[crit]
[emerg]
signal
--- timeout: 60
