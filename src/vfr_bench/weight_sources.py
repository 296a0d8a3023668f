"""Downloaders for the weights registry, one per kind of source.

Each writes a complete file to a temporary path beside its destination and returns it;
:mod:`vfr_bench.weights` hashes it, checks it and renames it into place, so no function
here ever writes under a registered file name. Every failure is a :class:`SourceError`
with a one-line message; :class:`SourceUnreachable` marks a network failure (offline,
DNS, refused, timed out) so the caller can skip the other files of that host at once.

- ``url``: plain HTTP(S) with ``<file>.part`` resume (Range requests).
- ``huggingface``: ``huggingface_hub.hf_hub_download`` into a staging folder; one HEAD
  (``get_hf_file_metadata``, no retries) first, which fails fast offline and gives the
  commit served and the file's sha256 (the ETag of LFS/Xet files). ``HF_ENDPOINT``,
  ``HF_TOKEN``, ``HF_HUB_ETAG_TIMEOUT`` and ``HF_HUB_DOWNLOAD_TIMEOUT`` are honoured.
- ``gdrive``: ``gdown`` (Google Drive files, files inside a shared folder, archives).
- archives: :func:`extract_members` copies only the named members out of a zip or tar.

huggingface_hub and gdown are imported on first use, so ``import vfr_bench`` stays light.
"""
from __future__ import annotations

import os
import shutil
import tarfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Callable, Optional

Progress = Callable[[int, Optional[int]], None]

CONNECT_TIMEOUT = 10.0  # seconds to reach a server
READ_TIMEOUT = 60.0  # seconds without a byte before a download is abandoned
URL_TIMEOUT = 15.0  # urllib: one limit for connecting and for each read


class SourceError(ConnectionError):
    """A download failed; the message is one line saying why."""


class SourceUnreachable(SourceError):
    """The server could not be reached at all (offline, DNS, refused, timed out)."""


