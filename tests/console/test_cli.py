"""``lockgate console``: user management and the server itself, as a user runs them."""

from __future__ import annotations

import io
import socket
import subprocess
import sys
import time

import httpx

from console.cli import main


def test_user_add_list_disable(tmp_path, monkeypatch, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'reg.db'}"
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert (
        main(["--registry-url", url, "user", "add", "alice", "--role", "operator", "--password-stdin"]) == 0
    )
    assert main(["--registry-url", url, "user", "list"]) == 0
    assert "alice\toperator\tactive" in capsys.readouterr().out
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["--registry-url", url, "user", "add", "bob", "--password-stdin"]) == 2
    assert "8 to 256" in capsys.readouterr().err
    assert main(["--registry-url", url, "user", "disable", "nobody"]) == 1
    assert main(["--registry-url", "postgresql+psycopg://x@127.0.0.1:1/none", "user", "list"]) == 3
    assert main(["--port", "0"]) == 2


def test_server_answers_read_only(tmp_path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [
        sys.executable,
        "-m",
        "lockgate",
        "console",
        "--registry-url",
        str(tmp_path / "r.db"),
        "--port",
        str(port),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read().decode()
                time.sleep(0.2)
        assert r.status_code == 200 and "0 model(s)" in r.text and "read-only" in r.text
        assert httpx.post(f"http://127.0.0.1:{port}/actions/release", data={"ref": "a:1"}).status_code == 403
    finally:
        proc.terminate()
        proc.wait(10)
