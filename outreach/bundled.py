"""Files shipped inside the package, and the workspace copy of them that a team edits.

The package carries its defaults in ``outreach/defaults/`` (rules, drafting policy, prompts with their
registry and history, sequences, demo data, eval set). They are found with :mod:`importlib.resources`, so a
wheel installed anywhere finds them whatever the current directory is; every path is named here once.

A *workspace* is a directory the user owns: ``OUTREACH_HOME``, by default the current directory.
``outreach init`` writes an editable copy of the defaults there (:func:`init_workspace`): ``prompts/`` (with
``registry.yaml`` and ``history/``), ``sequences/``, ``rules.yaml``, ``drafting.yaml``, ``eval/`` and an
example data directory ``data/`` (the demo's accounts, events, tickets and catalog). Each command reads the
workspace copy when it is there and the packaged default otherwise (:func:`locate`), and says which: an INFO
log line (``outreach -v …``) and, where it matters, in the command's output (``outreach prompts list``).
Packaged defaults are read-only: writes (prompt versions, labels, splits) go to a workspace copy
(:func:`require_writable`).
"""

from __future__ import annotations

import importlib.resources
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from outreach.errors import ConfigError, InputError
from outreach.settings import Settings, get_settings

logger = logging.getLogger(__name__)


def _package_defaults() -> Path:
    root = importlib.resources.files("outreach") / "defaults"
    if not isinstance(root, Path):  # pragma: no cover - zip imports; pip always unpacks wheels
        raise ConfigError(f"outreach's defaults are not on the file system ({root})",
                          hint="install outreach with pip or pipx (an unpacked wheel), not as a zip")
    return root


DEFAULTS = _package_defaults()
RULES = DEFAULTS / "rules.yaml"
DRAFTING = DEFAULTS / "drafting.yaml"
PROMPTS = DEFAULTS / "prompts"
SEQUENCES = DEFAULTS / "sequences"
DEMO_DATA = DEFAULTS / "demo"
EVAL_SET = DEFAULTS / "eval"

DEMO_NAME = "demo"
"""``--data demo`` means the packaged demo data (unless a directory called ``demo`` exists here)."""

Resource = Literal["prompts", "sequences", "eval", "rules", "drafting", "data"]
Origin = Literal["option", "setting", "workspace", "packaged"]

# name in the workspace, packaged default (None: the code defaults), the setting that overrides it
_RESOURCES: dict[Resource, tuple[str, Path | None, str | None]] = {
    "prompts": ("prompts", PROMPTS, "prompts_dir"),
    "sequences": ("sequences", SEQUENCES, "sequences_dir"),
    "eval": ("eval", EVAL_SET, None),
    "rules": ("rules.yaml", RULES, None),
    "drafting": ("drafting.yaml", DRAFTING, None),
    "data": ("data", None, "data_dir"),
}


@dataclass(frozen=True)
class Located:
    """Where one resource comes from: a command-line option, a setting, the workspace or the package."""

    resource: Resource
    path: Path
    origin: Origin

    @property
    def packaged(self) -> bool:
        return self.origin == "packaged"

    def describe(self) -> str:
        """One phrase for users, e.g. ``workspace copy /srv/team/prompts``."""
        setting = _RESOURCES[self.resource][2]
        return {
            "option": f"{self.path} (command-line option)",
            "setting": f"{self.path} (OUTREACH_{(setting or '').upper()})",
            "workspace": f"workspace copy {self.path}",
            "packaged": f"packaged demo data {self.path}" if self.resource == "data"
            else f"packaged defaults {self.path} (read-only; `outreach init` writes an editable copy)",
        }[self.origin]


def workspace(settings: Settings | None = None) -> Path:
    """The workspace directory: ``OUTREACH_HOME`` (default: the current directory)."""
    return (settings or get_settings()).resolved_home()


def locate(resource: Resource, settings: Settings | None = None, option: Path | None = None) -> Located:
    """Where ``resource`` is read from: ``option`` > its ``OUTREACH_*`` setting > the workspace copy > the
    packaged default. ``rules`` and ``drafting`` are layered over the code defaults, so for them
    "packaged" means "no workspace file"."""
    settings = settings or get_settings()
    name, packaged, setting = _RESOURCES[resource]
    if option is not None:
        found = Located(resource, option.expanduser(), "option")
    elif setting is not None and getattr(settings, setting) is not None:
        found = Located(resource, Path(getattr(settings, setting)).expanduser(), "setting")
    elif (settings.resolved_home() / name).exists():
        found = Located(resource, settings.resolved_home() / name, "workspace")
    elif packaged is not None:
        found = Located(resource, packaged, "packaged")
    else:
        raise InputError(
            "no data directory given",
            hint="pass --data DIR (or --data demo for the packaged demo data), set OUTREACH_DATA_DIR, "
            "or run `outreach init` to write an example data/ directory here",
        )
    _log_source(found)
    return found


