"""The locked wheels the deployed environments install, from a local cache.

A boot installs with ``--no-index --require-hashes`` from the wheels the synth packed
beside it, so it can only get what the locks (``locks/*.txt``, made by
``scripts/lock.sh`` with every file's hash) name. The synth takes those wheels from
``.cache/wheelhouse/``, which ``scripts/test`` fills while PyPI is reachable, and
fills it itself when a wheel is missing (a deploy machine has the index): the
tests, which synthesize, find everything cached and never download.

The target is the one both boots run on: CPython 3.11 on Debian 12 (glibc 2.36,
x86_64), the producer VM's python3 and Dataproc 2.2-debian12's. Downloads and the
choice among a release's files are made for that target, whatever machine synthesizes.

``scripts/wheelhouse.py`` fills the cache for both locks.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.tags import compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import Version

REPO_ROOT = Path(__file__).resolve().parents[3]
CACHE = REPO_ROOT / ".cache" / "wheelhouse"
FILL_COMMAND = ".venv/bin/python scripts/wheelhouse.py"

PYTHON_VERSION = (3, 11)
ABI = "cp311"
#: Debian 12's glibc is 2.36: every manylinux tag up to it, newest first, with the legacy aliases.
_LEGACY_MANYLINUX = {17: "manylinux2014_x86_64", 12: "manylinux2010_x86_64", 5: "manylinux1_x86_64"}
PLATFORMS = tuple(
    tag for minor in range(36, 4, -1) for tag in (f"manylinux_2_{minor}_x86_64", _LEGACY_MANYLINUX.get(minor)) if tag
)
#: The target's tags, most preferred first: pip's own order for that interpreter.
_TARGET_TAGS = [
    *cpython_tags(PYTHON_VERSION, abis=[ABI], platforms=PLATFORMS),
    *compatible_tags(PYTHON_VERSION, ABI, PLATFORMS),
]
_TAG_RANK = {tag: rank for rank, tag in reversed(list(enumerate(_TARGET_TAGS)))}


@dataclass(frozen=True)
class Lock:
    """A deployed environment's lock: the core dependencies of pyproject.toml plus ``extra``."""

    path: str  # in the repository
    extra: str


PRODUCER_LOCK = Lock("locks/producer.txt", "producer")  # the VM
CLUSTER_LOCK = Lock("locks/cluster.txt", "dataproc")  # the Dataproc nodes, for the job
LOCKS = (PRODUCER_LOCK, CLUSTER_LOCK)


class WheelhouseError(Exception):
    """A lock that cannot be installed as it is: says which file and what to run."""


