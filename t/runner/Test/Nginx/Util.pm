package Test::Nginx::Util;

# Project-local, minimal re-implementation of the parts of OpenResty's
# Test::Nginx::Util that ngx_http_cast_module's test suite uses.  Written
# from the documented behaviour of Test::Nginx 0.3x; see
# t/runner/Test/Nginx/Socket.pm for the user-facing documentation.
#
# This module owns: global settings (env vars, setters), nginx.conf
# generation, server-root setup, starting/stopping nginx, log access and
# the per-block driver (run_tests/run_test).  Request sending and the
# response/log assertions live in Test::Nginx::Socket.

use strict;
use warnings;

our $VERSION = '0.33_cast';

use Exporter ();
our @ISA = ('Exporter');

use POSIX qw(SIGQUIT SIGKILL SIGTERM WNOHANG :sys_wait_h);
use File::Spec ();
use File::Path qw(make_path remove_tree);
use File::Temp ();
use List::Util qw(shuffle);
use Time::HiRes qw(sleep time);
use IO::Socket::INET ();
use Scalar::Util qw(looks_like_number);
use Test::LongString ();
use Test::More ();
use Carp qw(croak);

# ---------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------

our $Verbose       = $ENV{TEST_NGINX_VERBOSE};
our $NoLongString  = undef;
our $RepeatEach    = 1;
our $NoShuffle     = $ENV{TEST_NGINX_NO_SHUFFLE} || 0;
our $LoadModules   = $ENV{TEST_NGINX_LOAD_MODULES};
our $UseValgrind   = $ENV{TEST_NGINX_USE_VALGRIND};
our $Timeout       = $ENV{TEST_NGINX_TIMEOUT} || 3;
our $CheckAccumErrLog = $ENV{TEST_NGINX_CHECK_ACCUM_ERR_LOG};
our $TestNginxSleep   = $ENV{TEST_NGINX_SLEEP} || 0.015;
our $ServerAddr    = '127.0.0.1';
our $ServerName    = 'localhost';
our $Workers       = 1;
our $WorkerConnections = 1024;
our $LogLevel      = $ENV{TEST_NGINX_LOG_LEVEL} || 'debug';
our $MasterProcessEnabled = $ENV{TEST_NGINX_MASTER_PROCESS} || 'off';
our $DaemonEnabled = 'on';
our $ServerPort    = $ENV{TEST_NGINX_SERVER_PORT} || $ENV{TEST_NGINX_PORT} || 1984;
our $ServerPortForClient = $ENV{TEST_NGINX_CLIENT_PORT} || $ServerPort;
our $NoRootLocation = 0;
our $ConfigPreamble = '';
our $NginxBinary   = $ENV{TEST_NGINX_BINARY} || default_nginx_binary();

our (@EnvToNginx, @BlockPreprocessors, @CleanupHandlers);
our ($NginxVersion, $NginxRawVersion, $NginxUseDashE, $NginxStderrLog);
our ($PrevConfig, $PrevBlock, $ErrLogFilePos, $AccLogFilePos);
our $ChildPid;          # nginx run in the foreground (valgrind mode)
our $NginxRunning;      # we believe an nginx of ours is up
our $InSubprocess;
our $RunTestHelper;     # set by Test::Nginx::Socket
our $CheckErrorLog;     # set by Test::Nginx::Socket

if ($UseValgrind) {
    $DaemonEnabled = 'off';
}

our $ServRoot = $ENV{TEST_NGINX_SERVROOT}
                ? File::Spec->rel2abs($ENV{TEST_NGINX_SERVROOT})
                : File::Spec->rel2abs('t/servroot');
$ENV{TEST_NGINX_SERVER_ROOT} = $ServRoot;

our $LogDir     = File::Spec->catfile($ServRoot, 'logs');
our $ErrLogFile = File::Spec->catfile($LogDir, 'error.log');
our $AccLogFile = File::Spec->catfile($LogDir, 'access.log');
our $HtmlDir    = File::Spec->catfile($ServRoot, 'html');
our $ConfDir    = File::Spec->catfile($ServRoot, 'conf');
our $ConfFile   = File::Spec->catfile($ConfDir, 'nginx.conf');
our $PidFile    = File::Spec->catfile($LogDir, 'nginx.pid');
# the runner's own files stay out of the servroot: Test::Nginx removes only
# what it writes there itself, and stops when it finds anything else
our $RunnerTmp    = File::Temp::tempdir('cast-runner-XXXXXX', TMPDIR => 1,
                                        CLEANUP => 1);
