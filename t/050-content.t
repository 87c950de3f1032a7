# FHIRcast content sharing (SPEC 4, reference fhircast-stu3.md 4.4 and 5;
# checklist items 9.41-9.54, 9.61, 9.64, 9.65), in local and in Redis mode:
# versions on opens, *-update against the current version, its Bundle all
# or nothing, the content Bundle of GET {base}/{topic}.  Blocks are named
# by the checklist items they cover.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use CastMode;
use CastFhir;
use IO::Socket::INET ();
use IO::Select ();

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

# the one event a socket got since the last sync, decoded
sub one {
    my ($ws, $what) = @_;
    my $got = events(sync($ws));
    # a slow run (valgrind, ASan, a loaded machine): wait longer for it
    $got = events(sync($ws, 3)) if !@$got;
    Test::More::is(scalar @$got, 1, "$what: one event") or Test::More::diag(Test::More::explain($got));
    return $got->[0] || {};
}

sub version_of { $_[0]->{event}{'context.versionId'} }

# the content Bundle of a GET {base}/{topic} reply
sub content_bundle {
    my ($ctx) = @_;
    my @b = grep { ($_->{key} || '') eq 'content' } @{ $ctx->{context} || [] };
    Test::More::is(scalar @b, 1, 'exactly one "content" entry');
    return $b[0] ? $b[0]{resource} : {};
}

sub entry_ids {
    my ($bundle) = @_;
    return join ',', sort map { "$_->{resource}{resourceType}/$_->{resource}{id}" }
        @{ $bundle->{entry} || [] };
}

run_tests();

__DATA__

=== TEST 1: 9.46 every *-open gets a context.versionId, unique within the topic; GET has the same one
--- config
--- init
package main;
my $s = subscribe_ok('c1', 'DiagnosticReport-open,Patient-open');
my $ws = connect_ready($s);
is(publish(open_ev('c1', 'r1')), 202, 'DiagnosticReport-open: 202');
my $e1 = one($ws, 'open r1');
like(version_of($e1), uuid_re(), 'the distributed open carries context.versionId (a UUID)');
is(context('c1')->{'context.versionId'}, version_of($e1), 'GET: the same context.versionId');
is(publish(open_ev('c1', 'r2')), 202, 'a second open: 202');
my $e2 = one($ws, 'open r2');
like(version_of($e2), uuid_re(), 'the second open has one too');
isnt(version_of($e2), version_of($e1), 'two opens: different versions');
is(publish(open_ev('c1', 'p1', type => 'Patient')), 202, 'Patient-open: 202');
my $e3 = one($ws, 'Patient-open');
like(version_of($e3), uuid_re(), 'a Patient-open gets one too');
# the publisher's own context.versionId is replaced, not duplicated
is(publish(open_ev('c1', 'r3', version => 'mine')), 202, 'an open with its own version: 202');
my $raw = sync($ws)->[0] || '';
my @n = $raw =~ /"context\.versionId"/g;
is(scalar @n, 1, 'the event has one context.versionId member');
unlike($raw, qr/"mine"/, 'the publisher\'s value is replaced');
$main::HOLD = $ws;
--- response_body_like: "connections":1,



=== TEST 2: 9.47 9.49 9.52 an update made against the current version is accepted and distributed with a new version, the prior one, the same id and Bundle id
--- config
--- init
package main;
my $a = subscribe_ok('c2', 'DiagnosticReport-open,DiagnosticReport-update');
my $b = subscribe_ok('c2', 'DiagnosticReport-update');
my ($wa, $wb) = map { connect_ready($_) } ($a, $b);
publish(open_ev('c2', 'r1'));
my $v0 = version_of(one($wa, 'open'));
my $body = update_ev('c2', 'r1', $v0, [put('Observation', 'o1', status => 'preliminary')],
                     id => 'upd-c2-1', bundle => 'bundle-c2');
