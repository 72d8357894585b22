"""The Gradio voice-conversion demo: ``python demo/app.py [--model M] [--port 7860]``.

Thin wrapper over :mod:`vqspeech.demo_app` (also ``vqspeech demo``).
"""

import sys

from vqspeech.bin.demo import main

if __name__ == "__main__":
    sys.exit(main())
