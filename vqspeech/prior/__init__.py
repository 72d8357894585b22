"""The prior over codes (the paper's sections 3.3 and 4.3): an autoregressive model of code
sequences, trained after the auto-encoder on the codes ``vqspeech encode`` writes, that scores
code sequences and, sampled and decoded, speaks in a chosen voice.

Layout: :mod:`.config` (YAML keys), :mod:`.model` (the causal transformer), :mod:`.data`
(crops of code sequences), :mod:`.train` (``vqspeech train-prior``), :mod:`.sample`
(``vqspeech sample``), :mod:`.evaluate` (bits per code, phone statistics of samples).
"""
