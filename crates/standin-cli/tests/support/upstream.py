"""A tiny upstream for standin's tests, run inside a test network namespace.

TCP (dual-stack) on every port given: answers one HTTP/1.0 response whose body says which
local address the connection reached and from where. UDP (dual-stack) on every port given:
counts datagrams. `GET /udp-count` returns that count. Prints "ready" once bound.

--http / --https ports: a keep-alive HTTP/1.1 server (Content-Length and chunked bodies)
that appends every byte it receives, as it receives it, to --log (one JSON line per read:
connection id, local address, SNI, bytes as latin-1), and answers each request with a JSON
echo of what it parsed. The tests read that log to see what a destination actually got.
A bare `WHOAMI` line (not HTTP) is answered, unframed, with the last Authorization header
any request carried (and `GET /last-auth` with the same in its JSON echo).
"""
import base64, json, socket, ssl, sys, threading

udp_count = 0
last_auth = ""
lock = threading.Lock()

def bind_tcp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    # Shares the port with dnsmasq's own address when it is 53.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    s.listen(256)
    return s

def serve_tcp(s):
    def handle(c, peer):
        try:
            c.settimeout(10)
            data = c.recv(4096)
            if data[:1] == b"\x16":
                # A TLS ClientHello: say so (this upstream does not speak TLS).
                c.sendall(b"TLS-SEEN\n")
                return
            while data and b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
            local = c.getsockname()
            if b"GET /udp-count" in data:
                with lock:
                    body = f"udp={udp_count}\n"
            else:
                body = f"local={fmt(local)} peer={unmap(peer[0])}\n"
            c.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body.encode()))
        except OSError:
            pass
        finally:
            c.close()
    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()

def unmap(host):
    return host[7:] if host.startswith("::ffff:") else host

def fmt(addr):
    host = unmap(addr[0])
    if ":" in host:
        return f"[{host}]:{addr[1]}"
    return f"{host}:{addr[1]}"

def bind_udp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    # Shares the port with dnsmasq's own address when it is 53.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    return s

def serve_udp(s):
    global udp_count
    while True:
        s.recvfrom(65536)
        with lock:
            udp_count += 1

def serve_tls(s, ctx):
    def handle(c, peer):
        seen = {}
        try:
            c.settimeout(10)
            tls = ctx.wrap_socket(c, server_side=True)
            data = b""
            while b"\r\n\r\n" not in data and len(data) < 65536:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                data += chunk
            body = f"tls local={fmt(tls.getsockname())} sni={getattr(tls, 'sni', '-')}\n"
            tls.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body.encode()))
            tls.close()
        except (OSError, ssl.SSLError):
            c.close()
    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c, peer), daemon=True).start()

def tls_context(cert, key):
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    def remember(sslsock, name, _ctx):
        sslsock.sni = name or "-"
    ctx.sni_callback = remember
    return ctx

log_lock = threading.Lock()
conn_ids = iter(range(1, 1 << 30))

def log_bytes(path, conn, local, sni, data):
    rec = json.dumps({"conn": conn, "local": local, "sni": sni, "data": data.decode("latin-1")})
    with log_lock, open(path, "a") as f:
        f.write(rec + "\n")
        f.flush()

