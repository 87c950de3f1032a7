# Drop-in compatibility (reference cast-seed-protocol.md; README,
# Compatibility), in local and in Redis mode: a G1 client session (the
# OHIF fork against castpw44) and a G2 client session (the SlicerHub JS
# and python clients) run against the routes of
# conf-examples/cast-compat.conf, request by request as those clients
# send them, with every reply field they read checked.  The MUST items of
# the reference: subscribe answers exactly 202 with an absolute
# ws:// endpoint; the OHIF fork takes subscriber_name and topic from the
# token reply; the {"hub.channel.endpoint"} message every client sends
# first is taken silently; the publisher's id is forwarded unchanged;
# POST {base}/{topic} publishes.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_encode json_decode);
use CastMode;
use CastFhir;
use CastAuth;

no_shuffle();
repeat_each(1);

$CastFhir::Base = '/api/hub';

our $Keys = CastAuth->new;
$Keys->secret('k1');
$Keys->secret_file('k1.key', 'k1');
$ENV{TEST_NGINX_OAUTH_DIR} = $Keys->dir;

add_block_preprocessor(sub {
    my $block = shift;
    my $cfg = defined $block->config ? $block->config : '';
    $block->set_value('config', $cfg . <<'_EOC_');
    cast_oauth_key $TEST_NGINX_OAUTH_DIR/k1.key;
    location /api/hub { cast_hub; cast_cors_origin *; cast_reset on; }
    location /bind/ { cast_websocket; cast_json_ping on; }
    location = /conference { cast_conference; }
    location = /topics { cast_topics; }
    location = /oauth/token { cast_oauth token; }
    location = /oauth/authorize { cast_oauth authorize; }
    location = /cast/status { cast_status; }
_EOC_
    $block->set_value('request', "GET /cast/status\n") if !defined $block->request;
    if (!defined $block->no_error_log) {
        $block->set_value('no_error_log', "[alert]\n[crit]\n[emerg]\nsignal\n");
    }
});

sub post_form {
    my ($path, $form, @h) = @_;
    my ($code, $h, $b) = http_request('POST', $path, $form,
        'Content-Type' => 'application/x-www-form-urlencoded', @h);
    return ($code, eval { json_decode($b) } || { raw => $b }, $h);
}

sub post_json {
    my ($method, $path, $body, @h) = @_;
    my ($code, $h, $b) = http_request($method, $path, json_encode($body),
        'Content-Type' => 'application/json', @h);
    return ($code, eval { json_decode($b) } || { raw => $b });
}

# the next frames a socket got, decoded (after the hub had time)
sub frames { events(sync($_[0])) }

run_tests();

__DATA__

=== TEST 1: G1: the OHIF fork's session (token, subscribe, socket, publish on {base}/{topic}, context, conference, unsubscribe by callback)
--- config
--- init
package main;
my ($c, $b, $h) = post_form('/oauth/token',
    'grant_type=client_credentials&client_id=ohif&client_secret=x&client_product_name=OHIF');
is($c, 200, 'POST /oauth/token (client_credentials): 200');
like($b->{topic}, qr/^USER-\d+$/, 'topic USER-<n>');
like($b->{subscriber_name}, qr/^OHIF-[A-Z0-9]{6}$/, 'subscriber_name OHIF-XXXXXX');
is($b->{token_type}, 'Bearer', 'token_type Bearer');
ok($b->{access_token}, 'an access_token');
my ($topic, $name, $token) = @$b{qw(topic subscriber_name access_token)};

my $events = 'imagingstudy-open,imagingstudy-close,annotation-update,annotation-delete';
($c, $b, $h) = post_form('/api/hub',
    CastFhir::form('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket',
                   'hub.callback' => 'http://viewer.example/castCallback', 'hub.events' => $events,
                   'hub.topic' => $topic, 'hub.lease' => 999, 'subscriber.name' => $name),
    Authorization => "Bearer $token");
