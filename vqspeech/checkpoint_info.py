"""What a checkpoint is and holds, for ``vqspeech model-info``: kind, rates, codebook, decoder, speakers,
parameter counts, training budget, and the run's summary when it sits beside the file.

Works on the three kinds of checkpoint the toolkit writes: a VQ-VAE model (``exp/<tag>/checkpoint.pt``,
the shipped ``vqspeech/pretrained/mini.pt``), a WaveNet vocoder (``vocoder.pt``) and a prior over codes
(``prior.pt``). Every file is read with ``torch.load(weights_only=True)`` through the kinds' own loaders,
so what is described is exactly what the other commands would run.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .checkpoint import load_checkpoint

# Parts of a VQ-VAE that only training uses (the speaker adversary, the frame critic): counted apart.
TRAINING_ONLY_PARTS = ("adversary", "critic")
# The summary each training command writes beside its checkpoint (train.py, train-vocoder, train-prior).
SUMMARY_FILES = {"vqvae": "train_summary.json", "wavenet-vocoder": "vocoder_summary.json",
                 "prior": "prior_summary.json"}


def _parameters(module) -> dict:
    """{child name: trainable parameter count} of a model's top-level parts, in their order."""
    return {name: sum(p.numel() for p in child.parameters()) for name, child in module.named_children()
            if any(True for _ in child.parameters())}


def _wavenet(conf, sample_rate: int, history: int | None) -> dict:
    rf = conf.receptive_field
    return {"type": "wavenet", "layers": conf.layers, "dilation_cycle": conf.dilation_cycle,
            "residual_channels": conf.residual_channels, "gate_channels": conf.gate_channels,
            "skip_channels": conf.skip_channels, "quantization_channels": conf.quantization_channels,
            "receptive_field_samples": rf, "receptive_field_ms": 1000.0 * rf / sample_rate,
            # what folded generation warms up by default (vqspeech measure-history --write; None = the field)
            "measured_history_samples": history}


def _vqvae(path: Path, ckpt: dict) -> dict:
    from .checkpoint import load_model

    lm = load_model(path)
    cfg, e, q = lm.config, lm.config.encoder_conf, lm.config.quantizer_conf
    codes_per_second = lm.sample_rate / lm.hop
    if e.input == "mel":
        encoder = {"input": "mel", "mel_bins": e.mel_bins, "mel_n_fft": e.mel_n_fft, "mel_hop": e.mel_hop}
    else:
        encoder = {"input": "waveform"}
    encoder.update(strides=list(e.strides), kernel_sizes=list(e.kernel_sizes), channels=e.channels,
                   residual_layers=e.residual_layers, latent_dim=e.latent_dim, instance_norm=e.instance_norm,
                   speaker_adversary_weight=e.speaker_adversary_weight,
                   speaker_adversary_input=e.speaker_adversary_input if e.speaker_adversary_weight > 0 else None)
    d = cfg.decoder_conf
    if cfg.decoder == "wavenet":
        decoder = _wavenet(d, lm.sample_rate, lm.model.decoder.history_samples)
    else:
        decoder = {"type": "spectral", "features": d.features, "n_mels": d.n_mels if d.features == "mel" else None,
                   "n_fft": d.n_fft, "frame_hop": d.frame_hop, "layers": d.layers, "channels": d.channels,
                   "gan_weight": d.gan_weight, "parallel_weight": d.parallel_weight,
                   "parallel_partners": d.parallel_partners if d.parallel_weight > 0 else None,
                   "source_pitch": d.source_pitch,
                   "source_pitch_voicing": d.source_pitch_voicing if d.source_pitch else None,
                   "source_pitch_smoothing_ms": d.source_pitch_smoothing_ms if d.source_pitch else None,
                   "source_pitch_normalisation": d.source_pitch_normalisation if d.source_pitch else None}
    params = _parameters(lm.model)
    t = cfg.train_conf
    return {
        "codes_per_second": codes_per_second, "hop_ms": 1000.0 * lm.hop / lm.sample_rate,
        "num_codes": q.num_codes, "code_dim": e.latent_dim, "quantizer": cfg.quantizer,
        # the bitrate's ceiling: every code a free choice among num_codes (the phone report measures the real one)
        "max_bits_per_second": codes_per_second * math.log2(q.num_codes),
        "encoder": encoder, "decoder": decoder, "speaker_conditioning": cfg.speaker_conditioning,
        "parameters": params,
        "parameters_for_inference": sum(n for k, n in params.items() if k not in TRAINING_ONLY_PARTS),
        "training": {"max_steps": t.max_steps, "batch_size": t.batch_size, "segment_samples": t.segment_samples,
                     "lr": t.lr, "amp": t.amp, "init_from": t.init_from or None},
        "step": lm.step,
    }


