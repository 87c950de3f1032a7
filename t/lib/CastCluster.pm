package CastCluster;

# Helpers for the Redis-mode suites (t/031..035): several workers, a second
# nginx host, subscribers that record what they receive.  Core Perl only;
# works under the project's runner and the real Test::Nginx.
#
#   use Test::Nginx::Socket 'no_plan';
#   use lib 't/lib';
#   use CastTest;
#   use CastRedis;
#   use CastCluster;
#
# Clients (every function takes the nginx port first):
#   subscribe($port, $topic, %form)     -> ($code, $bind_path|undef, $body, $headers)
#   bind_ws($port, $path)               -> CastTest::WS after its hello frames
#                                          (dies on failure); $ws->{cast_id}
#   subscriber($port, $topic)           -> subscribe + bind_ws (dies on failure)
#   unsubscribe($port, $topic, $path)   -> ($code, $body)
#   publish($port, $topic, $id, $event) -> ($code, $headers, $body)
#   ev_body($topic, $id, $event)        -> JSON text of one event
#   status($port)                       -> decoded /cast/status (or undef)
#   wait_connected($port, $workers, $secs)
#       polls /cast/status until $workers distinct worker pids answered
#       "redis":"connected" (each on its latest answer); true on success
#   ka_open($port); ka_request($c, $method, $path, $body)
#   ka_pid($c)   the pid of the worker serving keep-alive connection $c
#   ka_spread($port, $workers, $per) -> { pid => [$per connections] }
#   ws_upgrade($c, $path)   bind_ws over keep-alive connection $c
#       keep-alive HTTP/1.1 client -> ($code, $headers, $body); $code is
#       'closed' when the connection went away
#   read_events($ws, $n, $secs)         -> (\@ids, $close)
#       event ids (frames with "hub.mode" or "type" are skipped; pings are
#       answered) until $n ids or $secs of silence; $close is undef, or
#       "close <code>" / "eof" when the socket closed
#   publisher_start(port => $port|[$ports], topic => $t, file => $f,
#                   prefix => 'p', interval => 0.02, max => N)
#       a child process publishing "<prefix>0001", ... (a new connection
#       each, alternating over the ports) until publisher_stop($h), which
#       returns ({ id, code, retry_after, time, body }, ...) in order
#   socket_pids($errlog)                -> { first 8 chars of id => pid }
#       from the "cast: socket bound to subscription" lines
#   master_pid($pidfile); worker_pids($master_pid)  (ps --ppid)
#   log_count($file, $re); log_grep($file, $re)
#   CastCluster::race([$port, $path, $json], ...) -> status codes, in order:
#       the POSTs written at once, each on its own connection
#
# A second nginx host:
#   my $b = CastCluster::Nginx->new(port => 2985,
#               prefix => "$ENV{TEST_NGINX_SERVROOT}2",
#               http_config => "cast_redis 127.0.0.1:6421;",
#               config => "location /api/hub { cast_hub; } ...",
#               workers => 2);
#   $b->start;   # dies unless it listens within 10 s
#   $b->error_log; $b->pid; $b->stop;   # stop: QUIT, then TERM, then KILL
# Every instance started here is stopped when the test process exits.
#
# Two hosts on one Redis (t/032, t/039, t/053, t/056): A is the runner's
# nginx, B a CastCluster::Nginx on the next port, both with two workers:
#   our ($Redis, $B) = CastCluster::two_hosts($locations, $no_error_log);
#       starts Redis (TEST_NGINX_REDIS_PORT) and B, waits for B's Redis
#       connections, and gives every block cast_redis, the locations, a
#       GET /cast/status request and the no_error_log lines unless the
#       block has its own ("[alert] [crit] signal" when undef)
#   CastCluster::two_hosts_ready($Redis)
#       waits for A's Redis connections, closes the sockets the last test
#       kept in $main::HOLD, then empties Redis
# Its binary and modules are those of the runner (TEST_NGINX_BINARY,
# TEST_NGINX_LOAD_MODULES).

use strict;
use warnings;

