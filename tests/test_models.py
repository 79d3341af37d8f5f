"""The model catalogue, per-model pacing, each server's model choice and spending caps, through the fakes."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from bot.client import QwenImagineBot
from bot.qwen.catalogue import CatalogueError, load_catalogue
from bot.settings import SettingsError, load_settings
from tests.conftest import FAST_MODELS, MEMBER_PERMISSIONS, BotRunner, World, imagine
from tests.database import TestDatabase
from tests.fakes.discord import FakeAttachment, FakeDiscord
from tests.fakes.qwen import FakeQwen
from tests.logs import watch_log
from tests.test_edit import buttons, picture
from tests.test_startup import clean_env, run_bot_process

REQUIRED = {"DISCORD_TOKEN": "t", "DASHSCOPE_API_KEY": "k"}


def models_of(qwen: FakeQwen, model: str) -> int:
    return sum(1 for r in qwen.generation_requests if isinstance(r.body, dict) and r.body.get("model") == model)


def catalogue_file(tmp_path: Path, *entries: dict[str, Any], name: str = "extra.json") -> str:
    path = tmp_path / name
    models = {entry["name"]: entry for entry in FAST_MODELS["models"]}
    models.update({entry["name"]: entry for entry in entries})
    path.write_text(json.dumps({"models": list(models.values())}))
    return str(path)


def entry(name: str, *, like: str | None = None, **changes: Any) -> dict[str, Any]:
    base = next(e for e in FAST_MODELS["models"] if e["name"] == (like or name))
    return {**base, "name": name, **changes}


# ---------------------------------------------------------------- catalogue


def test_the_built_in_catalogue_holds_the_vendors_models() -> None:
    catalogue = load_catalogue()
    assert set(catalogue.models) == {
        "qwen-image-plus",
        "qwen-image",
        "qwen-image-max",
        "qwen-image-edit-plus",
        "qwen-image-edit",
        "qwen-image-edit-max",
    }
    assert catalogue.pace("qwen-image-max") == (2, 60.0, 2)
    assert catalogue.pace("qwen-image-plus") == (2, 1.0, 2)
    assert catalogue.models["qwen-image-edit-plus"].size_range == (512, 2048)
    assert catalogue.models["qwen-image-edit"].max_images == 1 and not catalogue.models["qwen-image-edit"].size_settable
    assert catalogue.price("qwen-image-plus", "intl") == 0.03


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        ({"max_images": 7}, "max_images must be a whole number from 1 to 6"),
        ({"does": "video"}, 'does must be "text" or "edit"'),
        ({"price_usd": {"mars": 1}}, "price_usd must map regions"),
        ({"sizes": ["big"]}, "sizes must be"),
        ({"window_seconds": 0}, "window_seconds must be"),
        ({"colour": "red"}, "unknown field 'colour'"),
    ],
)
def test_a_malformed_catalogue_entry_is_named_with_its_field(tmp_path: Path, bad: dict[str, Any], named: str) -> None:
    path = catalogue_file(tmp_path, entry("qwen-image-edit-plus", **bad))
    with pytest.raises(SettingsError) as raised:
        load_settings({**REQUIRED, "MODEL_CATALOGUE_FILE": path})
    assert str(raised.value).startswith("MODEL_CATALOGUE_FILE: a valid model catalogue: ")
    assert "(qwen-image-edit-plus)" in str(raised.value) and named in str(raised.value)
    with pytest.raises(CatalogueError):
        load_catalogue(Path(path))


async def test_a_malformed_catalogue_stops_the_bot_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "models.json").write_text('{"models": [{"name": "qwen-image-9", "does": "text"}]}')
    code, stderr = await run_bot_process(
        clean_env(**REQUIRED, MODEL_CATALOGUE_FILE=str(tmp_path / "models.json")), tmp_path
    )
    assert code == 2 and "Traceback" not in stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("qwen-imagine: configuration error: MODEL_CATALOGUE_FILE: ")
    assert "entry 1 (qwen-image-9): sizes of a text-to-image model must be a list of W*H" in line


def test_enabled_models_must_be_in_the_catalogue() -> None:
    with pytest.raises(SettingsError, match="ENABLED_MODELS"):
        load_settings({**REQUIRED, "ENABLED_MODELS": "qwen-image-plus,dall-e"})
    settings = load_settings(REQUIRED)
    assert settings.enabled_models == ("qwen-image-plus", "qwen-image-edit-plus")
    assert (settings.model, settings.edit_model) == ("qwen-image-plus", "qwen-image-edit-plus")


async def test_a_catalogue_override_adds_and_corrects_models(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner, tmp_path: Path
) -> None:
    newer = entry("qwen-image-2.0", like="qwen-image-plus", sizes=["1328*1328"], price_usd={"intl": 0.05})
    path = catalogue_file(tmp_path, newer, entry("qwen-image-edit-plus", max_images=2))
    await bots.start(MODEL_CATALOGUE_FILE=path, ENABLED_MODELS="qwen-image-plus,qwen-image-2.0,qwen-image-edit-plus")
    [command] = [c for c in discord_server.synced_commands[None] if c["name"] == "imagine"]
    model = next(o for o in command["options"] if o["name"] == "model")
    assert [c["value"] for c in model["choices"]] == ["qwen-image-plus", "qwen-image-2.0"]
    refused = await discord_server.invoke_command(
        world.alice, world.channel, "edit", {"prompt": "x", "image": FakeAttachment("a.png", picture()), "count": 3}
    )
    answer = await refused.wait_answer()
    assert answer.ephemeral and "qwen-image-edit-plus makes 1 to 2 images per request." in answer.content
    assert qwen.edits == []


# ---------------------------------------------------------------- pacing


async def test_a_burst_for_qwen_image_max_is_paced_by_its_own_limit_and_draws_no_429(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner
) -> None:
    await bots.start(ENABLED_MODELS="qwen-image-max,qwen-image-edit-plus", QWEN_IMAGE_MODEL="qwen-image-max")
    members = [world.guild.add_member(name=f"m{i}", permissions=MEMBER_PERMISSIONS) for i in range(5)]
    interactions = await asyncio.gather(
        *(imagine(discord_server, m, world.channel, f"p{i}") for i, m in enumerate(members))
    )
    answers = [await ix.wait_answer() for ix in interactions]
    assert all(answer.attachments for answer in answers)
    assert qwen.throttled == 0 and models_of(qwen, "qwen-image-max") == 5
    arrivals = [r.at for r in qwen.generation_requests]
    assert all(later - earlier >= 1.5 for earlier, later in zip(arrivals, arrivals[2:], strict=False))


async def test_qwen_image_plus_keeps_its_slots_busy_while_qwen_image_max_waits_for_its_turn(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner
) -> None:
    await bots.start(ENABLED_MODELS="qwen-image-plus,qwen-image-max,qwen-image-edit-plus")
    members = [world.guild.add_member(name=f"m{i}", permissions=MEMBER_PERMISSIONS) for i in range(6)]
    slow = [await imagine(discord_server, m, world.channel, "slow", model="qwen-image-max") for m in members[:4]]
    fast = [await imagine(discord_server, m, world.channel, "fast", model="qwen-image-plus") for m in members[4:]]
    # Both plus jobs run while max has used its two turns: the two max jobs beyond its limit wait for
    # their turn without holding the account's slots (the submissions may arrive in either order).
    await qwen.wait_for(lambda: models_of(qwen, "qwen-image-plus") == 2 and models_of(qwen, "qwen-image-max") >= 2)
    assert models_of(qwen, "qwen-image-max") == 2
    for interaction in slow + fast:
        assert (await interaction.wait_answer()).attachments
    assert qwen.throttled == 0


# ---------------------------------------------------------------- each server's model


async def test_moderators_choose_the_servers_models_and_details_and_the_audit_trail_show_it(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner, db: TestDatabase
) -> None:
    await bots.start(ENABLED_MODELS="qwen-image-plus,qwen-image,qwen-image-edit-plus,qwen-image-edit")
    chosen = await discord_server.invoke_command(
        world.moderator, world.channel, "settings", {"model": "qwen-image"}, subcommand="model text"
    )
    assert "text-to-image model is now qwen-image (was qwen-image-plus)" in (await chosen.wait_answer()).content
    denied = await discord_server.invoke_command(
        world.alice, world.channel, "settings", {"model": "qwen-image-edit"}, subcommand="model edit"
    )
    assert "Manage Server" in (await denied.wait_answer()).content
    message = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    assert qwen.generation_requests[-1].body["model"] == "qwen-image"
    fields = {f["name"]: f["value"] for f in message.embeds[0]["fields"]}
    assert fields["Model"] == "qwen-image"
    [audit] = await db.rows("SELECT guild_id, actor_id, setting, old_value, new_value FROM settings_audit")
    assert dict(audit) == {
        "guild_id": world.guild.id,
        "actor_id": world.moderator.id,
        "setting": "model.text",
        "old_value": "qwen-image-plus",
        "new_value": "qwen-image",
    }


async def test_reroll_of_an_image_whose_model_is_no_longer_enabled_uses_the_servers_and_says_so(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner
) -> None:
    await bots.start(ENABLED_MODELS="qwen-image,qwen-image-edit-plus", QWEN_IMAGE_MODEL="qwen-image")
    first = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    await bots.wait_delivered(1)
    await bots.stop()
    await bots.start()
    again = await discord_server.click_button(world.bob, first, buttons(first)["Reroll"])
    second = await again.wait_answer()
    assert qwen.generation_requests[-1].body["model"] == "qwen-image-plus"
    assert "qwen-image is no longer enabled, so this image was made with qwen-image-plus." in second.content


# ---------------------------------------------------------------- spending caps


async def test_the_global_budget_refuses_the_request_that_would_pass_it_and_warns_once_at_80_percent(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner, db: TestDatabase
) -> None:
    await bots.start(MONTHLY_BUDGET_USD="0.09")  # three qwen-image-plus images at $0.03
    with watch_log("bot.services.budget") as log:
        for n in range(3):  # the third reaches the cap exactly: allowed
            assert (
                await (await imagine(discord_server, world.alice, world.channel, f"p{n}")).wait_answer()
            ).attachments
        refused = await (await imagine(discord_server, world.bob, world.channel, "one more")).wait_answer()
    assert refused.ephemeral
    assert "The bot's monthly image budget of $0.09 is used up for now. It resets <t:" in refused.content
    assert len(qwen.generation_requests) == 3
    assert len(log.messages("80% of the monthly budget of $0.09")) == 1
    assert [r["status"] for r in await db.generations()] == ["succeeded"] * 3 + ["denied"]


async def test_a_servers_budget_counts_every_image_of_a_request(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bots: BotRunner, db: TestDatabase
) -> None:
    await bots.start()
    set_cap = await discord_server.invoke_command(
        world.moderator, world.channel, "limits", {"usd": 0.1}, subcommand="budget"
    )
    assert "Monthly budget set: $0.10" in (await set_cap.wait_answer()).content
    ok = await discord_server.invoke_command(
        world.alice, world.channel, "edit", {"prompt": "x", "image": FakeAttachment("a.png", picture()), "count": 3}
    )
    assert len((await ok.wait_answer()).attachments) == 3  # $0.09 of $0.10
    refused = await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    assert refused.ephemeral and "This server's monthly image budget of $0.10 is used up" in refused.content
    assert "resets <t:" in refused.content
    [audit] = await db.rows("SELECT setting, old_value, new_value FROM settings_audit")
    assert dict(audit) == {"setting": "budget_usd", "old_value": None, "new_value": "0.10"}


async def test_usage_shows_images_and_cost_per_model_and_the_csv_has_each_rows_price(
    discord_server: FakeDiscord, qwen: FakeQwen, world: World, bot: QwenImagineBot
) -> None:
    await (await imagine(discord_server, world.alice, world.channel)).wait_answer()
    edit = await discord_server.invoke_command(
        world.alice, world.channel, "edit", {"prompt": "x", "image": FakeAttachment("a.png", picture()), "count": 2}
    )
    await edit.wait_answer()
    usage = await discord_server.invoke_command(world.moderator, world.channel, "usage", {"export": True})
    answer = await usage.wait_answer()
    fields = {f["name"]: f["value"] for f in answer.embeds[0]["fields"]}
    assert fields["By model"] == "qwen-image-edit-plus: 2 images, $0.06\nqwen-image-plus: 1 image, $0.03"
    [csv] = answer.attachments
    lines = csv.data.decode().splitlines()
    assert lines[0].endswith(",price_usd")
    assert sorted(line.rsplit(",", 1)[1] for line in lines[1:]) == ["0.0300", "0.0300", "0.0300"]
