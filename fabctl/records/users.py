"""Users, roles, credentials and Part 11-style signatures.

Credentials are stored only as ``hashlib.scrypt`` (random 16-byte salt, n=2**14, r=8, p=1, 32 bytes; the
parameters are stored with each hash so they can be raised later) and compared with ``hmac.compare_digest``.

Bootstrap: while the ``users`` table is empty the first user may be added by any operator and must be an
``admin``; every later ``user add`` needs an existing admin's id and credential.

A signature (21 CFR 11.50) records the user id, the UTC time, the meaning (``approval``) and the sha256 of
the canonical JSON of the record it signs; the signer re-enters the credential at signing. Signatures are
append-only rows in ``signatures`` and are also carried by the trace event of what they sign.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from fabctl.db import Database
from fabctl.errors import CheckFailed, InputError

ROLES = ("technician", "qa", "admin")
USER_RE = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
KDF = "scrypt"
KDF_N, KDF_R, KDF_P, KDF_LEN = 2**14, 8, 1, 32
MIN_CREDENTIAL = 8


@dataclass(frozen=True)
class User:
    user_id: str
    role: str
    created_utc: str
    created_by: str


def _derive(credential: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(credential.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024,
                          dklen=KDF_LEN)


def hash_credential(credential: str) -> tuple[str, int, int, int, str, str]:
    """``(kdf, n, r, p, salt_hex, hash_hex)`` for a new credential."""
    salt = secrets.token_bytes(16)
    return KDF, KDF_N, KDF_R, KDF_P, salt.hex(), _derive(credential, salt, KDF_N, KDF_R, KDF_P).hex()


def check_user_id(user_id: str) -> str:
    if not USER_RE.fullmatch(user_id):
        raise InputError(f"user id {user_id[:40]!r} is not valid: use [a-z0-9][a-z0-9._-], at most 64",
                         hint="a pseudonymous staff id such as qa-002, never a person's name")
    return user_id


def get(cur, user_id: str) -> User | None:
    r = cur.execute("SELECT user_id, role, created_utc, created_by FROM users WHERE user_id = ?",
                    (user_id,)).fetchone()
    return User(*r) if r else None


def list_users(db: Database) -> list[User]:
    with db.read() as cur:
        rows = cur.execute("SELECT user_id, role, created_utc, created_by FROM users ORDER BY user_id").fetchall()
    return [User(*r) for r in rows]


def _verify(cur, user_id: str, credential: str) -> bool:
    r = cur.execute("SELECT kdf, kdf_n, kdf_r, kdf_p, salt_hex, hash_hex FROM users WHERE user_id = ?",
                    (user_id,)).fetchone()
    if r is None or r[0] != KDF:
        # spend the same time as a real check so a missing user is not told apart by timing
        _derive(credential, b"0" * 16, KDF_N, KDF_R, KDF_P)
        return False
    got = _derive(credential, bytes.fromhex(r[4]), int(r[1]), int(r[2]), int(r[3]))
    return hmac.compare_digest(got, bytes.fromhex(r[5]))


def add_user(db: Database, user_id: str, role: str, credential: str, actor: str,
             admin_id: str | None = None, admin_credential: str | None = None) -> User:
    """Add a user. The very first user must be an admin; later users need an admin's id and credential."""
    check_user_id(user_id)
    if role not in ROLES:
        raise InputError(f"role {role!r} is not one of {', '.join(ROLES)}")
    if len(credential) < MIN_CREDENTIAL:
        raise InputError(f"credential is too short ({len(credential)} characters, at least {MIN_CREDENTIAL})",
                         hint="choose a longer passphrase")
    now = datetime.now(UTC).isoformat(timespec="microseconds")
    with db.write() as cur:
        first = cur.execute("SELECT COUNT(*) FROM users").fetchone()[0] == 0
        if first and role != "admin":
            raise CheckFailed(f"the first user must be an admin (got role {role!r})",
                              hint=f"`fabctl user add ID --role admin` first, then add {role} users as that admin")
        if not first:
            if not admin_id:
                raise CheckFailed("adding a user needs an admin: none named",
                                  hint="pass --by ADMIN_ID (credential from FABCTL_ADMIN_CREDENTIAL or prompted)")
            admin = get(cur, admin_id)
            if admin is None or not _verify(cur, admin_id, admin_credential or ""):
                raise CheckFailed(f"admin {admin_id!r}: unknown user or wrong credential",
                                  hint="check the admin id and credential")
            if admin.role != "admin":
                raise CheckFailed(f"user {admin_id!r} has role {admin.role}; adding users needs role admin")
        if get(cur, user_id) is not None:
            raise InputError(f"user {user_id!r} already exists", hint="user ids are never reused")
        kdf, n, r, p, salt, h = hash_credential(credential)
        created_by = actor if first else str(admin_id)
        cur.execute(
            "INSERT INTO users (user_id, role, kdf, kdf_n, kdf_r, kdf_p, salt_hex, hash_hex, created_utc,"
            " created_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (user_id, role, kdf, n, r, p, salt, h, now, created_by),
        )
    return User(user_id, role, now, created_by)


def canonical_sha256(record: dict) -> str:
    """sha256 of a record's canonical JSON (sorted keys, no spaces): what a signature is bound to."""
    doc = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(doc.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Signature:
    signature_id: int
    user_id: str
    role: str
    meaning: str
    subject: str
    signed_utc: str
    record_sha256: str


def authorise(cur, user_id: str, credential: str, roles: tuple[str, ...]) -> tuple[User | None, str | None]:
    """``(user, None)`` when ``user_id`` exists, holds one of ``roles`` and ``credential`` matches;
    otherwise ``(user_or_None, reason)``. The role is checked first so a technician is not prompted twice."""
    user = get(cur, user_id)
    if user is None:
        return None, f"user {user_id!r} is not registered"
    if user.role not in roles:
        return user, f"user {user_id!r} has role {user.role}; this signature needs role {' or '.join(roles)}"
    if not _verify(cur, user_id, credential):
        return user, f"user {user_id!r}: the credential did not match"
    return user, None


def role_of(db: Database, user_id: str) -> str | None:
    with db.read() as cur:
        u = get(cur, user_id)
    return u.role if u else None


def sign(cur, user: User, meaning: str, subject: str, record: dict, signed_utc: str) -> Signature:
    """Store a signature over ``record`` inside the caller's write transaction (after ``authorise``)."""
    sha = canonical_sha256(record)
    sid = cur.execute("SELECT COALESCE(MAX(signature_id), 0) + 1 FROM signatures").fetchone()[0]
    cur.execute(
        "INSERT INTO signatures (signature_id, user_id, meaning, subject, signed_utc, record_sha256, record)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (sid, user.user_id, meaning, subject, signed_utc, sha,
         json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))),
    )
    return Signature(sid, user.user_id, user.role, meaning, subject, signed_utc, sha)
