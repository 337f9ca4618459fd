"""The coordinator's own tables in the bot's PostgreSQL database, versioned.

Every name starts with `coord_`: the store keeps its tables in the same database. Migrations run
at open in one transaction under an advisory lock, so processes started together neither race
nor see half a schema; each step is applied once and recorded in `coord_schema_version`.
"""

from __future__ import annotations

import asyncpg

__all__ = ["LOCK_CLASS", "MIGRATE_KEY", "MIGRATIONS", "migrate"]

# The first half of every two-int advisory lock the coordinator takes ("nkco"): other users of
# the database (the store, extensions) are unlikely to pick the same class id.
LOCK_CLASS = 0x6E6B636F
MIGRATE_KEY = 0  # the second half while migrating (IDENTIFY buckets and scopes use others)

# Budget logic lives in SQL functions: one round trip per take, with the row locked while it
# decides, so concurrent takes from every process are counted exactly once. A take also carries
# the caller's pending corrections, so answers rarely cost a round trip of their own.
#
# A row counts `used` = slots taken in the window + `adjust`, what the server counted that no
# take accounts for (another sender, or a wrong guess of the limit: remaining = limit - seen only
# holds with the right limit). An answer to the k-th take of a window that reports `remaining`
# proves the server had seen lim - remaining requests when only k takes had been granted up to
# it, so adjust >= (lim - remaining) - k. Both sides only grow within a window: keep the maximum.
_CORRECT = """
CREATE FUNCTION coord_correct_budget(
    p_bucket text, p_remaining int, p_reset timestamptz, p_margin float8,
    p_generation bigint, p_ordinal int
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    b coord_nekos_budgets%ROWTYPE;
    t timestamptz := clock_timestamp();
    seen int;
    taken int;
    bound int;
BEGIN
    IF p_reset <= t THEN
        RETURN;  -- a late answer about a window that is over: nothing to learn
    END IF;
    SELECT * INTO b FROM coord_nekos_budgets WHERE bucket = p_bucket FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    seen := b.lim - p_remaining;
    IF b.reset_at + make_interval(secs => p_margin) <= t THEN
        -- Our window is over but the server's runs on: start it from what the server saw.
        b.generation := b.generation + 1;
        b.used := GREATEST(seen, 0);
        b.adjust := b.used;
    ELSE
        taken := b.used - b.adjust;
        -- Without the take's rank (or from an earlier window), assume every take was seen.
        bound := seen - CASE WHEN p_ordinal IS NOT NULL AND p_generation = b.generation
            THEN p_ordinal ELSE taken END;
        IF bound > b.adjust THEN
            b.used := b.used + bound - b.adjust;
            b.adjust := bound;
        END IF;
    END IF;
    UPDATE coord_nekos_budgets
    SET used = b.used, adjust = b.adjust, generation = b.generation, reset_at = p_reset,
        updated_at = t
    WHERE bucket = p_bucket;
END
$$
"""