use Exporter ();
use IO::Socket::INET ();
use IO::Select ();
use POSIX qw(SIGQUIT SIGTERM SIGKILL WNOHANG);
use File::Path qw(make_path remove_tree);
use Time::HiRes qw(time sleep);
use CastTest ();
use MIME::Base64 ();

our @ISA = ('Exporter');
our @EXPORT = qw(
    subscribe bind_ws subscriber unsubscribe publish ev_body status
    wait_connected ka_open ka_request ka_pid ka_spread ws_upgrade read_events socket_pids master_pid
    worker_pids log_count log_grep publisher_start publisher_stop
);

sub _form {
    my %f = @_;
    return join '&', map { "$_=$f{$_}" } sort keys %f;
}

sub subscribe {
    my ($port, $topic, %form) = @_;
    my %f = ('hub.mode' => 'subscribe', 'hub.channel.type' => 'websocket',
             'hub.topic' => $topic, 'hub.events' => 'tick,patient-open,patient-close',
             'hub.lease_seconds' => 3600, %form);
    my ($code, $h, $body) = CastTest::http_request('POST', '/api/hub', _form(%f),
        'Content-Type' => 'application/x-www-form-urlencoded', -port => $port);
    my ($path) = ($body || '') =~ m{"hub\.channel\.endpoint":"wss?://[^/"]+(/bind/[0-9a-f]{32})"};
    return (($code || 0), $path, $body, $h);
}

sub bind_ws {
    my ($port, $path) = @_;
    my $ws = CastTest::WS->connect("ws://127.0.0.1:$port$path", -timeout => 5);
    return _hellos($ws, $port, $path);
}

# the WebSocket handshake on a keep-alive connection (so on a known worker)
sub ws_upgrade {
    my ($c, $path) = @_;
    my $key = MIME::Base64::encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
    CastTest::_write_all($c->{sock}, CastTest::ws_handshake($path, 'Sec-WebSocket-Key' => $key))
        or die "upgrade $path: write failed\n";
    my $ws = bless { sock => $c->{sock}, buf => $c->{buf}, closed => 0, eof => 0,
                     close_code => undef, close_reason => undef }, 'CastTest::WS';
    $c->{sock} = undef;
    my $deadline = time + 5;
    while ($ws->{buf} !~ /\r\n\r\n/) {
        my $left = $deadline - time;
        die "upgrade $path: no response header\n" if $left <= 0 || !$ws->_fill($left);
    }
    my ($head, $rest) = split /\r\n\r\n/, $ws->{buf}, 2;
    $ws->{buf} = defined $rest ? $rest : '';
    my ($code, $headers) = CastTest::_parse_head($head);
    die "upgrade $path: status " . ($code || 'none') . " $ws->{buf}\n" if ($code || 0) != 101;
    die "upgrade $path: bad Sec-WebSocket-Accept\n"
        if ($headers->{'sec-websocket-accept'} || '') ne CastTest::ws_accept_key($key);
    $ws->{status} = $code;
    $ws->{headers} = $headers;
    return _hellos($ws, $c->{port}, $path);
}

sub _hellos {
    my ($ws, $port, $path) = @_;
    my $hello = $ws->recv_json(5);
    die "bind $path: no connection.established frame\n"
        if !$hello || ($hello->{type} || '') ne 'connection.established';
    my $conf = $ws->recv_json(5);
    die "bind $path: no confirmation frame\n"
        if !$conf || ($conf->{'hub.mode'} || '') ne 'subscribe';
    ($ws->{cast_id}) = $path =~ m{/bind/(\w+)};
    $ws->{cast_path} = $path;
    $ws->{cast_port} = $port;
    return $ws;
}

sub subscriber {
    my ($port, $topic, %form) = @_;
    my ($code, $path, $body) = subscribe($port, $topic, %form);
    die "subscribe on $port: $code $body\n" if $code != 202 || !$path;
    return bind_ws($port, $path);
}

