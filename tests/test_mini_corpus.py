import soundfile as sf

from vqspeech.alignments import read_ctm
from vqspeech.corpus_prep.mini import split_sentences
from vqspeech.kaldi_data_dir import read_data_dir


def test_split_is_disjoint_and_covers():
    for n in (3, 6, 20, 200):
        s = split_sentences(n)
        all_idx = s["train"] + s["dev"] + s["test"]
        assert sorted(all_idx) == list(range(n))
        assert min(len(v) for v in s.values()) >= 1
    s = split_sentences(200)
    assert (len(s["train"]), len(s["dev"]), len(s["test"])) == (160, 20, 20)


def test_corpus_is_parallel_aligned_and_valid(tiny_corpus):
    splits = {name: read_data_dir(tiny_corpus / "data" / name, check_audio=True)
              for name in ("train", "dev", "test")}
    speakers = set(splits["train"].speakers)
    assert {"awb", "kal", "rms", "slt"} <= speakers
    sentence_sets = {}
    inventory = None
    for name, dd in splits.items():
        assert set(dd.speakers) == speakers  # every speaker in every split
        by_spk = {}
        for utt, spk in dd.utt2spk.items():
            by_spk.setdefault(spk, set()).add(utt.split("_", 1)[1])
        ids = set.union(*by_spk.values())
        assert all(v == ids for v in by_spk.values())  # same sentences for every speaker
        sentence_sets[name] = ids
        ctm = read_ctm(tiny_corpus / "data" / name / "phones.ctm")
        assert set(ctm) == set(dd.utt2spk)
        for utt, intervals in ctm.items():
            dur = sf.info(dd.audio_of(utt)[0]).duration
            assert abs(intervals[-1].end - dur) <= 0.020, (utt, intervals[-1].end, dur)
            assert intervals[0].start == 0.0
            for a, b in zip(intervals, intervals[1:]):
                assert abs(a.end - b.start) < 2e-3  # contiguous (CTM rounds to ms)
            phones = {iv.phone for iv in intervals}
            spk_inventory = phones
            inventory = spk_inventory if inventory is None else inventory | spk_inventory
    assert not sentence_sets["test"] & sentence_sets["train"]
    assert not sentence_sets["dev"] & sentence_sets["train"]
    # one consistent inventory: CMU-style lower-case phones plus the pause symbol
    assert "pau" in inventory and all(p.isalpha() and p.islower() for p in inventory)
    assert len(inventory) <= 41


def test_train_large_adds_sentences_and_leaves_dev_and_test(tiny_corpus):
    data = tiny_corpus / "data"
    train, large = read_data_dir(data / "train"), read_data_dir(data / "train_large", check_audio=True)
    sentences = lambda dd: {u.split("_", 1)[1] for u in dd.utt2spk}  # noqa: E731
    assert sentences(large) == sentences(train) | {"h007", "h008"}  # the 2 Harvard sentences after the 6
    assert set(large.speakers) == set(train.speakers)
    assert set(read_ctm(data / "train_large" / "phones.ctm")) == set(large.utt2spk)
    for name in ("dev", "test"):
        assert not sentences(read_data_dir(data / name)) & sentences(large)


def test_extra_train_sentences_beyond_the_harvard_list_is_a_one_line_error(tmp_path):
    from vqspeech.bin.make_mini_corpus import main

    assert main(["--out-dir", str(tmp_path / "c"), "--num-sentences", "700", "--extra-train-sentences", "21"]) == 2
