import numpy as np
import pytest
import soundfile as sf
import torch

from vqspeech.audio import load_audio
from vqspeech.bin.convert_voice import main as convert_main
from vqspeech.bin.decode import main as decode_main
from vqspeech.bin.encode import main as encode_main
from vqspeech.codes_file import read_codes
from vqspeech.checkpoint import load_model
from vqspeech.conversion import decode_codes, encode_wav, plan_folds
from vqspeech.kaldi_data_dir import read_data_dir
from vqspeech.generation import SamplingOptions


def test_fold_plan_covers_every_frame_once():
    for frames in (1, 7, 100, 1000, 1003):
        plan = plan_folds(frames, hop=16, receptive_field=64, max_batch=8)
        assert plan.cores[0] == 0 and plan.cores[-1] == frames
        assert all(a < b for a, b in zip(plan.cores, plan.cores[1:]))
        assert len(plan.starts) <= 8
        for i, s in enumerate(plan.starts):
            # warm-up covers the receptive field plus the cross-fade before the segment's own frames
            assert s == 0 if i == 0 else (plan.cores[i] - s) * 16 >= 64 + 16
            assert s + plan.length >= plan.cores[i + 1]
    assert len(plan_folds(1000, 16, 64, 8).starts) == 8


def test_gpu_fold_plan_with_cores_shorter_than_the_warmup():
    """min_core_factor 0 (the triton backend): many one-frame cores; segments near the start
    begin at frame 0 instead of before it."""
    plan = plan_folds(64, hop=16, receptive_field=64, max_batch=512, min_core_factor=0)
    assert len(plan.starts) == 64 and plan.cores == list(range(65))
    assert min(plan.starts) == 0 and plan.starts[10] == 10 - 5  # warm-up: (64 + 16) / 16 = 5 frames
    for i, s in enumerate(plan.starts):
        assert s + plan.length >= plan.cores[i + 1] and (s == 0 or plan.cores[i] - s == 5)


def test_a_shorter_warmup_shortens_every_segment_and_allows_more_of_them():
    """--warmup-samples replaces the receptive field in the warm-up: 64 + 16 samples = 5 frames
    by default, (16 + 16) / 16 = 2 frames with 16; the receptive field itself changes nothing."""
    full = plan_folds(1000, hop=16, receptive_field=64, max_batch=64)
    assert plan_folds(1000, 16, 64, 64, warmup_samples=64) == full
    short = plan_folds(1000, hop=16, receptive_field=64, max_batch=64, warmup_samples=16)
    assert short.warmup == 2 and full.warmup == 5
    assert len(short.starts) > len(full.starts)  # min_core_factor x the shorter warm-up: more segments
    for i, s in enumerate(short.starts[1:], 1):
        assert short.cores[i] - s == 2
    assert plan_folds(1000, 16, 64, 8, warmup_samples=0).warmup == 1  # the cross-fade is still covered
    with pytest.raises(ValueError, match="warmup_samples must be >= 0, got -1"):
        plan_folds(1000, 16, 64, 8, warmup_samples=-1)


