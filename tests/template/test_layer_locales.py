"""The built CoreLayer ships Babel's locale data for our languages only, and still formats dates.

layers/core/Makefile deletes babel/locale-data/*.dat after pip install except root.dat (every
locale's parent) and en, de, sl with their regional variants (BABEL_LOCALES): the rest was about
29 MiB of the layer. These tests read what `make build` made (.aws-sam/build/CoreLayer) and run the
layer's own (pure-Python) Babel, jinja2 and rightsdesk.render.i18n in a Python that sees nothing else:
no site-packages, so no other Babel and no other locale data can stand in.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from rightsdesk.platform.config import SUPPORTED_LOCALES

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / ".aws-sam" / "build" / "CoreLayer" / "python"
MAKEFILE = ROOT / "layers" / "core" / "Makefile"


@pytest.fixture(scope="module")
def layer() -> Path:
    if not LAYER.is_dir():
        pytest.fail(f"{LAYER.relative_to(ROOT)} is missing: run `make build` first")
    return LAYER


def test_the_makefile_keeps_exactly_our_languages():
    kept = re.search(r"(?m)^BABEL_LOCALES\s*:?=\s*(.+)$", MAKEFILE.read_text())
    assert kept, "layers/core/Makefile names the locales it keeps (BABEL_LOCALES)"
    assert set(kept.group(1).split()) == set(SUPPORTED_LOCALES)


def test_the_layer_holds_no_other_locale_data(layer):
    data = layer / "babel" / "locale-data"
    names = {path.name for path in data.glob("*.dat")}
    others = sorted(
        name
        for name in names
        if name != "root.dat" and name.removesuffix(".dat").split("_")[0] not in SUPPORTED_LOCALES
    )
    assert others == [], f"{len(others)} other locales' data, e.g. {others[:5]}"
    needed = {"root.dat", *(f"{locale}.dat" for locale in SUPPORTED_LOCALES)}
    assert needed <= names
    assert {"en_001.dat", "en_GB.dat", "en_US_POSIX.dat", "de_AT.dat", "sl_SI.dat"} <= names, "regional variants stay"
    assert (data / "LICENSE.unicode").is_file(), "the data's licence ships with what is left of it"
    assert (layer / "babel" / "global.dat").is_file()
    size = sum(path.stat().st_size for path in data.glob("*.dat"))
    assert size < 4 * 2**20, f"{size / 2**20:.1f} MiB of locale data"


_CHILD = r"""
import json, sys
from datetime import date, datetime, timezone
layer = sys.argv[1]
sys.path.insert(0, layer)
import babel, jinja2
from babel import Locale, dates
from rightsdesk.render import i18n
assert all(m.__file__.startswith(layer) for m in (babel, jinja2, i18n)), "everything from the layer"
moment = datetime(2026, 4, 10, 23, 59, 59, 999999, tzinfo=timezone.utc)
out = {}
for locale in ("en", "de", "sl"):
    out[locale] = {
        "date": i18n.format_date(moment, locale),
        "datetime": i18n.format_datetime("2026-04-10T23:59:59Z", locale),
        "short": dates.format_date(date(2026, 4, 10), "short", locale=locale),
        "month": Locale.parse(locale).months["format"]["wide"][4],
        "catalog": i18n.gettext("Verified", locale),
    }
# What i18n.normalize never passes on, Babel still knows from the regional data that stays.
out["de_AT"] = dates.format_date(date(2026, 1, 10), "long", locale="de_AT")
out["en_GB"] = dates.format_date(date(2026, 4, 10), "short", locale="en_GB")
try:
    Locale.parse("fr")
    out["fr"] = "present"
except Exception as error:
    out["fr"] = type(error).__name__
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def formatted(layer) -> dict:
    # -I: no PYTHONPATH, no user site; -S: no site-packages (this venv's Babel has every locale);
    # -B: no __pycache__ written into the build (the layer ships none)
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-B", "-c", _CHILD, str(layer)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_dates_format_in_every_language_from_the_layer_alone(formatted):
    assert formatted["en"]["date"] == "April 10, 2026"
    assert formatted["de"]["date"] == "10. April 2026"
    assert formatted["sl"]["date"] == "10. april 2026"
    assert formatted["de"]["datetime"] == "10. April 2026, 23:59 UTC"
    assert formatted["sl"]["datetime"].startswith("10. april 2026") and "23:59 UTC" in formatted["sl"]["datetime"]
    assert "April 10, 2026" in formatted["en"]["datetime"] and "11:59" in formatted["en"]["datetime"]
    assert (formatted["de"]["short"], formatted["sl"]["short"]) == ("10.04.26", "10. 4. 26")
    assert (formatted["en"]["month"], formatted["de"]["month"], formatted["sl"]["month"]) == ("April", "April", "april")


def test_the_catalogs_and_regional_variants_still_work(formatted):
    assert formatted["de"]["catalog"] != "Verified" and formatted["sl"]["catalog"] != "Verified"
    assert formatted["de_AT"] == "10. Jänner 2026", "de_AT's own month name, from its data over de's"
    assert formatted["en_GB"] == "10/04/2026"


def test_other_locales_are_gone(formatted):
    assert formatted["fr"] == "UnknownLocaleError"
