# Every shipped example in conf-examples/ loads and protects its admin
# routes (SPEC 6): reset (DELETE {base}) and cast_status.
#
# For each conf-examples/*.conf this test writes an adjusted copy into a
# temporary directory (never into t/servroot, never over the example):
# load_module points at the built module, every "listen" becomes
# 127.0.0.1:<a port of this test>, cast_redis points at a private Redis
# (password= dropped), pid, logs and temp paths go into the temporary
# directory, and the files an example names go there too, made at test
# time: a certificate for ssl_certificate / ssl_certificate_key (openssl),
# a JWK Set for cast_auth_jwks and a secret for cast_auth_secret
# (t/lib/CastAuth.pm) and a random secret for cast_oauth_key.  Nothing
# else changes.  Then:
#
#   - `nginx -t` accepts the copy;
#   - nginx runs it, and a client from 127.0.0.5 (standing for any other
#     host: the examples allow only 127.0.0.1) gets 403, or 405 without
#     DELETE in Allow, for DELETE on every cast_hub location, and 403 for
#     every cast_status location, also when it sends X-Real-IP /
#     X-Forwarded-For headers claiming 127.0.0.1;
#   - from 127.0.0.1 the same status locations answer 200, and DELETE
#     answers 200 where the example enables cast_reset, so the refusals
#     above come from the access rules, not from a broken route;
#   - a cast_hub location with "cast_auth jwt" refuses a subscribe without
#     a token (401) and accepts one with a token of the test's key, for
#     the example's issuer and audience (202);
#   - servers that listen with "ssl" are asked over TLS.
#
# Environment: TEST_NGINX_BINARY (nginx), TEST_NGINX_LOAD_MODULES (the
# module .so), TEST_NGINX_SERVER_PORT / TEST_NGINX_PORT (first port; this
# test uses it and the three after it), TEST_NGINX_REDIS_PORT (6435).
# Plain Test::More: runs the same under the real Test::Nginx.

use strict;
use warnings;

use Test::More;
use File::Temp qw(tempdir);
use File::Spec ();
use IO::Socket::INET ();
use IO::Select ();
use POSIX qw(WNOHANG);
use Time::HiRes qw(sleep time);

use lib 't/lib';
use CastTest qw(server_port json_decode);
use CastRedis;
use CastAuth;
use IO::Socket::SSL ();

my $Nginx = $ENV{TEST_NGINX_BINARY} || 'nginx';
my @Modules = split ' ', ($ENV{TEST_NGINX_LOAD_MODULES} || '');
if (!@Modules && -f 'build/ngx_http_cast_module.so') {
    @Modules = (File::Spec->rel2abs('build/ngx_http_cast_module.so'));
}
die "set TEST_NGINX_LOAD_MODULES to the module .so (see the Makefile)\n"
    if !@Modules;

$ENV{TEST_NGINX_REDIS_PORT} ||= 6435;

my $Other = '127.0.0.5';        # a client address the examples refuse
my $Slow = $ENV{TEST_NGINX_USE_VALGRIND} ? 6 : 1;

my @Examples = sort glob('conf-examples/*.conf');
ok(scalar @Examples, 'conf-examples/ has examples: ' . join(' ', @Examples));

my $Redis = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->start;

my $NginxPid;
my $Keys;           # made when an example names key files
END { stop_nginx() }

for my $file (@Examples) {
    check_example($file);
}

done_testing();


# ---------------------------------------------------------------------------

sub slurp {
    my $f = shift;
    open my $in, '<', $f or die "$f: $!\n";
    local $/;
    return scalar <$in>;
}

