"""Prompt templates: Jinja2 files with a YAML front-matter, rendered from :class:`DraftFacts`.

Templates render in a sandbox with ``StrictUndefined`` so a misspelt variable fails at load time instead of
quietly producing an email with a hole in it. Layout for prompt caching: the ``system`` block holds the static
part (role, house style, policy, examples) and must not use account facts; the ``user`` block holds the
account-specific facts, last. Customer-written text only ever appears inside a delimited data block, with the
instruction that it is data and not instructions.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field

from outreach import bundled
from outreach.drafting.facts import (
    FACTS_CLOSE,
    FACTS_OPEN,
    TEMPLATE_HELPERS,
    DraftFacts,
    Frozen,
    PromptKind,
    PromptMotion,
    display_label,
    example_facts,
    join_and,
    template_context,
)
from outreach.errors import ConfigError, DataError, NotFoundError
from outreach.settings import Settings
from outreach.types import OfferMotion
from outreach.yamlfile import validate_yaml


def money(value: float) -> str:
    """$1,200 or $1,200.50: the same spelling the validators accept."""
    if float(value).is_integer():
        return f"${value:,.0f}"
    return f"${value:,.2f}"


def number(value: float) -> str:
    return f"{value:g}"


def make_environment(loader: jinja2.BaseLoader | None = None) -> ImmutableSandboxedEnvironment:
    """The one Jinja2 environment: sandboxed (templates are edited by marketing), StrictUndefined, no HTML
    escaping (the output is plain text), and the filters the templates share."""
    env = ImmutableSandboxedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["money"] = money
    env.filters["number"] = number
    env.filters["label"] = display_label
    env.filters["join_and"] = join_and
    return env


class ModelParams(Frozen):
    temperature: float = Field(default=0.3, ge=0, le=2)
    max_tokens: int = Field(default=700, gt=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None


class PromptMeta(Frozen):
    """The YAML front-matter of a prompt template."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    version: str
    motion: PromptMotion
    kind: PromptKind = "first_touch"
    description: str
    model: ModelParams = Field(default_factory=ModelParams)


class PromptTemplate(BaseModel):
    """A loaded, checked template. ``sha256`` is the hash of the file; every draft stores it."""

    model_config = ConfigDict(arbitrary_types_allowed=True, frozen=True)

    meta: PromptMeta
    path: Path
    sha256: str
    source: str
    body_line: int = Field(description="File line where the Jinja2 body starts (after the front-matter).")
    compiled: jinja2.Template

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def version(self) -> str:
        return self.meta.version


