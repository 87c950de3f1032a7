# The hub conformance checklist of reference fhircast-stu3.md 9, in the
# fhircast dialect, in local and in Redis mode: one block per item (or a
# few related items), named by the item numbers.  Content sharing is in
# t/050-content.t (9.41-9.54, 9.61, 9.64, 9.65, 9.82), acks and SyncError
# in t/051-syncerror.t (9.25-9.32, 9.55, 9.56, 9.72), the race across
# hosts in t/053 (9.51).  Items that do not apply (OAuth: 9.10, 9.38,
# 9.67, 9.79; webhook: 9.76; a TLS listener: 9.2 is also in t/040) are
# listed in the README's FHIRcast section with the reason.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use CastMode;
use CastFhir;
use Time::HiRes ();

no_shuffle();
repeat_each(1);

our $HOLD;

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . <<'_EOC_');
    location /fhircast/hub { cast_hub; cast_dialect fhircast; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

sub post_form {
    my ($body, %h) = @_;
    return http_request('POST', '/fhircast/hub', $body,
                        'Content-Type' => 'application/x-www-form-urlencoded', %h);
}

sub names {
    my ($frames) = @_;
    my @e = map { ref $_ ? $_ : @{ events([$_]) } } @$frames;
    return join ',', map { $_->{event}{'hub.event'} || $_->{'hub.mode'} || '?' } @e;
}

sub patient { open_ev($_[0], $_[1], type => 'Patient', id => $_[2]) }

run_tests();

__DATA__

=== TEST 1: 9.1 9.4 9.5 9.58 every HTTP answer is JSON (application/json), errors with a readable reason, no 3xx
--- config
--- init
package main;
my @req = (
    ['POST', '/fhircast/hub', form('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket', 'hub.topic' => 'k1', 'hub.events' => 'Patient-open'), 'application/x-www-form-urlencoded', 202],
    ['POST', '/fhircast/hub', form('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket', 'hub.events' => 'Patient-open'), 'application/x-www-form-urlencoded', 400],
    ['POST', '/fhircast/hub', form('hub.mode' => 'unsubscribe', 'hub.channel.type' => 'websocket', 'hub.topic' => 'k1', 'hub.channel.endpoint' => 'wss://x/bind/' . ('0' x 32)), 'application/x-www-form-urlencoded', 404],
    ['POST', '/fhircast/hub', patient('k1', 'p1'), 'application/json', 202],
    ['POST', '/fhircast/hub', '{"event":', 'application/json', 400],
    ['GET', '/fhircast/hub/k1', undef, undef, 200],
    ['GET', '/fhircast/hub/.well-known/fhircast-configuration', undef, undef, 200],
);
for my $r (@req) {
    my ($code, $h, $body) = http_request($r->[0], $r->[1], $r->[2], $r->[3] ? ('Content-Type' => $r->[3]) : ());
    is($code, $r->[4], "$r->[0] $r->[1]: $r->[4]");
    like($h->{'content-type'} || '', qr{^application/json}, '... application/json');
    my $j = eval { json_decode($body) };
    ok($j, '... a JSON body');
    like($j->{error}, qr/\w{4}/, '... an error says why') if $code >= 400;
}
--- response_body_like: "mode":"(local|redis)"



=== TEST 2: 9.6 9.57 refused subscriptions get 4xx: no hub.topic, a bad hub.mode, hub.channel.type webhook or missing
--- config
--- init
package main;
my %ok = ('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket', 'hub.topic' => 'k2', 'hub.events' => 'Patient-open');
for my $case (['hub.topic', undef], ['hub.mode', 'listen'], ['hub.channel.type', 'webhook'], ['hub.channel.type', undef], ['hub.events', undef]) {
    my %f = (%ok, $case->[0] => $case->[1]);
    delete $f{$case->[0]} if !defined $case->[1];
    my ($code, undef, $body) = post_form(form(%f));
    is($code, 400, "$case->[0] " . ($case->[1] // 'missing') . ': 400');
}
--- response_body_like: "subscriptions":0,



=== TEST 3: 9.7 9.8 9.2 a subscribe gets 202 and an endpoint of 128 random bits, never the same; behind TLS (cast_public_url https) it is wss://
--- config
location /tls/hub { cast_hub; cast_dialect fhircast; cast_public_url https://hub.example.org; }
--- init
package main;
my %seen;
my $bad = 0;
for my $i (1 .. 300) {
    my $s = subscribe("k3-" . ($i % 7), 'Patient-open');
    $bad++ if $s->{code} != 202;
    my ($id) = ($s->{endpoint} || '') =~ m{/bind/([0-9a-f]{32})$};
    $bad++ if !$id;
    $seen{$id // ''}++;
}
is($bad, 0, '300 subscribes: 202 with an endpoint /bind/<32 hex digits>');
is(scalar keys %seen, 300, '300 distinct endpoints');
my @ids = sort keys %seen;
my $seq = grep { hex(substr($ids[$_], -8)) == hex(substr($ids[$_ - 1], -8)) + 1 } 1 .. $#ids;
is($seq, 0, 'no two in sequence');
my $s = subscribe('k3', 'Patient-open', -base => '/tls/hub');
like($s->{endpoint}, qr{^wss://hub\.example\.org/bind/[0-9a-f]{32}$}, 'behind TLS: a wss:// endpoint');
--- response_body_like: "mode":"(local|redis)"



=== TEST 4: 9.9 9.11 9.13 9.37 repeated events are one; re-subscribing is allowed; names match case-insensitively both ways
--- config
--- init
package main;
my $s = subscribe_ok('k4', 'Patient-open,patient-OPEN,Patient-open');
my $ws = CastTest::WS->connect($s->{path});
my $conf = $ws->recv_json(3);
is($conf->{'hub.events'}, 'Patient-open', 'the confirmation lists the event once');
publish(patient('k4', 'p1', 'ev-k4-1'));
is(scalar @{ sync($ws) }, 1, 'one event: one delivery');
my $again = subscribe('k4', 'Patient-open');
my $again2 = subscribe('k4', 'Patient-open');
is("$again->{code} $again2->{code}", '202 202', 'the same subscribe twice: 202 twice');
my $lower = subscribe_ok('k4', 'patient-open');
my $wl = connect_ready($lower);
is(names(sync($wl)), 'Patient-open', 'the replay of p1');
is(publish(open_ev('k4', 'p2', type => 'patient-OPEN' =~ s/-OPEN//r, id => 'ev-k4-2') =~ s/"patient-open"/"Patient-open"/r), 202, 'Patient-open published');
is(names(sync($wl)), 'Patient-open', 'a patient-open subscription gets Patient-open');
my $odd = json_decode(patient('k4', 'p3', 'ev-k4-3'));
$odd->{event}{'hub.event'} = 'patient-OPEN';
is(publish(json_encode($odd)), 202, 'patient-OPEN published: 202');
is(names(sync($ws)), 'Patient-open,patient-OPEN', 'the Patient-open subscription gets it (and the one before), as spelled');
$main::HOLD = [$ws, $wl];
--- response_body_like: "connections":2,



=== TEST 5: 9.12 a later subscribe with the endpoint replaces the events: only the new ones are delivered
--- config
--- init
package main;
my $s = subscribe_ok('k5', 'Patient-open');
my $ws = connect_ready($s);
my ($code) = hub_form('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket', 'hub.topic' => 'k5',
                      'hub.events' => 'ImagingStudy-open', 'hub.channel.endpoint' => $s->{endpoint});
is($code, 202, 're-subscribe with the endpoint and new events: 202');
my $got = events(sync($ws));
is($got->[0] && $got->[0]{'hub.events'}, 'ImagingStudy-open', 'a new confirmation with the new events');
publish(patient('k5', 'p1', 'ev-k5-1'));
publish(open_ev('k5', 's1', type => 'ImagingStudy', id => 'ev-k5-2'));
is(names(sync($ws)), 'ImagingStudy-open', 'only the new events are delivered');
$main::HOLD = $ws;
--- response_body_like: "connections":1,



=== TEST 6: 9.3 9.14 9.24 9.23 9.35 9.36 the confirmation first; every frame is JSON text; both subscribers and the requester get the event with its id, timestamp and event fields
--- config
--- init
package main;
my $a = subscribe_ok('k6', 'Patient-open,Patient-close');
my $b = subscribe_ok('k6', 'Patient-open');
my $wa = CastTest::WS->connect($a->{path});
my ($op, $p) = $wa->recv_frame(3);
is($op, 1, 'a text frame');
my $conf = eval { json_decode($p) };
my $lease = delete $conf->{'hub.lease_seconds'};
is_deeply($conf, { 'hub.mode' => 'subscribe', 'hub.topic' => 'k6', 'hub.events' => 'Patient-open,Patient-close' }, 'first: the confirmation');
ok(defined $lease && $lease =~ /^\d+$/ && $lease > 3500, 'hub.lease_seconds: a number');
my $wb = connect_ready($b);
my $body = patient('k6', 'p1', 'ev-k6-1');
$wa->send_text($body);
my @frames;
for my $ws ($wa, $wb) {
    $ws->send_ping('x');
    while (my ($o, $pl) = $ws->recv_frame(3)) {
        last if $o == 10;
        push @frames, [$o, $pl];
    }
}
is(scalar @frames, 2, 'the requester and the other subscriber: one frame each');
is(scalar(grep { $_->[0] == 1 && eval { json_decode($_->[1]) } } @frames), 2, 'JSON text frames');
my $e = json_decode($frames[0][1]);
is($e->{id}, 'ev-k6-1', 'the request\'s id');
is($e->{timestamp}, '2026-12-04T10:00:00.000Z', 'its timestamp');
is($e->{event}{'hub.topic'}, 'k6', 'hub.topic');
is($e->{event}{'hub.event'}, 'Patient-open', 'hub.event');
is_deeply($e->{event}{context}, json_decode($body)->{event}{context}, 'context');
$main::HOLD = [$wa, $wb];
--- response_body_like: "connections":2,



=== TEST 7: 9.15 when the lease expires the socket gets the denial and is closed; later events are not sent
--- config
--- init
package main;
my $s = subscribe_ok('k7', 'Patient-open', 'hub.lease_seconds' => 2);
my $ws = connect_ready($s);
my $t0 = Time::HiRes::time();
my ($op, $p) = $ws->recv_frame(5);
my $d = $op && $op == 1 ? json_decode($p) : {};
is_deeply($d, { 'hub.mode' => 'denied', 'hub.topic' => 'k7', 'hub.events' => 'Patient-open', 'hub.reason' => 'lease expired' }, 'the denial "lease expired"');
ok(Time::HiRes::time() - $t0 < 3.5, 'within the lease and a second');
($op) = $ws->recv_frame(3);
is($op, 8, 'then Close');
publish(patient('k7', 'p1', 'ev-k7-1'));
my @more = $ws->recv_frame(1);
ok(!@more, 'nothing after');
--- response_body_like: "connections":0,



=== TEST 8: 9.16 9.17 the latest open per anchor type is replayed after the confirmation, with its id and timestamp; nothing not subscribed is sent
--- config
--- init
package main;
publish(patient('k8', 'p1', 'ev-k8-p1'));
publish(open_ev('k8', 's1', type => 'ImagingStudy', id => 'ev-k8-s1'));
publish(patient('k8', 'p2', 'ev-k8-p2'));
publish(CastTest::json_encode({ id => 'ev-k8-sync', timestamp => '2026-12-04T10:00:00Z', event => { 'hub.topic' => 'k8', 'hub.event' => 'syncerror', context => [] } }));
my $s = subscribe_ok('k8', 'Patient-open,heartbeat-no');
my $ws = connect_ready($s);
my $got = events(sync($ws));
is(join(',', map { $_->{id} } @$got), 'ev-k8-p2', 'the latest Patient-open only (no ImagingStudy-open, no syncerror)');
is($got->[0]{timestamp}, '2026-12-04T10:00:00.000Z', 'with its timestamp');
publish(open_ev('k8', 's2', type => 'ImagingStudy', id => 'ev-k8-s2'));
my $live = events(sync($ws, 0.5));
ok(!(grep { $_->{id} eq 'ev-k8-s2' } @$live), 'a live ImagingStudy-open is not sent either');
is(names($live), 'Patient-open', '(its patient comes as a derived Patient-open: 9.33)');
$main::HOLD = $ws;
--- response_body_like: "connections":1,



=== TEST 9: 9.18 9.19 9.20 9.21 9.22 unsubscribe: 202 with the endpoint, the denial and Close on the socket; a garbage endpoint 4xx; a new subscription gets a new endpoint, the old one is gone
--- config
--- init
package main;
my $s = subscribe_ok('k9', 'Patient-open');
my $ws = connect_ready($s);
my ($code, $body) = hub_form('hub.mode' => 'unsubscribe', 'hub.channel.type' => 'websocket', 'hub.topic' => 'k9', 'hub.channel.endpoint' => $s->{endpoint});
is($code, 202, 'unsubscribe: 202');
is_deeply(json_decode($body), { 'hub.channel.endpoint' => $s->{endpoint} }, 'with the endpoint');
my $got = sync($ws);
is_deeply(events([$got->[0] || '{}'])->[0], { 'hub.mode' => 'denied', 'hub.topic' => 'k9', 'hub.events' => 'Patient-open', 'hub.reason' => 'unsubscribed' }, 'the denial');
is($got->[1], 'close 1000', 'then Close 1000');
($code) = hub_form('hub.mode' => 'unsubscribe', 'hub.channel.type' => 'websocket', 'hub.topic' => 'k9', 'hub.channel.endpoint' => 'garbage');
ok($code >= 400 && $code < 500, "a garbage endpoint: $code");
my $n = subscribe_ok('k9', 'Patient-open');
isnt($n->{endpoint}, $s->{endpoint}, 'a new subscription: a new endpoint');
eval { CastTest::WS->connect($s->{path}) };
like($@, qr/status 404/, 'the old endpoint: 404');
--- response_body_like: "mode":"(local|redis)"



=== TEST 10: 9.33 9.62 9.63 derived opens: a Patient-open-only subscriber gets a Patient-open with the patient of an Encounter-open or DiagnosticReport-open; once; nothing for one that gets the original
--- config
--- init
package main;
my $p = subscribe_ok('k10', 'Patient-open,syncerror');
my $st = subscribe_ok('k10', 'ImagingStudy-open');
my $all = subscribe_ok('k10', 'Patient-open,Encounter-open,DiagnosticReport-open');
my ($wp, $ws, $wa) = map { connect_ready($_) } ($p, $st, $all);
my $enc = json_encode({ timestamp => '2026-12-04T11:00:00.000Z', id => 'ev-k10-enc', event => { 'hub.topic' => 'k10', 'hub.event' => 'Encounter-open',
    context => [{ key => 'encounter', resource => { resourceType => 'Encounter', id => 'e1' } },
                { key => 'patient', resource => { resourceType => 'Patient', id => 'p1', identifier => [{ value => '1234' }] } }] } });
is(publish($enc), 202, 'Encounter-open: 202');
my $got = events(sync($wp));
is(scalar @$got, 1, 'the Patient-open subscriber gets one event');
my $d = $got->[0] || {};
is($d->{event}{'hub.event'}, 'Patient-open', 'a Patient-open');
is_deeply($d->{event}{context}, [{ key => 'patient', resource => { resourceType => 'Patient', id => 'p1', identifier => [{ value => '1234' }] } }], 'with the same patient');
like($d->{id}, uuid_re(), 'a new id');
isnt($d->{id}, 'ev-k10-enc', '... not the original\'s');
is($d->{timestamp}, '2026-12-04T11:00:00.000Z', 'the original timestamp');
is($d->{event}{'hub.topic'}, 'k10', 'the topic');
is_deeply(sync($ws), [], 'the ImagingStudy-open subscriber: nothing (no study in it)');
is(names(sync($wa)), 'Encounter-open', 'a subscriber of both: the original only, no duplicate');
# a DiagnosticReport-open with a study: ImagingStudy-open with the study and the patient
my $dr = json_encode({ timestamp => '2026-12-04T12:00:00.000Z', id => 'ev-k10-dr', event => { 'hub.topic' => 'k10', 'hub.event' => 'DiagnosticReport-open',
    context => [{ key => 'report', resource => { resourceType => 'DiagnosticReport', id => 'r1' } },
                { key => 'study', resource => { resourceType => 'ImagingStudy', id => 's1' } },
                { key => 'patient', resource => { resourceType => 'Patient', id => 'p1' } }] } });
is(publish($dr), 202, 'DiagnosticReport-open: 202');
my $gs = events(sync($ws));
is(names($gs), 'ImagingStudy-open', 'the ImagingStudy-open subscriber gets an ImagingStudy-open');
is_deeply([map { $_->{key} } @{ $gs->[0]{event}{context} || [] }], ['study', 'patient'], 'with the study and the patient');
is(names(sync($wp)), 'Patient-open', 'the Patient-open subscriber: a Patient-open');
is(names(sync($wa)), 'DiagnosticReport-open', 'the subscriber of the original: it alone');
# a late subscriber: the derived open is replayed too
my $late = subscribe_ok('k10', 'ImagingStudy-open');
my $wl = connect_ready($late);
my $r = events(sync($wl));
is(names($r), 'ImagingStudy-open', 'a late ImagingStudy-open subscriber gets the derived open replayed');
is($r->[0]{event}{context}[0]{resource}{id}, 's1', '... of study s1');
# an ack of a derived open counts as any
my $c = subscribe_ok('k10', 'syncerror');
my $wc = connect_ready($c);
ack($wl, $r->[0]{id}, 409);
is(names(sync($wc)), 'syncerror', 'a 409 ack of a derived open: a syncerror');
$main::HOLD = [$wp, $ws, $wa, $wl, $wc];
--- response_body_like: "connections":5,



=== TEST 11: 9.34 a valid request 2xx, one without id or timestamp 4xx; 9.73 a select is forwarded
--- config
--- init
package main;
my $s = subscribe_ok('k11', 'DiagnosticReport-select');
my $ws = connect_ready($s);
my $e = json_decode(patient('k11', 'p1', 'ev-k11-1'));
is(publish(json_encode($e)), 202, 'valid: 202');
delete $e->{id};
my ($code) = publish(json_encode($e));
is($code, 400, 'no id: 400');
$e->{id} = 'x';
delete $e->{timestamp};
($code) = publish(json_encode($e));
is($code, 400, 'no timestamp: 400');
my $sel = update_ev('k11', 'r1', undef, [], name => 'DiagnosticReport-select', id => 'ev-k11-sel');
is(publish($sel), 202, 'DiagnosticReport-select: 202');
is(names(sync($ws)), 'DiagnosticReport-select', 'forwarded');
$main::HOLD = $ws;
--- response_body_like: "connections":1,



=== TEST 12: 9.39 9.40 9.59 9.60 discovery, also under a {base} with a path: JSON, eventsSupported, websocketSupport, fhircastVersion 3.0.0, both get-current flags
--- config
location /deep/path/fhircast { cast_hub; cast_dialect fhircast; }
--- init
package main;
for my $base ('/fhircast/hub', '/deep/path/fhircast') {
    my ($code, $h, $body) = http_request('GET', "$base/.well-known/fhircast-configuration");
    is($code, 200, "$base: 200");
    like($h->{'content-type'}, qr{^application/json}, 'application/json');
    my $d = json_decode($body);
    is(ref $d->{eventsSupported}, 'ARRAY', 'eventsSupported: an array');
    ok((grep { $_ eq 'Patient-open' } @{ $d->{eventsSupported} }), 'listing Patient-open');
    ok(!(grep { $_ eq 'annotation-update' } @{ $d->{eventsSupported} }), 'not Cast\'s own events (fhircast dialect)');
    is($d->{websocketSupport}, JSON::PP::true(), 'websocketSupport true');
    is($d->{fhircastVersion}, '3.0.0', 'fhircastVersion 3.0.0');
    is($d->{getCurrentSupport}, JSON::PP::true(), 'getCurrentSupport true');
    is($d->{capabilities}{supportsGetCurrentContext}, JSON::PP::true(), 'capabilities.supportsGetCurrentContext true');
}
--- response_body_like: "mode":"(local|redis)"



=== TEST 13: 9.77 9.78 9.80 strict: a JSON subscription body 415, a field twice 400, an unsubscribe without endpoint 400
--- config
--- init
package main;
my ($code) = http_request('POST', '/fhircast/hub', '{"hub.mode":"subscribe","hub.topic":"k13","hub.events":"Patient-open","hub.channel.type":"websocket"}', 'Content-Type' => 'application/json');
is($code, 415, 'a JSON subscription: 415');
($code) = post_form('hub.mode=subscribe&hub.channel.type=websocket&hub.topic=k13&hub.topic=k14&hub.events=Patient-open');
is($code, 400, 'hub.topic twice: 400');
($code) = post_form('hub.mode=unsubscribe&hub.channel.type=websocket&hub.topic=k13');
is($code, 400, 'an unsubscribe without hub.channel.endpoint: 400');
--- response_body_like: "subscriptions":0,



=== TEST 14: 9.81 the same request id again is a retry: 2xx, not distributed twice
--- config
--- init
package main;
my $s = subscribe_ok('k14', 'Patient-open');
my $ws = connect_ready($s);
my $body = patient('k14', 'p1', 'ev-k14-1');
is(publish($body), 202, 'first: 202');
is(publish($body), 202, 'again: 202');
is(scalar @{ sync($ws) }, 1, 'distributed once');
$main::HOLD = $ws;
--- response_body_like: "connections":1,
