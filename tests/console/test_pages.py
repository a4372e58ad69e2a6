"""The read-only pages against a real registry (SQLite and PostgreSQL), through Starlette's test client."""

from __future__ import annotations

from tests.console.conftest import ensure_debian, make_bundle, registry


def test_models_page_lists_released_status_consumers_and_gate(client) -> None:
    r = client.get("/")
    assert r.status_code == 200
    html = r.text
    assert 'href="/models/churn/1">v1</a>' in html
    assert "web" in html and "not gated" not in html.split("bad")[1].split("</tr>")[0]
    bad_row = html.split('href="/models/bad"')[1].split("</tr>")[0]
    assert "gated_failed" in bad_row and "failed" in bad_row
    assert "Content-Security-Policy" in r.headers and "traceback" not in html.lower()
    # search box: label + filtered rows
    assert '<label for="q">' in html
    only = client.get("/?q=scor").text
    assert "/models/scorer" in only and '/models/churn"' not in only


def test_version_page_card_gate_diff_and_image(client) -> None:
    html = client.get("/models/churn/2").text
    assert "Gate report" in html and 'id="gate-table"' in html and "quality" in html
    assert "Compared with the released churn:1" in html
    assert "Splits" in html and "Hyperparameters and search" in html and "Runtime and cost" in html
    assert 'alt="Reliability diagram of churn:2' in html
    img = client.get("/models/churn/2/files/reliability.png")
    assert img.status_code == 200 and img.headers["content-type"] == "image/png"
    assert img.content.startswith(b"\x89PNG")


def test_images_only_from_the_manifest_and_unchanged(client, world) -> None:
    for bad in ["..%2Fcard.json", "card.json", "model.onnx", "nothere.png", "%2Fetc%2Fpasswd"]:
        r = client.get(f"/models/churn/2/files/{bad}")
        assert r.status_code == 404, bad
        assert "Traceback" not in r.text
    assert client.get("/models/churn/2/files/../../../etc/passwd").status_code == 404
    # a file swapped after register is refused
    (world.bundles / "churn-2" / "reliability.png").write_bytes(b"\x89PNG not the registered one")
    r = client.get("/models/churn/2/files/reliability.png")
    assert r.status_code == 409 and "changed since the version was registered" in r.text


def test_consumers_page_shows_key_ids_never_secrets(client, world) -> None:
    html = client.get("/consumers").text
    assert world.key_id in html and "lg_" not in html
    assert "churn &gt;=1" in html


def test_audit_page_filters_and_paginates(client, world) -> None:
    html = client.get("/audit?action=release").text
    assert "churn:1" in html and "key.issue" not in html
    with registry(world.url) as reg:
        for i in range(60):
            reg.add_consumer(f"svc{i}", actor="filler")
    first = client.get("/audit?actor=filler").text
    assert first.count("consumer.add") == 50 and "older entries" in first
    nxt = first.split("before=")[1].split('"')[0]
    second = client.get(f"/audit?actor=filler&before={nxt}").text
    assert second.count("consumer.add") == 10


def test_cascade_svg_with_pins_and_links(client) -> None:
    ensure_debian("dot", "graphviz")
    html = client.get("/cascade").text
    assert "<svg" in html and 'href="/models/churn"' in html
    assert "v1 pins v1" in html
    focused = client.get("/cascade?focus=scorer").text
    assert "scorer" in focused and "bad" not in focused.split("<svg")[1]


def test_bad_input_pages(client) -> None:
    r = client.get("/models/nosuch")
    assert r.status_code == 404 and "no model named" in r.text
    assert client.get("/models/churn/99").status_code == 404
    assert client.get("/models/churn/x").status_code == 404
    assert client.get("/models/Bad!Name").status_code == 400
    assert client.get("/?q=" + "a" * 200).status_code == 400
    r = client.get("/?q=" + "a" * 5000)
    assert r.status_code == 414 and "too long" in r.text
    assert client.get("/audit?before=-1").status_code == 400
    assert client.get("/cascade?focus=nosuch").status_code == 404
    assert client.get("/no/such/page").status_code == 404


def test_registry_down_is_a_503_page() -> None:
    from starlette.testclient import TestClient

    from console import create_app
    from tests.console.conftest import settings_for

    app = create_app(settings_for("postgresql+psycopg://nobody@127.0.0.1:1/none"))
    with TestClient(app, raise_server_exceptions=False) as c:
        for path in ["/", "/models/churn/1", "/audit", "/consumers", "/cascade"]:
            r = c.get(path)
            assert r.status_code == 503, path
            assert "cannot reach the registry database" in r.text and "Traceback" not in r.text


def test_new_version_registered_after_start_appears(client, world) -> None:
    with registry(world.url) as reg:
        reg.register(make_bundle(world.bundles, "fresh", 1), actor="tests")
    assert "/models/fresh" in client.get("/?q=fresh").text


def test_version_page_shows_calibration_warnings_and_the_small_sample_caveat(client, world) -> None:
    """Issue 18, finding 2: a calibration that hurt unseen rows is said on the page, and ECE on 50 rows
    (5 per bin) comes with its caveat."""
    warning = "calibration (isotonic) worsened the log loss on the unseen test split (0.0563 -> 1.0176)"
    bundle = make_bundle(world.bundles, "hurt", 1, calibration_warnings=(warning,))
    with registry(world.url) as reg:
        reg.register(bundle, actor="tests")
    html = client.get("/models/hurt/1").text
    assert f'<p class="warning" role="alert">Warning: {warning}</p>' in html.replace("&gt;", ">")
    assert "small sample: ECE and the reliability diagram rest on 50 held-out rows, about 5 per bin" in html
    assert "±0.22 (one standard error)" in html
