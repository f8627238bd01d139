"""The tiny command interpreter behind ``pods/exec``: tar, test and cat on a pod's files.

What pycalrissian and ``kubectl cp`` run in a pod: ``tar cf - PATH...`` (copy out),
``tar xf - -C DIR`` (copy in), ``test -d DIR`` (and ``-f``/``-e``/``-s``, the ``[`` form) and
``cat FILE...``. Paths go through the container's ``PodFiles`` view; anything else exits 127.
"""

from __future__ import annotations

import io
import os
import posixpath
import shutil
import tarfile
from collections.abc import Callable
from pathlib import PurePosixPath

from .pod_files import PodFiles


def run_command(
    argv: list[str], files: PodFiles, read_stdin: Callable[[], bytes], cwd: str = "/"
) -> tuple[int, bytes, bytes]:
    """Run the few commands exec needs (tar, test, cat) against a pod's files.

    Returns (exit code, stdout, stderr); anything else exits 127 as a shell would.
    """
    program = posixpath.basename(argv[0]) if argv else ""
    try:
        if program == "tar":
            return _tar(argv[1:], files, read_stdin, cwd)
        if program in ("test", "["):
            return _test(program, argv[1:], files, cwd)
        if program == "cat":
            return _cat(argv[1:], files, read_stdin, cwd)
    except OSError as error:
        return 1, b"", f"{program}: {error.strerror or error}\n".encode()
    return 127, b"", f"sh: {argv[0] if argv else ''}: unsupported command\n".encode()


def _tar(
    args: list[str], files: PodFiles, read_stdin: Callable[[], bytes], cwd: str
) -> tuple[int, bytes, bytes]:
    """``tar cf - PATH...`` (copy out) and ``tar xf - -C DIR`` (copy in), GNU-style."""
    tokens = list(args)
    if tokens and not tokens[0].startswith("-"):
        tokens[0] = "-" + tokens[0]  # old-style bundled options: "cf"
    mode, archive, directory = "", None, cwd
    absolute, keep_mtime, verbose, members = False, True, False, []
    index = 0

    def value() -> str:
        nonlocal index
        index += 1
        if index >= len(tokens):
            raise _Usage("option requires an argument")
        return tokens[index]

    try:
        while index < len(tokens):
            token = tokens[index]
            if token.startswith("--"):
                option, has_value, given = token.partition("=")
                if option == "--absolute-names":
                    absolute = True
                elif option == "--directory":
                    directory = given if has_value else value()
                elif option == "--file":
                    archive = given if has_value else value()
                elif option == "--touch":
                    keep_mtime = False
                elif option == "--verbose":
                    verbose = True
                elif option not in ("--no-same-owner", "--no-same-permissions", "--overwrite"):
                    raise _Usage(f"unrecognized option '{token}'")
            elif token.startswith("-") and token != "-":
                for letter in token[1:]:
                    if letter in "cxt":
                        mode = letter
                    elif letter == "f":
                        archive = value()
                    elif letter == "C":
                        directory = value()
                    elif letter == "v":
                        verbose = True
                    elif letter == "m":
                        keep_mtime = False
                    elif letter == "P":
                        absolute = True
                    elif letter not in "op":
                        raise _Usage(f"invalid option -- '{letter}'")
            else:
                members.append(token)
            index += 1
        if not mode:
            raise _Usage("You must specify one of the '-ctx' options")
        if archive != "-":
            raise _Usage("only '-' (stdin or stdout) archives are supported here")
    except _Usage as usage:
        return 2, b"", f"tar: {usage}\n".encode()
    directory = posixpath.join(cwd, directory)
    if mode == "c":
        return _tar_create(members, files, directory, absolute, verbose)
    return _tar_extract(read_stdin(), files, directory, absolute, keep_mtime, verbose, mode == "t")


class _Usage(Exception):
    """A command line the interpreter refuses."""


