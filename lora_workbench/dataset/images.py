"""Which files sd-scripts trains on, and their sizes.

sd-scripts (library/train_util.py `glob_images`) globs `*<ext>` for each entry of its IMAGE_EXTENSIONS
list: .png .jpg .jpeg .webp .bmp and the same in capitals, plus .avif/.jxl when their Pillow plugins
are installed in its environment. glob's `*` skips names that start with a dot, and on Linux and macOS
it matches letter case exactly, so `x.Png` is never read there (Windows matches any case). The list is
read from the sd-scripts checkout in use when there is one, so a new version's extensions are followed.

Sizes come from Pillow's lazy open (the header only; sd-scripts reads sizes with `imagesize` and falls
back to Pillow); bench/bench_dataset.py measured it against a hand-written PNG/JPEG header parser.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO

# sd-scripts' IMAGE_EXTENSIONS at 48d368fa: lower and upper case spelled out, nothing else.
SD_SCRIPTS_EXTS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".PNG", ".JPG", ".JPEG", ".WEBP", ".BMP")
PLUGIN_EXTS = (".avif", ".AVIF", ".jxl", ".JXL")  # only with pillow_avif / pillow_jxl in its environment
IMAGE_EXTS = tuple(e for e in SD_SCRIPTS_EXTS if e.islower())  # for messages

# What `classify` answers for a file name.
IMAGE = "image"  # sd-scripts trains on it
HIDDEN = "hidden"  # an image extension, but the name starts with "." (glob skips it)
WRONG_CASE = "case"  # an image extension in a letter case glob does not match on this system
PLUGIN = "plugin"  # .avif/.jxl: read only when sd-scripts' environment has the plugin


@dataclass(frozen=True)
class ImageRules:
    """sd-scripts' image globbing: the extensions it lists and whether case matters (it does off Windows)."""

    extensions: tuple[str, ...] = SD_SCRIPTS_EXTS
    plugin_extensions: tuple[str, ...] = PLUGIN_EXTS
    case_sensitive: bool = os.name != "nt"

    @cached_property
    def _lower(self) -> frozenset[str]:
        return frozenset(e.lower() for e in self.extensions)

    @cached_property
    def _plugin_lower(self) -> frozenset[str]:
        return frozenset(e.lower() for e in self.plugin_extensions) - self._lower

    def classify(self, name: str) -> str | None:
        """IMAGE, HIDDEN, WRONG_CASE, PLUGIN, or None for a file that is no image at all."""
        ext = os.path.splitext(name)[1]  # ".x.png" -> ".png"; ".png" alone has none
        if ext.lower() not in self._lower:
            return PLUGIN if ext.lower() in self._plugin_lower else None
        if name.startswith("."):
            return HIDDEN
        if self.case_sensitive and ext not in self.extensions:
            return WRONG_CASE
        return IMAGE


DEFAULT_RULES = ImageRules()
_EXT_LIST = re.compile(r"^IMAGE_EXTENSIONS\s*=\s*\[([^\]]*)\]", re.M)
_EXT_EXTEND = re.compile(r"IMAGE_EXTENSIONS\.extend\(\s*\[([^\]]*)\]\s*\)")
_STRING = re.compile(r"""["'](\.[A-Za-z0-9]+)["']""")
_rules_cache: dict[tuple[str, int], ImageRules] = {}


def rules_from_sd_scripts(train_util: str | os.PathLike) -> ImageRules:
    """The extensions an sd-scripts checkout globs, read from its library/train_util.py (no import)."""
    path = Path(train_util)
    try:
        key = (str(path), path.stat().st_mtime_ns)
    except OSError:
        return DEFAULT_RULES
    if key not in _rules_cache:
        text = path.read_text(encoding="utf-8", errors="replace")
        m = _EXT_LIST.search(text)
        base = tuple(_STRING.findall(m.group(1))) if m else ()
        extra = tuple(e for block in _EXT_EXTEND.findall(text) for e in _STRING.findall(block))
        _rules_cache[key] = ImageRules(base, tuple(dict.fromkeys(extra))) if base else DEFAULT_RULES
    return _rules_cache[key]


def rules_in_use() -> ImageRules:
    """The rules of the sd-scripts checkout the pack trains with ($KOHYA_SS_PATH), else sd-scripts' own."""
    from .. import paths

    try:
        base = paths.kohya_ss_path()
    except Exception:  # a broken settings file is reported where training needs it, not here
        return DEFAULT_RULES
    for candidate in (base / "library" / "train_util.py", base / "sd-scripts" / "library" / "train_util.py"):
        if candidate.is_file():
            return rules_from_sd_scripts(candidate)
    return DEFAULT_RULES


def is_image(name: str, rules: ImageRules = DEFAULT_RULES) -> bool:
    """True for a file name sd-scripts would train on."""
    return rules.classify(name) == IMAGE


# --------------------------------------------------------------------------- sizes
def image_size(source: str | os.PathLike | BinaryIO) -> tuple[int, int]:
    """(width, height) from the header through Pillow's lazy open; raises for a file it cannot read."""
    from PIL import Image

    with Image.open(source) as im:
        w, h = int(im.size[0]), int(im.size[1])
    if w <= 0 or h <= 0:
        raise ValueError(f"an image of size {w}x{h}")
    return w, h


def image_size_decoded(source: str | os.PathLike | BinaryIO) -> tuple[int, int]:
    """(width, height) after a full decode (slow; also catches pixel data that is cut off)."""
    from PIL import Image

    with Image.open(source) as im:
        im.load()
        return int(im.size[0]), int(im.size[1])
