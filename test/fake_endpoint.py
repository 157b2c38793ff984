#!/usr/bin/env python3
"""A fake model endpoint for genai's tests and benchmarks (stdlib only).

Listens on 127.0.0.1 (port 0 = a free one, written to --port-file) and
speaks:

  POST /v1/embeddings, /v1/chat/completions                (OpenAI)
  POST /openai/deployments/<d>/embeddings?api-version=...   (Azure; "api-key")
  POST /openai/deployments/<d>/chat/completions?...
  POST /api/embed, /api/chat                                (Ollama)
  GET  /stats    request counters as JSON; POST /reset zeroes them

Outputs are deterministic.  An embedding of a text t with L UTF-8 bytes
and first byte b (0 if empty) has element i = ((L * (i + 1)) + b) % 101
(dimensions: the request's "dimensions", else --dims).  OpenAI-style
"data" is returned in reverse order with correct "index" fields, so a
client that ignores "index" gets the order wrong.  A chat answer is
"echo: " + the last user message.

Limits like a real provider's: --max-inputs and --max-tokens per request
(tokens of a text: ceil(bytes / 4)); oversize batches get HTTP 400.
--key K (repeatable) requires "Authorization: Bearer K" (or "api-key: K"
on Azure routes); a wrong key gets 401 whose message repeats the key it was given,
as OpenAI's does.

Faults are chosen per request by a word in any input text or message:
  FAULT:delay=MS     answer after MS milliseconds
  FAULT:429 FAULT:500 FAULT:503   that status (429/503 with Retry-After:
                     --retry-after seconds, or FAULT:429:ra=S)
  ...xN suffix       (e.g. FAULT:503x2) fail only the first N requests
                     carrying this exact body, then answer normally
  FAULT:malformed    invalid JSON          FAULT:wrongtypes  strings for numbers
  FAULT:truncated    Content-Length longer than the body, then close
  FAULT:huge         a 4 MB valid body     FAULT:reset   TCP reset, no answer
  FAULT:drip         one byte every 200 ms FAULT:stall   read, never answer
  FAULT:redirect     302 to /v1/redirected
  FAULT:fuzz=K       fuzz case K: a mutated response of the route, with a
                     random status (test/fuzz/response_mutator.py, seeded
                     by --fuzz-seed)

/stats also reports "in_flight" and "max_in_flight" (model requests being
answered at once, and the most seen) and "arrivals" (seconds since the
last reset at which each model request arrived).

--tls-cert FILE --tls-key FILE serve HTTPS instead of HTTP; with
--control-port-file the same routes (/stats, /reset) are also served over
plain HTTP on a second port, for test clients without TLS.  --proxy makes
it a forward proxy instead of an endpoint: absolute-URI requests
(http://host/...) are forwarded and CONNECT host:port tunnels; its own
/stats counts "proxied" requests, "connects" and their "targets".
"""
import argparse
import hashlib
import http.client
import json
import os
import re
import select
import socket
import ssl
import struct
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ARGS = None
LOCK = threading.Lock()
STATS = {}
SEEN = {}
T0 = [time.monotonic()]
GEN = [0]                       # bumped by /reset: older requests are not counted down
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz"))


def reset_stats():
    STATS.clear()
    STATS.update({"requests": 0, "connections": 0, "inputs": 0,
                  "max_inputs": 0, "by_route": {}, "faults": {},
                  "auth_ok": 0, "auth_bad": 0, "redirected": 0,
                  "in_flight": 0, "max_in_flight": 0, "arrivals": [],
                  "tls_failed": 0, "proxied": 0, "connects": 0, "targets": []})
    SEEN.clear()
    T0[0] = time.monotonic()
    GEN[0] += 1


def count(key, n=1, sub=None):
    with LOCK:
        if sub is None:
            STATS[key] += n
        else:
            STATS[key][sub] = STATS[key].get(sub, 0) + n


