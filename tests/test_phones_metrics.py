"""Every metric on small hand-made examples with exact expected values."""

import math

import numpy as np
import pytest

from vqspeech.phones.abx import Item, abx_error, build_items, dtw_distance
from vqspeech.phones.boundaries import boundary_scores, code_boundaries, evaluate_boundaries
from vqspeech.phones.mapping import (ContingencyTable, bitrate, chance_accuracy, cluster_purity, code_perplexity,
                                       many_to_one_accuracy, per_phone_accuracy, pnmi)

# 10 frames: code 0 -> a,a,a,b ; code 1 -> b,b,b ; code 2 -> a,c,c
CODES = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
PHONES = ["a", "a", "a", "b", "b", "b", "b", "a", "c", "c"]


def test_mapping_metrics_by_hand():
    t = ContingencyTable.build(CODES, PHONES)
    assert t.code_to_phone() == {0: "a", 1: "b", 2: "c"}
    assert many_to_one_accuracy(t) == pytest.approx((3 + 3 + 2) / 10)
    # phone a: codes {0:3, 2:1} -> 3; b: {0:1, 1:3} -> 3; c: {2:2} -> 2
    assert cluster_purity(t) == pytest.approx(8 / 10)
    assert chance_accuracy(t) == pytest.approx(4 / 10)
    assert per_phone_accuracy(t) == pytest.approx({"a": 3 / 4, "b": 3 / 4, "c": 1.0})
    assert code_perplexity(CODES) == pytest.approx(math.exp(-(0.4 * math.log(0.4) + 2 * 0.3 * math.log(0.3))))


def test_pnmi_equals_sklearn_homogeneity():
    from sklearn.metrics import homogeneity_score

    rng = np.random.default_rng(3)
    phones = rng.choice(list("abcdefg"), size=2000)
    codes = (np.searchsorted(sorted(set(phones)), phones) * 3 + rng.integers(0, 4, size=2000)) % 17
    noise = rng.random(2000) < 0.3
    codes[noise] = rng.integers(0, 17, size=int(noise.sum()))
    assert pnmi(ContingencyTable.build(codes, phones)) == pytest.approx(homogeneity_score(phones, codes), abs=1e-9)


def test_pnmi_by_hand():
    # perfect 1:1 mapping -> 1; independent -> 0
    assert pnmi(ContingencyTable.build([0, 0, 1, 1], ["a", "a", "b", "b"])) == pytest.approx(1.0)
    assert pnmi(ContingencyTable.build([0, 1, 0, 1], ["a", "a", "b", "b"])) == pytest.approx(0.0)
    # H(phone) = ln 2; I = H(phone) - H(phone | code) with code0 -> (a, a, b), code1 -> (b)
    h = math.log(2)
    h_cond = 0.75 * -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert pnmi(ContingencyTable.build([0, 0, 0, 1], ["a", "a", "b", "b"])) == pytest.approx((h - h_cond) / h)


def test_bitrate_by_hand():
    # 2 utterances, 4 symbols over 2 s, two symbols equally likely: 2 symbols/s * 1 bit
    assert bitrate([[1, 2], [1, 2]], 2.0) == pytest.approx(2.0)
    # run-length merging: [5,5,5,7] -> [5,7]: 2 symbols in 1 s, 1 bit each
    assert bitrate([[5, 5, 5, 7]], 1.0, merge_repeats=True) == pytest.approx(2.0)
    assert bitrate([[5, 5, 5, 7]], 1.0) == pytest.approx(4 * -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))


def test_boundaries_by_hand():
    assert code_boundaries([3, 3, 4, 4, 4, 9], 0.01).tolist() == pytest.approx([0.02, 0.05])
    # ref boundaries at .10 .20 .30; hyp at .105 .18 .40 .41 -> hits: .105 (.10), .18 (.20) -> 2
    s = evaluate_boundaries([([0.10, 0.20, 0.30], [0.105, 0.18, 0.40, 0.41])], tolerance=0.02)
    assert (s.hits, s.n_ref, s.n_hyp) == (2, 3, 4)
    assert s.precision == pytest.approx(0.5) and s.recall == pytest.approx(2 / 3)
    assert s.f1 == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    os_ = (2 / 3) / 0.5 - 1
    r1 = math.sqrt((1 / 3) ** 2 + os_ ** 2)
    r2 = (-os_ + 2 / 3 - 1) / math.sqrt(2)
    assert s.r_value == pytest.approx(1 - (abs(r1) + abs(r2)) / 2)
    # one hypothesis cannot match two references
    assert evaluate_boundaries([([0.10, 0.11], [0.105])]).hits == 1
    perfect = boundary_scores(5, 5, 5)
    assert perfect.f1 == 1.0 and perfect.r_value == pytest.approx(1.0)