our $StartErrFile = File::Spec->catfile($RunnerTmp, 'nginx-start.stderr');
our $ValgrindLog  = File::Spec->catfile($RunnerTmp, 'valgrind.log');

# nginx-core suppressions shipped next to this runner (t/runner/)
our $CoreSuppressions = do {
    my ($vol, $dir) = File::Spec->splitpath(File::Spec->rel2abs(__FILE__));
    File::Spec->catfile($dir, File::Spec->updir, File::Spec->updir,
                        'valgrind-nginx-core.suppress');
};

our @EXPORT = qw(
    env_to_nginx is_str no_long_string $NoLongString
    server_addr server_name server_port server_port_for_client
    server_root html_dir
    repeat_each workers worker_connections master_on master_off
    master_process_enabled log_level no_shuffle no_root_location
    config_preamble add_block_preprocessor add_cleanup_handler
    bail_out timeout check_accum_error_log verbose sleep_time
    error_log_data access_log_data parse_time parse_headers trim
    show_all_chars get_pid_from_pidfile run_tests
    $ServerPort $ServerPortForClient $ServRoot $ServerAddr $ServerName
    $NginxVersion $NginxBinary $PidFile $ConfFile $ErrLogFile $HtmlDir
    $RepeatEach $RunTestHelper $CheckErrorLog $UseValgrind
);

sub default_nginx_binary {
    for my $dir (split /:/, $ENV{PATH} || '') {
        next if $dir eq '';
        my $p = "$dir/nginx";
        return 'nginx' if -f $p && -x _;
    }
    for my $p ('/usr/sbin/nginx', '/usr/local/nginx/sbin/nginx',
               '/usr/local/openresty/nginx/sbin/nginx')
    {
        return $p if -f $p && -x _;
    }
    return 'nginx';
}

# ---------------------------------------------------------------------------
# setters / getters (same names as the real Test::Nginx)
# ---------------------------------------------------------------------------

sub env_to_nginx (@) {
    croak "env_to_nginx: no arguments specified" if !@_;
    for my $v (@_) {
        if ($v !~ /^[A-Za-z_]/ || $v =~ /\n/) {
            croak "env_to_nginx: bad argument value: $v\n";
        }
        push @EnvToNginx, $v;
    }
}

sub no_long_string ()  { $NoLongString = 1 }
sub no_shuffle ()      { $NoShuffle = 1 }
sub no_root_location () { $NoRootLocation = 1 }
sub master_on ()       { $MasterProcessEnabled = 'on' }
sub master_off ()      { $MasterProcessEnabled = 'off' }
sub check_accum_error_log () { $CheckAccumErrLog = 1 }
sub verbose ()         { $Verbose }
sub sleep_time ()      { $TestNginxSleep }
sub html_dir ()        { $HtmlDir }
sub server_root ()     { $ServRoot }
sub config_preamble ($) { $ConfigPreamble = shift }
sub add_block_preprocessor (&) { unshift @BlockPreprocessors, shift }
sub add_cleanup_handler ($) { unshift @CleanupHandlers, shift }

sub master_process_enabled (@) {
    if (@_) { $MasterProcessEnabled = shift() ? 'on' : 'off'; return }
    return $MasterProcessEnabled;
}

sub repeat_each (@) {
    $RepeatEach = shift if @_;
    return $RepeatEach;
}

sub workers (@) {
    if (@_) { $Workers = shift; return }
    return $Workers;
}

sub worker_connections (@) {
    if (@_) { $WorkerConnections = shift; return }
    return $WorkerConnections;
}

sub log_level (@) {
    if (@_) { $LogLevel = shift; return }
    return $LogLevel;
}

sub timeout (@) {
    if (@_) { $Timeout = shift; return }
    return $Timeout;
}

sub server_addr (@) {
    if (@_) { $ServerAddr = shift; return }
    return $ServerAddr;
}

sub server_name (@) {
    if (@_) { $ServerName = shift; return }
    return $ServerName;
}