def test_decoding_with_a_warmup_of_the_receptive_field_is_the_default(trained_tiny, tiny_corpus, tmp_path, capsys):
    lm = load_model(trained_tiny / "checkpoint.pt")
    codes = torch.randint(0, 16, (120,), generator=torch.Generator().manual_seed(0))
    opts = SamplingOptions(seed=2)
    rf = lm.model.decoder.receptive_field
    default = decode_codes(lm.model, codes, 0, opts, "numba", fold=True, max_batch=8)
    np.testing.assert_array_equal(decode_codes(lm.model, codes, 0, opts, "numba", fold=True, max_batch=8,
                                               warmup=rf), default)
    short = decode_codes(lm.model, codes, 0, opts, "numba", fold=True, max_batch=8, warmup=0)
    assert short.shape == default.shape and not np.array_equal(short, default)
    # the first segment starts at 0 either way: its own samples, up to the first cross-fade, are the same
    first = min(plan_folds(120, lm.hop, rf, 8, warmup_samples=w).cores[1] for w in (0, None)) * lm.hop - lm.hop
    np.testing.assert_array_equal(short[:first], default[:first])
    # the CLI flag: passed through, and a negative value is a one-line error
    codes_file = tmp_path / "codes.txt"
    codes_file.write_text("u1 " + " ".join(map(str, codes.tolist())) + "\n")
    args = ["--model", str(trained_tiny / "checkpoint.pt"), "--codes", str(codes_file), "--speaker", lm.speakers[0],
            "--output-dir", str(tmp_path / "dec"), "--seed", "2", "--method", "numba", "--max-batch", "8"]
    assert decode_main(args + ["--warmup-samples", "0"]) == 0
    y, _ = sf.read(tmp_path / "dec" / f"u1_{lm.speakers[0]}.wav", dtype="float32")
    assert len(y) == len(short) and np.abs(y - short).max() < 1e-4  # the file holds the short-warm-up decode
    with pytest.raises(SystemExit) as exit_info:
        decode_main(args + ["--warmup-samples", "-5"])
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in err
    assert "argument --warmup-samples: must be >= 0 (or 'full'), got -5" in err


def test_encode_in_chunks_equals_whole(trained_tiny, tiny_corpus):
    lm = load_model(trained_tiny / "checkpoint.pt")
    dd = read_data_dir(tiny_corpus / "data" / "test")
    wav = load_audio(dd.audio_of(dd.utterances[0])[0])
    whole, z = encode_wav(lm.model, wav, return_features=True)
    chunked, z2 = encode_wav(lm.model, wav, chunk_seconds=0.1, return_features=True)
    assert whole.shape[0] == int(np.ceil(len(wav) / lm.hop)) == z.shape[0]
    assert torch.equal(whole, chunked)
    np.testing.assert_allclose(z, z2, atol=1e-5)


def test_folded_decoding_has_no_clicks_and_right_length(trained_tiny, tiny_corpus):
    lm = load_model(trained_tiny / "checkpoint.pt")
    dd = read_data_dir(tiny_corpus / "data" / "test")
    wav = load_audio(dd.audio_of(dd.utterances[0])[0])
    codes = encode_wav(lm.model, wav)
    opts = SamplingOptions(seed=3)
    out = decode_codes(lm.model, codes, 0, opts, fold=True, max_batch=8)
    assert out.shape == (codes.shape[0] * lm.hop,)
    plan = plan_folds(codes.shape[0], lm.hop, lm.model.decoder.receptive_field, 8)
    assert len(plan.starts) > 2
    jumps = np.abs(np.diff(out))
    seams = np.zeros_like(jumps, dtype=bool)
    for c in plan.cores[1:-1]:
        a = c * lm.hop
        seams[a - lm.hop - 2:a + 2] = True  # the cross-fade and its edges
    assert jumps[seams].max() <= max(jumps[~seams].max(), 0.05), (jumps[seams].max(), jumps[~seams].max())
    # the same seed gives the same audio; folding is deterministic too
    again = decode_codes(lm.model, codes, 0, opts, fold=True, max_batch=8)
    np.testing.assert_array_equal(out, again)


