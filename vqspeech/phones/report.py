"""The phone report: every code/phone measure for one data set, as JSON, Markdown and HTML.

``vqspeech phone-report --model M --codes exp/x/codes/test.txt --data-dir data/test --output-dir DIR``

Writes ``report.json`` (all numbers), ``report.md``, a self-contained ``report.html`` (plots
embedded), the plots as PNG, and ``textgrids/<utt>.TextGrid`` with a phone and a code tier.
"""

from __future__ import annotations

import base64
import html
import io
import json
import time
from pathlib import Path

import numpy as np

from ..alignments import (PhoneInterval, align_to_frames, fold_intervals, read_ctm, remove_overlaps,
                          write_textgrid)
from ..codes_file import check_code_range
from ..kaldi_data_dir import read_data_dir
from ..errors import UserError
from ..fileio import atomic_write
from ..ids import path_in
from .abx import abx_error, build_items, write_item_file
from .boundaries import code_boundaries, evaluate_boundaries
from .mapping import (ContingencyTable, bitrate, chance_accuracy, cluster_purity, code_perplexity,
                      many_to_one_accuracy, per_phone_accuracy, pnmi)
from .speaker import speaker_leakage


def _segments(labels: list[str]) -> list[tuple[int, int, str]]:
    """Frame labels -> [(start frame, end frame, label)] runs."""
    out, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            out.append((start, i, labels[start]))
            start = i
    return out


def compute_phone_report(codes: dict[str, list[int]], data_dir: str | Path, frame_shift: float, num_codes: int,
                         features: dict[str, np.ndarray] | None = None, tolerance: float = 0.02,
                         abx_max_per_cell: int = 5, sampled_codes: dict[str, list[int]] | None = None) -> dict:
    """All measures as a JSON-ready dict (no files written).  ``sampled_codes`` (from the prior)
    adds the phone statistics of samples against the real codes (:mod:`vqspeech.prior.evaluate`)."""
    data_dir = Path(data_dir)
    dd = read_data_dir(data_dir)
    ctm = data_dir / "phones.ctm"
    if not ctm.is_file():
        raise UserError(f"{ctm}: no phone alignment (run the alignment stage, or give a data dir with phones.ctm)")
    alignment = read_ctm(ctm)
    unknown = sorted(set(codes) - set(dd.utt2spk))
    if unknown:
        raise UserError(f"codes for {len(unknown)} utterances not in {data_dir} (e.g. {unknown[0]!r})")
    check_code_range(codes, num_codes, "codes")
    labels, align_rep = align_to_frames(codes, alignment, frame_shift)
    if not labels:
        raise UserError(f"no utterance of {data_dir} has both codes and a matching alignment "
                        f"({align_rep.as_dict()})")
    utts = sorted(labels)
    flat_codes = np.concatenate([np.asarray(codes[u]) for u in utts])
    flat_phones = np.concatenate([np.asarray(labels[u]) for u in utts])
    table = ContingencyTable.build(flat_codes, flat_phones)
    seconds = len(flat_codes) * frame_shift
    t0 = time.perf_counter()
    # boundaries: inner phone boundaries vs code changes
    pairs = []
    for u in utts:
        ivs = fold_intervals(alignment[u])
        ref = [iv.end for iv in ivs[:-1]]
        pairs.append((np.array(ref), code_boundaries(codes[u], frame_shift)))
    bounds = evaluate_boundaries(pairs, tolerance)
    # ABX on codes and on continuous features
    segs = {u: _segments(labels[u]) for u in utts}
    items = build_items(segs, dd.utt2spk, ignore=frozenset({"sil"}))
    code_feats = {u: np.asarray(codes[u], dtype=np.float64)[:, None] for u in utts}
    abx_codes = abx_error(code_feats, items, cosine=False, max_per_cell=abx_max_per_cell)
    abx_cont = None
    if features is not None:
        missing = [u for u in utts if u not in features]
        if missing:
            raise UserError(f"features lack {len(missing)} utterances (e.g. {missing[0]!r})")
        abx_cont = abx_error({u: features[u] for u in utts}, items, cosine=True, max_per_cell=abx_max_per_cell)
    leak = speaker_leakage({u: codes[u] for u in utts}, dd.utt2spk, num_codes)
    # The same classifier on the reference phone labels of the same frames: what perfectly phonetic
    # codes would still give away (speaking rate, accent), the floor the code figure is read against.
    phone_ids = {p: i for i, p in enumerate(table.phones)}
    leak_phones = speaker_leakage({u: [phone_ids[p] for p in labels[u]] for u in utts}, dd.utt2spk, len(phone_ids))
    abx_items = items
    analysis_seconds = time.perf_counter() - t0

    def pct(x):
        return None if x is None else round(100 * x, 2)

    return {
        "data_dir": str(data_dir), "utterances": len(utts), "frames": int(len(flat_codes)),
        "audio_hours": seconds / 3600, "frame_shift_ms": frame_shift * 1000,
        "alignment": align_rep.as_dict(),
        "phones": table.phones, "num_phones": len(table.phones),
        "codes_used": len(table.codes), "codebook_size": num_codes,
        "code_perplexity": code_perplexity(flat_codes),
        "many_to_one_accuracy": many_to_one_accuracy(table),
        "chance_accuracy": chance_accuracy(table),
        "phone_purity": many_to_one_accuracy(table),
        "cluster_purity": cluster_purity(table),
        "pnmi": pnmi(table),
        "per_phone_accuracy": per_phone_accuracy(table),
        "code_to_phone": {str(k): v for k, v in table.code_to_phone().items()},
        "bitrate_bps": bitrate([codes[u] for u in utts], seconds),
        "bitrate_run_length_bps": bitrate([codes[u] for u in utts], seconds, merge_repeats=True),
        "boundaries": {"tolerance_ms": tolerance * 1000, "precision": bounds.precision, "recall": bounds.recall,
                       "f1": bounds.f1, "r_value": bounds.r_value, "reference": bounds.n_ref,
                       "hypothesis": bounds.n_hyp},
        "abx_codes": {"within_speaker_error_pct": pct(abx_codes.within), "across_speaker_error_pct": pct(abx_codes.across),
                      "groups_within": abx_codes.n_within, "groups_across": abx_codes.n_across},
        "abx_features": None if abx_cont is None else {
            "within_speaker_error_pct": pct(abx_cont.within), "across_speaker_error_pct": pct(abx_cont.across),
            "groups_within": abx_cont.n_within, "groups_across": abx_cont.n_across},
        "speaker_from_codes": leak,
        "speaker_from_phone_labels": leak_phones,
        "prior_samples": None if sampled_codes is None else _prior_samples(codes, labels, sampled_codes),
        "analysis_seconds": analysis_seconds,
        "_table": table,       # removed before writing JSON; used by the plots
        "_labels": labels,
        "_items": abx_items,   # written as abx.item
    }