sub server_port (@) {
    if (@_) { $ServerPort = shift; return }
    return $ServerPort;
}

sub server_port_for_client (@) {
    if (@_) { $ServerPortForClient = shift; return }
    return $ServerPortForClient;
}

sub is_str (@) {
    my ($got, $expected, $desc) = @_;
    if (ref $expected && ref $expected eq 'Regexp') {
        return Test::More::like($got, $expected, $desc);
    }
    if ($NoLongString) {
        return Test::More::is($got, $expected, $desc);
    }
    return Test::LongString::is_string($got, $expected, $desc);
}

sub parse_time ($) {
    my $t = shift;
    return undef if !defined $t;
    $t =~ s/^\s+|\s+$//g;
    if ($t =~ /^([\d.]+)\s*ms$/) {
        return $1 / 1000;
    }
    if ($t =~ /^([\d.]+)\s*s$/) {
        return $1;
    }
    return $t;
}

sub trim ($) {
    my $s = shift;
    return undef if !defined $s;
    $s =~ s/^\s+|\s+$//g;
    $s =~ s/\n/ /g;
    $s =~ s/\s{2,}/ /g;
    return $s;
}

sub show_all_chars ($) {
    my $s = shift;
    $s =~ s/\n/\\n/g;
    $s =~ s/\r/\\r/g;
    $s =~ s/\t/\\t/g;
    return $s;
}

# "Name: value" lines -> ordered list of [name, value]; "!Name" -> [name, undef]
sub parse_headers ($) {
    my $s = shift;
    my @pairs;
    for my $line (split /\n/, $s) {
        $line =~ s/^\s+|\s+$//g;
        next if $line eq '';
        if ($line =~ s/^!\s*//) {
            push @pairs, [$line, undef];
            next;
        }
        my ($k, $v) = split /\s*:\s*/, $line, 2;
        push @pairs, [$k, defined $v ? $v : ''];
    }
    return \@pairs;
}

# ---------------------------------------------------------------------------
# misc helpers
# ---------------------------------------------------------------------------

sub bail_out (@) {
    cleanup();
    Test::More::BAIL_OUT(join '', @_);
}

sub vwarn { warn @_ if $Verbose }

sub is_running ($) {
    my $pid = shift;
    return 0 if !$pid;
    return 0 if !kill(0, $pid);
    if (open my $fh, '<', "/proc/$pid/stat") {
        my $stat = <$fh>;
        close $fh;
        # a zombie is as good as dead (our init may not reap daemons)
        return 0 if defined $stat && $stat =~ /^\d+ \(.*\) Z /s;
    }
    return 1;
}

sub get_pid_from_pidfile ($) {
    my $name = shift;
    open my $in, '<', $PidFile or return undef;
    my $pid = do { local $/; <$in> };
    close $in;
    return undef if !defined $pid;
    $pid =~ s/\s+//g;
    return $pid =~ /^\d+$/ ? $pid : undef;
}

sub read_file_contents {
    my $f = shift;
    open my $in, '<', $f or return undef;
    binmode $in;
    local $/;
    my $s = <$in>;
    close $in;
    return $s;
}

sub get_canon_version (@) {
    sprintf "%d.%03d%03d", $_[0], $_[1], $_[2];
}

sub get_nginx_version () {
    my $out = `$NginxBinary -V 2>&1`;
    if (!defined $out || $? != 0) {
        bail_out("Failed to get the version of the nginx binary \"$NginxBinary\": "
                 . (defined $out ? $out : ''));
    }
    if ($out =~ m{(?:nginx|openresty)[^/]*/(\d+)\.(\d+)\.(\d+)}s) {
        $NginxRawVersion = "$1.$2.$3";
        my $v = get_canon_version($1, $2, $3);
        # "-e" (startup error log) exists since nginx 1.19.5; with it the
        # early [emerg] messages of a nginx built with
        # --error-log-path=stderr end up in logs/error.log as well.
        $NginxUseDashE = $v >= get_canon_version(1, 19, 5) ? 1 : 0;
        $NginxStderrLog = $out =~ /--error-log-path=stderr\b/ ? 1 : 0;
        return $v;
    }
    bail_out("Failed to parse the output of \"nginx -V\": $out\n");
}