def test_convert_cli_single_batch_and_errors(trained_tiny, tiny_corpus, tmp_path, capsys):
    ckpt = str(trained_tiny / "checkpoint.pt")
    lm = load_model(ckpt)
    assert convert_main(["--model", ckpt, "--list-speakers"]) == 0
    assert capsys.readouterr().out.split() == lm.speakers
    dd = read_data_dir(tiny_corpus / "data" / "test")
    utt = dd.utterances[0]
    src = tmp_path / "in.flac"  # any readable format, rate and channel count
    x = load_audio(dd.audio_of(utt)[0])
    sf.write(src, np.stack([x, x], 1), 16000)
    out = tmp_path / "out.wav"
    assert convert_main(["--model", ckpt, "--input", str(src), "--target-speaker", lm.speakers[-1],
                         "--output", str(out), "--seed", "1"]) == 0
    assert "real time" in capsys.readouterr().out
    y, sr = sf.read(out)
    assert sr == 16000 and len(y) == len(x)
    # unknown speaker: one line listing the valid ones, exit 2, nothing written
    assert convert_main(["--model", ckpt, "--input", str(src), "--target-speaker", "nobody",
                         "--output", str(tmp_path / "bad.wav")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "unknown speaker 'nobody'" in err and lm.speakers[0] in err
    assert not (tmp_path / "bad.wav").exists()
    # batch over a data dir
    assert convert_main(["--model", ckpt, "--data-dir", str(tiny_corpus / "data" / "test"),
                         "--target-speaker", lm.speakers[0], "--output-dir", str(tmp_path / "batch"),
                         "--no-progress"]) == 0
    assert len(list((tmp_path / "batch").glob("*.wav"))) == len(dd.utt2spk)
    # a list with one broken input: the others complete, exit 1, failure listed
    (tmp_path / "broken.wav").write_bytes(b"not audio")
    (tmp_path / "jobs.txt").write_text(f"{src} {lm.speakers[0]} {tmp_path / 'j1.wav'}\n"
                                       f"{tmp_path / 'broken.wav'} {lm.speakers[0]} {tmp_path / 'j2.wav'}\n")
    assert convert_main(["--model", ckpt, "--list", str(tmp_path / "jobs.txt"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "broken.wav" in err and "1 of 2 conversions failed" in err
    assert (tmp_path / "j1.wav").exists() and not (tmp_path / "j2.wav").exists()


def test_encode_decode_cli(trained_tiny, tiny_corpus, tmp_path, capsys):
    ckpt = str(trained_tiny / "checkpoint.pt")
    codes_file = tmp_path / "codes" / "test.txt"
    assert encode_main(["--model", ckpt, "--data-dir", str(tiny_corpus / "data" / "test"),
                        "--output", str(codes_file), "--features", str(tmp_path / "feats.npz")]) == 0
    codes = read_codes(codes_file)
    dd = read_data_dir(tiny_corpus / "data" / "test")
    assert sorted(codes) == dd.utterances
    feats = np.load(tmp_path / "feats.npz")
    utt = dd.utterances[0]
    assert feats[utt].shape == (len(codes[utt]), 8)
    assert decode_main(["--model", ckpt, "--codes", str(codes_file), "--speaker", "own",
                        "--output-dir", str(tmp_path / "dec"), "--utts", utt]) == 0
    y, _ = sf.read(tmp_path / "dec" / f"{utt}_{dd.utt2spk[utt]}.wav")
    assert len(y) == len(codes[utt]) * 16


def test_all_pairs_batch_writes_every_speaker_pair(trained_tiny, tiny_corpus, tmp_path):
    """Stage 4's command: the first N utterances of each speaker converted to every other speaker."""
    from vqspeech.bin.convert_voice import main as convert_main
    from vqspeech.checkpoint import load_model
    from vqspeech.kaldi_data_dir import read_data_dir

    ckpt = trained_tiny / "checkpoint.pt"
    dd = read_data_dir(tiny_corpus / "data" / "test")
    speakers = load_model(ckpt).speakers
    assert convert_main(["--model", str(ckpt), "--data-dir", str(tiny_corpus / "data" / "test"), "--all-pairs", "1",
                         "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 0
    folders = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert folders == sorted(f"{s}_to_{t}" for s in dd.speakers for t in speakers if t != s)
    for src, utts in dd.spk2utt.items():
        assert [p.name for p in (tmp_path / "out").glob(f"{src}_to_*/*.wav")] == \
            [f"{utts[0]}.wav"] * (len(speakers) - 1)