sub unsubscribe {
    my ($port, $topic, $path) = @_;
    my $form = _form('hub.mode' => 'unsubscribe', 'hub.channel.type' => 'websocket',
                     'hub.topic' => $topic,
                     'hub.channel.endpoint' => "ws://localhost$path");
    my ($code, undef, $body) = CastTest::http_request('POST', '/api/hub', $form,
        'Content-Type' => 'application/x-www-form-urlencoded', -port => $port);
    return (($code || 0), $body);
}

sub ev_body {
    my ($topic, $id, $event) = @_;
    $event ||= 'tick';
    return '{"timestamp":"2024-01-01T00:00:00.000Z","id":"' . $id
        . '","event":{"hub.topic":"' . $topic . '","hub.event":"' . $event
        . '","context":[{"key":"patient","resource":{"resourceType":"Patient","id":"'
        . $id . '"}}]}}';
}

sub publish {
    my ($port, $topic, $id, $event) = @_;
    my ($code, $h, $body) = CastTest::http_request('POST', "/api/hub/$topic",
        ev_body($topic, $id, $event), 'Content-Type' => 'application/json',
        -port => $port);
    return (($code || 0), $h, $body);
}

sub status {
    my $port = shift;
    my ($code, undef, $body) = eval {
        CastTest::http_request('GET', '/cast/status', undef, -port => $port)
    };
    return undef if !$code || $code != 200;
    return eval { CastTest::json_decode($body) };
}

sub wait_connected {
    my ($port, $workers, $secs) = @_;
    $workers ||= 1;
    my $deadline = time + ($secs || 10);
    my %last;
    while (time < $deadline) {
        my $st = status($port);
        if ($st && $st->{workers} && @{ $st->{workers} }) {
            $last{ $st->{workers}[0]{pid} } = ($st->{redis} || '') eq 'connected';
            my @ok = grep { $last{$_} } keys %last;
            return 1 if @ok >= $workers && @ok == keys %last;
        }
        sleep 0.02;
    }
    return 0;
}

# --- keep-alive HTTP/1.1 client ----------------------------------------------

sub ka_open {
    my $port = shift;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Proto => 'tcp', Timeout => 5)
        or die "CastCluster: connect to $port: $!\n";
    binmode $s;
    return { sock => $s, buf => '', port => $port };
}

sub ka_request {
    my ($c, $method, $path, $body, $ctype) = @_;
    $body = '' if !defined $body;
    $ctype ||= 'application/json';
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n";
    $req .= "Content-Type: $ctype\r\nContent-Length: " . length($body) . "\r\n"
        if length $body;
    $req .= "\r\n$body";
    CastTest::_write_all($c->{sock}, $req) or return ('closed', {}, '');
    my $sel = IO::Select->new($c->{sock});
    my $deadline = time + 10;
    while (1) {
        if ($c->{buf} =~ /\A(HTTP\/1\.1 (\d{3})[^\r]*\r\n(.*?)\r\n\r\n)/s) {
            my ($hl, $code, $h) = (length $1, $2, $3);
            my ($len) = $h =~ /^Content-Length:\s*(\d+)/mi;
            $len = 0 if !defined $len;
            if (length($c->{buf}) >= $hl + $len) {
                my $b = substr($c->{buf}, $hl, $len);
                substr($c->{buf}, 0, $hl + $len) = '';
                my (undef, $hdrs) = CastTest::_parse_head("X\r\n$h");
                return ($code, $hdrs, $b);
            }
        }
        my $left = $deadline - time;
        return ('timeout', {}, '') if $left <= 0 || !$sel->can_read($left);
        my $n = sysread($c->{sock}, $c->{buf}, 65536, length $c->{buf});
        return ('closed', {}, '') if !$n;
    }
}

# pid of the worker that serves keep-alive connection $c
sub ka_pid {
    my $c = shift;
    my ($code, undef, $b) = ka_request($c, 'GET', '/cast/status');
    return $code eq '200' && $b =~ /"pid":(\d+)/ ? $1 : undef;
}

