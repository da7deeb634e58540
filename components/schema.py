"""The strict pydantic base shared by params.yaml's sections (components.config) and every model family's
config (components.models.base.ModelConfig). It sits below both, so config can validate model sections
through the model registry while the models never import config."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator


def is_numeric(annotation) -> bool:
    """int / float / their Optional: fields where YAML's yes/no/true/false must not pass as 1/0."""
    args = getattr(annotation, "__args__", None)
    if args:
        return any(is_numeric(a) for a in args if a is not type(None))
    return annotation in (int, float)


class StrictNumbers(BaseModel):
    """No booleans for numbers (`epochs: yes` is not 1) and no inf/nan (`lr: .inf`); unknown keys refused."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _no_booleans_for_numbers(cls, value, info):
        if isinstance(value, bool) and is_numeric(cls.model_fields[info.field_name].annotation):
            raise ValueError("expected a number, not a yes/no value")
        return value


def one_line(err: ValidationError, prefix: str = "") -> str:
    """First pydantic error as 'key: problem (got value)'."""
    e = err.errors()[0]
    key = ".".join(str(p) for p in (prefix, *e["loc"]) if p != "")
    if e["type"] == "extra_forbidden":
        return f"{key}: unknown key (not a GenZoo parameter; check the spelling against params.yaml)"
    got = e.get("input")
    got_txt = f" (got {got!r})" if not isinstance(got, dict) else ""
    return f"{key}: {e['msg'].removeprefix('Value error, ')}{got_txt}"
