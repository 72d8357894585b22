"""The prior over codes (vqspeech.prior), its commands, and the ZeroSpeech export."""

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from vqspeech.checkpoint import load_model
from vqspeech.codes_file import read_codes
from vqspeech.errors import CheckpointError
from vqspeech.generation.sampling import SamplingOptions
from vqspeech.prior.config import PriorConfig, prior_config_from_dict
from vqspeech.prior.data import CodeCorpus, crop_batch
from vqspeech.prior.evaluate import BigramLM, cross_entropy_bits, phone_runs, unigram_bits
from vqspeech.prior.sample import load_prior, sample_codes
from vqspeech.prior.train import PriorSource, train_prior
from vqspeech.zerospeech import read_zerospeech_file

# Two speakers, each with its own first-order Markov chain over 4 codes.
CHAINS = [np.array([[0.1, 0.7, 0.1, 0.1], [0.1, 0.1, 0.7, 0.1], [0.1, 0.1, 0.1, 0.7], [0.7, 0.1, 0.1, 0.1]]),
          np.array([[0.05, 0.05, 0.05, 0.85], [0.85, 0.05, 0.05, 0.05], [0.05, 0.85, 0.05, 0.05],
                    [0.05, 0.05, 0.85, 0.05]])]


def _chain_codes(n_utts: int, length: int, seed: int):
    rng = np.random.default_rng(seed)
    codes, utt2spk = {}, {}
    for i in range(n_utts):
        spk = i % 2
        seq = [int(rng.integers(4))]
        for _ in range(length - 1):
            seq.append(int(rng.choice(4, p=CHAINS[spk][seq[-1]])))
        codes[f"s{spk}_{i:03d}"] = seq
        utt2spk[f"s{spk}_{i:03d}"] = f"s{spk}"
    return codes, utt2spk


def _true_bits(codes, utt2spk) -> float:
    """Cross-entropy of the sequences under the chains that made them (uniform first code)."""
    total, n = 0.0, 0
    for utt, seq in codes.items():
        P = CHAINS[int(utt2spk[utt][1])]
        total += -math.log2(0.25) + sum(-math.log2(P[a, b]) for a, b in zip(seq, seq[1:]))
        n += len(seq)
    return total / n


def _tiny_cfg(steps: int, dropout: float = 0.0) -> PriorConfig:
    return prior_config_from_dict({
        "model": {"layers": 2, "dim": 32, "heads": 2, "ffn": 64, "dropout": dropout, "context": 32},
        "train_conf": {"batch_size": 16, "max_steps": steps, "lr": 3e-3, "warmup_steps": 10, "log_every": 10,
                       "val_every": steps, "checkpoint_every": 20}})


SOURCE = PriorSource(num_codes=4, speakers=["s0", "s1"], sample_rate=16000, hop=64)


def test_prior_learns_a_speaker_dependent_markov_chain(tmp_path):
    train_codes, u2s = _chain_codes(60, 50, seed=0)
    test_codes, u2s_test = _chain_codes(20, 50, seed=1)
    train = CodeCorpus.from_codes(train_codes, u2s, SOURCE.speakers, 4, "train")
    test = CodeCorpus.from_codes(test_codes, u2s_test, SOURCE.speakers, 4, "test")
    res = train_prior(_tiny_cfg(400), SOURCE, train, test, tmp_path / "p", progress=False)
    model_bits = cross_entropy_bits(res.model, test)
    true_bits = _true_bits(test_codes, u2s_test)
    uni = unigram_bits(train_codes, test_codes, 4)
    # model - true cross-entropy is the mean KL from the true next-code distributions
    assert model_bits - true_bits < 0.05, (model_bits, true_bits)
    assert uni["unigram_cross_entropy_bits"] > 1.9  # the chains' unigram is near uniform: ~2 bits
    assert res.dev_bits == pytest.approx(model_bits, abs=1e-6)
    # sampled sequences follow their speaker's chain: transitions counted in samples match it
    prior = load_prior(tmp_path / "p" / "prior.pt").model
    for spk in (0, 1):
        seq = sample_codes(prior, spk, 300, SamplingOptions(seed=3))
        counts = np.zeros((4, 4))
        for a, b in zip(seq, seq[1:]):
            counts[a, b] += 1
        assert np.abs(counts / counts.sum(1, keepdims=True) - CHAINS[spk]).max() < 0.15


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_prior_training_under_bf16_autocast_learns_the_chains(tmp_path):
    """``train_conf.amp: bf16`` on CUDA: the prior still learns each speaker's chain to within
    0.05 bits/code of the truth, the bound the float32 CPU run meets above."""
    train_codes, u2s = _chain_codes(60, 50, seed=0)
    test_codes, u2s_test = _chain_codes(20, 50, seed=1)
    train = CodeCorpus.from_codes(train_codes, u2s, SOURCE.speakers, 4, "train")
    test = CodeCorpus.from_codes(test_codes, u2s_test, SOURCE.speakers, 4, "test")
    cfg = _tiny_cfg(400)
    cfg.train_conf.amp = "bf16"
    res = train_prior(cfg, SOURCE, train, test, tmp_path / "p", progress=False, device="cuda")
    assert res.dev_bits - _true_bits(test_codes, u2s_test) < 0.05, res.dev_bits


