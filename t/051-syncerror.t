# Acknowledgements and SyncError (SPEC 3.3, reference fhircast-stu3.md
# 2.6, 2.10, 3.4; checklist items 9.25-9.32, 9.55, 9.56, 9.72), in local
# and in Redis mode: a 4xx or 5xx ack of a context change makes the hub
# send a syncerror to the topic's other "syncerror" subscriptions;
# cast_ack_timeout reports and unsubscribes a subscription that does not
# acknowledge in time.  Blocks are named by the checklist items.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use CastMode;
use CastFhir;

no_shuffle();
repeat_each(1);

our $HOLD;

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . <<'_EOC_');
    location /fhircast/hub { cast_hub; cast_dialect fhircast; }
    location /api/hub { cast_hub; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

# the syncerrors among what a socket got since the last sync
sub syncerrors {
    my ($ws) = @_;
    return [grep { ($_->{event}{'hub.event'} || '') eq 'syncerror' } @{ events(sync($ws)) }];
}

# the OperationOutcome's issue of a syncerror, and its codings by system
sub issue {
    my ($e) = @_;
    my $ctx = $e->{event}{context} || [];
    my $oo = $ctx->[0] && $ctx->[0]{resource} || {};
    my $issue = $oo->{issue} && $oo->{issue}[0] || {};
    my %c;
    for my $c (@{ $issue->{details}{coding} || [] }) {
        my ($k) = $c->{system} =~ m{/syncerror/(\w+)$};
        push @{ $c{$k || $c->{system}} }, $c->{code};
    }
    return ($issue, \%c, $oo, $ctx);
}

sub patient_open {
    my ($topic, $pid, $id) = @_;
    return open_ev($topic, $pid, type => 'Patient', id => $id);
}

run_tests();

__DATA__

=== TEST 1: 9.26 9.29 9.30 9.55 an ack 409 makes the other "syncerror" subscriptions get a SyncError naming the event; the refusing one and the others do not
--- config
--- init
package main;
my $b = subscribe_ok('s1', 'Patient-open,syncerror', 'subscriber.name' => 'Viewer B');
my $c = subscribe_ok('s1', 'Patient-open,syncerror', 'subscriber.name' => 'Report C');
my $d = subscribe_ok('s1', 'Patient-open', 'subscriber.name' => 'Worklist D');
my ($wb, $wc, $wd) = map { connect_ready($_) } ($b, $c, $d);
is(publish(patient_open('s1', 'p1', 'ev-s1-1')), 202, 'Patient-open: 202');
is(scalar @{ events(sync($_)) }, 1, 'each socket got the open') for ($wb, $wc, $wd);
ack($wb, 'ev-s1-1', 409);
my $sc = syncerrors($wc);
is(scalar @$sc, 1, 'C (syncerror) gets one syncerror');
is_deeply(syncerrors($wb), [], 'B, which refused, gets none');
is_deeply(syncerrors($wd), [], 'D (not subscribed to syncerror) gets none');
my $e = $sc->[0] || {};
like($e->{id} || '', uuid_re(), 'a fresh UUID id');
like($e->{timestamp} || '', qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'a timestamp');
is($e->{event}{'hub.topic'}, 's1', 'hub.topic');
is($e->{event}{'hub.event'}, 'syncerror', 'hub.event syncerror');
my ($issue, $codes, $oo, $ctx) = issue($e);
is(scalar @$ctx, 1, 'one context entry');
is($ctx->[0]{key}, 'operationoutcome', 'key operationoutcome');
is($oo->{resourceType}, 'OperationOutcome', 'an OperationOutcome');
is($issue->{severity}, 'warning', 'severity warning');
is($issue->{code}, 'processing', 'code processing');
is($issue->{diagnostics}, 'Viewer B refused to follow context', 'diagnostics: who and what');
is_deeply($codes->{eventid}, ['ev-s1-1'], 'the eventid coding, once: the event\'s id');
is_deeply($codes->{eventname}, ['Patient-open'], 'the eventname coding, once: its hub.event');
is_deeply($codes->{subscribername}, ['Viewer B'], 'the subscribername coding, once: subscriber.name');
is(scalar @{ $issue->{details}{coding} }, 3, 'three codings');
$main::HOLD = [$wb, $wc, $wd];
--- response_body_like: "connections":3,
--- error_log
cast: syncerror on topic "s1": Viewer B refused to follow context (event "Patient-open" ev-s1-1)



=== TEST 2: 9.27 9.28 9.56 9.25 other 4xx and 5xx acks, as numbers or strings; each SyncError has its own id; 2xx acks and other statuses make none
--- config
--- init
package main;
my $b = subscribe_ok('s2', 'Patient-open,Patient-close');
my $c = subscribe_ok('s2', 'syncerror', 'subscriber.name' => 'C');
my ($wb, $wc) = map { connect_ready($_) } ($b, $c);
my @cases = ([422, 'refused'], ['409', 'refused'], [503, 'failed'], ['500', 'failed']);
my %ids;
my $n = 0;
for my $case (@cases) {
    my $id = 'ev-s2-' . ++$n;
    publish(patient_open('s2', "p$n", $id));
    sync($wb);
    ack($wb, $id, $case->[0]);
    my $sc = syncerrors($wc);
    is(scalar @$sc, 1, "ack " . json_encode($case->[0]) . ": a syncerror");
    my ($issue, $codes) = issue($sc->[0] || {});
    is_deeply($codes->{eventid}, [$id], '... naming the event');
    like($issue->{diagnostics} || '', qr/ $case->[1] to follow context$/, "... $case->[1]");
    like($codes->{subscribername}[0] || '', qr/^subscription [0-9a-f]{8}\.\.\.$/, '... no subscriber.name: the subscription, shortened');
    $ids{$sc->[0]{id}}++ if $sc->[0];
}
is(scalar keys %ids, 4, 'four syncerrors, four distinct ids');
for my $status (200, '200', 202, 302, 'abc', 99, 1000) {
    my $id = 'ev-s2-' . ++$n;
    publish(patient_open('s2', "p$n", $id));
    sync($wb);
    ack($wb, $id, $status);
}
is_deeply(syncerrors($wc), [], 'acks 200, "200", 202, 302, "abc", 99, 1000: no syncerror');
# a close is a context change too
publish(close_ev('s2', 'p1', type => 'Patient', id => 'ev-s2-close'));
sync($wb);
ack($wb, 'ev-s2-close', 500);
is(scalar @{ syncerrors($wc) }, 1, 'a 500 ack of a Patient-close: a syncerror');
$main::HOLD = [$wb, $wc];
--- response_body_like: "connections":2,



=== TEST 3: no SyncError for acks of events that are not context changes, of ids never sent, or sent to another subscription
--- config
--- init
package main;
my $b = subscribe_ok('s3', 'DiagnosticReport-open,DiagnosticReport-update,DiagnosticReport-select,syncerror,heartbeat,userLogout');
my $c = subscribe_ok('s3', 'syncerror');
my $e = subscribe_ok('s3', 'ImagingStudy-open');
my ($wb, $wc, $we) = map { connect_ready($_) } ($b, $c, $e);
publish(open_ev('s3', 'r1', id => 'ev-s3-open'));
my $v = context('s3')->{'context.versionId'};
publish(update_ev('s3', 'r1', $v, [put('Observation', 'o1')], id => 'ev-s3-update'));
publish(update_ev('s3', 'r1', undef, [], id => 'ev-s3-select', name => 'DiagnosticReport-select'));
publish(CastTest::json_encode({ id => 'ev-s3-logout', timestamp => '2026-12-04T10:00:00Z',
                                event => { 'hub.topic' => 's3', 'hub.event' => 'userLogout', context => [] } }));
publish(CastTest::json_encode({ id => 'ev-s3-sync', timestamp => '2026-12-04T10:00:00Z',
                                event => { 'hub.topic' => 's3', 'hub.event' => 'syncerror', context => [] } }));
publish(open_ev('s3', 'st1', type => 'ImagingStudy', id => 'ev-s3-study'));
my $got = events(sync($wb));
is(join(',', map { $_->{id} } @$got), 'ev-s3-open,ev-s3-update,ev-s3-select,ev-s3-logout,ev-s3-sync', 'B got its events');
is(scalar @{ syncerrors($wc) }, 1, 'C got the published syncerror (forwarded like any event)');
ack($wb, $_, 409) for qw(ev-s3-update ev-s3-select ev-s3-logout ev-s3-sync no-such-id ev-s3-study);
is_deeply(syncerrors($wc), [], '409 acks of an update, a select, a userLogout, a syncerror, an unknown id, an event B was not sent: no syncerror');
ack($wb, 'ev-s3-open', 409);
is(scalar @{ syncerrors($wc) }, 1, 'then a 409 ack of the open: a syncerror');
$main::HOLD = [$wb, $wc, $we];
--- response_body_like: "connections":3,
--- error_log
acknowledged "no-such-id" with 409, not a context change it was sent lately



=== TEST 4: the open replayed on connect is acknowledged like a live one
--- config
--- init
package main;
publish(patient_open('s4', 'p1', 'ev-s4-1'));
my $c = subscribe_ok('s4', 'syncerror', 'subscriber.name' => 'C');
my $wc = connect_ready($c);
my $b = subscribe_ok('s4', 'Patient-open', 'subscriber.name' => 'Late B');
my $wb = connect_ready($b);
my $r = events(sync($wb));
is($r->[0] && $r->[0]{id}, 'ev-s4-1', 'B got the replay');
ack($wb, 'ev-s4-1', '409');
my $sc = syncerrors($wc);
is(scalar @$sc, 1, 'its 409: a syncerror');
my (undef, $codes) = issue($sc->[0] || {});
is_deeply($codes->{subscribername}, ['Late B'], 'naming B');
$main::HOLD = [$wb, $wc];
--- response_body_like: "connections":2,



=== TEST 5: each refusing subscription gets its own SyncError, to everyone else; the cast dialect acks alike
--- config
--- init
package main;
my $b1 = subscribe_ok('s5', 'Patient-open,syncerror', 'subscriber.name' => 'B1');
my $b2 = subscribe_ok('s5', 'Patient-open,syncerror', 'subscriber.name' => 'B2');
my $c = subscribe_ok('s5', 'patient-open,syncerror', 'subscriber.name' => 'C', -base => '/api/hub');
my ($w1, $w2) = map { connect_ready($_) } ($b1, $b2);
my $wc = connect_ready($c, cast => 1);
publish(patient_open('s5', 'p1', 'ev-s5-1'));
sync($_) for ($w1, $w2, $wc);
ack($w1, 'ev-s5-1', 409);
ack($w2, 'ev-s5-1', 503);
my @c = map { (issue($_))[1]{subscribername}[0] } @{ syncerrors($wc) };
is(join(',', sort @c), 'B1,B2', 'C (cast dialect) gets two, one per refusing subscription');
is(join(',', map { (issue($_))[1]{subscribername}[0] } @{ syncerrors($w1) }), 'B2', 'B1 gets B2\'s');
is(join(',', map { (issue($_))[1]{subscribername}[0] } @{ syncerrors($w2) }), 'B1', 'B2 gets B1\'s');
ack($wc, 'ev-s5-1', 409);
is(join(',', map { (issue($_))[1]{subscribername}[0] } @{ syncerrors($w1) }), 'C', 'a cast-dialect subscription\'s 409: a syncerror too');
$main::HOLD = [$w1, $w2, $wc];
--- response_body_like: "connections":3,



=== TEST 6: 9.31 9.72 cast_ack_timeout: a subscription that does not acknowledge in time is reported and unsubscribed; one that does is not
--- config
cast_ack_timeout 3s;
--- init
package main;
my $b = subscribe_ok('s6', 'Patient-open', 'subscriber.name' => 'Silent B');
my $a = subscribe_ok('s6', 'Patient-open', 'subscriber.name' => 'Prompt A');
my $c = subscribe_ok('s6', 'syncerror,Patient-open', 'subscriber.name' => 'C');
my ($wb, $wa, $wc) = map { connect_ready($_) } ($b, $a, $c);
publish(patient_open('s6', 'p1', 'ev-s6-1'));
# A and C acknowledge at once (an ack of an event not received yet is no
# ack: wait for it first, without the settling time of sync())
for my $ws ($wa, $wc) {
    my ($op, $p) = $ws->recv_frame(3);
    ack($ws, (json_decode($p // '{}')->{id} // 'none'), 200);
}
Time::HiRes::sleep(3.8);
my $sc = syncerrors($wc);
is(scalar @$sc, 1, 'C gets one syncerror');
my ($issue, $codes) = issue($sc->[0] || {});
is_deeply($codes->{subscribername}, ['Silent B'], 'about B');
is_deeply($codes->{eventid}, ['ev-s6-1'], 'and the event it did not acknowledge');
like($issue->{diagnostics} || '', qr/^Silent B did not acknowledge the event in time/, 'diagnostics');
my $got = sync($wb);
shift @$got if ($got->[0] || '') =~ /"ev-s6-1"/;   # the open it never acknowledged
is_deeply(events([$got->[0] || '{}'])->[0],
          { 'hub.mode' => 'denied', 'hub.topic' => 's6', 'hub.events' => 'Patient-open', 'hub.reason' => 'unresponsive' },
          'B gets the denial "unresponsive"');
is($got->[1], 'close 1000', 'then Close 1000');
publish(patient_open('s6', 'p2', 'ev-s6-2'));
is(scalar @{ events(sync($wa)) }, 1, 'A, which acknowledged, still gets events');
ack($wa, 'ev-s6-2', 200);
ack($wc, 'ev-s6-2', 200);
$main::HOLD = [$wa, $wc];
--- response_body_like: "connections":2,
--- error_log
cast: syncerror on topic "s6": Silent B did not acknowledge the event in time
ended: unresponsive



=== TEST 7: 9.32 cast_ack_timeout: a socket closed with 1000 or 1001 while owing an ack is no failure
--- config
cast_ack_timeout 2s;
--- init
package main;
my $b = subscribe_ok('s7', 'Patient-open', 'subscriber.name' => 'B');
my $b2 = subscribe_ok('s7', 'Patient-open', 'subscriber.name' => 'B2');
my $c = subscribe_ok('s7', 'syncerror', 'subscriber.name' => 'C');
my ($wb, $wb2, $wc) = map { connect_ready($_) } ($b, $b2, $c);
publish(patient_open('s7', 'p1', 'ev-s7-1'));
sync($_) for ($wb, $wb2);
$wb->close(1000);
$wb2->close(1001);
Time::HiRes::sleep(2.6);
is_deeply(syncerrors($wc), [], 'closed with 1000 and 1001: C gets no syncerror');
$main::HOLD = $wc;
--- response_body_like: "connections":1,
--- no_error_log
[alert]
[crit]
cast: syncerror on topic



=== TEST 8: cast_ack_timeout off (the default): a subscription that never acknowledges stays
--- config
--- init
package main;
my $b = subscribe_ok('s8', 'Patient-open');
my $c = subscribe_ok('s8', 'syncerror');
my ($wb, $wc) = map { connect_ready($_) } ($b, $c);
publish(patient_open('s8', 'p1', 'ev-s8-1'));
sync($wb);
Time::HiRes::sleep(1.2);
publish(patient_open('s8', 'p2', 'ev-s8-2'));
is(scalar @{ events(sync($wb)) }, 1, 'B, which never acknowledged, still gets events');
is_deeply(syncerrors($wc), [], 'no syncerror');
$main::HOLD = [$wb, $wc];
--- response_body_like: "connections":2,



=== TEST 9: cast_ack_timeout is checked by nginx -t
--- config
cast_ack_timeout 0;
--- must_die
--- error_log
invalid "cast_ack_timeout" "0": a time above 0, or "off"
--- no_error_log
[alert]
--- cast_local_only: a configuration error; no hub starts
