"""The canary scan: no planted PII value may appear in clear in any file under the data root.

The generator's manifest lists every structured PII value it planted (emails, phones, names, IPs, street
addresses). The scan reads every file under the data root except the manifest itself: parquet files by their
decoded string values (compression would hide a clear value from a byte scan), every other file (Delta logs,
Dagster's storage and logs, key files, and the raw landing files, which are kept only encrypted once ingested, as are
the events sent to Kafka under synth/sent-to-kafka/) by its bytes. One Aho-Corasick automaton finds all values in
one pass per file. A landing file not ingested yet still holds clear values: a scan of a lake where some feed has
not run names what it leaves out (``exclude``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

STRUCTURED_KINDS = ("emails", "phones", "names", "ips", "street_addresses")


@dataclass(frozen=True)
class Hit:
    file: str
    kind: str
    value: str


def planted_values(manifest: dict, kinds=STRUCTURED_KINDS) -> dict[str, str]:
    return {v: kind for kind in kinds for v in manifest["pii"].get(kind, [])}


def _texts(path: Path):
    if path.suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        for column in table.columns:
            if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_binary(column.type):
                values = column.drop_null().to_pylist()
                if values:
                    yield "\n".join(v if isinstance(v, str) else v.decode("utf-8", "ignore") for v in values)
    yield path.read_bytes().decode("utf-8", "ignore")


def _boundary(text: str, i: int) -> bool:
    return i < 0 or i >= len(text) or not text[i].isalnum()


def scan(root: Path, values: dict[str, str], *, exclude: tuple[str, ...] = ("synth/manifest.json",)) -> list[Hit]:
    import ahocorasick

    automaton = ahocorasick.Automaton()
    for value, kind in values.items():
        automaton.add_word(value, (kind, value))
    automaton.make_automaton()
    root = Path(root)
    hits: set[Hit] = set()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = path.relative_to(root).as_posix()
        if any(rel == e or rel.startswith(e + "/") for e in exclude):
            continue
        for text in _texts(path):
            for end, (kind, value) in automaton.iter(text):
                start = end - len(value) + 1
                # Whole values only: "10.1.2.3" inside "110.1.2.34" is not that value.
                if _boundary(text, start - 1) and _boundary(text, end + 1):
                    hits.add(Hit(rel, kind, value))
    return sorted(hits, key=lambda h: (h.file, h.kind, h.value))


def scan_data_root(root: Path, *, not_ingested: tuple[str, ...] = ()) -> list[Hit]:
    """Every planted value, everywhere but the manifest and the ``not_ingested`` landing paths (relative to the
    data root, e.g. ``landing/customers`` where the people feeds have not run)."""
    manifest = json.loads((Path(root) / "synth" / "manifest.json").read_text())
    return scan(root, planted_values(manifest), exclude=("synth/manifest.json", *not_ingested))
