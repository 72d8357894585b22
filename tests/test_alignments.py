import pytest

from vqspeech.alignments import (TIMIT_61_TO_39, PhoneInterval, align_to_frames, fold_phone, frame_labels,
                                 read_ctm, read_htk_lab, read_textgrid, read_timit_phn, write_ctm, write_textgrid)
from vqspeech.errors import AlignmentError


def test_ctm_roundtrip_and_errors(tmp_path):
    ali = {"s1_b": [PhoneInterval(0.0, 0.1, "pau"), PhoneInterval(0.1, 0.25, "k")],
           "s1_a": [PhoneInterval(0.0, 0.2, "ae")]}
    write_ctm(tmp_path / "x.ctm", ali)
    assert (tmp_path / "x.ctm").read_text().splitlines()[0] == "s1_a 1 0.000 0.200 ae"
    assert read_ctm(tmp_path / "x.ctm") == ali
    (tmp_path / "bad.ctm").write_text("u 1 0.0 0.1 a\nu 1 zero 0.1 b\n")
    with pytest.raises(AlignmentError, match=r"bad.ctm:2: start and duration must be numbers"):
        read_ctm(tmp_path / "bad.ctm")


def test_textgrid_roundtrip_long_format(tmp_path):
    tiers = {"phones": [PhoneInterval(0.0, 0.1, "sil"), PhoneInterval(0.15, 0.3, 'say "hi"')],
             "codes": [PhoneInterval(0.0, 0.3, "17")]}
    write_textgrid(tmp_path / "u.TextGrid", tiers, 0.3)
    assert read_textgrid(tmp_path / "u.TextGrid", "phones") == tiers["phones"]  # the gap is not a phone
    assert read_textgrid(tmp_path / "u.TextGrid", "codes") == tiers["codes"]
    with pytest.raises(AlignmentError, match="no interval tier named 'words'.*phones, codes"):
        read_textgrid(tmp_path / "u.TextGrid", "words")


def test_textgrid_short_format(tmp_path):
    (tmp_path / "s.TextGrid").write_text('File type = "ooTextFile"\nObject class = "TextGrid"\n\n0\n1\n<exists>\n1\n'
                                         '"IntervalTier"\n"phones"\n0\n1\n2\n0\n0.4\n"a"\n0.4\n1\n"b"\n')
    assert read_textgrid(tmp_path / "s.TextGrid") == [PhoneInterval(0, 0.4, "a"), PhoneInterval(0.4, 1, "b")]


def test_textgrid_labels_with_brackets_survive(tmp_path):
    # regression: the old reader stripped "[n]" inside quoted labels, turning a[1] into a
    tiers = {"phones": [PhoneInterval(0.0, 0.1, "a[1]"), PhoneInterval(0.1, 0.2, "[2]"),
                        PhoneInterval(0.2, 0.3, "x [n] y")]}
    write_textgrid(tmp_path / "b.TextGrid", tiers, 0.3)
    assert read_textgrid(tmp_path / "b.TextGrid") == tiers["phones"]


def test_ctm_rounds_ends_so_neighbours_never_overlap(tmp_path):
    # regression: start and duration rounded apart made 's' end at 0.622 after 'ah' began at 0.621
    ali = {"u": [PhoneInterval(0.4055, 0.5265, "uw"), PhoneInterval(0.5265, 0.6215, "s"),
                 PhoneInterval(0.6215, 0.6985, "ah")]}
    write_ctm(tmp_path / "r.ctm", ali)
    back = read_ctm(tmp_path / "r.ctm")["u"]
    assert all(a.end <= b.start + 1e-9 for a, b in zip(back, back[1:]))
    from vqspeech.alignments import remove_overlaps

    fixed, n = remove_overlaps([PhoneInterval(0.527, 0.622, "s"), PhoneInterval(0.621, 0.698, "ah"),
                                PhoneInterval(0.65, 0.66, "x")])
    assert n == 2 and fixed == [PhoneInterval(0.527, 0.622, "s"), PhoneInterval(0.622, 0.698, "ah")]


def test_float_sums_of_frame_shifts_are_not_overlaps(tmp_path):
    # regression: a phone report died on (0.253, 0.28300000000000003) followed by (0.283, ...)
    ivs = [PhoneInterval(0.253, 0.253 + 0.030, "dh"), PhoneInterval(0.283, 0.321, "ax")]
    assert ivs[0].end > ivs[1].start
    write_textgrid(tmp_path / "f.TextGrid", {"phones": ivs}, 0.4)
    got = read_textgrid(tmp_path / "f.TextGrid")
    assert [iv.phone for iv in got] == ["dh", "ax"] and got[0].end == pytest.approx(0.283)