@dataclass(frozen=True)
class Pin:
    """One line of a lock: an exact release and the hashes of its files."""

    name: str  # canonical
    version: Version
    hashes: frozenset[str]

    def __str__(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Wheel:
    """The cached file a pin installs from."""

    pin: Pin
    path: Path
    sha256: str


def read_lock(lock: Path) -> list[Pin]:
    """The pins of ``lock``, a requirements file of ``name==version --hash=sha256:…`` entries only."""
    pins = []
    for line in lock.read_text().replace("\\\n", " ").splitlines():
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        try:
            requirement = Requirement(words[0])
        except InvalidRequirement as exc:
            raise WheelhouseError(f"{lock}: {words[0]!r} is not a requirement ({exc}): rerun scripts/lock.sh") from exc
        specifiers = list(requirement.specifier)
        hashes = frozenset(w.removeprefix("--hash=sha256:") for w in words[1:] if w.startswith("--hash=sha256:"))
        if (len(specifiers) != 1 or specifiers[0].operator != "==" or requirement.marker or requirement.extras
                or not hashes or len(hashes) != len(words) - 1):
            raise WheelhouseError(f"{lock}: {line.strip()!r} is not an exact pin with hashes: rerun scripts/lock.sh")
        pins.append(Pin(canonicalize_name(requirement.name), Version(specifiers[0].version), hashes))
    return pins


def check_lock(root: Path, lock: Lock) -> None:
    """Raise unless ``lock`` pins every core dependency of ``root``'s pyproject.toml, and every
    one of its extra, at the version pyproject.toml pins: a lock older than a pin change
    would install what the code was not written for (or fail at boot)."""
    pyproject, lock_file = root / "pyproject.toml", root / lock.path
    project = tomllib.loads(pyproject.read_text())["project"]
    locked = {pin.name: pin.version for pin in read_lock(lock_file)}
    for line in [*project.get("dependencies", []), *project.get("optional-dependencies", {}).get(lock.extra, [])]:
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise WheelhouseError(f"{pyproject}: {line!r} is not pinned (name==version); the deployed locks are exact")
        name, version = canonicalize_name(requirement.name), Version(specifiers[0].version)
        if locked.get(name) != version:
            raise WheelhouseError(
                f"{lock.path} has {name}=={locked.get(name, '(missing)')} but pyproject.toml pins {line!r} "
                f"(core or `{lock.extra}`): run scripts/lock.sh"
            )


def locked_wheels(lock: Path, cache: Path = CACHE) -> list[Wheel]:
    """One cached wheel for every pin of ``lock``, downloading into ``cache`` what is missing."""
    pins = read_lock(lock)
    found = _pick(pins, cache)
    if len(found) < len(pins):
        download(lock, cache)
        found = _pick(pins, cache)
    missing = [pin for pin in pins if pin not in found]
    if missing:
        raise WheelhouseError(
            f"{lock}: no wheel for CPython 3.11 on manylinux x86_64 with a locked hash in {cache} for "
            + ", ".join(_describe(pin, cache) for pin in missing)
            + f"; run `{FILL_COMMAND}` where PyPI is reachable"
        )
    return [found[pin] for pin in pins]


def download(lock: Path, cache: Path = CACHE) -> None:
    """``pip download`` every pin of ``lock`` for the target into ``cache``, checking each file's hash."""
    cache.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--no-deps", "--only-binary=:all:", "--require-hashes",
        "--python-version", ".".join(map(str, PYTHON_VERSION)), "--implementation", "cp", "--abi", ABI,
        *(arg for platform in PLATFORMS for arg in ("--platform", platform)),
        "--dest", str(cache), "--requirement", str(lock),
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise WheelhouseError(
            f"could not download the wheels of {lock} into {cache}:\n{result.stderr.strip()}\n"
            f"run `{FILL_COMMAND}` where PyPI is reachable"
        )


def _pick(pins: Sequence[Pin], cache: Path) -> dict[Pin, Wheel]:
    """For each pin, the cached file with a locked hash that the target prefers (as pip would)."""
    found = {}
    releases = _cached(cache)
    for pin in pins:
        for _, path in releases.get((pin.name, pin.version), []):
            sha256 = _sha256(path)
            if sha256 in pin.hashes:
                found[pin] = Wheel(pin, path, sha256)
                break
    return found


def _cached(cache: Path) -> dict[tuple[str, Version], list[tuple[int, Path]]]:
    """The cached wheels the target can install, by release, most preferred first."""
    releases: dict[tuple[str, Version], list[tuple[int, Path]]] = {}
    for path in sorted(cache.glob("*.whl")):
        try:
            name, version, _, tags = parse_wheel_filename(path.name)
        except InvalidWheelFilename:
            continue
        rank = min((_TAG_RANK[tag] for tag in tags if tag in _TAG_RANK), default=None)
        if rank is not None:
            releases.setdefault((name, version), []).append((rank, path))
    return {release: sorted(files) for release, files in releases.items()}


def _describe(pin: Pin, cache: Path) -> str:
    """``pin``, with the cached files of its release whose hash the lock does not have."""
    stale = [path.name for _, path in _cached(cache).get((pin.name, pin.version), [])]
    return f"{pin} ({', '.join(stale)}: hash not in the lock, delete it)" if stale else str(pin)


def _sha256(path: Path) -> str:
    with path.open("rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()