_TAKE = """
CREATE FUNCTION coord_take_budget(
    p_bucket text, p_limit int, p_window float8, p_process text,
    p_stale float8, p_margin float8, p_guard float8,
    c_remaining int[], c_reset float8[], c_generation bigint[], c_ordinal int[]
) RETURNS TABLE (granted boolean, wait float8, generation bigint, ordinal int)
LANGUAGE plpgsql AS $$
DECLARE
    b coord_nekos_budgets%ROWTYPE;
    t timestamptz := clock_timestamp();
    mine int;
    live int;
    share int;
    half timestamptz;
BEGIN
    INSERT INTO coord_nekos_budgets (bucket, lim, used, adjust, reset_at, generation)
    VALUES (p_bucket, p_limit, 0, 0, '-infinity', 0)  -- over: the first take starts a window
    ON CONFLICT (bucket) DO NOTHING;
    FOR i IN 1 .. coalesce(array_length(c_remaining, 1), 0) LOOP
        PERFORM coord_correct_budget(p_bucket, c_remaining[i], to_timestamp(c_reset[i]),
                                     p_margin, c_generation[i], c_ordinal[i]);
    END LOOP;
    SELECT * INTO b FROM coord_nekos_budgets WHERE bucket = p_bucket FOR UPDATE;
    IF b.reset_at + make_interval(secs => p_margin) <= t THEN
        -- The window is over: a new one starts with this take (answers correct its end).
        b.generation := b.generation + 1;
        b.used := 0;
        b.adjust := 0;
        b.reset_at := t + make_interval(secs => p_window);
        b.lim := GREATEST(p_limit, 1);
    ELSE
        -- Processes learn the limit from what they see remaining, so one that saw a window
        -- already partly spent underestimates it: believe the largest estimate.
        b.lim := GREATEST(b.lim, p_limit, 1);
    END IF;
    SELECT s.used INTO mine FROM coord_nekos_shares AS s
    WHERE s.bucket = p_bucket AND s.process = p_process AND s.generation = b.generation;
    mine := coalesce(mine, 0);  -- nothing taken yet in this window
    SELECT GREATEST(count(*), 1) INTO live
    FROM coord_processes WHERE seen_at > t - make_interval(secs => p_stale);
    share := ceil(b.lim::float8 / live);
    half := b.reset_at - make_interval(secs => p_window / 2);
    IF b.used >= b.lim OR b.reset_at - t < make_interval(secs => p_guard) THEN
        -- Spent; or so close to the end that the request could reach nekos.best in its next
        -- window, which this count would not know about: wait for the next one.
        granted := false;
        wait := extract(epoch FROM b.reset_at - t) + p_margin;
    ELSIF mine >= share AND t < half THEN
        -- Fairness: in a window's first half each live process may use its share; what is
        -- left in the second half is anyone's, so the whole budget can still be spent.
        granted := false;
        wait := extract(epoch FROM half - t);
    ELSE
        granted := true;
        b.used := b.used + 1;
        wait := 0;
        INSERT INTO coord_nekos_shares AS s (bucket, process, generation, used)
        VALUES (p_bucket, p_process, b.generation, 1)
        ON CONFLICT (bucket, process) DO UPDATE
        SET used = CASE WHEN s.generation = EXCLUDED.generation THEN s.used + 1 ELSE 1 END,
            generation = EXCLUDED.generation;
    END IF;
    UPDATE coord_nekos_budgets
    SET lim = b.lim, used = b.used, adjust = b.adjust, reset_at = b.reset_at,
        generation = b.generation, updated_at = t
    WHERE bucket = p_bucket;
    generation := b.generation;
    ordinal := b.used - b.adjust;  -- this take's rank in the window (for its correction)
    RETURN NEXT;
END
$$
"""

# Version 2: windows may slide. After a reset the count is unknown (a fixed window is whole again,
# a sliding one may have freed a single slot), so a new window opens with one take, the probe
# (`probe_at` set), and every other take of every process waits until an answer's correction
# states what the server has left. A probe unanswered after `p_probe_timeout` (its process died,
# its request got no count) is replaced by another.
_CORRECT_V2 = """
CREATE OR REPLACE FUNCTION coord_correct_budget(
    p_bucket text, p_remaining int, p_reset timestamptz, p_margin float8,
    p_generation bigint, p_ordinal int
) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    b coord_nekos_budgets%ROWTYPE;
    t timestamptz := clock_timestamp();
    seen int;
    taken int;
    bound int;
BEGIN
    SELECT * INTO b FROM coord_nekos_budgets WHERE bucket = p_bucket FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF p_reset <= t THEN
        IF b.probe_at IS NOT NULL AND p_generation = b.generation THEN
            -- The probe's answer names a reset already past (a sliding window freed its next
            -- slot meanwhile): end this window, so that the next take probes again.
            UPDATE coord_nekos_budgets SET reset_at = p_reset, probe_at = NULL, updated_at = t
            WHERE bucket = p_bucket;
        END IF;
        RETURN;  -- otherwise a late answer about a window that is over: nothing to learn
    END IF;
    seen := b.lim - p_remaining;
    IF b.reset_at + make_interval(secs => p_margin) <= t THEN
        -- Our window is over but the server's runs on: start it from what the server saw.
        b.generation := b.generation + 1;
        b.used := GREATEST(seen, 0);
        b.adjust := b.used;
    ELSE
        taken := b.used - b.adjust;
        -- Without the take's rank (or from an earlier window), assume every take was seen.
        bound := seen - CASE WHEN p_ordinal IS NOT NULL AND p_generation = b.generation
            THEN p_ordinal ELSE taken END;
        IF bound > b.adjust THEN
            b.used := b.used + bound - b.adjust;
            b.adjust := bound;
        END IF;
    END IF;
    -- The server has stated its count: the window is known, probing is over.
    UPDATE coord_nekos_budgets
    SET used = b.used, adjust = b.adjust, generation = b.generation, reset_at = p_reset,
        probe_at = NULL, updated_at = t
    WHERE bucket = p_bucket;
END
$$
"""

