"""The one place user-facing text is translated.

Every message a user reads is written in English in the code and passes through `_()`; the
Chinese lives in the gettext catalog `cnnsetup/locale/zh_CN/LC_MESSAGES/cnnsetup.po` (compiled to
`.mo` beside it, shipped in the package). Text that must be known before a language is chosen
(click help strings built at import time) is marked with `N_()` and translated when shown.

Never translated: JSON output, finding ids, commands to paste, URLs, file paths.
"""

from __future__ import annotations

import contextlib
import gettext
import os
import sys
from pathlib import Path
from typing import Iterator, Mapping

DOMAIN = "cnnsetup"
LOCALE_DIR = Path(__file__).parent / "locale"
LANGUAGES = ("en", "zh")

# Catalog folder for each language code cnnsetup speaks.
_CATALOG = {"zh": "zh_CN"}

_translation: gettext.NullTranslations = gettext.NullTranslations()
_language = "en"
# set_language writes LANGUAGE (for click's gettext); these keep the user's own value apart from
# ours, so that a second run in the same process still reads the user's choice.
_written_language_env: str | None = None
_user_language_env: str | None = None


def _(message: str) -> str:
    """Translate `message` into the current language."""
    return _translation.gettext(message)


def N_(message: str) -> str:
    """Mark `message` for translation without translating it yet (it is translated when shown)."""
    return message


def ngettext(singular: str, plural: str, n: int) -> str:
    """Translate a message that depends on a count."""
    return _translation.ngettext(singular, plural, n)


def label(text: str) -> str:
    """A translated label ("fix:", "修复方法：") ready for the value after it: a space after an
    ASCII colon, none after a full-width one (Chinese punctuation takes no space around it)."""
    return text if text.endswith(("：", "，", "。", "；")) else text + " "


def current_language() -> str:
    """The language now in use: "en" or "zh"."""
    return _language


class _MarkMissing(gettext.NullTranslations):
    """With CNNSETUP_I18N_CHECK=1, a message the catalog lacks shows up marked in the output,
    so tests can prove a command's Chinese output holds no untranslated message."""

    def gettext(self, message: str) -> str:
        return UNTRANSLATED_MARK + message

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return UNTRANSLATED_MARK + (singular if n == 1 else plural)


UNTRANSLATED_MARK = "[untranslated] "


def set_language(language: str) -> None:
    """Switch every later `_()` call, and click's own messages, to `language` ("en" or "zh")."""
    global _translation, _language, _written_language_env, _user_language_env
    if language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}")
    _language = language
    current = os.environ.get("LANGUAGE")
    if _written_language_env is None or current != _written_language_env:
        _user_language_env = current
    # click translates "Usage:", "Options" and its errors with the stdlib's default domain;
    # pointing that domain at this catalog, in the chosen language, makes click speak it too.
    gettext.bindtextdomain(DOMAIN, str(LOCALE_DIR))
    gettext.textdomain(DOMAIN)
    os.environ["LANGUAGE"] = _written_language_env = _CATALOG.get(language, language)
    if language == "en":
        _translation = gettext.NullTranslations()
        return
    _translation = gettext.translation(
        DOMAIN, localedir=LOCALE_DIR, languages=[_CATALOG[language]], fallback=True
    )
    if os.environ.get("CNNSETUP_I18N_CHECK") == "1":
        _translation.add_fallback(_MarkMissing())


@contextlib.contextmanager
def using_language(language: str) -> Iterator[None]:
    """Speak `language` inside the block, then the language that was in use before."""
    previous, previous_env = _language, os.environ.get("LANGUAGE")
    set_language(language)
    try:
        yield
    finally:
        set_language(previous)
        if previous_env is None:
            os.environ.pop("LANGUAGE", None)
        else:
            os.environ["LANGUAGE"] = previous_env


def language_from_environment(
    env: Mapping[str, str] | None = None, platform: str | None = None
) -> str:
    """Pick the language: CNNSETUP_LANG, else the locale variables as gettext reads them, else
    (on Windows) the user's UI language, else English."""
    if env is None:
        env = dict(os.environ)
        if _written_language_env is not None and env.get("LANGUAGE") == _written_language_env:
            env.pop("LANGUAGE")  # cnnsetup's own, not the user's
            if _user_language_env is not None:
                env["LANGUAGE"] = _user_language_env
    platform = sys.platform if platform is None else platform
    chosen = env.get("CNNSETUP_LANG", "").strip().lower()
    if chosen:
        return "zh" if chosen.startswith("zh") else "en"
    # gettext's order: the first of these that is set and non-empty decides.
    for name in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            first = value.split(":")[0]
            return "zh" if first.lower().startswith("zh") else "en"
    if platform == "win32":
        return "zh" if _windows_ui_language().lower().startswith("zh") else "en"
    return "en"


def _windows_ui_language() -> str:
    """The Windows user's UI language as a locale name such as "zh_CN", or ""."""
    try:
        import ctypes
        import locale

        lang_id = ctypes.windll.kernel32.GetUserDefaultUILanguage()  # type: ignore[attr-defined]
        return locale.windows_locale.get(lang_id, "")
    except (AttributeError, OSError, ImportError):
        return ""
