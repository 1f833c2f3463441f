"""standin: run an agent's command in a sandbox whose secrets exist only as placeholders.

The builders here only record the calls made on them; the native extension replays them
onto the Rust SDK's builders, which validate and apply them (the TypeScript package does the
same). No policy, default or validation lives in this file. Names are the Rust SDK's
(snake_case); docs/SDK.md maps them to the reference's camelCase names.

    async with Sandbox.builder("agent").image("python").secret(
        lambda s: s.env("OPENAI_API_KEY").value(key).allow_host("api.openai.com")
    ).create() as sb:
        out = await sb.exec("python", ["agent.py"])
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable, Dict, Generator, List, Optional, Sequence, Union

from . import _standin
from ._standin import StandinError

__all__ = [
    "ExecOutput",
    "FileEntry",
    "NetworkBuilder",
    "Sandbox",
    "SandboxBuilder",
    "SandboxFs",
    "SecretBuilder",
    "SecretEntry",
    "SecretInjection",
    "StandinError",
    "ViolationActionBuilder",
    "ViolationActions",
    "ViolationPolicy",
]

#: Every violation action, as the reference lists them.
ViolationActions = ("block", "block-and-log", "block-and-terminate", "passthrough")


class _Recorder:
    def __init__(self) -> None:
        self._calls: List[list] = []

    def _record(self, method: str, *args: Any):
        self._calls.append([method, *args])
        return self

    def _nested(self, method: str, builder: type, configure: Callable, *args: Any):
        if not callable(configure):
            raise StandinError(f"{method}(): expects a function, e.g. {method}(lambda b: b…)")
        inner = builder()
        out = configure(inner)
        if out is not inner:
            raise StandinError(
                f"{method}(): the function must return the builder it was given "
                "(end it with the last call, e.g. lambda s: s.env(…).value(…))"
            )
        self._record(method, *args, inner._calls)
        return inner


class ViolationActionBuilder(_Recorder):
    """The action taken when a placeholder is sent to a host outside its allow-list."""

    def block(self) -> "ViolationActionBuilder":
        return self._record("block")

    def block_and_log(self) -> "ViolationActionBuilder":
        return self._record("block_and_log")

    def block_and_terminate(self) -> "ViolationActionBuilder":
        return self._record("block_and_terminate")

    def respond_forbidden(self) -> "ViolationActionBuilder":
        """Answer a blocked HTTP request with 403 and a text naming the rule (sandbox-wide:
        egress denials too) instead of a reset."""
        return self._record("respond_forbidden")

    def passthrough_host(self, host: str) -> "ViolationActionBuilder":
        return self._record("passthrough_host", host)

    def passthrough_host_pattern(self, pattern: str) -> "ViolationActionBuilder":
        return self._record("passthrough_host_pattern", pattern)

    def passthrough_all_hosts(self, i_understand: bool) -> "ViolationActionBuilder":
        """Forward the placeholder unchanged to every host; a no-op unless ``True``."""
        return self._record("passthrough_all_hosts", i_understand)

    def dangerous(self) -> "_DangerousViolation":
        """The Rust SDK's spelling: ``v.dangerous().passthrough_all_hosts()``."""
        return _DangerousViolation(self)


class _DangerousViolation:
    def __init__(self, builder: ViolationActionBuilder) -> None:
        self._builder = builder

    def passthrough_all_hosts(self) -> ViolationActionBuilder:
        return self._builder.passthrough_all_hosts(True)


@dataclass(frozen=True)
class SecretInjection:
    """Where the boundary may substitute the real value."""

    headers: bool = True
    basic_auth: bool = True
    query_params: bool = False
    body: bool = False


@dataclass(frozen=True)
class ViolationPolicy:
    """A secret's own violation policy."""

    action: Optional[str]
    passthrough_hosts: tuple
    passthrough_host_patterns: tuple
    passthrough_all_hosts: bool


@dataclass(frozen=True)
class SecretEntry:
    """What :meth:`SecretBuilder.build` materializes."""

    env_var: str
    value: str
    placeholder: Optional[str]
    allowed_hosts: tuple
    allowed_host_patterns: tuple
    allow_any_host: bool
    require_tls_identity: bool
    injection: SecretInjection
    on_violation: Optional[ViolationPolicy] = None

    def __repr__(self) -> str:  # never show the value
        return f"SecretEntry(env_var={self.env_var!r}, placeholder={self.placeholder!r}, value=<redacted>)"


