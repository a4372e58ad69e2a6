"""Shadow and canary rollouts in SQL: start one beside the released (live) version, promote its candidate,
roll it back; each one transaction with its audit row.

The rules, checked in the write transaction:

- a rollout needs a released version of the model to compare against, and a candidate that is neither the
  released version, retired nor stale (a rollout takes no waiver: revalidate or retrain first), whose pins
  are on versions that are or were released (as for a release);
- one rollout per model at a time: a second candidate is refused; the same candidate may change mode,
  share or stickiness (the old row ends with outcome ``changed``);
- while it runs, a plain ``release`` of that model, or ``retire`` of its live or candidate version, is
  refused (:func:`~cascade_registry.sql_versions.refuse_during_rollout`);
- ``promote`` is a release of the candidate (every cascade rule of
  :mod:`cascade_registry.sql_release` applies, waiver included) that ends the rollout; ``rollback`` ends a
  rollout in progress, or, right after a promote, releases the version the promote replaced again.

Downstream models (model consumers pinned to this model) keep composing the version they are pinned to,
whatever the rollout does: a rollout routes direct callers only; the pin is the cascade's contract.
"""

from __future__ import annotations

from sqlalchemy import Connection, Row, insert, select, update

from cascade_registry.artifacts import ModelRef
from cascade_registry.entities import ModelVersionInfo, RolloutInfo
from cascade_registry.errors import CascadeBlockedError, ConflictError, GateError
from cascade_registry.records import active_rollouts, append_audit, now, rollout_from_row, set_status
from cascade_registry.schema import model_versions, rollouts
from cascade_registry.sql_graph import CascadeRows, load_cascade
from cascade_registry.sql_release import ReleaseOps, Waiver, check_pins_live
from cascade_registry.sql_versions import version_row

__all__ = ["RolloutOps", "pinned_downstream"]

mv = model_versions
_CANDIDATE = ("registered", "gated_passed", "gated_failed", "superseded")


def pinned_downstream(cascade: CascadeRows, name: str) -> list[str]:
    """Released downstream versions pinned to some version of ``name``: they keep composing that version."""
    return sorted(
        f"{c}:{cv} (pinned to {name}:{uv})"
        for c, cv, up, uv in cascade.pins
        if up == name and cascade.status.get((c, cv), ("", False))[0] == "released"
    )


def _live_version(conn: Connection, name: str) -> int | None:
    q = select(mv.c.version).where(mv.c.name == name, mv.c.status == "released")
    return conn.execute(q).scalar()


def _end(conn: Connection, row: Row, outcome: str, actor: str) -> None:
    conn.execute(
        update(rollouts)
        .where(rollouts.c.id == row.id)
        .values(ended_at=now(), ended_by=actor, outcome=outcome)
    )


def _info(conn: Connection, rollout_id: int) -> RolloutInfo:
    return rollout_from_row(conn.execute(select(rollouts).where(rollouts.c.id == rollout_id)).one())


