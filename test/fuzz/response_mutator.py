"""Mutated provider responses for genai's response-parser fuzzing (stdlib only).

test/fake_endpoint.py answers a request carrying FAULT:fuzz=K with
body(route, K, n_inputs, seed): a valid response of the route (OpenAI
embeddings or chat, Ollama embed or chat) put through 1-4 random
mutations, deterministic in (seed, K), and an HTTP status (mostly 200).
test/t/057_endpoints_fuzz.pl sends the requests and checks that every
call ends with a result or a clean ERROR with an expected SQLSTATE.

Tree mutations replace, delete or duplicate members and elements with
values of random types (huge and tiny numbers, long and non-ASCII
strings, "\\u0000", lone surrogates, deep nesting); byte mutations flip,
insert (invalid UTF-8 included) or cut bytes of the serialized body and
splice in tokens JSON does not allow (NaN, 1e999999, 0x10) or keys twice.
"""
import json
import random

STATUSES = [200] * 12 + [201, 400, 401, 403, 404, 413, 422, 429, 500, 502, 503, 418]

RAW_TOKENS = ["NaN", "Infinity", "-Infinity", "1e999999", "-1e400", "1e400", "0x10",
              "01", "1.", ".5", "+1", "-", "1e", "--1", "1e-999999", "9" * 400,
              "1" + "0" * 200000, "\"\\u0000\"", "\"\\ud800\"", "\"\\udc00\\ud800\"",
              "\"\\x41\"", "tru", "nul", "undefined", "'a'", "[1,]", "{\"a\":1,}",
              "\"\\uZZZZ\""]


def valid(route, n, rng):
    dims = rng.choice([1, 2, 3, 4, 8])
    vecs = [[round(rng.uniform(-1, 1), 6) for _ in range(dims)] for _ in range(n)]
    if route == "embeddings":
        data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vecs)]
        rng.shuffle(data)
        return {"object": "list", "data": data, "model": "m",
                "usage": {"prompt_tokens": 3, "total_tokens": 3}}
    if route == "ollama_embed":
        return {"model": "m", "embeddings": vecs, "prompt_eval_count": 3}
    if route == "chat":
        return {"id": "x", "object": "chat.completion", "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi there"},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}}
    return {"model": "m", "message": {"role": "assistant", "content": "hi there"},
            "done": True, "prompt_eval_count": 3, "eval_count": 2}


def random_value(rng, depth=0):
    r = rng.random()
    if r < 0.15:
        return rng.choice([0, -1, 1, 2, 7, 2 ** 31, 2 ** 63, -2 ** 63, 10 ** 30, 16001, 100000])
    if r < 0.30:
        return rng.choice([0.5, -0.0, 1e308, -1e308, 3.4e38, 3.5e38, 1e-320, 1e-45, 123.456])
    if r < 0.45:
        return rng.choice(["", "a", "1", "hi", "é" * rng.randint(1, 700), "x" * rng.randint(1, 3000),
                           "\u0000", "\ud800", "line\nbreak", "\u2028", "日本語" * 200,
                           "\U0001F600" * 300])
    if r < 0.52:
        return rng.choice([True, False, None])
    if r < 0.70 and depth < 4:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))]
    if r < 0.85 and depth < 4:
        keys = ["data", "embedding", "index", "embeddings", "usage", "choices", "message",
                "content", "error", "prompt_tokens", "eval_count", "x"]
        return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))}
    if r < 0.90:
        return {"__deep__": rng.choice([10, 100, 1000, 10000, 200000])}
    return {"__raw__": rng.choice(RAW_TOKENS)}


def sentinel(v):
    return isinstance(v, dict) and len(v) == 1 and (
        isinstance(v.get("__raw__"), str) or isinstance(v.get("__deep__"), int))


def nodes(doc, path=()):
    yield path, doc
    if sentinel(doc):
        return
    if isinstance(doc, dict):
        for k, v in doc.items():
            yield from nodes(v, path + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            yield from nodes(v, path + (i,))


def get(doc, path):
    for p in path:
        doc = doc[p]
    return doc


def tree_mutate(doc, rng):
    all_nodes = list(nodes(doc))
    path, node = rng.choice(all_nodes)
    if not path:
        return random_value(rng) if rng.random() < 0.2 else doc
    parent = get(doc, path[:-1])
    key = path[-1]
    r = rng.random()
    if r < 0.5:
        parent[key] = random_value(rng)
    elif r < 0.7:
        del parent[key]
    elif r < 0.8 and isinstance(parent, list):
        parent.insert(key, parent[key])
    elif r < 0.9:
        parent[key] = [node]
    elif isinstance(node, (int, float)) and not isinstance(node, bool):
        parent[key] = rng.choice([-node, node * 1e300, node + 1, str(node)])
    else:
        parent[key] = {"__raw__": rng.choice(RAW_TOKENS)}
    return doc


def serialize(doc, rng):
    raws = []

    def fix(v):
        if isinstance(v, dict):
            if sentinel(v) and "__raw__" in v:
                raws.append(v["__raw__"])
                return "\u0001RAW%d\u0001" % (len(raws) - 1)
            if sentinel(v):
                d = v["__deep__"]
                raws.append("[" * d + "]" * d)
                return "\u0001RAW%d\u0001" % (len(raws) - 1)
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        return v

    text = json.dumps(fix(doc), ensure_ascii=rng.random() < 0.5, allow_nan=True)
    for i, raw in enumerate(raws):
        text = text.replace(json.dumps("\u0001RAW%d\u0001" % i, ensure_ascii=True), raw)
        text = text.replace(json.dumps("\u0001RAW%d\u0001" % i, ensure_ascii=False), raw)
    return text.encode("utf-8", "surrogatepass")


def byte_mutate(body, rng):
    b = bytearray(body)
    r = rng.random()
    if not b:
        return bytes(b)
    pos = rng.randrange(len(b))
    if r < 0.25:
        b[pos] = rng.randrange(256)
    elif r < 0.45:
        ins = rng.choice([b"\xff", b"\xc3", b"\xe2\x82", b"\x00", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                          b"\xef\xbb\xbf", b"\\", b"\"", b"{", b"]", b",", b":"])
        b[pos:pos] = ins
    elif r < 0.65:
        del b[pos:]
    elif r < 0.8:
        b[pos:pos] = rng.choice(RAW_TOKENS).encode()
    else:
        i = body.find(b"{")
        if i >= 0:
            b = bytearray(body)
            b[i + 1:i + 1] = rng.choice([b'"data":1,', b'"choices":[],', b'"message":"m",',
                                         b'"embeddings":[[1]],', b'"usage":null,'])
    return bytes(b)


def body(route, k, n, seed):
    """(status, body bytes) for fuzz case k of route with n inputs"""
    rng = random.Random(seed * 1000003 + k)
    status = rng.choice(STATUSES)
    doc = valid(route, max(n, 1), rng)
    for _ in range(rng.randint(1, 3)):
        doc = tree_mutate(doc, rng)
    data = serialize(doc, rng)
    if rng.random() < 0.35:
        for _ in range(rng.randint(1, 3)):
            data = byte_mutate(data, rng)
    return status, data
