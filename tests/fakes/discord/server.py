"""The aiohttp application: routing, bot-token auth, error answers and request bookkeeping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from . import openapi, rules
from .multipart import forget_body, json_response, read_document
from .rest import RestRoutes
from .rules import DiscordError
from .webhooks import WebhookRoutes

if TYPE_CHECKING:
    from .fake import FakeDiscord
    from .interactions import FakeInteraction

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


def _interaction_of(fake: FakeDiscord, request: web.Request) -> FakeInteraction | None:
    """The interaction an interaction-token route names, if the fake knows it."""
    info = request.match_info
    if "interaction_id" in info and info["interaction_id"].isdigit():
        return fake.interactions.get(int(info["interaction_id"]))
    return fake.interaction_by_token(info["token"]) if "token" in info else None


def _template(request: web.Request) -> str | None:
    """The fake's route template under /api/v10 (None for the catch-all)."""
    resource = request.match_info.route.resource
    canonical = resource.canonical if resource is not None else ""
    return canonical[len(API_PREFIX) :] if canonical.startswith(API_PREFIX) else None


async def _check_against_spec(request: web.Request) -> None:
    """Discord's OpenAPI description must know the route and method and accept the JSON body."""
    document, _ = await read_document(request)
    try:
        openapi.referee().check(request.method, request.path[len(API_PREFIX) :], request.content_type, document)
    except DiscordError as err:
        err.against_spec = True
        raise


def _rate_limit(fake: FakeDiscord, request: web.Request, *, bot_route: bool) -> web.Response | dict[str, str]:
    template = _template(request)
    if fake.rate_limiter is None or template is None:
        return {}
    ix = _interaction_of(fake, request)
    channel = request.match_info.get("channel_id") or (ix.channel.id if ix else request.match_info.get("token"))
    return fake.rate_limiter.admit(request, template, channel, bot_token=bot_route)


async def _handle(
    fake: FakeDiscord, request: web.Request, handler: Handler
) -> tuple[web.StreamResponse, dict[str, str]]:
    """Authorization, rate limits and the OpenAPI check, then the route's handler; with the headers to add."""
    api = request.path.startswith(API_PREFIX)
    bot_route = api and not request.path.startswith(_TOKEN_ROUTES)
    if bot_route and request.headers.get("Authorization") != f"Bot {fake.token}":
        raise rules.unauthorized()
    limited = _rate_limit(fake, request, bot_route=bot_route) if api else {}
    if isinstance(limited, web.Response):
        return limited, {}
    if api and fake.check_spec:
        await _check_against_spec(request)
    if request.content_type == "multipart/form-data":
        await fake.pass_upload_gate()
    return await handler(request), limited


def _refuse(fake: FakeDiscord, request: web.Request, err: DiscordError) -> web.Response:
    """Record the error (a spec violation also on its own list and its interaction) and answer it."""
    violation = RuleViolation(
        request.method, request.path, err.status, err.code, err.message, err.errors, err.interaction_id
    )
    if err.against_spec:
        ix = _interaction_of(fake, request)
        if ix is not None:
            ix.errors.append((err.status, err.code, err.message))
            violation.interaction_id = ix.id
        fake.spec_violations.append(violation)
    fake.errors.append(violation)
    return json_response(err.body(), status=err.status)


def build_app(fake: FakeDiscord) -> web.Application:
    """Create the aiohttp app serving REST under /api/v10, the gateway and attachment downloads."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/gateway"):
            fake.requests.append((request.method, request.path, 101))
            return await handler(request)
        headers: dict[str, str] = {}
        try:
            response, headers = await _handle(fake, request, handler)
        except DiscordError as err:
            response = _refuse(fake, request, err)
        except web.HTTPException:
            raise
        except Exception as exc:
            # A bug in the fake must not look like a 5xx: discord.py would sleep and retry it.
            fake.internal_errors.append(exc)
            response = json_response({"code": 0, "message": f"fake discord internal error: {exc!r}"}, status=400)
        finally:
            forget_body(request)
        response.headers.update(headers)
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
