"""Turns a presented credential (an access token or an API key) into an Actor, on the request's hot path.

An access token is verified without the database: its signature, claims and permissions are in the token,
revocations come from an in-process cache (`RevocationCache`) that loads the sessions ended by other
processes every few seconds, and the tenant's status from `TenantDirectory`. Only an uncertain cache (after
an eviction) asks the database about one session, and a token issued while its account had to change its
password asks whether it still has to (until it has, the API lets it change the password and little else).

An API key is looked up by its public prefix, and its creator's standing in its tenant with it, on every
request: the key acts with its scopes as far as its creator holds them now, and a key whose creator has
left the tenant (or whose account is disabled or gone) is revoked at that moment
(appliance.services.identity.api_keys).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update

from appliance.db import tenancy
from appliance.db.session import Database
from appliance.errors import Forbidden, Unauthenticated
from appliance.models import ApiKey, TenantStatus, User
from appliance.services.access import platform_permissions
from appliance.services.access.actors import Actor, RequestInfo
from appliance.services.access.directory import TenantDirectory, TenantInfo
from appliance.services.common.refresher import Refresher
from appliance.services.identity import api_keys, sessions, tokens
from appliance.services.identity.revocation_cache import RevocationCache

Clock = Callable[[], datetime]
#: Verified access tokens kept in memory per process (a few MB at most).
VERIFIED_TOKENS = 20_000
#: An API key's last_used_at is written at most this often (it is a hint, not an audit record).
LAST_USED_RESOLUTION = timedelta(minutes=1)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Authenticator:
    def __init__(
        self,
        database: Database,
        *,
        signing_key: str,
        issuer: str,
        audience: str,
        access_ttl: timedelta,
        clock: Clock = utc_now,
        sync_interval: timedelta = timedelta(seconds=5),
        tenants: TenantDirectory | None = None,
        refresher: Refresher | None = None,
    ) -> None:
        self._database = database
        self._key = signing_key
        self.issuer = issuer
        self.audience = audience
        self.access_ttl = access_ttl
        self.clock = clock
        self.revocations = RevocationCache(sync_interval=sync_interval, clock=clock)
        self._refresher = refresher
        self.tenants = tenants or TenantDirectory(database, refresher=refresher)
        self._sync_lock = threading.Lock()
        self._verified: dict[str, tokens.AccessClaims] = {}
        self._synced_until: datetime | None = None

    # -- issuing ------------------------------------------------------------------------------------------

    def issue(
        self,
        *,
        user_id: uuid.UUID,
        tenant_id: uuid.UUID | None,
        permissions: frozenset[str],
        session_id: uuid.UUID,
        operator: bool = False,
        must_change_password: bool = False,
    ) -> tuple[str, tokens.AccessClaims]:
        """A signed access token. A tenant's token lists its permissions (``scope``); an operator's carries
        only whether it is read-only (``ro``), from which `_actor` derives the platform permissions: short
        of every platform permission, it is issued read-only (failing closed, never wider). The token of
        an account that must change its password says so (``pwc``)."""
        claims = tokens.new_access_claims(
            subject=user_id,
            tenant_id=tenant_id,
            now=self.clock(),
            ttl=self.access_ttl,
            scopes=() if operator else sorted(permissions),
            operator=operator,
            session_id=session_id,
            read_only=operator and permissions != platform_permissions.ALL,
            password_change=must_change_password,
        )
        return tokens.issue_access_token(
            self._key, claims, issuer=self.issuer, audience=self.audience
        ), claims

    def sessions_ended(self, families: list[uuid.UUID]) -> None:
        """Sessions this process just ended: their access tokens stop working here at once."""
        until = self.clock() + self.access_ttl
        for family in families:
            self.revocations.revoke(tokens.session_revocation_key(family), until)

    # -- verifying ----------------------------------------------------------------------------------------

    def bearer_cached(self, token: str, request: RequestInfo) -> Actor | None:
        """The actor of ``token`` from memory alone, or None when answering needs the database (a
        revocation sync is due, the revocation cache is unsure, the tenant's entry is stale): then call
        `bearer`. Raises like `bearer` for a token that is known to be bad."""
        if self._refresher is not None and self.revocations.sync_due(ahead=0.5):
            self._refresher.submit("revocations", self._sync_revocations)
        if self.revocations.sync_due():
            return None
        claims = self._claims(token)
        if self.revocations.is_revoked(*claims.revocation_keys) is not False:
            return None  # revoked or unsure: `bearer` answers (and says which)
        if claims.password_change:
            return None  # has the password been changed since? `bearer` asks the database
        if claims.tenant_id is not None:
            known, tenant = self.tenants.fresh(claims.tenant_id)
            if not known:
                return None
            return self._actor(claims, self._check_tenant(tenant), request)
        return self._actor(claims, None, request)

    def _claims(self, token: str) -> tokens.AccessClaims:
        """Verified claims, from the cache of tokens already verified (their signature and claims cannot
        change; expiry is checked on every use, revocation by the caller)."""
        now = self.clock()
        claims = self._verified.get(token)
        if claims is None:
            claims = tokens.verify_access_token(
                token, self._key, now=now, issuer=self.issuer, audience=self.audience
            )
            if len(self._verified) >= VERIFIED_TOKENS:
                self._verified.clear()  # a burst of new tokens: start over rather than track recency
            self._verified[token] = claims
        elif now >= claims.expires_at + tokens.LEEWAY:
            raise Unauthenticated("the access token has expired", code="TOKEN_EXPIRED")
        return claims

    def bearer(self, token: str, request: RequestInfo) -> Actor:
        """The actor of a valid access token; Unauthenticated or Forbidden (tenant suspended) otherwise."""
        self._sync_revocations()
        claims = self._claims(token)
        if self._is_revoked(claims):
            raise Unauthenticated("the access token has been revoked", code="TOKEN_REVOKED")
        tenant = self.active_tenant(claims.tenant_id) if claims.tenant_id is not None else None
        return self._actor(claims, tenant, request, must_change_password=self._must_change(claims))

    def _must_change(self, claims: tokens.AccessClaims) -> bool:
        """Whether the account of a token issued with ``pwc`` still has to change its password (one query,
        for such tokens only: they are few, and short-lived)."""
        if not claims.password_change:
            return False
        with self._database.session_scope(write=False) as session:
            flag = session.scalar(select(User.must_change_password).where(User.id == claims.subject))
        return flag is not False  # an account that is gone stays refused

    def _actor(
        self,
        claims: tokens.AccessClaims,
        tenant: TenantInfo | None,
        request: RequestInfo,
        *,
        must_change_password: bool = False,
    ) -> Actor:
        if claims.operator:
            return Actor(
                user_id=claims.subject,
                tenant_id=None,
                permissions=platform_permissions.for_operator(claims.read_only),
                operator=True,
                session_id=claims.session_id,
                request=request,
                must_change_password=must_change_password,
            )
        assert claims.tenant_id is not None
        assert tenant is not None
        return Actor(
            user_id=claims.subject,
            tenant_id=claims.tenant_id,
            permissions=frozenset(claims.scopes),
            session_id=claims.session_id,
            plan=tenant.plan,
            request=request,
            must_change_password=must_change_password,
        )

    def api_key(self, key: str, request: RequestInfo) -> Actor:
        """The actor of a valid, unexpired, unrevoked API key, with its scopes as far as its creator holds
        them now; a key whose creator can do nothing in its tenant any more is revoked here (audited) and
        refused."""
        prefix = tokens.api_key_prefix(key)
        invalid = Unauthenticated("the API key is not valid", code="API_KEY_INVALID")
        if prefix is None:
            raise invalid
        now = self.clock()
        standing = api_keys.UNKNOWN
        with self._database.session_scope(write=False) as session:
            tenancy.set_api_key_prefix(session, prefix)
            row = session.execute(
                select(
                    ApiKey.id,
                    ApiKey.tenant_id,
                    ApiKey.key_hash,
                    ApiKey.scopes,
                    ApiKey.expires_at,
                    ApiKey.revoked_at,
                    ApiKey.last_used_at,
                    ApiKey.created_by,
                ).where(ApiKey.prefix == prefix)
            ).first()
            genuine = row is not None and tokens.verify_api_key(key, row.key_hash)
            if genuine and row is not None and row.revoked_at is None:
                # In the same transaction, now inside the key's tenant: its creator's account and role.
                tenancy.set_tenant(session, row.tenant_id)
                standing = api_keys.standings(session, row.tenant_id, [row.created_by])[row.created_by]
        if row is None or not genuine:
            raise invalid
        if row.revoked_at is not None:
            raise Unauthenticated("the API key has been revoked", code="API_KEY_REVOKED")
        if row.expires_at is not None and now >= row.expires_at:
            raise Unauthenticated("the API key has expired", code="API_KEY_EXPIRED")
        tenant = self.active_tenant(row.tenant_id)
        if standing.gone is not None:
            self._revoke_orphans(
                key_id=row.id,
                tenant_id=row.tenant_id,
                creator=row.created_by,
                reason=standing.gone,
                now=now,
                request=request,
            )
            raise Unauthenticated(
                f"the API key has been revoked: {api_keys.REASONS[standing.gone]}",
                code="API_KEY_REVOKED",
                details={"reason": standing.gone},
            )
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_RESOLUTION:
            self._touch(row.id, row.tenant_id, now)
        return Actor(
            user_id=None,
            tenant_id=row.tenant_id,
            permissions=frozenset(row.scopes) & standing.permissions,
            api_key_id=row.id,
            plan=tenant.plan,
            request=request,
            must_change_password=standing.must_change_password,
            key_creator_id=row.created_by,
            key_scopes=frozenset(row.scopes),
        )

    def _revoke_orphans(
        self,
        *,
        key_id: uuid.UUID,
        tenant_id: uuid.UUID,
        creator: uuid.UUID | None,
        reason: str,
        now: datetime,
        request: RequestInfo,
    ) -> None:
        """Revoke the keys of a creator who can do nothing in the tenant any more (this one among them),
        audited as done by the appliance itself at this request."""
        with self._database.session_scope() as session:
            tenancy.set_tenant(session, tenant_id)
            api_keys.revoke_for_creator(
                session,
                tenant_id=tenant_id,
                creator=creator,
                reason=reason,
                now=now,
                request=request,
                key_id=key_id,
            )

    def active_tenant(self, tenant_id: uuid.UUID) -> TenantInfo:
        """The tenant a credential acts in, if it may act at all."""
        return self._check_tenant(self.tenants.get(tenant_id))

    @staticmethod
    def _check_tenant(tenant: TenantInfo | None) -> TenantInfo:
        if tenant is None or tenant.status == TenantStatus.DELETED:
            raise Unauthenticated("the tenant of this credential no longer exists", code="TENANT_GONE")
        if tenant.status == TenantStatus.SUSPENDED:
            raise Forbidden(
                f"tenant {tenant.slug!r} is suspended",
                code="TENANT_SUSPENDED",
                details={"tenant": tenant.slug},
            )
        return tenant

    def _touch(self, key_id: uuid.UUID, tenant_id: uuid.UUID, now: datetime) -> None:
        with self._database.session_scope() as session:
            tenancy.set_tenant(session, tenant_id)
            session.execute(
                update(ApiKey)
                .where(ApiKey.id == key_id)
                .values(last_used_at=now)
                .execution_options(synchronize_session=False)
            )

    def _is_revoked(self, claims: tokens.AccessClaims) -> bool:
        answer = self.revocations.is_revoked(*claims.revocation_keys)
        if answer is not None:
            return answer
        # The cache evicted something that may name this token: ask the database about its session.
        if claims.session_id is None:
            return False
        with self._database.session_scope(write=False) as session:
            return sessions.family_revoked(session, claims.session_id, user_id=claims.subject)

    def _sync_revocations(self) -> None:
        """Load the sessions other processes ended since the last look (one query every few seconds)."""
        if not self.revocations.sync_due() or not self._sync_lock.acquire(blocking=False):
            return
        try:
            now = self.clock()
            with self._database.session_scope(write=False) as session:
                ended = sessions.revoked_since(session, self._synced_until, now, self.access_ttl)
            for family, revoked_at in ended:
                self.revocations.revoke(tokens.session_revocation_key(family), revoked_at + self.access_ttl)
            # Overlap the next window a little: a transaction that committed late keeps an earlier time.
            self._synced_until = now - timedelta(seconds=30)
            self.revocations.synced(now)
        finally:
            self._sync_lock.release()