is($c, 202, 'subscribe: exactly 202');
like($b->{'hub.channel.endpoint'}, qr{^ws://[^/]+/bind/[0-9a-f]{32}$}, 'an absolute ws:// endpoint');
like($h->{'content-type'} || $h->{'Content-Type'}, qr{^application/json}, 'a JSON body');
my $url = $b->{'hub.channel.endpoint'};
my ($path) = $url =~ m{^ws://[^/]+(/bind/.*)$};
my $ws = CastTest::WS->connect($path);
my $hello = $ws->recv_json(3);
is($hello->{type}, 'connection.established', 'first frame: connection.established');
is($hello->{endpoint}, ($path =~ m{/bind/(.*)})[0], '... with the endpoint id');
$ws->send_json({ 'hub.channel.endpoint' => $url });
my $pub = { timestamp => '2026-12-05T10:00:00.000Z', id => 'OHIF-aecc45b730b24edb',
            event => { 'hub.topic' => $topic, 'hub.event' => 'imagingstudy-open',
                       context => [{ key => 'patient', resource => { resourceType => 'Patient', id => 'PID123' } },
                                   { key => 'study', resource => { resourceType => 'ImagingStudy', id => '1.2.840.1',
                                                                   uid => 'urn:oid:1.2.840.1' } }] } };
my $raw = json_encode($pub);
my ($pc, undef, $pb) = http_request('POST', "/api/hub/$topic", $raw, 'Content-Type' => 'application/json');
is($pc, 200, 'POST /api/hub/{topic}: 200');
is($pb, '{"status":"received"}', '... {"status":"received"}');
my @got = grep { ref $_->{event} } @{ frames($ws) };
is(scalar @got, 1, 'the socket (after its {"hub.channel.endpoint"} message) got the event');
is($got[0]{id}, 'OHIF-aecc45b730b24edb', 'the id unchanged (clients drop their own echo by it)');
is_deeply($got[0], $pub, 'the object unchanged');
my ($gc, undef, $gb) = http_request('GET', "/api/hub/$topic");
is_deeply(json_decode($gb), $pub->{event}{context}, 'GET /api/hub/{topic}: the stored context');
http_request('POST', "/api/hub/$topic", json_encode({ id => 'OHIF-2', event => { 'hub.event' => 'imagingstudy-close', context => [] } }),
             'Content-Type' => 'application/json');
(undef, undef, $gb) = http_request('GET', "/api/hub/$topic");
is($gb, '{}', 'after imagingstudy-close: {}');
frames($ws);

my ($c2, $b2) = post_form('/oauth/token', 'grant_type=client_credentials&client_product_name=TEST-CLIENT');
isnt($b2->{topic}, $topic, 'a second login: another USER-<n>');
my $s2 = subscribe_ok($b2->{topic}, '*', 'subscriber.name' => $b2->{subscriber_name});
my $w2 = connect_ready($s2, cast => 1);
($c, $b) = post_json('POST', '/conference', { user => $topic, title => 'G1 conference', topics => [$b2->{topic}] });
ok($c == 200 || $c == 201, "POST /conference {\"user\"}: $c");
($c, $b) = post_json('GET', '/topics', {});
(undef, undef, my $tb) = http_request('GET', '/topics');
is_deeply(json_decode($tb), [sort($topic, $b2->{topic})], 'GET /topics: both topics');
my @cs = grep { ref $_->{event} } @{ frames($w2) };
is($cs[0]{event}{'hub.event'}, 'conference-start', 'the other user: conference-start');
is($cs[0]{event}{context}{title}, 'G1 conference', '... context.title');
ok(ref $cs[0]{event}{context}{participants} eq 'ARRAY', '... context.participants');
http_request('POST', "/api/hub/$topic", json_encode({ id => 'OHIF-3', event => { 'hub.event' => 'annotation-update', context => [] } }),
             'Content-Type' => 'application/json');
my @fw = grep { ref $_->{event} && $_->{event}{'hub.event'} eq 'annotation-update' } @{ frames($w2) };
is(scalar @fw, 1, "the other user's app gets the annotation-update");
is($fw[0]{event}{'hub.topic'}, $topic, '... hub.topic unchanged');

($c, $b) = post_form('/api/hub',
    CastFhir::form('hub.mode' => 'unsubscribe', 'hub.channel.type' => 'websocket',
                   'hub.callback' => 'http://viewer.example/castCallback', 'hub.events' => $events,
                   'hub.topic' => $topic, 'hub.lease' => 999, 'subscriber.name' => $name),
    Authorization => "Bearer $token");
ok($c == 200 || $c == 202, "unsubscribe by hub.callback (no endpoint): $c");
is($b->{removed}, 1, '... removed 1');
--- error_code: 200



=== TEST 2: G2: the SlicerHub clients' session (authorize + code, subscribe with the G2 fields, conference join / lead / leave with PATCH and DELETE, conference-topics, subscription-removed)
--- config
--- init
package main;
my ($c, $b) = post_form('/oauth/authorize', 'client_product_name=SLICER&user_name=USER-7');
is($c, 200, 'POST /oauth/authorize: 200');
is($b->{user_name}, 'USER-7', 'user_name');
ok($b->{code}, 'a code');
my $code = $b->{code};
($c, $b) = post_form('/oauth/token', "grant_type=authorization_code&code=$code&client_id=x&client_secret=y&client_product_name=SLICER");
is($c, 200, 'POST /oauth/token (authorization_code): 200');
is($b->{topic}, 'USER-7', 'topic');
my $token = $b->{access_token};
($c, $b) = post_form('/oauth/token', "grant_type=authorization_code&code=$code");
is($c, 401, 'the code again: 401');
is($b->{error}, 'invalid_grant', '... invalid_grant');

my %g2 = ('subscriber.product.name' => 'SLICER', 'subscriber.product.version' => '5.8',
          'subscriber.actors' => '["ID"]',
          'subscriber.client_info' => '{"userAgent":"python","platform":"linux"}');
my ($sc, $sb) = post_form('/api/hub',
    CastFhir::form('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket', 'hub.topic' => 'USER-7',
                   'hub.events' => 'imagingstudy-open,status-request,subscription-removed',
                   'hub.lease' => 999, 'subscriber.name' => 'SLICER-AB12CD', %g2),
    Authorization => "Bearer $token");
is($sc, 202, 'subscribe with the G2 fields: 202');
my ($path) = $sb->{'hub.channel.endpoint'} =~ m{^ws://[^/]+(/bind/.*)$};
my $slicer = connect_ready({ path => $path, topic => 'USER-7' }, cast => 1);
my $gone = subscribe_ok('USER-7', '*', 'subscriber.name' => 'WKLST-XY12ZZ',
                        'subscriber.product.name' => 'WKLST');
my $gws = connect_ready($gone, cast => 1);
my $other = connect_ready(subscribe_ok('USER-8', '*', 'subscriber.name' => 'OHIF-8'), cast => 1);

($c, $b) = post_json('POST', '/api/hub/conference', { hostTopic => 'USER-7', title => 'Tumor board', topics => [], hostUserName => 'Dr A' });
ok($c >= 200 && $c < 300, "create: $c (response.ok)");
($c, $b) = post_json('PATCH', '/api/hub/conference/join', { hostTopic => 'USER-7', joinTopic => 'USER-8', joinUserName => 'Dr B' });
is($c, 200, 'PATCH join: 200');
my @st = grep { ref $_->{event} } @{ frames($other) };
is($st[-1]{event}{'hub.event'}, 'conference-start', 'the joiner: conference-start');
is($st[-1]{event}{context}{joinedTopic}, 'USER-8', '... joinedTopic');
is($st[-1]{event}{context}{hostUserName}, 'Dr A', '... hostUserName');
($c, $b) = post_json('PATCH', '/api/hub/conference/lead', { hostTopic => 'USER-7', sceneLeaderTopic => 'USER-8' });
is($c, 200, 'PATCH lead: 200');
is($b->{status}, 'updated', '... {"status":"updated"}');
(undef, undef, my $list) = http_request('GET', '/api/hub/conference');
$list = json_decode($list);
is($list->[0]{sceneLeaderTopic}, 'USER-8', 'GET conference: sceneLeaderTopic');
is_deeply($list->[0]{topics}, ['USER-8'], '... topics');
(undef, undef, my $ct) = http_request('GET', '/api/hub/conference-topics');
is_deeply(json_decode($ct), [{ topic => 'USER-7' }, { topic => 'USER-8' }], 'conference-topics: [{"topic"}]');
frames($_) for $slicer, $gws, $other;

my ($uc) = post_form('/api/hub', CastFhir::form('hub.mode' => 'unsubscribe', 'hub.topic' => 'USER-7',
                                               'hub.channel.endpoint' => $gone->{endpoint}));
ok($uc == 200 || $uc == 202, 'the worklist unsubscribes');
my @rm = grep { ref $_->{event} } @{ frames($slicer) };
is($rm[0]{event}{'hub.event'}, 'subscription-removed', 'Slicer: subscription-removed');
is($rm[0]{event}{context}{subscriber}, 'WKLST-XY12ZZ', '... context.subscriber');
is($rm[0]{'subscriber.product.name'}, 'WKLST', '... subscriber.product.name');
my @rm8 = grep { ref $_->{event} } @{ frames($other) };
is($rm8[0]{event}{'hub.event'}, 'subscription-removed', 'the conference partner (*): it too');

($c, $b) = post_json('DELETE', '/api/hub/conference', { hostTopic => 'USER-7', leaveTopic => 'USER-8' });
is($c, 200, 'DELETE with leaveTopic: 200');
is_deeply([@$b{qw(removed updated)}], [1, 0], 'the last attendee left: {"removed":1,"updated":0}');
my @end = grep { ref $_->{event} } @{ frames($other) };
is($end[0]{event}{context}{reason}, 'empty', 'the leaver: conference-end, reason empty');
is($end[0]{event}{context}{leaveTopic}, 'USER-8', '... leaveTopic (its own: clients deactivate)');
--- error_code: 200
