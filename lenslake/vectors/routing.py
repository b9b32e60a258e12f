"""A/B routing of vector reads: experiment → variants → model version (and publish tag), by deterministic hash
bucketing of the subject (a user token or a session id). What the recommendation engine calls to know which vectors
a request reads.

The routing lives in a YAML file (``lenslake/vectors/routing.yaml``, or the ``embedding_routing_file`` setting):
per experiment a vector table, a salt and weighted variants. ``bucket`` is sha256 of ``<salt>:<subject>`` (the same
number in every process and engine), ``assign`` maps the bucket to a variant by the cumulative weights, and
``Router.route`` resolves the variant to the table, model version and publish tag to read (cached until
``refresh``; a new publish is seen after it). ``route`` is the one-call form.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from lenslake.vectors.encoder import ModelVersion
from lenslake.vectors.store import TABLE_KEYS, VectorStore, live_model_versions

BUCKETS = 10_000


@dataclass(frozen=True)
class Variant:
    name: str
    model_version: str
    weight: float
    tag: str | None = None  # a fixed publish tag (a rollback target); default: the version's newest publish


@dataclass(frozen=True)
class Experiment:
    name: str
    table: str
    salt: str
    variants: tuple[Variant, ...]

    def bounds(self) -> list[tuple[int, Variant]]:
        """Each variant with weight > 0 and the first bucket past its share, in listing order."""
        total = sum(v.weight for v in self.variants)
        out, acc = [], 0.0
        for v in self.variants:
            if v.weight > 0:
                acc += v.weight
                out.append((round(BUCKETS * acc / total), v))
        return out


@dataclass(frozen=True)
class Route:
    experiment: str
    variant: str
    bucket: int
    table: str
    key: str
    model_version: str
    tag: str
    table_version: int  # the LanceDB version the tag points at


def default_routing_file() -> Path:
    return Path(__file__).with_name("routing.yaml")


def load_routing(settings=None, path: str | Path | None = None) -> dict[str, Experiment]:
    """The experiments of the routing file, validated: a known vector table, unique variant names, parseable model
    versions, weights >= 0 with a positive sum."""
    import yaml

    path = Path(path or (settings.embedding_routing_file if settings is not None and settings.embedding_routing_file
                         else default_routing_file()))
    doc = yaml.safe_load(path.read_text()) or {}
    return parse_routing(doc, source=str(path))


def parse_routing(doc: dict, source: str = "routing") -> dict[str, Experiment]:
    experiments = {}
    for name, spec in (doc.get("experiments") or {}).items():
        where = f"{source}: experiment {name!r}"
        table = spec.get("table", "product_embeddings")
        if table not in TABLE_KEYS:
            raise ValueError(f"{where}: unknown vector table {table!r} (one of {', '.join(TABLE_KEYS)})")
        variants = []
        for v in spec.get("variants") or []:
            weight = float(v.get("weight", 0))
            if weight < 0:
                raise ValueError(f"{where}: variant {v.get('name')!r} has a negative weight")
            variants.append(Variant(str(v["name"]), str(ModelVersion.parse(str(v["model_version"]))), weight,
                                    v.get("tag")))
        names = [v.name for v in variants]
        if len(set(names)) != len(names):
            raise ValueError(f"{where}: variant names repeat: {names}")
        if not variants or sum(v.weight for v in variants) <= 0:
            raise ValueError(f"{where}: needs at least one variant with a positive weight")
        experiments[name] = Experiment(name, table, str(spec.get("salt") or name), tuple(variants))
    return experiments


def bucket(salt: str, subject: str) -> int:
    """The subject's bucket in 0..BUCKETS-1: the first 8 bytes of sha256("<salt>:<subject>") modulo BUCKETS."""
    digest = hashlib.sha256(f"{salt}:{subject}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def assign(experiment: Experiment, subject: str) -> tuple[Variant, int]:
    """The variant a subject sees in an experiment (the same every time), and its bucket."""
    b = bucket(experiment.salt, str(subject))
    for upper, variant in experiment.bounds():
        if b < upper:
            return variant, b
    return experiment.bounds()[-1][1], b  # rounding at the very top


@dataclass
class Router:
    """Routes subjects to vector versions; the resolution of each variant to a publish tag is cached (``refresh``
    after a publish)."""

    settings: object
    experiments: dict[str, Experiment] | None = None
    _resolved: dict = field(default_factory=dict, repr=False)
    _stores: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        if self.experiments is None:
            self.experiments = load_routing(self.settings)

    def refresh(self) -> None:
        self._resolved.clear()

    def store(self, table: str) -> VectorStore:
        if table not in self._stores:
            self._stores[table] = VectorStore.from_settings(self.settings, table, TABLE_KEYS[table])
        return self._stores[table]

    def resolve(self, experiment: Experiment, variant: Variant) -> tuple[str, int]:
        """The publish tag a variant reads and the table version it points at; a variant of a model version that is
        not live, or that has no publish, raises LookupError."""
        cache_key = (experiment.name, variant.name)
        if cache_key not in self._resolved:
            store = self.store(experiment.table)
            where = f"experiment {experiment.name!r}, variant {variant.name!r}"
            if variant.tag is None and variant.model_version not in live_model_versions(self.settings):
                raise LookupError(f"{where}: model version {variant.model_version} is not live (settings: "
                                  f"{', '.join(live_model_versions(self.settings))})")
            tags = {t.name: t.version for t in store.tags()} if store.exists() else {}
            if variant.tag is not None:
                if variant.tag not in tags:
                    raise LookupError(f"{where}: no tag {variant.tag!r} in {experiment.table}")
                tag = variant.tag
            else:
                published = store.published(variant.model_version) if store.exists() else None
                if published is None:
                    raise LookupError(f"{where}: {experiment.table} has no publish of {variant.model_version}")
                tag = published.name
            self._resolved[cache_key] = (tag, tags[tag])
        return self._resolved[cache_key]

    def route(self, experiment: str, subject: str) -> Route:
        if experiment not in self.experiments:
            raise KeyError(f"no experiment {experiment!r} (experiments: {', '.join(self.experiments) or 'none'})")
        exp = self.experiments[experiment]
        variant, b = assign(exp, subject)
        tag, version = self.resolve(exp, variant)
        return Route(exp.name, variant.name, b, exp.table, TABLE_KEYS[exp.table], variant.model_version, tag, version)

    def neighbours(self, route: Route, vector, k: int = 10, exact: bool = False):
        """The k nearest rows to ``vector`` among the routed model version's rows at the routed tag (key, score)."""
        return self.store(route.table).search(vector, k=k, model_version=route.model_version, tag=route.tag,
                                              exact=exact)


def route(settings, experiment: str, subject: str, experiments: dict[str, Experiment] | None = None) -> Route:
    """The variant ``subject`` sees in ``experiment`` and the vectors it reads: table, model version, publish tag."""
    return Router(settings, experiments).route(experiment, subject)
