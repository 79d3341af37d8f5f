"""Drives a real discord.py client through the fake Discord and checks the wire rules it enforces."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands
from discord.webhook.async_ import async_context, interaction_response_params

from tests.fakes.discord import (
    CHANNEL_MESSAGES,
    FakeAttachment,
    FakeChannel,
    FakeDiscord,
    FakeGuild,
    FakeMember,
    InvalidInvocation,
    RateLimits,
    RouteLimit,
)

TOKEN = "test-token"
RULES = ("content", "embed", "embeds", "label", "empty")


@pytest.fixture(autouse=True)
def _restore_discord_endpoints() -> Iterator[None]:
    base = discord.http.Route.BASE
    gateway = discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    yield
    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord(token=TOKEN, ack_deadline=3.0) as server:
        discord.http.Route.BASE = server.api_base_url
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(server.gateway_url)
        yield server
    server.assert_no_spec_violations()


class Panel(discord.ui.View):
    """A button that updates its message and one that opens a modal."""

    @discord.ui.button(label="Press", custom_id="press")
    async def press(self, interaction: discord.Interaction, button: discord.ui.Button[Panel]) -> None:
        await interaction.response.edit_message(content=f"pressed by {interaction.user.name}")

    @discord.ui.button(label="Rename", custom_id="rename")
    async def rename(self, interaction: discord.Interaction, button: discord.ui.Button[Panel]) -> None:
        await interaction.response.send_modal(RenameModal())

    @discord.ui.button(label="Note", custom_id="note")
    async def note(self, interaction: discord.Interaction, button: discord.ui.Button[Panel]) -> None:
        await interaction.response.send_modal(NoteModal())


class RenameModal(discord.ui.Modal, title="Rename the thing"):
    """A modal with one prefilled input, using the Label layout discord.py 2.7 sends."""

    name: discord.ui.Label[RenameModal] = discord.ui.Label(
        text="New name", component=discord.ui.TextInput(custom_id="name", default="old", max_length=20)
    )

    async def on_submit(self, interaction: discord.Interaction) -> None:
        assert isinstance(self.name.component, discord.ui.TextInput)
        await interaction.response.send_message(f"renamed to {self.name.component.value}", ephemeral=True)


class NoteModal(discord.ui.Modal, title="Add a note"):
    """The older layout: a bare TextInput, sent inside an action row."""

    text: discord.ui.TextInput[NoteModal] = discord.ui.TextInput(label="Note", custom_id="text", required=False)

    async def on_submit(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer()  # a deferred update of the panel message
        await interaction.edit_original_response(content=f"note: {self.text.value}")


@dataclass
class Bot:
    """The client under test plus what its handlers observed."""

    client: discord.Client
    guild: FakeGuild
    channel: FakeChannel
    alice: FakeMember
    failures: list[discord.HTTPException] = field(default_factory=list)
    go: asyncio.Event = field(default_factory=asyncio.Event)
    seen: dict[str, Any] = field(default_factory=dict)
    #: Seconds the handlers have spent "working", as the fake's clock sees it (see `late_clock`).
    lateness: float = 0.0


def add_response_commands(tree: app_commands.CommandTree[discord.Client], state: Callable[[], Bot]) -> None:
    """Commands that acknowledge in the various ways (and break the rules on request)."""

    @tree.command(description="Draw a picture")
    async def imagine(
        interaction: discord.Interaction,
        prompt: str,
        seed: int = 0,
        private: bool = False,
        followups: int = 1,
        size: int = 0,
        wait: bool = False,
    ) -> None:
        await interaction.response.defer(ephemeral=private, thinking=True)
        if wait:
            await state().go.wait()
        try:
            for i in range(followups):
                data = b"x" * size if size else f"{prompt}:{seed}".encode()
                await interaction.followup.send(
                    f"here {i}", file=discord.File(io.BytesIO(data), "image.png"), ephemeral=not private
                )
        except discord.HTTPException as exc:
            state().failures.append(exc)

    @tree.command(description="Say something right away")
    async def echo(interaction: discord.Interaction, text: str, twice: bool = False, late: float = 0.0) -> None:
        state().lateness += late  # the bot taking `late` seconds, on the fake's clock
        try:
            await interaction.response.send_message(text)
            if twice:  # a second, raw callback: discord.py itself refuses a second response.send_message
                params = interaction_response_params(4, {"content": "again"})
                await async_context.get().create_interaction_response(
                    interaction.id, interaction.token, session=interaction._session, params=params
                )
        except discord.HTTPException as exc:
            state().failures.append(exc)

    @tree.command(description="Break a rule")
    @app_commands.choices(rule=[app_commands.Choice(name=n, value=n) for n in RULES])
    async def bad(interaction: discord.Interaction, rule: str) -> None:
        options: dict[str, dict[str, Any]] = {
            "content": {"content": "x" * 2001},
            "embed": {"embed": discord.Embed(title="t" * 257)},
            "embeds": {"embeds": [discord.Embed(description="d" * 3001), discord.Embed(description="d" * 3000)]},
            "label": {"view": discord.ui.View().add_item(discord.ui.Button(label="l" * 81, custom_id="b"))},
            "empty": {},
        }
        try:
            await interaction.response.send_message(**options[rule])
        except discord.HTTPException as exc:
            state().failures.append(exc)

    @tree.command(description="Post in the channel, then delete the post twice")
    async def post(interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True)
        assert isinstance(interaction.channel, discord.TextChannel)
        posted = await interaction.channel.send("posted", file=discord.File(io.BytesIO(b"data"), "d.bin"))
        await posted.delete()
        try:
            await posted.delete()
        except discord.NotFound as exc:
            state().failures.append(exc)
        await interaction.followup.send("done")


def add_ui_commands(tree: app_commands.CommandTree[discord.Client], state: Callable[[], Bot]) -> None:
    """Components, modals, options of every kind and a context menu."""

    @tree.command(description="Show the panel")
    async def panel(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("panel", view=Panel(timeout=None))

    @tree.command(description="Greet someone without pinging")
    async def greet(interaction: discord.Interaction, who: discord.Member) -> None:
        state().seen["who"] = who
        await interaction.response.send_message(f"hi {who.mention}", allowed_mentions=discord.AllowedMentions.none())

    limits = app_commands.Group(name="limits", description="Limits")

    @limits.command(name="set", description="Set a limit")
    async def limits_set(interaction: discord.Interaction, scope: str, value: int = 1) -> None:
        await interaction.response.send_message(f"{scope}={value}", ephemeral=True)

    tree.add_command(limits)

    @tree.context_menu(name="Measure image")
    async def measure(interaction: discord.Interaction, message: discord.Message) -> None:
        data = await message.attachments[0].read()
        await interaction.response.send_message(f"{len(data)} bytes: {data.decode()}")


def build_client(bot_state: dict[str, Bot]) -> discord.Client:
    """A plain discord.Client with a command tree that syncs globally in setup_hook."""
    client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.01)
    tree = app_commands.CommandTree(client)
    add_response_commands(tree, lambda: bot_state["bot"])
    add_ui_commands(tree, lambda: bot_state["bot"])

    async def setup_hook() -> None:
        await tree.sync()

    client.setup_hook = setup_hook  # type: ignore[method-assign]
    return client


@pytest.fixture
async def harness(fake: FakeDiscord) -> AsyncIterator[Bot]:
    guild = fake.add_guild("Guild")
    channel = guild.add_channel("general")
    alice = guild.add_member("alice")
    holder: dict[str, Bot] = {}
    client = build_client(holder)
    holder["bot"] = state = Bot(client, guild, channel, alice)
    task = asyncio.create_task(client.start(TOKEN))
    try:
        await fake.wait_ready()
        await fake.wait_for(lambda: fake.sync_calls.get(None) == 1, what="global command sync")
        yield state
    finally:
        await client.close()
        await asyncio.wait_for(task, 5)


async def test_login_ready_and_guild_cache(fake: FakeDiscord, harness: Bot) -> None:
    client = harness.client
    await client.wait_until_ready()
    assert client.user is not None and client.user.id == fake.bot_user.id
    guild = client.get_guild(harness.guild.id)
    assert guild is not None and guild.name == "Guild"
    channel = guild.get_channel(harness.channel.id)
    assert isinstance(channel, discord.TextChannel) and channel.name == "general"
    assert guild.me is not None and guild.me.guild_permissions.send_messages
    assert ("GET", "/api/v10/users/@me", 200) in fake.requests


async def test_wrong_token_is_login_failure(fake: FakeDiscord) -> None:
    client = discord.Client(intents=discord.Intents.none())
    with pytest.raises(discord.LoginFailure):
        await client.login("wrong")
    await client.close()
    assert fake.errors[-1].status == 401


async def test_sync_stores_payload_and_returns_ids(fake: FakeDiscord, harness: Bot) -> None:
    payload = fake.synced_commands[None]
    names = {"imagine", "echo", "bad", "post", "panel", "greet", "limits", "Measure image"}
    assert {c["name"] for c in payload} == names
    imagine = next(c for c in payload if c["name"] == "imagine")
    assert [o["name"] for o in imagine["options"]][:2] == ["prompt", "seed"]
    tree = harness.client._connection._command_tree
    assert tree is not None
    fetched = await tree.fetch_commands()
    assert {c.name for c in fetched} == {c["name"] for c in payload}
    assert all(c.id and c.application_id == fake.application_id for c in fetched)
    assert fake.sync_calls == {None: 1}


async def test_defer_then_followup_with_file(fake: FakeDiscord, harness: Bot) -> None:
    ix = await fake.invoke_command(harness.alice, harness.channel, "imagine", {"prompt": "a cat", "seed": 5})
    ack = await ix.wait_ack()
    assert (ack.type, ack.ephemeral) == (5, False)
    assert 0 <= ack.elapsed < fake.ack_deadline
    message = await ix.wait_response_message()
    assert message.content == "here 0" and not message.loading
    assert [(a.filename, a.data, a.content_type) for a in message.attachments] == [
        ("image.png", b"a cat:5", "image/png")
    ]
    assert ix.followups == [message] and message in harness.channel.messages
    assert message.attachments[0].url.startswith(fake.world.base_url)


async def test_late_ack_is_unknown_interaction(fake: FakeDiscord, harness: Bot) -> None:
    fake.clock = lambda: time.monotonic() + harness.lateness
    ix = await fake.invoke_command(harness.alice, harness.channel, "echo", {"text": "hi", "late": 3.5})
    await fake.wait_for(lambda: ix.errors and harness.failures)  # the fake's record, then the client's
    assert ix.errors == [(404, 10062, "Unknown interaction")] and ix.ack is None
    assert harness.failures[0].code == 10062


async def test_double_ack_is_rejected(fake: FakeDiscord, harness: Bot) -> None:
    ix = await fake.invoke_command(harness.alice, harness.channel, "echo", {"text": "hi", "twice": True})
    assert (await ix.wait_response_message()).content == "hi"
    await fake.wait_for(lambda: harness.failures)
    assert (harness.failures[0].status, harness.failures[0].code) == (400, 40060)
    assert ix.ack is not None and ix.ack.type == 4


async def test_expired_token_rejects_followups(fake: FakeDiscord, harness: Bot) -> None:
    ix = await fake.invoke_command(harness.alice, harness.channel, "imagine", {"prompt": "x", "wait": True})
    await ix.wait_ack()
    fake.expire_token(ix)
    harness.go.set()
    await fake.wait_for(lambda: harness.failures)
    assert (harness.failures[0].status, harness.failures[0].code) == (401, 50027)
    assert ix.response_message is None


@pytest.mark.parametrize("private", [False, True])
async def test_ephemerality_is_fixed_at_defer(fake: FakeDiscord, harness: Bot, private: bool) -> None:
    # Every followup asks for the opposite of the deferral.
    ix = await fake.invoke_command(
        harness.alice, harness.channel, "imagine", {"prompt": "p", "private": private, "followups": 2}
    )
    first = await ix.wait_response_message()
    await fake.wait_for(lambda: len(ix.followups) == 2)
    assert ix.ack is not None and ix.ack.ephemeral is private
    assert first.ephemeral is private
    assert ix.followups[1].ephemeral is not private
    assert first.id == ix.followups[0].id != ix.followups[1].id


async def test_upload_over_interaction_limit(fake: FakeDiscord, harness: Bot) -> None:
    ix = await fake.invoke_command(
        harness.alice, harness.channel, "imagine", {"prompt": "big", "size": 2048}, attachment_size_limit=1024
    )
    await fake.wait_for(lambda: harness.failures)
    assert (harness.failures[0].status, harness.failures[0].code) == (413, 40005)
    assert ix.errors == [(413, 40005, "Request entity too large")]
    assert ix.original is not None and ix.original.loading


@pytest.mark.parametrize(
    ("rule", "code", "field", "in_spec"),
    [
        ("content", 50035, "data.content", True),
        ("embed", 50035, "data.embeds.0.title", True),
        ("embeds", 50035, "data.embeds: Embed size exceeds maximum size of 6000", False),
        ("label", 50035, "data.components.0.components.0.label", True),
        ("empty", 50006, None, False),
    ],
)
async def test_message_limits(
    fake: FakeDiscord, harness: Bot, rule: str, code: int, field: str | None, in_spec: bool
) -> None:
    ix = await fake.invoke_command(harness.alice, harness.channel, "bad", {"rule": rule})
    await fake.wait_for(lambda: harness.failures)
    failure = harness.failures[0]
    assert (failure.status, failure.code) == (400, code)
    if field is not None:
        assert field in failure.text
    assert ix.ack is None and fake.errors[-1].code == code
    # Limits the OpenAPI description states are caught by it; the rest by the fake's own rules.
    assert [v.interaction_id for v in fake.spec_violations] == ([ix.id] if in_spec else [])
    fake.spec_violations.clear()


async def test_button_click_updates_message(fake: FakeDiscord, harness: Bot) -> None:
    ix = await fake.invoke_command(harness.alice, harness.channel, "panel")
    panel = await ix.wait_response_message()
    assert [b["custom_id"] for b in panel.components[0]["components"]] == ["press", "rename", "note"]
    click = await fake.click_button(harness.alice, panel, "press")
    assert (await click.wait_ack()).type == 7
    assert panel.content == "pressed by alice" and panel.edits == 1
    with pytest.raises(InvalidInvocation):
        await fake.click_button(harness.alice, panel, "nope")


async def test_modal_round_trip(fake: FakeDiscord, harness: Bot) -> None:
    panel = await (await fake.invoke_command(harness.alice, harness.channel, "panel")).wait_response_message()
    opened = await fake.click_button(harness.alice, panel, "rename")
    assert (await opened.wait_ack()).type == 9
    modal = opened.modal
    assert modal is not None and modal["title"] == "Rename the thing"
    label = modal["components"][0]
    assert (label["type"], label["label"], label["component"]["value"]) == (18, "New name", "old")
    submitted = await fake.submit_modal(harness.alice, modal, {"name": "new"})
    reply = await submitted.wait_response_message()
    assert reply.content == "renamed to new" and reply.ephemeral


async def test_legacy_modal_and_deferred_update(fake: FakeDiscord, harness: Bot) -> None:
    panel = await (await fake.invoke_command(harness.alice, harness.channel, "panel")).wait_response_message()
    opened = await fake.click_button(harness.alice, panel, "note")
    await opened.wait_ack()
    assert opened.modal is not None
    row = opened.modal["components"][0]
    assert (row["type"], row["components"][0]["type"], row["components"][0]["label"]) == (1, 4, "Note")
    submitted = await fake.submit_modal(harness.alice, opened, {"text": "hello"})
    assert (await submitted.wait_ack()).type == 6
    assert await submitted.wait_response_message() is panel
    assert panel.content == "note: hello" and panel.edits == 1


async def test_channel_post_and_delete(fake: FakeDiscord, harness: Bot) -> None:
    ix = await fake.invoke_command(harness.alice, harness.channel, "post")
    done = await ix.wait_response_message()
    assert done.content == "done" and done.ephemeral
    [posted] = [m for m in harness.channel.messages if m.content == "posted"]
    assert posted.deleted and posted.attachments[0].data == b"data" and posted.author_id == fake.bot_user.id
    assert isinstance(harness.failures[0], discord.NotFound) and harness.failures[0].code == 10008


async def test_resume_replays_interaction_sent_while_disconnected(fake: FakeDiscord, harness: Bot) -> None:
    await fake.drop_gateway(resumable=True, hold=True)
    assert not fake.gateway_connected
    ix = await fake.invoke_command(harness.alice, harness.channel, "echo", {"text": "after resume"})
    assert ix.dispatched_at is None
    fake.restore_gateway()
    await fake.wait_resumed()
    assert (await ix.wait_response_message()).content == "after resume"
    assert fake.gateway.identify_count == 1


async def test_non_resumable_drop_reidentifies(fake: FakeDiscord, harness: Bot) -> None:
    async def no_identify_delay(shard_id: int | None, *, initial: bool = False) -> None:
        return None  # discord.py sleeps 5 s before every non-initial IDENTIFY

    harness.client.before_identify_hook = no_identify_delay  # type: ignore[method-assign]
    await fake.drop_gateway(resumable=False)
    await fake.wait_for(lambda: fake.gateway.identify_count == 2 and fake.gateway_connected)
    ix = await fake.invoke_command(harness.alice, harness.channel, "echo", {"text": "fresh"})
    assert (await ix.wait_response_message()).content == "fresh"


async def test_subcommands_member_options_and_mentions(fake: FakeDiscord, harness: Bot) -> None:
    ix = await fake.invoke_command(
        harness.alice, harness.channel, "limits", {"scope": "member", "value": 3}, subcommand="set"
    )
    reply = await ix.wait_response_message()
    assert reply.content == "member=3" and reply.ephemeral
    bob = harness.guild.add_member("bob")
    greet = await fake.invoke_command(harness.alice, harness.channel, "greet", {"who": bob})
    greeting = await greet.wait_response_message()
    assert harness.seen["who"].id == bob.id and greeting.content == f"hi {bob.mention}"
    assert greeting.pinged_user_ids() == set() and not greeting.pings_everyone()


async def test_message_command_reads_attachment(fake: FakeDiscord, harness: Bot) -> None:
    posted = harness.channel.add_message(harness.alice, "look", attachments=[FakeAttachment("cat.png", b"meow")])
    ix = await fake.invoke_message_command(harness.alice, posted, "Measure image")
    assert (await ix.wait_response_message()).content == "4 bytes: meow"


async def test_invocations_are_checked_against_schema(fake: FakeDiscord, harness: Bot) -> None:
    with pytest.raises(InvalidInvocation, match="no synced command"):
        await fake.invoke_command(harness.alice, harness.channel, "missing")
    with pytest.raises(InvalidInvocation, match="no option"):
        await fake.invoke_command(harness.alice, harness.channel, "echo", {"text": "a", "colour": "red"})
    with pytest.raises(InvalidInvocation, match="requires option"):
        await fake.invoke_command(harness.alice, harness.channel, "imagine", {"seed": 1})
    with pytest.raises(InvalidInvocation, match="choices"):
        await fake.invoke_command(harness.alice, harness.channel, "bad", {"rule": "other"})
    with pytest.raises(InvalidInvocation, match="subcommand"):
        await fake.invoke_command(harness.alice, harness.channel, "limits", {"scope": "x"})


async def test_unhandled_routes_are_recorded(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session:
        headers = {"Authorization": f"Bot {TOKEN}"}
        async with session.get(fake.api_base_url + "/guilds/1/preview", headers=headers) as resp:
            assert resp.status == 404
            assert resp.headers["Content-Type"] == "application/json"
            assert await resp.json() == {"code": 0, "message": "404: Not Found"}
        async with session.get(fake.api_base_url + "/users/@me") as resp:
            assert resp.status == 401
    assert fake.unhandled_routes == [("GET", "/api/v10/guilds/1/preview")]


async def test_gateway_rejects_bad_token_and_unknown_session(fake: FakeDiscord) -> None:
    async with aiohttp.ClientSession() as session:
        url = fake.gateway_url + "?v=10&encoding=json&compress=zlib-stream"
        async with session.ws_connect(url) as ws:
            hello = await ws.receive_json()
            assert hello["op"] == 10 and hello["d"]["heartbeat_interval"] > 0
            await ws.send_json({"op": 2, "d": {"token": "wrong", "intents": 0, "properties": {}}})
            assert (await ws.receive()).type is aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 4004
        async with session.ws_connect(url) as ws:
            await ws.receive_json()
            await ws.send_json({"op": 6, "d": {"token": TOKEN, "session_id": "nope", "seq": 3}})
            assert await ws.receive_json() == {"op": 9, "s": None, "t": None, "d": False}


# ------------------------------------------------------------------ Discord's OpenAPI description


async def rest(
    fake: FakeDiscord, method: str, path: str, *, json: object = None, form: aiohttp.FormData | None = None
) -> tuple[int, Any]:
    """One bot-token request to the fake; (status, JSON answer or None)."""
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method, fake.api_base_url + path, json=json, data=form, headers={"Authorization": f"Bot {TOKEN}"}
        ) as resp,
    ):
        return resp.status, await resp.json() if resp.content_type == "application/json" else None


async def test_a_request_the_description_accepts_passes(fake: FakeDiscord) -> None:
    channel = fake.add_guild("Guild").add_channel("general")
    # Snowflakes as JSON integers and integers as strings: the real API's leniency.
    body = {"content": "hi", "allowed_mentions": {"parse": [], "users": [123, "456"]}, "flags": "4"}
    status, message = await rest(fake, "POST", f"/channels/{channel.id}/messages", json=body)
    assert status == 200 and message["content"] == "hi"
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", '{"content": "file", "attachments": [{"id": 0, "filename": "a.png"}]}')
    form.add_field("files[0]", b"png", filename="a.png", content_type="image/png")
    assert (await rest(fake, "POST", f"/channels/{channel.id}/messages", form=form))[0] == 200
    assert (await rest(fake, "GET", "/users/@me"))[0] == 200
    assert fake.spec_violations == []


async def test_a_body_the_description_rejects_is_a_violation(fake: FakeDiscord) -> None:
    channel = fake.add_guild("Guild").add_channel("general")
    status, answer = await rest(fake, "POST", f"/channels/{channel.id}/messages", json={"content": 5})
    assert status == 400
    assert answer["code"] == 50035 and answer["message"] == "Invalid Form Body"
    assert answer["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_BAD_TYPE"
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("payload_json", '{"content": "x", "attachments": [{"filename": "a.png"}]}')
    form.add_field("files[0]", b"png", filename="a.png", content_type="image/png")
    status, answer = await rest(fake, "POST", f"/channels/{channel.id}/messages", form=form)
    assert status == 400
    assert answer["errors"]["attachments"]["0"]["id"]["_errors"][0]["code"] == "BASE_TYPE_REQUIRED"
    status, answer = await rest(fake, "PATCH", f"/channels/{channel.id}/messages/1", json={"flags": "many"})
    assert status == 400 and answer["errors"]["flags"]["_errors"][0]["code"] == "NUMBER_TYPE_COERCE"
    assert [(v.method, v.status, v.code) for v in fake.spec_violations] == [
        ("POST", 400, 50035),
        ("POST", 400, 50035),
        ("PATCH", 400, 50035),
    ]
    assert channel.messages == []
    fake.spec_violations.clear()


async def test_an_unknown_route_or_method_is_a_violation(fake: FakeDiscord) -> None:
    channel = fake.add_guild("Guild").add_channel("general")
    not_found = (404, {"code": 0, "message": "404: Not Found"})
    assert await rest(fake, "GET", f"/channels/{channel.id}/messagez") == not_found
    status, answer = await rest(fake, "PUT", f"/channels/{channel.id}/messages", json={"content": "x"})
    assert (status, answer["message"]) == (405, "405: Method Not Allowed")
    assert [(v.method, v.path, v.status) for v in fake.spec_violations] == [
        ("GET", f"/api/v10/channels/{channel.id}/messagez", 404),
        ("PUT", f"/api/v10/channels/{channel.id}/messages", 405),
    ]
    # What the harness runs after each test: the test that sent them fails.
    with pytest.raises(AssertionError, match="messagez: 404"):
        fake.assert_no_spec_violations()
    fake.spec_violations.clear()


async def test_discord_py_talks_within_the_description(fake: FakeDiscord, harness: Bot) -> None:
    ix = await fake.invoke_command(harness.alice, harness.channel, "imagine", {"prompt": "a cat", "followups": 2})
    await fake.wait_for(lambda: len(ix.followups) == 2)
    panel = await (await fake.invoke_command(harness.alice, harness.channel, "panel")).wait_response_message()
    await (await fake.click_button(harness.alice, panel, "press")).wait_ack()
    await (await fake.invoke_command(harness.alice, harness.channel, "post")).wait_response_message()
    assert fake.spec_violations == []
    assert len(fake.requests) > 10


# ------------------------------------------------------------------ rate limits


async def test_a_full_bucket_answers_429_as_discord_does(fake: FakeDiscord) -> None:
    channel = fake.add_guild("Guild").add_channel("general")
    fake.set_rate_limits(RateLimits(routes=(RouteLimit((CHANNEL_MESSAGES,), limit=2, per=5.0),)))
    answers = []
    async with aiohttp.ClientSession() as session:
        for n in range(3):
            async with session.post(
                f"{fake.api_base_url}/channels/{channel.id}/messages",
                json={"content": f"m{n}"},
                headers={"Authorization": f"Bot {TOKEN}"},
            ) as resp:
                answers.append((resp.status, resp.headers.copy(), await resp.json()))
    (ok, first, _), (_, second, _), (refused, headers, body) = answers
    assert (ok, refused) == (200, 429)
    assert (first["X-RateLimit-Limit"], first["X-RateLimit-Remaining"], second["X-RateLimit-Remaining"]) == (
        "2",
        "1",
        "0",
    )
    assert first["X-RateLimit-Bucket"] == headers["X-RateLimit-Bucket"]
    assert body["message"] == "You are being rate limited." and body["global"] is False
    assert 0 < body["retry_after"] <= 5.0 and int(headers["Retry-After"]) >= body["retry_after"]
    assert 0 < float(headers["X-RateLimit-Reset-After"]) <= 5.0 and float(headers["X-RateLimit-Reset"]) > 0
    assert (headers["X-RateLimit-Scope"], headers["X-RateLimit-Remaining"]) == ("user", "0")
    assert headers["Via"] == "1.1 google"  # without it discord.py takes a 429 for a Cloudflare ban
    assert [m.content for m in channel.messages] == ["m0", "m1"]
    assert [(h.method, h.scope) for h in fake.rate_limited] == [("POST", "user")]


async def test_discord_py_waits_out_route_and_global_limits(fake: FakeDiscord, harness: Bot) -> None:
    channels = [harness.channel] + [harness.guild.add_channel(f"c{n}") for n in range(4)]
    # Five channels' first messages at once exceed the global limit; discord.py then paces each channel.
    fake.set_rate_limits(
        RateLimits(routes=(RouteLimit((CHANNEL_MESSAGES,), limit=1, per=0.1),), global_limit=4, global_per=0.2)
    )
    sends = [harness.client.get_partial_messageable(c.id).send(f"{c.name} {n}") for n in range(2) for c in channels]
    await asyncio.gather(*sends)
    assert all(sorted(m.content for m in c.messages) == [f"{c.name} 0", f"{c.name} 1"] for c in channels)
    hits = fake.rate_limited
    assert any(h.scope == "global" for h in hits)
    assert all(h.retry_after <= 0.2 for h in hits)