sub expand_env_in_text ($$) {
    my ($text, $name) = @_;
    return undef if !defined $text;
    $text =~ s{\$(TEST_NGINX_[_A-Z0-9]+)}{
        my $var = $1;
        if (!defined $ENV{$var}) {
            bail_out("$name - No environment $var defined.\n");
        }
        $ENV{$var};
    }ge;
    return $text;
}

# ---------------------------------------------------------------------------
# logs
# ---------------------------------------------------------------------------

sub read_log_lines ($$) {
    my ($file, $posref) = @_;
    open my $in, '<', $file or return [];
    binmode $in;
    if (!$CheckAccumErrLog && $$posref && $$posref > 0) {
        seek $in, $$posref, 0;
    }
    my @lines = <$in>;
    if (!$CheckAccumErrLog) {
        $$posref = tell($in);
    }
    close $in;
    return \@lines;
}

sub error_log_data () {
    # give the log phase (after the connection is closed) a chance to run
    sleep $TestNginxSleep * 3;
    $ErrLogFilePos ||= 0;
    return read_log_lines($ErrLogFile, \$ErrLogFilePos);
}

sub access_log_data () {
    sleep $TestNginxSleep * 3;
    $AccLogFilePos = 0;      # the real one always reads the whole file
    open my $in, '<', $AccLogFile or return [];
    my @lines = <$in>;
    close $in;
    return \@lines;
}

# ---------------------------------------------------------------------------
# server root + nginx.conf
# ---------------------------------------------------------------------------

sub setup_server_root () {
    if (-d $ServRoot) {
        remove_tree($ConfDir, $LogDir, $HtmlDir,
                    glob("$ServRoot/*_temp"), glob("$ServRoot/*_cache"));
        unlink $StartErrFile, $ValgrindLog;
    }
    for my $d ($ServRoot, $LogDir, $HtmlDir, $ConfDir) {
        next if -d $d;
        make_path($d) or bail_out("Failed to create directory $d: $!\n");
    }
    my $index = "$HtmlDir/index.html";
    open my $out, '>', $index or bail_out("Can't open $index for writing: $!\n");
    print $out '<html><head><title>It works!</title></head><body>It works!</body></html>';
    close $out;
}

sub write_user_files ($) {
    my $block = shift;
    my $name = $block->name;
    my $files = $block->user_files;
    return if !defined $files;

    if (!ref $files) {
        my @list;
        my ($fname, $body, $date);
        for my $line (split /^/, $files) {
            if ($line =~ /^>>> (\S+)(?:\s+(.+))?/) {
                push @list, [$fname, $body, $date] if defined $fname;
                ($fname, $date, $body) = ($1, $2, undef);
            } else {
                $body .= $line;
            }
        }
        push @list, [$fname, $body, $date] if defined $fname;
        $files = \@list;
    } elsif (ref $files ne 'ARRAY') {
        bail_out("$name - wrong value type for --- user_files: " . ref $files);
    }

    for my $f (@$files) {
        my ($fname, $body, $date) = @$f;
        $body = '' if !defined $body;
        my $path = $fname =~ m{^/} ? $fname : "$HtmlDir/$fname";
        if ($path =~ m{(.*)/}) {
            make_path($1) if !-d $1;
        }
        $body = expand_env_in_text($body, $name);
        open my $out, '>', $path or bail_out("$name - Cannot open $path for writing: $!\n");
        binmode $out;
        print $out $body;
        close $out;
        if ($date) {
            system("TZ=GMT touch -t '$date' '$path'") == 0
                or bail_out("$name - failed to set the mtime of $path\n");
        }
    }
}

