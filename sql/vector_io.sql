-- Text and binary I/O of vector: a property test over random float bit
-- patterns (text and binary round-trip bit for bit, and the text is
-- PostgreSQL's own shortest float4 form), then every kind of bad input
-- with its message and SQLSTATE.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS genai;
RESET client_min_messages;
SET extra_float_digits = 1;

-- Binary values reach vector_recv through COPY ... (FORMAT binary) from a
-- file this test writes with lo_export, so any bytes can be fed to it.
\getenv abs_builddir PG_ABS_BUILDDIR
\set copyfile :abs_builddir '/results/vector_io.copy'

-- A binary COPY file of (id int4, v vector) rows, v given as raw bytes.
CREATE FUNCTION vector_io_copyfile(ids int[], payloads bytea[], path text) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	body bytea := '\x5047434f50590aff0d0a00'::bytea || '\x0000000000000000'::bytea;
	lo oid;
BEGIN
	FOR i IN 1 .. array_length(ids, 1) LOOP
		body := body || int2send(2::int2) || int4send(4) || int4send(ids[i])
			|| int4send(length(payloads[i])) || payloads[i];
	END LOOP;
	body := body || '\xffff'::bytea;
	lo := lo_from_bytea(0, body);
	PERFORM lo_export(lo, path);
	PERFORM lo_unlink(lo);
END $$;

-- The binary form of a vector whose elements have the given float bits.
CREATE FUNCTION vector_io_payload(bits int[]) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
	SELECT int2send(array_length(bits, 1)::int2) || '\x0000'::bytea
		|| string_agg(int4send(b), ''::bytea ORDER BY n)
	FROM unnest(bits) WITH ORDINALITY AS u(b, n)
$$;

-- Random float bit patterns: uniform 32-bit words, except that words with
-- an all-ones exponent (NaN, infinity) get the top exponent bit cleared.
-- Row 0 holds the edge cases: 0, -0, smallest and largest denormal,
-- smallest normal, largest finite of both signs, 1, 0.1, 1/3, and
-- values just around powers of ten where shortest output is tricky.
CREATE TABLE vector_io_bits (id int PRIMARY KEY, bits int[]);
SELECT setseed(0.25);
INSERT INTO vector_io_bits VALUES (0, ARRAY[
	x'00000000'::int, x'80000000'::int, x'00000001'::int, x'807fffff'::int,
	x'00800000'::int, x'7f7fffff'::int, x'ff7fffff'::int, x'3f800000'::int,
	x'3dcccccd'::int, x'3eaaaaab'::int, x'4b189680'::int, x'4b189681'::int,
	x'2b8cbccc'::int, x'5f0ac723'::int, x'7e967699'::int, x'0001869f'::int]);
INSERT INTO vector_io_bits
	SELECT id, array_agg(CASE WHEN (w >> 23) & 255 = 255 THEN w & ~(1 << 30) ELSE w END)
	FROM (SELECT id, (floor(random() * 4294967296) - 2147483648)::int AS w
		  FROM generate_series(1, 3000) id, generate_series(1, 16) d) r
	GROUP BY id;
-- one vector at the dimension limit
INSERT INTO vector_io_bits
	SELECT 3001, array_agg(CASE WHEN (w >> 23) & 255 = 255 THEN w & ~(1 << 30) ELSE w END)
	FROM (SELECT (floor(random() * 4294967296) - 2147483648)::int AS w
		  FROM generate_series(1, 16000)) r;
SELECT count(*) AS vectors, sum(array_length(bits, 1)) AS floats,
       count(DISTINCT bits[1] >> 23 & 255) > 200 AS exponents_spread
FROM vector_io_bits;

-- load them through vector_recv
SELECT vector_io_copyfile(array_agg(id ORDER BY id),
						  array_agg(vector_io_payload(bits) ORDER BY id), :'copyfile')
FROM vector_io_bits;
CREATE TABLE vector_io_rt (id int, v vector);
COPY vector_io_rt FROM :'copyfile' (FORMAT binary);

-- every check counts failures; all must be zero
SELECT count(*) AS loaded,
       count(*) FILTER (WHERE vector_send(r.v) <> vector_io_payload(b.bits)) AS recv_send_mismatch,
       count(*) FILTER (WHERE vector_send(r.v::text::vector) <> vector_send(r.v)) AS text_mismatch,
       count(*) FILTER (WHERE r.v::text <> '[' || array_to_string(r.v::real[], ',') || ']')
           AS not_float4out_text
FROM vector_io_rt r JOIN vector_io_bits b USING (id);
-- binary COPY out and in again is also bit-identical
COPY vector_io_rt TO :'copyfile' (FORMAT binary);
CREATE TABLE vector_io_rt2 (id int, v vector);
COPY vector_io_rt2 FROM :'copyfile' (FORMAT binary);
SELECT count(*) AS reloaded,
       count(*) FILTER (WHERE vector_send(a.v) IS DISTINCT FROM vector_send(b.v)) AS mismatch
FROM vector_io_rt a FULL JOIN vector_io_rt2 b USING (id);
-- the edge cases, as text
SELECT v FROM vector_io_rt WHERE id = 0;
DROP TABLE vector_io_rt, vector_io_rt2, vector_io_bits;

-- Bad input.  vector_io_try runs a statement and shows SQLSTATE, message
-- and detail of the error it raises.
CREATE FUNCTION vector_io_try(stmt text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	msg text;
	detail text;
BEGIN
	EXECUTE stmt;
	RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL;
	RETURN SQLSTATE || ': ' || msg || coalesce(' / ' || nullif(detail, ''), '');
END $$;

SELECT stmt, vector_io_try(stmt) FROM (VALUES
	($$SELECT '[1,NaN,3]'::vector$$),
	($$SELECT '[nan]'::vector$$),
	($$SELECT '[Infinity]'::vector$$),
	($$SELECT '[1,-Infinity]'::vector$$),
	($$SELECT '[-inf]'::vector$$),
	($$SELECT '[1e39]'::vector$$),
	($$SELECT '[1,-3.5e38]'::vector$$),
	($$SELECT ''::vector$$),
	($$SELECT '   '::vector$$),
	($$SELECT '[]'::vector$$),
	($$SELECT '[ ]'::vector$$),
	($$SELECT '['::vector$$),
	($$SELECT ']'::vector$$),
	($$SELECT '[1,,2]'::vector$$),
	($$SELECT '[,1]'::vector$$),
	($$SELECT '[1,]'::vector$$),
	($$SELECT '1,2'::vector$$),
	($$SELECT '{1,2}'::vector$$),
	($$SELECT '[1 2]'::vector$$),
	($$SELECT '[1,2]x'::vector$$),
	($$SELECT '[1,2] ]'::vector$$),
	($$SELECT '[[1,2]]'::vector$$),
	($$SELECT '[1,two]'::vector$$),
	($$SELECT '[1;2]'::vector$$),
	($$SELECT ('[' || repeat('1,', 16000) || '1]')::vector$$),
	($$SELECT '[1,2]'::vector(3)$$),
	($$SELECT '[1,2]'::vector(0)$$),
	($$SELECT '[1,2]'::vector(16001)$$),
	($$SELECT '[1,2]'::vector(2,2)$$),
	($$SELECT '[1,2]'::vector <-> '[1,2,3]'$$),
	($$SELECT '[1,2]'::vector <#> '[1,2,3]'$$),
	($$SELECT '[1,2]'::vector <=> '[1,2,3]'$$),
	($$SELECT '[1,2]'::vector <+> '[1,2,3]'$$),
	($$SELECT '[1,2]'::vector + '[1,2,3]'$$),
	($$SELECT '[3e38]'::vector * '[2]'$$),
	($$SELECT l2_distance('[1]', '[1,2]')$$)
) t(stmt);

-- accepted spellings: whitespace around tokens, exponents, a leading plus,
-- hex floats (strtof, as float4in and pgvector), values that round to a
-- denormal or zero
SELECT ' [ 1 , +2.5e0 ,-3 ] '::vector, '[0x10]'::vector, '[1e-40, 1e-46, -1e-50]'::vector;
SELECT '[1,2,3]'::vector(3), vector_dims(('[' || repeat('1,', 15999) || '1]')::vector(16000));

-- bad binary values, fed to vector_recv through COPY (FORMAT binary)
CREATE TABLE vector_io_bin (id int, v vector);
CREATE TABLE vector_io_bin3 (id int, v vector(3));
CREATE FUNCTION vector_io_recv(payload bytea, tab text, path text) RETURNS text
LANGUAGE plpgsql AS $$
BEGIN
	PERFORM vector_io_copyfile(ARRAY[1], ARRAY[payload], path);
	RETURN vector_io_try(format('COPY %I FROM %L (FORMAT binary)', tab, path));
END $$;
SELECT what, vector_io_recv(payload, tab, :'copyfile') FROM (VALUES
	('valid', '\x00020000' || int4send(x'3f800000'::int) || int4send(x'c0000000'::int), 'vector_io_bin'),
	('empty', '\x', 'vector_io_bin'),
	('short header', '\x0001', 'vector_io_bin'),
	('zero dimensions', '\x00000000', 'vector_io_bin'),
	('negative dimensions', '\xffff0000' || int4send(0), 'vector_io_bin'),
	('16001 dimensions', int2send(16001::int2) || '\x0000', 'vector_io_bin'),
	('reserved field set', '\x00010001' || int4send(0), 'vector_io_bin'),
	('too few bytes', '\x00020000' || int4send(0), 'vector_io_bin'),
	('too many bytes', '\x00010000' || int4send(0) || int4send(0), 'vector_io_bin'),
	('partial element', '\x00010000' || '\x000000'::bytea, 'vector_io_bin'),
	('NaN', '\x00020000' || int4send(0) || int4send(x'7fc00000'::int), 'vector_io_bin'),
	('signalling NaN', '\x00010000' || int4send(x'ff800001'::int), 'vector_io_bin'),
	('infinity', '\x00010000' || int4send(x'7f800000'::int), 'vector_io_bin'),
	('-infinity', '\x00010000' || int4send(x'ff800000'::int), 'vector_io_bin'),
	('typmod mismatch', '\x00010000' || int4send(0), 'vector_io_bin3')
) t(what, payload, tab);
SELECT id, v FROM vector_io_bin ORDER BY id;

DROP TABLE vector_io_bin, vector_io_bin3;
DROP FUNCTION vector_io_recv(bytea, text, text);
DROP FUNCTION vector_io_try(text);
DROP FUNCTION vector_io_copyfile(int[], bytea[], text);
DROP FUNCTION vector_io_payload(int[]);
RESET extra_float_digits;
