# Current context, GET {base}/{topic} (SPEC 2.3), in both dialects.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_decode);
use CastMode;

our $HubConfig = <<'_EOC_';
    location /api/hub { cast_hub; }
    location /fhircast/hub { cast_hub; cast_dialect fhircast; }
    location /bind/ { cast_websocket; }
    location = /cast/status { cast_status; }
_EOC_

add_block_preprocessor(sub {
    my $block = shift;
    $block->set_value('config', $HubConfig) if !defined $block->config;
});

# a FHIRcast event body; $anchor "Patient" etc., $key the context key
# every event its own id: the same id again is a retry, taken once
our $EvSeq = 0;

sub ev {
    my ($name, $id, $type, $key) = @_;
    $type ||= 'Patient';
    $key ||= lc $type;
    my $ctx = defined $id
        ? qq([{"key":"$key","resource":{"resourceType":"$type","id":"$id"}}])
        : '[]';
    $EvSeq++;
    return qq({"timestamp":"2026-12-03T06:12:19.123Z","id":"ev-$name-) . ($id // '')
           . qq(-$EvSeq","event":{"hub.event":"$name","context":$ctx}});
}

# POST {path} with a JSON body, from --- init
sub publish {
    my ($path, $body) = @_;
    my ($code) = CastTest::http_request('POST', $path, $body,
                                        'Content-Type' => 'application/json');
    return $code;
}

sub get_json {
    my ($path) = @_;
    my (undef, undef, $body) = CastTest::http_request('GET', $path);
    return eval { CastTest::json_decode($body) } || {};
}

our $P1 = '[{"key":"patient","resource":{"resourceType":"Patient","id":"p1"}}]';
our $P2 = '[{"key":"patient","resource":{"resourceType":"Patient","id":"p2"}}]';

no_shuffle();
run_tests();

__DATA__

=== TEST 1: cast: no event yet: {}
--- request
GET /api/hub/ctx-t1
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- response_body_like: ^\{\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 2: cast: an object context is returned as stored (G1 shape)
--- request eval
['POST /api/hub/ctx-t2
{"event":{"hub.event":"scene-update","context":{"patientId":"p1","studies":["s1","s2"],"nested":{"a":[1,2.5,null,true]}}}}',
'GET /api/hub/ctx-t2']
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200]
--- response_body_like eval
['^\{"status":"received"\}$',
 '^\{"patientId":"p1","studies":\["s1","s2"\],"nested":\{"a":\[1,2\.5,null,true\]\}\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 3: cast: an array context is returned as stored; the last non-empty one wins
--- request eval
['POST /api/hub
{"event":{"hub.topic":"ctx-t3","hub.event":"Patient-open","context":[{"key":"patient","resource":{"resourceType":"Patient","id":"p1"}}]}}',
'POST /api/hub
{"event":{"hub.topic":"ctx-t3","hub.event":"Patient-open","context":[{"key":"patient","resource":{"resourceType":"Patient","id":"p2"}}]}}',
'GET /api/hub/ctx-t3']
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 200]
--- response_body_like eval
['^\{"status":"received"\}$', '^\{"status":"received"\}$',
 '^\[\{"key":"patient","resource":\{"resourceType":"Patient","id":"p2"\}\}\]$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 4: cast: events with an empty or missing context keep the stored one
--- request eval
['POST /api/hub/ctx-t4
{"event":{"hub.event":"a","context":{"k":"kept"}}}',
'POST /api/hub/ctx-t4
{"event":{"hub.event":"b","context":{}}}',
'POST /api/hub/ctx-t4
{"event":{"hub.event":"c","context":[]}}',
'POST /api/hub/ctx-t4
{"event":{"hub.event":"d"}}',
'GET /api/hub/ctx-t4']
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 200, 200, 200]
--- response_body_like eval
['^\{"status":"received"\}$', '^\{"status":"received"\}$', '^\{"status":"received"\}$',
 '^\{"status":"received"\}$', '^\{"k":"kept"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 5: cast: any event whose name contains "close" (any case) clears the context
--- request eval
['POST /api/hub/ctx-t5
{"event":{"hub.event":"Patient-open","context":{"k":"v"}}}',
'POST /api/hub/ctx-t5
{"event":{"hub.event":"ImagingStudy-CLOSE"}}',
'GET /api/hub/ctx-t5',
'POST /api/hub/ctx-t5
{"event":{"hub.event":"x","context":{"k":"v2"}}}',
'POST /api/hub/ctx-t5
{"event":{"hub.event":"session-closed","context":{"ignored":true}}}',
'GET /api/hub/ctx-t5']
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 200, 200, 200, 200]
--- response_body_like eval
['^\{"status":"received"\}$', '^\{"status":"received"\}$', '^\{\}$',
 '^\{"status":"received"\}$', '^\{"status":"received"\}$', '^\{\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 6: cast: contexts are per topic
--- request eval
['POST /api/hub/ctx-t6-a
{"event":{"hub.event":"x","context":{"who":"a"}}}',
'POST /api/hub/ctx-t6-b
{"event":{"hub.event":"x","context":{"who":"b"}}}',
'GET /api/hub/ctx-t6-a',
'GET /api/hub/ctx-t6-b',
'GET /api/hub/ctx-t6-c']
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 200, 200, 200]
--- response_body_like eval
['^\{"status":"received"\}$', '^\{"status":"received"\}$',
 '^\{"who":"a"\}$', '^\{"who":"b"\}$', '^\{\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 7: cast: a stored context keeps its topic alive in the status, a close releases it
--- request eval
['POST /api/hub/ctx-t7
{"event":{"hub.event":"x","context":{"k":1}}}',
'GET /cast/status',
'POST /api/hub/ctx-t7
{"event":{"hub.event":"x-close"}}',
'GET /cast/status']
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200, 200, 200]
--- response_body_like eval
['^\{"status":"received"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":0,"topics":1,"events_in":1,',
 '^\{"status":"received"\}$',
 '^\{"mode":"local","connections":0,"subscriptions":0,"topics":0,"events_in":2,']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 8: cast: a percent-encoded topic in the path is the decoded topic
--- request eval
['POST /api/hub
{"event":{"hub.topic":"dr who","hub.event":"x","context":{"k":"space"}}}',
'GET /api/hub/dr%20who']
--- more_headers
Content-Type: application/json
--- error_code eval
[200, 200]
--- response_body_like eval
['^\{"status":"received"\}$', '^\{"k":"space"\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 9: cast: HEAD {base}/{topic}: headers with the length, no body
--- init
main::publish('/api/hub/ctx-t9', '{"event":{"hub.event":"x","context":{"k":"v"}}}');
--- request
HEAD /api/hub/ctx-t9
--- response_headers
Content-Type: application/json
Content-Length: 9
!Access-Control-Allow-Origin
--- response_body
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 10: fhircast: no open context: the empty STU3 shape
--- request
GET /fhircast/hub/ctx-t10
--- response_headers
Content-Type: application/json
--- response_body_like: ^\{"context\.type":"","context":\[\]\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 11: fhircast: after Patient-open: type, versionId, the context as sent and an empty content Bundle
--- request eval
["POST /fhircast/hub/ctx-t11\n" . main::ev('Patient-open', 'p1'),
 'GET /fhircast/hub/ctx-t11']
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200]
--- response_body_like eval
['^\{\}$',
 '^\{"context\.type":"Patient","context\.versionId":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}","context":\[\{"key":"patient","resource":\{"resourceType":"Patient","id":"p1"\}\},\{"key":"content","resource":\{"resourceType":"Bundle","id":"[-0-9a-f]{36}","type":"collection"\}\}\]\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 12: fhircast: the last opened is current
--- request eval
["POST /fhircast/hub/ctx-t12\n" . main::ev('Patient-open', 'p1'),
 "POST /fhircast/hub/ctx-t12\n" . main::ev('Patient-open', 'p2'),
 'GET /fhircast/hub/ctx-t12']
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 200]
--- response_body_like eval
['^\{\}$', '^\{\}$',
 '^\{"context\.type":"Patient","context\.versionId":"[-0-9a-f]{36}","context":\[\{"key":"patient","resource":\{"resourceType":"Patient","id":"p2"\}\},\{"key":"content","resource":\{"resourceType":"Bundle","id":"[-0-9a-f]{36}","type":"collection"\}\}\]\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 13: fhircast: Patient-close of the current id empties the context
--- request eval
["POST /fhircast/hub/ctx-t13\n" . main::ev('Patient-open', 'p1'),
 "POST /fhircast/hub/ctx-t13\n" . main::ev('Patient-close', 'p1'),
 'GET /fhircast/hub/ctx-t13']
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 200]
--- response_body_like eval
['^\{\}$', '^\{\}$', '^\{"context\.type":"","context":\[\]\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 14: fhircast: open P1, open P2, close P2: empty (P1 is stored but not current)
--- request eval
["POST /fhircast/hub/ctx-t14\n" . main::ev('Patient-open', 'p1'),
 "POST /fhircast/hub/ctx-t14\n" . main::ev('Patient-open', 'p2'),
 "POST /fhircast/hub/ctx-t14\n" . main::ev('Patient-close', 'p2'),
 'GET /fhircast/hub/ctx-t14']
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 202, 200]
--- response_body_like eval
['^\{\}$', '^\{\}$', '^\{\}$', '^\{"context\.type":"","context":\[\]\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 15: fhircast: ... then re-open P1: current again, with a new versionId
--- init
main::publish('/fhircast/hub/ctx-t15', main::ev('Patient-open', 'p1'));
my $v1 = main::get_json('/fhircast/hub/ctx-t15')->{'context.versionId'};
main::publish('/fhircast/hub/ctx-t15', main::ev('Patient-open', 'p2'));
main::publish('/fhircast/hub/ctx-t15', main::ev('Patient-close', 'p2'));
# another event (the same id again would be a retry, taken once)
main::publish('/fhircast/hub/ctx-t15', main::ev('Patient-open', 'p1') =~ s/"ev-Patient-open-p1"/"ev-Patient-reopen-p1"/r);
my $v2 = main::get_json('/fhircast/hub/ctx-t15')->{'context.versionId'};
Test::More::like($v1, qr/^[-0-9a-f]{36}$/, '006 init: first versionId');
Test::More::like($v2, qr/^[-0-9a-f]{36}$/, '006 init: second versionId');
Test::More::isnt($v1, $v2, '006 init: a re-open gets a new versionId');
--- request
GET /fhircast/hub/ctx-t15
--- response_body_like: ^\{"context\.type":"Patient","context\.versionId":"[-0-9a-f]{36}","context":\[\{"key":"patient","resource":\{"resourceType":"Patient","id":"p1"\}\},\{"key":"content","resource":\{"resourceType":"Bundle","id":"[-0-9a-f]{36}","type":"collection"\}\}\]\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 16: fhircast: the versionId is stable between two reads
--- init
main::publish('/fhircast/hub/ctx-t16', main::ev('Patient-open', 'p1'));
my $x = main::get_json('/fhircast/hub/ctx-t16')->{'context.versionId'};
my $y = main::get_json('/fhircast/hub/ctx-t16')->{'context.versionId'};
Test::More::ok(defined $x && $x eq $y, '006 init: same versionId on two reads');
--- request
GET /fhircast/hub/ctx-t16
--- response_body_like: "context\.type":"Patient"
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 17: fhircast: closing another id leaves the current context
--- request eval
["POST /fhircast/hub/ctx-t17\n" . main::ev('Patient-open', 'p1'),
 "POST /fhircast/hub/ctx-t17\n" . main::ev('Patient-close', 'p9'),
 'GET /fhircast/hub/ctx-t17']
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 200]
--- response_body_like eval
['^\{\}$', '^\{\}$', '^\{"context\.type":"Patient",.*"id":"p1"']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 18: fhircast: event names are matched case-insensitively
--- request eval
["POST /fhircast/hub/ctx-t18\n" . main::ev('patient-OPEN', 'p1'),
 'GET /fhircast/hub/ctx-t18',
 "POST /fhircast/hub/ctx-t18\n" . main::ev('PATIENT-close', 'p1'),
 'GET /fhircast/hub/ctx-t18']
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200, 202, 200]
--- response_body_like eval
['^\{\}$',
 '^\{"context\.type":"(?i:patient)","context\.versionId":"[-0-9a-f]{36}","context":\[.*"id":"p1".*\]\}$',
 '^\{\}$',
 '^\{"context\.type":"","context":\[\]\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 19: fhircast: Home-open changes nothing
--- request eval
["POST /fhircast/hub/ctx-t19\n" . main::ev('Patient-open', 'p1'),
 "POST /fhircast/hub/ctx-t19\n" . main::ev('Home-open', undef),
 'GET /fhircast/hub/ctx-t19',
 "POST /fhircast/hub/ctx-t19-empty\n" . main::ev('Home-open', undef),
 'GET /fhircast/hub/ctx-t19-empty']
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 200, 202, 200]
--- response_body_like eval
['^\{\}$', '^\{\}$', '^\{"context\.type":"Patient",.*"id":"p1"', '^\{\}$',
 '^\{"context\.type":"","context":\[\]\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 20: fhircast: other anchors (ImagingStudy with key "study", Encounter)
--- request eval
["POST /fhircast/hub/ctx-t20\n" . main::ev('ImagingStudy-open', 's1', 'ImagingStudy', 'study'),
 'GET /fhircast/hub/ctx-t20',
 "POST /fhircast/hub/ctx-t20\n" . main::ev('Encounter-open', 'e1', 'Encounter'),
 'GET /fhircast/hub/ctx-t20',
 "POST /fhircast/hub/ctx-t20\n" . main::ev('Encounter-close', 'e1', 'Encounter'),
 'GET /fhircast/hub/ctx-t20']
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200, 202, 200, 202, 200]
--- response_body_like eval
['^\{\}$',
 '^\{"context\.type":"ImagingStudy",.*"resourceType":"ImagingStudy","id":"s1"',
 '^\{\}$',
 '^\{"context\.type":"Encounter",.*"resourceType":"Encounter","id":"e1"',
 '^\{\}$',
 '^\{"context\.type":"","context":\[\]\}$']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 21: fhircast: non-open events (select; an update refused: no version) do not change the current context
--- request eval
["POST /fhircast/hub/ctx-t21\n" . main::ev('Patient-open', 'p1'),
 "POST /fhircast/hub/ctx-t21\n" . main::ev('DiagnosticReport-select', 'r1', 'DiagnosticReport', 'report'),
 "POST /fhircast/hub/ctx-t21\n" . main::ev('DiagnosticReport-update', 'r1', 'DiagnosticReport', 'report'),
 'GET /fhircast/hub/ctx-t21']
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 202, 400, 200]
--- response_body_like eval
['^\{\}$', '^\{\}$', 'context\.versionId', '^\{"context\.type":"Patient",.*"id":"p1"']
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 22: fhircast: HEAD gives the headers only
--- init
main::publish('/fhircast/hub/ctx-t22', main::ev('Patient-open', 'p1'));
--- request
HEAD /fhircast/hub/ctx-t22
--- response_headers
Content-Type: application/json
!Access-Control-Allow-Origin
--- response_body
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 23: the cast location shows the same topic in the G1 shape
--- request eval
["POST /fhircast/hub/ctx-t23\n" . main::ev('Patient-open', 'p1'),
 'GET /api/hub/ctx-t23']
--- more_headers
Content-Type: application/json
--- error_code eval
[202, 200]
--- response_body_like eval
['^\{\}$', '^\[\{"key":"patient","resource":\{"resourceType":"Patient","id":"p1"\}\}\]$']
--- no_error_log
[alert]
[crit]
[emerg]
signal
