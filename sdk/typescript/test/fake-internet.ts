// What the SDK tests know about the fake internet they run in. The Rust test that starts
// them (crates/standin-cli/tests/sdk_typescript.rs) builds it: network namespaces with a DNS
// server and recording HTTPS servers for api.openai.com, api.stripe.com, files.stripe.com,
// api.github.com, api.anthropic.com and evil.example, a registry holding the image
// `registry.test:5000/python` (busybox, curl, a `python` stand-in that runs `agent.py` as a
// shell script, and `/app/agent.py`, which calls api.openai.com with $OPENAI_API_KEY), and
// sets the variables read here.

import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import type { Sandbox } from "standin";

function required(name: string): string {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set: run these tests through sdk_typescript.rs`);
  return v;
}

/** The real values the tests' secrets carry (set in this process's environment). */
export const VALUES = {
  OPENAI_API_KEY: required("OPENAI_API_KEY"),
  STRIPE_KEY: required("STRIPE_KEY"),
  API_KEY: required("API_KEY"),
};

/** One upstream connection: the TLS server name it was opened with and what it received. */
export interface Connection {
  sni: string;
  data: string;
}

/** Every upstream connection so far. The servers log each read before they answer it. */
export function connections(): Connection[] {
  const byConn = new Map<number, Connection>();
  const log = readFileSync(required("STANDIN_TEST_RECEIVED"), "latin1");
  for (const line of log.split("\n")) {
    if (!line) continue;
    const r = JSON.parse(line) as { conn: number; sni?: string; data: string };
    const c = byConn.get(r.conn);
    if (c) c.data += r.data;
    else byConn.set(r.conn, { sni: r.sni ?? "-", data: r.data });
  }
  return [...byConn.values()];
}

/** One request as a destination received it: its connection's TLS server name and the
 * request's bytes (request line and headers, lowercased by the boundary's HTTP stack). */
export interface Received {
  sni: string;
  text: string;
}

/**
 * The requests whose request line contains `marker` (a path unique to one request). The
 * boundary may carry several of the sandbox's requests on one upstream connection, so each
 * is cut out of its connection: from its request line to the end of its headers.
 */
export function received(marker: string): Received[] {
  const out: Received[] = [];
  for (const c of connections()) {
    let from = 0;
    for (;;) {
      const at = c.data.indexOf(marker, from);
      if (at < 0) break;
      const start = c.data.lastIndexOf("\r\n", at) + 1;
      const end = c.data.indexOf("\r\n\r\n", at);
      out.push({ sni: c.sni, text: c.data.slice(start, end < 0 ? undefined : end).trim() });
      from = end < 0 ? c.data.length : end;
    }
  }
  return out;
}

/** A request path no other request uses. */
export function uniquePath(): string {
  return `/ts-${randomUUID()}`;
}

/**
 * `curl` inside the sandbox: `HEADER $VAR` to `https://HOST/PATH?QUERY`. Resolves with the
 * HTTP status (`000` when the request got no answer) and the path used.
 */
export async function request(
  sb: Sandbox,
  host: string,
  header: string,
  options: { query?: string } = {},
): Promise<{ status: string; path: string }> {
  const path = uniquePath();
  const url = `https://${host}${path}${options.query ? `?${options.query}` : ""}`;
  const script = `curl -sS -m 5 -o /dev/null -w '%{http_code}' -H "${header}" "${url}"`;
  const out = await sb.exec("sh", ["-c", script]);
  return { status: out.stdoutText(), path };
}
