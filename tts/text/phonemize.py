"""Phonemization of normalized English sentences with gruut (offline, en-us).

Output format (see ``tts.text.symbols``): one symbol per phone, stress marks as their own symbols
before the stressed vowel, ``" "`` between words, and ``, . ? !`` for pauses, written right after the
word they follow::

    phonemize("Hello, world!") == ["h", "ɛ", "l", "ˈ", "oʊ", ",", " ", "w", "ˈ", "ɚ", "l", "d", "!"]

gruut is imported lazily, on the first call, so importing this module is cheap.
"""

from __future__ import annotations

import functools
import sqlite3
import threading
from typing import Any

from tts.text.symbols import PUNCTUATION, STRESS, WORD_BOUNDARY

_LANG = "en_US"
_LETTER_A = ("ˈ", "eɪ")  # "A" spelled out as a letter; gruut reads a lone "A" as the article "ə"


@functools.lru_cache(maxsize=1)
def _pipeline() -> tuple[Any, threading.Lock]:
    """The gruut text processor for en-us and the lock that serialises its use (built once).

    gruut's lexicon database has no index on ``word``, so every lookup scans 128k rows (~7 ms);
    we load a copy into memory and index it, which makes a lookup ~100x faster.
    """
    from gruut import TextProcessor
    from gruut.phonemize import SqlitePhonemizer
    from gruut.utils import find_lang_dir, remove_non_word_chars

    lang_dir = find_lang_dir("en-us")
    if lang_dir is None or not (lang_dir / "lexicon.db").is_file():
        raise RuntimeError("gruut English data not found: install the 'gruut-lang-en' package")
    source = sqlite3.connect(f"file:{lang_dir / 'lexicon.db'}?mode=ro", uri=True)
    lexicon = sqlite3.connect(":memory:", check_same_thread=False)
    source.backup(lexicon)
    source.close()
    lexicon.execute("CREATE INDEX IF NOT EXISTS word_phonemes_word ON word_phonemes (word)")
    phonemizer = SqlitePhonemizer(
        db_conn=lexicon,
        # the same fall-backs gruut uses for a word it cannot find as written
        word_transform_funcs=[str.lower, remove_non_word_chars, lambda s: remove_non_word_chars(s.lower())],
    )
    processor = TextProcessor(default_lang=_LANG, lookup_phonemes=phonemizer)
    return processor, threading.Lock()


def _is_letter(word: Any) -> bool:
    return len(word.text) == 1 and word.text.isupper()


def phonemize(sentence: str) -> list[str]:
    """One normalized sentence (see ``normalize``) -> phoneme symbols [N] (N may be 0).

    Every sentence gruut finds in the text is concatenated. A lone capital "A" next to another
    spelled-out letter ("U S A") is read as the letter, not the article.
    """
    if not isinstance(sentence, str):
        raise TypeError(f"sentence must be a str, got {type(sentence).__name__}")
    if not sentence.strip():
        return []
    processor, lock = _pipeline()
    with lock:
        graph, root = processor(sentence, lang=_LANG)
        words = [word for gruut_sentence in processor.sentences(graph, root) for word in gruut_sentence]

    out: list[str] = []
    for i, word in enumerate(words):
        if word.is_break:
            pause = next((p for p in "?!" if p in word.text), ".") if word.is_major_break else ","
            if out and out[-1] in PUNCTUATION:  # keep the stronger of two pauses in a row
                out[-1] = max(out[-1], pause, key=PUNCTUATION.index)
            elif out:
                out.append(pause)
            continue
        if word.is_punctuation or not word.phonemes:
            continue
        phones = list(word.phonemes)
        neighbours = words[max(i - 1, 0) : i] + words[i + 1 : i + 2]
        if word.text == "A" and any(_is_letter(w) for w in neighbours):
            phones = list(_LETTER_A)
        if out:
            out.append(WORD_BOUNDARY)
        for phone in phones:
            if len(phone) > 1 and phone[0] in STRESS:
                out.extend((phone[0], phone[1:]))
            else:
                out.append(phone)
    final = sentence.rstrip()[-1]
    if out and final in PUNCTUATION and out[-1] not in PUNCTUATION:
        out.append(final)  # gruut takes the period of a final "A." for part of an initialism
    return out
