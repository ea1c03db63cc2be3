"""The prompt registry on disk: immutable template versions, labels that point at them, and traffic splits.

Marketing tunes prompts by saving new versions, so the text behind every draft already written must never
change under it. The registry keeps each saved version as its own file, ``prompts/history/<name>/v<N>.md.j2``,
and records its sha256 in ``prompts/registry.yaml``; a version file that no longer matches its hash is
refused (save a new version instead). Labels (``production``, ``staging``, any name) point at a version, or
split traffic between versions for an A/B test (:class:`Split`, assigned in :mod:`outreach.metrics.experiments`);
the pipeline drafts with ``production`` unless told otherwise.

The flat ``prompts/<name>.md.j2`` files stay the working copy (:func:`load_working_templates`), and
when a ``registry.yaml`` sits next to them :func:`load_templates` swaps each registered template for the version its label
points at. Everything is plain files, so a prompt change is reviewed and versioned in git like code.
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from outreach import bundled
from outreach.drafting.templates import (
    PromptTemplate,
    default_prompts_dir,
    load_template,
    load_working_templates,
)
from outreach.errors import ConflictError, DataError, InputError, NotFoundError
from outreach.yamlfile import validate_yaml

logger = logging.getLogger(__name__)

REGISTRY_FILE = "registry.yaml"
HISTORY_DIR = "history"
LOCK_FILE = ".registry.lock"
DEFAULT_LABEL = "production"
WORKING = "working"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"
MAX_SOURCE_CHARS = 100_000
MAX_NOTE_CHARS = 500

_VERSION_LINE = re.compile(r'^version:[^\n]*$', re.MULTILINE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VersionEntry(_Strict):
    """One saved version: its file's hash (checked on every load), why it was made, by whom and when."""

    version: str = Field(pattern=r"^[0-9]+$")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    note: str = ""
    author: str | None = None
    created_at: datetime | None = None


class Split(_Strict):
    """A label that splits traffic between versions (an A/B test), with a held-out control share.

    ``experiment`` salts the assignment hash, so two experiments do not put the same accounts in the same
    arms; ``control_pct`` of accounts are held out (never contacted) so lift can be measured against them.
    """

    experiment: str = Field(pattern=NAME_PATTERN)
    weights: dict[str, int] = Field(description="Version → relative weight (positive integers).")
    control_pct: float = Field(default=0, ge=0, le=50)
    min_sample: int = Field(default=30, gt=0, description="Decided drafts per arm before rates are shown.")

    @model_validator(mode="after")
    def _check(self) -> Split:
        if len(self.weights) < 1:
            raise ValueError("a split needs at least one version")
        for version, weight in self.weights.items():
            if not version.isdigit():
                raise ValueError(f"'{version}' is not a version number")
            if weight <= 0:
                raise ValueError(f"version {version} has weight {weight}; weights must be positive")
        return self

    def default_version(self) -> str:
        """The arm with the largest weight (lowest version on a tie): what callers without an account get."""
        return sorted(self.weights.items(), key=lambda item: (-item[1], int(item[0])))[0][0]


class Promotion(_Strict):
    """A label move, kept so anyone can see who shipped which version when."""

    label: str
    target: str
    author: str | None = None
    at: datetime | None = None


class TemplateEntry(_Strict):
    versions: list[VersionEntry] = Field(default_factory=list)
    labels: dict[str, str | Split] = Field(default_factory=dict)
    promotions: list[Promotion] = Field(default_factory=list)

    def entry(self, version: str) -> VersionEntry | None:
        return next((v for v in self.versions if v.version == version), None)

    def latest(self) -> VersionEntry | None:
        return max(self.versions, key=lambda v: int(v.version)) if self.versions else None


class AutoApprovePolicy(_Strict):
    """When a follow-up version may skip review (off by default; see :mod:`outreach.review.feedback`)."""

    enabled: bool = False
    min_approvals: int = Field(default=20, gt=0)
    max_mean_edit_distance: float = Field(default=40, ge=0)
    max_rejection_rate: float = Field(default=0.2, ge=0, le=1)
    window: int = Field(default=50, gt=0, description="Most recent decided drafts the rates are computed on.")


class RegistryFile(_Strict):
    """The shape of ``prompts/registry.yaml``."""

    templates: dict[str, TemplateEntry] = Field(default_factory=dict)
    auto_approve: AutoApprovePolicy = Field(default_factory=AutoApprovePolicy)


