"""The free-running KL after folding seams (vqspeech.fold_divergence) and the split of decode_many."""

import numpy as np
import pytest
import torch
from helpers import sharp_tiny_wavenet

from vqspeech.audio import mulaw_decode, mulaw_encode
from vqspeech.conversion import decode_many, generate_segments, stitch_segments
from vqspeech.fold_divergence import WarmupComparison, seam_divergence
from vqspeech.generation import SamplingOptions


def _codes(n=3, frames=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, 16, (frames,), generator=g) for _ in range(n)]


def test_decode_many_is_its_segments_stitched():
    model = sharp_tiny_wavenet()
    codes, spk, opts = _codes(), [0, 1, 2], SamplingOptions(seed=4)
    folded = generate_segments(model, codes, spk, opts, "numba", max_batch=4, warmup=32)
    assert folded.offsets == [0, 4, 8] and folded.samples.shape[0] == 12
    whole = decode_many(model, codes, spk, opts, "numba", max_batch=4, warmup=32)
    for a, b in zip(whole, stitch_segments(folded, model.hop)):
        np.testing.assert_array_equal(a, b)
    # generated samples are mu-law class centres: encoding them again gives the classes drawn
    q = model.decoder.cfg.quantization_channels
    classes = mulaw_encode(torch.from_numpy(folded.samples), q)
    np.testing.assert_array_equal(mulaw_decode(classes, q).numpy(), folded.samples)


def test_a_decoder_blind_to_its_samples_has_no_seam_divergence_once_the_conditioning_is_warm():
    """With the sample embedding zeroed a prediction depends on the codes alone, through the
    residual stack over one receptive field back and through the conditioning (two k=3
    convolutions) two frames beyond that.  A warm-up of the receptive field plus those two frames
    leaves nothing to diverge; the receptive field alone leaves the seam's first frame a trace
    (its furthest conditioning frames lack their left context); none leaves much more.  Windows
    misplaced by a frame would see other codes."""
    model = sharp_tiny_wavenet()
    model.decoder.embed.weight.data.zero_()
    hop, rf = model.hop, model.decoder.receptive_field
    codes, spk = _codes(), [0, 1, 2]

    def kl(warmup):
        return seam_divergence(model, codes, spk, warmup, SamplingOptions(seed=1), "numba", max_batch=4)

    warm = kl(rf + 2 * hop)
    assert warm.seams == 3 and warm.samples == 3 * rf  # 60 frames: two segments each at this warm-up
    assert max(s.max() for u in warm.per_seam for s in u) < 1e-9  # float32 rounding
    full = kl("full")
    for seam in full.per_seam[0]:
        assert seam[hop:].max() < 1e-10
    none = kl(0)
    assert none.kl_bits > 1e-3 > 1e-5 > full.kl_bits > 1e-10
    for seam in none.per_seam[0]:
        assert seam[:hop].mean() > 1e-4


def test_a_decoder_that_sees_two_samples_back_diverges_at_the_seams_first_two_samples_only():
    """Every dilated convolution's past tap zeroed but the first layer's: a prediction sees the two
    previous samples and the codes.  Without a cross-fade, sample a of a seam is drawn after the
    segment's own warm-up samples, while the unfolded decoder sees the previous segment's: the
    KL there equals an independent computation, and from a + 2 on both see the same samples."""
    model = sharp_tiny_wavenet()
    for layer in model.decoder.layers[1:]:
        layer.conv.weight.data[:, :, 0] = 0
    hop, q = model.hop, model.decoder.cfg.quantization_channels
    codes, spk = _codes(n=2, frames=48, seed=3), [2, 0]
    res = seam_divergence(model, codes, spk, "full", SamplingOptions(seed=5), "numba", max_batch=3, crossfade=0)
    folded = generate_segments(model, codes, spk, SamplingOptions(seed=5), "numba", max_batch=3, crossfade=0,
                               warmup="full")
    np.testing.assert_array_equal(res.waveforms[1], stitch_segments(folded, hop, 0)[1])
    plan, k0, y = folded.plans[1], folded.offsets[1], res.waveforms[1]
    i = 1
    a, off = plan.cores[i] * hop, plan.starts[i] * hop
    seam = res.per_seam[1][0]
    assert seam[2:].max() < 1e-9 and seam[0] > 1e-3  # 1e-9: float32 rounding

    def logits_at(samples: np.ndarray, frames: torch.Tensor, speaker: int, t: int) -> torch.Tensor:
        """The decoder's logits for sample t of a waveform, from the whole prefix before it."""
        x = mulaw_encode(torch.from_numpy(samples[:t + 1])[None], q).long()
        with torch.no_grad():
            c, g = model.code_conditioning(frames[None], torch.tensor([speaker]))
            return model.decoder(model.decoder.shift_inputs(x), c, g, hop)[0, :, t].double()

    folded_p = torch.distributions.Categorical(logits=logits_at(folded.samples[k0 + i], folded.codes[k0 + i], 0, a - off))
    unfolded_p = torch.distributions.Categorical(logits=logits_at(y, codes[1], 0, a))
    expected = torch.distributions.kl_divergence(folded_p, unfolded_p).item() / np.log(2)
    assert seam[0] == pytest.approx(expected, rel=1e-6)
    assert res.kl_bits == pytest.approx(np.concatenate([s for u in res.per_seam for s in u]).mean(), rel=1e-9)
    # the unfolded decoder's bits of every stitched sample: its cross-entropy against them
    x = mulaw_encode(torch.from_numpy(y)[None], q).long()
    with torch.no_grad():
        c, g = model.code_conditioning(codes[1][None], torch.tensor([0]))
        logits = model.decoder(model.decoder.shift_inputs(x), c, g, hop)
        expected_bits = torch.nn.functional.cross_entropy(logits, x, reduction="none")[0].double() / np.log(2)
    np.testing.assert_allclose(res.bits[1], expected_bits.numpy(), rtol=1e-5, atol=1e-6)


