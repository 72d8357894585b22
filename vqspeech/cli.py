"""``vqspeech <command> ...``: the table of commands. Each command is ``vqspeech.bin.<module>.main(argv)``
(thin: parse arguments, call a library function, exit); ``vqspeech <command>`` is the documented way to
run it (``python -m vqspeech.bin.train`` for torchrun, which launches a module; ``torchrun --no-python
vqspeech train ...`` works too, since the console script leaves through :func:`run`).
User errors (:class:`vqspeech.errors.UserError`) print one line on stderr and exit 2; ``--verbose``
shows the traceback too (:mod:`vqspeech.bin.runner`).
"""

from __future__ import annotations

import sys
from typing import Callable, NoReturn


# name -> (module, function, one-line description). Modules are imported only when their command
# runs, so listing the commands does not import torch.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "validate-data-dir": ("vqspeech.bin.validate_data_dir", "main", "check a Kaldi data directory (Kaldi's verdicts)"),
    "fix-data-dir": ("vqspeech.bin.fix_data_dir", "main", "repair a data directory like Kaldi's fix_data_dir.sh"),
    "make-mini-corpus": ("vqspeech.bin.make_mini_corpus", "main", "synthesize the mini corpus (flite/festival voices)"),
    "subset-data-dir": ("vqspeech.bin.subset_data_dir", "main", "a data directory without some speakers"),
    "shift-voices": ("vqspeech.bin.shift_voices", "main", "more training voices: every speaker shifted by semitones"),
    "prepare-vctk": ("vqspeech.bin.prepare_vctk", "main", "make data directories from a VCTK tree"),
    "prepare-timit": ("vqspeech.bin.prepare_timit", "main",
                      "make data directories (with phones.ctm) from TIMIT"),
    "prepare-librispeech": ("vqspeech.bin.prepare_librispeech", "main",
                            "make data directories from LibriSpeech subsets"),
    "train": ("vqspeech.bin.train", "main", "train a VQ-VAE (resumes; torchrun + DDP for many processes)"),
    "train-vocoder": ("vqspeech.bin.train_vocoder", "main",
                      "train a WaveNet vocoder on log-mel frames (spectral models)"),
    "measure-history": ("vqspeech.bin.measure_history", "main",
                        "how much sample history a WaveNet decoder uses -> its folding warm-up"),
    "model-info": ("vqspeech.bin.model_info", "main",
                   "what a checkpoint is and holds: codebook, rates, decoder, speakers, parameters"),
    "generation-methods": ("vqspeech.bin.generation_methods", "main",
                           "which WaveNet generation methods run here, and the default"),
    "encode": ("vqspeech.bin.encode", "main", "codes (and encoder features) of a data directory"),
    "decode": ("vqspeech.bin.decode", "main", "codes file + speaker -> audio"),
    "convert-voice": ("vqspeech.bin.convert_voice", "main", "voice conversion of files or data directories"),
    "phone-report": ("vqspeech.bin.phone_report", "main", "how well the codes match phones (ABX, purity, ...)"),
    "align": ("vqspeech.bin.align", "main", "pocketsphinx forced alignment -> phones.ctm"),
    "import-alignments": ("vqspeech.bin.import_alignments", "main",
                          "TextGrid / TIMIT .PHN / HTK .lab alignments -> phones.ctm"),
    "vc-eval": ("vqspeech.bin.vc_eval", "main", "evaluate voice conversion (MCD, F0, speaker, WER)"),
    "vc-compare": ("vqspeech.bin.vc_compare", "main",
                   "two vc-eval reports of one test set: paired differences with intervals"),
    "train-prior": ("vqspeech.bin.train_prior", "main", "train the autoregressive prior over a model's codes"),
    "sample": ("vqspeech.bin.sample", "main", "speech sampled from the prior in a chosen voice"),
    "prior-report": ("vqspeech.bin.prior_report", "main", "sample every voice; bits/code, speaker ID, phone stats"),
    "export-zerospeech": ("vqspeech.bin.export_zerospeech", "main", "codes/features in ZeroSpeech file formats"),
    "demo": ("vqspeech.bin.demo", "main", "the Gradio demo in the browser"),
}


def _command(name: str) -> Callable[[list[str]], int]:
    import importlib

    module, function, _ = COMMANDS[name]
    return getattr(importlib.import_module(module), function)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        width = max(map(len, COMMANDS))
        print("usage: vqspeech <command> [options]\n\ncommands:\n" +
              "\n".join(f"  {name:<{width}}  {desc}" for name, (_, _, desc) in COMMANDS.items()) +
              "\n\n'vqspeech <command> --help' for details")
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        from . import __version__

        print(f"vqspeech {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"vqspeech: error: unknown command {name!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    return _command(name)(rest)


def run() -> NoReturn:
    """The ``vqspeech`` console script and ``python -m vqspeech``: :func:`main`, then leave as every entry
    point does, so a torchrun worker skips the interpreter teardown (``runner.exit_entry_point``)."""
    from .bin.runner import exit_entry_point

    exit_entry_point(main())


if __name__ == "__main__":
    run()
