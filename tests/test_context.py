"""AuditContext's one seeding convention: ``ctx.rng(salt)``, and ``ctx.seed_for(salt)`` for what
takes an int seed; salts are independent, a run's seed reproduces them."""

from __future__ import annotations

from audit.config import AuditConfig
from audit.core.context import SEED_BOUND, AuditContext


def _ctx(seed: int) -> AuditContext:
    return AuditContext(config=AuditConfig(model="m", data="d.csv", seed=seed), target=None, data=None,
                        progress_enabled=False)


def test_seed_for_is_the_int_drawn_from_the_salted_generator() -> None:
    ctx = _ctx(0)
    # what fairness's and (before) privacy's private helpers computed, so switching keeps numbers
    assert ctx.seed_for("privacy.blind") == int(ctx.rng("privacy.blind").integers(SEED_BOUND))
    assert ctx.seed_for("a") == _ctx(0).seed_for("a")


def test_seeds_differ_by_salt_and_by_run_seed() -> None:
    seeds = {_ctx(s).seed_for(salt) for s in (0, 1) for salt in ("performance.accuracy", "performance.macro_f1")}
    assert len(seeds) == 4 and all(0 <= x < SEED_BOUND for x in seeds)
