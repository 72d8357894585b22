"""Optional dependencies of the evaluation, with a clear message naming the extra."""

from ..errors import UserError


def require(module: str):
    import importlib
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return importlib.import_module(module)
    except ImportError as exc:
        raise UserError(f"voice-conversion evaluation needs {module} ({exc.msg}): "
                        f"pip install 'vqspeech[eval]' (or run 'make setup')") from None
