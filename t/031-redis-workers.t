# Redis mode across the workers of one nginx (SPEC 5): 4 workers share one
# hub through a private redis-server (t/lib/CastRedis.pm).  Keep-alive
# connections whose worker is known (/cast/status names the answering
# worker's pid) place subscribers, publishers and binds on chosen workers.
#
# Ports: TEST_NGINX_REDIS_PORT (6421).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest;
use CastRedis;
use CastCluster;
use POSIX ();
use Time::HiRes qw(time sleep);

master_on();
workers(4);
worker_connections(1024);
log_level('info');
no_shuffle();

$ENV{TEST_NGINX_REDIS_PORT} ||= 6421;

our $Redis = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->start;
our $HOLD;

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config',
                      "    cast_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT};\n");
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . <<'_EOC_');
    location /api/hub { cast_hub; cast_reset on; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    $block->set_value('no_error_log', "[alert]\n[crit]\nsignal\n")
        if !defined $block->no_error_log;
});

sub port () { $ENV{TEST_NGINX_SERVER_PORT} }
sub errlog () { $Test::Nginx::Util::ErrLogFile }

# every worker's two Redis connections are up; Redis starts empty
sub ready () {
    for my $kind ('command', 'pubsub') {
        my $n = CastRedis::wait_for_log(errlog(),
            qr/cast: redis $kind connection to \S+ ready/, 4, 10);
        die "only $n $kind connections ready\n" if $n < 4;
    }
    $main::Redis->command('FLUSHALL');
}

