/*-------------------------------------------------------------------------
 *
 * bpe.c
 *	  Byte-pair encoding: vocabulary image validation and the merge loop.
 *
 * The merge rule is tiktoken's: start from single bytes, repeatedly merge
 * the adjacent pair whose concatenation has the lowest rank (the leftmost
 * such pair on ties) until no adjacent pair is a token.  Parts are always
 * tokens, so the output is the ranks of the final parts.
 *
 * Short pieces use tiktoken's own shape (an array of parts, scanned for the
 * minimum after each merge): quadratic, but fastest for the few bytes most
 * pieces have.  Longer pieces use a linked list of parts and a binary heap
 * of candidate pairs keyed by (rank, position), so the leftmost lowest pair
 * comes out first; entries that went stale when a neighbour merged are
 * skipped when popped.  That makes every piece O(n log n): a megabyte of one
 * repeated letter (a single regex piece) costs no more than a few times a
 * megabyte of prose.
 *
 * IDENTIFICATION
 *	  src/tokenizer/bpe.c
 *
 *-------------------------------------------------------------------------
 */
#include "bpe.h"

/* pieces up to this many bytes use the array merge */
#define BPE_SHORT_PIECE		64
/* call work->interrupt after this many merges or pieces */
#define BPE_INTERRUPT_EVERY 65536

/*
 * Validate a vocabulary image and fill in a view of it.  Returns NULL on
 * success, else a message saying what is wrong.  The payload checksum is
 * checked first, so the hash table, whose entries are not checked one by
 * one here, is as the compiler wrote it.
 */
const char *
BpeVocabOpen(const void *image, size_t len, BpeVocab *v)
{
	const BpeFileHeader *h = (const BpeFileHeader *) image;
	const uint8_t *base = (const uint8_t *) image;
	uint64_t	nslots;
	uint32_t	r;
	int			b;

	if (len < sizeof(BpeFileHeader) || memcmp(h->magic, BPE_FILE_MAGIC, 8) != 0)
		return "not a compiled vocabulary file";
	if (h->endian != BPE_FILE_ENDIAN)
		return "compiled for a machine of another byte order";
	if (h->version != BPE_FILE_VERSION)
		return "compiled by another version of the vocabulary compiler";
	if (h->total_len != len || (len - sizeof(BpeFileHeader)) % 32 != 0)
		return "file size does not match its header";
	if (BpeChecksum(base + sizeof(BpeFileHeader), len - sizeof(BpeFileHeader)) !=
		h->payload_checksum)
		return "checksum mismatch (the file is damaged)";
	if (h->table_bits < 8 || h->table_bits > 28 || h->n_ranks == 0 ||
		h->n_ranks > BPE_MAX_RANKS ||
		h->n_ranks >= (1u << h->table_bits) || h->max_token_len == 0 ||
		h->max_token_len > BPE_MAX_TOKEN_LEN)
		return "header values out of range";
	nslots = (uint64_t) 1 << h->table_bits;
	if (h->offsets_off % 8 != 0 || h->table_off % 8 != 0 ||
		h->offsets_off < sizeof(BpeFileHeader) ||
		h->offsets_off + ((uint64_t) h->n_ranks + 1) * 4 > h->table_off ||
		h->table_off + nslots * sizeof(BpeSlot) > h->bytes_off ||
		h->bytes_off + h->bytes_len > len)
		return "sections overlap or exceed the file";

	v->offsets = (const uint32_t *) (base + h->offsets_off);
	v->table = (const BpeSlot *) (base + h->table_off);
	v->bytes = base + h->bytes_off;
	v->mask = (uint32_t) (nslots - 1);
	v->n_ranks = h->n_ranks;
	v->max_token_len = h->max_token_len;

	/* offsets must ascend within the bytes section */
	if (v->offsets[0] != 0 || v->offsets[h->n_ranks] != h->bytes_len)
		return "token offsets out of range";
	for (r = 0; r < h->n_ranks; r++)
	{
		uint32_t	l = v->offsets[r + 1] - v->offsets[r];

		if (v->offsets[r + 1] < v->offsets[r] || l > h->max_token_len)
			return "token offsets out of range";
	}

	/* every single byte must be a token: it is where merging starts */
	for (b = 0; b < 256; b++)
	{
		uint8_t		byte = (uint8_t) b;

		v->byte_rank[b] = BpeLookup(v, &byte, 1);
		if (v->byte_rank[b] == BPE_NO_RANK)
			return "a single byte is missing from the vocabulary";
	}
	return NULL;
}