sub write_config_file ($$) {
    my ($block, $config) = @_;
    my $name = $block->name;

    my $http_config = expand_env_in_text($block->http_config, $name);
    my $main_config = expand_env_in_text($block->main_config, $name);
    my $post_main_config = expand_env_in_text($block->post_main_config, $name);
    my $server_name = $block->server_name;
    $server_name = $ServerName if !defined $server_name;
    $config = '' if !defined $config;
    $http_config = '' if !defined $http_config;
    $main_config = '' if !defined $main_config;
    $post_main_config = '' if !defined $post_main_config;

    my $modules = '';
    if ($LoadModules) {
        $modules = join '', map { "load_module $_;\n" }
                            grep { length } split /\s+/, $LoadModules;
    }

    my $env = '';
    for my $v (qw(LD_PRELOAD LD_LIBRARY_PATH ASAN_OPTIONS)) {
        $env .= "env $v;\n";
    }
    for my $v (@EnvToNginx) {
        $env .= $v =~ /\s/ ? "env '$v';\n" : "env $v;\n";
    }

    # Distro builds compile absolute temp paths in (Debian: /var/lib/nginx);
    # keep everything inside the server root unless the test sets them.
    my $temps = '';
    for my $t (qw(client_body proxy fastcgi uwsgi scgi)) {
        my $directive = "${t}_temp_path";
        next if $http_config =~ /\b\Q$directive\E\b/ || $config =~ /\b\Q$directive\E\b/;
        $temps .= "    $directive $ServRoot/${t}_temp;\n";
    }

    my $root_location = '';
    if (!$NoRootLocation) {
        $root_location = <<_EOC_;
        location / {
            root $HtmlDir;
            index index.html index.htm;
        }
_EOC_
    }

    my $user = $> == 0 ? "user root;\n" : '';

    open my $out, '>', $ConfFile or bail_out("Can't open $ConfFile for writing: $!\n");
    print $out <<_EOC_;
${modules}worker_processes  $Workers;
daemon $DaemonEnabled;
master_process $MasterProcessEnabled;
error_log $ErrLogFile $LogLevel;
pid       $PidFile;
$env
$main_config

http {
    access_log $AccLogFile;
    default_type text/plain;
    keepalive_timeout  68;
$temps
$http_config

    server {
        listen          $ServerAddr:$ServerPort;
        server_name     '$server_name';

        client_max_body_size 30M;

        # Begin preamble config...
$ConfigPreamble
        # End preamble config...

        # Begin test case config...
$config
        # End test case config.

$root_location    }
}

$post_main_config

events {
    accept_mutex off;
    worker_connections  $WorkerConnections;
}
$user
_EOC_
    close $out;
}

# ---------------------------------------------------------------------------
# process management
# ---------------------------------------------------------------------------

sub port_is_listening ($) {
    my $port = shift;
    my $hex = sprintf '%04X', $port;
    my $found_proc = 0;
    for my $f ('/proc/net/tcp', '/proc/net/tcp6') {
        open my $in, '<', $f or next;
        $found_proc = 1;
        while (my $l = <$in>) {
            # local_address rem_address st
            if ($l =~ /^\s*\d+:\s+[0-9A-F]+:$hex\s+[0-9A-F]+:[0-9A-F]+\s+0A\s/) {
                close $in;
                return 1;
            }
        }
        close $in;
    }
    return undef if !$found_proc;
    return 0;
}

# wait until nginx listens (without connecting to it, so that nothing
# extra shows up in error.log); returns true on success
sub wait_for_nginx ($) {
    my $max = shift;
    my $deadline = time + $max;
    my $step = 0.005;
    while (1) {
        my $l = port_is_listening($ServerPort);
        if (!defined $l) {
            # no /proc: fall back to connecting
            my $s = IO::Socket::INET->new(PeerAddr => $ServerAddr,
                                          PeerPort => $ServerPort,
                                          Proto => 'tcp', Timeout => 0.2);
            if ($s) { close $s; return 1 }
        } elsif ($l) {
            return 1;
        }
        if ($ChildPid && waitpid($ChildPid, WNOHANG) == $ChildPid) {
            undef $ChildPid;
            return 0;
        }
        return 0 if time > $deadline;
        sleep $step;
        $step *= 1.5 if $step < 0.05;
    }
}

sub wait_for_exit ($$) {
    my ($pid, $max) = @_;
    my $deadline = time + $max;
    while (is_running($pid)) {
        if ($ChildPid && $pid == $ChildPid) {
            my $r = waitpid($pid, WNOHANG);
            if ($r == $pid || $r == -1) { undef $ChildPid; return 1 }
        }
        return 0 if time > $deadline;
        sleep 0.01;
    }
    if ($ChildPid && $pid == $ChildPid) {
        waitpid($pid, 0);
        undef $ChildPid;
    }
    return 1;
}