def test_sampling_is_deterministic_for_a_seed_and_continues_a_prompt(tmp_path):
    codes, u2s = _chain_codes(10, 40, seed=2)
    res = train_prior(_tiny_cfg(20), SOURCE, CodeCorpus.from_codes(codes, u2s, SOURCE.speakers, 4, "c"), None,
                      tmp_path / "p", progress=False)
    m = res.model.eval()
    a = sample_codes(m, 0, 50, SamplingOptions(seed=1))
    assert a == sample_codes(m, 0, 50, SamplingOptions(seed=1))
    assert a != sample_codes(m, 0, 50, SamplingOptions(seed=2))
    assert len(a) == 50 and set(a) <= {0, 1, 2, 3}  # 50 > context 32: the window slides
    greedy = sample_codes(m, 1, 10, SamplingOptions(argmax=True), prompt=[3, 2, 1])
    assert greedy == sample_codes(m, 1, 10, SamplingOptions(argmax=True, seed=9), prompt=[3, 2, 1])


@pytest.mark.parametrize("dropout", [0.0, 0.1])  # with dropout the resumed run needs the saved RNG
def test_training_in_two_chunks_equals_one_run(tmp_path, dropout):
    codes, u2s = _chain_codes(10, 40, seed=4)
    corpus = CodeCorpus.from_codes(codes, u2s, SOURCE.speakers, 4, "c")
    cfg = _tiny_cfg(40, dropout)
    one = train_prior(cfg, SOURCE, corpus, None, tmp_path / "one", progress=False).model
    train_prior(cfg, SOURCE, corpus, None, tmp_path / "two", progress=False, until_step=20)
    two = train_prior(cfg, SOURCE, corpus, None, tmp_path / "two", progress=False).model
    for (k, a), b in zip(one.state_dict().items(), two.state_dict().values()):
        assert torch.equal(a, b), k
    assert (tmp_path / "two" / "config.yaml").is_file() and (tmp_path / "two" / "prior_summary.json").is_file()


def test_crops_are_a_function_of_seed_and_step():
    codes, u2s = _chain_codes(6, 50, seed=5)
    corpus = CodeCorpus.from_codes(codes, u2s, SOURCE.speakers, 4, "c")
    a = crop_batch(corpus, 8, 16, seed=0, step=3)
    b = crop_batch(corpus, 8, 16, seed=0, step=3)
    c = crop_batch(corpus, 8, 16, seed=0, step=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b)) and not torch.equal(a[0], c[0])
    inputs, targets, _ = a
    assert torch.equal(inputs[:, 1:], targets[:, :-1])  # next-code targets


def test_bigram_perplexity_and_phone_runs_by_hand():
    assert phone_runs([1, 1, 2, 2, 2, 7, 1], {1: "a", 2: "b", 7: "b"}) == ["a", "b", "a"]
    lm = BigramLM([["a", "b"]])  # vocab {a, b, ?, </s>} = 4; pairs <s>a, ab, b</s>
    # perplexity of [a, b]: each bigram seen once after a history seen once: p = 2 / 5
    assert lm.perplexity([["a", "b"]]) == pytest.approx(5 / 2)
    # [b]: <s>b unseen (1 / 5), b</s> seen (2 / 5)
    assert lm.perplexity([["b"]]) == pytest.approx(math.exp(-(math.log(1 / 5) + math.log(2 / 5)) / 2))


def test_prior_config_errors_name_the_key():
    from vqspeech.errors import ConfigError

    with pytest.raises(ConfigError, match=r"model.dim"):
        prior_config_from_dict({"model": {"dim": "big"}})
    with pytest.raises(ConfigError, match="dim a multiple of heads"):
        prior_config_from_dict({"model": {"dim": 30, "heads": 4}})
    with pytest.raises(ConfigError, match="train_conf.amp: must be none, bf16 or fp16, got 'fp8'"):
        prior_config_from_dict({"train_conf": {"amp": "fp8"}})


# --------------------------------------------------------------------------- the commands
def _cli(*args):
    res = subprocess.run([sys.executable, "-m", "vqspeech", *args], capture_output=True, text=True)
    return res.returncode, res.stdout, res.stderr.strip()


