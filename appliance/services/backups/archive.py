"""The archive file: one tar of named parts (manifest.json first), encrypted as a whole with age.

Writing streams the tar through the encryptor (a pipe and a thread: nothing is held in memory, no
plaintext copy of the archive touches the disk). Reading decrypts and unpacks into a private directory,
accepting only plain file names it expects, and checks every part against the manifest's SHA-256 and
size, so that a damaged or altered archive is refused before anything is applied. An admin can also
open one by hand: ``age --decrypt -i backup.key FILE | tar -x``.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

import pyrage

from appliance.errors import InvalidInput

MANIFEST = "manifest.json"
_CHUNK = 1 << 20

#: Called with (bytes done, bytes in all) while an archive is written or read.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Part:
    """A file to put in the archive under ``name`` (a relative POSIX path)."""

    name: str
    path: Path


def checksum(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


class _HashingWriter(io.BufferedIOBase):
    """The archive file being written, hashed on the way (the summary records the archive's SHA-256)."""

    def __init__(self, target: IO[bytes]):
        super().__init__()
        self.target = target
        self.digest = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self.target.write(view)
        self.digest.update(view)
        self.size += len(view)
        return len(view)


class _Counted(io.BufferedIOBase):
    """A file as the tar or the decryptor reads it, reporting the bytes read."""

    def __init__(self, source: IO[bytes], seen: Callable[[int], None]):
        super().__init__()
        self.source = source
        self.seen = seen

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        data = self.source.read(-1 if size is None else size)
        self.seen(len(data))
        return data

    def read1(self, size: int = -1) -> bytes:
        return self.read(size if size >= 0 else _CHUNK)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def write(
    target: Path,
    manifest: dict[str, Any],
    parts: Sequence[Part],
    recipient: pyrage.x25519.Recipient,
    progress: Progress | None = None,
) -> tuple[int, str]:
    """Write the archive to ``target`` (through ``<target>.part``, synced, then renamed) and return its
    size and SHA-256. ``manifest`` gets ``parts``: name -> {sha256, size} of each part."""
    manifest = {**manifest, "parts": {}}
    for part in parts:
        digest, size = checksum(part.path)
        manifest["parts"][part.name] = {"sha256": digest, "size": size}
    document = json.dumps(manifest, indent=2, sort_keys=True).encode()
    total = sum(entry["size"] for entry in manifest["parts"].values())
    temporary = target.with_name(target.name + ".part")
    read_end, write_end = os.pipe()
    failure: list[BaseException] = []

    done = 0

    def seen(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(done, total)

    def produce() -> None:
        try:
            with os.fdopen(write_end, "wb") as pipe, tarfile.open(fileobj=pipe, mode="w|") as tar:
                _add_bytes(tar, MANIFEST, document)
                for part in parts:
                    info = tarfile.TarInfo(part.name)
                    info.size = manifest["parts"][part.name]["size"]
                    info.mode = 0o600
                    with part.path.open("rb") as source:
                        tar.addfile(info, _Counted(source, seen))
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)

    producer = threading.Thread(target=produce, name="archive-writer", daemon=True)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(read_end, "rb") as source, os.fdopen(fd, "wb") as out:
            producer.start()
            sink = _HashingWriter(out)
            pyrage.encrypt_io(source, sink, [recipient])
            producer.join()
            out.flush()
            os.fsync(out.fileno())
        if failure:
            raise failure[0]
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return sink.size, sink.digest.hexdigest()


def read(
    archive: Path,
    identities: Sequence[pyrage.x25519.Identity],
    into: Path,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Decrypt ``archive`` and unpack its parts into the directory ``into`` (which must exist, private),
    check each against the manifest, and return the manifest. A wrong key, a damaged or truncated file, a
    part missing, extra or altered is an InvalidInput naming the archive; nothing outside ``into`` is
    written."""
    total = archive.stat().st_size
    read_end, write_end = os.pipe()
    failure: list[BaseException] = []

    def decrypt() -> None:
        try:
            with archive.open("rb") as source, os.fdopen(write_end, "wb") as pipe:
                counted = _Counted(source, _progress_of(progress, total))
                pyrage.decrypt_io(counted, pipe, list(identities))
        except BaseException as exc:  # handed to the caller below
            failure.append(exc)

    worker = threading.Thread(target=decrypt, name="archive-reader", daemon=True)
    worker.start()
    manifest: dict[str, Any] | None = None
    try:
        with os.fdopen(read_end, "rb") as pipe:
            try:
                manifest = _unpack(pipe, into, archive)
            finally:
                # Drain what is left, so that the decryptor finishes and reports a damaged tail.
                while pipe.read(_CHUNK):
                    pass
    except (tarfile.TarError, EOFError) as exc:
        worker.join()
        raise _refused(archive, failure, f"it is not a complete archive ({exc})") from None
    worker.join()
    if failure or manifest is None:
        raise _refused(archive, failure, "it is not an archive of this appliance")
    return manifest


def _progress_of(progress: Progress | None, total: int) -> Callable[[int], None]:
    done = 0

    def seen(count: int) -> None:
        nonlocal done
        done += count
        if progress is not None:
            progress(min(done, total), total)

    return seen


def _refused(archive: Path, failure: list[BaseException], otherwise: str) -> InvalidInput:
    reason = otherwise
    if failure:
        error = failure[0]
        if "No matching keys" in str(error):
            reason = "none of the backup key's identities opens it (a wrong key)"
        elif (
            isinstance(error, OSError) and error.errno is not None and not isinstance(error, BrokenPipeError)
        ):
            reason = f"it cannot be read ({error.strerror})"
        else:
            reason = f"it is damaged or truncated ({error or type(error).__name__})"
    return InvalidInput(f"cannot read {archive}: {reason}", details={"file": str(archive)})


def _unpack(stream: IO[bytes], into: Path, archive: Path) -> dict[str, Any]:
    manifest: dict[str, Any] | None = None
    seen: set[str] = set()
    with tarfile.open(fileobj=stream, mode="r|") as tar:
        for member in tar:
            name = _safe_name(member, archive)
            source = tar.extractfile(member)
            assert source is not None
            if name == MANIFEST:
                manifest = json.loads(source.read(1 << 24))
                continue
            if manifest is None or name not in manifest.get("parts", {}):
                raise InvalidInput(f"{archive} holds an unexpected part {name!r}", details={"part": name})
            expected = manifest["parts"][name]
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            digest, size = hashlib.sha256(), 0
            with open(target, "xb", opener=_private) as out:
                while chunk := source.read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
            if digest.hexdigest() != expected["sha256"] or size != expected["size"]:
                raise InvalidInput(
                    f"cannot read {archive}: its part {name} does not match the manifest's checksum "
                    "(the archive was altered or damaged)",
                    details={"part": name},
                )
            seen.add(name)
    if manifest is None:
        raise InvalidInput(f"{archive} has no manifest: it is not an archive of this appliance")
    missing = sorted(set(manifest["parts"]) - seen)
    if missing:
        raise InvalidInput(f"cannot read {archive}: parts missing: {', '.join(missing)}")
    return manifest


def _safe_name(member: tarfile.TarInfo, archive: Path) -> str:
    path = PurePosixPath(member.name)
    if not member.isfile() or path.is_absolute() or ".." in path.parts or not path.parts:
        raise InvalidInput(f"{archive} holds an entry that is not a plain file: {member.name!r}")
    return str(path)


def _private(path: str, flags: int) -> int:
    return os.open(path, flags, 0o600)


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


@contextmanager
def private_directory(parent: Path, prefix: str) -> Iterator[Path]:
    """A fresh directory readable by its owner only under ``parent``, removed afterwards with its content."""
    import shutil
    import tempfile

    parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
