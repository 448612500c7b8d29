"""Tests for the text front-end (tts/text): normalization, sentence splitting, symbols, phonemization."""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from tts.text import (
    BLANK,
    DEFAULT_SYMBOLS,
    DEFAULT_VERSION,
    PAD,
    SymbolTable,
    UnsupportedCharacterWarning,
    default_table,
    intersperse,
    normalize,
    phonemize,
    split_sentences,
    text_to_ids,
    text_to_phonemes,
)

CORPUS = Path("/work/shared/corpus/joe-ljs/metadata.csv")
REPO = Path(__file__).resolve().parents[2]

# ----------------------------------------------------------------------------- normalization

NORMALIZE_CASES = [
    # the example
    ("Dr. Smith paid $5.50 for 3 apples on May 5th, 2024.",
     "Doctor Smith paid five dollars and fifty cents for three apples on May fifth, twenty twenty-four."),
    # numbers
    ("I have 3 apples.", "I have three apples."),
    ("He is 21 and she is 100.", "He is twenty-one and she is one hundred."),
    ("1,234,567 people", "one million two hundred thirty-four thousand five hundred sixty-seven people"),
    ("2024 apples", "two thousand twenty-four apples"),
    ("Agent 007", "Agent zero zero seven"),
    # currency
    ("$1.01", "one dollar and one cent"),
    ("$0.99", "ninety-nine cents"),
    ("$1 and $5", "one dollar and five dollars"),
    ("$1,000,000", "one million dollars"),
    ("$2.5 million", "two point five million dollars"),
    ("-$3", "minus three dollars"),
    ("€20 and £1.50", "twenty euros and one pound and fifty pence"),
    # ordinals
    ("1st 2nd 3rd 4th", "first second third fourth"),
    ("the 21st and 112th", "the twenty-first and one hundred twelfth"),
    ("the 100th time", "the one hundredth time"),
    # dates
    ("on 2024-05-05", "on May fifth, twenty twenty-four"),
    ("on 5/5/2024", "on May fifth, twenty twenty-four"),
    ("Jan. 1, 2000", "January first, two thousand"),
    ("on 5 May 2024", "on the fifth of May, twenty twenty-four"),
    ("the 4th of July", "the fourth of July"),
    ("in May 2024", "in May twenty twenty-four"),
    # years
    ("In 1999", "In nineteen ninety-nine"),
    ("since 2005", "since two thousand five"),
    ("by 2010", "by twenty ten"),
    ("in 1900", "in nineteen hundred"),
    ("in 1905", "in nineteen oh five"),
    ("1964 was a year. 2008 too.", "nineteen sixty-four was a year. two thousand eight too."),
    ("1500 people came.", "fifteen hundred people came."),
    ("1964.5 units", "one thousand nine hundred sixty-four point five units"),
    ("the 1990s", "the nineteen nineties"),
    ("the '80s", "the eighties"),
    ("1066 AD", "ten sixty-six A D"),
    # times
    ("at 3:30 pm", "at three thirty P M"),
    ("3:00 PM", "three P M"),
    ("at 15:45", "at fifteen forty-five"),
    ("7 a.m. tomorrow", "seven A M tomorrow"),
    ("at 9:05", "at nine oh five"),
    ("at 12:00", "at twelve o'clock"),
    ("It was 7 p.m. Then we left.", "It was seven P M. Then we left."),
    # abbreviations
    ("Mr. and Mrs. Smith met Ms. Jones.", "Mister and Missus Smith met Miz Jones."),
    ("St. Mary's Church", "Saint Mary's Church"),
    ("He lives on Main St.", "He lives on Main Street."),
    ("Baker St. is long", "Baker Street is long"),
    ("Elm Dr. is closed", "Elm Drive is closed"),
    ("Prof. Xu", "Professor Xu"),
    ("apples, pears, etc. Then more.", "apples, pears, et cetera. Then more."),
    ("Acme Inc. makes cats vs. dogs", "Acme Incorporated makes cats versus dogs"),
    ("e.g. this, i.e. that", "for example this, that is that"),
    ("No. 5 and #1", "number five and number one"),
    ("John F. Kennedy", "John F Kennedy"),
    # acronyms
    ("The FBI and the CIA", "The F B I and the C I A"),
    ("NASA and NATO", "Nasa and Nato"),
    ("the U.S.A. today", "the U S A today"),
    ("the FBI's CEOs", "the F B I's C E O's"),
    ("an MP3 file", "an M P three file"),
    ("OK then", "okay then"),
    ("I AM SO VERY ANGRY", "I am so very angry"),
    ("COVID-19", "Covid nineteen"),
    # percent, decimals, negatives
    ("50% and 3.5% and -2%", "fifty percent and three point five percent and minus two percent"),
    ("pi is 3.14", "pi is three point one four"),
    ("0.5 or .5", "zero point five or point five"),
    ("-5 degrees and -3.5", "minus five degrees and minus three point five"),
    # units, fractions, ranges, phone numbers, roman numerals, symbols
    ("5 km and 1 km", "five kilometers and one kilometer"),
    ("20°C and 5 ft", "twenty degrees Celsius and five feet"),
    ("1/2 and 3/4 and 2/3", "one half and three quarters and two thirds"),
    ("3½ cups", "three and one half cups"),
    ("pages 5-10", "pages five to ten"),
    ("call 555-1234", "call five five five, one two three four"),
    ("Henry VIII and World War II", "Henry the eighth and World War two"),
    ("salt & pepper", "salt and pepper"),
    ("2 + 2 = 4", "two plus two equals four"),
    # punctuation cleanup
    ("Wait... what?! Yes!!!", "Wait, what? Yes!"),
    ('He said "hi" (twice).', "He said hi, twice."),
    ("one; two: three", "one, two, three"),
    ("yes — no", "yes, no"),
    ("  spaced \t  out \n ", "spaced out"),
    ("don't stop, mid-century", "don't stop, mid-century"),
    ("“Smart” quotes’", "Smart quotes"),
    ("First paragraph\n\nSecond one", "First paragraph. Second one"),
    # accented Latin letters fold to ASCII
    ("Café naïve façade résumé", "Cafe naive facade resume"),
    ("Straße", "Strasse"),
    ("ｆｕｌｌｗｉｄｔｈ", "fullwidth"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "expected"), NORMALIZE_CASES)
