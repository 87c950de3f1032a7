# Configuration: every invalid directive value stops nginx with [emerg]
# (--- must_die); valid configurations start.  Patterns are written without
# the "[emerg]" prefix and the "in .../nginx.conf:NN" suffix.

use Test::Nginx::Socket 'no_plan';
use lib 't/lib';
use CastTest qw(:DEFAULT http_request json_decode);
use File::Temp ();

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

# "nginx -t" of a small configuration whose location holds $directives;
# returns (exit code, output).  Used where a start failure would abort the
# whole run under the real Test::Nginx.  Its files go to a temporary
# directory: Test::Nginx removes t/servroot and nothing else may be there.
sub nginx_t {
    my ($name, $directives) = @_;
    my $dir = File::Temp::tempdir("cast-$name-XXXXXX", TMPDIR => 1,
                                  CLEANUP => 1);
    for my $d ("$dir/conf", "$dir/logs", "$dir/tmp") {
        mkdir $d if !-d $d;
    }
    my $port = CastTest::server_port() + 7;
    my $load = CORE::join('', map { "load_module $_;\n" }
                                grep { length } split /\s+/, $ENV{TEST_NGINX_LOAD_MODULES} || '');
    open my $fh, '>', "$dir/conf/nginx.conf" or die "$dir/conf/nginx.conf: $!";
    print $fh <<"_EOC_";
${load}pid $dir/logs/nginx.pid;
events { worker_connections 64; }
http {
    client_body_temp_path $dir/tmp;
    server {
        listen 127.0.0.1:$port;
        location /api/hub { cast_hub; $directives }
    }
}
_EOC_
    close $fh;
    my $bin = $Test::Nginx::Util::NginxBinary;
    my $out = `$bin -t -p $dir/ -c $dir/conf/nginx.conf 2>&1`;
    return ($? >> 8, $out);
}

no_shuffle();
run_tests();

__DATA__

=== TEST 1: cast_dialect with an unknown value
--- config
    location /api/hub { cast_hub; cast_dialect foo; }
--- must_die
--- error_log
invalid value "foo"



=== TEST 2: cast_dialect without a value
--- config
    location /api/hub { cast_hub; cast_dialect; }
--- must_die
--- error_log
invalid number of arguments in "cast_dialect" directive



=== TEST 3: cast_lease_default 0
--- config
    location /api/hub { cast_hub; cast_lease_default 0; }
--- must_die
--- error_log
value is too small, the minimum is 1s



=== TEST 4: cast_lease_default abc
--- config
    location /api/hub { cast_hub; cast_lease_default abc; }
--- must_die
--- error_log
"cast_lease_default" directive invalid value



=== TEST 5: cast_lease_max 0
--- http_config
    cast_lease_max 0;
--- must_die
--- error_log
value is too small, the minimum is 1s



=== TEST 6: cast_lease_default greater than cast_lease_max
--- config
    location /api/hub { cast_hub; cast_lease_default 2h; cast_lease_max 1h; }
--- must_die
--- error_log
"cast_lease_default" 7200 is greater than "cast_lease_max" 3600



=== TEST 7: cast_lease_default greater than an inherited cast_lease_max
--- http_config
    cast_lease_max 10m;
--- config
    location /api/hub { cast_hub; cast_lease_default 11m; }
--- must_die
--- error_log
"cast_lease_default" 660 is greater than "cast_lease_max" 600



=== TEST 8: cast_bind_timeout 0
--- config
    location /api/hub { cast_hub; cast_bind_timeout 0; }
--- must_die
--- error_log
value is too small, the minimum is 1ms



=== TEST 9: cast_bind_timeout with a bad unit
--- config
    location /api/hub { cast_hub; cast_bind_timeout 5parsecs; }
--- must_die
--- error_log
"cast_bind_timeout" directive invalid value



=== TEST 10: cast_ping_interval 0
--- config
    location /bind/ { cast_websocket; cast_ping_interval 0; }
--- must_die
--- error_log
value is too small, the minimum is 1ms



=== TEST 11: cast_max_message_size 10
--- config
    location /api/hub { cast_hub; cast_max_message_size 10; }
--- must_die
--- error_log
value is too small, the minimum is 128 bytes



=== TEST 12: cast_max_message_size 2048m is above the 1g maximum
--- config
    location /api/hub { cast_hub; cast_max_message_size 2048m; }
--- must_die
--- error_log
value is too large, the maximum is 1073741824 bytes



=== TEST 13: cast_max_message_size 2g (too large, or no "g" unit in older nginx)
--- config
    location /api/hub { cast_hub; cast_max_message_size 2g; }
--- must_die
--- error_log eval
qr/value is too large, the maximum is 1073741824 bytes|"cast_max_message_size" directive invalid value/



=== TEST 14: cast_send_queue 10
--- config
    location /bind/ { cast_websocket; cast_send_queue 10; }
--- must_die
--- error_log
value is too small, the minimum is 1024 bytes



=== TEST 15: cast_cors_origin ""
--- config
    location /api/hub { cast_hub; cast_cors_origin ""; }
--- must_die
--- error_log
empty "cast_cors_origin"