_TAKE_V2 = """
CREATE FUNCTION coord_take_budget(
    p_bucket text, p_limit int, p_window float8, p_process text,
    p_stale float8, p_margin float8, p_guard float8,
    c_remaining int[], c_reset float8[], c_generation bigint[], c_ordinal int[],
    p_probe_timeout float8, p_probe_poll float8
) RETURNS TABLE (granted boolean, wait float8, generation bigint, ordinal int, probe boolean)
LANGUAGE plpgsql AS $$
DECLARE
    b coord_nekos_budgets%ROWTYPE;
    t timestamptz := clock_timestamp();
    mine int;
    live int;
    share int;
    half timestamptz;
BEGIN
    INSERT INTO coord_nekos_budgets (bucket, lim, used, adjust, reset_at, generation)
    VALUES (p_bucket, p_limit, 0, 0, '-infinity', 0)  -- over: the first take starts a window
    ON CONFLICT (bucket) DO NOTHING;
    FOR i IN 1 .. coalesce(array_length(c_remaining, 1), 0) LOOP
        PERFORM coord_correct_budget(p_bucket, c_remaining[i], to_timestamp(c_reset[i]),
                                     p_margin, c_generation[i], c_ordinal[i]);
    END LOOP;
    SELECT * INTO b FROM coord_nekos_budgets WHERE bucket = p_bucket FOR UPDATE;
    probe := false;
    IF b.reset_at + make_interval(secs => p_margin) <= t THEN
        -- The window is over: a new one starts with this take, its probe (answers correct the
        -- count and the end).
        b.generation := b.generation + 1;
        b.used := 0;
        b.adjust := 0;
        b.reset_at := t + make_interval(secs => p_window);
        b.lim := GREATEST(p_limit, 1);
        b.probe_at := NULL;
        probe := true;
    ELSE
        -- Processes learn the limit from what they see remaining, so one that saw a window
        -- already partly spent underestimates it: believe the largest estimate. But what is
        -- left once an answer stated it does not grow with a guess: the count grows with it.
        IF GREATEST(p_limit, 1) > b.lim THEN
            b.used := b.used + GREATEST(p_limit, 1) - b.lim;
            b.adjust := b.adjust + GREATEST(p_limit, 1) - b.lim;
            b.lim := GREATEST(p_limit, 1);
        END IF;
        -- A probe that went unanswered for too long is replaced.
        probe := b.probe_at IS NOT NULL
            AND b.probe_at + make_interval(secs => p_probe_timeout) <= t;
    END IF;
    SELECT s.used INTO mine FROM coord_nekos_shares AS s
    WHERE s.bucket = p_bucket AND s.process = p_process AND s.generation = b.generation;
    mine := coalesce(mine, 0);  -- nothing taken yet in this window
    SELECT GREATEST(count(*), 1) INTO live
    FROM coord_processes WHERE seen_at > t - make_interval(secs => p_stale);
    share := ceil(b.lim::float8 / live);
    half := b.reset_at - make_interval(secs => p_window / 2);
    IF NOT probe AND b.probe_at IS NOT NULL THEN
        -- A probe is out: nobody knows yet what the server has left. Ask again shortly.
        granted := false;
        wait := LEAST(p_probe_poll,
                      extract(epoch FROM b.probe_at + make_interval(secs => p_probe_timeout) - t));
    ELSIF b.used >= b.lim OR b.reset_at - t < make_interval(secs => p_guard) THEN
        -- Spent; or so close to the end that the request could reach nekos.best in its next
        -- window, which this count would not know about: wait for the next one.
        granted := false;
        probe := false;
        wait := extract(epoch FROM b.reset_at - t) + p_margin;
    ELSIF mine >= share AND t < half AND NOT probe THEN
        -- Fairness: in a window's first half each live process may use its share; what is
        -- left in the second half is anyone's, so the whole budget can still be spent.
        granted := false;
        wait := extract(epoch FROM half - t);
    ELSE
        granted := true;
        b.used := b.used + 1;
        wait := 0;
        IF probe THEN
            b.probe_at := t;
        END IF;
        INSERT INTO coord_nekos_shares AS s (bucket, process, generation, used)
        VALUES (p_bucket, p_process, b.generation, 1)
        ON CONFLICT (bucket, process) DO UPDATE
        SET used = CASE WHEN s.generation = EXCLUDED.generation THEN s.used + 1 ELSE 1 END,
            generation = EXCLUDED.generation;
    END IF;
    UPDATE coord_nekos_budgets
    SET lim = b.lim, used = b.used, adjust = b.adjust, reset_at = b.reset_at,
        generation = b.generation, probe_at = b.probe_at, updated_at = t
    WHERE bucket = p_bucket;
    generation := b.generation;
    ordinal := b.used - b.adjust;  -- this take's rank in the window (for its correction)
    RETURN NEXT;
END
$$
"""

