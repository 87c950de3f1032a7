# Redis mode while Redis fails (SPEC 5): redis-server killed under traffic,
# restarted on the same port; redis-server paused (SIGSTOP) past
# command_timeout.  Publishes answer 503 + Retry-After (never a 2xx that
# is not delivered), open sockets stay open, the workers reconnect and
# re-subscribe by themselves, and every event that got a 2xx reaches
# every socket in one order.
#
# Known module bug (assertions marked "BUG if failing"): while one worker's
# pub/sub connection is down (reconnecting), another worker still answers
# 200 to publishes, and the first worker's sockets never get those events.
# TEST 4 shows it deterministically (CLIENT KILL of one pub/sub
# connection); TEST 1 hits it whenever the two workers reconnect at
# different times after the restart.
#
# Ports: TEST_NGINX_REDIS_PORT (6423).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest;
use CastRedis;
use CastCluster;
use Time::HiRes qw(time sleep);
use File::Temp ();

master_on();
workers(2);
log_level('info');
no_shuffle();

$ENV{TEST_NGINX_REDIS_PORT} ||= 6423;
$ENV{TEST_NGINX_SERVROOT} ||= server_root();

# scratch files live outside the servroot, which Test::Nginx must be able
# to remove between blocks
our $Scratch = File::Temp::tempdir('cast-scratch-XXXXXX', TMPDIR => 1,
                                   CLEANUP => 1);

our $Redis = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->start;
our $HOLD;
our $Unreachable = '{"error":"the hub\'s Redis is unreachable, try again"}';

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('http_config', "    cast_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}"
                      . " connect_timeout=500ms command_timeout=500ms;\n");
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

sub port () { server_port() }
sub errlog () { $Test::Nginx::Util::ErrLogFile }
sub rport () { $ENV{TEST_NGINX_REDIS_PORT} }

sub ready () {
    $main::Redis->start if !$main::Redis->is_running;
    for my $kind ('command', 'pubsub') {
        my $n = CastRedis::wait_for_log(errlog(),
            qr/cast: redis $kind connection to \S+ ready/, 2, 10);
        die "only $n $kind connections ready\n" if $n < 2;
    }
    $main::Redis->command('FLUSHALL');
}

# sockets on both workers
sub open_subs ($$) {
    my ($topic, $n) = @_;
    my $by = ka_spread(port(), 2, $n / 2);
    my @ws;
    for my $pid (sort keys %$by) {
        for my $c (@{ $by->{$pid} }) {
            my $ws = ws_upgrade($c, (subscribe(port(), $topic))[1]);
            $ws->{pid} = $pid;
            push @ws, $ws;
        }
    }
    my %pids = map { $_ => 1 } values %{ socket_pids(errlog()) };
    Test::More::cmp_ok(scalar(keys %pids), '>=', 2, "$n sockets bound in both workers")
        or Test::More::diag(join ' ', keys %pids);
    return @ws;
}

# no socket closed; -> the event ids each one got meanwhile
sub still_open ($$@) {
    my ($what, $secs, @ws) = @_;
    my @closed;
    sleep $secs;
    for my $i (0 .. $#ws) {
        my ($ids, $close) = read_events($ws[$i], undef, 0.05);
        push @{ $ws[$i]{got} }, @$ids;
        push @closed, "socket $i: $close" if $close;
    }
    Test::More::is(join(', ', @closed), '', "$what: every socket still open (no close frame)");
}

