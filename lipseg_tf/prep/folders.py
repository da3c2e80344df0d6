"""Where a script may write: an output folder apart from its inputs, and only files the script wrote.

Two rules keep a user's files safe from every script:

- An output folder that holds or lies inside an input folder, or the reverse, is refused (check_apart):
  `process.py --images d/train --out-dir d` would otherwise turn the photos into pairs.
- A script replaces or deletes only files it can prove it wrote: those named its own way inside a folder
  that holds its own settings file (masks.json, pairs.json, summary.json: claim_folder). Each script
  writes that file before any output, so a restarted run trusts what the interrupted one finished.

- An output path that is a symbolic link is never followed, and the model shipped in the repository
  (lipseg_tf/pretrained/, SHIPPED_MODELS) is never an output (check_output_dir).

make_output_dir turns the operating system's refusals (the path is a file, lies under a file, is read-only)
into one line before any work is done.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Iterable, Mapping

from lipseg_tf.errors import UserError

# The models shipped inside the package (lipseg_tf/pretrained/unet: predict.py's default): never an output.
SHIPPED_MODELS = Path(__file__).resolve().parents[1] / "pretrained"


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(path)))


def check_apart(output: tuple[str, str | os.PathLike],
                inputs: Mapping[str, str | os.PathLike | None]) -> None:
    """UserError when the output folder is, holds or lies inside one of the inputs (files or folders).

    output: (flag, path); inputs: {flag: path}, None entries ignored. Symbolic links are followed, so
    two names of one folder are one folder.
    """
    out_flag, out_path = output
    out = _real(out_path)
    for flag, path in inputs.items():
        if path is None:
            continue
        source = _real(path)
        if out == source:
            relation = "is"
        elif source in out.parents:
            relation = "lies inside"
        elif out in source.parents:
            relation = "holds"
        else:
            continue
        raise UserError(f"{out_flag} {out_path} {relation} {flag} {path}: expected an output folder apart "
                        "from the inputs (nothing in it is an input, and it is in no input)")


def _os_reason(err: OSError) -> str:
    reasons = {errno.EEXIST: "exists and is not a folder", errno.ENOTDIR: "lies under a file, not a folder",
               errno.EACCES: "not writable (permission denied)", errno.EPERM: "not writable (permission denied)",
               errno.EROFS: "on a read-only file system", errno.ENOSPC: "no space left on the device"}
    return reasons.get(err.errno, err.strerror or str(err))


def check_output_path(path: str | os.PathLike, flag: str, link_ok: bool = False) -> Path:
    """UserError when an output path is a symbolic link (never followed; link_ok: a folder given to hold
    the output file, which is checked itself) or is or lies inside the shipped models (SHIPPED_MODELS).
    Creates nothing."""
    path = Path(path)
    if path.is_symlink() and not link_ok:
        raise UserError(f"{flag} {path}: a symbolic link (to {os.readlink(path)}); an output path is never "
                        "followed: expected a new path, or a real folder or file this script wrote")
    shipped = _real(SHIPPED_MODELS)
    if _real(path) == shipped or shipped in _real(path).parents:
        raise UserError(f"{flag} {path}: lies in the models shipped with lipseg_tf ({SHIPPED_MODELS}), which "
                        "are never an output: expected a folder of your own")
    return path


def check_output_dir(path: str | os.PathLike, flag: str, link_ok: bool = False) -> Path:
    """UserError naming the path and the reason when the output folder could not be made or written to:
    it exists as a file, lies under a file, or its nearest existing folder is read-only; or it is a link
    or a shipped model (check_output_path). Creates nothing."""
    path = check_output_path(path, flag, link_ok)
    existing = path
    while not os.path.lexists(existing) and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        reason = "exists and is not a folder" if existing == path else f"lies under a file, not a folder ({existing})"
        raise UserError(f"{flag} {path}: {reason} (expected a folder this script can write to)")
    if not os.access(existing, os.W_OK | os.X_OK):
        reason = "on a read-only file system" if _read_only(existing) else "not writable (permission denied)"
        raise UserError(f"{flag} {path}: {reason} (expected a folder this script can write to)")
    return path


def make_output_dir(path: str | os.PathLike, flag: str) -> Path:
    """check_output_dir, then create the folder and its parents; UserError naming the path and the reason
    when the system refuses."""
    path = check_output_dir(path, flag)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"{flag} {path}: {_os_reason(err)} (expected a folder this script can write to)") from None
    return path


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def read_json_object(path: Path, what: str) -> dict | None:
    """A JSON object written by an earlier run, None when the file is not there; UserError naming the file
    when it is not UTF-8 JSON or not an object."""
    if not path.is_file():
        if os.path.lexists(path):
            raise UserError(f"{path}: not a file (expected {what})")
        return None
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as err:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise UserError(f"{path}: not valid JSON ({err}); expected {what}") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: a JSON {type(data).__name__}, expected an object: {what}")
    return data


def _is(value, kind: type | tuple[type, ...]) -> bool:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def check_fields(data: dict, path: Path, fields: Mapping[str, type | tuple[type, ...]]) -> dict:
    """data itself when each of these fields that it has is of its type; UserError naming the field."""
    for name, kind in fields.items():
        if name in data and not _is(data[name], kind):
            names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            raise UserError(f"{path}: {name!r} is {json.dumps(data[name])[:40]}, expected a JSON {names}")
    return data


def claim_folder(folder: Path, meta_file: str, ours: Iterable[Path], script: str,
                 keys: Iterable[str] = ()) -> None:
    """UserError unless every file in `ours` (the files this run would replace or delete, named the
    script's way) is safe to touch: the folder holds the script's meta_file (a JSON object with these
    keys), or none of them exists."""
    meta_path = folder / meta_file
    if meta_path.is_file():
        meta = read_json_object(meta_path, f"the {meta_file} {script} writes")
        missing = [key for key in keys if key not in meta]
        if not missing:
            return
        raise UserError(f"{meta_path}: no {missing[0]!r}, so {script} did not write it: expected a new or "
                        "empty output folder (or one of this script's own)")
    for path in ours:
        if os.path.lexists(path):
            raise UserError(f"{path}: already there, and {folder} has no {meta_file}, so {script} did not "
                            "write it: expected a new or empty output folder (or one of this script's own)")