my ($code, $resp) = publish($body);
is($code, 202, 'the update: 202');
is($resp, '{}', 'the update: {}');
my ($ua, $ub) = (one($wa, 'update at a'), one($wb, 'update at b'));
my $v1 = version_of($ua);
like($v1, uuid_re(), 'the distributed update has a context.versionId');
isnt($v1, $v0, '... a new one');
is($ua->{event}{'context.priorVersionId'}, $v0, 'context.priorVersionId: the version it was made against');
is($ua->{id}, 'upd-c2-1', 'the same event id');
my $sent = json_decode($body);
is_deeply($ua->{event}{context}, $sent->{event}{context}, 'the context as published (the same Bundle id and entries)');
is($ua->{event}{context}[2]{resource}{id}, 'bundle-c2', 'the same Bundle id');
is_deeply($ub, $ua, 'every subscriber gets the same event');
is(context('c2')->{'context.versionId'}, $v1, 'GET: the new version');
# and a second update against that one
is(publish(update_ev('c2', 'r1', $v1, [put('Observation', 'o2')])), 202, 'the next update, against the new version: 202');
my $u2 = one($wa, 'second update');
is($u2->{event}{'context.priorVersionId'}, $v1, 'its prior version: the first update\'s');
$main::HOLD = [$wa, $wb];
--- response_body_like: "connections":2,



