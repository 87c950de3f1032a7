# FHIRcast across two nginx hosts on one Redis (SPEC 5; checklist 9.51):
# the runner's nginx (A, 2 workers) and a second one started by
# t/lib/CastCluster.pm (B: port TEST_NGINX_SERVER_PORT + 1, prefix
# <servroot>2, 2 workers, the same module and the same private
# redis-server).  Content-sharing updates of one report sent to both hosts
# at once: one wins, one gets 409, every round; a 409 ack on one host
# reaches the syncerror subscription on the other; cast_ack_timeout's
# report too.
#
# Ports: TEST_NGINX_REDIS_PORT (6436), TEST_NGINX_SERVER_PORT + 1 (B).

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT json_encode json_decode);
use CastRedis;
use CastCluster ();
use CastFhir;
use IO::Socket::INET ();
use IO::Select ();
use Time::HiRes ();

master_on();
workers(2);
log_level('info');
no_shuffle();

$ENV{TEST_NGINX_REDIS_PORT} ||= 6436;
$ENV{TEST_NGINX_SERVROOT} ||= server_root();

our $Locations = <<'_EOC_';
    cast_ack_timeout 3s;
    location /fhircast/hub { cast_hub; cast_dialect fhircast; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

our ($Redis, $B) = CastCluster::two_hosts($Locations);
our $HOLD;

sub pa () { server_port() }
sub pb () { $main::B->port }

sub ready () {
    CastCluster::two_hosts_ready($main::Redis);
}

sub on { my ($port, $code) = @_; local $CastFhir::Port = $port; $code->() }

sub b_log_clean () {
    my @bad = CastCluster::log_grep($main::B->error_log, qr/\[alert\]|\[crit\]|signal/);
    Test::More::is(join('', @bad), '', 'host B: no [alert], [crit] or signal in its error.log');
}

# POSTs written to every port before any answer is read; their statuses
# [port, body]: POSTs to /fhircast/hub at once
sub race { CastCluster::race(map { [$_->[0], '/fhircast/hub', $_->[1]] } @_) }

run_tests();

$B->stop;

__DATA__

=== TEST 1: 9.51 two hosts update the same report at once: one wins, one gets 409, every round; both hosts then agree
--- config
--- init
package main;
ready();
my $sa = on(pa(), sub { subscribe_ok('x1', 'DiagnosticReport-update') });
my $sb = on(pb(), sub { subscribe_ok('x1', 'DiagnosticReport-update') });
my $wa = on(pb(), sub { connect_ready($sa) });   # subscribed on A, bound on B
my $wb = on(pa(), sub { connect_ready($sb) });
is(on(pa(), sub { publish(open_ev('x1', 'r1')) }), 202, 'DiagnosticReport-open on A: 202');
my (@rounds, @bad);
for my $round (1 .. 20) {
    my $v = on($round % 2 ? pa() : pb(), sub { context('x1')->{'context.versionId'} });
    my @codes = race([pa(), update_ev('x1', 'r1', $v, [put('Observation', "a$round")])],
                     [pb(), update_ev('x1', 'r1', $v, [put('Observation', "b$round")])]);
    push @rounds, join ',', sort @codes;
    push @bad, "round $round: @codes" if join(',', sort @codes) ne '202,409';
}
is(scalar @bad, 0, '20 rounds: each time one 202 and one 409') or diag(join "\n", @bad[0 .. ($#bad > 4 ? 4 : $#bad)]);
my $ga = events(sync($wa, 1));
my $gb = events(sync($wb, 1));
is(scalar @$ga, 20, 'the socket on B got 20 updates');
is_deeply([map { $_->{id} } @$gb], [map { $_->{id} } @$ga], 'the socket on A got the same ones, in the same order');
my $chain = 1;
for my $i (1 .. $#$ga) {
    $chain = 0 if $ga->[$i]{event}{'context.priorVersionId'} ne $ga->[$i - 1]{event}{'context.versionId'};
}
ok($chain, 'each accepted update was made against the version the one before made');
my ($ca, $cb) = (on(pa(), sub { context('x1') }), on(pb(), sub { context('x1') }));
is_deeply($ca, $cb, 'GET on A and on B: the same context, version and content');
is($ca->{'context.versionId'}, $ga->[-1]{event}{'context.versionId'}, 'the version of the last update');
my ($bundle) = grep { $_->{key} eq 'content' } @{ $ca->{context} };
is(scalar @{ $bundle->{resource}{entry} || [] }, 20, '20 resources in the content, one per round');
b_log_clean();
$main::HOLD = [$wa, $wb];
--- response_body_like: "mode":"redis",



=== TEST 2: a 409 ack on one host: the syncerror subscription on the other host gets the SyncError; the refusing one does not
--- config
--- init
package main;
ready();
my $b = on(pa(), sub { subscribe_ok('x2', 'Patient-open,syncerror', 'subscriber.name' => 'B on A') });
my $c = on(pb(), sub { subscribe_ok('x2', 'syncerror', 'subscriber.name' => 'C on B') });
my $wb = on(pa(), sub { connect_ready($b) });
my $wc = on(pb(), sub { connect_ready($c) });
is(on(pb(), sub { publish(open_ev('x2', 'p1', type => 'Patient', id => 'ev-x2-1')) }), 202, 'Patient-open on B: 202');
my $got = events(sync($wb, 1));
is($got->[0] && $got->[0]{id}, 'ev-x2-1', 'B (on A) got it');
ack($wb, 'ev-x2-1', 409);
my $sc = events(sync($wc, 1));
is(scalar @$sc, 1, 'C (on B) gets one event');
is($sc->[0] && $sc->[0]{event}{'hub.event'}, 'syncerror', 'a syncerror');
my $codes = { map { ($_->{system} =~ m{/(\w+)$})[0] => $_->{code} }
              @{ $sc->[0]{event}{context}[0]{resource}{issue}[0]{details}{coding} || [] } };
is_deeply($codes, { eventid => 'ev-x2-1', eventname => 'Patient-open', subscribername => 'B on A' }, 'naming the event and B');
is_deeply(sync($wb, 1), [], 'B gets nothing');
b_log_clean();
$main::HOLD = [$wb, $wc];
--- response_body_like: "mode":"redis",



=== TEST 3: cast_ack_timeout on host A: the subscription on host B hears of it; the silent one is unsubscribed
--- config
--- init
package main;
ready();
my $b = on(pa(), sub { subscribe_ok('x3', 'Patient-open', 'subscriber.name' => 'Silent') });
my $c = on(pb(), sub { subscribe_ok('x3', 'syncerror,Patient-open', 'subscriber.name' => 'C') });
my $wb = on(pa(), sub { connect_ready($b) });
my $wc = on(pb(), sub { connect_ready($c) });
on(pb(), sub { publish(open_ev('x3', 'p1', type => 'Patient', id => 'ev-x3-1')) });
my ($op, $p) = $wc->recv_frame(3);
is((json_decode($p // '{}')->{id} // ''), 'ev-x3-1', 'C got the open');
ack($wc, 'ev-x3-1', 200);
Time::HiRes::sleep(3.6);
my $sc = [grep { $_->{event}{'hub.event'} eq 'syncerror' } @{ events(sync($wc, 1)) }];
is(scalar @$sc, 1, 'C gets a syncerror');
like($sc->[0] && $sc->[0]{event}{context}[0]{resource}{issue}[0]{diagnostics} || '',
     qr/^Silent did not acknowledge the event in time/, 'about the silent subscription');
my $gb = sync($wb, 1);
shift @$gb if ($gb->[0] || '') =~ /"ev-x3-1"/;   # the open it never acknowledged
like($gb->[0] || '', qr/"hub\.reason":"unresponsive"/, 'the silent one: denial "unresponsive"');
is($gb->[1], 'close 1000', 'and Close 1000');
b_log_clean();
$main::HOLD = [$wc];
--- response_body_like: "mode":"redis",
