"""The replay server, exercised over real HTTP with httpx."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from advisories.sources import SOURCES
from replay import (
    NO_RESPONSE,
    FaultRule,
    ManifestError,
    ReplayServer,
    default_fixtures_root,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = default_fixtures_root()
US_FEED = FIXTURES / "us_state_dept" / "TAsTWs_2026-10-07.xml"
US = "us_state_dept"
UK = "uk_foreign_office"
CA = "canada_travel"
US_INDEX = "/_res/rss/TAsTWs.xml"
UK_INDEX = "/api/content/foreign-travel-advice"
CA_INDEX = "/travel-voyage/index-updated.json"


@pytest.fixture(scope="module")
def module_server() -> Iterator[ReplayServer]:
    with ReplayServer(FIXTURES) as server:
        yield server


@pytest.fixture
def server(module_server: ReplayServer) -> Iterator[ReplayServer]:
    module_server.reset()
    yield module_server
    module_server.reset()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=5) as http:
        yield http


def us_feed_url(server: ReplayServer) -> str:
    return server.url_for(US) + US_INDEX


# --- serving ---------------------------------------------------------------------


def test_serves_the_real_us_feed_byte_identical(server: ReplayServer, client: httpx.Client):
    response = client.get(us_feed_url(server))

    assert response.status_code == 200
    assert response.content == US_FEED.read_bytes()
    assert response.headers["content-length"] == "613847"
    assert response.headers["content-type"] == "application/xml"
    assert response.headers["etag"].startswith('"') and len(response.headers["etag"]) == 66
    assert response.headers["last-modified"] == formatdate(US_FEED.stat().st_mtime, usegmt=True)


def test_every_manifest_route_serves_its_file(server: ReplayServer, client: httpx.Client):
    routed = {(route.source, route.path): route.file for route in server.routes}
    assert (UK, UK_INDEX) in routed
    assert (UK, UK_INDEX + "/haiti") in routed
    assert (CA, CA_INDEX) in routed
    assert (CA, "/travel-voyage/cta-cap-mx.json") in routed
    assert routed[(CA, CA_INDEX)].name == "index_cta-cap_2015-11-30.json"
    # Every registered source's declared routes, and nothing else.
    assert len(routed) == sum(len(spec.replay_routes) for spec in SOURCES.values()) >= 14

    for (source, path), file in routed.items():
        response = client.get(server.url_for(source) + path)
        assert response.status_code == 200, path
        assert response.content == file.read_bytes(), path
    uk_index = client.get(server.url_for(UK) + UK_INDEX)
    assert uk_index.headers["content-type"] == "application/json"
    assert uk_index.json()["schema_name"] == "travel_advice_index"


def test_unknown_paths_are_404_with_a_short_text_body(server: ReplayServer, client: httpx.Client):
    for url in (
        server.url_for(US) + "/_res/rss/nope.xml",
        server.url_for("no_such_source") + US_INDEX,
        server.base_url + "/",
        # Percent-encoded so httpx does not collapse it: must not resolve to the feed.
        server.url_for(US) + "/%2E%2E/us_state_dept" + US_INDEX,
    ):
        response = client.get(url)
        assert response.status_code == 404, url
        assert response.headers["content-type"].startswith("text/plain")
        assert response.text.startswith("not found: ")
        assert len(response.content) < 200


def test_head_sends_headers_without_body(server: ReplayServer, client: httpx.Client):
    response = client.head(us_feed_url(server))

    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["content-length"] == "613847"
    assert response.headers["etag"] == client.get(us_feed_url(server)).headers["etag"]


def test_if_none_match_with_the_etag_gives_304(server: ReplayServer, client: httpx.Client):
    etag = client.get(us_feed_url(server)).headers["etag"]

    not_modified = client.get(us_feed_url(server), headers={"If-None-Match": etag})
    listed = client.get(us_feed_url(server), headers={"If-None-Match": f'"other", W/{etag}'})
    stale = client.get(us_feed_url(server), headers={"If-None-Match": '"stale"'})

    assert not_modified.status_code == 304
    assert not_modified.content == b""
    assert not_modified.headers["etag"] == etag
    assert listed.status_code == 304
    assert stale.status_code == 200
    assert len(stale.content) == 613847


def test_if_modified_since_gives_304(server: ReplayServer, client: httpx.Client):
    last_modified = client.get(us_feed_url(server)).headers["last-modified"]
    earlier = formatdate(US_FEED.stat().st_mtime - 3600, usegmt=True)

    same = client.get(us_feed_url(server), headers={"If-Modified-Since": last_modified})
    older = client.get(us_feed_url(server), headers={"If-Modified-Since": earlier})
    # If-None-Match decides when both are sent.
    both = client.get(
        us_feed_url(server),
        headers={"If-Modified-Since": last_modified, "If-None-Match": '"stale"'},
    )

    assert same.status_code == 304
    assert same.content == b""
    assert older.status_code == 200
    assert both.status_code == 200


def test_put_changes_body_etag_and_last_modified(server: ReplayServer, client: httpx.Client):
    before = client.get(us_feed_url(server))
    body = b"<?xml version='1.0'?><rss version='2.0'><channel/></rss>"

    document = server.put(US, US_INDEX, body)
    after = client.get(us_feed_url(server))
    revalidated = client.get(us_feed_url(server), headers={"If-None-Match": before.headers["etag"]})
    since_old = client.get(
        us_feed_url(server), headers={"If-Modified-Since": before.headers["last-modified"]}
    )

    assert after.content == body
    assert after.headers["etag"] == document.etag != before.headers["etag"]
    assert after.headers["content-type"] == "application/xml"
    assert after.headers["last-modified"] != before.headers["last-modified"]
    assert revalidated.status_code == 200
    assert since_old.status_code == 200

    server.clear_overrides()
    assert client.get(us_feed_url(server)).content == US_FEED.read_bytes()


def test_put_adds_new_paths_and_delete_hides_them(server: ReplayServer, client: httpx.Client):
    url = server.url_for(UK) + UK_INDEX + "/atlantis"
    assert client.get(url).status_code == 404

    server.put(UK, UK_INDEX + "/atlantis", '{"title": "Atlantis"}', content_type="application/json")
    added = client.get(url)
    server.delete(UK, UK_INDEX + "/haiti")

    assert added.status_code == 200
    assert added.json() == {"title": "Atlantis"}
    assert added.headers["content-type"] == "application/json"
    assert client.get(server.url_for(UK) + UK_INDEX + "/haiti").status_code == 404
    with pytest.raises(ValueError):
        server.put(UK, "no-leading-slash", b"x")


# --- stats -------------------------------------------------------------------------


def test_stats_count_requests_per_source_path_and_status(
    server: ReplayServer, client: httpx.Client
):
    etag = client.get(us_feed_url(server)).headers["etag"]
    client.get(us_feed_url(server))
    client.get(us_feed_url(server), headers={"If-None-Match": etag})
    client.get(server.url_for(UK) + UK_INDEX + "/nowhere")
    client.get(server.base_url + "/_replay/faults")  # control requests are not counted

    stats = server.stats()
    assert stats.total == 4
    assert stats.count(source=US, path=US_INDEX, status=200) == 2
    assert stats.count(source=US, status=304) == 1
    assert stats.count(source=UK, path=UK_INDEX + "/nowhere", status=404) == 1
    assert stats.count(source=CA) == 0

    over_http = client.get(server.base_url + "/_replay/stats").json()
    assert over_http["total"] == 4
    assert {"source": US, "path": US_INDEX, "status": 200, "count": 2} in over_http["requests"]

    assert client.delete(server.base_url + "/_replay/stats").json()["total"] == 0
    assert server.stats().total == 0
    client.get(us_feed_url(server))
    server.reset_stats()
    assert server.stats().total == 0


# --- faults ------------------------------------------------------------------------


def test_status_fault_with_retry_after(server: ReplayServer, client: httpx.Client):
    server.set_faults(FaultRule(kind="status", status=429, retry_after=7))

    response = client.get(us_feed_url(server))

    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    assert response.text == "injected fault: status 429\n"
    assert server.stats().count(source=US, status=429) == 1
    assert server.stats().faults == {"status": 1}

    server.clear_faults()
    assert client.get(us_feed_url(server)).status_code == 200


def test_status_fault_defaults_to_503_without_retry_after(
    server: ReplayServer, client: httpx.Client
):
    server.set_faults(FaultRule(kind="status"))

    response = client.get(us_feed_url(server))

    assert response.status_code == 503
    assert "retry-after" not in response.headers


def test_latency_fault_delays_every_matching_request(server: ReplayServer, client: httpx.Client):
    client.get(us_feed_url(server))  # connect first so only the added delay is measured
    server.set_faults(FaultRule(latency_ms=150))

    durations = []
    for _ in range(3):
        started = time.perf_counter()
        response = client.get(us_feed_url(server))
        durations.append(time.perf_counter() - started)
        assert response.status_code == 200

    assert min(durations) >= 0.15


def test_timeout_fault_hangs_without_blocking_others(server: ReplayServer, client: httpx.Client):
    server.set_faults(FaultRule(source=UK, kind="timeout", hang_seconds=2))
    hung: list[BaseException] = []

    def fetch_hanging() -> None:
        with httpx.Client(timeout=httpx.Timeout(5, read=1.0)) as slow:
            try:
                slow.get(server.url_for(UK) + UK_INDEX)
            except httpx.HTTPError as exc:
                hung.append(exc)

    thread = threading.Thread(target=fetch_hanging)
    thread.start()
    time.sleep(0.1)
    started = time.perf_counter()
    other = client.get(us_feed_url(server))
    elapsed = time.perf_counter() - started
    thread.join(timeout=5)

    assert other.status_code == 200
    assert elapsed < 0.5
    assert len(hung) == 1
    assert isinstance(hung[0], httpx.ReadTimeout)
    assert server.stats().count(source=UK, status=NO_RESPONSE) == 1


def test_truncate_fault_breaks_the_body(server: ReplayServer, client: httpx.Client):
    server.set_faults(FaultRule(kind="truncate"))

    with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
        client.get(us_feed_url(server))
    assert server.stats().faults == {"truncate": 1}


def test_garbage_fault_sends_random_bytes(server: ReplayServer, client: httpx.Client):
    original = US_FEED.read_bytes()
    server.set_faults(FaultRule(kind="garbage", seed=3))

    first = client.get(us_feed_url(server))
    second = client.get(us_feed_url(server))

    assert first.status_code == 200
    assert len(first.content) == len(original)
    assert first.content != original
    assert first.content[:5] != b"<?xml"
    assert second.content != first.content
    assert server.stats().faults == {"garbage": 2}


def test_rate_affects_about_half_and_repeats_with_the_seed(
    server: ReplayServer, client: httpx.Client
):
    def run() -> list[int]:
        server.set_faults(FaultRule(kind="status", status=500, rate=0.5, seed=42))
        return [client.get(server.url_for(CA) + CA_INDEX).status_code for _ in range(100)]

    first = run()
    second = run()

    failures = first.count(500)
    assert 35 <= failures <= 65
    assert first.count(200) == 100 - failures
    assert first == second


def test_source_and_path_filters_only_hit_matching_requests(
    server: ReplayServer, client: httpx.Client
):
    server.set_faults(
        FaultRule(source=US, kind="status", status=500),
        FaultRule(source=UK, path_prefix=UK_INDEX + "/", kind="status", status=502),
    )

    assert client.get(us_feed_url(server)).status_code == 500
    assert client.get(server.url_for(UK) + UK_INDEX).status_code == 200
    assert client.get(server.url_for(UK) + UK_INDEX + "/haiti").status_code == 502
    assert client.get(server.url_for(CA) + CA_INDEX).status_code == 200


def test_fault_rules_are_validated():
    with pytest.raises(ValueError, match="a kind or a latency_ms"):
        FaultRule()
    with pytest.raises(ValueError, match="hang_seconds"):
        FaultRule(kind="status", hang_seconds=1)
    with pytest.raises(ValueError):
        FaultRule(kind="status", rate=1.5)


def test_http_control_api_round_trip(server: ReplayServer, client: httpx.Client):
    faults_url = server.base_url + "/_replay/faults"
    config = {"rules": [{"source": US, "kind": "status", "status": 503, "retry_after": 2}]}

    posted = client.post(faults_url, json=config)
    read_back = client.get(faults_url).json()
    failing = client.get(us_feed_url(server))
    healed = client.delete(faults_url)

    assert posted.status_code == 200
    assert read_back["rules"][0]["source"] == US
    assert read_back["rules"][0]["status"] == 503
    assert read_back["rules"][0]["rate"] == 1.0
    assert failing.status_code == 503
    assert failing.headers["retry-after"] == "2"
    assert healed.json() == {"rules": []}
    assert client.get(faults_url).json() == {"rules": []}
    assert client.get(us_feed_url(server)).status_code == 200


def test_http_control_api_rejects_bad_input_with_400(server: ReplayServer, client: httpx.Client):
    faults_url = server.base_url + "/_replay/faults"

    not_json = client.post(faults_url, content=b"{rules: nope", headers={"Content-Type": "x"})
    bad_rate = client.post(faults_url, json={"rules": [{"kind": "status", "rate": 2}]})
    bad_kind = client.post(faults_url, json={"rules": [{"kind": "explode"}]})
    typo = client.post(faults_url, json={"rules": [{"kind": "timeout", "hang_secs": 1}]})

    assert not_json.status_code == 400
    assert not_json.json()["error"].startswith("invalid JSON")
    assert bad_rate.status_code == 400
    assert "rules.0.rate" in bad_rate.json()["error"]
    assert bad_kind.status_code == 400
    assert "rules.0.kind" in bad_kind.json()["error"]
    assert typo.status_code == 400
    assert "hang_secs" in typo.json()["error"]
    assert server.faults.rules == []
    assert client.put(faults_url, json={}).status_code == 405


# --- serving model -----------------------------------------------------------------


async def test_concurrent_requests_are_served_in_parallel(server: ReplayServer):
    server.set_faults(FaultRule(latency_ms=300))
    limits = httpx.Limits(max_connections=30)
    async with httpx.AsyncClient(timeout=5, limits=limits) as http:
        started = time.perf_counter()
        responses = await asyncio.gather(
            *(http.get(server.url_for(UK) + UK_INDEX + "/haiti") for _ in range(30))
        )
        elapsed = time.perf_counter() - started

    assert [r.status_code for r in responses] == [200] * 30
    # Served one after another this would take 9 s.
    assert elapsed < 1.5


# --- catalogue sources -------------------------------------------------------------


def test_directory_mode_serves_root_source_path(tmp_path: Path):
    catalogue = tmp_path / "catalogue"
    (catalogue / UK / "api/content/foreign-travel-advice").mkdir(parents=True)
    (catalogue / UK / "api/content/foreign-travel-advice.json").write_text('{"index": true}')
    (catalogue / UK / "api/content/foreign-travel-advice/spain.json").write_text('{"s": 1}')
    (catalogue / CA / "travel-voyage").mkdir(parents=True)
    (catalogue / CA / "travel-voyage/cta-cap-es.json").write_text('{"es": 1}')
    (catalogue / US / "_res/rss").mkdir(parents=True)
    (catalogue / US / "_res/rss/TAsTWs.xml").write_text("<rss>synthetic</rss>")
    (tmp_path / "secret.txt").write_text("outside")

    with (
        ReplayServer(FIXTURES, directory=catalogue) as mixed,
        ReplayServer(manifest=None, directory=catalogue) as plain,
        httpx.Client(timeout=5) as client,
    ):
        index = client.get(mixed.url_for(UK) + UK_INDEX)
        spain = client.get(mixed.url_for(UK) + UK_INDEX + "/spain")
        spain_again = client.get(
            mixed.url_for(UK) + UK_INDEX + "/spain",
            headers={"If-None-Match": spain.headers["etag"]},
        )
        canada = client.get(mixed.url_for(CA) + "/travel-voyage/cta-cap-es.json")
        us_mixed = client.get(mixed.url_for(US) + US_INDEX)
        us_plain = client.get(plain.url_for(US) + US_INDEX)
        escape = client.get(plain.url_for(US) + "/%2E%2E/%2E%2E/secret.txt")

    # The manifest's UK index wins over the directory's.
    assert index.json()["schema_name"] == "travel_advice_index"
    assert spain.json() == {"s": 1}
    assert spain.headers["content-type"] == "application/json"
    assert spain_again.status_code == 304
    assert canada.json() == {"es": 1}
    assert us_mixed.content == US_FEED.read_bytes()
    assert us_plain.text == "<rss>synthetic</rss>"
    assert us_plain.headers["content-type"] == "application/xml"
    assert escape.status_code == 404


def test_manifest_content_type_and_missing_files(tmp_path: Path):
    (tmp_path / "feeds").mkdir()
    (tmp_path / "feeds/feed.xml").write_bytes(b"<rss/>")
    manifest = tmp_path / "routes.toml"
    manifest.write_text(
        '[[routes]]\nsource = "us_state_dept"\npath = "/feed"\nfile = "feeds/feed.xml"\n'
        'content_type = "application/rss+xml"\n'
    )
    with ReplayServer(tmp_path, manifest=manifest) as server:
        response = httpx.get(server.url_for(US) + "/feed", timeout=5)
    assert response.headers["content-type"] == "application/rss+xml"
    assert response.content == b"<rss/>"

    manifest.write_text('[[routes]]\nsource = "us_state_dept"\npath = "/x"\nfile = "gone.xml"\n')
    with pytest.raises(ManifestError, match=r"gone\.xml"):
        ReplayServer(tmp_path, manifest=manifest)
    manifest.write_text('[[routes]]\nsource = "US"\npath = "x"\nfile = "feeds/feed.xml"\n')
    with pytest.raises(ManifestError, match=r"routes\.0\.source"):
        ReplayServer(tmp_path, manifest=manifest)


def test_only_loopback_hosts_are_accepted():
    with pytest.raises(ValueError, match="loopback"):
        ReplayServer(FIXTURES, host="0.0.0.0")


# --- CLI -----------------------------------------------------------------------------


def _run_cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "replay", *args],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_cli_serves_and_stops_on_sigterm():
    process = _run_cli("--port", "0", "--latency-ms", "1")
    try:
        assert process.stdout is not None
        ready, _, _ = select.select([process.stdout], [], [], 10)
        assert ready, "the CLI printed no base URL within 10 s"
        base_url = process.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:")

        response = httpx.get(base_url + "/" + US + US_INDEX, timeout=5)
        assert response.status_code == 200
        assert response.content == US_FEED.read_bytes()

        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == 0
    assert f"GET /{US}{US_INDEX} 200 613847B" in stderr


def test_cli_exits_2_without_fixtures_dir(tmp_path: Path):
    process = _run_cli("--port", "0", "--fixtures", str(tmp_path / "missing"))
    stdout, stderr = process.communicate(timeout=10)

    assert process.returncode == 2
    assert stdout == ""
    assert stderr.strip() == f"replay: fixtures directory {tmp_path / 'missing'} does not exist"
