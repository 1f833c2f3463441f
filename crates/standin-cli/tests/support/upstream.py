"""A tiny upstream for standin's tests, run inside a test network namespace.

TCP (dual-stack) on every port given: answers one HTTP/1.0 response whose body says which
local address the connection reached and from where. UDP (dual-stack) on every port given:
counts datagrams. `GET /udp-count` returns that count. Prints "ready" once bound.
"""
import socket, ssl, sys, threading

udp_count = 0
lock = threading.Lock()

def bind_tcp(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
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

def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--tcp", default="")
    ap.add_argument("--udp", default="")
    ap.add_argument("--tls", default="")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    a = ap.parse_args()
    ports = lambda s: [int(p) for p in s.split(",") if p]
    # Bind everything before announcing readiness; serve in threads.
    tcp = [bind_tcp(p) for p in ports(a.tcp)]
    udp = [bind_udp(p) for p in ports(a.udp)]
    tls = [bind_tcp(p) for p in ports(a.tls)]
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