# ------------------------------------------------------------------------------------- plots
def _prior_samples(codes, labels, sampled) -> dict:
    from ..prior.evaluate import phone_statistics

    return phone_statistics({u: codes[u] for u in labels}, labels, sampled)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return buf.getvalue()


def _plots(rep: dict, codes: dict[str, list[int]], data_dir: Path, frame_shift: float,
           example_utts: list[str]) -> dict[str, bytes]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table: ContingencyTable = rep["_table"]
    out = {}
    # code x phone heat map, codes ordered by their mapped phone, rows normalised: p(phone | code)
    mapped = table.counts.argmax(1)
    order = np.lexsort((-table.counts.max(1), mapped))
    p = table.counts[order] / table.counts[order].sum(1, keepdims=True)
    fig, ax = plt.subplots(figsize=(max(6, 0.22 * len(table.phones)), max(4, 0.08 * len(order))))
    ax.imshow(p, aspect="auto", cmap="magma_r", interpolation="nearest")
    ax.set_xticks(range(len(table.phones)), table.phones, rotation=90, fontsize=7)
    ax.set_ylabel(f"codes ({len(order)} used), ordered by mapped phone")
    ax.set_yticks([])
    ax.set_title("p(phone | code)")
    out["heatmap.png"] = _png(fig)
    # per-phone accuracy
    acc = rep["per_phone_accuracy"]
    phones = sorted(acc, key=lambda k: -acc[k])
    fig, ax = plt.subplots(figsize=(max(6, 0.22 * len(phones)), 3))
    ax.bar(range(len(phones)), [100 * acc[k] for k in phones], color="#4477aa")
    ax.axhline(100 * rep["many_to_one_accuracy"], color="k", lw=1, ls="--", label="overall")
    ax.set_xticks(range(len(phones)), phones, rotation=90, fontsize=7)
    ax.set_ylabel("frame accuracy (%)")
    ax.legend()
    out["per_phone_accuracy.png"] = _png(fig)
    # code usage
    counts = np.bincount(np.concatenate([np.asarray(c) for c in codes.values()]), minlength=rep["codebook_size"])
    fig, ax = plt.subplots(figsize=(7, 2.6))
    ax.bar(range(len(counts)), np.sort(counts)[::-1], width=1.0, color="#228833")
    ax.set_xlabel("code rank")
    ax.set_ylabel("frames")
    ax.set_title(f"code usage: {int((counts > 0).sum())}/{len(counts)} used, perplexity {rep['code_perplexity']:.1f}")
    out["code_usage.png"] = _png(fig)
    # example utterances: waveform, spectrogram, phone tier, code tier
    from ..audio import load_audio

    dd = read_data_dir(data_dir)
    for k, utt in enumerate(example_utts):
        path, start, end = dd.audio_of(utt)
        wav = load_audio(path, 16000, start, end)
        labels = rep["_labels"][utt]
        fig, axes = plt.subplots(4, 1, figsize=(11, 5.2), sharex=True,
                                 gridspec_kw={"height_ratios": [1, 2, 0.5, 0.5]})
        t = np.arange(len(wav)) / 16000
        axes[0].plot(t, wav, lw=0.4, color="k")
        axes[0].set_ylabel("wave")
        axes[1].specgram(wav + 1e-6, NFFT=400, Fs=16000, noverlap=240, cmap="viridis")
        axes[1].set_ylabel("Hz")
        for ax, tier in ((axes[2], labels), (axes[3], [str(c) for c in codes[utt]])):
            for s, e, lab in _segments(tier):
                ax.axvline(s * frame_shift, color="#888", lw=0.5)
                if (e - s) * frame_shift > 0.025:
                    ax.text((s + e) / 2 * frame_shift, 0.5, lab, ha="center", va="center", fontsize=6)
            ax.set_yticks([])
        axes[2].set_ylabel("phones", rotation=0, ha="right")
        axes[3].set_ylabel("codes", rotation=0, ha="right")
        axes[3].set_xlabel("seconds")
        axes[0].set_title(utt)
        out[f"example_{k + 1}.png"] = _png(fig)
    return out


