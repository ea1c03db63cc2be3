"""Read YAML into a pydantic model and report problems with the file, line and field.

Shared by the catalog, the rules, prompt front-matter and sequence files, so each of them says
``catalog.yaml:14: field 'plans.1.price_monthly': ...`` instead of a bare validation error.

YAML itself is lenient where a configuration file should not be: a key given twice silently keeps the
last value (``price_monthly: 149`` then ``14900`` is a $14,900 plan), ``.nan``, ``.inf`` or ``1.0e+400`` are
floats, and whole numbers have no size limit. :func:`parse_yaml` refuses all three, naming the line and the
dotted field, before any model sees the data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from outreach.errors import DataError, read_input

ModelT = TypeVar("ModelT", bound=BaseModel)

# libyaml's parser when PyYAML was built with it (twenty times faster on catalog.yaml), else PyYAML's own.
_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_FLOAT_TAG = "tag:yaml.org,2002:float"
_INT_TAG = "tag:yaml.org,2002:int"
MAX_WHOLE_NUMBER = 2**63 - 1  # the engine keeps whole numbers as 64-bit integers
_MERGE_TAG = "tag:yaml.org,2002:merge"


class FieldProblem(ValueError):
    """Raised by a model validator to blame a field below the model instead of the model itself.

    ``location`` is relative to the model being validated (``("bundles", 2, "addons", 0)``), so a
    cross-reference error in catalog.yaml names the line and dotted field of the wrong value.
    """

    def __init__(self, location: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.location = location
        self.message = message


def _line_of(node: yaml.Node | None, location: tuple[int | str, ...]) -> int | None:
    """Walk the composed YAML node tree along a pydantic error location; return the 1-based line of the value
    it names, or of the nearest mapping or list holding it when it is missing (None: missing at the top, a
    problem of the whole file)."""
    current = node
    line = current.start_mark.line + 1 if current is not None else None
    if location and isinstance(current, yaml.MappingNode):
        line = None  # until the first key is found
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


def _walk(node: yaml.Node, location: tuple[int | str, ...], seen: set[int]) -> Iterator[tuple[yaml.Node, tuple[int | str, ...]]]:
    """Every node under ``node`` with its dotted location (each node once: anchors may share or nest)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    yield node, location
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            part: int | str = key.value if isinstance(key, yaml.ScalarNode) else "?"
            yield from _walk(value, (*location, part), seen)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, (*location, index), seen)


def _strictness_problem(root: yaml.Node, path: Path, line_offset: int) -> DataError | None:
    """The first key given twice in one mapping, or the first float that is not finite."""
    loader = yaml.SafeLoader("")
    for node, location in _walk(root, (), set()):
        if isinstance(node, yaml.MappingNode):
            first_line: dict[tuple[str, str], int] = {}
            for key, _ in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    continue  # ``<<: *defaults`` may be overridden key by key; that is what merging is for
                line = key.start_mark.line + 1 + line_offset
                first = first_line.get((key.tag, key.value))
                if first is None:
                    first_line[key.tag, key.value] = line
                else:
                    return DataError(
                        path,
                        f"duplicate key '{key.value}' (first given on line {first})",
                        line=line,
                        field=_dotted((*location, key.value)),
                        hint="a key given twice keeps only its last value; remove the one you do not mean",
                    )
        elif (
            isinstance(node, yaml.ScalarNode)
            and node.tag == _FLOAT_TAG
            and not math.isfinite(loader.construct_yaml_float(node))
        ):
            return DataError(
                path,
                f"'{node.value}' is not a finite number",
                line=node.start_mark.line + 1 + line_offset,
                field=_dotted(location),
            )
        elif (
            isinstance(node, yaml.ScalarNode)
            and node.tag == _INT_TAG
            and abs(loader.construct_yaml_int(node)) > MAX_WHOLE_NUMBER
        ):
            return DataError(
                path,
                f"{node.value} is out of range (whole numbers are at most {MAX_WHOLE_NUMBER})",
                line=node.start_mark.line + 1 + line_offset,
                field=_dotted(location),
            )
    return None


def _dotted(location: tuple[int | str, ...]) -> str | None:
    return ".".join(map(str, location)) or None


def parse_yaml(text: str, path: Path, *, line_offset: int = 0) -> tuple[Any, yaml.Node | None]:
    """``text`` as Python data and as the node tree that knows every value's line.

    Duplicate keys and non-finite numbers are errors naming their line and dotted field.
    """
    loader = None
    try:
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is not None:
            strictness = _strictness_problem(node, path, line_offset)
            if strictness is not None:
                raise strictness
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        position = getattr(error, "position", None)  # a character YAML does not allow (ReaderError)
        if mark is not None:
            line: int | None = mark.line + 1 + line_offset
        elif isinstance(position, int):
            line = text.count("\n", 0, position) + 1 + line_offset
        else:
            line = None
        reason = getattr(error, "problem", None) or getattr(error, "reason", None) or str(error)
        raise DataError(path, f"invalid YAML: {reason}", line=line) from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, node


def _message(error: ErrorDetails) -> tuple[tuple[int | str, ...], str]:
    """Where a pydantic error points and what it says, without pydantic's "Value error, " prefix."""
    location = tuple(error["loc"])
    cause = (error.get("ctx") or {}).get("error")
    if isinstance(cause, FieldProblem):
        return (*location, *cause.location), cause.message
    if error["type"] == "extra_forbidden":
        return location, "unknown field (check the spelling; see the docs for the allowed fields)"
    if error["type"] == "missing":
        return location, "required field is missing"
    if not location and error["type"] in ("model_type", "dict_type"):
        return location, "the file must be a YAML mapping of fields (name: value), not a list or a single value"
    if error["type"] in ("value_error", "assertion_error") and cause is not None:
        return location, str(cause)
    return location, str(error["msg"])


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
        location, message = _message(error.errors()[0])
        line = _line_of(node, location)
        field = ".".join(str(part) for part in location) or None
        raise DataError(
            path, message, line=(line + line_offset) if line is not None else None, field=field
        ) from None


def read_yaml_text(path: Path, *, missing_hint: str | None = None) -> str:
    """The text of a YAML file; a missing or unreadable file, or one that is not UTF-8, is a DataError."""
    data = read_input(path, missing_hint=missing_hint)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        raise DataError(path, f"not UTF-8 text (byte {error.start})", line=line) from None


def load_yaml_model(model: type[ModelT], path: Path, *, missing_hint: str | None = None) -> ModelT:
    return validate_yaml(model, read_yaml_text(path, missing_hint=missing_hint), path)


def line_in_file(path: Path, location: tuple[int | str, ...]) -> int | None:
    """The line of the value at ``location`` in the YAML file ``path`` (an error path that lost the node)."""
    try:
        _, node = parse_yaml(read_yaml_text(path), path)
    except DataError:
        return None
    return _line_of(node, location)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Overlay ``override`` on ``base`` key by key, recursing into nested mappings (config layering)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged
