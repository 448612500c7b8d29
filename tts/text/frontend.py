"""The text front-end pipeline: raw text -> sentences -> phonemes -> ids.

    text_to_ids(text, table) == [table.encode(p) for p in text_to_phonemes(text)]
    text_to_phonemes(text)   == [phonemize(s) for s in split_sentences(normalize(text))]  (speakable ones)
"""

from __future__ import annotations

import re

from tts.text.normalize import normalize
from tts.text.phonemize import phonemize
from tts.text.symbols import PUNCTUATION, WORD_BOUNDARY, SymbolTable, intersperse

MAX_SENTENCE_CHARS = 300

# A period after these words does not end a sentence ("Dr. Smith", "e.g. this").
_NO_SPLIT_AFTER = frozenset(
    ("dr", "mr", "mrs", "ms", "st", "prof", "gen", "capt", "lt", "col", "sgt", "rev", "hon", "gov", "sen",
     "rep", "mt", "ft", "messrs", "no", "vs", "e.g", "i.e", "a.k.a")
)  # fmt: skip
_NEXT_CHAR = re.compile(r"\s*(\S?)")
_SENTENCE_END = re.compile(r"[.?!]+[\"')\]]*(?=\s)|\n[ \t]*\n")


def _ends_sentence(text: str, match: re.Match) -> bool:
    """Whether a ``_SENTENCE_END`` match really ends a sentence."""
    if match[0].startswith("\n"):
        return True  # blank line
    following = _NEXT_CHAR.match(text, match.end())[1]
    if following.islower() or following.isdigit():
        return False  # "etc. and so on", '"Really?" he asked'
    if match[0].rstrip("\"')]") != ".":
        return True  # "?", "!", "..."
    before = text[max(0, match.start() - 40) : match.start()].split()
    word = before[-1].lstrip("\"'([") if before else ""
    if len(word) == 1 and word.isalpha():  # an initial ("J. Smith"), unless it ends spelled letters ("P M.")
        return len(before) > 1 and len(before[-2]) == 1 and before[-2].isupper()
    return word.lower() not in _NO_SPLIT_AFTER


def _bound(sentence: str, max_chars: int) -> list[str]:
    """Cut one sentence into pieces of at most ``max_chars`` characters: after the last ``, ; :``
    in the first ``max_chars`` (if it is past a third of them), else at the last space, else hard."""
    pieces = []
    while len(sentence) > max_chars:
        head = sentence[: max_chars + 1]
        cut = max(head.rfind(", "), head.rfind("; "), head.rfind(": ")) + 1
        if cut < max_chars // 3:
            cut = head.rfind(" ")
        if cut <= 0:
            cut = max_chars
        pieces.append(sentence[:cut].strip())
        sentence = sentence[cut:].strip()
    return [*pieces, sentence] if sentence else pieces


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Text -> sentences, each at most ``max_chars`` characters, whitespace collapsed.

    Splits after ``. ? !`` followed by whitespace and a capital letter (or the end), and at blank
    lines; not after title abbreviations ("Dr.", "Mr.", "St.", "e.g."), single initials ("J.") or
    inside numbers ("5.50"). A longer sentence is cut at commas/semicolons, else at word boundaries.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, got {max_chars}")
    sentences, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        if _ends_sentence(text, match):
            sentences.append(text[start : match.end()])
            start = match.end()
    sentences.append(text[start:])
    out = []
    for sentence in sentences:
        sentence = " ".join(sentence.split())
        if sentence:
            out.extend(_bound(sentence, max_chars))
    return out


def text_to_phonemes(text: str) -> list[list[str]]:
    """Raw text -> one phoneme list per sentence, ``[S][N_s]`` (see ``phonemize`` for the format).

    Raises ValueError when the text has nothing speakable (empty, only punctuation, only emoji ...).
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("no speakable text: the input is empty")
    sentences = [phonemize(s) for s in split_sentences(normalize(text))]
    speakable = [p for p in sentences if any(s not in PUNCTUATION and s != WORD_BOUNDARY for s in p)]
    if not speakable:
        raise ValueError(f"no speakable text in the input (no words found in {text[:60]!r})")
    return speakable


def text_to_ids(
    text: str, table: SymbolTable, *, add_blank: bool = False, add_bos_eos: bool = False
) -> list[list[int]]:
    """Raw text -> one id list per sentence, ``[S][N_s]``, encoded with ``table``.

    ``add_bos_eos`` wraps each sentence in ``<bos> ... <eos>``; ``add_blank`` then intersperses the
    blank token (Grad-TTS), giving ``2 N + 1`` ids. Raises ValueError when nothing speakable is left.
    """
    out = []
    for phonemes in text_to_phonemes(text):
        ids = table.encode(phonemes)
        if not any(table.symbols[i] not in PUNCTUATION and table.symbols[i] != WORD_BOUNDARY for i in ids):
            continue
        if add_bos_eos:
            ids = [table.bos_id, *ids, table.eos_id]
        out.append(intersperse(ids, table.blank_id) if add_blank else ids)
    if not out:
        raise ValueError(f"no speakable text: symbol table {table.version!r} knows none of its phonemes")
    return out
