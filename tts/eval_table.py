"""The ``gradwave eval tts`` report as a markdown table, with notes on what each column measures."""

from __future__ import annotations

from typing import Any


def _fmt(v: float | None, digits: int, scale: float = 1.0) -> str:
    return "-" if v is None else f"{v * scale:.{digits}f}"


def markdown(report: dict[str, Any]) -> str:
    """The report as a markdown table with notes on what each column measures."""
    lines = ["| System | Solver | Steps | Vocoder | WER % ↓ | DNSMOS OVRL ↑ | SIG ↑ | BAK ↑ | P808 ↑ "
             "| log-mel DTW L1 ↓ | RTF enc | RTF dec | RTF voc | RTF total ↓ | n |",
             "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        vocoder = f"{r['vocoder_schedule']} ({r['vocoder_steps']})" if r["vocoder_schedule"] else "-"
        lines.append(
            f"| {r['system']} | {r['solver'] or '-'} | {r['steps'] or '-'} | {vocoder} | {_fmt(r['wer'], 1, 100)} | "
            f"{_fmt(r['ovrl'], 2)} | {_fmt(r['sig'], 2)} | {_fmt(r['bak'], 2)} | {_fmt(r['p808'], 2)} | "
            f"{_fmt(r['mel_dtw_l1'], 3)} | {_fmt(r['rtf_encoder'], 4)} | {_fmt(r['rtf_decoder'], 3)} | "
            f"{_fmt(r['rtf_vocoder'], 3)} | {_fmt(r['rtf'], 3)} | {r['n']} |")
    asr = report["asr"]
    passes = report.get("postfilter")  # absent in reports made before the post-filter
    postfilter = ("" if passes is None else f"; vocoder post-filter: {passes} passes (vocoder.postfilter)" if passes
                  else "; no vocoder post-filter")
    lines += [
        "",
        f"{len(report['utterances'])} sentences of {report['texts']}; system: {report['system']}{postfilter}.",
        (f"WER: {asr['name']} (faster-whisper, CPU int8, beam 1, temperature 0), corpus-level: substitutions + "
         "deletions + insertions over all sentences / reference words; reference = the normalized_text column "
         "(plain files: the line); both sides through tts.text.normalize (numbers, currency, abbreviations to "
         "words; bare 1001-2999 read as years and a day after a month as a cardinal, as LJSpeech reads them; "
         "'x.org' read 'x dot org'), lower case, punctuation dropped (apostrophes inside words kept, hyphens "
         "split words)."
         if asr else "WER: not measured (--asr none)."),
        ("DNSMOS: speechmos (Microsoft DNSMOS P.835 SIG/BAK/OVRL and P.808), 16 kHz, mean over sentences; clips "
         "shorter than 9 s are looped by DNSMOS." if report["dnsmos"] else "DNSMOS: not measured (--no-dnsmos)."),
        "log-mel DTW L1: natural-log 80-band mels of the output and of the recording, frames aligned by DTW "
        "(steps (1,0), (0,1), (1,1); frame cost = mean |difference| over bands); the mean cost along the path. "
        "0 for the recordings themselves.",
        f"RTF: seconds / audio seconds, summed over sentences, on {report['device']}; encoder, decoder (score "
        "network) and vocoder count their graph calls; total is the whole synthesis (text front-end included), "
        "scoring excluded. Decoder temperature "
        f"{report['temperature']}; seed per sentence = crc32(id) + {report['seed']}, the same for every system.",
        report["hardware_line"],
    ]
    lines += [f"Note: {n}" for n in report["notes"]]
    return "\n".join(lines) + "\n"