def _vocoder(path: Path, ckpt: dict) -> dict:
    from .wavenet_vocoder.model import load_vocoder

    lv = load_vocoder(path)
    f, t = lv.config.features, lv.config.train_conf
    params = _parameters(lv.model)
    return {"frames": {"n_mels": f.n_mels, "n_fft": f.n_fft, "frame_hop": f.frame_hop},
            "frames_per_second": lv.config.sample_rate / f.frame_hop,
            "decoder": _wavenet(lv.config.decoder_conf, lv.config.sample_rate, lv.model.decoder.history_samples),
            "use_speaker": lv.config.use_speaker, "parameters": params,
            "parameters_for_inference": sum(params.values()),
            "training": {"max_steps": t.max_steps, "batch_size": t.batch_size, "segment_samples": t.segment_samples,
                         "lr": t.lr, "amp": t.amp},
            "step": lv.step}


def _prior(path: Path, ckpt: dict) -> dict:
    from .prior.config import prior_config_from_dict
    from .prior.sample import load_prior

    lp = load_prior(path)
    cfg = prior_config_from_dict(ckpt["config"], f"{path} (config)")
    m, t = cfg.model, cfg.train_conf
    params = _parameters(lp.model)
    codes_per_second = lp.sample_rate / lp.hop
    return {"num_codes": lp.num_codes, "codes_per_second": codes_per_second,
            "model": {"type": "transformer", "layers": m.layers, "dim": m.dim, "heads": m.heads, "ffn": m.ffn,
                      "context_codes": m.context, "context_seconds": m.context / codes_per_second},
            "parameters": params, "parameters_for_inference": sum(params.values()),
            "training": {"max_steps": t.max_steps, "batch_size": t.batch_size, "lr": t.lr, "amp": t.amp},
            "step": int(ckpt.get("train_state", {}).get("step", ckpt.get("step", 0)))}


DESCRIBERS = {"vqvae": _vqvae, "wavenet-vocoder": _vocoder, "prior": _prior}
KIND_NAMES = {"vqvae": "VQ-VAE model", "wavenet-vocoder": "WaveNet vocoder", "prior": "prior over codes"}