# ------------------------------------------------------------------------------------- writing
def _markdown(rep: dict) -> str:
    def f(x, fmt="{:.1f}%"):
        return "n/a" if x is None else fmt.format(x)

    b, ac, af, lk = rep["boundaries"], rep["abx_codes"], rep["abx_features"] or {}, rep["speaker_from_codes"]
    lp = rep.get("speaker_from_phone_labels") or {"accuracy": None}
    lines = [
        f"# Phone report: {rep['data_dir']}", "",
        f"{rep['utterances']} utterances, {rep['frames']} frames ({rep['audio_hours'] * 60:.1f} min), "
        f"{rep['num_phones']} phones, {rep['codes_used']}/{rep['codebook_size']} codes used.", "",
        f"**Code rate {1000 / rep['frame_shift_ms']:.1f} codes/s ({rep['frame_shift_ms']:.1f} ms per code), "
        f"bitrate {rep['bitrate_bps']:.0f} bit/s** (ZeroSpeech 2019 definition; "
        f"{rep['bitrate_run_length_bps']:.0f} bit/s with repeated codes merged).", "",
        "| measure | value |", "|---|---:|",
        f"| many-to-one frame accuracy (phone purity) | {100 * rep['many_to_one_accuracy']:.1f}% |",
        f"| chance (most frequent phone) | {100 * rep['chance_accuracy']:.1f}% |",
        f"| cluster purity | {100 * rep['cluster_purity']:.1f}% |",
        f"| PNMI | {rep['pnmi']:.3f} |",
        f"| code perplexity | {rep['code_perplexity']:.1f} |",
        f"| bitrate (ZeroSpeech 2019) | {rep['bitrate_bps']:.0f} bit/s |",
        f"| bitrate, repeats merged | {rep['bitrate_run_length_bps']:.0f} bit/s |",
        f"| boundary precision / recall / F1 / R-value ({b['tolerance_ms']:.0f} ms) | "
        f"{100 * b['precision']:.1f} / {100 * b['recall']:.1f} / {100 * b['f1']:.1f} / {100 * b['r_value']:.1f} |",
        f"| ABX error (ZeroSpeech: angular distance, DTW), codes, within / across speaker | "
        f"{f(ac['within_speaker_error_pct'])} / {f(ac['across_speaker_error_pct'])} |",
        f"| ABX error, encoder features, within / across speaker | {f(af.get('within_speaker_error_pct'))} / "
        f"{f(af.get('across_speaker_error_pct'))} |",
        f"| speaker accuracy from code histograms (lower is better) | "
        f"{f(None if lk['accuracy'] is None else 100 * lk['accuracy'])} (chance {100 * lk['chance']:.1f}%) |",
        f"| the same from the reference phone labels' histograms (what phone-perfect codes give away) | "
        f"{f(None if lp['accuracy'] is None else 100 * lp['accuracy'])} |", "",
        "ABX items (ZeroSpeech .item format, for other tools): `abx.item`.", "",
        f"Alignment: {rep['alignment']['matched']} matched, {rep['alignment']['missing_alignment']} without alignment, "
        f"{rep['alignment']['length_mismatch']} with a length mismatch.", "",
        "![code x phone](heatmap.png)", "", "![per-phone accuracy](per_phone_accuracy.png)", "",
        "![code usage](code_usage.png)", "",
    ]
    lines += [f"![example](example_{k + 1}.png)" for k in range(rep.get("_examples", 0))]
    ps = rep.get("prior_samples")
    if ps:
        bp, run = ps["bigram_perplexity"], ps["codes_per_phone_run"]
        lines += ["", "## Codes sampled from the prior", "",
                  f"Codes mapped to phones by this report's many-to-one mapping, repeats merged; a phone bigram "
                  f"model fit on {ps['utterances']['fit']} real utterances scores the other "
                  f"{ps['utterances']['held_out']} real ones, {ps['utterances']['sampled']} sampled ones, and as "
                  f"many drawn from the code unigram (lower perplexity: more like real phone sequences).", "",
                  "| codes | phone bigram perplexity | codes per phone run |", "|---|---:|---:|",
                  f"| real (held out) | {bp['held_out_real']:.1f} | {run['real']:.2f} |",
                  f"| sampled from the prior | {bp['sampled']:.1f} | {run['sampled']:.2f} |",
                  f"| drawn from the unigram | {bp['unigram_random']:.1f} | {run['unigram_random']:.2f} |", ""]
    return "\n".join(lines) + "\n"