_logged: dict[Resource, str] = {}


def forget_logged_sources() -> None:
    """Log every source again from now on (a new command starts in this process)."""
    _logged.clear()


def _log_source(found: Located) -> None:
    """Say where a resource comes from at INFO (``outreach -v``), once per change rather than per read."""
    text = found.describe()
    if _logged.get(found.resource) != text:
        _logged[found.resource] = text
        logger.info("%s: %s", found.resource, text)


def workspace_layer(resource: Literal["rules", "drafting"], settings: Settings | None = None) -> Path | None:
    """The workspace's ``rules.yaml`` / ``drafting.yaml``, layered between the defaults and a data
    directory's own file, or None when the workspace has none."""
    found = locate(resource, settings)
    return None if found.packaged else found.path


def data_dir(option: Path | None, settings: Settings | None = None) -> Located:
    """The data directory for ``--data``: ``demo`` names the packaged demo data unless a directory of that
    name exists; without the option, ``OUTREACH_DATA_DIR``, then the workspace's ``data/``."""
    if option is not None and str(option) == DEMO_NAME and not option.exists():
        found = Located("data", DEMO_DATA, "packaged")
        _log_source(found)
        return found
    return locate("data", settings, option)


def is_packaged(path: Path) -> bool:
    """Whether ``path`` lies inside the package's defaults (which are never written)."""
    return path.expanduser().resolve().is_relative_to(DEFAULTS.resolve())


def require_writable(path: Path, what: str) -> None:
    """Refuse to write into the packaged defaults: they belong to the installation, not the user."""
    if is_packaged(path):
        raise ConfigError(
            f"{what} would be written into outreach's packaged defaults ({path}), which are read-only",
            hint="run `outreach init` to write an editable copy into your workspace (OUTREACH_HOME, default "
            "the current directory), then run the command there",
        )


# ------------------------------------------------------------------------------------------------ init

WORKSPACE_GITIGNORE = """\
# Files outreach writes while it works (database, outbox, caches, reports); the rest is yours to version.
outreach.db
outreach.db-*
drafts.jsonl
demo-drafts.jsonl
cache/
outbox/
reports/
.outreach-secret
.env
prompts/.registry.lock
"""
_DATA_FILES = ("accounts.csv", "events.jsonl", "tickets.jsonl", "catalog.yaml")
_HEADER = "# Workspace copy written by `outreach init`: edit freely. Commands run here read it instead of the defaults.\n"


@dataclass
class InitReport:
    """What :func:`init_workspace` wrote and what it left alone."""

    target: Path
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def line(self) -> str:
        parts = [f"wrote {', '.join(self.written)}" if self.written else "wrote nothing"]
        if self.kept:
            parts.append(f"kept existing {', '.join(self.kept)} (--force overwrites)")
        return f"{self.target}: " + "; ".join(parts)


def init_workspace(target: Path, *, force: bool = False, example_data: bool = True) -> InitReport:
    """Write an editable copy of the packaged defaults into ``target``.

    Each item (``prompts/``, ``sequences/``, ``rules.yaml``, ``drafting.yaml``, ``eval/``, ``data/``,
    ``.gitignore``) is written whole or not at all: an existing one is kept unless ``force``, which copies the
    packaged files over it (files of the user's own that the package does not have stay).
    """
    target = target.expanduser()
    if target.exists() and not target.is_dir():
        raise InputError(f"{target} is not a directory", hint="give a directory for the workspace")
    target.mkdir(parents=True, exist_ok=True)
    report = InitReport(target=target.resolve())

    def item(name: str, write: Callable[[Path], None]) -> None:
        path = target / name
        if path.exists() and not force:
            report.kept.append(name)
            return
        write(path)
        report.written.append(name)
        logger.info("init: wrote %s", path)

    def tree(source: Path) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            shutil.copytree(source, path, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".registry.lock"))
        return write

    def text(content: str) -> Callable[[Path], None]:
        def write(path: Path) -> None:
            path.write_text(content, encoding="utf-8")
        return write

    def prompts(path: Path) -> None:
        tree(PROMPTS)(path)
        (path / ".gitignore").write_text(".registry.lock\n", encoding="utf-8")

    def data(path: Path) -> None:
        path.mkdir(parents=True, exist_ok=True)
        for name in _DATA_FILES:
            shutil.copyfile(DEMO_DATA / name, path / name)

    item("prompts", prompts)
    item("sequences", tree(SEQUENCES))
    item("rules.yaml", text(_HEADER + RULES.read_text(encoding="utf-8")))
    item("drafting.yaml", text(_HEADER + DRAFTING.read_text(encoding="utf-8")))
    item("eval", tree(EVAL_SET))
    if example_data:
        item("data", data)
    item(".gitignore", text(WORKSPACE_GITIGNORE))
    return report
