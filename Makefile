# Makefile for genai (PGXS)
#
# Each subsystem lives in src/<name>/ and contributes its C files and one SQL
# fragment (src/<name>/<name>.sql).  The install script is assembled from the
# fragments in SUBSYSTEMS order, so subsystems can be worked on independently.

EXTENSION = genai
MODULE_big = genai
EXTVERSION = 1.0

SUBSYSTEMS = vector hnsw tokenizer http providers rag

SRCS = src/genai.c $(sort $(foreach s,$(SUBSYSTEMS),$(wildcard src/$(s)/*.c)))
OBJS = $(SRCS:.c=.o)

SQL_FRAGMENTS = $(foreach s,$(SUBSYSTEMS),$(wildcard src/$(s)/$(s).sql))
DATA_built = $(EXTENSION)--$(EXTVERSION).sql
DATA = $(wildcard data/genai_*)

# Tokenizer vocabularies: a host tool compiles the shipped rank files into
# mappable images at build time (src/tokenizer/README).
BPE_TOOL = src/tokenizer/tools/bpe_compile
BPE_VOCABS = $(patsubst data/%.tiktoken,src/tokenizer/vocab/%.bpe,$(wildcard data/genai_*.tiktoken))
DATA_built += $(BPE_VOCABS)

# pg_regress suites: every sql/*.sql, in name order.  test/run drives them
# (PGXS has no "make check"; PostgreSQL refuses to run as root).
REGRESS = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS = --inputdir=.

PG_CONFIG ?= pg_config
PG_CPPFLAGS = -Isrc
SHLIB_LINK = -lcurl -lm -Wl,--version-script=$(EXPORTS_FILE)
EXTRA_CLEAN = $(EXPORTS_FILE)

# Portable by default: no -march=native.  SIMD kernels carry their own
# target attributes and are chosen at load time (src/vector/README).
# WERROR=1 turns warnings into errors (the test runner and CI set it);
# ASSERTS=1 builds with USE_ASSERT_CHECKING.
ifeq ($(WERROR),1)
PG_CFLAGS += -Werror
endif
ifeq ($(ASSERTS),1)
PG_CPPFLAGS += -DUSE_ASSERT_CHECKING
endif
PG_CFLAGS += -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers

# Track header dependencies (PGXS leaves it off): a changed header must
# rebuild every file that includes it, or a rebase links stale objects.
override autodepend = yes

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Only what PostgreSQL calls is exported: the magic block, _PG_init, the
# SQL-callable functions with their info records, background worker entry
# points (a line starting "PGDLLEXPORT void f(Datum") and parallel worker
# entry points ("PGDLLEXPORT void f(dsm_segment").  Everything
# else is local, so genai never binds to another library's symbols, nor
# they to ours.
EXPORTS_FILE = genai.exports
$(EXPORTS_FILE): $(SRCS)
	{ echo '{ global: Pg_magic_func; _PG_init;'; \
	  sed -n 's/^PG_FUNCTION_INFO_V1(\([A-Za-z0-9_]*\));.*/\1; pg_finfo_\1;/p' $(SRCS); \
	  sed -n 's/^PGDLLEXPORT void \([A-Za-z0-9_]*\)(\(Datum\|dsm_segment\).*/\1;/p' $(SRCS); \
	  echo 'local: *; };'; } > $@

$(shlib): $(EXPORTS_FILE)

EXTRA_CLEAN += $(BPE_TOOL) $(BPE_VOCABS)
$(BPE_TOOL): src/tokenizer/tools/bpe_compile.c src/tokenizer/bpe.c \
		src/tokenizer/bpesplit.c src/tokenizer/bpeunicode.c src/tokenizer/bpe.h
	$(CC) -O2 -Isrc/tokenizer -o $@ $(filter %.c,$^)
src/tokenizer/vocab/%.bpe: data/%.tiktoken $(BPE_TOOL)
	@mkdir -p $(@D)
	$(BPE_TOOL) $< $@

$(EXTENSION)--$(EXTVERSION).sql: $(SQL_FRAGMENTS)
	{ printf '%s\n\n' '-- genai--$(EXTVERSION).sql: assembled by the Makefile from src/<subsystem>/<subsystem>.sql'; \
	  printf '%s\n' '\echo Use "CREATE EXTENSION genai" to load this file. \quit'; \
	  for f in $(SQL_FRAGMENTS); do echo; echo "-- from $$f"; cat $$f; done; } > $@

.PHONY: test demo fuzz
test:
	test/run
demo:
	demo/run
fuzz:
	$(MAKE) -C test/fuzz