class SecretBuilder(_Recorder):
    """One secret: its placeholder, allowed hosts and injection scopes."""

    def env(self, var_name: str) -> "SecretBuilder":
        return self._record("env", var_name)

    def value(self, value: str) -> "SecretBuilder":
        return self._record("value", value)

    def placeholder(self, placeholder: str) -> "SecretBuilder":
        return self._record("placeholder", placeholder)

    def allow_host(self, host: str) -> "SecretBuilder":
        return self._record("allow_host", host)

    def allow_host_pattern(self, pattern: str) -> "SecretBuilder":
        return self._record("allow_host_pattern", pattern)

    def allow_any_host_dangerous(self, i_understand: bool) -> "SecretBuilder":
        """Allow substitution on any host; a no-op unless ``True``."""
        return self._record("allow_any_host_dangerous", i_understand)

    def dangerous(self) -> "_DangerousSecret":
        """The Rust SDK's spelling: ``s.dangerous().allow_any_host()``."""
        return _DangerousSecret(self)

    def require_tls_identity(self, enabled: bool) -> "SecretBuilder":
        return self._record("require_tls_identity", enabled)

    def inject_headers(self, enabled: bool) -> "SecretBuilder":
        return self._record("inject_headers", enabled)

    def inject_basic_auth(self, enabled: bool) -> "SecretBuilder":
        return self._record("inject_basic_auth", enabled)

    def inject_query(self, enabled: bool) -> "SecretBuilder":
        return self._record("inject_query", enabled)

    def inject_body(self, enabled: bool) -> "SecretBuilder":
        return self._record("inject_body", enabled)

    def aws_sigv4(self, access_key_id: str) -> "SecretBuilder":
        """An AWS credential: the value is the secret access key; SigV4 requests signed
        with ``access_key_id`` are re-signed with the real key."""
        return self._record("aws_sigv4", access_key_id)

    def aws_region(self, region: str) -> "SecretBuilder":
        return self._record("aws_region", region)

    def aws_service(self, service: str) -> "SecretBuilder":
        return self._record("aws_service", service)

    def require(self, enabled: bool) -> "SecretBuilder":
        """The allowed hosts must receive this secret: requests without it are refused."""
        return self._record("require", enabled)

    def token_shaped_placeholder(self) -> "SecretBuilder":
        """A placeholder shaped like the value's token (``ghp_MSB…``)."""
        return self._record("token_shaped_placeholder")

    def on_violation(
        self, configure: Callable[[ViolationActionBuilder], ViolationActionBuilder]
    ) -> "SecretBuilder":
        self._nested("on_violation", ViolationActionBuilder, configure)
        return self

    def build(self) -> SecretEntry:
        """The entry, validated by the Rust SDK (raises :class:`StandinError`)."""
        e = json.loads(_standin.build_secret(json.dumps(self._calls)))
        v = e.get("on_violation")
        return SecretEntry(
            env_var=e["env_var"],
            value=e["value"],
            placeholder=e["placeholder"],
            allowed_hosts=tuple(e["allowed_hosts"]),
            allowed_host_patterns=tuple(e["allowed_host_patterns"]),
            allow_any_host=e["allow_any_host"],
            require_tls_identity=e["require_tls_identity"],
            injection=SecretInjection(**e["injection"]),
            on_violation=None
            if v is None
            else ViolationPolicy(
                action=v["action"],
                passthrough_hosts=tuple(v["passthrough_hosts"]),
                passthrough_host_patterns=tuple(v["passthrough_host_patterns"]),
                passthrough_all_hosts=v["passthrough_all_hosts"],
            ),
        )


class _DangerousSecret:
    def __init__(self, builder: SecretBuilder) -> None:
        self._builder = builder

    def allow_any_host(self) -> SecretBuilder:
        return self._builder.allow_any_host_dangerous(True)


