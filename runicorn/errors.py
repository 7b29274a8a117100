"""The one exception tree. Every message names what went wrong and ends with the next step."""
from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_NOT_A_REPO = 3
EXIT_LOCKED = 4
EXIT_INTEGRITY = 5
EXIT_INTERRUPTED = 130


class RunicornError(Exception):
    """Root of every error Runicorn raises on purpose; carries its exit code."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class UsageError(RunicornError):
    exit_code = EXIT_USAGE


class NotAGitRepoError(RunicornError):
    exit_code = EXIT_NOT_A_REPO

    def __init__(self, path):
        super().__init__(f"{path} is not inside a git repository; run `git init` first")


class NotARunicornRepoError(RunicornError):
    exit_code = EXIT_NOT_A_REPO

    def __init__(self, path):
        super().__init__(f"{path} is not a Runicorn repository; run `runicorn init` first")


class LockTimeoutError(RunicornError):
    exit_code = EXIT_LOCKED

    def __init__(self, lock_path, timeout: float):
        super().__init__(
            f"repository is locked by another Runicorn command (waited {timeout:g} s on {lock_path}); "
            "wait for it to finish, or raise core.lock_timeout"
        )


class ConfigError(RunicornError):
    """A config file or value is invalid."""


class UnknownConfigKeyError(ConfigError):
    def __init__(self, key: str, source: str):
        super().__init__(f"unknown config key '{key}' in {source}; see `runicorn config list` for valid keys")


class PointerError(RunicornError):
    """A pointer file is malformed or hostile; nothing was written."""

    def __init__(self, path, reason: str):
        super().__init__(f"invalid pointer {path}: {reason}; fix or restore it with `git checkout -- {path}`")


class ManifestError(RunicornError):
    """A directory manifest is malformed or hostile."""

    exit_code = EXIT_INTEGRITY

    def __init__(self, oid: str, reason: str):
        super().__init__(f"invalid directory manifest {oid[:12]}: {reason}; run `runicorn verify --cache`")


class UnsafePathError(RunicornError):
    def __init__(self, path, reason: str):
        super().__init__(f"refusing path {path!r}: {reason}; use a plain relative path inside the repository")


class PathNotTrackedError(RunicornError):
    def __init__(self, path):
        super().__init__(f"{path} is not tracked by Runicorn; track it with `runicorn add {path}`")


class ObjectMissingError(RunicornError):
    def __init__(self, oids, what: str = "the cache"):
        oids = sorted(oids)
        shown = ", ".join(o[:12] for o in oids[:5]) + (" …" if len(oids) > 5 else "")
        super().__init__(
            f"{len(oids)} object(s) missing from {what} ({shown}); run `runicorn pull` (or `runicorn fetch`) first"
        )
        self.oids = oids


class CorruptObjectError(RunicornError):
    """An object's content does not match its name."""

    exit_code = EXIT_INTEGRITY

    def __init__(self, oid: str, actual: str, where: str = "the cache"):
        super().__init__(
            f"object {oid[:12]} in {where} is corrupt (content hashes to {actual[:12]}); it was moved to "
            "quarantine — restore it with `runicorn fetch` or re-add the original data"
        )
        self.oid = oid


class WorkspaceChangedError(RunicornError):
    def __init__(self, paths):
        paths = sorted(paths)
        shown = ", ".join(paths[:5]) + (" …" if len(paths) > 5 else "")
        super().__init__(
            f"uncommitted changes would be overwritten in {shown}; "
            "run `runicorn add`/`runicorn commit` to keep them, or `--force` to discard them"
        )
        self.paths = paths