def test_overlapping_intervals_are_refused_and_nothing_is_written(tmp_path):
    # regression: the old writer wrote xmin > xmax for overlapping intervals, which Praat tools refuse
    tiers = {"phones": [PhoneInterval(0.0, 0.2, "a"), PhoneInterval(0.1, 0.3, "b")]}
    with pytest.raises(AlignmentError, match=r"tier 'phones': intervals 'a' \(0.0000-0.2000 s\) and 'b'.*overlap"):
        write_textgrid(tmp_path / "o.TextGrid", tiers, 0.3)
    with pytest.raises(AlignmentError, match="ends at 0.1000 s, not after its start"):
        write_textgrid(tmp_path / "o.TextGrid", {"phones": [PhoneInterval(0.2, 0.1, "a")]}, 0.3)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("reader", ["praatio", "textgrid"])
def test_written_textgrids_open_in_other_libraries(tmp_path, reader):
    tiers = {"phones": [PhoneInterval(0.0, 0.1, "sil"), PhoneInterval(0.15, 0.3, "a[1]"),
                        PhoneInterval(0.3, 0.45, "b")],
             "codes": [PhoneInterval(0.0, 0.2, "17"), PhoneInterval(0.2, 0.5, "3")]}
    write_textgrid(tmp_path / "u.TextGrid", tiers, 0.5)
    if reader == "praatio":
        from praatio import textgrid as tgio

        tg = tgio.openTextgrid(str(tmp_path / "u.TextGrid"), includeEmptyIntervals=False)
        got = {n: [(e.start, e.end, e.label) for e in tg.getTier(n).entries] for n in tg.tierNames}
    else:
        textgrid = pytest.importorskip("textgrid")
        tg = textgrid.TextGrid.fromFile(str(tmp_path / "u.TextGrid"))
        got = {t.name: [(i.minTime, i.maxTime, i.mark) for i in t if i.mark] for t in tg}
    for name, ivs in tiers.items():
        assert [(pytest.approx(a), pytest.approx(b), c) for a, b, c in got[name]] == \
            [(iv.start, iv.end, iv.phone) for iv in ivs]


def test_timit_and_htk(tmp_path):
    (tmp_path / "a.phn").write_text("0 3200 h#\n3200 4800 dh\n4800 8000 ax\n")
    assert read_timit_phn(tmp_path / "a.phn") == [PhoneInterval(0, 0.2, "h#"), PhoneInterval(0.2, 0.3, "dh"),
                                                 PhoneInterval(0.3, 0.5, "ax")]
    (tmp_path / "a.lab").write_text("0 2000000 x^x-sil+dh=ax@x_x\n2000000 3000000 sil^sil-dh+ax=k@1_1\n")
    assert read_htk_lab(tmp_path / "a.lab") == [PhoneInterval(0, 0.2, "sil"), PhoneInterval(0.2, 0.3, "dh")]
    (tmp_path / "b.phn").write_text("0 10 a\n20 15 b\n")
    with pytest.raises(AlignmentError, match=r"b.phn:2: end sample 15 is not after start 20"):
        read_timit_phn(tmp_path / "b.phn")


def test_folding():
    assert fold_phone("AH0") == "ah" and fold_phone("pau") == "sil" and fold_phone("h#") == "sil"
    assert fold_phone("ix", TIMIT_61_TO_39) == "ih" and fold_phone("q", TIMIT_61_TO_39) is None
    assert fold_phone("bcl", TIMIT_61_TO_39) == "sil"
    # Kaldi's word-position-dependent phones are one phone each; silences with a position too
    assert [fold_phone(p) for p in ("AH0_B", "AH1_I", "T_E", "AY1_S", "SIL_S", "SPN_S", "sil")] == \
        ["ah", "ah", "t", "ay", "sil", "sil", "sil"]
    assert fold_phone("ix_E", TIMIT_61_TO_39) == "ih" and fold_phone("a_b") == "a_b"  # only Kaldi's upper-case marks
    assert len({v for v in TIMIT_61_TO_39.values() if v}) == 39


def test_frame_labels_and_mismatch_report():
    ivs = [PhoneInterval(0.0, 0.03, "a"), PhoneInterval(0.03, 0.05, "b")]
    assert frame_labels(ivs, 5, 0.01) == ["a", "a", "a", "b", "b"]
    codes = {"u1": [1] * 5, "u2": [1] * 50, "u3": [1] * 5}
    labels, rep = align_to_frames(codes, {"u1": ivs, "u2": ivs}, 0.01, tolerance=0.02)
    assert list(labels) == ["u1"] and rep.matched == 1
    assert rep.missing == ["u3"] and rep.length_mismatch == ["u2"]
    assert rep.as_dict()["missing_alignment"] == 1