# keep-alive connections until each of $workers worker pids holds $per of
# them (at most $max tries) -> { pid => [connections] }; extras are closed
sub ka_spread {
    my ($port, $workers, $per, $max) = @_;
    $max ||= 400;
    my %by;
    for (1 .. $max) {
        my $c = ka_open($port);
        my $pid = ka_pid($c);
        if (defined $pid && @{ $by{$pid} ||= [] } < $per) {
            push @{ $by{$pid} }, $c;
        } else {
            close $c->{sock};
        }
        last if keys %by >= $workers && !grep { @$_ < $per } values %by;
    }
    return \%by;
}

# --- subscribers -------------------------------------------------------------

sub read_events {
    my ($ws, $n, $secs) = @_;
    $secs = 5 if !defined $secs;
    my @ids;
    my $close;
    while (!defined $n || @ids < $n) {
        my ($op, $p) = $ws->recv_frame($secs);
        if (!defined $op) {
            $close = 'eof' if $ws->{eof};
            last;
        }
        if ($op == 9) { $ws->send_pong($p); next }
        next if $op == 10;
        if ($op == 8) {
            $close = 'close ' . (defined $ws->close_code ? $ws->close_code : '');
            last;
        }
        next if $op != 1;
        my $d = eval { CastTest::json_decode($p) } or next;
        $ws->{cast_denied} = $d->{'hub.reason'}
            if ($d->{'hub.mode'} || '') eq 'denied';
        next if exists $d->{'hub.mode'} || exists $d->{type};
        push @ids, $d->{id};
    }
    return (\@ids, $close);
}

# --- a publisher in a child process ------------------------------------------

sub publisher_start {
    my (%o) = @_;
    my $file = $o{file} or die "publisher_start: no file\n";
    unlink $file, "$file.stop";
    my $pid = fork;
    die "CastCluster: fork: $!\n" if !defined $pid;
    if ($pid == 0) {
        open my $out, '>', $file or POSIX::_exit(2);
        $out->autoflush(1);
        my $i = 0;
        my $ports = ref $o{port} ? $o{port} : [$o{port}];
        while (!-e "$file.stop" && (!$o{max} || $i < $o{max})) {
            $i++;
            my $id = sprintf '%s%04d', $o{prefix} || 'p', $i;
            my $port = $ports->[$i % @$ports];
            my ($code, $h, $body) = eval { publish($port, $o{topic}, $id) };
            $code ||= 'none';
            $body = '' if !defined $body;
            $body =~ s/\s+/ /g;
            my $ra = $h && defined $h->{'retry-after'} ? $h->{'retry-after'} : '-';
            printf $out "%s %s %s %.3f %s\n", $id, $code, $ra, time, $body;
            sleep($o{interval} || 0.02);
        }
        close $out;
        POSIX::_exit(0);
    }
    return { pid => $pid, file => $file };
}

# stops it; -> list of { id code retry_after time body }
sub publisher_stop {
    my $p = shift;
    open my $t, '>', "$p->{file}.stop";
    close $t;
    waitpid($p->{pid}, 0);
    my @r;
    open my $in, '<', $p->{file} or return @r;
    while (my $l = <$in>) {
        chomp $l;
        my ($id, $code, $ra, $t, $body) = split / /, $l, 5;
        push @r, { id => $id, code => $code, retry_after => $ra, time => $t,
                   body => $body };
    }
    close $in;
    return @r;
}

# --- processes and logs --------------------------------------------------------

sub socket_pids {
    my $file = shift;
    my %map;
    open my $in, '<', $file or return \%map;
    while (my $l = <$in>) {
        $map{$2} = $1 if $l =~ /\s(\d+)#\d+: .*cast: socket bound to subscription (\w{8})/;
    }
    close $in;
    return \%map;
}

sub master_pid {
    my $file = shift;
    open my $in, '<', $file or return undef;
    my $pid = <$in>;
    close $in;
    return defined $pid && $pid =~ /(\d+)/ ? $1 : undef;
}

sub worker_pids {
    my $master = shift or return ();
    my $out = `ps --ppid $master -o pid= -o args= 2>/dev/null`;
    my @pids;
    for my $l (split /\n/, $out) {
        # under valgrind a worker keeps valgrind's command line
        push @pids, $1 if $l =~ /^\s*(\d+)\s+nginx: worker process/
                          || ($ENV{TEST_NGINX_USE_VALGRIND}
                              && $l =~ /^\s*(\d+)\s+\S*valgrind/);
    }
    my @sorted = sort { $a <=> $b } @pids;
    return @sorted;
}

