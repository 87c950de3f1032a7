# Redis mode across two nginx hosts (SPEC 5): the runner's nginx (A, 2
# workers) and a second one started by t/lib/CastCluster.pm (B: port
# TEST_NGINX_SERVER_PORT + 1, prefix <servroot>2, 2 workers, the same
# module and the same private redis-server).  A socket binds on the other
# host, events from both hosts reach both in one order, unsubscribe and
# reset reach the socket wherever it is, GET context is the same on both.
#
# Ports: TEST_NGINX_REDIS_PORT (6422), TEST_NGINX_SERVER_PORT + 1 (B).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest;
use CastRedis;
use CastCluster;
use POSIX ();
use Time::HiRes qw(time sleep);

master_on();
workers(2);
log_level('info');
no_shuffle();

$ENV{TEST_NGINX_REDIS_PORT} ||= 6422;
$ENV{TEST_NGINX_SERVROOT} ||= server_root();

our $Locations = <<'_EOC_';
    location /api/hub { cast_hub; cast_reset on; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

our ($Redis, $B) = CastCluster::two_hosts($Locations);
our $HOLD;

sub pa () { server_port() }
sub pb () { $main::B->port }
sub errlog () { $Test::Nginx::Util::ErrLogFile }

sub ready () {
    CastCluster::two_hosts_ready($main::Redis);
}

# host B's error.log stays clean
sub b_log_clean () {
    my @bad = log_grep($main::B->error_log, qr/\[alert\]|\[crit\]|signal/);
    Test::More::is(join('', @bad), '', 'host B: no [alert], [crit] or signal in its error.log');
}

sub first_bad (@) { join "\n", @_[0 .. ($#_ > 4 ? 4 : $#_)] }

run_tests();

$B->stop;

__DATA__

=== TEST 1: subscribe on A, bind on B (and the reverse); events published on either host reach both
--- config
--- init
package main;
ready();
my ($ca, $path_ab) = subscribe(pa(), 'h1', 'subscriber.name' => 'ab');
my ($cb, $path_ba) = subscribe(pb(), 'h1', 'subscriber.name' => 'ba');
is("$ca $cb", '202 202', 'subscribe on A and on B: 202');
my $ws_ab = eval { bind_ws(pb(), $path_ab) };
is($@, '', 'the subscription made on A binds on B');
my $ws_ba = eval { bind_ws(pa(), $path_ba) };
is($@, '', 'the subscription made on B binds on A');
my $id_ab = substr($ws_ab->{cast_id}, 0, 8);
is(scalar(log_grep(errlog(), qr/cast: subscription $id_ab\.\.\. on topic "h1" created/)), 1,
   'error.log of A: the subscription was created there');
is(scalar(log_grep($main::B->error_log, qr/cast: socket bound to subscription $id_ab/)), 1,
   'error.log of B: its socket was bound there');
my ($p1) = publish(pa(), 'h1', 'fromA');
my ($p2) = publish(pb(), 'h1', 'fromB');
is("$p1 $p2", '200 200', 'publish on A and on B: 200');
my ($e1) = read_events($ws_ab, 2, 5);
my ($e2) = read_events($ws_ba, 2, 5);
is(join(',', @$e1), 'fromA,fromB', 'the socket on B got both events');
is(join(',', @$e2), 'fromA,fromB', 'the socket on A got both events');
# a subscription that never binds is refused on both hosts alike
my ($bad) = eval { CastTest::WS->connect('ws://127.0.0.1:' . pb() . '/bind/' . ('0' x 32)) };
like($@, qr/status 404/, 'an unknown endpoint: 404 on B');
b_log_clean();
$main::HOLD = [$ws_ab, $ws_ba];
--- response_body_like: "mode":"redis",.*"redis":"connected"



=== TEST 2: one publisher on A, one on B, concurrently: sockets on both hosts see one identical order
--- config
--- init
package main;
ready();
my @ws;
for my $i (1 .. 12) {
    my $sub_on = $i % 2 ? pa() : pb();
    my $bind_on = $i % 3 ? pa() : pb();
    my (undef, $path) = subscribe($sub_on, 'h2');
    push @ws, bind_ws($bind_on, $path);
}
my @on = map { $_->{cast_port} } @ws;
is(scalar(grep { $_ == pb() } @on), 4, '4 sockets on B, 8 on A');
my @kids;
for my $p (['a', pa()], ['b', pb()]) {
    my $pid = fork;
    die "fork: $!" if !defined $pid;
    if ($pid == 0) {
        my $bad = 0;
        eval {
            my $c = ka_open($p->[1]);
            for my $i (map { sprintf '%02d', $_ } 1 .. 50) {
                my ($code) = ka_request($c, 'POST', '/api/hub/h2', ev_body('h2', "$p->[0]$i"));
                $bad++ if $code ne '200';
            }
        };
        POSIX::_exit($bad || $@ ? 1 : 0);
    }
    push @kids, $pid;
}
my @rc = map { waitpid($_, 0); $? >> 8 } @kids;
is("@rc", '0 0', 'the publishers on A and B got 200 for their 50 events');
my (@seqs, @bad);
for my $i (0 .. $#ws) {
    my ($ids, $close) = read_events($ws[$i], 100, 5);
    push @bad, "socket $i: " . scalar(@$ids) . ' events' . ($close ? " ($close)" : '')
        if @$ids != 100;
    push @seqs, join ',', @$ids;
}
is(first_bad(@bad), '', 'every socket got the 100 events');
my @first = split /,/, $seqs[0];
is(join(',', grep { /^a/ } @first), join(',', map { sprintf 'a%02d', $_ } 1 .. 50),
   "A's events in their order");
is(join(',', grep { /^b/ } @first), join(',', map { sprintf 'b%02d', $_ } 1 .. 50),
   "B's events in their order");
my @wrong = grep { $seqs[$_] ne $seqs[0] } 1 .. $#seqs;
is(scalar @wrong, 0, 'the 12 sockets on the two hosts saw one identical order')
    or diag("socket $wrong[0] (port $on[$wrong[0]]): $seqs[$wrong[0]]\nsocket 0: $seqs[0]");
b_log_clean();
$main::HOLD = \@ws;
--- response_body_like: "mode":"redis",.*"redis":"connected"



=== TEST 3: unsubscribe on B closes the socket on A; reset on B reaches sockets on both hosts
--- config
--- init
package main;
ready();
my $on_a = subscriber(pa(), 'h3', 'subscriber.name' => 'on-a');
my $on_a2 = subscriber(pa(), 'h3');
my $on_b = subscriber(pb(), 'h3');
my ($uc, $ub) = unsubscribe(pb(), 'h3', $on_a->{cast_path});
is($uc, 202, 'unsubscribe on B: 202');
my ($ids, $close) = read_events($on_a, undef, 3);
is(($on_a->{cast_denied} || '-') . ' ' . ($close || '-'), 'unsubscribed close 1000',
   'the socket on A got the denial "unsubscribed" and Close 1000');
my ($uc2) = unsubscribe(pa(), 'h3', $on_a->{cast_path});
is($uc2, 404, 'the same unsubscribe again on A: 404 (the record is gone)');
# the reverse: unsubscribe on A, socket on B
my $on_b2 = subscriber(pb(), 'h3');
my ($uc3) = unsubscribe(pa(), 'h3', $on_b2->{cast_path});
my (undef, $close3) = read_events($on_b2, undef, 3);
is("$uc3 " . ($on_b2->{cast_denied} || '-') . ' ' . ($close3 || '-'),
   '202 unsubscribed close 1000', 'unsubscribe on A closes the socket on B');
my ($pc) = publish(pb(), 'h3', 'still');
my @got = map { join ',', @{ (read_events($_, 1, 3))[0] } } $on_a2, $on_b;
is(join(' ', @got), 'still still', 'the other sockets still receive');
my ($dc, undef, $db) = CastTest::http_request('DELETE', '/api/hub', undef, -port => pb());
is("$dc $db", '200 {"status":"cleared","removed":2}', 'DELETE on B: 2 removed');
my @res = map { my (undef, $cl) = read_events($_, undef, 3); ($_->{cast_denied} || '-') . ' ' . ($cl || '-') } $on_a2, $on_b;
is(join('|', @res), 'reset close 1000|reset close 1000',
   'the sockets on A and on B got the denial "reset" and Close 1000');
b_log_clean();
--- response_body_like: "mode":"redis",.*"redis":"connected"



=== TEST 4: GET context: the same on both hosts, whichever host published
--- config
--- init
package main;
ready();
for my $step (['A', pa(), 'c1', 'patient-open'], ['B', pb(), 'c2', 'patient-open'],
              ['A', pa(), 'c3', 'patient-open'], ['B', pb(), 'c3', 'patient-close'])
{
    my ($host, $port, $id, $event) = @$step;
    my ($code) = publish($port, 'h4', $id, $event);
    is($code, 200, "$event $id published on $host");
    my @bodies;
    for (1 .. 3) {
        for my $p (pa(), pb()) {
            my ($gc, undef, $b) = CastTest::http_request('GET', '/api/hub/h4', undef, -port => $p);
            push @bodies, "$gc $b";
        }
    }
    my @diff = grep { $_ ne $bodies[0] } @bodies;
    is(scalar @diff, 0, "after $event $id: A and B answer the same context") or diag(join "\n", @bodies);
    if ($event eq 'patient-open') {
        like($bodies[0], qr/^200 \[.*"id":"$id"/, "after $event $id: it is the context of $id");
    } else {
        is($bodies[0], '200 {}', "after $event $id: no context");
    }
}
# a socket bound on B gets the replay of the context opened on A
my ($code) = publish(pa(), 'h4', 'c5', 'patient-open');
my $ws = subscriber(pb(), 'h4');
my ($ids) = read_events($ws, 1, 3);
is(join(',', @$ids), 'c5', 'a socket bound on B: replay of the context opened on A');
b_log_clean();
--- response_body_like: "mode":"redis",.*"redis":"connected"