class Conn:
    def __init__(self, sock, path, conn, local, sni):
        self.sock, self.path, self.conn, self.local, self.sni = sock, path, conn, local, sni
        self.buf = b""

    def fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError
        log_bytes(self.path, self.conn, self.local, self.sni, chunk)
        self.buf += chunk

    def until(self, sep):
        while sep not in self.buf:
            if len(self.buf) > 1 << 20:
                raise EOFError
            self.fill()
        i = self.buf.index(sep)
        out, self.buf = self.buf[:i], self.buf[i + len(sep):]
        return out

    def take(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

def serve_http_conn(sock, path, local, sni):
    c = Conn(sock, path, next(conn_ids), local, sni)
    n = 0
    try:
        while True:
            head = c.until(b"\r\n\r\n").decode("latin-1")
            lines = head.split("\r\n")
            method, target, _ = (lines[0].split(" ", 2) + ["", ""])[:3]
            headers = []
            for line in lines[1:]:
                k, _, v = line.partition(":")
                headers.append((k.strip(), v.strip()))
            hd = {}
            for k, v in headers:
                hd.setdefault(k.lower(), v)
            global last_auth
            if method == "WHOAMI" and target == "":
                sock.sendall(last_auth.encode("latin-1") + b"\n")
                continue
            if "authorization" in hd:
                last_auth = hd["authorization"]
            body = b""
            if target.startswith("/reset-req"):
                # Reset while the request body is still arriving.
                import struct
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
                return
            if hd.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size = int(c.until(b"\r\n").split(b";")[0], 16)
                    if size == 0:
                        while c.until(b"\r\n"):
                            pass
                        break
                    body += c.take(size)
                    c.until(b"\r\n")
            elif "content-length" in hd:
                body = c.take(int(hd["content-length"]))
            n += 1
            if target.startswith("/reset-mid"):
                # Half a response, then a reset.
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\npartial")
                import struct
                raw = sock if not hasattr(sock, "unwrap") else sock
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                raw.close()
                return
            if target.startswith("/pause-after-s"):
                # A streamed body whose first piece ends like the start of a value, then a
                # pause (an interactive stream waiting for its client).
                sock.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\ndata: s\r\n")
                import time
                time.sleep(3)
                sock.sendall(b"2\r\n!\n\r\n0\r\n\r\n")
                continue
            if target.startswith("/big"):
                size = int(target.split("=", 1)[1]) if "=" in target else 1 << 24
                sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
                chunk = b"z" * 65536
                sent = 0
                while sent < size:
                    sock.sendall(chunk[: min(len(chunk), size - sent)])
                    sent += min(len(chunk), size - sent)
                continue
            echo = {"n": n, "conn": c.conn, "method": method, "target": target,
                    "headers": headers, "body": body.decode("latin-1"), "sni": sni}
            if target.startswith("/reflect"):
                echo["reflected"] = hd.get("authorization", "")
            if target.startswith("/last-auth"):
                echo["last_auth"] = last_auth
            if target.startswith("/udp-count"):
                with lock:
                    echo["udp"] = udp_count
            out = json.dumps(echo).encode() + b"\n"
            close = hd.get("connection", "").lower() == "close"
            sock.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s\r\n%s"
                         % (len(out), b"Connection: close\r\n" if close else b"", out))
            if close:
                break
    except (EOFError, OSError, ValueError, ssl.SSLError):
        pass
    finally:
        try:
            sock.close()
        except OSError:
            pass

def serve_http(s, path, ctx):
    def handle(c):
        try:
            c.settimeout(30)
            local = fmt(c.getsockname())
            sni = "-"
            if ctx is not None:
                c = ctx.wrap_socket(c, server_side=True)
                sni = getattr(c, "sni", "-")
            serve_http_conn(c, path, local, sni)
        except (OSError, ssl.SSLError):
            c.close()
    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()

def serve_h2(s, path, cert, key, also_h1=False):
    """HTTP/2 only (ALPN h2, nothing else), with the h2 library: logs each request's headers
    and data as it arrives, answers with a JSON echo. With `also_h1`, HTTP/1.1 is offered
    too, and a connection that picks it (or no ALPN) is served by the HTTP/1.1 server."""
    import h2.config, h2.connection, h2.events
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2", "http/1.1"] if also_h1 else ["h2"])
    def remember(sslsock, name, _ctx):
        sslsock.sni = name or "-"
    ctx.sni_callback = remember
    def handle(c):
        try:
            c.settimeout(30)
            local = fmt(c.getsockname())
            t = ctx.wrap_socket(c, server_side=True)
            if t.selected_alpn_protocol() != "h2":
                if also_h1:
                    serve_http_conn(t, path, local, getattr(t, "sni", "-"))
                t.close()
                return
            sni = getattr(t, "sni", "-")
            conn_id = next(conn_ids)
            h2c = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False, header_encoding="latin-1"))
            h2c.initiate_connection()
            t.sendall(h2c.data_to_send())
            streams = {}
            while True:
                data = t.recv(65536)
                if not data:
                    break
                for ev in h2c.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        streams[ev.stream_id] = {"headers": ev.headers, "body": b""}
                        text = "".join(f"{k}: {v}\r\n" for k, v in ev.headers) + "\r\n"
                        log_bytes(path, conn_id, local, sni, ("H2 " + text).encode("latin-1"))
                    elif isinstance(ev, h2.events.DataReceived):
                        streams[ev.stream_id]["body"] += ev.data
                        log_bytes(path, conn_id, local, sni, ev.data)
                        h2c.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        st = streams.pop(ev.stream_id, {"headers": [], "body": b""})
                        echo = json.dumps({"h2": True, "headers": st["headers"], "body": st["body"].decode("latin-1"), "sni": sni}).encode() + b"\n"
                        h2c.send_headers(ev.stream_id, [(":status", "200"), ("content-type", "application/json"), ("content-length", str(len(echo)))])
                        h2c.send_data(ev.stream_id, echo, end_stream=True)
                out = h2c.data_to_send()
                if out:
                    t.sendall(out)
        except Exception:
            pass
        finally:
            c.close()
    while True:
        c, peer = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()

