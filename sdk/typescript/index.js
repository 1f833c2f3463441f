// standin: run an agent's command in a sandbox whose secrets exist only as placeholders.
//
// The builders below only record the calls made on them; the native addon replays them onto
// the Rust SDK's builders, which validate and apply them (see src/recipe.rs). No policy,
// default or validation lives in this file: only JavaScript-side shape (a callback that does
// not return its builder) is checked here.

import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const native = createRequire(import.meta.url)(join(here, "standin.node"));

/** Every violation action, as the reference lists them. */
export const ViolationActions = Object.freeze([
  "block",
  "block-and-log",
  "block-and-terminate",
  "passthrough",
]);

/** What standin throws: invalid configuration (the Rust SDK's message) or a failed operation. */
export class StandinError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = "StandinError";
  }
}

/** Run `f`, rethrowing the addon's errors as StandinError (same message, cause kept). */
async function call(f) {
  try {
    return await f();
  } catch (e) {
    throw e instanceof Error ? new StandinError(e.message, { cause: e }) : e;
  }
}

function callSync(f) {
  try {
    return f();
  } catch (e) {
    throw e instanceof Error ? new StandinError(e.message, { cause: e }) : e;
  }
}

class Recorder {
  #calls = [];
  _record(method, ...args) {
    this.#calls.push([method, ...args]);
    return this;
  }
  _nested(method, Builder, configure, ...args) {
    if (typeof configure !== "function") {
      throw new StandinError(`${method}(): expects a callback, e.g. ${method}(b => b…)`);
    }
    const inner = new Builder();
    const out = configure(inner);
    if (out !== inner) {
      throw new StandinError(
        `${method}(): the callback must return the builder it was given (end it with the last call, e.g. s => s.env(…).value(…))`,
      );
    }
    this._record(method, ...args, inner._calls());
    return inner;
  }
  _calls() {
    return this.#calls.slice();
  }
}

export class ViolationActionBuilder extends Recorder {
  block() { return this._record("block"); }
  blockAndLog() { return this._record("blockAndLog"); }
  blockAndTerminate() { return this._record("blockAndTerminate"); }
  respondForbidden() { return this._record("respondForbidden"); }
  passthroughHost(host) { return this._record("passthroughHost", host); }
  passthroughHostPattern(pattern) { return this._record("passthroughHostPattern", pattern); }
  passthroughAllHosts(iUnderstand) { return this._record("passthroughAllHosts", iUnderstand); }
}

export class SecretBuilder extends Recorder {
  env(varName) { return this._record("env", varName); }
  value(value) { return this._record("value", value); }
  placeholder(placeholder) { return this._record("placeholder", placeholder); }
  allowHost(host) { return this._record("allowHost", host); }
  allowHostPattern(pattern) { return this._record("allowHostPattern", pattern); }
  allowAnyHostDangerous(iUnderstand) { return this._record("allowAnyHostDangerous", iUnderstand); }
  requireTlsIdentity(enabled) { return this._record("requireTlsIdentity", enabled); }
  injectHeaders(enabled) { return this._record("injectHeaders", enabled); }
  injectBasicAuth(enabled) { return this._record("injectBasicAuth", enabled); }
  injectQuery(enabled) { return this._record("injectQuery", enabled); }
  injectBody(enabled) { return this._record("injectBody", enabled); }
  awsSigv4(accessKeyId) { return this._record("awsSigv4", accessKeyId); }
  awsRegion(region) { return this._record("awsRegion", region); }
  awsService(service) { return this._record("awsService", service); }
  require(enabled) { return this._record("require", enabled); }
  tokenShapedPlaceholder() { return this._record("tokenShapedPlaceholder"); }
  onViolation(configure) {
    this._nested("onViolation", ViolationActionBuilder, configure);
    return this;
  }
  /** The materialized SecretEntry (validated by the Rust SDK; throws its error). */
  build() {
    return JSON.parse(callSync(() => native.buildSecret(JSON.stringify(this._calls()))));
  }
}

export class NetworkBuilder extends Recorder {
  _listeners = [];
  secret(configure) {
    this._nested("secret", SecretBuilder, configure);
    return this;
  }
  secretEnv(envVar, value, placeholder, allowedHost) {
    return this._record("secretEnv", envVar, value, placeholder, allowedHost);
  }
  secretEnvSimple(envVar, value, allowedHost) {
    return this._record("secretEnvSimple", envVar, value, allowedHost);
  }
  onSecretViolation(configure) {
    this._nested("onSecretViolation", ViolationActionBuilder, configure);
    return this;
  }
  rule(rule) { return this._record("rule", rule); }
  defaultAction(action) { return this._record("defaultAction", action); }
  dnsUpstream(server) { return this._record("dnsUpstream", server); }
  upstreamCa(pemFile) { return this._record("upstreamCa", pemFile); }
  eventsFile(path) { return this._record("eventsFile", path); }
  onEvent(listener) {
    if (typeof listener !== "function") {
      throw new StandinError("onEvent(): expects a function, e.g. onEvent(e => console.log(e.kind))");
    }
    this._listeners.push(listener);
    return this._record("onEvent");
  }
}