class NetworkBuilder(_Recorder):
    """The sandbox's network: secrets, the sandbox-wide violation policy, rules, events."""

    def __init__(self) -> None:
        super().__init__()
        self._listeners: List[Callable[[Dict[str, Any]], None]] = []

    def secret(self, configure: Callable[[SecretBuilder], SecretBuilder]) -> "NetworkBuilder":
        self._nested("secret", SecretBuilder, configure)
        return self

    def secret_env(self, env_var: str, value: str, allowed_host: str) -> "NetworkBuilder":
        """A secret with the placeholder ``$MSB_<env_var>`` (the reference's secretEnvSimple)."""
        return self._record("secret_env", env_var, value, allowed_host)

    def secret_env_with_placeholder(
        self, env_var: str, value: str, placeholder: str, allowed_host: str
    ) -> "NetworkBuilder":
        """A secret with an explicit placeholder (the reference's NetworkBuilder.secretEnv)."""
        return self._record("secret_env_with_placeholder", env_var, value, placeholder, allowed_host)

    def on_secret_violation(
        self, configure: Callable[[ViolationActionBuilder], ViolationActionBuilder]
    ) -> "NetworkBuilder":
        self._nested("on_secret_violation", ViolationActionBuilder, configure)
        return self

    def rule(self, rule: str) -> "NetworkBuilder":
        return self._record("rule", rule)

    def default_action(self, action: str) -> "NetworkBuilder":
        return self._record("default_action", action)

    def dns_upstream(self, server: str) -> "NetworkBuilder":
        return self._record("dns_upstream", server)

    def upstream_ca(self, pem_file: str) -> "NetworkBuilder":
        return self._record("upstream_ca", str(pem_file))

    def events_file(self, path: str) -> "NetworkBuilder":
        return self._record("events_file", str(path))

    def on_event(self, listener: Callable[[Dict[str, Any]], None]) -> "NetworkBuilder":
        """Call ``listener`` with every event (a dict), from a thread of standin's."""
        if not callable(listener):
            raise StandinError("on_event(): expects a function, e.g. on_event(print)")
        self._listeners.append(listener)
        return self._record("on_event")


