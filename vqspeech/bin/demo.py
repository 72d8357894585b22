"""``vqspeech demo``: serve the Gradio demo."""

from __future__ import annotations

import sys

from ..demo_app import MAX_FILE_MB, build_app
from .runner import parser, run_user_command, int_at_least


def main(argv: list[str] | None = None) -> int:
    p = parser("vqspeech demo", "Serve the Gradio voice-conversion demo.")
    p.add_argument("--model", default=None, help="checkpoint (default: the shipped pretrained model)")
    p.add_argument("--vocoder-model", default=None, metavar="VOCODER_PT",
                   help="voice a spectral model's frames with this WaveNet vocoder (default: Griffin-Lim)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int_at_least(1, 65535), default=7860)
    p.add_argument("--share", action="store_true", help="ask Gradio for a public link (needs network)")
    args = p.parse_args(argv)

    def work() -> int:
        try:
            import gradio  # noqa: F401
        except ImportError:
            from ..errors import UserError

            raise UserError("the demo needs gradio: pip install 'vqspeech[demo]'") from None
        app = build_app(args.model, args.vocoder_model)
        app.launch(server_name=args.host, server_port=args.port, share=args.share,
                   max_file_size=f"{MAX_FILE_MB}mb", show_error=True)
        return 0

    return run_user_command(work, args.verbose, prog="vqspeech demo")


if __name__ == "__main__":
    sys.exit(main())
