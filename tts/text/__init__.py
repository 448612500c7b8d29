"""Offline English text front-end: normalization, sentence splitting, gruut phonemization, symbol ids.

Torch-free (the ONNX runtime imports it). Typical use::

    from tts.text import default_table, text_to_ids
    ids_per_sentence = text_to_ids("Dr. Smith paid $5.50.", default_table(), add_blank=True)
"""

from tts.text.frontend import MAX_SENTENCE_CHARS, split_sentences, text_to_ids, text_to_phonemes
from tts.text.normalize import UnsupportedCharacterWarning, cardinal, normalize, ordinal, year_words
from tts.text.phonemize import phonemize
from tts.text.symbols import (
    BLANK,
    BOS,
    DEFAULT_SYMBOLS,
    DEFAULT_VERSION,
    EOS,
    PAD,
    PUNCTUATION,
    WORD_BOUNDARY,
    SymbolTable,
    default_table,
    intersperse,
)

__all__ = [
    "BLANK",
    "BOS",
    "DEFAULT_SYMBOLS",
    "DEFAULT_VERSION",
    "EOS",
    "MAX_SENTENCE_CHARS",
    "PAD",
    "PUNCTUATION",
    "WORD_BOUNDARY",
    "SymbolTable",
    "UnsupportedCharacterWarning",
    "cardinal",
    "default_table",
    "intersperse",
    "normalize",
    "ordinal",
    "phonemize",
    "split_sentences",
    "text_to_ids",
    "text_to_phonemes",
    "year_words",
]
