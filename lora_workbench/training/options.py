"""The objects training settings travel in.

`TrainOptions` is one frozen value per setting of `settings.SETTINGS` (generated from that table, so
a new setting is a new field): the node, the CLI and the tests build one, `train.plan()` validates it
once, and the command builder reads it. `OptionSet` is what the chainable option nodes pass along
(LORA_TRAIN_OPTIONS): the settings given so far and which node gave each, so a setting given twice
is an error that names both nodes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from ..errors import ValidationError
from .settings import SETTING, SETTINGS
from .validation import check_setting


def coerce(name: str, value: Any) -> Any:
    """A widget/JSON value as the setting's type where that is lossless (4 -> 4.0, 3.0 -> 3); an int
    beyond any float stays an int, which the setting's bounds then refuse by name."""
    kind = SETTING[name].type
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value) if abs(value) < 2**1023 else value
    if kind is int and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    return value


def _post_init(self) -> None:
    """Numbers as the setting's type whichever way the object was made (4 -> 4.0 for a float
    setting), so equal options give equal cache keys."""
    for s in SETTINGS:
        value = getattr(self, s.name)
        fixed = coerce(s.name, value)
        if fixed is not value:
            object.__setattr__(self, s.name, fixed)


def _to_dict(self) -> dict:
    return {s.name: getattr(self, s.name) for s in SETTINGS}


def _non_defaults(self) -> dict:
    """The settings that differ from their defaults."""
    return {s.name: getattr(self, s.name) for s in SETTINGS if getattr(self, s.name) != s.default}


def _replace(self, **changes):
    return dataclasses.replace(self, **{k: coerce(k, v) for k, v in changes.items()})


def _from_values(cls, values: Mapping[str, Any] | None = None, **more):
    """Options from {setting: value}; an unknown name is a sentence, not a silent default."""
    given = {**(values or {}), **more}
    unknown = sorted(set(given) - set(SETTING))
    if unknown:
        raise ValidationError(
            f"Unknown training setting(s): {', '.join(unknown)}. Known settings are listed in docs/settings.md."
        )
    return cls(**{k: coerce(k, v) for k, v in given.items()})


def _from_record(cls, data: Mapping[str, Any]):
    """Options from a run.json record: unknown (older or newer) keys are ignored."""
    return cls(**{k: coerce(k, v) for k, v in data.items() if k in SETTING})


TrainOptions = dataclasses.make_dataclass(
    "TrainOptions",
    [(s.name, s.type, dataclasses.field(default=s.default)) for s in SETTINGS],
    frozen=True,
    namespace={
        "__doc__": "Every setting of one training run (settings.SETTINGS); frozen, built once, validated once.",
        "__post_init__": _post_init,
        "to_dict": _to_dict,
        "non_defaults": _non_defaults,
        "replace": _replace,
        "from_values": classmethod(_from_values),
        "from_record": classmethod(_from_record),
        "__module__": __name__,
    },
)


@dataclasses.dataclass(frozen=True)
class OptionSet:
    """Settings given by option nodes (LORA_TRAIN_OPTIONS), each with the node that gave it; and the
    settings of an imported kohya_ss config (`base`), which option nodes override and which override
    the trainer's own widgets."""

    values: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)
    base: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    base_source: str = ""
    base_import: Any = None  # the sd_scripts.kohya_gui.GuiImport the base came from (refused keys, report)
    ignore_unsupported: bool = False  # train without the config's refused keys instead of stopping

    def explicit(self, main: Mapping[str, str] | None = None) -> dict[str, str]:
        """{setting: who gave it} of what the user set explicitly: every option node's settings (and
        `main`, the trainer's own widgets that count as set)."""
        return {**(main or {}), **self.sources}

    def resolved(self, widgets: Mapping[str, Any], explicit_widgets: Mapping[str, str]) -> dict:
        """The trainer's widgets, the config's settings and the option nodes' in order of precedence:
        option node (anywhere in the chain) > a widget counted as set > config > widget at its default.
        Stops on a config key refused and not settled by an explicit setting (unless ignored)."""
        explicit = self.explicit(explicit_widgets)
        if self.base_import is not None:
            self.base_import.check(explicit, self.ignore_unsupported)
            explicit = self.base_import.widened(explicit)
        base = {k: v for k, v in self.base.items() if k not in explicit}
        return {**widgets, **base, **self.values}

    def settings(self) -> dict:
        """What the chain sets: the imported config's settings, then the option nodes' (which win)."""
        return {**self.base, **self.values}

    def with_base(
        self, values: Mapping[str, Any], source: str, imported: Any = None, ignore_unsupported: bool = False
    ) -> OptionSet:
        """A new set with an imported config's settings as its base; one config per chain."""
        if self.base_source:
            raise ValidationError(
                f"Two kohya_ss configs in one option chain: {self.base_source} and {source}; keep one."
            )
        checked = {}
        for name, value in values.items():
            if name not in SETTING:
                raise ValidationError(f"{source}: unknown training setting {name!r}.")
            checked[name] = coerce(name, value)
            check_setting(SETTING[name], checked[name])
        return dataclasses.replace(
            self,
            base=checked,
            base_source=source,
            base_import=imported,
            ignore_unsupported=ignore_unsupported,
        )

    def add(self, values: Mapping[str, Any], source: str) -> OptionSet:
        """A new set with `values` from `source`, each checked; a setting already set is an error."""
        given = {}
        for name, value in values.items():
            if name not in SETTING:
                raise ValidationError(f"{source}: unknown training setting {name!r}.")
            if name in self.values:
                raise ValidationError(
                    f"The training setting {name} is given twice: by {self.sources[name]} and by "
                    f"{source}. Remove it from one of them (or drop one of the two option nodes)."
                )
            given[name] = coerce(name, value)
            try:
                check_setting(SETTING[name], given[name])
            except ValidationError as exc:
                raise ValidationError(f"{source}: {exc}") from None
        return dataclasses.replace(
            self,
            values={**self.values, **given},
            sources={**self.sources, **dict.fromkeys(given, source)},
        )


__all__ = ["OptionSet", "TrainOptions", "coerce"]
