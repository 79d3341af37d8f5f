"""The image API client against the fake Qwen-Image server: requests, parsing, retries, errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
from yarl import URL

from bot.download import HostPolicy, ImageDownloader, read_png_header
from bot.errors import (
    ContentRejected,
    ImageFetchFailed,
    ImageTooLarge,
    IpInfringementSuspected,
    OutcomeUnknown,
    ServiceBusy,
    ServiceFailed,
    ServiceMisconfigured,
)
from bot.qwen import GenerationParams, QwenImageClient, RetryPolicy
from bot.qwen.responses import parse_retry_after
from bot.settings import Secret
from tests.fakes.qwen import FakeQwen, make_png

PARAMS = GenerationParams(
    model="qwen-image-plus",
    prompt="a lighthouse at dusk",
    size="1664*928",
    seed=42,
    prompt_extend=False,
    negative_prompt="blurry",
)


class Sleeps:
    """Records the delays the client asks for instead of waiting them out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


@pytest.fixture
async def qwen() -> AsyncIterator[FakeQwen]:
    async with FakeQwen() as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def client(
    session: aiohttp.ClientSession, qwen: FakeQwen, sleeps: Sleeps, key: str | None = None, retries: int = 3
) -> QwenImageClient:
    return QwenImageClient(
        session,
        base_url=qwen.base_url,
        api_key=Secret(key or qwen.api_key),
        retry=RetryPolicy(max_retries=retries),
        sleep=sleeps,
    )


async def test_request_body_and_headers_follow_the_contract(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    image = await client(session, qwen, Sleeps()).generate(PARAMS)
    [request] = qwen.generation_requests
    assert request.headers["Authorization"] == f"Bearer {qwen.api_key}"
    assert request.headers["Content-Type"].startswith("application/json")
    assert request.body == {
        "model": "qwen-image-plus",
        "input": {"messages": [{"role": "user", "content": [{"text": "a lighthouse at dusk"}]}]},
        "parameters": {
            "size": "1664*928",
            "seed": 42,
            "prompt_extend": False,
            "watermark": False,
            "negative_prompt": "blurry",
        },
    }
    assert (image.width, image.height) == (1664, 928)
    assert image.request_id and image.request_id.startswith("req-")
    assert image.url.startswith(f"http://127.0.0.1:{qwen.port}/oss/")


@pytest.mark.parametrize(
    ("status", "code", "message", "error_type"),
    [
        (400, "DataInspectionFailed", "Input data may contain inappropriate content.", ContentRejected),
        (
            400,
            "InternalError.Algo.DataInspectionFailed",
            "Output data may contain inappropriate content.",
            ContentRejected,
        ),
        (
            400,
            "IPInfringementSuspect",
            "Input data is suspected of being involved in IP infringement.",
            IpInfringementSuspected,
        ),
        (400, "InvalidParameter", "num_images_per_prompt must be 1", ServiceMisconfigured),
        (400, "Arrearage", "Access denied, please make sure your account is in good standing.", ServiceMisconfigured),
        (401, "InvalidApiKey", "Invalid API-key provided.", ServiceMisconfigured),
        (403, "AccessDenied.Unpurchased", "Access to model denied.", ServiceMisconfigured),
        (403, "AllocationQuota.FreeTierOnly", "The free tier of the model has been exhausted.", ServiceMisconfigured),
        (404, "ModelNotFound", "Model not exist.", ServiceMisconfigured),
        (429, "Throttling.AllocationQuota", "Free allocated quota exceeded.", ServiceMisconfigured),
        (429, "PrepaidBillOverdue", "The prepaid bill is overdue.", ServiceMisconfigured),
    ],
)
async def test_permanent_failures_are_not_retried(
    session: aiohttp.ClientSession, qwen: FakeQwen, status: int, code: str, message: str, error_type: type[Exception]
) -> None:
    qwen.fail_next(status, code, message, times=5)
    sleeps = Sleeps()
    with pytest.raises(error_type) as caught:
        await client(session, qwen, sleeps).generate(PARAMS)
    assert len(qwen.generation_requests) == 1
    assert sleeps.delays == []
    assert caught.value.code == code  # type: ignore[attr-defined]
    assert caught.value.request_id.startswith("req-injected")  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "code", "error_type"),
    [
        (429, "Throttling.RateQuota", ServiceBusy),
        (429, "Throttling.AllocationQuota", ServiceBusy),
        (500, "InternalError", ServiceFailed),
        (500, "ModelServiceFailed", ServiceFailed),
        (503, "ModelUnavailable", ServiceFailed),
    ],
)
async def test_retryable_failures_are_retried_a_bounded_number_of_times(
    session: aiohttp.ClientSession, qwen: FakeQwen, status: int, code: str, error_type: type[Exception]
) -> None:
    qwen.fail_next(status, code, "Allocated quota exceeded, please try later.", times=10)
    sleeps = Sleeps()
    with pytest.raises(error_type):
        await client(session, qwen, sleeps, retries=3).generate(PARAMS)
    assert len(qwen.generation_requests) == 4
    assert len(sleeps.delays) == 3
    # Exponential backoff with jitter: each ceiling doubles, each delay sits in [ceiling/2, ceiling].
    for attempt, delay in enumerate(sleeps.delays):
        assert 2**attempt / 2 <= delay <= 2**attempt


