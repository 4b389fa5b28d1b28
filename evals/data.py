"""Where a task's records come from: a local JSONL read line by line, or a hub dataset through ``datasets``.

Every record comes with its position (the file's line number, or the row index of a hub split) so a bad row is
reported where it is (``pure_rl.core.rows``); a line that is not JSON is a bad row, not a failed file. Offline,
the hub is not retried for half a minute: ``HF_HUB_OFFLINE=1`` goes straight to the ``datasets`` cache, and an
unreachable hub is found by one short connection attempt. Either way the error names the key that avoids the hub.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pure_rl.core.rows import BadRow, DataError, RowTally, read_jsonl

SHARED_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DATA_PATH_HINT = "task.kwargs.data_path=<local .jsonl> (evals.run: data_path=)"
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
PROBE_TIMEOUT_S = 3.0

Records = list[tuple[int, "dict[str, Any] | BadRow"]]


def load_records(data_path: str | os.PathLike | None, hub_id: str, hub_config: str | None,
                 split: str) -> tuple[Records, RowTally]:
    """(position, record or ``BadRow``) pairs of ``split`` and the tally to count them in; one-line ``DataError``s."""
    if data_path is not None:
        path = Path(data_path).expanduser()
        if path.is_dir():
            path = path / f"{split}.jsonl"
        if not path.is_file():
            raise FileNotFoundError(f"data_path={str(data_path)!r}: no such JSONL file (for split {split!r})")
        return list(read_jsonl(path)), RowTally(str(path), unit="line")
    source = f"{hub_id}[{split}]"
    return [(i, dict(row)) for i, row in enumerate(_hub_split(hub_id, hub_config, split))], RowTally(source, unit="row")


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def hub_unreachable() -> str | None:
    """Why the hub cannot be reached (one short TCP connection), or None when it can or a proxy is in the way."""
    if any(os.environ.get(v) for v in PROXY_VARIABLES):
        return None  # only the proxy can tell; let the client try
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    try:
        socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)),
                                 timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        return f"{url.hostname}: {exc.strerror or type(exc).__name__}"
    return None


def _hub_split(hub_id: str, hub_config: str | None, split: str) -> Any:
    failure = f"cannot load {hub_id!r} split {split!r} from the Hugging Face hub"
    hint = f"pass {DATA_PATH_HINT} (copies live in {SHARED_DATA})"
    if not _offline():
        reason = hub_unreachable()
        if reason is not None:
            raise DataError(f"{failure} (unreachable: {reason}); offline? {hint}, or set HF_HUB_OFFLINE=1 to use the "
                            "datasets cache")
    import datasets  # after the probe: importing it alone takes seconds

    try:
        return datasets.load_dataset(hub_id, hub_config, split=split)
    except Exception as exc:  # datasets' errors are many and nested: the one line says what to do instead
        raise DataError(f"{failure} ({type(exc).__name__}); offline? {hint}") from exc