=== TEST 3: 9.48 9.64 an update against a stale version gets 409, nothing is distributed, nothing changes
--- config
--- init
package main;
my $s = subscribe_ok('c3', 'DiagnosticReport-open,DiagnosticReport-update');
my $ws = connect_ready($s);
publish(open_ev('c3', 'r1'));
my $v0 = version_of(one($ws, 'open'));
is(publish(update_ev('c3', 'r1', $v0, [put('Observation', 'o1')])), 202, 'the first update: 202');
my $v1 = version_of(one($ws, 'update'));
my ($code, $resp) = publish(update_ev('c3', 'r1', $v0, [put('Observation', 'o2')]));
is($code, 409, 'an update against the version before: 409');
like($resp, qr/^\{"error":"context\.versionId \\"\Q$v0\E\\" is not the current version \\"\Q$v1\E\\"/,
     'the error names both versions');
is_deeply(sync($ws), [], 'nothing distributed');
($code) = publish(update_ev('c3', 'r1', 'no-such-version', [put('Observation', 'o3')]));
is($code, 409, 'an unknown version: 409');
my $ctx = context('c3');
is($ctx->{'context.versionId'}, $v1, 'GET: the version is unchanged');
is(entry_ids(content_bundle($ctx)), 'Observation/o1', 'GET: the content is unchanged');
$main::HOLD = $ws;
--- response_body_like: "connections":1,
--- error_log
cast: 409 context.versionId



=== TEST 4: 9.50 9.82 an update is applied all or nothing; an invalid one is a 400 and changes nothing
--- config
--- init
package main;
my $s = subscribe_ok('c4', 'DiagnosticReport-open,DiagnosticReport-update');
my $ws = connect_ready($s);
publish(open_ev('c4', 'r1'));
my $v0 = version_of(one($ws, 'open'));
is(publish(update_ev('c4', 'r1', $v0, [put('Observation', 'o1'), put('Observation', 'o2')])), 202, 'an update: 202');
my $v1 = version_of(one($ws, 'update'));
my @bad = (
    [[put('Observation', 'o3'), del('DiagnosticReport/r1')], 'a valid PUT and a DELETE of the opened report', qr/in the opened context/],
    [[put('Observation', 'o3'), del('Patient/p-r1')], 'a DELETE of the opened patient', qr/in the opened context/],
    [[put('Observation', 'o3'), { request => { method => 'DELETE' } }], 'a DELETE without fullUrl', qr/fullUrl/],
    [[del('Observation/o1'), del('Observation/nope')], 'a DELETE of a resource not in the content', qr/not in the shared content/],
    [[put('Observation', 'o3'), { request => { method => 'POST' }, resource => { resourceType => 'Observation', id => 'o4' } }], 'a POST entry', qr/not PUT or DELETE/],
    [[put('Observation', 'o3'), { request => { method => 'PUT' }, resource => { resourceType => 'Observation' } }], 'a PUT without id', qr/resourceType and id/],
    [[put('Observation', 'o3'), put('Observation', 'o3')], 'a resource twice', qr/appears twice/],
    [[put('Observation', 'o3'), { resource => { resourceType => 'Observation', id => 'o5' } }], 'an entry without request', qr/request\.method/],
);
for my $b (@bad) {
    my ($code, $resp) = publish(update_ev('c4', 'r1', $v1, $b->[0]));
    is($code, 400, "$b->[1]: 400");
    like($resp, $b->[2], "$b->[1]: the reason");
}
my ($code, $resp) = publish(update_ev('c4', 'r1', $v1, [put('Observation', 'o3')], bundle_type => 'batch'));
is($code, 400, 'a Bundle of type batch: 400');
($code, $resp) = publish(update_ev('c4', 'r1', undef, [put('Observation', 'o3')]));
is($code, 400, 'no context.versionId: 400');
like($resp, qr/context\.versionId/, '... naming it');
my $no_updates = json_decode(update_ev('c4', 'r1', $v1, []));
splice @{ $no_updates->{event}{context} }, 2, 1;
($code) = publish($no_updates);
is($code, 400, 'no "updates" entry: 400');
my $no_report = json_decode(update_ev('c4', 'r1', $v1, []));
shift @{ $no_report->{event}{context} };
($code, $resp) = publish($no_report);
is($code, 400, 'no "report" reference: 400');
is_deeply(sync($ws), [], 'nothing distributed');
my $ctx = context('c4');
is($ctx->{'context.versionId'}, $v1, 'the version is unchanged');
is(entry_ids(content_bundle($ctx)), 'Observation/o1,Observation/o2', 'the content is unchanged');
# and a valid one still goes through
is(publish(update_ev('c4', 'r1', $v1, [del('Observation/o1'), put('Observation', 'o3')])), 202, 'then a valid one: 202');
is(entry_ids(content_bundle(context('c4'))), 'Observation/o2,Observation/o3', 'its DELETE and PUT applied');
$main::HOLD = $ws;
--- response_body_like: "connections":1,



=== TEST 5: 9.44 9.45 GET: the context as opened, the content as updated, one Bundle of type collection without request elements
--- config
--- init
package main;
publish(open_ev('c5', 'r1'));
my $ctx = context('c5');
is($ctx->{'context.type'}, 'DiagnosticReport', 'context.type');
my $bundle = content_bundle($ctx);
is($bundle->{resourceType}, 'Bundle', 'a Bundle');
is($bundle->{type}, 'collection', 'of type collection');
like($bundle->{id}, uuid_re(), 'with an id');
ok(!exists $bundle->{entry}, 'no content yet: no entries');
my $v0 = $ctx->{'context.versionId'};
is(publish(update_ev('c5', 'r1', $v0, [put('DiagnosticReport', 'r1', status => 'final'),
                                       put('Observation', 'o1', status => 'preliminary')])), 202, 'an update: 202');
my $c2 = context('c5');
my @report = grep { $_->{key} eq 'report' } @{ $c2->{context} };
is($report[0]{resource}{status}, 'preliminary', 'the context array keeps the report as opened');
my $b2 = content_bundle($c2);
is($b2->{id}, $bundle->{id}, 'the same Bundle id');
is(entry_ids($b2), 'DiagnosticReport/r1,Observation/o1', 'the content: the updated report and the observation');
my ($r) = grep { $_->{resource}{resourceType} eq 'DiagnosticReport' } @{ $b2->{entry} };
is($r->{resource}{status}, 'final', 'the report in the content is the updated one');
ok(!(grep { exists $_->{request} } @{ $b2->{entry} }), 'no entry has a request element');
is(scalar(grep { $_->{key} ne 'content' } @{ $c2->{context} }), 2, 'the context entries as opened, plus "content"');
--- response_body_like: "mode":"(local|redis)"



=== TEST 6: 9.53 an update that would take the topic past cast_max_context_size is refused with 413 and changes nothing
--- config
cast_max_context_size 4k;
--- init
package main;
my $s = subscribe_ok('c6', 'DiagnosticReport-update');
my $ws = connect_ready($s);
publish(open_ev('c6', 'r1'));
my $v0 = context('c6')->{'context.versionId'};
is(publish(update_ev('c6', 'r1', $v0, [put('Observation', 'o1', note => 'x' x 1000)])), 202, 'a small update: 202');
my $v1 = context('c6')->{'context.versionId'};
my ($code, $resp) = publish(update_ev('c6', 'r1', $v1, [put('Observation', 'o2', note => 'y' x 4000)]));
is($code, 413, 'a large one: 413');
like($resp, qr/cast_max_context_size/, 'naming the limit');
my $ctx = context('c6');
is($ctx->{'context.versionId'}, $v1, 'the version is unchanged');
is(entry_ids(content_bundle($ctx)), 'Observation/o1', 'the content is unchanged');
is(scalar(grep { /DiagnosticReport-update/ } @{ sync($ws) }), 1, 'only the first update was distributed');
$main::HOLD = $ws;
--- response_body_like: "connections":1,



=== TEST 7: 9.54 9.61 updates of a context that is not current, or not open, are refused (supportsNonCurrentContextUpdates false)
--- config
--- init
package main;
publish(open_ev('c7', 'r1'));
my $v1 = context('c7')->{'context.versionId'};
publish(open_ev('c7', 'r2'));
my ($code, $resp) = publish(update_ev('c7', 'r1', $v1, [put('Observation', 'o1')]));
is($code, 409, 'an update of r1 (open, not current) with its own version: 409');
like($resp, qr{DiagnosticReport/r1 is not the current context}, '... saying so');
($code, $resp) = publish(update_ev('c7', 'r9', $v1, [put('Observation', 'o1')]));
is($code, 409, 'an update of a report that is not open: 409');
like($resp, qr{DiagnosticReport/r9 is not open}, '... saying so');
my (undef, undef, $disc) = http_request('GET', '/fhircast/hub/.well-known/fhircast-configuration');
my $d = json_decode($disc);
is($d->{capabilities}{supportsNonCurrentContextUpdates}, JSON::PP::false(), 'discovery: supportsNonCurrentContextUpdates false');
ok((grep { $_ eq 'DiagnosticReport-update' } @{ $d->{eventsSupported} }), 'discovery: DiagnosticReport-update is supported');
--- response_body_like: "mode":"(local|redis)"



=== TEST 8: 9.65 content is discarded when its anchor closes; a re-open while open keeps it
--- config
--- init
package main;
publish(open_ev('c8', 'r1'));
my $v0 = context('c8')->{'context.versionId'};
is(publish(update_ev('c8', 'r1', $v0, [put('Observation', 'o1')])), 202, 'an update: 202');
my $b1 = content_bundle(context('c8'));
# re-opened while still open (a tab switch): same Bundle, same content, a new version
publish(open_ev('c8', 'r2'));
publish(open_ev('c8', 'r1'));
my $c = context('c8');
isnt($c->{'context.versionId'}, $v0, 're-open: a new version');
my $b2 = content_bundle($c);
is($b2->{id}, $b1->{id}, 're-open while open: the same Bundle');
is(entry_ids($b2), 'Observation/o1', 're-open while open: the content kept');
# closed, then opened again: empty
is(publish(close_ev('c8', 'r1')), 202, 'close r1: 202');
is_deeply(context('c8'), { 'context.type' => '', context => [] }, 'closed: no current context');
publish(open_ev('c8', 'r1'));
my $b3 = content_bundle(context('c8'));
ok(!exists $b3->{entry}, 'opened again after its close: no content');
isnt($b3->{id}, $b1->{id}, '... in a new Bundle');
--- response_body_like: "mode":"(local|redis)"



=== TEST 9: a socket that binds after updates gets the open replayed with the current version
--- config
--- init
package main;
publish(open_ev('c9', 'r1', id => 'open-c9'));
my $v0 = context('c9')->{'context.versionId'};
publish(update_ev('c9', 'r1', $v0, [put('Observation', 'o1')]));
my $v1 = context('c9')->{'context.versionId'};
isnt($v1, $v0, 'the update changed the version');
my $s = subscribe_ok('c9', 'DiagnosticReport-open');
my $ws = connect_ready($s);
my $r = one($ws, 'the replay');
is($r->{id}, 'open-c9', 'the replay is the open event');
is(version_of($r), $v1, 'with the current version');
$main::HOLD = $ws;
--- response_body_like: "connections":1,



=== TEST 10: updates sent on the socket: the same rules; a refusal comes back as an error frame with the reason
--- config
--- init
package main;
my $s = subscribe_ok('c10', 'DiagnosticReport-open,DiagnosticReport-update');
my $ws = connect_ready($s);
# Redis mode: an event appended before this worker's SUBSCRIBE to the
# topic took effect in Redis never reaches the socket (a race of the Redis
# store when a worker starts to listen to a topic, reported); let the
# SUBSCRIBE through first
is_deeply(sync($ws), [], 'no replay');
$ws->send_text(open_ev('c10', 'r1'));
my $v0 = version_of(one($ws, 'the open, published on the socket'));
like($v0, uuid_re(), 'an open published on the socket gets a version');
$ws->send_text(update_ev('c10', 'r1', $v0, [put('Observation', 'o1')], id => 'sock-upd-1'));
my $u = one($ws, 'the update');
is($u->{event}{'context.priorVersionId'}, $v0, 'accepted: prior version');
$ws->send_text(update_ev('c10', 'r1', $v0, [put('Observation', 'o2')], id => 'sock-upd-2'));
my $err = one($ws, 'the stale update');
is($err->{id}, 'sock-upd-2', 'an error frame for the stale update');
like($err->{error} || '', qr/is not the current version/, 'with the reason');
$ws->send_text(update_ev('c10', 'r1', version_of($u), [del('Patient/p-r1')], id => 'sock-upd-3'));
$err = one($ws, 'the invalid update');
like($err->{error} || '', qr/in the opened context/, 'an invalid one: the reason');
$main::HOLD = $ws;
--- response_body_like: "connections":1,



=== TEST 11: the cast dialect: content sharing is off unless configured: opens are forwarded as sent, *-update events as any event
--- config
location /cast-shared { cast_hub; cast_content_sharing on; }
--- init
package main;
my $s = subscribe_ok('c11', 'DiagnosticReport-open,DiagnosticReport-update,annotation-update', -base => '/api/hub');
my $ws = connect_ready($s, cast => 1);
my $open = open_ev('c11', 'r1');
is(publish($open, '/api/hub'), 200, 'cast: the open: 200');
is_deeply(sync($ws), [$open], 'cast: forwarded byte for byte, no version added');
my $upd = update_ev('c11', 'r1', undef, [put('Observation', 'o1')], name => 'annotation-update');
is(publish($upd, '/api/hub'), 200, 'cast: an annotation-update without a version: 200');
is_deeply(sync($ws), [$upd], 'forwarded byte for byte');
my $dr = update_ev('c11', 'r1', undef, [put('Observation', 'o1')]);
is(publish($dr, '/api/hub'), 200, 'cast: a DiagnosticReport-update without a version: 200 (not content sharing)');
is_deeply(sync($ws), [$dr], 'forwarded byte for byte');
# with cast_content_sharing on, the cast dialect shares content too
is(publish(open_ev('c11', 'r2'), '/cast-shared'), 200, 'cast_content_sharing on: the open: 200');
my $e = one($ws, 'the open');
my $v = version_of($e);
like($v, uuid_re(), 'the open gets a version');
is(publish(update_ev('c11', 'r2', 'stale', [put('Observation', 'o1')]), '/cast-shared'), 409, 'an update made against another version: 409');
is(publish(update_ev('c11', 'r2', $v, [put('Observation', 'o1')]), '/cast-shared'), 200, 'against the current one: 200');
is(one($ws, 'the update')->{event}{'context.priorVersionId'}, $v, 'distributed with its prior version');
my (undef, undef, $disc) = http_request('GET', '/api/hub/.well-known/fhircast-configuration');
ok(!(grep { $_ eq 'DiagnosticReport-update' } @{ json_decode($disc)->{eventsSupported} }), 'discovery of the cast {base}: no DiagnosticReport-update');
(undef, undef, $disc) = http_request('GET', '/cast-shared/.well-known/fhircast-configuration');
ok((grep { $_ eq 'DiagnosticReport-update' } @{ json_decode($disc)->{eventsSupported} }), 'with cast_content_sharing on: listed');
$main::HOLD = $ws;
--- response_body_like: "connections":1,



=== TEST 12: 9.51 concurrent updates against the same version: exactly one is accepted, the others get 409
--- config
--- init
package main;
my $s = subscribe_ok('c12', 'DiagnosticReport-update');
my $ws = connect_ready($s);
publish(open_ev('c12', 'r1'));
my @codes;
for my $round (1 .. 5) {
    my $v = context('c12')->{'context.versionId'};
    # 8 connections (spread over the workers), written before any is read
    my @socks;
    for my $i (1 .. 8) {
        my $body = update_ev('c12', 'r1', $v, [put('Observation', "o-$round-$i")]);
        my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => CastTest::server_port(),
                                         Proto => 'tcp', Timeout => 5) or die "connect: $!";
        binmode $sock;
        push @socks, [$sock, "POST /fhircast/hub HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                             . "Content-Type: application/json\r\nContent-Length: " . length($body)
                             . "\r\n\r\n$body"];
    }
    syswrite($_->[0], $_->[1]) for @socks;
    my @round;
    for my $s (@socks) {
        my $resp = '';
        my $sel = IO::Select->new($s->[0]);
        while ($sel->can_read(5)) {
            my $n = sysread($s->[0], my $buf, 65536);
            last if !$n;
            $resp .= $buf;
        }
        push @round, $resp =~ m{^HTTP/1\.1 (\d+)} ? $1 : 'none';
    }
    push @codes, join ',', sort @round;
}
is_deeply(\@codes, [('202,409,409,409,409,409,409,409') x 5], 'each round: one 202, seven 409');
my $got = events(sync($ws));
is(scalar @$got, 5, 'five updates distributed');
my @chain = map { [$_->{event}{'context.priorVersionId'}, $_->{event}{'context.versionId'}] } @$got;
my $ok = 1;
for my $i (1 .. $#chain) { $ok = 0 if $chain[$i][0] ne $chain[$i - 1][1] }
ok($ok, 'each one made against the version the one before made');
is(entry_ids(content_bundle(context('c12'))) =~ tr/,//, 4, 'five resources in the content');
$main::HOLD = $ws;
--- response_body_like: "connections":1,



=== TEST 13: an open whose text the splicer does not take (an escaped key in "event") is serialized: the version is there all the same, and updated
--- config
--- init
package main;
my $s = subscribe_ok('c13', 'DiagnosticReport-open');
my $ws = connect_ready($s);
my $body = open_ev('c13', 'r1', id => 'open-c13');
$body =~ s/"hub\.event"/"hub\\u002eevent"/ or die 'no hub.event';
is(publish($body), 202, 'the open: 202');
my $e = one($ws, 'the open');
my $v0 = version_of($e);
like($v0, uuid_re(), 'a version');
is($e->{event}{'hub.event'}, 'DiagnosticReport-open', 'the event as published');
is(publish(update_ev('c13', 'r1', $v0, [put('Observation', 'o1')])), 202, 'an update: 202');
my $v1 = context('c13')->{'context.versionId'};
my $late = subscribe_ok('c13', 'DiagnosticReport-open');
my $wl = connect_ready($late);
is(version_of(one($wl, 'the replay')), $v1, 'the replay has the version of the update');
$main::HOLD = [$ws, $wl];
--- response_body_like: "connections":2,