async def test_throttled_then_successful(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    qwen.fail_next(429, "Throttling.RateQuota", "Requests rate limit exceeded", times=2, headers={"Retry-After": "7"})
    sleeps = Sleeps()
    image = await client(session, qwen, sleeps).generate(PARAMS)
    assert image.attempts == 3
    assert [r.answered for r in qwen.generation_requests] == [429, 429, 200]
    # Retry-After is honoured (plus at most 10% jitter).
    assert all(7 <= d <= 7.7 for d in sleeps.delays) and len(sleeps.delays) == 2


async def test_account_concurrency_limit_answers_429(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    qwen.hold()
    api = QwenImageClient(
        session, base_url=qwen.base_url, api_key=Secret(qwen.api_key), retry=RetryPolicy(max_retries=0)
    )
    tasks = [asyncio.create_task(api.generate(PARAMS)) for _ in range(3)]
    await qwen.wait_for(lambda: qwen.throttled == 1)
    qwen.release()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    assert sum(isinstance(r, ServiceBusy) for r in results) == 1
    assert qwen.max_in_flight == 2


async def test_success_status_with_code_is_a_failure(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    qwen.answer_next(200, {"request_id": "r1", "code": "DataInspectionFailed", "message": "Output data may ..."})
    with pytest.raises(ContentRejected):
        await client(session, qwen, Sleeps()).generate(PARAMS)


async def test_empty_code_on_success_is_not_a_failure(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    # The SDK-style sample answers "code": "" next to a real result.
    url = qwen.oss_url("x.png")
    qwen.answer_next(
        200,
        {
            "status_code": 200,
            "request_id": "r2",
            "code": "",
            "message": "",
            "output": {"choices": [{"message": {"content": [{"image": url}]}}]},
        },
    )
    image = await client(session, qwen, Sleeps()).generate(PARAMS)
    assert image.url == url and image.request_id == "r2"


@pytest.mark.parametrize(
    "body",
    [
        {"request_id": "r3", "output": {"choices": []}},
        {"request_id": "r3", "output": {}},
        {
            "request_id": "r3",
            "output": {
                "choices": [{"message": {"content": [{"text": "no"}]}}],
                "task_metric": {"TOTAL": 1, "FAILED": 0, "SUCCEEDED": 1},
            },
        },
        {
            "request_id": "r3",
            "output": {
                "choices": [{"message": {"content": [{"image": "https://x/y.png"}]}}],
                "task_metric": {"TOTAL": 1, "FAILED": 1, "SUCCEEDED": 0},
            },
        },
    ],
)
async def test_success_status_without_image_is_a_failure(
    session: aiohttp.ClientSession, qwen: FakeQwen, body: dict[str, object]
) -> None:
    qwen.answer_next(200, body)
    with pytest.raises(ServiceFailed) as caught:
        await client(session, qwen, Sleeps()).generate(PARAMS)
    assert caught.value.code == "NoImage" and caught.value.request_id == "r3"
    assert len(qwen.generation_requests) == 1


async def test_non_json_error_page_keeps_its_text(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    qwen.fail_next(403, raw="<html><body>403 Forbidden</body></html>", times=10)
    with pytest.raises(ServiceMisconfigured) as caught:
        await client(session, qwen, Sleeps(), retries=1).generate(PARAMS)
    assert caught.value.code == "HTTP403"
    assert "403 Forbidden" in caught.value.api_message
    assert len(qwen.generation_requests) == 1


async def test_a_proxy_error_page_instead_of_the_services_answer_is_not_paid_for_twice(
    session: aiohttp.ClientSession, qwen: FakeQwen
) -> None:
    # A gateway's 502/504 page doesn't say whether the service got the request (and made the image).
    qwen.fail_next(504, raw="<html><body>504 Gateway Time-out</body></html>", times=10)
    sleeps = Sleeps()
    with pytest.raises(OutcomeUnknown) as caught:
        await client(session, qwen, sleeps).generate(PARAMS)
    assert caught.value.code == "OutcomeUnknown" and caught.value.status == 504
    assert "504 Gateway Time-out" in caught.value.api_message
    assert len(qwen.generation_requests) == 1 and sleeps.delays == []


async def test_a_connection_lost_after_the_request_was_sent_is_not_retried(
    session: aiohttp.ClientSession, qwen: FakeQwen
) -> None:
    qwen.drop_next()
    sleeps = Sleeps()
    with pytest.raises(OutcomeUnknown) as caught:
        await client(session, qwen, sleeps).generate(PARAMS)
    assert "may have been made and billed" in caught.value.user_message
    assert len(qwen.generation_requests) == 1  # the body reached the service, once
    assert sleeps.delays == []


async def test_a_read_timeout_is_not_retried(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    qwen.hold()
    sleeps = Sleeps()
    api = QwenImageClient(session, base_url=qwen.base_url, api_key=Secret(qwen.api_key), timeout=0.5, sleep=sleeps)
    with pytest.raises(OutcomeUnknown):
        await api.generate(PARAMS)
    assert len(qwen.generation_requests) == 1 and sleeps.delays == []


async def test_a_task_creation_cut_off_is_not_retried_but_a_lost_poll_is(
    session: aiohttp.ClientSession, qwen: FakeQwen
) -> None:
    sleeps = Sleeps()
    api = client(session, qwen, sleeps)
    qwen.drop_next()
    with pytest.raises(OutcomeUnknown):
        await api.submit_task(PARAMS)
    assert len(qwen.task_creations) == 1
    task_id = await api.submit_task(PARAMS)

    async def refuse_once(delay: float) -> None:
        sleeps.delays.append(delay)
        await qwen.accept_connections()

    # Polling asks for nothing new, so any lost exchange is simply asked again.
    api = QwenImageClient(
        session, base_url=qwen.base_url, api_key=Secret(qwen.api_key), sleep=refuse_once, poll_interval=0
    )
    await qwen.refuse_connections()
    image = await api.wait_for_task(task_id)
    assert image.url.startswith(f"http://127.0.0.1:{qwen.port}/oss/")
    assert len(qwen.task_creations) == 2


async def test_a_refused_connection_is_retried_because_nothing_was_sent(
    session: aiohttp.ClientSession, qwen: FakeQwen
) -> None:
    delays: list[float] = []

    async def come_back(delay: float) -> None:
        delays.append(delay)
        await qwen.accept_connections()

    api = QwenImageClient(session, base_url=qwen.base_url, api_key=Secret(qwen.api_key), sleep=come_back)
    await qwen.refuse_connections()
    image = await api.generate(PARAMS)
    assert image.attempts == 2 and len(delays) == 1
    assert len(qwen.generation_requests) == 1  # the refused attempt never reached the service


async def test_wrong_key_is_reported_as_misconfiguration(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    with pytest.raises(ServiceMisconfigured) as caught:
        await client(session, qwen, Sleeps(), key="sk-wrong").generate(PARAMS)
    assert caught.value.code == "InvalidApiKey"
    assert "sk-wrong" not in str(caught.value)


async def test_unreachable_api_is_retried_then_fails(session: aiohttp.ClientSession) -> None:
    sleeps = Sleeps()
    api = QwenImageClient(
        session,
        base_url="http://127.0.0.1:9/api/v1",
        api_key=Secret("k"),
        retry=RetryPolicy(max_retries=2),
        sleep=sleeps,
    )
    with pytest.raises(ServiceFailed) as caught:
        await api.generate(PARAMS)
    assert caught.value.code == "NetworkError"
    assert len(sleeps.delays) == 2


def test_retry_after_accepts_seconds_and_dates() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("-1") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=lambda: 1445412480.0) == 10.0


# downloads ---------------------------------------------------------------------------------------


def downloader(session: aiohttp.ClientSession, *hosts: str) -> ImageDownloader:
    return ImageDownloader(session, HostPolicy(hosts or ("127.0.0.1",)))


async def test_downloads_a_png_and_reads_its_size(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    qwen.add_file("ok.png", make_png(64, 32), "image/png")
    image = await downloader(session).fetch_png(qwen.oss_url("ok.png"), 10 * 1024 * 1024)
    assert (image.width, image.height) == (64, 32)


async def test_html_instead_of_png_is_refused(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    qwen.add_file("page.png", b"<html>expired</html>", "text/html")
    with pytest.raises(ImageFetchFailed, match="signature"):
        await downloader(session).fetch_png(qwen.oss_url("page.png"), 10 * 1024 * 1024)


async def test_image_over_the_cap_is_refused(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    qwen.add_file("big.png", make_png(64, 32) + b"\0" * 5000, "image/png")
    with pytest.raises(ImageTooLarge):
        await downloader(session).fetch_png(qwen.oss_url("big.png"), 4096)


@pytest.mark.parametrize(
    ("url", "hosts"),
    [
        ("http://127.0.0.2:{port}/oss/ok.png", ("127.0.0.1",)),  # host not listed
        ("http://example.aliyuncs.com/oss/ok.png", ("*.aliyuncs.com",)),  # http to a public host
        ("ftp://127.0.0.1:{port}/oss/ok.png", ("127.0.0.1",)),
        ("https://aliyuncs.com.evil.example/x.png", ("*.aliyuncs.com",)),
        ("https://user:pw@a.aliyuncs.com/x.png", ("*.aliyuncs.com",)),
    ],
)
async def test_hosts_outside_the_policy_are_refused(
    session: aiohttp.ClientSession, qwen: FakeQwen, url: str, hosts: tuple[str, ...]
) -> None:
    qwen.add_file("ok.png", make_png(8, 8), "image/png")
    with pytest.raises(ImageFetchFailed, match="host not allowed"):
        await downloader(session, *hosts).fetch_png(url.format(port=qwen.port), 10 * 1024 * 1024)
    assert not any(r.path.startswith("/oss") for r in qwen.requests)


def test_host_policy_accepts_the_vendor_hosts() -> None:
    policy = HostPolicy(("*.aliyuncs.com",))
    assert policy.allows(URL("https://dashscope-result-sz.oss-cn-shenzhen.aliyuncs.com/x.png?Expires=1"))
    assert policy.allows(URL("https://dashscope-result-wlcb-acdr-1.oss-cn-wulanchabu-acdr-1.aliyuncs.com/a.png"))
    assert not policy.allows(URL("http://dashscope-result-sz.oss-cn-shenzhen.aliyuncs.com/x.png"))


def test_png_header_checks() -> None:
    good = make_png(3, 5)
    assert read_png_header(good) == (3, 5)
    with pytest.raises(ImageFetchFailed):
        read_png_header(good[:20])
    corrupted = bytearray(good)
    corrupted[20] ^= 0xFF
    with pytest.raises(ImageFetchFailed, match="IHDR"):
        read_png_header(bytes(corrupted))


async def test_an_expired_task_is_a_failure(session: aiohttp.ClientSession, qwen: FakeQwen) -> None:
    with pytest.raises(ServiceFailed) as caught:
        await client(session, qwen, Sleeps()).wait_for_task("no-such-task")
    assert caught.value.code == "TaskUnknown"


async def test_creating_a_task_without_the_async_header_is_refused_by_the_api(qwen: FakeQwen) -> None:
    # The contract the client relies on: the fake, like the API, wants X-DashScope-Async.
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            qwen.base_url + "/services/aigc/text2image/image-synthesis",
            json={"model": "qwen-image-plus", "input": {"prompt": "x"}},
            headers={"Authorization": f"Bearer {qwen.api_key}"},
        ) as response,
    ):
        body = await response.json()
    assert (response.status, body["code"]) == (403, "AccessDenied")
