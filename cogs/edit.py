"""Edit: the /edit command, the Edit button on results, the "Edit image" menu, and the edit form."""

from __future__ import annotations

import logging
import re
import secrets
import time
from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from bot.client import QwenImagineBot
from bot.errors import InvalidRequest, NotAllowed
from bot.qwen import MAX_SEED, NEGATIVE_PROMPT_LIMIT, PROMPT_LIMIT
from bot.qwen.edit import MAX_INPUTS
from bot.qwen.inputs import SourceImage
from bot.services import Services
from bot.services.editing import EditService
from bot.services.generation import UsedMessage
from bot.ui.edit_form import edit_form
from bot.ui.edits import ImagePicker, edit_and_deliver
from bot.ui.failures import report_error
from bot.ui.presentation import jump_url
from bot.ui.remix_form import submitted_values
from bot.ui.results import RESULT_ACTION_EVENT, Credit

log = logging.getLogger(__name__)

EDIT_DESCRIPTION = "Change an image (or combine up to 3) with an instruction"
EDIT_FORM = re.compile(r"qi:editform:(?P<token>[A-Za-z0-9_-]{1,40})")
#: How long an opened edit form remembers its images.
FORM_SECONDS = 15 * 60


def sources_of(attachments: list[discord.Attachment]) -> tuple[SourceImage, ...]:
    """The attachments as edit inputs, in order (Image 1, 2, 3)."""
    return tuple(SourceImage(n, a.filename, a.url, a.size, a.content_type) for n, a in enumerate(attachments, start=1))