# SIGQUIT, then SIGTERM, then SIGKILL (whole process group when possible)
sub kill_process ($$) {
    my ($pid, $name) = @_;
    return if !$pid;
    vwarn("sending QUIT signal to $pid\n");
    kill SIGQUIT, $pid;
    my $grace = $UseValgrind ? 20 : 1.5;
    return if wait_for_exit($pid, $grace);
    vwarn("sending TERM signal to $pid\n");
    kill SIGTERM, $pid;
    return if wait_for_exit($pid, $UseValgrind ? 10 : 1);
    warn "$name - WARNING: killing the nginx process $pid with force...\n";
    my $pgrp = getpgrp($pid);
    if (defined $pgrp && $pgrp == $pid) {
        kill SIGKILL, -$pid;
    } else {
        kill SIGKILL, $pid;
    }
    wait_for_exit($pid, 2);
}

sub stop_nginx ($) {
    my $name = shift;
    my $pid = get_pid_from_pidfile($name);
    if (!$pid && $NginxRunning) {
        # the daemon writes the pid file after the launcher has exited
        for (1 .. 100) {
            $pid = get_pid_from_pidfile($name);
            last if $pid;
            last if $ChildPid && !is_running($ChildPid);
            sleep 0.01;
        }
    }
    $pid ||= $ChildPid;
    if ($pid && is_running($pid)) {
        kill_process($pid, $name);
    }
    if ($ChildPid) {
        if (is_running($ChildPid)) {
            kill_process($ChildPid, $name);
        } else {
            waitpid($ChildPid, WNOHANG);
        }
        undef $ChildPid;
    }
    unlink $PidFile if -f $PidFile;
    undef $NginxRunning;
}

sub nginx_command () {
    my @cmd = ($NginxBinary);
    push @cmd, '-e', $ErrLogFile if $NginxUseDashE;
    push @cmd, '-p', "$ServRoot/", '-c', $ConfFile;
    if ($UseValgrind) {
        my @vg;
        if ($UseValgrind =~ /^\d+$/) {
            @vg = ('valgrind', '--num-callers=100', '-q', '--tool=memcheck',
                   '--leak-check=full', '--show-possibly-lost=no',
                   '--gen-suppressions=all');
            push @vg, '--suppressions=valgrind.suppress' if -f 'valgrind.suppress';
            push @vg, "--suppressions=$CoreSuppressions" if -f $CoreSuppressions;
        } else {
            @vg = ('valgrind', '-q', split(' ', $UseValgrind));
        }
        push @vg, "--log-file=$ValgrindLog";
        unshift @cmd, @vg;
    }
    return @cmd;
}

# Launches nginx.  Returns (status, stderr_text).  In daemon mode status
# is the launcher's wait status; in foreground (valgrind) mode it is 0 when
# nginx started listening and -1 otherwise.
sub launch_nginx ($) {
    my $name = shift;
    my @cmd = nginx_command();
    vwarn("command: @cmd\n");

    my $foreground = $DaemonEnabled eq 'off';
    my $pid = fork();
    bail_out("$name - fork() failed: $!") if !defined $pid;
    if ($pid == 0) {
        $InSubprocess = 1;
        setpgrp(0, 0) if $foreground;
        open STDIN, '<', '/dev/null';
        open STDOUT, '>', '/dev/null';
        open STDERR, '>', $StartErrFile;
        { no warnings "exec"; exec { $cmd[0] } @cmd; }
        print STDERR "exec $cmd[0] failed: $!\n";
        POSIX::_exit(127);
    }

    if (!$foreground) {
        waitpid($pid, 0);
        my $status = $?;
        $NginxRunning = 1 if $status == 0;
        my $err = read_file_contents($StartErrFile);
        $err = '' if !defined $err;
        $status = -1 if ($status >> 8) == 127 && $err =~ /^exec \S+ failed/;
        return ($status, $err);
    }

    $ChildPid = $pid;
    $NginxRunning = 1;
    my $ok = wait_for_nginx($UseValgrind ? 60 : 10);
    my $err = read_file_contents($StartErrFile);
    $err = '' if !defined $err;
    if (!$ok) {
        my $st = defined $ChildPid ? -1 : ($? || -1);
        stop_nginx($name);
        return ($st, $err);
    }
    return (0, $err);
}