sub two_hosts {
    my ($locations, $no_error_log) = @_;
    require CastRedis;
    my $redis_config = "    cast_redis 127.0.0.1:$ENV{TEST_NGINX_REDIS_PORT};\n";
    $no_error_log = "[alert]\n[crit]\nsignal\n" if !defined $no_error_log;

    my $redis = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_PORT})->start;
    my $b = CastCluster::Nginx->new(
        port => Test::Nginx::Util::server_port() + 1,
        prefix => $ENV{TEST_NGINX_SERVROOT} . '2',
        workers => 2,
        http_config => $redis_config,
        config => $locations)->start;
    _redis_ready($b->error_log, 'host B');

    Test::Nginx::Util::add_block_preprocessor(sub {
        my $block = shift;
        $block->set_value('http_config', $redis_config);
        my $cfg = defined $block->config ? $block->config : '';
        $block->set_value('config', $cfg . $locations);
        $block->set_value('request', "GET /cast/status\n")
            if !defined $block->request;
        $block->set_value('no_error_log', $no_error_log)
            if !defined $block->no_error_log;
    });
    return ($redis, $b);
}

sub two_hosts_ready {
    my ($redis) = @_;
    no warnings 'once';
    _redis_ready($Test::Nginx::Util::ErrLogFile, 'host A');
    # the sockets the last test held close first: host B lives on, and
    # would write their records again after the flush
    if (defined $main::HOLD) {
        undef $main::HOLD;
        sleep($ENV{TEST_NGINX_USE_VALGRIND} ? 3 : 0.3);
    }
    $redis->command('FLUSHALL');
}

# both workers' command and pub/sub connections logged ready
sub _redis_ready {
    my ($log, $host) = @_;
    for my $kind ('command', 'pubsub') {
        my $n = CastRedis::wait_for_log($log,
            qr/cast: redis $kind connection to \S+ ready/, 2, 10);
        die "$host: only $n $kind connections ready\n" if $n < 2;
    }
}

# POSTs of JSON sent at once, each on its own connection: [port, path,
# body] each; their status codes, in order ('none' without an answer)
sub race {
    my (@req) = @_;
    my @socks;
    for my $r (@req) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
            PeerPort => $r->[0], Proto => 'tcp', Timeout => 5) or die "connect: $!";
        binmode $s;
        push @socks, [$s, "POST $r->[1] HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
                          . "Content-Type: application/json\r\nContent-Length: "
                          . length($r->[2]) . "\r\n\r\n$r->[2]"];
    }
    syswrite($_->[0], $_->[1]) for @socks;
    my @codes;
    for my $s (@socks) {
        my $resp = '';
        my $sel = IO::Select->new($s->[0]);
        while ($sel->can_read(5)) {
            my $n = sysread($s->[0], my $buf, 65536);
            last if !$n;
            $resp .= $buf;
        }
        push @codes, $resp =~ m{^HTTP/1\.1 (\d+)} ? $1 : 'none';
    }
    return @codes;
}

sub log_grep {
    my ($file, $re) = @_;
    open my $in, '<', $file or return ();
    my @l = grep { $_ =~ $re } <$in>;
    close $in;
    return @l;
}

sub log_count { scalar(log_grep(@_)) }

# --- a second nginx host -------------------------------------------------------

package CastCluster::Nginx;

use strict;
use warnings;
use File::Spec ();
use POSIX qw(SIGQUIT SIGTERM SIGKILL);
use File::Path qw(make_path remove_tree);
use Time::HiRes qw(time sleep);

my %Started;
my $Owner = $$;

sub new {
    my ($class, %o) = @_;
    die "CastCluster::Nginx->new: port and prefix needed\n" if !$o{port} || !$o{prefix};
    my $self = bless { workers => 1, http_config => '', config => '', %o }, $class;
    $self->{prefix} = File::Spec->rel2abs($self->{prefix});
    return $self;
}

