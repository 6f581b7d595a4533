"""Apache Kafka's jars from Maven Central, resolved once per Kafka version into the cache.

``mvn dependency:copy-dependencies`` on the pinned pom (``deploy/kafka/pom.xml``) copies
the broker's runtime jars into ``<cache_dir>/kafka-<version>/lib``; a marker holding the
pom's digest says the copy is complete. Every failure is a :class:`StackError` whose
message says what to install or where to look.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from deploy.stack.errors import StackError

KAFKA_VERSION = "4.4.0"
POM_FILE = Path(__file__).resolve().parent.parent / "kafka" / "pom.xml"

_COMPLETE_MARKER = ".complete"
_MVN_TIMEOUT_S = 900.0
_INSTALL_HINTS = {
    "java": "install a Java 17+ runtime (Debian: apt-get install openjdk-17-jre-headless)",
    "mvn": "install Apache Maven 3.6+ (Debian: apt-get install maven)",
}


def require_tools() -> None:
    """Raise :class:`StackError` naming what to install if ``java`` or ``mvn`` is not on PATH."""
    for tool in ("java", "mvn"):
        require(tool)


def require(tool: str) -> str:
    """The path of ``tool`` on PATH; raises :class:`StackError` saying how to install it."""
    path = shutil.which(tool)
    if path is None:
        raise StackError(f"{tool} not found on PATH: {_INSTALL_HINTS[tool]}")
    return path


def resolve_jars(cache_dir: Path) -> Path:
    """The lib directory holding Kafka's runtime jars: ``cache_dir/kafka-<version>/lib``.

    Runs ``mvn dependency:copy-dependencies`` on the pinned pom only when the completion
    marker is missing or was written for a different pom; blocks while Maven downloads
    (seconds with a warm ``~/.m2``, longer on a cold one). Jars are copied into a temporary
    directory that is renamed into place only once complete, so an interrupted download is
    never taken for a finished one. Raises :class:`StackError` if ``mvn`` is missing or fails
    (quoting the end of its output).
    """
    version_dir = cache_dir / f"kafka-{KAFKA_VERSION}"
    lib_dir = version_dir / "lib"
    pom_digest = hashlib.sha256(POM_FILE.read_bytes()).hexdigest()
    if _is_complete(lib_dir, pom_digest):
        return lib_dir

    mvn = require("mvn")
    version_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="lib.partial.", dir=version_dir))
    try:
        _copy_dependencies(mvn, staging)
        (staging / _COMPLETE_MARKER).write_text(pom_digest + "\n")
        if lib_dir.exists() and not _is_complete(lib_dir, pom_digest):
            shutil.rmtree(lib_dir)  # left by an older pom: replace it
        try:
            staging.rename(lib_dir)
        except OSError:
            # Another process finished first; its copy is as good as ours.
            if not _is_complete(lib_dir, pom_digest):
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return lib_dir


def _is_complete(lib_dir: Path, pom_digest: str) -> bool:
    try:
        return (lib_dir / _COMPLETE_MARKER).read_text().strip() == pom_digest
    except OSError:
        return False


def _copy_dependencies(mvn: str, out_dir: Path) -> None:
    argv = [
        mvn,
        "-q",
        "-B",
        "-Dstyle.color=never",
        "-f",
        str(POM_FILE),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={out_dir}",
        "-DincludeScope=runtime",
    ]
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=_MVN_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise StackError(
            f"mvn did not finish resolving Kafka {KAFKA_VERSION} within {_MVN_TIMEOUT_S:.0f} s;"
            " check access to Maven Central"
        ) from exc
    if done.returncode != 0:
        raise StackError(
            f"mvn could not resolve Kafka {KAFKA_VERSION} jars from {POM_FILE}"
            f" (exit {done.returncode}):\n{last_lines(done.stdout + done.stderr)}"
        )
    if not (out_dir / f"kafka_2.13-{KAFKA_VERSION}.jar").is_file():
        raise StackError(f"mvn succeeded but kafka_2.13-{KAFKA_VERSION}.jar is not in {out_dir}")


def last_lines(text: str, lines: int = 20) -> str:
    """The last ``lines`` lines of a tool's output, to quote in an error."""
    return "\n".join(text.strip().splitlines()[-lines:])
