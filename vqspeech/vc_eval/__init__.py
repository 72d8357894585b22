"""Voice-conversion evaluation: MCD with DTW, log-F0, speaker similarity, intelligibility."""