# the adjusted copy; returns its text
sub adjust {
    my ($text, $dir, $name) = @_;
    my $n = 0;

    $text =~ s/#[^\n]*//g;         # comments may quote directives

    my $loads = 0;
    $text =~ s{^([ \t]*)load_module\s+[^;]*ngx_http_cast_module\.so\s*;}{
        $loads++;
        $1 . join("\n$1", map { "load_module $_;" } @Modules)
    }gme;
    is($loads, 1, "$name: loads the module once");

    $text =~ s{\blisten\s+([^;\s]+)([^;]*);}{
        my $port = server_port() + $n++;
        "listen 127.0.0.1:$port$2;"
    }ge;

    $text =~ s{\bcast_redis\s+[^\s;]+([^;]*);}{
        my $rest = $1;
        $rest =~ s/\bpassword=\S+//;
        "cast_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT}$rest;"
    }ge;

    $text =~ s{\berror_log\s+\S+}{error_log $dir/logs/error.log}g;

    # the files an example names, made here
    if ($text =~ /\bssl_certificate\b/) {
        my $out = `openssl req -x509 -newkey rsa:2048 -nodes -days 2 \\
                       -subj /CN=localhost -keyout '$dir/key.pem' \\
                       -out '$dir/cert.pem' 2>&1`;
        die "openssl could not make a certificate: $out\n" if $?;
        $text =~ s{\bssl_certificate\s+[^;]+;}{ssl_certificate $dir/cert.pem;}g;
        $text =~ s{\bssl_certificate_key\s+[^;]+;}{ssl_certificate_key $dir/key.pem;}g;
    }
    if ($text =~ /\bcast_auth_(?:jwks|secret)\b/) {
        $Keys ||= CastAuth->new->rsa('k1')->secret('s1');
        my $jwks = $Keys->jwks('jwks.json', 'k1');
        my $secret = $Keys->secret_file('secret.key', 's1');
        $text =~ s{\bcast_auth_jwks\s+[^;\s]+}{cast_auth_jwks $jwks}g;
        $text =~ s{\bcast_auth_secret\s+[^;\s]+}{cast_auth_secret $secret}g;
    }

    if ($text =~ /\bcast_oauth_key\b/) {
        # what scripts/run.sh does for `make run`: a fresh random secret
        open my $rnd, '<:raw', '/dev/urandom' or die "/dev/urandom: $!\n";
        read($rnd, my $raw, 32) == 32 or die "/dev/urandom: short read\n";
        open my $key, '>', "$dir/oauth.key" or die "$dir/oauth.key: $!\n";
        print $key unpack('H*', $raw), "\n";
        close $key or die "$dir/oauth.key: $!\n";
        chmod 0600, "$dir/oauth.key";
        $text =~ s{\bcast_oauth_key\s+[^;\s]+}{cast_oauth_key $dir/oauth.key}g;
    }

    my $temps = join '', map { "    ${_}_temp_path $dir/${_}_temp;\n" }
                         qw(client_body proxy fastcgi uwsgi scgi);
    $text =~ s{^(http\s*\{[^\n]*\n)}{$1    access_log $dir/logs/access.log;\n$temps}m
        or die "no http block\n";

    return "pid $dir/logs/nginx.pid;\n"
           . ($text =~ /^\s*error_log\b/m ? ''
              : "error_log $dir/logs/error.log info;\n")
           . $text;
}

# a configuration as a tree: { name, args => [...], block => [...] | undef }
sub parse_conf {
    my $text = shift;
    $text =~ s/#[^\n]*//g;
    my @tok = $text =~ /([{};]|[^\s{};]+)/g;
    my @stack = ([]);
    my @words;
    for my $t (@tok) {
        if ($t eq ';') {
            my ($name, @args) = @words;
            push @{ $stack[-1] }, { name => $name, args => \@args }
                if defined $name;
            @words = ();
        } elsif ($t eq '{') {
            my ($name, @args) = @words;
            my $d = { name => $name, args => \@args, block => [] };
            push @{ $stack[-1] }, $d;
            push @stack, $d->{block};
            @words = ();
        } elsif ($t eq '}') {
            pop @stack;
        } else {
            push @words, $t;
        }
    }
    return $stack[0];
}

sub find_all {
    my ($list, $name) = @_;
    return grep { $_->{name} eq $name } @$list;
}

sub has {
    my ($d, $name) = @_;
    return grep { $_->{name} eq $name } @{ $d->{block} || [] };
}

# the servers of the adjusted configuration: port, hub and status paths
sub servers {
    my $tree = shift;
    my @servers;
    for my $http (find_all($tree, 'http')) {
        for my $srv (find_all($http->{block}, 'server')) {
            my ($listen) = find_all($srv->{block}, 'listen');
            my ($port) = $listen->{args}[0] =~ /:(\d+)$/;
            my $tls = grep { $_ eq 'ssl' } @{ $listen->{args} };
            my (@hubs, @status);
            for my $loc (find_all($srv->{block}, 'location')) {
                my $path = $loc->{args}[-1];
                if (has($loc, 'cast_hub')) {
                    my ($r) = grep { $_->{name} eq 'cast_reset' }
                              @{ $loc->{block} }, @{ $srv->{block} },
                              @{ $http->{block} };
                    my %auth;
                    for my $k (qw(cast_auth cast_auth_issuer
                                  cast_auth_audience))
                    {
                        my ($d) = grep { $_->{name} eq $k }
                                  @{ $loc->{block} }, @{ $srv->{block} },
                                  @{ $http->{block} };
                        $auth{$k} = $d->{args}[0] if $d;
                    }
                    push @hubs, { path => $path,
                                  reset => $r && $r->{args}[0] eq 'on',
                                  auth => ($auth{cast_auth} // '') eq 'jwt'
                                          ? \%auth : undef };
                }
                push @status, $path if has($loc, 'cast_status');
            }
            push @servers, { port => $port, hubs => \@hubs,
                             status => \@status, tls => $tls };
        }
    }
    return @servers;
}

# one request from a chosen local address: (status, headers, body)
#   $port: a number, or [number, tls]; -body => text among the headers
sub request {
    my ($from, $port, $method, $path, @h) = @_;
    my $tls = ref $port ? $port->[1] : 0;
    $port = $port->[0] if ref $port;
    my %o = (PeerAddr => '127.0.0.1', PeerPort => $port,
             LocalAddr => $from, Proto => 'tcp', Timeout => 5);
    my $s = $tls ? IO::Socket::SSL->new(%o, SSL_verify_mode =>
                                            IO::Socket::SSL::SSL_VERIFY_NONE())
                 : IO::Socket::INET->new(%o);
    return (0, {}, "connect from $from: $! $IO::Socket::SSL::SSL_ERROR")
        if !$s;
    my $send = '';
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
              . "Connection: close\r\n";
    while (@h) {
        my ($k, $v) = splice @h, 0, 2;
        if ($k eq '-body') { $send = $v; next }
        $req .= "$k: $v\r\n";
    }
    $req .= 'Content-Length: ' . length($send) . "\r\n";
    print $s "$req\r\n$send";
    my $resp = '';
    my $sel = IO::Select->new($s);
    my $deadline = time + 5 * $Slow;
    while ((my $left = $deadline - time) > 0) {
        # TLS may hold decrypted bytes that select() does not see
        if (!($tls && $s->pending)) {
            last if !$sel->can_read($left);
        }
        my $r = sysread($s, my $buf, 65536);
        last if !$r;
        $resp .= $buf;
    }
    close $s;
    my ($head, $body) = split /\r\n\r\n/, $resp, 2;
    my ($code) = ($head // '') =~ m{^HTTP/1\.[01] (\d{3})};
    my %h;
    for (split /\r\n/, $head // '') {
        $h{lc $1} = $2 if /^([^:]+):\s*(.*)$/;
    }
    return ($code // 0, \%h, $body // '');
}

sub port_open {
    my $port = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 1);
    return 0 if !$s;
    close $s;
    return 1;
}

sub start_nginx {
    my ($dir, @ports) = @_;
    my $pid = fork // die "fork: $!\n";
    if (!$pid) {
        open STDOUT, '>', "$dir/logs/stdout.log";
        open STDERR, '>&', \*STDOUT;
        exec $Nginx, '-p', "$dir/", '-c', "$dir/nginx.conf",
             '-g', 'daemon off;';
        exit 127;
    }
    $NginxPid = $pid;
    return 0 if !@ports;
    my $deadline = time + 10 * $Slow;
    while (time < $deadline) {
        return 1 if !grep { !port_open($_) } @ports;
        return 0 if waitpid($pid, WNOHANG) == $pid;
        sleep 0.05;
    }
    return 0;
}

sub stop_nginx {
    return if !$NginxPid;
    kill 'TERM', $NginxPid;
    my $deadline = time + 10 * $Slow;
    while (time < $deadline) {
        last if waitpid($NginxPid, WNOHANG) == $NginxPid;
        sleep 0.05;
    }
    if (kill 0, $NginxPid) {
        kill 'KILL', $NginxPid;
        waitpid($NginxPid, 0);
    }
    undef $NginxPid;
}

# retries while Redis mode is still connecting (503)
sub request_ready {
    my @args = @_;
    my $deadline = time + 10 * $Slow;
    while (1) {
        my @r = request(@args);
        return @r if $r[0] != 503 || time > $deadline;
        sleep 0.1;
    }
}

sub check_example {
    my $file = shift;
    my $name = (File::Spec->splitpath($file))[2];
    my $dir = tempdir("cast-example-XXXXXX", TMPDIR => 1, CLEANUP => 1);
    mkdir "$dir/logs" or die "$dir/logs: $!\n";

    my $conf = adjust(slurp($file), $dir, $name);
    open my $out, '>', "$dir/nginx.conf" or die "$dir/nginx.conf: $!\n";
    print $out $conf;
    close $out;

    my $t = `'$Nginx' -p '$dir/' -c '$dir/nginx.conf' -t 2>&1`;
    is($?, 0, "$name: nginx -t succeeds") or diag($t);
    like($t, qr/test is successful/, "$name: nginx -t says the test is successful");

    my @servers = servers(parse_conf($conf));
    my @hubs = map { @{ $_->{hubs} } } @servers;
    my @status = map { @{ $_->{status} } } @servers;
    ok(scalar @hubs, "$name: has a cast_hub location");
    ok(scalar @status, "$name: has a cast_status location");

    ok(start_nginx($dir, map { $_->{port} } @servers),
       "$name: nginx runs and listens") or do {
        diag(slurp("$dir/logs/error.log")) if -f "$dir/logs/error.log";
        stop_nginx();
        return;
    };

    my @spoof = ('X-Real-IP' => '127.0.0.1', 'X-Forwarded-For' => '127.0.0.1');

    for my $srv (@servers) {
        my $p = [ $srv->{port}, $srv->{tls} ];
        my $pn = $srv->{port};
        for my $hub (@{ $srv->{hubs} }) {
            for my $h ([], \@spoof) {
                my $what = "$name: DELETE $hub->{path} on :$pn from $Other"
                           . (@$h ? ' with forwarded-address headers' : '');
                my ($code, $hd) = request($Other, $p, 'DELETE', $hub->{path},
                                          @$h);
                ok($code == 403
                   || ($code == 405 && ($hd->{allow} // '') !~ /DELETE/),
                   "$what: refused (got $code, Allow: "
                   . ($hd->{allow} // '-') . ')');
            }
            my ($code, undef, $body) = request_ready('127.0.0.1', $p, 'DELETE',
                                                    $hub->{path});
            if ($hub->{reset}) {
                is("$code $body" =~ s/"removed":\d+/"removed":N/r,
                   '200 {"status":"cleared","removed":N}',
                   "$name: DELETE $hub->{path} on :$pn from 127.0.0.1 "
                   . "resets (cast_reset on)");
            } else {
                is($code, 405, "$name: DELETE $hub->{path} on :$pn from "
                               . "127.0.0.1: 405 (cast_reset off)");
            }
        }
        for my $hub (grep { $_->{auth} } @{ $srv->{hubs} }) {
            my $form = 'hub.mode=subscribe&hub.channel.type=websocket'
                       . '&hub.topic=T1&hub.events=patient-open';
            my @ct = ('Content-Type' => 'application/x-www-form-urlencoded',
                      -body => $form);
            my ($code, $hd) = request_ready('127.0.0.1', $p, 'POST',
                                            $hub->{path}, @ct);
            is($code, 401, "$name: subscribe on $hub->{path} on :$pn "
                           . "without a token: 401 (cast_auth jwt)");
            like($hd->{'www-authenticate'} // '', qr/^Bearer /,
                 "$name: ... with WWW-Authenticate: Bearer");
            my $claims = CastAuth::claims(topic => 'T1',
                                          scope => 'fhircast/*.read');
            $claims->{iss} = $hub->{auth}{cast_auth_issuer};
            $claims->{aud} = $hub->{auth}{cast_auth_audience};
            delete $claims->{$_} for grep { !defined $claims->{$_} }
                                     qw(iss aud);
            my $token = $Keys->token('k1', $claims);
            my $body;
            ($code, $hd, $body) = request_ready('127.0.0.1', $p, 'POST',
                $hub->{path}, @ct, Authorization => "Bearer $token");
            is($code, 202, "$name: ... with a token for the example's "
                           . "issuer and audience: 202") or diag($body);
            my $j = eval { json_decode($body) } || {};
            is($j->{'hub.events'}, 'patient-open',
               "$name: ... granting what it may read");
        }
        for my $path (@{ $srv->{status} }) {
            for my $h ([], \@spoof) {
                my ($code) = request($Other, $p, 'GET', $path, @$h);
                is($code, 403, "$name: GET $path on :$pn from $Other"
                    . (@$h ? ' with forwarded-address headers' : '')
                    . ': 403');
            }
            my ($code, undef, $body) = request_ready('127.0.0.1', $p, 'GET',
                                                    $path);
            is($code, 200, "$name: GET $path on :$pn from 127.0.0.1: 200");
            like($body, qr/"mode":"(?:local|redis)"/,
                 "$name: ... and it is the hub's status");
        }
    }

    stop_nginx();

    my $log = slurp("$dir/logs/error.log");
    unlike($log, qr/\[(?:alert|crit|emerg)\]|exited on signal/,
           "$name: no alert, crit, emerg or crash in error.log");
}
