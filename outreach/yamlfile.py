"""Read YAML into a pydantic model and report problems with the file, line and field.

Shared by the catalog, the rules, prompt front-matter and sequence files, so each of them says
``catalog.yaml:14: field 'plans.1.price_monthly': ...`` instead of a bare validation error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from outreach.errors import DataError

ModelT = TypeVar("ModelT", bound=BaseModel)


def _line_of(node: yaml.Node | None, location: tuple[int | str, ...]) -> int | None:
    """Walk the composed YAML node tree along a pydantic error location; return the 1-based line."""
    current = node
    line = current.start_mark.line + 1 if current is not None else None
    for part in location:
        if isinstance(current, yaml.MappingNode):
            found = None
            for key, value in current.value:
                if isinstance(key, yaml.ScalarNode) and key.value == str(part):
                    found = value
                    line = key.start_mark.line + 1
                    break
            if found is None:
                return line
            current = found
        elif isinstance(current, yaml.SequenceNode) and isinstance(part, int) and part < len(current.value):
            current = current.value[part]
            line = current.start_mark.line + 1
        else:
            return line
    return line


def parse_yaml(text: str, path: Path, *, line_offset: int = 0) -> tuple[Any, yaml.Node | None]:
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 + line_offset if mark is not None else None
        problem = getattr(error, "problem", None) or str(error)
        raise DataError(path, f"invalid YAML: {problem}", line=line) from None
    return data, node


def validate_yaml(
    model: type[ModelT], text: str, path: Path, *, line_offset: int = 0, default: Any = None
) -> ModelT:
    """Parse ``text`` (the content of ``path``) as YAML and validate it into ``model``.

    ``line_offset`` is added to line numbers (front-matter starts after the opening ``---``).
    """
    data, node = parse_yaml(text, path, line_offset=line_offset)
    if data is None:
        data = {} if default is None else default
    try:
        return model.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        location = tuple(first["loc"])
        line = _line_of(node, location)
        field = ".".join(str(part) for part in location) or None
        message = first["msg"]
        if first["type"] == "extra_forbidden":
            message = "unknown field (check the spelling; see the docs for the allowed fields)"
        raise DataError(
            path, message, line=(line + line_offset) if line is not None else None, field=field
        ) from None


def load_yaml_model(model: type[ModelT], path: Path) -> ModelT:
    if not path.exists():
        raise DataError(path, "file not found")
    return validate_yaml(model, path.read_text(encoding="utf-8"), path)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Overlay ``override`` on ``base`` key by key, recursing into nested mappings (config layering)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