class RenderedPrompt(Frozen):
    template: str
    version: str
    sha256: str
    system: str = Field(description="Static part: the same for every account, so providers cache it.")
    user: str = Field(description="Account-specific facts, last.")
    params: ModelParams

    def messages(self) -> list[dict[str, str]]:
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.user}]

    def cache_key(
        self, model: str, extra: str = "", *, provider: str = "", endpoint: str = "", method: str = ""
    ) -> str:
        """What a cached answer is valid for: provider, endpoint (base URL), model, structured-output method,
        template name, version and hash, the rendered prompt, parameters and ``extra`` (a repair's context)."""
        payload = json.dumps(
            [provider, endpoint, model, method, self.template, self.version, self.sha256, self.system, self.user,
             self.params.model_dump(), extra],
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()


_ALLOWED_NAMES = set(DraftFacts.model_fields) | set(TEMPLATE_HELPERS)
#: What the system block may use: the same for every account of a catalog, so providers cache the prefix.
STATIC_NAMES = ("company", "examples", "spotlighting")


def _template_line(error: BaseException, template: jinja2.Template, offset: int) -> int | None:
    """The file line of a render error: the deepest frame of the compiled template, mapped back to the source
    (rendering single blocks bypasses Jinja's own traceback rewriting)."""
    line = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = template.get_corresponding_lineno(tb.tb_lineno)
        tb = tb.tb_next
    return line + offset if line is not None else None


def _render_block(template: jinja2.Template, block: str, context: dict[str, Any]) -> str:
    return "".join(template.blocks[block](template.new_context(context))).strip()


def load_template(path: Path) -> PromptTemplate:
    """Read and check one template: front-matter fields, Jinja2 syntax, blocks, variables, a trial render."""
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    if not text.startswith("---"):
        raise DataError(path, "missing YAML front-matter (the file must start with a '---' line)", line=1)
    lines = text.splitlines(keepends=True)
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise DataError(path, "front-matter is not closed (add a '---' line after it)", line=1)
    front = "".join(lines[1:end])
    body = "".join(lines[end + 1 :])
    offset = end + 1  # body line 1 is file line end + 2
    meta = validate_yaml(PromptMeta, front, path, line_offset=1)
    env = make_environment()
    try:
        ast = env.parse(body)
        compiled = env.from_string(body)
    except jinja2.TemplateSyntaxError as error:
        raise DataError(path, f"template syntax: {error.message}", line=(error.lineno or 0) + offset) from None
    for block in ("system", "user"):
        if block not in compiled.blocks:
            raise DataError(path, f"missing {{% block {block} %}} (a template has a system and a user block)")
    unknown = sorted(jinja2.meta.find_undeclared_variables(ast) - _ALLOWED_NAMES)
    if unknown:
        name = unknown[0]
        line = next((i + offset + 1 for i, text_line in enumerate(body.splitlines()) if name in text_line), None)
        raise DataError(
            path, f"unknown variable '{name}'", line=line,
            hint="`outreach prompts list --variables` shows the variables a template can use",
        )
    template = PromptTemplate(
        meta=meta, path=path, sha256=hashlib.sha256(raw).hexdigest(), source=text, body_line=offset + 1,
        compiled=compiled,
    )
    sample = template_context(example_facts())
    static = {name: value for name, value in sample.items() if name in STATIC_NAMES}
    try:
        _render_block(compiled, "system", static)
    except jinja2.UndefinedError as error:
        raise DataError(
            path, f"the system block may only use {', '.join(STATIC_NAMES)} (static prefix for caching): "
                  f"{error.message}",
            line=_template_line(error, compiled, offset),
        ) from None
    try:
        _render_block(compiled, "user", sample)
    except (jinja2.UndefinedError, jinja2.TemplateError) as error:
        raise DataError(path, f"template does not render: {error}", line=_template_line(error, compiled, offset)) from None
    return template


def default_prompts_dir(settings: Settings | None = None) -> Path:
    """``OUTREACH_PROMPTS_DIR``, else the workspace's ``prompts/``, else the packaged prompts."""
    return bundled.locate("prompts", settings).path


def load_working_templates(directory: Path | None = None) -> dict[str, PromptTemplate]:
    """The working copy: all ``*.j2`` templates in ``directory`` (files starting with ``_`` are skipped), keyed
    by name. What drafts use is :func:`outreach.drafting.registry.load_templates` (the labelled versions)."""
    directory = directory or default_prompts_dir()
    if not directory.is_dir():
        raise ConfigError(
            f"prompt directory {directory} does not exist",
            hint="check --prompts / OUTREACH_PROMPTS_DIR, or run `outreach init` to write an editable copy of the "
            "default prompts into the workspace",
        )
    templates: dict[str, PromptTemplate] = {}
    for path in sorted(directory.glob("*.j2")):
        if path.name.startswith("_"):
            continue
        template = load_template(path)
        if template.name in templates:
            raise DataError(path, f"template name '{template.name}' is also used by {templates[template.name].path.name}",
                            field="name")
        templates[template.name] = template
    if not templates:
        raise ConfigError(f"no prompt templates (*.j2) in {directory}")
    return templates


def select_template(
    templates: dict[str, PromptTemplate], motion: OfferMotion, kind: PromptKind = "first_touch"
) -> PromptTemplate:
    """The template for a motion: an exact motion match first, then one marked ``any``."""
    candidates = [t for t in templates.values() if t.meta.kind == kind]
    for wanted in (motion, "any"):
        for template in sorted(candidates, key=lambda t: t.name):
            if template.meta.motion == wanted:
                return template
    raise NotFoundError(
        f"no {kind} prompt template for motion '{motion}'",
        hint="add a template with `motion: " + motion + "` (or `any`) to the prompts directory",
    )


def get_template(templates: dict[str, PromptTemplate], name: str) -> PromptTemplate:
    if name not in templates:
        raise NotFoundError(
            f"no prompt template named '{name}'", hint=f"available: {', '.join(sorted(templates)) or 'none'}"
        )
    return templates[name]


def render(template: PromptTemplate, facts: DraftFacts) -> RenderedPrompt:
    """Render the static system block and the account-specific user block."""
    context = template_context(facts)
    try:
        system = _render_block(template.compiled, "system", {name: context[name] for name in STATIC_NAMES})
        user = _render_block(template.compiled, "user", context)
    except jinja2.TemplateError as error:
        raise DataError(
            template.path, f"template does not render: {error}", line=_template_line(error, template.compiled, template.body_line - 1)
        ) from None
    return RenderedPrompt(
        template=template.name, version=template.version, sha256=template.sha256, system=system, user=user,
        params=template.meta.model,
    )


def parse_facts(text: str) -> dict[str, Any] | None:
    """The trusted facts JSON from a rendered user message (used by the benchmark's stub server)."""
    start = text.find(FACTS_OPEN)
    end = text.find(FACTS_CLOSE, start + 1)
    if start < 0 or end < 0:
        return None
    loaded: dict[str, Any] = json.loads(text[start + len(FACTS_OPEN) : end])
    return loaded