# For nginx builds whose startup log is stderr and that lack "-e":
# append what nginx printed at startup to error.log.
sub merge_startup_stderr ($) {
    my $err = shift;
    return if $NginxUseDashE || !$NginxStderrLog || !length $err;
    open my $out, '>>', $ErrLogFile or return;
    print $out $err;
    close $out;
}

sub check_valgrind_log ($) {
    my $name = shift;
    return if !$UseValgrind;
    my $log = read_file_contents($ValgrindLog);
    unlink $ValgrindLog;
    return if !defined $log || $log !~ /\S/;
    my @bad = grep { /^==\d+==\s+\S/ && !/^==\d+==\s+Warning:/i } split /\n/, $log;
    if (@bad) {
        Test::More::fail("$name - valgrind reported errors/leaks");
        Test::More::diag($log);
    } else {
        warn "$name - valgrind output:\n$log";
    }
}

sub cleanup () {
    return if $InSubprocess;
    $_->() for @CleanupHandlers;
    @CleanupHandlers = ();
    if ($ENV{TEST_NGINX_NO_CLEAN} && !$UseValgrind) {
        return;
    }
    stop_nginx('cleanup');
}

END {
    if (!$InSubprocess) {
        local $?;
        cleanup();
    }
}

# ---------------------------------------------------------------------------
# the per-block driver
# ---------------------------------------------------------------------------

sub run_tests () {
    $NginxVersion = get_nginx_version();

    $ENV{TEST_NGINX_SERVER_PORT} = $ServerPort
        if !defined $ENV{TEST_NGINX_SERVER_PORT};
    # not set by the real Test::Nginx (test files usually do
    # "$ENV{TEST_NGINX_HTML_DIR} ||= html_dir();"); harmless defaults here
    $ENV{TEST_NGINX_HTML_DIR} = $HtmlDir if !defined $ENV{TEST_NGINX_HTML_DIR};
    $ENV{TEST_NGINX_SERVROOT} = $ServRoot if !defined $ENV{TEST_NGINX_SERVROOT};

    # an nginx left behind by an aborted earlier run
    my $stale = get_pid_from_pidfile('');
    if ($stale && is_running($stale)) {
        kill_process($stale, 'startup');
    }

    my @blocks = Test::Base::blocks();
    @blocks = shuffle @blocks if !$NoShuffle;

    for my $block (@blocks) {
        for my $hdl (@BlockPreprocessors) {
            $hdl->($block);
        }
        $block->set_value('name', $0 . ' ' . $block->name);
        run_test($block);
        $PrevBlock = $block;
    }

    cleanup();
}

sub parse_skip_spec ($$) {
    my ($block, $name) = @_;
    my ($tests_to_skip, $should_skip, $reason);

    if (defined(my $skip_eval = $block->skip_eval)) {
        if ($skip_eval =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            $tests_to_skip = $1;
            $reason = 'skip_eval';
            my $code = $2;
            $should_skip = eval $code;
            bail_out("$name - skip_eval - failed to eval the Perl code \"$code\": $@")
                if $@;
        } else {
            bail_out("$name - Invalid --- skip_eval spec: $skip_eval");
        }
    }

    if (defined(my $skip_nginx = $block->skip_nginx)) {
        if ($skip_nginx =~ /^\s*(\d+)\s*:\s*([<>]=?)\s*(\d+)\.(\d+)\.(\d+)(?:\s*:\s*(.*))?\s*$/) {
            $tests_to_skip = $1;
            my ($op, $ver) = ($2, get_canon_version($3, $4, $5));
            $reason = $6 || "nginx version $op $3.$4.$5";
            $should_skip = 1 if eval "$NginxVersion $op $ver";
        } else {
            bail_out("$name - Invalid --- skip_nginx spec: $skip_nginx");
        }
    }

    return ($tests_to_skip, $should_skip, $reason || 'various reasons');
}

