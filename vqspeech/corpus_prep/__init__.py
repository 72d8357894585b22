"""Corpus preparation: the synthesized mini corpus and VCTK."""
