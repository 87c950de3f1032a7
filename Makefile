# ngx_http_cast_module -- build, run, test.  GNU make.
#
#   make            = make build
#   make deps       install the Debian packages (scripts/install-deps.sh; root)
#   make build      build/ngx_http_cast_module.so for /usr/sbin/nginx
#   make run        build, then nginx in the foreground with conf-examples/local.conf
#   make test       build, then the whole test suite (the command CI runs)
#   make test-docker  the Docker image and compose stack test alone (root)
#   make test-valgrind  the suites that run nginx, under valgrind (both modes)
#   make asan       build the same .so with AddressSanitizer (see below)
#   make install    copy the .so to /usr/lib/nginx/modules/
#   make clean      remove build/ and t/servroot*
#
# Variables: NGINX_BIN, NGINX_SRC, CAST_CFLAGS, CAST_LDFLAGS (scripts/build.sh),
# PROVE_FLAGS (e.g. PROVE_FLAGS=-v, or a file list via TESTS=t/foo.t),
# CAST_MODES ("local redis": the modes `make test` runs the dual-mode suites
# in), FUZZ_SECONDS (12 per harness), DESTDIR/MODULES_DIR (install).
#
# Dual-mode suites (the t/*.t files with "use CastMode;") run twice in
# `make test`: with every file of TESTS in local mode (one worker), then
# once more in Redis mode (TEST_NGINX_CAST_MODE=redis: 2 workers and a
# private redis-server per file on TEST_NGINX_CAST_REDIS_PORT, default
# 6470; see t/lib/CastMode.pm).  By hand:
#   TEST_NGINX_BINARY=/usr/sbin/nginx \
#   TEST_NGINX_LOAD_MODULES=$PWD/build/ngx_http_cast_module.so \
#   TEST_NGINX_CAST_MODE=redis prove -I t/runner $(grep -l '^use CastMode;' t/*.t)
#
# AddressSanitizer: `make asan` rebuilds build/ngx_http_cast_module.so with
# ASAN_CFLAGS/ASAN_LDFLAGS. /usr/sbin/nginx is not instrumented, so the ASan
# runtime has to be preloaded into it, e.g.
#   make asan
#   LD_PRELOAD=$(cc -print-file-name=libasan.so) \
#   ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 \
#   TEST_NGINX_BINARY=/usr/sbin/nginx \
#   TEST_NGINX_LOAD_MODULES=$PWD/build/ngx_http_cast_module.so \
#   prove -I t/runner -r t/
# (perl, prove and redis-server run fine with the runtime preloaded; leak
# detection is off because nginx does not free everything at exit). The next
# `make build`/`make test` reconfigures and rebuilds the normal module.

SHELL := /bin/bash
.DEFAULT_GOAL := build

