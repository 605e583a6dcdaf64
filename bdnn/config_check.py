"""Validation of the pipeline configuration with short, located error messages."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import jsonschema
import yaml


class ConfigError(ValueError):
    """The configuration does not match the schema."""


def check_config(config: Mapping[str, Any], schema_path: str | os.PathLike) -> None:
    """Raise :class:`ConfigError` naming the first invalid setting, its location and the reason.

    Snakemake's own validation prints the whole configuration with the error;
    this check runs first so a typo gives one readable line.
    """
    with open(schema_path) as stream:
        schema = yaml.safe_load(stream)
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(dict(config)))
    if error is None:
        return
    location = ".".join(str(part) for part in error.absolute_path) or "(top level)"
    raise ConfigError(f"invalid configuration at {location}: {error.message}. "
                      f"The schema is {schema_path}; scenario files override config/config.yaml.")
