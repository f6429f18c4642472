# batch.h - build, test, bench. `make test` alone sets up a fresh Debian machine (libstb-dev).
CC ?= cc
CXX ?= g++
STB_INCLUDE ?= /usr/include/stb
PREFIX ?= /usr/local
DESTDIR ?=
BENCH_QUICK ?=

WARN := -std=c11 -Wall -Wextra -Wpedantic -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Werror
# user CFLAGS are appended, so they win
ALL_CFLAGS = $(WARN) -I$(STB_INCLUDE) -O2 -g $(CFLAGS)
LDLIBS := -pthread -lm
SAN_FLAGS := -fno-omit-frame-pointer -fno-sanitize-recover=all

# The one ordered list of implementation parts (api.h comes first, then these).
PARTS := batch_impl/internal.h batch_impl/platform.c batch_impl/deque.c batch_impl/pool.c batch_impl/job.c batch_impl/journal.c batch_impl/sizing.c batch_impl/graph.c batch_impl/map.c batch_impl/report.c batch_impl/queue.c batch_impl/mpi.c

TEST_SRC := tests/main.c tests/test.h $(wildcard tests/test_*.c) $(wildcard tests/*_check.h)
STB_DS := $(STB_INCLUDE)/stb_ds.h
EXAMPLES := $(patsubst examples/%.c,build/examples/%,$(filter-out examples/mpi_map.c,$(wildcard examples/*.c))) build/examples/batchrun
BATCHRUN_SRC := $(wildcard examples/batchrun/*.c)

.PHONY: all test asan tsan nothreads bench examples install uninstall check-amalgamation check-parts clean stb stress soak relacy html-check

all: batch.h build/test/run examples

# ---- the single header ----------------------------------------------------------------------
batch.h: batch_impl/api.h $(PARTS) batch_impl/amalgamate.sh LICENSE Makefile
	sh batch_impl/amalgamate.sh $@ LICENSE batch_impl/api.h $(PARTS)

check-amalgamation:
	@tmp=$$(mktemp); sh batch_impl/amalgamate.sh $$tmp LICENSE batch_impl/api.h $(PARTS); \
	if cmp -s $$tmp batch.h; then rm -f $$tmp; echo "batch.h is current"; \
	else diff -u batch.h $$tmp | head -n 20; rm -f $$tmp; \
	     echo "batch.h differs from batch_impl/: run 'make batch.h' and commit it"; exit 1; fi

# Each part compiles on its own (with the parts it depends on), free of -Wconversion and
# -Wsign-conversion warnings; so does the whole header. tests/cross.sh does the same with each
# cross compiler (a 32-bit size_t finds other narrowings).
CONV := -Wconversion -Wsign-conversion
check-parts: batch.h | stb
	@for p in $(PARTS); do \
	    $(CC) $(ALL_CFLAGS) $(CONV) -DBATCH_IMPLEMENTATION -fsyntax-only -x c $$p || exit 1; done; \
	$(CC) $(ALL_CFLAGS) $(CONV) -fsyntax-only tests/cpp_impl.c || exit 1; \
	echo "each part compiles alone, conversion-clean"

# ---- stb_ds: from Debian's libstb-dev, installed on demand -----------------------------------
stb: $(STB_DS)
$(STB_DS):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing libstb-dev (stb_ds.h)"; \
	    apt-get install -y -q libstb-dev >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q libstb-dev >/dev/null; }; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    sudo apt-get install -y -q libstb-dev >/dev/null 2>&1 || \
	    { sudo apt-get update -q >/dev/null && sudo apt-get install -y -q libstb-dev >/dev/null; }; \
	fi; \
	test -f $@ || { echo "batch.h needs stb_ds.h: apt-get install libstb-dev (or make STB_INCLUDE=<dir with stb_ds.h>)"; exit 1; }

# ---- tests ----------------------------------------------------------------------------------
build/test/run: $(TEST_SRC) batch.h | stb
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ tests/main.c $(LDLIBS)

build/test/cpp_api: tests/cpp_api.cpp tests/cpp_impl.c batch.h | stb
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -c -o build/test/cpp_impl.o tests/cpp_impl.c
	$(CXX) -std=c++11 -Wall -Wextra -Wpedantic -Werror -I. -c -o build/test/cpp_api.o tests/cpp_api.cpp
	$(CXX) -o $@ build/test/cpp_api.o build/test/cpp_impl.o $(LDLIBS)

build/test/static_link: tests/static_a.c tests/static_b.c batch.h | stb
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ tests/static_a.c tests/static_b.c $(LDLIBS)

test: batch.h check-parts build/test/cpp_api build/test/static_link build/test/run
	./build/test/cpp_api
	./build/test/static_link
	./build/test/run

# The HTML report in a real browser (headless chromium, when installed): tests/html_gen.c
# writes the reports, tests/html_check.sh checks the DOM and takes build/html/report-10k.png.
html-check: batch.h tests/html_gen.c tests/html_check.sh | stb
	@mkdir -p build/html
	$(CC) $(ALL_CFLAGS) -I. -o build/html/html_gen tests/html_gen.c $(LDLIBS)
	sh tests/html_check.sh build/html/html_gen build/html

# Sanitizers run on the pthreads backend: TSan crashes on C11 thrd_create and LSan misses leaks
# there (../shared/TESTING.md). BATCH_TEST_SCALE shrinks the stress loops for the slow builds.
# The TSan build also takes task times from clock_gettime (BATCH_NO_TSC): the other path.
build/asan/run: $(TEST_SRC) batch.h | stb
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 -DBATCH_USE_PTHREADS -fsanitize=address,undefined $(SAN_FLAGS) -o $@ tests/main.c $(LDLIBS)
asan: build/asan/run
	BATCH_TEST_SCALE=4 ./build/asan/run

build/tsan/run: $(TEST_SRC) batch.h | stb
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 -DBATCH_USE_PTHREADS -DBATCH_NO_TSC -fsanitize=thread $(SAN_FLAGS) -o $@ tests/main.c $(LDLIBS)
tsan: build/tsan/run
	BATCH_TEST_SCALE=10 TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ./build/tsan/run

build/nothreads/run: $(TEST_SRC) batch.h | stb
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DBATCH_NO_THREADS -o $@ tests/main.c -lm
nothreads: build/nothreads/run
	./build/nothreads/run

build/pthreads/run: $(TEST_SRC) batch.h | stb
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -DBATCH_USE_PTHREADS -o $@ tests/main.c $(LDLIBS)
pthreads: build/pthreads/run
	./build/pthreads/run

# ---- Windows: mingw-w64 builds of the suite and hello_pool, run under wine ------------------------
# Each part compiles alone for Windows too, then build/win64/hello_pool.exe and the suite run in a
# private wine prefix (made on first use; wine64 and wineserver may live off PATH, as on Debian).
# stb_ds.h comes from STB_INCLUDE, a directory that holds nothing but stb headers.
MINGW_CC ?= x86_64-w64-mingw32-gcc
WINE ?= $(firstword $(shell command -v wine64 wine 2>/dev/null) /usr/lib/wine/wine64)
WINESERVER ?= $(firstword $(shell command -v wineserver 2>/dev/null) $(dir $(WINE))wineserver)
WIN_PREFIX := $(CURDIR)/build/wineprefix
WIN_RUN = WINEPREFIX=$(WIN_PREFIX) WINEDEBUG=-all $(WINE)
WIN_CFLAGS = $(WARN) -I$(STB_INCLUDE) -O2
build/win64/run.exe: $(TEST_SRC) batch.h | stb
	@mkdir -p $(@D)
	$(MINGW_CC) $(WIN_CFLAGS) -o $@ tests/main.c
build/win64/hello_pool.exe: examples/hello_pool.c batch.h | stb
	@mkdir -p $(@D)
	$(MINGW_CC) $(WIN_CFLAGS) -I. -o $@ $<
$(WIN_PREFIX)/.initialised:
	@command -v $(WINE) >/dev/null || { echo "make win64 needs wine (apt-get install wine64)"; exit 1; }
	@mkdir -p build && echo "initialising the wine prefix $(WIN_PREFIX) (once)"
	@WINEPREFIX=$(WIN_PREFIX) WINEDEBUG=-all $(WINE) wineboot --init > build/wineprefix-init.log 2>&1; \
	    WINEPREFIX=$(WIN_PREFIX) $(WINESERVER) -w
	@touch $@
win64-deps:
	@bash tests/cross.sh deps-win64
win64: batch.h win64-deps build/win64/run.exe build/win64/hello_pool.exe $(WIN_PREFIX)/.initialised | stb
	@for p in $(PARTS); do \
	    $(MINGW_CC) $(WIN_CFLAGS) $(CONV) -DBATCH_IMPLEMENTATION -fsyntax-only -x c $$p || exit 1; done; \
	echo "each part compiles alone for Windows, conversion-clean"
	$(WIN_RUN) build/win64/hello_pool.exe
	BATCH_TEST_SCALE=4 $(WIN_RUN) build/win64/run.exe
# the same suite with BATCH_NO_THREADS on Windows (not part of win64)
build/win64/run-nothreads.exe: $(TEST_SRC) batch.h | stb
	@mkdir -p $(@D)
	$(MINGW_CC) $(WIN_CFLAGS) -DBATCH_NO_THREADS -o $@ tests/main.c
win64-nothreads: build/win64/run-nothreads.exe $(WIN_PREFIX)/.initialised
	BATCH_TEST_SCALE=4 $(WIN_RUN) build/win64/run-nothreads.exe
.PHONY: win64 win64-nothreads win64-deps

# ---- stress: seeded random graphs and maps (tests/stress.c); soak: the same for MINUTES under ----
# TSan (clang, pthreads backend) and under ASan+UBSan. `tests/stress --seed S` replays a failure.
STRESS_SRC := tests/stress.c tests/test.h $(wildcard tests/*_check.h) batch.h
MINUTES ?= 10
STRESS_ARGS ?=
build/stress: $(STRESS_SRC) | stb
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -o $@ tests/stress.c $(LDLIBS)
build/stress-tsan: $(STRESS_SRC) | stb
	@mkdir -p $(@D)
	clang $(ALL_CFLAGS) -O1 -DBATCH_USE_PTHREADS -fsanitize=thread $(SAN_FLAGS) -o $@ tests/stress.c $(LDLIBS)
build/stress-asan: $(STRESS_SRC) | stb
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O1 -DBATCH_USE_PTHREADS -fsanitize=address,undefined $(SAN_FLAGS) -o $@ tests/stress.c $(LDLIBS)
stress: build/stress
	./build/stress $(STRESS_ARGS)
soak: build/stress-tsan build/stress-asan
	TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1" ./build/stress-tsan --minutes $(MINUTES) $(STRESS_ARGS)
	ASAN_OPTIONS="detect_leaks=1" ./build/stress-asan --minutes $(MINUTES) $(STRESS_ARGS)

# ---- examples and bench -----------------------------------------------------------------------
examples: $(EXAMPLES)
build/examples/%: examples/%.c batch.h | stb
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -I. -o $@ $< $(LDLIBS)

# batchrun is several files (examples/batchrun/); main.c holds the implementation of batch.h
build/examples/batchrun: $(BATCHRUN_SRC) $(wildcard examples/batchrun/*.h) batch.h | stb
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -I. -o $@ $(BATCHRUN_SRC) $(LDLIBS)

build/bench/bench: bench/bench.c bench/workloads.h batch.h | stb
	@mkdir -p $(@D)
	$(CC) $(WARN) -I$(STB_INCLUDE) -I. -O2 -DNDEBUG -fopenmp $(CFLAGS) -o $@ bench/bench.c $(LDLIBS)

bench: build/bench/bench build/examples/batchrun
	./build/bench/bench $(if $(BENCH_QUICK),--quick) --csv bench/results.csv
	bash bench/bench_batchrun.sh build/examples/batchrun $(if $(BENCH_QUICK),--reps 3) --csv bench/results_batchrun.csv
	@if [ -f /usr/include/sqlite3.h ]; then $(MAKE) --no-print-directory bench-queue; \
	else echo "bench-queue skipped: it needs libsqlite3-dev"; fi

# The durable queue against a queue kept in SQLite (libsqlite3-dev; SQLite is linked into this
# bench only, never the library): make bench-queue, bench/results_queue.csv
.PHONY: bench-queue
build/bench/bench_queue: bench/bench_queue.c batch.h | stb
	@mkdir -p $(@D)
	$(CC) $(WARN) -I$(STB_INCLUDE) -I. -O2 -DNDEBUG $(CFLAGS) -o $@ bench/bench_queue.c $(LDLIBS) -lsqlite3
bench-queue: build/bench/bench_queue
	./build/bench/bench_queue $(if $(BENCH_QUICK),--quick) --csv bench/results_queue.csv

# The same bench.c with oneTBB as a fourth system (needs libtbb-dev): make bench-tbb
.PHONY: bench-tbb
build/bench/bench_tbb: bench/bench.c bench/bench_tbb.cpp bench/workloads.h batch.h | stb
	@mkdir -p $(@D)
	$(CXX) -std=c++17 -Wall -Wextra -Wpedantic -Wshadow -Werror -O2 -DNDEBUG -c -o build/bench/bench_tbb.o bench/bench_tbb.cpp
	$(CC) $(WARN) -I$(STB_INCLUDE) -I. -O2 -DNDEBUG -DBENCH_TBB -fopenmp $(CFLAGS) -c -o build/bench/bench_main_tbb.o bench/bench.c
	$(CXX) -fopenmp -o $@ build/bench/bench_main_tbb.o build/bench/bench_tbb.o -ltbb $(LDLIBS)

bench-tbb: build/bench/bench_tbb
	./build/bench/bench_tbb $(if $(BENCH_QUICK),--quick) --csv bench/results_tbb.csv

# ---- model checking (spin): the park/wake protocol and shutdown racing submit -----------------------
# Each model must verify with 0 errors, and its BUGGY variant must fail (so the model can fail).
model:
	@command -v spin >/dev/null || { echo "make model needs spin (apt-get install spin)"; exit 1; }
	@mkdir -p build/model && for m in park shutdown; do for v in ok bug; do \
	    ( cd build/model && rm -f pan pan.* && spin $$( [ $$v = bug ] && echo -DBUGGY ) -a ../../tests/models/$$m.pml >/dev/null && \
	      $(CC) -O2 -o pan pan.c && ./pan -m100000 > $$m-$$v.txt 2>&1 ); \
	    errs=$$(sed -n 's/.*errors: \([0-9]*\).*/\1/p' build/model/$$m-$$v.txt); \
	    if [ $$v = ok ] && [ "$$errs" = 0 ]; then echo "$$m: verified, 0 errors"; \
	    elif [ $$v = bug ] && [ -n "$$errs" ] && [ "$$errs" != 0 ]; then echo "$$m (BUGGY): the violation is found, as it must be"; \
	    else echo "$$m $$v: unexpected result"; cat build/model/$$m-$$v.txt; exit 1; fi; \
	done; done
.PHONY: model

# ---- model checking (relacy): deque.c and the eventcount under the C11 memory model ----------
# Relacy (Debian's relacy-dev, installed on demand like libstb-dev) explores interleavings and the
# weak-memory reorderings every memory_order allows, and reports data races on plain variables.
# Each model must pass 200000 random executions and every execution with at most 2 preemptions;
# each BUGGY variant (one order weakened, or a fence dropped) must fail.
# -std=c++11 -fno-sized-deallocation: relacy replaces operator delete(void*), not C++14's sized one.
RELACY_HPP := /usr/include/relacy/relacy.hpp
RELACY_FLAGS := -std=c++11 -fno-sized-deallocation -Wall -Wextra
relacy: | $(RELACY_HPP)
	@mkdir -p build/relacy && for v in deque:ok deque:1 deque:2 deque:3 deque:4 deque:5 eventcount:ok eventcount:1; do \
	    m=$${v%%:*}; b=$${v#*:}; out=build/relacy/$$m-$$b; \
	    if [ $$b = ok ]; then \
	        $(CXX) $(RELACY_FLAGS) -O2 -o $$out tests/models/$${m}_relacy.cpp || exit 1; \
	        if ./$$out 200000 > $$out.txt 2>&1 && ./$$out 0 b2 >> $$out.txt 2>&1; then \
	            echo "$$m: no violation in $$(sed -n 's/.*no violation after \([0-9]*\) .*random.*/\1/p' $$out.txt) random executions and all $$(sed -n 's/.*no violation after \([0-9]*\) .*context bound.*/\1/p' $$out.txt) with up to 2 preemptions"; \
	        else echo "$$m: relacy found a violation"; cat $$out.txt; exit 1; fi; \
	    else \
	        $(CXX) $(RELACY_FLAGS) -O0 -DBUGGY=$$b -o $$out tests/models/$${m}_relacy.cpp || exit 1; \
	        ./$$out 200000 > $$out.txt 2>&1; rc=$$?; \
	        if [ $$rc = 1 ] && grep -q VIOLATION $$out.txt; then \
	            echo "$$(tail -n 1 $$out.txt | sed 's/_relacy//; s/: VIOLATION.*//'): $$(sed -n 2p $$out.txt | sed 's/ (.*//') found, as it must be"; \
	        else echo "$$m BUGGY=$$b: unexpected result"; cat $$out.txt; exit 1; fi; \
	    fi; \
	done
$(RELACY_HPP):
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing relacy-dev (Relacy Race Detector)"; \
	    apt-get install -y -q relacy-dev >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null && apt-get install -y -q relacy-dev >/dev/null; }; \
	elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then \
	    sudo apt-get install -y -q relacy-dev >/dev/null 2>&1 || \
	    { sudo apt-get update -q >/dev/null && sudo apt-get install -y -q relacy-dev >/dev/null; }; \
	fi; \
	test -f $@ || { echo "make relacy needs relacy.hpp: apt-get install relacy-dev"; exit 1; }

# ---- coverage: gcov line and branch coverage of batch.h's implementation over the suite ---------
coverage: $(TEST_SRC) batch.h | stb
	@rm -rf build/coverage && mkdir -p build/coverage
	$(CC) $(WARN) -I$(STB_INCLUDE) -O0 -g --coverage -o build/coverage/run tests/main.c $(LDLIBS)
	cd build/coverage && BATCH_TEST_SCALE=4 ./run --no-fork > run.log 2>&1; tail -n 1 run.log
	@gcov -b -t -o build/coverage build/coverage/run-main.gcda > build/coverage/all.gcov 2> build/coverage/gcov.txt; \
	gcov -b -n -o build/coverage build/coverage/run-main.gcda >> build/coverage/gcov.txt 2>&1; \
	awk '/^ *-: *0:Source:/{on=($$0 ~ /batch\.h$$/)} on' build/coverage/all.gcov > build/coverage/batch.h.gcov; \
	awk '/^File .*batch\.h/{f=1;next} f&&/^Lines executed/{print "batch.h " $$0} f&&/^Branches executed/{print "batch.h " $$0} \
	     f&&/^Taken at least once/{print "batch.h branches " $$0; f=0}' build/coverage/gcov.txt; \
	echo "allocation-failure checks not fully taken (annotated source: build/coverage/batch.h.gcov):"; \
	awk -f tests/alloc_branches.awk build/coverage/batch.h.gcov
.PHONY: coverage

# ---- static analysis ----------------------------------------------------------------------------
# Excluded checks, and why: easily-swappable-parameters (the API's (graph, a, b) style by design);
# reserved-identifier (it applies C++'s rule on "__" anywhere; in C only a leading "__" or "_X" is
# reserved, and batch.h uses "batch__" as STYLE.md asks); insecureAPI.DeprecatedOrUnsafeBufferHandling
# (wants memset_s/snprintf_s, Annex K, which glibc does not have); suspicious-include (the parts
# include each other so that each compiles alone). Findings that remain are fixed or carry a
# NOLINT with the reason next to the code.
TIDY_CHECKS := -*,clang-analyzer-*,bugprone-*,concurrency-*,-bugprone-easily-swappable-parameters,-bugprone-reserved-identifier,-clang-analyzer-security.insecureAPI.DeprecatedOrUnsafeBufferHandling,-bugprone-suspicious-include
analyze: batch.h | stb
	@out=$$(clang-tidy tests/cpp_impl.c --header-filter='batch\.h' --checks='$(TIDY_CHECKS)' --quiet -- -std=c11 -I$(STB_INCLUDE) -I. 2>/dev/null | grep -E 'warning:|error:'); \
	if [ -n "$$out" ]; then echo "$$out"; echo "clang-tidy: findings"; exit 1; fi; echo "clang-tidy: 0 findings"
	@cppcheck --enable=warning,performance,portability --std=c11 --error-exitcode=1 -q --inline-suppr \
	    --suppress=missingIncludeSystem -DBATCH_IMPLEMENTATION -DCLOCK_MONOTONIC=1 -D_SC_NPROCESSORS_ONLN=84 tests/cpp_impl.c \
	    && echo "cppcheck: 0 findings"
.PHONY: analyze

# ---- MPI (opt-in: Open MPI from Debian, openmpi-bin libopenmpi-dev) ---------------------------------
# build/examples/mpi_map with mpicc, then its --test on 1..4 ranks x 1..2 workers and an inline pool (-1) (oversubscribed on
# small machines; as root mpirun wants --allow-run-as-root).
MPICC ?= mpicc
MPIRUN ?= mpirun
MPI_REPEAT ?= 8
MPIRUN_FLAGS ?= --oversubscribe --bind-to none $(if $(filter 0,$(shell id -u)),--allow-run-as-root,)
build/examples/mpi_map: examples/mpi_map.c batch.h | stb
	@mkdir -p $(@D)
	$(MPICC) $(ALL_CFLAGS) -I. -o $@ $< $(LDLIBS)
mpi-test: build/examples/mpi_map
	@for np in 1 2 3 4; do for w in 1 2 -1; do \
	    echo "-- $$np ranks x $$w workers"; \
	    OMPI_MCA_rmaps_base_oversubscribe=1 timeout 300 $(MPIRUN) $(MPIRUN_FLAGS) -np $$np ./build/examples/mpi_map --workers $$w --test \
	        | tail -n 1 | tee build/mpi-test.last; \
	    grep -q " 0 failed" build/mpi-test.last || exit 1; done; done
	@echo "-- 4 ranks x 2 workers, $(MPI_REPEAT) more times (end-of-input races)"
	@for i in $$(seq 1 $(MPI_REPEAT)); do \
	    timeout 300 $(MPIRUN) $(MPIRUN_FLAGS) -np 4 ./build/examples/mpi_map --workers 2 --test > build/mpi-test.last 2>&1; \
	    grep -q " 0 failed" build/mpi-test.last || { grep -E "^FAIL|says|adaptive:" build/mpi-test.last; exit 1; }; done; \
	    echo "$(MPI_REPEAT) passed"
	@echo "-- ASan + UBSan build, 2 and 4 ranks x 2 workers (leak checks off: Open MPI's own)"
	@$(MPICC) -std=c11 -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=all -I. -I$(STB_INCLUDE) \
	    -o build/examples/mpi_map_asan examples/mpi_map.c $(LDLIBS)
	@for np in 2 4; do ASAN_OPTIONS=detect_leaks=0 timeout 300 $(MPIRUN) $(MPIRUN_FLAGS) -np $$np \
	    ./build/examples/mpi_map_asan --workers 2 --test > build/mpi-test.last 2>&1; \
	    grep -q " 0 failed" build/mpi-test.last || { tail -n 30 build/mpi-test.last; exit 1; }; tail -n 1 build/mpi-test.last; done
	@echo "-- a slow rank (rank 1 sleeps 200 us per item), 3 ranks x 2 workers"
	@timeout 300 $(MPIRUN) $(MPIRUN_FLAGS) -np 3 ./build/examples/mpi_map --slow-rank 1
.PHONY: mpi-test
# map_skew over 1, 2 and 4 ranks (1 worker each: 4 is oversubscribed on 2 cores) and the
# coordination cost per batch; appends to bench/results_mpi.csv
build/bench/bench_mpi: bench/bench_mpi.c bench/workloads.h batch.h | stb
	@mkdir -p $(@D)
	$(MPICC) $(ALL_CFLAGS) -I. -Ibench -O2 -DNDEBUG -o $@ $< $(LDLIBS)
bench-mpi: build/bench/bench_mpi
	@rm -f bench/results_mpi.csv
	@for np in 1 2 4; do timeout 900 $(MPIRUN) $(MPIRUN_FLAGS) -np $$np ./build/bench/bench_mpi --workers 1 --csv bench/results_mpi.csv || exit 1; done
.PHONY: bench-mpi

# ---- fuzzing (clang's libFuzzer; not part of make test) ----------------------------------------
FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -std=c11 -g -O1 -I$(STB_INCLUDE) -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all
build/fuzz/%: tests/%.c batch.h | stb
	@mkdir -p $(@D)
	clang $(FUZZ_FLAGS) -o $@ $<
fuzz: build/fuzz/fuzz_graph build/fuzz/fuzz_desc build/fuzz/fuzz_journal
	@for t in fuzz_graph fuzz_desc fuzz_journal; do \
	    mkdir -p build/fuzz/corpus_$$t; \
	    if ./build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -max_len=512 -timeout=20 -print_final_stats=1 \
	        -artifact_prefix=build/fuzz/ -report_slow_units=100000 build/fuzz/corpus_$$t tests/corpus/$$t > build/fuzz/$$t.log 2>&1; then \
	        echo "$$t: $$(grep -E '^Done' build/fuzz/$$t.log)"; \
	    else tail -n 40 build/fuzz/$$t.log; echo "$$t FAILED (artifact in build/fuzz/)"; exit 1; fi; \
	done
.PHONY: fuzz

# ---- other platforms ----------------------------------------------------------------------------
# The suite cross-built for i686, armhf, aarch64 and s390x and run under qemu-user, the bare-metal
# program (tests/baremetal) on a Cortex-M4 under qemu-system-arm, and the suite on win64 under
# wine64 (make win64). Installs the cross compilers and emulators from Debian when run as root.
# BATCH_TEST_SCALE (default 4 here) shrinks the loops under emulation.
.PHONY: platforms cross baremetal
cross: batch.h | stb
	STB_INCLUDE=$(STB_INCLUDE) bash tests/cross.sh i686 armhf aarch64 s390x
baremetal: batch.h | stb
	STB_INCLUDE=$(STB_INCLUDE) bash tests/cross.sh baremetal
platforms: cross baremetal win64

# ---- install ---------------------------------------------------------------------------------
# The version is batch.h's own (BATCH_VERSION_STRING in batch_impl/api.h).
VERSION := $(shell sed -n 's/^\#define BATCH_VERSION_STRING "\(.*\)"/\1/p' batch_impl/api.h)
install: batch.h build/examples/batchrun
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 batch.h $(DESTDIR)$(PREFIX)/include/batch.h
	install -m 755 build/examples/batchrun $(DESTDIR)$(PREFIX)/bin/batchrun
	install -m 644 examples/batchrun/batchrun.1 $(DESTDIR)$(PREFIX)/share/man/man1/batchrun.1
	printf 'prefix=%s\nincludedir=$${prefix}/include\n\nName: batch\nDescription: batch.h, run batch work on every core (single-header C11)\nVersion: %s\nCflags: -I$${includedir} -I%s\nLibs: -pthread\n' \
	    '$(PREFIX)' '$(VERSION)' '$(STB_INCLUDE)' > $(DESTDIR)$(PREFIX)/lib/pkgconfig/batch.pc

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/batch.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/batch.pc \
	    $(DESTDIR)$(PREFIX)/bin/batchrun $(DESTDIR)$(PREFIX)/share/man/man1/batchrun.1

clean:
	rm -rf build

# ---- batchrun: the command-line tool (examples/batchrun/), its tests and a demo --------------
.PHONY: demo batchrun-test batchrun-diff
# The end-to-end script (with its differential checks against GNU parallel when installed), and
# the unit drivers of two parts: argument sources and replacement strings, running one command.
batchrun-test: build/examples/batchrun build/tests/batchrun_args_test build/tests/batchrun_child_test
	./build/tests/batchrun_args_test
	./build/tests/batchrun_child_test
	bash tests/batchrun_test.sh build/examples/batchrun
	bash tests/batchrun_queue_test.sh build/examples/batchrun

build/tests/batchrun_args_test: tests/batchrun_args_test.c examples/batchrun/args.c examples/batchrun/args.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iexamples/batchrun -o $@ tests/batchrun_args_test.c examples/batchrun/args.c

build/tests/batchrun_child_test: tests/batchrun_child_test.c examples/batchrun/child.c examples/batchrun/child.h
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Iexamples/batchrun -o $@ tests/batchrun_child_test.c examples/batchrun/child.c -pthread

# 42 command lines through args.c and through `parallel --dry-run` (about 90 s: parallel starts slowly)
batchrun-diff: build/tests/batchrun_args_test
	bash tests/batchrun_args_diff.sh build/tests/batchrun_args_test

# Runs examples/demo.jobs (builds and runs three examples, counts lines, one flaky job that
# passes on its retry) in a scratch directory, with the progress bar, the text report and the joblog.
demo: build/examples/batchrun
	@d=$$(mktemp -d) && st=0 && \
	BATCHRUN_DEMO_DIR="$$d" CC="$(CC)" STB_INCLUDE="$(STB_INCLUDE)" ./build/examples/batchrun -J examples/demo.jobs \
	    --retries 2 --retry-delay 200 --progress --joblog "$$d/joblog" --report-text "$$d/report.txt" || st=$$?; \
	echo "--- report"; cat "$$d/report.txt"; echo "--- joblog"; cat "$$d/joblog"; rm -rf "$$d"; exit $$st