=== TEST 16: cast_cors_origin given twice
--- config
    location /api/hub { cast_hub; cast_cors_origin https://a.example; cast_cors_origin off; }
--- must_die
--- error_log
"cast_cors_origin" directive is duplicate



=== TEST 17: cast_hub twice in one location
--- config
    location /api/hub { cast_hub; cast_hub; }
--- must_die
--- error_log
"cast_hub" directive is duplicate



=== TEST 18: cast_hub and cast_websocket in one location
--- config
    location /api/hub { cast_hub; cast_websocket; }
--- must_die
--- error_log
"cast_websocket" directive is duplicate



=== TEST 19: cast_status and cast_hub in one location
--- config
    location /api/hub { cast_status; cast_hub; }
--- must_die
--- error_log
"cast_hub" directive is duplicate



=== TEST 20: cast_hub in an exact-match location
--- config
    location = /api/hub { cast_hub; }
--- must_die
--- error_log
"cast_hub" requires a prefix location



=== TEST 21: cast_hub in a regex location
--- config
    location ~ ^/api/hub { cast_hub; }
--- must_die
--- error_log
"cast_hub" requires a prefix location



=== TEST 22: cast_hub in a named location
--- config
    location @hub { cast_hub; }
--- must_die
--- error_log
"cast_hub" requires a prefix location



=== TEST 23: cast_websocket in an exact-match location
--- config
    location = /bind/x { cast_websocket; }
--- must_die
--- error_log
"cast_websocket" requires a prefix location



=== TEST 24: cast_hub with an argument
--- config
    location /api/hub { cast_hub foo; }
--- must_die
--- error_log
invalid number of arguments in "cast_hub" directive



=== TEST 25: cast_status with an argument
--- config
    location /s { cast_status on; }
--- must_die
--- error_log
invalid number of arguments in "cast_status" directive



=== TEST 26: cast_hub at server level
--- config
    cast_hub;
--- must_die
--- error_log
"cast_hub" directive is not allowed here



=== TEST 27: cast_dialect at main (top) level
--- main_config
    cast_dialect fhircast;
--- must_die
--- error_log
"cast_dialect" directive is not allowed here



=== TEST 28: cast_status in an exact-match location is fine
--- config
    location = /status { cast_status; }
--- request
GET /status
--- response_body_like: ^\{"mode":"local",
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 29: every directive with a valid value, at http, server and location level
--- http_config
    cast_dialect cast;
    cast_lease_default 10m;
    cast_lease_max 2h;
    cast_bind_timeout 30s;
    cast_ping_interval 15s;
    cast_max_message_size 64k;
    cast_send_queue 1m;
    cast_cors_origin https://viewer.example;
--- config
    cast_public_url https://hub.example.org/cast;
    location /api/hub {
        cast_hub;
        cast_dialect fhircast;
        cast_lease_default 20m;
        cast_lease_max 1h;
        cast_max_message_size 1m;
    }
    location /bind/ { cast_websocket; cast_ping_interval 5s; cast_send_queue 64k; }
--- request
POST /api/hub
hub.mode=subscribe&hub.channel.type=websocket&hub.topic=cfg-t29&hub.events=Patient-open
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 202
--- response_headers
Access-Control-Allow-Origin: https://viewer.example
--- response_body_like: ^\{"hub\.channel\.endpoint":"wss://hub\.example\.org/cast/bind/[0-9a-f]{32}"\}$
--- error_log
on topic "cfg-t29" created for 1200 s
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 30: cast_public_url with variables
--- config
    location /api/hub { cast_hub; cast_public_url https://$host:4443/hub; }
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=cfg-t30&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
Host: viewer.example
--- error_code: 202
--- response_body_like: ^\{"hub\.channel\.endpoint":"wss://viewer\.example:4443/hub/bind/[0-9a-f]{32}"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 31: cast_dialect fhircast at server level reaches the location
--- config
    cast_dialect fhircast;
    location /api/hub { cast_hub; }
--- request
POST /api/hub
hub.mode=subscribe&hub.topic=cfg-t31&hub.events=a
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 400
--- response_body_like: ^\{"error":"missing hub\.channel\.type"\}$
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 32: cast_lease_max below the built-in default lease, alone, is a valid configuration
--- init
my ($rc, $out) = main::nginx_t('lease-max-only', 'cast_lease_max 1h;');
Test::More::is($rc, 0, '008 init: nginx -t accepts "cast_lease_max 1h;" without cast_lease_default')
    or Test::More::diag($out);
($rc, $out) = main::nginx_t('lease-max-and-default', 'cast_lease_max 1h; cast_lease_default 30m;');
Test::More::is($rc, 0, '008 init: nginx -t accepts cast_lease_max 1h with cast_lease_default 30m')
    or Test::More::diag($out);
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local",
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 33: cast_ws_max_message_size 10
--- config
    location /bind/ { cast_websocket; cast_ws_max_message_size 10; }
--- must_die
--- error_log
value is too small, the minimum is 128 bytes



=== TEST 34: cast_ws_message_timeout 0
--- config
    location /bind/ { cast_websocket; cast_ws_message_timeout 0; }
--- must_die
--- error_log
value is too small, the minimum is 1ms



=== TEST 35: cast_ws_max_message_size and cast_ws_message_timeout at http, server and location level
--- http_config
    cast_ws_max_message_size 64k;
    cast_ws_message_timeout 10s;
--- config
    cast_ws_max_message_size 2m;
    location /bind/ { cast_websocket; cast_ws_max_message_size 128; cast_ws_message_timeout 500ms; }
    location = /cast/status { cast_status; }
--- request
GET /cast/status
--- response_body_like: ^\{"mode":"local",
--- no_error_log
[alert]
[crit]
[emerg]
signal



=== TEST 36: cast_io_uring takes on or off
--- http_config
    cast_io_uring maybe;
--- must_die
--- error_log
invalid value "maybe" in "cast_io_uring" directive, it must be "on" or "off"



=== TEST 37: cast_io_uring is an http-level directive
--- config
    location /api/hub { cast_hub; cast_io_uring on; }
--- must_die
--- error_log
"cast_io_uring" directive is not allowed here
