package CastRedis;

# Private redis-server instances for ngx_http_cast_module's tests.
#
#   use lib 't/lib';
#   use CastRedis;
#
#   $ENV{TEST_NGINX_REDIS_PORT} ||= 6390;
#   my $redis = CastRedis->new(port => $ENV{TEST_NGINX_REDIS_PORT},
#                              password => 'secret',       # optional
#                              unixsocket => 1,            # optional
#                              bind => '::1');             # optional
#   $redis->start;              # dies unless it answers PING within 10 s
#   $redis->command('SET', 'k', 'v');   # reply: string/int/array ref;
#                                       # errors are CastRedis::Error
#   $redis->client_list;        # CLIENT LIST as a string
#   my $s = $redis->session;    # one connection for several commands:
#   $s->command('CLIENT', 'LIST'); $s->close;
#   $redis->kill;               # SIGKILL (connections break at once)
#   $redis->stop;               # SIGTERM, waits for the exit
#   $redis->pause; $redis->resume;      # SIGSTOP / SIGCONT
#   $redis->restart;            # stop (if running) + start, same port
#
#   CastRedis::wait_for_log($file, qr/ready/, $count, $seconds)
#       polls $file until $re matched $count times (returns the count);
#       CastRedis::count_log($file, $re) counts right away.
#
# Each instance runs "redis-server --save '' --appendonly no" bound to
# 127.0.0.1 (or to bind => ...) in its own directory
# t/servroot-redis/<port> (log: redis.log there; unix socket: redis.sock
# there), from this test process; all
# instances are killed when the test process exits.  A redis-server left
# on the port by an aborted run (pid file in that directory) is killed
# first.  Only core Perl is used.
#
# Environment: TEST_NGINX_REDIS_SERVER (redis-server binary, default
# "redis-server" in PATH).

use strict;
use warnings;

use POSIX qw(WNOHANG SIGTERM SIGKILL SIGSTOP SIGCONT);
use IO::Socket::IP ();
use IO::Select ();
use File::Path qw(make_path remove_tree);
use File::Spec ();
use Time::HiRes qw(sleep time);

my %Running;        # pid => instance, for the END block
my $Owner = $$;     # only the process that loaded us cleans up

sub new {
    my ($class, %opt) = @_;
    my $port = $opt{port} or die "CastRedis->new: no port\n";
    my $dir = $opt{dir}
              || File::Spec->rel2abs("t/servroot-redis/$port");
    my $self = bless {
        port       => $port,
        password   => $opt{password},
        unixsocket => $opt{unixsocket},
        bind       => $opt{bind} || '127.0.0.1',
        dir        => $dir,
        binary     => $opt{binary} || $ENV{TEST_NGINX_REDIS_SERVER}
                      || 'redis-server',
        args       => $opt{args} || [],
        pid        => undef,
    }, $class;
    return $self;
}

sub port     { $_[0]{port} }
sub pid      { $_[0]{pid} }
sub dir      { $_[0]{dir} }
sub password { $_[0]{password} }
sub socket_path { File::Spec->catfile($_[0]{dir}, 'redis.sock') }
sub log_file    { File::Spec->catfile($_[0]{dir}, 'redis.log') }

my $Version;

sub server_version {
    my $self = shift;
    return $Version if defined $Version;
    my $bin = $self->{binary};
    my $out = `$bin --version 2>/dev/null` || '';
    ($Version) = $out =~ /\bv=(\d+)\./;
    $Version = 0 if !defined $Version;
    return $Version;
}

sub _kill_stale {
    my $self = shift;
    my $pidfile = File::Spec->catfile($self->{dir}, 'redis.pid');
    open my $in, '<', $pidfile or return;
    my $pid = <$in>;
    close $in;
    return if !defined $pid || $pid !~ /^\s*(\d+)/;
    $pid = $1;
    my $cmdline = '';
    if (open my $c, '<', "/proc/$pid/cmdline") {
        local $/;
        $cmdline = <$c> // '';
        close $c;
    }
    return if $cmdline !~ /redis/;
    CORE::kill SIGKILL, $pid;
    for (1 .. 100) {
        last if !CORE::kill 0, $pid;
        sleep 0.02;
    }
}

