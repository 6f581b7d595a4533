"""A fake ``go`` for the tests of :mod:`deploy.tools.go_tools` and its users: a shell script
put on a PATH of the test's own, which writes a tiny executable where the real one would
write the tool.

``go env GOVERSION`` answers ``$FAKE_GO_VERSION``. ``go install <package>@<version>`` logs its
arguments and environment to ``$FAKE_GO_LOG``, waits for ``$FAKE_GO_GATE`` to exist (when
set), then fails if ``$FAKE_GO_FAIL`` is set, writes nothing if ``$FAKE_GO_NOTHING`` is set,
and otherwise writes ``$GOBIN/<last element of package>``.
"""

from __future__ import annotations

import os
from pathlib import Path

FAKE_GO = """#!/bin/sh
if [ "$1" = env ]; then echo "$FAKE_GO_VERSION"; exit 0; fi
echo "$* GOBIN=$GOBIN GOTOOLCHAIN=$GOTOOLCHAIN GOFLAGS=$GOFLAGS" >> "$FAKE_GO_LOG"
if [ -n "$FAKE_GO_GATE" ]; then
  while [ ! -e "$FAKE_GO_GATE" ]; do sleep 0.01; done
fi
if [ -n "$FAKE_GO_FAIL" ]; then echo "go: module lookup disabled" >&2; exit 1; fi
if [ -n "$FAKE_GO_NOTHING" ]; then exit 0; fi
package="${2%@*}"
name="${package##*/}"
printf '#!/bin/sh\\necho %s\\n' "$name" > "$GOBIN/$name"
chmod +x "$GOBIN/$name"
"""


def fake_go_environ(tmp_path: Path) -> dict[str, str]:
    """An environment whose PATH has the fake ``go`` (in ``tmp_path/bin``) and the system's
    shell utilities, and no other Go; a Go 1.26 that builds."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "go").write_text(FAKE_GO)
    (bin_dir / "go").chmod(0o755)
    return {
        "PATH": f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "FAKE_GO_VERSION": "go1.26.8",
        "FAKE_GO_LOG": str(tmp_path / "go.log"),
        "FAKE_GO_GATE": "",
        "FAKE_GO_FAIL": "",
        "FAKE_GO_NOTHING": "",
    }


def installs(environ: dict[str, str]) -> list[str]:
    """The ``go install`` calls the fake received, one line each, oldest first."""
    log = Path(environ["FAKE_GO_LOG"])
    return log.read_text().splitlines() if log.exists() else []
