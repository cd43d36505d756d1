"""Write a labelled text data set from the docstrings of Python's standard library (no download).

    python -m examples.text_data --out data/docstrings.csv

No installable package was found that ships a labelled text corpus inside it (the usual ones,
20 Newsgroups, IMDB, SMS Spam, are downloaded on first use). The standard library's docstrings are
real English prose that every Python installation carries: each row is the first paragraph of the
docstring of a public function, class or method, and the label is the package it documents (asyncio,
email, http, unittest, xml, ...): a topic-classification task. The text depends on the Python
version; the snapshot's content hash pins the rows a run used.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import inspect
import os
import pkgutil
from pathlib import Path

PACKAGES = ("asyncio", "email", "http", "importlib", "logging", "multiprocessing", "unittest", "xml")
MIN_WORDS = 4


def _first_paragraph(doc: str) -> str:
    para = inspect.cleandoc(doc).split("\n\n")[0]
    return " ".join(para.split())


def _docstrings(package: str) -> list[str]:
    try:
        root = importlib.import_module(package)
    except ImportError:
        return []
    modules = [root]
    for info in pkgutil.walk_packages(getattr(root, "__path__", []), prefix=f"{package}."):
        if any(part.startswith("_") or part in ("test", "tests", "__main__") for part in info.name.split(".")):
            continue
        try:
            modules.append(importlib.import_module(info.name))
        except Exception:  # noqa: BLE001 - a module that cannot import on this platform is left out
            continue
    seen: set[str] = set()
    out = []

    def add(obj: object) -> None:
        doc = inspect.getdoc(obj) if callable(obj) else None
        if not doc:
            return
        text = _first_paragraph(doc)
        if len(text.split()) >= MIN_WORDS and text not in seen:
            seen.add(text)
            out.append(text)

    for mod in sorted(modules, key=lambda m: m.__name__):
        for name, obj in sorted(vars(mod).items()):
            if name.startswith("_") or getattr(obj, "__module__", None) != mod.__name__:
                continue
            add(obj)
            if inspect.isclass(obj):
                for mname, member in sorted(vars(obj).items()):
                    if not mname.startswith("_"):
                        add(member)
    return out


def write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    rows = 0
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["row_id", "text", "package"])
        for package in PACKAGES:
            for text in _docstrings(package):
                w.writerow([rows, text, package])
                rows += 1
    os.replace(tmp, path)
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m examples.text_data", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="data/docstrings.csv", help="the CSV to write (default: %(default)s)")
    args = p.parse_args(argv)
    print(write(Path(args.out)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