class RolloutOps(ReleaseOps):
    """Mixed into :class:`~cascade_registry.sql_store.SqlRegistryStore`."""

    def start_rollout(
        self, ref: ModelRef, mode: str, share: float, sticky: str, gate_sha256: str, actor: str
    ) -> RolloutInfo:
        def op(conn: Connection) -> RolloutInfo:
            row = version_row(conn, ref)
            cascade = load_cascade(conn)
            live = self._check_candidate(conn, row, ref, gate_sha256, cascade)
            current = active_rollouts(conn, ref.name).get(ref.name)
            if current is not None:
                if current.candidate_version != ref.version:
                    raise ConflictError(
                        f"refused: {ref.name} already has a {current.mode} rollout of "
                        f"{ref.name}:{current.candidate_version} in progress",
                        "finish it first: 'lockgate registry promote "
                        f"{ref.name}:{current.candidate_version}' or 'lockgate registry rollback {ref.name}'",
                    )
                if (current.mode, current.share, current.sticky) == (mode, share, sticky):
                    raise ConflictError(f"{ref} is already in a {mode} rollout like this one")
                _end(conn, current, "changed", actor)
            if row.status in ("registered", "gated_failed"):
                set_status(
                    conn, row.id, row.status, "gated_passed", actor, "passing gate report bound to sha256"
                )
            new_id = conn.execute(
                insert(rollouts).values(
                    name=ref.name,
                    live_version=live,
                    candidate_version=ref.version,
                    mode=mode,
                    share=share,
                    sticky=sticky,
                    started_at=now(),
                    started_by=actor,
                )
            ).inserted_primary_key[0]
            downstream = pinned_downstream(cascade, ref.name)
            details = {
                "live": f"{ref.name}:{live}",
                "share": share,
                "sticky": sticky,
                "sha256": row.onnx_sha256,
            }
            append_audit(conn, actor, mode, str(ref), {**details, "downstream_keep_pins": downstream})
            return _info(conn, new_id)

        return self.db.write(op)

    @staticmethod
    def _check_candidate(
        conn: Connection, row: Row, ref: ModelRef, gate_sha256: str, cascade: CascadeRows
    ) -> int:
        """The live version a rollout of ``ref`` is compared with; raises why ``ref`` cannot be one."""
        if row.onnx_sha256 != gate_sha256:
            raise GateError(
                f"the passing gate report is for sha256 {gate_sha256[:12]}…, but {ref} was registered "
                f"with {row.onnx_sha256[:12]}…",
                f"run 'lockgate check {row.bundle_path}' again",
            )
        live = _live_version(conn, ref.name)
        if row.status == "released":
            raise ConflictError(f"{ref} is already the released version", "roll out another version")
        if row.stale:
            raise CascadeBlockedError(
                f"refused: {ref} is stale ({row.stale_reason}); a rollout takes no waiver",
                "revalidate or retrain it against the released upstream first",
                [str(ref)],
            )
        if row.status not in _CANDIDATE:
            raise ConflictError(f"{ref} is {row.status}", "roll out a gated version")
        if live is None:
            raise ConflictError(
                f"{ref.name} has no released version for {ref} to be compared against",
                f"release it the normal way: 'lockgate registry release {ref}'",
            )
        check_pins_live(ref, cascade)
        return live

    def promote_rollout(
        self, ref: ModelRef, gate_sha256: str, waiver: Waiver | None, actor: str
    ) -> tuple[RolloutInfo, ModelVersionInfo]:
        """Release the candidate of the rollout in progress and end it (outcome ``promoted``)."""

        def op(conn: Connection) -> tuple[RolloutInfo, ModelVersionInfo]:
            current = active_rollouts(conn, ref.name).get(ref.name)
            if current is None or current.candidate_version != ref.version:
                doing = (
                    f" (in progress: {current.mode} of {ref.name}:{current.candidate_version})"
                    if current
                    else ""
                )
                raise ConflictError(
                    f"no rollout of {ref} is in progress{doing}",
                    f"start one with 'lockgate registry release {ref} --shadow' (or --canary 10%), "
                    f"or release it directly",
                )
            used: list[str] = []
            info = self._release_one(conn, ref, gate_sha256, waiver, used, actor)
            if waiver is not None and not used:
                raise CascadeBlockedError(
                    f"nothing to waive: {ref} can be promoted without a waiver", "promote without --waive", []
                )
            _end(conn, current, "promoted", actor)
            append_audit(conn, actor, "promote", str(ref), {"previous": f"{ref.name}:{current.live_version}"})
            return _info(conn, current.id), info

        return self.db.write(op)

    def end_rollout(self, name: str, actor: str) -> RolloutInfo:
        """Stop the rollout of ``name`` in progress: the live version answers everything again."""

        def op(conn: Connection) -> RolloutInfo:
            current = active_rollouts(conn, name).get(name)
            if current is None:
                raise ConflictError(
                    f"no rollout of {name} is in progress", "see 'lockgate registry rollout NAME'"
                )
            _end(conn, current, "rolled_back", actor)
            append_audit(
                conn,
                actor,
                "rollback",
                f"{name}:{current.candidate_version}",
                {"mode": current.mode, "live": f"{name}:{current.live_version}"},
            )
            return _info(conn, current.id)

        return self.db.write(op)

    def undo_promote(self, promoted: RolloutInfo, gate_sha256: str, actor: str) -> RolloutInfo:
        """Release ``promoted.live`` again (the version its promote replaced), while the promoted candidate is
        still the released version and no other rollout started; the rollout's outcome becomes rolled_back."""

        def op(conn: Connection) -> RolloutInfo:
            name = promoted.model
            last = conn.execute(
                select(rollouts).where(rollouts.c.name == name).order_by(rollouts.c.id.desc()).limit(1)
            ).one()
            if (
                last.outcome != "promoted"
                or last.candidate_version != promoted.candidate.version
                or _live_version(conn, name) != last.candidate_version
            ):
                raise ConflictError(
                    f"nothing to roll back: {name} changed since {promoted.candidate} was promoted",
                    f"release the version you want: 'lockgate registry release {promoted.live}'",
                )
            self._release_one(conn, promoted.live, gate_sha256, None, [], actor)
            conn.execute(update(rollouts).where(rollouts.c.id == last.id).values(outcome="rolled_back"))
            append_audit(
                conn, actor, "rollback", str(promoted.live), {"undoes_promote_of": str(promoted.candidate)}
            )
            return _info(conn, last.id)

        return self.db.write(op)

    def rollouts(self, name: str, active_only: bool = False) -> list[RolloutInfo]:
        """The rollouts of ``name``, newest first."""
        q = select(rollouts).where(rollouts.c.name == name).order_by(rollouts.c.id.desc())
        if active_only:
            q = q.where(rollouts.c.ended_at.is_(None))
        return self.db.read(lambda c: [rollout_from_row(r) for r in c.execute(q)])