class SandboxBuilder(_Recorder):
    """Configures a sandbox; :meth:`create` starts it."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self._name = name
        self._listeners: List[Callable[[Dict[str, Any]], None]] = []

    def image(self, reference: str) -> "SandboxBuilder":
        return self._record("image", reference)

    def pull_policy(self, policy: str) -> "SandboxBuilder":
        return self._record("pull_policy", policy)

    def registry_ca(self, pem_file: str) -> "SandboxBuilder":
        return self._record("registry_ca", str(pem_file))

    def insecure_registry(self, host: str) -> "SandboxBuilder":
        return self._record("insecure_registry", host)

    def workdir(self, directory: str) -> "SandboxBuilder":
        return self._record("workdir", str(directory))

    def hostname(self, name: str) -> "SandboxBuilder":
        return self._record("hostname", name)

    def env(self, name: str, value: str) -> "SandboxBuilder":
        return self._record("env", name, value)

    def mount(self, host_path: str, guest_path: str, read_only: bool = False) -> "SandboxBuilder":
        return self._record("mount", str(host_path), str(guest_path), read_only)

    def memory(self, size: Union[str, int]) -> "SandboxBuilder":
        return self._record("memory", str(size))

    def cpus(self, cpus: Union[str, float]) -> "SandboxBuilder":
        return self._record("cpus", str(cpus))

    def pids(self, pids: Union[str, int]) -> "SandboxBuilder":
        return self._record("pids", str(pids))

    def disk(self, size: Union[str, int]) -> "SandboxBuilder":
        return self._record("disk", str(size))

    def no_network(self) -> "SandboxBuilder":
        return self._record("no_network")

    def detached(self, detached: bool = True) -> "SandboxBuilder":
        return self._record("detached", detached)

    def secret(self, configure: Callable[[SecretBuilder], SecretBuilder]) -> "SandboxBuilder":
        self._nested("secret", SecretBuilder, configure)
        return self

    def secret_env(self, env_var: str, value: str, allowed_host: str) -> "SandboxBuilder":
        return self._record("secret_env", env_var, value, allowed_host)

    def network(self, configure: Callable[[NetworkBuilder], NetworkBuilder]) -> "SandboxBuilder":
        n = self._nested("network", NetworkBuilder, configure)
        self._listeners.extend(n._listeners)
        return self

    def _native_args(self):
        recipe = json.dumps({"name": self._name, "helper": None, "calls": self._calls})
        listeners = list(self._listeners)
        if not listeners:
            return recipe, None

        def dispatch(event: str) -> None:
            e = json.loads(event)
            for listener in listeners:
                listener(e)

        return recipe, dispatch

    def create(self) -> "_Creating":
        """Validate everything and start the sandbox: ``await`` it, or ``async with`` it."""
        return _Creating(self)

    def create_sync(self) -> "Sandbox":
        """:meth:`create`, blocking; use the result in a ``with`` block."""
        return Sandbox(_standin.create_sandbox_sync(*self._native_args()))


class _Creating:
    """``await builder.create()`` or ``async with builder.create() as sb``."""

    def __init__(self, builder: SandboxBuilder) -> None:
        self._builder = builder
        self._sandbox: Optional[Sandbox] = None

    async def _create(self) -> "Sandbox":
        return Sandbox(await _standin.create_sandbox(*self._builder._native_args()))

    def __await__(self) -> Generator[Any, None, "Sandbox"]:
        return self._create().__await__()

    async def __aenter__(self) -> "Sandbox":
        self._sandbox = await self._create()
        return self._sandbox

    async def __aexit__(self, *exc: Any) -> None:
        if self._sandbox is not None:
            await self._sandbox.__aexit__(*exc)


@dataclass(frozen=True)
class ExecOutput:
    """What :meth:`Sandbox.exec` returns."""

    code: int
    stdout: bytes
    stderr: bytes

    @property
    def success(self) -> bool:
        return self.code == 0

    def stdout_text(self) -> str:
        return self.stdout.decode("utf-8", "replace")

    def stderr_text(self) -> str:
        return self.stderr.decode("utf-8", "replace")


@dataclass(frozen=True)
class FileEntry:
    """One file in a sandbox."""

    name: str
    kind: str
    size: int
    mode: int
    modified: int
    link: Optional[str] = None


class SandboxFs:
    """The files of a running sandbox, from :meth:`Sandbox.fs`."""

    def __init__(self, native: Any) -> None:
        self._native = native

    async def write(self, path: str, data: Union[str, bytes]) -> None:
        await self._native.fs_write(path, data.encode() if isinstance(data, str) else bytes(data))

    async def read(self, path: str) -> bytes:
        return bytes(await self._native.fs_read(path))

    async def read_to_string(self, path: str) -> str:
        return (await self.read(path)).decode("utf-8")

    async def list(self, path: str) -> List[FileEntry]:
        return [FileEntry(**e) for e in json.loads(await self._native.fs_list(path))]

    async def stat(self, path: str) -> FileEntry:
        return FileEntry(**json.loads(await self._native.fs_stat(path)))

    async def exists(self, path: str) -> bool:
        return await self._native.fs_exists(path)

    async def remove(self, path: str) -> None:
        await self._native.fs_remove(path)

    async def copy_from_host(self, host_path: str, path: str) -> None:
        await self._native.fs_copy_from_host(str(host_path), path)

    async def copy_to_host(self, path: str, host_path: str) -> None:
        await self._native.fs_copy_to_host(path, str(host_path))


class Sandbox:
    """A running sandbox."""

    def __init__(self, native: Any) -> None:
        self._native = native

    @staticmethod
    def builder(name: str) -> SandboxBuilder:
        return SandboxBuilder(name)

    @staticmethod
    async def get(name: str) -> "Sandbox":
        """A handle on the detached sandbox ``name``."""
        return Sandbox(await _standin.get_sandbox(name))

    @staticmethod
    def list() -> List[Dict[str, Any]]:
        """Every detached sandbox of this user (name, id, state, root, …)."""
        return json.loads(_standin.list_sandboxes())

    @staticmethod
    async def remove(name: str, force: bool = False) -> None:
        await _standin.remove_sandbox(name, force)

    @property
    def name(self) -> str:
        return self._native.name

    @property
    def id(self) -> str:
        return self._native.id

    @property
    def hostname(self) -> str:
        return self._native.hostname

    @property
    def is_detached(self) -> bool:
        return self._native.is_detached

    @property
    def terminated_by_violation(self) -> bool:
        return self._native.terminated_by_violation

    async def exec(self, cmd: str, args: Sequence[str] = ()) -> ExecOutput:
        out = await self._native.exec(cmd, list(args))
        return ExecOutput(out.code, out.stdout, out.stderr)

    def exec_sync(self, cmd: str, args: Sequence[str] = ()) -> ExecOutput:
        out = self._native.exec_sync(cmd, list(args))
        return ExecOutput(out.code, out.stdout, out.stderr)

    async def wait(self) -> int:
        return await self._native.wait()

    def wait_sync(self) -> int:
        return self._native.wait_sync()

    def stop(self) -> None:
        """Stop it now (SIGKILL to everything inside)."""
        self._native.stop()

    async def stop_gracefully(self, grace_seconds: float) -> int:
        return await self._native.stop_gracefully(grace_seconds)

    async def update_secret(self, env: str, value: str) -> None:
        """Replace a secret's value without a restart; the placeholder stays the same."""
        if not isinstance(env, str) or not isinstance(value, str):
            raise StandinError("Sandbox.update_secret(): expects (env: str, value: str)")
        await self._native.update_secret(env, value)

    def fs(self) -> SandboxFs:
        return SandboxFs(self._native)

    # `with` / `async with`: stop at the end, unless the sandbox is detached.
    def __enter__(self) -> "Sandbox":
        return self

    def __exit__(self, *exc: Any) -> None:
        if not self.is_detached:
            self.stop()

    async def __aenter__(self) -> "Sandbox":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.__exit__(*exc)
