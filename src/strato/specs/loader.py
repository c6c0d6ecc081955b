"""Turn YAML documents or dicts into validated resource specs, with errors that name the file,
the document and the field path."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from strato.errors import InvalidArgument
from strato.specs.base import ResourceSpec
from strato.specs.kinds import KINDS, spec_class


def _field_names(model: type[BaseModel], seen: set[str] | None = None) -> set[str]:
    """Every field name in a model and the models nested in it (for "did you mean")."""
    names = seen if seen is not None else set()
    for name, field in model.model_fields.items():
        names.add(name)
        for candidate in (field.annotation, *getattr(field.annotation, "__args__", ())):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                _field_names(candidate, names)
    return names


def describe_validation_error(exc: ValidationError, where: str, model: type[BaseModel] | None = None) -> str:
    known = _field_names(model) if model is not None else set()
    problems = []
    for error in exc.errors():
        path = ".".join(str(p) for p in error["loc"])
        if error["type"] == "extra_forbidden":
            guess = difflib.get_close_matches(str(error["loc"][-1]), sorted(known), n=1)
            problems.append(f"{path}: unknown field" + (f" (did you mean {guess[0]!r}?)" if guess else ""))
        elif error["type"] == "missing":
            problems.append(f"{path}: required field is missing")
        else:
            message = error["msg"].removeprefix("Value error, ")
            problems.append(f"{path}: {message}" if path else message)
    return f"{where}: " + "; ".join(problems)


def parse_spec(data: Any, where: str = "spec") -> ResourceSpec:
    """Validate one resource document (a mapping with ``kind``)."""
    if not isinstance(data, dict):
        raise InvalidArgument(f"{where}: a resource must be a mapping with 'kind' and 'name'")
    kind = data.get("kind")
    if not kind:
        known = ", ".join(sorted({KINDS.get(k).KIND for k in KINDS}))
        raise InvalidArgument(f"{where}: kind: required field is missing (known kinds: {known})")
    if kind not in KINDS:
        raise InvalidArgument(f"{where}: kind: {KINDS.unknown_message(str(kind))}")
    cls = spec_class(kind)
    try:
        return cls.model_validate({**data, "kind": cls.KIND})
    except ValidationError as exc:
        raise InvalidArgument(describe_validation_error(exc, where, cls)) from None


def load_yaml_text(text: str, source: str = "<input>") -> list[ResourceSpec]:
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        position = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidArgument(f"{source}:{position}: malformed YAML: {problem}") from None
    if not documents:
        raise InvalidArgument(f"{source}: no resource found (the file is empty)")
    many = len(documents) > 1
    return [parse_spec(doc, f"{source} (document {i + 1})" if many else source) for i, doc in enumerate(documents)]


def load_yaml_file(path: str | Path) -> list[ResourceSpec]:
    """Load every resource in a YAML file. Relative paths inside (``code``, ``inputs``) stay relative
    to the file's directory; ``resolve_paths`` is the SDK's job."""
    file = Path(path)
    if not file.is_file():
        raise InvalidArgument(f"{file}: file not found")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidArgument(f"{file}: not a UTF-8 text file") from None
    return load_yaml_text(text, str(file))
