"""Every metric on small hand-made examples with exact expected values."""

import math

import numpy as np
import pytest

from vqspeech.analysis.abx import Item, abx_error, build_items, dtw_distance
from vqspeech.analysis.boundaries import boundary_scores, code_boundaries, evaluate_boundaries
from vqspeech.analysis.mapping import (ContingencyTable, bitrate, chance_accuracy, cluster_purity, code_perplexity,
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
    assert dtw_distance(a, np.array([[1.0], [5.0], [3.0]]), False) == pytest.approx(2 / 4)
    x = np.array([[1.0, 0.0], [0.0, 1.0]])
    y = np.array([[1.0, 0.0], [1.0, 1.0]])
    # path (0,0) d=0, (1,1) d=1-1/sqrt2 -> mean over 2 steps
    assert dtw_distance(x, y, True) == pytest.approx((1 - 1 / math.sqrt(2)) / 2)


def _item(utt, phone, spk, ctx=("l", "r")):
    return Item(utt, 0, 1, phone, ctx, spk)


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


def test_build_items_uses_context_and_skips_silence():
    ali = {"s1_u": [(0, 2, "pau"), (2, 4, "k"), (4, 7, "ae"), (7, 9, "t"), (9, 10, "pau")]}
    items = build_items(ali, {"s1_u": "s1"})
    assert [(i.phone, i.context, i.start, i.end) for i in items] == [
        ("k", ("pau", "ae"), 2, 4), ("ae", ("k", "t"), 4, 7), ("t", ("ae", "pau"), 7, 9)]
