# keywave — pkg-config driven build. Targets: all, run, test, bench, web, clean.
# `make test SANITIZE=1` builds into build-san/ with ASan + UBSan.

CC      ?= cc
PKG     ?= pkg-config
LIB_PKGS    := libsignal-protocol-c openssl jansson
SERVER_PKGS := libwebsockets libjwt sqlite3

ifeq ($(SANITIZE),1)
BUILD    := build-san
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
else
BUILD    := build
SANFLAGS :=
endif

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wswitch-enum
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 $(WARN) -D_FORTIFY_SOURCE=2 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE \
            -Iinclude -Ilib $(SANFLAGS)
LIB_CFLAGS    := $(shell $(PKG) --cflags $(LIB_PKGS) 2>/dev/null)
LIB_LIBS      := $(shell $(PKG) --libs $(LIB_PKGS) 2>/dev/null)
SERVER_CFLAGS := $(shell $(PKG) --cflags $(SERVER_PKGS) 2>/dev/null)
SERVER_LIBS   := $(shell $(PKG) --libs $(SERVER_PKGS) 2>/dev/null)
LDFLAGS  += $(SANFLAGS)

LIB_SRC    := $(sort $(wildcard lib/*.c))
LIB_OBJ    := $(LIB_SRC:%.c=$(BUILD)/%.o)
LIBKW      := $(BUILD)/libkeywave.a
SERVER_SRC := $(sort $(wildcard server/*.c))
SERVER_OBJ := $(SERVER_SRC:%.c=$(BUILD)/%.o)
# Server code without main(), linked into the server's unit tests (tests/unit/test_srv_*.c).
SERVER_LIB_OBJ := $(filter-out $(BUILD)/server/main.o,$(SERVER_OBJ))
CLIENT_SRC := $(sort $(wildcard client/*.c))
CLIENT_OBJ := $(CLIENT_SRC:%.c=$(BUILD)/%.o)
# Client code without main(), linked into the client's tests (tests/integration/test_client_*.c).
CLIENT_LIB_OBJ := $(filter-out $(BUILD)/client/main.o,$(CLIENT_OBJ))
CLIENT_BIN := $(if $(wildcard client/main.c),$(BUILD)/keywave)
CLIENT_LIBS := $(shell $(PKG) --libs libwebsockets 2>/dev/null)
UNIT_SRC   := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
INTEG_SRC  := $(sort $(wildcard tests/integration/test_*.c))
INTEG_BIN  := $(INTEG_SRC:tests/integration/%.c=$(BUILD)/tests/%)
TOOL_SRC   := $(sort $(wildcard tests/interop/*.c))
TOOL_BIN   := $(TOOL_SRC:tests/interop/%.c=$(BUILD)/tests/interop/%)
BENCH_SRC  := $(sort $(wildcard bench/*.c))
BENCH_BIN  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

.PHONY: all deps run test test-c bench web clean format fuzz
all: $(LIBKW) $(BUILD)/keywaved $(CLIENT_BIN) $(UNIT_BIN) $(INTEG_BIN) $(TOOL_BIN) $(BENCH_BIN)

deps:
	@scripts/deps.sh

$(BUILD)/lib/%.o: lib/%.c $(wildcard include/keywave/*.h lib/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(LIBKW): $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/server/%.o: server/%.c $(wildcard include/keywave/*.h server/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) $(SERVER_CFLAGS) -c $< -o $@

$(BUILD)/keywaved: $(SERVER_OBJ) $(LIBKW)
	$(CC) $(LDFLAGS) $^ -o $@ $(SERVER_LIBS) $(LIB_LIBS)

$(BUILD)/client/%.o: client/%.c $(wildcard include/keywave/*.h client/*.h)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) $(SERVER_CFLAGS) -c $< -o $@

$(BUILD)/keywave: $(CLIENT_OBJ) $(LIBKW)
	$(CC) $(LDFLAGS) $^ -o $@ $(CLIENT_LIBS) $(LIB_LIBS)

$(BUILD)/tests/test_client_%: tests/integration/test_client_%.c tests/unit/kwtest.h $(wildcard tests/integration/*.h) $(CLIENT_LIB_OBJ) $(LIBKW)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) $(SERVER_CFLAGS) -Iclient -Itests/unit $(LDFLAGS) $< $(CLIENT_LIB_OBJ) $(LIBKW) -o $@ $(CLIENT_LIBS) $(LIB_LIBS)

$(BUILD)/tests/%: tests/unit/%.c tests/unit/kwtest.h $(LIBKW)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -Itests/unit $(LDFLAGS) $< $(LIBKW) -o $@ $(LIB_LIBS)

$(BUILD)/tests/test_srv_%: tests/unit/test_srv_%.c tests/unit/kwtest.h $(wildcard tests/integration/*.h) $(SERVER_LIB_OBJ) $(LIBKW)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) $(SERVER_CFLAGS) -Iserver -Itests/unit $(LDFLAGS) $< $(SERVER_LIB_OBJ) $(LIBKW) -o $@ $(SERVER_LIBS) $(LIB_LIBS)

$(BUILD)/tests/%: tests/integration/%.c tests/unit/kwtest.h $(wildcard tests/integration/*.h) $(LIBKW)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) -Itests/unit $(LDFLAGS) $< $(LIBKW) -o $@ $(LIB_LIBS)

$(BUILD)/tests/interop/%: tests/interop/%.c $(LIBKW)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) $(LDFLAGS) $< $(LIBKW) -o $@ $(LIB_LIBS)

$(BUILD)/bench/%: bench/%.c $(wildcard bench/*.h) $(LIBKW)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LIB_CFLAGS) $(LDFLAGS) $< $(LIBKW) -o $@ $(LIB_LIBS)

# Builds keywaved, the keywave CLI and the guest app (build/web), and starts keywaved on 127.0.0.1:8080 with its data in ./data.
run: deps
	@$(MAKE) --no-print-directory $(BUILD)/keywaved $(CLIENT_BIN)
	@scripts/build-web.sh
	KEYWAVE_DATA_DIR=$${KEYWAVE_DATA_DIR:-./data} ./$(BUILD)/keywaved

# Builds everything and runs every test; the last line is `N passed, N failed`.
test: deps
	@$(MAKE) --no-print-directory all $(FUZZ_BIN)
	@scripts/build-web.sh
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) tests/run.sh

# Unit and integration tests only (the sanitizer pass of CI runs this).
test-c: deps
	@$(MAKE) --no-print-directory all
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) ONLY_C=1 tests/run.sh

bench: deps
	@$(MAKE) --no-print-directory all
	@bench/run-crypto.sh $(BUILD)/bench/crypto
	@if [ -x bench/run-http.sh ]; then bench/run-http.sh $(BUILD); fi
	@if [ -x bench/run-realtime.sh ]; then bench/run-realtime.sh $(BUILD); fi
	@bench/run-join.sh $(BUILD)

# libFuzzer targets (clang); the lib sources are compiled in so they get coverage.
FUZZ_SRC := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:tests/fuzz/%.c=build/fuzz/%)
FUZZ_LIB := lib/eio.c lib/sio.c lib/err.c
build/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB) $(wildcard include/keywave/*.h lib/*.h)
	@mkdir -p $(@D)
	clang -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=c11 \
	  $(WARN) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Ilib $< $(FUZZ_LIB) \
	  -ljansson -o $@
# fuzz_rt drives the realtime layer against a real store: every lib source and the server's
# without main.c and http_lws.c (no libwebsockets), instrumented, in an archive so only what
# it reaches is linked.
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
  -std=c11 $(WARN) -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Iinclude -Ilib -Iserver \
  $(LIB_CFLAGS) $(SERVER_CFLAGS)
FUZZ_RT_SRC := $(LIB_SRC) $(filter-out server/main.c server/http_lws.c,$(SERVER_SRC))
FUZZ_RT_OBJ := $(FUZZ_RT_SRC:%.c=build/fuzz/obj/%.o)
build/fuzz/obj/%.o: %.c $(wildcard include/keywave/*.h lib/*.h server/*.h)
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -c $< -o $@
build/fuzz/libkw_rt.a: $(FUZZ_RT_OBJ)
	@rm -f $@
	ar rcs $@ $^
build/fuzz/fuzz_rt: tests/fuzz/fuzz_rt.c build/fuzz/libkw_rt.a
	@mkdir -p $(@D)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $< build/fuzz/libkw_rt.a -o $@ \
	  $(shell $(PKG) --libs sqlite3 2>/dev/null) $(LIB_LIBS)

# A longer fuzz run than the short one `make test` does (FUZZ_SECONDS per target). Each
# target grows its corpus in build/fuzz/corpus/<target>, seeded from tests/fuzz/corpus_<name>
# when that exists (fuzz_rt's: corpus_rt), which libFuzzer only reads.
fuzz: deps $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do n=$${f##*/}; seeds=tests/fuzz/corpus_$${n#fuzz_}; \
	  [ -d $$seeds ] || seeds=; mkdir -p build/fuzz/corpus/$$n; echo "== $$f"; \
	  $$f -max_total_time=$${FUZZ_SECONDS:-300} -max_len=4096 build/fuzz/corpus/$$n $$seeds || exit 1; done

# The browser guest app (issue #6): the C core in wasm + the page, into build/web
# (scripts/build-web.sh; its sources are fetched into build/web-src, never committed).
web: deps
	@scripts/build-web.sh

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-san