def test_dtw_by_hand():
    a = np.array([[1.0], [2.0], [2.0], [3.0]])
    b = np.array([[1.0], [2.0], [3.0]])
    assert dtw_distance(a, b, False) == 0.0             # warping absorbs the repeat
    # codes are one-hot vectors: another code is at angle pi/2, distance 0.5; two such cells on a 4-cell path
    assert dtw_distance(a, np.array([[1.0], [5.0], [3.0]]), False) == pytest.approx(2 * 0.5 / 4)
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0, 0.0], [1.0, 1.0]])
    # path (0,0) d=0, (1,1) d=angle(45 degrees)/pi=0.25 -> mean over 2 cells
    assert dtw_distance(x, y, True) == pytest.approx(0.25 / 2)
    assert dtw_distance(x, -x, True) == pytest.approx(1.0)  # opposite vectors: the largest angle
    # the one-hot code distance equals the angular distance of explicit one-hot vectors
    codes_a, codes_b = np.array([[0.0], [3.0], [3.0], [1.0]]), np.array([[0.0], [1.0], [2.0]])
    onehot = lambda c: np.eye(4)[c[:, 0].astype(int)]  # noqa: E731
    assert dtw_distance(codes_a, codes_b, False) == pytest.approx(dtw_distance(onehot(codes_a), onehot(codes_b), True))


def _item(utt, phone, spk, ctx=("l", "r")):
    return Item(utt, 0, 2, phone, ctx, spk)  # frames 0-1; the first is scored (libri-light drops the last)


def test_abx_by_hand():
    # within one speaker, context (l, r): two "a" tokens and one "b"
    feats = {"s1_a1": np.array([[0.0]]), "s1_a2": np.array([[0.0]]), "s1_b": np.array([[1.0]])}
    items = [_item("s1_a1", "a", "s1"), _item("s1_a2", "a", "s1"), _item("s1_b", "b", "s1")]
    res = abx_error(feats, items, cosine=False)
    # (a,b) pair: X in {a1, a2}, A the other a: d(A,X)=0 < d(B,X)=1 -> 0 errors.
    # (b,a) pair: A must be a "b" other than X: none -> no triplets.  So within = 0.0 over 1 group.
    assert res.within == 0.0 and res.n_within == 1 and res.across is None
    # make a2 look like b: X=a1: d(a2,a1)=1 > d(b,a1)=1? tie -> 0.5 ; X=a2: d(a1,a2)=1 > d(b,a2)=0 -> 1
    feats["s1_a2"] = np.array([[1.0]])
    assert abx_error(feats, items, cosine=False).within == pytest.approx((0.5 + 1) / 2)


def test_abx_across_speakers_by_hand():
    feats = {"s1_a": np.array([[0.0]]), "s1_b": np.array([[1.0]]), "s2_a": np.array([[0.0]]), "s2_b": np.array([[1.0]])}
    items = [_item("s1_a", "a", "s1"), _item("s1_b", "b", "s1"), _item("s2_a", "a", "s2"), _item("s2_b", "b", "s2")]
    res = abx_error(feats, items, cosine=False)
    assert res.across == 0.0 and res.n_across == 4  # (s1->s2, s2->s1) x (a,b), (b,a)
    feats["s2_a"] = np.array([[1.0]])  # speaker 2's "a" sounds like everyone's "b"
    res = abx_error(feats, items, cosine=False)
    # X=s2_a, A=s1_a, B=s1_b: d(A,X)=1 > d(B,X)=0 -> error; X=s2_b (b,a): A=s1_b d=0 < B=s1_a d=1 -> ok
    # X=s1_a with A=s2_a, B=s2_b: d(A,X)=1 > d(B,X)=1? tie -> 0.5 ; X=s1_b (b,a): A=s2_b: 0 vs B=s2_a: 0 -> tie 0.5
    assert res.across == pytest.approx((1 + 0 + 0.5 + 0.5) / 4)


