"""How much history a WaveNet decoder uses (vqspeech.decoder_history) and the warm-up it sets."""

import shutil

import numpy as np
import pytest
import torch
from helpers import sharp_tiny_wavenet

from vqspeech.audio import mulaw_encode
from vqspeech.bin.decode import main as decode_main
from vqspeech.bin.measure_history import main as measure_main
from vqspeech.checkpoint import CheckpointError, load_checkpoint, load_model, store_measured_history
from vqspeech.conversion import decode_codes, plan_folds, warmup_samples
from vqspeech.decoder_history import (HistoryProfile, HistoryRow, candidate_histories, crop_layout,
                                      measure_history)
from vqspeech.fold_divergence import WarmupComparison
from vqspeech.generation import SamplingOptions
from vqspeech.teacher_forcing import load_crops


def test_candidates_are_whole_frames_doubling_then_the_receptive_field():
    assert candidate_histories(1024, 64) == [0, 64, 128, 256, 512, 1024]
    assert candidate_histories(2047, 64) == [0, 64, 128, 256, 512, 1024, 2047]
    assert candidate_histories(64, 16) == [0, 16, 32, 64]


def test_the_choice_is_the_shortest_history_below_which_nothing_longer_exceeds_the_tolerance():
    def prof(kls):
        rows = [HistoryRow(w, 4.0, kl) for w, kl in zip([0, 64, 128, 256, 512, 1024], kls)]
        return HistoryProfile(rows, 4.0, 1024, 1024, 3)

    p = prof([0.02, 0.0019, 0.0005, 0.00015, 7e-6, 0.0])
    assert p.choose(0.001) == 128 and p.choose(0.0001) == 512 and p.choose(0.03) == 0 and p.choose(0) == 1024
    # a longer history above the tolerance blocks every shorter one, even one within it
    assert prof([0.0, 0.0, 0.002, 0.0, 0.0, 0.0]).choose(0.001) == 256
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        p.choose(-1)


def test_crop_layout_leaves_room_for_the_history_and_the_conditioning():
    start, window, length = crop_layout(receptive_field=64, hop=16, offset=200)
    assert (start, window) == (208, 64)  # offset 200 rounded up to a frame
    assert length == 208 + 64 + 4 * 16
    assert crop_layout(64, 16, 0)[0] == (4 + 4) * 16  # the receptive field's 4 frames + the margin


