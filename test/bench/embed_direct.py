#!/usr/bin/env python3
"""The direct client of test/bench/embed_bench.sh: sends the requests
embed() would send, with http.client (keep-alive), parses the responses,
and prints the elapsed milliseconds.

  embed_direct.py batch PORT N B    N texts in batches of B
  embed_direct.py single PORT N     N single-text requests
"""
import http.client
import json
import sys
import time


def post(conn, texts):
    body = json.dumps({"model": "fe", "input": texts, "encoding_format": "float"})
    conn.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    if resp.status != 200 or len(data["data"]) != len(texts):
        raise SystemExit("bad response: %d" % resp.status)
    out = [None] * len(texts)
    for item in data["data"]:
        out[item["index"]] = [float(x) for x in item["embedding"]]
    return out


def main():
    mode, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    conn = http.client.HTTPConnection("127.0.0.1", port)
    start = time.perf_counter()
    if mode == "batch":
        b = int(sys.argv[4])
        texts = ["short text number %d about topic %d" % (i, i % 97) for i in range(1, n + 1)]
        for k in range(0, n, b):
            post(conn, texts[k:k + b])
    else:
        for i in range(1, n + 1):
            post(conn, ["short text %d" % i])
    print("%.3f" % ((time.perf_counter() - start) * 1000))


if __name__ == "__main__":
    main()