def _html(md_text: str, images: dict[str, bytes], title: str) -> str:
    body = []
    table_rows = []
    for line in md_text.splitlines():
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("|---"):
            continue
        elif line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tag = "th" if not table_rows else "td"
            table_rows.append("<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>")
        elif line.startswith("!["):
            if table_rows:
                body.append("<table>" + "".join(table_rows) + "</table>")
                table_rows = []
            name = line[line.rindex("](") + 2:-1]
            data = base64.b64encode(images[name]).decode()
            body.append(f'<p><img alt="{html.escape(name)}" src="data:image/png;base64,{data}"></p>')
        elif line.strip():
            if table_rows:
                body.append("<table>" + "".join(table_rows) + "</table>")
                table_rows = []
            body.append(f"<p>{html.escape(line)}</p>")
    if table_rows:
        body.append("<table>" + "".join(table_rows) + "</table>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 10px}td:last-child{text-align:right}"
             "img{max-width:100%}")
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>\n")


def write_phone_report(rep: dict, codes: dict[str, list[int]], data_dir: str | Path, frame_shift: float,
                       out_dir: str | Path, num_examples: int = 2, textgrids: bool = True) -> Path:
    """Write report.json/.md/.html, PNG plots and TextGrids into ``out_dir``; return the JSON path."""
    out_dir = Path(out_dir)
    utts = sorted(rep["_labels"])
    examples = utts[:: max(1, len(utts) // max(1, num_examples))][:num_examples]
    rep["_examples"] = len(examples)
    # Every TextGrid path is checked before anything is written: an id that escapes the
    # folder stops the report with nothing half-written.
    tg_paths = {u: path_in(out_dir / "textgrids", f"{u}.TextGrid") for u in utts} if textgrids else {}
    out_dir.mkdir(parents=True, exist_ok=True)
    write_item_file(out_dir / "abx.item", rep["_items"], frame_shift)
    images = _plots(rep, {u: codes[u] for u in utts}, Path(data_dir), frame_shift, examples)
    for name, data in images.items():
        with atomic_write(out_dir / name, "wb") as fh:
            fh.write(data)
    md = _markdown(rep)
    with atomic_write(out_dir / "report.md") as fh:
        fh.write(md)
    with atomic_write(out_dir / "report.html") as fh:
        fh.write(_html(md, images, f"Phone report {rep['data_dir']}"))
    if textgrids:
        alignment = read_ctm(Path(data_dir) / "phones.ctm")
        overlaps = 0
        for u in utts:
            code_ivs = [PhoneInterval(s * frame_shift, e * frame_shift, lab)
                        for s, e, lab in _segments([str(c) for c in codes[u]])]
            dur = len(codes[u]) * frame_shift
            # A TextGrid tier cannot overlap; alignments sometimes do by a rounding (CTMs written
            # with start and duration rounded apart). Such a phone starts where the previous ends.
            phones, n = remove_overlaps([iv for iv in alignment[u] if iv.start < dur])
            overlaps += n
            write_textgrid(tg_paths[u], {"phones": phones, "codes": code_ivs}, dur)
        rep["alignment"]["overlaps_trimmed_in_textgrids"] = overlaps
    clean = {k: v for k, v in rep.items() if not k.startswith("_")}
    with atomic_write(out_dir / "report.json") as fh:
        json.dump(clean, fh, indent=2)
    return out_dir / "report.json"