def _read_json(path: Path) -> dict | None:
    """A JSON object, or None when the file is absent, unreadable or not an object (it is an extra)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def describe_checkpoint(path) -> dict:
    """A plain-data description of a vqspeech checkpoint (JSON-ready).

    Keys for every kind: ``path``, ``kind``, ``file_bytes``, ``sample_rate``, ``hop``, ``speakers``,
    ``step``, ``parameters`` ({part: count}), ``parameters_for_inference``, ``training``; then the
    kind's own (a model's codebook, rates and encoder/decoder, a vocoder's frames, a prior's context).
    ``summary``: the training command's summary JSON beside the file when it is of this very step
    (a later or earlier run's is left out), else None. ``card``: the model card (a ``.json`` of the same
    name beside the file, as the shipped model has), else None.
    Raises :class:`vqspeech.errors.CheckpointError` (one line naming the file) for anything unreadable.
    """
    path = Path(path)
    ckpt = load_checkpoint(path)
    kind = ckpt.get("kind", "vqvae")
    if kind not in DESCRIBERS:
        from .errors import CheckpointError

        raise CheckpointError(f"{path}: unknown checkpoint kind {kind!r}")
    info = {"path": str(path), "kind": kind, "file_bytes": path.stat().st_size,
            "sample_rate": int(ckpt["sample_rate"]), "hop": int(ckpt["hop"]), "speakers": list(ckpt["speakers"])}
    info.update(DESCRIBERS[kind](path, ckpt))
    summary = _read_json(path.parent / SUMMARY_FILES[kind])
    info["summary"] = summary if summary is not None and summary.get("step") == info["step"] else None
    card = _read_json(path.with_suffix(".json"))
    info["card"] = card if card is not None and "name" in card else None
    return info


def _count(n: float) -> str:
    return f"{n:,.0f}"


def _wavenet_line(d: dict) -> str:
    history = (f"folded warm-up {_count(d['measured_history_samples'])} samples (measured)"
               if d["measured_history_samples"] is not None else "folded warm-up: the whole field (none measured)")
    return (f"WaveNet, {d['layers']} layers (dilation cycle {d['dilation_cycle']}), "
            f"{d['residual_channels']}/{d['gate_channels']}/{d['skip_channels']} channels, "
            f"{d['quantization_channels']} mu-law classes; receptive field {_count(d['receptive_field_samples'])} "
            f"samples ({d['receptive_field_ms']:.1f} ms); {history}")


def format_description(info: dict) -> str:
    """The description as the lines ``vqspeech model-info`` prints."""
    lines = [f"{info['path']}: {KIND_NAMES[info['kind']]}, step {_count(info['step'])} of "
             f"{_count(info['training']['max_steps'])}, {info['file_bytes'] / 1e6:.1f} MB"]
    if info["card"]:
        lines.append(f"card: {info['card']['name']}")
    sr = info["sample_rate"]
    if info["kind"] == "vqvae":
        e, d = info["encoder"], info["decoder"]
        lines.append(f"codes: {info['num_codes']} x {info['code_dim']} ({info['quantizer']}), "
                     f"{info['codes_per_second']:.4g} codes/s (hop {info['hop']} samples at {sr} Hz, "
                     f"{info['hop_ms']:g} ms); at most {_count(info['max_bits_per_second'])} bit/s")
        source = (f"log-mel ({e['mel_bins']} bands, n_fft {e['mel_n_fft']}, hop {e['mel_hop']})"
                  if e["input"] == "mel" else "waveform (mu-law)")
        extras = [f"{e['residual_layers']} residual layers"] if e["residual_layers"] else []
        if e["instance_norm"]:
            extras.append("instance norm")
        if e["speaker_adversary_input"]:
            extras.append(f"speaker adversary {e['speaker_adversary_weight']:g} on {e['speaker_adversary_input']}")
        lines.append(f"encoder: {source}, strides {e['strides']}, {e['channels']} channels"
                     + "".join(f", {x}" for x in extras))
        if d["type"] == "wavenet":
            lines.append("decoder: " + _wavenet_line(d))
        else:
            feats = f"{d['n_mels']} mel bands" if d["features"] == "mel" else f"{d['n_fft'] // 2 + 1} linear bins"
            terms = ([f"frame critic {d['gan_weight']:g}"] if d["gan_weight"] else []) + (
                [f"parallel {d['parallel_weight']:g} ({d['parallel_partners']} partners)"] if d["parallel_weight"]
                else [])
            lines.append(f"decoder: spectral, {feats} (n_fft {d['n_fft']}, frame hop {d['frame_hop']}), "
                         f"{d['layers']} layers x {d['channels']} channels"
                         + (f", conditioned on the source's pitch (voicing: {d['source_pitch_voicing']}"
                            + (f"; contour averaged over {d['source_pitch_smoothing_ms']:g} ms"
                               if d.get("source_pitch_smoothing_ms") else "")
                            + ("; trained on crops normalised over their utterance"
                               if d.get("source_pitch_normalisation") == "utterance" else "") + ")"
                            if d.get("source_pitch") else "")
                         + (f", trained with {' and '.join(terms)}" if terms else "")
                         + "; audio by Griffin-Lim or a WaveNet vocoder (--vocoder-model)")
        voices = {"table": "a learned row per speaker", "reference": "reference audio (resemblyzer d-vectors)",
                  "learned": "reference audio (a jointly trained speaker encoder)"}[info["speaker_conditioning"]]
        lines.append(f"voices: {voices}")
    elif info["kind"] == "wavenet-vocoder":
        f = info["frames"]
        lines.append(f"frames: {f['n_mels']} mel bands (n_fft {f['n_fft']}, frame hop {f['frame_hop']}) at {sr} Hz, "
                     f"{info['frames_per_second']:.4g} frames/s")
        lines.append("decoder: " + _wavenet_line(info["decoder"]))
    else:
        m = info["model"]
        lines.append(f"codes: {info['num_codes']}, {info['codes_per_second']:.4g} codes/s at {sr} Hz")
        lines.append(f"model: transformer, {m['layers']} layers, dim {m['dim']}, {m['heads']} heads, ffn {m['ffn']}; "
                     f"context {m['context_codes']} codes ({m['context_seconds']:.2f} s)")
    spk = info["speakers"]
    who = "training speakers" if info.get("speaker_conditioning", "table") != "table" else "speakers"
    lines.append(f"{who} ({len(spk)}): " + ", ".join(spk[:20]) + (f", ... ({len(spk) - 20} more)" if len(spk) > 20
                                                                       else ""))
    params = info["parameters"]
    parts = ", ".join(f"{k} {_count(n)}" + (" (training only)" if k in TRAINING_ONLY_PARTS else "")
                      for k, n in params.items())
    lines.append(f"parameters: {_count(sum(params.values()))} ({parts}); {_count(info['parameters_for_inference'])} "
                 f"used to generate")
    t = info["training"]
    budget = f"training: batch {t['batch_size']}" + (f" x {_count(t['segment_samples'])} samples"
                                                    if "segment_samples" in t else "")
    budget += f", lr {t['lr']:g}, amp {t['amp']}"
    if t.get("init_from"):
        budget += f", started from {t['init_from']}"
    lines.append(budget)
    s = info["summary"]
    if s:
        bits = []
        rate = s.get("steady_throughput_audio_seconds_per_second") or s.get("throughput_audio_seconds_per_second")
        if isinstance(rate, (int, float)):
            bits.append(f"{rate:.1f} s of audio/s" + (f" on {s['device']}" if "device" in s else ""))
        wall = s.get("wall_seconds_this_run", s.get("wall_seconds"))
        if isinstance(wall, (int, float)):
            bits.append(f"{wall / 60:.1f} min in its last run")
        for key in ("dev_bits_per_code", "dev_nats_per_sample"):
            if isinstance(s.get(key), (int, float)):
                bits.append(f"{key.replace('_', ' ')} {s[key]:.4g}")
        val = s.get("validation") if isinstance(s.get("validation"), dict) else {}
        bits.extend(f"validation {k.replace('_', ' ')} {v:.4g}" for k, v in val.items()
                    if isinstance(v, (int, float)))
        lines.append(f"{SUMMARY_FILES[info['kind']]}: " + ", ".join(bits))
    return "\n".join(lines) + "\n"