/** The helper binary: STANDIN_BIN, else the one built in this repository, else the SDK's search. */
function helper() {
  if (process.env.STANDIN_BIN) return process.env.STANDIN_BIN;
  for (const profile of ["release", "debug"]) {
    const built = join(here, "..", "..", "target", profile, "standin");
    if (existsSync(built)) return built;
  }
  return null;
}

export class SandboxBuilder extends Recorder {
  #name;
  #listeners = [];
  constructor(name) {
    super();
    this.#name = name;
  }
  image(reference) { return this._record("image", reference); }
  pullPolicy(policy) { return this._record("pullPolicy", policy); }
  registryCa(pemFile) { return this._record("registryCa", pemFile); }
  insecureRegistry(host) { return this._record("insecureRegistry", host); }
  workdir(dir) { return this._record("workdir", dir); }
  hostname(name) { return this._record("hostname", name); }
  env(name, value) { return this._record("env", name, value); }
  mount(hostPath, guestPath, options = {}) {
    return this._record("mount", hostPath, guestPath, options.readOnly ?? false);
  }
  memory(size) { return this._record("memory", String(size)); }
  cpus(cpus) { return this._record("cpus", String(cpus)); }
  pids(pids) { return this._record("pids", String(pids)); }
  disk(size) { return this._record("disk", String(size)); }
  noNetwork() { return this._record("noNetwork"); }
  detached(detached = true) { return this._record("detached", detached); }
  secret(configure) {
    this._nested("secret", SecretBuilder, configure);
    return this;
  }
  secretEnv(envVar, value, allowedHost) {
    return this._record("secretEnv", envVar, value, allowedHost);
  }
  network(configure) {
    const n = this._nested("network", NetworkBuilder, configure);
    this.#listeners.push(...n._listeners);
    return this;
  }
  async create() {
    const recipe = JSON.stringify({ name: this.#name, helper: helper(), calls: this._calls() });
    const listeners = this.#listeners.slice();
    const onEvent = listeners.length
      ? (json) => {
          const event = JSON.parse(json);
          for (const l of listeners) l(event);
        }
      : undefined;
    return new Sandbox(await call(() => native.createSandbox(recipe, onEvent)));
  }
}

export class Sandbox {
  #native;
  constructor(nativeSandbox) {
    this.#native = nativeSandbox;
  }
  static builder(name) {
    return new SandboxBuilder(name);
  }
  static async get(name) {
    return new Sandbox(await call(() => native.getSandbox(name)));
  }
  static async list() {
    return callSync(() => native.listSandboxes());
  }
  static async remove(name, options = {}) {
    await call(() => native.removeSandbox(name, options.force ?? false));
  }
  get name() { return this.#native.name; }
  get id() { return this.#native.id; }
  get hostname() { return this.#native.hostname; }
  get isDetached() { return this.#native.isDetached; }
  get terminatedByViolation() { return this.#native.terminatedByViolation; }
  async exec(cmd, args = []) {
    const out = await call(() => this.#native.exec(cmd, [...args]));
    return new ExecOutput(out.code, out.stdout, out.stderr);
  }
  async wait() { return call(() => this.#native.wait()); }
  async stop() { this.#native.stop(); }
  async stopGracefully(graceMs) { return call(() => this.#native.stopGracefully(graceMs)); }
  /** Replace a secret's value without a restart; the placeholder stays the same. */
  async updateSecret(envVar, value) {
    if (typeof envVar !== "string" || typeof value !== "string") {
      throw new StandinError("Sandbox.updateSecret(): expects (envVar: string, value: string)");
    }
    await call(() => this.#native.updateSecret(envVar, value));
  }
  fs() { return new SandboxFs(this.#native); }
  /** `await using`: stops the sandbox, unless it is detached (it outlives this handle). */
  async [Symbol.asyncDispose]() {
    if (!this.isDetached) await this.stop();
  }
}

export class SandboxFs {
  #native;
  constructor(nativeSandbox) {
    this.#native = nativeSandbox;
  }
  async write(path, data) {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data);
    await call(() => this.#native.fsWrite(path, bytes));
  }
  async read(path) { return call(() => this.#native.fsRead(path)); }
  async readToString(path) { return (await this.read(path)).toString("utf8"); }
  async list(path) { return call(() => this.#native.fsList(path)); }
  async stat(path) { return call(() => this.#native.fsStat(path)); }
  async exists(path) { return call(() => this.#native.fsExists(path)); }
  async remove(path) { await call(() => this.#native.fsRemove(path)); }
  async copyFromHost(hostPath, path) { await call(() => this.#native.fsCopyFromHost(hostPath, path)); }
  async copyToHost(path, hostPath) { await call(() => this.#native.fsCopyToHost(path, hostPath)); }
}

export class ExecOutput {
  constructor(code, stdout, stderr) {
    this.code = code;
    this.stdout = stdout;
    this.stderr = stderr;
  }
  get success() { return this.code === 0; }
  stdoutText() { return this.stdout.toString("utf8"); }
  stderrText() { return this.stderr.toString("utf8"); }
}