def vector(text, dims):
    b = text.encode("utf-8")
    first = b[0] if b else 0
    return [float(((len(b) * (i + 1)) + first) % 101) for i in range(dims)]


def tokens(text):
    return (len(text.encode("utf-8")) + 3) // 4


FAULT_RE = re.compile(r"FAULT:([a-z]+|[0-9]+)(?:=(\d+))?(?::ra=(\d+))?(?:x(\d+))?")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self):
        if isinstance(self.request, ssl.SSLSocket):
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                count("tls_failed")
                raise
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        count("connections")

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            sys.stderr.write("fake_endpoint: " + (fmt % args) + "\n")

    def send_json(self, status, obj, headers=None):
        body = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        # headers and body in one write: no Nagle / delayed-ACK stall
        self._headers_buffer.append(b"\r\n" + body)
        self.end_in_flight()
        self.flush_headers()

    def end_in_flight(self):
        # before the answer is written: once a client has it, it may send
        # its next request, which must not find this one still counted
        if getattr(self, "in_flight", False):
            self.in_flight = False
            with LOCK:
                if self.gen == GEN[0]:
                    STATS["in_flight"] -= 1

    def error(self, status, message, headers=None, ollama=False):
        if ollama:
            self.send_json(status, {"error": message}, headers)
        else:
            self.send_json(status, {"error": {"message": message, "type": "fake_error"}}, headers)

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                self.send_json(200, STATS)
        elif self.path == "/health":
            self.send_json(200, {"ok": True})
        else:
            self.error(404, "no such route")

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        if path == "/reset":
            with LOCK:
                reset_stats()
            self.send_json(200, {"ok": True})
            return
        if path == "/v1/redirected":
            count("redirected")
            self.send_json(200, {"redirected": True})
            return
        count("requests")
        count("by_route", 1, path)
        with LOCK:
            STATS["in_flight"] += 1
            STATS["max_in_flight"] = max(STATS["max_in_flight"], STATS["in_flight"])
            STATS["arrivals"].append(round(time.monotonic() - T0[0], 3))
            self.gen = GEN[0]
        self.in_flight = True
        try:
            self.model_request(raw, path)
        finally:
            self.end_in_flight()

    def model_request(self, raw, path):
        azure = path.startswith("/openai/deployments/")
        ollama = path.startswith("/api/")
        if ARGS.key is not None:
            if azure:
                given = self.headers.get("api-key")
            else:
                auth = self.headers.get("Authorization") or ""
                given = auth[7:] if auth.startswith("Bearer ") else None
            if given not in ARGS.key:
                count("auth_bad")
                self.error(401, "Incorrect API key provided: %s" % given, ollama=ollama)
                return
            count("auth_ok")
        try:
            req = json.loads(raw.decode("utf-8"))
        except Exception:
            self.error(400, "request body is not JSON", ollama=ollama)
            return
        if self.fault(raw, ollama):
            return
        if path in ("/v1/embeddings", "/api/embed") or (azure and path.endswith("/embeddings")):
            self.embeddings(req, ollama)
        elif path in ("/v1/chat/completions", "/api/chat") or (azure and path.endswith("/chat/completions")):
            self.chat(req, ollama)
        else:
            self.error(404, "no such route: %s" % path, ollama=ollama)

    def fault(self, raw, ollama):
        m = FAULT_RE.search(raw.decode("utf-8", "replace"))
        if not m:
            return False
        kind, arg, ra, times = m.group(1), m.group(2), m.group(3), m.group(4)
        if times is not None:
            key = hashlib.sha256(raw).hexdigest()
            with LOCK:
                SEEN[key] = SEEN.get(key, 0) + 1
                n = SEEN[key]
            if n > int(times):
                return False
        count("faults", 1, kind)
        retry_after = ra if ra is not None else str(ARGS.retry_after)
        if kind == "delay":
            time.sleep(int(arg or 1000) / 1000.0)
            return False
        if kind in ("429", "503"):
            self.error(int(kind), "fake %s, slow down" % kind, {"Retry-After": retry_after}, ollama)
        elif kind in ("500", "502", "504"):
            self.error(int(kind), "fake internal error %s" % kind, ollama=ollama)
        elif kind == "malformed":
            body = b'{"data": [{"embedding": [1.0, 2.0'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif kind == "wrongtypes":
            self.send_json(200, {"data": [{"embedding": ["1", "2"], "index": "0"}],
                                 "embeddings": "nope", "choices": "nope",
                                 "message": {"content": 42}, "usage": {"prompt_tokens": "many"}})
        elif kind == "truncated":
            body = b'{"data": [{"embedding": [1.0, 2.0], "index": 0}]}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body) + 100))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            self.close_connection = True
        elif kind == "huge":
            filler = "x" * (4 * 1024 * 1024)
            self.send_json(200, {"data": [], "filler": filler})
        elif kind == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()
        elif kind == "drip":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            try:
                for _ in range(3000):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.2)
            except OSError:
                pass
            self.close_connection = True
        elif kind == "stall":
            time.sleep(int(arg or 60000) / 1000.0)
            self.close_connection = True
        elif kind == "fuzz":
            import response_mutator
            path = self.path.split("?")[0]
            if path.endswith("/api/embed"):
                route = "ollama_embed"
            elif path.endswith("/api/chat"):
                route = "ollama_chat"
            elif path.endswith("/embeddings"):
                route = "embeddings"
            else:
                route = "chat"
            try:
                n = len(json.loads(raw.decode("utf-8")).get("input") or [])
            except Exception:
                n = 1
            status, body = response_mutator.body(route, int(arg or 0), n, ARGS.fuzz_seed)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self._headers_buffer.append(b"\r\n" + body)
            self.flush_headers()
        elif kind == "redirect":
            self.send_response(302)
            self.send_header("Location", "/v1/redirected")
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.error(400, "unrecognized fault %s" % kind, ollama=ollama)
        return True

    def embeddings(self, req, ollama):
        inputs = req.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not all(isinstance(t, str) for t in inputs):
            self.error(400, "input must be a string or an array of strings", ollama=ollama)
            return
        if ARGS.max_inputs and len(inputs) > ARGS.max_inputs:
            self.error(400, "too many inputs: %d > %d" % (len(inputs), ARGS.max_inputs), ollama=ollama)
            return
        ntok = sum(tokens(t) for t in inputs)
        if ARGS.max_tokens and ntok > ARGS.max_tokens:
            self.error(400, "too many tokens: %d > %d" % (ntok, ARGS.max_tokens), ollama=ollama)
            return
        count("inputs", len(inputs))
        with LOCK:
            STATS["max_inputs"] = max(STATS["max_inputs"], len(inputs))
        dims = req.get("dimensions") or ARGS.dims
        vecs = [vector(t, dims) for t in inputs]
        if ollama:
            self.send_json(200, {"model": req.get("model"), "embeddings": vecs,
                                 "prompt_eval_count": ntok})
        else:
            data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vecs)]
            data.reverse()
            self.send_json(200, {"object": "list", "data": data, "model": req.get("model"),
                                 "usage": {"prompt_tokens": ntok, "total_tokens": ntok}})

    def chat(self, req, ollama):
        msgs = req.get("messages")
        if not isinstance(msgs, list) or not msgs:
            self.error(400, "messages must be a non-empty array", ollama=ollama)
            return
        last = ""
        for m in msgs:
            if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str):
                last = m["content"]
        answer = "echo: " + last
        opts = req.get("options", {}) if ollama else req
        limit = opts.get("num_predict") if ollama else opts.get("max_tokens")
        if isinstance(limit, int) and limit > 0:
            answer = " ".join(answer.split(" ")[:limit])
        ptok = sum(tokens(m.get("content", "")) for m in msgs if isinstance(m, dict) and isinstance(m.get("content"), str))
        ctok = tokens(answer)
        if ollama:
            self.send_json(200, {"model": req.get("model"), "message": {"role": "assistant", "content": answer},
                                 "done": True, "prompt_eval_count": ptok, "eval_count": ctok})
        else:
            self.send_json(200, {"id": "fake-1", "object": "chat.completion", "model": req.get("model"),
                                 "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                                              "finish_reason": "stop"}],
                                 "usage": {"prompt_tokens": ptok, "completion_tokens": ctok,
                                           "total_tokens": ptok + ctok},
                                 "echo_temperature": req.get("temperature")})