#: Migration steps, in order; step N brings the schema to version N (never edit a shipped one).
MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """CREATE TABLE coord_command_digests (
            scope text PRIMARY KEY,
            digest text NOT NULL,
            registered_at timestamptz NOT NULL DEFAULT now()
        )""",
        """CREATE TABLE coord_processes (
            id text PRIMARY KEY,
            seen_at timestamptz NOT NULL
        )""",
        """CREATE TABLE coord_nekos_budgets (
            bucket text PRIMARY KEY,
            lim integer NOT NULL,
            used integer NOT NULL,
            adjust integer NOT NULL,
            reset_at timestamptz NOT NULL,
            generation bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now()
        )""",
        # Each process's takes in a bucket's current window (`generation`), for fairness.
        """CREATE TABLE coord_nekos_shares (
            bucket text NOT NULL,
            process text NOT NULL,
            generation bigint NOT NULL,
            used integer NOT NULL,
            PRIMARY KEY (bucket, process)
        )""",
        _CORRECT,
        _TAKE,
    ),
    (
        # Who runs each shard (`shard_claims`): held until `expires_at` unless renewed, so the
        # shards of a killed process are taken over after one lease time.
        """CREATE TABLE coord_shard_leases (
            shard integer PRIMARY KEY,
            shard_count integer NOT NULL,
            holder text NOT NULL,
            expires_at timestamptz NOT NULL
        )""",
    ),
    (
        "ALTER TABLE coord_nekos_budgets ADD COLUMN probe_at timestamptz",
        "DROP FUNCTION coord_take_budget(text, int, float8, text, float8, float8, float8, "
        "int[], float8[], bigint[], int[])",
        _CORRECT_V2,
        _TAKE_V2,
    ),
)


async def migrate(conn: asyncpg.Connection) -> int:
    """Bring the coordinator's tables up to date; returns the schema version."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1, $2)", LOCK_CLASS, MIGRATE_KEY)
        await conn.execute("CREATE TABLE IF NOT EXISTS coord_schema_version (version integer)")
        version = await conn.fetchval("SELECT max(version) FROM coord_schema_version") or 0
        for number, steps in enumerate(MIGRATIONS, start=1):
            if number <= version:
                continue
            for statement in steps:
                await conn.execute(statement)
            await conn.execute("INSERT INTO coord_schema_version (version) VALUES ($1)", number)
            version = number
        return int(version)
