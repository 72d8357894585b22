"""Gradio voice-conversion demo: ``vqspeech demo [--model M] [--port 7860]`` or ``python demo/app.py``.

Upload or record speech, choose a target speaker, convert; the page plays the result
(with a download button), shows the source's codes under its spectrogram and the
conversion's real-time factor.  Requests are queued (one conversion at a time per worker),
uploads are limited in size and duration, and only files that Gradio itself stored from
an upload (or the shipped examples) are ever opened.
"""

from __future__ import annotations

import io
import os
import tempfile
import threading
from importlib import resources
from pathlib import Path

import numpy as np


MAX_SECONDS = 30.0
MAX_FILE_MB = 20
FORMATS = "wav, flac, ogg, mp3 (where libsndfile supports it); any sample rate; mono or multi-channel"


def example_files() -> list[Path]:
    """The mini-corpus utterances shipped with the package for one-click examples."""
    d = Path(str(resources.files("vqspeech").joinpath("pretrained", "examples")))
    return sorted(d.glob("*.wav")) if d.is_dir() else []


def _allowed(path: Path) -> bool:
    """Only Gradio's upload cache and the shipped examples may be opened."""
    path = path.resolve()
    roots = [Path(tempfile.gettempdir()).resolve(), *[p.parent.resolve() for p in example_files()[:1]]]
    if os.environ.get("GRADIO_TEMP_DIR"):
        roots.append(Path(os.environ["GRADIO_TEMP_DIR"]).resolve())
    return any(path.is_relative_to(r) for r in roots)


def codes_figure(wav: np.ndarray, codes: np.ndarray, sr: int, hop: int) -> np.ndarray:
    """Spectrogram with the code sequence under it, as an RGB image (H, W, 3)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a0, a1) = plt.subplots(2, 1, figsize=(10, 3.6), sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    a0.specgram(wav + 1e-6, NFFT=400, Fs=sr, noverlap=240, cmap="magma")
    a0.set_ylabel("Hz")
    t = np.arange(len(codes) + 1) * hop / sr
    a1.pcolormesh(t, [0, 1], codes[None, :].astype(float), cmap="tab20", shading="flat")
    a1.set_yticks([])
    a1.set_ylabel("codes")
    a1.set_xlabel("seconds")
    a0.set_title(f"source: {len(codes)} codes ({sr / hop:.0f} per second), {len(np.unique(codes))} distinct")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    import matplotlib.image as mpimg

    buf.seek(0)
    return (mpimg.imread(buf, format="png")[:, :, :3] * 255).astype(np.uint8)


class Converter:
    """Holds the model; one conversion at a time (the numba path already uses every core)."""

    def __init__(self, model_path: str | None, vocoder_model: str | None = None):
        import torch

        from .checkpoint import load_model
        from .generation import default_method
        from .pretrained import model_path_or_shipped

        self.path = model_path_or_shipped(model_path)
        self.lm = load_model(self.path, "cpu")
        self.method = default_method(torch.device("cpu"))
        self.lock = threading.Lock()
        # The best vocoder available: a spectral model's frames go through Griffin-Lim (the best on
        # a CPU budget, README's decoder study) unless a trained WaveNet vocoder is given; a WaveNet
        # model samples with the CPU's default backend.
        self.vocoder = "griffin-lim"
        if vocoder_model:
            from .vocoders import WaveNetVocoding

            self.vocoder = WaveNetVocoding.load(vocoder_model, self.lm, method=self.method)
        if self.lm.model.decoder_kind != "spectral":
            self.how = f"encode + folded WaveNet decode ({self.method}) on CPU"
        elif vocoder_model:
            self.how = f"encode + spectral decoder + WaveNet vocoder ({self.method}) on CPU"
        else:
            self.how = "encode + spectral decoder + Griffin-Lim on CPU"

    def __call__(self, audio_path, speaker, temperature, seed, reference_path=None, intonation=1.0,
                 follow_pitch=True):
        """Convert ``audio_path`` to ``speaker``, or to the voice of ``reference_path`` when given
        (reference models); a model that reads the source's pitch follows its contour times
        ``intonation`` (0: a monotone), or decodes the codes alone when ``follow_pitch`` is off
        (``--intonation none``)."""
        import gradio as gr

        from .audio import audio_info, load_audio
        from .conversion import convert, require_one_code
        from .errors import UserError
        from .generation import SamplingOptions

        if not audio_path:
            raise gr.Error("Upload or record some speech first.")
        path = Path(audio_path)
        if not _allowed(path):
            raise gr.Error("That file is not an upload.")
        if path.stat().st_size > MAX_FILE_MB * 1024 * 1024:
            raise gr.Error(f"File too large: at most {MAX_FILE_MB} MB.")
        target = None
        if reference_path:
            ref = Path(reference_path)
            if not _allowed(ref) or ref.stat().st_size > MAX_FILE_MB * 1024 * 1024:
                raise gr.Error(f"The reference voice must be an upload of at most {MAX_FILE_MB} MB.")
            from .speaker_reference import reference_embedding

            try:
                target = reference_embedding([ref], model=self.lm.model)
            except UserError as exc:
                raise gr.Error(f"Reference voice: {str(exc).split(': ', 1)[-1]}") from None
            speaker = "the reference voice"
        elif speaker not in self.lm.speakers:
            raise gr.Error(f"Unknown speaker {speaker!r}; choose one of {', '.join(self.lm.speakers)}.")
        else:
            target = self.lm.speakers.index(speaker)
        try:
            frames, sr, _ = audio_info(path)
            if frames / sr > MAX_SECONDS:
                raise gr.Error(f"Audio too long: {frames / sr:.1f} s; the demo accepts at most {MAX_SECONDS:.0f} s.")
            wav = load_audio(path, self.lm.sample_rate)
            require_one_code(wav, self.lm.hop, self.lm.sample_rate, path.name)
        except UserError as exc:
            raise gr.Error(f"Cannot read this audio ({str(exc).split(': ', 1)[-1]}). Accepted: {FORMATS}.") from None
        opts = SamplingOptions(temperature=float(temperature), seed=int(seed))
        with self.lock:
            res = convert(self.lm.model, wav, target, self.lm.sample_rate, opts, self.method, vocoder=self.vocoder,
                          intonation=float(intonation) if follow_pitch else None)
        picture = codes_figure(wav, res.codes.numpy(), self.lm.sample_rate, self.lm.hop)
        info = (f"Converted {res.audio_seconds:.2f} s of audio to **{speaker}** in {res.seconds:.2f} s: "
                f"**{res.real_time_factor:.2f}x real time** ({self.how}).")
        pcm = (np.clip(res.wav, -1, 1) * 32767).astype(np.int16)
        return (self.lm.sample_rate, pcm), picture, info


def model_description(path) -> str:
    """The lines ``vqspeech model-info`` prints for the demo's checkpoint."""
    from .checkpoint_info import describe_checkpoint, format_description

    return format_description(describe_checkpoint(path))


