"""The aiohttp application: routing, bot-token auth, error answers and request bookkeeping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import rules
from .multipart import json_response
from .rest import RestRoutes
from .rules import DiscordError
from .webhooks import WebhookRoutes

if TYPE_CHECKING:
    from .fake import FakeDiscord

API_PREFIX = "/api/v10"
# Routes authorized by the interaction token in the URL, not by the bot token.
_TOKEN_ROUTES = (API_PREFIX + "/webhooks/", API_PREFIX + "/interactions/")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RuleViolation:
    """An error the fake answered to the bot."""

    method: str
    path: str
    status: int
    code: int
    message: str
    errors: dict[str, Any] | None
    interaction_id: int | None


def build_app(fake: FakeDiscord) -> web.Application:
    """Create the aiohttp app serving REST under /api/v10, the gateway and attachment downloads."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/gateway"):
            fake.requests.append((request.method, request.path, 101))
            return await handler(request)
        try:
            bot_route = request.path.startswith(API_PREFIX) and not request.path.startswith(_TOKEN_ROUTES)
            if bot_route and request.headers.get("Authorization") != f"Bot {fake.token}":
                raise rules.unauthorized()
            response = await handler(request)
        except DiscordError as err:
            fake.errors.append(
                RuleViolation(
                    request.method, request.path, err.status, err.code, err.message, err.errors, err.interaction_id
                )
            )
            response = json_response(err.body(), status=err.status)
        except web.HTTPException:
            raise
        except Exception as exc:
            # A bug in the fake must not look like a 5xx: discord.py would sleep and retry it.
            fake.internal_errors.append(exc)
            response = json_response({"code": 0, "message": f"fake discord internal error: {exc!r}"}, status=400)
        fake.requests.append((request.method, request.path, response.status))
        await fake.changed()
        return response

    async def unhandled(request: web.Request) -> web.Response:
        fake.unhandled_routes.append((request.method, request.path))
        return json_response(rules.not_found().body(), status=404)

    async def attachment(request: web.Request) -> web.Response:
        stored = fake.world.attachments.get(int(request.match_info["attachment_id"]))
        if stored is None or stored.filename != request.match_info["filename"]:
            return web.Response(status=404, text="Not Found")
        return web.Response(body=stored.data, headers={"Content-Type": stored.content_type or ""})

    app = web.Application(middlewares=[middleware], client_max_size=512 * 1024 * 1024)
    router = app.router
    router.add_get("/gateway/", fake.gateway.handle)
    router.add_get("/gateway", fake.gateway.handle)
    router.add_get("/attachments/{channel_id}/{attachment_id}/{filename}", attachment)
    WebhookRoutes(fake).register(router, API_PREFIX)
    RestRoutes(fake).register(router, API_PREFIX)
    router.add_route("*", "/{tail:.*}", unhandled)
    return app
