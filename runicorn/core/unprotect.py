"""`runicorn unprotect`: swap linked files for private writable copies before editing in place."""
from __future__ import annotations

import os
import shutil

from runicorn.core.events import NULL, Reporter
from runicorn.core.repo import Repo
from runicorn.storage.fsutil import tmp_name
from runicorn.storage.odb import is_read_only


def unprotect(repo: Repo, paths: list[str], reporter: Reporter = NULL) -> list[str]:
    """Returns the files that were turned into copies. The cache is never modified."""
    done: list[str] = []
    with repo.lock(reporter.info):
        for user_path in paths:
            rel = repo.rel(user_path)
            repo.owner_of(rel)  # raises for a path Runicorn does not track
            target = repo.abspath(rel)
            files = [target] if target.is_file() else sorted(p for p in target.rglob("*") if p.is_file())
            for path in files:
                if _copy_if_linked(repo, path):
                    done.append(path.relative_to(repo.root).as_posix())
    return done


def _copy_if_linked(repo: Repo, path) -> bool:
    st = os.lstat(path)
    if not (path.is_symlink() or st.st_nlink > 1 or is_read_only(st.st_mode)):
        return False
    tmp = tmp_name(path)
    shutil.copyfile(path, tmp)
    os.chmod(tmp, 0o755 if st.st_mode & 0o100 else 0o644)
    os.replace(tmp, path)
    return True