sub start {
    my $self = shift;
    die "CastRedis: already running on port $self->{port}\n"
        if $self->is_running;

    make_path($self->{dir});
    $self->_kill_stale;
    unlink $self->socket_path;

    my @cmd = ($self->{binary},
               '--port', $self->{port},
               '--bind', $self->{bind},
               '--save', '',
               '--appendonly', 'no',
               '--daemonize', 'no',
               '--dir', $self->{dir},
               '--pidfile', File::Spec->catfile($self->{dir}, 'redis.pid'),
               '--logfile', $self->log_file);
    push @cmd, '--requirepass', $self->{password}
        if defined $self->{password};
    push @cmd, '--unixsocket', $self->socket_path, '--unixsocketperm', '700'
        if $self->{unixsocket};
    # DEBUG is off by default since Redis 7
    push @cmd, '--enable-debug-command', 'local'
        if $self->server_version >= 7;
    push @cmd, @{ $self->{args} };

    my $pid = fork;
    die "CastRedis: fork failed: $!\n" if !defined $pid;
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', File::Spec->catfile($self->{dir}, 'stdout.log');
        open STDERR, '>&', \*STDOUT;
        { no warnings 'exec'; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0] failed: $!\n";
        POSIX::_exit(127);
    }
    $self->{pid} = $pid;
    $Running{$pid} = $self;

    my $deadline = time + 10;
    while (time < $deadline) {
        if (waitpid($pid, WNOHANG) == $pid) {
            delete $Running{$pid};
            $self->{pid} = undef;
            die "CastRedis: redis-server on port $self->{port} exited at "
                . "start:\n" . $self->_tail;
        }
        my $r = eval { $self->command('PING') };
        return $self if defined $r && $r eq 'PONG';
        sleep 0.05;
    }
    $self->kill;
    die "CastRedis: redis-server on port $self->{port} does not answer:\n"
        . $self->_tail;
}

