"""What the knobs' declaration renders into: the list of keys (`mnistlab keys`, the CLI's help, the table in
docs/configuration.md) and the JSON Schema of a config (the lab's form and the first check of its server)."""

from mnistlab.core.config.model import KNOBS


def _shown(value):
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def describe_keys(family: str | None = None) -> list[dict]:
    """Every config key (only FAMILY's and the shared ones, if given): name, type, default, choices, help, family."""
    keys = []
    for spec in KNOBS.values():
        if family and spec.family and spec.family != family:
            continue
        default = spec.family_defaults.get(family, None) if spec.family_defaults and family else spec.default
        if spec.name == "family" and family:
            default = family  # `keys cnn` lists a CNN's keys: its family is cnn
        if spec.family_defaults and not family:
            default = "per family: " + ", ".join(f"{name} {value}" for name, value in spec.family_defaults.items())
        keys.append(
            {
                "name": spec.name,
                "type": spec.type_name(),
                "default": _shown(default),
                "choices": list(spec.choices),
                "aliases": dict(spec.aliases),
                "bounds": spec.bounds_text(),
                "help": spec.help,
                "family": spec.family,
            }
        )
    return keys


def json_schema(family: str | None = None) -> dict:
    """A JSON Schema (2020-12) of a config: what the lab's form renders and what its server checks first.

    `x-family` names the family a key applies to; `x-aliases` the other
    spellings that `--set` takes; `x-family-defaults` the per-family default
    of a key whose default is null.
    """
    properties = {}
    for spec in KNOBS.values():
        if family and spec.family and spec.family != family:
            continue
        base = spec.base_type
        if spec.is_pair or spec.is_list:
            items = {"type": "integer"}
            schema = {"type": "array", "items": items}
            if spec.is_pair:
                schema.update(minItems=1, maxItems=2)
        else:
            items = schema = {"type": {bool: "boolean", int: "integer", float: "number", str: "string"}[base]}
        for bound, name in (
            ("minimum", "minimum"),
            ("maximum", "maximum"),
            ("exclusive_minimum", "exclusiveMinimum"),
            ("exclusive_maximum", "exclusiveMaximum"),
        ):
            if getattr(spec, bound) is not None:
                items[name] = getattr(spec, bound)
        if spec.min_items:
            schema["minItems"] = spec.min_items
        if spec.max_items is not None:
            schema["maxItems"] = spec.max_items
        if spec.choices:
            schema["enum"] = list(spec.choices)
        if spec.optional:
            schema = {"anyOf": [schema, {"type": "null"}]}
        default = spec.default
        schema.update(
            title=spec.name, description=spec.help, default=list(default) if isinstance(default, tuple) else default
        )
        if spec.family:
            schema["x-family"] = spec.family
        if spec.aliases:
            schema["x-aliases"] = dict(spec.aliases)
        if spec.family_defaults:
            schema["x-family-defaults"] = dict(spec.family_defaults)
        properties[spec.name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"mnistlab config ({family})" if family else "mnistlab config",
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