@pytest.fixture(scope="module")
def prior_setup(trained_tiny, tiny_corpus, tmp_path_factory):
    out = tmp_path_factory.mktemp("prior")
    model = trained_tiny / "checkpoint.pt"
    data = tiny_corpus / "data"
    for split in ("train", "test"):
        code, _, err = _cli("encode", "--model", str(model), "--data-dir", str(data / split),
                            "--output", str(out / f"{split}.txt"))
        assert code == 0, err
    (out / "prior.yaml").write_text("model: {layers: 1, dim: 32, heads: 2, ffn: 64, context: 64}\n"
                                    "train_conf: {max_steps: 30, batch_size: 4, log_every: 10, val_every: 30, "
                                    "checkpoint_every: 30}\n")
    code, stdout, err = _cli("train-prior", "--model", str(model), "--config", str(out / "prior.yaml"),
                             "--train-codes", str(out / "train.txt"), "--train-data", str(data / "train"),
                             "--dev-codes", str(out / "test.txt"), "--dev-data", str(data / "test"),
                             "--exp-dir", str(out / "exp"), "--no-progress", "--set", "model.dropout=0.05")
    assert code == 0, err
    assert "bits/code" in stdout and "unigram entropy" in stdout and "after the first log window" in stdout
    return model, out, data


def test_train_prior_summary_reports_bits_and_bitrates(prior_setup):
    import json

    from vqspeech.prior.config import load_prior_config

    _, out, _ = prior_setup
    assert load_prior_config(out / "exp" / "config.yaml").model.dropout == 0.05  # from --set
    s = json.loads((out / "exp" / "prior_summary.json").read_text())
    assert s["step"] == 30 and 0 < s["dev_bits_per_code"] < 10
    assert s["bitrate_prior_bits_per_s"] == pytest.approx(s["dev_bits_per_code"] * s["codes_per_second_of_audio"])
    assert 0 < s["unigram_entropy_bits"] <= 4.0 + 1e-9  # 16 codes at most
    # 30 steps of 4 crops of 64 codes, each code standing for 1 / codes_per_second_of_audio seconds,
    # took at most the run's wall time; the steady rate leaves out the first log window
    audio = 30 * 4 * 64 / s["codes_per_second_of_audio"]
    assert s["throughput_audio_seconds_per_second"] >= audio / s["wall_seconds"]
    assert s["steady_throughput_audio_seconds_per_second"] > 0


def test_rerunning_a_finished_prior_changes_nothing(prior_setup):
    """Stage 7 run again: the prior resumes at its last step, says so, keeps its summary (it used to
    crash on the missing dev figure)."""
    model, out, data = prior_setup
    before = (out / "exp" / "prior_summary.json").read_text()
    code, stdout, err = _cli("train-prior", "--model", str(model), "--config", str(out / "prior.yaml"),
                             "--train-codes", str(out / "train.txt"), "--train-data", str(data / "train"),
                             "--dev-codes", str(out / "test.txt"), "--dev-data", str(data / "test"),
                             "--exp-dir", str(out / "exp"), "--no-progress", "--set", "model.dropout=0.05")
    assert code == 0, err
    assert "already trained to step 30" in stdout
    assert (out / "exp" / "prior_summary.json").read_text() == before