def _tar_create(
    members: list[str], files: PodFiles, directory: str, absolute: bool, verbose: bool
) -> tuple[int, bytes, bytes]:
    buffer, errors, listed = io.BytesIO(), [], []
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as archive:
        for member in members:
            host = files.host(member, directory)
            if not os.path.lexists(host):
                errors.append(f"tar: {member}: Cannot stat: No such file or directory")
                continue
            name = member if absolute else member.lstrip("/")
            if name != member and "tar: Removing leading `/' from member names" not in errors:
                errors.insert(0, "tar: Removing leading `/' from member names")
            archive.add(host, arcname=name or ".", recursive=True)
            listed.append(name)
    status = 2 if any("Cannot stat" in line for line in errors) else 0
    if status:
        errors.append("tar: Exiting with failure status due to previous errors")
    if verbose:
        errors[:0] = listed
    return status, buffer.getvalue(), "".join(line + "\n" for line in errors).encode()


def _tar_extract(
    data: bytes,
    files: PodFiles,
    directory: str,
    absolute: bool,
    keep_mtime: bool,
    verbose: bool,
    list_only: bool,
) -> tuple[int, bytes, bytes]:
    out, errors = [], []
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for member in archive:
                if verbose or list_only:
                    out.append(member.name)
                if not list_only:
                    _extract_member(archive, member, files, directory, absolute, keep_mtime, errors)
    except tarfile.TarError as error:
        errors.append(f"This does not look like a tar archive ({error})")
    status = 2 if errors else 0
    return (
        status,
        "".join(f"{line}\n" for line in out).encode(),
        "".join(f"tar: {e}\n" for e in errors).encode(),
    )


def _extract_member(
    archive: tarfile.TarFile,
    member: tarfile.TarInfo,
    files: PodFiles,
    directory: str,
    absolute: bool,
    keep_mtime: bool,
    errors: list[str],
) -> None:
    name = member.name if absolute else member.name.lstrip("/")
    if ".." in PurePosixPath(name).parts:
        errors.append(f"{member.name}: Member name contains '..'")
        return
    host = files.host(name, directory)
    if member.isdir():
        host.mkdir(parents=True, exist_ok=True)
    elif member.isfile():
        host.parent.mkdir(parents=True, exist_ok=True)
        source = archive.extractfile(member)
        assert source is not None
        with source, open(host, "wb") as target:
            shutil.copyfileobj(source, target)
        os.chmod(host, member.mode & 0o777 or 0o644)
        if keep_mtime:
            os.utime(host, (member.mtime, member.mtime))
    else:
        errors.append(f"{member.name}: only files and folders are supported here")


def _test(program: str, args: list[str], files: PodFiles, cwd: str) -> tuple[int, bytes, bytes]:
    """``test -d/-f/-e/-s PATH`` and the ``[ ... ]`` form (kubectl cp checks folders so)."""
    if program == "[":
        if not args or args[-1] != "]":
            return 2, b"", b"[: missing ']'\n"
        args = args[:-1]
    if len(args) == 2 and args[0] in ("-d", "-f", "-e", "-s"):
        host = files.host(args[1], cwd)
        checks = {
            "-d": host.is_dir,
            "-f": host.is_file,
            "-e": host.exists,
            "-s": lambda: host.is_file() and host.stat().st_size > 0,
        }
        return (0 if checks[args[0]]() else 1), b"", b""
    if len(args) <= 1:
        return (0 if args and args[0] else 1), b"", b""
    return 2, b"", f"{program}: unsupported expression: {' '.join(args)}\n".encode()


def _cat(
    args: list[str], files: PodFiles, read_stdin: Callable[[], bytes], cwd: str
) -> tuple[int, bytes, bytes]:
    out, errors = [], []
    for name in args or ["-"]:
        if name == "-":
            out.append(read_stdin())
            continue
        host = files.host(name, cwd)
        if host.is_dir():
            errors.append(f"cat: {name}: Is a directory\n")
        elif host.is_file():
            out.append(host.read_bytes())
        else:
            errors.append(f"cat: {name}: No such file or directory\n")
    return (1 if errors else 0), b"".join(out), "".join(errors).encode()