def one_line(err: BaseException, limit: int = 240) -> str:
    """An exception as one short line (library errors often span several)."""
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def host_of(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or url


# --- plain URLs -------------------------------------------------------------------------
def download_url(url: str, part: Path, timeout: float = URL_TIMEOUT,
                 progress: Optional[Progress] = None) -> Path:
    """Download ``url`` into ``part``, continuing an earlier partial file with a Range request.

    Returns:
        ``part``, complete.
    """
    have = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and have:  # the part is already complete
            return part
        raise SourceError(f"HTTP {e.code} from {url}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise SourceUnreachable(f"cannot reach {host_of(url)} ({one_line(reason)}); offline?") from None
    with resp:
        resumed = bool(have) and resp.status == 206
        done = have if resumed else 0
        length = resp.headers.get("Content-Length")
        total = done + int(length) if length is not None else None
        try:
            with open(part, "ab" if resumed else "wb") as f:
                while block := resp.read(1 << 20):
                    f.write(block)
                    done += len(block)
                    if progress:
                        progress(done, total)
        except OSError as e:  # connection dropped or timed out mid-file: the part is kept for resume
            raise SourceError(f"download from {url} broke off after {done} bytes ({one_line(e)}); "
                              f"run the same command again to resume") from None
    if total is not None and done < total:
        raise SourceError(f"download from {url} ended after {done} of {total} bytes; "
                          f"run the same command again to resume")
    return part


# --- Hugging Face -------------------------------------------------------------------------
def hf_endpoint() -> Optional[str]:
    """``HF_ENDPOINT`` read now (huggingface_hub reads it once, at import)."""
    return os.environ.get("HF_ENDPOINT") or None


def _env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def _network_errors() -> tuple:
    """Exception classes of the HTTP clients huggingface_hub may use (versions differ)."""
    found = []
    for mod, attr in (("httpx2", "TransportError"), ("httpx", "TransportError"),
                      ("requests", "ConnectionError"), ("requests", "Timeout")):
        try:
            found.append(getattr(__import__(mod), attr))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


def _hf_error(where: str, host: str, e: BaseException) -> SourceError:
    from huggingface_hub import errors as E
    if isinstance(e, E.OfflineModeIsEnabled):
        return SourceUnreachable(f"HF_HUB_OFFLINE is set; cannot download {where}")
    if isinstance(e, E.GatedRepoError):
        return SourceError(f"{where} is gated on {host}: accept its terms on the model page, "
                           f"then set HF_TOKEN")
    if isinstance(e, (E.RepositoryNotFoundError, E.RevisionNotFoundError, E.RemoteEntryNotFoundError)):
        return SourceError(f"{where} not found on {host} ({type(e).__name__})")
    if isinstance(e, E.HfHubHTTPError):
        return SourceError(f"{host} refused {where}: {one_line(e)}")
    if isinstance(e, (E.LocalEntryNotFoundError, ConnectionError, TimeoutError) + _network_errors()):
        return SourceUnreachable(f"cannot reach {host} for {where} ({one_line(e)}); offline?")
    return SourceError(f"download of {where} from {host} failed: {one_line(e)}")


def download_hf(repo_id: str, path: str, revision: str, staging: Path, out: Path,
                bars: bool = True) -> tuple[Path, dict]:
    """Download ``path`` from the Hub model repo ``repo_id`` at ``revision`` to ``out``.

    ``hf_hub_download`` writes into ``staging`` (its ``local_dir``: the file, its metadata
    and lock files), which is removed once the file has been moved to ``out``.

    Returns:
        (``out``, {"commit": commit served, "sha256": the file's sha256 as the Hub publishes
        it (LFS/Xet ETag) or None, "size": bytes or None}).
    """
    import inspect

    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    extra = {}
    if not bars:
        from huggingface_hub.utils import disable_progress_bars
        disable_progress_bars()
    elif "tqdm_class" in inspect.signature(hf_hub_download).parameters:
        from tqdm import tqdm  # a plain bar that stays, as for the other sources (hub >= 1.x)
        extra["tqdm_class"] = tqdm
    endpoint = hf_endpoint()
    token = os.environ.get("HF_TOKEN") or None
    etag_timeout = _env_float("HF_HUB_ETAG_TIMEOUT", CONNECT_TIMEOUT)
    where = f"{repo_id}@{revision}:{path}"
    url = hf_hub_url(repo_id, path, revision=revision, endpoint=endpoint)
    try:  # one HEAD, no retries: fails fast offline (hf_hub_download would back off and retry)
        meta = get_hf_file_metadata(url, token=token, timeout=etag_timeout, endpoint=endpoint)
    except Exception as e:  # noqa: BLE001 - classified into one line
        raise _hf_error(where, host_of(url), e) from None
    commit = meta.commit_hash or revision
    etag = (meta.etag or "").lower()
    published = etag if len(etag) == 64 and all(c in "0123456789abcdef" for c in etag) else None
    try:  # at the commit the HEAD saw, so metadata and bytes belong together
        got = hf_hub_download(repo_id, path, revision=commit, local_dir=staging, endpoint=endpoint,
                              token=token, etag_timeout=etag_timeout, **extra)
        os.replace(got, out)
    except Exception as e:  # noqa: BLE001
        raise _hf_error(where, host_of(url), e) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        for parent in (staging.parent, staging.parent.parent):
            try:
                parent.rmdir()  # only when empty
            except OSError:
                break
    return out, {"commit": commit, "sha256": published, "size": meta.size}


# --- Google Drive ---------------------------------------------------------------------------
def _gdown_error(what: str, e: BaseException) -> SourceError:
    if isinstance(e, (ConnectionError, TimeoutError) + _network_errors()):
        return SourceUnreachable(f"cannot reach drive.google.com for {what} ({one_line(e)}); offline?")
    return SourceError(f"Google Drive refused {what}: {one_line(e)} (if it says too many users "
                       f"have viewed or downloaded the file, try again in a day)")


def download_gdrive(file_id: str, output: Path, progress: Optional[Progress] = None) -> Path:
    """Download the Drive file ``file_id`` to ``output`` (gdown keeps a ``.part`` beside it
    to resume an interrupted transfer)."""
    import gdown
    try:
        got = gdown.download(id=file_id, output=str(output), quiet=True, resume=True,
                             timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), retries=0, progress=progress)
    except Exception as e:  # noqa: BLE001 - classified into one line
        raise _gdown_error(f"file {file_id}", e) from None
    if not got or not Path(got).is_file():
        raise SourceError(f"Google Drive file {file_id}: gdown returned no file")
    return Path(got)


def gdrive_folder_file_id(folder_id: str, filename: str) -> str:
    """Id of the file named ``filename`` in the shared Drive folder ``folder_id`` (any depth)."""
    import gdown
    try:
        listing = gdown.download_folder(id=folder_id, skip_download=True, quiet=True,
                                        timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
    except Exception as e:  # noqa: BLE001
        raise _gdown_error(f"folder {folder_id}", e) from None
    found = [f for f in listing or [] if Path(f.path).name == filename]
    if not found:
        names = ", ".join(sorted(Path(f.path).name for f in listing or [])[:8]) or "nothing"
        raise SourceError(f"{filename} is not in Google Drive folder {folder_id} (it lists {names})")
    return found[0].id


# --- archives ---------------------------------------------------------------------------------
def extract_members(archive: Path, wanted: dict[str, Path]) -> None:
    """Copy the members named in ``wanted`` (member path, or a file name matched anywhere in
    the archive) to the paths given; nothing else is written. Zip and tar (any compression).

    Raises:
        SourceError: not an archive, or a member missing or named twice.
    """
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as z:
            members = {i.filename: i for i in z.infolist() if not i.is_dir()}
            for key, out in wanted.items():
                info = members[_pick(archive, members, key)]
                with z.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
        return
    try:
        tar = tarfile.open(archive)
    except (tarfile.TarError, OSError):
        raise SourceError(f"{archive.name} is neither a zip nor a tar archive") from None
    with tar:
        members = {m.name: m for m in tar.getmembers() if m.isfile()}
        for key, out in wanted.items():
            src = tar.extractfile(members[_pick(archive, members, key)])
            with src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def _pick(archive: Path, members: dict, key: str) -> str:
    if key in members:
        return key
    hits = [m for m in members if m.rsplit("/", 1)[-1] == key]
    if len(hits) == 1:
        return hits[0]
    if not hits:
        some = ", ".join(sorted(members)[:8]) or "nothing"
        raise SourceError(f"{key} is not in the archive {archive.name} (it holds {some})")
    raise SourceError(f"{key} is in the archive {archive.name} more than once: {', '.join(hits)}")
