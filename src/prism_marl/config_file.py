"""A run's configuration as a TOML file: ``prism-marl train --config FILE`` and ``--print-config``.

The file has the shape of ``config.json`` (``config.to_dict``): run fields at the top level,
``algo`` the algorithm's name, and one table each for ``[sharing]`` (its ``type`` the strategy),
``[env]`` and ``[algo_config]``. Every key may be left out; a top-level ``preset`` names a
preset whose values the file's own override. ``--print-config`` writes the fully resolved form,
which ``--config`` reads back to the same run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from pathlib import Path
from typing import Any

from prism_marl.config import RunConfig, to_dict
from prism_marl.errors import ConfigError

TABLES = ("sharing", "env", "algo_config")


@dataclasses.dataclass(frozen=True)
class ConfigFile:
    """What a configuration file sets; each part is empty where the file is silent."""

    algo: str | None = None
    """The algorithm's name (top-level ``algo``)."""
    sharing: str | None = None
    """The strategy's name (``[sharing] type``)."""
    preset: str | None = None
    """A preset under the file's values (top-level ``preset``)."""
    run_fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    """The other top-level keys: RunConfig's fields."""
    sharing_fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    """``[sharing]`` without ``type``."""
    env_fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    """``[env]``."""
    algo_fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    """``[algo_config]`` without ``type``."""


def load_config_file(path: str | Path) -> ConfigFile:
    """Read a TOML configuration file; a missing or malformed file raises ``ConfigError``.

    Field names are checked later, where the run is built (``presets.build_run_config``),
    so that the file's errors and the flags' errors read alike.
    """
    try:
        data = tomllib.loads(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"--config: no such file {str(path)!r}") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        reason = " ".join(str(error).split())
        raise ConfigError(f"--config: cannot read {str(path)!r} as TOML ({reason})") from None
    for key in TABLES:
        if key in data and not isinstance(data[key], dict):
            raise ConfigError(f"--config: {key} must be a table ([{key}]) in {str(path)!r}")
    for key in ("algo", "preset"):
        if key in data and not isinstance(data[key], str):
            raise ConfigError(f"--config: {key} must be a string in {str(path)!r}")
    sharing = dict(data.pop("sharing", {}))
    algo_fields = dict(data.pop("algo_config", {}))
    algo_fields.pop("type", None)  # the class name config.json adds; `algo` decides
    return ConfigFile(
        algo=data.pop("algo", None),
        sharing=sharing.pop("type", None),
        preset=data.pop("preset", None),
        sharing_fields=sharing,
        env_fields=dict(data.pop("env", {})),
        algo_fields=algo_fields,
        run_fields=data,
    )


def dump_config(config: RunConfig, *, keep_run_dir: bool = True) -> str:
    """``config`` as TOML that ``load_config_file`` reads back to the same RunConfig.

    TOML has no null: a field at None is left out, which rebuilds it at its default (every
    such field defaults to None). ``keep_run_dir=False`` leaves out ``run_dir`` so that each
    run from the file gets a fresh directory.
    """
    data = to_dict(config)
    top = {k: v for k, v in data.items() if k not in TABLES and v is not None}
    if not keep_run_dir:
        top.pop("run_dir", None)
    lines = [f"{key} = {_value(value)}" for key, value in top.items()]
    for table in TABLES:
        lines += ["", f"[{table}]"]
        lines += [f"{k} = {_value(v)}" for k, v in data[table].items() if v is not None]
    return "\n".join(lines) + "\n"


def _value(value: Any) -> str:
    """One TOML value: bool, int, float, string or a list of them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string: the same escapes.
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"no TOML form for {value!r}")