sub first_bad (@) { join "\n", @_[0 .. ($#_ > 4 ? 4 : $#_)] }

run_tests();

__DATA__

=== TEST 1: subscribers on all 4 workers, 2 concurrent keep-alive publishers: all 100 events, one order
--- config
--- init
package main;
ready();
my $by = ka_spread(port(), 4, 3);
is(scalar(keys %$by), 4, 'keep-alive connections on 4 workers');
my @ws;
for my $pid (sort keys %$by) {
    for my $c (@{ $by->{$pid} }) {
        my ($code, $path) = subscribe(port(), 'wk');
        push @ws, ws_upgrade($c, $path);
    }
}
# a few more on whatever worker accepts them
push @ws, subscriber(port(), 'wk') for 1 .. 8;
my %pids = map { $_ => 1 } values %{ socket_pids(errlog()) };
is(scalar(keys %pids), 4, "the 20 sockets are bound in 4 different workers");

my @kids;
for my $p ('a', 'b') {
    my $pid = fork;
    die "fork: $!" if !defined $pid;
    if ($pid == 0) {
        my $bad = 0;
        eval {
            my $c = ka_open(port());
            for my $i (map { sprintf '%02d', $_ } 1 .. 50) {
                my ($code) = ka_request($c, 'POST', '/api/hub/wk', ev_body('wk', "$p$i"));
                $bad++ if $code ne '200';
            }
        };
        POSIX::_exit($bad || $@ ? 1 : 0);
    }
    push @kids, $pid;
}
my @rc = map { waitpid($_, 0); $? >> 8 } @kids;
is("@rc", '0 0', 'both publishers got 200 for their 50 events');

my (@seqs, @bad);
for my $i (0 .. $#ws) {
    my ($ids, $close) = read_events($ws[$i], 100, 5);
    push @bad, "socket $i: " . scalar(@$ids) . " events" . ($close ? " ($close)" : '')
        if @$ids != 100;
    push @seqs, join ',', @$ids;
}
is(first_bad(@bad), '', 'every socket got 100 events');
my @first = split /,/, $seqs[0];
is(join(',', grep { /^a/ } @first), join(',', map { sprintf 'a%02d', $_ } 1 .. 50),
   "publisher a's events in its order");
is(join(',', grep { /^b/ } @first), join(',', map { sprintf 'b%02d', $_ } 1 .. 50),
   "publisher b's events in its order");
my @wrong = grep { $seqs[$_] ne $seqs[0] } 1 .. $#seqs;
is(scalar @wrong, 0, 'the 20 sockets on 4 workers saw one identical order')
    or diag("socket $wrong[0]: $seqs[$wrong[0]]\nsocket 0: $seqs[0]");
my @extra = grep { my @f = $_->recv_frame(0.2); @f && $f[0] == 1 } @ws;
is(scalar @extra, 0, 'nothing after the 100 events');
$main::HOLD = \@ws;
--- response_body_like: "mode":"redis",.*"workers":\[\{"pid":\d+.*"redis":"connected"



=== TEST 2: subscribe answered by one worker, bind handled by another, events from a third
--- config
--- init
package main;
ready();
my $by = ka_spread(port(), 4, 2);
my @pids = sort keys %$by;
is(scalar @pids, 4, 'keep-alive connections on 4 workers');
my (@ws, @bad);
# subscription answered by worker $i, socket bound in worker $i+1
for my $i (0 .. 3) {
    my $sc = $by->{ $pids[$i] }[0];
    my ($code, undef, $body) = ka_request($sc, 'POST', '/api/hub',
        'hub.mode=subscribe&hub.channel.type=websocket&hub.topic=xw&hub.events=tick'
        . "&subscriber.name=w$i", 'application/x-www-form-urlencoded');
    my ($path) = $body =~ m{"hub\.channel\.endpoint":"ws://localhost(/bind/[0-9a-f]{32})"};
    if ($code ne '202' || !$path) { push @bad, "subscribe on worker $i: $code $body"; next }
    my $ws = eval { ws_upgrade($by->{ $pids[($i + 1) % 4] }[1], $path) };
    if (!$ws) { push @bad, "bind in worker " . (($i + 1) % 4) . ": $@"; next }
    $ws->{sub_pid} = $pids[$i];
    $ws->{bind_pid} = $pids[($i + 1) % 4];
    push @ws, $ws;
}
is(first_bad(@bad), '', 'every subscription bound in the next worker');
my %created;
for (log_grep(errlog(), qr/cast: subscription \w{8}\.\.\. on topic "xw" created/)) {
    $created{$2} = $1 if /\s(\d+)#\d+: .*cast: subscription (\w{8})/;
}
my $bound = socket_pids(errlog());
my @mismatch = grep {
    my $id8 = substr($_->{cast_id}, 0, 8);
    ($created{$id8} || 0) != $_->{sub_pid} || ($bound->{$id8} || 0) != $_->{bind_pid}
        || $created{$id8} == $bound->{$id8}
} @ws;
is(scalar @mismatch, 0, 'error.log: created in one worker pid, bound in another');
# publish from worker 2 and 3 (keep-alive), each socket gets both
my ($c1) = ka_request($by->{ $pids[2] }[0], 'POST', '/api/hub/xw', ev_body('xw', 'x1'));
my ($c2) = ka_request($by->{ $pids[3] }[0], 'POST', '/api/hub/xw', ev_body('xw', 'x2'));
is("$c1 $c2", '200 200', 'publishes answered 200');
my @got = map { join ',', @{ (read_events($_, 2, 5))[0] } } @ws;
is(join(' ', @got), join(' ', ('x1,x2') x 4), 'the 4 cross-bound sockets got both events in order');
is(scalar @{ $main::Redis->command('KEYS', 'cast:sub:*') }, 4, 'Redis holds the 4 subscription records');
$_->close for @ws;
my $left;
for (1 .. 50) {
    $left = @{ $main::Redis->command('KEYS', 'cast:sub:*') } + $main::Redis->command('ZCARD', 'cast:subs');
    last if !$left;
    sleep 0.05;
}
is($left, 0, 'the sockets closed: their records are deleted from Redis');
--- response_body_like: "mode":"redis",.*"redis":"connected"



=== TEST 3: GET context: identical from every worker, from Redis
--- config
--- init
package main;
ready();
my $by = ka_spread(port(), 4, 1);
my @pids = sort keys %$by;
is(scalar @pids, 4, 'keep-alive connections on 4 workers');
my @c = map { $by->{$_}[0] } @pids;
my ($code, undef, $empty) = ka_request($c[0], 'GET', '/api/hub/ctx');
is("$code $empty", '200 {}', 'no context yet');
for my $round ([1, 'p1'], [2, 'p2'], [3, 'p3']) {
    my ($w, $id) = @$round;
    my ($pc) = ka_request($c[$w], 'POST', '/api/hub/ctx', ev_body('ctx', $id, 'patient-open'));
    is($pc, '200', "patient-open $id published by worker $w");
    my @bodies;
    for my $rep (1 .. 2) {
        for my $c (@c) {
            my ($gc, undef, $b) = ka_request($c, 'GET', '/api/hub/ctx');
            push @bodies, "$gc $b";
        }
    }
    my @diff = grep { $_ ne $bodies[0] } @bodies;
    is(scalar @diff, 0, "after $id: the 4 workers answer the same context (twice each)")
        or diag(join "\n", @bodies);
    like($bodies[0], qr/^200 .*"id":"\Q$id\E"/, "after $id: the context is the one of $id");
}
my ($cc) = ka_request($c[0], 'POST', '/api/hub/ctx', ev_body('ctx', 'p3', 'patient-close'));
my @after = map { join ' ', (ka_request($_, 'GET', '/api/hub/ctx'))[0, 2] } @c;
is(join('|', @after), join('|', ('200 {}') x 4), 'after patient-close: {} from every worker');
--- response_body_like: "mode":"redis"



=== TEST 4: unsubscribe and reset answered by one worker reach sockets on every worker
--- config
--- init
package main;
ready();
my $by = ka_spread(port(), 4, 2);
my @pids = sort keys %$by;
my @ws;
for my $pid (@pids) {
    for my $c (@{ $by->{$pid} }) {
        my (undef, $path) = subscribe(port(), 'un');
        push @ws, ws_upgrade($c, $path);
    }
}
is(scalar @ws, 8, '8 sockets on 4 workers');
# unsubscribe one socket through a new connection (any worker)
my $victim = $ws[2];
my ($uc, $ub) = unsubscribe(port(), 'un', $victim->{cast_path});
is($uc, 202, 'unsubscribe: 202');
my ($ids, $close) = read_events($victim, undef, 3);
is(($victim->{cast_denied} || '') . " $close", 'unsubscribed close 1000',
   'the socket got the denial "unsubscribed" and Close 1000');
my ($pc) = publish(port(), 'un', 'u1');
is($pc, 200, 'publish after the unsubscribe');
my @others = grep { $_ != $victim } @ws;
my @got = map { join ',', @{ (read_events($_, 1, 3))[0] } } @others;
is(join(' ', @got), join(' ', ('u1') x 7), 'the 7 others still receive');
my ($dc, undef, $db) = CastTest::http_request('DELETE', '/api/hub', undef);
is("$dc $db", '200 {"status":"cleared","removed":7}', 'DELETE: 7 removed');
my @res = map { my (undef, $cl) = read_events($_, undef, 3); ($_->{cast_denied} || '-') . " $cl" } @others;
is(join('|', @res), join('|', ('reset close 1000') x 7),
   'every socket on every worker got the denial "reset" and Close 1000');
--- response_body_like: "mode":"redis".*"connections":0,"subscriptions":0



=== TEST 5: cast_status names every worker of the hub (reports in Redis, every 2 s)
--- init
package main;
ready();
sleep 2.6;
--- response_body_like: "mode":"redis",.*"redis":"connected","hub":\{"connections":0,"subscriptions":0,"events_in":\d+,"events_out":\d+,"dropped":0,"workers":4\},"peers":\[\{"pid":\d+.*"host":"[^"]+"\},\{"pid":\d+.*"host":"[^"]+"\},\{"pid":\d+.*"host":"[^"]+"\},\{"pid":\d+.*"host":"[^"]+"\}\]



=== TEST 6: a stored context larger than cast_send_queue: the replay from Redis reaches new sockets on every worker, then live events
--- config
cast_send_queue 64k;
--- init
package main;
ready();
my $pad = 'p' x 300000;
my ($code) = CastTest::http_request('POST', '/api/hub/bigR',
    '{"event":{"hub.event":"patient-open","context":[{"key":"patient","resource":{"resourceType":"Patient","id":"p1","pad":"' . $pad . '"}}]}}',
    'Content-Type' => 'application/json', -port => port());
is($code, 200, 'a 300 kB context, published');
my $by = ka_spread(port(), 4, 1);
my @ws;
for my $pid (sort keys %$by) {
    my (undef, $path) = subscribe(port(), 'bigR');
    my $ws = eval { ws_upgrade($by->{$pid}[0], $path) };
    ok($ws, "worker $pid: 101 and the greeting") or diag($@);
    next if !$ws;
    my $r = $ws->recv_json(5);
    is($r && length($r->{event}{context}[0]{resource}{pad} // ''), 300000, "worker $pid: the replay, whole");
    push @ws, $ws;
}
my ($pc) = publish(port(), 'bigR', 'live1', 'patient-close');
is($pc, 200, 'a live event');
my @got = map { my $e = $_->recv_json(5); $e && $e->{event}{'hub.event'} } @ws;
is(join(',', @got), join(',', ('patient-close') x scalar @ws), 'every socket: the live event');
$main::HOLD = \@ws;
--- response_body_like: "mode":"redis".*"connections":1,"subscriptions":1,
--- no_error_log
closing with 1008
[alert]
[crit]
signal
