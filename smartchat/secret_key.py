"""SECRET_KEY: given by the operator, or, on the embedded default only, made once and kept.

Django signs sessions, password-reset links and CSRF tokens with it, so a key anyone can
read (the one an old version shipped) lets anyone forge them. With ``DATABASE_URL`` set a
key must be given; that published key is refused there and whenever ``DEBUG`` is off. The
embedded default (no ``DATABASE_URL``) makes a random key in its data directory on first start.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

from smartchat.env import ConfigError

# Once the built-in default, published with the code: refused wherever a key is required.
PUBLIC_KEYS = frozenset({"django-insecure-development-key-set-SECRET_KEY-in-production"})
HOW_TO_MAKE_ONE = 'python -c "import secrets; print(secrets.token_urlsafe(50))"'
FILE_NAME = "secret_key"


def choose(given: str, *, data_dir: Path, embedded: bool, debug: bool) -> str:
    """The key to run on, or a ConfigError that names SECRET_KEY and says how to make one.

    ``embedded``: no DATABASE_URL. Only there, and only with DEBUG on, is the published key
    still accepted; without a key the embedded default makes its own.
    """
    if given in PUBLIC_KEYS and not (embedded and debug):
        raise _refusal("is the published development key", embedded=embedded)
    if given:
        return given
    if not embedded:
        raise _refusal("is not set", embedded=embedded)
    return kept_in(data_dir / FILE_NAME)


def _refusal(reason: str, *, embedded: bool) -> ConfigError:
    where = "DEBUG off" if embedded else "DATABASE_URL set"
    return ConfigError(
        f"SECRET_KEY {reason}: with {where} Smartchat needs a secret key of its own. "
        f"Make one with {HOW_TO_MAKE_ONE} and set SECRET_KEY to it in the environment."
    )


def kept_in(path: Path) -> str:
    """A random key stored in ``path`` (mode 0600), made by whichever process gets there first.

    Web, worker and scheduler start at the same moment: O_EXCL lets exactly one of them create
    the file, and the others read what it wrote (waiting a moment for it to be written).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_urlsafe(50))
            file.flush()
            os.fsync(file.fileno())
    deadline = time.monotonic() + 5
    while not (key := path.read_text().strip()):
        if time.monotonic() > deadline:
            raise ConfigError(f"{path} is empty: delete it and start again, or set SECRET_KEY.")
        time.sleep(0.05)
    return key
