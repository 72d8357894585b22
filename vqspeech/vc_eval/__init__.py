"""Voice-conversion evaluation: MCD with DTW, log-F0, speaker similarity, intelligibility."""

# The kinds of row a vc-eval report has (report.py writes them, compare.py pairs them), in the order shown.
ROW_KINDS = ("converted", "resynthesis", "converted_unseen", "resynthesis_unseen", "source", "real")
