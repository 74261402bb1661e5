"""Command-line flags generated from frozen config dataclasses.

Each field becomes ``--prefix.field-name`` with its attribute docstring as help text, parsed by
its annotation (int, float, str, bool, Literal, ``X | None``, ``tuple[int, ...]``).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import functools
import inspect
import textwrap
import types
import typing
from typing import Any


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Attribute docstrings (a string literal right after a field) of a dataclass and its bases."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, after in zip(body, body[1:], strict=False):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                docs[node.target.id] = " ".join(after.value.value.split())
    return docs


def flag_name(prefix: str, field: str) -> str:
    """``--prefix.field-name`` (or ``--field-name`` without a prefix)."""
    name = field.replace("_", "-")
    return f"--{prefix}.{name}" if prefix else f"--{name}"


def _parser_for(annotation: Any, flag: str) -> tuple[Any, dict[str, Any]]:
    """(type function, extra add_argument keywords) for an annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType) and type(None) in args:
        inner = next(a for a in args if a is not type(None))
        convert, extra = _parser_for(inner, flag)

        def optional(text: str) -> Any:
            return None if text.lower() == "none" else convert(text)

        extra = {**extra, "metavar": f"{extra.get('metavar', 'VALUE')}|none"}
        extra.pop("choices", None)
        return optional, extra
    if origin is typing.Literal:
        return str, {"choices": list(args), "metavar": "{" + ",".join(map(str, args)) + "}"}
    if origin is tuple:
        return int, {"nargs": "+", "metavar": "INT"}
    if annotation is bool:
        return None, {"action": argparse.BooleanOptionalAction}
    if annotation is int:
        return int, {"metavar": "INT"}
    if annotation is float:
        return float, {"metavar": "FLOAT"}
    return str, {"metavar": "TEXT"}


def add_dataclass_flags(
    parser: argparse.ArgumentParser, cls: type, prefix: str, defaults: Any, title: str
) -> None:
    """Add one flag per field of ``cls`` (defaults taken from the instance ``defaults``)."""
    group = parser.add_argument_group(title)
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        flag = flag_name(prefix, field.name)
        convert, extra = _parser_for(hints[field.name], flag)
        default = getattr(defaults, field.name)
        # argparse formats help with %: a docstring's "2%" would break --help.
        help_text = f"{docs.get(field.name, '')} (default: {default})".strip().replace("%", "%%")
        kwargs: dict[str, Any] = {"dest": f"{prefix}.{field.name}", "default": None, **extra}
        if convert is not None:
            kwargs["type"] = convert
        group.add_argument(flag, help=help_text, **kwargs)


def overrides(namespace: argparse.Namespace, prefix: str) -> dict[str, Any]:
    """Field values given on the command line for ``prefix`` (lists become tuples)."""
    values = {}
    for key, value in vars(namespace).items():
        if key.startswith(prefix + ".") and value is not None:
            values[key[len(prefix) + 1 :]] = tuple(value) if isinstance(value, list) else value
    return values