class CheckoutError(RunicornError):
    def __init__(self, failures: dict):
        shown = "; ".join(f"{p}: {why}" for p, why in sorted(failures.items())[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        super().__init__(f"checkout failed for {len(failures)} path(s): {shown}{more}; fix them and rerun `runicorn checkout`")
        self.failures = failures


class RevisionError(RunicornError):
    def __init__(self, rev: str):
        super().__init__(f"unknown git revision {rev!r}; check it with `git log --oneline`")


class GitError(RunicornError):
    """git could not be read (unreadable ref, corrupt object)."""


class GcRefusedError(RunicornError):
    def __init__(self, reason: str):
        super().__init__(f"gc stopped before deleting anything: {reason}; repair it and rerun, "
                         "or narrow the scope (e.g. --workspace)")


class RemoteError(RunicornError):
    """A remote could not be reached or refused an operation."""


class RemoteObjectCorruptError(RunicornError):
    exit_code = EXIT_INTEGRITY

    def __init__(self, oids, remote: str):
        oids = sorted(oids)
        shown = ", ".join(o[:12] for o in oids[:5]) + (" …" if len(oids) > 5 else "")
        super().__init__(
            f"{len(oids)} object(s) on remote {remote!r} are corrupt ({shown}): their content does not match "
            f"their name, so they were not stored — repair the remote with `runicorn push -r {remote}` "
            "from a clone that has the data (push overwrites objects found corrupt)"
        )
        self.oids = oids


class DiskFullError(RunicornError):
    def __init__(self, path):
        super().__init__(f"no space left on device (or a disk error) while writing {path}; "
                         "nothing was changed — free space and rerun")


class VerifyError(RunicornError):
    exit_code = EXIT_INTEGRITY

    def __init__(self, corrupt: int, missing: int, remote: str | None = None):
        fix = ("run `runicorn fetch` to restore them from a remote, or re-add the original data" if remote is None
               else f"repair the remote with `runicorn push --full -r {remote}` from a clone that has the data "
                    "(push overwrites objects found corrupt)")
        super().__init__(f"verify found {corrupt} corrupt and {missing} missing object(s); {fix}")


class PageNotFoundError(RunicornError):
    """The viewer was asked for an id or path that is malformed or does not exist (HTTP 404)."""

    def __init__(self, what: str, path: str):
        shown = path if len(path) <= 80 else path[:77] + "..."
        super().__init__(f"no {what} named {shown!r}; go back to the list and pick one that exists")
        self.what, self.path = what, path


class ViewerBindError(RunicornError):
    exit_code = EXIT_USAGE

    def __init__(self, where: str, reason: str):
        super().__init__(f"the viewer cannot listen on {where} ({reason}); "
                         "choose another port with `runicorn viewer --port N`")


# -- artifacts, registry and lineage ------------------------------------------------------------
class ArtifactNameError(RunicornError):
    """An artifact name, type, alias, stage or reference is not valid."""

    exit_code = EXIT_USAGE


class ArtifactNotFoundError(RunicornError):
    """An artifact, version, alias or stage does not exist; the message lists what does."""

    def __init__(self, what: str, known: list[str] = (), hint: str = "list them with `runicorn artifacts list`"):
        shown = ", ".join(known[:20]) + (" …" if len(known) > 20 else "") if known else "none"
        super().__init__(f"{what} does not exist (known: {shown}); {hint}")


class ArtifactManifestError(RunicornError):
    """An artifact manifest or history file is malformed or hostile; nothing was written."""

    def __init__(self, path, reason: str):
        super().__init__(f"invalid artifact file {path}: {reason}; fix or restore it with `git checkout -- {path}`")


class StageTransitionError(RunicornError):
    """A stage move that the registry rules forbid."""

    exit_code = EXIT_USAGE


class ArtifactVerifyError(RunicornError):
    """verify found artifact files or references whose content does not match the manifest."""

    exit_code = EXIT_INTEGRITY

    def __init__(self, ref: str = "artifact", problems: list[str] = ("a mismatch",)):
        shown = "; ".join(problems[:5]) + (" …" if len(problems) > 5 else "")
        super().__init__(f"{ref} failed verification: {shown}; re-log the artifact or restore the data "
                         "(`runicorn fetch` for cached files)")
        self.problems = list(problems)


class RunNotFoundError(RunicornError):
    """A run id that has no run folder (deleted, or never pulled)."""

    def __init__(self, run_id: str):
        super().__init__(f"no run {run_id!r} in this store; see `runicorn runs list` "
                         "(or `runicorn pull --runs` for runs made elsewhere)")
        self.run_id = run_id


# -- git hooks and the merge driver -------------------------------------------------------------
class HookConflictError(RunicornError):
    """install-hooks found a foreign hook and a hook already moved aside under the chained name."""

    def __init__(self, path, where):
        super().__init__(f"{path} is not Runicorn's hook and {where} exists too; merge them into one hook "
                         "by hand (or remove one), then rerun `runicorn install-hooks`")


class UnpushedDataError(RunicornError):
    """pre-push: the commits being pushed name objects that are neither in the cache nor on the remote."""

    def __init__(self, paths, remote: str):
        paths = sorted(paths)
        shown = ", ".join(paths[:5]) + (" …" if len(paths) > 5 else "")
        super().__init__(f"the commits being pushed name data that is not in this cache, so remote {remote!r} "
                         f"cannot get it: {shown}; fetch it (`runicorn fetch --all-commits`) and push again, "
                         "or skip the check with `git push --no-verify`")
        self.paths = paths


class MergeConflictError(RunicornError):
    """The merge driver found files changed differently on both sides; git marks the pointer conflicted."""

    def __init__(self, path, paths):
        paths = sorted(paths)
        shown = ", ".join(paths[:5]) + (" …" if len(paths) > 5 else "")
        super().__init__(f"{path}: {len(paths)} file(s) changed on both sides ({shown}); keep one of the two "
                         f"merged pointers between the conflict markers in {path}, then `git add {path}` "
                         "and run `runicorn checkout`")
        self.paths = paths


class UnresolvedConflictError(RunicornError):
    """A pointer file still holds git's conflict markers (a merge stopped on it)."""

    def __init__(self, path):
        super().__init__(f"{path} is still in merge conflict (it holds git's conflict markers); keep one of "
                         f"the two pointers between the markers (or `git checkout --ours {path}` / "
                         f"`--theirs`), then `git add {path}` and run `runicorn checkout`")
        self.path = path


class MergeDriverError(RunicornError):
    """The merge driver could not read a side (bad pointer, manifest neither cached nor on the remote)."""

    def __init__(self, path, reason: str):
        super().__init__(f"cannot merge {path}: {reason}; run `runicorn fetch --all-branches`, then "
                         "`git merge --abort` and merge again (or resolve the pointer by hand)")