def test_normalize(text, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # none of these may warn
        out = normalize(text)
    assert out == expected
    assert re.fullmatch(r"[A-Za-z' ,.?!-]*", out), f"unexpected characters in {out!r}"
    assert normalize(out) == out  # normalized text is a fixed point


@pytest.mark.parametrize(
    ("text", "expected", "dropped"),
    [
        ("Hello 😀 world", "Hello world", ["😀"]),
        ("Hello Привет 世界 world.", "Hello world.", ["П", "世"]),
        ("Bell\x07 ring\x00ing.", "Bell ringing.", ["\\x07", "\\x00"]),
        ("zero\u200bwidth", "zerowidth", ["\\u200b"]),
    ],
)
def test_unsupported_characters_are_dropped_with_one_warning(text, expected, dropped):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = normalize(text)
    assert out == expected
    assert len(caught) == 1 and issubclass(caught[0].category, UnsupportedCharacterWarning)
    for char in dropped:
        assert char in str(caught[0].message)


def test_normalize_rejects_non_str():
    with pytest.raises(TypeError, match="str"):
        normalize(b"bytes")


# ----------------------------------------------------------------------------- sentence splitting

SPLIT_CASES = [
    ("Dr. Smith paid $5.50. Then he left!", ["Dr. Smith paid $5.50.", "Then he left!"]),
    ("Is it? Yes. No!", ["Is it?", "Yes.", "No!"]),
    ('"Really?" he asked. Yes.', ['"Really?" he asked.', "Yes."]),
    ("J. R. R. Tolkien wrote it. Mr. Baggins agreed.", ["J. R. R. Tolkien wrote it.", "Mr. Baggins agreed."]),
    ("We saw apples, etc. and pears. St. Louis is far.", ["We saw apples, etc. and pears.", "St. Louis is far."]),
    ("It cost 5.50 dollars. Cheap, e.g. This one.", ["It cost 5.50 dollars.", "Cheap, e.g. This one."]),
    ("First paragraph\n\nSecond paragraph", ["First paragraph", "Second paragraph"]),
    ("line one\nline two", ["line one line two"]),
    ("No final punctuation", ["No final punctuation"]),
    ("It was seven P M. Then we left.", ["It was seven P M.", "Then we left."]),
    ("", []),
    ("  \n ", []),
]


@pytest.mark.parametrize(("text", "expected"), SPLIT_CASES)
def test_split_sentences(text, expected):
    assert split_sentences(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        ", ".join(f"clause number {i} of a very long sentence" for i in range(40)) + ".",  # commas
        " ".join(["word"] * 400) + ".",  # no commas: word boundaries
        "x" * 1000,  # no spaces: hard cuts
    ],
)
def test_split_sentences_bounds_long_sentences(text):
    pieces = split_sentences(text, max_chars=300)
    assert len(pieces) > 1
    assert all(0 < len(p) <= 300 for p in pieces)
    assert "".join(pieces).replace(" ", "") == text.replace(" ", "")  # nothing lost or reordered