class ProxyHandler(BaseHTTPRequestHandler):
    """A forward proxy: absolute-URI requests and CONNECT tunnels."""
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if ARGS.verbose:
            sys.stderr.write("fake_proxy: " + (fmt % args) + "\n")

    def reply(self, status, body, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def forward(self):
        if self.path == "/stats":
            with LOCK:
                body = json.dumps(STATS).encode()
            self.reply(200, body, [("Content-Type", "application/json")])
            return
        if self.path == "/reset":
            with LOCK:
                reset_stats()
            self.reply(200, b"{}")
            return
        m = re.match(r"http://([^/:]+)(?::(\d+))?(/.*)?$", self.path)
        if not m:
            self.reply(400, b"absolute http URI expected")
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        count("proxied")
        with LOCK:
            STATS["targets"].append(self.path)
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("proxy-connection", "proxy-authorization", "connection")}
        conn = http.client.HTTPConnection(m.group(1), int(m.group(2) or 80), timeout=60)
        try:
            conn.request(self.command, m.group(3) or "/", body=raw, headers=headers)
            resp = conn.getresponse()
            body = resp.read()
        except OSError as e:
            self.reply(502, ("proxy: %s" % e).encode())
            return
        finally:
            conn.close()
        self.reply(resp.status, body,
                   [(k, v) for k, v in resp.getheaders()
                    if k.lower() not in ("content-length", "transfer-encoding", "connection")])

    do_GET = forward
    do_POST = forward

    def do_CONNECT(self):
        host, _, port = self.path.rpartition(":")
        count("connects")
        with LOCK:
            STATS["targets"].append(self.path)
        try:
            upstream = socket.create_connection((host, int(port)), timeout=60)
        except (OSError, ValueError) as e:
            self.reply(502, ("proxy: %s" % e).encode())
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        client = self.connection
        try:
            while True:
                ready, _, _ = select.select([client, upstream], [], [], 60)
                if not ready:
                    break
                for s in ready:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is client else client).sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()


