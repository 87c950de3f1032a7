# Self-test of the test scaffolding (t/runner Test::Nginx::Socket clone and
# t/lib/CastTest.pm) against plain nginx features; no cast module needed.
# Written to pass under both the project's runner (prove -I t/runner) and
# the real Test::Nginx.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request);
use IO::Socket::INET ();
use POSIX ();

$ENV{TEST_NGINX_MOCK_PORT} ||= server_port() + 11;

# A tiny WebSocket backend (forked): after the handshake it sends a ping
# and a JSON greeting, answers text frames with {"echo": <text>}, pings
# with pongs and a close with a close; then it closes the connection.
my $MockPid;

sub mock_ws_conn {
    my $c = shift;
    my $buf = '';
    while ($buf !~ /\r\n\r\n/) {
        my $n = sysread($c, $buf, 4096, length $buf);
        return if !$n;
    }
    my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
    my ($key) = $head =~ /^Sec-WebSocket-Key:\s*(\S+)/mi;
    if (!defined $key) {
        print $c "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        return;
    }
    print $c "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
             . "Connection: Upgrade\r\nSec-WebSocket-Accept: "
             . CastTest::ws_accept_key($key) . "\r\n\r\n";
    print $c ws_ping('srv', mask => 0);
    print $c ws_text('{"hello":"world"}', mask => 0);
    $buf = $rest;
    while (1) {
        while (my $f = CastTest::_parse_frame($buf)) {
            substr($buf, 0, $f->{size}) = '';
            if ($f->{opcode} == 1) {
                print $c ws_text(CastTest::json_encode({ echo => $f->{payload} }), mask => 0);
            } elsif ($f->{opcode} == 9) {
                print $c ws_pong($f->{payload}, mask => 0);
            } elsif ($f->{opcode} == 8) {
                print $c ws_frame(8, $f->{payload}, mask => 0);
                return;
            }
        }
        my $n = sysread($c, $buf, 4096, length $buf);
        return if !$n;
    }
}

sub start_mock_ws {
    my $srv = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                    LocalPort => $ENV{TEST_NGINX_MOCK_PORT},
                                    Listen => 10, ReuseAddr => 1)
        or die "cannot listen on $ENV{TEST_NGINX_MOCK_PORT}: $!";
    my $pid = fork;
    die "fork: $!" if !defined $pid;
    if ($pid == 0) {
        alarm 30;
        eval {
            while (my $c = $srv->accept) {
                $c->autoflush(1);
                mock_ws_conn($c);
                close $c;
            }
        };
        POSIX::_exit(0);
    }
    close $srv;
    return $pid;
}

$MockPid = start_mock_ws();
add_cleanup_handler(sub { kill 9, $MockPid if $MockPid; waitpid $MockPid, 0 if $MockPid; undef $MockPid });

# CastTest frame helpers (pure Perl)
is(ws_frame(1, 'hi', mask => 0), "\x81\x02hi", 'ws_frame unmasked');
is(length(ws_text('x' x 200)), 2 + 2 + 4 + 200, 'ws_text 16-bit length + mask');
is(substr(ws_frame(2, 'ab', mask => 0, len64 => 1), 0, 10),
   "\x82\x7f" . ("\0" x 7) . "\x02", 'len64 encoding');
is(ws_frame(1, 'abcd', mask_key => "\x01\x02\x03\x04"),
   "\x81\x84\x01\x02\x03\x04" . ("abcd" ^ "\x01\x02\x03\x04"), 'mask_key');
is_deeply([ws_decode_frames(ws_text('hé', mask => 0) . ws_close(1001, 'gone', mask => 0)
                            . ws_ping('p', mask => 0) . ws_close(undef, undef, mask => 0) . "\x81\x05he")],
          ["text h\xc3\xa9", 'close 1001 gone', 'ping p', 'close', 'partial'],
          'ws_decode_frames');
is(ws_body_filter(ws_frame(10, 'x', mask => 0, fin => 0, rsv => 4)),
   "pong(fin=0)(rsv=4) x\n", 'ws_body_filter flags');
