"""Where the registry is: one rule (``--registry-url``, else ``LOCKGATE_REGISTRY_URL``, else
``./.lockgate/registry.db``), commands that only read never create one, a directory is named as such, a
write that creates one says so, and ``registry list`` shows the key metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from cascade_registry import Registry, RegistryUnavailableError
from cascade_registry.cli import READ_ONLY, main
from cascade_registry.settings import RegistrySettings, locate_registry

READ_ONLY_ARGV = {
    "list": ["list"],
    "show": ["show", "a"],
    "impact": ["impact", "a"],
    "graph": ["graph"],
    "audit": ["audit"],
    "pins": ["pins", "a:1"],
    "consumer list": ["consumer", "list"],
    "key list": ["key", "list", "web"],
    "trust list": ["trust", "list"],
    "policy show": ["policy", "show"],
    "rollout": ["rollout", "a"],
}


def test_the_rule_explicit_then_variable_then_default(tmp_path: Path) -> None:
    env = RegistrySettings(url="shared/reg.db")
    explicit = locate_registry("mine.db", env, cwd=tmp_path)
    assert (explicit.url, explicit.source) == (str(tmp_path / "mine.db"), "--registry-url")
    from_env = locate_registry(None, env, cwd=tmp_path)
    assert (from_env.url, from_env.source) == (str(tmp_path / "shared" / "reg.db"), "LOCKGATE_REGISTRY_URL")
    default = locate_registry(None, RegistrySettings(url=None), cwd=tmp_path)
    assert default.url == str(tmp_path / ".lockgate" / "registry.db") and default.source == "default"
    assert "the default: ./.lockgate/registry.db" in default.describe()
    pg = locate_registry("postgresql+psycopg://u:secret@db:5432/reg", env, cwd=tmp_path)
    assert pg.url.endswith("@db:5432/reg") and "secret" not in pg.describe()
    relative = locate_registry("sqlite:///rel/reg.db", env, cwd=tmp_path)
    assert relative.url == f"sqlite:///{tmp_path / 'rel' / 'reg.db'}"


def test_the_variable_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LOCKGATE_REGISTRY_URL", str(tmp_path / "env.db"))
    assert locate_registry().url == str(tmp_path / "env.db")


@pytest.mark.parametrize("command", sorted(READ_ONLY))
def test_read_only_commands_never_create_a_registry(command: str, tmp_path: Path, capsys) -> None:
    url = tmp_path / "no" / "such" / "reg.db"
    code = main([*READ_ONLY_ARGV[command], "--registry-url", str(url)])
    err = capsys.readouterr().err
    assert code == 3 and f"no registry at {url}" in err and err.count("\n") == 1
    assert "lockgate registry register" in err and not (tmp_path / "no").exists()


def test_default_location_is_not_created_by_a_read(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LOCKGATE_REGISTRY_URL", raising=False)
    assert main(["list"]) == 3
    assert str(tmp_path / ".lockgate" / "registry.db") in capsys.readouterr().err
    assert not (tmp_path / ".lockgate").exists()


def test_a_directory_is_called_a_directory(tmp_path: Path, capsys) -> None:
    assert main(["--registry-url", str(tmp_path), "list"]) == 2
    err = capsys.readouterr().err
    assert f"the registry path {tmp_path} is a directory, not a SQLite file" in err
    assert "database server" not in err and err.count("\n") == 1


def test_a_file_that_is_not_a_registry(tmp_path: Path, capsys) -> None:
    (tmp_path / "notes.db").write_text("not a database\n" * 100)
    assert main(["--registry-url", str(tmp_path / "notes.db"), "list"]) == 3
    err = capsys.readouterr().err
    assert "cannot open the registry file" in err and "database server" not in err


def test_a_write_creates_and_says_where(tmp_path: Path, capsys) -> None:
    url = tmp_path / "new" / "reg.db"
    assert main(["--registry-url", str(url), "consumer", "add", "web", "--owner", "team"]) == 0
    err = capsys.readouterr().err
    assert f"created a new registry at {url} (from --registry-url)" in err
    assert main(["--registry-url", str(url), "consumer", "add", "app", "--owner", "team"]) == 0
    assert "created" not in capsys.readouterr().err  # only the first time


def test_open_without_create(tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailableError, match="no registry at"):
        Registry.open(str(tmp_path / "reg.db"), create=False)
    with Registry.open(str(tmp_path / "reg.db")) as reg:
        assert reg.created
    with Registry.open(str(tmp_path / "reg.db"), create=False) as reg:
        assert not reg.created and reg.generation() == 0


def test_old_url_spelling_still_works_but_is_not_advertised(tmp_path: Path, capsys) -> None:
    url = str(tmp_path / "reg.db")
    assert main(["--url", url, "consumer", "add", "web", "--owner", "team"]) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "--registry-url" in out and "--url " not in out.replace("--registry-url", "")
    assert "registry gate" not in out or "gate.json" in out  # 'gate' is explained


def test_list_shows_key_metrics(make_bundle, registry_url: str, capsys) -> None:
    main(["--registry-url", registry_url, "register", str(make_bundle("a", 1))])
    capsys.readouterr()
    assert main(["--registry-url", registry_url, "list"]) == 0
    header, _, row = capsys.readouterr().out.splitlines()[:3]
    assert header.split()[:7] == ["model", "version", "status", "stale", "f1_macro", "accuracy", "ece"]
    assert row.split()[0] == "a" and all("." in cell for cell in row.split()[3:6])


@pytest.mark.postgres
def test_an_empty_database_is_not_a_registry_for_a_read(pg_url: str, capsys) -> None:
    assert main(["--registry-url", pg_url, "list"]) == 3
    assert "no registry at postgresql+psycopg://" in capsys.readouterr().err
    with Registry.open(pg_url) as reg:
        assert reg.created
    assert main(["--registry-url", pg_url, "list"]) == 0
