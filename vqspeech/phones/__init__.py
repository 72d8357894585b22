"""Code-to-phone analysis: mapping metrics, ABX, boundaries, bitrate, speaker leakage, reports."""