def main():
    global ARGS
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--dims", type=int, default=8)
    p.add_argument("--max-inputs", type=int, default=0)
    p.add_argument("--max-tokens", type=int, default=0)
    p.add_argument("--key", action="append", help="accepted key (repeatable)")
    p.add_argument("--retry-after", type=int, default=1)
    p.add_argument("--verbose", action="store_true")
    p.add_argument("--fuzz-seed", type=int, default=1)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--proxy", action="store_true", help="be a forward proxy instead")
    p.add_argument("--control-port-file")
    ARGS = p.parse_args()
    reset_stats()
    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 128
    srv = ThreadingHTTPServer(("127.0.0.1", ARGS.port), ProxyHandler if ARGS.proxy else Handler)
    if ARGS.tls_cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(ARGS.tls_cert, ARGS.tls_key)
        # the handshake runs in the request's thread (Handler.setup)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True, do_handshake_on_connect=False)
    if ARGS.control_port_file:
        ctl = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=ctl.serve_forever, daemon=True).start()
        with open(ARGS.control_port_file + ".tmp", "w") as f:
            f.write("%d\n" % ctl.server_address[1])
        os.rename(ARGS.control_port_file + ".tmp", ARGS.control_port_file)
    port = srv.server_address[1]
    if ARGS.port_file:
        with open(ARGS.port_file + ".tmp", "w") as f:
            f.write("%d\n" % port)
        os.rename(ARGS.port_file + ".tmp", ARGS.port_file)
    else:
        print(port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
