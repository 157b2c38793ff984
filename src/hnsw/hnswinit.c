/*-------------------------------------------------------------------------
 *
 * hnswinit.c
 *	  Registers the hnsw subsystem's reloptions and settings at load time.
 *
 * The setting names are pgvector's (hnsw.*), so applications written for
 * pgvector keep working; a server therefore cannot load both extensions.
 *
 * IDENTIFICATION
 *	  src/hnsw/hnswinit.c
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/reloptions.h"
#include "utils/guc.h"

#include "genai.h"
#include "hnsw/hnsw.h"

relopt_kind hnsw_relopt_kind;

int			hnsw_ef_search = HNSW_DEFAULT_EF_SEARCH;
int			hnsw_iterative_scan = HNSW_ITERATIVE_SCAN_STRICT;
int			hnsw_max_scan_tuples = 20000;

static relopt_enum_elt_def storage_options[] = {
	{"auto", HNSW_STORAGE_AUTO},
	{"fp32", HNSW_STORAGE_FP32},
	{"fp16", HNSW_STORAGE_FP16},
	{"sq8", HNSW_STORAGE_SQ8},
	{NULL}
};

static const struct config_enum_entry iterative_scan_options[] = {
	{"off", HNSW_ITERATIVE_SCAN_OFF, false},
	{"relaxed_order", HNSW_ITERATIVE_SCAN_RELAXED, false},
	{"strict_order", HNSW_ITERATIVE_SCAN_STRICT, false},
	{NULL, 0, false}
};

void
HnswInit(void)
{
	hnsw_relopt_kind = add_reloption_kind();
	add_int_reloption(hnsw_relopt_kind, "m", "Max number of connections",
					  HNSW_DEFAULT_M, HNSW_MIN_M, HNSW_MAX_M, AccessExclusiveLock);
	add_int_reloption(hnsw_relopt_kind, "ef_construction", "Size of the dynamic candidate list for construction",
					  HNSW_DEFAULT_EF_CONSTRUCTION, HNSW_MIN_EF_CONSTRUCTION,
					  HNSW_MAX_EF_CONSTRUCTION, AccessExclusiveLock);
	add_enum_reloption(hnsw_relopt_kind, "storage", "How vectors are stored in the index",
					   storage_options, HNSW_STORAGE_AUTO,
					   "Valid values are \"auto\", \"fp32\", \"fp16\" and \"sq8\".",
					   AccessExclusiveLock);

	DefineCustomIntVariable("hnsw.ef_search",
							"Sets the size of the dynamic candidate list for search.",
							"Larger values give better recall at the cost of speed.",
							&hnsw_ef_search, HNSW_DEFAULT_EF_SEARCH,
							HNSW_MIN_EF_SEARCH, HNSW_MAX_EF_SEARCH,
							PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomEnumVariable("hnsw.iterative_scan",
							 "Sets whether an hnsw scan keeps searching when more rows are wanted.",
							 "\"strict_order\" (the default) returns rows in exact distance order and, "
							 "if the graph search runs out, finishes with an exact scan, so filtered "
							 "queries get every row they ask for; \"off\" stops after ef_search rows as pgvector does.",
							 &hnsw_iterative_scan, HNSW_ITERATIVE_SCAN_STRICT,
							 iterative_scan_options, PGC_USERSET, 0, NULL, NULL, NULL);

	DefineCustomIntVariable("hnsw.max_scan_tuples",
							"Sets how many nodes an iterative scan visits before it finishes exactly.",
							NULL,
							&hnsw_max_scan_tuples, 20000, 1, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);

	MarkGUCPrefixReserved("hnsw");
}