/* rank of bytes p[a .. b), or BPE_NO_RANK */
static inline uint32_t
pair_rank(const BpeVocab *v, const uint8_t *p, size_t a, size_t b)
{
	return BpeLookup(v, p + a, b - a);
}

static inline void
tick(BpeWork *work, uint32_t *count)
{
	if (++*count >= BPE_INTERRUPT_EVERY)
	{
		*count = 0;
		if (work && work->interrupt)
			work->interrupt();
	}
}

/*
 * tiktoken's array merge, for n <= BPE_SHORT_PIECE.  start[k] is where part
 * k starts, pair[k] the rank of parts k and k+1 together, part[k] the rank
 * of part k.
 */
static size_t
merge_short(const BpeVocab *v, const uint8_t *p, size_t n, uint32_t *out)
{
	uint32_t	start[BPE_SHORT_PIECE + 1];
	uint32_t	pair[BPE_SHORT_PIECE];
	uint32_t	part[BPE_SHORT_PIECE];
	size_t		m = n;
	size_t		k;

	for (k = 0; k < n; k++)
	{
		start[k] = (uint32_t) k;
		part[k] = v->byte_rank[p[k]];
	}
	start[n] = (uint32_t) n;
	for (k = 0; k + 1 < n; k++)
		pair[k] = pair_rank(v, p, k, k + 2);
	pair[n - 1] = BPE_NO_RANK;

	for (;;)
	{
		uint32_t	best = BPE_NO_RANK;
		size_t		at = 0;

		for (k = 0; k + 1 < m; k++)
		{
			if (pair[k] < best)
			{
				best = pair[k];
				at = k;
			}
		}
		if (best == BPE_NO_RANK)
			break;

		/* parts at and at+1 become one */
		part[at] = best;
		memmove(&start[at + 1], &start[at + 2], (m - at - 1) * sizeof(uint32_t));
		memmove(&pair[at + 1], &pair[at + 2], (m - at - 2) * sizeof(uint32_t));
		memmove(&part[at + 1], &part[at + 2], (m - at - 2) * sizeof(uint32_t));
		m--;
		pair[at] = (at + 1 < m) ? pair_rank(v, p, start[at], start[at + 2]) : BPE_NO_RANK;
		if (at > 0)
			pair[at - 1] = pair_rank(v, p, start[at - 1], start[at + 1]);
	}
	if (out)
		memcpy(out, part, m * sizeof(uint32_t));
	return m;
}

/* binary min-heap of (rank << 32 | position) */
static inline void
heap_push(uint64_t *heap, size_t *size, uint64_t key)
{
	size_t		i = (*size)++;

	while (i > 0)
	{
		size_t		parent = (i - 1) / 2;

		if (heap[parent] <= key)
			break;
		heap[i] = heap[parent];
		i = parent;
	}
	heap[i] = key;
}

static inline uint64_t
heap_pop(uint64_t *heap, size_t *size)
{
	uint64_t	top = heap[0];
	uint64_t	key = heap[--*size];
	size_t		n = *size;
	size_t		i = 0;

	for (;;)
	{
		size_t		c = 2 * i + 1;

		if (c >= n)
			break;
		if (c + 1 < n && heap[c + 1] < heap[c])
			c++;
		if (key <= heap[c])
			break;
		heap[i] = heap[c];
		i = c;
	}
	if (n > 0)
		heap[i] = key;
	return top;
}

#define NONE_POS 0xFFFFFFFFu

/* one part of a long piece, named by its start position */
typedef struct BpePart
{
	uint32_t	next;			/* start of the next part (n at the end) */
	uint32_t	prev;			/* start of the previous part, or NONE_POS */
	uint32_t	pair;			/* rank of this part joined with the next */
	uint32_t	rank;			/* rank of this part */
} BpePart;

/*
 * The queue of candidate pairs of a long piece, ordered by (rank, position).
 *
 * Always a binary heap.  For very long pieces (BPE_BUCKET_PIECE bytes and
 * more) also a bucket queue: one FIFO list per rank, plus a three-level
 * bitmap of the non-empty ranks.  A push goes to its rank's list when its
 * position is beyond the last one appended there (so every list stays in
 * position order), else to the heap; a pop takes the smaller of the first
 * entry of the lowest non-empty list and the heap's top.  Long runs push
 * almost everything in position order, so the heap stays small and each
 * operation is a few instructions instead of a walk down 20 heap levels.
 */
#define BPE_BUCKET_PIECE	16384

typedef struct BpeBucket
{
	uint32_t	head;			/* first entry, NONE_POS if empty */
	uint32_t	tail;
	uint32_t	last;			/* position of the tail entry */
} BpeBucket;