sub prefix    { $_[0]{prefix} }
sub port      { $_[0]{port} }
sub error_log { "$_[0]{prefix}/logs/error.log" }
sub pid_file  { "$_[0]{prefix}/logs/nginx.pid" }
sub pid       { CastCluster::master_pid($_[0]->pid_file) }

sub binary {
    no warnings 'once';
    return $ENV{TEST_NGINX_BINARY} || $Test::Nginx::Util::NginxBinary || 'nginx';
}

sub _conf {
    my $self = shift;
    my $p = $self->{prefix};
    my $modules = join '', map { "load_module $_;\n" }
                           grep { length } split /\s+/, ($ENV{TEST_NGINX_LOAD_MODULES} || '');
    my $user = $> == 0 ? "user root;\n" : '';
    my $temps = join '', map { "    ${_}_temp_path $p/${_}_temp;\n" }
                         qw(client_body proxy fastcgi uwsgi scgi);
    my $level = $self->{log_level} || 'info';
    return <<_EOC_;
${modules}worker_processes $self->{workers};
daemon on;
master_process on;
error_log $p/logs/error.log $level;
pid $p/logs/nginx.pid;
$user
events {
    accept_mutex off;
    worker_connections 1024;
}

http {
    access_log $p/logs/access.log;
    default_type text/plain;
$temps
$self->{http_config}

    server {
        listen 127.0.0.1:$self->{port};
        server_name localhost;
$self->{config}
    }
}
_EOC_
}

sub _listening {
    my $port = shift;
    my $hex = sprintf '%04X', $port;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $in, '<', $f or next;
        while (my $l = <$in>) {
            return 1 if $l =~ /^\s*\d+:\s+[0-9A-F]+:$hex\s+[0-9A-F]+:[0-9A-F]+\s+0A\s/;
        }
    }
    return 0;
}

sub start {
    my $self = shift;
    my $p = $self->{prefix};
    # one left behind by an aborted run
    if (my $old = $self->pid) { $self->_kill($old) if kill 0, $old }
    remove_tree("$p/logs", "$p/conf", glob("$p/*_temp"));
    make_path("$p/logs", "$p/conf");
    open my $out, '>', "$p/conf/nginx.conf" or die "CastCluster: $p/conf/nginx.conf: $!\n";
    print $out $self->_conf;
    close $out;

    my $bin = $self->binary;
    my @cmd = ($bin, '-p', "$p/", '-c', "$p/conf/nginx.conf");
    my $v = `$bin -v 2>&1` || '';
    if ($v =~ m{nginx/(\d+)\.(\d+)\.(\d+)} && ($1 * 1e6 + $2 * 1e3 + $3) >= 1019005) {
        splice @cmd, 1, 0, '-e', "$p/logs/error.log";
    }
    my $pid = fork;
    die "CastCluster: fork: $!\n" if !defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>>', "$p/logs/error.log";
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        POSIX::_exit(127);
    }
    waitpid($pid, 0);
    die "CastCluster: nginx on port $self->{port} did not start (status $?):\n"
        . join('', CastCluster::log_grep($self->error_log, qr/./)) if $?;
    my $deadline = time + 10;
    until (_listening($self->{port}) && $self->pid) {
        die "CastCluster: nginx on port $self->{port} does not listen\n" if time > $deadline;
        sleep 0.02;
    }
    $Started{ $self->{port} } = $self;
    return $self;
}

sub _kill {
    my ($self, $pid) = @_;
    for my $step ([SIGQUIT, 3], [SIGTERM, 2], [SIGKILL, 2]) {
        kill $step->[0], $pid;
        my $deadline = time + $step->[1];
        while (time < $deadline) {
            return 1 if !kill 0, $pid;
            sleep 0.02;
        }
    }
    return 0;
}

sub stop {
    my $self = shift;
    my $pid = $self->pid;
    $self->_kill($pid) if $pid && kill 0, $pid;
    unlink $self->pid_file;
    delete $Started{ $self->{port} };
}

END {
    if ($$ == $Owner) {
        local $?;
        $_->stop for values %Started;
    }
}

1;
