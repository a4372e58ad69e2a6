"""The registry finds its newest migration without alembic, and opening an up-to-date registry never
imports alembic (each gateway worker and read-only command saves ~11 MB and ~1 s)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from alembic.script import ScriptDirectory

from cascade_registry import Registry
from cascade_registry.engine import _MIGRATIONS, _head_revision

ROOT = Path(__file__).resolve().parents[2]


def test_the_head_read_from_the_files_is_alembics_head():
    assert _head_revision() == ScriptDirectory(str(_MIGRATIONS)).get_current_head()


def test_opening_an_up_to_date_registry_does_not_import_alembic(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'registry.db'}"
    Registry.open(url).close()  # created here, migrations and all
    code = (
        "import sys; from cascade_registry import Registry; Registry.open(sys.argv[1], create=False)"
        ".close(); print('alembic' in sys.modules)"
    )
    opened = subprocess.run([sys.executable, "-c", code, url], cwd=ROOT, capture_output=True, text=True)
    assert opened.stdout.strip() == "False", opened.stderr