typedef struct BpeQueue
{
	uint64_t   *heap;
	size_t		hsize;
	/* bucket queue, or NULL */
	BpeBucket  *buckets;
	uint32_t   *pool_pos;		/* entries: position ... */
	uint32_t   *pool_next;		/* ... and the next entry of the same rank */
	uint32_t	pool_used;
	uint64_t   *bits0;			/* bit r: rank r's list is not empty */
	uint64_t   *bits1;			/* bit w: bits0[w] != 0 */
	uint64_t   *bits2;			/* bit w: bits1[w] != 0 */
} BpeQueue;

static inline void
queue_push(BpeQueue *q, uint32_t rank, uint32_t pos)
{
	BpeBucket  *b;
	uint32_t	e;

	if (q->buckets == NULL || (q->buckets[rank].head != NONE_POS &&
							   pos <= q->buckets[rank].last))
	{
		heap_push(q->heap, &q->hsize, ((uint64_t) rank << 32) | pos);
		return;
	}
	b = &q->buckets[rank];
	e = q->pool_used++;
	q->pool_pos[e] = pos;
	q->pool_next[e] = NONE_POS;
	if (b->head == NONE_POS)
	{
		b->head = e;
		q->bits0[rank >> 6] |= (uint64_t) 1 << (rank & 63);
		q->bits1[rank >> 12] |= (uint64_t) 1 << ((rank >> 6) & 63);
		q->bits2[rank >> 18] |= (uint64_t) 1 << ((rank >> 12) & 63);
	}
	else
		q->pool_next[b->tail] = e;
	b->tail = e;
	b->last = pos;
}

/* lowest rank with a non-empty list, or BPE_NO_RANK */
static inline uint32_t
queue_min_bucket(const BpeQueue *q, uint32_t nwords2)
{
	uint32_t	w2;

	for (w2 = 0; w2 < nwords2; w2++)
	{
		if (q->bits2[w2])
		{
			uint32_t	w1 = w2 * 64 + (uint32_t) __builtin_ctzll(q->bits2[w2]);
			uint32_t	w0 = w1 * 64 + (uint32_t) __builtin_ctzll(q->bits1[w1]);

			return w0 * 64 + (uint32_t) __builtin_ctzll(q->bits0[w0]);
		}
	}
	return BPE_NO_RANK;
}

/* pop the smallest (rank, position) into *key; false if empty */
static inline int
queue_pop(BpeQueue *q, uint32_t nwords2, uint64_t *key)
{
	uint32_t	r;
	BpeBucket  *b;
	uint64_t	bkey;

	if (q->buckets == NULL || (r = queue_min_bucket(q, nwords2)) == BPE_NO_RANK)
	{
		if (q->hsize == 0)
			return 0;
		*key = heap_pop(q->heap, &q->hsize);
		return 1;
	}
	b = &q->buckets[r];
	bkey = ((uint64_t) r << 32) | q->pool_pos[b->head];
	if (q->hsize > 0 && q->heap[0] < bkey)
	{
		*key = heap_pop(q->heap, &q->hsize);
		return 1;
	}
	*key = bkey;
	b->head = q->pool_next[b->head];
	if (b->head == NONE_POS)
	{
		q->bits0[r >> 6] &= ~((uint64_t) 1 << (r & 63));
		if (q->bits0[r >> 6] == 0)
		{
			q->bits1[r >> 12] &= ~((uint64_t) 1 << ((r >> 6) & 63));
			if (q->bits1[r >> 12] == 0)
				q->bits2[r >> 18] &= ~((uint64_t) 1 << ((r >> 12) & 63));
		}
	}
	return 1;
}

/*
 * Heap merge for long pieces.  Parts are linked by start position; pair is
 * BPE_NO_RANK if the part has no successor, the pair is not a token, or the
 * part was absorbed by its predecessor.  A popped (rank, k) is current iff
 * parts[k].pair == rank: ranks name byte strings uniquely, so an equal rank
 * at the same start is the same pair.
 */