sub first_bad (@) { join "\n", @_[0 .. ($#_ > 4 ? 4 : $#_)] }

# every 2xx'd id at every socket; one order (= publish order: one
# sequential publisher).  $results: ({ id, code, time }); the 2xx'd ones
# with a time in [$from, $to) are checked separately, as $window_label
sub check_delivery ($$@) {
    my ($results, $window, @ws) = @_;
    my ($from, $to, $label) = $window ? @$window : (0, 0, '');
    my @ok = map { $_->{id} } grep { $_->{code} =~ /^2/ && !(($_->{time} // 0) >= $from && ($_->{time} // 0) < $to) } @$results;
    my @win = map { $_->{id} } grep { $_->{code} =~ /^2/ && ($_->{time} // 0) >= $from && ($_->{time} // 0) < $to } @$results;
    my (@missing, @win_missing, @unordered);
    for my $i (0 .. $#ws) {
        my ($ids) = read_events($ws[$i], undef, $i ? 0.2 : 1.5);
        push @{ $ws[$i]{got} }, @$ids;
        my @got = @{ $ws[$i]{got} };
        my %have = map { $_ => 1 } @got;
        my @m = grep { !$have{$_} } @ok;
        push @missing, "socket $i misses " . scalar(@m) . " 2xx'd events: @m[0 .. ($#m > 5 ? 5 : $#m)]"
            if @m;
        my @w = grep { !$have{$_} } @win;
        push @win_missing, "socket $i (worker " . ($ws[$i]{pid} // '?') . ") misses: @w" if @w;
        push @unordered, "socket $i: " . join(',', @got) if join(',', @got) ne join(',', sort @got);
    }
    Test::More::is(first_bad(@missing), '', 'every event that got a 2xx reached every socket ('
                   . scalar(@ok) . ' events' . ($label ? ", outside $label" : '') . ')');
    Test::More::is(first_bad(@unordered), '', 'every socket got them in publish order (one order)');
    return if !$window;
    Test::More::is(first_bad(@win_missing), '',
        "BUG if failing: the events that got a 2xx $label reached every socket too ("
        . scalar(@win) . ' events)');
}

run_tests();

__DATA__

=== TEST 1: redis-server killed under traffic, restarted: 503 + Retry-After meanwhile, sockets stay open, delivery resumes, no 2xx'd event lost
--- config
--- init
package main;
ready();
my @ws = open_subs('kf', 8);
my $pub = publisher_start(port => port(), topic => 'kf', prefix => 'k',
                          file => "$main::Scratch/publisher.txt");
sleep 0.6;
my $killed_at = time;
$main::Redis->kill;
sleep 0.2;
my ($sc, $sh, $sb) = CastTest::http_request('GET', '/cast/status');
like($sb, qr/"redis":"disconnected"/, 'status: disconnected');
still_open('while Redis is down', 1.3, @ws);
my $restarted_at = time;
$main::Redis->start;
ok(wait_connected(port(), 2, 8), 'status: connected again on both workers');
my $connected_at = time;
sleep 1;
my @r = publisher_stop($pub);
my @early = grep { $_->{time} < $killed_at } @r;
my @down = grep { $_->{time} > $killed_at + 0.1 && $_->{time} < $restarted_at } @r;
my @late = grep { $_->{time} > $connected_at + 0.3 } @r;
is(join(',', map { $_->{code} } grep { $_->{code} ne '200' } @early), '', 'before the kill: 200');
ok(@down >= 10, scalar(@down) . ' publishes while Redis was down');
is(join(',', map { "$_->{id}:$_->{code}" } grep { $_->{code} ne '503' } @down), '',
   'while Redis was down: 503');
is(join(',', map { "$_->{id}:$_->{code}" } grep { $_->{code} ne '200' } @late), '',
   'after reconnecting: 200 again');
ok(@late >= 10, scalar(@late) . ' publishes after reconnecting');
is(join(',', map { "$_->{id}:$_->{code}" } grep { $_->{code} !~ /^(?:200|503)$/ } @r), '',
   'every answer was 200 or 503');
my @bad503 = grep { $_->{code} eq '503' && ($_->{retry_after} ne '1' || $_->{body} ne $main::Unreachable) } @r;
is(scalar @bad503, 0, 'every 503 has Retry-After: 1 and the error body')
    or diag("$bad503[0]{id}: Retry-After $bad503[0]{retry_after} body $bad503[0]{body}");
check_delivery(\@r, [$restarted_at, $connected_at, 'while the workers were reconnecting'], @ws);
$main::HOLD = \@ws;
--- response_body_like: "mode":"redis",.*"redis":"connected"
--- error_log eval
[
    qr/\[error\] .*cast: redis command connection to 127\.0\.0\.1:\d+ lost: /,
    qr/\[error\] .*cast: redis pubsub connection to 127\.0\.0\.1:\d+ lost: /,
    qr/\[error\] .*cast: redis (?:command|pubsub) connection to 127\.0\.0\.1:\d+ failed: Connection refused/,
]
--- timeout: 5



=== TEST 2: while Redis is down every Redis-backed request answers 503 + Retry-After; after the restart the old sockets get new events
--- config
--- init
package main;
ready();
my @ws = open_subs('dn', 4);
my ($c0, $spath) = subscribe(port(), 'dn');   # not bound yet
is($c0, 202, 'a subscription to bind later');
$main::Redis->kill;
# both workers notice (the pubsub connection breaks at once)
CastRedis::wait_for_log(errlog(), qr/cast: redis pubsub connection to \S+ lost/, 2, 5);
my @checks = (
    ['subscribe', sub { subscribe(port(), 'dn') }],
    ['publish', sub { my ($c, $h, $b) = publish(port(), 'dn', 'x1'); ($c, undef, $b, $h) }],
    ['GET context', sub { my ($c, $h, $b) = CastTest::http_request('GET', '/api/hub/dn'); ($c, undef, $b, $h) }],
    ['unsubscribe', sub { my ($c, $h, $b) = CastTest::http_request('POST', '/api/hub',
        "hub.mode=unsubscribe&hub.channel.type=websocket&hub.topic=dn&hub.channel.endpoint=ws://localhost$ws[0]{cast_path}",
        'Content-Type' => 'application/x-www-form-urlencoded'); ($c, undef, $b, $h) }],
    ['DELETE', sub { my ($c, $h, $b) = CastTest::http_request('DELETE', '/api/hub', undef); ($c, undef, $b, $h) }],
);
for my $chk (@checks) {
    for my $rep (1 .. 2) {
        my ($code, undef, $body, $h) = $chk->[1]->();
        is("$code " . ($h->{'retry-after'} // '-') . " $body", "503 1 $main::Unreachable",
           "$chk->[0] (#$rep): 503, Retry-After: 1");
    }
}
my $bind = eval { CastTest::WS->connect($spath) };
like($@, qr/status 503 body: \Q$main::Unreachable\E/, 'binding: 503');
still_open('while Redis is down', 0.5, @ws);
$main::Redis->start;
ok(wait_connected(port(), 2, 8), 'connected again');
my ($pc) = publish(port(), 'dn', 'after1');
my ($pc2) = publish(port(), 'dn', 'after2');
is("$pc $pc2", '200 200', 'publish after the restart: 200');
my @got = map { join ',', @{ (read_events($_, 2, 3))[0] } } @ws;
is(join(' ', @got), join(' ', ('after1,after2') x 4),
   'the sockets opened before the outage (both workers) get the new events');
my $new = subscriber(port(), 'dn');
my ($pc3) = publish(port(), 'dn', 'after3');
my ($ids) = read_events($new, 1, 3);
is(join(',', @$ids), 'after3', 'a new subscription works');
$main::HOLD = [@ws, $new];
--- response_body_like: "mode":"redis",.*"redis":"connected"
--- error_log eval
[
    qr/\[info\] .*cast: redis command connection to 127\.0\.0\.1:\d+ ready/,
]



=== TEST 3: redis-server paused (SIGSTOP): requests answer 503 within command_timeout, not hang; resumed: recovery
--- config
--- init
package main;
ready();
my @ws = open_subs('ps', 6);
my ($p0) = publish(port(), 'ps', 'before');
is($p0, 200, 'publish before the pause');
$main::Redis->pause;
my (@slow, @codes);
for my $i (1 .. 6) {
    my $t0 = time;
    my ($code, $h) = publish(port(), 'ps', "paused$i");
    my $dt = time - $t0;
    push @codes, $code;
    push @slow, sprintf('paused%d %.2fs', $i, $dt) if $dt > 1.5;
}
my ($gc) = CastTest::http_request('GET', '/api/hub/ps');
is(join(',', @codes, $gc), '503,503,503,503,503,503,503',
   'publishes and GET context while paused: 503');
is(join(', ', @slow), '', 'none waited longer than 1.5 s (command_timeout=500ms)');
still_open('while Redis is paused', 0.3, @ws);
$main::Redis->resume;
ok(wait_connected(port(), 2, 8), 'connected again after the resume');
my @codes2 = map { (publish(port(), 'ps', "resumed$_"))[0] } 1 .. 5;
is("@codes2", '200 200 200 200 200', 'publishes after the resume: 200');
my @r = map { { id => $_, code => 200 } } 'before', map { "resumed$_" } 1 .. 5;
check_delivery(\@r, undef, @ws);
$main::HOLD = \@ws;
--- response_body_like: "mode":"redis",.*"redis":"connected"
--- error_log eval
[
    qr/\[error\] .*cast: redis command connection to 127\.0\.0\.1:\d+ lost: .*timed out/,
]



=== TEST 4: one worker's pub/sub connection drops (CLIENT KILL): an event published meanwhile through the other worker gets 200 but never reaches the first worker's sockets
--- config
--- init
package main;
ready();
my @ws = open_subs('ck', 4);
my %by;
push @{ $by{ $_->{pid} } }, $_ for @ws;
my ($x, $y) = sort keys %by;
my $cy = ka_open(port());
for (1 .. 100) { last if (ka_pid($cy) // 0) == $y; $cy = ka_open(port()) }
is(ka_pid($cy), $y, "a keep-alive connection to worker $y");
my ($p0) = ka_request($cy, 'POST', '/api/hub/ck', ev_body('ck', 'c1'));
is($p0, 200, "c1 published through worker $y");
my ($line) = grep { /name=cast:pubsub:$x\b/ } split /\n/, $main::Redis->client_list;
my ($cid) = ($line // '') =~ /\bid=(\d+)/;
ok($cid, "worker ${x}'s pub/sub connection in CLIENT LIST");
is($main::Redis->command('CLIENT', 'KILL', 'ID', $cid), 1, "CLIENT KILL ID $cid (worker $x, pub/sub)");
my ($p1) = ka_request($cy, 'POST', '/api/hub/ck', ev_body('ck', 'c2'));
is($p1, 200, "c2 published through worker $y at once: 200");
ok(CastRedis::wait_for_log(errlog(), qr/ $x#\d+: cast: redis pubsub connection to \S+ ready/, 2, 8) >= 2,
   "worker ${x}'s pub/sub connection is back");
sleep 0.2;
my ($p2) = ka_request($cy, 'POST', '/api/hub/ck', ev_body('ck', 'c3'));
is($p2, 200, 'c3 published after the reconnect');
my @on_y = map { join ',', @{ (read_events($_, 3, 2))[0] } } @{ $by{$y} };
is(join(' ', @on_y), 'c1,c2,c3 c1,c2,c3', "worker ${y}'s sockets: c1,c2,c3");
my @on_x = map { join ',', @{ (read_events($_, 3, 1))[0] } } @{ $by{$x} };
is(join(' ', map { join ',', grep { $_ ne 'c2' } split /,/ } @on_x), 'c1,c3 c1,c3',
   "worker ${x}'s sockets: c1 and c3 arrive (delivery resumed)");
is(join(' ', @on_x), 'c1,c2,c3 c1,c2,c3',
   "BUG if failing: worker ${x}'s sockets got c2 too (it got a 200 while their worker was not subscribed)");
$main::HOLD = \@ws;
--- response_body_like: "mode":"redis",.*"redis":"connected"
--- error_log eval
[
    qr/\[error\] .*cast: redis pubsub connection to 127\.0\.0\.1:\d+ lost: /,
]