def _noise(batch=3, length=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    return 0.3 * torch.randn(batch, length, generator=g), torch.tensor([0, 1, 2][:batch])


def test_the_kl_equals_an_independent_computation_and_vanishes_at_the_receptive_field():
    model = sharp_tiny_wavenet()
    hop, rf = model.hop, model.decoder.receptive_field
    start, window, length = crop_layout(rf, hop, offset=0)
    wav, spk = _noise(length=length)
    prof = measure_history(model, wav, spk, start, window)
    rows = {r.samples: r for r in prof.rows}
    assert list(rows) == [0, 16, 32, 64]
    assert rows[0].kl_bits > 1e-3  # a sharp random decoder uses its history
    # the receptive field's 4 frames hold every sample the window's predictions see, but the
    # conditioning of their first two frames sees the crop's start (as a segment's warm-up does)
    assert rows[rf].kl_bits < 1e-4 * rows[0].kl_bits and abs(rows[rf].bits - prof.reference_bits) < 1e-3

    # independently: the decoder run from the crop's start (the reference: more than the receptive
    # field and the conditioning's context) and from one frame before the window
    with torch.no_grad():
        codes = model.encode(wav)["codes"]
        target = mulaw_encode(wav, model.decoder.cfg.quantization_channels).long()

        def window_logits(f0):
            c, g = model.code_conditioning(codes[:, f0:], spk)
            logits = model.decoder(model.decoder.shift_inputs(target[:, f0 * hop:]), c, g, hop)
            return logits[:, :, start - f0 * hop:start - f0 * hop + window].transpose(1, 2)

        p_ref = torch.distributions.Categorical(logits=window_logits(0).double())
        p_one = torch.distributions.Categorical(logits=window_logits(start // hop - 1).double())
        kl = torch.distributions.kl_divergence(p_ref, p_one).mean().item() / np.log(2)
        nll = -p_one.log_prob(target[:, start:start + window]).mean().item() / np.log(2)
    assert rows[16].kl_bits == pytest.approx(kl, rel=1e-6, abs=1e-12)
    assert rows[16].bits == pytest.approx(nll, rel=1e-9)


def test_a_decoder_that_sees_two_samples_back_needs_only_the_conditionings_two_frames():
    """With every dilated convolution's past tap zeroed except the first layer's, a prediction
    depends on the two previous samples and on the codes; the code conditioning (two k=3
    convolutions) reaches two frames back, so two frames of history change nothing, one does."""
    model = sharp_tiny_wavenet()
    for layer in model.decoder.layers[1:]:
        layer.conv.weight.data[:, :, 0] = 0
    hop, rf = model.hop, model.decoder.receptive_field
    start, window, length = crop_layout(rf, hop, offset=0)
    wav, spk = _noise(length=length, seed=1)
    prof = measure_history(model, wav, spk, start, window)
    kl = {r.samples: r.kl_bits for r in prof.rows}
    assert kl[2 * hop] < 1e-9 and kl[rf] < 1e-9
    assert kl[hop] > 1e-6 and kl[0] > kl[hop]
    assert prof.choose(1e-9) == 2 * hop


def test_measuring_rejects_a_misplaced_window():
    model = sharp_tiny_wavenet()
    wav, spk = _noise(length=300)
    with pytest.raises(ValueError, match="frame boundary"):
        measure_history(model, wav, spk, 129, 64)
    with pytest.raises(ValueError, match="cannot hold"):
        measure_history(model, wav, spk, 64, 64)


def test_the_measured_history_is_stored_and_becomes_the_default_warmup(trained_tiny, tmp_path):
    path = tmp_path / "model.pt"
    shutil.copy(trained_tiny / "checkpoint.pt", path)
    lm = load_model(path)
    rf = lm.model.decoder.receptive_field
    assert lm.model.decoder.history_samples is None and warmup_samples(lm.model.decoder, None) == rf
    record = {"samples": 16, "tolerance_bits": 0.001, "rows": [[0, 4.0, 0.1], [16, 4.0, 0.0]]}
    store_measured_history(path, record)
    lm = load_model(path)
    dec = lm.model.decoder
    assert dec.history_samples == 16 and load_checkpoint(path)["measured_history"] == record
    assert warmup_samples(dec, None) == 16 and warmup_samples(dec, "full") == rf and warmup_samples(dec, 0) == 0
    codes = torch.randint(0, 16, (120,), generator=torch.Generator().manual_seed(0))
    opts = SamplingOptions(seed=3)
    default = decode_codes(lm.model, codes, 0, opts, "numba", max_batch=8)
    np.testing.assert_array_equal(default, decode_codes(lm.model, codes, 0, opts, "numba", max_batch=8, warmup=16))
    full = decode_codes(lm.model, codes, 0, opts, "numba", max_batch=8, warmup="full")
    np.testing.assert_array_equal(full, decode_codes(lm.model, codes, 0, opts, "numba", max_batch=8, warmup=rf))
    assert not np.array_equal(full, default)
    assert plan_folds(120, lm.hop, rf, 8, warmup_samples=16).warmup == 2  # (16 + the 16-sample cross-fade) / 16
    with pytest.raises(ValueError, match="'full' or None"):
        warmup_samples(dec, "half")


def test_a_bad_measured_history_is_a_one_line_checkpoint_error(trained_tiny, tmp_path):
    path = tmp_path / "model.pt"
    shutil.copy(trained_tiny / "checkpoint.pt", path)
    for bad in ({"samples": 10**6}, {"samples": -1}, {"samples": "64"}, [64]):
        ckpt = load_checkpoint(path)
        torch.save({**ckpt, "measured_history": bad}, path)
        with pytest.raises(CheckpointError, match=r"model\.pt: 'measured_history' must hold samples between 0 and"):
            load_model(path)


def test_the_command_measures_writes_and_decoding_then_warms_up_that_much(trained_tiny, tiny_corpus, tmp_path,
                                                                          capsys):
    path = tmp_path / "model.pt"
    shutil.copy(trained_tiny / "checkpoint.pt", path)
    before = path.read_bytes()
    dev = str(tiny_corpus / "data" / "dev")
    assert measure_main(["--model", str(path), "--data-dir", dev, "--utterances", "4"]) == 0
    out = capsys.readouterr().out
    assert "| 64 (receptive field)" in out and "**chosen**" in out and path.read_bytes() == before  # no --write
    assert measure_main(["--model", str(path), "--data-dir", dev, "--utterances", "4", "--tolerance", "0",
                         "--write"]) == 0
    assert "folded generation now warms up 64 samples by default" in capsys.readouterr().out
    rec = load_checkpoint(path)["measured_history"]
    assert rec["samples"] == 64 and rec["tolerance_bits"] == 0 and rec["utterances"] == 4
    assert [r[0] for r in rec["rows"]] == [0, 16, 32, 64] and rec["rows"][-1][2] < 1e-5
    # a generous tolerance picks no history at all, and decode then uses it
    assert measure_main(["--model", str(path), "--data-dir", dev, "--utterances", "2", "--tolerance", "100",
                         "--write"]) == 0
    capsys.readouterr()
    lm = load_model(path)
    assert lm.model.decoder.history_samples == 0
    codes = torch.randint(0, 16, (60,), generator=torch.Generator().manual_seed(1))
    codes_file = tmp_path / "codes.txt"
    codes_file.write_text("u1 " + " ".join(map(str, codes.tolist())) + "\n")
    args = ["--model", str(path), "--codes", str(codes_file), "--speaker", lm.speakers[0], "--seed", "4",
            "--method", "numba", "--max-batch", "4"]
    assert decode_main(args + ["--output-dir", str(tmp_path / "a")]) == 0
    assert decode_main(args + ["--output-dir", str(tmp_path / "b"), "--warmup-samples", "0"]) == 0
    assert decode_main(args + ["--output-dir", str(tmp_path / "c"), "--warmup-samples", "full"]) == 0
    wav = {d: (tmp_path / d / f"u1_{lm.speakers[0]}.wav").read_bytes() for d in "abc"}
    assert wav["a"] == wav["b"] != wav["c"]



def test_the_command_confirms_its_choice_free_running_and_stores_that(trained_tiny, tiny_corpus, tmp_path, capsys):
    path = tmp_path / "model.pt"
    shutil.copy(trained_tiny / "checkpoint.pt", path)
    dev = str(tiny_corpus / "data" / "dev")
    lm = load_model(path)
    rf, hop = lm.model.decoder.receptive_field, lm.hop
    common = ["--model", str(path), "--data-dir", dev, "--utterances", "3", "--free-running", "--seeds", "0,1",
              "--seconds", "0.5", "--segments", "4", "--method", "numba", "--write"]
    # a generous tolerance: teacher forcing picks no history, and free-running confirms it
    assert measure_main(common + ["--tolerance", "100"]) == 0
    out = capsys.readouterr().out
    assert "| 0 **confirmed** |" in out and f"| {rf} (receptive field) |" in out and "confirms it" in out
    rec = load_checkpoint(path)["measured_history"]
    fr = rec["free_running"]
    assert rec["samples"] == fr["samples"] == fr["teacher_forced_samples"] == 0
    assert fr["seeds"] == [0, 1] and fr["utterances"] == 3 and fr["segments"] == 4 and fr["method"] == "numba"
    assert [r[0] for r in fr["rows"]] == [0, rf] and fr["rows"][1][3] == 0 and fr["rows"][0][5] == 6
    # the rows are the library's free-running comparison of the same utterances and seeds
    wav, spk = load_crops(lm, dev, 3, int(0.5 * lm.sample_rate) // hop * hop, pad=False)
    cmp = WarmupComparison(lm.model, list(lm.model.encode(wav)["codes"]), spk.tolist(), [0, 1], "numba", 4)
    row = cmp.row(0)
    assert fr["rows"][0][1:5] == pytest.approx([row.kl_bits, row.kl_se, row.extra_bits, row.extra_se], rel=1e-9)
    assert load_model(path).model.decoder.history_samples == 0
    # with no tolerance teacher forcing keeps the receptive field, the free-running reference itself
    assert measure_main(common + ["--tolerance", "0"]) == 0
    rec = load_checkpoint(path)["measured_history"]
    assert rec["samples"] == rec["free_running"]["samples"] == rf


def test_the_command_gives_one_line_errors(trained_tiny, tiny_corpus, tmp_path, capsys):
    dev = str(tiny_corpus / "data" / "dev")
    model = str(trained_tiny / "checkpoint.pt")
    cases = [
        (["--data-dir", dev], "is not a WaveNet"),  # the shipped model is spectral
        (["--model", model, "--data-dir", dev, "--offset", "10000000"], "no utterance has the"),
        (["--model", model, "--data-dir", str(tmp_path / "none")], "none"),
        (["--data-dir", dev, "--write"], "--write needs --model"),
        (["--model", model, "--data-dir", dev, "--free-running", "--seconds", "1000"], "--seconds 1000: "),
        (["--model", model, "--data-dir", dev, "--seeds", "1", "--segments", "4"],
         "--seeds and --segments only apply with --free-running"),
    ]
    for argv, needle in cases:
        assert measure_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("vqspeech measure-history: error: ") and needle in err and "\n" not in err
    # A negative tolerance is refused by argparse (usage line + one error line), before any work.
    with pytest.raises(SystemExit) as exit_info:
        measure_main(["--model", model, "--data-dir", dev, "--tolerance", "-1"])
    assert exit_info.value.code == 2
    assert "argument --tolerance: must be >= 0, got -1" in capsys.readouterr().err
