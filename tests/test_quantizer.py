import torch

from vqspeech.config import EMAQuantizerConfig, QuantizerConfig
from vqspeech.models.encoder import ConvEncoder
from vqspeech.config import EncoderConfig
from vqspeech.models.quantizer import VectorQuantizer, kmeans


def _vq(ema=False, **kw):
    base = dict(num_codes=4, kmeans_init=False, dead_code_restart=False, buffer_size=64)
    base.update(kw)
    return VectorQuantizer(2, (EMAQuantizerConfig if ema else QuantizerConfig)(**base))


def test_nearest_code_and_losses_equal_formulas():
    torch.manual_seed(0)
    q = _vq(beta=0.25)
    q.codebook.data = torch.tensor([[0., 0.], [1., 0.], [0., 1.], [5., 5.]])
    z = torch.tensor([[[0.1, 0.9, 0.2], [0.0, 0.1, 0.8]]], requires_grad=True)  # (1, 2, 3)
    out = q(z)
    assert out["codes"].tolist() == [[0, 1, 2]]
    e = q.codebook.detach()[[0, 1, 2]]
    zf = z.detach()[0].t()
    mse = ((zf - e) ** 2).mean()
    assert torch.isclose(out["codebook_loss"], mse) and torch.isclose(out["commit_loss"], mse)
    assert torch.isclose(out["loss"], mse + 0.25 * mse)
    assert out["codes_used"].item() == 3
    assert torch.isclose(out["perplexity"], torch.tensor(3.0))
    torch.testing.assert_close(out["z_q"].detach()[0].t(), e)


def test_straight_through_gradient_reaches_encoder():
    torch.manual_seed(0)
    enc = ConvEncoder(EncoderConfig(channels=8, kernel_sizes=[4, 4], strides=[2, 2], latent_dim=2))
    q = _vq()
    wav = torch.randn(2, 64)
    out = q(enc(wav))
    (out["z_q"] ** 2).sum().backward()  # a "decoder" loss that only sees z_q
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())
    # codebook gets gradient only from the codebook loss, not from the decoder term
    assert q.codebook.grad is None or q.codebook.grad.abs().sum() == 0


def test_commit_gradient_pulls_encoder_output_to_code():
    q = _vq(beta=0.25)
    q.codebook.data = torch.tensor([[0., 0.], [1., 0.], [0., 1.], [5., 5.]])
    z = torch.tensor([[[0.2], [0.1]]], requires_grad=True)
    q(z)["loss"].backward()
    # d/dz of beta * mean((z - e)^2) over D=2 elements = beta * 2 (z - e) / 2
    torch.testing.assert_close(z.grad, 0.25 * (z.detach() - torch.zeros(1, 2, 1)))


def test_ema_update_matches_hand_computation():
    q = _vq(ema=True, decay=0.5, epsilon=0.0)
    q.codebook.data = torch.tensor([[0., 0.], [1., 0.], [0., 1.], [5., 5.]])
    q.ema_sum.copy_(q.codebook.data)
    q.ema_count.fill_(1.0)
    q.train()
    z = torch.tensor([[[0.2, 0.4, 0.9], [0.0, 0.0, 0.1]]])  # frames (0.2,0),(0.4,0) -> code 0; (0.9,0.1) -> 1
    q(z)
    count = torch.tensor([0.5 + 0.5 * 2, 0.5 + 0.5 * 1, 0.5, 0.5])
    sums = torch.tensor([[0.5 * 0 + 0.5 * 0.6, 0.0], [0.5 * 1 + 0.5 * 0.9, 0.5 * 0.1], [0.0, 0.5], [2.5, 2.5]])
    torch.testing.assert_close(q.ema_count, count)
    torch.testing.assert_close(q.codebook.data, sums / count.unsqueeze(1))


def test_kmeans_recovers_separated_clusters():
    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0., 0.], [10., 0.], [0., 10.]])
    x = torch.cat([c + 0.1 * torch.randn(50, 2, generator=g) for c in centres])
    c = kmeans(x, 3, 10, g)
    d = torch.cdist(centres, c).min(1).values
    assert (d < 0.2).all()