like(ws_handshake('/ws', 'Sec-WebSocket-Version' => undef, Origin => 'o'),
     qr{\AGET /ws HTTP/1\.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: \S+==\r\nOrigin: o\r\n\r\n\z},
     'ws_handshake');

# CastTest::WS straight against the mock backend
{
    my $ws = CastTest::WS->connect("ws://127.0.0.1:$ENV{TEST_NGINX_MOCK_PORT}/x");
    is_deeply($ws->recv_json(2), { hello => 'world' }, 'WS recv_json skips the ping');
    $ws->send_text('yo');
    is_deeply($ws->recv_json(2), { echo => 'yo' }, 'WS echo');
    ok(!$ws->is_closed, 'WS open');
    $ws->close(1000);
    ok($ws->is_closed, 'WS closed');
    is($ws->close_code, 1000, 'WS close code echoed');
}

run_tests();

__DATA__

=== TEST 1: response_body, error_code, response_headers
--- config
    location = /hello {
        add_header X-Foo "bar baz";
        return 200 "hello";
    }
--- request
GET /hello
--- response_headers
X-Foo: bar baz
Content-Type: text/plain
Content-Length: 5
!X-Absent
--- response_body chomp
hello
--- error_code: 200



=== TEST 2: response_body_like, response_headers_like, 404
--- config
--- request
GET /nope.html
--- error_code: 404
--- response_headers_like
Server: nginx/\d+\.\d+\.\d+
--- response_body_like: 404 Not Found
--- error_log
No such file or directory
--- no_error_log
[alert]
[crit]



=== TEST 3: more_headers and a request body (trimmed, Content-Length added)
--- config
    location = /echo {
        return 200 "x=$http_x_test len=$content_length host=$host conn=$http_connection\n";
    }
--- more_headers
X-Test: some value
--- request
POST /echo
  hello world  
--- response_body
x=some value len=11 host=localhost conn=close



=== TEST 4: $TEST_NGINX_* expansion, $ServerPort in expected values
--- config
    location = /port {
        add_header X-Port $TEST_NGINX_SERVER_PORT;
        return 200 "port=$TEST_NGINX_SERVER_PORT html=$TEST_NGINX_HTML_DIR\n";
    }
--- request
GET /port
--- response_headers
X-Port: $ServerPort
--- response_body_like
^port=$ServerPort html=/\S+/html$



=== TEST 5: raw_request (HTTP/1.0)
--- config
    location = /hello { return 200 "hello\n"; }
--- raw_request eval
"GET /hello HTTP/1.0\r\nHost: localhost\r\n\r\n"
--- response_body
hello



=== TEST 6: array of requests (one connection each)
--- config
    location = /a { return 200 "A"; }
    location = /b { return 201 "B"; }
--- request eval
["GET /a", "GET /b"]
--- error_code eval
[200, 201]
--- response_body eval
["A", "B"]



=== TEST 7: pipelined requests
--- config
    location = /a { return 200 "A"; }
    location = /b { return 200 "BB"; }
--- pipelined_requests eval
["GET /a", "GET /b"]
--- response_body eval
["A", "BB"]



=== TEST 8: chunked response + response_body_filters
--- config
    location /sub/ {
        alias $TEST_NGINX_HTML_DIR/;
        sub_filter 'world' 'there';
        sub_filter_once off;
        sub_filter_types text/plain;
    }
--- user_files
>>> f.txt
hello world
--- request
GET /sub/f.txt
--- response_headers
Transfer-Encoding: chunked
--- response_body_filters
uc
--- response_body
HELLO THERE



=== TEST 9: grep_error_log
--- config
    location = /t { return 200 "ok"; }
--- request
GET /t?abc=1
--- grep_error_log eval
qr/http args: "[^"]*"/
--- grep_error_log_out
http args: "abc=1"
--- response_body chop
ok



=== TEST 10: must_die with an unknown directive
--- config
    location = /t { bogus_directive_xyz on; }
--- must_die
--- error_log
unknown directive "bogus_directive_xyz"



