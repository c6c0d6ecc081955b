"""``python -m strato.server``: the control plane in the foreground, configured by STRATO_* variables."""

import logging
import sys

from strato.config import load_settings
from strato.errors import StratoError
from strato.server.daemon import serve


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        serve(load_settings())
    except StratoError as exc:
        print(f"strato: {exc.message}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
