"""The prior report: samples in every voice, and what they are (``vqspeech prior-report``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..audio import save_audio
from ..codes_file import read_codes, write_codes
from ..conversion import decode_codes
from ..errors import UserError
from ..fileio import atomic_write
from ..generation.sampling import SamplingOptions
from ..ids import path_in
from ..kaldi_data_dir import read_data_dir
from .data import CodeCorpus
from .evaluate import cross_entropy_bits, phone_statistics, unigram_bits
from .sample import load_prior, sample_codes


def run_prior_report(lm, prior_path, data_dir, codes_path, train_codes_path, out_dir, per_speaker: int,
                     seconds: float, temperature: float, seed: int, speaker_id: bool = True) -> dict:
    if per_speaker < 1 or not seconds > 0:
        raise UserError("--per-speaker must be >= 1 and --seconds > 0")
    device = next(lm.model.parameters()).device
    prior = load_prior(prior_path, device)
    K = lm.config.quantizer_conf.num_codes
    if prior.num_codes != K or prior.speakers != lm.speakers:
        raise UserError(f"--prior {prior_path}: was trained on the codes of another model")
    dd = read_data_dir(data_dir)
    real = read_codes(codes_path)
    test = CodeCorpus.from_codes(real, dd.utt2spk, lm.speakers, K, codes_path)
    rate = lm.sample_rate / lm.hop
    bits = cross_entropy_bits(prior.model, test, device)
    uni = unigram_bits(read_codes(train_codes_path), real, K)
    rep = {"prior": str(prior_path), "codes_per_second": rate, "prior_bits_per_code": bits,
           "prior_bitrate_bits_per_s": bits * rate, **uni,
           "unigram_bitrate_bits_per_s": uni["unigram_entropy_bits"] * rate}
    # samples: per_speaker per test speaker, seeds seed, seed + 1, ...
    n = max(1, round(seconds * rate))
    sampled, wavs = {}, {}
    for spk in sorted(set(dd.utt2spk.values()) & set(lm.speakers)):
        for k in range(per_speaker):
            opts = SamplingOptions(temperature=temperature, seed=seed + k)
            codes = sample_codes(prior.model, lm.speakers.index(spk), n, opts)
            name = f"{spk}_{k}"
            sampled[name] = codes
            wav = decode_codes(lm.model, torch.tensor(codes), lm.speakers.index(spk), opts)
            save_audio(path_in(Path(out_dir) / "wav", f"{name}.wav"), wav, lm.sample_rate)
            wavs[name] = (spk, wav)
    write_codes(Path(out_dir) / "sampled_codes.txt", sampled)
    rep["samples"] = {"per_speaker": per_speaker, "seconds": seconds, "temperature": temperature, "count": len(sampled)}
    if speaker_id:
        rep["speaker_identification"] = _identify(dd, lm.sample_rate, wavs)
    ctm = Path(data_dir) / "phones.ctm"
    rep["phone_statistics"] = None
    if ctm.is_file():
        from ..alignments import align_to_frames, read_ctm

        labels, _ = align_to_frames(real, read_ctm(ctm), 1.0 / rate)
        rep["phone_statistics"] = phone_statistics({u: real[u] for u in labels}, labels, sampled, seed)
    return rep


def _identify(dd, sr: int, wavs: dict) -> dict:
    """Identify each sample's voice among the test speakers' resemblyzer centroids."""
    from ..vc_eval.speaker_similarity import centroids_from_data_dir, embed

    centroids = centroids_from_data_dir(dd, dd.speakers, sr, 5, "--data-dir")
    hits = {name: centroids.identify(embed(wav, sr)) == spk for name, (spk, wav) in wavs.items()}
    return {"accuracy": float(np.mean(list(hits.values()))), "chance": 1.0 / len(centroids.speakers),
            "per_sample": hits}


def write_prior_report(rep: dict, out_dir) -> Path:
    out_dir = Path(out_dir)
    with atomic_write(out_dir / "prior_report.json") as fh:
        json.dump(rep, fh, indent=2)
    lines = ["# Prior report", "",
             "| codes | bits per code | bit/s |", "|---|---:|---:|",
             f"| prior, cross-entropy on the test codes | {rep['prior_bits_per_code']:.3f} | "
             f"{rep['prior_bitrate_bits_per_s']:.0f} |",
             f"| unigram, cross-entropy on the test codes | {rep['unigram_cross_entropy_bits']:.3f} | "
             f"{rep['unigram_cross_entropy_bits'] * rep['codes_per_second']:.0f} |",
             f"| unigram entropy of the training codes | {rep['unigram_entropy_bits']:.3f} | "
             f"{rep['unigram_bitrate_bits_per_s']:.0f} |", ""]
    s = rep["samples"]
    lines.append(f"{s['count']} samples ({s['per_speaker']} per speaker, {s['seconds']:g} s, temperature "
                 f"{s['temperature']:g}) in `wav/`, their codes in `sampled_codes.txt`.")
    ident = rep.get("speaker_identification")
    if ident:
        lines += ["", f"Samples identified as their speaker by resemblyzer: {100 * ident['accuracy']:.0f}% "
                  f"(chance {100 * ident['chance']:.0f}%)."]
    ps = rep.get("phone_statistics")
    if ps:
        bp, run = ps["bigram_perplexity"], ps["codes_per_phone_run"]
        lines += ["", "| codes mapped to phones | phone bigram perplexity | codes per phone run |", "|---|---:|---:|",
                  f"| real (held out) | {bp['held_out_real']:.1f} | {run['real']:.2f} |",
                  f"| sampled from the prior | {bp['sampled']:.1f} | {run['sampled']:.2f} |",
                  f"| drawn from the code unigram | {bp['unigram_random']:.1f} | {run['unigram_random']:.2f} |"]
    with atomic_write(out_dir / "report.md") as fh:
        fh.write("\n".join(lines) + "\n")
    return out_dir / "report.md"