NGINX_BIN   ?= /usr/sbin/nginx
MODULE_SO   := $(CURDIR)/build/ngx_http_cast_module.so
MODULES_DIR ?= /usr/lib/nginx/modules
FUZZ_SECONDS ?= 12
PROVE_FLAGS ?=
TESTS       ?= -r t/
CAST_MODES  ?= local redis
# the dual-mode files among TESTS
REDIS_TESTS ?= $(shell grep -l '^use CastMode;' \
                 $(if $(filter -r,$(TESTS)),t/*.t,$(filter %.t,$(TESTS))) /dev/null)
# under valgrind: every suite but the build, configuration and browser ones
# (they test nginx -t and Chromium, not the module's memory) and t/034,
# which kills workers by their pids (valgrind's processes there)
VALGRIND_TESTS ?= $(filter-out t/000-% t/001-% t/008-% t/009-% t/012-% t/034-% \
                    t/070-%,$(wildcard t/*.t))

ASAN_CFLAGS  ?= -O1 -g -fno-omit-frame-pointer -fsanitize=address \
                -Wall -Wextra -Wno-unused-parameter -Wno-error
ASAN_LDFLAGS ?= -fsanitize=address

# Debian's perl, prove and python3 (with python3-websockets) come first, even
# where PATH starts with pyenv or /usr/local shims.
TEST_ENV := PATH=/usr/sbin:/usr/bin:/sbin:/bin:$$PATH \
            TEST_NGINX_BINARY=$(NGINX_BIN) \
            TEST_NGINX_LOAD_MODULES=$(MODULE_SO)
PROVE    := prove -I t/runner $(PROVE_FLAGS)

.PHONY: all deps build run test test-docker test-valgrind asan install clean

all: build

deps:
	@scripts/install-deps.sh

build: deps
	@NGINX_BIN=$(NGINX_BIN) scripts/build.sh

run: build
	@NGINX_BIN=$(NGINX_BIN) scripts/run.sh

# Unit tests, the fuzz smoke run and the Docker test first, the Test::Nginx
# suites last (so prove's summary closes the output); every part runs, any
# failure fails.
test: build
	@failed=; \
	if [ -f t/unit/Makefile ]; then \
	    echo "== unit tests (t/unit)"; \
	    $(MAKE) -C t/unit test || failed="$$failed unit"; \
	fi; \
	if [ -f fuzz/Makefile ]; then \
	    echo "== fuzz smoke run ($(FUZZ_SECONDS) s per harness)"; \
	    $(MAKE) -C fuzz run FUZZ_SECONDS=$(FUZZ_SECONDS) || failed="$$failed fuzz"; \
	fi; \
	echo "== Docker image and compose stack (scripts/docker-test.sh)"; \
	scripts/docker-test.sh || failed="$$failed docker"; \
	if [ -n "$(filter local,$(CAST_MODES))" ]; then \
	    echo "== Test::Nginx suites (t/), dual-mode suites in local mode"; \
	    $(TEST_ENV) TEST_NGINX_CAST_MODE=local $(PROVE) $(TESTS) \
	        || failed="$$failed prove"; \
	fi; \
	if [ -n "$(filter redis,$(CAST_MODES))" ] && [ -n "$(strip $(REDIS_TESTS))" ]; then \
	    echo "== Test::Nginx dual-mode suites in Redis mode (2 workers)"; \
	    $(TEST_ENV) TEST_NGINX_CAST_MODE=redis $(PROVE) $(REDIS_TESTS) \
	        || failed="$$failed prove-redis-mode"; \
	fi; \
	if [ -n "$$failed" ]; then echo "make test: FAILED:$$failed" >&2; exit 1; fi

# the Docker part of `make test` alone (README, Docker)
test-docker: deps
	@scripts/docker-test.sh

test-valgrind: build
	@failed=; \
	$(TEST_ENV) TEST_NGINX_USE_VALGRIND=1 TEST_NGINX_CAST_MODE=local \
	    $(PROVE) $(VALGRIND_TESTS) || failed="$$failed local"; \
	$(TEST_ENV) TEST_NGINX_USE_VALGRIND=1 TEST_NGINX_CAST_MODE=redis \
	    $(PROVE) $(filter $(VALGRIND_TESTS),$(REDIS_TESTS)) \
	    || failed="$$failed redis"; \
	if [ -n "$$failed" ]; then echo "make test-valgrind: FAILED:$$failed" >&2; exit 1; fi

asan: deps
	@NGINX_BIN=$(NGINX_BIN) CAST_CFLAGS="$(ASAN_CFLAGS)" \
	    CAST_LDFLAGS="$(ASAN_LDFLAGS)" scripts/build.sh
	@echo "ASan module built; preload the runtime into nginx:" \
	    "LD_PRELOAD=$$(cc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0" \
	    "(see the top of the Makefile)"

# new inode + rename: a running nginx keeps its mapping of the old file
install: build
	install -d $(DESTDIR)$(MODULES_DIR)
	install -m 0644 $(MODULE_SO) $(DESTDIR)$(MODULES_DIR)/.ngx_http_cast_module.so.new
	mv -f $(DESTDIR)$(MODULES_DIR)/.ngx_http_cast_module.so.new \
	    $(DESTDIR)$(MODULES_DIR)/ngx_http_cast_module.so

clean:
	rm -rf build t/servroot*
