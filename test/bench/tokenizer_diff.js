// tokenizer_diff.js -- texts for the differential test against tiktoken.
//
//   node tokenizer_diff.js ENCODING COUNT SEED OUT.records [CORPUS...]
//
// Writes COUNT records (u32 length, UTF-8 text, u32 count, u32 ids) with the
// ids of the native Rust tiktoken (npm tiktoken-rs-node-linux-x64-gnu,
// NODE_PATH must find it).  Texts are random mixtures of the characters the
// split patterns treat specially, long runs, and mutated slices of the
// CORPUS files.  That binding always emits special-token ids, so texts
// containing special-token text are left out (encode_ordinary differs).
'use strict';
const fs = require('fs');
const { getEncoding } = require('tiktoken-rs-node-linux-x64-gnu');

const [enc, countArg, seedArg, outPath, ...corpora] = process.argv.slice(2);
const count = parseInt(countArg, 10);
let seed = parseInt(seedArg, 10) >>> 0 || 1;
function rand() {			// xorshift32
	seed ^= seed << 13; seed >>>= 0;
	seed ^= seed >>> 17;
	seed ^= seed << 5; seed >>>= 0;
	return seed / 4294967296;
}
const ri = (n) => Math.floor(rand() * n);
const pick = (a) => a[ri(a.length)];

const pools = [
	'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', '0123456789',
	' ', '  ', '\n', '\r\n', '\r', '\t', '.,;:!?-_/\\()[]{}<>"\'`~@#$%^&*+=|',
	"'s", "'S", "'t", "'re", "'RE", "'rE", "'ve", "'m", "'ll", "'LL", "'lL", "'d", "'ſ",
	'\u2019', '\u00a0', '\u0085', '\u2028', '\u2029', '\u3000', '\u1680', '\u2007',
	'\u202f', '\u205f', '\ufeff', '\u200b', '\u200d', '\u001c', '\u001f', '\u000b', '\u000c',
	'\u0301', '\u0300', '\u0308', '\u20dd', '\u0903', '\u093f',	// marks Mn, Me, Mc
	'\u01c5', '\u1f88', '\u02b0', '\u3005', '\u00aa', '\u01bb',	// Lt, Lm, Lo
	'é', 'ß', 'ſ', 'İ', 'ﬀ', 'Ω', 'ω', 'Я', 'я', 'ä', 'Ä', 'ǅ',
	'日本語', '中文', '한국어', 'ไทย', 'العربية', 'עברית', 'हिन्दी', 'ελληνικά',
	'\u0660\u0661\u0662', '\uff10\uff11', '\u2460', '\u2155', '\u216b',	// Nd, No, Nl
	'🧑‍🤝‍🧑', '👨‍👩‍👧‍👦', '🇩🇪', '1️⃣', '🏴󠁧󠁢󠁳󠁣󠁴󠁿', '😀', '\u{1F9CC}',
	'\u{1E4D0}', '\u{11F00}', '\u{10D40}', '\u{16D40}', '\u{1E5D0}', '\u{11BC0}',	// recent scripts
	'HTTPServer', 'HelloWorld', 'camelCase', 'XMLHttpRequest', 'https://a/b//c', '</div>',
	'\u0000'.slice(1),
];

function randomCodePoint() {
	for (;;) {
		const r = rand();
		const cp = r < 0.5 ? ri(0x800) : r < 0.85 ? ri(0x10000) : ri(0x110000);
		if (cp === 0 || (cp >= 0xd800 && cp <= 0xdfff)) continue;
		return String.fromCodePoint(cp);
	}
}

function randomText() {
	const parts = [];
	const n = 1 + ri(rand() < 0.9 ? 40 : 400);
	for (let i = 0; i < n; i++) {
		const r = rand();
		if (r < 0.75) parts.push(pick(pools));
		else if (r < 0.93) parts.push(randomCodePoint());
		else parts.push(pick(pools).repeat(1 + ri(300)));
	}
	return parts.join('');
}

const texts = corpora.map((p) => fs.readFileSync(p, 'utf8'));
function mutatedSlice() {
	const t = pick(texts);
	const start = ri(t.length);
	let s = Array.from(t.slice(start, start + 1 + ri(rand() < 0.8 ? 300 : 5000)));
	const muts = ri(8);
	for (let m = 0; m < muts && s.length > 0; m++) {
		const at = ri(s.length);
		const r = rand();
		if (r < 0.4) s.splice(at, 0, ...Array.from(rand() < 0.5 ? pick(pools) : randomCodePoint()));
		else if (r < 0.6) s.splice(at, 1 + ri(5));
		else if (r < 0.8) s[at] = rand() < 0.5 ? s[at].toUpperCase() : s[at].toLowerCase();
		else s.splice(at, 0, ...s.slice(at, at + 1 + ri(20)));
	}
	return s.join('');
}

const special = /<\|(endoftext|fim_prefix|fim_middle|fim_suffix|endofprompt)\|>/;
const encoding = getEncoding(enc);
const chunks = [];
let written = 0;
while (written < count) {
	const text = (texts.length && rand() < 0.5) ? mutatedSlice() : randomText();
	if (special.test(text)) continue;
	const bytes = Buffer.from(text, 'utf8');
	const ids = encoding.encode(text);
	const head = Buffer.alloc(4);
	head.writeUInt32LE(bytes.length);
	const mid = Buffer.alloc(4);
	mid.writeUInt32LE(ids.length);
	const body = Buffer.alloc(4 * ids.length);
	for (let i = 0; i < ids.length; i++) body.writeUInt32LE(ids[i], 4 * i);
	chunks.push(head, bytes, mid, body);
	written++;
}
fs.writeFileSync(outPath, Buffer.concat(chunks));
