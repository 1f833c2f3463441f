// Types of the `standin` package. The names follow the reference SDK exactly (camelCase of
// the Rust SDK's names); see docs/SDK.md for the mapping to Rust and Python.

/// <reference types="node" />

/** The base action taken when a placeholder is sent to a host outside its secret's allow-list. */
export type ViolationAction = "block" | "block-and-log" | "block-and-terminate" | "passthrough";

/** Every {@link ViolationAction}. */
export declare const ViolationActions: readonly ViolationAction[];

/** Where the boundary may substitute the real value. Omitted fields take the default. */
export interface SecretInjection {
  /** Anywhere in HTTP headers. Default `true`. */
  headers?: boolean;
  /** Inside decoded `Authorization: Basic` credentials. Default `true`. */
  basicAuth?: boolean;
  /** In the URL query string. Default `false`. */
  queryParams?: boolean;
  /** In request bodies the boundary can rewrite safely. Default `false`. */
  body?: boolean;
}

/** A secret's own violation policy, as {@link SecretBuilder.onViolation} configures it. */
export interface ViolationPolicy {
  /** The base action, or `null` to use the sandbox-wide one. */
  action: ViolationAction | null;
  passthroughHosts: readonly string[];
  passthroughHostPatterns: readonly string[];
  passthroughAllHosts: boolean;
}

/** What {@link SecretBuilder.build} materializes. */
export interface SecretEntry {
  /** Environment variable name (non-empty, no `=` or NUL). */
  envVar: string;
  /** Real secret value (stays on the host). */
  value: string;
  /** The placeholder the sandbox sees; `$MSB_<envVar>` unless set. */
  placeholder: string | null;
  /** Allowed hosts (exact match). */
  allowedHosts: readonly string[];
  /** Wildcard host patterns. */
  allowedHostPatterns: readonly string[];
  /** Permit substitution to any host. */
  allowAnyHost: boolean;
  /** Require verified TLS identity before substituting. */
  requireTlsIdentity: boolean;
  /** Where in the request the value may be substituted. */
  injection: SecretInjection;
  /** This secret's violation policy, when set (standin addition). */
  onViolation?: ViolationPolicy | null;
}

/** What standin throws: invalid configuration (the Rust SDK's message) or a failed operation. */
export declare class StandinError extends Error {
  constructor(message: string, options?: { cause?: unknown });
}

/** The action taken on a placeholder sent to a disallowed host. */
export declare class ViolationActionBuilder {
  /** Drop the request silently; the guest sees a connection reset (the default). */
  block(): this;
  /** Drop the request and log a warning on the host side. */
  blockAndLog(): this;
  /** Drop the request, log an error, and shut down the whole sandbox. */
  blockAndTerminate(): this;
  /** Answer a blocked HTTP request with 403 and a text naming the rule, instead of a reset
   * (sandbox-wide: egress denials too). Not in the reference; see docs/SECRETS.md. */
  respondForbidden(): this;
  /** Forward to this exact host with the placeholder unchanged. */
  passthroughHost(host: string): this;
  /** Forward to hosts matching this pattern with the placeholder unchanged. */
  passthroughHostPattern(pattern: string): this;
  /** Forward the placeholder unchanged to every host; a no-op unless `iUnderstand` is `true`. */
  passthroughAllHosts(iUnderstand: boolean): this;
}

/** One secret: its placeholder, allowed hosts and injection scopes. */
export declare class SecretBuilder {
  /** The variable that holds the placeholder inside the sandbox. Required. */
  env(varName: string): this;
  /** The real value; it never enters the sandbox. Required. */
  value(value: string): this;
  /** Override the placeholder (default `$MSB_<envVar>`): non-empty, ≤ 1024 bytes, no NUL/CR/LF. */
  placeholder(placeholder: string): this;
  /** An exact host allowed to receive the real value (repeatable). */
  allowHost(host: string): this;
  /** A wildcard pattern (`*.example.com`) of hosts allowed to receive the real value. */
  allowHostPattern(pattern: string): this;
  /** Allow substitution on any host; a no-op unless `iUnderstand` is `true`. */
  allowAnyHostDangerous(iUnderstand: boolean): this;
  /** Substitute only on intercepted TLS whose SNI matches an allowed host. Default `true`. */
  requireTlsIdentity(enabled: boolean): this;
  /** Substitute in HTTP headers. Default `true`. */
  injectHeaders(enabled: boolean): this;
  /** Substitute inside Basic credentials. Default `true`. */
  injectBasicAuth(enabled: boolean): this;
  /** Substitute in the query string. Default `false`. */
  injectQuery(enabled: boolean): this;
  /** Substitute in request bodies. Default `false`. */
  injectBody(enabled: boolean): this;
  /** An AWS credential: the value is the secret access key, `accessKeyId` names it; SigV4
   * requests signed with that key ID are re-signed with the real key. */
  awsSigv4(accessKeyId: string): this;
  /** With `awsSigv4`: a region requests may be signed for (repeatable; none: any). */
  awsRegion(region: string): this;
  /** With `awsSigv4`: a service requests may be signed for (repeatable; none: any). */
  awsService(service: string): this;
  /** The allowed hosts must receive this secret: requests without it are refused. */
  require(enabled: boolean): this;
  /** A placeholder shaped like the value's token (`ghp_MSB…`), for clients that check formats. */
  tokenShapedPlaceholder(): this;
  /** This secret's violation policy (overrides the sandbox-wide one). */
  onViolation(configure: (b: ViolationActionBuilder) => ViolationActionBuilder): this;
  /** Materialize the entry; throws {@link StandinError} when it is invalid. */
  build(): SecretEntry;
}

