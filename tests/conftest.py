"""Session-wide test settings.

Every gateway a test starts (``lockgate serve``, directly or through the CLI, the demo and the README
walk-through) runs one worker unless the test asks for more with ``--workers N``: the default, one per
core, would start each of them twice over on the 2-core test machine.
"""

from __future__ import annotations

import os

os.environ.setdefault("LOCKGATE_SERVE_WORKERS", "1")
