"""Versioned phoneme symbol table: phoneme strings <-> integer ids.

The table travels with every checkpoint and voice bundle (``to_dict`` / ``from_dict``), so a model
is always driven by the exact symbol inventory it was trained with.

Inventory of the default table (version ``DEFAULT_VERSION``):

* id 0 is ``<pad>`` (``pad_id``); ``<bos>``, ``<eos>`` and ``<blank>`` (the token Grad-TTS
  intersperses between phonemes, see ``intersperse``) follow;
* ``" "`` marks a word boundary; ``,`` ``.`` ``?`` ``!`` are pauses (every minor break, e.g. ``;``
  or ``:``, is written as ``,``);
* stress is kept as **separate symbols**: gruut writes ``"ˈoʊ"``, the front-end emits ``"ˈ", "oʊ"``.
  The model then learns one embedding per vowel plus two stress embeddings instead of three
  embeddings per vowel. ``encode`` also accepts the attached form and splits it;
* the 40 phones gruut ``en-us`` can emit (its lexicon and its g2p model, checked by the tests).
  Affricates and diphthongs are one symbol each (``"t͡ʃ"``, ``"aɪ"``).
"""

from __future__ import annotations

import functools
import types
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PAD = "<pad>"
BOS = "<bos>"
EOS = "<eos>"
BLANK = "<blank>"
WORD_BOUNDARY = " "
PUNCTUATION = (",", ".", "?", "!")
STRESS = ("ˈ", "ˌ")
CONSONANTS = (
    "b", "d", "d͡ʒ", "f", "h", "j", "k", "l", "m", "n", "p", "s", "t", "t͡ʃ", "v", "w", "z",
    "ð", "ŋ", "ɡ", "ɹ", "ʃ", "ʒ", "θ",
)  # fmt: skip
VOWELS = (
    "aɪ", "aʊ", "eɪ", "i", "oʊ", "u", "æ", "ɑ", "ɔ", "ɔɪ", "ə", "ɚ", "ɛ", "ɪ", "ʊ", "ʌ",
)  # fmt: skip

DEFAULT_VERSION = "gruut-en-us-v1"
DEFAULT_SYMBOLS: tuple[str, ...] = (
    PAD, BOS, EOS, BLANK, WORD_BOUNDARY, *PUNCTUATION, *STRESS, *CONSONANTS, *VOWELS,
)  # fmt: skip


@dataclass(frozen=True)
class SymbolTable:
    """An ordered, versioned list of symbols; a symbol's id is its index.

    Attributes:
        version: name of the inventory; two tables with the same version must have the same symbols.
        symbols: the symbols, ``symbols[0]`` is always ``PAD`` (so ``pad_id == 0``).
    """

    version: str
    symbols: tuple[str, ...]
    _ids: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.version, str) or not self.version.strip():
            raise ValueError(f"symbol table version must be a non-empty string, got {self.version!r}")
        if isinstance(self.symbols, str) or not isinstance(self.symbols, Sequence):
            raise TypeError(f"symbols must be a sequence of strings, got {type(self.symbols).__name__}")
        symbols = tuple(self.symbols)
        bad = [s for s in symbols if not isinstance(s, str) or not s]
        if bad:
            raise ValueError(f"every symbol must be a non-empty string, got {bad[:5]!r}")
        duplicates = sorted({s for s in symbols if symbols.count(s) > 1})
        if duplicates:
            raise ValueError(f"symbol table has duplicate symbols: {duplicates!r}")
        if not symbols or symbols[0] != PAD:
            raise ValueError(f"the first symbol (id 0) must be the padding symbol {PAD!r}")
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "_ids", types.MappingProxyType({s: i for i, s in enumerate(symbols)}))

    def __len__(self) -> int:
        """Vocabulary size (an embedding table needs this many rows)."""
        return len(self.symbols)

    def __contains__(self, symbol: object) -> bool:
        return symbol in self._ids

    @property
    def pad_id(self) -> int:
        """Id of ``PAD``; always 0."""
        return 0

    @property
    def bos_id(self) -> int:
        return self.id_of(BOS)

    @property
    def eos_id(self) -> int:
        return self.id_of(EOS)

    @property
    def blank_id(self) -> int:
        """Id of the token ``intersperse`` puts between phonemes."""
        return self.id_of(BLANK)

    def id_of(self, symbol: str) -> int:
        """Id of one symbol; ValueError if the table does not have it."""
        try:
            return self._ids[symbol]
        except KeyError:
            raise ValueError(f"symbol {symbol!r} is not in symbol table {self.version!r}") from None

    def encode(self, phonemes: Iterable[str]) -> list[int]:
        """Phoneme symbols [N] -> ids [M], M <= N (+ one per split stress mark).

        A stress mark attached to a phone (``"ˈoʊ"``) is split into two symbols. Symbols the table
        does not know are left out, with one warning listing them.
        """
        ids: list[int] = []
        unknown: list[str] = []
        for phoneme in phonemes:
            if phoneme in self._ids:
                ids.append(self._ids[phoneme])
            elif phoneme[:1] in STRESS and phoneme[:1] in self._ids and phoneme[1:] in self._ids:
                ids.extend((self._ids[phoneme[0]], self._ids[phoneme[1:]]))
            elif phoneme not in unknown:
                unknown.append(phoneme)
        if unknown:
            warnings.warn(
                f"symbol table {self.version!r} does not know {len(unknown)} phoneme(s), left out: "
                + ", ".join(repr(p) for p in unknown),
                stacklevel=2,
            )
        return ids

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Ids [N] -> symbols [N]; ValueError for an id outside ``[0, len(table))``."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.symbols):
                raise ValueError(f"id {i} is outside symbol table {self.version!r} (size {len(self)})")
            out.append(self.symbols[i])
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form: ``{"version": str, "symbols": [str, ...]}``."""
        return {"version": self.version, "symbols": list(self.symbols)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SymbolTable:
        """Inverse of ``to_dict``. Raises ValueError for a malformed dict, or for a table that
        claims ``DEFAULT_VERSION`` but whose symbols differ from ``DEFAULT_SYMBOLS``."""
        if not isinstance(data, Mapping) or "version" not in data or "symbols" not in data:
            raise ValueError("a symbol table dict needs the keys 'version' and 'symbols'")
        symbols = data["symbols"]
        if isinstance(symbols, str) or not isinstance(symbols, Sequence):
            raise TypeError("'symbols' must be a list of strings")
        table = cls(version=data["version"], symbols=tuple(symbols))
        if table.version == DEFAULT_VERSION and table.symbols != DEFAULT_SYMBOLS:
            raise ValueError(
                f"symbol table claims version {DEFAULT_VERSION!r} but its symbols differ from it; "
                "give a changed inventory a new version name"
            )
        return table


@functools.lru_cache(maxsize=1)
def default_table() -> SymbolTable:
    """The table for gruut ``en-us`` phonemes (``DEFAULT_VERSION``, ``DEFAULT_SYMBOLS``)."""
    return SymbolTable(version=DEFAULT_VERSION, symbols=DEFAULT_SYMBOLS)


def intersperse(ids: Sequence[int], blank: int) -> list[int]:
    """Grad-TTS blank interspersing: ids [N] -> [2N + 1], ``[blank, a, blank, b, blank]``."""
    out = [blank] * (2 * len(ids) + 1)
    out[1::2] = [int(i) for i in ids]
    return out