sub _tail {
    my $self = shift;
    my $text = '';
    my $stdout = File::Spec->catfile($self->{dir}, 'stdout.log');
    for my $f ($self->log_file, $stdout) {
        open my $in, '<', $f or next;
        my @l = <$in>;
        close $in;
        $text .= join '', @l[($#l > 20 ? $#l - 20 : 0) .. $#l];
    }
    return $text;
}

sub is_running {
    my $self = shift;
    my $pid = $self->{pid} or return 0;
    if (waitpid($pid, WNOHANG) == $pid) {
        delete $Running{$pid};
        $self->{pid} = undef;
        return 0;
    }
    return CORE::kill 0, $pid;
}

sub _signal_and_wait {
    my ($self, $sig, $wait) = @_;
    my $pid = $self->{pid} or return;
    CORE::kill SIGCONT, $pid;          # a paused server cannot handle TERM
    CORE::kill $sig, $pid;
    my $deadline = time + $wait;
    while (time < $deadline) {
        my $r = waitpid($pid, WNOHANG);
        if ($r == $pid || $r == -1) {
            delete $Running{$pid};
            $self->{pid} = undef;
            return 1;
        }
        sleep 0.01;
    }
    CORE::kill SIGKILL, $pid;
    waitpid($pid, 0);
    delete $Running{$pid};
    $self->{pid} = undef;
    return 0;
}

sub stop    { $_[0]->_signal_and_wait(SIGTERM, 5) }
sub kill    { $_[0]->_signal_and_wait(SIGKILL, 5) }
sub pause   { CORE::kill SIGSTOP, $_[0]{pid} if $_[0]{pid} }
sub resume  { CORE::kill SIGCONT, $_[0]{pid} if $_[0]{pid} }

sub restart {
    my $self = shift;
    $self->stop if $self->is_running;
    return $self->start;
}

# --- a tiny blocking RESP client -------------------------------------------

sub connect {
    my ($self, %opt) = @_;
    my $s = IO::Socket::IP->new(PeerAddr => $self->{bind},
                                  PeerPort => $self->{port},
                                  Proto => 'tcp',
                                  Timeout => $opt{timeout} || 2)
        or die "CastRedis: cannot connect to port $self->{port}: $!\n";
    binmode $s;
    my $conn = { sock => $s, buf => '', timeout => $opt{timeout} || 5 };
    if (defined $self->{password} && !$opt{noauth}) {
        my $r = _call($conn, 'AUTH', $self->{password});
        die $r if ref $r eq 'CastRedis::Error';
    }
    return $conn;
}

sub encode {
    my @args = @_;
    my $out = '*' . scalar(@args) . "\r\n";
    for my $a (@args) {
        $out .= '$' . length($a) . "\r\n$a\r\n";
    }
    return $out;
}

sub _readline {
    my $conn = shift;
    while ($conn->{buf} !~ /\r\n/) {
        _fill($conn);
    }
    $conn->{buf} =~ s/\A(.*?)\r\n//s;
    return $1;
}

sub _fill {
    my $conn = shift;
    my $sel = IO::Select->new($conn->{sock});
    die "CastRedis: read timed out\n" if !$sel->can_read($conn->{timeout});
    my $n = sysread($conn->{sock}, $conn->{buf}, 65536, length $conn->{buf});
    die "CastRedis: connection closed\n" if !$n;
}

sub _read_reply {
    my $conn = shift;
    my $line = _readline($conn);
    my ($t, $rest) = (substr($line, 0, 1), substr($line, 1));
    return $rest if $t eq '+';
    return bless \$rest, 'CastRedis::Error' if $t eq '-';
    return 0 + $rest if $t eq ':';
    if ($t eq '$') {
        return undef if $rest < 0;
        _fill($conn) while length($conn->{buf}) < $rest + 2;
        my $v = substr($conn->{buf}, 0, $rest);
        substr($conn->{buf}, 0, $rest + 2) = '';
        return $v;
    }
    if ($t eq '*') {
        return undef if $rest < 0;
        return [ map { _read_reply($conn) } 1 .. $rest ];
    }
    die "CastRedis: protocol error: $line\n";
}

sub _call {
    my ($conn, @args) = @_;
    my $data = encode(@args);
    while (length $data) {
        my $n = syswrite($conn->{sock}, $data);
        die "CastRedis: write failed: $!\n" if !defined $n;
        substr($data, 0, $n) = '';
    }
    return _read_reply($conn);
}

# one command on a new connection; returns the reply
sub command {
    my ($self, @args) = @_;
    my $conn = $self->connect;
    my $r = _call($conn, @args);
    close $conn->{sock};
    return $r;
}

# sends a command and does not wait (e.g. DEBUG SLEEP); returns the socket
sub send_command {
    my ($self, @args) = @_;
    my $conn = $self->connect;
    syswrite($conn->{sock}, encode(@args));
    return $conn->{sock};
}

# a connection kept open for several commands (e.g. while new connections
# are refused): $s = $redis->session; $s->command(...); $s->close
sub session {
    my ($self, %opt) = @_;
    return bless { conn => $self->connect(%opt) }, 'CastRedis::Session';
}

sub client_list {
    my $self = shift;
    my $r = $self->command('CLIENT', 'LIST');
    return ref $r ? '' : $r;
}

# --- error.log helpers -------------------------------------------------------

sub count_log {
    my ($file, $re) = @_;
    open my $in, '<', $file or return 0;
    my $n = 0;
    while (my $l = <$in>) {
        $n++ if $l =~ $re;
    }
    close $in;
    return $n;
}

sub wait_for_log {
    my ($file, $re, $count, $seconds) = @_;
    $count ||= 1;
    $seconds ||= 10;
    my $deadline = time + $seconds;
    my $n;
    while (1) {
        $n = count_log($file, $re);
        return $n if $n >= $count || time > $deadline;
        sleep 0.05;
    }
}

END {
    if ($$ == $Owner) {
        local $?;
        for my $self (values %Running) {
            $self->kill;
        }
    }
}

package CastRedis::Session;

sub command {
    my ($self, @args) = @_;
    return CastRedis::_call($self->{conn}, @args);
}

sub close {
    my $self = shift;
    CORE::close($self->{conn}{sock}) if $self->{conn}{sock};
    $self->{conn}{sock} = undef;
}

package CastRedis::Error;

use overload '""' => sub { ${ $_[0] } }, fallback => 1;

1;
