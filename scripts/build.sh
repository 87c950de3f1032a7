#!/usr/bin/env bash
# Build build/ngx_http_cast_module.so for the installed nginx binary.
#
# Environment (all optional):
#   NGINX_BIN         nginx binary to build for          (/usr/sbin/nginx)
#   NGINX_SRC         nginx source tree to build against  (a copy of
#                     /usr/share/nginx/src in build/nginx-src, refreshed when
#                     the nginx-dev package version changes)
#   CAST_CFLAGS       extra compiler flags for the module
#                     (-Wall -Wextra -Wno-unused-parameter -Werror)
#   CAST_LDFLAGS      extra linker flags for the module .so (empty)
#   CAST_MODULE_DIR   addon directory holding `config`     (the repo root)
#   CAST_MODULE_NAME  module name = .so basename           (ngx_http_cast_module)
#   CAST_BUILD_DIR    output directory                     (<repo>/build)
#   JOBS              parallel make jobs                   (nproc)
#
# configure runs (into $CAST_BUILD_DIR/objs) only when the configure flags,
# CAST_CFLAGS/CAST_LDFLAGS, the module's `config`, NGINX_SRC or its nginx
# version change; otherwise this is `make modules` plus a load check.
#
# CAST_CFLAGS/CAST_LDFLAGS are added to the generated Makefile (CFLAGS, LINK)
# rather than to --with-cc-opt/--with-ld-opt: configure compiles its feature
# probes with --with-cc-opt, and -Wall -Wextra -Werror there makes probes such
# as pwrite() and strerrordesc_np() fail, i.e. a different ngx_auto_config.h
# than the installed nginx was built with.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NGINX_BIN=${NGINX_BIN:-/usr/sbin/nginx}
CAST_CFLAGS=${CAST_CFLAGS--Wall -Wextra -Wno-unused-parameter -Werror}
CAST_LDFLAGS=${CAST_LDFLAGS-}
MODULE_DIR=${CAST_MODULE_DIR:-$ROOT}
MODULE_NAME=${CAST_MODULE_NAME:-ngx_http_cast_module}
BUILD=${CAST_BUILD_DIR:-$ROOT/build}
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 2)}

say() { printf 'build: %s\n' "$*"; }
die() { printf 'build: ERROR: %s\n' "$*" >&2; exit 1; }
# shellcheck disable=SC2154
trap 'rc=$?; printf "build: FAILED (line %s: %s)\n" "$LINENO" "$BASH_COMMAND" >&2; exit $rc' ERR

MODULE_DIR=$(cd "$MODULE_DIR" 2>/dev/null && pwd) \
    || die "module directory not found: ${CAST_MODULE_DIR:-$ROOT}"
[ -f "$MODULE_DIR/config" ] \
    || die "$MODULE_DIR/config not found (the nginx addon script)"
[ -x "$NGINX_BIN" ] \
    || die "$NGINX_BIN not found; run scripts/install-deps.sh (or set NGINX_BIN)"
mkdir -p "$BUILD"
BUILD=$(cd "$BUILD" && pwd)
OBJS=$BUILD/objs
STAMP=$BUILD/.configure-stamp

# --- installed nginx: version and configure arguments -----------------------
nginx_v=$("$NGINX_BIN" -V 2>&1) || die "$NGINX_BIN -V failed"
bin_version=$(printf '%s\n' "$nginx_v" | sed -n 's|^nginx version: [^/]*/\([0-9.]*\).*|\1|p')
conf_line=$(printf '%s\n' "$nginx_v" | sed -n 's/^configure arguments: //p')
[ -n "$bin_version" ] || die "cannot read the version from $NGINX_BIN -V"

# --- nginx source tree -------------------------------------------------------
pkg_version=custom
if [ -n "${NGINX_SRC:-}" ]; then
    SRC=$(cd "$NGINX_SRC" 2>/dev/null && pwd) \
        || die "NGINX_SRC=$NGINX_SRC does not exist"
else
    PKG_SRC=/usr/share/nginx/src
    [ -x "$PKG_SRC/configure" ] \
        || die "$PKG_SRC/configure not found; install nginx-dev (scripts/install-deps.sh)"
    pkg_version=$(dpkg-query -W -f='${Version}' nginx-dev 2>/dev/null || echo unknown)
    SRC=$BUILD/nginx-src
    if [ "$(cat "$SRC/.cast-pkg-version" 2>/dev/null)" != "$pkg_version" ]; then
        say "copying $PKG_SRC (nginx-dev $pkg_version) to $SRC"
        rm -rf "$SRC"
        cp -a "$PKG_SRC" "$SRC"
        printf '%s\n' "$pkg_version" > "$SRC/.cast-pkg-version"
    fi
fi
[ -x "$SRC/configure" ] || die "$SRC/configure not found (NGINX_SRC must be an nginx source tree)"
src_version=$(sed -n 's/^#define NGINX_VERSION *"\(.*\)".*/\1/p' "$SRC/src/core/nginx.h")
[ "$src_version" = "$bin_version" ] \
    || die "nginx source in $SRC is $src_version but $NGINX_BIN is $bin_version; the module would not load"

# --- configure arguments: the binary's own, minus dynamic/add-on modules -----
args=()
if [ -n "$conf_line" ]; then
    mapfile -d '' -t args < <(printf '%s' "$conf_line" |
        perl -MText::ParseWords -0777 -ne \
            'print "$_\0" for grep { length } shellwords($_)')