def test_split_sentences_prefers_commas():
    text = ", ".join(f"clause number {i} of a very long sentence" for i in range(40)) + "."
    assert all(p.endswith((",", ".")) for p in split_sentences(text, max_chars=300))


# ----------------------------------------------------------------------------- symbol table


def test_default_table_layout():
    table = default_table()
    assert table.version == DEFAULT_VERSION and table.symbols == DEFAULT_SYMBOLS
    assert table.pad_id == 0 and table.symbols[0] == PAD
    assert len(set(table.symbols)) == len(table) == len(DEFAULT_SYMBOLS)
    assert table.symbols[table.blank_id] == BLANK
    for symbol in (" ", ",", ".", "?", "!", "ˈ", "ˌ"):
        assert symbol in table


def test_symbol_table_round_trip_through_json():
    table = default_table()
    restored = SymbolTable.from_dict(json.loads(json.dumps(table.to_dict())))
    assert restored == table
    phonemes = ["h", "ɛ", "l", "ˈ", "oʊ", ",", " ", "w", "ˈ", "ɚ", "l", "d", "!"]
    assert restored.decode(table.encode(phonemes)) == phonemes


def test_symbol_table_versioning():
    custom = SymbolTable(version="my-v2", symbols=(PAD, "a", "b"))
    restored = SymbolTable.from_dict(custom.to_dict())
    assert restored == custom and restored.version == "my-v2"
    assert SymbolTable(version="my-v3", symbols=custom.symbols) != custom
    assert restored.encode(["b", "a"]) == [2, 1]
    with pytest.raises(ValueError, match="differ"):  # same version name, different inventory
        SymbolTable.from_dict({"version": DEFAULT_VERSION, "symbols": [*DEFAULT_SYMBOLS, "x"]})


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"symbols": [PAD, "a"]}, ValueError),
        ({"version": "v", "symbols": [PAD, "a", "a"]}, ValueError),
        ({"version": "v", "symbols": ["a", PAD]}, ValueError),
        ({"version": "v", "symbols": [PAD, 3]}, ValueError),
        ({"version": "", "symbols": [PAD]}, ValueError),
        ({"version": "v", "symbols": "ab"}, TypeError),
    ],
)
def test_symbol_table_rejects_malformed_dicts(data, error):
    with pytest.raises(error):
        SymbolTable.from_dict(data)


def test_symbol_table_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        default_table().version = "other"


def test_encode_unknown_phonemes_warns_and_skips():
    table = default_table()
    with pytest.warns(UserWarning, match="'ʁ'"):
        ids = table.encode(["b", "ʁ", "ɑ"])
    assert table.decode(ids) == ["b", "ɑ"]
    assert table.encode(["ˈoʊ"]) == table.encode(["ˈ", "oʊ"])  # attached stress is split
    with pytest.raises(ValueError, match="outside"):
        table.decode([len(table)])


@pytest.mark.parametrize(("ids", "expected"), [([5, 6], [3, 5, 3, 6, 3]), ([], [3]), ([7], [3, 7, 3])])
def test_intersperse(ids, expected):
    assert intersperse(ids, 3) == expected


def test_table_covers_gruut_en_us_inventory():
    """Every phone of gruut's en-us lexicon and of its g2p model (used for unknown words)."""
    import base64

    import gruut.utils
    import pycrfsuite

    lang_dir = gruut.utils.find_lang_dir("en-us")
    db = sqlite3.connect(f"file:{lang_dir / 'lexicon.db'}?mode=ro", uri=True)
    phones = {p for (pron,) in db.execute("SELECT DISTINCT phonemes FROM word_phonemes") for p in pron.split()}
    db.close()
    tagger = pycrfsuite.Tagger()
    tagger.open(str(lang_dir / "g2p" / "model.crf"))
    labels = [base64.b64decode(label).decode() for label in tagger.info().labels]
    g2p_phones = {p for label in labels for p in label.split("|") if p and p != "_"}
    assert len(g2p_phones) > 40
    phones |= g2p_phones
    table = default_table()
    missing = {p for p in phones if p not in table and not (p[0] in "ˈˌ" and p[1:] in table)}
    assert not missing


# ----------------------------------------------------------------------------- phonemization