def test_abx_averages_contexts_then_speakers_then_phone_pairs():
    # Within-speaker cells (context, speaker, ordered pair): s1/c1/(a,b) has error 0.5 (its two "a" tokens
    # carry different codes, each as far from the other as from "b": ties), every other cell 0.
    # ZeroSpeech order: (a,b): s1 -> mean(0.5, 0) = 0.25, s2 -> 0, mean over speakers 0.125; (b,a): 0;
    # mean over pairs 0.0625. A flat mean over the six cells would give 0.5 / 6 = 0.083.
    feats, items = {}, []

    def add(utt, phone, spk, ctx, value):
        feats[utt] = np.array([[value]])
        items.append(Item(utt, 0, 2, phone, ctx, spk))

    for spk, ctx, a_vals in [("s1", ("l", "r"), (0.0, 1.0)), ("s1", ("m", "r"), (0.0, 0.0)),
                             ("s2", ("l", "r"), (0.0, 0.0))]:
        add(f"{spk}_{ctx[0]}_a1", "a", spk, ctx, a_vals[0])
        add(f"{spk}_{ctx[0]}_a2", "a", spk, ctx, a_vals[1])
        add(f"{spk}_{ctx[0]}_b1", "b", spk, ctx, 2.0)
        add(f"{spk}_{ctx[0]}_b2", "b", spk, ctx, 2.0)
    res = abx_error(feats, items, cosine=False)
    assert res.n_within == 6
    assert res.within == pytest.approx(0.0625)


def test_item_file_round_trip(tmp_path):
    from vqspeech.phones.abx import ITEM_HEADER, write_item_file

    items = [Item("s1_u", 2, 5, "k", ("pau", "ae"), "s1"), Item("s1_u", 5, 9, "ae", ("k", "t"), "s1")]
    write_item_file(tmp_path / "x.item", items, 0.01)
    lines = (tmp_path / "x.item").read_text().splitlines()
    assert lines == [ITEM_HEADER, "s1_u 0.0200 0.0500 k pau ae s1", "s1_u 0.0500 0.0900 ae k t s1"]
    # what a ZeroSpeech reader selects (frames whose centre lies inside the item) are our frames
    for line, it in zip(lines[1:], items):
        onset, offset = float(line.split()[1]), float(line.split()[2])
        assert (math.ceil(onset / 0.01 - 0.5), math.floor(offset / 0.01 - 0.5) + 1) == (it.start, it.end)


def test_build_items_uses_context_and_skips_silence():
    ali = {"s1_u": [(0, 2, "pau"), (2, 4, "k"), (4, 7, "ae"), (7, 9, "t"), (9, 10, "pau")]}
    items = build_items(ali, {"s1_u": "s1"})
    assert [(i.phone, i.context, i.start, i.end) for i in items] == [
        ("k", ("pau", "ae"), 2, 4), ("ae", ("k", "t"), 4, 7), ("t", ("ae", "pau"), 7, 9)]


def test_abx_equals_zerospeech_libriabx2(tmp_path):
    """Our ABX against the ZeroSpeech reference implementation on the same item file and features."""
    pytest.importorskip("libri_light_dtw")
    import sys
    import types

    # zrc_abx2 imports torchaudio for its CPC feature maker only; torchaudio does not load beside a
    # CPU-only torch 2.13, and precomputed features never use it.
    sys.modules.setdefault("torchaudio", types.ModuleType("torchaudio"))
    from zrc_abx2.eval_ABX import EvalABX, EvalArgs

    from vqspeech.phones.abx import write_item_file

    rng = np.random.default_rng(0)
    proto = {p: rng.normal(size=8) for p in "abc"}
    shift = {s: 0.8 * rng.normal(size=8) for s in ("s1", "s2", "s3")}
    feats, items = {}, []
    for s in shift:
        for ci, ctx in enumerate([("x", "y"), ("y", "z")]):
            for p in proto:
                for k in range(3):
                    utt, n = f"{s}_{ci}{p}{k}", int(rng.integers(2, 7))
                    feats[utt] = proto[p] + shift[s] + 1.2 * rng.normal(size=(n + 4, 8))
                    items.append(Item(utt, 2, 2 + n, p, ctx, s))
                    np.save(tmp_path / f"{utt}.npy", feats[utt].astype(np.float32))
    write_item_file(tmp_path / "t.item", items, 0.01)
    ours = abx_error(feats, items, cosine=True, max_per_cell=10)
    ref = EvalABX().eval_abx(EvalArgs(path_data=str(tmp_path), path_item_file=str(tmp_path / "t.item"),
                                      file_extension=".npy", feature_size=0.01, distance_mode="cosine",
                                      max_size_group=100, max_x_across=100, speaker_mode="all",
                                      context_mode="within", seed=0, pooling="none"))
    scores = {r["abx-s-condition"]: r["score"] for r in ref}
    assert 100 * ours.within == pytest.approx(100 * scores["within"], abs=0.5)
    assert 100 * ours.across == pytest.approx(100 * scores["across"], abs=0.5)
    assert 0.02 < ours.within < 0.5  # a non-trivial case