fi
flags=()
have_compat=
for a in "${args[@]}"; do
    case $a in
    --with-*=dynamic|--add-dynamic-module=*|--add-module=*|--builddir=*) ;;
    --with-compat) have_compat=1; flags+=("$a") ;;
    *) flags+=("$a") ;;
    esac
done
[ -n "$have_compat" ] || flags+=(--with-compat)
flags+=("--builddir=$OBJS" "--add-dynamic-module=$MODULE_DIR")

hash=$( {
    printf '%s\n' "${flags[@]}"
    printf 'cflags=%s\nldflags=%s\nsrc=%s\nversion=%s %s\nname=%s\n' \
        "$CAST_CFLAGS" "$CAST_LDFLAGS" "$SRC" "$src_version" "$pkg_version" \
        "$MODULE_NAME"
    cat "$MODULE_DIR/config"
} | sha256sum | cut -d' ' -f1)

# --- configure (only when something it depends on changed) -------------------
if [ ! -f "$OBJS/Makefile" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$hash" ]; then
    say "configure (nginx $src_version, module $MODULE_DIR) -> $OBJS"
    rm -f "$STAMP"
    rm -rf "$OBJS"
    if ! (cd "$SRC" && ./configure "${flags[@]}") > "$BUILD/configure.log" 2>&1; then
        tail -n 30 "$BUILD/configure.log" >&2
        die "configure failed; full log: $BUILD/configure.log"
    fi
    # our flags go after nginx's own (-W -Wall -Werror ...) and Debian's cc-opt
    CAST_CFLAGS=$CAST_CFLAGS CAST_LDFLAGS=$CAST_LDFLAGS awk '
        /^CFLAGS =/ && !c { $0 = $0 " " ENVIRON["CAST_CFLAGS"]; c = 1 }
        /^LINK =/   && !l { $0 = $0 " " ENVIRON["CAST_LDFLAGS"]; l = 1 }
        { print }
        END { exit !(c && l) }' "$OBJS/Makefile" > "$OBJS/Makefile.tmp" \
        || die "cannot find CFLAGS/LINK in $OBJS/Makefile"
    mv "$OBJS/Makefile.tmp" "$OBJS/Makefile"
    printf '%s\n' "$hash" > "$STAMP"
fi

# the Redis scripts as C strings: written again when a script changed
# (configure wrote them first; `config` runs src/lua/embed.sh)
sh "$MODULE_DIR/src/lua/embed.sh" "$MODULE_DIR/src/lua" "$OBJS/ngx_http_cast_lua.h.new"
if cmp -s "$OBJS/ngx_http_cast_lua.h.new" "$OBJS/ngx_http_cast_lua.h"; then
    rm -f "$OBJS/ngx_http_cast_lua.h.new"
else
    mv "$OBJS/ngx_http_cast_lua.h.new" "$OBJS/ngx_http_cast_lua.h"
fi

# nginx's Makefile only knows the headers the addon lists in ngx_module_deps:
# when any module header is newer than the last .so, recompile the module.
SO_OBJ=$OBJS/$MODULE_NAME.so
if [ -f "$SO_OBJ" ] && [ -n "$(find "$MODULE_DIR" \
        \( -name .git -o -path "$BUILD" -o -path "$MODULE_DIR/t" \) -prune \
        -o -name '*.h' -newer "$SO_OBJ" -print -quit)" ]; then
    say "a module header changed: recompiling the module"
    find "$OBJS/addon" -name '*.o' -delete
fi

# --- compile -------------------------------------------------------------------
# The generated Makefile uses paths relative to the nginx source tree.
say "make modules (-j$JOBS)"
make -s -C "$SRC" -f "$OBJS/Makefile" -j"$JOBS" modules \
    || die "compiling the module failed (see the compiler output above)"
[ -f "$SO_OBJ" ] \
    || die "$SO_OBJ was not built: is ngx_module_name in $MODULE_DIR/config '$MODULE_NAME'? (set CAST_MODULE_NAME)"

# --- load check ------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/cast-loadcheck.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/nginx.conf" <<EOF
load_module $SO_OBJ;
error_log stderr;
pid $tmp/nginx.pid;
events {}
http {
    access_log off;
    client_body_temp_path $tmp/client_body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
}
EOF
preload=
case " $CAST_CFLAGS $CAST_LDFLAGS " in
*-fsanitize=address*)
    # an ASan module only loads into a non-ASan nginx with the runtime preloaded
    preload=$(${CC:-cc} -print-file-name=libasan.so) ;;
esac
if ! out=$(LD_PRELOAD=$preload ASAN_OPTIONS=detect_leaks=0 \
        "$NGINX_BIN" -t -q -p "$tmp/" -c "$tmp/nginx.conf" 2>&1); then
    printf '%s\n' "$out" >&2
    die "$SO_OBJ does not load into $NGINX_BIN; $BUILD/$MODULE_NAME.so not updated"
fi

# replace atomically (a running nginx may have the old .so mapped)
OUT=$BUILD/$MODULE_NAME.so
if ! cmp -s "$SO_OBJ" "$OUT"; then
    cp "$SO_OBJ" "$OUT.tmp"
    mv -f "$OUT.tmp" "$OUT"
fi
say "OK: $OUT loads into $NGINX_BIN ($bin_version)"