def build_app(model_path: str | None = None, vocoder_model: str | None = None):
    import gradio as gr

    conv = Converter(model_path, vocoder_model)
    speakers = conv.lm.speakers
    with gr.Blocks(title="vqspeech voice conversion") as app:
        gr.Markdown(f"# vqspeech voice conversion\nVQ-VAE codes keep *what* is said; the decoder says it "
                    f"in the chosen speaker's voice ({conv.how}). Speakers: {', '.join(speakers)}. "
                    f"Accepted: {FORMATS}; at most {MAX_SECONDS:.0f} s and {MAX_FILE_MB} MB.")
        with gr.Accordion("About this model", open=False, elem_id="model-info-toggle"):
            # what `vqspeech model-info` prints for it: codebook, code rate, decoder, speakers, parameters
            gr.Markdown(f"```\n{model_description(conv.path)}```", elem_id="model-info")
        with gr.Row():
            with gr.Column():
                source = gr.Audio(sources=["upload", "microphone"], type="filepath", label="Source speech",
                                  elem_id="source-audio")
                speaker = gr.Dropdown(choices=speakers, value=speakers[0], label="Target speaker",
                                      elem_id="target-speaker")
                inputs_extra = []
                if getattr(conv.lm.model, "reference", False):
                    # a reference model converts to any voice: upload or record a few seconds of it
                    inputs_extra.append(gr.Audio(sources=["upload", "microphone"], type="filepath",
                                                 label="Target voice (optional: a few seconds of anyone; "
                                                       "overrides the speaker)", elem_id="reference-audio"))
                if conv.lm.model.uses_source_pitch:
                    # the decoder follows the source's intonation: how much of it, 0 a monotone
                    if not inputs_extra:
                        inputs_extra.append(gr.State(None))  # no reference voice for this model
                    inputs_extra.append(gr.Slider(0.0, 2.0, value=1.0, step=0.1, elem_id="intonation",
                                                  label="Intonation (1: the source's, 0: a monotone)"))
                    inputs_extra.append(gr.Checkbox(value=True, elem_id="follow-pitch",
                                                    label="Follow the source's pitch (off: the codes alone, "
                                                          "the target's own intonation)"))
                with gr.Row():
                    temperature = gr.Slider(0.1, 1.5, value=1.0, step=0.05, label="Temperature")
                    seed = gr.Number(value=0, precision=0, label="Seed")
                button = gr.Button("Convert", variant="primary", elem_id="convert-button")
            with gr.Column():
                output = gr.Audio(label="Converted", type="numpy", elem_id="converted-audio", interactive=False)
                info = gr.Markdown(elem_id="conversion-info")
        picture = gr.Image(label="Source spectrogram and codes", elem_id="codes-picture")
        examples = []
        for i, p in enumerate(example_files()):  # each example goes to a speaker other than its own
            others = [s for s in speakers if not p.name.startswith(s + "_")] or speakers
            examples.append([str(p), others[i % len(others)], 1.0, 0])
        if examples:
            gr.Examples(examples, [source, speaker, temperature, seed], label="Mini-corpus examples")
        button.click(conv, [source, speaker, temperature, seed, *inputs_extra], [output, picture, info],
                     concurrency_limit=1, api_name="convert")
    app.queue(max_size=64, default_concurrency_limit=1)
    return app