class EditCog(commands.Cog):
    """Everything that starts an edit."""

    def __init__(self, bot: QwenImagineBot, services: Services) -> None:
        assert services.editing is not None
        self.bot = bot
        self.services = services
        self.editing: EditService = services.editing
        self.command = self._build_command()
        self.context_menu = app_commands.ContextMenu(
            name="Edit image", callback=self.edit_from_menu, allowed_contexts=app_commands.AppCommandContext(guild=True)
        )
        #: Open edit forms: token -> (expiry, inputs, credit, parent id, member).
        self._forms: dict[str, tuple[float, tuple[SourceImage, ...], Credit | None, int | None, int]] = {}

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(ImagePicker)
        self.bot.tree.add_command(self.command)
        self.bot.tree.add_command(self.context_menu)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(ImagePicker)
        self.bot.tree.remove_command(self.command.name)
        self.bot.tree.remove_command(self.context_menu.name, type=self.context_menu.type)

    def _build_command(self) -> app_commands.Command:  # type: ignore[type-arg]
        models = self.services.models.enabled("edit") if self.services.models else ()
        describe = app_commands.describe(
            image="The image to edit (Image 1)",
            prompt="What to change, e.g. make it night; refer to Image 1, Image 2, Image 3",
            image2="A second image (Image 2)",
            image3="A third image (Image 3)",
            negative_prompt="What to keep out of the result (up to 500 characters)",
            seed=f"Reuse a seed to reproduce a result (0 to {MAX_SEED}); random when left out",
            count="How many results (up to the model's maximum, 6 at most)",
            size="Output size as width*height, e.g. 1024*1536 (default: follows the last image)",
            enhance="Let the service rewrite and expand your prompt",
        )
        if len(models) > 1:

            @app_commands.command(name="edit", description=EDIT_DESCRIPTION)
            @describe
            @app_commands.describe(model="The edit model to use (default: this server's)")
            @app_commands.choices(model=[app_commands.Choice(name=m, value=m) for m in models])
            @app_commands.guild_only()
            async def edit_with_model(
                interaction: discord.Interaction,
                image: discord.Attachment,
                prompt: app_commands.Range[str, 1, PROMPT_LIMIT],
                image2: discord.Attachment | None = None,
                image3: discord.Attachment | None = None,
                negative_prompt: app_commands.Range[str, 1, NEGATIVE_PROMPT_LIMIT] | None = None,
                seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
                count: app_commands.Range[int, 1, 6] = 1,
                size: app_commands.Range[str, 3, 11] | None = None,
                enhance: bool = True,
                model: str | None = None,
            ) -> None:
                attachments = [a for a in (image, image2, image3) if a is not None]
                await self.edit(interaction, attachments, prompt, negative_prompt, seed, count, size, enhance, model)

            return edit_with_model

        @app_commands.command(name="edit", description=EDIT_DESCRIPTION)
        @describe
        @app_commands.guild_only()
        async def edit(
            interaction: discord.Interaction,
            image: discord.Attachment,
            prompt: app_commands.Range[str, 1, PROMPT_LIMIT],
            image2: discord.Attachment | None = None,
            image3: discord.Attachment | None = None,
            negative_prompt: app_commands.Range[str, 1, NEGATIVE_PROMPT_LIMIT] | None = None,
            seed: app_commands.Range[int, 0, MAX_SEED] | None = None,
            count: app_commands.Range[int, 1, 6] = 1,
            size: app_commands.Range[str, 3, 11] | None = None,
            enhance: bool = True,
        ) -> None:
            attachments = [a for a in (image, image2, image3) if a is not None]
            await self.edit(interaction, attachments, prompt, negative_prompt, seed, count, size, enhance, None)

        return edit

    async def _model(self, interaction: discord.Interaction[Any], requested: str | None = None) -> str:
        if self.services.models is None or interaction.guild_id is None:
            return requested or "qwen-image-edit-plus"
        return await self.services.models.pick(interaction.guild_id, "edit", requested)

    async def edit(
        self,
        interaction: discord.Interaction[Any],
        attachments: list[discord.Attachment],
        prompt: str,
        negative_prompt: str | None,
        seed: int | None,
        count: int,
        size: str | None,
        enhance: bool,
        model: str | None,
    ) -> None:
        """/edit: validate, then admit, acknowledge, read the inputs, edit and post."""
        request = self.editing.build_request(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            prompt=prompt,
            sources=sources_of(attachments),
            negative_prompt=negative_prompt,
            seed=seed,
            count=count,
            size=size,
            prompt_extend=enhance,
            model=await self._model(interaction, model),
        )
        await edit_and_deliver(interaction, self.services, request)

    @commands.Cog.listener(f"on_{RESULT_ACTION_EVENT}")
    async def on_result_action(
        self, action: str, generation_id: int | None, interaction: discord.Interaction[Any]
    ) -> None:
        """The Edit button (or menu entry) of a result: open the edit form on that image."""
        if action != "edit":
            return
        try:
            message = interaction.message
            if message is None:
                raise NotAllowed("There is no image to edit here.")
            bot_id = self.bot.user.id if self.bot.user is not None else None
            used = UsedMessage(message.id, interaction.channel_id, sent_by_bot=message.author.id == bot_id)
            record = await self.services.generation.generation_for(interaction.guild_id, generation_id, on=used)
            name = f"qwen-image-{record.seed}.png"
            attachment = next((a for a in message.attachments if a.filename == name), None)
            if attachment is None:
                raise NotAllowed("This image isn't on the message anymore, so it can't be edited.")
            credit = Credit(record.member_id, jump_url(record.guild_id, record.channel_id, message.id), "Edited")
            await self._open_form(interaction, sources_of([attachment]), credit, record.id)
        except Exception as error:
            await report_error(interaction, error)

    async def edit_from_menu(self, interaction: discord.Interaction[Any], message: discord.Message) -> None:
        """ "Edit image" on any message: its first three images become Image 1, 2, 3."""
        images = [a for a in message.attachments if (a.content_type or "").startswith("image/")]
        if not images:
            raise InvalidRequest("That message has no image attachments to edit.")
        parent = None
        if self.bot.user is not None and message.author.id == self.bot.user.id:
            record = await self.services.generation.find_by_message(message.id)
            parent = record.id if record is not None and record.guild_id == interaction.guild_id else None
        credit = None
        if message.author.id != interaction.user.id:
            credit = Credit(message.author.id, message.jump_url, "Edited")
        await self._open_form(interaction, sources_of(images[:MAX_INPUTS]), credit, parent)

    async def _open_form(
        self,
        interaction: discord.Interaction[Any],
        sources: tuple[SourceImage, ...],
        credit: Credit | None,
        parent_id: int | None,
    ) -> None:
        now = time.monotonic()
        self._forms = {token: form for token, form in self._forms.items() if form[0] > now}
        token = secrets.token_urlsafe(12)
        self._forms[token] = (now + FORM_SECONDS, sources, credit, parent_id, interaction.user.id)
        model = await self._model(interaction)
        await interaction.response.send_modal(edit_form(token, self.editing.max_images(model)))

    @commands.Cog.listener()
    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """A submitted edit form."""
        if interaction.type is not discord.InteractionType.modal_submit or interaction.data is None:
            return
        match = EDIT_FORM.fullmatch(str(interaction.data.get("custom_id", "")))
        if match is None:
            return
        try:
            await self._submit(interaction, match["token"], submitted_values(interaction.data))
        except Exception as error:
            await report_error(interaction, error)

    async def _submit(self, interaction: discord.Interaction[Any], token: str, values: dict[str, str]) -> None:
        form = self._forms.get(token)
        if form is None or form[0] <= time.monotonic() or form[4] != interaction.user.id:
            raise InvalidRequest("This edit form has expired. Please press Edit again.")
        _, sources, credit, parent_id, _ = form
        count_text, seed_text = values.get("count", "1").strip() or "1", values.get("seed", "").strip()
        if not count_text.isdigit() or (seed_text and not seed_text.isdigit()):
            raise InvalidRequest("The number of images and the seed must be whole numbers.")
        request = self.editing.build_request(
            guild_id=interaction.guild_id,
            channel_id=interaction.channel_id,
            member_id=interaction.user.id,
            prompt=values.get("prompt", ""),
            sources=sources,
            negative_prompt=values.get("negative_prompt"),
            seed=int(seed_text) if seed_text else None,
            count=int(count_text),
            parent_id=parent_id,
            model=await self._model(interaction),
        )
        self._forms.pop(token, None)
        await edit_and_deliver(interaction, self.services, request, credit=credit)


async def setup(bot: QwenImagineBot) -> None:
    """Load the cog with the bot's services."""
    await bot.add_cog(EditCog(bot, bot.services))