class VersionInfo(BaseModel):
    """A version as the CLI and web app list it."""

    name: str
    version: str
    sha256: str
    note: str
    author: str | None
    created_at: datetime | None
    labels: list[str]


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def with_version(source: str, version: str) -> str:
    """The template text with its front-matter ``version`` set to ``version`` (added when missing)."""
    if not source.startswith("---"):
        return source
    end = source.find("\n---", 3)
    front, rest = (source[:end], source[end:]) if end >= 0 else (source, "")
    line = f'version: "{version}"'
    if _VERSION_LINE.search(front):
        front = _VERSION_LINE.sub(line, front, count=1)
    else:
        front = front.rstrip("\n") + "\n" + line
    return front + rest


class Registry:
    """The registry of one prompts directory. Reads are cheap; writes take a file lock and are atomic."""

    def __init__(self, directory: Path, data: RegistryFile, *, clock: Callable[[], datetime] = _utcnow) -> None:
        self.directory = directory
        self.data = data
        self.clock = clock

    # ---------------------------------------------------------------------------------------- reading

    @classmethod
    def open(cls, directory: Path | None = None, *, clock: Callable[[], datetime] = _utcnow) -> Registry:
        """The registry of ``directory`` (default: the configured prompts directory); empty when the directory
        has no ``registry.yaml`` yet (the first ``save`` creates it)."""
        directory = directory or default_prompts_dir()
        path = directory / REGISTRY_FILE
        data = RegistryFile()
        if path.exists():
            data = validate_yaml(RegistryFile, path.read_text(encoding="utf-8"), path)
            for name in data.templates:
                if not re.match(NAME_PATTERN, name):
                    raise DataError(path, f"'{name}' is not a template name", field=f"templates.{name}")
        return cls(directory, data, clock=clock)

    @property
    def path(self) -> Path:
        return self.directory / REGISTRY_FILE

    def names(self) -> list[str]:
        """Every template name: the working copies plus registered ones."""
        working = {p.name.split(".")[0] for p in self.directory.glob("*.j2") if not p.name.startswith("_")}
        return sorted(working | set(self.data.templates))

    def entry(self, name: str) -> TemplateEntry:
        entry = self.data.templates.get(name)
        if entry is None:
            raise NotFoundError(
                f"template '{name}' has no saved versions",
                hint=f"save one with `outreach prompts save {name} --note '...'`",
            )
        return entry

    def history_path(self, name: str, version: str) -> Path:
        return self.directory / HISTORY_DIR / name / f"v{version}.md.j2"

    def working_path(self, name: str) -> Path:
        for path in sorted(self.directory.glob("*.j2")):
            if path.name.split(".")[0] == name:
                return path
        raise NotFoundError(f"no working copy of template '{name}' in {self.directory}")

    def working(self, name: str) -> PromptTemplate:
        """The flat file: the newest version, or unsaved edits to it."""
        return load_template(self.working_path(name))

    def template(self, name: str, version: str) -> PromptTemplate:
        """A saved version, after checking it is byte-for-byte the file that was saved."""
        entry = self.entry(name).entry(version)
        if entry is None:
            known = ", ".join(v.version for v in self.entry(name).versions)
            raise NotFoundError(f"template '{name}' has no version {version}", hint=f"versions: {known}")
        path = self.history_path(name, version)
        if not path.exists():
            raise DataError(path, f"version {version} of '{name}' is recorded in {REGISTRY_FILE} but its file "
                            "is missing", hint="restore it from git; saved versions are never deleted")
        digest = file_sha256(path)
        if digest != entry.sha256:
            raise DataError(
                path, f"version {version} of '{name}' was changed after it was saved (sha256 {digest[:12]}, "
                f"recorded {entry.sha256[:12]}); saved versions are immutable",
                hint="restore the file from git and save your change as a new version",
            )
        template = load_template(path)
        if template.name != name or template.version != version:
            raise DataError(path, f"front-matter says {template.name} v{template.version}, expected {name} v{version}",
                            field="version")
        return template

    def label_target(self, name: str, label: str) -> str | Split | None:
        entry = self.data.templates.get(name)
        return entry.labels.get(label) if entry else None

    def resolve(self, name: str, label: str = DEFAULT_LABEL) -> str:
        """The version a label points at (a split's largest arm); falls back to ``production``."""
        target = self.label_target(name, label)
        if target is None and label != DEFAULT_LABEL:
            target = self.label_target(name, DEFAULT_LABEL)
        if target is None:
            raise NotFoundError(f"template '{name}' has no label '{label}'",
                                hint=f"promote a version: `outreach prompts promote {name} VERSION --label {label}`")
        return target.default_version() if isinstance(target, Split) else target

    def split(self, name: str, label: str = DEFAULT_LABEL) -> Split | None:
        target = self.label_target(name, label)
        if target is None and label != DEFAULT_LABEL:
            target = self.label_target(name, DEFAULT_LABEL)
        return target if isinstance(target, Split) else None

    def splits(self) -> dict[str, Split]:
        """Every active split by ``name:label``."""
        return {f"{name}:{label}": target for name, entry in sorted(self.data.templates.items())
                for label, target in sorted(entry.labels.items()) if isinstance(target, Split)}

    def get(self, ref: str) -> PromptTemplate:
        """A template by reference: ``NAME@3`` (a version), ``NAME@staging`` (a label), ``NAME@working`` (the
        flat file), ``NAME`` (production when registered, else the working copy), or a path to a file."""
        if ref.endswith(".j2") and ("/" in ref or Path(ref).exists()):
            path = Path(ref)
            if not path.exists():
                raise NotFoundError(f"no template file {ref}")
            return load_template(path)
        name, _, which = ref.partition("@")
        if not re.match(NAME_PATTERN, name):
            raise InputError(f"'{ref}' is not a template reference", hint="use NAME, NAME@VERSION or NAME@LABEL")
        if which == WORKING or (not which and name not in self.data.templates):
            return self.working(name)
        if which.isdigit():
            return self.template(name, which)
        return self.template(name, self.resolve(name, which or DEFAULT_LABEL))

    def versions(self, name: str) -> list[VersionInfo]:
        entry = self.entry(name)
        infos = []
        for version in sorted(entry.versions, key=lambda v: int(v.version)):
            labels = sorted(
                label for label, target in entry.labels.items()
                if target == version.version or (isinstance(target, Split) and version.version in target.weights)
            )
            infos.append(VersionInfo(name=name, version=version.version, sha256=version.sha256, note=version.note,
                                     author=version.author, created_at=version.created_at, labels=labels))
        return infos

    def labelled(self, templates: dict[str, PromptTemplate], label: str = DEFAULT_LABEL) -> dict[str, PromptTemplate]:
        """``templates`` (the working copies) with each registered one replaced by the version ``label`` names."""
        resolved = dict(templates)
        for name in sorted(self.data.templates):
            if self.label_target(name, label) is not None or self.label_target(name, DEFAULT_LABEL) is not None:
                resolved[name] = self.template(name, self.resolve(name, label))
        return resolved

    def diff(self, name: str, first: str, second: str) -> str:
        """Unified diff between two references of one template (versions, labels or ``working``)."""
        a = self.get(first if "@" in first else f"{name}@{first}")
        b = self.get(second if "@" in second else f"{name}@{second}")
        return "".join(difflib.unified_diff(
            a.source.splitlines(keepends=True), b.source.splitlines(keepends=True),
            f"{a.name}@{a.version}", f"{b.name}@{b.version}",
        ))

    # ---------------------------------------------------------------------------------------- writing

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time (CLI and web app may both save); re-reads the file under the lock. The packaged
        prompts are never written: saving needs a workspace copy (``outreach init``)."""
        bundled.require_writable(self.directory, "the prompt registry")
        self.directory.mkdir(parents=True, exist_ok=True)
        with (self.directory / LOCK_FILE).open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                if self.path.exists():
                    self.data = validate_yaml(RegistryFile, self.path.read_text(encoding="utf-8"), self.path)
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _write(self) -> None:
        payload = self.data.model_dump(mode="json", exclude_defaults=False)
        text = (
            "# Prompt registry: saved template versions (immutable, hash-checked), labels and A/B splits.\n"
            "# Written by `outreach prompts save|promote|split` and the web app; see docs/prompt-tuning.md.\n"
            + yaml.safe_dump(payload, sort_keys=False, allow_unicode=True, width=110)
        )
        _atomic_write(self.path, text)

    def save(self, name: str, source: str, *, note: str, author: str | None = None,
             update_working: bool = True) -> VersionEntry:
        """Save ``source`` as the next version of ``name``: checked like any template, written once to
        ``history/``, recorded with its hash and note. The working copy is updated to match unless
        ``update_working`` is false. Raises when nothing changed since the latest version."""
        note = note.strip()
        if not note:
            raise InputError("say what changed in a change note", hint="e.g. --note 'shorter, warmer opening'")
        if len(note) > MAX_NOTE_CHARS:
            raise InputError(f"the change note is {len(note)} characters; the limit is {MAX_NOTE_CHARS}")
        if len(source) > MAX_SOURCE_CHARS:
            raise InputError(f"the template is {len(source):,} characters; the limit is {MAX_SOURCE_CHARS:,}")
        if not re.match(NAME_PATTERN, name):
            raise InputError(f"'{name}' is not a template name")
        source = source.replace("\r\n", "\n")
        with self._locked():
            entry = self.data.templates.get(name, TemplateEntry())
            latest = entry.latest()
            number = str(int(latest.version) + 1) if latest else _declared_version(source) or "1"
            text = with_version(source, number)
            if latest is not None:
                previous = self.history_path(name, latest.version).read_text(encoding="utf-8")
                if with_version(previous, number) == text:
                    raise ConflictError(f"nothing changed since version {latest.version} of '{name}'",
                                        hint="edit the template before saving a new version")
            checked = _check_source(text, name, self.directory)
            target = self.history_path(name, number)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                raise ConflictError(f"{target} already exists; saved versions are never overwritten",
                                    hint=f"record it in {REGISTRY_FILE} or remove the stray file") from None
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                handle.write(text)
            saved = VersionEntry(version=number, sha256=file_sha256(target), note=note, author=author,
                                 created_at=self.clock())
            assert saved.sha256 == checked
            labels = dict(entry.labels)
            if not entry.versions:
                labels.setdefault(DEFAULT_LABEL, number)  # the first version of a template is what ships
            self.data = self.data.model_copy(update={"templates": {
                **self.data.templates,
                name: entry.model_copy(update={"versions": [*entry.versions, saved], "labels": labels}),
            }})
            self._write()
            logger.info("saved %s version %s in %s", name, number, self.directory)
            if update_working:
                try:
                    working = self.working_path(name)
                except NotFoundError:
                    working = self.directory / f"{name}.md.j2"
                _atomic_write(working, text)
            return saved

    def promote(self, name: str, version: str, label: str, *, author: str | None = None) -> Promotion:
        """Point ``label`` at ``version`` (replacing any split on that label)."""
        _check_label(label)
        self.template(name, version)  # exists and is intact
        with self._locked():
            entry = self.entry(name)
            move = Promotion(label=label, target=version, author=author, at=self.clock())
            logger.info("%s: label %s now points at version %s", name, label, version)
            self._replace(name, entry.model_copy(update={
                "labels": {**entry.labels, label: version}, "promotions": [*entry.promotions, move],
            }))
            return move

    def set_split(self, name: str, label: str, split: Split, *, author: str | None = None) -> Promotion:
        """Make ``label`` split traffic between versions (every version must exist and be intact)."""
        _check_label(label)
        for version in split.weights:
            self.template(name, version)
        with self._locked():
            entry = self.entry(name)
            others = {key: s.experiment for key, s in self.splits().items() if key != f"{name}:{label}"}
            if split.experiment in others.values():
                raise ConflictError(f"experiment '{split.experiment}' is already running on another label",
                                    hint="give each experiment its own id")
            target = " / ".join(f"v{v}:{w}" for v, w in split.weights.items())
            move = Promotion(label=label, target=f"split {split.experiment} ({target}, control "
                             f"{split.control_pct:g}%)", author=author, at=self.clock())
            self._replace(name, entry.model_copy(update={
                "labels": {**entry.labels, label: split}, "promotions": [*entry.promotions, move],
            }))
            return move

    def _replace(self, name: str, entry: TemplateEntry) -> None:
        self.data = self.data.model_copy(update={"templates": {**self.data.templates, name: entry}})
        self._write()


def _declared_version(source: str) -> str | None:
    match = re.search(r'^version:\s*"?([0-9]+)"?\s*$', source.split("\n---", 1)[0], re.MULTILINE)
    return match.group(1) if match else None


def _check_label(label: str) -> None:
    if not re.match(NAME_PATTERN, label) or label == WORKING or label.isdigit():
        raise InputError(f"'{label}' cannot be a label",
                            hint="use lower-case letters, digits, '-' or '_' (not a number, not 'working')")


def _check_source(text: str, name: str, directory: Path) -> str:
    """Load ``text`` as a template from a scratch file (same checks as any template) and return its hash."""
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        path = Path(scratch) / f"{name}.md.j2"
        path.write_text(text, encoding="utf-8")
        template = load_template(path)
        if template.name != name:
            raise DataError(f"{name}.md.j2", f"front-matter name is '{template.name}'; a version of '{name}' "
                            f"must keep the name '{name}'", field="name", line=2)
        return template.sha256


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(temp, 0o644)  # mkstemp makes 0600; prompts are shared, reviewed files
    os.replace(temp, path)


def load_templates(directory: Path | None = None, *, label: str | None = None) -> dict[str, PromptTemplate]:
    """What the pipeline drafts with: every template in ``directory`` (default: the configured prompts).

    When the directory holds a registry (``registry.yaml``), each registered template is the saved version
    ``label`` points at (default ``production``), not the working copy, so drafts only ever use immutable,
    hash-checked versions; templates that were never registered are used as they are.
    """
    directory = directory or default_prompts_dir()
    templates = load_working_templates(directory)
    if (directory / REGISTRY_FILE).exists():
        templates = Registry.open(directory).labelled(templates, label or DEFAULT_LABEL)
    return templates