/** One audit event of the boundary. */
export interface SandboxEvent {
  /** RFC 3339 UTC timestamp with milliseconds. */
  timestamp: string;
  /** The sandbox's id. */
  sandbox: string;
  /** What happened: `secret-violation`, `connection-denied`, `dns-denied`, … */
  kind: string;
  name?: string | null;
  addr?: string | null;
  protocol: string;
  rule?: string | null;
  /** What the boundary did. */
  action: string;
  /** The secret concerned, by its variable's name (never its value). */
  secret?: string | null;
  sni?: string | null;
  host?: string | null;
  location?: string | null;
  form?: string | null;
  detail?: string | null;
}

/** The sandbox's network: secrets, the sandbox-wide violation policy, egress rules, events. */
export declare class NetworkBuilder {
  /** Add a secret configured by `configure`. */
  secret(configure: (s: SecretBuilder) => SecretBuilder): this;
  /** A secret with an explicit placeholder, allowed on one host. */
  secretEnv(envVar: string, value: string, placeholder: string, allowedHost: string): this;
  /** A secret with the placeholder `$MSB_<envVar>`, allowed on one host. */
  secretEnvSimple(envVar: string, value: string, allowedHost: string): this;
  /** The sandbox-wide secret violation policy. */
  onSecretViolation(configure: (b: ViolationActionBuilder) => ViolationActionBuilder): this;
  /** An egress rule, first match wins: `allow@*.github.com:tcp:443`, `deny@10.0.0.0/8`, … */
  rule(rule: string): this;
  /** What happens to traffic no rule matches (after the built-in `allow@public`). */
  defaultAction(action: "allow" | "deny"): this;
  /** The DNS server the boundary forwards to (`ADDR[:PORT]`); default: the host's. */
  dnsUpstream(server: string): this;
  /** Also trust the CAs in this PEM file when verifying upstream TLS. */
  upstreamCa(pemFile: string): this;
  /** Append every event, as JSON lines, to this file. */
  eventsFile(path: string): this;
  /** Call `listener` with every event (it never keeps Node running by itself). */
  onEvent(listener: (event: SandboxEvent) => void): this;
}

/** Options of {@link SandboxBuilder.mount}. */
export interface MountOptions {
  /** Mount read-only. Default `false`. */
  readOnly?: boolean;
}

/** Configures a sandbox; {@link SandboxBuilder.create} starts it. */
export declare class SandboxBuilder {
  /** Run this OCI image (`python:3.12-slim`, `ghcr.io/org/img@sha256:…`). */
  image(reference: string): this;
  /** When to contact the registry: `missing` (default), `always`, `never`. */
  pullPolicy(policy: "missing" | "always" | "never"): this;
  /** Also trust the CAs in this PEM file for registry TLS. */
  registryCa(pemFile: string): this;
  /** Reach this registry (`host[:port]`) over plain HTTP. */
  insecureRegistry(host: string): this;
  /** Bind this host directory read-write at `/workspace`. */
  workdir(dir: string): this;
  /** The sandbox's host name. */
  hostname(name: string): this;
  /** Set a variable inside the sandbox. */
  env(name: string, value: string): this;
  /** Bind a host path into the sandbox. */
  mount(hostPath: string, guestPath: string, options?: MountOptions): this;
  /** Memory limit: `512M`, `2G`, `unlimited`. */
  memory(size: string): this;
  /** CPU limit, fractional: `0.5`, `2`, `unlimited`. */
  cpus(cpus: string | number): this;
  /** Process limit: `256`, `unlimited`. */
  pids(pids: string | number): this;
  /** Writable space limit: `1G`, `unlimited`. */
  disk(size: string): this;
  /** No network at all (only loopback). */
  noNetwork(): this;
  /** Keep the sandbox running after this process exits; find it again with {@link Sandbox.get}. */
  detached(detached?: boolean): this;
  /** Add a secret configured by `configure`. */
  secret(configure: (s: SecretBuilder) => SecretBuilder): this;
  /** A secret with the placeholder `$MSB_<envVar>`, allowed on one host. */
  secretEnv(envVar: string, value: string, allowedHost: string): this;
  /** Configure the network. */
  network(configure: (n: NetworkBuilder) => NetworkBuilder): this;
  /** Validate everything and start the sandbox; throws {@link StandinError} naming every problem. */
  create(): Promise<Sandbox>;
}