=== TEST 11: must_die with an exit code and a regex
--- config
    location = /t { return 200 a b c; }
--- must_die: 1
--- error_log eval
qr/\[emerg\] .*invalid number of arguments in "return" directive/
--- no_error_log
[error]



=== TEST 12: timeout + abort: keep-alive response read until the timeout
--- config
    location = /ka { return 200 "kept"; }
--- more_headers
Connection: keep-alive
--- request
GET /ka
--- timeout: 300ms
--- abort
--- response_body chomp
kept



=== TEST 13: HEAD request
--- config
    location = /hello { return 200 "hello"; }
--- request
HEAD /hello
--- response_headers
Content-Length: 5
--- response_body



=== TEST 14: WebSocket through nginx proxy (101: raw body + frame filter)
--- config
    location /ws {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
    }
--- raw_request eval
ws_handshake('/ws') . ws_text('hello') . ws_ping('p1') . ws_close(1000, 'bye')
--- error_code: 101
--- response_headers
Upgrade: websocket
--- response_body_filters eval
\&CastTest::ws_body_filter
--- response_body
ping srv
text {"hello":"world"}
text {"echo":"hello"}
pong p1
close 1000 bye



=== TEST 15: init with CastTest::http_request and CastTest::WS via nginx
--- config
    location = /hello { return 200 "hello"; }
    location /ws {
        proxy_pass http://127.0.0.1:$TEST_NGINX_MOCK_PORT;
        proxy_http_version 1.1;
        proxy_set_header Upgrade $http_upgrade;
        proxy_set_header Connection "upgrade";
    }
--- init
my ($st, $h, $b) = CastTest::http_request('POST', '/hello', 'data', 'X-A' => 'b');
Test::More::is($st, 200, 'http_request status');
Test::More::is($h->{'content-length'}, 5, 'http_request headers');
Test::More::is($b, 'hello', 'http_request body');
my $ws = CastTest::WS->connect('/ws');
Test::More::is_deeply($ws->recv_json(2), { hello => 'world' }, 'WS via nginx');
$ws->send_json({ a => 1 });
Test::More::is_deeply($ws->recv_json(2), { echo => '{"a":1}' }, 'WS send_json via nginx');
$ws->close;
eval { CastTest::WS->connect('/hello') };
Test::More::like($@, qr/^WebSocket handshake failed: status 200/, 'WS connect dies on non-101');
--- request
GET /hello
--- response_body chomp
hello



=== TEST 16: main_config, http_config, wait, response_body_unlike
--- main_config
    worker_rlimit_nofile 4096;
--- http_config
    map $arg_v $mapped { default "none"; x "ex"; }
--- config
    location = /m { return 200 "m=$mapped"; }
--- request
GET /m?v=x
--- wait: 0.05
--- response_body_unlike
none
--- no_error_log
[warn]



=== TEST 17: skip_eval
--- config
    location = /t { return 200 "ok"; }
--- request
GET /t
--- skip_eval: 2: 1
--- response_body chop
not ok
--- error_code: 500



=== TEST 18: request split into delayed packets, body seen by nginx (access_log)
--- http_config
    log_format body 'uri=$uri body=[$request_body]';
--- config
    location = /echo {
        access_log logs/access.log body;
        proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/back;
    }
    location = /back { access_log off; return 200 "got"; }
--- request eval
[["POST /echo\nhel", {value => "lo wor", delay_before => 0.05}, "ld\n"]]
--- response_body chomp
got
--- access_log
uri=/echo body=[hello world]



=== TEST 19: the servroot holds only what Test::Nginx writes there (conf, html, logs, *_temp, *_cache): its own cleanup stops at anything else
--- config
    location = /t { return 200 "ok\n"; }
--- init
package main;
my @other = grep { !m{/(?:conf|html|logs|[a-z_]+_temp|[a-z_]+_cache)$} }
            glob(Test::Nginx::Util::server_root() . '/*');
is(join(',', @other), '', 'nothing else in the servroot while nginx runs');
--- request
GET /t
--- response_body
ok