static size_t
merge_long(const BpeVocab *v, const uint8_t *p, size_t n, uint32_t *out,
		   BpeWork *work)
{
	BpePart    *parts;
	BpeQueue	q;
	uint64_t	key;
	uint32_t	nwords2 = 0;
	size_t		k;
	size_t		count = 0;
	uint32_t	ticks = 0;
	uint32_t	pos;

	parts = work->alloc(work->ctx, n * sizeof(BpePart));
	/* n initial pairs plus at most two per merge (n - 1 merges) */
	q.heap = work->alloc(work->ctx, 3 * n * sizeof(uint64_t));
	q.hsize = 0;
	q.buckets = NULL;
	if (n >= BPE_BUCKET_PIECE)
	{
		uint32_t	nwords0 = (v->n_ranks + 63) / 64;
		uint32_t	nwords1 = (nwords0 + 63) / 64;

		nwords2 = (nwords1 + 63) / 64;
		q.buckets = work->alloc(work->ctx, (size_t) v->n_ranks * sizeof(BpeBucket));
		memset(q.buckets, 0xFF, (size_t) v->n_ranks * sizeof(BpeBucket));
		q.pool_pos = work->alloc(work->ctx, 3 * n * sizeof(uint32_t));
		q.pool_next = work->alloc(work->ctx, 3 * n * sizeof(uint32_t));
		q.pool_used = 0;
		q.bits0 = work->alloc(work->ctx, (size_t) (nwords0 + nwords1 + nwords2) * 8);
		memset(q.bits0, 0, (size_t) (nwords0 + nwords1 + nwords2) * 8);
		q.bits1 = q.bits0 + nwords0;
		q.bits2 = q.bits1 + nwords1;
	}

	for (k = 0; k < n; k++)
	{
		BpePart    *pt = &parts[k];

		pt->next = (uint32_t) (k + 1);
		pt->prev = k > 0 ? (uint32_t) (k - 1) : NONE_POS;
		pt->rank = v->byte_rank[p[k]];
		pt->pair = k + 1 < n ? pair_rank(v, p, k, k + 2) : BPE_NO_RANK;
		if (pt->pair != BPE_NO_RANK)
			queue_push(&q, pt->pair, (uint32_t) k);
	}

	while (queue_pop(&q, nwords2, &key))
	{
		uint32_t	rank = (uint32_t) (key >> 32);
		BpePart    *pt;
		uint32_t	nx;
		uint32_t	end;

		pos = (uint32_t) key;
		pt = &parts[pos];
		if (pt->pair != rank)
			continue;			/* stale */

		/* merge part pos with its successor nx */
		nx = pt->next;
		end = parts[nx].next;
		pt->rank = rank;
		pt->next = end;
		if (end < n)
			parts[end].prev = pos;
		parts[nx].pair = BPE_NO_RANK;

		/* the new part and its successor */
		pt->pair = end < n ? pair_rank(v, p, pos, parts[end].next) : BPE_NO_RANK;
		if (pt->pair != BPE_NO_RANK)
			queue_push(&q, pt->pair, pos);
		/* its predecessor and the new part */
		if (pt->prev != NONE_POS)
		{
			uint32_t	pv = pt->prev;

			parts[pv].pair = pair_rank(v, p, pv, end);
			if (parts[pv].pair != BPE_NO_RANK)
				queue_push(&q, parts[pv].pair, pv);
		}
		tick(work, &ticks);
	}

	for (pos = 0; pos < n; pos = parts[pos].next)
	{
		if (out)
			out[count] = parts[pos].rank;
		count++;
	}
	if (q.buckets)
	{
		work->free(work->ctx, q.bits0);
		work->free(work->ctx, q.pool_next);
		work->free(work->ctx, q.pool_pos);
		work->free(work->ctx, q.buckets);
	}
	work->free(work->ctx, q.heap);
	work->free(work->ctx, parts);
	return count;
}

/*
 * Encode one piece of n >= 1 bytes; writes at most n ranks to out (unless
 * out is NULL) and returns their number.
 */
size_t
BpeEncodePiece(const BpeVocab *v, const uint8_t *p, size_t n, uint32_t *out,
			   BpeWork *work)
{
	uint32_t	r;

	if (n == 1)
	{
		if (out)
			out[0] = v->byte_rank[p[0]];
		return 1;
	}
	r = BpeLookup(v, p, n);
	if (r != BPE_NO_RANK)
	{
		if (out)
			out[0] = r;
		return 1;
	}
	if (n <= BPE_SHORT_PIECE)
		return merge_short(v, p, n, out);
	return merge_long(v, p, n, out, work);
}

/*
 * tiktoken's encode_ordinary: split text into pieces with the encoding's
 * pattern and encode each.  out, if not NULL, must have room for len
 * ranks (a piece never yields more ranks than bytes).  Returns the number
 * of tokens.
 */
size_t
BpeEncode(const BpeVocab *v, BpePattern pat, const uint8_t *text, size_t len,
		  uint32_t *out, BpeWork *work)
{
	size_t		i = 0;
	size_t		count = 0;
	uint32_t	ticks = 0;

	while (i < len)
	{
		size_t		e = BpeNextPiece(pat, text, len, i);

		count += BpeEncodePiece(v, text + i, e - i, out ? out + count : NULL, work);
		i = e;
		tick(work, &ticks);
	}
	return count;
}