def serve_grpc(port, path, cert, key):
    """A real gRPC server (grpcio, TLS): unary and bidi-streaming echo; logs the metadata it
    receives; sets a trailer."""
    import grpc
    from concurrent import futures
    def record(ctx, what):
        md = "".join(f"{k}: {v}\r\n" for k, v in ctx.invocation_metadata())
        log_bytes(path, 0, f"grpc:{port}", "-", (what + "\r\n" + md).encode())
    def unary(req, ctx):
        record(ctx, "GRPC unary")
        ctx.set_trailing_metadata((("x-trailer", "done"),))
        return b"echo:" + req
    def stream(reqs, ctx):
        record(ctx, "GRPC stream")
        for r in reqs:
            yield b"echo:" + r
        ctx.set_trailing_metadata((("x-trailer", "stream-done"),))
    handler = grpc.method_handlers_generic_handler("test.Echo", {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "Stream": grpc.stream_stream_rpc_method_handler(stream),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((handler,))
    creds = grpc.ssl_server_credentials(((open(key, "rb").read(), open(cert, "rb").read()),))
    server.add_secure_port(f"[::]:{port}", creds)
    server.start()
    return server

def serve_ws(port, path, cert, key):
    """A WebSocket echo server (python websockets, TLS): logs the handshake headers and every
    message it receives. "whoami" is answered with the Authorization header of the handshake,
    "whoami-split" with the same in two fragments cut inside the credential."""
    from websockets.sync.server import serve
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    def handler(ws):
        head = "".join(f"{k}: {v}\r\n" for k, v in ws.request.headers.raw_items())
        log_bytes(path, 0, f"ws:{port}", "-", ("WS " + ws.request.path + "\r\n" + head).encode("latin-1"))
        auth = ws.request.headers.get("Authorization", "")
        for msg in ws:
            data = msg.encode() if isinstance(msg, str) else msg
            log_bytes(path, 0, f"ws:{port}", "-", b"WSMSG " + data + b"\r\n")
            if msg == "whoami":
                ws.send(auth)
            elif msg == "whoami-split":
                cut = len("Bearer ") + 4
                ws.send([auth[:cut], auth[cut:]])
            else:
                ws.send(msg)
    server = serve(handler, sock=bind_tcp(port), ssl=ctx)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server

def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", default="")
    ap.add_argument("--udp", default="")
    ap.add_argument("--tls", default="")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--http", default="")
    ap.add_argument("--https", default="")
    ap.add_argument("--log", default="/dev/null")
    ap.add_argument("--h2", default="")
    ap.add_argument("--h2-or-h1", default="")
    ap.add_argument("--grpc", default="")
    ap.add_argument("--ws", default="")
    a = ap.parse_args()
    ports = lambda s: [int(p) for p in s.split(",") if p]
    # Bind everything before announcing readiness; serve in threads.
    tcp = [bind_tcp(p) for p in ports(a.tcp)]
    udp = [bind_udp(p) for p in ports(a.udp)]
    tls = [bind_tcp(p) for p in ports(a.tls)]
    http = [bind_tcp(p) for p in ports(a.http)]
    for sock in [bind_tcp(p) for p in ports(a.h2)]:
        threading.Thread(target=serve_h2, args=(sock, a.log, a.cert, a.key), daemon=True).start()
    for sock in [bind_tcp(p) for p in ports(a.h2_or_h1)]:
        threading.Thread(target=serve_h2, args=(sock, a.log, a.cert, a.key, True), daemon=True).start()
    grpc_servers = [serve_grpc(p, a.log, a.cert, a.key) for p in ports(a.grpc)]
    ws_servers = [serve_ws(p, a.log, a.cert, a.key) for p in ports(a.ws)]
    https = [bind_tcp(p) for p in ports(a.https)]
    for sock in http:
        threading.Thread(target=serve_http, args=(sock, a.log, None), daemon=True).start()
    if https:
        hctx = tls_context(a.cert, a.key)
        for sock in https:
            threading.Thread(target=serve_http, args=(sock, a.log, hctx), daemon=True).start()
    if tls:
        ctx = tls_context(a.cert, a.key)
        for sock in tls:
            threading.Thread(target=serve_tls, args=(sock, ctx), daemon=True).start()
    for sock in tcp:
        threading.Thread(target=serve_tcp, args=(sock,), daemon=True).start()
    for sock in udp:
        threading.Thread(target=serve_udp, args=(sock,), daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()

main()