/** What {@link Sandbox.exec} returns. */
export declare class ExecOutput {
  /** Exit code (128+N when killed by signal N). */
  readonly code: number;
  /** Captured standard output. */
  readonly stdout: Buffer;
  /** Captured standard error. */
  readonly stderr: Buffer;
  /** Whether the code is 0. */
  readonly success: boolean;
  /** stdout as UTF-8 text. */
  stdoutText(): string;
  /** stderr as UTF-8 text. */
  stderrText(): string;
}

/** A detached sandbox, as {@link Sandbox.list} describes it. */
export interface SandboxInfo {
  name: string;
  id: string;
  /** `running`, `exited`, … */
  state: string;
  /** The image reference, the rootfs directory, or `host`. */
  root: string;
  command?: string[] | null;
  /** Creation time, seconds since the epoch. */
  created: number;
  exitCode?: number | null;
  terminatedByViolation: boolean;
}

/** One file in a sandbox. */
export interface FileEntry {
  name: string;
  kind: "file" | "dir" | "symlink" | "other";
  size: number;
  mode: number;
  /** Last modification, seconds since the epoch. */
  modified: number;
  /** Where a symlink points, as written. */
  link?: string | null;
}

/** The files of a running sandbox, from {@link Sandbox.fs}. */
export declare class SandboxFs {
  /** Write `data` to `path` (created or replaced), as the sandbox's user. */
  write(path: string, data: string | Uint8Array): Promise<void>;
  /** The contents of `path`. */
  read(path: string): Promise<Buffer>;
  /** The contents of `path` as UTF-8 text. */
  readToString(path: string): Promise<string>;
  /** The entries of a directory. */
  list(path: string): Promise<FileEntry[]>;
  /** What `path` is (a final symlink is not followed). */
  stat(path: string): Promise<FileEntry>;
  exists(path: string): Promise<boolean>;
  /** Remove a file, or a directory with everything in it. */
  remove(path: string): Promise<void>;
  /** Copy a host file or directory into the sandbox. */
  copyFromHost(hostPath: string, path: string): Promise<void>;
  /** Copy a file or directory out of the sandbox. */
  copyToHost(path: string, hostPath: string): Promise<void>;
}

/** Options of {@link Sandbox.remove}. */
export interface RemoveOptions {
  /** Stop it first if it is running. */
  force?: boolean;
}

/** A running sandbox. */
export declare class Sandbox implements AsyncDisposable {
  private constructor();
  /** Start configuring a sandbox named `name`. */
  static builder(name: string): SandboxBuilder;
  /** A handle on the detached sandbox `name`. */
  static get(name: string): Promise<Sandbox>;
  /** Every detached sandbox of this user. */
  static list(): Promise<SandboxInfo[]>;
  /** Remove the detached sandbox `name`. */
  static remove(name: string, options?: RemoveOptions): Promise<void>;
  readonly name: string;
  readonly id: string;
  readonly hostname: string;
  /** Whether it outlives this process. */
  readonly isDetached: boolean;
  /** Whether a `blockAndTerminate` violation ended it. */
  readonly terminatedByViolation: boolean;
  /** Run `cmd` with `args` inside and collect its exit code and output. */
  exec(cmd: string, args?: readonly string[]): Promise<ExecOutput>;
  /** Wait for the sandbox to end; resolves with the exit code. */
  wait(): Promise<number>;
  /** Stop it now (SIGKILL to everything inside). */
  stop(): Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  stopGracefully(graceMs: number): Promise<number>;
  /** Replace a secret's value without a restart (rotation); the placeholder stays the same. */
  updateSecret(envVar: string, value: string): Promise<void>;
  /** Its files. */
  fs(): SandboxFs;
  /** `await using`: stops the sandbox unless it is detached. */
  [Symbol.asyncDispose](): Promise<void>;
}