sub run_test ($) {
    my $block = shift;
    return if defined $block->SKIP;

    my $name = $block->name;
    my $config = expand_env_in_text($block->config, $name);

    local $LogLevel = $LogLevel;
    $LogLevel = $block->log_level if $block->log_level;

    my $must_die = $block->must_die;
    local $UseValgrind = $UseValgrind;
    local $DaemonEnabled = $DaemonEnabled;
    if (defined $must_die && $UseValgrind) {
        undef $UseValgrind;
        $DaemonEnabled = 'on';
    }

    my ($tests_to_skip, $should_skip, $skip_reason) = parse_skip_spec($block, $name);

    my ($should_todo, $todo_reason);
    if (defined(my $todo = $block->todo)) {
        if ($todo =~ /^\s*(\d+)\s*:\s*(.*)/s) {
            ($should_todo, $tests_to_skip, $todo_reason) = (1, $1, $2);
        } else {
            bail_out("$name - Invalid --- todo spec: $todo");
        }
    }

    my $should_restart = 1;
    if (!defined $config) {
        if (!defined $PrevConfig) {
            bail_out("$name - No '--- config' section specified and could not get previous one.");
        }
        # like the real one: keep using the running nginx
        $should_restart = 0;
    }

    if (!$should_skip && $should_restart) {
        $PrevConfig = $config;

        stop_nginx($name);
        setup_server_root();
        write_user_files($block);
        write_config_file($block, $config);

        if (defined $must_die) {
            for (my $i = 0; $i < $RepeatEach; $i++) {
                $ErrLogFilePos = 0 if $i == 0;
                my ($status, $err) = launch_nginx($name);
                merge_startup_stderr($err);
                vwarn("nginx stderr: $err") if length $err;
                my $exit_code = $status == -1 ? undef : $status >> 8;

                if ($status == -1) {
                    Test::More::fail("$name - failed to execute the nginx command line");
                } elsif ($status & 128) {
                    Test::More::fail("$name - nginx core dumped");
                } elsif (looks_like_number($must_die)) {
                    Test::More::is($must_die, $exit_code,
                                   "$name - die with the expected exit code");
                } else {
                    Test::More::isnt($status, 0, "$name - die as expected");
                }

                $CheckErrorLog->($block, undef, 0, $i, 0);

                if ($status == 0) {
                    warn "WARNING: $name - nginx must die but it does not; killing it (req $i)\n";
                    stop_nginx($name);
                }
            }
            return;
        }

        my ($status, $err);
        my $deadline = time + 5;
        while (1) {
            ($status, $err) = launch_nginx($name);
            last if $status == 0;
            # a previous nginx may still hold the port
            last if $err !~ /Address already in use/ || time > $deadline;
            sleep 0.1;
        }

        if ($status != 0) {
            merge_startup_stderr($err);
            Test::More::fail("$name - failed to start nginx (status $status)");
            my $log = read_file_contents($ErrLogFile);
            Test::More::diag("nginx stderr:\n$err") if length $err;
            Test::More::diag("error.log:\n$log") if defined $log && length $log;
            stop_nginx($name);
            undef $PrevConfig;
            return;
        }

        if (!$UseValgrind) {
            # daemon mode: the sockets are bound before the launcher exits
            wait_for_nginx(2);
        }
    }

    if (defined(my $init = $block->init)) {
        # compiled in package Test::Nginx::Util, like the real one
        eval $init;
        if ($@) {
            bail_out("$name - init failed: $@");
        }
    }

    $ErrLogFilePos = 0;
    for (my $i = 0; $i < $RepeatEach; $i++) {
        write_user_files($block) if $i > 0;
        if ($should_skip && defined $tests_to_skip) {
            SKIP: {
                Test::More::skip("$name - $skip_reason", $tests_to_skip);
            }
        } elsif ($should_todo) {
            TODO: {
                Test::More::todo_skip("$name - $todo_reason", $tests_to_skip);
            }
        } elsif (!$should_skip) {
            $RunTestHelper->($block, 0, $i);
        }
    }

    if ($NginxRunning && !$UseValgrind) {
        my $pid = get_pid_from_pidfile($name);
        if ($pid && !is_running($pid)) {
            warn "WARNING: $name - nginx (pid $pid) is no longer running (crashed?)\n";
        }
    }

    if ($UseValgrind) {
        # stop now so that valgrind reports leaks for this block
        stop_nginx($name);
        check_valgrind_log($name);
        undef $PrevConfig;
    }
}

1;
