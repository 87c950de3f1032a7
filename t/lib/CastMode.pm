package CastMode;

# Runs an HTTP / WebSocket suite in local mode or in Redis mode with the
# same blocks and the same assertions.  A dual-mode suite has one line
# after "use CastTest ...;":
#
#   use Test::Nginx::Socket 'no_plan';
#   use lib 't/lib';
#   use CastTest;
#   use CastMode;
#
# TEST_NGINX_CAST_MODE selects the mode:
#   local (default, or unset)  nothing changes: one worker, no cast_redis.
#   redis   a private redis-server (t/lib/CastRedis.pm) on
#           TEST_NGINX_CAST_REDIS_PORT (default 6470) for the whole file;
#           master_process on, 2 worker processes (TEST_NGINX_CAST_WORKERS);
#           every block that starts nginx gets "cast_redis 127.0.0.1:<port>;"
#           appended to its http_config.  Before such a block the nginx of
#           the previous block is stopped (QUIT, like Test::Nginx) and
#           Redis is emptied (FLUSHALL), so every block starts from an empty
#           hub as in local mode; its "--- init" first waits until every
#           worker's two Redis connections are ready.
#
# Blocks that are local mode by nature (e.g. "nginx -t refuses two workers
# without cast_redis") say so; in Redis mode they are reported as skipped
# with the reason:
#
#   --- cast_local_only: asserts the refusal of 2 workers without cast_redis
#
# In Redis mode "mode":"local" in a block's expected response body
# (response_body, response_body_like, as a string or a list) becomes
# "mode":"redis": /cast/status names the store in use.
#
# CastTest::cast_mode() answers 'local' or 'redis' (for helpers that must
# wait for delivery through Redis, see CastTest::settle()).
#
# Works under the project's runner (prove -I t/runner) and the real
# Test::Nginx 0.33; core Perl only.

use strict;
use warnings;

use POSIX qw(SIGQUIT SIGTERM SIGKILL);
use Time::HiRes qw(time sleep);
use CastRedis;

our $Mode = lc($ENV{TEST_NGINX_CAST_MODE} || 'local');
our $Active;        # true in Redis mode (set by import)
our $Redis;         # the file's CastRedis instance
our $Workers;
our $ReadyTimeout = 10;

sub import {
    return if $Active;
    if ($Mode eq 'local') {
        return;
    }
    die "CastMode: TEST_NGINX_CAST_MODE must be \"local\" or \"redis\", "
        . "not \"$Mode\"\n" if $Mode ne 'redis';

    no warnings 'once';
    die "CastMode: load Test::Nginx::Socket before CastMode\n"
        if !defined &Test::Nginx::Util::add_block_preprocessor;

    $ENV{TEST_NGINX_CAST_REDIS_PORT} ||= 6470;
    $Workers = $ENV{TEST_NGINX_CAST_WORKERS} || 2;
    $ReadyTimeout *= 6 if $ENV{TEST_NGINX_USE_VALGRIND};

    $Redis = CastRedis->new(port => $ENV{TEST_NGINX_CAST_REDIS_PORT})->start;
    $Active = 1;

    &Test::Nginx::Util::master_on();
    &Test::Nginx::Util::workers($Workers);
    &Test::Nginx::Util::add_block_preprocessor(\&_preprocess);
}

sub mode { $Active ? 'redis' : 'local' }

sub redis { $Redis }

sub _preprocess {
    my $block = shift;

    if (defined(my $why = $block->cast_local_only)) {
        # visible as a skip in the TAP output, with the reason
        $why =~ s/\s+$//;
        $block->set_value('skip_eval', '1: 1');
        $block->set_value('name', $block->name . " (local mode only: $why)");
        # Test::Nginx runs an init even for a skipped block: against no
        # nginx (valgrind stops it after each block) or the last one's
        $block->set_value('init', '');
        return;
    }

    # a block without a config of its own reuses the running nginx
    return if !defined $block->config;

    my $line = "    cast_redis 127.0.0.1:$ENV{TEST_NGINX_CAST_REDIS_PORT};\n";
    my $hc = $block->http_config;
    $block->set_value('http_config',
                      (defined $hc && length $hc ? "$hc\n" : '') . $line);

    for my $sec (qw(response_body response_body_like)) {
        my $v = $block->$sec;
        next if !defined $v;
        if (ref $v eq 'ARRAY') {
            $block->set_value($sec, [ map { _redis_mode_body($_) } @$v ]);
        } elsif (!ref $v) {
            $block->set_value($sec, _redis_mode_body($v));
        }
    }

    return if defined $block->must_die;

    my $init = $block->init;
    $block->set_value('init', "CastMode::before_block();\n"
                              . (defined $init ? $init : ''));

    # the previous block's nginx goes first, then its Redis state
    stop_nginx();
    $Redis->command('FLUSHALL');
}

sub _redis_mode_body {
    my $s = shift;
    return $s if !defined $s || ref $s;
    $s =~ s/"mode":"local"/"mode":"redis"/g;
    return $s;
}

sub _pid {
    no warnings 'once';
    open my $in, '<', $Test::Nginx::Util::PidFile or return undef;
    my $pid = <$in>;
    close $in;
    return defined $pid && $pid =~ /(\d+)/ ? $1 : undef;
}

# a live process, not a zombie
sub _alive {
    my $pid = shift;
    return 0 if !kill 0, $pid;
    open my $in, '<', "/proc/$pid/stat" or return 1;
    my $st = <$in>;
    close $in;
    return !(defined $st && $st =~ /^\d+ \(.*\) Z /);
}

sub _children {
    my $pid = shift;
    my $out = `ps --ppid $pid -o pid= 2>/dev/null` || '';
    return grep { /^\d+$/ } map { s/\s+//gr } split /\n/, $out;
}

# stops the nginx of the pid file: QUIT, then TERM, then KILL (the master
# and its workers), like Test::Nginx does between blocks
sub stop_nginx {
    my $pid = _pid() or return;
    return if !_alive($pid);
    # the project's runner: no nginx of its own is left to wait for
    no warnings 'once';
    $Test::Nginx::Util::NginxRunning = undef;
    my @workers = _children($pid);
    for my $step ([SIGQUIT, 3], [SIGTERM, 2]) {
        kill $step->[0], $pid;
        my $deadline = time + $step->[1];
        while (time < $deadline) {
            return if !_alive($pid);
            sleep 0.01;
        }
    }
    kill SIGKILL, $pid, @workers;
    my $deadline = time + 2;
    sleep 0.01 while _alive($pid) && time < $deadline;
}

# the start of every block's --- init: the workers' Redis connections
sub before_block {
    no warnings 'once';
    my $log = $Test::Nginx::Util::ErrLogFile;
    for my $kind ('command', 'pubsub') {
        my $n = CastRedis::wait_for_log($log,
            qr/cast: redis $kind connection to \S+ ready/, $Workers,
            $ReadyTimeout);
        if ($n < $Workers) {
            Test::More::fail("redis mode: $n of $Workers workers have a "
                             . "ready $kind connection");
            return;
        }
    }
}

1;