SENTENCES = [
    "Hello, world!",
    "Is it okay?",
    "The quick brown fox jumps over the lazy dog.",
    "Dr. Smith paid $5.50 for 3 apples on May 5th, 2024.",
    "She sells sea shells by the sea shore; he doesn't.",
    "The FBI met NASA in the U.S.A. at 3:30 pm.",
]


@pytest.mark.parametrize("text", SENTENCES)
def test_text_to_ids_in_vocabulary(text):
    table = default_table()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no unknown phoneme, no dropped character
        phonemes = text_to_phonemes(text)
        ids = text_to_ids(text, table)
    assert len(ids) == len(phonemes) >= 1
    for sentence_ids, sentence_phonemes in zip(ids, phonemes):
        assert len(sentence_ids) > 0
        assert all(0 < i < len(table) for i in sentence_ids)
        assert table.decode(sentence_ids) == sentence_phonemes
        assert sentence_phonemes[0] != " " and sentence_phonemes[-1] != " "


def test_phonemize_format():
    phonemes = phonemize("Hello, world!")
    assert phonemes[-1] == "!" and "," in phonemes
    words = "".join(phonemes).rstrip("!").split(" ")
    assert len(words) == 2 and words[0].endswith(",")
    assert "ˈ" in phonemes and not any(len(p) > 1 and p[0] in "ˈˌ" for p in phonemes)  # stress split off
    assert phonemize("Is it okay?")[-1] == "?"
    assert "".join(phonemize("U S A today")).split(" ")[2] == "ˈeɪ"  # the letter A
    assert "".join(phonemize("A cat")).split(" ")[0] == "ə"  # the article A
    assert phonemize("   ") == []


def test_text_to_ids_splits_sentences_and_intersperses():
    table = default_table()
    plain = text_to_ids("One. Two? Three!", table)
    assert len(plain) == 3
    assert [table.decode(ids)[-1] for ids in plain] == [".", "?", "!"]
    blanked = text_to_ids("One. Two? Three!", table, add_blank=True, add_bos_eos=True)
    for ids, with_blank in zip(plain, blanked):
        assert len(with_blank) == 2 * (len(ids) + 2) + 1
        assert with_blank[0::2] == [table.blank_id] * (len(ids) + 3)
        assert with_blank[1::2] == [table.bos_id, *ids, table.eos_id]


def test_corpus_phonemes_are_covered():
    if not CORPUS.is_file():
        pytest.skip(f"corpus not found at {CORPUS}")
    lines = CORPUS.read_text(encoding="utf-8").splitlines()[:100]
    texts = [line.split("|")[2] for line in lines]
    table = default_table()
    seen: set[str] = set()
    for text in texts:
        for sentence in text_to_phonemes(text):
            seen.update(sentence)
    assert seen - set(table.symbols) == set()
    assert len(seen) > 40  # a real sample uses most of the inventory


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("text", "warns"),
    [
        ("", False),
        ("   ", False),
        ("!!!", False),
        ("... ?! ,", False),
        ("😀🎉", True),
        ("Привет мир", True),
        ("你好", True),
        ("\x00\x07\x1b", True),
    ],
)
def test_nothing_speakable_raises(text, warns):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(ValueError, match="no speakable text"):
            text_to_ids(text, default_table())
    assert len(caught) == (1 if warns else 0)


def test_mixed_input_is_spoken_with_a_warning():
    with pytest.warns(UnsupportedCharacterWarning, match="U\\+1F600"):
        phonemes = text_to_phonemes("Hello 😀 world\x07!")
    assert len(phonemes) == 1 and phonemes[0][-1] == "!"


def test_non_str_is_rejected():
    with pytest.raises(TypeError):
        text_to_ids(None, default_table())


def test_long_input_is_fast():
    if CORPUS.is_file():
        lines = CORPUS.read_text(encoding="utf-8").splitlines()[:300]
        text = " ".join(line.split("|")[2] for line in lines)[:10_000]
    else:
        text = ("The quick brown fox jumps over the lazy dog, again and again. " * 200)[:10_000]
    text_to_ids("Warm up.", default_table())
    start = time.perf_counter()
    ids = text_to_ids(text, default_table())
    assert time.perf_counter() - start < 5.0
    assert len(ids) > 10 and sum(map(len, ids)) > 5000


def test_pathological_long_word_does_not_hang():
    start = time.perf_counter()
    ids = text_to_ids("a" * 10_000, default_table())
    assert time.perf_counter() - start < 10.0
    assert all(len(sentence) > 0 for sentence in ids)


def test_package_is_torch_free_and_lazy():
    code = "import sys, tts.text; assert 'torch' not in sys.modules; assert 'gruut' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)