def test_sample_command_writes_audio_and_codes(prior_setup, tmp_path):
    import soundfile as sf

    model, out, data = prior_setup
    speaker = load_model(model).speakers[0]
    args = ["sample", "--model", str(model), "--prior", str(out / "exp" / "prior.pt"), "--speaker", speaker,
            "--seconds", "0.2", "--seed", "4"]
    code, _, err = _cli(*args, "--output", str(tmp_path / "a.wav"), "--codes-out", str(tmp_path / "a.txt"))
    assert code == 0, err
    code, _, err = _cli(*args, "--output", str(tmp_path / "b.wav"), "--codes-out", str(tmp_path / "b.txt"))
    a, b = read_codes(tmp_path / "a.txt"), read_codes(tmp_path / "b.txt")
    assert a == b and len(next(iter(a.values()))) == round(0.2 * 16000 / 16)  # same seed, same codes
    wav, sr = sf.read(tmp_path / "a.wav")
    assert sr == 16000 and len(wav) == len(next(iter(a.values()))) * 16
    # a prompt's codes are kept at the start: the output is prompt + the sampled 0.2 s
    prompt = (data / "test" / "wav.scp").read_text().split("\n")[0].split()[1]
    code, stdout, err = _cli(*args, "--output", str(tmp_path / "c.wav"), "--prompt", prompt,
                             "--codes-out", str(tmp_path / "c.txt"))
    assert code == 0 and "prompt codes" in stdout, err
    (c,) = read_codes(tmp_path / "c.txt").values()
    n_prompt = -(-len(sf.read(prompt)[0]) // 16)
    assert len(c) == n_prompt + 200
    assert c[:n_prompt] == load_model(model).model.encode(
        torch.from_numpy(sf.read(prompt, dtype="float32")[0])[None])["codes"][0].tolist()


@pytest.mark.parametrize("bad,message", [
    (["--seconds", "0"], "argument --seconds: must be > 0, got 0"),
    (["--speaker", "nobody"], "unknown speaker 'nobody'"),
    (["--prior", "MODEL"], "not a prior checkpoint"),
])
def test_sample_bad_inputs_are_one_line_errors(prior_setup, tmp_path, bad, message):
    model, out, _ = prior_setup
    args = {"--model": str(model), "--prior": str(out / "exp" / "prior.pt"), "--speaker": load_model(model).speakers[0],
            "--seconds": "0.1", "--output": str(tmp_path / "x.wav")}
    for k, v in zip(bad[::2], bad[1::2]):
        args[k] = str(model) if v == "MODEL" else v
    code, _, err = _cli("sample", *[x for kv in args.items() for x in kv])
    assert code == 2 and err.count("\n") == 0 and message in err, err
    assert not (tmp_path / "x.wav").exists()


def test_train_prior_refuses_codes_of_another_model(prior_setup, tmp_path):
    model, out, data = prior_setup
    bad = tmp_path / "bad.txt"
    utt = next(iter(read_codes(out / "train.txt")))
    bad.write_text(f"{utt} 1 2 999\n")
    code, _, err = _cli("train-prior", "--model", str(model), "--train-codes", str(bad),
                        "--train-data", str(data / "train"), "--exp-dir", str(tmp_path / "e"), "--no-progress")
    assert code == 2 and err.count("\n") == 0 and "code 999 outside 0..15" in err, err


def test_a_prior_is_not_a_vqvae_and_back(prior_setup):
    model, out, _ = prior_setup
    with pytest.raises(CheckpointError, match="is a prior checkpoint"):
        load_model(out / "exp" / "prior.pt")
    with pytest.raises(CheckpointError, match="not a prior checkpoint"):
        load_prior(model)


@pytest.mark.parametrize("fmt", ["zr2019", "units", "zr2021", "times"])
def test_export_zerospeech_round_trip(prior_setup, tmp_path, fmt):
    import json

    model, out, data = prior_setup
    code, _, err = _cli("export-zerospeech", "--model", str(model), "--data-dir", str(data / "test"),
                        "--output-dir", str(tmp_path / fmt), "--format", fmt)
    assert code == 0, err
    codes = read_codes(out / "test.txt")
    lm = load_model(model)
    manifest = json.loads((tmp_path / fmt / "export.json").read_text())
    assert manifest["format"] == fmt and manifest["utterances"] == len(codes)
    assert manifest["frame_shift_seconds"] == pytest.approx(16 / 16000)
    for utt, seq in codes.items():
        back = read_zerospeech_file(tmp_path / fmt / f"{utt}.txt", fmt)
        if fmt in ("zr2019", "units"):
            assert back["codes"].tolist() == seq
        else:
            # quantized features are the codebook rows of the codes (printed to 6 significant digits)
            expected = lm.model.quantizer.codebook.detach()[torch.tensor(seq)].numpy()
            np.testing.assert_allclose(back["features"], expected, rtol=1e-5, atol=1e-6)
        if fmt == "times":
            np.testing.assert_allclose(back["times"], (np.arange(len(seq)) + 0.5) * 16 / 16000, atol=6e-5)


def test_prior_trains_under_torchrun_with_two_gloo_processes(tmp_path):
    import os
    from pathlib import Path

    tests = Path(__file__).parent
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(tests.parent))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(tests / "prior_ddp_worker.py"), str(tmp_path / "exp"), str(tmp_path), "12"]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    r0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    r1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    for k in r0:  # gradients were averaged: both ranks hold the same weights
        assert torch.equal(r0[k], r1[k]), k
    # ... which differ from one process trained alone on rank 0's shard
    codes, u2s = _chain_codes(10, 40, seed=6)
    alone = train_prior(_tiny_cfg(12), SOURCE, CodeCorpus.from_codes(codes, u2s, SOURCE.speakers, 4, "c"), None,
                        tmp_path / "alone", progress=False).model.state_dict()
    assert any(not torch.allclose(alone[k], r0[k]) for k in r0)
    assert (tmp_path / "exp" / "prior.pt").is_file()