def test_dead_code_restart_revives_unused_codebook():
    torch.manual_seed(0)
    q = VectorQuantizer(2, EMAQuantizerConfig(num_codes=16, kmeans_init=False, dead_code_restart=True,
                                              restart_every=2, buffer_size=256))
    q.codebook.data.fill_(100.0)  # every code far from the data: all start unused ...
    q.codebook.data[0] = 0.0      # ... except one that takes every frame
    q.ema_sum.copy_(q.codebook.data)
    q.train()
    used = []
    for _ in range(10):
        out = q(torch.randn(4, 2, 32))
        used.append(int(out["codes_used"]))
    assert used[0] == 1
    assert used[-1] >= 12, used  # most of the 16 codes in use after restarts


def test_kmeans_init_happens_after_configured_batches():
    torch.manual_seed(0)
    q = VectorQuantizer(2, QuantizerConfig(num_codes=4, kmeans_init=True, kmeans_init_batches=2,
                                           dead_code_restart=False, buffer_size=512))
    q.train()
    data = lambda: torch.cat([torch.randn(1, 2, 64) * 0.05 + torch.tensor([[[3.0], [0.0]]]),
                              torch.randn(1, 2, 64) * 0.05 - torch.tensor([[[3.0], [0.0]]])])
    q(data())
    assert not bool(q.initialised)
    q(data())
    assert bool(q.initialised)
    # k-means put codes on both clusters
    xs = q.codebook.data[:, 0]
    assert (xs > 2.5).any() and (xs < -2.5).any()


def test_code_counts_equal_bincount():
    from vqspeech.models.quantizer import code_counts

    codes = torch.randint(0, 7, (3, 50), generator=torch.Generator().manual_seed(0))
    counts = code_counts(codes, 9)
    assert counts.dtype == torch.float32
    assert torch.equal(counts, torch.bincount(codes.reshape(-1), minlength=9).float())


def test_training_steps_never_read_a_buffer_back_to_the_host(monkeypatch):
    """On a GPU every .item() / int() / bool() of a device tensor is a synchronisation; between
    k-means and restarts a training step of the quantizer must make none (the host mirrors of
    steps, buffer fill and initialised steer it).  Reading any tensor back raises here."""
    torch.manual_seed(0)
    q = VectorQuantizer(4, EMAQuantizerConfig(num_codes=8, kmeans_init=True, kmeans_init_batches=2,
                                              restart_every=5, buffer_size=256))
    q.train()
    for _ in range(2):  # k-means runs at the second step (it may read back)
        q(torch.randn(2, 4, 40))
    assert q._host_initialised and bool(q.initialised)

    def no_readback(*_args, **_kw):
        raise AssertionError("a tensor was read back to the host")

    for name in ("item", "__int__", "__bool__", "__index__", "__float__", "tolist"):
        monkeypatch.setattr(torch.Tensor, name, no_readback)
    for _ in range(2):  # steps 3 and 4: no restart is due
        q(torch.randn(2, 4, 40))
    monkeypatch.undo()
    assert int(q.steps) == q._host_steps == 4 and int(q.buffer_fill) == q._host_fill == 256


def test_loading_a_state_dict_restores_the_host_mirrors():
    cfg = EMAQuantizerConfig(num_codes=8, kmeans_init=True, kmeans_init_batches=2, restart_every=3, buffer_size=64)
    torch.manual_seed(0)
    a = VectorQuantizer(4, cfg).train()
    for _ in range(4):
        a(torch.randn(1, 4, 40))
    b = VectorQuantizer(4, cfg)
    assert (b._host_steps, b._host_fill, b._host_initialised) == (0, 0, False)
    wrapper = torch.nn.Sequential(b)  # loaded through a parent, as a checkpoint loads the model
    wrapper.load_state_dict(torch.nn.Sequential(a).state_dict())
    assert (b._host_steps, b._host_fill, b._host_initialised) == (4, 64, True)
    # and both continue identically: the same buffer draws and the same restarts
    b.train()
    x = torch.randn(1, 4, 40)
    for _ in range(3):
        torch.testing.assert_close(a(x)["z_q"], b(x)["z_q"], rtol=0, atol=0)
    assert torch.equal(a.codebook, b.codebook) and torch.equal(a.buffer, b.buffer)