def test_a_decoder_that_uses_its_history_diverges_more_with_a_shorter_warmup():
    model = sharp_tiny_wavenet()
    codes, spk = _codes(n=4, frames=80, seed=2), [0, 1, 2, 0]
    kl = {w: seam_divergence(model, codes, spk, w, SamplingOptions(seed=0), "numba", max_batch=4).kl_bits
          for w in (0, 16, "full")}
    assert kl[0] > kl[16] > kl["full"] > 0
    with pytest.raises(ValueError, match="not a WaveNet"):
        seam_divergence(type("Spectral", (), {"decoder_kind": "spectral"})(), codes, spk, 0)



def test_each_warmup_is_paired_with_the_full_one_on_the_same_utterances_and_seeds():
    model = sharp_tiny_wavenet()
    codes, spk = _codes(n=3, frames=80, seed=2), [0, 1, 2]
    cmp = WarmupComparison(model, codes, spk, seeds=[0, 1], method="numba", max_batch=4)

    def per_pair(warmup):  # independently: one seam_divergence per seed
        return np.concatenate([seam_divergence(model, codes, spk, warmup, SamplingOptions(seed=s), "numba",
                                               max_batch=4).per_utterance for s in (0, 1)])

    none, full = per_pair(0), per_pair("full")
    row = cmp.row(0)
    d = none - full
    assert row.pairs == 6 and row.kl_bits == pytest.approx(none.mean(), rel=1e-12)
    assert row.kl_se == pytest.approx(none.std(ddof=1) / np.sqrt(6), rel=1e-9)
    assert row.extra_bits == pytest.approx(d.mean(), rel=1e-9) and row.extra_bits != 0
    assert row.extra_se == pytest.approx(d.std(ddof=1) / np.sqrt(6), rel=1e-9)
    rf = cmp.receptive_field
    assert cmp.row(rf).extra_bits == 0 and cmp.row(rf).extra_se == 0
    with pytest.raises(ValueError, match="at least one seed"):
        WarmupComparison(model, codes, spk, seeds=[])


def test_the_first_warmup_within_the_tolerance_of_the_full_one_is_confirmed():
    """A decoder blind to its samples: its KL after a seam depends on the codes alone, the same for
    every seed, and falls as the warm-up grows (the conditioning sees more of the frames before)."""
    model = sharp_tiny_wavenet()
    model.decoder.embed.weight.data.zero_()
    cmp = WarmupComparison(model, _codes(n=3, frames=80, seed=2), [0, 1, 2], seeds=[0, 1], method="numba",
                           max_batch=4)
    rf = cmp.receptive_field
    kl = {w: cmp.per_pair(w) for w in (0, 16, 32, rf)}
    for w in kl:
        np.testing.assert_allclose(kl[w][:3], kl[w][3:], rtol=1e-6)  # seed 1 = seed 0
    extra = {w: cmp.row(w).extra_bits for w in kl}
    assert extra[0] > extra[16] > extra[32] > 1e-3 > extra[rf] == 0
    candidates = [0, 16, 32]
    chosen, rows = cmp.confirm(candidates, (extra[16] + extra[32]) / 2)
    assert chosen == 32 and [r.warmup for r in rows] == [0, 16, 32, rf]
    chosen, rows = cmp.confirm(candidates[1:], extra[16])
    assert chosen == 16 and [r.warmup for r in rows] == [16, rf]
    chosen, rows = cmp.confirm(candidates, 1e-3)  # none passes: the full warm-up
    assert chosen == rf and [r.warmup for r in rows] == [0, 16, 32, rf]
    assert sorted(cmp._runs) == [0, 16, 32, rf]  # each warm-up generated once
