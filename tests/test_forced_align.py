import numpy as np
import pytest

from vqspeech.alignments import read_ctm
from vqspeech.kaldi_data_dir import DataDir, read_data_dir, write_data_dir

pytest.importorskip("pocketsphinx")
from vqspeech.forced_align import align_data_dir, boundary_errors, normalise_words  # noqa: E402


def test_normalise_words():
    assert normalise_words("It's easy to tell the depth of a well.") == ["it's", "easy", "to", "tell", "the",
                                                                          "depth", "of", "a", "well"]
    assert normalise_words("Twenty-two 'quoted' words!") == ["twenty", "two", "quoted", "words"]


def test_aligns_synthesized_speech_close_to_the_true_times(tiny_corpus, tmp_path):
    src = read_data_dir(tiny_corpus / "data" / "train")
    utts = src.utterances
    bad = utts[0]
    dd = DataDir(wav_scp={u: src.wav_scp[u] for u in utts}, utt2spk={u: src.utt2spk[u] for u in utts},
                 text={u: (src.text[u] if u != bad else "zyxwv " + src.text[u]) for u in utts})
    write_data_dir(tmp_path / "d", dd)
    rep = align_data_dir(tmp_path / "d", jobs=2)
    assert rep.aligned == len(utts) - 1
    assert list(rep.failed) == [bad] and rep.oov == {"zyxwv": 1}
    assert (tmp_path / "d" / "align_failures.txt").read_text().startswith(f"{bad} words not in the dictionary")
    hyp = read_ctm(tmp_path / "d" / "phones.ctm")
    ref = read_ctm(tiny_corpus / "data" / "train" / "phones.ctm")
    errors = np.concatenate([boundary_errors(ref[u], hyp[u]) for u in hyp])
    median_ms = 1000 * float(np.median(errors))
    print(f"median boundary error {median_ms:.1f} ms over {len(errors)} boundaries")
    assert median_ms < 25.0
