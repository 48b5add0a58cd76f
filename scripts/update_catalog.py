"""Keep the Chinese message catalog in step with the code.

    python scripts/update_catalog.py          extract every _() / N_() message from cnnsetup/,
                                              merge it into the .po (new ones untranslated,
                                              vanished ones dropped), compile the .mo
    python scripts/update_catalog.py --check  change nothing; exit 1 if a message is missing or
                                              untranslated, or the .mo is not the compiled .po

Needs babel (in the `test` extra); cnnsetup itself only needs the standard library's gettext.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cnnsetup"
LOCALE = "zh_CN"
PO_PATH = PACKAGE / "locale" / LOCALE / "LC_MESSAGES" / "cnnsetup.po"
MO_PATH = PO_PATH.with_suffix(".mo")
KEYWORDS = {"_": None, "N_": None, "ngettext": (1, 2)}
HEADER = """\
# Chinese (Simplified) messages for cnnsetup.
# Terms follow cnnsetup/locale/GLOSSARY.zh.md; regenerate with scripts/update_catalog.py."""


def extract() -> Catalog:
    """Every translatable message in the package, as a template catalog."""
    template = Catalog(project="cnnsetup", fuzzy=False)
    for filename, lineno, message, comments, context in extract_from_dir(
        PACKAGE, method_map=[("**.py", "python")], keywords=KEYWORDS
    ):
        template.add(message, locations=[(f"cnnsetup/{filename}", None)], auto_comments=comments,
                     context=context)
    return template


def read_catalog() -> Catalog:
    with PO_PATH.open("rb") as handle:
        return read_po(handle, locale=LOCALE, domain="cnnsetup")


def compiled(catalog: Catalog) -> bytes:
    out = io.BytesIO()
    write_mo(out, catalog, use_fuzzy=False)
    return out.getvalue()


def problems(catalog: Catalog, template: Catalog) -> list[str]:
    """What is wrong with the catalog for this code: missing or untranslated messages."""
    found = []
    for message in template:
        if not message.id:
            continue
        entry = catalog.get(message.id, context=message.context)
        if entry is None:
            found.append(f"missing: {message.id!r}")
        elif entry.fuzzy or not (all(entry.string) if isinstance(entry.string, tuple) else entry.string):
            found.append(f"untranslated: {message.id!r}")
    return found


def update() -> int:
    template = extract()
    catalog = read_catalog() if PO_PATH.exists() else Catalog(
        locale=LOCALE, domain="cnnsetup", project="cnnsetup", fuzzy=False,
        language_team="cnnsetup", last_translator="cnnsetup", header_comment=HEADER)
    catalog.update(template, no_fuzzy_matching=True, update_creation_date=False)
    catalog.obsolete.clear()
    PO_PATH.parent.mkdir(parents=True, exist_ok=True)
    with PO_PATH.open("wb") as handle:
        write_po(handle, catalog, width=100, sort_by_file=True, include_lineno=False,
                 ignore_obsolete=True)
    MO_PATH.write_bytes(compiled(read_catalog()))
    todo = problems(read_catalog(), template)
    count = sum(1 for message in template if message.id)
    print(f"{PO_PATH.relative_to(ROOT)}: {count} messages, {len(todo)} to translate")
    for line in todo:
        print("  " + line)
    return 0


def check() -> int:
    catalog = read_catalog()
    found = problems(catalog, extract())
    if MO_PATH.read_bytes() != compiled(catalog):
        found.append(f"{MO_PATH.relative_to(ROOT)} is not the compiled {PO_PATH.name}: run "
                     "python scripts/update_catalog.py")
    for line in found:
        print(line)
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; report problems")
    args = parser.parse_args(argv)
    return check() if args.check else update()


if __name__ == "__main__":
    sys.exit(main())
